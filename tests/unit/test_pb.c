/* The protobuf wire encoder, byte by byte against the encoding guide's
 * examples (https://protobuf.dev/programming-guides/encoding/). */
#include <stdlib.h>
#include <string.h>

#include "pbdec.h"
#include "unit.h"
#include "util/pb.h"

static bool bytes_are(const struct pb_buf *b, const uint8_t *want, size_t n)
{
	return !b->failed && b->len == n && memcmp(b->data, want, n) == 0;
}

TEST(varint_field_150_is_08_96_01)
{
	struct pb_buf b = { 0 };
	static const uint8_t want[] = { 0x08, 0x96, 0x01 };

	pb_uint(&b, 1, 150);
	CHECK(bytes_are(&b, want, sizeof(want)));
	pb_release(&b);
}

TEST(varint_sizes_and_the_largest_value)
{
	struct pb_buf b = { 0 };
	static const uint8_t want[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0xff, 0xff, 0x01 };

	CHECK(pb_varint_size(0) == 1 && pb_varint_size(127) == 1);
	CHECK(pb_varint_size(128) == 2 && pb_varint_size(16383) == 2);
	CHECK(pb_varint_size(UINT64_MAX) == 10);
	pb_raw_varint(&b, UINT64_MAX);
	CHECK(bytes_are(&b, want, sizeof(want)));
	pb_release(&b);
}

TEST(string_field_testing)
{
	struct pb_buf b = { 0 };
	static const uint8_t want[] = { 0x12, 0x07, 't', 'e', 's',
					't',  'i',  'n', 'g' };

	pb_string(&b, 2, "testing");
	CHECK(bytes_are(&b, want, sizeof(want)));
	pb_release(&b);
}

TEST(sint_is_zigzag)
{
	struct pb_buf b = { 0 };
	static const uint8_t want[] = { 0x30, 0x00, 0x30, 0x01, 0x30,
					0x02, 0x30, 0x03, 0x30, 0xfe,
					0xff, 0xff, 0xff, 0x0f, 0x30,
					0xff, 0xff, 0xff, 0xff, 0x0f };

	pb_sint(&b, 6, 0);
	pb_sint(&b, 6, -1);
	pb_sint(&b, 6, 1);
	pb_sint(&b, 6, -2);
	pb_sint(&b, 6, 0x7fffffff);
	pb_sint(&b, 6, -0x80000000LL);
	CHECK(bytes_are(&b, want, sizeof(want)));
	pb_release(&b);
}

TEST(fixed64_and_double_are_little_endian)
{
	struct pb_buf b = { 0 };
	static const uint8_t want[] = { 0x21, 0x08, 0x07, 0x06, 0x05, 0x04,
					0x03, 0x02, 0x01, 0x29, 0,    0,
					0,    0,    0,	  0,	0xf0, 0x3f };

	pb_fixed64(&b, 4, 0x0102030405060708ULL);
	pb_double(&b, 5, 1.0);
	CHECK(bytes_are(&b, want, sizeof(want)));
	pb_release(&b);
}

TEST(packed_fields_are_one_record)
{
	struct pb_buf b = { 0 };
	const uint64_t fixed[] = { 1, 2 };
	const uint64_t varints[] = { 3, 270, 86942 };
	const double doubles[] = { 0.5 };
	static const uint8_t want[] = {
		0x32, 0x10, 1,	  0,	0,    0,    0,	  0,	0,
		0,    2,    0,	  0,	0,    0,    0,	  0,	0,
		0x3a, 0x08, 0,	  0,	0,    0,    0,	  0,	0xe0,
		0x3f, 0x12, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05,
	};

	pb_packed_fixed64(&b, 6, fixed, 2);
	pb_packed_double(&b, 7, doubles, 1);
	pb_packed_varint(&b, 2, varints, 3);
	pb_packed_fixed64(&b, 6, fixed, 0); /* nothing at all */
	CHECK(bytes_are(&b, want, sizeof(want)));
	pb_release(&b);
}

TEST(nested_message_gets_its_length)
{
	struct pb_buf b = { 0 };
	static const uint8_t want[] = { 0x1a, 0x03, 0x08, 0x96, 0x01 };
	size_t m = pb_begin(&b, 3);

	pb_uint(&b, 1, 150);
	pb_end(&b, m);
	CHECK(bytes_are(&b, want, sizeof(want)));
	pb_release(&b);
}

TEST(long_nested_messages_move_their_body)
{
	struct pb_buf b = { 0 };
	char text[300];
	size_t outer, inner;
	struct pb_span whole, o, i, s;

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	outer = pb_begin(&b, 1);
	inner = pb_begin(&b, 2);
	pb_string(&b, 3, text);
	pb_end(&b, inner);
	pb_uint(&b, 4, 7);
	pb_end(&b, outer);
	/* 299 bytes of text: a 2-byte length at each of the three levels. */
	CHECK(!b.failed && b.len == 1 + 2 + 1 + 2 + 1 + 2 + 299 + 2);
	whole = (struct pb_span){ b.data, b.len };
	o = dec_msg(whole, 1, 0);
	CHECK(o.n == b.len - 3);
	i = dec_msg(o, 2, 0);
	s = dec_msg(i, 3, 0);
	CHECK(dec_str_eq(s, text));
	CHECK(dec_u64(o, 4, 0) == 7);
	pb_release(&b);
}

UNIT_MAIN("pb", UNIT_CASE(varint_field_150_is_08_96_01),
	  UNIT_CASE(varint_sizes_and_the_largest_value),
	  UNIT_CASE(string_field_testing), UNIT_CASE(sint_is_zigzag),
	  UNIT_CASE(fixed64_and_double_are_little_endian),
	  UNIT_CASE(packed_fields_are_one_record),
	  UNIT_CASE(nested_message_gets_its_length),
	  UNIT_CASE(long_nested_messages_move_their_body))
