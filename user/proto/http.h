/* HTTP semantics (RFC 9110) that HTTP/1 and HTTP/2 share: the methods, a
 * request's field lines, and an exchange, whatever its wire format,
 * labelled into the HTTP families or, for a gRPC call, the RPC ones.
 * http1.c and http2.c read their records into a struct http_exchange;
 * http_observe() turns it into the observation the dispatcher files. */
#ifndef SONDE_HTTP_H
#define SONDE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* The methods OpenTelemetry's semantic conventions know; anything else is
 * HTTP_METHOD_OTHER and is reported as "_OTHER". */
enum http_method {
	HTTP_METHOD_OTHER = 0,
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_POST,
	HTTP_METHOD_PUT,
	HTTP_METHOD_DELETE,
	HTTP_METHOD_CONNECT,
	HTTP_METHOD_OPTIONS,
	HTTP_METHOD_TRACE,
	HTTP_METHOD_PATCH,
	HTTP_METHOD_COUNT,
};

/* One exchange (or gRPC call) as its protocol read it. The pointers are
 * the protocol's, valid until its next record. */
struct http_exchange {
	uint8_t role; /* SONDE_ROLE_SERVER or _CLIENT: the traced side */
	enum http_method method;
	/* The request-target (HTTP/2: :path, :authority for CONNECT); NULL
	 * when the request is not known. The capture may have cut it short:
	 * target_complete is then false. */
	const char *target;
	size_t target_len;
	bool target_complete;
	/* The request's field lines, "name: value\r\n", as far as they
	 * were captured (HTTP/2: :authority first, as "host"). */
	const char *fields;
	size_t fields_len;
	/* The captured headers' label values (labels_fill_headers), when
	 * the protocol has them already; NULL: looked up in fields. */
	const char *const *headers;
	int status;	 /* the final response's code, 100 to 599 */
	int grpc_status; /* the call's gRPC status, 0 to 16; -1: not gRPC */
	uint64_t start_ns, end_ns;
	uint32_t tid;	       /* the thread that ended it; 0: unknown */
	uint32_t fd;	       /* the connection's, in its process */
	uint16_t sport, dport; /* local and peer port */
	uint16_t family;       /* AF_INET or AF_INET6 */
	const uint8_t *daddr;  /* the peer's address, 16 bytes */
};

/* Upper-case name of a method ("GET", ..., "_OTHER"). Never NULL. */
const char *http_method_name(enum http_method m);

/* The method a token names, case-sensitively (RFC 9110 section 9.1):
 * "GET" is GET, "get" and "BREW" are HTTP_METHOD_OTHER. */
enum http_method http_method_parse(const char *tok, size_t n);

/* Finds the field called name (any case) among the field lines
 * fields[0..len) and points *value at its value, surrounding whitespace
 * trimmed. The search ends at an empty line (the head's end). Returns 0,
 * or -1 when no complete line (one the capture did not cut) has it. */
int http_find_field(const char *fields, size_t len, const char *name,
		    const char **value, size_t *value_len);

/* Fills obs[0] with x's observation: its duration in the HTTP server or
 * client family, or, for a gRPC call, the RPC one, and, when obs->span
 * wants it, what its span needs (x->fields are searched for the trace
 * context). Returns 1. */
unsigned http_observe(const struct http_exchange *x, struct proto_obs *obs);

#endif
