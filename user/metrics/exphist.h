/* Base-2 exponential histograms of durations, as OTLP's
 * ExponentialHistogramDataPoint describes them:
 * https://opentelemetry.io/docs/specs/otel/metrics/data-model/#exponentialhistogram
 * Bucket i at scale s holds values in (2^(i/2^s), 2^((i+1)/2^s)], in
 * seconds. The histogram starts at the finest scale and halves its
 * resolution whenever the observed range would need more than
 * EXPHIST_MAX_BUCKETS buckets (the SDK defaults: 160 buckets, scale 20).
 * Durations are never negative, so only positive buckets and the zero
 * count exist. Not thread-safe: the registry's lock guards it. */
#ifndef SONDE_EXPHIST_H
#define SONDE_EXPHIST_H

#include <stdint.h>

#define EXPHIST_MAX_BUCKETS 160
#define EXPHIST_MAX_SCALE 20

struct exphist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t zero_count; /* observations of 0 ns */
	uint64_t min_ns, max_ns;
	int32_t scale;
	int32_t offset; /* index of counts[0] */
	uint32_t len;	/* counts used, from offset */
	uint64_t counts[EXPHIST_MAX_BUCKETS];
};

/* An empty histogram at the finest scale. */
void exphist_init(struct exphist *h);

/* Records a duration. Never fails. */
void exphist_observe(struct exphist *h, uint64_t ns);

/* The bucket index of seconds (> 0) at scale. */
int32_t exphist_index(double seconds, int32_t scale);

/* Lowers h's scale by change (> 0), merging buckets pairwise each step. */
void exphist_downscale(struct exphist *h, int32_t change);

/* out = cur - prev: the observations cur has that prev did not, where
 * prev is an earlier state of the same histogram. min and max of the
 * difference are unknown and set to 0. */
void exphist_delta(const struct exphist *cur, const struct exphist *prev,
		   struct exphist *out);

#endif
