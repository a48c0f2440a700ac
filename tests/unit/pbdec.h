/* A small protobuf reader for the encoder tests: finds the k-th occurrence
 * of a field in a message, so tests check what was encoded field by field
 * against the published .proto numbers. */
#ifndef SONDE_PBDEC_H
#define SONDE_PBDEC_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct pb_span {
	const uint8_t *p;
	size_t n;
};

static inline bool dec_varint(const uint8_t **p, const uint8_t *end,
			      uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* The k-th field numbered num in m: its wire type in *wire, a varint or
 * fixed value in *v, a LEN body in *sub. False when there is none or the
 * bytes are malformed. */
static inline bool dec_field(struct pb_span m, unsigned num, unsigned k,
			     unsigned *wire, uint64_t *v, struct pb_span *sub)
{
	const uint8_t *p = m.p, *end = m.p ? m.p + m.n : m.p;
	uint64_t key, len;

	while (p < end) {
		if (!dec_varint(&p, end, &key))
			return false;
		*wire = key & 7;
		switch (*wire) {
		case 0:
			if (!dec_varint(&p, end, v))
				return false;
			break;
		case 1:
			if (end - p < 8)
				return false;
			*v = 0;
			for (int i = 7; i >= 0; i--)
				*v = (*v << 8) | p[i];
			p += 8;
			break;
		case 2:
			if (!dec_varint(&p, end, &len) ||
			    len > (uint64_t)(end - p))
				return false;
			sub->p = p;
			sub->n = len;
			p += len;
			break;
		case 5:
			if (end - p < 4)
				return false;
			p += 4;
			break;
		default:
			return false;
		}
		if ((key >> 3) == num && k-- == 0)
			return true;
	}
	return false;
}

/* Occurrences of field num in m. */
static inline unsigned dec_count(struct pb_span m, unsigned num)
{
	unsigned n = 0, wire;
	uint64_t v;
	struct pb_span sub;

	while (dec_field(m, num, n, &wire, &v, &sub))
		n++;
	return n;
}

/* The k-th embedded message / string field num (empty span when none). */
static inline struct pb_span dec_msg(struct pb_span m, unsigned num, unsigned k)
{
	struct pb_span sub = { NULL, 0 };
	unsigned wire;
	uint64_t v;

	if (!dec_field(m, num, k, &wire, &v, &sub) || wire != 2)
		sub.p = NULL, sub.n = 0;
	return sub;
}

/* The varint or fixed field num (first occurrence), or dflt. */
static inline uint64_t dec_u64(struct pb_span m, unsigned num, uint64_t dflt)
{
	struct pb_span sub;
	unsigned wire;
	uint64_t v;

	return dec_field(m, num, 0, &wire, &v, &sub) && wire != 2 ? v : dflt;
}

static inline double dec_double(struct pb_span m, unsigned num)
{
	uint64_t bits = dec_u64(m, num, 0);
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static inline bool dec_str_eq(struct pb_span s, const char *want)
{
	return s.p && s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

#endif
