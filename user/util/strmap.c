#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/strmap.h"

struct strmap_entry {
	struct strmap_entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

/* Eight bytes per step, then a final mix so that the low bits (the slot)
 * depend on every byte: the series registry hashes some 70 bytes of label
 * values for every event. */
uint64_t strmap_hash_bytes(uint64_t h, const char *s, size_t len)
{
	uint64_t w;

	h ^= len;
	for (; len >= sizeof(w); s += sizeof(w), len -= sizeof(w)) {
		memcpy(&w, s, sizeof(w));
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	/* The last 0 to 7 bytes, in fixed-size loads: a variable-length copy
	 * into w is a byte loop whose result the load of w must wait for. */
	w = 0;
	if (len & 4) {
		uint32_t x;

		memcpy(&x, s, sizeof(x));
		w = x;
		s += sizeof(x);
	}
	if (len & 2) {
		uint16_t x;

		memcpy(&x, s, sizeof(x));
		w |= (uint64_t)x << (len & 4) * 8;
		s += sizeof(x);
	}
	if (len & 1)
		w |= (uint64_t)(unsigned char)*s << (len & 6) * 8;
	return (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
}

uint64_t strmap_hash_finish(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

static uint64_t hash_string(const char *s)
{
	return strmap_hash_finish(
		strmap_hash_bytes(STRMAP_HASH_SEED, s, strlen(s)));
}

static struct strmap_entry **find_slot(const struct strmap *m, const char *key,
				       uint64_t hash)
{
	struct strmap_entry **e = &m->slots[hash & (m->nslots - 1)];

	for (; *e; e = &(*e)->next)
		if ((*e)->hash == hash && strcmp((*e)->key, key) == 0)
			break;
	return e;
}

static int grow(struct strmap *m)
{
	size_t n = m->nslots ? m->nslots * 2 : 16;
	struct strmap_entry **slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < m->nslots; i++) {
		struct strmap_entry *e = m->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = slots[e->hash & (n - 1)];
			slots[e->hash & (n - 1)] = e;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = n;
	return 0;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_entry *e;

	if (!m->nslots)
		return NULL;
	e = *find_slot(m, key, hash_string(key));
	return e ? e->value : NULL;
}

const char *strmap_put(struct strmap *m, const char *key, void *value)
{
	uint64_t hash = hash_string(key);
	struct strmap_entry **slot, *e;
	size_t klen;

	if (m->count >= m->nslots && grow(m))
		return NULL;
	slot = find_slot(m, key, hash);
	if (*slot) {
		(*slot)->value = value;
		return (*slot)->key;
	}
	klen = strlen(key);
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return NULL;
	e->next = NULL;
	e->hash = hash;
	e->value = value;
	memcpy(e->key, key, klen + 1);
	*slot = e;
	m->count++;
	return e->key;
}

void *strmap_remove(struct strmap *m, const char *key)
{
	struct strmap_entry **slot, *e;
	void *value;

	if (!m->nslots)
		return NULL;
	slot = find_slot(m, key, hash_string(key));
	e = *slot;
	if (!e)
		return NULL;
	*slot = e->next;
	value = e->value;
	free(e);
	m->count--;
	return value;
}

void strmap_each(const struct strmap *m,
		 void (*fn)(const char *key, void *value, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nslots; i++)
		for (struct strmap_entry *e = m->slots[i]; e; e = e->next)
			fn(e->key, e->value, arg);
}

void strmap_clear(struct strmap *m)
{
	for (size_t i = 0; i < m->nslots; i++) {
		struct strmap_entry *e = m->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
