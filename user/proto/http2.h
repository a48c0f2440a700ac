/* HTTP/2 exchanges (RFC 9113) from the pieces of header blocks the BPF
 * side sends (struct sonde_h2_event): the protocol proto_http2.
 *
 * Per connection, the pieces are put back together into header blocks
 * and decoded with HPACK (RFC 7541: libnghttp2's decoder, one per
 * direction, since each direction has its own dynamic table). A
 * request's HEADERS (or a server's PUSH_PROMISE) opens its stream; the
 * stream's final response HEADERS (not 1xx) closes it, and the pair is
 * handed back as a struct http_exchange (proto/http.h): method, target
 * (:path), the request's fields with :authority as "host", status and
 * times, labelled by the same code as HTTP/1's.
 *
 * A gRPC call (a request whose content-type is application/grpc) closes
 * at the end of its response instead: the trailers, a head that ends the
 * stream, or a RST_STREAM. Its status (grpc-status, or what the HTTP
 * status or the reset stands for: see grpc.h) comes with the record.
 *
 * Used from the one thread that reads the ring buffers. */
#ifndef SONDE_HTTP2_H
#define SONDE_HTTP2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/http.h"
#include "proto/proto.h"
#include "sonde_events.h"

/* Connections followed at once; one beyond is not measured (counted as
 * lost). Streams waiting for their other half, per connection: the
 * oldest is forgotten to make room (a stream the peer dropped without a
 * RST_STREAM sonde saw); a response that waited for its request in vain
 * is then counted as HTTP2_NO_REQUEST. */
#define HTTP2_MAX_CONNS 1024
#define HTTP2_MAX_PENDING 256
/* A header block longer than this loses its connection. */
#define HTTP2_MAX_BLOCK 65536
/* Bytes of records held back, all connections together: records come
 * before one they follow (read from another CPU's ring first). A thread
 * that moved CPUs may have filled most of one ring before the daemon
 * reads the other, and a record is held for at most two rounds of
 * reading: twice what the CPU rings hold together (8 MiB at most) is
 * never reached while nothing is missing. The record that would pass it
 * loses its connection. */
#define HTTP2_HELD_BYTES (16u << 20)

enum http2_result {
	HTTP2_NOTHING = 0, /* taken in; no exchange finished */
	HTTP2_EXCHANGE,	   /* *out holds a finished exchange */
	/* The connection's header blocks cannot be decoded from here on (a
	 * record missing, a block that does not decode, no room): its
	 * requests are not measured. Returned once per connection. */
	HTTP2_LOST,
	/* A response whose request never came was forgotten. */
	HTTP2_NO_REQUEST,
};

/* Takes in one record, size bytes long. On HTTP2_EXCHANGE, *out is the
 * exchange, its grpc_status the gRPC call's status (0 to 16) or -1 when
 * it is not a gRPC call; its pointers stay valid until the next call. A
 * record that comes before one it follows (its seq is ahead of its
 * direction's) is held back until that one has come: HTTP2_NOTHING. */
enum http2_result http2_handle(const struct sonde_h2_event *ev, size_t size,
			       struct http_exchange *out);

/* A record held back whose turn has come, to be handed to http2_handle
 * now; NULL when none. Valid until the next call; *size is its length.
 * Call after each http2_handle until NULL. */
const struct sonde_h2_event *http2_ready(size_t *size);

/* After each round of reading every ring: gives up the connections that
 * have held a record back for HELD_ROUNDS rounds (the one it waits for
 * was lost). Returns how many (each is an HTTP2_LOST). */
unsigned http2_end_round(void);

/* Forgets the connections open() says are closed. */
void http2_sweep(proto_open_fn open);

/* Connections followed now. */
size_t http2_connections(void);

/* Forgets every connection. */
void http2_clear(void);

#endif
