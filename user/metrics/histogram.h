/* Explicit-bucket histograms of durations. Observations are kept in integer
 * nanoseconds, so placing one in a bucket is exact and sums do not drift;
 * they are turned into seconds only when written out. */
#ifndef SONDE_HISTOGRAM_H
#define SONDE_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_MAX_BOUNDS 64

/* Upper bounds, strictly increasing, in seconds and in nanoseconds. */
struct histogram_bounds {
	size_t n;
	double seconds[HISTOGRAM_MAX_BOUNDS];
	uint64_t ns[HISTOGRAM_MAX_BOUNDS];
};

struct histogram {
	uint64_t count;
	uint64_t sum_ns;
	/* Per bucket, not cumulative: buckets[i] counts observations in
	 * (bound[i-1], bound[i]]; buckets[n] those above the last bound. */
	uint64_t buckets[];
};

/* The OpenTelemetry default boundaries for HTTP durations, in seconds. */
void histogram_bounds_default(struct histogram_bounds *b);

/* 16 bounds from 100 µs to 10 s, for calls that take tens of microseconds
 * (database families): 0.0001, 0.00025, 0.0005, 0.001, ..., 2.5, 5, 10. */
void histogram_bounds_fine(struct histogram_bounds *b);

/* Parses a comma-separated list of positive, strictly increasing seconds
 * ("0.005,0.01,0.5"). Returns 0, or -1 with a reason in err[0..errsz). */
int histogram_bounds_parse(const char *text, struct histogram_bounds *b,
			   char *err, size_t errsz);

/* Bytes to allocate for a histogram over b (zeroed by the caller). */
size_t histogram_size(const struct histogram_bounds *b);

void histogram_observe(struct histogram *h, const struct histogram_bounds *b,
		       uint64_t ns);

/* Cumulative count of observations <= bound i (i == b->n: all of them). */
uint64_t histogram_cumulative(const struct histogram *h, size_t i);

#endif
