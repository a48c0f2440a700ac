/* sonde's own metrics (metrics/self.h): registered once, listed in
 * registration order, and written to /metrics from that one registration
 * with the names, labels, HELP and TYPE it gives. */
#include <stdlib.h>
#include <string.h>

#include "export/prom.h"
#include "metrics/histogram.h"
#include "metrics/self.h"
#include "unit.h"

static uint64_t drops_a = 3, drops_b;

static void collect_drops(const struct self_metric *m, struct self_sink *sink)
{
	const char *a[] = { "a\"q" }, *b[] = { "b" };

	(void)m;
	self_emit_u64(sink, a, drops_a);
	self_emit_u64(sink, b, drops_b);
}

static void collect_seconds(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	self_emit_double(sink, NULL, 0.075);
}

static void collect_nothing(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	(void)sink;
}

static struct histogram_bounds bounds;
static struct histogram *hist;

static void collect_hist(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	self_emit_histogram(sink, NULL, hist, &bounds);
}

static const struct self_metric drops = {
	.name = "t_drops_total",
	.otel_name = "t.drops",
	.unit = "{event}",
	.help = "Drops, by reason.",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "reason" },
	.otel_labels = { "t.reason" },
	.collect = collect_drops,
};

static const struct self_metric seconds = {
	.name = "t_seconds",
	.otel_name = "t.time",
	.unit = "s",
	.help = "A gauge in seconds.",
	.kind = SELF_GAUGE,
	.collect = collect_seconds,
};

static const struct self_metric empty = {
	.name = "t_empty",
	.otel_name = "t.empty",
	.unit = "1",
	.help = "Nothing yet.",
	.kind = SELF_GAUGE,
	.collect = collect_nothing,
};

static const struct self_metric durations = {
	.name = "t_duration_seconds",
	.otel_name = "t.duration",
	.unit = "s",
	.help = "Durations.",
	.kind = SELF_HISTOGRAM,
	.collect = collect_hist,
};

static void name_of(const struct self_metric *m, void *arg)
{
	strcat(arg, m->name);
	strcat(arg, " ");
}

TEST(registered_once_in_order)
{
	static const struct self_metric same_name = {
		.name = "t_drops_total",
		.otel_name = "t.other",
		.kind = SELF_COUNTER,
		.collect = collect_nothing,
	};
	static const struct self_metric unnamed_label = {
		.name = "t_unnamed",
		.otel_name = "t.unnamed",
		.kind = SELF_COUNTER,
		.nlabels = 1,
		.labels = { "reason" },
		.collect = collect_nothing,
	};
	char names[256] = "";

	self_reset();
	CHECK(self_start_unix_ns() == 0);
	CHECK(self_register(&drops) == 0);
	CHECK(self_start_unix_ns() > 1600000000000000000ULL);
	CHECK(self_register(&seconds) == 0);
	/* Again: nothing changes. */
	CHECK(self_register(&drops) == 0);
	/* Another metric with a name taken, or a label with one name. */
	CHECK(self_register(&same_name) == -1);
	CHECK(self_register(&unnamed_label) == -1);
	self_each(name_of, names);
	CHECK_STR(names, "t_drops_total t_seconds ");
	self_reset();
	names[0] = '\0';
	self_each(name_of, names);
	CHECK_STR(names, "");
}

TEST(prometheus_text_from_the_registration)
{
	struct strbuf sb = { 0 };

	self_reset();
	histogram_bounds_default(&bounds);
	hist = calloc(1, histogram_size(&bounds));
	histogram_observe(hist, &bounds, 3000000);
	histogram_observe(hist, &bounds, 20000000000ULL);
	self_register(&drops);
	self_register(&seconds);
	self_register(&empty);
	self_register(&durations);
	prom_render(&sb);
	CHECK_STR(sb.data, "# HELP t_drops_total Drops, by reason.\n"
			   "# TYPE t_drops_total counter\n"
			   "t_drops_total{reason=\"a\\\"q\"} 3\n"
			   "t_drops_total{reason=\"b\"} 0\n"
			   "# HELP t_seconds A gauge in seconds.\n"
			   "# TYPE t_seconds gauge\n"
			   "t_seconds 0.075\n"
			   "# HELP t_empty Nothing yet.\n"
			   "# TYPE t_empty gauge\n"
			   "# HELP t_duration_seconds Durations.\n"
			   "# TYPE t_duration_seconds histogram\n"
			   "t_duration_seconds_bucket{le=\"0.005\"} 1\n"
			   "t_duration_seconds_bucket{le=\"0.01\"} 1\n"
			   "t_duration_seconds_bucket{le=\"0.025\"} 1\n"
			   "t_duration_seconds_bucket{le=\"0.05\"} 1\n"
			   "t_duration_seconds_bucket{le=\"0.075\"} 1\n"
			   "t_duration_seconds_bucket{le=\"0.1\"} 1\n"
			   "t_duration_seconds_bucket{le=\"0.25\"} 1\n"
			   "t_duration_seconds_bucket{le=\"0.5\"} 1\n"
			   "t_duration_seconds_bucket{le=\"0.75\"} 1\n"
			   "t_duration_seconds_bucket{le=\"1\"} 1\n"
			   "t_duration_seconds_bucket{le=\"2.5\"} 1\n"
			   "t_duration_seconds_bucket{le=\"5\"} 1\n"
			   "t_duration_seconds_bucket{le=\"7.5\"} 1\n"
			   "t_duration_seconds_bucket{le=\"10\"} 1\n"
			   "t_duration_seconds_bucket{le=\"+Inf\"} 2\n"
			   "t_duration_seconds_sum 20.003\n"
			   "t_duration_seconds_count 2\n");
	/* Read at each scrape, not at registration. */
	drops_b = 9;
	strbuf_release(&sb);
	prom_render(&sb);
	CHECK(strstr(sb.data, "t_drops_total{reason=\"b\"} 9\n") != NULL);
	strbuf_release(&sb);
	self_reset();
	free(hist);
	hist = NULL;
}

UNIT_MAIN("self", UNIT_CASE(registered_once_in_order),
	  UNIT_CASE(prometheus_text_from_the_registration))
