#include <errno.h>

#include "kernel/ring.h"

/* The record at a ring position: its length (the record's own, before
 * padding) and the time its header carries; every record starts with a
 * struct sonde_event_header, and one too short for it sorts first (the
 * dispatcher counts it). */
static const uint8_t *record_at(const struct ring_view *r, uint64_t at,
				uint32_t *size, uint64_t *ts)
{
	const uint8_t *rec = r->data + (at & r->mask);

	*size = *(const uint32_t *)rec;
	*ts = *size >= sizeof(struct sonde_event_header) ?
		      ((const struct sonde_event_header *)(rec +
							   SONDE_RING_REC_HDR))
			      ->ts_ns :
		      0;
	return rec;
}

int ring_read_merged(struct ring_view *rings, int n, ring_record_fn fn,
		     void *ctx, int *bad)
{
	uint64_t at[n > 0 ? n : 1], end[n > 0 ? n : 1];
	int count = 0;

	*bad = -1;
	for (int i = 0; i < n; i++) {
		at[i] = rings[i].pos->consumer;
		end[i] = __atomic_load_n(&rings[i].pos->producer,
					 __ATOMIC_ACQUIRE);
	}
	for (;;) {
		uint64_t first = UINT64_MAX, second = UINT64_MAX, ts;
		int pick = -1;
		uint32_t size;

		/* The ring whose next record is oldest, and the time of the
		 * oldest next record of the others: records are taken from
		 * the one until it passes that. */
		for (int i = 0; i < n; i++) {
			if (at[i] >= end[i])
				continue;
			record_at(&rings[i], at[i], &size, &ts);
			if (pick < 0 || ts < first) {
				second = first;
				first = ts;
				pick = i;
			} else if (ts < second) {
				second = ts;
			}
		}
		if (pick < 0)
			break;
		while (at[pick] < end[pick]) {
			const struct ring_view *r = &rings[pick];
			const uint8_t *rec = record_at(r, at[pick], &size, &ts);
			uint64_t bytes = SONDE_RING_RECORD_BYTES(size);
			const uint8_t *next;

			if (size == 0 || bytes > SONDE_RING_SLACK ||
			    bytes > end[pick] - at[pick]) {
				at[pick] = end[pick];
				*bad = pick;
				break;
			}
			if (ts > second)
				break;
			/* The next record, if any, was written by another CPU:
			 * start bringing its first lines in while this one is
			 * handled. A record is whole from its start on, past
			 * the end into the slack when it crosses it. */
			next = r->data + ((at[pick] + bytes) & r->mask);
			__builtin_prefetch(next);
			__builtin_prefetch(next + 64);
			__builtin_prefetch(next + 128);
			fn(ctx, (void *)(rec + SONDE_RING_REC_HDR), size);
			count++;
			at[pick] += bytes;
		}
	}
	/* The bytes are read before the programs may write over them. */
	for (int i = 0; i < n; i++)
		__atomic_store_n(&rings[i].pos->consumer, at[i],
				 __ATOMIC_RELEASE);
	return count;
}

int ring_read(struct ring_view *r, ring_record_fn fn, void *ctx)
{
	int bad, n = ring_read_merged(r, 1, fn, ctx, &bad);

	return bad < 0 ? n : -EBADMSG;
}
