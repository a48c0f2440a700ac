/* Protocol Buffers wire-format encoder, just what OTLP needs:
 * https://protobuf.dev/programming-guides/encoding/
 * Appends fields to a growable buffer; nested messages are opened with
 * pb_begin and closed with pb_end, which writes their length prefix in its
 * shortest (canonical) form. Never fails by itself: an allocation failure
 * sets buf.failed and later calls do nothing. */
#ifndef SONDE_PB_H
#define SONDE_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pb_wire {
	PB_VARINT = 0,
	PB_I64 = 1,
	PB_LEN = 2,
	PB_I32 = 5,
};

struct pb_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;
};

/* Field key: (field << 3) | wire type, as a varint. */
void pb_key(struct pb_buf *b, uint32_t field, enum pb_wire wire);

/* A bare varint, no key. */
void pb_raw_varint(struct pb_buf *b, uint64_t v);

/* Bytes as they are, no key (already encoded fields). */
void pb_raw(struct pb_buf *b, const void *p, size_t n);

/* uint32, uint64, enum and bool fields: a varint. */
void pb_uint(struct pb_buf *b, uint32_t field, uint64_t v);

/* sint32 / sint64 fields: zigzag, then a varint. */
void pb_sint(struct pb_buf *b, uint32_t field, int64_t v);

/* fixed64 / sfixed64 fields: 8 bytes little-endian. */
void pb_fixed64(struct pb_buf *b, uint32_t field, uint64_t v);

/* double fields: the IEEE 754 bits as a fixed64. */
void pb_double(struct pb_buf *b, uint32_t field, double v);

/* string and bytes fields. */
void pb_bytes(struct pb_buf *b, uint32_t field, const void *p, size_t n);
void pb_string(struct pb_buf *b, uint32_t field, const char *s);

/* Packed repeated fixed64 / double / varint fields (one LEN record; none
 * at all when n is 0). */
void pb_packed_fixed64(struct pb_buf *b, uint32_t field, const uint64_t *v,
		       size_t n);
void pb_packed_double(struct pb_buf *b, uint32_t field, const double *v,
		      size_t n);
void pb_packed_varint(struct pb_buf *b, uint32_t field, const uint64_t *v,
		      size_t n);

/* Opens an embedded message field; returns the mark pb_end needs. */
size_t pb_begin(struct pb_buf *b, uint32_t field);

/* Closes the message opened at mark, writing its length. */
void pb_end(struct pb_buf *b, size_t mark);

/* Bytes a varint takes. */
size_t pb_varint_size(uint64_t v);

void pb_release(struct pb_buf *b);

#endif
