#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics/histogram.h"

/* OpenTelemetry semantic conventions, http.server.request.duration:
 * ExplicitBucketBoundaries advice. */
static const double default_seconds[] = { 0.005, 0.01, 0.025, 0.05, 0.075,
					  0.1,	 0.25, 0.5,   0.75, 1,
					  2.5,	 5,    7.5,   10 };

/* For calls of tens of microseconds (a Redis GET), which the default's
 * first bound, 5 ms, would all hold: 1, 2.5 and 5 per decade from 100 µs
 * to 10 s. */
static const double fine_seconds[] = { 0.0001, 0.00025, 0.0005, 0.001,
				       0.0025, 0.005,	0.01,	0.025,
				       0.05,   0.1,	0.25,	0.5,
				       1,      2.5,	5,	10 };

static uint64_t seconds_to_ns(double s)
{
	return (uint64_t)llround(s * 1e9);
}

static void bounds_set(struct histogram_bounds *b, const double *seconds,
		       size_t n)
{
	b->n = n;
	for (size_t i = 0; i < n; i++) {
		b->seconds[i] = seconds[i];
		b->ns[i] = seconds_to_ns(seconds[i]);
	}
}

void histogram_bounds_default(struct histogram_bounds *b)
{
	bounds_set(b, default_seconds,
		   sizeof(default_seconds) / sizeof(default_seconds[0]));
}

void histogram_bounds_fine(struct histogram_bounds *b)
{
	bounds_set(b, fine_seconds,
		   sizeof(fine_seconds) / sizeof(fine_seconds[0]));
}

int histogram_bounds_parse(const char *text, struct histogram_bounds *b,
			   char *err, size_t errsz)
{
	const char *p = text;
	char *end;
	double v;

	b->n = 0;
	while (*p) {
		if (b->n == HISTOGRAM_MAX_BOUNDS) {
			snprintf(err, errsz, "more than %d buckets",
				 HISTOGRAM_MAX_BOUNDS);
			return -1;
		}
		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || (*end && *end != ',')) {
			snprintf(err, errsz, "'%s' is not a number at '%s'",
				 text, p);
			return -1;
		}
		if (!(v > 0) || v > 1e6) {
			snprintf(err, errsz,
				 "bucket %g is not between 0 and 1e6 seconds",
				 v);
			return -1;
		}
		if (b->n && seconds_to_ns(v) <= b->ns[b->n - 1]) {
			snprintf(err, errsz,
				 "bucket %g is not above the one before it", v);
			return -1;
		}
		b->seconds[b->n] = v;
		b->ns[b->n] = seconds_to_ns(v);
		b->n++;
		p = *end ? end + 1 : end;
		if (*end && !*p) {
			snprintf(err, errsz, "'%s' ends with a comma", text);
			return -1;
		}
	}
	if (!b->n) {
		snprintf(err, errsz, "no buckets given");
		return -1;
	}
	return 0;
}

size_t histogram_size(const struct histogram_bounds *b)
{
	return sizeof(struct histogram) + (b->n + 1) * sizeof(uint64_t);
}

void histogram_observe(struct histogram *h, const struct histogram_bounds *b,
		       uint64_t ns)
{
	size_t i = 0;

	/* First bound >= ns; b->n when above all of them. From the lowest
	 * up: most durations fall in the first buckets, where this takes a
	 * comparison or two whose outcome the CPU guesses right, where a
	 * bisection takes four of each. */
	while (i < b->n && b->ns[i] < ns)
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum_ns += ns;
}

uint64_t histogram_cumulative(const struct histogram *h, size_t i)
{
	uint64_t total = 0;

	for (size_t j = 0; j <= i; j++)
		total += h->buckets[j];
	return total;
}
