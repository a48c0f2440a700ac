/* The consumer: kernel records in, registry observations out. */
#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "export/prom.h"
#include "hpack.h"
#include "identity/labels.h"
#include "identity/procinfo.h"
#include "identity/selection.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "proto/db.h"
#include "proto/dispatch.h"
#include "proto/events.h"
#include "proto/http.h"
#include "proto/http2.h"
#include "proto/tcp.h"
#include "sonde_events.h"
#include "unit.h"
#include "util/fmt.h"

/* Copies what the kernel keeps of a status line into ev; returns how
 * much. */
static unsigned status_line(struct sonde_http_event *ev, const char *resp)
{
	size_t len = strlen(resp);

	if (len > SONDE_RESP_CAP)
		len = SONDE_RESP_CAP;
	memcpy(ev->resp, resp, len);
	return len;
}

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

/* Sends a server exchange as the kernel does: its record holds req_room
 * bytes of the request, and the first bytes of the final status line. */
static void exchange_in(size_t req_room, const char *req, const char *resp,
			unsigned idx, unsigned long long duration_ns)
{
	struct sonde_http_event ev = { 0 };

	ev.hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	ev.hdr.tgid = 0x7ffffff1; /* no such process: comm names it */
	memcpy(ev.comm, "unitsvc", 8);
	ev.start_ns = 1000;
	ev.end_ns = 1000 + duration_ns;
	ev.sport = 8080;
	ev.req_len = strlen(req);
	ev.resp_len = status_line(&ev, resp);
	ev.pipeline_idx = idx;
	memcpy(ev.req, req, ev.req_len);
	dispatch_record(NULL, &ev, SONDE_EXCHANGE_BYTES(req_room));
}

static void exchange(const char *req, const char *resp, unsigned idx,
		     unsigned long long duration_ns)
{
	exchange_in(SONDE_REQ_CAP, req, resp, idx, duration_ns);
}

static void process_exit(__u32 tgid)
{
	struct sonde_process_event ev = { 0 };

	ev.hdr.kind = SONDE_EV_PROCESS_EXIT;
	ev.hdr.tgid = tgid;
	dispatch_record(NULL, &ev, sizeof(ev));
}

/* A server exchange as exchange() sends it, from a process comm names. */
static void exchange_from(const char *comm, const char *req, const char *resp)
{
	struct sonde_http_event ev = { 0 };

	ev.hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	ev.hdr.tgid = 0x7ffffff1;
	memcpy(ev.comm, comm, strlen(comm));
	ev.end_ns = 1;
	ev.sport = 8080;
	ev.req_len = strlen(req);
	ev.resp_len = status_line(&ev, resp);
	memcpy(ev.req, req, ev.req_len);
	dispatch_record(NULL, &ev, SONDE_EXCHANGE_BYTES(SONDE_REQ_CAP));
}

/* A client exchange of process "unitcli" with 10.0.0.peer:5432. */
static void client(const char *req, uint8_t peer)
{
	struct sonde_http_event ev = { 0 };

	ev.hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	ev.hdr.tgid = 0x7ffffff4;
	memcpy(ev.comm, "unitcli", 8);
	ev.role = SONDE_ROLE_CLIENT;
	ev.family = AF_INET;
	ev.daddr[0] = 10, ev.daddr[3] = peer;
	ev.sport = 40000;
	ev.dport = 5432;
	ev.end_ns = 1;
	ev.req_len = SONDE_CLIENT_REQ_CAP;
	ev.resp_len = status_line(&ev, "HTTP/1.1 200 OK\r\n");
	memcpy(ev.req, req, strnlen(req, SONDE_CLIENT_REQ_CAP));
	dispatch_record(NULL, &ev, SONDE_EXCHANGE_BYTES(SONDE_CLIENT_REQ_CAP));
}

#define CLIENT(method, peer)                                                   \
	"http_client_request_duration_seconds_count{service_name=\"unitcli\"," \
	"http_request_method=\"" method                                        \
	"\",http_response_status_code=\"200\","                                \
	"server_address=\"" peer "\",server_port=\"5432\"} "

static char *render(void)
{
	struct strbuf sb = { 0 };

	registry_register_metrics();
	events_register_metrics();
	prom_render(&sb);
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
	text = render();
	CHECK(strstr(text, SERIES("GET", "200", "/a") "1\n"));
	CHECK(strstr(text, SERIES("PUT", "201", "/b") "1\n"));
	CHECK(strstr(text, SERIES("DELETE", "204", "/c") "1\n"));
	CHECK(strstr(text, "sonde_series 3\n"));
	free(text);
}

/* A request that fills the capture, then one cut off by its end. */
static const char *full_capture(void)
{
	static char req[SONDE_REQ_CAP + 1];
	static const char head[] = "GET /a HTTP/1.1\r\nX-Pad: ";
	static const char tail[] = "\r\n\r\nGE";
	size_t pad = SONDE_REQ_CAP - strlen(head) - strlen(tail);

	memcpy(req, head, strlen(head));
	memset(req + strlen(head), 'p', pad);
	memcpy(req + strlen(head) + pad, tail, strlen(tail) + 1);
	return req;
}

TEST(a_status_line_no_request_asked_for_is_not_counted)
{
	const char *req = "GET /message HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *full = full_capture();
	char *text;

	setup();
	CHECK(strlen(full) == SONDE_REQ_CAP);
	exchange(req, "HTTP/1.1 200 OK\r\n", 0, 1);
	/* The body, written after the head, starts like a status line; the
	 * capture holds every byte read, and no second request. */
	exchange(req, "HTTP/1.1 200 OK\r\n", 1, 1);
	exchange(req, "HTTP/1.1 404 Not Found\r\n", 2, 1);
	/* A capture that filled up may have lost the request: counted,
	 * with what is known of it. */
	exchange(full, "HTTP/1.1 200 OK\r\n", 0, 1);
	exchange(full, "HTTP/1.1 204 No Content\r\n", 1, 1);
	exchange(full, "HTTP/1.1 200 OK\r\n", 2, 1);
	text = render();
	CHECK(strstr(text, SERIES("GET", "200", "/message") "1\n"));
	CHECK(strstr(text, SERIES("GET", "200", "/a") "1\n"));
	CHECK(strstr(text, SERIES("_OTHER", "204", "_unknown") "1\n"));
	CHECK(strstr(text, SERIES("_OTHER", "200", "_unknown") "1\n"));
	CHECK(strstr(text, "sonde_series 4\n"));
	CHECK(strstr(text, "sonde_parse_errors_total{reason=\"no_request\"} "
			   "2\n"));
	free(text);
}

TEST(request_bytes_beyond_the_record_are_not_read)
{
	char *text;

	setup();
	/* The record has room for 16 bytes: the rest of the path, though
	 * req_len counts it, is not there. */
	exchange_in(16, "GET /abcdefghijk/zz HTTP/1.1\r\n\r\n",
		    "HTTP/1.1 200 OK\r\n", 0, 1);
	exchange_in(SONDE_REQ_CAP, "GET /abcdefghijk/zz HTTP/1.1\r\n\r\n",
		    "HTTP/1.1 200 OK\r\n", 0, 1);
	/* Cut in its query, a path is whole. */
	exchange_in(16, "GET /abc?q=zzzzzzzzz HTTP/1.1\r\n\r\n",
		    "HTTP/1.1 200 OK\r\n", 0, 1);
	text = render();
	/* A path cut short is no route: "/abcdefghijk" was made up. */
	CHECK(!strstr(text, "/abcdefghijk\""));
	CHECK(strstr(text, SERIES("GET", "200", "_unknown") "1\n"));
	CHECK(strstr(text, SERIES("GET", "200", "/abcdefghijk/zz") "1\n"));
	CHECK(strstr(text, SERIES("GET", "200", "/abc") "1\n"));
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
	dispatch_record(NULL, junk, sizeof(junk));
	text = render();
	CHECK(strstr(text, "sonde_series 0\n"));
	CHECK(strstr(text, "sonde_parse_errors_total{reason=\"response_status"
			   "\"} 2\n"));
	CHECK(strstr(text, "sonde_parse_errors_total{reason=\"record\"} 1\n"));
	free(text);
}

TEST(client_exchanges_name_the_peer_not_the_route)
{
	struct sonde_http_event ev = { 0 };
	const char *req = "POST /orders/12 HTTP/1.1\r\nHost: api\r\n\r\n";
	const char *resp = "HTTP/1.1 502 Bad Gateway\r\n";
	char *text;

	setup();
	ev.hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	ev.hdr.tgid = 0x7ffffff4; /* no such process, not seen before */
	memcpy(ev.comm, "unitcli", 8);
	ev.role = SONDE_ROLE_CLIENT;
	ev.family = 10; /* AF_INET6, carrying ::ffff:10.1.2.3 */
	ev.daddr[10] = ev.daddr[11] = 0xff;
	ev.daddr[12] = 10, ev.daddr[13] = 1, ev.daddr[14] = 2, ev.daddr[15] = 3;
	ev.sport = 40000;
	ev.dport = 8443;
	ev.start_ns = 1;
	ev.end_ns = 1 + 20000000;
	/* A client's record carries only the start of its request. */
	ev.req_len = SONDE_CLIENT_REQ_CAP;
	ev.resp_len = status_line(&ev, resp);
	memcpy(ev.req, req, ev.req_len);
	dispatch_record(NULL, &ev, SONDE_EXCHANGE_BYTES(SONDE_CLIENT_REQ_CAP));
	text = render();
	CHECK(strstr(text, "http_client_request_duration_seconds_count{"
			   "service_name=\"unitcli\",http_request_method="
			   "\"POST\",http_response_status_code=\"502\","
			   "server_address=\"10.1.2.3\",server_port=\"8443\"} "
			   "1\n"));
	CHECK(strstr(text, "http_client_request_duration_seconds_bucket{"
			   "service_name=\"unitcli\",http_request_method="
			   "\"POST\",http_response_status_code=\"502\","
			   "server_address=\"10.1.2.3\",server_port=\"8443\","
			   "le=\"0.025\"} 1\n"));
	CHECK(!strstr(text, "http_server_request_duration_seconds"));
	CHECK(!strstr(text, "/orders"));
	free(text);
}

/* A record like an earlier one goes to the series the earlier one found
 * without its labels worked out again: only while everything its labels
 * come from is the same, and every observation still counted exactly. */
TEST(records_like_earlier_ones_count_exactly)
{
	const char *req = "GET /users/7 HTTP/1.1\r\nHost: x\r\n\r\n";
	uint64_t hour = 3600ull * 1000000000ull;
	struct timespec now;
	char *text;

	setup();
	dispatch_clear();
	for (int i = 0; i < 3; i++) {
		exchange(req, "HTTP/1.1 200 OK\r\n", 0, 1);
		exchange(req, "HTTP/1.1 503 Busy\r\n", 0, 1);
	}
	text = render();
	CHECK(strstr(text, SERIES("GET", "200", "/users/{id}") "3\n"));
	CHECK(strstr(text, SERIES("GET", "503", "/users/{id}") "3\n"));
	free(text);
	/* Every series expired and was freed: the next goes to a new one. */
	clock_gettime(CLOCK_REALTIME, &now);
	CHECK(registry_expire((uint64_t)now.tv_sec * 1000000000ull + 2 * hour,
			      hour) == 2);
	exchange(req, "HTTP/1.1 200 OK\r\n", 0, 1);
	text = render();
	CHECK(strstr(text, SERIES("GET", "200", "/users/{id}") "1\n"));
	CHECK(strstr(text, "sonde_series 1\n"));
	free(text);
	/* The process exited; a new one got its pid: named afresh. */
	process_exit(0x7ffffff1);
	dispatch_end_round();
	exchange_from("othersvc", req, "HTTP/1.1 200 OK\r\n");
	text = render();
	CHECK(strstr(text, SERIES("GET", "200", "/users/{id}") "1\n"));
	CHECK(strstr(text, "service_name=\"othersvc\",http_request_method="
			   "\"GET\",http_response_status_code=\"200\","
			   "http_route=\"/users/{id}\",server_port=\"8080\"} "
			   "1\n"));
	free(text);
	procinfo_forget(0x7ffffff1);
}

/* Beyond the route cap, each request of a new route is counted as an
 * overflow, however often the same request line comes. */
TEST(every_request_over_the_route_cap_counts_as_an_overflow)
{
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 1,
				       .max_peers_per_service = 100,
				       .max_series = 100 };
	char *text;

	registry_free();
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	dispatch_clear();
	exchange("GET /a HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n", 0, 1);
	for (int i = 0; i < 3; i++)
		exchange("GET /b HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n", 0,
			 1);
	text = render();
	CHECK(strstr(text, SERIES("GET", "200", "/a") "1\n"));
	CHECK(strstr(text, SERIES("GET", "200", "_overflow") "3\n"));
	CHECK(strstr(text, "sonde_route_overflows_total{service_name="
			   "\"unitsvc\"} 3\n"));
	free(text);
}

/* Captured headers, and a client's peer and method, decide the series
 * of records whose request lines are the same. */
TEST(labels_beyond_the_request_line_keep_series_apart)
{
	struct metric_family saved = family_http_server;
	char *hdrs[] = { "header=X-Tenant-ID,label=tenant_id" }, err[256];
	char *text;

	setup();
	dispatch_clear();
	CHECK(labels_init(&family_http_server, NULL, 0, hdrs, 1, err,
			  sizeof(err)) == 0);
	for (int i = 0; i < 2; i++) {
		exchange("GET / HTTP/1.1\r\nX-Tenant-ID: a\r\n\r\n",
			 "HTTP/1.1 200 OK\r\n", 0, 1);
		exchange("GET / HTTP/1.1\r\nX-Tenant-ID: b\r\n\r\n",
			 "HTTP/1.1 200 OK\r\n", 0, 1);
		exchange("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n", 0, 1);
	}
	for (uint8_t peer = 1; peer <= 2; peer++) {
		client("GET /x HTTP/1.1\r\n", peer);
		client("GET /y HTTP/1.1\r\n", peer);
		client("POST /x HTTP/1.1\r\n", peer);
	}
	text = render();
	CHECK(strstr(text, "server_port=\"8080\",tenant_id=\"a\"} 2\n"));
	CHECK(strstr(text, "server_port=\"8080\",tenant_id=\"b\"} 2\n"));
	CHECK(strstr(text, "server_port=\"8080\",tenant_id=\"\"} 2\n"));
	CHECK(strstr(text, CLIENT("GET", "10.0.0.1") "2\n"));
	CHECK(strstr(text, CLIENT("GET", "10.0.0.2") "2\n"));
	CHECK(strstr(text, CLIENT("POST", "10.0.0.1") "1\n"));
	CHECK(strstr(text, CLIENT("POST", "10.0.0.2") "1\n"));
	free(text);
	labels_reset();
	family_http_server = saved;
}

/* One HTTP/2 connection's header blocks, as the kernel sends them. */
struct h2conn {
	uint8_t role;
	uint32_t seq[2];
	nghttp2_hd_deflater *enc[2];
};

/* Sends fields (name, value, ..., NULL) as one HEADERS frame. */
static void h2_headers(struct h2conn *c, int to_client, uint32_t stream,
		       bool end_stream, uint64_t ts, const char *const *fields)
{
	struct sonde_h2_event ev = { 0 };
	size_t len = hpack_encode(c->enc[to_client], fields, (uint8_t *)ev.data,
				  sizeof(ev.data));

	ev.hdr.kind = SONDE_EV_HTTP2;
	/* No such processes: comm names them. */
	ev.hdr.tgid = c->role == SONDE_ROLE_CLIENT ? 0x7ffffff6 : 0x7ffffff5;
	ev.hdr.ts_ns = ts;
	memcpy(ev.comm, c->role == SONDE_ROLE_CLIENT ? "grpccli" : "grpcsvc",
	       8);
	ev.since = 77;
	ev.fd = 9;
	ev.seq = c->seq[to_client]++;
	ev.stream_id = stream;
	ev.frame_len = ev.len = (uint16_t)len;
	ev.sport = c->role == SONDE_ROLE_CLIENT ? 41000 : 50051;
	ev.dport = c->role == SONDE_ROLE_CLIENT ? 50051 : 41000;
	ev.family = AF_INET;
	memcpy(ev.daddr, "\x0a\x00\x00\x07", 4);
	ev.type = SONDE_H2_HEADERS;
	ev.flags = SONDE_H2_FLAG_END_HEADERS |
		   (end_stream ? SONDE_H2_FLAG_END_STREAM : 0);
	ev.to_client = (uint8_t)to_client;
	ev.role = c->role;
	/* The record ends with the piece it carries. */
	dispatch_record(NULL, &ev, offsetof(struct sonde_h2_event, data) + len);
}

/* One gRPC call on c: request at start, trailers with status at end. */
static void grpc_call(struct h2conn *c, uint32_t stream, const char *path,
		      const char *status, uint64_t start, uint64_t end)
{
	const char *req[] = {
		":method", "POST",	   ":scheme",	       "http", ":path",
		path,	   "content-type", "application/grpc", NULL
	};
	const char *head[] = { ":status", "200", NULL };
	const char *trailers[] = { "grpc-status", status, NULL };

	h2_headers(c, 0, stream, false, start, req);
	h2_headers(c, 1, stream, false, start + 1, head);
	h2_headers(c, 1, stream, true, end, trailers);
}

TEST(grpc_calls_become_rpc_series)
{
	struct h2conn srv = { .role = SONDE_ROLE_SERVER },
		      cli = { .role = SONDE_ROLE_CLIENT };
	char *text;

	setup();
	http2_clear();
	for (int i = 0; i < 2; i++) {
		nghttp2_hd_deflate_new(&srv.enc[i], 4096);
		nghttp2_hd_deflate_new(&cli.enc[i], 4096);
	}
	grpc_call(&srv, 1, "/shop.Cart/Add", "0", 1000, 1000 + 3000000);
	grpc_call(&srv, 3, "/shop.Cart/Add", "5", 2000, 2000 + 30000000);
	grpc_call(&srv, 5, "/shop.Cart/Add", "5", 3000, 3000 + 30000000);
	/* Not a method name: filed under _OTHER, not as a label value. */
	grpc_call(&srv, 7, "/../etc/passwd", "12", 4000, 5000);
	grpc_call(&srv, 9, "/x?y=1", "12", 4000, 5000);
	grpc_call(&cli, 1, "/shop.Cart/Add", "14", 1000, 1000 + 600000000);
	text = render();
	CHECK(strstr(text, "rpc_server_call_duration_seconds_count{"
			   "service_name=\"grpcsvc\",rpc_system_name=\"grpc\","
			   "rpc_method=\"shop.Cart/Add\","
			   "rpc_response_status_code=\"OK\","
			   "server_port=\"50051\"} 1\n"));
	CHECK(strstr(text, "rpc_server_call_duration_seconds_count{"
			   "service_name=\"grpcsvc\",rpc_system_name=\"grpc\","
			   "rpc_method=\"shop.Cart/Add\","
			   "rpc_response_status_code=\"NOT_FOUND\","
			   "server_port=\"50051\"} 2\n"));
	CHECK(strstr(text, "rpc_server_call_duration_seconds_bucket{"
			   "service_name=\"grpcsvc\",rpc_system_name=\"grpc\","
			   "rpc_method=\"shop.Cart/Add\","
			   "rpc_response_status_code=\"NOT_FOUND\","
			   "server_port=\"50051\",le=\"0.05\"} 2\n"));
	CHECK(strstr(text, "rpc_method=\"_OTHER\","
			   "rpc_response_status_code=\"UNIMPLEMENTED\","
			   "server_port=\"50051\"} 2\n"));
	CHECK(!strstr(text, "passwd"));
	CHECK(strstr(text, "rpc_client_call_duration_seconds_count{"
			   "service_name=\"grpccli\",rpc_system_name=\"grpc\","
			   "rpc_method=\"shop.Cart/Add\","
			   "rpc_response_status_code=\"UNAVAILABLE\","
			   "server_address=\"10.0.0.7\",server_port=\"50051\"} "
			   "1\n"));
	/* gRPC calls are not also HTTP requests. */
	CHECK(!strstr(text, "http_server_request_duration_seconds"));
	CHECK(!strstr(text, "http_client_request_duration_seconds"));
	free(text);
	for (int i = 0; i < 2; i++) {
		nghttp2_hd_deflate_del(srv.enc[i]);
		nghttp2_hd_deflate_del(cli.enc[i]);
	}
	http2_clear();
}

/* sonde_parse_errors_total for reason, which counts across tests. */
static unsigned long parse_errors(const char *reason)
{
	struct strbuf sb = { 0 };
	char want[96];
	const char *at;
	unsigned long n = 0;

	events_register_metrics();
	prom_render(&sb);
	snprintf(want, sizeof(want), "sonde_parse_errors_total{reason=\"%s\"} ",
		 reason);
	at = strstr(sb.data, want);
	if (at)
		n = strtoul(at + strlen(want), NULL, 10);
	strbuf_release(&sb);
	return n;
}

/* HTTP/2 requests are labelled as HTTP/1's are, from the decoded
 * fields: method, route, status, port, and the captured headers. */
TEST(http2_exchanges_become_http_series)
{
	struct metric_family saved = family_http_server;
	struct h2conn srv = { .role = SONDE_ROLE_SERVER };
	char *hdrs[] = { "header=X-Tenant-ID,label=tenant_id" }, err[256];
	const char *req[] = { ":method", "GET",	       ":scheme",
			      "https",	 ":authority", "shop.test",
			      ":path",	 "/carts/42",  "x-tenant-id",
			      "acme",	 NULL };
	const char *ok[] = { ":status", "200", NULL };
	const char *bad[] = { ":status", "2x0", NULL };
	unsigned long unread = parse_errors("response_status");
	char *text;

	setup();
	http2_clear();
	CHECK(labels_init(&family_http_server, NULL, 0, hdrs, 1, err,
			  sizeof(err)) == 0);
	for (int i = 0; i < 2; i++)
		nghttp2_hd_deflate_new(&srv.enc[i], 4096);
	h2_headers(&srv, 0, 1, false, 1000, req);
	h2_headers(&srv, 1, 1, false, 1000 + 2000000, ok);
	/* A :status that is no code: a response that could not be read. */
	h2_headers(&srv, 0, 3, false, 3000, req);
	h2_headers(&srv, 1, 3, false, 4000, bad);
	text = render();
	CHECK(strstr(text, "http_server_request_duration_seconds_count{"
			   "service_name=\"grpcsvc\",http_request_method="
			   "\"GET\",http_response_status_code=\"200\","
			   "http_route=\"/carts/{id}\",server_port=\"50051\","
			   "tenant_id=\"acme\"} 1\n"));
	CHECK(strstr(text, "sonde_series 1\n"));
	CHECK(parse_errors("response_status") == unread + 1);
	free(text);
	for (int i = 0; i < 2; i++)
		nghttp2_hd_deflate_del(srv.enc[i]);
	http2_clear();
	labels_reset();
	family_http_server = saved;
}

/* Whether an exchange failed, as each protocol's conventions say: the
 * server's fault on the server side, any failure on the client's. */
TEST(protocols_say_which_exchanges_failed)
{
	static const struct {
		uint8_t role;
		int status, grpc_status;
		bool error;
	} cases[] = {
		{ SONDE_ROLE_SERVER, 200, -1, false },
		{ SONDE_ROLE_SERVER, 404, -1, false },
		{ SONDE_ROLE_SERVER, 503, -1, true },
		{ SONDE_ROLE_CLIENT, 404, -1, true },
		{ SONDE_ROLE_CLIENT, 302, -1, false },
		{ SONDE_ROLE_SERVER, 200, 5, false }, /* NOT_FOUND */
		{ SONDE_ROLE_SERVER, 200, 14, true }, /* UNAVAILABLE */
		{ SONDE_ROLE_SERVER, 200, 4, true },  /* DEADLINE_EXCEEDED */
		{ SONDE_ROLE_CLIENT, 200, 5, true },  /* NOT_FOUND */
		{ SONDE_ROLE_CLIENT, 200, 0, false }, /* OK */
	};
	uint8_t addr[16] = { 10, 0, 0, 1 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_exchange x = {
			.role = cases[i].role,
			.target = "/a.B/C",
			.target_len = 6,
			.target_complete = true,
			.status = cases[i].status,
			.grpc_status = cases[i].grpc_status,
			.family = AF_INET,
			.daddr = addr,
		};
		struct proto_obs o = { 0 };

		CHECK(http_observe(&x, &o) == 1);
		CHECK(o.error == cases[i].error);
		CHECK(o.op == PROTO_OBSERVE);
	}
}

TEST(addresses_are_written_as_ipv4_or_ipv6)
{
	__u8 v4[16] = { 127, 0, 0, 1 };
	__u8 v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	__u8 mapped[16] = { [10] = 0xff, [11] = 0xff, 192, 168, 0, 9 };
	char out[48];

	CHECK(fmt_address(2, v4, out, sizeof(out)) == 0);
	CHECK(strcmp(out, "127.0.0.1") == 0);
	CHECK(fmt_address(10, v6, out, sizeof(out)) == 0);
	CHECK(strcmp(out, "2001:db8::1") == 0);
	CHECK(fmt_address(10, mapped, out, sizeof(out)) == 0);
	CHECK(strcmp(out, "192.168.0.9") == 0);
	CHECK(fmt_address(1, v4, out, sizeof(out)) == -1);
}

TEST(ipv4_addresses_match_inet_ntop_for_every_octet)
{
	__u8 v4[16] = { 0 };
	char out[48], want[INET_ADDRSTRLEN];

	for (unsigned i = 0; i < 256; i++) {
		v4[0] = (__u8)i;
		v4[1] = (__u8)(255 - i);
		v4[2] = (__u8)(i * 7);
		v4[3] = (__u8)(i / 3);
		CHECK(fmt_address(2, v4, out, sizeof(out)) == 0);
		inet_ntop(AF_INET, v4, want, sizeof(want));
		CHECK(strcmp(out, want) == 0);
	}
	CHECK(fmt_address(2, v4, out, INET_ADDRSTRLEN - 1) == -1);
}

/* What a flag, a selection rule or an environment variable gives as a
 * number: digits alone, inside the range. */
TEST(numbers_are_read_whole_and_in_range)
{
	static const char *const bad[] = {
		"",	"-1",  "+1",
		" 1",	"1 ",  "1x",
		"0x10", "1.0", "99999999999999999999999"
	};
	unsigned long n = 7;

	CHECK(fmt_parse_ulong("42", 1, 100, &n) == 0 && n == 42);
	CHECK(fmt_parse_ulong("1", 1, 100, &n) == 0 && n == 1);
	CHECK(fmt_parse_ulong("100", 1, 100, &n) == 0 && n == 100);
	CHECK(fmt_parse_ulong("007", 1, 100, &n) == 0 && n == 7);
	n = 5;
	CHECK(fmt_parse_ulong("0", 1, 100, &n) == -1 && n == 5);
	CHECK(fmt_parse_ulong("101", 1, 100, &n) == -1 && n == 5);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(fmt_parse_ulong(bad[i], 0, (unsigned long)-1, &n) == -1 &&
		      n == 5);
}

TEST(numbers_are_written_in_decimal_within_the_buffer)
{
	char out[12];

	CHECK(fmt_uint(0, out, sizeof(out)) == 0);
	CHECK(strcmp(out, "0") == 0);
	CHECK(fmt_uint(503, out, sizeof(out)) == 0);
	CHECK(strcmp(out, "503") == 0);
	CHECK(fmt_uint(65535, out, sizeof(out)) == 0);
	CHECK(strcmp(out, "65535") == 0);
	CHECK(fmt_uint(4294967295u, out, sizeof(out)) == 0);
	CHECK(strcmp(out, "4294967295") == 0);
	CHECK(fmt_uint(8080, out, 4) == -1);
	CHECK(fmt_uint(808, out, 4) == 0);
	CHECK(strcmp(out, "808") == 0);
}

TEST(connect_results_come_from_the_socket_error)
{
	CHECK(strcmp(tcp_connect_result(0, 1), "ok") == 0);
	CHECK(strcmp(tcp_connect_result(111, 0), "refused") == 0);
	CHECK(strcmp(tcp_connect_result(110, 0), "timeout") == 0);
	CHECK(strcmp(tcp_connect_result(113, 0), "unreachable") == 0);
	CHECK(strcmp(tcp_connect_result(101, 0), "unreachable") == 0);
	CHECK(strcmp(tcp_connect_result(0, 0), "aborted") == 0);
	CHECK(strcmp(tcp_connect_result(13, 0), "other") == 0);
}

static void tcp(__u32 tgid, const char *comm, __u64 sk, __u8 what, __u8 detail,
		__u8 role, int err)
{
	struct sonde_tcp_event ev = { 0 };

	ev.hdr.kind = SONDE_EV_TCP;
	ev.hdr.tgid = tgid;
	memcpy(ev.comm, comm, strlen(comm));
	ev.sk = sk;
	ev.what = what;
	ev.detail = detail;
	ev.role = role;
	ev.err = err;
	ev.family = 2;
	ev.daddr[0] = 10, ev.daddr[3] = 7;
	ev.dport = 5432;
	ev.duration_ns = 2000000;
	dispatch_record(NULL, &ev, sizeof(ev));
}

#define ACTIVE(svc, role, extra)                                             \
	"sonde_tcp_active_connections{service_name=\"" svc "\",role=\"" role \
	"\"" extra "} "
#define NAMESPACE_MONEY ",service_namespace=\"money\""

TEST(tcp_events_are_charged_to_the_socket_owner)
{
	char *text;

	setup();
	/* No such pids: the owner's comm names the service. */
	tcp(0x7ffffff2, "api", 0x100, SONDE_TCP_CONNECT,
	    SONDE_TCP_CONNECT_ESTABLISHED, SONDE_ROLE_CLIENT, 0);
	tcp(0x7ffffff2, "api", 0x200, SONDE_TCP_CONNECT,
	    SONDE_TCP_CONNECT_FAILED, SONDE_ROLE_CLIENT, 111);
	tcp(0x7ffffff2, "api", 0x300, SONDE_TCP_CONNECT,
	    SONDE_TCP_CONNECT_FAILED, SONDE_ROLE_CLIENT, 0);
	tcp(0x7ffffff3, "web", 0x400, SONDE_TCP_OPEN, 0, SONDE_ROLE_SERVER, 0);
	tcp(0x7ffffff3, "web", 0x500, SONDE_TCP_OPEN, 0, SONDE_ROLE_SERVER, 0);
	/* A duplicate OPEN for one socket counts once. */
	tcp(0x7ffffff3, "web", 0x500, SONDE_TCP_OPEN, 0, SONDE_ROLE_SERVER, 0);
	tcp(0x7ffffff3, "web", 0x400, SONDE_TCP_RESET, SONDE_TCP_RESET_SENT,
	    SONDE_ROLE_SERVER, 0);
	tcp(0x7ffffff2, "api", 0x100, SONDE_TCP_RESET, SONDE_TCP_RESET_RECEIVED,
	    SONDE_ROLE_CLIENT, 0);
	tcp(0x7ffffff2, "api", 0x100, SONDE_TCP_RETRANSMIT, 0,
	    SONDE_ROLE_CLIENT, 0);
	tcp(0x7ffffff2, "api", 0x100, SONDE_TCP_RETRANSMIT, 0,
	    SONDE_ROLE_CLIENT, 0);
	text = render();
	CHECK(strstr(text, "sonde_tcp_connects_total{service_name=\"api\","
			   "server_address=\"10.0.0.7\",server_port=\"5432\","
			   "result=\"ok\"} 1\n"));
	CHECK(strstr(text, "result=\"refused\"} 1\n"));
	CHECK(strstr(text, "result=\"aborted\"} 1\n"));
	CHECK(strstr(text, "sonde_tcp_connect_duration_seconds_count{"
			   "service_name=\"api\",server_address=\"10.0.0.7\","
			   "server_port=\"5432\"} 1\n"));
	CHECK(strstr(text, ACTIVE("api", "client", "") "1\n"));
	CHECK(strstr(text, ACTIVE("web", "server", "") "2\n"));
	CHECK(strstr(text, "sonde_tcp_resets_total{service_name=\"web\","
			   "direction=\"sent\"} 1\n"));
	CHECK(strstr(text, "sonde_tcp_resets_total{service_name=\"api\","
			   "direction=\"received\"} 1\n"));
	CHECK(strstr(text, "sonde_tcp_retransmits_total{service_name=\"api\"} "
			   "2\n"));
	free(text);
	CHECK(registry_holds() == 3);

	/* CLOSE comes with whatever comm the kernel had (here: none): the
	 * gauge it lowers is the one its OPEN raised. */
	tcp(0x7ffffff3, "", 0x400, SONDE_TCP_CLOSE, 0, SONDE_ROLE_SERVER, 0);
	tcp(0x7ffffff2, "", 0x100, SONDE_TCP_CLOSE, 0, SONDE_ROLE_CLIENT, 0);
	/* A socket never counted is not subtracted. */
	tcp(0x7ffffff2, "", 0x999, SONDE_TCP_CLOSE, 0, SONDE_ROLE_CLIENT, 0);
	text = render();
	CHECK(strstr(text, ACTIVE("api", "client", "") "0\n"));
	CHECK(strstr(text, ACTIVE("web", "server", "") "1\n"));
	free(text);
	CHECK(registry_holds() == 1);
}

TEST(an_open_for_a_counted_connection_moves_it_to_the_new_owner)
{
	char *text;

	setup();
	/* Counted for the listener's process at its passive open... */
	tcp(0x7fffffe8, "master", 0x600, SONDE_TCP_OPEN, 0, SONDE_ROLE_SERVER,
	    0);
	tcp(0x7fffffe8, "master", 0x700, SONDE_TCP_OPEN, 0, SONDE_ROLE_SERVER,
	    0);
	text = render();
	CHECK(strstr(text, ACTIVE("master", "server", "") "2\n"));
	free(text);
	/* ...then a worker reads one: it moves, still counted once. */
	tcp(0x7fffffe9, "worker", 0x600, SONDE_TCP_OPEN, 0, SONDE_ROLE_SERVER,
	    0);
	text = render();
	CHECK(strstr(text, ACTIVE("master", "server", "") "1\n"));
	CHECK(strstr(text, ACTIVE("worker", "server", "") "1\n"));
	free(text);
	CHECK(registry_holds() == 2);
	/* Its close lowers the worker's series, the one it is counted in. */
	tcp(0x7fffffe8, "", 0x600, SONDE_TCP_CLOSE, 0, SONDE_ROLE_SERVER, 0);
	tcp(0x7fffffe8, "", 0x700, SONDE_TCP_CLOSE, 0, SONDE_ROLE_SERVER, 0);
	text = render();
	CHECK(strstr(text, ACTIVE("master", "server", "") "0\n"));
	CHECK(strstr(text, ACTIVE("worker", "server", "") "0\n"));
	free(text);
	CHECK(registry_holds() == 0);
}

#define RETRANSMITS(svc) \
	"sonde_tcp_retransmits_total{service_name=\"" svc "\"} "

TEST(an_exit_is_applied_after_the_round_that_brought_it)
{
	char *text;

	setup();
	/* No such pid: the first event's comm names it, and stays. */
	tcp(0x7ffffff7, "first", 0x100, SONDE_TCP_RETRANSMIT, 0,
	    SONDE_ROLE_CLIENT, 0);
	/* Its exit, then an event read later in the same round (from
	 * another ring): still the process as it was known. */
	process_exit(0x7ffffff7);
	tcp(0x7ffffff7, "second", 0x100, SONDE_TCP_RETRANSMIT, 0,
	    SONDE_ROLE_CLIENT, 0);
	dispatch_end_round();
	/* After the round it is forgotten: a new process with that pid is
	 * looked at afresh. */
	tcp(0x7ffffff7, "third", 0x100, SONDE_TCP_RETRANSMIT, 0,
	    SONDE_ROLE_CLIENT, 0);
	text = render();
	CHECK(strstr(text, RETRANSMITS("first") "2\n"));
	CHECK(strstr(text, RETRANSMITS("third") "1\n"));
	CHECK(!strstr(text, "\"second\""));
	free(text);
	dispatch_end_round();
	procinfo_forget(0x7ffffff7);
}

/* Names the unit-test process: a services rule on its executable. */
static void name_self(const char *rule_namespace)
{
	char exe[256], rule[400], *services[] = { rule };
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char err[256];

	CHECK(n > 0);
	exe[n > 0 ? n : 0] = '\0';
	snprintf(rule, sizeof(rule), "name=unitself,namespace=%s,exe=%s",
		 rule_namespace, exe);
	selection_free();
	CHECK(selection_init(NULL, 0, NULL, 0, services, 1, err, sizeof(err)) ==
	      0);
	procinfo_forget(getpid());
}

TEST(tcp_series_carry_the_optional_labels)
{
	struct metric_family server = family_http_server;
	struct metric_family *fams[] = {
		&family_tcp_connect_duration, &family_tcp_connects,
		&family_tcp_resets, &family_tcp_retransmits, &family_tcp_active
	};
	struct metric_family saved[5];
	char *opt[] = { "service_namespace" }, err[256], *text;
	__u32 self = getpid();

	setup();
	CHECK(labels_init(&server, opt, 1, NULL, 0, err, sizeof(err)) == 0);
	for (int i = 0; i < 5; i++) {
		saved[i] = *fams[i];
		CHECK(labels_init_optional(fams[i], err, sizeof(err)) == 0);
	}
	name_self("money");
	tcp(self, "x", 0x100, SONDE_TCP_CONNECT, SONDE_TCP_CONNECT_ESTABLISHED,
	    SONDE_ROLE_CLIENT, 0);
	tcp(self, "x", 0x100, SONDE_TCP_RESET, SONDE_TCP_RESET_RECEIVED,
	    SONDE_ROLE_CLIENT, 0);
	tcp(self, "x", 0x100, SONDE_TCP_RETRANSMIT, 0, SONDE_ROLE_CLIENT, 0);
	tcp(self, "x", 0x200, SONDE_TCP_OPEN, 0, SONDE_ROLE_SERVER, 0);
	text = render();
	CHECK(strstr(text, "sonde_tcp_connects_total{service_name=\"unitself\","
			   "server_address=\"10.0.0.7\",server_port=\"5432\","
			   "result=\"ok\",service_namespace=\"money\"} 1\n"));
	CHECK(strstr(text, "sonde_tcp_connect_duration_seconds_count{"
			   "service_name=\"unitself\",server_address="
			   "\"10.0.0.7\",server_port=\"5432\","
			   "service_namespace=\"money\"} 1\n"));
	CHECK(strstr(text, "sonde_tcp_resets_total{service_name=\"unitself\","
			   "direction=\"received\",service_namespace="
			   "\"money\"} 1\n"));
	CHECK(strstr(text, "sonde_tcp_retransmits_total{service_name="
			   "\"unitself\",service_namespace=\"money\"} 1\n"));
	CHECK(strstr(text,
		     ACTIVE("unitself", "client", NAMESPACE_MONEY) "1\n"));
	CHECK(strstr(text,
		     ACTIVE("unitself", "server", NAMESPACE_MONEY) "1\n"));
	free(text);
	/* The process now has another namespace: the closes still lower the
	 * series their opens raised, and raise no other. */
	name_self("other");
	tcp(self, "", 0x100, SONDE_TCP_CLOSE, 0, SONDE_ROLE_CLIENT, 0);
	tcp(self, "", 0x200, SONDE_TCP_CLOSE, 0, SONDE_ROLE_SERVER, 0);
	text = render();
	CHECK(strstr(text,
		     ACTIVE("unitself", "client", NAMESPACE_MONEY) "0\n"));
	CHECK(strstr(text,
		     ACTIVE("unitself", "server", NAMESPACE_MONEY) "0\n"));
	CHECK(!strstr(text, "\"other\""));
	free(text);
	CHECK(registry_holds() == 0);
	for (int i = 0; i < 5; i++)
		*fams[i] = saved[i];
	selection_free();
	procinfo_forget(self);
	labels_reset();
}

/* A database record of the made-up process's server side: the n bytes
 * at data that went one way on the connection (proto, sk, its local
 * port, its client's port peer), the seq-th of that direction and the
 * order-th of both. */
static void db_bytes(__u8 proto, __u64 sk, __u16 port, __u16 peer,
		     int from_client, __u32 seq, __u32 order, const void *data,
		     size_t n, __u64 ts)
{
	static struct sonde_db_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.hdr.kind = SONDE_EV_DB;
	ev.hdr.tgid = 0x7ffffff1;
	ev.hdr.ts_ns = ts;
	memcpy(ev.comm, "unitsvc", 8);
	ev.sk = sk;
	ev.fd = 9;
	ev.total = n;
	ev.len = n;
	ev.sport = port;
	ev.dport = peer;
	ev.family = AF_INET;
	ev.proto = proto;
	ev.role = SONDE_ROLE_SERVER;
	ev.from_client = from_client;
	ev.seq = seq;
	ev.order = order;
	ev.starts = 1;
	memcpy(ev.data, data, n);
	dispatch_record(NULL, &ev, SONDE_DB_BYTES(n));
}

static void redis_peer_bytes(__u64 sk, __u16 peer, int from_client, __u32 seq,
			     __u32 order, const char *s, __u64 ts)
{
	db_bytes(SONDE_PROTO_REDIS, sk, 6379, peer, from_client, seq, order, s,
		 strlen(s), ts);
}

static void redis_bytes(__u64 sk, int from_client, __u32 seq, __u32 order,
			const char *s, __u64 ts)
{
	redis_peer_bytes(sk, 40000, from_client, seq, order, s, ts);
}

#define REDIS_GET "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
#define REDIS_SERVER_GETS                                                      \
	"db_server_operation_duration_seconds_count{service_name=\"unitsvc\"," \
	"db_system_name=\"redis\",db_operation_name=\"GET\","                  \
	"db_collection_name=\"\",db_response_status_code=\"\","                \
	"error_type=\"\",server_port=\"6379\"} "

/* The server's GET count is gets, and the streams and calls lost since
 * the test began (at streams0 and calls0) are streams and calls. */
static void check_gets(const char *gets, unsigned long streams0,
		       unsigned long streams, unsigned long calls0,
		       unsigned long calls)
{
	char *text = render();
	char want[sizeof(REDIS_SERVER_GETS) + 24];

	snprintf(want, sizeof(want), REDIS_SERVER_GETS "%s\n", gets);
	CHECK(strstr(text, want));
	free(text);
	CHECK(parse_errors("db_stream_lost") == streams0 + streams);
	CHECK(parse_errors("db_call_lost") == calls0 + calls);
}

/* A call is timed from its request to its own reply; a new connection
 * that gets the fd and the socket memory of one that closed starts
 * afresh (its records are numbered from 0 again) and loses nothing; a
 * record missing from a direction loses the calls open with it,
 * counted. */
TEST(database_calls_follow_their_connection)
{
	unsigned long lost_streams = parse_errors("db_stream_lost");
	unsigned long lost_calls = parse_errors("db_call_lost");

	setup();
	redis_bytes(0x1000, 1, 0, 0, REDIS_GET REDIS_GET, 1000);
	redis_bytes(0x1000, 0, 0, 1, "$1\r\nv\r\n", 3000);
	redis_bytes(0x1000, 0, 1, 2, "$-1\r\n", 5000);
	/* Closed; a new connection on the same fd and socket memory. */
	redis_bytes(0x1000, 1, 0, 0, REDIS_GET, 7000);
	redis_bytes(0x1000, 0, 0, 1, "$1\r\nv\r\n", 8000);
	dispatch_end_round();
	check_gets("3", lost_streams, 0, lost_calls, 0);

	/* Record 1 of the replies never came: the call open is lost. The
	 * record after it is held, in case the one before it is still in
	 * another CPU's ring, until the second end of round. */
	redis_bytes(0x1000, 1, 1, 2, REDIS_GET, 9000);
	redis_bytes(0x1000, 0, 2, 4, "$1\r\nv\r\n", 9500);
	dispatch_end_round();
	CHECK(parse_errors("db_call_lost") == lost_calls);
	dispatch_end_round();
	check_gets("3", lost_streams, 1, lost_calls, 1);
	dispatch_clear();
}

/* The index the BPF side is given for the Redis command name. */
struct fold_find {
	const char *name;
	int index;
};

static void fold_found(const char *name, uint16_t index, void *arg)
{
	struct fold_find *f = arg;

	if (!strcmp(name, f->name))
		f->index = index;
}

static int fold_index(const char *name)
{
	struct fold_find f = { name, -1 };

	redis_each_fold_op(fold_found, &f);
	return f.index;
}

/* A Redis call the BPF side followed whole, at the server: op's index,
 * from start to end, and an error reply's text. */
static void redis_folded(int op, __u64 start, __u64 end, const char *error)
{
	struct sonde_db_call_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.hdr.kind = SONDE_EV_DB_CALL;
	ev.hdr.tgid = 0x7ffffff1;
	ev.hdr.ts_ns = end;
	ev.start_ns = start;
	memcpy(ev.comm, "unitsvc", 8);
	ev.sport = 6379;
	ev.dport = 40000;
	ev.family = AF_INET;
	ev.op = (__u16)op;
	ev.proto = SONDE_PROTO_REDIS;
	ev.role = SONDE_ROLE_SERVER;
	if (error) {
		ev.error = 1;
		memcpy(ev.status, error,
		       strlen(error) < sizeof(ev.status) ? strlen(error) :
							   sizeof(ev.status));
	}
	dispatch_record(NULL, &ev, sizeof(ev));
}

/* The commands the BPF side may follow whole are the plain ones: not
 * those that change how the connection talks, nor those whose replies
 * do not come one a command. A call it followed is observed like one
 * the daemon followed from the bytes, an error with its code; one whose
 * command the daemon does not know is counted, not observed. */
TEST(redis_calls_followed_whole_are_observed)
{
	unsigned long lost_calls = parse_errors("db_call_lost");
	char *text;

	setup();
	CHECK(fold_index("GET") >= 0);
	CHECK(fold_index("LPUSH") >= 0);
	CHECK(fold_index("HELLO") < 0);
	CHECK(fold_index("SUBSCRIBE") < 0);
	CHECK(fold_index("MULTI") < 0);
	CHECK(fold_index("EXEC") < 0);
	CHECK(fold_index("CLIENT") < 0);
	redis_folded(fold_index("GET"), 1000, 3000, NULL);
	redis_folded(fold_index("GET"), 4000, 8000, NULL);
	redis_folded(fold_index("LPUSH"), 9000, 10000,
		     "WRONGTYPE Operation against a key");
	redis_folded(fold_index("LPUSH"), 11000, 12000, "not a code\r\n");
	redis_folded(fold_index("HELLO") < 0 ? 60000 : 0, 1, 2, NULL);
	dispatch_end_round();
	text = render();
	CHECK(strstr(text, REDIS_SERVER_GETS "2\n"));
	CHECK(strstr(text, "db_server_operation_duration_seconds_sum{service_"
			   "name=\"unitsvc\",db_system_name=\"redis\","
			   "db_operation_name=\"GET\",db_collection_name=\"\","
			   "db_response_status_code=\"\",error_type=\"\","
			   "server_port=\"6379\"} 0.000006\n"));
	CHECK(strstr(text,
		     "db_operation_name=\"LPUSH\",db_collection_name="
		     "\"\",db_response_status_code=\"WRONGTYPE\","
		     "error_type=\"WRONGTYPE\",server_port=\"6379\"} 1\n"));
	CHECK(strstr(text, "db_operation_name=\"LPUSH\",db_collection_name="
			   "\"\",db_response_status_code=\"ERR\","
			   "error_type=\"ERR\",server_port=\"6379\"} 1\n"));
	CHECK(!strstr(text, "HELLO"));
	free(text);
	CHECK(parse_errors("db_call_lost") == lost_calls + 1);
	dispatch_clear();
}

extern const struct proto proto_db_sums;

/* What a Redis server key's sums grew by: count calls of op, all in the
 * first bucket, sum_ns together. */
static struct sonde_db_sums_event redis_sums(int op, uint64_t count,
					     uint64_t sum_ns)
{
	struct sonde_db_sums_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.hdr.kind = SONDE_EV_DB_SUMS;
	ev.hdr.tgid = 0x7ffffff1;
	ev.key.tgid = 0x7ffffff1;
	ev.key.op = (__u16)op;
	ev.key.port = 6379;
	ev.key.proto = SONDE_PROTO_REDIS;
	ev.key.role = SONDE_ROLE_SERVER;
	ev.count = count;
	ev.grew.sum_ns = sum_ns;
	ev.grew.buckets[0] = count;
	memcpy(ev.grew.comm, "unitsvc", 8);
	return ev;
}

/* A key's sums become one merge of all its calls, into the series their
 * records would have made; sums the daemon cannot name lose every call
 * they hold, each counted, not one for the record. */
TEST(summed_calls_merge_whole_and_are_lost_whole)
{
	unsigned long lost_calls = parse_errors("db_call_lost");
	struct sonde_db_sums_event ev;
	struct proto_record r;

	setup();
	ev = redis_sums(fold_index("GET"), 5, 25000);
	memset(&r, 0, sizeof(r));
	CHECK(proto_db_sums.read(&ev, sizeof(ev), &r) == PROTO_NEXT_OBSERVE);
	CHECK(r.merge && r.merge->count == 5 && r.merge->sum_ns == 25000);
	CHECK(r.merge && r.merge->buckets[0] == 5);
	CHECK(r.tgid == 0x7ffffff1 && r.port == 6379 && r.key_len > 0);
	CHECK(parse_errors("db_call_lost") == lost_calls);

	ev = redis_sums(60000, 7, 7000);
	memset(&r, 0, sizeof(r));
	CHECK(proto_db_sums.read(&ev, sizeof(ev), &r) == PROTO_NEXT_NOTHING);
	CHECK(parse_errors("db_call_lost") == lost_calls + 7);
	ev = redis_sums(fold_index("GET"), 3, 300);
	ev.key.proto = 200;
	CHECK(proto_db_sums.read(&ev, sizeof(ev), &r) == PROTO_NEXT_NOTHING);
	CHECK(parse_errors("db_call_lost") == lost_calls + 10);
	dispatch_clear();
}

/* Each CPU has its ring, so a reply can be read before its request:
 * records are taken in the order they were made, whichever came first,
 * waiting through one more round for one still in another CPU's ring.
 * A record whose place was given up, read later, is passed over, and
 * the call it belonged to is counted lost, never mistimed. */
TEST(database_records_are_taken_in_the_order_they_were_made)
{
	unsigned long lost_streams = parse_errors("db_stream_lost");
	unsigned long lost_calls = parse_errors("db_call_lost");
	char *text;

	setup();
	redis_bytes(0x3000, 0, 0, 1, "$1\r\nv\r\n", 3000);
	redis_bytes(0x3000, 1, 0, 0, REDIS_GET, 1000);
	redis_bytes(0x3000, 0, 1, 3, "$1\r\nv\r\n", 9000);
	dispatch_end_round();
	redis_bytes(0x3000, 1, 1, 2, REDIS_GET, 5000);
	dispatch_end_round();
	check_gets("2", lost_streams, 0, lost_calls, 0);
	/* 2 µs and 4 µs: each reply timed against its own request. */
	text = render();
	CHECK(strstr(text, "db_server_operation_duration_seconds_sum{service_"
			   "name=\"unitsvc\",db_system_name=\"redis\","
			   "db_operation_name=\"GET\",db_collection_name=\"\","
			   "db_response_status_code=\"\",error_type=\"\","
			   "server_port=\"6379\"} 0.000006\n"));
	free(text);

	/* Order 5, a reply, is not read in time: the request after it is
	 * taken in at the second end of round, and order 5 read after that
	 * is passed over. The next reply finds its direction short of one
	 * record: the two calls open are lost, not ended by the wrong
	 * replies. */
	redis_bytes(0x3000, 1, 2, 4, REDIS_GET, 10000);
	redis_bytes(0x3000, 1, 3, 6, REDIS_GET, 12000);
	dispatch_end_round();
	dispatch_end_round();
	redis_bytes(0x3000, 0, 2, 5, "$1\r\nv\r\n", 11000);
	redis_bytes(0x3000, 0, 3, 7, "$1\r\nv\r\n", 13000);
	dispatch_end_round();
	check_gets("2", lost_streams, 1, lost_calls, 2);

	/* A connection first read far into its life (its entry forgotten)
	 * starts where it is: nothing to wait for. */
	redis_peer_bytes(0x3800, 40009, 1, 0, 5000, REDIS_GET, 20000);
	redis_peer_bytes(0x3800, 40009, 0, 0, 5001, "$1\r\nv\r\n", 21000);
	check_gets("3", lost_streams, 1, lost_calls, 2);
	dispatch_clear();
}

/* A connection closes and the next one gets its fd and socket memory
 * back: the new one's first call can be read before the old one's last
 * reply. Each is still timed and counted on its own connection. */
TEST(a_reused_socket_waits_for_the_old_connections_records)
{
	unsigned long lost_streams = parse_errors("db_stream_lost");
	unsigned long lost_calls = parse_errors("db_call_lost");

	setup();
	redis_peer_bytes(0x4000, 40001, 1, 0, 0, REDIS_GET, 1000);
	redis_peer_bytes(0x4000, 40002, 1, 0, 0, REDIS_GET, 3000);
	redis_peer_bytes(0x4000, 40002, 0, 0, 1, "$1\r\nv\r\n", 4000);
	redis_peer_bytes(0x4000, 40001, 0, 0, 1, "$1\r\nv\r\n", 2000);
	for (int i = 0; i < 3; i++)
		dispatch_end_round();
	check_gets("2", lost_streams, 0, lost_calls, 0);
	dispatch_clear();
}

/* A PostgreSQL simple query and its answer, server side, on the
 * connection sk. */
static void pg_query(__u64 sk, __u32 seq, const char *sql, __u64 ts)
{
	static const char done[] = "C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I";
	size_t n = strlen(sql) + 1;
	char q[128] = { 'Q', 0, 0, (char)((n + 4) >> 8),
			(char)((n + 4) & 0xff) };

	memcpy(q + 5, sql, n);
	db_bytes(SONDE_PROTO_POSTGRESQL, sk, 5432, 40000, 1, seq, 2 * seq, q,
		 5 + n, ts);
	db_bytes(SONDE_PROTO_POSTGRESQL, sk, 5432, 40000, 0, seq, 2 * seq + 1,
		 done, sizeof(done) - 1, ts + 100);
}

/* Tables come from the traffic: beyond a service's cap (the routes')
 * they are counted as _overflow, and the overflow is counted. */
TEST(database_collections_are_capped_like_routes)
{
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 2,
				       .max_peers_per_service = 100,
				       .max_series = 100 };
	char sql[64];
	char *text;

	registry_free();
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	dispatch_clear();
	for (unsigned i = 0; i < 5; i++) {
		snprintf(sql, sizeof(sql), "SELECT * FROM t%u WHERE id = 1", i);
		pg_query(0x2000, i, sql, 1000 * (i + 1));
	}
	text = render();
#define PG_SELECTS(table)                                                      \
	"db_server_operation_duration_seconds_count{service_name=\"unitsvc\"," \
	"db_system_name=\"postgresql\",db_operation_name=\"SELECT\","          \
	"db_collection_name=\"" table "\",db_response_status_code=\"\","       \
	"error_type=\"\",server_port=\"5432\"} "
	CHECK(strstr(text, PG_SELECTS("t0") "1\n"));
	CHECK(strstr(text, PG_SELECTS("t1") "1\n"));
	CHECK(strstr(text, PG_SELECTS("_overflow") "3\n"));
	CHECK(!strstr(text, "t2"));
	CHECK(strstr(text, "sonde_route_overflows_total{service_name="
			   "\"unitsvc\"} 3\n"));
	free(text);
	dispatch_clear();
}

UNIT_MAIN("events", UNIT_CASE(one_exchange_becomes_one_observation),
	  UNIT_CASE(pipelined_responses_pick_their_own_request),
	  UNIT_CASE(a_status_line_no_request_asked_for_is_not_counted),
	  UNIT_CASE(request_bytes_beyond_the_record_are_not_read),
	  UNIT_CASE(unknown_methods_and_targets_stay_bounded),
	  UNIT_CASE(unparsable_responses_and_records_are_counted_not_stored),
	  UNIT_CASE(client_exchanges_name_the_peer_not_the_route),
	  UNIT_CASE(records_like_earlier_ones_count_exactly),
	  UNIT_CASE(every_request_over_the_route_cap_counts_as_an_overflow),
	  UNIT_CASE(labels_beyond_the_request_line_keep_series_apart),
	  UNIT_CASE(grpc_calls_become_rpc_series),
	  UNIT_CASE(http2_exchanges_become_http_series),
	  UNIT_CASE(protocols_say_which_exchanges_failed),
	  UNIT_CASE(addresses_are_written_as_ipv4_or_ipv6),
	  UNIT_CASE(ipv4_addresses_match_inet_ntop_for_every_octet),
	  UNIT_CASE(numbers_are_read_whole_and_in_range),
	  UNIT_CASE(numbers_are_written_in_decimal_within_the_buffer),
	  UNIT_CASE(connect_results_come_from_the_socket_error),
	  UNIT_CASE(tcp_events_are_charged_to_the_socket_owner),
	  UNIT_CASE(an_open_for_a_counted_connection_moves_it_to_the_new_owner),
	  UNIT_CASE(an_exit_is_applied_after_the_round_that_brought_it),
	  UNIT_CASE(tcp_series_carry_the_optional_labels),
	  UNIT_CASE(database_calls_follow_their_connection),
	  UNIT_CASE(database_records_are_taken_in_the_order_they_were_made),
	  UNIT_CASE(redis_calls_followed_whole_are_observed),
	  UNIT_CASE(summed_calls_merge_whole_and_are_lost_whole),
	  UNIT_CASE(a_reused_socket_waits_for_the_old_connections_records),
	  UNIT_CASE(database_collections_are_capped_like_routes))
