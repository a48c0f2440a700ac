/* Route templates: turn a request-target into a bounded-cardinality label.
 * The query string and fragment are dropped; path segments that identify
 * one object rather than a kind of object become placeholders:
 *   all digits                     -> {id}      /users/42
 *   UUID 8-4-4-4-12 hex            -> {uuid}
 *   >= 8 hex digits with a digit   -> {hex}     /blobs/9f86d081884c
 *   long token (>= 20 chars, or >= 12 chars mixing letters and digits)
 *                                  -> {token}
 * Absolute-form targets ("http://host/p") are reduced to their path. */
#ifndef SONDE_ROUTE_H
#define SONDE_ROUTE_H

#include <stddef.h>

/* Longest template written, without the terminating NUL; longer paths are
 * cut at a segment boundary and end in "/…" ("/..." in ASCII). */
#define ROUTE_MAX 96

/* Writes the template for target[0..len) into out (NUL-terminated, at most
 * outsz bytes, outsz >= ROUTE_MAX + 1). Returns the template length, or 0
 * when the target is not usable as a route: empty, not origin-form or
 * absolute-form ("*" and authority-form included), or holding bytes outside
 * visible ASCII. The caller reports such requests under a fixed route. */
size_t route_template(const char *target, size_t len, char *out, size_t outsz);

#endif
