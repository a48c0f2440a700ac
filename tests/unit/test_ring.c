/* Reading the per-CPU exchange rings (user/ring.c), against a writer that
 * lays records out as ring_reserve and ring_submit in bpf/capture.bpf.c
 * do. */
#include <errno.h>
#include <stdbool.h>

#include "kernel/ring.h"
#include "unit.h"

#define BYTES 256 /* a small ring: records cross its end often */

static _Alignas(8) uint8_t data[BYTES + SONDE_RING_SLACK];
static struct sonde_ring_pos pos;
static struct ring_view view = { &pos, data, BYTES - 1 };

/* What the programs do: false when the ring has no room. */
static bool put_to(struct ring_view *v, const void *rec, uint32_t size)
{
	uint64_t bytes = SONDE_RING_RECORD_BYTES(size);
	uint8_t *at = (uint8_t *)v->data + (v->pos->producer & v->mask);

	if (v->pos->producer + bytes - v->pos->consumer > v->mask + 1)
		return false;
	memcpy(at, &size, sizeof(size));
	memcpy(at + SONDE_RING_REC_HDR, rec, size);
	v->pos->producer += bytes;
	return true;
}

static bool put(const void *rec, uint32_t size)
{
	return put_to(&view, rec, size);
}

static void reset(void)
{
	memset(data, 0xee, sizeof(data));
	memset(&pos, 0, sizeof(pos));
}

struct seen {
	int n;
	uint32_t sizes[64];
	uint8_t first[64], last[64];
};

static int note(void *ctx, void *rec, size_t size)
{
	struct seen *s = ctx;
	const uint8_t *b = rec;

	if (s->n < 64) {
		s->sizes[s->n] = (uint32_t)size;
		s->first[s->n] = b[0];
		s->last[s->n] = b[size - 1];
	}
	s->n++;
	return 0;
}

static void fill(uint8_t *rec, uint32_t size, uint8_t tag)
{
	for (uint32_t i = 0; i < size; i++)
		rec[i] = (uint8_t)(tag + i);
}

TEST(records_come_back_in_order_whole)
{
	uint8_t rec[100];
	struct seen s = { 0 };

	reset();
	fill(rec, 40, 1);
	CHECK(put(rec, 40));
	fill(rec, 13, 50);
	CHECK(put(rec, 13));
	CHECK(ring_read(&view, note, &s) == 2);
	CHECK(s.sizes[0] == 40 && s.first[0] == 1 && s.last[0] == 40);
	CHECK(s.sizes[1] == 13 && s.first[1] == 50 && s.last[1] == 62);
	/* Their room is given back. */
	CHECK(pos.consumer == pos.producer && pos.producer == 48 + 24);
	s.n = 0;
	CHECK(ring_read(&view, note, &s) == 0 && s.n == 0);
}

TEST(a_record_across_the_end_is_read_from_the_slack)
{
	uint32_t state = 7;
	uint8_t rec[SONDE_RING_SLACK];
	int crossed = 0;

	reset();
	/* Laps enough for records to cross the end at many offsets. */
	for (int i = 0; i < 2000; i++) {
		uint32_t size = 1 + unit_xorshift32(&state) % 200;
		uint64_t off = pos.producer & (BYTES - 1);
		struct seen s = { 0 };

		fill(rec, size, (uint8_t)i);
		CHECK(put(rec, size));
		crossed += off + SONDE_RING_REC_HDR + size > BYTES;
		CHECK(ring_read(&view, note, &s) == 1);
		CHECK(s.sizes[0] == size && s.first[0] == (uint8_t)i &&
		      s.last[0] == (uint8_t)(i + size - 1));
	}
	CHECK(crossed > 100);
}

TEST(a_full_ring_refuses_until_read)
{
	uint8_t rec[120] = { 0 };
	struct seen s = { 0 };

	reset();
	CHECK(put(rec, 120));
	CHECK(put(rec, 100));
	CHECK(!put(rec, 30)); /* 128 + 112 + 40 > 256 */
	CHECK(ring_read(&view, note, &s) == 2);
	CHECK(put(rec, 30));
}

TEST(an_impossible_length_empties_the_ring)
{
	uint8_t rec[32] = { 0 };
	struct seen s = { 0 };
	uint32_t bad[] = { 0, SONDE_RING_SLACK, 100 /* beyond producer */ };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		CHECK(put(rec, 32));
		CHECK(put(rec, 32));
		/* The second record's length goes bad. */
		memcpy(data + 40, &bad[i], sizeof(bad[i]));
		s.n = 0;
		CHECK(ring_read(&view, note, &s) == -EBADMSG);
		CHECK(s.n == 1);
		CHECK(pos.consumer == pos.producer);
		/* What comes next reads again. */
		CHECK(put(rec, 32));
		s.n = 0;
		CHECK(ring_read(&view, note, &s) == 1 && s.n == 1);
	}
}

/* A thread that moved to another CPU left its records on two rings:
 * together they come back oldest first, each ring's in its own order. */
TEST(rings_read_together_come_back_oldest_first)
{
	static _Alignas(8) uint8_t data2[BYTES + SONDE_RING_SLACK];
	static struct sonde_ring_pos pos2;
	struct ring_view rings[2] = { view, { &pos2, data2, BYTES - 1 } };
	static const uint64_t ts[2][3] = { { 10, 30, 40 }, { 20, 50, 60 } };
	struct seen s = { 0 };
	int bad;

	reset();
	memset(&pos2, 0, sizeof(pos2));
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < 3; i++) {
			struct sonde_event_header h = { .ts_ns = ts[r][i] };

			CHECK(put_to(&rings[r], &h, sizeof(h)));
		}
	CHECK(ring_read_merged(rings, 2, note, &s, &bad) == 6 && bad < 0);
	/* first[] holds each record's first byte: its time. */
	CHECK(s.first[0] == 10 && s.first[1] == 20 && s.first[2] == 30 &&
	      s.first[3] == 40 && s.first[4] == 50 && s.first[5] == 60);
	CHECK(pos.consumer == pos.producer && pos2.consumer == pos2.producer);
	CHECK(ring_read_merged(rings, 2, note, &s, &bad) == 0);
}

UNIT_MAIN("ring", UNIT_CASE(records_come_back_in_order_whole),
	  UNIT_CASE(a_record_across_the_end_is_read_from_the_slack),
	  UNIT_CASE(a_full_ring_refuses_until_read),
	  UNIT_CASE(an_impossible_length_empties_the_ring),
	  UNIT_CASE(rings_read_together_come_back_oldest_first))
