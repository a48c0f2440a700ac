/* The OTLP encoder (field by field against opentelemetry-proto v1's
 * metrics.proto, common.proto, resource.proto and metrics_service.proto),
 * exponential histograms, configuration and the delivery helpers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "export/otlp.h"
#include "identity/lastseen.h"
#include "identity/procinfo.h"
#include "metrics/exphist.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "metrics/self.h"
#include "pbdec.h"
#include "proto/dispatch.h"
#include "proto/events.h"
#include "unit.h"

static void fresh_registry(bool exponential)
{
	struct histogram_bounds b;
	struct registry_limits l = { 100, 100, 1000 };

	registry_free();
	otlp_reset();
	lastseen_reset();
	histogram_bounds_default(&b);
	registry_init(&b, &l);
	if (exponential)
		registry_enable_exphist();
}

static void observe(const char *service, const char *status, uint64_t ns)
{
	const char *v[] = { service, "GET", status, "/users/{id}", "8080" };

	registry_observe(&family_http_server, v, ns);
}

/* The string value of the attribute named key in a list of KeyValue
 * fields numbered field; NULL-span when absent. */
static struct pb_span attr(struct pb_span m, unsigned field, const char *key,
			   struct pb_span *any)
{
	for (unsigned i = 0; i < dec_count(m, field); i++) {
		struct pb_span kv = dec_msg(m, field, i);

		if (dec_str_eq(dec_msg(kv, 1, 0), key)) {
			*any = dec_msg(kv, 2, 0);
			return dec_msg(*any, 1, 0);
		}
	}
	any->p = NULL;
	any->n = 0;
	return *any;
}

/* The resource metrics for service, or an empty span. */
static struct pb_span resource_of(struct pb_span req, const char *service)
{
	struct pb_span any;

	for (unsigned i = 0; i < dec_count(req, 1); i++) {
		struct pb_span rm = dec_msg(req, 1, i);

		if (dec_str_eq(attr(dec_msg(rm, 1, 0), 1, "service.name", &any),
			       service))
			return rm;
	}
	return (struct pb_span){ NULL, 0 };
}

/* The first metric of the service's scope metrics named name. */
static struct pb_span metric_named(struct pb_span rm, const char *name)
{
	struct pb_span sm = dec_msg(rm, 2, 0);

	for (unsigned i = 0; i < dec_count(sm, 2); i++) {
		struct pb_span m = dec_msg(sm, 2, i);

		if (dec_str_eq(dec_msg(m, 1, 0), name))
			return m;
	}
	return (struct pb_span){ NULL, 0 };
}

TEST(nothing_to_send_encodes_nothing)
{
	struct pb_buf b = { 0 };

	fresh_registry(false);
	CHECK(otlp_encode(&b, false, false, 1) == 0);
	CHECK(b.len == 0);
	pb_release(&b);
}

TEST(histogram_request_field_by_field)
{
	struct pb_buf b = { 0 };
	struct pb_span req, rm, res, sm, scope, m, h, dp, any, packed;
	uint64_t now = 1700000000000000000ULL;

	fresh_registry(false);
	observe("shop", "200", 3000000);  /* 0.003 s: bucket 0 */
	observe("shop", "200", 60000000); /* 0.06 s: bucket 4 (<= 0.075) */
	observe("shop", "200", 20000000000ULL); /* 20 s: overflow bucket */
	observe("cart", "503", 1000);
	CHECK(otlp_encode(&b, false, false, now) == 2);
	req = (struct pb_span){ b.data, b.len };
	CHECK(dec_count(req, 1) == 2); /* one ResourceMetrics per service */
	rm = resource_of(req, "shop");
	CHECK(rm.p != NULL);
	res = dec_msg(rm, 1, 0);
	CHECK(attr(res, 1, "host.name", &any).n > 0);
	sm = dec_msg(rm, 2, 0);
	scope = dec_msg(sm, 1, 0);
	CHECK(dec_str_eq(dec_msg(scope, 1, 0), "sonde"));
	CHECK(dec_str_eq(dec_msg(scope, 2, 0), SONDE_VERSION));
	CHECK(dec_count(sm, 2) == 1);
	m = metric_named(rm, "http.server.request.duration");
	CHECK(dec_str_eq(dec_msg(m, 3, 0), "s"));
	CHECK(dec_msg(m, 2, 0).n > 0); /* description */
	h = dec_msg(m, 9, 0);	       /* Histogram */
	CHECK(h.p != NULL);
	CHECK(dec_u64(h, 2, 0) == 2); /* AGGREGATION_TEMPORALITY_CUMULATIVE */
	CHECK(dec_count(h, 1) == 1);
	dp = dec_msg(h, 1, 0);
	CHECK(dec_u64(dp, 3, 0) == now);
	/* start: the series' first observation, wall clock */
	CHECK(dec_u64(dp, 2, 0) > 1600000000000000000ULL);
	CHECK(dec_u64(dp, 4, 0) == 3);
	CHECK(fabs(dec_double(dp, 5) - 20.063) < 1e-9);
	packed = dec_msg(dp, 6, 0); /* bucket_counts: 15 fixed64 */
	CHECK(packed.n == 15 * 8);
	CHECK(packed.p[0] == 1 && packed.p[4 * 8] == 1 &&
	      packed.p[14 * 8] == 1);
	CHECK(packed.p[1 * 8] == 0 && packed.p[13 * 8] == 0);
	packed = dec_msg(dp, 7, 0); /* explicit_bounds: 14 doubles */
	CHECK(packed.n == 14 * 8);
	/* Label 0 is the resource's; the rest are dotted attributes, with
	 * status code and port as integers. */
	CHECK(dec_count(dp, 9) == 4);
	CHECK(attr(dp, 9, "service.name", &any).p == NULL);
	CHECK(dec_str_eq(attr(dp, 9, "http.request.method", &any), "GET"));
	CHECK(dec_str_eq(attr(dp, 9, "http.route", &any), "/users/{id}"));
	attr(dp, 9, "http.response.status_code", &any);
	CHECK(dec_u64(any, 3, 0) == 200);
	attr(dp, 9, "server.port", &any);
	CHECK(dec_u64(any, 3, 0) == 8080);
	pb_release(&b);
}

TEST(start_time_is_stable_between_exports)
{
	struct pb_buf b1 = { 0 }, b2 = { 0 };
	struct pb_span dp1, dp2, rm;

	fresh_registry(false);
	observe("shop", "200", 1000);
	otlp_encode(&b1, false, false, 1000);
	observe("shop", "200", 1000);
	otlp_encode(&b2, false, false, 2000);
	rm = resource_of((struct pb_span){ b1.data, b1.len }, "shop");
	dp1 = dec_msg(
		dec_msg(metric_named(rm, "http.server.request.duration"), 9, 0),
		1, 0);
	rm = resource_of((struct pb_span){ b2.data, b2.len }, "shop");
	dp2 = dec_msg(
		dec_msg(metric_named(rm, "http.server.request.duration"), 9, 0),
		1, 0);
	CHECK(dec_u64(dp1, 2, 0) == dec_u64(dp2, 2, 0));
	CHECK(dec_u64(dp1, 4, 0) == 1 && dec_u64(dp2, 4, 0) == 2);
	pb_release(&b1);
	pb_release(&b2);
}

static struct pb_span first_point(struct pb_buf *b, const char *service,
				  const char *metric, unsigned data_field)
{
	struct pb_span rm =
		resource_of((struct pb_span){ b->data, b->len }, service);

	return dec_msg(dec_msg(metric_named(rm, metric), data_field, 0), 1, 0);
}

TEST(delta_sends_what_changed_and_skips_the_unchanged)
{
	struct pb_buf b1 = { 0 }, b2 = { 0 }, b3 = { 0 };
	struct pb_span dp1, dp2, h;

	fresh_registry(false);
	observe("shop", "200", 3000000);
	observe("shop", "200", 3000000);
	CHECK(otlp_encode(&b1, true, false, 1000) == 1);
	observe("shop", "200", 60000000);
	CHECK(otlp_encode(&b2, true, false, 2000) == 1);
	CHECK(otlp_encode(&b3, true, false, 3000) == 0);
	dp1 = first_point(&b1, "shop", "http.server.request.duration", 9);
	dp2 = first_point(&b2, "shop", "http.server.request.duration", 9);
	h = dec_msg(
		metric_named(resource_of((struct pb_span){ b2.data, b2.len },
					 "shop"),
			     "http.server.request.duration"),
		9, 0);
	CHECK(dec_u64(h, 2, 0) == 1); /* AGGREGATION_TEMPORALITY_DELTA */
	CHECK(dec_u64(dp1, 4, 0) == 2 && dec_u64(dp2, 4, 0) == 1);
	CHECK(fabs(dec_double(dp2, 5) - 0.06) < 1e-12);
	CHECK(dec_msg(dp2, 6, 0).p[0] == 0 && dec_msg(dp2, 6, 0).p[4 * 8] == 1);
	/* Each delta starts where the one before it ended. */
	CHECK(dec_u64(dp2, 2, 0) == 1000 && dec_u64(dp2, 3, 0) == 2000);
	pb_release(&b1);
	pb_release(&b2);
	pb_release(&b3);
}

TEST(counters_and_gauges_are_sums)
{
	struct pb_buf b = { 0 }, d = { 0 };
	const char *retrans[] = { "db" };
	const char *active[] = { "db", "server" };
	struct pb_span m, sum, dp, any;

	fresh_registry(false);
	registry_add(&family_tcp_retransmits, retrans, 5);
	registry_gauge_add(&family_tcp_active, active, 3);
	registry_gauge_add(&family_tcp_active, active, -1);
	CHECK(otlp_encode(&b, false, false, 10) == 2);
	m = metric_named(resource_of((struct pb_span){ b.data, b.len }, "db"),
			 "sonde.tcp.retransmits");
	sum = dec_msg(m, 7, 0);
	CHECK(dec_u64(sum, 3, 9) == 1); /* is_monotonic */
	CHECK(dec_u64(sum, 2, 0) == 2);
	dp = dec_msg(sum, 1, 0);
	CHECK(dec_u64(dp, 6, 0) == 5); /* as_int */
	m = metric_named(resource_of((struct pb_span){ b.data, b.len }, "db"),
			 "sonde.tcp.active_connections");
	sum = dec_msg(m, 7, 0);
	CHECK(dec_u64(sum, 3, 9) == 0);
	dp = dec_msg(sum, 1, 0);
	CHECK(dec_u64(dp, 6, 0) == 2);
	CHECK(dec_str_eq(attr(dp, 7, "sonde.tcp.role", &any), "server"));
	/* Under the delta preference an up-down sum stays cumulative. */
	registry_add(&family_tcp_retransmits, retrans, 2);
	otlp_encode(&d, true, false, 20);
	otlp_encode(&d, true, false, 30);
	m = metric_named(resource_of((struct pb_span){ d.data, d.len }, "db"),
			 "sonde.tcp.active_connections");
	CHECK(dec_u64(dec_msg(m, 7, 0), 2, 0) == 2);
	pb_release(&b);
	pb_release(&d);
}

/* A family with bounds of its own, as the database ones have. */
static struct histogram_bounds fine_bounds;
static struct metric_family fine_family = {
	.name = "t_fine_seconds",
	.otel_name = "t.fine",
	.unit = "s",
	.help = "Fine.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = 2,
	.labels = { "service_name", "op" },
	.otel_labels = { "service.name", "op" },
	.capped_label = -1,
	.bounds = &fine_bounds,
};

/* Item i of a packed fixed64 or double field (little-endian). */
static uint64_t packed_u64(struct pb_span packed, unsigned i)
{
	uint64_t v = 0;

	for (int k = 7; k >= 0; k--)
		v = (v << 8) | packed.p[i * 8 + k];
	return v;
}

static double packed_double(struct pb_span packed, unsigned i)
{
	uint64_t bits = packed_u64(packed, i);
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

TEST(explicit_bounds_are_each_familys_own)
{
	struct pb_buf b = { 0 }, d1 = { 0 }, d2 = { 0 };
	const char *op[] = { "shop", "GET" };
	/* 50 us, 100 us (on the first bound), 300 us, 2 ms, 20 s. */
	const uint64_t ns[] = { 50000, 100000, 300000, 2000000,
				20000000000ULL };
	/* Per bucket: 2 up to 0.0001, 1 in (0.00025, 0.0005], 1 in
	 * (0.001, 0.0025], 1 above 10. */
	const uint64_t fine_counts[17] = { 2, 0, 1, 0, 1, [16] = 1 };
	struct pb_span dp, bounds, counts;

	fresh_registry(false);
	histogram_bounds_fine(&fine_bounds);
	observe("shop", "200", 3000000); /* 3 ms: 0.005's bucket */
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		registry_observe(&fine_family, op, ns[i]);
	CHECK(otlp_encode(&b, false, false, 1000) == 2);
	dp = first_point(&b, "shop", "t.fine", 9);
	CHECK(dec_u64(dp, 4, 0) == 5);
	bounds = dec_msg(dp, 7, 0);
	counts = dec_msg(dp, 6, 0);
	CHECK(bounds.n == 16 * 8 && counts.n == 17 * 8);
	for (unsigned i = 0; bounds.n == 16 * 8 && i < 16; i++)
		CHECK(packed_double(bounds, i) == fine_bounds.seconds[i]);
	for (unsigned i = 0; counts.n == 17 * 8 && i < 17; i++)
		CHECK(packed_u64(counts, i) == fine_counts[i]);
	CHECK(packed_double(bounds, 0) == 0.0001);
	/* The registry's, alongside. */
	dp = first_point(&b, "shop", "http.server.request.duration", 9);
	bounds = dec_msg(dp, 7, 0);
	counts = dec_msg(dp, 6, 0);
	CHECK(bounds.n == 14 * 8 && counts.n == 15 * 8);
	CHECK(packed_double(bounds, 0) == 0.005 && packed_u64(counts, 0) == 1);
	/* Deltas subtract bucket by bucket, over all 17. */
	CHECK(otlp_encode(&d1, true, false, 2000) == 2);
	registry_observe(&fine_family, op, 50000);
	registry_observe(&fine_family, op, 20000000000ULL);
	CHECK(otlp_encode(&d2, true, false, 3000) == 1);
	dp = first_point(&d2, "shop", "t.fine", 9);
	counts = dec_msg(dp, 6, 0);
	CHECK(dec_u64(dp, 4, 0) == 2 && counts.n == 17 * 8);
	for (unsigned i = 0; counts.n == 17 * 8 && i < 17; i++)
		CHECK(packed_u64(counts, i) == (i == 0 || i == 16));
	CHECK(dec_msg(dp, 7, 0).n == 16 * 8);
	pb_release(&b);
	pb_release(&d1);
	pb_release(&d2);
}

/* The as_int value of the first point of the retransmits sum of service in
 * request b, or -1 when it has none. */
static int64_t retransmits_in(struct pb_buf *b, const char *service)
{
	struct pb_span m = metric_named(
		resource_of((struct pb_span){ b->data, b->len }, service),
		"sonde.tcp.retransmits");

	if (!m.p)
		return -1;
	return (int64_t)dec_u64(dec_msg(dec_msg(m, 7, 0), 1, 0), 6, 0);
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

TEST(delta_survives_series_expiring_around_it)
{
	struct pb_buf b1 = { 0 }, b2 = { 0 }, b3 = { 0 };
	const char *a[] = { "a" }, *bsvc[] = { "b" };
	struct timespec pause = { 0, 30000000 };

	fresh_registry(false);
	registry_add(&family_tcp_retransmits, a, 5);
	registry_add(&family_tcp_retransmits, bsvc, 7);
	CHECK(otlp_encode(&b1, true, false, 10) == 2);
	nanosleep(&pause, NULL);
	registry_add(&family_tcp_retransmits, bsvc, 1);
	/* "a" was idle for 30 ms, "b" was just updated: only "a" goes, and
	 * "b" moves to where "a" was in the walk. */
	CHECK(registry_expire(wall_ns(), 15000000) == 1);
	registry_add(&family_tcp_retransmits, bsvc, 2);
	CHECK(otlp_encode(&b2, true, false, 20) == 1);
	CHECK(retransmits_in(&b2, "b") == 3);
	CHECK(retransmits_in(&b2, "a") == -1);
	/* "a" comes back as a new series: its first delta is all of it. */
	registry_add(&family_tcp_retransmits, a, 4);
	CHECK(otlp_encode(&b3, true, false, 30) == 1);
	CHECK(retransmits_in(&b3, "a") == 4);
	pb_release(&b1);
	pb_release(&b2);
	pb_release(&b3);
}

TEST(process_table_is_off_without_export)
{
	struct pb_buf b = { 0 };
	struct pb_span res, any;
	struct procinfo info = { .service = "shop", .namespace = "retail" };

	fresh_registry(false);
	/* The consumer pays nothing for it while export is off. */
	lastseen_note(&info, 4242, "nginx");
	observe("shop", "200", 1000);
	otlp_encode(&b, false, false, 1);
	res = dec_msg(resource_of((struct pb_span){ b.data, b.len }, "shop"), 1,
		      0);
	CHECK(attr(res, 1, "process.pid", &any).p == NULL);
	CHECK(dec_str_eq(attr(res, 1, "service.name", &any), "shop"));
	pb_release(&b);
}

TEST(resource_names_the_process_a_service_was_last_seen_in)
{
	const char *id = "0123456789abcdef0123456789abcdef"
			 "0123456789abcdef0123456789abcdef";
	struct procinfo info = { .service = "shop", .namespace = "retail" };
	struct pb_buf b = { 0 };
	struct pb_span res, any;

	fresh_registry(false);
	snprintf(info.container_id, sizeof(info.container_id), "%s", id);
	lastseen_enable(true);
	/* 0x7ffffff3: no such process, so its /proc entry says nothing. */
	lastseen_note(&info, 0x7ffffff3, "nginx");
	lastseen_enable(false);
	observe("shop", "200", 1000);
	otlp_encode(&b, false, false, 1);
	res = dec_msg(resource_of((struct pb_span){ b.data, b.len }, "shop"), 1,
		      0);
	attr(res, 1, "process.pid", &any);
	CHECK(dec_u64(any, 3, 0) == 0x7ffffff3);
	CHECK(dec_str_eq(attr(res, 1, "process.executable.name", &any),
			 "nginx"));
	CHECK(dec_str_eq(attr(res, 1, "service.namespace", &any), "retail"));
	CHECK(dec_str_eq(attr(res, 1, "container.id", &any), id));
	pb_release(&b);
	lastseen_reset();
}

static uint64_t attached_a = 1, attached_b;

static void collect_attached(const struct self_metric *m,
			     struct self_sink *sink)
{
	const char *a[] = { "prog_a" }, *b[] = { "prog_b" };

	(void)m;
	self_emit_u64(sink, a, attached_a);
	self_emit_u64(sink, b, attached_b);
}

static void collect_nothing(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	(void)sink;
}

static const struct self_metric attached = {
	.name = "t_attached",
	.otel_name = "t.attached",
	.unit = "1",
	.help = "1 when attached.",
	.kind = SELF_GAUGE,
	.nlabels = 1,
	.labels = { "program" },
	.otel_labels = { "t.program.name" },
	.collect = collect_attached,
};

static struct histogram_bounds self_bounds;
static struct histogram *self_hist;

static void collect_hist(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	self_emit_histogram(sink, NULL, self_hist, &self_bounds);
}

static const struct self_metric waits = {
	.name = "t_wait_seconds",
	.otel_name = "t.wait.duration",
	.unit = "s",
	.help = "Waits.",
	.kind = SELF_HISTOGRAM,
	.collect = collect_hist,
};

static const struct self_metric silent = {
	.name = "t_silent_total",
	.otel_name = "t.silent",
	.unit = "1",
	.help = "No samples yet.",
	.kind = SELF_COUNTER,
	.collect = collect_nothing,
};

/* The data point in data (a Sum or Gauge) whose attribute key has value,
 * or an empty span. */
static struct pb_span point_with(struct pb_span data, const char *key,
				 const char *value)
{
	struct pb_span any;

	for (unsigned i = 0; i < dec_count(data, 1); i++) {
		struct pb_span dp = dec_msg(data, 1, i);

		if (dec_str_eq(attr(dp, 7, key, &any), value))
			return dp;
	}
	return (struct pb_span){ NULL, 0 };
}

TEST(self_metrics_have_a_resource_of_their_own)
{
	const uint8_t bad_record[1] = { 0 };
	struct pb_buf b = { 0 }, d = { 0 };
	struct pb_span req, rm, res, any, m, sum, gauge, dp, h, packed;
	uint64_t now = 1700000000000000000ULL;

	fresh_registry(false);
	self_reset();
	histogram_bounds_default(&self_bounds);
	self_hist = calloc(1, histogram_size(&self_bounds));
	histogram_observe(self_hist, &self_bounds, 3000000);
	histogram_observe(self_hist, &self_bounds, 20000000000ULL);
	/* The real registration of the dispatcher's counters, one record
	 * too short to read. */
	events_register_metrics();
	self_register(&attached);
	self_register(&waits);
	self_register(&silent);
	dispatch_record(NULL, (void *)bad_record, sizeof(bad_record));
	observe("shop", "200", 1000);
	/* The shop's point, the received count, six parse error reasons,
	 * the two programs and the histogram. */
	CHECK(otlp_encode(&b, false, false, now) == 1 + 1 + 6 + 2 + 1);
	req = (struct pb_span){ b.data, b.len };
	CHECK(dec_count(req, 1) == 2);
	rm = resource_of(req, "sonde");
	CHECK(rm.p != NULL);
	res = dec_msg(rm, 1, 0);
	attr(res, 1, "process.pid", &any);
	CHECK(dec_u64(any, 3, 0) == (uint64_t)getpid());
	CHECK(dec_str_eq(attr(res, 1, "service.version", &any), SONDE_VERSION));
	CHECK(attr(res, 1, "host.name", &any).n > 0);
	CHECK(dec_str_eq(dec_msg(dec_msg(dec_msg(rm, 2, 0), 1, 0), 1, 0),
			 "sonde"));
	/* A counter: a cumulative monotonic Sum from sonde's start. */
	m = metric_named(rm, "sonde.events.received");
	CHECK(dec_str_eq(dec_msg(m, 2, 0),
			 "Events read from the kernel's ring buffer."));
	CHECK(dec_str_eq(dec_msg(m, 3, 0), "{event}"));
	sum = dec_msg(m, 7, 0);
	CHECK(dec_u64(sum, 2, 0) == 2); /* AGGREGATION_TEMPORALITY_CUMULATIVE */
	CHECK(dec_u64(sum, 3, 0) == 1); /* is_monotonic */
	CHECK(dec_count(sum, 1) == 1);
	dp = dec_msg(sum, 1, 0);
	CHECK(dec_u64(dp, 6, 0) == 1); /* as_int */
	CHECK(dec_u64(dp, 2, 0) == self_start_unix_ns());
	CHECK(dec_u64(dp, 3, 0) == now);
	CHECK(dec_count(dp, 7) == 0);
	/* Labels become attributes under their OTLP names. */
	sum = dec_msg(metric_named(rm, "sonde.parse_errors"), 7, 0);
	CHECK(dec_count(sum, 1) == 6);
	dp = point_with(sum, "sonde.parse_error.reason", "record");
	CHECK(dec_u64(dp, 6, 9) == 1);
	dp = point_with(sum, "sonde.parse_error.reason", "no_request");
	CHECK(dp.p && dec_u64(dp, 6, 9) == 0);
	/* A gauge: a Gauge, as of now, no start. */
	m = metric_named(rm, "t.attached");
	CHECK(dec_msg(m, 7, 0).p == NULL);
	gauge = dec_msg(m, 5, 0);
	CHECK(dec_count(gauge, 1) == 2);
	dp = point_with(gauge, "t.program.name", "prog_a");
	CHECK(dec_u64(dp, 6, 9) == 1);
	CHECK(dec_u64(dp, 2, 7) == 7); /* no start_time_unix_nano */
	CHECK(dec_u64(point_with(gauge, "t.program.name", "prog_b"), 6, 9) ==
	      0);
	/* A histogram: cumulative explicit buckets, not cumulated. */
	h = dec_msg(metric_named(rm, "t.wait.duration"), 9, 0);
	CHECK(dec_u64(h, 2, 0) == 2);
	dp = dec_msg(h, 1, 0);
	CHECK(dec_u64(dp, 2, 0) == self_start_unix_ns());
	CHECK(dec_u64(dp, 4, 0) == 2);
	CHECK(fabs(dec_double(dp, 5) - 20.003) < 1e-9);
	packed = dec_msg(dp, 6, 0);
	CHECK(packed.n == 15 * 8 && packed.p[0] == 1 && packed.p[14 * 8] == 1);
	CHECK(dec_msg(dp, 7, 0).n == 14 * 8);
	/* A metric with nothing to say is left out. */
	CHECK(metric_named(rm, "t.silent").p == NULL);
	/* Under the delta preference too, and whether or not the services
	 * sent anything: sonde's own counters stay cumulative. */
	otlp_encode(&d, true, false, now + 1);
	pb_release(&d);
	CHECK(otlp_encode(&d, true, false, now + 2) == 1 + 6 + 2 + 1);
	rm = resource_of((struct pb_span){ d.data, d.len }, "sonde");
	sum = dec_msg(metric_named(rm, "sonde.events.received"), 7, 0);
	CHECK(dec_u64(sum, 2, 0) == 2);
	CHECK(dec_u64(dec_msg(sum, 1, 0), 6, 0) == 1);
	pb_release(&b);
	pb_release(&d);
	self_reset();
	free(self_hist);
}

TEST(exponential_index_follows_the_spec)
{
	/* Scale 0: (1, 2] is bucket 0, (2, 4] bucket 1, exact powers of two
	 * close their bucket. */
	CHECK(exphist_index(1.5, 0) == 0);
	CHECK(exphist_index(2.0, 0) == 0);
	CHECK(exphist_index(2.5, 0) == 1);
	CHECK(exphist_index(1.0, 0) == -1);
	CHECK(exphist_index(0.75, 0) == -1);
	/* Scale 1: buckets of ratio sqrt(2). */
	CHECK(exphist_index(1.2, 1) == 0);
	CHECK(exphist_index(1.5, 1) == 1);
	CHECK(exphist_index(2.0, 1) == 1);
	CHECK(exphist_index(0.001, 3) == (int32_t)ceil(log2(0.001) * 8) - 1);
	/* Negative scales: four powers of two per bucket at -2. */
	CHECK(exphist_index(3.0, -2) == 0);
	CHECK(exphist_index(16.0, -2) == 0);
	CHECK(exphist_index(17.0, -2) == 1);
	CHECK(exphist_index(0.5, -2) == -1);
}

TEST(exponential_histogram_rescales_to_fit)
{
	struct exphist h, later, d;
	uint64_t total = 0;

	exphist_init(&h);
	exphist_observe(&h, 1000000); /* 1 ms */
	CHECK(h.scale == EXPHIST_MAX_SCALE && h.len == 1);
	exphist_observe(&h, 0);
	exphist_observe(&h, 2000000000ULL); /* 2 s: 11 octaves up */
	CHECK(h.len <= EXPHIST_MAX_BUCKETS);
	/* 11 octaves in 160 buckets: at most 2^3 per octave. */
	CHECK(h.scale == 3);
	CHECK(h.count == 3 && h.zero_count == 1);
	for (uint32_t i = 0; i < h.len; i++)
		total += h.counts[i];
	CHECK(total == 2);
	CHECK(h.offset == exphist_index(0.001, 3));
	CHECK(h.offset + (int32_t)h.len - 1 == exphist_index(2.0, 3));
	CHECK(h.min_ns == 0 && h.max_ns == 2000000000ULL);
	later = h;
	exphist_observe(&later, 500000000ULL);
	exphist_observe(&later, 100000ULL); /* lower: may rescale */
	exphist_delta(&later, &h, &d);
	CHECK(d.count == 2 && d.zero_count == 0);
	CHECK(d.sum_ns == 500100000ULL);
	total = 0;
	for (uint32_t i = 0; i < d.len; i++)
		total += d.counts[i];
	CHECK(total == 2);
	CHECK(d.counts[0] == 1 && d.counts[d.len - 1] == 1);
	CHECK(d.offset == exphist_index(0.0001, d.scale));
}

TEST(exponential_request_carries_scale_and_buckets)
{
	struct pb_buf b = { 0 };
	struct pb_span dp, pos;

	fresh_registry(true);
	observe("shop", "200", 1000000);
	observe("shop", "200", 1000000);
	CHECK(otlp_encode(&b, false, true, 5) == 1);
	dp = first_point(&b, "shop", "http.server.request.duration", 10);
	CHECK(dec_u64(dp, 4, 0) == 2);
	CHECK(dec_u64(dp, 6, 99) == 40); /* sint32 20, zigzag */
	pos = dec_msg(dp, 8, 0);
	CHECK(dec_msg(pos, 2, 0).n == 1 && dec_msg(pos, 2, 0).p[0] == 2);
	CHECK(fabs(dec_double(dp, 12) - 0.001) < 1e-12);
	CHECK(fabs(dec_double(dp, 13) - 0.001) < 1e-12);
	pb_release(&b);
	fresh_registry(false);
}

static void clear_env(void)
{
	static const char *const names[] = {
		"OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_METRIC_EXPORT_INTERVAL",
		"OTEL_EXPORTER_OTLP_TIMEOUT",
		"OTEL_EXPORTER_OTLP_COMPRESSION",
		"OTEL_EXPORTER_OTLP_HEADERS",
		"OTEL_EXPORTER_OTLP_CERTIFICATE",
		"OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
		"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
}

TEST(config_endpoints)
{
	struct otlp_config c;
	char err[256];

	clear_env();
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == 0);
	CHECK(c.metrics.endpoint == NULL);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == 0);
	CHECK_STR(c.metrics.endpoint, "http://collector:4318/v1/metrics");
	CHECK(c.interval_ms == 60000 && c.metrics.timeout_ms == 10000);
	CHECK(!c.metrics.gzip && !c.delta && !c.exponential);
	otlp_config_free(&c);
	setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://c/custom", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == 0);
	CHECK_STR(c.metrics.endpoint, "https://c/custom");
	otlp_config_free(&c);
	/* The environment overrides the flag (and the config file). */
	CHECK(otlp_config_load("http://flag:4318", &c, err, sizeof(err)) == 0);
	CHECK_STR(c.metrics.endpoint, "https://c/custom");
	otlp_config_free(&c);
	clear_env();
	CHECK(otlp_config_load("http://127.0.0.1:4318", &c, err, sizeof(err)) ==
	      0);
	CHECK_STR(c.metrics.endpoint, "http://127.0.0.1:4318/v1/metrics");
	otlp_config_free(&c);
	CHECK(otlp_config_load("http://h:1/otlp/metrics", &c, err,
			       sizeof(err)) == 0);
	CHECK_STR(c.metrics.endpoint, "http://h:1/otlp/metrics");
	otlp_config_free(&c);
	CHECK(otlp_config_load("collector:4318", &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "--otlp-endpoint: 'collector:4318'") != NULL);
	clear_env();
}

TEST(config_values_and_their_errors)
{
	struct otlp_config c;
	char err[256];

	clear_env();
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1);
	setenv("OTEL_METRIC_EXPORT_INTERVAL", "500", 1);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
	       "base2_exponential_bucket_histogram", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x-tenant = t1", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == 0);
	CHECK(c.interval_ms == 500 && c.metrics.timeout_ms == 2500);
	CHECK(c.metrics.gzip && c.delta && c.exponential);
	CHECK(c.metrics.nheaders == 2);
	CHECK_STR(c.metrics.headers[0], "api-key: a b");
	CHECK_STR(c.metrics.headers[1], "x-tenant: t1");
	otlp_config_free(&c);

	setenv("OTEL_METRIC_EXPORT_INTERVAL", "0", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "OTEL_METRIC_EXPORT_INTERVAL: '0'") != NULL);
	setenv("OTEL_METRIC_EXPORT_INTERVAL", "10s", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	unsetenv("OTEL_METRIC_EXPORT_INTERVAL");
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "'zstd' is not one of none, gzip") != NULL);
	unsetenv("OTEL_EXPORTER_OTLP_COMPRESSION");
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "novalue", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "k=a%0d%0aInjected: 1", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "k=%4", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
	setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "/nonexistent/ca.pem") != NULL);
	unsetenv("OTEL_EXPORTER_OTLP_CERTIFICATE");
	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	CHECK(otlp_config_load(NULL, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "http/protobuf") != NULL);
	clear_env();
}

TEST(partial_success_response_is_read)
{
	/* ExportMetricsServiceResponse{partial_success{rejected_data_points:
	 * 3, error_message: "bad"}} */
	static const uint8_t partial[] = { 0x0a, 0x07, 0x08, 0x03, 0x12,
					   0x03, 'b',  'a',  'd' };
	static const uint8_t broken[] = { 0x0a, 0x09, 0x08 };
	int64_t rejected;
	char msg[32];

	CHECK(otlp_parse_response(partial, sizeof(partial), &rejected, msg,
				  sizeof(msg)) == 0);
	CHECK(rejected == 3);
	CHECK_STR(msg, "bad");
	CHECK(otlp_parse_response(NULL, 0, &rejected, msg, sizeof(msg)) == 0);
	CHECK(rejected == 0 && msg[0] == '\0');
	CHECK(otlp_parse_response(broken, sizeof(broken), &rejected, msg,
				  sizeof(msg)) == -1);
}

TEST(retry_after_and_backoff)
{
	CHECK(otlp_retry_after_ms("2", 0) == 2000);
	CHECK(otlp_retry_after_ms(" 0 ", 0) == 0);
	CHECK(otlp_retry_after_ms("99999", 0) == 300000);
	CHECK(otlp_retry_after_ms("soon", 0) == -1);
	/* Sun, 06 Nov 1994 08:49:37 GMT is 784111777. */
	CHECK(otlp_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111770) ==
	      7000);
	CHECK(otlp_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111800) ==
	      0);
	CHECK(otlp_backoff_ms(1, 0) == 750 && otlp_backoff_ms(1, 1023) < 1000);
	CHECK(otlp_backoff_ms(2, 0) == 1500);
	CHECK(otlp_backoff_ms(3, 0) == 3000);
	CHECK(otlp_backoff_ms(2, 0) > otlp_backoff_ms(1, 1023));
	CHECK(otlp_backoff_ms(50, 1023) < 30000 &&
	      otlp_backoff_ms(50, 0) == 22500);
}

TEST(container_id_from_cgroup)
{
	char id[65];
	const char *hex = "0123456789abcdef0123456789abcdef"
			  "0123456789abcdef0123456789abcdef";
	char line[256];

	snprintf(line, sizeof(line), "0::/system.slice/docker-%s.scope\n", hex);
	CHECK(lastseen_container_id(line, id) == 0);
	CHECK_STR(id, hex);
	snprintf(line, sizeof(line), "0::/kubepods/besteffort/pod1/%s", hex);
	CHECK(lastseen_container_id(line, id) == 0);
	CHECK_STR(id, hex);
	CHECK(lastseen_container_id("0::/user.slice/session-2.scope\n", id) ==
	      -1);
}

UNIT_MAIN("otlp", UNIT_CASE(nothing_to_send_encodes_nothing),
	  UNIT_CASE(histogram_request_field_by_field),
	  UNIT_CASE(start_time_is_stable_between_exports),
	  UNIT_CASE(delta_sends_what_changed_and_skips_the_unchanged),
	  UNIT_CASE(counters_and_gauges_are_sums),
	  UNIT_CASE(explicit_bounds_are_each_familys_own),
	  UNIT_CASE(delta_survives_series_expiring_around_it),
	  UNIT_CASE(process_table_is_off_without_export),
	  UNIT_CASE(resource_names_the_process_a_service_was_last_seen_in),
	  UNIT_CASE(self_metrics_have_a_resource_of_their_own),
	  UNIT_CASE(exponential_index_follows_the_spec),
	  UNIT_CASE(exponential_histogram_rescales_to_fit),
	  UNIT_CASE(exponential_request_carries_scale_and_buckets),
	  UNIT_CASE(config_endpoints),
	  UNIT_CASE(config_values_and_their_errors),
	  UNIT_CASE(partial_success_response_is_read),
	  UNIT_CASE(retry_after_and_backoff),
	  UNIT_CASE(container_id_from_cgroup))
