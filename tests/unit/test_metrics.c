/* Histograms, the Prometheus writer and the series registry. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "export/prom.h"
#include "metrics/families.h"
#include "metrics/histogram.h"
#include "metrics/registry.h"
#include "unit.h"

static struct histogram *new_histogram(const struct histogram_bounds *b)
{
	return calloc(1, histogram_size(b));
}

/* The exposition, with the registry's own metrics (registered again after
 * a label cap, which adds sonde_label_overflows_total). */
static void render(struct strbuf *sb)
{
	registry_register_metrics();
	prom_render(sb);
}

TEST(default_bounds_are_the_opentelemetry_ones)
{
	struct histogram_bounds b;

	histogram_bounds_default(&b);
	CHECK(b.n == 14);
	CHECK(b.ns[0] == 5000000);
	CHECK(b.ns[4] == 75000000);
	CHECK(b.ns[13] == 10000000000ULL);
}

TEST(fine_bounds_start_at_100_us)
{
	static const double want[] = { 0.0001, 0.00025, 0.0005, 0.001,
				       0.0025, 0.005,	0.01,	0.025,
				       0.05,   0.1,	0.25,	0.5,
				       1,      2.5,	5,	10 };
	struct histogram_bounds b;

	histogram_bounds_fine(&b);
	CHECK(b.n == 16);
	for (size_t i = 0; i < 16; i++)
		CHECK(b.seconds[i] == want[i]);
	CHECK(b.ns[0] == 100000 && b.ns[1] == 250000 && b.ns[3] == 1000000);
	CHECK(b.ns[15] == 10000000000ULL);
}

TEST(observation_on_a_bound_counts_in_that_bucket)
{
	struct histogram_bounds b;
	struct histogram *h;

	histogram_bounds_default(&b);
	h = new_histogram(&b);
	histogram_observe(h, &b, 50000000);	  /* exactly 0.05: le="0.05" */
	histogram_observe(h, &b, 50000001);	  /* just above: le="0.075" */
	histogram_observe(h, &b, 1);		  /* le="0.005" */
	histogram_observe(h, &b, 20000000000ULL); /* +Inf only */
	CHECK(h->buckets[0] == 1);
	CHECK(h->buckets[3] == 1);
	CHECK(h->buckets[4] == 1);
	CHECK(h->buckets[14] == 1);
	CHECK(histogram_cumulative(h, 3) == 2);
	CHECK(histogram_cumulative(h, 13) == 3);
	CHECK(histogram_cumulative(h, 14) == 4);
	CHECK(h->count == 4);
	CHECK(h->sum_ns == 50000000ULL + 50000001ULL + 1 + 20000000000ULL);
	free(h);
}

TEST(bounds_parse_accepts_increasing_positive_lists)
{
	struct histogram_bounds b;
	char err[128];

	CHECK(histogram_bounds_parse("0.001,0.5,2", &b, err, sizeof(err)) == 0);
	CHECK(b.n == 3 && b.ns[0] == 1000000 && b.ns[2] == 2000000000ULL);
	CHECK(histogram_bounds_parse("1", &b, err, sizeof(err)) == 0);
	CHECK(b.n == 1);
}

TEST(bounds_parse_rejects_bad_lists_with_a_reason)
{
	struct histogram_bounds b;
	char err[128];

	CHECK(histogram_bounds_parse("", &b, err, sizeof(err)) == -1);
	CHECK(histogram_bounds_parse("0.1,0.1", &b, err, sizeof(err)) == -1);
	CHECK(strstr(err, "not above") != NULL);
	CHECK(histogram_bounds_parse("0.1,x", &b, err, sizeof(err)) == -1);
	CHECK(strstr(err, "not a number") != NULL);
	CHECK(histogram_bounds_parse("-1", &b, err, sizeof(err)) == -1);
	CHECK(histogram_bounds_parse("0", &b, err, sizeof(err)) == -1);
	CHECK(histogram_bounds_parse("0.1,", &b, err, sizeof(err)) == -1);
	CHECK(histogram_bounds_parse("nan", &b, err, sizeof(err)) == -1);
	CHECK(histogram_bounds_parse("0.1 ,0.2", &b, err, sizeof(err)) == -1);
}

TEST(doubles_are_written_shortest_and_exact)
{
	char out[32];

	prom_format_double(0.075, out);
	CHECK_STR(out, "0.075");
	prom_format_double(10, out);
	CHECK_STR(out, "10");
	prom_format_double(1e-5, out);
	CHECK_STR(out, "1e-05");
	prom_format_double(100000, out);
	CHECK_STR(out, "100000");
	prom_format_double(1e6, out);
	CHECK_STR(out, "1e+06");
	prom_format_double(1234.5, out);
	CHECK_STR(out, "1234.5");
	prom_format_double(0.0001, out);
	CHECK_STR(out, "0.0001");
	prom_format_double(0, out);
	CHECK_STR(out, "0");
	prom_format_double(0.1 + 0.2, out);
	CHECK_STR(out, "0.30000000000000004");
	prom_format_double(1.0 / 0.0, out);
	CHECK_STR(out, "+Inf");
}

TEST(label_values_are_escaped)
{
	struct strbuf sb = { 0 };
	struct prom_label l[] = { { "a", "x\"y\\z\nw" }, { "b", "" } };

	prom_write_u64(&sb, "m", l, 2, 7);
	CHECK_STR(sb.data, "m{a=\"x\\\"y\\\\z\\nw\",b=\"\"} 7\n");
	strbuf_release(&sb);
	prom_write_u64(&sb, "plain", NULL, 0, 0);
	CHECK_STR(sb.data, "plain 0\n");
	strbuf_release(&sb);
}

TEST(histogram_is_written_cumulative_with_inf_sum_and_count)
{
	struct histogram_bounds b;
	struct histogram *h;
	struct strbuf sb = { 0 };
	struct prom_label l = { "r", "/" };
	char err[64];

	histogram_bounds_parse("0.01,0.1", &b, err, sizeof(err));
	h = new_histogram(&b);
	histogram_observe(h, &b, 5000000);
	histogram_observe(h, &b, 50000000);
	histogram_observe(h, &b, 50000000);
	histogram_observe(h, &b, 3000000000ULL);
	prom_write_histogram(&sb, "d", &l, 1, h, &b);
	CHECK_STR(sb.data, "d_bucket{r=\"/\",le=\"0.01\"} 1\n"
			   "d_bucket{r=\"/\",le=\"0.1\"} 3\n"
			   "d_bucket{r=\"/\",le=\"+Inf\"} 4\n"
			   "d_sum{r=\"/\"} 3.105\n"
			   "d_count{r=\"/\"} 4\n");
	strbuf_release(&sb);
	free(h);
}

TEST(family_header_has_help_and_type)
{
	struct strbuf sb = { 0 };

	prom_write_family(&sb, "x_total", "counter", "Things.");
	CHECK_STR(sb.data, "# HELP x_total Things.\n# TYPE x_total counter\n");
	strbuf_release(&sb);
}

/* One 1 ms GET on port 8080 for service, route and status. */
static int observe(const char *service, const char *route, int status)
{
	char code[8];
	const char *values[HTTP_SERVER_NLABELS] = { service, "GET", code, route,
						    "8080" };

	snprintf(code, sizeof(code), "%d", status);
	return registry_observe(&family_http_server, values, 1000000);
}

static size_t count_lines(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

TEST(registry_caps_routes_per_service_with_one_overflow_series)
{
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 3,
				       .max_peers_per_service = 3,
				       .max_series = 100 };
	struct strbuf sb = { 0 };
	char route[32];

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	for (int i = 0; i < 10; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		CHECK(observe("svc", route, 200) == 0);
	}
	/* Another service has its own cap; the fixed routes are exempt. */
	for (int i = 0; i < 3; i++) {
		snprintf(route, sizeof(route), "/o%d", i);
		CHECK(observe("other", route, 200) == 0);
	}
	CHECK(observe("other", ROUTE_UNKNOWN, 400) == 0);
	CHECK(registry_series_count() == 3 + 1 + 3 + 1);
	render(&sb);
	CHECK(strstr(sb.data, "http_route=\"_overflow\",server_port=\"8080\"} "
			      "7\n") != NULL);
	CHECK(strstr(sb.data, "sonde_route_overflows_total{service_name="
			      "\"svc\"} 7\n") != NULL);
	CHECK(strstr(sb.data, "sonde_route_overflows_total{service_name="
			      "\"other\"} 0\n") != NULL);
	CHECK(count_lines(sb.data, "# TYPE http_server_request_duration_"
				   "seconds histogram") == 1);
	CHECK(strstr(sb.data, "sonde_series 8\n") != NULL);
	strbuf_release(&sb);
	registry_free();
}

TEST(registry_caps_peers_apart_from_routes)
{
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 1,
				       .max_peers_per_service = 2,
				       .max_series = 100 };
	struct strbuf sb = { 0 };
	char addr[32];

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	CHECK(observe("svc", "/only", 200) == 0);
	for (int i = 0; i < 5; i++) {
		const char *v[TCP_CONNECTS_NLABELS] = { "svc", addr, "80",
							"ok" };

		snprintf(addr, sizeof(addr), "10.0.0.%d", i);
		CHECK(registry_add(&family_tcp_connects, v, 2) == 0);
	}
	render(&sb);
	CHECK(strstr(sb.data, "sonde_tcp_connects_total{service_name=\"svc\","
			      "server_address=\"10.0.0.1\",server_port=\"80\","
			      "result=\"ok\"} 2\n") != NULL);
	CHECK(strstr(sb.data, "server_address=\"10.0.0.2\"") == NULL);
	CHECK(strstr(sb.data, "sonde_tcp_connects_total{service_name=\"svc\","
			      "server_address=\"_overflow\",server_port=\"80\","
			      "result=\"ok\"} 6\n") != NULL);
	CHECK(strstr(sb.data, "sonde_peer_overflows_total{service_name="
			      "\"svc\"} 3\n") != NULL);
	CHECK(strstr(sb.data, "sonde_route_overflows_total{service_name="
			      "\"svc\"} 0\n") != NULL);
	CHECK(count_lines(sb.data, "# TYPE sonde_tcp_connects_total counter") ==
	      1);
	strbuf_release(&sb);
	registry_free();
}

TEST(registry_gauges_go_up_and_down)
{
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	const char *v[TCP_ACTIVE_NLABELS] = { "svc", "client" };
	struct strbuf sb = { 0 };

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	for (int i = 0; i < 5; i++)
		CHECK(registry_gauge_add(&family_tcp_active, v, 1) == 0);
	CHECK(registry_gauge_add(&family_tcp_active, v, -2) == 0);
	render(&sb);
	CHECK(strstr(sb.data, "# TYPE sonde_tcp_active_connections gauge\n") !=
	      NULL);
	CHECK(strstr(sb.data, "sonde_tcp_active_connections{service_name="
			      "\"svc\",role=\"client\"} 3\n") != NULL);
	strbuf_release(&sb);
	registry_free();
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define ACTIVE(role) \
	"sonde_tcp_active_connections{service_name=\"svc\",role=\"" role "\"} "

/* A connection's hold raises one series; its release lowers that one,
 * given no labels; a hold under other labels moves it. */
TEST(registry_holds_lower_the_series_they_raised)
{
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	const char *server[] = { "svc", "server" },
		   *client[] = { "svc", "client" };
	uint64_t hour = 3600ull * 1000000000ull;
	struct strbuf sb = { 0 };

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	CHECK(registry_gauge_hold(&family_tcp_active, server, 0x100) == 0);
	CHECK(registry_gauge_hold(&family_tcp_active, server, 0x200) == 0);
	/* Held again under the same series: still counted once. */
	CHECK(registry_gauge_hold(&family_tcp_active, server, 0x200) == 0);
	/* Under another: it moves there. */
	CHECK(registry_gauge_hold(&family_tcp_active, client, 0x100) == 0);
	CHECK(registry_holds() == 2);
	prom_render(&sb);
	CHECK(strstr(sb.data, ACTIVE("server") "1\n") != NULL);
	CHECK(strstr(sb.data, ACTIVE("client") "1\n") != NULL);
	strbuf_release(&sb);
	/* Held series outlive any TTL. */
	CHECK(registry_expire(wall_ns() + 2 * hour, hour) == 0);
	registry_gauge_release(0x100);
	registry_gauge_release(0x200);
	registry_gauge_release(0x300); /* never held: nothing */
	CHECK(registry_holds() == 0);
	prom_render(&sb);
	CHECK(strstr(sb.data, ACTIVE("server") "0\n") != NULL);
	CHECK(strstr(sb.data, ACTIVE("client") "0\n") != NULL);
	strbuf_release(&sb);
	CHECK(registry_expire(wall_ns() + 2 * hour, hour) == 2);
	registry_free();
}

/* Beyond the cap on holds, a new connection is not counted at all; one
 * whose series cannot be stored is dropped and its old hold released. */
TEST(registry_holds_are_bounded)
{
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 1 };
	const char *server[] = { "svc", "server" },
		   *client[] = { "svc", "client" };
	uint64_t before = registry_dropped();
	struct strbuf sb = { 0 };

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	for (uint64_t id = 1; id <= REGISTRY_MAX_HOLDS + 5; id++)
		CHECK(registry_gauge_hold(&family_tcp_active, server, id) == 0);
	CHECK(registry_holds() == REGISTRY_MAX_HOLDS);
	/* The series cap (1) leaves no room for the client series. */
	CHECK(registry_gauge_hold(&family_tcp_active, client, 1) == -1);
	CHECK(registry_dropped() == before + 1);
	CHECK(registry_holds() == REGISTRY_MAX_HOLDS - 1);
	prom_render(&sb);
	CHECK(strstr(sb.data, ACTIVE("server") "65535\n") != NULL);
	strbuf_release(&sb);
	registry_free();
	CHECK(registry_holds() == 0);
}

static void count_series(const struct registry_series *s, void *arg)
{
	unsigned *n = arg;

	if (s->family == &family_http_server && s->hist->count == 1 &&
	    strcmp(s->values[HTTP_SERVER_ROUTE], "/w") == 0 &&
	    s->start_unix_ns > 0 && s->last_unix_ns >= s->start_unix_ns)
		(*n)++;
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

/* The bucket lines of one series, prefix being its name and labels up
 * to le: one line per le text, with its cumulative count. */
static void bucket_lines(struct strbuf *sb, const char *prefix,
			 const char *const *les, const unsigned *counts,
			 size_t n)
{
	for (size_t i = 0; i < n; i++)
		strbuf_printf(sb, "%sle=\"%s\"} %u\n", prefix, les[i],
			      counts[i]);
}

#define WEB_BUCKET                                                  \
	"http_server_request_duration_seconds_bucket{service_name=" \
	"\"web\",http_request_method=\"GET\","                      \
	"http_response_status_code=\"200\",http_route=\"/\","       \
	"server_port=\"8080\","

/* Each family's series are kept and written with its own bounds, side
 * by side in one exposition, rendered twice (the second from the kept le
 * texts). */
TEST(registry_writes_each_family_with_its_bounds)
{
	static const char *const fine_les[] = {
		"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
		"0.01",	  "0.025",   "0.05",   "0.1",	"0.25",	  "0.5",
		"1",	  "2.5",     "5",      "10",	"+Inf"
	};
	static const unsigned fine_counts[] = { 2, 2, 3, 3, 4, 4, 4, 4, 4,
						4, 4, 4, 4, 4, 4, 4, 5 };
	static const char *const web_les[] = { "0.005", "0.01", "0.025", "0.05",
					       "0.075", "0.1",	"0.25",	 "0.5",
					       "0.75",	"1",	"2.5",	 "5",
					       "7.5",	"10",	"+Inf" };
	static const unsigned web_counts[] = { 1, 1, 1, 1, 1, 1, 1, 1,
					       1, 1, 1, 1, 1, 1, 1 };
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	const char *op[] = { "cache", "GET" };
	/* 50 us, 100 us (on the first bound), 300 us, 2 ms, 20 s. */
	const uint64_t ns[] = { 50000, 100000, 300000, 2000000,
				20000000000ULL };
	struct strbuf sb = { 0 }, fine = { 0 }, web = { 0 };

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	histogram_bounds_fine(&fine_bounds);
	CHECK(registry_family_bounds(&fine_family) == &fine_bounds);
	CHECK(registry_family_bounds(&family_http_server) == registry_bounds());
	CHECK(observe("web", "/", 200) == 0); /* 1 ms */
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		CHECK(registry_observe(&fine_family, op, ns[i]) == 0);
	strbuf_puts(&fine, "# TYPE t_fine_seconds histogram\n");
	bucket_lines(&fine,
		     "t_fine_seconds_bucket{service_name=\"cache\","
		     "op=\"GET\",",
		     fine_les, fine_counts, 17);
	strbuf_puts(&fine, "t_fine_seconds_sum{service_name=\"cache\","
			   "op=\"GET\"} 20.00245\n"
			   "t_fine_seconds_count{service_name=\"cache\","
			   "op=\"GET\"} 5\n");
	bucket_lines(&web, WEB_BUCKET, web_les, web_counts, 15);
	for (int pass = 0; pass < 2; pass++) {
		render(&sb);
		CHECK(strstr(sb.data, fine.data) != NULL);
		CHECK(strstr(sb.data, web.data) != NULL);
		/* Neither family's bounds leak into the other's lines. */
		CHECK(count_lines(sb.data, "le=\"0.0001\"") == 1);
		CHECK(count_lines(sb.data, "le=\"0.075\"") == 1);
		strbuf_release(&sb);
	}
	strbuf_release(&fine);
	strbuf_release(&web);
	registry_free();
}

/* The le texts are kept by the bounds' values: the registry's bounds
 * set again (same storage, other values) are written as they are now. */
TEST(le_texts_follow_bounds_set_again)
{
	static const char *const les[] = { "0.0005", "0.02", "+Inf" };
	static const unsigned counts[] = { 0, 1, 1 };
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	struct strbuf sb = { 0 }, want = { 0 };
	char err[64];

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	CHECK(observe("web", "/", 200) == 0);
	render(&sb);
	CHECK(strstr(sb.data, WEB_BUCKET "le=\"0.005\"} 1\n") != NULL);
	strbuf_release(&sb);
	registry_free();
	CHECK(histogram_bounds_parse("0.0005,0.02", &b, err, sizeof(err)) == 0);
	registry_init(&b, &lim);
	CHECK(observe("web", "/", 200) == 0);
	render(&sb);
	bucket_lines(&want, WEB_BUCKET, les, counts, 3);
	CHECK(strstr(sb.data, want.data) != NULL);
	CHECK(strstr(sb.data, "le=\"0.005\"") == NULL);
	strbuf_release(&want);
	strbuf_release(&sb);
	registry_free();
}

/* More bounds sets than prom.c keeps le texts for: each family still
 * gets its own, render after render. */
TEST(many_bounds_sets_each_get_their_own_le)
{
	enum { NSETS = 12 };
	static struct histogram_bounds sets[NSETS];
	static struct metric_family fams[NSETS];
	static char names[NSETS][32];
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	const char *svc[] = { "s" };
	struct strbuf sb = { 0 };
	char want[128], le[32];

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	for (int i = 0; i < NSETS; i++) {
		/* One bound, (i + 1) ms: 1.5 ms is above the first's. */
		sets[i].n = 1;
		sets[i].seconds[0] = (i + 1) / 1000.0;
		sets[i].ns[0] = (uint64_t)(i + 1) * 1000000;
		snprintf(names[i], sizeof(names[i]), "t_set%d_seconds", i);
		fams[i] = (struct metric_family){
			.name = names[i],
			.otel_name = names[i],
			.unit = "s",
			.help = "Set.",
			.kind = METRIC_HISTOGRAM,
			.nlabels = 1,
			.labels = { "service_name" },
			.otel_labels = { "service.name" },
			.capped_label = -1,
			.bounds = &sets[i],
		};
		CHECK(registry_observe(&fams[i], svc, 1500000) == 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		render(&sb);
		for (int i = 0; i < NSETS; i++) {
			prom_format_double(sets[i].seconds[0], le);
			snprintf(want, sizeof(want),
				 "t_set%d_seconds_bucket{service_name=\"s\","
				 "le=\"%s\"} %d\n",
				 i, le, i ? 1 : 0);
			CHECK(strstr(sb.data, want) != NULL);
		}
		strbuf_release(&sb);
	}
	registry_free();
}

TEST(registry_walk_sees_every_series_with_its_values)
{
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	unsigned n = 0;

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	CHECK(observe("a", "/w", 200) == 0);
	CHECK(observe("b", "/w", 200) == 0);
	CHECK(observe("b", "/x", 200) == 0);
	registry_walk(count_series, &n);
	CHECK(n == 2);
	registry_free();
}

TEST(registry_drops_and_counts_beyond_the_series_cap)
{
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 100,
				       .max_peers_per_service = 100,
				       .max_series = 2 };
	uint64_t before = registry_dropped();

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	CHECK(observe("s", "/a", 200) == 0);
	CHECK(observe("s", "/a", 500) == 0);
	CHECK(observe("s", "/b", 200) == -1);
	CHECK(observe("s", "/a", 200) == 0); /* an existing series counts */
	CHECK(registry_dropped() == before + 1);
	CHECK(registry_series_count() == 2);
	registry_free();
}

TEST(registry_expires_idle_series_but_not_live_gauges)
{
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 2,
				       .max_peers_per_service = 2,
				       .max_series = 100 };
	const char *held[] = { "svc", "server" };
	const char *closed[] = { "svc", "client" };
	uint64_t hour = 3600ull * 1000000000ull;
	struct strbuf sb = { 0 };

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	CHECK(observe("svc", "/a", 200) == 0);
	CHECK(observe("svc", "/b", 200) == 0);
	CHECK(observe("svc", "/c", 200) == 0); /* over the cap: _overflow */
	CHECK(registry_gauge_add(&family_tcp_active, held, 1) == 0);
	CHECK(registry_gauge_add(&family_tcp_active, closed, 1) == 0);
	CHECK(registry_gauge_add(&family_tcp_active, closed, -1) == 0);
	CHECK(registry_series_count() == 5);
	/* Nothing is older than an hour yet. */
	CHECK(registry_expire(wall_ns(), hour) == 0);
	/* An hour later: the histograms and the zero gauge go; the gauge
	 * counting a connection still held stays. */
	CHECK(registry_expire(wall_ns() + 2 * hour, hour) == 4);
	CHECK(registry_series_count() == 1);
	render(&sb);
	CHECK(strstr(sb.data, "sonde_tcp_active_connections{service_name="
			      "\"svc\",role=\"server\"} 1\n") != NULL);
	CHECK(strstr(sb.data, "http_server") == NULL); /* not even HELP */
	strbuf_release(&sb);
	/* The expired routes gave their places under the cap back. */
	CHECK(observe("svc", "/d", 200) == 0);
	CHECK(observe("svc", "/e", 200) == 0);
	render(&sb);
	CHECK(strstr(sb.data, "http_route=\"/e\"") != NULL);
	CHECK(strstr(sb.data, "http_route=\"_overflow\",") == NULL);
	/* The overflow count is history and is kept. */
	CHECK(strstr(sb.data, "sonde_route_overflows_total{service_name="
			      "\"svc\"} 1\n") != NULL);
	strbuf_release(&sb);
	registry_free();
}

TEST(registry_finds_each_series_among_many_and_after_expiry)
{
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 1000,
				       .max_peers_per_service = 1000,
				       .max_series = 1000 };
	uint64_t hour = 3600ull * 1000000000ull;
	struct strbuf sb = { 0 };
	char route[32];

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	/* Enough series to make the index grow several times. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 300; i++) {
			snprintf(route, sizeof(route), "/r%d", i);
			CHECK(observe("svc", route, 200) == 0);
		}
	/* The same bytes split differently between labels. */
	CHECK(observe("svc/", "r1", 200) == 0);
	CHECK(registry_series_count() == 301);
	render(&sb);
	CHECK(strstr(sb.data,
		     "http_route=\"/r299\",server_port=\"8080\"} 2\n"));
	CHECK(strstr(sb.data, "{service_name=\"svc/\",http_request_method="
			      "\"GET\",http_response_status_code=\"200\","
			      "http_route=\"r1\",server_port=\"8080\"} 1\n"));
	strbuf_release(&sb);
	/* Expired series leave the index: observed again, each is new. */
	CHECK(registry_expire(wall_ns() + 2 * hour, hour) == 301);
	for (int i = 0; i < 300; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		CHECK(observe("svc", route, 200) == 0);
	}
	CHECK(registry_series_count() == 300);
	render(&sb);
	CHECK(strstr(sb.data, "http_route=\"/r0\",server_port=\"8080\"} 1\n"));
	strbuf_release(&sb);
	registry_free();
}

TEST(registry_caps_a_captured_label_across_services)
{
	static struct metric_family f = {
		.name = "t_seconds",
		.kind = METRIC_HISTOGRAM,
		.nlabels = 2,
		.labels = { "service_name", "tenant_id" },
		.capped_label = -1,
	};
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 100,
				       .max_peers_per_service = 100,
				       .max_series = 100 };
	struct strbuf sb = { 0 };
	char tenant[16];

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	registry_cap_label(&f, 1, 3);
	for (int i = 0; i < 50; i++) {
		const char *v[] = { i % 2 ? "a" : "b", tenant };

		snprintf(tenant, sizeof(tenant), "t%d", i);
		CHECK(registry_observe(&f, v, 1) == 0);
	}
	{
		const char *none[] = { "a", "" };

		CHECK(registry_observe(&f, none, 1) == 0);
	}
	/* t0 t1 t2, then the overflow series of each service, and "". */
	CHECK(registry_series_count() == 3 + 2 + 1);
	render(&sb);
	CHECK(strstr(sb.data, "t_seconds_count{service_name=\"b\",tenant_id="
			      "\"_overflow\"} 23\n") != NULL);
	CHECK(strstr(sb.data, "t_seconds_count{service_name=\"a\",tenant_id="
			      "\"_overflow\"} 24\n") != NULL);
	CHECK(strstr(sb.data, "sonde_label_overflows_total{label="
			      "\"tenant_id\"} 47\n") != NULL);
	strbuf_release(&sb);
	registry_free();
}

/* The count of t_fine_seconds{op="ref"}'s one series, as a walk sees it. */
static void count_observed(const struct registry_series *s, void *arg)
{
	uint64_t *n = arg;

	if (s->family == &fine_family)
		*n += s->hist->count;
}

static void *walk_elsewhere(void *arg)
{
	registry_walk(count_observed, arg);
	return NULL;
}

/* What another thread (a scrape's) sees now. */
static uint64_t count_from_another_thread(void)
{
	pthread_t t;
	uint64_t n = 0;

	if (pthread_create(&t, NULL, walk_elsewhere, &n) != 0)
		abort();
	pthread_join(t, NULL);
	return n;
}

TEST(observations_by_reference_wait_then_are_all_filed)
{
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	const char *values[] = { "svc", "ref" };
	struct registry_ref ref = { 0 };
	uint64_t here = 0;

	histogram_bounds_default(&b);
	histogram_bounds_fine(&fine_bounds);
	registry_init(&b, &lim);
	CHECK(registry_observe_ref(&fine_family, values, 1000, &ref) == 0);
	CHECK(ref.series != NULL);
	for (int i = 0; i < 1000; i++)
		CHECK(registry_observe_at(&ref, 2000) == 0);
	/* Filed a waiting room at a time: another thread sees those filed,
	 * not yet the ones waiting. */
	CHECK(count_from_another_thread() < 1001);
	CHECK(count_from_another_thread() > 1);
	registry_flush();
	CHECK(count_from_another_thread() == 1001);
	/* The observing thread's own reads file what waits first. */
	for (int i = 0; i < 10; i++)
		CHECK(registry_observe_at(&ref, 2000) == 0);
	registry_walk(count_observed, &here);
	CHECK(here == 1011);
	CHECK(count_from_another_thread() == 1011);
	/* Expiring files what waits before it frees series: the reference
	 * is stale after, and nothing waiting points at freed memory. */
	for (int i = 0; i < 10; i++)
		CHECK(registry_observe_at(&ref, 2000) == 0);
	CHECK(registry_expire(wall_ns() + 7200ull * 1000000000ull,
			      3600ull * 1000000000ull) == 1);
	CHECK(registry_observe_at(&ref, 2000) == -1);
	registry_flush();
	CHECK(registry_series_count() == 0);
	registry_free();
}

/* A series' count, sum and per-bucket counts, as a walk sees them. */
struct seen {
	const struct metric_family *family;
	const char *label; /* values[1] */
	uint64_t count, sum_ns, buckets[HISTOGRAM_MAX_BOUNDS + 1];
};

static void see(const struct registry_series *s, void *arg)
{
	struct seen *w = arg;

	if (s->family != w->family || strcmp(s->values[1], w->label) != 0)
		return;
	w->count = s->hist->count;
	w->sum_ns = s->hist->sum_ns;
	memcpy(w->buckets, s->hist->buckets,
	       (s->bounds->n + 1) * sizeof(w->buckets[0]));
}

/* Calls counted elsewhere (the BPF side's sums) are merged into the
 * series their observations would have made, whole: count, sum and
 * each bucket, by labels and by reference; bounds that are not the
 * series' own are refused and counted dropped; a capped label's overflow
 * counts every call merged. */
TEST(merges_add_counted_calls_to_their_series)
{
	struct histogram_bounds b, other;
	struct registry_limits lim = { .max_routes_per_service = 1,
				       .max_peers_per_service = 3,
				       .max_series = 100 };
	const char *values[] = { "svc", "merged" };
	uint64_t buckets[HISTOGRAM_MAX_BOUNDS + 1] = { 0 };
	struct registry_merge m = { .count = 5,
				    .sum_ns = 700000,
				    .buckets = buckets,
				    .bounds = &fine_bounds };
	struct registry_ref ref = { 0 };
	struct seen w = { .family = &fine_family, .label = "merged" };
	struct strbuf sb = { 0 };
	uint64_t dropped;
	char err[64];

	histogram_bounds_default(&b);
	histogram_bounds_fine(&fine_bounds);
	registry_init(&b, &lim);
	buckets[0] = 3; /* <= 100 us */
	buckets[2] = 2; /* (250, 500] us */
	CHECK(registry_observe(&fine_family, values, 50000) == 0);
	CHECK(registry_merge_ref(&fine_family, values, &m, &ref) == 0);
	CHECK(ref.series != NULL);
	CHECK(registry_merge_at(&ref, &m) == 0);
	registry_walk(see, &w);
	CHECK(w.count == 11 && w.sum_ns == 50000 + 2 * 700000);
	CHECK(w.buckets[0] == 7 && w.buckets[1] == 0 && w.buckets[2] == 4);
	/* Bounds the series was not made with: nothing added, the calls
	 * counted dropped. */
	CHECK(histogram_bounds_parse("0.001,0.002", &other, err, sizeof(err)) ==
	      0);
	m.bounds = &other;
	dropped = registry_dropped();
	CHECK(registry_merge_at(&ref, &m) == 0);
	CHECK(registry_merge_ref(&fine_family, values, &m, NULL) == -1);
	CHECK(registry_dropped() == dropped + 10);
	registry_walk(see, &w);
	CHECK(w.count == 11);
	/* A stale reference is refused: merge by labels then. */
	m.bounds = &fine_bounds;
	CHECK(registry_expire(wall_ns() + 7200ull * 1000000000ull,
			      3600ull * 1000000000ull) == 1);
	CHECK(registry_merge_at(&ref, &m) == -1);
	/* The second route of a service capped at one: 5 calls overflow. */
	{
		const char *first[HTTP_SERVER_NLABELS] = { "web", "GET", "200",
							   "/a", "8080" };
		const char *second[HTTP_SERVER_NLABELS] = { "web", "GET", "200",
							    "/b", "8080" };

		m.bounds = registry_family_bounds(&family_http_server);
		m.sum_ns = 5000000;
		memset(buckets, 0, sizeof(buckets));
		buckets[1] = 5;
		CHECK(registry_merge_ref(&family_http_server, first, &m,
					 NULL) == 0);
		CHECK(registry_merge_ref(&family_http_server, second, &m,
					 &ref) == 0);
		CHECK(ref.series == NULL);
	}
	render(&sb);
	CHECK(strstr(sb.data, "sonde_route_overflows_total{service_name="
			      "\"web\"} 5\n") != NULL);
	CHECK(strstr(sb.data, "http_route=\"_overflow\",server_port=\"8080\"} "
			      "5\n") != NULL);
	strbuf_release(&sb);
	registry_free();
}

UNIT_MAIN("metrics", UNIT_CASE(default_bounds_are_the_opentelemetry_ones),
	  UNIT_CASE(fine_bounds_start_at_100_us),
	  UNIT_CASE(observation_on_a_bound_counts_in_that_bucket),
	  UNIT_CASE(bounds_parse_accepts_increasing_positive_lists),
	  UNIT_CASE(bounds_parse_rejects_bad_lists_with_a_reason),
	  UNIT_CASE(doubles_are_written_shortest_and_exact),
	  UNIT_CASE(label_values_are_escaped),
	  UNIT_CASE(histogram_is_written_cumulative_with_inf_sum_and_count),
	  UNIT_CASE(family_header_has_help_and_type),
	  UNIT_CASE(registry_caps_routes_per_service_with_one_overflow_series),
	  UNIT_CASE(registry_caps_peers_apart_from_routes),
	  UNIT_CASE(registry_gauges_go_up_and_down),
	  UNIT_CASE(registry_holds_lower_the_series_they_raised),
	  UNIT_CASE(registry_holds_are_bounded),
	  UNIT_CASE(registry_writes_each_family_with_its_bounds),
	  UNIT_CASE(le_texts_follow_bounds_set_again),
	  UNIT_CASE(many_bounds_sets_each_get_their_own_le),
	  UNIT_CASE(registry_walk_sees_every_series_with_its_values),
	  UNIT_CASE(registry_drops_and_counts_beyond_the_series_cap),
	  UNIT_CASE(registry_expires_idle_series_but_not_live_gauges),
	  UNIT_CASE(registry_finds_each_series_among_many_and_after_expiry),
	  UNIT_CASE(registry_caps_a_captured_label_across_services),
	  UNIT_CASE(observations_by_reference_wait_then_are_all_filed),
	  UNIT_CASE(merges_add_counted_calls_to_their_series))
