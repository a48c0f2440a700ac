/* gRPC over HTTP/2: what a call's status and method are, as the gRPC
 * project specifies them.
 *   status codes:   https://grpc.github.io/grpc/core/md_doc_statuscodes.html
 *   wire protocol:  https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
 *   HTTP status:    https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
 * Pure functions: no state, usable from any thread. */
#ifndef SONDE_GRPC_H
#define SONDE_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_OK 0
#define GRPC_CANCELLED 1
#define GRPC_DEADLINE_EXCEEDED 4
#define GRPC_UNKNOWN 2
#define GRPC_MAX_CODE 16 /* UNAUTHENTICATED, the last one defined */

/* Whether a content-type value names gRPC: "application/grpc", alone or
 * followed by "+proto", "+json" (any "+…") or parameters (";…"). The
 * browser variant (application/grpc-web) is not: it carries its status in
 * the body. */
bool grpc_content_type(const uint8_t *v, size_t len);

/* The code in a grpc-status value: decimal digits for 0 to 16. Anything
 * else is GRPC_UNKNOWN, as a client would take it. */
int grpc_status_parse(const uint8_t *v, size_t len);

/* The deadline a grpc-timeout value gives, in ns: 1 to 8 digits and a
 * unit (H, M, S, m, u, n). 0 when malformed; the largest (99999999H)
 * saturates. */
uint64_t grpc_timeout_parse(const uint8_t *v, size_t len);

/* Whether a call reset elapsed_ns after its request ran out of its
 * timeout_ns (0: none): its deadline passed, which gRPC reports as
 * DEADLINE_EXCEEDED rather than CANCELLED. The clock that ran out started
 * before this side saw the request: the client computed the timeout a
 * little before sending it, and a server reads it later still (tens of ms
 * on a busy host). So a reset in the last quarter of the timeout counts. */
bool grpc_deadline_passed(uint64_t timeout_ns, uint64_t elapsed_ns);

/* The status of a call that ended without grpc-status, from the HTTP
 * status of its response (a proxy's 503, say): 400 INTERNAL,
 * 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED,
 * 429/502/503/504 UNAVAILABLE, anything else UNKNOWN. */
int grpc_status_from_http(int http_status);

/* The status of a call whose stream was reset, from the RST_STREAM error
 * code (RFC 9113 section 7): REFUSED_STREAM is UNAVAILABLE, CANCEL is
 * CANCELLED, ENHANCE_YOUR_CALM RESOURCE_EXHAUSTED, INADEQUATE_SECURITY
 * PERMISSION_DENIED, every other code INTERNAL. */
int grpc_status_from_reset(uint32_t error_code);

/* The name of a status code ("OK", "NOT_FOUND"); "UNKNOWN" for a code
 * outside 0..16. Static storage. */
const char *grpc_status_name(int code);

/* Writes the method label for a request's :path ("/pkg.Service/Method")
 * into out: "pkg.Service/Method", without the leading slash. Returns its
 * length, or 0 (and out is untouched) when the path is not two non-empty
 * names of letters, digits, '_', '.' and '-' that fit in outsz - 1 bytes:
 * the caller files the call under METHOD_OTHER (registry.h). */
size_t grpc_method(const char *path, size_t len, char *out, size_t outsz);

#endif
