#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export/otlp.h"
#include "metrics/histogram.h"
#include "metrics/registry.h"
#include "metrics/self.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strmap.h"

/* Field numbers from opentelemetry-proto v1
 * (opentelemetry/proto/{collector/metrics,metrics,resource}/v1). */
enum {
	REQ_RESOURCE_METRICS = 1,
	RM_RESOURCE = 1,
	RM_SCOPE_METRICS = 2,
	RESOURCE_ATTRIBUTES = 1,
	SM_SCOPE = 1,
	SM_METRICS = 2,
	METRIC_NAME = 1,
	METRIC_DESCRIPTION = 2,
	METRIC_UNIT = 3,
	METRIC_GAUGE_F = 5,
	METRIC_SUM = 7,
	METRIC_HISTOGRAM_F = 9,
	METRIC_EXP_HISTOGRAM = 10,
	DATA_POINTS = 1, /* in Sum, Histogram and ExponentialHistogram */
	DATA_TEMPORALITY = 2,
	SUM_IS_MONOTONIC = 3,
	NDP_START = 2,
	NDP_TIME = 3,
	NDP_AS_DOUBLE = 4,
	NDP_AS_INT = 6,
	NDP_ATTRIBUTES = 7,
	HDP_START = 2,
	HDP_TIME = 3,
	HDP_COUNT = 4,
	HDP_SUM = 5,
	HDP_BUCKET_COUNTS = 6,
	HDP_EXPLICIT_BOUNDS = 7,
	HDP_ATTRIBUTES = 9,
	EDP_ATTRIBUTES = 1,
	EDP_START = 2,
	EDP_TIME = 3,
	EDP_COUNT = 4,
	EDP_SUM = 5,
	EDP_SCALE = 6,
	EDP_ZERO_COUNT = 7,
	EDP_POSITIVE = 8,
	EDP_MIN = 12,
	EDP_MAX = 13,
	BUCKETS_OFFSET = 1,
	BUCKETS_COUNTS = 2,
};

enum { TEMPORALITY_DELTA = 1, TEMPORALITY_CUMULATIVE = 2 };

/* ---- encoding --------------------------------------------------------- */

/* What the previous delta export sent of one series, by the series' id.
 * The walk visits series in increasing id order, and expired series just
 * drop out of it, so prevs (sorted by id) and the walk are merged like two
 * sorted lists. */
struct prev {
	uint64_t id;
	bool sent;	  /* a delta went out: the fields below are its base */
	uint64_t time_ns; /* end of the last delta sent */
	uint64_t count, sum_ns, counter;
	uint64_t *buckets; /* the series' bounds->n + 1 */
	struct exphist *exp;
};

static struct prev *prevs;
static unsigned nprevs;

/* Data points of one family in one service, already encoded. */
struct group {
	const struct metric_family *f;
	unsigned service;
	struct pb_buf points;
};

struct collect {
	bool delta, exponential;
	uint64_t now;
	unsigned cursor;   /* next entry of prevs not yet matched */
	struct prev *next; /* prevs for the series walked so far */
	unsigned nnext, next_cap;
	unsigned points;
	struct strmap group_of; /* "family\x1fservice" -> group index + 1 */
	struct group *groups;
	unsigned ngroups, groups_cap;
	struct strmap service_of; /* service -> index + 1 */
	char **services;
	unsigned nservices, services_cap;
	bool failed;
};

static bool grow(void **array, unsigned *cap, unsigned n, size_t size)
{
	unsigned want = *cap ? *cap * 2 : 16;
	void *grown;

	if (n < *cap)
		return true;
	grown = realloc(*array, want * size);
	if (!grown)
		return false;
	*array = grown;
	*cap = want;
	return true;
}

static int service_index(struct collect *c, const char *name)
{
	uintptr_t i = (uintptr_t)strmap_get(&c->service_of, name);
	char *copy;

	if (i)
		return (int)(i - 1);
	if (!grow((void **)&c->services, &c->services_cap, c->nservices,
		  sizeof(*c->services)))
		return -1;
	copy = strdup(name);
	if (!copy || !strmap_put(&c->service_of, name,
				 (void *)(uintptr_t)(c->nservices + 1))) {
		free(copy);
		return -1;
	}
	c->services[c->nservices] = copy;
	return (int)c->nservices++;
}

static struct group *group_for(struct collect *c, const struct metric_family *f,
			       const char *service)
{
	char key[256];
	uintptr_t i;
	int svc;

	snprintf(key, sizeof(key), "%s\x1f%s", f->name, service);
	i = (uintptr_t)strmap_get(&c->group_of, key);
	if (i)
		return &c->groups[i - 1];
	svc = service_index(c, service);
	if (svc < 0 || !grow((void **)&c->groups, &c->groups_cap, c->ngroups,
			     sizeof(*c->groups)))
		return NULL;
	if (!strmap_put(&c->group_of, key, (void *)(uintptr_t)(c->ngroups + 1)))
		return NULL;
	memset(&c->groups[c->ngroups], 0, sizeof(struct group));
	c->groups[c->ngroups].f = f;
	c->groups[c->ngroups].service = (unsigned)svc;
	return &c->groups[c->ngroups++];
}

/* Semantic-convention attributes that are integers: status codes, ports.
 * db.response.status_code is a string, whatever it looks like: SQLSTATE
 * 23505 and MySQL's 1146 as much as 42P01. */
static bool int_attribute(const char *key, const char *value, int64_t *out)
{
	size_t klen = strlen(key);
	char *end;

	if (!((klen >= 5 && strcmp(key + klen - 5, ".port") == 0) ||
	      (klen >= 12 && strcmp(key + klen - 12, ".status_code") == 0)) ||
	    strcmp(key, "db.response.status_code") == 0)
		return false;
	if (!isdigit((unsigned char)value[0]))
		return false;
	errno = 0;
	*out = strtoll(value, &end, 10);
	return !errno && !*end;
}

static void attributes(struct pb_buf *b, uint32_t field,
		       const struct registry_series *s)
{
	const struct metric_family *f = s->family;
	int64_t n;

	for (unsigned i = 1; i < f->nlabels; i++) {
		if (int_attribute(f->otel_labels[i], s->values[i], &n))
			otlp_kv_int(b, field, f->otel_labels[i], n);
		else
			otlp_kv_string(b, field, f->otel_labels[i],
				       s->values[i]);
	}
}

static void prev_free(struct prev *p)
{
	free(p->buckets);
	free(p->exp);
}

/* The previous delta of s, carried over into c->next; a fresh one for a
 * series not seen before. Entries of series that are gone are freed as
 * the walk passes them. NULL when out of memory. */
static struct prev *prev_for(struct collect *c, const struct registry_series *s)
{
	struct prev *p;

	while (c->cursor < nprevs && prevs[c->cursor].id < s->id)
		prev_free(&prevs[c->cursor++]);
	if (!grow((void **)&c->next, &c->next_cap, c->nnext, sizeof(*c->next)))
		return NULL;
	p = &c->next[c->nnext++];
	if (c->cursor < nprevs && prevs[c->cursor].id == s->id) {
		*p = prevs[c->cursor++];
		return p;
	}
	memset(p, 0, sizeof(*p));
	p->id = s->id;
	p->time_ns = s->start_unix_ns;
	return p;
}

/* After a walk: what was not carried over belongs to series that are
 * gone. */
static void prevs_replace(struct collect *c)
{
	while (c->cursor < nprevs)
		prev_free(&prevs[c->cursor++]);
	free(prevs);
	prevs = c->next;
	nprevs = c->nnext;
}

static void explicit_point(struct pb_buf *b, const struct registry_series *s,
			   const struct prev *p, uint64_t start, uint64_t now)
{
	const struct histogram_bounds *bounds = s->bounds;
	uint64_t counts[HISTOGRAM_MAX_BOUNDS + 1];
	size_t dp = pb_begin(b, DATA_POINTS);

	for (size_t i = 0; i <= bounds->n; i++)
		counts[i] = s->hist->buckets[i] - (p ? p->buckets[i] : 0);
	attributes(b, HDP_ATTRIBUTES, s);
	pb_fixed64(b, HDP_START, start);
	pb_fixed64(b, HDP_TIME, now);
	pb_fixed64(b, HDP_COUNT, s->hist->count - (p ? p->count : 0));
	pb_double(b, HDP_SUM,
		  (double)(s->hist->sum_ns - (p ? p->sum_ns : 0)) / 1e9);
	pb_packed_fixed64(b, HDP_BUCKET_COUNTS, counts, bounds->n + 1);
	pb_packed_double(b, HDP_EXPLICIT_BOUNDS, bounds->seconds, bounds->n);
	pb_end(b, dp);
}

static void exponential_point(struct pb_buf *b, const struct registry_series *s,
			      const struct prev *p, uint64_t start,
			      uint64_t now)
{
	struct exphist d;
	const struct exphist *h = s->exp;
	size_t dp, pos;

	if (p && p->exp) {
		exphist_delta(s->exp, p->exp, &d);
		h = &d;
	}
	dp = pb_begin(b, DATA_POINTS);
	attributes(b, EDP_ATTRIBUTES, s);
	pb_fixed64(b, EDP_START, start);
	pb_fixed64(b, EDP_TIME, now);
	pb_fixed64(b, EDP_COUNT, h->count);
	pb_double(b, EDP_SUM, (double)h->sum_ns / 1e9);
	pb_sint(b, EDP_SCALE, h->scale);
	pb_fixed64(b, EDP_ZERO_COUNT, h->zero_count);
	if (h->len) {
		pos = pb_begin(b, EDP_POSITIVE);
		pb_sint(b, BUCKETS_OFFSET, h->offset);
		pb_packed_varint(b, BUCKETS_COUNTS, h->counts, h->len);
		pb_end(b, pos);
	}
	/* min and max of a delta are unknown. */
	if (h->count && !(p && p->exp)) {
		pb_double(b, EDP_MIN, (double)h->min_ns / 1e9);
		pb_double(b, EDP_MAX, (double)h->max_ns / 1e9);
	}
	pb_end(b, dp);
}

static void number_point(struct pb_buf *b, const struct registry_series *s,
			 int64_t value, uint64_t start, uint64_t now)
{
	size_t dp = pb_begin(b, DATA_POINTS);

	attributes(b, NDP_ATTRIBUTES, s);
	pb_fixed64(b, NDP_START, start);
	pb_fixed64(b, NDP_TIME, now);
	pb_fixed64(b, NDP_AS_INT, (uint64_t)value);
	pb_end(b, dp);
}

/* Remembers s as the base of the next delta. */
static void prev_update(struct prev *p, const struct registry_series *s,
			uint64_t now)
{
	size_t nb = s->bounds->n + 1;

	p->sent = true;
	p->time_ns = now;
	p->counter = s->counter;
	if (s->family->kind != METRIC_HISTOGRAM)
		return;
	p->count = s->hist->count;
	p->sum_ns = s->hist->sum_ns;
	if (!p->buckets)
		p->buckets = calloc(nb, sizeof(uint64_t));
	if (p->buckets)
		memcpy(p->buckets, s->hist->buckets, nb * sizeof(uint64_t));
	if (s->exp) {
		if (!p->exp)
			p->exp = malloc(sizeof(*p->exp));
		if (p->exp)
			*p->exp = *s->exp;
	}
}

static bool unchanged(const struct registry_series *s, const struct prev *p)
{
	if (s->family->kind == METRIC_HISTOGRAM)
		return s->hist->count == p->count;
	return s->counter == p->counter;
}

static void collect_series(const struct registry_series *s, void *arg)
{
	struct collect *c = arg;
	const struct metric_family *f = s->family;
	bool delta = c->delta && f->kind != METRIC_GAUGE;
	const struct prev *base = NULL;
	uint64_t start = s->start_unix_ns;
	struct prev *p = NULL;
	struct group *g;

	if (delta) {
		p = prev_for(c, s);
		if (!p) {
			c->failed = true;
			return;
		}
		if (p->sent && unchanged(s, p))
			return;
		start = p->time_ns;
		/* The first delta of a series subtracts nothing. */
		if (p->sent && (f->kind != METRIC_HISTOGRAM || p->buckets))
			base = p;
	}
	g = group_for(c, f, s->values[0]);
	if (!g) {
		c->failed = true;
		return;
	}
	switch (f->kind) {
	case METRIC_HISTOGRAM:
		if (c->exponential && s->exp)
			exponential_point(&g->points, s, base, start, c->now);
		else
			explicit_point(&g->points, s, base, start, c->now);
		break;
	case METRIC_COUNTER:
		number_point(&g->points, s,
			     (int64_t)(s->counter - (base ? base->counter : 0)),
			     start, c->now);
		break;
	case METRIC_GAUGE:
		number_point(&g->points, s, s->gauge, start, c->now);
		break;
	}
	c->points++;
	if (p)
		prev_update(p, s, c->now);
}

static void metric(struct pb_buf *b, const struct group *g, bool delta,
		   bool exponential)
{
	const struct metric_family *f = g->f;
	size_t m = pb_begin(b, SM_METRICS), data;
	int temporality = delta && f->kind != METRIC_GAUGE ?
				  TEMPORALITY_DELTA :
				  TEMPORALITY_CUMULATIVE;

	pb_string(b, METRIC_NAME, f->otel_name);
	pb_string(b, METRIC_DESCRIPTION, f->help);
	pb_string(b, METRIC_UNIT, f->unit);
	if (f->kind == METRIC_HISTOGRAM)
		data = pb_begin(b, exponential ? METRIC_EXP_HISTOGRAM :
						 METRIC_HISTOGRAM_F);
	else
		data = pb_begin(b, METRIC_SUM);
	pb_raw(b, g->points.data, g->points.len);
	pb_uint(b, DATA_TEMPORALITY, temporality);
	if (f->kind != METRIC_HISTOGRAM)
		pb_uint(b, SUM_IS_MONOTONIC, f->kind == METRIC_COUNTER);
	pb_end(b, data);
	pb_end(b, m);
}

static void assemble(struct pb_buf *out, const struct collect *c)
{
	for (unsigned svc = 0; svc < c->nservices; svc++) {
		size_t rm = pb_begin(out, REQ_RESOURCE_METRICS), sm;

		otlp_resource(out, RM_RESOURCE, c->services[svc]);
		sm = pb_begin(out, RM_SCOPE_METRICS);
		otlp_scope(out, SM_SCOPE);
		for (unsigned i = 0; i < c->ngroups; i++)
			if (c->groups[i].service == svc)
				metric(out, &c->groups[i], c->delta,
				       c->exponential);
		pb_end(out, sm);
		pb_end(out, rm);
	}
}

/* ---- sonde's own metrics ---------------------------------------------- */

/* Encodes the samples one self-metric's collect callback emits as data
 * points. */
struct self_encoder {
	struct self_sink sink; /* first: the callbacks get &sink */
	const struct self_metric *m;
	uint64_t start, now;
	struct pb_buf points;
	unsigned n;
};

static void self_attributes(struct pb_buf *b, uint32_t field,
			    const struct self_metric *m,
			    const char *const *values)
{
	for (unsigned i = 0; i < m->nlabels; i++)
		otlp_kv_string(b, field, m->otel_labels[i], values[i]);
}

/* A NumberDataPoint whose value is the fixed64 bits in field. */
static void self_number(struct self_encoder *e, const char *const *values,
			uint32_t field, uint64_t bits)
{
	size_t dp = pb_begin(&e->points, DATA_POINTS);

	self_attributes(&e->points, NDP_ATTRIBUTES, e->m, values);
	/* A counter counts from sonde's start; a gauge is as of now. */
	if (e->m->kind == SELF_COUNTER)
		pb_fixed64(&e->points, NDP_START, e->start);
	pb_fixed64(&e->points, NDP_TIME, e->now);
	pb_fixed64(&e->points, field, bits);
	pb_end(&e->points, dp);
	e->n++;
}

static void self_u64(struct self_sink *sink, const char *const *values,
		     uint64_t value)
{
	self_number((struct self_encoder *)sink, values, NDP_AS_INT, value);
}

static void self_f64(struct self_sink *sink, const char *const *values,
		     double value)
{
	uint64_t bits;

	memcpy(&bits, &value, sizeof(bits));
	self_number((struct self_encoder *)sink, values, NDP_AS_DOUBLE, bits);
}

static void self_histogram(struct self_sink *sink, const char *const *values,
			   const struct histogram *h,
			   const struct histogram_bounds *b)
{
	struct self_encoder *e = (struct self_encoder *)sink;
	size_t dp = pb_begin(&e->points, DATA_POINTS);

	self_attributes(&e->points, HDP_ATTRIBUTES, e->m, values);
	pb_fixed64(&e->points, HDP_START, e->start);
	pb_fixed64(&e->points, HDP_TIME, e->now);
	pb_fixed64(&e->points, HDP_COUNT, h->count);
	pb_double(&e->points, HDP_SUM, (double)h->sum_ns / 1e9);
	pb_packed_fixed64(&e->points, HDP_BUCKET_COUNTS, h->buckets, b->n + 1);
	pb_packed_double(&e->points, HDP_EXPLICIT_BOUNDS, b->seconds, b->n);
	pb_end(&e->points, dp);
	e->n++;
}

/* The Metric of a self-metric with its points: counters are cumulative
 * monotonic Sums whatever the temporality preference (the specification's
 * for asynchronous counters under "lowmemory"), gauges Gauges. */
static void self_metric_message(struct pb_buf *b, const struct self_encoder *e)
{
	const struct self_metric *m = e->m;
	size_t msg = pb_begin(b, SM_METRICS), data;

	pb_string(b, METRIC_NAME, m->otel_name);
	pb_string(b, METRIC_DESCRIPTION, m->help);
	pb_string(b, METRIC_UNIT, m->unit);
	data = pb_begin(b, m->kind == SELF_GAUGE     ? METRIC_GAUGE_F :
			   m->kind == SELF_HISTOGRAM ? METRIC_HISTOGRAM_F :
						       METRIC_SUM);
	pb_raw(b, e->points.data, e->points.len);
	if (m->kind != SELF_GAUGE)
		pb_uint(b, DATA_TEMPORALITY, TEMPORALITY_CUMULATIVE);
	if (m->kind == SELF_COUNTER)
		pb_uint(b, SUM_IS_MONOTONIC, 1);
	pb_end(b, data);
	pb_end(b, msg);
}

struct self_collect {
	uint64_t start, now;
	struct pb_buf metrics; /* the Metric messages */
	unsigned points;
	bool failed;
};

static void collect_self_metric(const struct self_metric *m, void *arg)
{
	struct self_collect *c = arg;
	struct self_encoder e = {
		.sink = { self_u64, self_f64, self_histogram },
		.m = m,
		.start = c->start,
		.now = c->now,
	};

	m->collect(m, &e.sink);
	/* A metric with nothing to report yet is left out. */
	if (e.n && !e.points.failed) {
		self_metric_message(&c->metrics, &e);
		c->points += e.n;
	}
	c->failed |= e.points.failed;
	pb_release(&e.points);
}

/* sonde's own resource: the agent, not a service it watches. */
static void self_resource(struct pb_buf *b)
{
	size_t res = pb_begin(b, RM_RESOURCE);
	char host[256] = "";

	otlp_kv_string(b, RESOURCE_ATTRIBUTES, "service.name", "sonde");
	otlp_kv_string(b, RESOURCE_ATTRIBUTES, "service.version",
		       SONDE_VERSION);
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
		otlp_kv_string(b, RESOURCE_ATTRIBUTES, "host.name", host);
	otlp_kv_int(b, RESOURCE_ATTRIBUTES, "process.pid", getpid());
	otlp_kv_string(b, RESOURCE_ATTRIBUTES, "process.executable.name",
		       "sonde");
	pb_end(b, res);
}

/* Every self-metric (metrics/self.h) as one ResourceMetrics appended to
 * out; returns its data points (0: nothing was appended). */
static unsigned encode_self(struct pb_buf *out, uint64_t now_ns, bool *failed)
{
	struct self_collect c = { .start = self_start_unix_ns(),
				  .now = now_ns };

	self_each(collect_self_metric, &c);
	*failed |= c.failed || c.metrics.failed;
	if (c.points && !c.metrics.failed) {
		size_t rm = pb_begin(out, REQ_RESOURCE_METRICS), sm;

		self_resource(out);
		sm = pb_begin(out, RM_SCOPE_METRICS);
		otlp_scope(out, SM_SCOPE);
		pb_raw(out, c.metrics.data, c.metrics.len);
		pb_end(out, sm);
		pb_end(out, rm);
	} else {
		c.points = 0;
	}
	pb_release(&c.metrics);
	return c.points;
}

unsigned otlp_encode(struct pb_buf *out, bool delta, bool exponential,
		     uint64_t now_ns)
{
	struct collect c = { .delta = delta,
			     .exponential = exponential,
			     .now = now_ns };

	registry_walk(collect_series, &c);
	if (delta)
		prevs_replace(&c);
	for (unsigned i = 0; i < c.ngroups; i++)
		c.failed |= c.groups[i].points.failed;
	if (c.points)
		assemble(out, &c);
	c.points += encode_self(out, now_ns, &c.failed);
	if (c.failed)
		log_debug("otlp: out of memory while encoding; some series "
			  "were left out");
	for (unsigned i = 0; i < c.ngroups; i++)
		pb_release(&c.groups[i].points);
	for (unsigned i = 0; i < c.nservices; i++)
		free(c.services[i]);
	free(c.groups);
	free(c.services);
	strmap_clear(&c.group_of);
	strmap_clear(&c.service_of);
	return c.points;
}

void otlp_reset(void)
{
	for (unsigned i = 0; i < nprevs; i++)
		prev_free(&prevs[i]);
	free(prevs);
	prevs = NULL;
	nprevs = 0;
}

/* ---- the exporter ----------------------------------------------------- */

static struct otlp_stats stats = {
	.exports = {
		.name = "sonde_otlp_exports_total",
		.otel_name = "sonde.otlp.exports",
		.help = "OTLP export attempts by result: success, partial (the "
			"collector rejected some points; not retried), retried "
			"(429/502/503/504 or a transport error; sent again "
			"later), failed (rejected; not retried), dropped (delta "
			"requests given up on a full queue).",
	},
	.durations = {
		.name = "sonde_otlp_export_duration_seconds",
		.otel_name = "sonde.otlp.export.duration",
		.help = "Time one OTLP export attempt took, response included.",
	},
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static const struct otlp_config *cfg;
static struct otlp_sender *sender;

static unsigned collect(void *arg, struct pb_buf *out, bool last, bool *again)
{
	(void)arg, (void)last, (void)again;
	return otlp_encode(out, cfg->delta, cfg->exponential,
			   clock_realtime_ns());
}

int otlp_start(const struct otlp_config *c)
{
	const struct otlp_sender_ops ops = {
		.name = "otlp",
		.what = "data points",
		.interval_ms = c->interval_ms,
		.latest_only = !c->delta,
		.collect = collect,
		.stats = &stats,
	};

	cfg = c; /* borrowed: the caller keeps c alive until otlp_stop */
	sender = otlp_sender_start(&c->metrics, &ops);
	if (!sender)
		return -1;
	log_info("exporting metrics over OTLP to %s every %u ms (%s%s%s)",
		 c->metrics.endpoint, c->interval_ms,
		 c->delta ? "delta" : "cumulative",
		 c->exponential ? ", exponential histograms" : "",
		 c->metrics.gzip ? ", gzip" : "");
	return 0;
}

void otlp_stop(void)
{
	if (!sender)
		return;
	otlp_sender_stop(sender);
	sender = NULL;
	otlp_reset();
}

void otlp_register_metrics(void)
{
	otlp_stats_register(&stats);
}
