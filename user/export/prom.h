/* Prometheus text exposition format 0.0.4 writer:
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 * Appends to a strbuf; never fails by itself (see strbuf.failed). */
#ifndef SONDE_PROM_H
#define SONDE_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/histogram.h"
#include "util/strbuf.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct prom_label {
	const char *name;
	const char *value;
};

/* Shortest decimal text that reads back as exactly v, formatted as Go's
 * 'g' does ("0.075", "10", "1e-05", "+Inf"). out must hold 32 bytes. */
void prom_format_double(double v, char out[32]);

/* "# HELP name help\n# TYPE name type\n". */
void prom_write_family(struct strbuf *sb, const char *name, const char *type,
		       const char *help);

/* One sample line: name{labels} value. */
void prom_write_sample(struct strbuf *sb, const char *name,
		       const struct prom_label *labels, size_t nlabels,
		       const char *value);
void prom_write_u64(struct strbuf *sb, const char *name,
		    const struct prom_label *labels, size_t nlabels,
		    uint64_t value);

/* name_bucket{labels,le=...} for every bound and +Inf (cumulative), then
 * name_sum in seconds and name_count. */
void prom_write_histogram(struct strbuf *sb, const char *name,
			  const struct prom_label *labels, size_t nlabels,
			  const struct histogram *h,
			  const struct histogram_bounds *b);

/* The whole exposition: every registry family with series (HELP, TYPE and
 * its samples), then every self-metric of metrics/self.h in registration
 * order. Takes the registry's and the modules' locks in turn, never two
 * at once. */
void prom_render(struct strbuf *sb);

#endif
