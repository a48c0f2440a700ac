#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/prom.h"
#include "metrics/registry.h"
#include "metrics/self.h"

/* As Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus' own
 * clients use for le="...": the fewest digits that read back as v, in
 * exponent form only when the decimal exponent is below -4 or at least 6
 * ("0.075", "10", "100000", "1e+06", "1e-05"). */
void prom_format_double(double v, char out[32])
{
	int digits, exp;
	char *e;

	if (isnan(v)) {
		strcpy(out, "NaN");
		return;
	}
	if (isinf(v)) {
		strcpy(out, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (digits = 1; digits < 17; digits++) {
		snprintf(out, 32, "%.*e", digits - 1, v);
		if (strtod(out, NULL) == v)
			break;
	}
	snprintf(out, 32, "%.*e", digits - 1, v);
	e = strchr(out, 'e');
	exp = e ? atoi(e + 1) : 0;
	if (exp < -4 || exp >= 6)
		return;
	snprintf(out, 32, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0,
		 v);
}

/* Label values escape backslash, double quote and line feed. */
static void write_label_value(struct strbuf *sb, const char *v)
{
	const char *run = v;

	for (; *v; v++) {
		const char *esc = *v == '\\' ? "\\\\" :
				  *v == '"'  ? "\\\"" :
				  *v == '\n' ? "\\n" :
					       NULL;

		if (!esc)
			continue;
		strbuf_append(sb, run, v - run);
		strbuf_puts(sb, esc);
		run = v + 1;
	}
	strbuf_append(sb, run, v - run);
}

static void write_labels(struct strbuf *sb, const struct prom_label *labels,
			 size_t n, const char *le)
{
	if (!n && !le)
		return;
	strbuf_append(sb, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_append(sb, ",", 1);
		strbuf_puts(sb, labels[i].name);
		strbuf_append(sb, "=\"", 2);
		write_label_value(sb, labels[i].value);
		strbuf_append(sb, "\"", 1);
	}
	if (le) {
		strbuf_puts(sb, n ? ",le=\"" : "le=\"");
		strbuf_puts(sb, le);
		strbuf_append(sb, "\"", 1);
	}
	strbuf_append(sb, "}", 1);
}

void prom_write_family(struct strbuf *sb, const char *name, const char *type,
		       const char *help)
{
	strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		      type);
}

void prom_write_sample(struct strbuf *sb, const char *name,
		       const struct prom_label *labels, size_t nlabels,
		       const char *value)
{
	strbuf_puts(sb, name);
	write_labels(sb, labels, nlabels, NULL);
	strbuf_append(sb, " ", 1);
	strbuf_puts(sb, value);
	strbuf_append(sb, "\n", 1);
}

void prom_write_u64(struct strbuf *sb, const char *name,
		    const struct prom_label *labels, size_t nlabels,
		    uint64_t value)
{
	char text[24];

	snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
	prom_write_sample(sb, name, labels, nlabels, text);
}

static void write_suffixed(struct strbuf *sb, const char *name,
			   const char *suffix, const struct prom_label *labels,
			   size_t nlabels, const char *le, const char *value)
{
	strbuf_puts(sb, name);
	strbuf_puts(sb, suffix);
	write_labels(sb, labels, nlabels, le);
	strbuf_append(sb, " ", 1);
	strbuf_puts(sb, value);
	strbuf_append(sb, "\n", 1);
}

void prom_write_histogram(struct strbuf *sb, const char *name,
			  const struct prom_label *labels, size_t nlabels,
			  const struct histogram *h,
			  const struct histogram_bounds *b)
{
	char le[32], value[32];
	uint64_t cumulative = 0;

	for (size_t i = 0; i <= b->n; i++) {
		cumulative += h->buckets[i];
		if (i < b->n)
			prom_format_double(b->seconds[i], le);
		else
			strcpy(le, "+Inf");
		snprintf(value, sizeof(value), "%llu",
			 (unsigned long long)cumulative);
		write_suffixed(sb, name, "_bucket", labels, nlabels, le, value);
	}
	prom_format_double((double)h->sum_ns / 1e9, value);
	write_suffixed(sb, name, "_sum", labels, nlabels, NULL, value);
	snprintf(value, sizeof(value), "%llu", (unsigned long long)h->count);
	write_suffixed(sb, name, "_count", labels, nlabels, NULL, value);
}

static const char *const kind_type[] = {
	[METRIC_HISTOGRAM] = "histogram",
	[METRIC_COUNTER] = "counter",
	[METRIC_GAUGE] = "gauge",
};

static void write_family_head(const struct metric_family *f, void *arg)
{
	prom_write_family(arg, f->name, kind_type[f->kind], f->help);
}

static void write_series(const struct registry_series *s, void *arg)
{
	const struct metric_family *f = s->family;
	struct prom_label labels[REGISTRY_MAX_LABELS];
	struct strbuf *sb = arg;
	char value[32];

	for (unsigned i = 0; i < f->nlabels; i++) {
		labels[i].name = f->labels[i];
		labels[i].value = s->values[i];
	}
	switch (f->kind) {
	case METRIC_HISTOGRAM:
		prom_write_histogram(sb, f->name, labels, f->nlabels, s->hist,
				     registry_bounds());
		break;
	case METRIC_COUNTER:
		prom_write_u64(sb, f->name, labels, f->nlabels, s->counter);
		break;
	case METRIC_GAUGE:
		snprintf(value, sizeof(value), "%lld", (long long)s->gauge);
		prom_write_sample(sb, f->name, labels, f->nlabels, value);
		break;
	}
}

/* Writes a self-metric's samples as its collect callback emits them. */
struct self_writer {
	struct self_sink sink; /* first: the callbacks get &sink */
	struct strbuf *sb;
	const struct self_metric *m;
};

static size_t self_labels(const struct self_writer *w,
			  const char *const *values,
			  struct prom_label labels[SELF_MAX_LABELS])
{
	for (unsigned i = 0; i < w->m->nlabels; i++)
		labels[i] = (struct prom_label){ w->m->labels[i], values[i] };
	return w->m->nlabels;
}

static void self_write_u64(struct self_sink *sink, const char *const *values,
			   uint64_t value)
{
	struct self_writer *w = (struct self_writer *)sink;
	struct prom_label labels[SELF_MAX_LABELS];
	size_t n = self_labels(w, values, labels);

	prom_write_u64(w->sb, w->m->name, labels, n, value);
}

static void self_write_f64(struct self_sink *sink, const char *const *values,
			   double value)
{
	struct self_writer *w = (struct self_writer *)sink;
	struct prom_label labels[SELF_MAX_LABELS];
	size_t n = self_labels(w, values, labels);
	char text[32];

	prom_format_double(value, text);
	prom_write_sample(w->sb, w->m->name, labels, n, text);
}

static void self_write_histogram(struct self_sink *sink,
				 const char *const *values,
				 const struct histogram *h,
				 const struct histogram_bounds *b)
{
	struct self_writer *w = (struct self_writer *)sink;
	struct prom_label labels[SELF_MAX_LABELS];
	size_t n = self_labels(w, values, labels);

	prom_write_histogram(w->sb, w->m->name, labels, n, h, b);
}

static const char *const self_type[] = {
	[SELF_COUNTER] = "counter",
	[SELF_GAUGE] = "gauge",
	[SELF_HISTOGRAM] = "histogram",
};

static void write_self_metric(const struct self_metric *m, void *arg)
{
	struct self_writer w = {
		.sink = { self_write_u64, self_write_f64,
			  self_write_histogram },
		.sb = arg,
		.m = m,
	};

	prom_write_family(w.sb, m->name, self_type[m->kind], m->help);
	m->collect(m, &w.sink);
}

void prom_render(struct strbuf *sb)
{
	registry_walk_families(write_family_head, write_series, sb);
	self_each(write_self_metric, sb);
}
