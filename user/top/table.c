#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "top/table.h"
#include "util/strbuf.h"

void top_series_delta(const struct top_series *prev,
		      const struct top_series *cur, double *count, double *cum)
{
	bool reset = !prev || prev->nbuckets != cur->nbuckets ||
		     cur->count < prev->count;

	for (int i = 0; !reset && i < cur->nbuckets; i++)
		reset = cur->cum[i] < prev->cum[i];
	*count = reset ? cur->count : cur->count - prev->count;
	for (int i = 0; i < cur->nbuckets; i++)
		cum[i] = reset ? cur->cum[i] : cur->cum[i] - prev->cum[i];
}

double top_quantile(const double *bound, const double *cum, int n, double q)
{
	double total, rank, below, lower;

	if (n < 2 || !(cum[n - 1] > 0))
		return NAN;
	total = cum[n - 1];
	rank = q * total;
	for (int i = 0; i < n; i++) {
		if (cum[i] < rank)
			continue;
		if (isinf(bound[i]))
			return bound[n - 2];
		below = i ? cum[i - 1] : 0;
		lower = i ? bound[i - 1] : 0;
		if (lower > bound[i])
			lower = bound[i];
		if (cum[i] == below)
			return bound[i];
		return lower +
		       (bound[i] - lower) * (rank - below) / (cum[i] - below);
	}
	return bound[n - 2];
}

static char *group_key(const struct top_series *s, enum top_group group)
{
	struct strbuf key = { 0 };

	switch (group) {
	case TOP_BY_SERVICE:
		strbuf_printf(&key, "%s\x1f%d", s->service, s->kind);
		break;
	case TOP_BY_OPERATION:
		strbuf_printf(&key, "%s\x1f%d\x1f%s\x1f%s", s->service, s->kind,
			      s->op, s->peer);
		break;
	case TOP_BY_STATUS:
		strbuf_printf(&key, "%s\x1f%d\x1f%s", s->service, s->kind,
			      s->status);
		break;
	}
	if (key.failed) {
		strbuf_release(&key);
		return NULL;
	}
	return strbuf_detach(&key, NULL);
}

static void row_free(struct top_row *r)
{
	free(r->service);
	free(r->op);
	free(r->peer);
	free(r->status);
}

static struct top_row *row_new(struct top_table *t, const struct top_series *s,
			       enum top_group group)
{
	struct top_row *r;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		struct top_row *grown = realloc(t->rows, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		t->rows = grown;
		t->cap = cap;
	}
	r = &t->rows[t->n];
	memset(r, 0, sizeof(*r));
	r->kind = s->kind;
	r->service = strdup(s->service);
	r->op = strdup(group == TOP_BY_OPERATION ? s->op : "");
	r->peer = strdup(group == TOP_BY_OPERATION ? s->peer : "");
	r->status = strdup(group == TOP_BY_STATUS ? s->status : "");
	if (!r->service || !r->op || !r->peer || !r->status) {
		row_free(r);
		return NULL;
	}
	r->nbuckets = s->nbuckets;
	memcpy(r->bound, s->bound, sizeof(r->bound));
	t->n++;
	return r;
}

static void row_add(struct top_row *r, const struct top_series *prev,
		    const struct top_series *cur)
{
	double count, cum[TOP_MAX_BUCKETS];

	top_series_delta(prev, cur, &count, cum);
	r->requests += count;
	if (cur->error)
		r->errors += count;
	/* Series of one family share their bounds; one that does not
	 * still counts, outside the quantiles. */
	if (cur->nbuckets != r->nbuckets ||
	    memcmp(cur->bound, r->bound, cur->nbuckets * sizeof(double)))
		return;
	for (int i = 0; i < cur->nbuckets; i++)
		r->delta[i] += cum[i];
}

static void row_finish(struct top_row *r, const struct top_snapshot *cur,
		       double seconds, enum top_group group)
{
	r->rate = seconds > 0 ? r->requests / seconds : 0;
	r->error_ratio = r->requests > 0 ? r->errors / r->requests : 0;
	r->p50 = top_quantile(r->bound, r->delta, r->nbuckets, 0.50);
	r->p95 = top_quantile(r->bound, r->delta, r->nbuckets, 0.95);
	r->p99 = top_quantile(r->bound, r->delta, r->nbuckets, 0.99);
	if (group == TOP_BY_SERVICE)
		r->conns = top_snapshot_conns(
			cur, r->service,
			top_kind_serves(r->kind) ? "server" : "client");
}

int top_table_build(struct top_table *t, const struct top_snapshot *prev,
		    const struct top_snapshot *cur, double seconds,
		    enum top_group group, const char *service)
{
	struct strmap rows = { 0 };
	int rc = -1;

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < cur->nseries; i++) {
		const struct top_series *s = cur->series[i];
		const struct top_series *p =
			prev ? strmap_get(&prev->by_key, s->key) : NULL;
		struct top_row *r;
		char *key;
		uintptr_t at;

		if (service && strcmp(service, s->service) != 0)
			continue;
		key = group_key(s, group);
		if (!key)
			goto out;
		at = (uintptr_t)strmap_get(&rows, key);
		if (!at) {
			r = row_new(t, s, group);
			if (!r ||
			    !strmap_put(&rows, key, (void *)(uintptr_t)t->n)) {
				free(key);
				goto out;
			}
			at = t->n;
		}
		free(key);
		row_add(&t->rows[at - 1], p, s);
	}
	for (size_t i = 0; i < t->n; i++)
		row_finish(&t->rows[i], cur, seconds, group);
	rc = 0;
out:
	strmap_clear(&rows);
	if (rc)
		top_table_release(t);
	return rc;
}

static int by_name(const struct top_row *a, const struct top_row *b)
{
	int c = strcmp(a->service, b->service);

	if (c)
		return c;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	c = strcmp(a->op, b->op);
	if (c)
		return c;
	c = strcmp(a->peer, b->peer);
	return c ? c : strcmp(a->status, b->status);
}

/* Highest first; NaN (no requests) last. */
static int by_value(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b);
	return a > b ? -1 : a < b ? 1 : 0;
}

static enum top_sort sort_key;

static int compare_rows(const void *pa, const void *pb)
{
	const struct top_row *a = pa, *b = pb;
	int c = 0;

	switch (sort_key) {
	case TOP_SORT_RATE:
		c = by_value(a->rate, b->rate);
		break;
	case TOP_SORT_P50:
		c = by_value(a->p50, b->p50);
		break;
	case TOP_SORT_P95:
		c = by_value(a->p95, b->p95);
		break;
	case TOP_SORT_P99:
		c = by_value(a->p99, b->p99);
		break;
	case TOP_SORT_ERRORS:
		c = by_value(a->error_ratio, b->error_ratio);
		if (!c)
			c = by_value(a->errors, b->errors);
		break;
	case TOP_SORT_CONNS:
		c = by_value(a->conns, b->conns);
		break;
	case TOP_SORT_KIND:
		c = strcmp(top_kind_name(a->kind), top_kind_name(b->kind));
		break;
	default:
		break;
	}
	return c ? c : by_name(a, b);
}

void top_table_sort(struct top_table *t, enum top_sort by)
{
	if (t->n < 2)
		return;
	sort_key = by;
	qsort(t->rows, t->n, sizeof(*t->rows), compare_rows);
}

void top_table_release(struct top_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		row_free(&t->rows[i]);
	free(t->rows);
	memset(t, 0, sizeof(*t));
}
