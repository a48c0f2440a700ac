/* The registry's series as an exposition renders them: copied under the
 * registry's lock (numbers, and a label rendering made once per series
 * and kept), so that the text or protobuf is written after the lock is
 * let go; the consumer waits for the copy alone. One renderer at a time
 * (export/scrape.c makes sure). */
#ifndef SONDE_EXPORT_SERIES_COPY_H
#define SONDE_EXPORT_SERIES_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/registry.h"
#include "util/strbuf.h"

/* How a series' labels are kept for its renderer. */
enum copy_labels {
	COPY_LABELS_TEXT, /* service_name="web",... (Prometheus text) */
	COPY_LABELS_PB,	  /* LabelPair fields of a Metric (protobuf) */
	COPY_LABELS_COUNT,
};

/* One series, or (labels NULL) the head of its family, which comes
 * before the family's series. */
struct series_copy {
	const struct metric_family *family;
	const char *labels; /* valid until series_copies_release */
	size_t labels_len;
	uint64_t value; /* the counter, or the gauge's bits */
	uint64_t count, sum_ns;
	/* A histogram's bounds (the registry's or its family's, which
	 * outlive the copy), and its first (non-cumulative) count in
	 * buckets[]: bounds->n + 1 of them. */
	const struct histogram_bounds *bounds;
	size_t buckets;
	/* The exponential histogram, when asked for and kept: */
	bool has_exp;
	int32_t exp_scale, exp_offset;
	uint32_t exp_len;
	uint64_t exp_zero;
	size_t exp_counts; /* its first count in exp_counts[] */
};

struct series_copies {
	struct series_copy *series;
	size_t n, cap;
	uint64_t *buckets; /* bounds->n + 1 per histogram */
	size_t nbuckets, bucket_cap;
	uint64_t *exp_counts;
	size_t nexp, exp_cap;
	enum copy_labels form;
	bool with_exp;
	bool failed;
};

/* Renders the labels of s in one form; called under the registry's lock,
 * once per series for its lifetime. */
typedef void (*copy_label_writer)(struct strbuf *sb,
				  const struct registry_series *s);

/* Copies every registry family and series into c (zeroed by the call),
 * with labels in form, rendered by write (the same writer every time for
 * a form) and, when with_exp, each histogram's exponential histogram.
 * Returns 0, or -1 when memory ran out (c is released). */
int series_copies_take(struct series_copies *c, enum copy_labels form,
		       copy_label_writer write, bool with_exp);

/* Frees c, and the kept label renderings of series gone since. */
void series_copies_release(struct series_copies *c);

#endif
