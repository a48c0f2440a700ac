/* Route templates: a request-target reduced to a label of bounded
 * cardinality. Only the path is kept (RFC 9112 section 3.2 for the target
 * forms, RFC 3986 section 3.3 for segments); segments that name one object
 * become placeholders, in the order route.h lists them.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "metrics/route.h"

/* Appended to a template cut at a segment boundary. */
#define ROUTE_CUT "/..."
#define ROUTE_CUT_LEN (sizeof(ROUTE_CUT) - 1)

/* The shapes route.h documents; a UUID is 32 hex digits and 4 hyphens,
 * "550e8400-e29b-41d4-a716-446655440000". */
#define ROUTE_UUID_LEN 36
#define ROUTE_HEX_MIN 8
#define ROUTE_TOKEN_MIN 20
#define ROUTE_MIXED_TOKEN_MIN 12

static bool route_is_visible(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

static bool route_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool route_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool route_is_hex(char c)
{
	return route_is_digit(c) || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* What a segment is made of, from one pass over it. */
struct route_shape {
	bool all_digits, all_hex, has_digit, has_alpha;
};

static struct route_shape route_shape_of(const char *s, size_t n)
{
	struct route_shape sh = { true, true, false, false };

	for (size_t i = 0; i < n; i++) {
		bool digit = route_is_digit(s[i]);

		sh.all_digits &= digit;
		sh.all_hex &= route_is_hex(s[i]);
		sh.has_digit |= digit;
		sh.has_alpha |= route_is_alpha(s[i]);
	}
	return sh;
}

/* "550e8400-e29b-41d4-a716-446655440000", any case: hyphens at 8, 13, 18
 * and 23, hex digits everywhere else. */
static bool route_segment_is_uuid(const char *s, size_t n)
{
	if (n != ROUTE_UUID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool hyphen_here = i == 8 || i == 13 || i == 18 || i == 23;

		if (hyphen_here ? s[i] != '-' : !route_is_hex(s[i]))
			return false;
	}
	return true;
}

/* The placeholder a segment is written as, or NULL to keep it:
 *   {id}     all digits: "42", "0017"
 *   {uuid}   a UUID
 *   {hex}    at least 8 hex digits, one of them 0-9, so that words spelt
 *            in hex letters ("deadbeef", "acceded") stay: "9f86d081884c"
 *   {token}  session ids, API keys, slugs ending in an id: anything of
 *            20 or more characters, or of 12 or more that mixes letters
 *            and digits ("Xk9vQ2a7LmP0", "order_2024_05_17_aaaa") */
static const char *route_placeholder(const char *s, size_t n)
{
	struct route_shape sh = route_shape_of(s, n);

	if (n > 0 && sh.all_digits)
		return "{id}";
	if (route_segment_is_uuid(s, n))
		return "{uuid}";
	if (n >= ROUTE_HEX_MIN && sh.all_hex && sh.has_digit)
		return "{hex}";
	if (n >= ROUTE_TOKEN_MIN ||
	    (n >= ROUTE_MIXED_TOKEN_MIN && sh.has_digit && sh.has_alpha))
		return "{token}";
	return NULL;
}

/* Case-insensitive prefix, for URI schemes (RFC 3986 section 3.1):
 * "HTTP://h/" starts with "http://". */
static bool route_has_prefix_nocase(const char *s, size_t n, const char *lower)
{
	size_t k = strlen(lower);

	return n >= k && strncasecmp(s, lower, k) == 0;
}

/* Where the path of an origin-form or absolute-form target is:
 *   "/users/42?x=1"       -> "/users/42"
 *   "http://h:8080/x/7#f" -> "/x/7"
 *   "HTTPS://h?q"         -> "" (the root)
 * Returns false for "*", "example.com:443", "http:///x", "ftp://h/x" and
 * for bytes outside visible ASCII before the query. */
static bool route_find_path(const char *t, size_t n, const char **path,
			    size_t *path_len)
{
	size_t stop = 0, start, authority;

	while (stop < n && t[stop] != '?' && t[stop] != '#')
		stop++;
	for (size_t i = 0; i < stop; i++) {
		if (!route_is_visible((unsigned char)t[i]))
			return false;
	}

	if (stop > 0 && t[0] == '/') {
		*path = t;
		*path_len = stop;
		return true;
	}

	if (route_has_prefix_nocase(t, stop, "http://"))
		authority = strlen("http://");
	else if (route_has_prefix_nocase(t, stop, "https://"))
		authority = strlen("https://");
	else
		return false;
	start = authority;
	while (start < stop && t[start] != '/')
		start++;
	/* RFC 9110 section 4.2.1: an http URI with an empty host is invalid. */
	if (start == authority)
		return false;

	*path = t + start;
	*path_len = stop - start;
	return true;
}

/* Next non-empty segment of path[*pos..len): empty ones, from "//" or a
 * trailing "/", are skipped. Returns false when none is left. */
static bool route_next_segment(const char *path, size_t len, size_t *pos,
			       const char **seg, size_t *seg_len)
{
	size_t i = *pos, start;

	while (i < len && path[i] == '/')
		i++;
	if (i == len)
		return false;
	start = i;
	while (i < len && path[i] != '/')
		i++;
	*seg = path + start;
	*seg_len = i - start;
	*pos = i;
	return true;
}

/* What a segment is written as: its placeholder or the segment itself. */
static void route_segment_text(const char *seg, size_t seg_len,
			       const char **text, size_t *text_len)
{
	const char *placeholder = route_placeholder(seg, seg_len);

	*text = placeholder ? placeholder : seg;
	*text_len = placeholder ? strlen(placeholder) : seg_len;
}

size_t route_template(const char *target, size_t len, char *out, size_t outsz)
{
	const char *path, *seg, *text;
	size_t path_len, pos = 0, seg_len, text_len, n = 0, kept = 0;
	bool cut = false;

	if (!out || outsz == 0)
		return 0;
	out[0] = '\0';
	if (!target || outsz < ROUTE_MAX + 1)
		return 0;
	if (!route_find_path(target, len, &path, &path_len))
		return 0;

	/* A template that does not fit keeps whole segments and leaves room
	 * for "/..." after them: one pass writes up to ROUTE_MAX bytes,
	 * noting where the last segment that leaves that room ends. */
	while (route_next_segment(path, path_len, &pos, &seg, &seg_len)) {
		route_segment_text(seg, seg_len, &text, &text_len);
		if (n + 1 + text_len > ROUTE_MAX) {
			cut = true;
			break;
		}
		out[n++] = '/';
		memcpy(out + n, text, text_len);
		n += text_len;
		if (n <= ROUTE_MAX - ROUTE_CUT_LEN)
			kept = n;
	}
	if (cut) {
		memcpy(out + kept, ROUTE_CUT, ROUTE_CUT_LEN);
		n = kept + ROUTE_CUT_LEN;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return n;
}
