/* The series registry: every measurement lands in one series of a metric
 * family (see families.h), chosen by its label values. Keeps the label set
 * bounded: each service has a cap on the distinct values of a family's
 * capped label (routes, peer addresses; further values share
 * REGISTRY_OVERFLOW), and the registry a cap on series (further
 * observations are dropped and counted).
 * Thread-safe: the event consumer observes, the HTTP server renders and
 * exporters walk the series under the same lock, without doing I/O. */
#ifndef SONDE_REGISTRY_H
#define SONDE_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics/exphist.h"
#include "metrics/histogram.h"

/* The value a capped label takes beyond its service's cap, the route of
 * requests whose target is not a usable path, and the rpc_method of calls
 * whose path names no method. None counts against the cap. */
#define REGISTRY_OVERFLOW "_overflow"
#define ROUTE_OVERFLOW REGISTRY_OVERFLOW
#define ROUTE_UNKNOWN "_unknown"
#define METHOD_OTHER "_OTHER"

#define REGISTRY_MAX_LABELS 12
/* Gauge holds (registry_gauge_hold) at once: one per live connection. */
#define REGISTRY_MAX_HOLDS 65536

enum metric_kind {
	METRIC_HISTOGRAM, /* durations in ns, written in seconds */
	METRIC_COUNTER,	  /* monotonic sum */
	METRIC_GAUGE,	  /* up-down count (the OTLP non-monotonic sum) */
};

/* What a capped label's distinct values are counted against. */
enum registry_cap {
	REGISTRY_CAP_NONE,
	REGISTRY_CAP_ROUTE, /* --max-routes per service */
	REGISTRY_CAP_PEER,  /* --max-peers per service */
	REGISTRY_CAP_COUNT,
};

/* A metric family: its names in both worlds and its label names. Label 0
 * is always service_name. Families are defined in families.c; the label
 * lists may be extended at start-up, before the first observation. */
struct metric_family {
	const char *name;      /* Prometheus name, unit suffix included */
	const char *otel_name; /* OTLP instrument name */
	const char *unit;      /* UCUM unit for OTLP: "s", "{connection}" */
	const char *help;
	enum metric_kind kind;
	unsigned nlabels;
	const char *labels[REGISTRY_MAX_LABELS];      /* Prometheus names */
	const char *otel_labels[REGISTRY_MAX_LABELS]; /* OTLP attribute keys */
	int capped_label; /* index into labels, or -1 */
	enum registry_cap cap;
	/* METRIC_HISTOGRAM: its bucket bounds, not copied (a static that
	 * outlives the registry), set before its first observation. NULL:
	 * the registry's (registry_bounds()). */
	const struct histogram_bounds *bounds;
	/* Spans (trace/trace.h): a family whose observations are requests or
	 * calls makes one span each, of this kind (trace.proto's SpanKind:
	 * 2 SERVER, 3 CLIENT; 0: no spans). The span's name is the value of
	 * label span_name[0], then " " and that of span_name[1] when it has
	 * one (indexes into labels; 0: none). */
	unsigned span_kind;
	unsigned span_name[2];
};

struct registry_limits {
	unsigned max_routes_per_service;
	unsigned max_peers_per_service;
	unsigned max_series;
};

/* A series as exporters see it, valid only inside the walk callback. */
struct registry_series {
	/* Unique for the registry's lifetime, increasing in walk order: a
	 * series that expires and comes back gets a new one. */
	uint64_t id;
	const struct metric_family *family;
	const char *const *values;    /* family->nlabels label values */
	uint64_t start_unix_ns;	      /* first observation, wall clock */
	uint64_t last_unix_ns;	      /* latest observation, wall clock */
	const struct histogram *hist; /* METRIC_HISTOGRAM */
	const struct exphist *exp;    /* METRIC_HISTOGRAM, when enabled */
	uint64_t counter;	      /* METRIC_COUNTER */
	int64_t gauge;		      /* METRIC_GAUGE */
	/* hist's bounds: registry_family_bounds(family) when the series
	 * was made. */
	const struct histogram_bounds *bounds;
};

/* Sets the buckets of every histogram family without bounds of its own,
 * and the limits; call once before anything else. The bounds are
 * copied. */
void registry_init(const struct histogram_bounds *bounds,
		   const struct registry_limits *limits);

/* Also records every histogram observation in a base-2 exponential
 * histogram per series (for OTLP). Call after registry_init, before the
 * first observation. */
void registry_enable_exphist(void);

/* The histogram bounds of every histogram family whose bounds are NULL. */
const struct histogram_bounds *registry_bounds(void);

/* The bounds f's series are kept and written with: f->bounds, or
 * registry_bounds() when NULL. Never NULL; cannot fail. */
const struct histogram_bounds *
registry_family_bounds(const struct metric_family *f);

/* Records a duration in a histogram family's series. values holds
 * f->nlabels strings (copied). Returns 0, or -1 when it could not be stored
 * (the series cap was reached, or memory ran out); such losses are counted,
 * see registry_dropped(). */
int registry_observe(const struct metric_family *f, const char *const *values,
		     uint64_t duration_ns);

/* A series found once by its labels, to be observed again without them
 * (the dispatcher keeps one per request head it has seen). Opaque. */
struct registry_ref {
	void *series;
	uint64_t epoch; /* series freed since make it stale */
};

/* registry_observe, which also sets *ref (when not NULL) for
 * registry_observe_at: to the series, when observations of the same
 * values may go to it directly; to none when capping filed the values
 * under REGISTRY_OVERFLOW (each must be counted there) or nothing was
 * stored. */
int registry_observe_ref(const struct metric_family *f,
			 const char *const *values, uint64_t duration_ns,
			 struct registry_ref *ref);

/* Records a duration in ref's series, as registry_observe would under
 * the values ref was taken for. Returns 0, or -1 (nothing recorded) when
 * ref holds no series or series were freed since it was taken (expired,
 * or the registry freed): observe by the labels then.
 *
 * Called on one thread only, the one that calls registry_expire (the
 * consumer's). The observation waits, with up to 255 others, to be
 * filed under one taking of the lock: at registry_flush, when the
 * waiting room is full, or when that thread next walks or expires the
 * series. Other threads see it once filed. */
int registry_observe_at(const struct registry_ref *ref, uint64_t duration_ns);

/* Observations made elsewhere and counted together (the calls the BPF
 * side sums, kernel/dbsums.h): count of them, their durations' sum, and
 * how many fell in each bucket of bounds (bounds->n + 1 counts, per
 * bucket, not cumulative). */
struct registry_merge {
	uint64_t count, sum_ns;
	const uint64_t *buckets;
	const struct histogram_bounds *bounds;
};
/* Adds m to a histogram family's series, as registry_observe_ref does
 * one observation (an overflow of a capped label counts m->count). The
 * series' bounds must be m's, and no exponential histogram kept:
 * otherwise nothing is added and m->count are counted dropped. */
int registry_merge_ref(const struct metric_family *f, const char *const *values,
		       const struct registry_merge *m,
		       struct registry_ref *ref);
/* registry_merge_ref into ref's series, as registry_observe_at. Filed at
 * once, under the lock: merges are few. Same thread as
 * registry_observe_at. */
int registry_merge_at(const struct registry_ref *ref,
		      const struct registry_merge *m);
/* Files the observations registry_observe_at keeps waiting. On the
 * thread that made them; the dispatcher calls it at the end of each
 * round of reading the rings. */
void registry_flush(void);

/* Adds n to a counter family's series. Same contract as registry_observe. */
int registry_add(const struct metric_family *f, const char *const *values,
		 uint64_t n);

/* Adds delta (possibly negative) to a gauge family's series. Same contract
 * as registry_observe. */
int registry_gauge_add(const struct metric_family *f, const char *const *values,
		       int64_t delta);

/* Raises a gauge family's series by one on behalf of id (a connection)
 * until registry_gauge_release(id) lowers that same series again, even
 * when its label values could no longer be worked out by then. A hold
 * for an id already held under the same series changes nothing; under
 * another, it moves there. Beyond REGISTRY_MAX_HOLDS ids, a new one is
 * not counted at all (returns 0), so the gauge cannot drift upwards.
 * Returns -1 when the series could not be stored (counted as dropped;
 * any earlier hold of id is released). A held series never expires. */
int registry_gauge_hold(const struct metric_family *f,
			const char *const *values, uint64_t id);

/* Lowers the series id holds, and forgets the hold; nothing when id holds
 * none. */
void registry_gauge_release(uint64_t id);

/* Ids holding a gauge now. */
unsigned registry_holds(void);

/* Calls fn for every series, in creation order, holding the registry lock:
 * fn must be quick and must not call back into the registry. */
void registry_walk(void (*fn)(const struct registry_series *s, void *arg),
		   void *arg);

/* As registry_walk, family by family: calls family for every family with
 * series, in the order its first series was created, then each for every
 * series of it, in creation order. A family whose series all expired is
 * not visited. Same rules as registry_walk. */
void registry_walk_families(
	void (*family)(const struct metric_family *f, void *arg),
	void (*each)(const struct registry_series *s, void *arg), void *arg);

/* Registers the registry's own metrics (metrics/self.h): sonde_series,
 * sonde_route_overflows_total and sonde_peer_overflows_total per service,
 * and sonde_label_overflows_total per captured header when a label is
 * capped. Call once at start-up, after registry_cap_label. */
void registry_register_metrics(void);

/* Caps the distinct values of label index label of family f at
 * max_values across all services; further values are filed under
 * REGISTRY_OVERFLOW and counted in sonde_label_overflows_total. The empty
 * value (label absent) does not count. Call at start-up, before the first
 * observation; at most 8 such caps. */
void registry_cap_label(const struct metric_family *f, unsigned label,
			unsigned max_values);

/* Removes every series whose latest observation is older than ttl_ns at
 * now_unix_ns (wall clock), except gauges holding a non-zero value (live
 * connections). Their capped label values are released, so a route or
 * tenant that went away frees its place under the cap. Returns how many
 * series were removed. */
unsigned registry_expire(uint64_t now_unix_ns, uint64_t ttl_ns);

/* Observations that could not be stored since start. */
uint64_t registry_dropped(void);

/* Live series. */
unsigned registry_series_count(void);

/* Frees every series. */
void registry_free(void);

#endif
