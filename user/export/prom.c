#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/prom.h"

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
