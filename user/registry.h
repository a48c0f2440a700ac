/* The series registry: every measured exchange lands in one histogram,
 * chosen by its labels. Keeps the label set bounded: each service has a cap
 * on distinct routes (further routes share ROUTE_OVERFLOW), and the
 * registry a cap on series (further observations are dropped and counted).
 * Thread-safe: the event consumer observes, the HTTP server renders. */
#ifndef SONDE_REGISTRY_H
#define SONDE_REGISTRY_H

#include <stdint.h>

#include "histogram.h"
#include "http1.h"
#include "strbuf.h"

/* Route of the series beyond a service's cap, and of requests whose target
 * is not a usable path. */
#define ROUTE_OVERFLOW "_overflow"
#define ROUTE_UNKNOWN "_unknown"

struct registry_limits {
	unsigned max_routes_per_service;
	unsigned max_series;
};

struct http_server_observation {
	const char *service;
	const char *route; /* a template from route_template() */
	enum http_method method;
	int status;
	uint16_t port;
	uint64_t duration_ns;
};

/* Sets the buckets and limits; call once before anything else. The bounds
 * are copied. */
void registry_init(const struct histogram_bounds *bounds,
		   const struct registry_limits *limits);

/* Records one exchange. Returns 0, or -1 when it could not be stored (the
 * series cap was reached, or memory ran out); such losses are counted, see
 * registry_dropped(). */
int registry_observe_http_server(const struct http_server_observation *o);

/* Appends the HTTP histograms and the registry's own metrics (live series,
 * route overflows) in the exposition format. */
void registry_render(struct strbuf *sb);

/* Exchanges that could not be stored since start. */
uint64_t registry_dropped(void);

/* Live series. */
unsigned registry_series_count(void);

/* Frees every series. */
void registry_free(void);

#endif
