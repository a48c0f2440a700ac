#include <math.h>
#include <string.h>

#include "metrics/exphist.h"

void exphist_init(struct exphist *h)
{
	memset(h, 0, sizeof(*h));
	h->scale = EXPHIST_MAX_SCALE;
}

/* Floor division by 2^shift, for negative indexes too. */
static int32_t shift_down(int32_t i, int32_t shift)
{
	return (int32_t)floor(ldexp((double)i, -shift));
}

int32_t exphist_index(double v, int32_t scale)
{
	int exp;
	double frac = frexp(v, &exp); /* v = frac * 2^exp, frac in [0.5, 1) */

	/* Exact powers of two sit on a bucket's (inclusive) upper bound. */
	if (frac == 0.5) {
		int64_t per_octave;

		if (scale <= 0)
			return shift_down(exp - 2, -scale);
		/* Multiplied, not shifted: exp - 1 is negative below 1. */
		per_octave = (int64_t)1 << scale;
		return (int32_t)((exp - 1) * per_octave - 1);
	}
	if (scale > 0)
		return (int32_t)ceil(log2(v) * ldexp(1.0, scale)) - 1;
	return shift_down(exp - 1, -scale);
}

void exphist_downscale(struct exphist *h, int32_t change)
{
	uint64_t merged[EXPHIST_MAX_BUCKETS] = { 0 };
	int32_t offset, last;

	if (change <= 0)
		return;
	h->scale -= change;
	if (!h->len)
		return;
	offset = shift_down(h->offset, change);
	last = shift_down(h->offset + (int32_t)h->len - 1, change);
	for (uint32_t i = 0; i < h->len; i++)
		merged[shift_down(h->offset + (int32_t)i, change) - offset] +=
			h->counts[i];
	memcpy(h->counts, merged, sizeof(merged));
	h->offset = offset;
	h->len = (uint32_t)(last - offset + 1);
}

/* Scale steps needed so that [lo, hi] fits in EXPHIST_MAX_BUCKETS. */
static int32_t change_needed(int32_t lo, int32_t hi)
{
	int32_t change = 0;

	while (hi - lo + 1 > EXPHIST_MAX_BUCKETS) {
		lo = shift_down(lo, 1);
		hi = shift_down(hi, 1);
		change++;
	}
	return change;
}

static void put(struct exphist *h, int32_t idx)
{
	if (!h->len) {
		h->offset = idx;
		h->len = 1;
	} else if (idx < h->offset) {
		uint32_t gap = (uint32_t)(h->offset - idx);

		memmove(h->counts + gap, h->counts, h->len * sizeof(uint64_t));
		memset(h->counts, 0, gap * sizeof(uint64_t));
		h->offset = idx;
		h->len += gap;
	} else if (idx >= h->offset + (int32_t)h->len) {
		h->len = (uint32_t)(idx - h->offset + 1);
	}
	h->counts[idx - h->offset]++;
}

void exphist_observe(struct exphist *h, uint64_t ns)
{
	int32_t idx, lo, hi, change;

	if (!h->count || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->count++;
	h->sum_ns += ns;
	if (!ns) {
		h->zero_count++;
		return;
	}
	idx = exphist_index((double)ns / 1e9, h->scale);
	if (h->len) {
		lo = idx < h->offset ? idx : h->offset;
		hi = h->offset + (int32_t)h->len - 1;
		hi = idx > hi ? idx : hi;
		change = change_needed(lo, hi);
		if (change) {
			exphist_downscale(h, change);
			idx = shift_down(idx, change);
		}
	}
	put(h, idx);
}

void exphist_delta(const struct exphist *cur, const struct exphist *prev,
		   struct exphist *out)
{
	struct exphist p = *prev;

	*out = *cur;
	out->min_ns = out->max_ns = 0;
	out->count -= p.count;
	out->sum_ns -= p.sum_ns;
	out->zero_count -= p.zero_count;
	/* The scale only ever goes down, so prev can be brought to cur's;
	 * every bucket prev has then lies within cur's range. */
	exphist_downscale(&p, p.scale - cur->scale);
	for (uint32_t i = 0; i < p.len; i++) {
		int32_t at = p.offset + (int32_t)i - out->offset;

		if (at >= 0 && at < (int32_t)out->len)
			out->counts[at] -= p.counts[i];
	}
	/* Only the buckets that changed, trimmed at both ends. */
	while (out->len && !out->counts[out->len - 1])
		out->len--;
	while (out->len && !out->counts[0]) {
		memmove(out->counts, out->counts + 1,
			--out->len * sizeof(uint64_t));
		out->offset++;
	}
}
