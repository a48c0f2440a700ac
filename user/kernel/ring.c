#include <errno.h>

#include "kernel/ring.h"

int ring_read(struct ring_view *r, ring_record_fn fn, void *ctx)
{
	uint64_t at = r->pos->consumer;
	uint64_t end = __atomic_load_n(&r->pos->producer, __ATOMIC_ACQUIRE);
	int n = 0;

	while (at < end) {
		const uint8_t *rec = r->data + (at & r->mask), *next;
		uint32_t size = *(const uint32_t *)rec;
		uint64_t bytes = SONDE_RING_RECORD_BYTES(size);

		if (size == 0 || bytes > SONDE_RING_SLACK || bytes > end - at) {
			__atomic_store_n(&r->pos->consumer, end,
					 __ATOMIC_RELEASE);
			return -EBADMSG;
		}
		/* The next record, if any, was written by another CPU:
		 * start bringing its first lines in while this one is
		 * handled. A record is whole from its start on, past the
		 * end into the slack when it crosses it. */
		next = r->data + ((at + bytes) & r->mask);
		__builtin_prefetch(next);
		__builtin_prefetch(next + 64);
		__builtin_prefetch(next + 128);
		fn(ctx, (void *)(rec + SONDE_RING_REC_HDR), size);
		n++;
		at += bytes;
	}
	/* The bytes are read before the programs may write over them. */
	__atomic_store_n(&r->pos->consumer, at, __ATOMIC_RELEASE);
	return n;
}
