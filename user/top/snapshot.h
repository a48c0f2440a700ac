/* One read of a sonde's /metrics, as `sonde top` needs it: the duration
 * histograms of the calls each service serves and makes, its active
 * connections, and sonde's own counts. */
#ifndef SONDE_TOP_SNAPSHOT_H
#define SONDE_TOP_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics/histogram.h"
#include "util/strmap.h"

/* Buckets a histogram may have: sonde's bounds (--buckets) and +Inf. */
#define TOP_MAX_BUCKETS (HISTOGRAM_MAX_BOUNDS + 1)

/* What kind of calls a histogram measures, by family. */
enum top_kind {
	TOP_HTTP_SERVER,
	TOP_GRPC_SERVER,
	TOP_HTTP_CLIENT,
	TOP_GRPC_CLIENT,
	TOP_DB_CLIENT,
	TOP_DB_SERVER,
	TOP_NKINDS,
};

/* One histogram series, its le label taken off. */
struct top_series {
	const char *key; /* family and labels: owned by the snapshot's map */
	enum top_kind kind;
	char *service;
	char *op;     /* "GET /users/{id}", "pkg.Svc/Method", "SELECT orders" */
	char *peer;   /* "10.0.0.5:5432" for calls made, "" for calls served */
	char *status; /* the status code as the label has it */
	bool error;   /* by the same rules as sonde's errors */
	int nbuckets;
	double bound[TOP_MAX_BUCKETS];
	double cum[TOP_MAX_BUCKETS]; /* cumulative, as exposed */
	double count;
};

struct top_snapshot {
	struct strmap by_key; /* family and labels -> struct top_series */
	struct top_series **series;
	size_t nseries, cap;
	/* Active connections per service: "service\x1frole" -> double *. */
	struct strmap conns;
	char version[64];
	bool is_sonde;	      /* sonde_build_info was there */
	double events;	      /* sonde_events_received_total */
	double drops;	      /* sonde_events_dropped_total, every reason */
	double nseries_total; /* sonde_series */
	size_t broken;	      /* lines that were no sample */
};

/* Parses body (len bytes, not NUL-terminated) into s, which must be
 * zeroed or released. Returns 0, or -1 when out of memory (s is then
 * released). */
int top_snapshot_parse(struct top_snapshot *s, const char *body, size_t len);

/* The active connections service holds in role ("server", "client"); 0
 * when none are known. */
double top_snapshot_conns(const struct top_snapshot *s, const char *service,
			  const char *role);

/* Frees what s holds and zeroes it. */
void top_snapshot_release(struct top_snapshot *s);

/* The kind's name in tables and JSON: "http-server", ... */
const char *top_kind_name(enum top_kind kind);

/* Whether kind measures calls the service serves. */
bool top_kind_serves(enum top_kind kind);

#endif
