/* The growing and the deleting of a table of open addressing with linear
 * probing, whose slots the caller lays out and looks keys up in.
 *
 * A table has a power of two of slots and is kept at most half full, so
 * that a lookup's run stays short. A free slot is all zero bytes. A
 * caller finds key k by walking from its home slot, i = home, i + 1, ...
 * (mod nslots), until the slot holds k or is free. Deleting a key moves
 * the keys after it in its run back, so that no lookup ever stops short
 * at a hole: there are no tombstones.
 *
 * Not thread-safe. */
#ifndef SONDE_PROBE_H
#define SONDE_PROBE_H

#include <stdbool.h>
#include <stddef.h>

struct probe_table {
	void *slots;   /* nslots slots of size bytes each; NULL when 0 */
	size_t size;   /* bytes a slot */
	size_t nslots; /* a power of two, or 0 */
	size_t nused;  /* slots holding a key */
	/* The home slot, in a table of n slots, of the key slot s holds. */
	size_t (*home)(const void *s, size_t n);
	/* Whether slot s holds a key. */
	bool (*used)(const void *s);
};

/* Slot i of t. */
static inline void *probe_slot(const struct probe_table *t, size_t i)
{
	return (char *)t->slots + i * t->size;
}

/* The slot after i, wrapping at the end. */
static inline size_t probe_next(const struct probe_table *t, size_t i)
{
	return (i + 1) & (t->nslots - 1);
}

/* Makes room for one more key: when that key would fill t past half,
 * doubles it (64 slots to start with) and moves each key to its place in
 * the new slots. The caller counts the key it then adds in nused. False
 * when memory ran out: t is as it was. Moved slots keep their bytes but
 * not their addresses. */
bool probe_grow(struct probe_table *t);

/* Empties slot i, whose key the caller has done with, and moves the keys
 * after it in its run back into the hole; nused drops by one. A key may
 * move into slot i itself: a walk that deletes goes on from i. */
void probe_delete(struct probe_table *t, size_t i);

/* Frees t's slots and zeroes its counts; size and hooks stay. */
void probe_free(struct probe_table *t);

#endif
