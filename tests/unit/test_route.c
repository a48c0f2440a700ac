/* Unit tests for user/route.c: target forms, slashes, every placeholder
 * rule, cuts at ROUTE_MAX, and a fixed-seed fuzz loop that checks only
 * invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/route.h"
#include "unit.h"

static char out[ROUTE_MAX + 1];

/* Template of a NUL-free string, or "" when there is none. */
static const char *tmpl(const char *target)
{
	memset(out, 'Z', sizeof(out));
	if (route_template(target, strlen(target), out, sizeof(out)) == 0)
		return "";
	return out;
}

static size_t tmpl_len(const char *target)
{
	return route_template(target, strlen(target), out, sizeof(out));
}

/* ---- target forms ---- */

TEST(origin_form_root)
{
	CHECK_STR(tmpl("/"), "/");
	CHECK(tmpl_len("/") == 1);
}

TEST(brief_examples)
{
	CHECK_STR(tmpl("/users/42?x=1"), "/users/{id}");
	CHECK_STR(tmpl("/"), "/");
	CHECK_STR(tmpl("/a/550e8400-e29b-41d4-a716-446655440000/b"),
		  "/a/{uuid}/b");
	CHECK_STR(tmpl("/blobs/9f86d081884c"), "/blobs/{hex}");
	CHECK_STR(tmpl("/deadbeef"), "/deadbeef");
	CHECK_STR(tmpl("http://h:8080/x/7"), "/x/{id}");
	CHECK(tmpl_len("*") == 0);
	CHECK(tmpl_len("example.com:443") == 0);
	CHECK(tmpl_len("") == 0);
}

TEST(hex_letters_and_digits_are_hex_before_token)
{
	/* "abc123def456" is 12 hex digits with a digit: the {hex} rule comes
	 * before the {token} rule in route.h, as for "9f86d081884c". */
	CHECK_STR(tmpl("/t/abc123def456"), "/t/{hex}");
	CHECK_STR(tmpl("/t/abc123xyz456"), "/t/{token}");
}

TEST(query_and_fragment_dropped)
{
	CHECK_STR(tmpl("/search?q=a/b/c"), "/search");
	CHECK_STR(tmpl("/page#section/2"), "/page");
	CHECK_STR(tmpl("/a#frag?x"), "/a");
	CHECK_STR(tmpl("/?x=1"), "/");
	CHECK_STR(tmpl("/#top"), "/");
	CHECK_STR(tmpl("/a?"), "/a");
}

TEST(absolute_form)
{
	CHECK_STR(tmpl("http://example.com/users/42"), "/users/{id}");
	CHECK_STR(tmpl("https://example.com/a/b"), "/a/b");
	CHECK_STR(tmpl("HTTP://EXAMPLE.COM/A"), "/A");
	CHECK_STR(tmpl("hTtPs://h/x"), "/x");
	CHECK_STR(tmpl("http://user@h:80/x"), "/x");
	CHECK_STR(tmpl("http://[::1]:8080/x"), "/x");
}

TEST(absolute_form_without_path)
{
	CHECK_STR(tmpl("http://example.com"), "/");
	CHECK_STR(tmpl("https://h:8443"), "/");
	CHECK_STR(tmpl("http://h?x=/a/b"), "/");
	CHECK_STR(tmpl("http://h#/a"), "/");
	CHECK_STR(tmpl("http://h/"), "/");
}

TEST(absolute_form_invalid)
{
	CHECK(tmpl_len("http:///x") == 0);
	CHECK(tmpl_len("http://") == 0);
	CHECK(tmpl_len("https://?x") == 0);
	CHECK(tmpl_len("http:/x") == 0);
	CHECK(tmpl_len("http:x") == 0);
	CHECK(tmpl_len("ftp://h/x") == 0);
	CHECK(tmpl_len("httpx://h/x") == 0);
	CHECK(tmpl_len("ws://h/x") == 0);
	CHECK(tmpl_len("http") == 0);
}

TEST(other_forms_rejected)
{
	CHECK(tmpl_len("*") == 0);
	CHECK(tmpl_len("example.com:443") == 0);
	CHECK(tmpl_len("users/42") == 0);
	CHECK(tmpl_len("?x=1") == 0);
	CHECK(tmpl_len("#x") == 0);
	CHECK(tmpl_len(".") == 0);
}

/* ---- slashes ---- */

TEST(repeated_slashes_collapse)
{
	CHECK_STR(tmpl("//a///b//c"), "/a/b/c");
	CHECK_STR(tmpl("//"), "/");
	CHECK_STR(tmpl("/////"), "/");
	CHECK_STR(tmpl("http://h//a//b"), "/a/b");
}

TEST(trailing_slash_dropped)
{
	CHECK_STR(tmpl("/a/"), "/a");
	CHECK_STR(tmpl("/a/b/"), "/a/b");
	CHECK_STR(tmpl("/a//"), "/a");
	CHECK_STR(tmpl("/users/42/"), "/users/{id}");
	CHECK_STR(tmpl("/a/?x"), "/a");
}

/* ---- placeholders ---- */

TEST(id_all_digits)
{
	CHECK_STR(tmpl("/users/42"), "/users/{id}");
	CHECK_STR(tmpl("/users/0"), "/users/{id}");
	CHECK_STR(tmpl("/users/0017/orders/9"), "/users/{id}/orders/{id}");
	CHECK_STR(tmpl("/1234567"), "/{id}");
	/* Long numbers stay ids, not hex or tokens. */
	CHECK_STR(tmpl("/n/12345678901234567890123"), "/n/{id}");
}

TEST(id_needs_only_digits)
{
	CHECK_STR(tmpl("/v1"), "/v1");
	CHECK_STR(tmpl("/42a"), "/42a");
	CHECK_STR(tmpl("/-42"), "/-42");
	CHECK_STR(tmpl("/4.2"), "/4.2");
	CHECK_STR(tmpl("/page/1,2"), "/page/1,2");
}

TEST(uuid_any_case)
{
	CHECK_STR(tmpl("/u/550e8400-e29b-41d4-a716-446655440000"), "/u/{uuid}");
	CHECK_STR(tmpl("/u/550E8400-E29B-41D4-A716-446655440000"), "/u/{uuid}");
	CHECK_STR(tmpl("/u/550e8400-E29B-41d4-A716-446655440000"), "/u/{uuid}");
	CHECK_STR(tmpl("/00000000-0000-0000-0000-000000000000"), "/{uuid}");
}

TEST(uuid_shape_is_exact)
{
	/* Not a UUID, but long enough to be a token. */
	CHECK_STR(tmpl("/u/550e8400e29b-41d4-a716-446655440000-"),
		  "/u/{token}");
	CHECK_STR(tmpl("/u/550e8400-e29b-41d4-a716-44665544000g"),
		  "/u/{token}");
	CHECK_STR(tmpl("/u/550e8400-e29b-41d4-a716-4466554400000"),
		  "/u/{token}");
	CHECK_STR(tmpl("/u/{550e8400-e29b-41d4-a716-446655440000}"),
		  "/u/{token}");
	/* Without hyphens it is plain hex. */
	CHECK_STR(tmpl("/u/550e8400e29b41d4a716446655440000"), "/u/{hex}");
}

TEST(hex_needs_eight_and_a_digit)
{
	CHECK_STR(tmpl("/blobs/9f86d081884c"), "/blobs/{hex}");
	CHECK_STR(tmpl("/0123abcd"), "/{hex}");
	CHECK_STR(tmpl("/DEADBEEF01"), "/{hex}");
	CHECK_STR(tmpl("/commit/da39a3ee5e6b4b0d3255bfef95601890afd80709"),
		  "/commit/{hex}");
	CHECK_STR(tmpl("/abc1234"), "/abc1234");
	CHECK_STR(tmpl("/deadbeef"), "/deadbeef");
	CHECK_STR(tmpl("/acceded"), "/acceded");
	CHECK_STR(tmpl("/facadebeef"), "/facadebeef");
	CHECK_STR(tmpl("/0x1234abcd"), "/0x1234abcd");
}

TEST(token_long_or_mixed)
{
	CHECK_STR(tmpl("/s/Xk9vQ2a7LmP0"), "/s/{token}");
	CHECK_STR(tmpl("/s/abcdefghijk1"), "/s/{token}");
	CHECK_STR(tmpl("/s/1abcdefghijk"), "/s/{token}");
	CHECK_STR(tmpl("/s/order_2024_05_17_x"), "/s/{token}");
	CHECK_STR(tmpl("/s/aaaaaaaaaaaaaaaaaaaa"), "/s/{token}");
	CHECK_STR(tmpl("/s/--------------------"), "/s/{token}");
}

TEST(token_thresholds)
{
	/* 11 characters mixing letters and digits: kept. */
	CHECK_STR(tmpl("/s/abcdefghij1"), "/s/abcdefghij1");
	CHECK_STR(tmpl("/s/abcdefghi1"), "/s/abcdefghi1");
	/* 12 or more without a digit, or without a letter: kept. */
	CHECK_STR(tmpl("/s/abcdefghijkl"), "/s/abcdefghijkl");
	CHECK_STR(tmpl("/s/organisations"), "/s/organisations");
	CHECK_STR(tmpl("/s/12-34-56-78-90"), "/s/12-34-56-78-90");
	/* 19 characters of a word: kept; 20: a token. */
	CHECK_STR(tmpl("/s/abcdefghijklmnopqrs"), "/s/abcdefghijklmnopqrs");
	CHECK_STR(tmpl("/s/abcdefghijklmnopqrst"), "/s/{token}");
}

TEST(placeholders_in_every_position)
{
	CHECK_STR(tmpl("/42/a/42"), "/{id}/a/{id}");
	CHECK_STR(tmpl("/9f86d081884c/550e8400-e29b-41d4-a716-446655440000/"
		       "abc123xyz456/7"),
		  "/{hex}/{uuid}/{token}/{id}");
}

TEST(words_kept)
{
	CHECK_STR(tmpl("/api/v2/users/me/settings"),
		  "/api/v2/users/me/settings");
	CHECK_STR(tmpl("/static/app.min.js"), "/static/app.min.js");
	CHECK_STR(tmpl("/a/./b/../c"), "/a/./b/../c");
	CHECK_STR(tmpl("/~user/"), "/~user");
	CHECK_STR(tmpl("/{id}"), "/{id}");
}

/* ---- bytes ---- */

TEST(percent_encoding_kept)
{
	CHECK_STR(tmpl("/files/a%20b"), "/files/a%20b");
	CHECK_STR(tmpl("/caf%C3%A9"), "/caf%C3%A9");
	CHECK_STR(tmpl("/%2F%2F"), "/%2F%2F");
}

TEST(invisible_bytes_rejected)
{
	static const char nul[] = "/a\0b";
	static const char nul_lead[] = "\0/a";

	CHECK(tmpl_len("/a b") == 0);
	CHECK(tmpl_len("/a\tb") == 0);
	CHECK(tmpl_len("/a\r") == 0);
	CHECK(tmpl_len("/a\x7f") == 0);
	CHECK(tmpl_len("/caf\xc3\xa9") == 0);
	CHECK(tmpl_len("/\x80") == 0);
	CHECK(tmpl_len("http://h\x01/a") == 0);
	CHECK(route_template(nul, sizeof(nul) - 1, out, sizeof(out)) == 0);
	CHECK(route_template(nul_lead, sizeof(nul_lead) - 1, out,
			     sizeof(out)) == 0);
	CHECK(out[0] == '\0');
}

TEST(invisible_bytes_after_path_ignored)
{
	/* The query and fragment are dropped, so their bytes do not matter. */
	CHECK_STR(tmpl("/a?x=\xff"), "/a");
	CHECK_STR(tmpl("/a#\x01"), "/a");
}

TEST(every_visible_byte_kept)
{
	/* All of 0x21..0x7e but '/', '?' and '#', in segments too short to be
	 * anything but themselves. */
	static const char *const targets[] = {
		"/!\"$%&'()/*+,-.:;/<=>@[\\]/^_`{|}~",
		"/0a9z/1a2b3c4/5g6h7i8/AZ/bcdefgh/ijklmno/pqrstuv/wxy"
		"/BCDEFGH/IJKLMNO/PQRSTUV/WXY",
	};

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		CHECK_STR(tmpl(targets[i]), targets[i]);
}

TEST(len_is_honoured)
{
	char got[ROUTE_MAX + 1];

	CHECK(route_template("/users/42", 6, got, sizeof(got)) == 6);
	CHECK_STR(got, "/users");
	CHECK(route_template("/users/42", 1, got, sizeof(got)) == 1);
	CHECK_STR(got, "/");
	CHECK(route_template("/users/42", 0, got, sizeof(got)) == 0);
	CHECK_STR(got, "");
}

TEST(bad_arguments)
{
	char small[ROUTE_MAX];
	char one[1] = { 'x' };

	CHECK(route_template(NULL, 0, out, sizeof(out)) == 0);
	CHECK(route_template(NULL, 5, out, sizeof(out)) == 0);
	CHECK(route_template("/a", 2, NULL, 0) == 0);
	CHECK(route_template("/a", 2, out, 0) == 0);
	/* Too small for the contract: nothing but an empty string. */
	memset(small, 'x', sizeof(small));
	CHECK(route_template("/a", 2, small, sizeof(small)) == 0);
	CHECK(small[0] == '\0' && small[1] == 'x');
	CHECK(route_template("/a", 2, one, sizeof(one)) == 0);
	CHECK(one[0] == '\0');
}

TEST(failure_writes_empty_string)
{
	memset(out, 'Z', sizeof(out));
	CHECK(route_template("*", 1, out, sizeof(out)) == 0);
	CHECK(out[0] == '\0');
}

/* ---- cuts ---- */

/* "/" followed by n copies of seg joined by "/". */
static void repeat_segments(char *buf, size_t bufsz, const char *seg, int n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && len + strlen(seg) + 2 < bufsz; i++) {
		buf[len++] = '/';
		memcpy(buf + len, seg, strlen(seg));
		len += strlen(seg);
	}
	buf[len] = '\0';
}

TEST(exactly_route_max_fits)
{
	char target[256];

	/* 24 segments "/abc" are 96 characters. */
	repeat_segments(target, sizeof(target), "abc", 24);
	CHECK(strlen(target) == ROUTE_MAX);
	CHECK(tmpl_len(target) == ROUTE_MAX);
	CHECK_STR(out, target);
}

TEST(one_past_route_max_is_cut)
{
	char target[256], want[256];

	/* 24 segments of 4 plus "/x": 98 characters. */
	repeat_segments(target, sizeof(target), "abc", 24);
	strcat(target, "/x");
	/* 23 segments fit with "/..." after them: 92 + 4. */
	repeat_segments(want, sizeof(want), "abc", 23);
	strcat(want, "/...");
	CHECK_STR(tmpl(target), want);
	CHECK(strlen(out) == ROUTE_MAX);
}

TEST(long_route_cut_at_segment_boundary)
{
	char target[512], want[256];

	/* Segments of 7: "/segment" is 8 characters; 11 of them (88) leave
	 * room for "/..." (92), a 12th would not (96 + 4). */
	repeat_segments(target, sizeof(target), "segment", 40);
	repeat_segments(want, sizeof(want), "segment", 11);
	strcat(want, "/...");
	CHECK_STR(tmpl(target), want);
	CHECK(strlen(out) <= ROUTE_MAX);
}

TEST(cut_counts_placeholders_not_raw_segments)
{
	char target[1024];

	/* 20 uuids are 740 raw characters but "/{uuid}" is 7: 140. */
	repeat_segments(target, sizeof(target),
			"550e8400-e29b-41d4-a716-446655440000", 20);
	CHECK(tmpl_len(target) == 13 * 7 + 4);
	CHECK(strcmp(out + strlen(out) - 4, "/...") == 0);
	CHECK(strncmp(out, "/{uuid}/{uuid}", 14) == 0);

	/* 13 of them are 91 characters: no cut. */
	repeat_segments(target, sizeof(target),
			"550e8400-e29b-41d4-a716-446655440000", 13);
	CHECK(tmpl_len(target) == 91);
	CHECK(strstr(out, "...") == NULL);
}

TEST(cut_long_target_of_mixed_segments)
{
	/* A 250-byte path, as a full request capture could hold. */
	char target[251];
	size_t n;

	memset(target, 0, sizeof(target));
	for (size_t i = 0; i < sizeof(target) - 1; i++)
		target[i] = i % 10 == 0 ? '/' : (char)('a' + i % 10);
	n = tmpl_len(target);
	CHECK(n > 0 && n <= ROUTE_MAX);
	CHECK(strlen(out) == n);
	CHECK(strcmp(out + n - 4, "/...") == 0);
	/* Whatever precedes "/..." is whole segments of the target. */
	CHECK(strncmp(out, target, n - 4) == 0);
	CHECK(target[n - 4] == '/');
}

TEST(cut_of_absolute_form)
{
	char target[512], want[256];

	strcpy(target, "http://example.com");
	repeat_segments(target + strlen(target),
			sizeof(target) - strlen(target), "segment", 40);
	repeat_segments(want, sizeof(want), "segment", 11);
	strcat(want, "/...");
	CHECK_STR(tmpl(target), want);
}

TEST(output_never_past_outsz)
{
	char target[512];
	char buf[ROUTE_MAX + 1 + 16];

	repeat_segments(target, sizeof(target), "segment", 40);
	memset(buf, 'Q', sizeof(buf));
	CHECK(route_template(target, strlen(target), buf, ROUTE_MAX + 1) <=
	      ROUTE_MAX);
	for (size_t i = ROUTE_MAX + 1; i < sizeof(buf); i++)
		CHECK(buf[i] == 'Q');
}

/* ---- fuzz ---- */

static uint32_t fuzz_state = 0x7e57c0de;

static uint32_t fuzz_next(void)
{
	return unit_xorshift32(&fuzz_state);
}

/* Pieces of targets, so that random buffers reach every rule. */
static const char *const fuzz_pieces[] = {
	"/",	     "//",  "/users", "42",	  "0",
	"?",	     "#",   "?q=1",   "http://",  "HTTPS://",
	"h:8080",    "*",   "%20",    "deadbeef", "9f86d081884c",
	"abc123xyz", "-",   "e29b",   "550e8400", "aaaaaaaaaaaaaaaaaaaa",
	"{id}",	     "...", ".",      " ",	  "\t",
};

static void fuzz_fill(char *buf, size_t len)
{
	size_t n = 0;
	const size_t pieces = sizeof(fuzz_pieces) / sizeof(fuzz_pieces[0]);

	while (n < len) {
		uint32_t pick = fuzz_next();

		if (pick % 5 == 0) {
			buf[n++] = (char)(fuzz_next() & 0xff);
		} else if (pick % 5 == 1) {
			/* Mostly visible ASCII, so that some targets pass. */
			buf[n++] = (char)(0x21 + fuzz_next() % 94);
		} else {
			const char *p = fuzz_pieces[(pick >> 8) % pieces];
			size_t k = strlen(p);

			if (k > len - n)
				k = len - n;
			memcpy(buf + n, p, k);
			n += k;
		}
	}
}

/* Invariants of one call; returns the template length. */
static size_t fuzz_check(const char *target, size_t len, char *dst)
{
	size_t n;

	/* dst has 8 guard bytes after ROUTE_MAX + 1. */
	memset(dst, 'G', ROUTE_MAX + 1 + 8);
	n = route_template(target, len, dst, ROUTE_MAX + 1);
	CHECK(n <= ROUTE_MAX);
	CHECK(dst[n] == '\0');
	CHECK(strlen(dst) == n);
	for (size_t i = ROUTE_MAX + 1; i < ROUTE_MAX + 1 + 8; i++)
		CHECK(dst[i] == 'G');
	for (size_t i = 0; i < n; i++)
		CHECK(dst[i] >= 0x21 && dst[i] <= 0x7e);
	if (n == 0)
		return 0;
	CHECK(dst[0] == '/');
	CHECK(strstr(dst, "//") == NULL);
	CHECK(strchr(dst, '?') == NULL && strchr(dst, '#') == NULL);
	CHECK(n == 1 || dst[n - 1] != '/');
	return n;
}

TEST(fuzz_invariants)
{
	int before = unit_failed_checks;
	char dst[ROUTE_MAX + 1 + 8], again[ROUTE_MAX + 1 + 8];

	for (int i = 0; i < 100000 && unit_failed_checks == before; i++) {
		size_t len = fuzz_next() % 300;
		/* Exactly len bytes, so that ASan sees any read past them. */
		char *target = malloc(len ? len : 1);
		size_t n;

		if (!target) {
			CHECK(target != NULL);
			return;
		}
		fuzz_fill(target, len);
		/* Half of them start like a target. */
		if (len && i % 2)
			target[0] = '/';
		n = fuzz_check(target, len, dst);
		/* A template is its own template. */
		if (n) {
			CHECK(fuzz_check(dst, n, again) == n);
			CHECK(strcmp(dst, again) == 0);
		}
		free(target);
	}
}

UNIT_MAIN("route", UNIT_CASE(origin_form_root), UNIT_CASE(brief_examples),
	  UNIT_CASE(hex_letters_and_digits_are_hex_before_token),
	  UNIT_CASE(query_and_fragment_dropped), UNIT_CASE(absolute_form),
	  UNIT_CASE(absolute_form_without_path),
	  UNIT_CASE(absolute_form_invalid), UNIT_CASE(other_forms_rejected),
	  UNIT_CASE(repeated_slashes_collapse),
	  UNIT_CASE(trailing_slash_dropped), UNIT_CASE(id_all_digits),
	  UNIT_CASE(id_needs_only_digits), UNIT_CASE(uuid_any_case),
	  UNIT_CASE(uuid_shape_is_exact),
	  UNIT_CASE(hex_needs_eight_and_a_digit),
	  UNIT_CASE(token_long_or_mixed), UNIT_CASE(token_thresholds),
	  UNIT_CASE(placeholders_in_every_position), UNIT_CASE(words_kept),
	  UNIT_CASE(percent_encoding_kept), UNIT_CASE(invisible_bytes_rejected),
	  UNIT_CASE(invisible_bytes_after_path_ignored),
	  UNIT_CASE(every_visible_byte_kept), UNIT_CASE(len_is_honoured),
	  UNIT_CASE(bad_arguments), UNIT_CASE(failure_writes_empty_string),
	  UNIT_CASE(exactly_route_max_fits),
	  UNIT_CASE(one_past_route_max_is_cut),
	  UNIT_CASE(long_route_cut_at_segment_boundary),
	  UNIT_CASE(cut_counts_placeholders_not_raw_segments),
	  UNIT_CASE(cut_long_target_of_mixed_segments),
	  UNIT_CASE(cut_of_absolute_form), UNIT_CASE(output_never_past_outsz),
	  UNIT_CASE(fuzz_invariants))
