#include <stdlib.h>
#include <string.h>

#include "util/pb.h"

static bool reserve(struct pb_buf *b, size_t more)
{
	size_t cap;
	uint8_t *grown;

	if (b->failed)
		return false;
	if (b->len + more <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	grown = realloc(b->data, cap);
	if (!grown) {
		b->failed = true;
		return false;
	}
	b->data = grown;
	b->cap = cap;
	return true;
}

size_t pb_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

void pb_raw_varint(struct pb_buf *b, uint64_t v)
{
	if (reserve(b, 10))
		b->len += put_varint(b->data + b->len, v);
}

void pb_raw(struct pb_buf *b, const void *p, size_t n)
{
	if (n && reserve(b, n)) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
	}
}

void pb_key(struct pb_buf *b, uint32_t field, enum pb_wire wire)
{
	pb_raw_varint(b, ((uint64_t)field << 3) | wire);
}

void pb_uint(struct pb_buf *b, uint32_t field, uint64_t v)
{
	pb_key(b, field, PB_VARINT);
	pb_raw_varint(b, v);
}

void pb_sint(struct pb_buf *b, uint32_t field, int64_t v)
{
	pb_uint(b, field, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void raw_fixed64(struct pb_buf *b, uint64_t v)
{
	if (!reserve(b, 8))
		return;
	for (int i = 0; i < 8; i++)
		b->data[b->len++] = (uint8_t)(v >> (8 * i));
}

static uint64_t double_bits(double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return bits;
}

void pb_fixed64(struct pb_buf *b, uint32_t field, uint64_t v)
{
	pb_key(b, field, PB_I64);
	raw_fixed64(b, v);
}

void pb_double(struct pb_buf *b, uint32_t field, double v)
{
	pb_fixed64(b, field, double_bits(v));
}

void pb_bytes(struct pb_buf *b, uint32_t field, const void *p, size_t n)
{
	pb_key(b, field, PB_LEN);
	pb_raw_varint(b, n);
	pb_raw(b, p, n);
}

void pb_string(struct pb_buf *b, uint32_t field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

void pb_packed_fixed64(struct pb_buf *b, uint32_t field, const uint64_t *v,
		       size_t n)
{
	if (!n)
		return;
	pb_key(b, field, PB_LEN);
	pb_raw_varint(b, n * 8);
	for (size_t i = 0; i < n; i++)
		raw_fixed64(b, v[i]);
}

void pb_packed_double(struct pb_buf *b, uint32_t field, const double *v,
		      size_t n)
{
	if (!n)
		return;
	pb_key(b, field, PB_LEN);
	pb_raw_varint(b, n * 8);
	for (size_t i = 0; i < n; i++)
		raw_fixed64(b, double_bits(v[i]));
}

void pb_packed_varint(struct pb_buf *b, uint32_t field, const uint64_t *v,
		      size_t n)
{
	size_t len = 0;

	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		len += pb_varint_size(v[i]);
	pb_key(b, field, PB_LEN);
	pb_raw_varint(b, len);
	for (size_t i = 0; i < n; i++)
		pb_raw_varint(b, v[i]);
}

/* The body is written after a one-byte placeholder for its length; pb_end
 * moves it when the length needs more bytes. Most OTLP messages are short,
 * so the move is rare and only as deep as the nesting. */
size_t pb_begin(struct pb_buf *b, uint32_t field)
{
	size_t mark;

	pb_key(b, field, PB_LEN);
	mark = b->len;
	if (reserve(b, 1))
		b->data[b->len++] = 0;
	return mark;
}

void pb_end(struct pb_buf *b, size_t mark)
{
	size_t body, n;

	if (b->failed)
		return;
	body = b->len - mark - 1;
	n = pb_varint_size(body);
	if (n > 1) {
		if (!reserve(b, n - 1))
			return;
		memmove(b->data + mark + n, b->data + mark + 1, body);
		b->len += n - 1;
	}
	put_varint(b->data + mark, body);
}

void pb_release(struct pb_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}
