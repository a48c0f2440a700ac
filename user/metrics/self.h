/* sonde's own metrics (sonde_*): how it is doing, not what it measures.
 * Each module registers its metrics once at start-up, with the names of
 * the metric and its labels in both worlds (Prometheus
 * "sonde_events_dropped_total" {reason}, OTLP "sonde.events.dropped"
 * {sonde.drop.reason}: dotted, no unit or _total suffix, as the families
 * of families.c), unit, help and kind, and a collect callback
 * that reads its counters when asked. The Prometheus exposition and the
 * OTLP encoder both read this one registration (export/ reads metrics/;
 * no module that owns a self-metric imports an exporter).
 *
 * A collect callback hands each sample to the sink it is given with
 * self_emit_u64, self_emit_double or self_emit_histogram; the sink writes
 * it out as the exporter that called collect needs. */
#ifndef SONDE_SELF_H
#define SONDE_SELF_H

#include <stdint.h>

#include "metrics/histogram.h"

#define SELF_MAX_LABELS 2

enum self_kind {
	SELF_COUNTER,	/* monotonic since start: an OTLP cumulative Sum */
	SELF_GAUGE,	/* a value as of now: an OTLP Gauge */
	SELF_HISTOGRAM, /* durations (self_emit_histogram only) */
};

struct self_sink;

struct self_metric {
	const char *name;      /* Prometheus: "sonde_events_received_total" */
	const char *otel_name; /* OTLP: "sonde.events.received" */
	const char *unit;      /* UCUM: "{event}", "s", "1" */
	const char *help;
	enum self_kind kind;
	unsigned nlabels;
	const char *labels[SELF_MAX_LABELS];	  /* Prometheus names */
	const char *otel_labels[SELF_MAX_LABELS]; /* OTLP attribute keys */
	/* Emits every sample of m into sink, each with m->nlabels label
	 * values. Called on an exporter's thread (HTTP or OTLP), possibly
	 * both at once: reads what it reports under its module's lock or
	 * atomically, and does no I/O. */
	void (*collect)(const struct self_metric *m, struct self_sink *sink);
};

/* What a collect callback writes into; each exporter implements one. */
struct self_sink {
	void (*u64)(struct self_sink *sink, const char *const *values,
		    uint64_t value);
	void (*f64)(struct self_sink *sink, const char *const *values,
		    double value);
	void (*histogram)(struct self_sink *sink, const char *const *values,
			  const struct histogram *h,
			  const struct histogram_bounds *b);
};

/* Adds m (not copied: it must outlive every reader, a static) to the
 * metrics exporters list, after those registered before it. Registering m
 * again does nothing. Returns 0, or -1 after logging when another metric
 * already has m's name, a label lacks one of its names, or the table (64)
 * is full. Call at start-up, from one thread; exporters may be reading
 * already. */
int self_register(const struct self_metric *m);

/* Calls fn for every registered metric, in registration order. Any
 * thread; sees every metric registered before it began. */
void self_each(void (*fn)(const struct self_metric *m, void *arg), void *arg);

/* Wall-clock time of the first registration, in ns since the epoch: the
 * start of every self counter (0 before any). */
uint64_t self_start_unix_ns(void);

/* Forgets every registration (tests). Not safe while exporters read. */
void self_reset(void);

/* A sample of a counter or gauge; values holds the metric's nlabels label
 * values (NULL when it has none). */
static inline void self_emit_u64(struct self_sink *sink,
				 const char *const *values, uint64_t value)
{
	sink->u64(sink, values, value);
}

/* The same with a value that is not a whole number (seconds). */
static inline void self_emit_double(struct self_sink *sink,
				    const char *const *values, double value)
{
	sink->f64(sink, values, value);
}

/* A sample of a SELF_HISTOGRAM metric over bounds b. */
static inline void self_emit_histogram(struct self_sink *sink,
				       const char *const *values,
				       const struct histogram *h,
				       const struct histogram_bounds *b)
{
	sink->histogram(sink, values, h, b);
}

#endif
