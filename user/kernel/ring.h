/* The daemon's side of an exchange ring (struct sonde_ring_pos in
 * sonde_events.h): a CPU's records, read from memory the BPF programs
 * write, with no system call. */
#ifndef SONDE_RING_H
#define SONDE_RING_H

#include <stddef.h>
#include <stdint.h>

#include "sonde_events.h"

struct ring_view {
	struct sonde_ring_pos *pos; /* shared with the programs */
	const uint8_t *data;	    /* mask + 1 + SONDE_RING_SLACK bytes */
	uint64_t mask;
};

typedef int (*ring_record_fn)(void *ctx, void *data, size_t size);

/* Hands fn each record published since the last call, in order, then
 * gives their room back to the programs. Returns how many records, or
 * -EBADMSG when a record's length cannot be right (the ring is then
 * emptied: what it held is lost, and the programs go on). */
int ring_read(struct ring_view *r, ring_record_fn fn, void *ctx);

/* The same for the n rings together, their records handed to fn oldest
 * first by the time their headers carry (every record starts with a
 * struct sonde_event_header): a thread that moved to another CPU has its
 * records read in the order it made them, whichever ring holds each.
 * Returns how many; *bad is the index of a ring that held a record of
 * impossible length (emptied, as ring_read does), or -1. */
int ring_read_merged(struct ring_view *rings, int n, ring_record_fn fn,
		     void *ctx, int *bad);

/* Bytes published and not read yet. */
static inline uint64_t ring_backlog(const struct ring_view *r)
{
	return __atomic_load_n(&r->pos->producer, __ATOMIC_ACQUIRE) -
	       r->pos->consumer;
}

#endif
