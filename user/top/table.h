/* What `sonde top` shows: rows of rate, errors and latency quantiles over
 * the interval between two reads, grouped per service and kind of call,
 * or within one service per operation and peer, or per status. Pure
 * functions of the two snapshots. */
#ifndef SONDE_TOP_TABLE_H
#define SONDE_TOP_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "top/snapshot.h"

enum top_group {
	TOP_BY_SERVICE,	  /* one row per service and kind */
	TOP_BY_OPERATION, /* per kind, operation and peer */
	TOP_BY_STATUS,	  /* per kind and status code */
};

/* In the order of the columns shown: '<' and '>' step through them. */
enum top_sort {
	TOP_SORT_NAME,
	TOP_SORT_RATE,
	TOP_SORT_ERRORS,
	TOP_SORT_P50,
	TOP_SORT_P95,
	TOP_SORT_P99,
	TOP_SORT_CONNS,
	TOP_SORT_KIND,
	TOP_NSORTS,
};

struct top_row {
	char *service;
	enum top_kind kind;
	char *op;	 /* TOP_BY_OPERATION: the operation; else "" */
	char *peer;	 /* TOP_BY_OPERATION: the peer; else "" */
	char *status;	 /* TOP_BY_STATUS: the status code; else "" */
	double requests; /* in the interval */
	double errors;
	double rate;	      /* requests per second */
	double error_ratio;   /* 0 to 1; 0 without requests */
	double p50, p95, p99; /* seconds; NaN without requests */
	double conns;	      /* TOP_BY_SERVICE: active connections */
	int nbuckets;
	double bound[TOP_MAX_BUCKETS];
	double delta[TOP_MAX_BUCKETS]; /* cumulative, over the interval */
};

struct top_table {
	struct top_row *rows;
	size_t n, cap;
};

/* Builds the rows of cur against prev (NULL: cur's counts are all new)
 * over seconds, grouped by group; service (NULL: all) keeps one
 * service's rows. A series whose counts went down (sonde restarted, or
 * the series expired and came back) counts from zero. Returns 0, or -1
 * when out of memory (t is then released). */
int top_table_build(struct top_table *t, const struct top_snapshot *prev,
		    const struct top_snapshot *cur, double seconds,
		    enum top_group group, const char *service);

/* Sorts: figures highest first (rows without requests last), name and
 * kind A to Z; ties by name. */
void top_table_sort(struct top_table *t, enum top_sort by);

void top_table_release(struct top_table *t);

/* What a series gained from prev to cur: its count and cumulative
 * buckets into *count and cum (cur->nbuckets of them). Everything of cur
 * when prev is NULL or any count went down (a reset). */
void top_series_delta(const struct top_series *prev,
		      const struct top_series *cur, double *count, double *cum);

/* The q-quantile (0 < q < 1) of observations counted in cumulative
 * buckets cum[] under upper bounds bound[] (the last +Inf), interpolated
 * linearly inside its bucket as Prometheus's histogram_quantile does; the
 * largest finite bound when it falls in +Inf. NaN when there are none. */
double top_quantile(const double *bound, const double *cum, int n, double q);

#endif
