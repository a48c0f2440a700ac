/* The consumer: kernel records in, registry observations out. */
#include <stdlib.h>

#include "events.h"
#include "registry.h"
#include "sonde_events.h"
#include "unit.h"

static void setup(void)
{
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 100,
				       .max_peers_per_service = 100,
				       .max_series = 100 };

	registry_free();
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
}

static void exchange(const char *req, const char *resp, unsigned idx,
		     unsigned long long duration_ns)
{
	struct sonde_http_event ev = { 0 };

	ev.hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	ev.hdr.tgid = 0x7ffffff1; /* no such process: comm names it */
	memcpy(ev.comm, "unitsvc", 8);
	ev.start_ns = 1000;
	ev.end_ns = 1000 + duration_ns;
	ev.sport = 8080;
	ev.req_len = strlen(req);
	ev.resp_len = strlen(resp);
	ev.pipeline_idx = idx;
	memcpy(ev.req, req, ev.req_len);
	memcpy(ev.resp, resp, ev.resp_len);
	events_handle(NULL, &ev, sizeof(ev));
}

static char *render(void)
{
	struct strbuf sb = { 0 };

	registry_render(&sb);
	events_render(&sb);
	return strbuf_detach(&sb, NULL);
}

#define SERIES(method, status, route)                                          \
	"http_server_request_duration_seconds_count{service_name=\"unitsvc\"," \
	"http_request_method=\"" method                                        \
	"\",http_response_status_code=\"" status "\",http_route=\"" route      \
	"\",server_port=\"8080\"} "

TEST(one_exchange_becomes_one_observation)
{
	char *text;

	setup();
	exchange("GET /users/7?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		 "HTTP/1.1 404 Not Found\r\n", 0, 3000000);
	text = render();
	CHECK(strstr(text, SERIES("GET", "404", "/users/{id}") "1\n"));
	CHECK(strstr(text, "_sum{service_name=\"unitsvc\",http_request_method="
			   "\"GET\",http_response_status_code=\"404\","
			   "http_route=\"/users/{id}\",server_port=\"8080\"} "
			   "0.003\n"));
	free(text);
}

TEST(pipelined_responses_pick_their_own_request)
{
	const char *req =
		"GET /a HTTP/1.1\r\n\r\nPUT /b HTTP/1.1\r\n"
		"Content-Length: 2\r\n\r\nxyDELETE /c HTTP/1.1\r\n\r\n";
	char *text;

	setup();
	exchange(req, "HTTP/1.1 200 OK\r\n", 0, 1);
	exchange(req, "HTTP/1.1 201 Created\r\n", 1, 1);
	exchange(req, "HTTP/1.1 204 No Content\r\n", 2, 1);
	/* A fourth response whose request fell outside the capture. */
	exchange(req, "HTTP/1.1 200 OK\r\n", 3, 1);
	text = render();
	CHECK(strstr(text, SERIES("GET", "200", "/a") "1\n"));
	CHECK(strstr(text, SERIES("PUT", "201", "/b") "1\n"));
	CHECK(strstr(text, SERIES("DELETE", "204", "/c") "1\n"));
	CHECK(strstr(text, SERIES("_OTHER", "200", "_unknown") "1\n"));
	free(text);
}

TEST(interim_head_before_final_one_in_the_same_write)
{
	char *text;

	setup();
	exchange("POST /up HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
		 "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n", 0, 1);
	text = render();
	CHECK(strstr(text, SERIES("POST", "201", "/up") "1\n"));
	free(text);
}

TEST(unknown_methods_and_targets_stay_bounded)
{
	char *text;

	setup();
	exchange("BREW /pot HTTP/1.1\r\n\r\n", "HTTP/1.1 418 Teapot\r\n", 0, 1);
	exchange("GET \x01\x02 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad\r\n", 0, 1);
	exchange("OPTIONS * HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n", 0, 1);
	text = render();
	CHECK(strstr(text, SERIES("_OTHER", "418", "/pot") "1\n"));
	CHECK(strstr(text, SERIES("GET", "400", "_unknown") "1\n"));
	CHECK(strstr(text, SERIES("OPTIONS", "200", "_unknown") "1\n"));
	free(text);
}

TEST(unparsable_responses_and_records_are_counted_not_stored)
{
	char *text;
	char junk[4] = { 0 };

	setup();
	exchange("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 2", 0, 1);
	exchange("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\n", 0,
		 1);
	events_handle(NULL, junk, sizeof(junk));
	text = render();
	CHECK(strstr(text, "sonde_series 0\n"));
	CHECK(strstr(text, "sonde_parse_errors_total{reason=\"response_status"
			   "\"} 2\n"));
	CHECK(strstr(text, "sonde_parse_errors_total{reason=\"record\"} 1\n"));
	free(text);
}

UNIT_MAIN("events", UNIT_CASE(one_exchange_becomes_one_observation),
	  UNIT_CASE(pipelined_responses_pick_their_own_request),
	  UNIT_CASE(interim_head_before_final_one_in_the_same_write),
	  UNIT_CASE(unknown_methods_and_targets_stay_bounded),
	  UNIT_CASE(unparsable_responses_and_records_are_counted_not_stored))
