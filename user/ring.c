#include <errno.h>

#include "ring.h"

/* The length word and its padding, then the record padded to 8 bytes. */
static uint64_t record_bytes(uint32_t size)
{
	return (SONDE_RING_REC_HDR + (uint64_t)size + 7) & ~7ull;
}

int ring_read(struct ring_view *r, ring_record_fn fn, void *ctx)
{
	uint64_t at = r->pos->consumer;
	uint64_t end = __atomic_load_n(&r->pos->producer, __ATOMIC_ACQUIRE);
	int n = 0;

	while (at < end) {
		const uint8_t *rec = r->data + (at & r->mask);
		uint32_t size = *(const uint32_t *)rec;
		uint64_t bytes = record_bytes(size);

		if (size == 0 || bytes > SONDE_RING_SLACK || bytes > end - at) {
			__atomic_store_n(&r->pos->consumer, end,
					 __ATOMIC_RELEASE);
			return -EBADMSG;
		}
		fn(ctx, (void *)(rec + SONDE_RING_REC_HDR), size);
		n++;
		at += bytes;
	}
	/* The bytes are read before the programs may write over them. */
	__atomic_store_n(&r->pos->consumer, at, __ATOMIC_RELEASE);
	return n;
}
