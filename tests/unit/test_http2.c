/* HTTP/2 header blocks to exchanges: the records the BPF side sends,
 * with header blocks made by libnghttp2's HPACK encoder (one per
 * direction, as a real peer's), cut into frames and pieces. */
#include <nghttp2/nghttp2.h>
#include <stdlib.h>

#include "hpack.h"
#include "proto/http.h"
#include "proto/http2.h"
#include "sonde_events.h"
#include "unit.h"

/* One connection as the kernel sees it, with each side's encoder. */
struct peer {
	uint32_t tgid, fd;
	uint64_t sk, since;
	uint32_t seq[2]; /* per direction */
	uint8_t role;
	nghttp2_hd_deflater *enc[2]; /* 0: the client's, 1: the server's */
};

static struct http_exchange out; /* the exchange handed back last */

/* While stashing, piece() keeps its records here instead of handing them
 * over: a test then hands them over in another order, as the rings of
 * two CPUs read one after the other do. */
#define STASH_MAX 16
static struct sonde_h2_event stash[STASH_MAX];
static unsigned nstash;
static bool stashing;

static void peer_init(struct peer *p, uint32_t fd)
{
	static uint64_t prefaces;

	memset(p, 0, sizeof(*p));
	p->since = ++prefaces * 1000000;
	p->tgid = 0x7ffffff2;
	p->fd = fd;
	p->sk = 0xffff888000001000ULL + fd * 64;
	p->role = SONDE_ROLE_SERVER;
	nghttp2_hd_deflate_new(&p->enc[0], 4096);
	nghttp2_hd_deflate_new(&p->enc[1], 4096);
}

static void peer_free(struct peer *p)
{
	nghttp2_hd_deflate_del(p->enc[0]);
	nghttp2_hd_deflate_del(p->enc[1]);
}

/* One record: the piece [offset, offset + len) of a frame's payload. */
static enum http2_result piece(struct peer *p, int to_client, uint8_t type,
			       uint8_t flags, uint32_t stream,
			       const uint8_t *payload, uint32_t frame_len,
			       uint32_t offset, uint32_t len, uint64_t ts)
{
	struct sonde_h2_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.hdr.ts_ns = ts;
	ev.hdr.tgid = p->tgid;
	ev.hdr.kind = SONDE_EV_HTTP2;
	ev.sk = p->sk;
	ev.since = p->since;
	ev.fd = p->fd;
	ev.seq = p->seq[to_client]++;
	ev.stream_id = stream;
	ev.frame_len = frame_len;
	ev.offset = offset;
	ev.sport = 8443;
	ev.dport = 50000;
	ev.family = 2;
	ev.len = (uint16_t)len;
	ev.type = type;
	ev.flags = flags;
	ev.to_client = (uint8_t)to_client;
	ev.role = p->role;
	memcpy(ev.comm, "h2svc", 6);
	memcpy(ev.data, payload + offset, len);
	if (stashing) {
		if (nstash < STASH_MAX)
			stash[nstash++] = ev;
		return HTTP2_NOTHING;
	}
	return http2_handle(&ev, sizeof(ev), &out);
}

/* Hands over the held records whose turn has come, as the dispatcher
 * does after each record; returns how many exchanges they finished. */
static unsigned hand_over_ready(void)
{
	const struct sonde_h2_event *ev;
	unsigned exchanges = 0;
	size_t size;

	while ((ev = http2_ready(&size)) != NULL)
		exchanges += http2_handle(ev, size, &out) == HTTP2_EXCHANGE;
	return exchanges;
}

/* How a header block travels. */
struct framing {
	size_t piece;	 /* bytes per record (at most SONDE_H2_DATA_CAP) */
	size_t cont_at;	 /* block bytes in the HEADERS frame; the rest in
			  * CONTINUATION frames this long (0: one frame) */
	uint8_t padding; /* PADDED with this many bytes (0: not padded) */
	bool priority;
	bool end_stream; /* the HEADERS frame ends its stream */
};

static const struct framing plain = { SONDE_H2_DATA_CAP, 0, 0, false, false };
static const struct framing last = { SONDE_H2_DATA_CAP, 0, 0, false, true };

/* Sends one frame in pieces; returns the result of its last piece. */
static enum http2_result frame(struct peer *p, int to_client, uint8_t type,
			       uint8_t flags, uint32_t stream,
			       const uint8_t *payload, uint32_t len,
			       size_t piece_len, uint64_t ts)
{
	enum http2_result r = HTTP2_NOTHING;
	uint32_t off = 0;

	do {
		uint32_t n =
			len - off < piece_len ? len - off : (uint32_t)piece_len;

		r = piece(p, to_client, type, flags, stream, payload, len, off,
			  n, ts);
		off += n;
	} while (off < len);
	return r;
}

/* Encodes fields with the sender's encoder and sends them as one header
 * block. */
static enum http2_result block(struct peer *p, int to_client, uint32_t stream,
			       const struct framing *fr, uint64_t ts,
			       const char *const *fields)
{
	uint8_t blk[8192], payload[9000];
	size_t blen = hpack_encode(p->enc[to_client], fields, blk, sizeof(blk));
	size_t front, first, off;
	enum http2_result r;
	uint8_t flags = 0;

	first = fr->cont_at && fr->cont_at < blen ? fr->cont_at : blen;
	front = 0;
	if (fr->padding) {
		flags |= SONDE_H2_FLAG_PADDED;
		payload[front++] = fr->padding;
	}
	if (fr->priority) {
		flags |= SONDE_H2_FLAG_PRIORITY;
		memcpy(payload + front, "\x00\x00\x00\x03\x10", 5);
		front += 5;
	}
	memcpy(payload + front, blk, first);
	memset(payload + front + first, 0, fr->padding);
	if (first == blen)
		flags |= SONDE_H2_FLAG_END_HEADERS;
	if (fr->end_stream)
		flags |= SONDE_H2_FLAG_END_STREAM;
	r = frame(p, to_client, SONDE_H2_HEADERS, flags, stream, payload,
		  (uint32_t)(front + first + fr->padding), fr->piece, ts);
	for (off = first; off < blen; off += fr->cont_at) {
		size_t m = blen - off < fr->cont_at ? blen - off : fr->cont_at;

		r = frame(p, to_client, SONDE_H2_CONTINUATION,
			  off + m == blen ? SONDE_H2_FLAG_END_HEADERS : 0,
			  stream, blk + off, (uint32_t)m, fr->piece, ts);
	}
	return r;
}

static enum http2_result request(struct peer *p, uint32_t stream,
				 const char *method, const char *path,
				 uint64_t ts)
{
	const char *f[] = { ":method",	  method,	  ":scheme",  "https",
			    ":authority", "example.test", ":path",    path,
			    "user-agent", "unit/1",	  "x-tenant", "acme",
			    NULL };

	return block(p, 0, stream, &plain, ts, f);
}

static enum http2_result response(struct peer *p, uint32_t stream,
				  const char *status, uint64_t ts)
{
	const char *f[] = { ":status", status, "content-type", "text/plain",
			    NULL };

	return block(p, 1, stream, &plain, ts, f);
}

/* Whether the exchange in out has target, whole. */
static bool target_is(const char *target)
{
	return out.target && out.target_complete &&
	       out.target_len == strlen(target) &&
	       memcmp(out.target, target, out.target_len) == 0;
}

/* The exchange in out: its method, target and status. */
static void check_exchange(const char *method, const char *target, int status)
{
	CHECK_STR(http_method_name(out.method), method);
	CHECK(target_is(target));
	CHECK(out.status == status);
	CHECK(out.grpc_status == -1);
}

/* The value of the request field name in out, or NULL; its length in
 * *len. */
static const char *field(const char *name, size_t *len)
{
	const char *value;

	return http_find_field(out.fields, out.fields_len, name, &value, len) ?
		       NULL :
		       value;
}

TEST(request_and_response_make_one_exchange)
{
	struct peer p;
	const char *value;
	size_t value_len;

	peer_init(&p, 5);
	CHECK(request(&p, 1, "GET", "/users/7?x=1", 1000) == HTTP2_NOTHING);
	CHECK(response(&p, 1, "200", 4000) == HTTP2_EXCHANGE);
	check_exchange("GET", "/users/7?x=1", 200);
	CHECK(out.start_ns == 1000 && out.end_ns == 4000);
	CHECK(out.role == SONDE_ROLE_SERVER && out.sport == 8443);
	CHECK(out.dport == 50000 && out.family == 2);
	/* The request's fields come along, for captured headers;
	 * :authority as HTTP/1.1's host. */
	value = field("X-Tenant", &value_len);
	CHECK(value && value_len == 4 && memcmp(value, "acme", 4) == 0);
	value = field("host", &value_len);
	CHECK(value && value_len == 12 &&
	      memcmp(value, "example.test", 12) == 0);
	CHECK(http2_connections() == 1);
	http2_clear();
	CHECK(http2_connections() == 0);
	peer_free(&p);
}

/* The encoders put repeated fields (a 503, the same path) in their
 * dynamic tables and send later ones as an index: the decoder must have
 * seen every block before. */
TEST(dynamic_table_entries_are_followed_across_blocks)
{
	static const char *const statuses[] = { "503", "201", "503", "418" };
	struct peer p;

	peer_init(&p, 6);
	for (unsigned i = 0; i < 40; i++) {
		uint32_t stream = 2 * i + 1;
		const char *status = statuses[i % 4];

		CHECK(request(&p, stream, i % 3 ? "POST" : "DELETE",
			      "/orders/12", 100 * i) == HTTP2_NOTHING);
		CHECK(response(&p, stream, status, 100 * i + 50) ==
		      HTTP2_EXCHANGE);
		check_exchange(i % 3 ? "POST" : "DELETE", "/orders/12",
			       atoi(status));
	}
	http2_clear();
	peer_free(&p);
}

TEST(blocks_in_small_pieces_padded_and_continued)
{
	static const struct framing framings[] = {
		{ 1, 0, 0, false, false }, { 3, 5, 0, false, false },
		{ 7, 0, 9, true, false },  { 512, 2, 0, true, false },
		{ 2, 3, 4, false, false }, { 9, 0, 0, true, false },
	};
	struct peer p;
	uint32_t stream = 1;

	peer_init(&p, 7);
	for (size_t i = 0; i < sizeof(framings) / sizeof(framings[0]); i++) {
		const struct framing *fr = &framings[i];
		const char *req[] = { ":method", "PUT",	 ":path", "/a/b/c",
				      ":scheme", "http", NULL };
		const char *resp[] = { ":status", "204", "server", "unit",
				       NULL };

		CHECK(block(&p, 0, stream, fr, 10, req) == HTTP2_NOTHING);
		CHECK(block(&p, 1, stream, fr, 20, resp) == HTTP2_EXCHANGE);
		check_exchange("PUT", "/a/b/c", 204);
		stream += 2;
	}
	http2_clear();
	peer_free(&p);
}

TEST(interleaved_streams_pair_by_stream_id)
{
	struct peer p;

	peer_init(&p, 8);
	CHECK(request(&p, 1, "GET", "/one", 10) == HTTP2_NOTHING);
	CHECK(request(&p, 3, "GET", "/three", 20) == HTTP2_NOTHING);
	CHECK(request(&p, 5, "POST", "/five", 30) == HTTP2_NOTHING);
	CHECK(response(&p, 5, "201", 35) == HTTP2_EXCHANGE);
	check_exchange("POST", "/five", 201);
	CHECK(out.start_ns == 30 && out.end_ns == 35);
	CHECK(response(&p, 1, "404", 40) == HTTP2_EXCHANGE);
	check_exchange("GET", "/one", 404);
	CHECK(response(&p, 3, "200", 50) == HTTP2_EXCHANGE);
	check_exchange("GET", "/three", 200);
	CHECK(out.start_ns == 20 && out.end_ns == 50);
	http2_clear();
	peer_free(&p);
}

TEST(interim_responses_and_trailers_end_nothing)
{
	const char *early[] = { ":status", "103", "link", "</a.css>", NULL };
	const char *trailer[] = { "grpc-status", "0", NULL };
	struct peer p;

	peer_init(&p, 9);
	CHECK(request(&p, 1, "POST", "/upload", 10) == HTTP2_NOTHING);
	/* Request trailers: no :method, no new request. */
	CHECK(block(&p, 0, 1, &plain, 15, trailer) == HTTP2_NOTHING);
	CHECK(block(&p, 1, 1, &plain, 20, early) == HTTP2_NOTHING);
	CHECK(response(&p, 1, "200", 30) == HTTP2_EXCHANGE);
	check_exchange("POST", "/upload", 200);
	CHECK(out.end_ns == 30);
	/* Response trailers after the final head. */
	CHECK(block(&p, 1, 1, &plain, 40, trailer) == HTTP2_NOTHING);
	http2_clear();
	peer_free(&p);
}

TEST(a_reset_stream_is_forgotten)
{
	const uint8_t code[4] = { 0, 0, 0, 8 }; /* CANCEL */
	struct peer p;

	peer_init(&p, 10);
	CHECK(request(&p, 1, "GET", "/slow", 10) == HTTP2_NOTHING);
	CHECK(frame(&p, 0, SONDE_H2_RST_STREAM, 0, 1, code, 4, 512, 20) ==
	      HTTP2_NOTHING);
	CHECK(response(&p, 1, "200", 30) == HTTP2_NOTHING);
	http2_clear();
	peer_free(&p);
}

/* A client resets a stream once it has its answer (curl does for a 500
 * with no body): the reset, read from one CPU's ring, may come before
 * the response it followed, read from another's. The response made
 * before the reset still makes the exchange. */
TEST(a_reset_read_before_the_response_made_first_counts)
{
	const uint8_t code[4] = { 0, 0, 0, 0 }; /* NO_ERROR */
	struct peer p;

	peer_init(&p, 17);
	CHECK(request(&p, 1, "GET", "/fail", 10) == HTTP2_NOTHING);
	stashing = true;
	response(&p, 1, "500", 20);
	stashing = false;
	CHECK(frame(&p, 0, SONDE_H2_RST_STREAM, 0, 1, code, 4, 512, 30) ==
	      HTTP2_NOTHING);
	CHECK(http2_handle(&stash[0], sizeof(stash[0]), &out) ==
	      HTTP2_EXCHANGE);
	check_exchange("GET", "/fail", 500);
	nstash = 0;
	/* The connection goes on. */
	CHECK(request(&p, 3, "GET", "/next", 40) == HTTP2_NOTHING);
	CHECK(response(&p, 3, "200", 50) == HTTP2_EXCHANGE);
	check_exchange("GET", "/next", 200);
	http2_clear();
	peer_free(&p);
}

TEST(a_missing_record_loses_the_connection_once)
{
	struct peer p;

	peer_init(&p, 11);
	CHECK(request(&p, 1, "GET", "/", 10) == HTTP2_NOTHING);
	p.seq[1]++; /* one record lost in the kernel */
	/* Held for the one before it, which may yet come from another
	 * CPU's ring: lost once two rounds of reading end without it. */
	CHECK(response(&p, 1, "200", 20) == HTTP2_NOTHING);
	CHECK(http2_end_round() == 0);
	CHECK(http2_end_round() == 1);
	CHECK(http2_end_round() == 0);
	CHECK(request(&p, 3, "GET", "/", 30) == HTTP2_NOTHING);
	CHECK(response(&p, 3, "200", 40) == HTTP2_NOTHING);
	CHECK(http2_end_round() == 0);
	/* A new connection on the same fd and socket starts afresh, and the
	 * old one is forgotten once its late records have had two rounds to
	 * come. */
	peer_free(&p);
	peer_init(&p, 11);
	CHECK(request(&p, 1, "GET", "/again", 50) == HTTP2_NOTHING);
	CHECK(response(&p, 1, "200", 60) == HTTP2_EXCHANGE);
	check_exchange("GET", "/again", 200);
	CHECK(http2_connections() == 2);
	CHECK(http2_end_round() == 0);
	CHECK(http2_end_round() == 0);
	CHECK(http2_connections() == 1);
	http2_clear();
	peer_free(&p);
}

/* Records read out of the order they were made in (two CPUs' rings)
 * are taken in their order: each exchange is whole, with its own
 * status, once the records before it have come. */
TEST(records_read_out_of_order_are_taken_in_order)
{
	struct peer p;

	peer_init(&p, 12);
	stashing = true;
	request(&p, 1, "GET", "/a", 10); /* client's seq 0 */
	request(&p, 3, "GET", "/b", 20); /* client's seq 1 */
	response(&p, 1, "200", 30);	 /* server's seq 0 */
	response(&p, 3, "404", 40);	 /* server's seq 1 */
	stashing = false;
	CHECK(nstash == 4);
	/* Each comes before the one it follows. */
	CHECK(http2_handle(&stash[1], sizeof(stash[1]), &out) == HTTP2_NOTHING);
	CHECK(hand_over_ready() == 0);
	CHECK(http2_handle(&stash[3], sizeof(stash[3]), &out) == HTTP2_NOTHING);
	CHECK(hand_over_ready() == 0);
	/* The server's first: its request has not come yet. */
	CHECK(http2_handle(&stash[2], sizeof(stash[2]), &out) == HTTP2_NOTHING);
	CHECK(hand_over_ready() == 0);
	/* The client's first finishes stream 1, and lets its second, held,
	 * finish stream 3. */
	CHECK(http2_handle(&stash[0], sizeof(stash[0]), &out) ==
	      HTTP2_EXCHANGE);
	check_exchange("GET", "/a", 200);
	CHECK(hand_over_ready() == 1);
	check_exchange("GET", "/b", 404);
	CHECK(http2_end_round() == 0);
	CHECK(http2_end_round() == 0);
	nstash = 0;
	http2_clear();
	peer_free(&p);
}

/* A thread that moved CPUs may have filled much of one ring before the
 * daemon reads the other, where the record those follow waits: many
 * more records than a round usually brings are held, in order, and then
 * each exchange is whole. */
TEST(a_ring_s_worth_of_records_waits_for_the_one_before_them)
{
	enum { STREAMS = 200 };
	struct sonde_h2_event first;
	struct peer p;
	unsigned exchanges = 0;

	peer_init(&p, 14);
	stashing = true;
	request(&p, 1, "GET", "/0", 10); /* client's seq 0, read last */
	stashing = false;
	first = stash[0];
	nstash = 0;
	for (uint32_t i = 1; i < STREAMS; i++)
		CHECK(request(&p, 2 * i + 1, "GET", "/n", 10 + i) ==
		      HTTP2_NOTHING);
	CHECK(http2_end_round() == 0);
	CHECK(http2_handle(&first, sizeof(first), &out) == HTTP2_NOTHING);
	CHECK(hand_over_ready() == 0);
	for (uint32_t i = 0; i < STREAMS; i++)
		exchanges += response(&p, 2 * i + 1, "200", 1000 + i) ==
			     HTTP2_EXCHANGE;
	CHECK(exchanges == STREAMS);
	CHECK(http2_end_round() == 0);
	http2_clear();
	peer_free(&p);
}

/* What all connections hold back is bounded in bytes: the record that
 * would pass the bound loses its connection, and what it held is
 * given back. */
TEST(records_held_back_are_bounded)
{
	const unsigned fit = HTTP2_HELD_BYTES / sizeof(struct sonde_h2_event);
	struct peer p, next;
	unsigned held = 0;
	enum http2_result r;

	peer_init(&p, 15);
	p.seq[0] = 1; /* the first record never comes */
	do {
		r = request(&p, 1, "GET", "/", 10);
	} while (r == HTTP2_NOTHING && ++held <= fit);
	CHECK(r == HTTP2_LOST);
	CHECK(held == fit);
	/* Its room is free again for the next connection. */
	peer_init(&next, 16);
	next.seq[0] = 1;
	for (unsigned i = 0; i < 100; i++)
		CHECK(request(&next, 1, "GET", "/", 20) == HTTP2_NOTHING);
	http2_clear();
	peer_free(&p);
	peer_free(&next);
}

/* The records of a connection read after the first of the next
 * connection on its fd (another CPU's ring read later) still make its
 * exchanges, whether some of its records came before (the response) or
 * none did (the second connection); the newest is not disturbed, and the
 * older ones are forgotten two rounds on. */
TEST(a_connection_s_late_records_outlive_the_next_one_s_first)
{
	struct peer old, short_lived, fresh;

	peer_init(&old, 13);
	CHECK(request(&old, 1, "GET", "/old", 10) == HTTP2_NOTHING);
	stashing = true;
	response(&old, 1, "200", 20);
	peer_init(&short_lived, 13);
	request(&short_lived, 1, "GET", "/brief", 22);
	response(&short_lived, 1, "204", 24);
	stashing = false;
	CHECK(nstash == 3);
	peer_init(&fresh, 13);
	CHECK(request(&fresh, 1, "GET", "/new", 30) == HTTP2_NOTHING);
	CHECK(http2_handle(&stash[0], sizeof(stash[0]), &out) ==
	      HTTP2_EXCHANGE);
	check_exchange("GET", "/old", 200);
	CHECK(http2_handle(&stash[1], sizeof(stash[1]), &out) == HTTP2_NOTHING);
	CHECK(http2_handle(&stash[2], sizeof(stash[2]), &out) ==
	      HTTP2_EXCHANGE);
	check_exchange("GET", "/brief", 204);
	CHECK(http2_connections() == 3);
	CHECK(http2_end_round() == 0);
	CHECK(http2_end_round() == 0);
	CHECK(http2_connections() == 1);
	CHECK(response(&fresh, 1, "200", 40) == HTTP2_EXCHANGE);
	check_exchange("GET", "/new", 200);
	nstash = 0;
	http2_clear();
	peer_free(&old);
	peer_free(&short_lived);
	peer_free(&fresh);
}

TEST(garbage_blocks_lose_the_connection)
{
	/* An index past both tables, a literal longer than the block, a
	 * CONTINUATION with no HEADERS before it. */
	static const uint8_t bad_index[] = { 0xff, 0x7f };
	static const uint8_t short_literal[] = { 0x40, 0x7f, 'a' };
	uint32_t seed = 7;
	struct peer p;

	peer_init(&p, 12);
	CHECK(frame(&p, 0, SONDE_H2_HEADERS, SONDE_H2_FLAG_END_HEADERS, 1,
		    bad_index, 2, 512, 10) == HTTP2_LOST);
	peer_free(&p);
	peer_init(&p, 13);
	CHECK(frame(&p, 0, SONDE_H2_HEADERS, SONDE_H2_FLAG_END_HEADERS, 1,
		    short_literal, 3, 512, 10) == HTTP2_LOST);
	peer_free(&p);
	peer_init(&p, 14);
	CHECK(frame(&p, 1, SONDE_H2_CONTINUATION, SONDE_H2_FLAG_END_HEADERS, 1,
		    bad_index, 2, 512, 10) == HTTP2_LOST);
	peer_free(&p);
	/* Random blocks: never an exchange, never a crash. */
	for (uint32_t fd = 100; fd < 400; fd++) {
		uint8_t junk[64];
		uint32_t len = unit_xorshift32(&seed) % sizeof(junk) + 1;

		for (uint32_t i = 0; i < len; i++)
			junk[i] = (uint8_t)unit_xorshift32(&seed);
		peer_init(&p, fd);
		CHECK(frame(&p, 0, SONDE_H2_HEADERS, SONDE_H2_FLAG_END_HEADERS,
			    1, junk, len, 5, 10) != HTTP2_EXCHANGE);
		CHECK(frame(&p, 1, SONDE_H2_HEADERS, SONDE_H2_FLAG_END_HEADERS,
			    1, junk, len, 64, 20) != HTTP2_EXCHANGE);
		peer_free(&p);
	}
	http2_clear();
}

/* A HEADERS frame with an empty block (found by tests/fuzz) is valid
 * HPACK with no field: no request, and the connection goes on. */
TEST(an_empty_header_block_is_no_request)
{
	const uint8_t none[1] = { 0 };
	struct peer p;

	peer_init(&p, 16);
	CHECK(frame(&p, 0, SONDE_H2_HEADERS, SONDE_H2_FLAG_END_HEADERS, 1, none,
		    0, 512, 10) != HTTP2_EXCHANGE);
	CHECK(frame(&p, 1, SONDE_H2_HEADERS, SONDE_H2_FLAG_END_HEADERS, 1, none,
		    0, 512, 20) != HTTP2_EXCHANGE);
	CHECK(request(&p, 3, "GET", "/after", 30) == HTTP2_NOTHING);
	CHECK(response(&p, 3, "200", 40) == HTTP2_EXCHANGE);
	check_exchange("GET", "/after", 200);
	http2_clear();
	peer_free(&p);
}

TEST(padding_longer_than_its_frame_loses_the_connection)
{
	const uint8_t payload[3] = { 200, 0x82, 0x84 };
	struct peer p;

	peer_init(&p, 15);
	CHECK(frame(&p, 0, SONDE_H2_HEADERS,
		    SONDE_H2_FLAG_END_HEADERS | SONDE_H2_FLAG_PADDED, 1,
		    payload, 3, 512, 10) == HTTP2_LOST);
	http2_clear();
	peer_free(&p);
}

TEST(long_heads_are_cut_like_http1_captures)
{
	char path[600];
	const char *req[] = { ":method", "GET", ":path", path, NULL };
	const char *evil[] = { ":method", "GET",   ":path",
			       "/ok",	  "x-bad", "a\r\nX-Tenant: forged",
			       NULL };
	size_t value_len;
	struct peer p;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	peer_init(&p, 16);
	CHECK(block(&p, 0, 1, &plain, 10, req) == HTTP2_NOTHING);
	CHECK(response(&p, 1, "200", 20) == HTTP2_EXCHANGE);
	CHECK(out.target_len == SONDE_REQ_CAP &&
	      memcmp(out.target, path, 8) == 0);
	CHECK(!out.target_complete);
	/* A value with CR LF in it would forge a field: it is left out. */
	CHECK(block(&p, 0, 3, &plain, 30, evil) == HTTP2_NOTHING);
	CHECK(response(&p, 3, "200", 40) == HTTP2_EXCHANGE);
	CHECK(!field("x-tenant", &value_len));
	CHECK(!field("x-bad", &value_len));
	http2_clear();
	peer_free(&p);
}

/* A client's reader thread can take a response in before the writer's
 * syscall returns: the response waits for its request. One whose
 * request never comes is counted when it is pushed out. */
TEST(a_response_before_its_request_waits_for_it)
{
	struct peer p;

	peer_init(&p, 18);
	p.role = SONDE_ROLE_CLIENT;
	CHECK(response(&p, 1, "201", 100) == HTTP2_NOTHING);
	CHECK(request(&p, 1, "PUT", "/k/1", 101) == HTTP2_EXCHANGE);
	check_exchange("PUT", "/k/1", 201);
	CHECK(out.role == SONDE_ROLE_CLIENT);
	CHECK(out.start_ns == 101 && out.end_ns == 100);
	CHECK(response(&p, 3, "200", 200) == HTTP2_NOTHING);
	for (uint32_t i = 0; i < HTTP2_MAX_PENDING - 1; i++)
		CHECK(request(&p, 5 + 2 * i, "GET", "/", 300) == HTTP2_NOTHING);
	CHECK(request(&p, 5 + 2 * HTTP2_MAX_PENDING, "GET", "/", 400) ==
	      HTTP2_NO_REQUEST);
	http2_clear();
	peer_free(&p);
}

/* A server's PUSH_PROMISE carries the request of the stream it pushes,
 * encoded with the server's table: decoded in turn, and counted when its
 * response comes. */
TEST(pushed_streams_are_requests_promised_by_the_server)
{
	const char *promise[] = { ":method", "GET",   ":path", "/style.css",
				  ":scheme", "https", NULL };
	uint8_t payload[512];
	size_t len;
	struct peer p;

	peer_init(&p, 19);
	CHECK(request(&p, 1, "GET", "/page", 10) == HTTP2_NOTHING);
	/* Padded, promising stream 2, on stream 1. */
	payload[0] = 3;
	memcpy(payload + 1, "\x00\x00\x00\x02", 4);
	len = hpack_encode(p.enc[1], promise, payload + 5, 400);
	memset(payload + 5 + len, 0, 3);
	CHECK(frame(&p, 1, SONDE_H2_PUSH_PROMISE,
		    SONDE_H2_FLAG_END_HEADERS | SONDE_H2_FLAG_PADDED, 1,
		    payload, (uint32_t)(len + 8), 512, 15) == HTTP2_NOTHING);
	CHECK(response(&p, 1, "200", 20) == HTTP2_EXCHANGE);
	check_exchange("GET", "/page", 200);
	CHECK(response(&p, 2, "200", 30) == HTTP2_EXCHANGE);
	check_exchange("GET", "/style.css", 200);
	CHECK(out.start_ns == 15 && out.end_ns == 30);
	http2_clear();
	peer_free(&p);
}

static bool only_even_fds(uint32_t tgid, uint32_t fd, uint64_t sk)
{
	(void)tgid;
	(void)sk;
	return fd % 2 == 0;
}

TEST(sweep_forgets_closed_connections)
{
	struct peer p;

	for (uint32_t fd = 20; fd < 30; fd++) {
		peer_init(&p, fd);
		CHECK(request(&p, 1, "GET", "/", 10) == HTTP2_NOTHING);
		peer_free(&p);
	}
	CHECK(http2_connections() == 10);
	http2_sweep(only_even_fds);
	CHECK(http2_connections() == 5);
	http2_clear();
}

TEST(connections_beyond_the_limit_are_lost)
{
	struct peer p;

	for (uint32_t fd = 0; fd < HTTP2_MAX_CONNS; fd++) {
		peer_init(&p, 1000 + fd);
		CHECK(request(&p, 1, "GET", "/", 10) == HTTP2_NOTHING);
		peer_free(&p);
	}
	peer_init(&p, 99999);
	CHECK(request(&p, 1, "GET", "/", 10) == HTTP2_LOST);
	CHECK(response(&p, 1, "200", 20) == HTTP2_NOTHING);
	CHECK(http2_connections() == HTTP2_MAX_CONNS);
	http2_clear();
	peer_free(&p);
}

TEST(too_many_waiting_streams_forget_the_oldest)
{
	struct peer p;

	peer_init(&p, 17);
	for (uint32_t i = 0; i <= HTTP2_MAX_PENDING; i++)
		CHECK(request(&p, 2 * i + 1, "GET", "/w", i) == HTTP2_NOTHING);
	CHECK(response(&p, 3, "200", 1000) == HTTP2_EXCHANGE);
	CHECK(response(&p, 2 * HTTP2_MAX_PENDING + 1, "200", 1000) ==
	      HTTP2_EXCHANGE);
	/* Stream 1's request was forgotten: its response waits. */
	CHECK(response(&p, 1, "200", 1000) == HTTP2_NOTHING);
	http2_clear();
	peer_free(&p);
}

/* gRPC: a call is a POST whose content-type says so; it ends with
 * trailers that carry grpc-status, or with a head that ends the stream. */
static enum http2_result grpc_request(struct peer *p, uint32_t stream,
				      const char *path, uint64_t ts)
{
	const char *f[] = { ":method",
			    "POST",
			    ":scheme",
			    "http",
			    ":path",
			    path,
			    ":authority",
			    "svc:50051",
			    "content-type",
			    "application/grpc",
			    "te",
			    "trailers",
			    NULL };

	return block(p, 0, stream, &plain, ts, f);
}

static enum http2_result grpc_head(struct peer *p, uint32_t stream, uint64_t ts)
{
	const char *f[] = { ":status", "200", "content-type",
			    "application/grpc", NULL };

	return block(p, 1, stream, &plain, ts, f);
}

static enum http2_result grpc_trailers(struct peer *p, uint32_t stream,
				       const char *status, uint64_t ts)
{
	const char *f[] = { "grpc-status", status, "grpc-message", "m", NULL };

	return block(p, 1, stream, &last, ts, f);
}

static enum http2_result rst(struct peer *p, int to_client, uint32_t stream,
			     uint8_t code, uint64_t ts)
{
	const uint8_t payload[4] = { 0, 0, 0, code };

	return frame(p, to_client, SONDE_H2_RST_STREAM, 0, stream, payload, 4,
		     512, ts);
}

/* The call in out: its path, HTTP status (0: none), gRPC status and
 * times. */
static void check_call(const char *path, int status, int grpc_status,
		       uint64_t start, uint64_t end)
{
	CHECK(target_is(path));
	/* A call reset before its head has no HTTP status. */
	CHECK(out.status == status);
	CHECK(out.grpc_status == grpc_status);
	CHECK(out.start_ns == start && out.end_ns == end);
}

TEST(a_grpc_call_ends_at_its_trailers)
{
	struct peer p;

	peer_init(&p, 20);
	CHECK(grpc_request(&p, 1, "/shop.Cart/Add", 100) == HTTP2_NOTHING);
	CHECK(grpc_head(&p, 1, 150) == HTTP2_NOTHING);
	CHECK(grpc_trailers(&p, 1, "0", 900) == HTTP2_EXCHANGE);
	check_call("/shop.Cart/Add", 200, 0, 100, 900);
	/* Interleaved streaming calls; the second time, the encoders send
	 * the fields as dynamic-table references. */
	for (int round = 0; round < 2; round++) {
		uint32_t s = 3 + 8 * (uint32_t)round;

		CHECK(grpc_request(&p, s, "/shop.Cart/Watch", 10) ==
		      HTTP2_NOTHING);
		CHECK(grpc_request(&p, s + 2, "/shop.Cart/Get", 20) ==
		      HTTP2_NOTHING);
		CHECK(grpc_request(&p, s + 4, "/shop.Cart/Get", 30) ==
		      HTTP2_NOTHING);
		CHECK(grpc_head(&p, s, 40) == HTTP2_NOTHING);
		CHECK(grpc_head(&p, s + 2, 50) == HTTP2_NOTHING);
		CHECK(grpc_trailers(&p, s + 2, "5", 60) == HTTP2_EXCHANGE);
		check_call("/shop.Cart/Get", 200, 5, 20, 60);
		CHECK(grpc_head(&p, s + 4, 70) == HTTP2_NOTHING);
		CHECK(grpc_trailers(&p, s + 4, "5", 80) == HTTP2_EXCHANGE);
		check_call("/shop.Cart/Get", 200, 5, 30, 80);
		CHECK(grpc_trailers(&p, s, "14", 5000) == HTTP2_EXCHANGE);
		check_call("/shop.Cart/Watch", 200, 14, 10, 5000);
	}
	http2_clear();
	peer_free(&p);
}

TEST(a_grpc_status_comes_from_a_lone_head_or_its_http_status)
{
	static const struct {
		const char *status, *grpc_status;
		int want;
	} heads[] = {
		{ "200", "7", 7 },   /* trailers-only */
		{ "200", "16", 16 }, /* the last code */
		{ "200", "17", 2 },  /* no such code: UNKNOWN */
		{ "200", "0x1", 2 }, /* not decimal */
		{ "200", NULL, 2 },  /* no status at all */
		{ "503", NULL, 14 }, /* a proxy's: UNAVAILABLE */
		{ "404", NULL, 12 }, /* UNIMPLEMENTED */
		{ "401", NULL, 16 }, /* UNAUTHENTICATED */
		{ "500", NULL, 2 },  /* UNKNOWN */
		{ "503", "4", 4 },   /* grpc-status wins */
	};
	struct peer p;

	peer_init(&p, 21);
	for (uint32_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		const char *f[] = { ":status", heads[i].status, "grpc-status",
				    heads[i].grpc_status, NULL };

		if (!heads[i].grpc_status)
			f[2] = NULL;
		CHECK(grpc_request(&p, 2 * i + 1, "/a.B/C", i) ==
		      HTTP2_NOTHING);
		CHECK(block(&p, 1, 2 * i + 1, &last, i + 7, f) ==
		      HTTP2_EXCHANGE);
		check_call("/a.B/C", atoi(heads[i].status), heads[i].want, i,
			   i + 7);
	}
	/* Trailers without grpc-status. */
	CHECK(grpc_request(&p, 99, "/a.B/C", 1) == HTTP2_NOTHING);
	CHECK(grpc_head(&p, 99, 2) == HTTP2_NOTHING);
	{
		const char *f[] = { "x-other", "1", NULL };

		CHECK(block(&p, 1, 99, &last, 3, f) == HTTP2_EXCHANGE);
	}
	check_call("/a.B/C", 200, 2, 1, 3);
	http2_clear();
	peer_free(&p);
}

TEST(a_reset_ends_a_grpc_call_with_the_status_it_stands_for)
{
	struct peer p;

	peer_init(&p, 22);
	/* The client gave up (a deadline, a cancel). */
	CHECK(grpc_request(&p, 1, "/a.B/Slow", 10) == HTTP2_NOTHING);
	CHECK(rst(&p, 0, 1, 0x8, 300) == HTTP2_EXCHANGE);
	check_call("/a.B/Slow", 0, 1, 10, 300);
	/* The server refused the stream. */
	CHECK(grpc_request(&p, 3, "/a.B/C", 400) == HTTP2_NOTHING);
	CHECK(rst(&p, 1, 3, 0x7, 410) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 0, 14, 400, 410);
	/* Reset after the head, before the trailers. */
	CHECK(grpc_request(&p, 5, "/a.B/C", 500) == HTTP2_NOTHING);
	CHECK(grpc_head(&p, 5, 510) == HTTP2_NOTHING);
	CHECK(rst(&p, 1, 5, 0x2, 520) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 200, 13, 500, 520);
	/* A reset after the call ended finds nothing. */
	CHECK(grpc_request(&p, 7, "/a.B/C", 600) == HTTP2_NOTHING);
	CHECK(grpc_head(&p, 7, 610) == HTTP2_NOTHING);
	CHECK(grpc_trailers(&p, 7, "0", 620) == HTTP2_EXCHANGE);
	CHECK(rst(&p, 1, 7, 0x0, 630) == HTTP2_NOTHING);
	http2_clear();
	peer_free(&p);
}

/* A call reset at its deadline (grpc-timeout), by the client (CANCEL)
 * or by the server (NO_ERROR): DEADLINE_EXCEEDED. Earlier, a cancel is
 * a cancel; other codes keep their own meaning. */
TEST(a_cancel_at_the_deadline_is_deadline_exceeded)
{
	const char *req[] = { ":method",
			      "POST",
			      ":path",
			      "/a.B/C",
			      ":scheme",
			      "http",
			      "content-type",
			      "application/grpc",
			      "grpc-timeout",
			      "160m",
			      NULL };
	struct peer p;

	peer_init(&p, 26);
	CHECK(block(&p, 0, 1, &plain, 1000, req) == HTTP2_NOTHING);
	CHECK(rst(&p, 0, 1, 0x8, 1000 + 161000000) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 0, 4, 1000, 1000 + 161000000);
	/* The request went out a little after the client set its timer. */
	CHECK(block(&p, 0, 3, &plain, 1000, req) == HTTP2_NOTHING);
	CHECK(grpc_head(&p, 3, 2000) == HTTP2_NOTHING);
	CHECK(rst(&p, 0, 3, 0x8, 1000 + 155000000) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 200, 4, 1000, 1000 + 155000000);
	/* Long before the deadline: the client gave up. */
	CHECK(block(&p, 0, 5, &plain, 1000, req) == HTTP2_NOTHING);
	CHECK(rst(&p, 0, 5, 0x8, 1000 + 20000000) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 0, 1, 1000, 1000 + 20000000);
	/* The server ended it at the deadline. */
	CHECK(block(&p, 0, 7, &plain, 1000, req) == HTTP2_NOTHING);
	CHECK(rst(&p, 1, 7, 0x0, 1000 + 200000000) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 0, 4, 1000, 1000 + 200000000);
	/* Before it: NO_ERROR without a status is INTERNAL. */
	CHECK(block(&p, 0, 11, &plain, 1000, req) == HTTP2_NOTHING);
	CHECK(rst(&p, 1, 11, 0x0, 1000 + 2000000) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 0, 13, 1000, 1000 + 2000000);
	/* REFUSED_STREAM after the deadline is still UNAVAILABLE. */
	CHECK(block(&p, 0, 13, &plain, 1000, req) == HTTP2_NOTHING);
	CHECK(rst(&p, 1, 13, 0x7, 1000 + 200000000) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 0, 14, 1000, 1000 + 200000000);
	/* No grpc-timeout: no deadline. */
	CHECK(grpc_request(&p, 9, "/a.B/C", 1000) == HTTP2_NOTHING);
	CHECK(rst(&p, 0, 9, 0x8, 1000 + 900000000) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 0, 1, 1000, 1000 + 900000000);
	http2_clear();
	peer_free(&p);
}

/* A client's reader thread can take the whole response in before the
 * writer's syscall that sent the request returns. */
TEST(a_grpc_response_before_its_request_waits_for_it)
{
	struct peer p;

	peer_init(&p, 23);
	p.role = SONDE_ROLE_CLIENT;
	CHECK(grpc_head(&p, 1, 40) == HTTP2_NOTHING);
	CHECK(grpc_trailers(&p, 1, "3", 50) == HTTP2_NOTHING);
	CHECK(grpc_request(&p, 1, "/a.B/C", 10) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 200, 3, 10, 50);
	/* Only the head came first: the trailers end it. */
	CHECK(grpc_head(&p, 3, 140) == HTTP2_NOTHING);
	CHECK(grpc_request(&p, 3, "/a.B/C", 110) == HTTP2_NOTHING);
	CHECK(grpc_trailers(&p, 3, "0", 150) == HTTP2_EXCHANGE);
	check_call("/a.B/C", 200, 0, 110, 150);
	http2_clear();
	peer_free(&p);
}

/* grpc-web carries its status in the body; other content types are
 * HTTP. Both end at the response head. */
TEST(only_application_grpc_makes_a_call)
{
	static const char *const types[] = { "application/grpc-web",
					     "application/json",
					     "application/grpcx" };
	struct peer p;

	peer_init(&p, 24);
	for (uint32_t i = 0; i < 3; i++) {
		const char *f[] = { ":method",	    "POST",    ":path",
				    "/a.B/C",	    ":scheme", "http",
				    "content-type", types[i],  NULL };

		CHECK(block(&p, 0, 2 * i + 1, &plain, 10, f) == HTTP2_NOTHING);
		CHECK(grpc_head(&p, 2 * i + 1, 20) == HTTP2_EXCHANGE);
		check_exchange("POST", "/a.B/C", 200);
	}
	{
		const char *f[] = { ":method",
				    "POST",
				    ":path",
				    "/a.B/C",
				    ":scheme",
				    "http",
				    "content-type",
				    "application/grpc+proto",
				    NULL };

		CHECK(block(&p, 0, 9, &plain, 10, f) == HTTP2_NOTHING);
		CHECK(grpc_head(&p, 9, 20) == HTTP2_NOTHING);
		CHECK(grpc_trailers(&p, 9, "0", 30) == HTTP2_EXCHANGE);
		check_call("/a.B/C", 200, 0, 10, 30);
	}
	http2_clear();
	peer_free(&p);
}

/* Long streaming calls wait in the table; the oldest make room. That
 * is no response without its request. */
TEST(waiting_grpc_calls_make_room_quietly)
{
	struct peer p;

	peer_init(&p, 25);
	for (uint32_t i = 0; i <= HTTP2_MAX_PENDING; i++) {
		CHECK(grpc_request(&p, 2 * i + 1, "/a.B/Watch", i) ==
		      HTTP2_NOTHING);
		CHECK(grpc_head(&p, 2 * i + 1, i) == HTTP2_NOTHING);
	}
	CHECK(grpc_trailers(&p, 1, "0", 1000) == HTTP2_NOTHING);
	CHECK(grpc_trailers(&p, 3, "0", 1000) == HTTP2_EXCHANGE);
	http2_clear();
	peer_free(&p);
}

UNIT_MAIN("http2", UNIT_CASE(request_and_response_make_one_exchange),
	  UNIT_CASE(dynamic_table_entries_are_followed_across_blocks),
	  UNIT_CASE(blocks_in_small_pieces_padded_and_continued),
	  UNIT_CASE(interleaved_streams_pair_by_stream_id),
	  UNIT_CASE(interim_responses_and_trailers_end_nothing),
	  UNIT_CASE(a_reset_stream_is_forgotten),
	  UNIT_CASE(a_reset_read_before_the_response_made_first_counts),
	  UNIT_CASE(a_missing_record_loses_the_connection_once),
	  UNIT_CASE(records_read_out_of_order_are_taken_in_order),
	  UNIT_CASE(a_ring_s_worth_of_records_waits_for_the_one_before_them),
	  UNIT_CASE(records_held_back_are_bounded),
	  UNIT_CASE(a_connection_s_late_records_outlive_the_next_one_s_first),
	  UNIT_CASE(garbage_blocks_lose_the_connection),
	  UNIT_CASE(an_empty_header_block_is_no_request),
	  UNIT_CASE(padding_longer_than_its_frame_loses_the_connection),
	  UNIT_CASE(long_heads_are_cut_like_http1_captures),
	  UNIT_CASE(a_response_before_its_request_waits_for_it),
	  UNIT_CASE(pushed_streams_are_requests_promised_by_the_server),
	  UNIT_CASE(sweep_forgets_closed_connections),
	  UNIT_CASE(connections_beyond_the_limit_are_lost),
	  UNIT_CASE(too_many_waiting_streams_forget_the_oldest),
	  UNIT_CASE(a_grpc_call_ends_at_its_trailers),
	  UNIT_CASE(a_grpc_status_comes_from_a_lone_head_or_its_http_status),
	  UNIT_CASE(a_reset_ends_a_grpc_call_with_the_status_it_stands_for),
	  UNIT_CASE(a_cancel_at_the_deadline_is_deadline_exceeded),
	  UNIT_CASE(a_grpc_response_before_its_request_waits_for_it),
	  UNIT_CASE(only_application_grpc_makes_a_call),
	  UNIT_CASE(waiting_grpc_calls_make_room_quietly))
