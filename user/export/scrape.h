/* What a /metrics scrape is served. Scrapes that arrive together share
 * one rendering (and one gzip of it) instead of each rendering its own:
 * a rendering is reused by every scrape that arrives within
 * SCRAPE_FRESH_MS of its making while it is still being sent, and at
 * most SCRAPE_MAX_BODIES renderings exist at once (slow
 * readers still sending older ones), so memory does not grow with the
 * number of scrapers. Renderings are reference counted and freed by the
 * last scrape that sends one; thread-safe, one render at a time. */
#ifndef SONDE_EXPORT_SCRAPE_H
#define SONDE_EXPORT_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

/* A rendering is reused for this long: scrapers that come together
 * (Prometheus replicas, several dashboards) share it, and none sees
 * figures older than this unless the cap below holds. */
#define SCRAPE_FRESH_MS 250
/* Renderings alive at once; with this many still being sent, a scrape
 * gets the newest of them, unless it is older than SCRAPE_STALE_MAX_MS:
 * readers that trickle can hold renderings for up to 30 s each
 * (export/httpd.c), and a scrape never gets figures older than this.
 * Memory then holds at most 3 renderings plus one per 10 s of the
 * longest such hold: 6 at worst. */
#define SCRAPE_MAX_BODIES 3
#define SCRAPE_STALE_MAX_MS 10000

struct scrape_body;

enum scrape_format {
	SCRAPE_TEXT,	 /* Prometheus text 0.0.4 */
	SCRAPE_PROTOBUF, /* delimited MetricFamily messages */
	SCRAPE_FORMATS,
};

/* A rendering in format for a scrape arriving now, made by render (the
 * same one for a format every time) when none is fresh, with a reference
 * the caller gives back with scrape_release. NULL when out of memory. */
struct scrape_body *scrape_take(enum scrape_format format,
				void (*render)(struct strbuf *sb));

/* The rendering's text, or its gzip (made once, on the first ask) when
 * gzip is set and compression works; *gzipped says which. */
const char *scrape_data(struct scrape_body *b, bool gzip, size_t *len,
			bool *gzipped);

void scrape_release(struct scrape_body *b);

/* Renderings alive now (for tests and self-metrics). */
unsigned scrape_bodies_alive(void);

/* Forgets the newest rendering (at shutdown): the next scrape renders
 * afresh; scrapes in flight keep theirs. */
void scrape_reset(void);

/* Registers sonde_scrape_renders_total, sonde_scrape_render_seconds_total
 * and sonde_scrape_shared_total (metrics/self.h). */
void scrape_register_metrics(void);

/* gzip-compresses in[0..n) into a new buffer (free() it); NULL on
 * failure. */
char *scrape_gzip(const char *in, size_t n, size_t *out_len);

#endif
