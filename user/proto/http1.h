/* HTTP/1.0 and HTTP/1.1 exchanges (RFC 9112): the protocol proto_http1
 * reads exchange records (struct sonde_http_event) with the parsers
 * below, which read the heads of a request and of a response from the
 * first bytes the BPF side captured. The parsers are pure functions over
 * caller-owned buffers: nothing is allocated, nothing is kept, and any
 * byte sequence is safe input. */
#ifndef SONDE_HTTP1_H
#define SONDE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/http.h"

struct http1_request {
	enum http_method method;
	/* The request-target as sent, pointing into the caller's buffer; it
	 * may be cut short when the capture ended inside the request line
	 * (target_complete is then 0). */
	const char *target;
	size_t target_len;
	int target_complete;
};

/* Parses the idx-th request head (0 = first) of possibly pipelined requests
 * in buf[0..len). Heads before idx must be complete; their bodies are
 * skipped using Content-Length (a chunked or unknown-length body ends the
 * walk). Returns 0 and fills *out when the idx-th request line was found
 * (the method token and at least part of the target), -1 otherwise. */
int http1_parse_request(const char *buf, size_t len, unsigned idx,
			struct http1_request *out);

/* True when buf[0..len), taken as every request byte read, proves there
 * is no idx-th request (0 = first): the requests in it are all whole and
 * fewer than idx + 1. False when there is one, or when a head cut short
 * or a body of unknown length leaves it open. */
bool http1_requests_end_before(const char *buf, size_t len, unsigned idx);

/* Finds the field called name (any case) in the idx-th request head in
 * buf[0..len) and points *value at its value, surrounding whitespace
 * trimmed. Returns 0, or -1 when the head has no such complete field line
 * within the capture. */
int http1_find_header(const char *buf, size_t len, unsigned idx,
		      const char *name, const char **value, size_t *value_len);

/* Returns the status code (100..599) of the final response in buf[0..len),
 * skipping complete 1xx interim heads (100, 102, 103) that precede it; 101
 * is final. Returns -1 when buf does not start with a valid status line
 * ("HTTP/1.x NNN"), or holds only interim heads. */
int http1_parse_status(const char *buf, size_t len);

#endif
