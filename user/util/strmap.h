/* A chained hash map from NUL-terminated strings to pointers. Keys are
 * copied; values belong to the caller. Not thread-safe. */
#ifndef SONDE_STRMAP_H
#define SONDE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_entry;

struct strmap {
	struct strmap_entry **slots;
	size_t nslots; /* power of two */
	size_t count;
};

/* Returns the value stored under key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* Stores value under key, replacing any previous one. Returns the copy of
 * the key the map owns (valid until the entry is removed), or NULL when out
 * of memory (the map is then unchanged). */
const char *strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value, or NULL when absent. */
void *strmap_remove(struct strmap *m, const char *key);
/* Calls fn for every entry; fn must not change the map. */
void strmap_each(const struct strmap *m,
		 void (*fn)(const char *key, void *value, void *arg),
		 void *arg);
/* Frees the map's own memory (not the values). */
void strmap_clear(struct strmap *m);

/* The map's hash, for keys made of several pieces: start from
 * STRMAP_HASH_SEED, add each piece with strmap_hash_bytes, and mix the
 * result with strmap_hash_finish before taking low bits from it. */
#define STRMAP_HASH_SEED 0x9e3779b97f4a7c15ULL
uint64_t strmap_hash_bytes(uint64_t h, const char *s, size_t len);
uint64_t strmap_hash_finish(uint64_t h);

#endif
