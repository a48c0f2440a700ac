#include <stdlib.h>
#include <string.h>

#include "util/probe.h"

bool probe_grow(struct probe_table *t)
{
	struct probe_table to = *t;

	if (2 * (t->nused + 1) <= t->nslots)
		return true;
	to.nslots = t->nslots ? 2 * t->nslots : 64;
	to.slots = calloc(to.nslots, t->size);
	if (!to.slots)
		return false;
	for (size_t i = 0; i < t->nslots; i++) {
		const void *s = probe_slot(t, i);
		size_t j;

		if (!t->used(s))
			continue;
		/* The new slots hold no key twice: the first free one. */
		j = t->home(s, to.nslots);
		while (to.used(probe_slot(&to, j)))
			j = probe_next(&to, j);
		memcpy(probe_slot(&to, j), s, t->size);
	}
	free(t->slots);
	*t = to;
	return true;
}

void probe_delete(struct probe_table *t, size_t i)
{
	size_t j = i;

	memset(probe_slot(t, i), 0, t->size);
	t->nused--;
	for (;;) {
		void *s;
		size_t home;

		j = probe_next(t, j);
		s = probe_slot(t, j);
		if (!t->used(s))
			return;
		home = t->home(s, t->nslots);
		/* j is found from its home when the home lies cyclically in
		 * (i, j]: it stays. Otherwise the hole at i would cut it
		 * off, and it moves there. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		memcpy(probe_slot(t, i), s, t->size);
		memset(s, 0, t->size);
		i = j;
	}
}

void probe_free(struct probe_table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->nslots = t->nused = 0;
}
