#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "export/promproto.h"
#include "export/series_copy.h"
#include "metrics/self.h"
#include "util/pb.h"

/* Field numbers of metrics.proto (io.prometheus.client). */
enum {
	MF_NAME = 1,
	MF_HELP = 2,
	MF_TYPE = 3,
	MF_METRIC = 4,
	M_LABEL = 1,
	M_GAUGE = 2,
	M_COUNTER = 3,
	M_HISTOGRAM = 7,
	LP_NAME = 1,
	LP_VALUE = 2,
	VALUE = 1, /* Gauge.value, Counter.value */
	H_SAMPLE_COUNT = 1,
	H_SAMPLE_SUM = 2,
	H_BUCKET = 3,
	H_SCHEMA = 5,
	H_ZERO_THRESHOLD = 6,
	H_ZERO_COUNT = 7,
	H_POSITIVE_SPAN = 12,
	H_POSITIVE_DELTA = 13,
	B_CUMULATIVE_COUNT = 1,
	B_UPPER_BOUND = 2,
	SPAN_OFFSET = 1,
	SPAN_LENGTH = 2,
};

/* MetricType. */
enum { TYPE_COUNTER = 0, TYPE_GAUGE = 1, TYPE_HISTOGRAM = 4 };

/* The zero bucket's width: client_golang's default, 2^-128. Durations of
 * exactly 0 fall in it, and nothing else does; a width above 0 also marks
 * the histogram as native for parsers that look for it. */
#define ZERO_THRESHOLD 2.938735877055719e-39

static struct promproto_config config = { .schema = 3, .max_buckets = 160 };

void promproto_configure(const struct promproto_config *cfg)
{
	config = *cfg;
}

/* One media range of an Accept header, "type/sub; p=v; q=0.5", with its
 * blanks taken out. */
static bool range_is_ours(const char *p, size_t n)
{
	static const char type[] = "application/vnd.google.protobuf";
	char range[512];
	size_t len = 0;
	const char *q;

	for (size_t i = 0; i < n && len + 1 < sizeof(range); i++)
		if (p[i] != ' ' && p[i] != '\t')
			range[len++] = p[i];
	range[len] = '\0';
	if (strncasecmp(range, type, sizeof(type) - 1) != 0 ||
	    !strstr(range, ";proto=io.prometheus.client.MetricFamily") ||
	    !strstr(range, ";encoding=delimited"))
		return false;
	q = strstr(range, ";q=");
	return !q || strtod(q + 3, NULL) > 0;
}

bool promproto_accepted(const char *accept)
{
	const char *p = accept, *end;

	while (p && *p) {
		end = strchr(p, ',');
		if (range_is_ours(p, end ? (size_t)(end - p) : strlen(p)))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* Lowers the scale of counts (len of them from offset) by one, merging
 * pairs: index i goes to floor(i / 2). */
static void halve(int32_t *scale, int32_t *offset, uint64_t *counts,
		  uint32_t *len)
{
	int32_t first = *offset >> 1; /* arithmetic: floor for negatives */
	uint64_t merged[EXPHIST_MAX_BUCKETS] = { 0 };
	uint32_t n = 0;

	for (uint32_t i = 0; i < *len; i++) {
		uint32_t at = (uint32_t)(((*offset + (int32_t)i) >> 1) - first);

		merged[at] += counts[i];
		n = at + 1;
	}
	memcpy(counts, merged, n * sizeof(*counts));
	*len = n;
	*offset = first;
	(*scale)--;
}

uint32_t promproto_native_buckets(int32_t scale, int32_t offset,
				  const uint64_t *counts, uint32_t len,
				  int schema, unsigned max_buckets,
				  int32_t *out_schema, int32_t *first,
				  uint64_t *out)
{
	uint32_t lo = 0, hi = len;

	*out_schema = scale < schema ? scale : schema;
	*first = 0;
	if (!len)
		return 0;
	if (len > EXPHIST_MAX_BUCKETS)
		len = hi = EXPHIST_MAX_BUCKETS;
	/* Leading and trailing empty buckets are not sent. */
	while (lo < hi && !counts[lo])
		lo++;
	while (hi > lo && !counts[hi - 1])
		hi--;
	len = hi - lo;
	memcpy(out, counts + lo, len * sizeof(*out));
	offset += (int32_t)lo;
	while (scale > -4 && (scale > schema || (len && len > max_buckets)))
		halve(&scale, &offset, out, &len);
	*out_schema = scale;
	*first = offset + 1;
	return len;
}

/* A series' labels as Metric.label fields, for series_copy.h. */
static void pb_labels(struct strbuf *sb, const struct registry_series *s)
{
	const struct metric_family *f = s->family;
	struct pb_buf b = { 0 };

	for (unsigned i = 0; i < f->nlabels; i++) {
		size_t m = pb_begin(&b, M_LABEL);

		pb_string(&b, LP_NAME, f->labels[i]);
		pb_string(&b, LP_VALUE, s->values[i]);
		pb_end(&b, m);
	}
	if (b.failed)
		sb->failed = true;
	else
		strbuf_append(sb, (const char *)b.data, b.len);
	pb_release(&b);
}

static void native_histogram(struct pb_buf *b, const struct series_copies *c,
			     const struct series_copy *s)
{
	uint64_t counts[EXPHIST_MAX_BUCKETS];
	int32_t schema, first;
	uint32_t n = promproto_native_buckets(
		s->exp_scale, s->exp_offset,
		s->exp_len ? c->exp_counts + s->exp_counts : NULL, s->exp_len,
		config.schema, config.max_buckets, &schema, &first, counts);
	uint64_t deltas[EXPHIST_MAX_BUCKETS];
	size_t span;

	pb_sint(b, H_SCHEMA, schema);
	pb_double(b, H_ZERO_THRESHOLD, ZERO_THRESHOLD);
	pb_uint(b, H_ZERO_COUNT, s->exp_zero);
	/* One span over the populated range (empty buckets inside it are
	 * deltas of their own); a no-op span when there is none. */
	span = pb_begin(b, H_POSITIVE_SPAN);
	pb_sint(b, SPAN_OFFSET, n ? first : 0);
	pb_uint(b, SPAN_LENGTH, n);
	pb_end(b, span);
	for (uint32_t i = 0; i < n; i++) {
		int64_t d =
			(int64_t)counts[i] - (int64_t)(i ? counts[i - 1] : 0);

		deltas[i] = ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
	}
	pb_packed_varint(b, H_POSITIVE_DELTA, deltas, n);
}

static void classic_buckets(struct pb_buf *b, const uint64_t *counts,
			    const struct histogram_bounds *bounds)
{
	uint64_t cumulative = 0;

	/* The +Inf bucket is left out: sample_count says it. */
	for (size_t i = 0; i < bounds->n; i++) {
		size_t m = pb_begin(b, H_BUCKET);

		cumulative += counts[i];
		pb_uint(b, B_CUMULATIVE_COUNT, cumulative);
		pb_double(b, B_UPPER_BOUND, bounds->seconds[i]);
		pb_end(b, m);
	}
}

static void write_series(struct pb_buf *b, const struct series_copies *c,
			 const struct series_copy *s)
{
	size_t m = pb_begin(b, MF_METRIC), v;

	pb_raw(b, s->labels, s->labels_len);
	switch (s->family->kind) {
	case METRIC_HISTOGRAM:
		v = pb_begin(b, M_HISTOGRAM);
		pb_uint(b, H_SAMPLE_COUNT, s->count);
		pb_double(b, H_SAMPLE_SUM, (double)s->sum_ns / 1e9);
		classic_buckets(b, c->buckets + s->buckets, s->bounds);
		if (s->has_exp)
			native_histogram(b, c, s);
		pb_end(b, v);
		break;
	case METRIC_COUNTER:
		v = pb_begin(b, M_COUNTER);
		pb_double(b, VALUE, (double)s->value);
		pb_end(b, v);
		break;
	default:
		v = pb_begin(b, M_GAUGE);
		pb_double(b, VALUE, (double)(int64_t)s->value);
		pb_end(b, v);
		break;
	}
	pb_end(b, m);
}

/* Opens a length-delimited MetricFamily: its length goes before it, with
 * no field key. */
static size_t family_begin(struct pb_buf *b, const char *name, const char *help,
			   int type)
{
	size_t mark = b->len;

	pb_raw_varint(b, 0); /* pb_end writes the length here */
	pb_string(b, MF_NAME, name);
	pb_string(b, MF_HELP, help);
	pb_uint(b, MF_TYPE, type);
	return mark;
}

static const int family_type[] = {
	[METRIC_HISTOGRAM] = TYPE_HISTOGRAM,
	[METRIC_COUNTER] = TYPE_COUNTER,
	[METRIC_GAUGE] = TYPE_GAUGE,
};

static void write_registry(struct pb_buf *b)
{
	struct series_copies c;
	size_t family = 0;
	bool open = false;

	if (series_copies_take(&c, COPY_LABELS_PB, pb_labels, config.native)) {
		b->failed = true;
		return;
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct series_copy *s = &c.series[i];

		if (s->labels) {
			write_series(b, &c, s);
			continue;
		}
		if (open)
			pb_end(b, family);
		family = family_begin(b, s->family->name, s->family->help,
				      family_type[s->family->kind]);
		open = true;
	}
	if (open)
		pb_end(b, family);
	series_copies_release(&c);
}

/* Self-metrics, as their collect callbacks emit them. */
struct self_writer {
	struct self_sink sink; /* first: the callbacks get &sink */
	struct pb_buf *b;
	const struct self_metric *m;
};

static size_t self_metric_begin(struct self_writer *w,
				const char *const *values)
{
	size_t m = pb_begin(w->b, MF_METRIC);

	for (unsigned i = 0; i < w->m->nlabels; i++) {
		size_t l = pb_begin(w->b, M_LABEL);

		pb_string(w->b, LP_NAME, w->m->labels[i]);
		pb_string(w->b, LP_VALUE, values[i]);
		pb_end(w->b, l);
	}
	return m;
}

static void self_number(struct self_writer *w, const char *const *values,
			double value)
{
	size_t m = self_metric_begin(w, values);
	size_t v = pb_begin(w->b,
			    w->m->kind == SELF_COUNTER ? M_COUNTER : M_GAUGE);

	pb_double(w->b, VALUE, value);
	pb_end(w->b, v);
	pb_end(w->b, m);
}

static void self_u64(struct self_sink *sink, const char *const *values,
		     uint64_t value)
{
	self_number((struct self_writer *)sink, values, (double)value);
}

static void self_f64(struct self_sink *sink, const char *const *values,
		     double value)
{
	self_number((struct self_writer *)sink, values, value);
}

static void self_histogram(struct self_sink *sink, const char *const *values,
			   const struct histogram *h,
			   const struct histogram_bounds *bounds)
{
	struct self_writer *w = (struct self_writer *)sink;
	size_t m = self_metric_begin(w, values);
	size_t v = pb_begin(w->b, M_HISTOGRAM);

	pb_uint(w->b, H_SAMPLE_COUNT, h->count);
	pb_double(w->b, H_SAMPLE_SUM, (double)h->sum_ns / 1e9);
	classic_buckets(w->b, h->buckets, bounds);
	pb_end(w->b, v);
	pb_end(w->b, m);
}

static const int self_type[] = {
	[SELF_COUNTER] = TYPE_COUNTER,
	[SELF_GAUGE] = TYPE_GAUGE,
	[SELF_HISTOGRAM] = TYPE_HISTOGRAM,
};

static void write_self_metric(const struct self_metric *m, void *arg)
{
	struct self_writer w = {
		.sink = { self_u64, self_f64, self_histogram },
		.b = arg,
		.m = m,
	};
	size_t family = family_begin(w.b, m->name, m->help, self_type[m->kind]);

	m->collect(m, &w.sink);
	pb_end(w.b, family);
}

void promproto_render(struct strbuf *sb)
{
	struct pb_buf b = { 0 };

	write_registry(&b);
	self_each(write_self_metric, &b);
	if (b.failed)
		sb->failed = true;
	else
		strbuf_append(sb, (const char *)b.data, b.len);
	pb_release(&b);
}
