/* Spans from observations (trace/trace.c): W3C traceparent parsing, the
 * samplers, linking a thread's calls under the request it serves, the
 * ids the kernel injected, and the bounded queue. */
#include <stdlib.h>

#include "metrics/families.h"
#include "sonde_events.h"
#include "trace/trace.h"
#include "unit.h"
#include "util/clock.h"

#define MS 1000000ull

static const char *const TP =
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void start(enum trace_sampler sampler, double ratio, unsigned queue)
{
	struct trace_config c = {
		.sampler = sampler,
		.ratio = ratio,
		.schedule_delay_ms = 5000,
		.max_queue = queue,
		.max_batch = queue,
	};

	trace_stop();
	trace_start(&c);
}

static void hex(const uint8_t *id, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

static bool zero(const uint8_t *id, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (id[i])
			return false;
	return true;
}

/* A server request on thread tid of process 100 from t0 to t1 (ms past
 * base), with traceparent tp (or NULL). */
static void server(uint64_t base, uint32_t tid, uint64_t t0, uint64_t t1,
		   const char *tp, const char *route, const char *status)
{
	const char *values[] = { "shop", "GET", status, route, "8080" };
	struct trace_exchange x = {
		.want = true,
		.start_ns = base + t0 * MS,
		.end_ns = base + t1 * MS,
		.tid = tid,
		.sport = 8080,
		.dport = 40000,
		.traceparent = tp,
		.traceparent_len = tp ? strlen(tp) : 0,
		.path = "/users/7",
		.path_len = 8,
	};

	trace_observe(&family_http_server, values, HTTP_SERVER_NLABELS,
		      status[0] == '5', 100, &x);
}

/* A database call on thread tid of process 100. */
static void db_call(uint64_t base, uint32_t tid, uint64_t t0, uint64_t t1)
{
	const char *values[] = { "shop", "postgresql", "SELECT",    "orders",
				 "",	 "",	       "127.0.0.1", "5432" };
	struct trace_exchange x = {
		.want = true,
		.start_ns = base + t0 * MS,
		.end_ns = base + t1 * MS,
		.tid = tid,
		.sport = 41000,
		.dport = 5432,
	};

	trace_observe(&family_db_client, values, DB_CLIENT_NLABELS, false, 100,
		      &x);
}

/* An HTTP call on thread tid of process 100, from local port sport. */
static void http_call(uint64_t base, uint32_t tid, uint64_t t0, uint64_t t1,
		      uint16_t sport, const char *tp)
{
	const char *values[] = { "shop", "POST", "200", "10.0.0.2", "9000" };
	struct trace_exchange x = {
		.want = true,
		.start_ns = base + t0 * MS,
		.end_ns = base + t1 * MS,
		.tid = tid,
		.sport = sport,
		.dport = 9000,
		.traceparent = tp,
		.traceparent_len = tp ? strlen(tp) : 0,
	};

	trace_observe(&family_http_client, values, HTTP_CLIENT_NLABELS, false,
		      100, &x);
}

/* Whether span s carries the ids an injection gave: trace and span. */
static bool has_ids(const struct span *s, const uint8_t trace[16],
		    const uint8_t span_id[8])
{
	return memcmp(s->trace_id, trace, 16) == 0 &&
	       memcmp(s->span_id, span_id, 8) == 0;
}

static const char *attr(const struct span *s, const char *key)
{
	for (unsigned i = 0; i < s->nattrs; i++)
		if (strcmp(s->attrs[i].key, key) == 0)
			return s->text + s->attrs[i].off;
	return NULL;
}

static const struct span_attr *attr_of(const struct span *s, const char *key)
{
	for (unsigned i = 0; i < s->nattrs; i++)
		if (strcmp(s->attrs[i].key, key) == 0)
			return &s->attrs[i];
	return NULL;
}

static struct span out[64];

/* Up to max spans off the queue, copied into out, as the exporter reads
 * them (in place, in as many pieces as the ring's wrap makes). */
static unsigned take(struct span *to, unsigned max)
{
	const struct span *first;
	unsigned n = 0, got;

	while (n < max && (got = trace_queue_peek(&first, max - n)) > 0) {
		for (unsigned i = 0; i < got; i++)
			span_copy(&to[n + i], &first[i]);
		trace_queue_release(got);
		n += got;
	}
	return n;
}

TEST(traceparent_valid_and_not)
{
	uint8_t t[16], p[8];
	bool sampled;
	char text[40];

	CHECK(trace_parse_traceparent(TP, strlen(TP), t, p, &sampled) == 0);
	hex(t, 16, text);
	CHECK_STR(text, "4bf92f3577b34da6a3ce929d0e0e4736");
	hex(p, 8, text);
	CHECK_STR(text, "00f067aa0ba902b7");
	CHECK(sampled);
	CHECK(trace_parse_traceparent(
		      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		      55, t, p, &sampled) == 0 &&
	      !sampled);
	/* Upper case, zero ids, version ff, a short one, a 00 with more. */
	CHECK(trace_parse_traceparent(
		      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		      55, t, p, &sampled) < 0);
	CHECK(trace_parse_traceparent(
		      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		      55, t, p, &sampled) < 0);
	CHECK(trace_parse_traceparent(
		      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		      55, t, p, &sampled) < 0);
	CHECK(trace_parse_traceparent(
		      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		      55, t, p, &sampled) < 0);
	CHECK(trace_parse_traceparent(TP, 54, t, p, &sampled) < 0);
	CHECK(trace_parse_traceparent(
		      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		      57, t, p, &sampled) < 0);
	/* A later version may carry more after a dash. */
	CHECK(trace_parse_traceparent(
		      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		      57, t, p, &sampled) == 0);
}

TEST(ratio_sampler_by_last_eight_bytes)
{
	uint8_t id[16] = { 0 };
	unsigned kept = 0;
	uint32_t seed = 7;

	CHECK(trace_ratio_keeps(id, 1.0));
	id[15] = 1;
	CHECK(!trace_ratio_keeps(id, 0.0));
	id[8] = 0x3f; /* just under a quarter of 2^64 */
	CHECK(trace_ratio_keeps(id, 0.25));
	id[8] = 0x40;
	CHECK(!trace_ratio_keeps(id, 0.25));
	for (int i = 0; i < 4000; i++) {
		for (int b = 8; b < 16; b++)
			id[b] = (uint8_t)unit_xorshift32(&seed);
		kept += trace_ratio_keeps(id, 0.25);
	}
	CHECK(kept > 900 && kept < 1100);
}

TEST(server_span_takes_its_request_context)
{
	uint64_t base = clock_monotonic_ns();
	char text[40];
	unsigned n;

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 64);
	server(base, 7, 0, 5, TP, "/users/{id}", "200");
	trace_end_round(base + 10 * MS);
	n = take(out, 64);
	CHECK(n == 1);
	hex(out[0].trace_id, 16, text);
	CHECK_STR(text, "4bf92f3577b34da6a3ce929d0e0e4736");
	hex(out[0].parent_id, 8, text);
	CHECK_STR(text, "00f067aa0ba902b7");
	CHECK(!zero(out[0].span_id, 8));
	CHECK(out[0].kind == SPAN_KIND_SERVER);
	CHECK_STR(span_name(&out[0]), "GET /users/{id}");
	CHECK_STR(span_service(&out[0]), "shop");
	CHECK_STR(attr(&out[0], "http.route"), "/users/{id}");
	CHECK_STR(attr(&out[0], "url.path"), "/users/7");
	CHECK(attr_of(&out[0], "http.response.status_code")->is_int &&
	      attr_of(&out[0], "http.response.status_code")->ival == 200);
	CHECK(attr_of(&out[0], "server.port")->ival == 8080);
	CHECK(!attr(&out[0], "service.name"));
	CHECK(!out[0].error && !attr(&out[0], "error.type"));
	CHECK(out[0].end_unix_ns - out[0].start_unix_ns == 5 * MS);
	trace_stop();
}

TEST(server_error_and_new_trace)
{
	uint64_t base = clock_monotonic_ns();

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 64);
	server(base, 7, 0, 5, NULL, "_unknown", "503");
	trace_end_round(base + 10 * MS);
	CHECK(take(out, 64) == 1);
	CHECK(out[0].error);
	CHECK_STR(attr(&out[0], "error.type"), "503");
	CHECK_STR(span_name(&out[0]), "GET");
	CHECK(!zero(out[0].trace_id, 16) && zero(out[0].parent_id, 8));
	trace_stop();
}

TEST(unsampled_parent_exports_nothing)
{
	uint64_t base = clock_monotonic_ns();

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 64);
	server(base, 7, 0, 5,
	       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "/a",
	       "200");
	trace_end_round(base + 10 * MS);
	CHECK(take(out, 64) == 0);
	/* always_on does not follow the parent. */
	start(TRACE_SAMPLER_ALWAYS_ON, 1, 64);
	server(base, 7, 0, 5,
	       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "/a",
	       "200");
	trace_end_round(base + 10 * MS);
	CHECK(take(out, 64) == 1);
	trace_stop();
}

/* A thread-per-request server: the calls its thread makes while
 * serving are the request's children, in its trace. */
TEST(calls_of_the_serving_thread_are_children)
{
	uint64_t base = clock_monotonic_ns();
	const struct span *srv = NULL;
	unsigned n, children = 0;

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 64);
	/* The thread served before: its calls wait for their request. */
	server(base, 9, 0, 1, NULL, "/warm", "200");
	trace_end_round(base + 2 * MS);
	CHECK(take(out, 64) == 1);
	db_call(base, 9, 3, 4);
	http_call(base, 9, 5, 6, 41001, NULL);
	db_call(base, 10, 3, 4); /* another thread's */
	trace_end_round(base + 7 * MS);
	n = take(out, 64);
	CHECK(n == 0); /* thread 10 never served but is new: it waits too */
	server(base, 9, 2, 8, TP, "/orders", "200");
	trace_end_round(base + 9 * MS);
	n = take(out, 64);
	CHECK(n == 3);
	for (unsigned i = 0; i < n; i++)
		if (out[i].kind == SPAN_KIND_SERVER)
			srv = &out[i];
	CHECK(srv != NULL);
	for (unsigned i = 0; srv && i < n; i++) {
		if (&out[i] == srv)
			continue;
		children++;
		CHECK(memcmp(out[i].trace_id, srv->trace_id, 16) == 0);
		CHECK(memcmp(out[i].parent_id, srv->span_id, 8) == 0);
		CHECK(memcmp(out[i].span_id, srv->span_id, 8) != 0);
		CHECK(out[i].kind == SPAN_KIND_CLIENT);
	}
	CHECK(children == 2);
	CHECK_STR(
		span_name(out[0].kind == SPAN_KIND_CLIENT ? &out[0] : &out[1]),
		"SELECT orders");
	trace_stop();
}

/* An event loop serves requests at once: its calls are not linked. */
TEST(overlapping_requests_are_not_linked)
{
	uint64_t base = clock_monotonic_ns();
	unsigned n;

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 64);
	server(base, 5, 0, 10, NULL, "/a", "200");
	server(base, 5, 2, 6, NULL, "/b", "200");
	trace_end_round(base + 11 * MS);
	CHECK(take(out, 64) == 2);
	http_call(base, 5, 12, 13, 41002, NULL);
	trace_end_round(base + 14 * MS);
	/* Not held: released at once, a root of its own trace. */
	n = take(out, 64);
	CHECK(n == 1);
	CHECK(zero(out[0].parent_id, 8));
	server(base, 5, 11, 15, NULL, "/c", "200");
	trace_end_round(base + 16 * MS);
	CHECK(take(out, 64) == 1);
	trace_stop();
}

/* A call that carries its own traceparent (an SDK) keeps its context;
 * one the kernel injected takes the injected ids, and its request's
 * span joins that trace. */
TEST(own_and_injected_context)
{
	uint64_t base = clock_monotonic_ns();
	uint8_t tid[16];
	const uint8_t sid[8] = { 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2 };
	const struct span *srv = NULL, *cl = NULL;
	char text[40];
	unsigned n;

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 64);
	http_call(base, 0, 0, 1, 41003, TP);
	trace_end_round(base + 2 * MS);
	CHECK(take(out, 64) == 1);
	hex(out[0].trace_id, 16, text);
	CHECK_STR(text, "4bf92f3577b34da6a3ce929d0e0e4736");
	hex(out[0].parent_id, 8, text);
	CHECK_STR(text, "00f067aa0ba902b7");

	/* The kernel derives a request's trace with the key, and puts it
	 * in the traceparent of the calls its thread makes. */
	trace_derive_ids(0x1234, 0x5678);
	sonde_derived_trace_id(0x1234, 0x5678, 100, 0, base + 2 * MS, tid);
	server(base, 11, 0, 1, NULL, "/warm", "200");
	trace_end_round(base + 2 * MS);
	CHECK(take(out, 64) == 1);
	trace_note_injected(100, 41004, 9000, base + 3 * MS, tid, sid);
	http_call(base, 11, 3, 4, 41004, NULL);
	server(base, 11, 2, 5, NULL, "/checkout", "200");
	trace_end_round(base + 6 * MS);
	n = take(out, 64);
	CHECK(n == 2);
	for (unsigned i = 0; i < n; i++)
		if (out[i].kind == SPAN_KIND_SERVER)
			srv = &out[i];
		else
			cl = &out[i];
	CHECK(srv && cl);
	if (srv && cl) {
		CHECK(has_ids(cl, tid, sid));
		CHECK(memcmp(srv->trace_id, tid, 16) == 0);
		CHECK(memcmp(cl->parent_id, srv->span_id, 8) == 0);
	}
	/* A call injected with another trace (its thread serves many at
	 * once, so the kernel gave it a fresh one) is no child. */
	tid[0] ^= 0xff;
	trace_note_injected(100, 41005, 9000, base + 13 * MS, tid, sid);
	http_call(base, 11, 13, 14, 41005, NULL);
	server(base, 11, 12, 15, NULL, "/checkout", "200");
	trace_end_round(base + 16 * MS);
	CHECK(take(out, 64) == 1); /* the server's; the call waits on */
	trace_end_round(base + 3000 * MS);
	CHECK(take(out, 64) == 1);
	CHECK(memcmp(out[0].trace_id, tid, 16) == 0 &&
	      zero(out[0].parent_id, 8));
	trace_stop();
}

/* More waiting spans than the table holds: when it fills, all go at
 * once, none lost, and the next fill starts from empty. */
TEST(full_pending_table_empties_whole)
{
	uint64_t base = clock_monotonic_ns();
	unsigned n = 0, got;
	static struct span many[256];

	start(TRACE_SAMPLER_ALWAYS_ON, 1, 16384);
	/* A thread not seen before: each call waits up to 100 ms. */
	for (int i = 0; i < 5000; i++)
		http_call(base, 77, 1, 2, 42000, NULL);
	trace_end_round(base + 3 * MS);
	while ((got = take(many, 256)) > 0)
		n += got;
	CHECK(n == 4096); /* the table filled twice, and went each time */
	trace_end_round(base + 200 * MS);
	while ((got = take(many, 256)) > 0)
		n += got;
	CHECK(n == 5000);
	trace_stop();
}

/* A keep-alive client may send its next request (and have it injected)
 * before the span of the one before is settled: each span takes the
 * injection made in its own time. */
TEST(injections_matched_by_time_on_their_connection)
{
	uint64_t base = clock_monotonic_ns();
	uint8_t t1[16] = { 1 }, t2[16] = { 2 }, s1[8] = { 1 }, s2[8] = { 2 };
	unsigned n;

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 64);
	trace_note_injected(100, 43000, 9000, base + 1 * MS, t1, s1);
	trace_note_injected(100, 43000, 9000, base + 5 * MS, t2, s2);
	/* Another connection's injection at the same time takes nothing. */
	trace_note_injected(100, 43001, 9000, base + 1 * MS, t2, s2);
	http_call(base, 0, 1, 2, 43000, NULL);
	http_call(base, 0, 5, 6, 43000, NULL);
	trace_end_round(base + 7 * MS);
	n = take(out, 64);
	CHECK(n == 2);
	CHECK(has_ids(&out[0], t1, s1));
	CHECK(has_ids(&out[1], t2, s2));
	CHECK(zero(out[0].parent_id, 8) && zero(out[1].parent_id, 8));
	trace_stop();
}

/* The writer may be preempted between the injection and the hook that
 * starts its exchange: milliseconds apart on a busy host. The span takes
 * the latest injection before its start, not an older one left by a
 * request that made no span, nor the next request's. */
TEST(injection_long_before_the_start_is_still_its_own)
{
	uint64_t base = clock_monotonic_ns();
	uint8_t t0[16] = { 9 }, t1[16] = { 1 }, t2[16] = { 2 };
	uint8_t s0[8] = { 9 }, s1[8] = { 1 }, s2[8] = { 2 };
	unsigned n;

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 64);
	trace_note_injected(100, 43100, 9000, base + 1 * MS, t0, s0);
	trace_note_injected(100, 43100, 9000, base + 20 * MS, t1, s1);
	trace_note_injected(100, 43100, 9000, base + 61 * MS, t2, s2);
	http_call(base, 0, 50, 60, 43100, NULL);
	trace_end_round(base + 62 * MS);
	n = take(out, 64);
	CHECK(n == 1);
	CHECK(has_ids(&out[0], t1, s1));
	/* The next request's, made after the first ended. */
	http_call(base, 0, 62, 63, 43100, NULL);
	trace_end_round(base + 64 * MS);
	CHECK(take(out, 64) == 1);
	CHECK(memcmp(out[0].trace_id, t2, 16) == 0);
	/* One far older than the start is no one's. */
	trace_note_injected(100, 43101, 9000, base + 1 * MS, t0, s0);
	http_call(base, 0, 200, 201, 43101, NULL);
	trace_end_round(base + 202 * MS);
	CHECK(take(out, 64) == 1);
	CHECK(memcmp(out[0].trace_id, t0, 16) != 0);
	trace_stop();
}

/* Connections in flight at once each keep their injections, however
 * their keys hash: 128 of them, on ports the kernel might pick, all
 * injected before any span settles. */
static uint16_t some_port(unsigned i)
{
	return (uint16_t)(32768 + (i * 2654435761u >> 7) % 28000);
}

TEST(injections_of_many_connections_at_once)
{
	uint64_t base = clock_monotonic_ns();
	uint8_t t[16] = { 0 }, sid[8] = { 0 };
	unsigned n, got = 0;

	start(TRACE_SAMPLER_PARENT_ALWAYS_ON, 1, 256);
	for (unsigned i = 0; i < 128; i++) {
		t[0] = (uint8_t)i;
		t[1] = 0x5a;
		trace_note_injected(100, some_port(i), 9000, base + 1 * MS, t,
				    sid);
	}
	for (unsigned i = 0; i < 128; i++)
		http_call(base, 0, 1, 2, some_port(i), NULL);
	trace_end_round(base + 3 * MS);
	/* Spans are queued in the order their exchanges came. */
	for (unsigned k = 0; (n = take(out, 64)) > 0; k += n)
		for (unsigned i = 0; i < n; i++)
			got += out[i].trace_id[1] == 0x5a &&
			       out[i].trace_id[0] == (uint8_t)(k + i);
	CHECK(got == 128);
	trace_stop();
}

TEST(full_queue_drops_and_counts)
{
	uint64_t base = clock_monotonic_ns();

	start(TRACE_SAMPLER_ALWAYS_ON, 1, 4);
	for (int i = 0; i < 6; i++)
		server(base, 20 + i, 0, 1, NULL, "/a", "200");
	trace_end_round(base + 2 * MS);
	CHECK(trace_queue_len() == 4);
	CHECK(take(out, 3) == 3);
	CHECK(take(out, 3) == 1);
	start(TRACE_SAMPLER_ALWAYS_OFF, 1, 4);
	server(base, 30, 0, 1, NULL, "/a", "200");
	trace_end_round(base + 2 * MS);
	CHECK(trace_queue_len() == 0);
	trace_stop();
}

TEST(config_from_environment)
{
	struct trace_config c;
	char err[256];

	unsetenv("OTEL_TRACES_SAMPLER");
	unsetenv("OTEL_TRACES_SAMPLER_ARG");
	unsetenv("OTEL_BSP_SCHEDULE_DELAY");
	unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
	unsetenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
	CHECK(trace_config_load(&c, err, sizeof(err)) == 0);
	CHECK(c.sampler == TRACE_SAMPLER_PARENT_ALWAYS_ON);
	CHECK(c.schedule_delay_ms == 5000 && c.max_queue == 2048 &&
	      c.max_batch == 512);
	setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
	setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
	CHECK(trace_config_load(&c, err, sizeof(err)) == 0);
	CHECK(c.sampler == TRACE_SAMPLER_RATIO && c.ratio == 0.25);
	CHECK(c.max_queue == 100 && c.max_batch == 100);
	setenv("OTEL_TRACES_SAMPLER_ARG", "1.5", 1);
	CHECK(trace_config_load(&c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "OTEL_TRACES_SAMPLER_ARG") != NULL);
	setenv("OTEL_TRACES_SAMPLER", "sometimes", 1);
	CHECK(trace_config_load(&c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "OTEL_TRACES_SAMPLER") != NULL);
	unsetenv("OTEL_TRACES_SAMPLER");
	unsetenv("OTEL_TRACES_SAMPLER_ARG");
	setenv("OTEL_BSP_SCHEDULE_DELAY", "-5", 1);
	CHECK(trace_config_load(&c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "OTEL_BSP_SCHEDULE_DELAY") != NULL);
	unsetenv("OTEL_BSP_SCHEDULE_DELAY");
	unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
}

UNIT_MAIN("trace", UNIT_CASE(traceparent_valid_and_not),
	  UNIT_CASE(ratio_sampler_by_last_eight_bytes),
	  UNIT_CASE(server_span_takes_its_request_context),
	  UNIT_CASE(server_error_and_new_trace),
	  UNIT_CASE(unsampled_parent_exports_nothing),
	  UNIT_CASE(calls_of_the_serving_thread_are_children),
	  UNIT_CASE(overlapping_requests_are_not_linked),
	  UNIT_CASE(own_and_injected_context),
	  UNIT_CASE(full_pending_table_empties_whole),
	  UNIT_CASE(injections_matched_by_time_on_their_connection),
	  UNIT_CASE(injection_long_before_the_start_is_still_its_own),
	  UNIT_CASE(injections_of_many_connections_at_once),
	  UNIT_CASE(full_queue_drops_and_counts),
	  UNIT_CASE(config_from_environment))
