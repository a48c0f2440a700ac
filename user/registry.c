#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "registry.h"
#include "strmap.h"

struct service {
	struct strmap routes; /* route -> (void *)1 */
	unsigned nroutes;     /* distinct routes, fixed ones excepted */
	uint64_t overflows;   /* observations put under ROUTE_OVERFLOW */
	const char *name;     /* owned by the services map */
};

struct series {
	const char *service; /* owned by the services map */
	const char *route;   /* owned by the service's route map */
	enum http_method method;
	int status;
	uint16_t port;
	struct histogram hist; /* last: flexible bucket array */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct histogram_bounds bounds;
static struct registry_limits limits;
static struct strmap services; /* name -> struct service */
static struct strmap series_by_key;
/* Series in creation order, so the exposition is stable between scrapes. */
static struct series **series;
static unsigned nseries, series_cap;
static uint64_t dropped_series_limit;

void registry_init(const struct histogram_bounds *b,
		   const struct registry_limits *l)
{
	bounds = *b;
	limits = *l;
}

static struct service *service_get(const char *name)
{
	struct service *svc = strmap_get(&services, name);

	if (svc)
		return svc;
	svc = calloc(1, sizeof(*svc));
	if (!svc)
		return NULL;
	svc->name = strmap_put(&services, name, svc);
	if (!svc->name) {
		free(svc);
		return NULL;
	}
	return svc;
}

/* The route the observation is filed under, interned in the service. The
 * two fixed routes do not count against the cap. */
static const char *service_route(struct service *svc, const char *route)
{
	bool fixed = strcmp(route, ROUTE_UNKNOWN) == 0 ||
		     strcmp(route, ROUTE_OVERFLOW) == 0;

	if (!fixed && !strmap_get(&svc->routes, route)) {
		if (svc->nroutes >= limits.max_routes_per_service) {
			svc->overflows++;
			route = ROUTE_OVERFLOW;
		} else if (strmap_put(&svc->routes, route, (void *)1)) {
			svc->nroutes++;
		}
	}
	return strmap_put(&svc->routes, route, (void *)1);
}

static struct series *series_create(const char *key, struct service *svc,
				    const char *route,
				    const struct http_server_observation *o)
{
	struct series *s, **grown;

	if (nseries == series_cap) {
		unsigned cap = series_cap ? series_cap * 2 : 64;

		grown = realloc(series, cap * sizeof(*series));
		if (!grown)
			return NULL;
		series = grown;
		series_cap = cap;
	}
	s = calloc(1, sizeof(*s) + histogram_size(&bounds) -
			      sizeof(struct histogram));
	if (!s)
		return NULL;
	if (!strmap_put(&series_by_key, key, s)) {
		free(s);
		return NULL;
	}
	s->service = svc->name;
	s->route = route;
	s->method = o->method;
	s->status = o->status;
	s->port = o->port;
	series[nseries++] = s;
	return s;
}

static struct series *
series_find_or_create(const struct http_server_observation *o)
{
	char key[512];
	struct service *svc;
	const char *route;
	struct series *s;

	svc = service_get(o->service);
	if (!svc)
		return NULL;
	route = service_route(svc, o->route);
	if (!route)
		return NULL;
	snprintf(key, sizeof(key), "%s\x1f%d\x1f%d\x1f%u\x1f%s", svc->name,
		 o->method, o->status, o->port, route);
	s = strmap_get(&series_by_key, key);
	if (s)
		return s;
	if (nseries >= limits.max_series)
		return NULL;
	return series_create(key, svc, route, o);
}

int registry_observe_http_server(const struct http_server_observation *o)
{
	struct series *s;

	pthread_mutex_lock(&lock);
	s = series_find_or_create(o);
	if (s)
		histogram_observe(&s->hist, &bounds, o->duration_ns);
	else
		dropped_series_limit++;
	pthread_mutex_unlock(&lock);
	return s ? 0 : -1;
}

static void render_http_server(struct strbuf *sb)
{
	char status[8], port[8];

	if (!nseries)
		return;
	prom_write_family(sb, "http_server_request_duration_seconds",
			  "histogram",
			  "Duration of HTTP server requests, from the first "
			  "request bytes read to the response head written.");
	for (unsigned i = 0; i < nseries; i++) {
		const struct series *s = series[i];
		struct prom_label labels[] = {
			{ "service_name", s->service },
			{ "http_request_method", http1_method_name(s->method) },
			{ "http_response_status_code", status },
			{ "http_route", s->route },
			{ "server_port", port },
		};

		snprintf(status, sizeof(status), "%d", s->status);
		snprintf(port, sizeof(port), "%u", s->port);
		prom_write_histogram(sb, "http_server_request_duration_seconds",
				     labels, 5, &s->hist, &bounds);
	}
}

static void render_service_overflows(const char *name, void *value, void *arg)
{
	const struct service *svc = value;
	struct prom_label label = { "service_name", name };

	prom_write_u64(arg, "sonde_route_overflows_total", &label, 1,
		       svc->overflows);
}

void registry_render(struct strbuf *sb)
{
	pthread_mutex_lock(&lock);
	render_http_server(sb);
	prom_write_family(sb, "sonde_series", "gauge",
			  "Live series across all sonde histograms.");
	prom_write_u64(sb, "sonde_series", NULL, 0, nseries);
	prom_write_family(sb, "sonde_route_overflows_total", "counter",
			  "Requests filed under http_route=\"" ROUTE_OVERFLOW
			  "\" because their service reached its route cap.");
	strmap_each(&services, render_service_overflows, sb);
	pthread_mutex_unlock(&lock);
}

uint64_t registry_dropped(void)
{
	uint64_t n;

	pthread_mutex_lock(&lock);
	n = dropped_series_limit;
	pthread_mutex_unlock(&lock);
	return n;
}

unsigned registry_series_count(void)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = nseries;
	pthread_mutex_unlock(&lock);
	return n;
}

static void free_service(const char *name, void *value, void *arg)
{
	struct service *svc = value;

	(void)name;
	(void)arg;
	strmap_clear(&svc->routes);
	free(svc);
}

void registry_free(void)
{
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < nseries; i++)
		free(series[i]);
	free(series);
	series = NULL;
	nseries = series_cap = 0;
	strmap_clear(&series_by_key);
	strmap_each(&services, free_service, NULL);
	strmap_clear(&services);
	pthread_mutex_unlock(&lock);
}
