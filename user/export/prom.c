#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/prom.h"
#include "export/series_copy.h"
#include "metrics/registry.h"
#include "metrics/self.h"
#include "util/fmt.h"

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

/* A series' labels as the text format has them, for series_copy.h. */
static void text_labels(struct strbuf *sb, const struct registry_series *s)
{
	const struct metric_family *f = s->family;

	for (unsigned i = 0; i < f->nlabels; i++) {
		if (i)
			strbuf_append(sb, ",", 1);
		strbuf_puts(sb, f->labels[i]);
		strbuf_append(sb, "=\"", 2);
		write_label_value(sb, s->values[i]);
		strbuf_append(sb, "\"", 1);
	}
}

/* A duration in ns as seconds, exactly: "0.000191034", "12", "0". It
 * reads back as the nearest double to ns / 1e9, as the double would
 * print. */
static size_t put_seconds(char *p, uint64_t ns)
{
	size_t n = fmt_u64_digits(ns / 1000000000ULL, p);
	uint64_t frac = ns % 1000000000ULL;
	int digits = 9;

	if (!frac)
		return n;
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	p[n++] = '.';
	for (int i = digits - 1; i >= 0; i--) {
		p[n + i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	return n + digits;
}

struct piece {
	const char *p;
	size_t n;
};

/* One sample line from its pieces and its value's text, written into
 * room reserved once. */
static void put_line(struct strbuf *sb, const struct piece *pieces,
		     size_t npieces, const char *value, size_t nvalue)
{
	size_t len = nvalue + 1;
	char *w;

	for (size_t i = 0; i < npieces; i++)
		len += pieces[i].n;
	if (!strbuf_reserve(sb, len))
		return;
	w = sb->data + sb->len;
	for (size_t i = 0; i < npieces; i++) {
		memcpy(w, pieces[i].p, pieces[i].n);
		w += pieces[i].n;
	}
	memcpy(w, value, nvalue);
	w[nvalue] = '\n';
	sb->len += len;
	sb->data[sb->len] = '\0';
}

/* A set of bounds as le="..." texts, the +Inf one last. */
struct le_texts {
	size_t n;
	double seconds[HISTOGRAM_MAX_BOUNDS]; /* what they were made from */
	char text[HISTOGRAM_MAX_BOUNDS + 1][40];
	size_t len[HISTOGRAM_MAX_BOUNDS + 1];
};

/* The le texts of the bounds sets rendered lately: the registry's and
 * the few that families have of their own. Made once per set rather than
 * per scrape, and found by the bounds' values, so a set that changed
 * (registry_init again) is made anew. One renderer at a time
 * (series_copy.h) keeps them without a lock. */
#define LE_SETS 8
static struct le_texts le_sets[LE_SETS];
static unsigned le_nsets, le_next_evicted;

static void make_le_texts(struct le_texts *le, const struct histogram_bounds *b)
{
	char v[32];

	le->n = b->n;
	memcpy(le->seconds, b->seconds, b->n * sizeof(*b->seconds));
	for (size_t i = 0; i <= b->n; i++) {
		if (i < b->n)
			prom_format_double(b->seconds[i], v);
		else
			strcpy(v, "+Inf");
		le->len[i] = (size_t)snprintf(le->text[i], sizeof(le->text[i]),
					      "le=\"%s\"} ", v);
	}
}

/* The texts of b, from le_sets or made there (over the set made the
 * longest ago when full). Valid until the next call. */
static const struct le_texts *le_texts_of(const struct histogram_bounds *b)
{
	struct le_texts *le;

	for (unsigned i = 0; i < le_nsets; i++) {
		le = &le_sets[i];
		if (le->n == b->n && !memcmp(le->seconds, b->seconds,
					     b->n * sizeof(*b->seconds)))
			return le;
	}
	if (le_nsets < LE_SETS) {
		le = &le_sets[le_nsets++];
	} else {
		le = &le_sets[le_next_evicted];
		le_next_evicted = (le_next_evicted + 1) % LE_SETS;
	}
	make_le_texts(le, b);
	return le;
}

static void write_histogram_copy(struct strbuf *sb,
				 const struct series_copies *c,
				 const struct series_copy *s,
				 const struct le_texts *le)
{
	const struct metric_family *f = s->family;
	size_t name = strlen(f->name), labels = s->labels_len;
	struct piece pieces[5] = {
		{ f->name, name },
		{ "_bucket{", 8 },
		{ s->labels, labels },
		{ ",", labels ? 1 : 0 },
	};
	const uint64_t *counts = c->buckets + s->buckets;
	size_t n = s->bounds->n;
	uint64_t cumulative = 0;
	char value[32];

	for (size_t i = 0; i <= n; i++) {
		cumulative += counts[i];
		pieces[4] = (struct piece){ le->text[i], le->len[i] };
		put_line(sb, pieces, 5, value,
			 fmt_u64_digits(cumulative, value));
	}
	pieces[1] = (struct piece){ "_sum{", 5 };
	pieces[3] = (struct piece){ "} ", 2 };
	put_line(sb, pieces, 4, value, put_seconds(value, s->sum_ns));
	pieces[1] = (struct piece){ "_count{", 7 };
	put_line(sb, pieces, 4, value, fmt_u64_digits(s->count, value));
}

static void write_copy(struct strbuf *sb, const struct series_copies *c)
{
	const struct histogram_bounds *bounds = NULL;
	const struct le_texts *le = NULL;
	char value[32];

	for (size_t i = 0; i < c->n; i++) {
		const struct series_copy *s = &c->series[i];
		const struct metric_family *f = s->family;
		struct piece pieces[4];
		size_t n;

		if (!s->labels) {
			prom_write_family(sb, f->name, kind_type[f->kind],
					  f->help);
			continue;
		}
		pieces[0] = (struct piece){ f->name, strlen(f->name) };
		pieces[1] = (struct piece){ "{", 1 };
		pieces[2] = (struct piece){ s->labels, s->labels_len };
		pieces[3] = (struct piece){ "} ", 2 };
		switch (f->kind) {
		case METRIC_HISTOGRAM:
			/* Series come family by family: the texts are
			 * looked for again only where the bounds change. */
			if (s->bounds != bounds) {
				bounds = s->bounds;
				le = le_texts_of(bounds);
			}
			write_histogram_copy(sb, c, s, le);
			continue;
		case METRIC_COUNTER:
			n = fmt_u64_digits(s->value, value);
			break;
		default:
			n = snprintf(value, sizeof(value), "%lld",
				     (long long)(int64_t)s->value);
			break;
		}
		put_line(sb, pieces, 4, value, n);
	}
}

static void write_registry(struct strbuf *sb)
{
	struct series_copies c;

	if (series_copies_take(&c, COPY_LABELS_TEXT, text_labels, false)) {
		sb->failed = true;
		return;
	}
	write_copy(sb, &c);
	series_copies_release(&c);
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
	write_registry(sb);
	self_each(write_self_metric, sb);
}
