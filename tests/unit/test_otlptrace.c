/* The OTLP span encoder, field by field against opentelemetry-proto v1's
 * trace.proto, common.proto, resource.proto and trace_service.proto; the
 * traces' configuration variables; and the sender's delivery rules
 * against a collector on a local socket. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "export/otlpsend.h"
#include "export/otlptrace.h"
#include "trace/span.h"
#include "unit.h"
#include "util/clock.h"

#include "pbdec.h"

/* ---- spans ------------------------------------------------------------ */

static void span_init(struct span *s, const char *service, const char *name,
		      uint8_t kind, uint8_t id)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 16; i++)
		s->trace_id[i] = (uint8_t)(0xa0 + i);
	memset(s->span_id, id, sizeof(s->span_id));
	s->start_unix_ns = 1700000000000000000ULL + id;
	s->end_unix_ns = s->start_unix_ns + 2500000;
	s->pid = 4242;
	s->kind = kind;
	span_set_text(s, service, strlen(service), name, strlen(name), NULL, 0);
}

static void add_str(struct span *s, const char *key, const char *value)
{
	CHECK(span_add_string(s, key, value, strlen(value)));
}

static void add_int(struct span *s, const char *key, int64_t value)
{
	CHECK(span_add_int(s, key, value));
}

/* The AnyValue of the attribute key among the KeyValue fields numbered
 * field of m; an empty view when absent. */
static struct pb_span any_of(struct pb_span m, unsigned field, const char *key)
{
	for (unsigned i = 0; i < dec_count(m, field); i++) {
		struct pb_span kv = dec_msg(m, field, i);

		if (dec_str_eq(dec_msg(kv, 1, 0), key))
			return dec_msg(kv, 2, 0);
	}
	return (struct pb_span){ NULL, 0 };
}

static bool bytes_eq(struct pb_span v, const uint8_t *want, size_t n)
{
	return v.p && v.n == n && memcmp(v.p, want, n) == 0;
}

/* The wire type of the first field num of m (8 when absent). */
static unsigned wire_of(struct pb_span m, unsigned num)
{
	struct pb_span sub;
	unsigned wire;
	uint64_t v;

	return dec_field(m, num, 0, &wire, &v, &sub) ? wire : 8;
}

TEST(spans_field_by_field)
{
	struct span in[3];
	struct pb_buf b = { 0 };
	struct pb_span req, rs, res, ss, scope, sp, any, status;

	span_init(&in[0], "shop", "GET /users/{id}", SPAN_KIND_SERVER, 1);
	/* With a trace state: the text starts again. */
	span_set_text(&in[0], "shop", 4, "GET /users/{id}", 15, "k=v", 3);
	add_str(&in[0], "http.request.method", "GET");
	add_int(&in[0], "http.response.status_code", 200);
	add_str(&in[0], "url.path", "/users/7");
	span_init(&in[1], "cart", "SELECT orders", SPAN_KIND_CLIENT, 2);
	memset(in[1].parent_id, 0x11, sizeof(in[1].parent_id));
	in[1].error = true;
	add_int(&in[1], "server.port", 5432);
	span_init(&in[2], "shop", "POST /cart", SPAN_KIND_SERVER, 3);
	otlptrace_encode(&b, in, 3);
	CHECK(!b.failed);
	req = (struct pb_span){ b.data, b.len };

	/* One ResourceSpans per service, in the order they first come. */
	CHECK(dec_count(req, 1) == 2);
	rs = dec_msg(req, 1, 1);
	res = dec_msg(rs, 1, 0);
	CHECK(dec_str_eq(dec_msg(any_of(res, 1, "service.name"), 1, 0),
			 "cart"));
	CHECK(dec_msg(any_of(res, 1, "host.name"), 1, 0).n > 0);
	rs = dec_msg(req, 1, 0);
	res = dec_msg(rs, 1, 0);
	CHECK(dec_str_eq(dec_msg(any_of(res, 1, "service.name"), 1, 0),
			 "shop"));
	/* One ScopeSpans "sonde" holding the service's spans in order. */
	CHECK(dec_count(rs, 2) == 1);
	ss = dec_msg(rs, 2, 0);
	scope = dec_msg(ss, 1, 0);
	CHECK(dec_str_eq(dec_msg(scope, 1, 0), "sonde"));
	CHECK(dec_str_eq(dec_msg(scope, 2, 0), SONDE_VERSION));
	CHECK(dec_count(ss, 2) == 2);
	CHECK(dec_str_eq(dec_msg(dec_msg(ss, 2, 1), 5, 0), "POST /cart"));

	/* A root SERVER span. */
	sp = dec_msg(ss, 2, 0);
	CHECK(bytes_eq(dec_msg(sp, 1, 0), in[0].trace_id, 16));
	CHECK(bytes_eq(dec_msg(sp, 2, 0), in[0].span_id, 8));
	CHECK(dec_str_eq(dec_msg(sp, 3, 0), "k=v"));
	CHECK(dec_count(sp, 4) == 0); /* no parent_span_id at all */
	CHECK(dec_str_eq(dec_msg(sp, 5, 0), "GET /users/{id}"));
	CHECK(dec_u64(sp, 6, 0) == 2); /* SPAN_KIND_SERVER */
	CHECK(wire_of(sp, 7) == 1 && wire_of(sp, 8) == 1); /* fixed64 */
	CHECK(dec_u64(sp, 7, 0) == 1700000000000000001ULL);
	CHECK(dec_u64(sp, 8, 0) == 1700000000002500001ULL);
	CHECK(dec_count(sp, 9) == 3);
	any = any_of(sp, 9, "http.request.method");
	CHECK(dec_str_eq(dec_msg(any, 1, 0), "GET"));
	CHECK(dec_count(any, 3) == 0);
	any = any_of(sp, 9, "http.response.status_code");
	CHECK(dec_count(any, 1) == 0 && dec_u64(any, 3, 0) == 200);
	CHECK(dec_str_eq(dec_msg(any_of(sp, 9, "url.path"), 1, 0), "/users/7"));
	CHECK(dec_count(sp, 15) == 0); /* status UNSET */

	/* A CLIENT child in error. */
	sp = dec_msg(dec_msg(dec_msg(req, 1, 1), 2, 0), 2, 0);
	CHECK(dec_str_eq(dec_msg(sp, 5, 0), "SELECT orders"));
	CHECK(dec_count(sp, 3) == 0); /* no trace_state */
	CHECK(bytes_eq(dec_msg(sp, 4, 0), in[1].parent_id, 8));
	CHECK(dec_u64(sp, 6, 0) == 3); /* SPAN_KIND_CLIENT */
	CHECK(dec_u64(any_of(sp, 9, "server.port"), 3, 0) == 5432);
	status = dec_msg(sp, 15, 0);
	CHECK(status.p != NULL);
	CHECK(dec_u64(status, 3, 0) == 2); /* STATUS_CODE_ERROR */
	CHECK(dec_count(status, 2) == 0);  /* no message */
	pb_release(&b);
}

TEST(attributes_outside_the_text_are_left_out)
{
	struct span s;
	struct pb_buf b = { 0 };
	struct pb_span sp;

	span_init(&s, "shop", "GET /", SPAN_KIND_SERVER, 1);
	add_str(&s, "http.request.method", "GET");
	add_str(&s, "url.path", "/");
	s.attrs[1].off = SPAN_TEXT_MAX - 1;
	s.attrs[1].len = 2;
	s.attrs[2].key = NULL; /* beyond nattrs: never read */
	otlptrace_encode(&b, &s, 1);
	sp = dec_msg(
		dec_msg(dec_msg((struct pb_span){ b.data, b.len }, 1, 0), 2, 0),
		2, 0);
	CHECK(dec_count(sp, 9) == 1);
	CHECK(dec_str_eq(dec_msg(any_of(sp, 9, "http.request.method"), 1, 0),
			 "GET"));
	pb_release(&b);
}

/* A span's text and attributes stay within their room, and a copy
 * reads as the original. */
TEST(span_text_is_bounded_and_copies_whole)
{
	static char big[SPAN_TEXT_MAX];
	struct span s, c;

	memset(big, 'x', sizeof(big) - 1);
	span_init(&s, "shop", "GET /", SPAN_KIND_SERVER, 1);
	CHECK(!span_add_string(&s, "url.path", big, sizeof(big) - 1));
	CHECK(!span_add_string(&s, "url.path", "", 0));
	CHECK(s.nattrs == 0);
	for (int i = 0; i < SPAN_ATTRS_MAX; i++)
		CHECK(span_add_string(&s, "k", "v", 1));
	CHECK(!span_add_string(&s, "k", "v", 1));
	CHECK(!span_add_int(&s, "k", 1));
	span_set_text(&s, big, 200, big, 300, big, 300);
	CHECK(s.service_len == SPAN_SERVICE_MAX && s.name_len == SPAN_NAME_MAX);
	CHECK(s.state_len == 0 && span_trace_state(&s)[0] == '\0');
	CHECK(strlen(span_name(&s)) == SPAN_NAME_MAX);
	CHECK(span_add_int(&s, "server.port", 8080));
	memset(&c, 0xff, sizeof(c));
	span_copy(&c, &s);
	CHECK(strcmp(span_service(&c), span_service(&s)) == 0);
	CHECK(c.nattrs == 1 && c.attrs[0].is_int && c.attrs[0].ival == 8080);
	CHECK(c.text_len == s.text_len);
}

/* More services in one batch than a pass groups: each still gets one
 * ResourceSpans holding its own spans. */
TEST(many_services_in_one_batch)
{
	static struct span in[80];
	struct pb_buf b = { 0 };
	struct pb_span req;
	char name[16];
	unsigned spans = 0;

	for (int i = 0; i < 80; i++) {
		snprintf(name, sizeof(name), "svc%d", i % 40);
		span_init(&in[i], name, "GET /", SPAN_KIND_SERVER,
			  (uint8_t)(i + 1));
	}
	otlptrace_encode(&b, in, 80);
	req = (struct pb_span){ b.data, b.len };
	CHECK(!b.failed && dec_count(req, 1) == 40);
	for (unsigned k = 0; k < dec_count(req, 1); k++) {
		struct pb_span rs = dec_msg(req, 1, k);
		struct pb_span ss = dec_msg(rs, 2, 0);

		CHECK(dec_count(ss, 2) == 2);
		spans += dec_count(ss, 2);
	}
	CHECK(spans == 80);
	pb_release(&b);
}

TEST(no_spans_encode_nothing)
{
	struct pb_buf b = { 0 };

	otlptrace_encode(&b, NULL, 0);
	CHECK(b.len == 0 && !b.failed);
	pb_release(&b);
}

TEST(trace_partial_success_is_read)
{
	/* ExportTraceServiceResponse{partial_success{rejected_spans: 5,
	 * error_message: "too old"}} */
	static const uint8_t partial[] = { 0x0a, 0x0b, 0x08, 0x05, 0x12,
					   0x07, 't',  'o',  'o',  ' ',
					   'o',	 'l',  'd' };
	int64_t rejected;
	char msg[32];

	CHECK(otlp_parse_response(partial, sizeof(partial), &rejected, msg,
				  sizeof(msg)) == 0);
	CHECK(rejected == 5);
	CHECK_STR(msg, "too old");
}

/* ---- configuration ---------------------------------------------------- */

static void clear_env(void)
{
	static const char *const names[] = {
		"OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_TRACES_EXPORTER",
		"OTEL_EXPORTER_OTLP_TIMEOUT",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
		"OTEL_EXPORTER_OTLP_COMPRESSION",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
		"OTEL_EXPORTER_OTLP_HEADERS",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
		"OTEL_EXPORTER_OTLP_CERTIFICATE",
		"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
		"OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
}

/* Loads the configuration with flag; the traces' endpoint, or "(off)". */
static const char *traces_url(const char *flag, struct otlp_config *c)
{
	char err[256];

	if (otlp_config_load(flag, c, err, sizeof(err))) {
		fprintf(stderr, "config: %s\n", err);
		return "(error)";
	}
	return c->traces.endpoint ? c->traces.endpoint : "(off)";
}

TEST(traces_endpoints)
{
	struct otlp_config c;
	char err[256];

	clear_env();
	CHECK_STR(traces_url(NULL, &c), "(off)");
	otlp_config_free(&c);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
	CHECK_STR(traces_url(NULL, &c), "http://collector:4318/v1/traces");
	CHECK_STR(c.metrics.endpoint, "http://collector:4318/v1/metrics");
	CHECK(c.traces.timeout_ms == 10000 && !c.traces.gzip);
	otlp_config_free(&c);
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t/custom", 1);
	CHECK_STR(traces_url("http://flag:4318", &c), "https://t/custom");
	CHECK_STR(c.metrics.endpoint, "http://collector:4318/v1/metrics");
	otlp_config_free(&c);
	/* OTEL_TRACES_EXPORTER: otlp or none, nothing else. */
	setenv("OTEL_TRACES_EXPORTER", "none", 1);
	CHECK_STR(traces_url(NULL, &c), "(off)");
	CHECK(c.metrics.endpoint != NULL);
	otlp_config_free(&c);
	setenv("OTEL_TRACES_EXPORTER", "otlp", 1);
	CHECK_STR(traces_url(NULL, &c), "https://t/custom");
	otlp_config_free(&c);
	setenv("OTEL_TRACES_EXPORTER", "zipkin", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "OTEL_TRACES_EXPORTER: 'zipkin'") != NULL);
	unsetenv("OTEL_TRACES_EXPORTER");
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "t:4318", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 't:4318'") !=
	      NULL);
	clear_env();
}

TEST(traces_endpoint_from_the_flag)
{
	struct otlp_config c;

	clear_env();
	CHECK_STR(traces_url("http://127.0.0.1:4318", &c),
		  "http://127.0.0.1:4318/v1/traces");
	CHECK_STR(c.metrics.endpoint, "http://127.0.0.1:4318/v1/metrics");
	otlp_config_free(&c);
	CHECK_STR(traces_url("http://h:1/v1/metrics", &c),
		  "http://h:1/v1/traces");
	CHECK_STR(c.metrics.endpoint, "http://h:1/v1/metrics");
	otlp_config_free(&c);
	CHECK_STR(traces_url("http://h:1/otlp/", &c),
		  "http://h:1/otlp/v1/traces");
	CHECK_STR(c.metrics.endpoint, "http://h:1/otlp/");
	otlp_config_free(&c);
}

TEST(traces_variables_win_over_the_generic_ones)
{
	struct otlp_config c;
	char err[256];

	clear_env();
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1234", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=1", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2,c=3", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == 0);
	CHECK(c.traces.timeout_ms == 1234 && c.metrics.timeout_ms == 2500);
	CHECK(c.traces.gzip && !c.metrics.gzip);
	CHECK(c.metrics.nheaders == 1 && c.traces.nheaders == 2);
	CHECK_STR(c.metrics.headers[0], "a: 1");
	CHECK_STR(c.traces.headers[0], "b: 2");
	CHECK_STR(c.traces.headers[1], "c: 3");
	otlp_config_free(&c);
	/* Errors name the variable that was read. */
	setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1s", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '1s'") != NULL);
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
	setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "novalue", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'novalue'") !=
	      NULL);
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
	setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") != NULL);
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
	setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc'") !=
	      NULL);
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
	setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/t.pem",
	       1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE") != NULL);
	/* Traces off: their variables are not read. */
	setenv("OTEL_TRACES_EXPORTER", "none", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == 0);
	otlp_config_free(&c);
	clear_env();
}

/* ---- delivery --------------------------------------------------------- */

/* A collector on a local socket answering each connection with the next
 * of its replies, then closing it. */
struct collector {
	int fd;
	uint16_t port;
	pthread_t thread;
	const char *replies[4];
	unsigned nreplies;
	unsigned requests; /* answered, under lock */
	size_t body_len[4];
	pthread_mutex_t lock;
};

/* The Content-Length of the request head, -1 when there is none. */
static long content_length(const char *head)
{
	const char *p = strcasestr(head, "\r\nContent-Length:");

	return p ? strtol(p + 17, NULL, 10) : -1;
}

static void *collector_main(void *arg)
{
	struct collector *c = arg;

	for (unsigned i = 0; i < c->nreplies; i++) {
		char buf[65536], *end = NULL;
		size_t got = 0;
		long len = -1;
		int fd = accept(c->fd, NULL, NULL);
		ssize_t n;

		if (fd < 0)
			break;
		while (got < sizeof(buf) - 1) {
			n = read(fd, buf + got, sizeof(buf) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			buf[got] = '\0';
			if (!end && (end = strstr(buf, "\r\n\r\n")))
				len = content_length(buf);
			if (end && len >= 0 &&
			    got >= (size_t)(end + 4 - buf) + (size_t)len)
				break;
		}
		if (write(fd, c->replies[i], strlen(c->replies[i])) < 0)
			perror("collector write");
		close(fd);
		pthread_mutex_lock(&c->lock);
		c->body_len[c->requests++] = len < 0 ? 0 : (size_t)len;
		pthread_mutex_unlock(&c->lock);
	}
	return NULL;
}

static int collector_start(struct collector *c)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	pthread_mutex_init(&c->lock, NULL);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(c->fd, 8) ||
	    getsockname(c->fd, (struct sockaddr *)&a, &alen))
		return -1;
	c->port = ntohs(a.sin_port);
	return pthread_create(&c->thread, NULL, collector_main, c);
}

static void collector_stop(struct collector *c)
{
	shutdown(c->fd, SHUT_RDWR);
	close(c->fd);
	pthread_join(c->thread, NULL);
}

/* The owner side of a sender: one request of 7 items, then nothing. */
struct owner {
	unsigned collects, dones;
	unsigned items;
	enum otlp_result result;
	int64_t rejected;
	pthread_mutex_t lock;
};

static unsigned owner_collect(void *arg, struct pb_buf *out, bool last,
			      bool *again)
{
	struct owner *o = arg;
	unsigned n;

	(void)last, (void)again;
	pthread_mutex_lock(&o->lock);
	n = o->collects++ ? 0 : 7;
	pthread_mutex_unlock(&o->lock);
	if (n)
		pb_string(out, 1, "seven items");
	return n;
}

static void owner_done(void *arg, unsigned items, enum otlp_result result,
		       int64_t rejected)
{
	struct owner *o = arg;

	pthread_mutex_lock(&o->lock);
	o->dones++;
	o->items = items;
	o->result = result;
	o->rejected = rejected;
	pthread_mutex_unlock(&o->lock);
}

static struct otlp_stats test_stats = {
	.exports = { .name = "t_exports_total", .otel_name = "t.exports" },
	.durations = { .name = "t_export_seconds", .otel_name = "t.export" },
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/* Runs one sender against replies until its request is done (or 10 s);
 * the collector's requests in *requests. */
static void deliver(const char *const *replies, unsigned nreplies,
		    struct owner *o, unsigned *requests)
{
	struct collector c = { .nreplies = nreplies };
	struct otlp_target t = { .timeout_ms = 2000 };
	struct otlp_sender_ops ops = {
		.name = "test",
		.what = "items",
		.interval_ms = 20,
		.collect = owner_collect,
		.done = owner_done,
		.arg = o,
		.stats = &test_stats,
	};
	struct otlp_sender *s;
	char url[64];
	unsigned dones = 0;

	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
	memset(test_stats.results, 0, sizeof(test_stats.results));
	for (unsigned i = 0; i < nreplies; i++)
		c.replies[i] = replies[i];
	if (collector_start(&c)) {
		CHECK(!"collector started");
		return;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/traces", c.port);
	t.endpoint = url;
	s = otlp_sender_start(&t, &ops);
	CHECK(s != NULL);
	for (int i = 0; s && i < 1000 && !dones; i++) {
		struct timespec ms10 = { 0, 10000000 };

		nanosleep(&ms10, NULL);
		pthread_mutex_lock(&o->lock);
		dones = o->dones;
		pthread_mutex_unlock(&o->lock);
	}
	otlp_sender_stop(s);
	collector_stop(&c);
	*requests = c.requests;
	for (unsigned i = 1; i < c.requests; i++)
		CHECK(c.body_len[i] == c.body_len[0]);
}

#define REPLY(status, extra, body)                                        \
	"HTTP/1.1 " status "\r\nContent-Type: application/x-protobuf\r\n" \
	"Connection: close\r\n" extra "Content-Length: " body

TEST(retried_once_then_partial_success)
{
	/* 503 with Retry-After: 0, then a 200 with
	 * partial_success{rejected_spans: 2, error_message: "x"}. */
	static const char *const replies[] = {
		REPLY("503 Service Unavailable", "Retry-After: 0\r\n",
		      "0\r\n\r\n"),
		REPLY("200 OK", "", "7\r\n\r\n\x0a\x05\x08\x02\x12\x01x"),
	};
	struct owner o;
	unsigned requests;

	deliver(replies, 2, &o, &requests);
	CHECK(requests == 2);
	CHECK(o.dones == 1);
	CHECK(o.items == 7 && o.result == OTLP_RESULT_PARTIAL &&
	      o.rejected == 2);
	CHECK(test_stats.results[OTLP_RESULT_RETRIED] == 1);
	CHECK(test_stats.results[OTLP_RESULT_PARTIAL] == 1);
	/* The last round, at stop, found nothing more to send. */
	CHECK(o.collects >= 2);
}

TEST(other_errors_are_not_retried)
{
	static const char *const replies[] = {
		REPLY("400 Bad Request", "", "0\r\n\r\n"),
		REPLY("200 OK", "", "0\r\n\r\n"),
	};
	struct owner o;
	unsigned requests;

	deliver(replies, 2, &o, &requests);
	CHECK(requests == 1);
	CHECK(o.dones == 1 && o.items == 7 && o.result == OTLP_RESULT_FAILED);
	CHECK(test_stats.results[OTLP_RESULT_FAILED] == 1);
	CHECK(test_stats.results[OTLP_RESULT_RETRIED] == 0);
}

UNIT_MAIN("otlptrace", UNIT_CASE(spans_field_by_field),
	  UNIT_CASE(attributes_outside_the_text_are_left_out),
	  UNIT_CASE(span_text_is_bounded_and_copies_whole),
	  UNIT_CASE(many_services_in_one_batch),
	  UNIT_CASE(no_spans_encode_nothing),
	  UNIT_CASE(trace_partial_success_is_read), UNIT_CASE(traces_endpoints),
	  UNIT_CASE(traces_endpoint_from_the_flag),
	  UNIT_CASE(traces_variables_win_over_the_generic_ones),
	  UNIT_CASE(retried_once_then_partial_success),
	  UNIT_CASE(other_errors_are_not_retried))
