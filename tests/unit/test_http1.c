/* Unit tests for user/http1.c: request lines, pipelined heads, status
 * lines with interim responses, and a fixed-seed fuzz loop that checks only
 * invariants. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1.h"
#include "unit.h"

/* Parses a NUL-free string literal; the terminating NUL is not passed. */
static int parse_req(const char *s, unsigned int idx, struct http1_request *r)
{
	return http1_parse_request(s, strlen(s), idx, r);
}

static int parse_status(const char *s)
{
	return http1_parse_status(s, strlen(s));
}

/* The target as a C string, for CHECK_STR. */
static const char *target_of(const struct http1_request *r)
{
	static char buf[512];
	size_t n = r->target_len < sizeof(buf) - 1 ? r->target_len :
						     sizeof(buf) - 1;

	if (!r->target)
		return "(no target)";
	memcpy(buf, r->target, n);
	buf[n] = '\0';
	return buf;
}

/* ---- request line ---- */

TEST(request_get_with_headers)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("GET /users/42 HTTP/1.1\r\nHost: a\r\n\r\n", 0, &r) ==
	      0);
	CHECK(r.method == HTTP_METHOD_GET);
	CHECK_STR(target_of(&r), "/users/42");
	CHECK(r.target_complete == 1);
}

TEST(request_every_known_method)
{
	static const struct {
		const char *line;
		enum http_method m;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n", HTTP_METHOD_GET },
		{ "HEAD / HTTP/1.1\r\n", HTTP_METHOD_HEAD },
		{ "POST / HTTP/1.1\r\n", HTTP_METHOD_POST },
		{ "PUT / HTTP/1.1\r\n", HTTP_METHOD_PUT },
		{ "DELETE / HTTP/1.1\r\n", HTTP_METHOD_DELETE },
		{ "CONNECT h:443 HTTP/1.1\r\n", HTTP_METHOD_CONNECT },
		{ "OPTIONS * HTTP/1.1\r\n", HTTP_METHOD_OPTIONS },
		{ "TRACE / HTTP/1.1\r\n", HTTP_METHOD_TRACE },
		{ "PATCH / HTTP/1.1\r\n", HTTP_METHOD_PATCH },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http1_request r = { 0 };

		CHECK(parse_req(cases[i].line, 0, &r) == 0);
		CHECK(r.method == cases[i].m);
		CHECK(r.target_complete == 1);
	}
}

TEST(request_connect_keeps_authority_target)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("CONNECT example.com:443 HTTP/1.1\r\n", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_CONNECT);
	CHECK_STR(target_of(&r), "example.com:443");
}

TEST(request_lowercase_get_is_other)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("get / HTTP/1.1\r\n\r\n", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_OTHER);
	CHECK_STR(target_of(&r), "/");
}

TEST(request_unknown_tokens_are_other)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("PROPFIND /dav HTTP/1.1\r\n", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_OTHER);
	CHECK(parse_req("M-SEARCH * HTTP/1.1\r\n", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_OTHER);
	CHECK_STR(target_of(&r), "*");
	/* Every tchar is allowed in a method. */
	CHECK(parse_req("!#$%&'*+-.^_`|~09az / HTTP/1.1", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_OTHER);
}

TEST(request_prefix_of_known_method_is_other)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("GETS / HTTP/1.1\r\n", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_OTHER);
	CHECK(parse_req("GE / HTTP/1.1\r\n", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_OTHER);
	CHECK(parse_req("Get / HTTP/1.1\r\n", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_OTHER);
}

TEST(request_http2_preface)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(http1_parse_request(preface, sizeof(preface) - 1, 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_OTHER);
	CHECK_STR(target_of(&r), "*");
	CHECK(r.target_complete == 1);
}

TEST(request_target_cut_short)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("GET /very/long/pa", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_GET);
	CHECK_STR(target_of(&r), "/very/long/pa");
	CHECK(r.target_complete == 0);
}

TEST(request_target_ends_at_line_end)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("GET /x\r\n", 0, &r) == 0);
	CHECK_STR(target_of(&r), "/x");
	CHECK(r.target_complete == 1);
	CHECK(parse_req("GET /y\nHost: a\n\n", 0, &r) == 0);
	CHECK_STR(target_of(&r), "/y");
	CHECK(r.target_complete == 1);
	CHECK(parse_req("GET /z HTTP/1.1", 0, &r) == 0);
	CHECK(r.target_complete == 1);
}

TEST(request_target_points_into_buffer)
{
	static const char buf[] = "DELETE /items/7 HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(http1_parse_request(buf, sizeof(buf) - 1, 0, &r) == 0);
	CHECK(r.target == buf + 7);
	CHECK(r.target_len == 8);
}

TEST(request_cut_before_target)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("", 0, &r) == -1);
	CHECK(parse_req("G", 0, &r) == -1);
	CHECK(parse_req("GET", 0, &r) == -1);
	CHECK(parse_req("GET ", 0, &r) == -1);
}

TEST(request_malformed_lines)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("GET  / HTTP/1.1\r\n", 0, &r) == -1);
	CHECK(parse_req(" GET / HTTP/1.1\r\n", 0, &r) == -1);
	CHECK(parse_req("GET\t/ HTTP/1.1\r\n", 0, &r) == -1);
	CHECK(parse_req("GET \r\n", 0, &r) == -1);
	CHECK(parse_req("GET\r\n", 0, &r) == -1);
	CHECK(parse_req("\r\n", 0, &r) == -1);
	CHECK(parse_req("GE(T / HTTP/1.1\r\n", 0, &r) == -1);
	CHECK(parse_req("{\"a\":1}", 0, &r) == -1);
	CHECK(parse_req("/index.html", 0, &r) == -1);
}

/* RFC 9112 section 2.2: empty lines before a request line are ignored. */
TEST(request_after_empty_lines)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("\r\nGET /a HTTP/1.1\r\n\r\n", 0, &r) == 0);
	CHECK_STR(target_of(&r), "/a");
	CHECK(parse_req("\nPUT /b HTTP/1.1\r\n\r\n", 0, &r) == 0);
	CHECK(r.method == HTTP_METHOD_PUT);
	CHECK(http1_requests_end_before("\r\nGET /a HTTP/1.1\r\n\r\n", 21, 1));
}

TEST(request_garbage_bytes)
{
	static const char tls[] =
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	static const char high[] = "G\x80T / HTTP/1.1\r\n";
	static const char del[] = "GET\x7f/ HTTP/1.1\r\n";
	struct http1_request r = { 0 };

	CHECK(http1_parse_request(tls, sizeof(tls) - 1, 0, &r) == -1);
	CHECK(http1_parse_request(high, sizeof(high) - 1, 0, &r) == -1);
	CHECK(http1_parse_request(del, sizeof(del) - 1, 0, &r) == -1);
}

TEST(request_nul_bytes)
{
	static const char lead[] = "\0GET / HTTP/1.1\r\n";
	static const char in_method[] = "GE\0T / HTTP/1.1\r\n";
	static const char in_target[] = "GET /a\0b HTTP/1.1\r\n";
	static const char only[] = "\0\0\0\0\0\0\0\0";
	struct http1_request r = { 0 };

	CHECK(http1_parse_request(lead, sizeof(lead) - 1, 0, &r) == -1);
	CHECK(http1_parse_request(in_method, sizeof(in_method) - 1, 0, &r) ==
	      -1);
	CHECK(http1_parse_request(only, sizeof(only) - 1, 0, &r) == -1);
	/* The target runs to the SP; a NUL in it is the route's problem. */
	CHECK(http1_parse_request(in_target, sizeof(in_target) - 1, 0, &r) ==
	      0);
	CHECK(r.target_len == 4);
	CHECK(r.target_complete == 1);
}

TEST(request_len_is_honoured)
{
	struct http1_request r = { 0 };

	/* The bytes after len must not be looked at. */
	CHECK(http1_parse_request("GET /abcdef HTTP/1.1", 7, 0, &r) == 0);
	CHECK_STR(target_of(&r), "/ab");
	CHECK(r.target_complete == 0);
	CHECK(http1_parse_request("GET /abcdef HTTP/1.1", 4, 0, &r) == -1);
	CHECK(http1_parse_request("GET /abcdef HTTP/1.1", 0, 0, &r) == -1);
}

TEST(request_null_arguments)
{
	struct http1_request r = { 0 };

	CHECK(http1_parse_request(NULL, 0, 0, &r) == -1);
	CHECK(http1_parse_request(NULL, 10, 0, &r) == -1);
	CHECK(http1_parse_request("GET / ", 6, 0, NULL) == -1);
}

TEST(request_out_untouched_on_failure)
{
	struct http1_request r = { HTTP_METHOD_PATCH, "sentinel", 8, 1 };

	CHECK(parse_req("GET ", 0, &r) == -1);
	CHECK(parse_req("GET / HTTP/1.1\r\n\r\n", 1, &r) == -1);
	CHECK(r.method == HTTP_METHOD_PATCH);
	CHECK_STR(target_of(&r), "sentinel");
}

/* ---- pipelined requests ---- */

TEST(pipeline_two_gets)
{
	static const char buf[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
				  "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 0, &r) == 0);
	CHECK_STR(target_of(&r), "/a");
	CHECK(parse_req(buf, 1, &r) == 0);
	CHECK(r.method == HTTP_METHOD_GET);
	CHECK_STR(target_of(&r), "/b");
	CHECK(r.target_complete == 1);
	CHECK(parse_req(buf, 2, &r) == -1);
}

TEST(pipeline_three_heads_mixed_methods)
{
	static const char buf[] = "GET /a HTTP/1.1\r\n\r\n"
				  "HEAD /b HTTP/1.1\r\n\r\n"
				  "DELETE /c HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 2, &r) == 0);
	CHECK(r.method == HTTP_METHOD_DELETE);
	CHECK_STR(target_of(&r), "/c");
	CHECK(parse_req(buf, 3, &r) == -1);
}

TEST(pipeline_bare_lf_heads)
{
	static const char buf[] =
		"GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == 0);
	CHECK_STR(target_of(&r), "/b");
}

TEST(pipeline_skips_content_length_body)
{
	static const char buf[] = "POST /a HTTP/1.1\r\nHost: x\r\n"
				  "Content-Length: 5\r\n\r\nhello"
				  "PUT /b HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == 0);
	CHECK(r.method == HTTP_METHOD_PUT);
	CHECK_STR(target_of(&r), "/b");
}

TEST(pipeline_body_that_looks_like_a_request)
{
	/* The body is skipped by length, not searched for a request line. */
	static const char buf[] = "POST /a HTTP/1.1\r\nContent-Length: 20\r\n"
				  "\r\nGET /no HTTP/1.1\r\n\r\n"
				  "GET /yes HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == 0);
	CHECK_STR(target_of(&r), "/yes");
}

TEST(pipeline_content_length_zero_and_spacing)
{
	static const char buf[] =
		"POST /a HTTP/1.1\r\ncontent-LENGTH:0\r\n\r\n"
		"POST /b HTTP/1.1\r\nCONTENT-LENGTH: \t3 \t\r\n"
		"\r\nabc"
		"GET /c HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == 0);
	CHECK_STR(target_of(&r), "/b");
	CHECK(parse_req(buf, 2, &r) == 0);
	CHECK_STR(target_of(&r), "/c");
}

TEST(pipeline_stray_crlf_after_body)
{
	static const char buf[] = "POST /a HTTP/1.1\r\nContent-Length: 2\r\n"
				  "\r\nhi\r\n"
				  "GET /b HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == 0);
	CHECK_STR(target_of(&r), "/b");
}

TEST(pipeline_identical_content_lengths)
{
	static const char buf[] = "POST /a HTTP/1.1\r\nContent-Length: 2\r\n"
				  "Content-Length: 2\r\n\r\nhi"
				  "GET /b HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == 0);
	CHECK_STR(target_of(&r), "/b");
}

TEST(pipeline_body_beyond_capture)
{
	static const char buf[] = "POST /a HTTP/1.1\r\nContent-Length: 100\r\n"
				  "\r\nhello";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 0, &r) == 0);
	CHECK(parse_req(buf, 1, &r) == -1);
}

TEST(pipeline_body_ends_capture)
{
	static const char buf[] = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n"
				  "\r\nhello";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == -1);
}

TEST(pipeline_chunked_ends_walk)
{
	static const char chunked[] = "POST /a HTTP/1.1\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n"
				      "0\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	static const char gzip[] = "POST /a HTTP/1.1\r\n"
				   "transfer-encoding: gzip, chunked\r\n\r\n"
				   "0\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	static const char both[] = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n"
				   "0\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(chunked, 0, &r) == 0);
	CHECK(parse_req(chunked, 1, &r) == -1);
	CHECK(parse_req(gzip, 1, &r) == -1);
	CHECK(parse_req(both, 1, &r) == -1);
}

TEST(pipeline_bad_content_length)
{
	static const char *const values[] = {
		"",	"-1",	      "+5",
		"0x10", "5, 5",	      "5 5",
		"five", "1073741825", "99999999999999999999999999999999999999",
	};
	struct http1_request r = { 0 };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char buf[256];

		snprintf(buf, sizeof(buf),
			 "POST /a HTTP/1.1\r\nContent-Length: %s\r\n\r\n"
			 "GET /b HTTP/1.1\r\n\r\n",
			 values[i]);
		CHECK(parse_req(buf, 0, &r) == 0);
		CHECK(parse_req(buf, 1, &r) == -1);
	}
}

TEST(pipeline_largest_content_length_is_not_absurd)
{
	/* 1 << 30 is accepted as a length; it just does not fit. */
	static const char buf[] = "POST /a HTTP/1.1\r\n"
				  "Content-Length: 1073741824\r\n\r\n"
				  "GET /b HTTP/1.1\r\n\r\n";
	static const char zeros[] = "POST /a HTTP/1.1\r\n"
				    "Content-Length: 0000000000000000002\r\n"
				    "\r\nhiGET /b HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == -1);
	CHECK(parse_req(zeros, 1, &r) == 0);
	CHECK_STR(target_of(&r), "/b");
}

TEST(pipeline_content_length_does_not_wrap)
{
	/* 2^64 + 5: a parser that wraps around would skip 5 bytes. */
	static const char buf[] = "POST /a HTTP/1.1\r\n"
				  "Content-Length: 18446744073709551621\r\n"
				  "\r\nhelloGET /b HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == -1);
}

TEST(pipeline_conflicting_content_lengths)
{
	static const char buf[] =
		"POST /a HTTP/1.1\r\nContent-Length: 2\r\n"
		"Content-Length: 3\r\n\r\nhiGET /b HTTP/1.1\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == -1);
}

TEST(pipeline_malformed_field_line)
{
	static const char no_colon[] = "GET /a HTTP/1.1\r\nHost x\r\n\r\n"
				       "GET /b HTTP/1.1\r\n\r\n";
	static const char space_name[] = "GET /a HTTP/1.1\r\n"
					 "Content-Length : 0\r\n\r\n"
					 "GET /b HTTP/1.1\r\n\r\n";
	static const char folded[] = "GET /a HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n"
				     "GET /b HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(no_colon, 1, &r) == -1);
	CHECK(parse_req(space_name, 1, &r) == -1);
	CHECK(parse_req(folded, 1, &r) == -1);
}

TEST(pipeline_previous_head_incomplete)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("GET /a HTTP/1.1\r\nHost: x\r\n", 1, &r) == -1);
	CHECK(parse_req("GET /a HTTP/1.1\r\nHost: x\r\n\r", 1, &r) == -1);
	CHECK(parse_req("GET /a HTTP/1.1", 1, &r) == -1);
}

TEST(pipeline_previous_head_not_a_request)
{
	static const char buf[] =
		"\x01\x02garbage\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	struct http1_request r = { 0 };

	CHECK(parse_req(buf, 1, &r) == -1);
}

TEST(pipeline_next_head_cut_short)
{
	/* A 256-byte capture that ends inside the second request line. */
	char buf[256];
	struct http1_request r = { 0 };
	const char *head = "GET /first HTTP/1.1\r\nHost: example.com\r\n"
			   "User-Agent: test\r\n\r\nGET /second/";
	size_t n = strlen(head);

	memcpy(buf, head, n);
	memset(buf + n, 'x', sizeof(buf) - n);
	CHECK(http1_parse_request(buf, sizeof(buf), 1, &r) == 0);
	CHECK(r.target_complete == 0);
	CHECK(r.target + r.target_len == buf + sizeof(buf));
	CHECK(memcmp(r.target, "/second/xxx", 11) == 0);
}

TEST(pipeline_huge_index)
{
	struct http1_request r = { 0 };

	CHECK(parse_req("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
			UINT_MAX, &r) == -1);
	CHECK(parse_req("GET /a HTTP/1.1\r\n\r\n", 1000, &r) == -1);
}

TEST(requests_end_before_counts_whole_requests)
{
	static const char two[] = "GET /a HTTP/1.1\r\n\r\n"
				  "POST /b HTTP/1.1\r\nContent-Length: 2\r\n"
				  "\r\nhi\r\n";

	CHECK(!http1_requests_end_before(two, strlen(two), 0));
	CHECK(!http1_requests_end_before(two, strlen(two), 1));
	/* The "\r\n" after the body is not a third request. */
	CHECK(http1_requests_end_before(two, strlen(two), 2));
	CHECK(http1_requests_end_before(two, strlen(two), 7));
	CHECK(http1_requests_end_before(two, strlen(two), UINT_MAX));
	CHECK(http1_requests_end_before("", 0, 0));
	CHECK(!http1_requests_end_before(NULL, 0, 1));
}

TEST(requests_end_before_is_false_when_it_cannot_tell)
{
	static const char *const open_ended[] = {
		/* The next request line has begun. */
		"GET /a HTTP/1.1\r\n\r\nGE",
		/* The head is cut short. */
		"GET /a HTTP/1.1\r\nHost: x\r\n",
		/* The body goes on past the capture. */
		"POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\nhello",
		/* A chunked body has no length to skip. */
		("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "0\r\n\r\n"),
		/* Not a request at all. */
		"{\"a\": 1}\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(open_ended) / sizeof(open_ended[0]); i++)
		CHECK(!http1_requests_end_before(open_ended[i],
						 strlen(open_ended[i]), 1));
}

/* ---- status line ---- */

TEST(status_simple)
{
	CHECK(parse_status("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") ==
	      200);
	CHECK(parse_status("HTTP/1.0 404 Not Found\r\n") == 404);
	CHECK(parse_status("HTTP/1.1 503 Service Unavailable") == 503);
	CHECK(parse_status("HTTP/1.1 599 \r\n") == 599);
	CHECK(parse_status("HTTP/1.1 301 Moved") == 301);
}

TEST(status_cut_after_code)
{
	CHECK(parse_status("HTTP/1.1 200") == 200);
	CHECK(parse_status("HTTP/1.1 200 ") == 200);
	CHECK(parse_status("HTTP/1.1 20") == -1);
	CHECK(parse_status("HTTP/1.1 ") == -1);
	CHECK(parse_status("HTTP/1.1") == -1);
	CHECK(parse_status("") == -1);
}

TEST(status_without_reason)
{
	CHECK(parse_status("HTTP/1.1 204\r\n\r\n") == 204);
	CHECK(parse_status("HTTP/1.1 204\n\n") == 204);
}

TEST(status_bad_code)
{
	CHECK(parse_status("HTTP/1.1 2000 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 20x OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 000 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 099 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 600 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 999 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 -20 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 200OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 200\tOK\r\n") == -1);
}

TEST(status_bad_version)
{
	CHECK(parse_status("HTTP/2 200\r\n") == -1);
	CHECK(parse_status("HTTP/2.0 200 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.2 200 OK\r\n") == -1);
	CHECK(parse_status("http/1.1 200 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1  200 OK\r\n") == -1);
	CHECK(parse_status("HTTP/1.1\t200 OK\r\n") == -1);
	CHECK(parse_status(" HTTP/1.1 200 OK\r\n") == -1);
	CHECK(parse_status("\r\nHTTP/1.1 200 OK\r\n") == -1);
	CHECK(parse_status("ICY 200 OK\r\n") == -1);
	CHECK(parse_status("GET / HTTP/1.1\r\n") == -1);
}

TEST(status_continue_then_ok)
{
	CHECK(parse_status("HTTP/1.1 100 Continue\r\n\r\n"
			   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n") ==
	      200);
	CHECK(parse_status("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201") == 201);
	CHECK(parse_status("HTTP/1.1 100 Continue\n\nHTTP/1.1 202 OK\n") ==
	      202);
}

TEST(status_early_hints_then_ok)
{
	CHECK(parse_status("HTTP/1.1 103 Early Hints\r\n"
			   "Link: </style.css>; rel=preload\r\n\r\n"
			   "HTTP/1.1 200 OK\r\n") == 200);
}

TEST(status_several_interim_heads)
{
	CHECK(parse_status("HTTP/1.1 102 Processing\r\n\r\n"
			   "HTTP/1.1 100 Continue\r\n\r\n"
			   "HTTP/1.1 103 Early Hints\r\n\r\n"
			   "HTTP/1.1 500 Oops\r\n\r\n") == 500);
}

TEST(status_unassigned_1xx_is_interim)
{
	CHECK(parse_status("HTTP/1.1 199 Whatever\r\n\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 104 X\r\n\r\nHTTP/1.1 200 OK\r\n") == 200);
}

TEST(status_interim_only)
{
	CHECK(parse_status("HTTP/1.1 100 Continue\r\n\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 100 Continue\r\n") == -1);
	CHECK(parse_status("HTTP/1.1 100 Continue") == -1);
	CHECK(parse_status("HTTP/1.1 100") == -1);
	CHECK(parse_status("HTTP/1.1 103 Early Hints\r\nLink: </a>") == -1);
}

TEST(status_interim_then_garbage_or_cut)
{
	CHECK(parse_status("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2") == -1);
	CHECK(parse_status("HTTP/1.1 100 Continue\r\n\r\nhello") == -1);
	CHECK(parse_status("HTTP/1.1 100 Continue\r\n\r\n\r\nHTTP/1.1 200") ==
	      -1);
}

TEST(status_switching_protocols_is_final)
{
	CHECK(parse_status("HTTP/1.1 101 Switching Protocols\r\n"
			   "Upgrade: websocket\r\n\r\n") == 101);
	CHECK(parse_status("HTTP/1.1 101 Switching Protocols\r\n\r\n"
			   "\x81\x05hello") == 101);
}

TEST(status_nul_and_garbage)
{
	static const char nul_after[] = "HTTP/1.1 200\0OK\r\n";
	static const char nul_in[] = "HTTP/1.1 2\00000 OK\r\n";
	static const char nul_lead[] = "\0HTTP/1.1 200 OK\r\n";
	static const char high[] = "HTTP/1.1 200\xff";
	static const char nul_after_interim[] = "HTTP/1.1 100 C\r\n\r\n\0\0\0";

	CHECK(http1_parse_status(nul_after, sizeof(nul_after) - 1) == -1);
	CHECK(http1_parse_status(nul_in, sizeof(nul_in) - 1) == -1);
	CHECK(http1_parse_status(nul_lead, sizeof(nul_lead) - 1) == -1);
	CHECK(http1_parse_status(high, sizeof(high) - 1) == -1);
	CHECK(http1_parse_status(nul_after_interim,
				 sizeof(nul_after_interim) - 1) == -1);
	CHECK(http1_parse_status(NULL, 0) == -1);
	CHECK(http1_parse_status(NULL, 12) == -1);
}

TEST(status_len_is_honoured)
{
	CHECK(http1_parse_status("HTTP/1.1 200 OK", 12) == 200);
	CHECK(http1_parse_status("HTTP/1.1 200 OK", 11) == -1);
	CHECK(http1_parse_status("HTTP/1.1 2000", 12) == 200);
	CHECK(http1_parse_status("HTTP/1.1 100 C\r\n\r\nHTTP/1.1 200", 18) ==
	      -1);
}

/* ---- method names ---- */

TEST(method_names)
{
	CHECK_STR(http_method_name(HTTP_METHOD_OTHER), "_OTHER");
	CHECK_STR(http_method_name(HTTP_METHOD_GET), "GET");
	CHECK_STR(http_method_name(HTTP_METHOD_HEAD), "HEAD");
	CHECK_STR(http_method_name(HTTP_METHOD_POST), "POST");
	CHECK_STR(http_method_name(HTTP_METHOD_PUT), "PUT");
	CHECK_STR(http_method_name(HTTP_METHOD_DELETE), "DELETE");
	CHECK_STR(http_method_name(HTTP_METHOD_CONNECT), "CONNECT");
	CHECK_STR(http_method_name(HTTP_METHOD_OPTIONS), "OPTIONS");
	CHECK_STR(http_method_name(HTTP_METHOD_TRACE), "TRACE");
	CHECK_STR(http_method_name(HTTP_METHOD_PATCH), "PATCH");
}

TEST(method_name_out_of_range)
{
	CHECK_STR(http_method_name(HTTP_METHOD_COUNT), "_OTHER");
	CHECK_STR(http_method_name((enum http_method)999), "_OTHER");
	CHECK_STR(http_method_name((enum http_method)(-1)), "_OTHER");
}

TEST(method_name_round_trip)
{
	for (int m = HTTP_METHOD_GET; m < HTTP_METHOD_COUNT; m++) {
		char line[64];
		struct http1_request r = { 0 };

		snprintf(line, sizeof(line), "%s / HTTP/1.1\r\n",
			 http_method_name((enum http_method)m));
		CHECK(parse_req(line, 0, &r) == 0);
		CHECK(r.method == (enum http_method)m);
	}
}

/* ---- fuzz ---- */

static uint32_t fuzz_state = 0x5eed1234;

static uint32_t fuzz_next(void)
{
	return unit_xorshift32(&fuzz_state);
}

/* Pieces of HTTP heads, so that random buffers get past the first checks
 * often enough to reach the deeper paths. */
static const char *const fuzz_pieces[] = {
	"GET ",
	"POST ",
	"get ",
	"PRI ",
	"/",
	"/users/42",
	"*",
	" ",
	"  ",
	"\r\n",
	"\n",
	"\r",
	"\r\n\r\n",
	"\n\n",
	"HTTP/1.1",
	"HTTP/1.1 ",
	"HTTP/1.0 ",
	"100",
	"101",
	"103",
	"199",
	"200",
	"404",
	"600",
	" OK",
	"Host: x",
	"Content-Length: ",
	"content-length:",
	"Transfer-Encoding: chunked",
	"0",
	"5",
	"12",
	"1073741824",
	"99999999999999999999",
	":",
	"hello",
};

/* Fills buf[0..len) with pieces and random bytes. */
static void fuzz_fill(char *buf, size_t len)
{
	size_t n = 0;
	const size_t pieces = sizeof(fuzz_pieces) / sizeof(fuzz_pieces[0]);

	while (n < len) {
		uint32_t pick = fuzz_next();

		if (pick % 4 == 0) {
			buf[n++] = (char)(fuzz_next() & 0xff);
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

static void fuzz_check_request(const char *buf, size_t len, unsigned int idx)
{
	static const char sentinel[] = "untouched";
	struct http1_request r = { HTTP_METHOD_PATCH, sentinel, 9, 7 };
	int ret = http1_parse_request(buf, len, idx, &r);

	CHECK(ret == 0 || ret == -1);
	if (ret != 0) {
		CHECK(r.method == HTTP_METHOD_PATCH && r.target == sentinel &&
		      r.target_len == 9 && r.target_complete == 7);
		return;
	}
	CHECK(r.method >= HTTP_METHOD_OTHER && r.method < HTTP_METHOD_COUNT);
	CHECK(http_method_name(r.method) != NULL);
	CHECK(r.target > buf && r.target_len >= 1);
	CHECK(r.target + r.target_len <= buf + len);
	CHECK(r.target_complete == 0 || r.target_complete == 1);
	CHECK(r.target_complete || r.target + r.target_len == buf + len);
	CHECK(r.target[-1] == ' ');
	for (size_t i = 0; i < r.target_len; i++) {
		char c = r.target[i];

		CHECK(c != ' ' && c != '\r' && c != '\n');
	}
}

static void fuzz_check_status(const char *buf, size_t len)
{
	int code = http1_parse_status(buf, len);

	CHECK(code == -1 || (code >= 100 && code <= 599));
	CHECK(code == -1 || code == 101 || code >= 200);
}

TEST(fuzz_invariants)
{
	int before = unit_failed_checks;

	for (int i = 0; i < 100000 && unit_failed_checks == before; i++) {
		/* Up to the request capture and a little past it. */
		size_t len = fuzz_next() % 300;
		/* Exactly len bytes, so that ASan sees any read past them. */
		char *buf = malloc(len ? len : 1);

		if (!buf) {
			CHECK(buf != NULL);
			return;
		}
		fuzz_fill(buf, len);
		fuzz_check_request(buf, len, 0);
		fuzz_check_request(buf, len, 1);
		fuzz_check_request(buf, len, fuzz_next() % 8);
		fuzz_check_status(buf, len);
		/* Every prefix, as a capture cut short would give. */
		if (i % 64 == 0) {
			for (size_t k = 0; k < len; k++) {
				fuzz_check_request(buf, k, 1);
				fuzz_check_status(buf, k);
			}
		}
		free(buf);
	}
}

UNIT_MAIN("http1", UNIT_CASE(request_get_with_headers),
	  UNIT_CASE(request_every_known_method),
	  UNIT_CASE(request_connect_keeps_authority_target),
	  UNIT_CASE(request_lowercase_get_is_other),
	  UNIT_CASE(request_unknown_tokens_are_other),
	  UNIT_CASE(request_prefix_of_known_method_is_other),
	  UNIT_CASE(request_http2_preface), UNIT_CASE(request_target_cut_short),
	  UNIT_CASE(request_target_ends_at_line_end),
	  UNIT_CASE(request_target_points_into_buffer),
	  UNIT_CASE(request_cut_before_target),
	  UNIT_CASE(request_malformed_lines),
	  UNIT_CASE(request_after_empty_lines),
	  UNIT_CASE(request_garbage_bytes), UNIT_CASE(request_nul_bytes),
	  UNIT_CASE(request_len_is_honoured), UNIT_CASE(request_null_arguments),
	  UNIT_CASE(request_out_untouched_on_failure),
	  UNIT_CASE(pipeline_two_gets),
	  UNIT_CASE(pipeline_three_heads_mixed_methods),
	  UNIT_CASE(pipeline_bare_lf_heads),
	  UNIT_CASE(pipeline_skips_content_length_body),
	  UNIT_CASE(pipeline_body_that_looks_like_a_request),
	  UNIT_CASE(pipeline_content_length_zero_and_spacing),
	  UNIT_CASE(pipeline_stray_crlf_after_body),
	  UNIT_CASE(pipeline_identical_content_lengths),
	  UNIT_CASE(pipeline_body_beyond_capture),
	  UNIT_CASE(pipeline_body_ends_capture),
	  UNIT_CASE(pipeline_chunked_ends_walk),
	  UNIT_CASE(pipeline_bad_content_length),
	  UNIT_CASE(pipeline_largest_content_length_is_not_absurd),
	  UNIT_CASE(pipeline_content_length_does_not_wrap),
	  UNIT_CASE(pipeline_conflicting_content_lengths),
	  UNIT_CASE(pipeline_malformed_field_line),
	  UNIT_CASE(pipeline_previous_head_incomplete),
	  UNIT_CASE(pipeline_previous_head_not_a_request),
	  UNIT_CASE(pipeline_next_head_cut_short),
	  UNIT_CASE(pipeline_huge_index),
	  UNIT_CASE(requests_end_before_counts_whole_requests),
	  UNIT_CASE(requests_end_before_is_false_when_it_cannot_tell),
	  UNIT_CASE(status_simple), UNIT_CASE(status_cut_after_code),
	  UNIT_CASE(status_without_reason), UNIT_CASE(status_bad_code),
	  UNIT_CASE(status_bad_version), UNIT_CASE(status_continue_then_ok),
	  UNIT_CASE(status_early_hints_then_ok),
	  UNIT_CASE(status_several_interim_heads),
	  UNIT_CASE(status_unassigned_1xx_is_interim),
	  UNIT_CASE(status_interim_only),
	  UNIT_CASE(status_interim_then_garbage_or_cut),
	  UNIT_CASE(status_switching_protocols_is_final),
	  UNIT_CASE(status_nul_and_garbage), UNIT_CASE(status_len_is_honoured),
	  UNIT_CASE(method_names), UNIT_CASE(method_name_out_of_range),
	  UNIT_CASE(method_name_round_trip), UNIT_CASE(fuzz_invariants))
