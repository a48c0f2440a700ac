#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "export/scrape.h"
#include "metrics/self.h"
#include "util/clock.h"

struct scrape_body {
	void (*render)(struct strbuf *sb); /* which format it is */
	unsigned refs;
	uint64_t made_ns;
	char *text;
	size_t len;
	char *gz; /* made on the first gzip scrape */
	size_t gz_len;
	bool gz_failed;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The newest rendering of each format, while any scrape still holds it:
 * the last to let it go frees it, so an idle sonde keeps no body. */
static struct scrape_body *newest[SCRAPE_FORMATS];
static unsigned alive;
/* The last body's length: the next one is given room for it at once. */
static size_t last_len;
/* For sonde's own metrics: renderings made and their time (wall clock,
 * ns), per format slot, and scrapes served one made for another. Read
 * without the lock (a render reads them, under it). */
static uint64_t renders[SCRAPE_FORMATS], render_ns[SCRAPE_FORMATS];
static uint64_t shared;

char *scrape_gzip(const char *in, size_t n, size_t *out_len)
{
	/* libdeflate, level 1: the whole body is in memory, and it makes
	 * the gzip in about two thirds of zlib's time at level 1 (10k
	 * series, 33 MB: 39 ms against 60), to the same size within 2%. */
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
	size_t cap, len;
	char *out;

	if (!c)
		return NULL;
	cap = libdeflate_gzip_compress_bound(c, n);
	out = malloc(cap);
	len = out ? libdeflate_gzip_compress(c, in, n, out, cap) : 0;
	libdeflate_free_compressor(c);
	if (!len) {
		free(out);
		return NULL;
	}
	*out_len = len;
	return out;
}

static void body_free(struct scrape_body *b)
{
	for (int i = 0; i < SCRAPE_FORMATS; i++)
		if (newest[i] == b)
			newest[i] = NULL;
	free(b->text);
	free(b->gz);
	free(b);
	alive--;
}

/* Drops one reference; under the lock. */
static void body_put(struct scrape_body *b)
{
	if (--b->refs == 0)
		body_free(b);
}

static struct scrape_body *render_body(void (*render)(struct strbuf *sb),
				       uint64_t now, enum scrape_format format)
{
	struct scrape_body *b = calloc(1, sizeof(*b));
	struct strbuf sb = { 0 };

	if (!b)
		return NULL;
	strbuf_reserve(&sb, last_len + last_len / 8 + 4096);
	render(&sb);
	if (sb.failed) {
		strbuf_release(&sb);
		free(b);
		return NULL;
	}
	b->text = strbuf_detach(&sb, &b->len);
	__atomic_add_fetch(&renders[format], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&render_ns[format], clock_monotonic_ns() - now,
			   __ATOMIC_RELAXED);
	b->made_ns = now;
	b->render = render;
	last_len = b->len;
	alive++;
	return b;
}

struct scrape_body *scrape_take(enum scrape_format format,
				void (*render)(struct strbuf *sb))
{
	uint64_t now = clock_monotonic_ns();
	struct scrape_body *b, *made;

	pthread_mutex_lock(&lock);
	b = newest[format];
	if (!b ||
	    (now - b->made_ns > SCRAPE_FRESH_MS * 1000000ULL &&
	     alive < SCRAPE_MAX_BODIES) ||
	    now - b->made_ns > SCRAPE_STALE_MAX_MS * 1000000ULL) {
		made = render_body(render, now, format);
		if (made)
			newest[format] = made;
		b = made ? made : b;
	} else {
		__atomic_add_fetch(&shared, 1, __ATOMIC_RELAXED);
	}
	if (b)
		b->refs++;
	pthread_mutex_unlock(&lock);
	return b;
}

const char *scrape_data(struct scrape_body *b, bool gzip, size_t *len,
			bool *gzipped)
{
	pthread_mutex_lock(&lock);
	if (gzip && !b->gz && !b->gz_failed) {
		b->gz = scrape_gzip(b->text ? b->text : "", b->len, &b->gz_len);
		b->gz_failed = !b->gz;
	}
	pthread_mutex_unlock(&lock);
	*gzipped = gzip && b->gz;
	*len = *gzipped ? b->gz_len : b->len;
	return *gzipped ? b->gz : b->text ? b->text : "";
}

void scrape_release(struct scrape_body *b)
{
	pthread_mutex_lock(&lock);
	body_put(b);
	pthread_mutex_unlock(&lock);
}

unsigned scrape_bodies_alive(void)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = alive;
	pthread_mutex_unlock(&lock);
	return n;
}

void scrape_reset(void)
{
	pthread_mutex_lock(&lock);
	memset(newest, 0, sizeof(newest));
	pthread_mutex_unlock(&lock);
}

static const char *const format_names[SCRAPE_FORMATS] = {
	[SCRAPE_TEXT] = "text",
	[SCRAPE_PROTOBUF] = "protobuf",
};

static void collect_renders(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	for (int i = 0; i < SCRAPE_FORMATS; i++)
		self_emit_u64(sink, &format_names[i],
			      __atomic_load_n(&renders[i], __ATOMIC_RELAXED));
}

static void collect_render_time(const struct self_metric *m,
				struct self_sink *sink)
{
	(void)m;
	for (int i = 0; i < SCRAPE_FORMATS; i++)
		self_emit_double(
			sink, &format_names[i],
			__atomic_load_n(&render_ns[i], __ATOMIC_RELAXED) / 1e9);
}

static void collect_shared(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	self_emit_u64(sink, NULL, __atomic_load_n(&shared, __ATOMIC_RELAXED));
}

static const struct self_metric renders_metric = {
	.name = "sonde_scrape_renders_total",
	.otel_name = "sonde.scrape.renders",
	.unit = "{rendering}",
	.help = "Renderings of /metrics made, by format; scrapes that come "
		"together share one.",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "format" },
	.otel_labels = { "sonde.scrape.format" },
	.collect = collect_renders,
};

static const struct self_metric render_time_metric = {
	.name = "sonde_scrape_render_seconds_total",
	.otel_name = "sonde.scrape.render_time",
	.unit = "s",
	.help = "Time spent rendering /metrics (gzip not included), by "
		"format.",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "format" },
	.otel_labels = { "sonde.scrape.format" },
	.collect = collect_render_time,
};

static const struct self_metric shared_metric = {
	.name = "sonde_scrape_shared_total",
	.otel_name = "sonde.scrape.shared",
	.unit = "{scrape}",
	.help = "Scrapes served a rendering made for an earlier one.",
	.kind = SELF_COUNTER,
	.collect = collect_shared,
};

void scrape_register_metrics(void)
{
	self_register(&renders_metric);
	self_register(&render_time_metric);
	self_register(&shared_metric);
}
