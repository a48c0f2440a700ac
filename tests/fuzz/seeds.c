/* Writes the fuzz targets' seed inputs into DIR/<target>/: records and
 * files shaped like the real ones, so the fuzzer starts from inputs that
 * reach deep (a whole HTTP/2 call, a config file with every section) and
 * mutates from there. Built with the structures the daemon reads, so the
 * seeds follow them when they change. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hpack.h"
#include "sonde_events.h"

static const char *dir;

/* One seed file being built: records, each behind its 2-byte length. */
struct seed {
	unsigned char bytes[16384];
	size_t len;
};

static void add(struct seed *s, const void *rec, size_t len)
{
	if (s->len + 2 + len > sizeof(s->bytes)) {
		fprintf(stderr, "make-seeds: seed too long\n");
		exit(1);
	}
	s->bytes[s->len++] = (unsigned char)(len & 0xff);
	s->bytes[s->len++] = (unsigned char)(len >> 8);
	memcpy(s->bytes + s->len, rec, len);
	s->len += len;
}

static void write_file(const char *target, const char *name, const void *p,
		       size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void exchange(struct seed *s, __u8 role, __u8 idx, const char *req,
		     const char *resp, int v6)
{
	struct sonde_http_event ev = { 0 };
	size_t room = role == SONDE_ROLE_CLIENT ? SONDE_CLIENT_REQ_CAP :
						  SONDE_REQ_CAP;

	ev.hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	strcpy(ev.comm, role == SONDE_ROLE_CLIENT ? "curl" : "nginx");
	ev.start_ns = 1000;
	ev.end_ns = 1000 + 3000000;
	ev.fd = 7;
	ev.sport = role == SONDE_ROLE_CLIENT ? 41000 : 8080;
	ev.dport = role == SONDE_ROLE_CLIENT ? 8080 : 41000;
	ev.family = v6 ? AF_INET6 : AF_INET;
	if (v6)
		inet_pton(AF_INET6, "fd00::7", ev.daddr);
	else
		inet_pton(AF_INET, "10.0.0.7", ev.daddr);
	ev.req_len = (__u16)strlen(req);
	if (ev.req_len > room)
		ev.req_len = (__u16)room;
	memcpy(ev.req, req, ev.req_len);
	ev.resp_len = (__u16)strlen(resp);
	if (ev.resp_len > SONDE_RESP_CAP)
		ev.resp_len = SONDE_RESP_CAP;
	memcpy(ev.resp, resp, ev.resp_len);
	ev.pipeline_idx = idx;
	ev.role = role;
	add(s, &ev, SONDE_EXCHANGE_BYTES(room));
}

static void tcp(struct seed *s, __u8 what, __u8 detail, __u8 role, int err)
{
	struct sonde_tcp_event ev = { 0 };

	ev.hdr.kind = SONDE_EV_TCP;
	strcpy(ev.comm, "api");
	ev.sk = 0x100;
	ev.what = what;
	ev.detail = detail;
	ev.role = role;
	ev.err = err;
	ev.family = AF_INET;
	inet_pton(AF_INET, "10.0.0.9", ev.daddr);
	ev.dport = 5432;
	ev.duration_ns = 2000000;
	add(s, &ev, sizeof(ev));
}

static void h2_headers(struct seed *s, nghttp2_hd_deflater *enc, int to_client,
		       __u8 role, uint32_t stream, bool end_stream,
		       const char *const *fields)
{
	static uint32_t seq[2];
	struct sonde_h2_event ev = { 0 };
	size_t len =
		hpack_encode(enc, fields, (uint8_t *)ev.data, sizeof(ev.data));

	ev.hdr.kind = SONDE_EV_HTTP2;
	ev.hdr.ts_ns = 5000 + stream * 1000 + (uint64_t)to_client * 500;
	strcpy(ev.comm, "grpcsvc");
	ev.sk = 0x200;
	ev.since = 77;
	ev.fd = 9;
	ev.seq = seq[to_client]++;
	ev.stream_id = stream;
	ev.frame_len = ev.len = (__u16)len;
	ev.sport = 50051;
	ev.dport = 41000;
	ev.family = AF_INET;
	inet_pton(AF_INET, "10.0.0.8", ev.daddr);
	ev.type = SONDE_H2_HEADERS;
	ev.flags = SONDE_H2_FLAG_END_HEADERS |
		   (end_stream ? SONDE_H2_FLAG_END_STREAM : 0);
	ev.to_client = (__u8)to_client;
	ev.role = role;
	add(s, &ev, offsetof(struct sonde_h2_event, data) + len);
}

/* The bytes of one read or write of a database connection. */
static void db_bytes(struct seed *s, __u8 proto, __u8 role, int from_client,
		     __u32 seq, const void *data, size_t len)
{
	static struct sonde_db_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.hdr.ts_ns = 1000000 + seq * 1000;
	ev.hdr.tgid = 0x7ffffff1;
	ev.hdr.kind = SONDE_EV_DB;
	ev.sk = 0xffff888000001000ULL + proto * 16 + role;
	ev.fd = 7;
	ev.total = len;
	ev.sport = role == SONDE_ROLE_SERVER ? 6379 : 40000;
	ev.dport = role == SONDE_ROLE_SERVER ? 40000 : 6379;
	ev.family = AF_INET;
	ev.daddr[0] = 127;
	ev.daddr[3] = 1;
	ev.len = len;
	ev.proto = proto;
	ev.from_client = from_client;
	ev.role = role;
	ev.seq = seq;
	/* Each seed's requests and replies take turns. */
	ev.order = 2 * seq + !from_client;
	ev.starts = 1;
	memcpy(ev.comm, "dbclient", 8);
	memcpy(ev.data, data, len);
	add(s, &ev, SONDE_DB_BYTES(len));
}

/* A Redis call the BPF side followed whole: the op-th command of the
 * daemon's list, an error reply's start when error. */
static void db_call(struct seed *s, __u8 role, __u16 op, const char *error)
{
	struct sonde_db_call_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.hdr.ts_ns = 3000000;
	ev.hdr.tgid = 0x7ffffff1;
	ev.hdr.kind = SONDE_EV_DB_CALL;
	ev.start_ns = 2000000;
	ev.sport = role == SONDE_ROLE_SERVER ? 6379 : 40000;
	ev.dport = role == SONDE_ROLE_SERVER ? 40000 : 6379;
	ev.family = AF_INET;
	ev.daddr[0] = 127;
	ev.daddr[3] = 1;
	ev.op = op;
	ev.proto = SONDE_PROTO_REDIS;
	ev.role = role;
	if (error) {
		ev.error = 1;
		memcpy(ev.status, error,
		       strlen(error) < sizeof(ev.status) ? strlen(error) :
							   sizeof(ev.status));
	}
	memcpy(ev.comm, "dbclient", 8);
	add(s, &ev, sizeof(ev));
}

#define DB_BYTES(s, proto, role, from_client, seq, lit) \
	db_bytes(s, proto, role, from_client, seq, lit, sizeof(lit) - 1)

/* A call each of the four systems answers, at both ends. */
static void db_seeds(void)
{
	static const char pg_q[] = "Q\0\0\0\x1eSELECT id FROM orders;\0";
	static const char pg_ok[] = "C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I";
	static const char pg_err[] =
		"E\0\0\0\x10SERROR\0C42P01\0\0Z\0\0\0\x05I";
	static const char my_q[] = "\x13\0\0\0\x03SELECT * FROM t1";
	static const char my_err[] =
		"\x17\0\0\x01\xff\x7a\x04#42S02Table missing";
	static const char rd_q[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
				   "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
	static const char rd_r[] = "+OK\r\n$1\r\nv\r\n";
	static const char rd_e[] = "-WRONGTYPE Operation against a key\r\n";
	static const char mc_q[] = "set k 0 0 1\r\nv\r\nget k j\r\n";
	static const char mc_r[] = "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n";
	struct seed s = { .len = 0 };

	for (__u8 role = SONDE_ROLE_SERVER; role <= SONDE_ROLE_CLIENT; role++) {
		DB_BYTES(&s, SONDE_PROTO_POSTGRESQL, role, 1, 0, pg_q);
		DB_BYTES(&s, SONDE_PROTO_POSTGRESQL, role, 0, 0, pg_ok);
		DB_BYTES(&s, SONDE_PROTO_POSTGRESQL, role, 1, 1, pg_q);
		DB_BYTES(&s, SONDE_PROTO_POSTGRESQL, role, 0, 1, pg_err);
		DB_BYTES(&s, SONDE_PROTO_MYSQL, role, 1, 0, my_q);
		DB_BYTES(&s, SONDE_PROTO_MYSQL, role, 0, 0, my_err);
		DB_BYTES(&s, SONDE_PROTO_REDIS, role, 1, 0, rd_q);
		DB_BYTES(&s, SONDE_PROTO_REDIS, role, 0, 0, rd_r);
		DB_BYTES(&s, SONDE_PROTO_REDIS, role, 1, 1, rd_q);
		DB_BYTES(&s, SONDE_PROTO_REDIS, role, 0, 1, rd_e);
		db_call(&s, role, 100, NULL);
		db_call(&s, role, 101, "WRONGTYPE Operation against");
		DB_BYTES(&s, SONDE_PROTO_MEMCACHED, role, 1, 0, mc_q);
		DB_BYTES(&s, SONDE_PROTO_MEMCACHED, role, 0, 0, mc_r);
	}
	write_file("fuzz_events", "db", s.bytes, s.len);
}

static void events_seeds(void)
{
	static const char *const grpc_req[] = { ":method",
						"POST",
						":scheme",
						"http",
						":path",
						"/shop.Cart/Add",
						":authority",
						"svc:50051",
						"content-type",
						"application/grpc",
						"grpc-timeout",
						"1S",
						NULL };
	static const char *const grpc_resp[] = { ":status", "200",
						 "content-type",
						 "application/grpc", NULL };
	static const char *const grpc_end[] = { "grpc-status", "5", NULL };
	static const char *const h2_req[] = {
		":method",	  "GET",	":scheme", "https", ":path",
		"/items/123?x=1", ":authority", "web",	   NULL
	};
	static const char *const h2_resp[] = { ":status", "404", NULL };
	nghttp2_hd_deflater *enc[2];
	struct sonde_process_event proc = { 0 };
	struct sonde_func_event call = { 0 };
	struct seed s = { 0 };

	exchange(&s, SONDE_ROLE_SERVER, 0,
		 "GET /users/42/orders?page=2 HTTP/1.1\r\nHost: a\r\n"
		 "X-Tenant-ID: acme\r\n\r\n",
		 "HTTP/1.1 200 OK\r\n", 0);
	write_file("fuzz_events", "server", s.bytes, s.len);
	s.len = 0;
	exchange(
		&s, SONDE_ROLE_SERVER, 0,
		"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
		"DELETE /b/0123456789abcdef HTTP/1.1\r\nX-Tenant-ID: z\r\n\r\n",
		"HTTP/1.1 503 Service Unavailable\r\n", 0);
	exchange(
		&s, SONDE_ROLE_SERVER, 1,
		"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
		"DELETE /b/0123456789abcdef HTTP/1.1\r\nX-Tenant-ID: z\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n", 0);
	write_file("fuzz_events", "pipelined", s.bytes, s.len);
	s.len = 0;
	exchange(&s, SONDE_ROLE_CLIENT, 0, "PUT /x HTTP/1.1\r\n",
		 "HTTP/1.1 404 Not Found\r\n", 1);
	exchange(&s, SONDE_ROLE_CLIENT, 0, "GET / HTTP/1.0\r\n",
		 "HTTP/1.0 100 Continue\r\n\r\nHTTP/1.0 200", 0);
	write_file("fuzz_events", "client", s.bytes, s.len);
	s.len = 0;
	tcp(&s, SONDE_TCP_CONNECT, SONDE_TCP_CONNECT_ESTABLISHED,
	    SONDE_ROLE_CLIENT, 0);
	tcp(&s, SONDE_TCP_CONNECT, SONDE_TCP_CONNECT_FAILED, SONDE_ROLE_CLIENT,
	    111);
	tcp(&s, SONDE_TCP_OPEN, 0, SONDE_ROLE_SERVER, 0);
	tcp(&s, SONDE_TCP_RESET, SONDE_TCP_RESET_RECEIVED, SONDE_ROLE_SERVER,
	    0);
	tcp(&s, SONDE_TCP_RETRANSMIT, 0, SONDE_ROLE_SERVER, 0);
	tcp(&s, SONDE_TCP_CLOSE, 0, SONDE_ROLE_SERVER, 0);
	write_file("fuzz_events", "tcp", s.bytes, s.len);
	s.len = 0;
	for (int i = 0; i < 2; i++)
		if (nghttp2_hd_deflate_new(&enc[i], 4096)) {
			fprintf(stderr, "make-seeds: no HPACK encoder\n");
			exit(1);
		}
	h2_headers(&s, enc[0], 0, SONDE_ROLE_SERVER, 1, false, grpc_req);
	h2_headers(&s, enc[1], 1, SONDE_ROLE_SERVER, 1, false, grpc_resp);
	h2_headers(&s, enc[0], 0, SONDE_ROLE_SERVER, 3, true, h2_req);
	h2_headers(&s, enc[1], 1, SONDE_ROLE_SERVER, 3, true, h2_resp);
	h2_headers(&s, enc[1], 1, SONDE_ROLE_SERVER, 1, true, grpc_end);
	write_file("fuzz_events", "http2", s.bytes, s.len);
	for (int i = 0; i < 2; i++)
		nghttp2_hd_deflate_del(enc[i]);
	s.len = 0;
	proc.hdr.kind = SONDE_EV_PROCESS_SEEN;
	strcpy(proc.comm, "worker");
	add(&s, &proc, sizeof(proc));
	call.hdr.kind = SONDE_EV_FUNC_CALL;
	call.duration_ns = 1000000;
	strcpy(call.comm, "worker");
	add(&s, &call, sizeof(call));
	proc.hdr.kind = SONDE_EV_PROCESS_EXIT;
	add(&s, &proc, sizeof(proc));
	write_file("fuzz_events", "process", s.bytes, s.len);
}

/* Config files: each section's shapes (lists, mappings, flow style);
 * the Makefile adds deploy/sonde.yaml, which has every key. */
static void config_seeds(void)
{
	static const char *const texts[] = {
		"listen: 127.0.0.1:9464\nbuckets: [0.01, 0.1, 1]\n"
		"series_ttl: 90s\nmax_series: 500\nverbose: true\n",
		"select:\n  include:\n    - exe: /usr/sbin/nginx\n"
		"    - {port: 8080}\n  exclude:\n    - cgroup: /system.slice/*\n"
		"    - container: 3f2a\n    - pid: 1\n",
		"services:\n  - name: shop\n    namespace: prod\n"
		"    exe: /srv/*\n    cgroup: /kubepods/*\n"
		"labels: [service_namespace, container_id]\n",
		"http:\n  capture_headers:\n    - X-Tenant-ID\n"
		"    - {header: X-Org, label: org, max_values: 7}\n"
		"endpoint:\n  max_connections: 64\n"
		"otlp:\n  endpoint: http://127.0.0.1:4318\n",
		"uprobes: ['/bin/true:main']\nhooks: syscall\nno_tls: true\n"
		"bpf_stats: false\nmax_tracked_connections: 4096\n",
	};
	char name[16];

	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
		snprintf(name, sizeof(name), "config%zu", i);
		write_file("fuzz_config", name, texts[i], strlen(texts[i]));
	}
}

/* A collector's answers: a partial success (ExportMetricsServiceResponse
 * field 1, holding rejected_data_points = 3 and error_message), and
 * Retry-After values in both forms. */
static void otlp_seeds(void)
{
	static const unsigned char partial[] = { 0x0a, 0x07, 0x08, 0x03, 0x12,
						 0x03, 'b',  'a',  'd' };
	static const char seconds[] = "120";
	static const char date[] = "Wed, 21 Oct 2015 07:28:00 GMT";

	write_file("fuzz_otlp", "partial", partial, sizeof(partial));
	write_file("fuzz_otlp", "seconds", seconds, strlen(seconds));
	write_file("fuzz_otlp", "date", date, strlen(date));
}

/* Two reads of a sonde's /metrics, NUL between them: a server's and a
 * client's histograms, a gRPC call's, connections and sonde's counts. */
static void top_seeds(void)
{
	static const char reads[] =
		"sonde_build_info{version=\"0.1.0\"} 1\n"
		"http_server_request_duration_seconds_bucket{service_name=\"web\","
		"http_request_method=\"GET\",http_response_status_code=\"200\","
		"http_route=\"/\",server_port=\"80\",le=\"0.005\"} 3\n"
		"http_server_request_duration_seconds_bucket{service_name=\"web\","
		"http_request_method=\"GET\",http_response_status_code=\"200\","
		"http_route=\"/\",server_port=\"80\",le=\"+Inf\"} 4\n"
		"http_server_request_duration_seconds_count{service_name=\"web\","
		"http_request_method=\"GET\",http_response_status_code=\"200\","
		"http_route=\"/\",server_port=\"80\"} 4\n"
		"sonde_tcp_active_connections{service_name=\"web\",role=\"server\"}"
		" 2\n"
		"\0"
		"sonde_build_info{version=\"0.1.0\"} 1\n"
		"http_server_request_duration_seconds_bucket{service_name=\"web\","
		"http_request_method=\"GET\",http_response_status_code=\"200\","
		"http_route=\"/\",server_port=\"80\",le=\"0.005\"} 9\n"
		"http_server_request_duration_seconds_bucket{service_name=\"web\","
		"http_request_method=\"GET\",http_response_status_code=\"200\","
		"http_route=\"/\",server_port=\"80\",le=\"+Inf\"} 12\n"
		"http_server_request_duration_seconds_count{service_name=\"web\","
		"http_request_method=\"GET\",http_response_status_code=\"200\","
		"http_route=\"/\",server_port=\"80\"} 12\n"
		"http_client_request_duration_seconds_bucket{service_name=\"web\","
		"http_request_method=\"POST\",http_response_status_code=\"502\","
		"server_address=\"10.0.0.9\",server_port=\"8080\",le=\"+Inf\"} "
		"1 1700000000000\n"
		"http_client_request_duration_seconds_count{service_name=\"web\","
		"http_request_method=\"POST\",http_response_status_code=\"502\","
		"server_address=\"10.0.0.9\",server_port=\"8080\"} 1\n"
		"rpc_server_call_duration_seconds_count{service_name=\"api\","
		"rpc_system_name=\"grpc\",rpc_method=\"shop.Cart/Get\","
		"rpc_response_status_code=\"OK\",server_port=\"50051\"} 5\n"
		"sonde_events_received_total 40\nsonde_series 3\n";

	write_file("fuzz_top", "reads", reads, sizeof(reads) - 1);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make-seeds DIR\n");
		return 2;
	}
	dir = argv[1];
	events_seeds();
	db_seeds();
	config_seeds();
	otlp_seeds();
	top_seeds();
	return 0;
}
