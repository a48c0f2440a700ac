#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "export/otlp.h"
#include "identity/lastseen.h"
#include "metrics/histogram.h"
#include "metrics/registry.h"
#include "metrics/self.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/strmap.h"

/* Field numbers from opentelemetry-proto v1
 * (opentelemetry/proto/{collector/metrics,metrics,common,resource}/v1). */
enum {
	REQ_RESOURCE_METRICS = 1,
	RM_RESOURCE = 1,
	RM_SCOPE_METRICS = 2,
	RESOURCE_ATTRIBUTES = 1,
	SM_SCOPE = 1,
	SM_METRICS = 2,
	SCOPE_NAME = 1,
	SCOPE_VERSION = 2,
	KV_KEY = 1,
	KV_VALUE = 2,
	ANY_STRING = 1,
	ANY_INT = 3,
	METRIC_NAME = 1,
	METRIC_DESCRIPTION = 2,
	METRIC_UNIT = 3,
	METRIC_GAUGE_F = 5,
	METRIC_SUM = 7,
	METRIC_HISTOGRAM_F = 9,
	METRIC_EXP_HISTOGRAM = 10,
	DATA_POINTS = 1, /* in Sum, Histogram and ExponentialHistogram */
	DATA_TEMPORALITY = 2,
	SUM_IS_MONOTONIC = 3,
	NDP_START = 2,
	NDP_TIME = 3,
	NDP_AS_DOUBLE = 4,
	NDP_AS_INT = 6,
	NDP_ATTRIBUTES = 7,
	HDP_START = 2,
	HDP_TIME = 3,
	HDP_COUNT = 4,
	HDP_SUM = 5,
	HDP_BUCKET_COUNTS = 6,
	HDP_EXPLICIT_BOUNDS = 7,
	HDP_ATTRIBUTES = 9,
	EDP_ATTRIBUTES = 1,
	EDP_START = 2,
	EDP_TIME = 3,
	EDP_COUNT = 4,
	EDP_SUM = 5,
	EDP_SCALE = 6,
	EDP_ZERO_COUNT = 7,
	EDP_POSITIVE = 8,
	EDP_MIN = 12,
	EDP_MAX = 13,
	BUCKETS_OFFSET = 1,
	BUCKETS_COUNTS = 2,
	RESP_PARTIAL_SUCCESS = 1,
	PS_REJECTED = 1,
	PS_ERROR_MESSAGE = 2,
};

enum { TEMPORALITY_DELTA = 1, TEMPORALITY_CUMULATIVE = 2 };

#define DEFAULT_INTERVAL_MS 60000
#define DEFAULT_TIMEOUT_MS 10000
/* A response body beyond this is not read: a partial success message is a
 * few hundred bytes. */
#define RESPONSE_CAP (64 * 1024)
/* Delta requests waiting while the collector is unreachable: at the
 * default 60 s interval, 20 minutes of data, and never more than 32 MiB. */
#define QUEUE_MAX 20
#define QUEUE_MAX_BYTES (32u << 20)
#define BACKOFF_INITIAL_MS 1000
#define BACKOFF_MAX_MS 30000
/* A Retry-After beyond this is taken as this. */
#define RETRY_AFTER_MAX_MS (300 * 1000)
/* The last export at shutdown gives up after this. */
#define FLUSH_BUDGET_MS 3000

/* ---- configuration ---------------------------------------------------- */

/* The metrics-specific variable when set and not empty, else the generic
 * one; NULL when neither is. */
static const char *env2(const char *metrics_name, const char *generic_name)
{
	const char *v = getenv(metrics_name);

	if (v && *v)
		return v;
	v = generic_name ? getenv(generic_name) : NULL;
	return v && *v ? v : NULL;
}

static int parse_ms(const char *name, const char *text, unsigned *out,
		    char *err, size_t errsz)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || errno || *end || v == 0 ||
	    v > 86400000) {
		snprintf(err, errsz,
			 "%s: '%s' is not a number of milliseconds from 1 to "
			 "86400000",
			 name, text);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static bool has_scheme(const char *url)
{
	return strncmp(url, "http://", 7) == 0 ||
	       strncmp(url, "https://", 8) == 0;
}

/* The URL's path, or "" when it has none. */
static const char *url_path(const char *url)
{
	const char *p = strstr(url, "://");
	const char *slash = p ? strchr(p + 3, '/') : NULL;

	return slash ? slash : "";
}

/* base + "/v1/metrics", without doubling the slash. */
static char *append_signal_path(const char *base)
{
	size_t len = strlen(base);
	char *url = malloc(len + sizeof("/v1/metrics"));

	if (!url)
		return NULL;
	memcpy(url, base, len);
	if (len && base[len - 1] == '/')
		len--;
	strcpy(url + len, "/v1/metrics");
	return url;
}

static int resolve_endpoint(const char *flag, struct otlp_config *cfg,
			    char *err, size_t errsz)
{
	const char *name, *url;
	bool append;

	/* The OpenTelemetry variables win over the flag and the config file,
	 * as they do for every SDK. */
	if ((url = env2("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", NULL))) {
		name = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
		append = false;
	} else if ((url = env2("OTEL_EXPORTER_OTLP_ENDPOINT", NULL))) {
		name = "OTEL_EXPORTER_OTLP_ENDPOINT";
		append = true;
	} else if (flag && *flag) {
		name = "--otlp-endpoint";
		url = flag;
		/* A bare collector address gets the signal path. */
		append = !*url_path(url) || strcmp(url_path(url), "/") == 0;
	} else {
		return 0;
	}
	if (!has_scheme(url) || strpbrk(url, " \t\r\n")) {
		snprintf(err, errsz,
			 "%s: '%s' is not an http:// or https:// URL", name,
			 url);
		return -1;
	}
	cfg->endpoint = append ? append_signal_path(url) : strdup(url);
	if (!cfg->endpoint) {
		snprintf(err, errsz, "%s: out of memory", name);
		return -1;
	}
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes and trims text[0..len) into a new string; NULL when the
 * encoding is bad or the result holds a control character. */
static char *decode_part(const char *text, size_t len)
{
	char *out, *o;

	while (len && isspace((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	out = o = malloc(len + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)text[i];

		if (c == '%') {
			if (i + 2 >= len)
				goto bad;
			if (hexval(text[i + 1]) < 0 || hexval(text[i + 2]) < 0)
				goto bad;
			c = hexval(text[i + 1]) * 16 + hexval(text[i + 2]);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			goto bad;
		*o++ = (char)c;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static bool header_name_ok(const char *name)
{
	if (!*name)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) &&
		    !strchr("!#$%&'*+-.^_`|~", *p))
			return false;
	return true;
}

int otlp_parse_headers(const char *text, struct otlp_config *cfg, char *err,
		       size_t errsz)
{
	const char *p = text;

	while (*p) {
		const char *end = strchr(p, ',');
		const char *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *key = NULL, *value = NULL, *line;

		eq = memchr(p, '=', len);
		if (eq) {
			key = decode_part(p, (size_t)(eq - p));
			value = decode_part(eq + 1, len - (size_t)(eq - p) - 1);
		}
		if (!key || !value || !header_name_ok(key)) {
			snprintf(err, errsz,
				 "OTEL_EXPORTER_OTLP_HEADERS: '%.*s' is not "
				 "key=value with a token key and a "
				 "percent-encoded value",
				 (int)len, p);
			free(key);
			free(value);
			return -1;
		}
		if (cfg->nheaders == OTLP_MAX_HEADERS ||
		    asprintf(&line, "%s: %s", key, value) < 0) {
			snprintf(err, errsz,
				 "OTEL_EXPORTER_OTLP_HEADERS: more than %d "
				 "headers",
				 OTLP_MAX_HEADERS);
			free(key);
			free(value);
			return -1;
		}
		free(key);
		free(value);
		cfg->headers[cfg->nheaders++] = line;
		p = end ? end + 1 : p + len;
	}
	return 0;
}

static int read_file(const char *name, const char *path, char **data,
		     size_t *len, char *err, size_t errsz)
{
	FILE *f = fopen(path, "re");
	size_t cap = 0;
	ssize_t n;

	*data = NULL;
	n = f ? getdelim(data, &cap, '\0', f) : -1;
	if (n <= 0) {
		snprintf(err, errsz, "%s: cannot read '%s': %s", name, path,
			 f ? "empty file" : strerror(errno));
		if (f)
			fclose(f);
		free(*data);
		*data = NULL;
		return -1;
	}
	fclose(f);
	*len = (size_t)n;
	return 0;
}

static int parse_choice(const char *name, const char *text,
			const char *const *choices, int *out, char *err,
			size_t errsz)
{
	for (int i = 0; choices[i]; i++) {
		if (strcasecmp(text, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	snprintf(err, errsz, "%s: '%s' is not one of %s%s%s%s%s", name, text,
		 choices[0], choices[1] ? ", " : "",
		 choices[1] ? choices[1] : "",
		 choices[1] && choices[2] ? ", " : "",
		 choices[1] && choices[2] ? choices[2] : "");
	return -1;
}

int otlp_config_load(const char *flag_endpoint, struct otlp_config *cfg,
		     char *err, size_t errsz)
{
	static const char *const compressions[] = { "none", "gzip", NULL };
	static const char *const temporalities[] = { "cumulative", "delta",
						     "lowmemory", NULL };
	static const char *const aggregations[] = {
		"explicit_bucket_histogram",
		"base2_exponential_bucket_histogram", NULL
	};
	const char *v;
	int choice;

	memset(cfg, 0, sizeof(*cfg));
	cfg->interval_ms = DEFAULT_INTERVAL_MS;
	cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
	if (resolve_endpoint(flag_endpoint, cfg, err, errsz))
		return -1;
	if (!cfg->endpoint)
		return 0;
	v = env2("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
		 "OTEL_EXPORTER_OTLP_PROTOCOL");
	if (v && strcmp(v, "http/protobuf") != 0) {
		snprintf(err, errsz,
			 "OTEL_EXPORTER_OTLP_PROTOCOL: '%s' is not supported; "
			 "sonde speaks http/protobuf",
			 v);
		goto fail;
	}
	v = env2("OTEL_METRIC_EXPORT_INTERVAL", NULL);
	if (v && parse_ms("OTEL_METRIC_EXPORT_INTERVAL", v, &cfg->interval_ms,
			  err, errsz))
		goto fail;
	v = env2("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
		 "OTEL_EXPORTER_OTLP_TIMEOUT");
	if (v && parse_ms("OTEL_EXPORTER_OTLP_TIMEOUT", v, &cfg->timeout_ms,
			  err, errsz))
		goto fail;
	v = env2("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
		 "OTEL_EXPORTER_OTLP_COMPRESSION");
	if (v) {
		if (parse_choice("OTEL_EXPORTER_OTLP_COMPRESSION", v,
				 compressions, &choice, err, errsz))
			goto fail;
		cfg->gzip = choice == 1;
	}
	v = env2("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", NULL);
	if (v) {
		if (parse_choice("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_"
				 "PREFERENCE",
				 v, temporalities, &choice, err, errsz))
			goto fail;
		/* sonde's counters and histograms are synchronous
		 * instruments: delta under both "delta" and "lowmemory". */
		cfg->delta = choice != 0;
	}
	v = env2("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
		 NULL);
	if (v) {
		if (parse_choice("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_"
				 "AGGREGATION",
				 v, aggregations, &choice, err, errsz))
			goto fail;
		cfg->exponential = choice == 1;
	}
	v = env2("OTEL_EXPORTER_OTLP_METRICS_HEADERS",
		 "OTEL_EXPORTER_OTLP_HEADERS");
	if (v && otlp_parse_headers(v, cfg, err, errsz))
		goto fail;
	v = env2("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
		 "OTEL_EXPORTER_OTLP_CERTIFICATE");
	if (v && read_file("OTEL_EXPORTER_OTLP_CERTIFICATE", v, &cfg->ca_pem,
			   &cfg->ca_len, err, errsz))
		goto fail;
	return 0;
fail:
	otlp_config_free(cfg);
	return -1;
}

void otlp_config_free(struct otlp_config *cfg)
{
	free(cfg->endpoint);
	for (unsigned i = 0; i < cfg->nheaders; i++)
		free(cfg->headers[i]);
	free(cfg->ca_pem);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- encoding --------------------------------------------------------- */

/* What the previous delta export sent of one series, by the series' id.
 * The walk visits series in increasing id order, and expired series just
 * drop out of it, so prevs (sorted by id) and the walk are merged like two
 * sorted lists. */
struct prev {
	uint64_t id;
	bool sent;	  /* a delta went out: the fields below are its base */
	uint64_t time_ns; /* end of the last delta sent */
	uint64_t count, sum_ns, counter;
	uint64_t *buckets; /* the series' bounds->n + 1 */
	struct exphist *exp;
};

static struct prev *prevs;
static unsigned nprevs;

/* Data points of one family in one service, already encoded. */
struct group {
	const struct metric_family *f;
	unsigned service;
	struct pb_buf points;
};

struct collect {
	bool delta, exponential;
	uint64_t now;
	unsigned cursor;   /* next entry of prevs not yet matched */
	struct prev *next; /* prevs for the series walked so far */
	unsigned nnext, next_cap;
	unsigned points;
	struct strmap group_of; /* "family\x1fservice" -> group index + 1 */
	struct group *groups;
	unsigned ngroups, groups_cap;
	struct strmap service_of; /* service -> index + 1 */
	char **services;
	unsigned nservices, services_cap;
	bool failed;
};

static bool grow(void **array, unsigned *cap, unsigned n, size_t size)
{
	unsigned want = *cap ? *cap * 2 : 16;
	void *grown;

	if (n < *cap)
		return true;
	grown = realloc(*array, want * size);
	if (!grown)
		return false;
	*array = grown;
	*cap = want;
	return true;
}

static int service_index(struct collect *c, const char *name)
{
	uintptr_t i = (uintptr_t)strmap_get(&c->service_of, name);
	char *copy;

	if (i)
		return (int)(i - 1);
	if (!grow((void **)&c->services, &c->services_cap, c->nservices,
		  sizeof(*c->services)))
		return -1;
	copy = strdup(name);
	if (!copy || !strmap_put(&c->service_of, name,
				 (void *)(uintptr_t)(c->nservices + 1))) {
		free(copy);
		return -1;
	}
	c->services[c->nservices] = copy;
	return (int)c->nservices++;
}

static struct group *group_for(struct collect *c, const struct metric_family *f,
			       const char *service)
{
	char key[256];
	uintptr_t i;
	int svc;

	snprintf(key, sizeof(key), "%s\x1f%s", f->name, service);
	i = (uintptr_t)strmap_get(&c->group_of, key);
	if (i)
		return &c->groups[i - 1];
	svc = service_index(c, service);
	if (svc < 0 || !grow((void **)&c->groups, &c->groups_cap, c->ngroups,
			     sizeof(*c->groups)))
		return NULL;
	if (!strmap_put(&c->group_of, key, (void *)(uintptr_t)(c->ngroups + 1)))
		return NULL;
	memset(&c->groups[c->ngroups], 0, sizeof(struct group));
	c->groups[c->ngroups].f = f;
	c->groups[c->ngroups].service = (unsigned)svc;
	return &c->groups[c->ngroups++];
}

/* Semantic-convention attributes that are integers: status codes, ports.
 * db.response.status_code is a string, whatever it looks like: SQLSTATE
 * 23505 and MySQL's 1146 as much as 42P01. */
static bool int_attribute(const char *key, const char *value, int64_t *out)
{
	size_t klen = strlen(key);
	char *end;

	if (!((klen >= 5 && strcmp(key + klen - 5, ".port") == 0) ||
	      (klen >= 12 && strcmp(key + klen - 12, ".status_code") == 0)) ||
	    strcmp(key, "db.response.status_code") == 0)
		return false;
	if (!isdigit((unsigned char)value[0]))
		return false;
	errno = 0;
	*out = strtoll(value, &end, 10);
	return !errno && !*end;
}

static void kv_string(struct pb_buf *b, uint32_t field, const char *key,
		      const char *value)
{
	size_t kv = pb_begin(b, field), any;

	pb_string(b, KV_KEY, key);
	any = pb_begin(b, KV_VALUE);
	pb_string(b, ANY_STRING, value);
	pb_end(b, any);
	pb_end(b, kv);
}

static void kv_int(struct pb_buf *b, uint32_t field, const char *key,
		   int64_t value)
{
	size_t kv = pb_begin(b, field), any;

	pb_string(b, KV_KEY, key);
	any = pb_begin(b, KV_VALUE);
	pb_uint(b, ANY_INT, (uint64_t)value);
	pb_end(b, any);
	pb_end(b, kv);
}

/* Labels 1.. as attributes; label 0 (service) is the resource's. */
static void attributes(struct pb_buf *b, uint32_t field,
		       const struct registry_series *s)
{
	const struct metric_family *f = s->family;
	int64_t n;

	for (unsigned i = 1; i < f->nlabels; i++) {
		if (int_attribute(f->otel_labels[i], s->values[i], &n))
			kv_int(b, field, f->otel_labels[i], n);
		else
			kv_string(b, field, f->otel_labels[i], s->values[i]);
	}
}

static void prev_free(struct prev *p)
{
	free(p->buckets);
	free(p->exp);
}

/* The previous delta of s, carried over into c->next; a fresh one for a
 * series not seen before. Entries of series that are gone are freed as
 * the walk passes them. NULL when out of memory. */
static struct prev *prev_for(struct collect *c, const struct registry_series *s)
{
	struct prev *p;

	while (c->cursor < nprevs && prevs[c->cursor].id < s->id)
		prev_free(&prevs[c->cursor++]);
	if (!grow((void **)&c->next, &c->next_cap, c->nnext, sizeof(*c->next)))
		return NULL;
	p = &c->next[c->nnext++];
	if (c->cursor < nprevs && prevs[c->cursor].id == s->id) {
		*p = prevs[c->cursor++];
		return p;
	}
	memset(p, 0, sizeof(*p));
	p->id = s->id;
	p->time_ns = s->start_unix_ns;
	return p;
}

/* After a walk: what was not carried over belongs to series that are
 * gone. */
static void prevs_replace(struct collect *c)
{
	while (c->cursor < nprevs)
		prev_free(&prevs[c->cursor++]);
	free(prevs);
	prevs = c->next;
	nprevs = c->nnext;
}

static void explicit_point(struct pb_buf *b, const struct registry_series *s,
			   const struct prev *p, uint64_t start, uint64_t now)
{
	const struct histogram_bounds *bounds = s->bounds;
	uint64_t counts[HISTOGRAM_MAX_BOUNDS + 1];
	size_t dp = pb_begin(b, DATA_POINTS);

	for (size_t i = 0; i <= bounds->n; i++)
		counts[i] = s->hist->buckets[i] - (p ? p->buckets[i] : 0);
	attributes(b, HDP_ATTRIBUTES, s);
	pb_fixed64(b, HDP_START, start);
	pb_fixed64(b, HDP_TIME, now);
	pb_fixed64(b, HDP_COUNT, s->hist->count - (p ? p->count : 0));
	pb_double(b, HDP_SUM,
		  (double)(s->hist->sum_ns - (p ? p->sum_ns : 0)) / 1e9);
	pb_packed_fixed64(b, HDP_BUCKET_COUNTS, counts, bounds->n + 1);
	pb_packed_double(b, HDP_EXPLICIT_BOUNDS, bounds->seconds, bounds->n);
	pb_end(b, dp);
}

static void exponential_point(struct pb_buf *b, const struct registry_series *s,
			      const struct prev *p, uint64_t start,
			      uint64_t now)
{
	struct exphist d;
	const struct exphist *h = s->exp;
	size_t dp, pos;

	if (p && p->exp) {
		exphist_delta(s->exp, p->exp, &d);
		h = &d;
	}
	dp = pb_begin(b, DATA_POINTS);
	attributes(b, EDP_ATTRIBUTES, s);
	pb_fixed64(b, EDP_START, start);
	pb_fixed64(b, EDP_TIME, now);
	pb_fixed64(b, EDP_COUNT, h->count);
	pb_double(b, EDP_SUM, (double)h->sum_ns / 1e9);
	pb_sint(b, EDP_SCALE, h->scale);
	pb_fixed64(b, EDP_ZERO_COUNT, h->zero_count);
	if (h->len) {
		pos = pb_begin(b, EDP_POSITIVE);
		pb_sint(b, BUCKETS_OFFSET, h->offset);
		pb_packed_varint(b, BUCKETS_COUNTS, h->counts, h->len);
		pb_end(b, pos);
	}
	/* min and max of a delta are unknown. */
	if (h->count && !(p && p->exp)) {
		pb_double(b, EDP_MIN, (double)h->min_ns / 1e9);
		pb_double(b, EDP_MAX, (double)h->max_ns / 1e9);
	}
	pb_end(b, dp);
}

static void number_point(struct pb_buf *b, const struct registry_series *s,
			 int64_t value, uint64_t start, uint64_t now)
{
	size_t dp = pb_begin(b, DATA_POINTS);

	attributes(b, NDP_ATTRIBUTES, s);
	pb_fixed64(b, NDP_START, start);
	pb_fixed64(b, NDP_TIME, now);
	pb_fixed64(b, NDP_AS_INT, (uint64_t)value);
	pb_end(b, dp);
}

/* Remembers s as the base of the next delta. */
static void prev_update(struct prev *p, const struct registry_series *s,
			uint64_t now)
{
	size_t nb = s->bounds->n + 1;

	p->sent = true;
	p->time_ns = now;
	p->counter = s->counter;
	if (s->family->kind != METRIC_HISTOGRAM)
		return;
	p->count = s->hist->count;
	p->sum_ns = s->hist->sum_ns;
	if (!p->buckets)
		p->buckets = calloc(nb, sizeof(uint64_t));
	if (p->buckets)
		memcpy(p->buckets, s->hist->buckets, nb * sizeof(uint64_t));
	if (s->exp) {
		if (!p->exp)
			p->exp = malloc(sizeof(*p->exp));
		if (p->exp)
			*p->exp = *s->exp;
	}
}

static bool unchanged(const struct registry_series *s, const struct prev *p)
{
	if (s->family->kind == METRIC_HISTOGRAM)
		return s->hist->count == p->count;
	return s->counter == p->counter;
}

static void collect_series(const struct registry_series *s, void *arg)
{
	struct collect *c = arg;
	const struct metric_family *f = s->family;
	bool delta = c->delta && f->kind != METRIC_GAUGE;
	const struct prev *base = NULL;
	uint64_t start = s->start_unix_ns;
	struct prev *p = NULL;
	struct group *g;

	if (delta) {
		p = prev_for(c, s);
		if (!p) {
			c->failed = true;
			return;
		}
		if (p->sent && unchanged(s, p))
			return;
		start = p->time_ns;
		/* The first delta of a series subtracts nothing. */
		if (p->sent && (f->kind != METRIC_HISTOGRAM || p->buckets))
			base = p;
	}
	g = group_for(c, f, s->values[0]);
	if (!g) {
		c->failed = true;
		return;
	}
	switch (f->kind) {
	case METRIC_HISTOGRAM:
		if (c->exponential && s->exp)
			exponential_point(&g->points, s, base, start, c->now);
		else
			explicit_point(&g->points, s, base, start, c->now);
		break;
	case METRIC_COUNTER:
		number_point(&g->points, s,
			     (int64_t)(s->counter - (base ? base->counter : 0)),
			     start, c->now);
		break;
	case METRIC_GAUGE:
		number_point(&g->points, s, s->gauge, start, c->now);
		break;
	}
	c->points++;
	if (p)
		prev_update(p, s, c->now);
}

static void resource(struct pb_buf *b, const char *service)
{
	size_t res = pb_begin(b, RM_RESOURCE);
	struct lastseen_process proc;
	char host[256] = "";

	kv_string(b, RESOURCE_ATTRIBUTES, "service.name", service);
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
		kv_string(b, RESOURCE_ATTRIBUTES, "host.name", host);
	if (lastseen_get(service, &proc)) {
		kv_int(b, RESOURCE_ATTRIBUTES, "process.pid", proc.pid);
		kv_string(b, RESOURCE_ATTRIBUTES, "process.executable.name",
			  proc.exe);
		if (proc.container[0])
			kv_string(b, RESOURCE_ATTRIBUTES, "container.id",
				  proc.container);
		if (proc.namespace[0])
			kv_string(b, RESOURCE_ATTRIBUTES, "service.namespace",
				  proc.namespace);
		if (proc.pod_uid[0])
			kv_string(b, RESOURCE_ATTRIBUTES, "k8s.pod.uid",
				  proc.pod_uid);
	}
	pb_end(b, res);
}

static void metric(struct pb_buf *b, const struct group *g, bool delta,
		   bool exponential)
{
	const struct metric_family *f = g->f;
	size_t m = pb_begin(b, SM_METRICS), data;
	int temporality = delta && f->kind != METRIC_GAUGE ?
				  TEMPORALITY_DELTA :
				  TEMPORALITY_CUMULATIVE;

	pb_string(b, METRIC_NAME, f->otel_name);
	pb_string(b, METRIC_DESCRIPTION, f->help);
	pb_string(b, METRIC_UNIT, f->unit);
	if (f->kind == METRIC_HISTOGRAM)
		data = pb_begin(b, exponential ? METRIC_EXP_HISTOGRAM :
						 METRIC_HISTOGRAM_F);
	else
		data = pb_begin(b, METRIC_SUM);
	pb_raw(b, g->points.data, g->points.len);
	pb_uint(b, DATA_TEMPORALITY, temporality);
	if (f->kind != METRIC_HISTOGRAM)
		pb_uint(b, SUM_IS_MONOTONIC, f->kind == METRIC_COUNTER);
	pb_end(b, data);
	pb_end(b, m);
}

static void scope(struct pb_buf *b)
{
	size_t sc = pb_begin(b, SM_SCOPE);

	pb_string(b, SCOPE_NAME, "sonde");
	pb_string(b, SCOPE_VERSION, SONDE_VERSION);
	pb_end(b, sc);
}

static void assemble(struct pb_buf *out, const struct collect *c)
{
	for (unsigned svc = 0; svc < c->nservices; svc++) {
		size_t rm = pb_begin(out, REQ_RESOURCE_METRICS), sm;

		resource(out, c->services[svc]);
		sm = pb_begin(out, RM_SCOPE_METRICS);
		scope(out);
		for (unsigned i = 0; i < c->ngroups; i++)
			if (c->groups[i].service == svc)
				metric(out, &c->groups[i], c->delta,
				       c->exponential);
		pb_end(out, sm);
		pb_end(out, rm);
	}
}

/* ---- sonde's own metrics ---------------------------------------------- */

/* Encodes the samples one self-metric's collect callback emits as data
 * points. */
struct self_encoder {
	struct self_sink sink; /* first: the callbacks get &sink */
	const struct self_metric *m;
	uint64_t start, now;
	struct pb_buf points;
	unsigned n;
};

static void self_attributes(struct pb_buf *b, uint32_t field,
			    const struct self_metric *m,
			    const char *const *values)
{
	for (unsigned i = 0; i < m->nlabels; i++)
		kv_string(b, field, m->otel_labels[i], values[i]);
}

/* A NumberDataPoint whose value is the fixed64 bits in field. */
static void self_number(struct self_encoder *e, const char *const *values,
			uint32_t field, uint64_t bits)
{
	size_t dp = pb_begin(&e->points, DATA_POINTS);

	self_attributes(&e->points, NDP_ATTRIBUTES, e->m, values);
	/* A counter counts from sonde's start; a gauge is as of now. */
	if (e->m->kind == SELF_COUNTER)
		pb_fixed64(&e->points, NDP_START, e->start);
	pb_fixed64(&e->points, NDP_TIME, e->now);
	pb_fixed64(&e->points, field, bits);
	pb_end(&e->points, dp);
	e->n++;
}

static void self_u64(struct self_sink *sink, const char *const *values,
		     uint64_t value)
{
	self_number((struct self_encoder *)sink, values, NDP_AS_INT, value);
}

static void self_f64(struct self_sink *sink, const char *const *values,
		     double value)
{
	uint64_t bits;

	memcpy(&bits, &value, sizeof(bits));
	self_number((struct self_encoder *)sink, values, NDP_AS_DOUBLE, bits);
}

static void self_histogram(struct self_sink *sink, const char *const *values,
			   const struct histogram *h,
			   const struct histogram_bounds *b)
{
	struct self_encoder *e = (struct self_encoder *)sink;
	size_t dp = pb_begin(&e->points, DATA_POINTS);

	self_attributes(&e->points, HDP_ATTRIBUTES, e->m, values);
	pb_fixed64(&e->points, HDP_START, e->start);
	pb_fixed64(&e->points, HDP_TIME, e->now);
	pb_fixed64(&e->points, HDP_COUNT, h->count);
	pb_double(&e->points, HDP_SUM, (double)h->sum_ns / 1e9);
	pb_packed_fixed64(&e->points, HDP_BUCKET_COUNTS, h->buckets, b->n + 1);
	pb_packed_double(&e->points, HDP_EXPLICIT_BOUNDS, b->seconds, b->n);
	pb_end(&e->points, dp);
	e->n++;
}

/* The Metric of a self-metric with its points: counters are cumulative
 * monotonic Sums whatever the temporality preference (the specification's
 * for asynchronous counters under "lowmemory"), gauges Gauges. */
static void self_metric_message(struct pb_buf *b, const struct self_encoder *e)
{
	const struct self_metric *m = e->m;
	size_t msg = pb_begin(b, SM_METRICS), data;

	pb_string(b, METRIC_NAME, m->otel_name);
	pb_string(b, METRIC_DESCRIPTION, m->help);
	pb_string(b, METRIC_UNIT, m->unit);
	data = pb_begin(b, m->kind == SELF_GAUGE     ? METRIC_GAUGE_F :
			   m->kind == SELF_HISTOGRAM ? METRIC_HISTOGRAM_F :
						       METRIC_SUM);
	pb_raw(b, e->points.data, e->points.len);
	if (m->kind != SELF_GAUGE)
		pb_uint(b, DATA_TEMPORALITY, TEMPORALITY_CUMULATIVE);
	if (m->kind == SELF_COUNTER)
		pb_uint(b, SUM_IS_MONOTONIC, 1);
	pb_end(b, data);
	pb_end(b, msg);
}

struct self_collect {
	uint64_t start, now;
	struct pb_buf metrics; /* the Metric messages */
	unsigned points;
	bool failed;
};

static void collect_self_metric(const struct self_metric *m, void *arg)
{
	struct self_collect *c = arg;
	struct self_encoder e = {
		.sink = { self_u64, self_f64, self_histogram },
		.m = m,
		.start = c->start,
		.now = c->now,
	};

	m->collect(m, &e.sink);
	/* A metric with nothing to report yet is left out. */
	if (e.n && !e.points.failed) {
		self_metric_message(&c->metrics, &e);
		c->points += e.n;
	}
	c->failed |= e.points.failed;
	pb_release(&e.points);
}

/* sonde's own resource: the agent, not a service it watches. */
static void self_resource(struct pb_buf *b)
{
	size_t res = pb_begin(b, RM_RESOURCE);
	char host[256] = "";

	kv_string(b, RESOURCE_ATTRIBUTES, "service.name", "sonde");
	kv_string(b, RESOURCE_ATTRIBUTES, "service.version", SONDE_VERSION);
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
		kv_string(b, RESOURCE_ATTRIBUTES, "host.name", host);
	kv_int(b, RESOURCE_ATTRIBUTES, "process.pid", getpid());
	kv_string(b, RESOURCE_ATTRIBUTES, "process.executable.name", "sonde");
	pb_end(b, res);
}

/* Every self-metric (metrics/self.h) as one ResourceMetrics appended to
 * out; returns its data points (0: nothing was appended). */
static unsigned encode_self(struct pb_buf *out, uint64_t now_ns, bool *failed)
{
	struct self_collect c = { .start = self_start_unix_ns(),
				  .now = now_ns };

	self_each(collect_self_metric, &c);
	*failed |= c.failed || c.metrics.failed;
	if (c.points && !c.metrics.failed) {
		size_t rm = pb_begin(out, REQ_RESOURCE_METRICS), sm;

		self_resource(out);
		sm = pb_begin(out, RM_SCOPE_METRICS);
		scope(out);
		pb_raw(out, c.metrics.data, c.metrics.len);
		pb_end(out, sm);
		pb_end(out, rm);
	} else {
		c.points = 0;
	}
	pb_release(&c.metrics);
	return c.points;
}

unsigned otlp_encode(struct pb_buf *out, bool delta, bool exponential,
		     uint64_t now_ns)
{
	struct collect c = { .delta = delta,
			     .exponential = exponential,
			     .now = now_ns };

	registry_walk(collect_series, &c);
	if (delta)
		prevs_replace(&c);
	for (unsigned i = 0; i < c.ngroups; i++)
		c.failed |= c.groups[i].points.failed;
	if (c.points)
		assemble(out, &c);
	c.points += encode_self(out, now_ns, &c.failed);
	if (c.failed)
		log_debug("otlp: out of memory while encoding; some series "
			  "were left out");
	for (unsigned i = 0; i < c.ngroups; i++)
		pb_release(&c.groups[i].points);
	for (unsigned i = 0; i < c.nservices; i++)
		free(c.services[i]);
	free(c.groups);
	free(c.services);
	strmap_clear(&c.group_of);
	strmap_clear(&c.service_of);
	return c.points;
}

void otlp_reset(void)
{
	for (unsigned i = 0; i < nprevs; i++)
		prev_free(&prevs[i]);
	free(prevs);
	prevs = NULL;
	nprevs = 0;
}

/* ---- responses and retries -------------------------------------------- */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		*v |= (uint64_t)(**p & 0x7f) << shift;
		if (!(*(*p)++ & 0x80))
			return 0;
	}
	return -1;
}

/* Steps over one field's value of the given wire type. */
static int skip_field(const uint8_t **p, const uint8_t *end, unsigned wire)
{
	uint64_t v;

	switch (wire) {
	case PB_VARINT:
		return read_varint(p, end, &v);
	case PB_I64:
		if (end - *p < 8)
			return -1;
		*p += 8;
		return 0;
	case PB_LEN:
		if (read_varint(p, end, &v) || v > (uint64_t)(end - *p))
			return -1;
		*p += v;
		return 0;
	case PB_I32:
		if (end - *p < 4)
			return -1;
		*p += 4;
		return 0;
	}
	return -1;
}

static int parse_partial(const uint8_t *p, const uint8_t *end,
			 int64_t *rejected, char *msg, size_t msgsz)
{
	uint64_t key, v;

	while (p < end) {
		if (read_varint(&p, end, &key))
			return -1;
		if (key == ((PS_REJECTED << 3) | PB_VARINT)) {
			if (read_varint(&p, end, &v))
				return -1;
			*rejected = (int64_t)v;
		} else if (key == ((PS_ERROR_MESSAGE << 3) | PB_LEN)) {
			if (read_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return -1;
			snprintf(msg, msgsz, "%.*s", (int)v, (const char *)p);
			p += v;
		} else if (skip_field(&p, end, key & 7)) {
			return -1;
		}
	}
	return 0;
}

int otlp_parse_response(const uint8_t *p, size_t len, int64_t *rejected,
			char *msg, size_t msgsz)
{
	const uint8_t *end = p ? p + len : p; /* an empty body has no buffer */
	uint64_t key, v;

	*rejected = 0;
	if (msgsz)
		msg[0] = '\0';
	while (p < end) {
		if (read_varint(&p, end, &key))
			return -1;
		if (key == ((RESP_PARTIAL_SUCCESS << 3) | PB_LEN)) {
			if (read_varint(&p, end, &v) ||
			    v > (uint64_t)(end - p) ||
			    parse_partial(p, p + v, rejected, msg, msgsz))
				return -1;
			p += v;
		} else if (skip_field(&p, end, key & 7)) {
			return -1;
		}
	}
	return 0;
}

int64_t otlp_retry_after_ms(const char *value, int64_t now_unix)
{
	char *end;
	long long secs;
	time_t when;

	while (isspace((unsigned char)*value))
		value++;
	if (isdigit((unsigned char)*value)) {
		errno = 0;
		secs = strtoll(value, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (errno || *end)
			return -1;
		return secs > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS :
							  secs * 1000;
	}
	when = curl_getdate(value, NULL);
	if (when == -1)
		return -1;
	if (when <= now_unix)
		return 0;
	return when - now_unix > RETRY_AFTER_MAX_MS / 1000 ?
		       RETRY_AFTER_MAX_MS :
		       (int64_t)(when - now_unix) * 1000;
}

uint64_t otlp_backoff_ms(unsigned failures, uint32_t rnd)
{
	uint64_t ms = BACKOFF_INITIAL_MS;

	for (unsigned i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	/* Jitter keeps many agents from retrying in step; the lower bound
	 * keeps each wait longer than the one before. */
	return ms * 3 / 4 + (ms / 4) * (rnd % 1024) / 1024;
}

/* ---- the exporter thread ---------------------------------------------- */

enum result {
	RESULT_SUCCESS,
	RESULT_PARTIAL,
	RESULT_RETRIED,
	RESULT_FAILED,
	RESULT_DROPPED,
	RESULT_COUNT,
};

static const char *const result_names[RESULT_COUNT] = {
	[RESULT_SUCCESS] = "success", [RESULT_PARTIAL] = "partial",
	[RESULT_RETRIED] = "retried", [RESULT_FAILED] = "failed",
	[RESULT_DROPPED] = "dropped",
};

struct request {
	uint8_t *body;
	size_t len;
};

/* What one attempt came to. */
struct outcome {
	enum result result;
	int64_t retry_after_ms; /* -1: none given */
	bool aborted;		/* shutting down */
	char why[192];
};

static struct otlp_config cfg;
static pthread_t thread;
static bool started;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static bool stopping;
static uint64_t flush_deadline_ns; /* 0 until the final export */

static struct request queue[QUEUE_MAX];
static unsigned qhead, qlen;
static size_t qbytes;

static CURL *curl;
static struct curl_slist *curl_headers;
static struct pb_buf response;
static int64_t response_retry_after;

/* Self-metrics, guarded by stats_lock. */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t results[RESULT_COUNT];
static struct histogram_bounds duration_bounds;
static struct histogram *durations;

static void count_result(enum result r, uint64_t duration_ns)
{
	pthread_mutex_lock(&stats_lock);
	results[r]++;
	if (durations && duration_ns)
		histogram_observe(durations, &duration_bounds, duration_ns);
	pthread_mutex_unlock(&stats_lock);
}

static bool is_stopping(void)
{
	bool s;

	pthread_mutex_lock(&lock);
	s = stopping;
	pthread_mutex_unlock(&lock);
	return s;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	(void)arg;
	if (response.len + size * n > RESPONSE_CAP)
		return 0; /* ends the transfer: the rest is not read */
	pb_raw(&response, data, size * n);
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	size_t len = size * n;
	char value[128];

	(void)arg;
	if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
		snprintf(value, sizeof(value), "%.*s", (int)(len - 12),
			 data + 12);
		value[strcspn(value, "\r\n")] = '\0';
		response_retry_after =
			otlp_retry_after_ms(value, (int64_t)time(NULL));
	}
	return len;
}

/* Aborts a transfer on shutdown, or after the final export's budget. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
		       curl_off_t d)
{
	uint64_t deadline;

	(void)arg, (void)a, (void)b, (void)c, (void)d;
	if (!is_stopping())
		return 0;
	pthread_mutex_lock(&lock);
	deadline = flush_deadline_ns;
	pthread_mutex_unlock(&lock);
	return !deadline || clock_monotonic_ns() > deadline;
}

static int curl_setup(void)
{
	char ua[64];

	curl = curl_easy_init();
	if (!curl)
		return -1;
	curl_headers =
		curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	if (cfg.gzip)
		curl_headers = curl_slist_append(curl_headers,
						 "Content-Encoding: gzip");
	for (unsigned i = 0; i < cfg.nheaders; i++)
		curl_headers = curl_slist_append(curl_headers, cfg.headers[i]);
	/* No "Expect: 100-continue" round trip for large bodies. */
	curl_headers = curl_slist_append(curl_headers, "Expect:");
	if (!curl_headers)
		return -1;
	snprintf(ua, sizeof(ua), "sonde/%s", SONDE_VERSION);
	curl_easy_setopt(curl, CURLOPT_URL, cfg.endpoint);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, curl_headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)cfg.timeout_ms);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (cfg.ca_pem) {
		struct curl_blob blob = { cfg.ca_pem, cfg.ca_len,
					  CURL_BLOB_COPY };

		curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
	}
	return 0;
}

static bool retryable_status(long code)
{
	return code == 429 || code == 502 || code == 503 || code == 504;
}

/* Transport errors that will not go away by trying again. */
static bool permanent_curl_error(CURLcode rc)
{
	return rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
	       rc == CURLE_PEER_FAILED_VERIFICATION ||
	       rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM;
}

static void classify_http(long code, struct outcome *o)
{
	int64_t rejected;
	char msg[128];

	if (code >= 200 && code < 300) {
		o->result = RESULT_SUCCESS;
		if (otlp_parse_response(response.data, response.len, &rejected,
					msg, sizeof(msg)) == 0 &&
		    (rejected || msg[0])) {
			o->result = RESULT_PARTIAL;
			snprintf(o->why, sizeof(o->why),
				 "partial success: %" PRId64
				 " data points rejected: %s",
				 rejected, msg[0] ? msg : "(no message)");
		}
		return;
	}
	o->result = retryable_status(code) ? RESULT_RETRIED : RESULT_FAILED;
	o->retry_after_ms = response_retry_after;
	snprintf(o->why, sizeof(o->why), "HTTP status %ld", code);
}

static void send_once(const struct request *r, struct outcome *o)
{
	CURLcode rc;
	long code = 0;

	memset(o, 0, sizeof(*o));
	o->retry_after_ms = -1;
	response.len = 0;
	response.failed = false;
	response_retry_after = -1;
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		o->aborted = true;
		o->result = RESULT_FAILED;
		snprintf(o->why, sizeof(o->why), "cut short by shutdown");
	} else if ((rc == CURLE_OK || rc == CURLE_WRITE_ERROR) && code) {
		classify_http(code, o);
	} else {
		o->result = permanent_curl_error(rc) ? RESULT_FAILED :
						       RESULT_RETRIED;
		snprintf(o->why, sizeof(o->why), "%s", curl_easy_strerror(rc));
	}
}

static int gzip_body(struct request *r)
{
	z_stream zs = { 0 };
	uLong bound;
	uint8_t *out;

	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	bound = deflateBound(&zs, r->len) + 32;
	out = malloc(bound);
	if (!out) {
		deflateEnd(&zs);
		return -1;
	}
	zs.next_in = r->body;
	zs.avail_in = (uInt)r->len;
	zs.next_out = out;
	zs.avail_out = (uInt)bound;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&zs);
		free(out);
		return -1;
	}
	free(r->body);
	r->body = out;
	r->len = zs.total_out;
	deflateEnd(&zs);
	return 0;
}

static void queue_pop(void)
{
	struct request *r = &queue[qhead];

	qbytes -= r->len;
	free(r->body);
	r->body = NULL;
	qhead = (qhead + 1) % QUEUE_MAX;
	qlen--;
}

static void queue_push(struct request r)
{
	/* Cumulative data: the newest request holds everything. Delta data:
	 * the oldest is given up when the queue is full. */
	while (qlen && (!cfg.delta || qlen == QUEUE_MAX ||
			qbytes + r.len > QUEUE_MAX_BYTES)) {
		if (cfg.delta)
			count_result(RESULT_DROPPED, 0);
		queue_pop();
	}
	queue[(qhead + qlen) % QUEUE_MAX] = r;
	qlen++;
	qbytes += r.len;
}

static void collect(void)
{
	struct pb_buf b = { 0 };
	struct request r;
	unsigned points = otlp_encode(&b, cfg.delta, cfg.exponential,
				      clock_realtime_ns());

	if (!points || b.failed) {
		if (b.failed)
			log_error("otlp: out of memory encoding a request");
		pb_release(&b);
		return;
	}
	r.body = b.data;
	r.len = b.len;
	if (cfg.gzip && gzip_body(&r)) {
		log_error("otlp: gzip failed; request dropped");
		free(r.body);
		count_result(RESULT_DROPPED, 0);
		return;
	}
	queue_push(r);
}

/* Sleeps until the monotonic deadline or a stop request. */
static void sleep_until(uint64_t deadline_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000ull),
			       .tv_nsec = (long)(deadline_ns % 1000000000ull) };

	pthread_mutex_lock(&lock);
	while (!stopping && clock_monotonic_ns() < deadline_ns)
		if (pthread_cond_timedwait(&wake, &lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&lock);
}

static uint32_t random_u32(void)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)clock_monotonic_ns();
	return r;
}

/* Sends the queue's head once and acts on the outcome. Returns true when
 * the head left the queue (the next one may go at once). */
static bool deliver_head(unsigned *failures, uint64_t *retry_at)
{
	struct outcome o;
	uint64_t t0 = clock_monotonic_ns(), delay_ms;

	send_once(&queue[qhead], &o);
	if (o.aborted)
		return false;
	count_result(o.result, clock_monotonic_ns() - t0);
	switch (o.result) {
	case RESULT_SUCCESS:
	case RESULT_PARTIAL:
		if (*failures)
			log_info("otlp: exporting to %s again, after %u "
				 "failed attempts",
				 cfg.endpoint, *failures);
		if (o.result == RESULT_PARTIAL)
			log_error("otlp: %s: %s", cfg.endpoint, o.why);
		*failures = 0;
		queue_pop();
		return true;
	case RESULT_RETRIED:
		++*failures;
		delay_ms = o.retry_after_ms >= 0 ?
				   (uint64_t)o.retry_after_ms :
				   otlp_backoff_ms(*failures, random_u32());
		if (*failures == 1)
			log_error("otlp: export to %s failed (%s); retrying "
				  "with backoff",
				  cfg.endpoint, o.why);
		log_debug("otlp: retry %u in %" PRIu64 " ms (%s)", *failures,
			  delay_ms, o.why);
		*retry_at = clock_monotonic_ns() + delay_ms * 1000000ull;
		return false;
	default:
		log_error("otlp: export to %s rejected (%s); not retried",
			  cfg.endpoint, o.why);
		*failures = 0;
		queue_pop();
		return true;
	}
}

static void final_flush(void)
{
	struct outcome o;

	pthread_mutex_lock(&lock);
	flush_deadline_ns = clock_monotonic_ns() + FLUSH_BUDGET_MS * 1000000ull;
	pthread_mutex_unlock(&lock);
	collect();
	while (qlen && clock_monotonic_ns() < flush_deadline_ns) {
		uint64_t t0 = clock_monotonic_ns();

		send_once(&queue[qhead], &o);
		if (o.aborted)
			break;
		count_result(o.result, clock_monotonic_ns() - t0);
		if (o.result == RESULT_RETRIED)
			break;
		queue_pop();
	}
}

static void *exporter_main(void *arg)
{
	uint64_t interval_ns = (uint64_t)cfg.interval_ms * 1000000ull;
	uint64_t next_collect = clock_monotonic_ns() + interval_ns,
		 retry_at = 0, now;
	unsigned failures = 0;

	(void)arg;
	/* The code that talks to the network holds no capability: /proc's
	 * cgroup files are world-readable. */
	if (privs_drop_thread())
		log_error("otlp: cannot drop the exporter thread's "
			  "capabilities");
	while (!is_stopping()) {
		now = clock_monotonic_ns();
		if (now >= next_collect) {
			collect();
			next_collect += interval_ns;
			if (next_collect <= now)
				next_collect = now + interval_ns;
		}
		while (qlen && clock_monotonic_ns() >= retry_at &&
		       !is_stopping() && deliver_head(&failures, &retry_at))
			;
		sleep_until(qlen && retry_at < next_collect ? retry_at :
							      next_collect);
	}
	final_flush();
	return NULL;
}

int otlp_start(const struct otlp_config *c)
{
	pthread_condattr_t attr;
	int err;

	cfg = *c; /* borrowed: the caller keeps c alive until otlp_stop */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || curl_setup()) {
		log_error("otlp: cannot set up libcurl");
		return -1;
	}
	pthread_mutex_lock(&stats_lock);
	histogram_bounds_default(&duration_bounds);
	durations = calloc(1, histogram_size(&duration_bounds));
	pthread_mutex_unlock(&stats_lock);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&wake, &attr);
	pthread_condattr_destroy(&attr);
	/* Services' processes are noted from now on, for their resources. */
	lastseen_enable(true);
	err = pthread_create(&thread, NULL, exporter_main, NULL);
	if (err) {
		log_error("otlp: cannot start the exporter thread: %s",
			  strerror(err));
		lastseen_enable(false);
		return -1;
	}
	started = true;
	log_info("exporting metrics over OTLP to %s every %u ms (%s%s%s)",
		 cfg.endpoint, cfg.interval_ms,
		 cfg.delta ? "delta" : "cumulative",
		 cfg.exponential ? ", exponential histograms" : "",
		 cfg.gzip ? ", gzip" : "");
	return 0;
}

void otlp_stop(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	started = false;
	lastseen_enable(false);
	lastseen_reset();
	while (qlen)
		queue_pop();
	curl_easy_cleanup(curl);
	curl_slist_free_all(curl_headers);
	curl_global_cleanup();
	pb_release(&response);
	otlp_reset();
	pthread_mutex_lock(&stats_lock);
	free(durations);
	durations = NULL;
	pthread_mutex_unlock(&stats_lock);
}

static void collect_exports(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	pthread_mutex_lock(&stats_lock);
	for (int i = 0; durations && i < RESULT_COUNT; i++)
		self_emit_u64(sink, &result_names[i], results[i]);
	pthread_mutex_unlock(&stats_lock);
}

static void collect_durations(const struct self_metric *m,
			      struct self_sink *sink)
{
	(void)m;
	pthread_mutex_lock(&stats_lock);
	if (durations)
		self_emit_histogram(sink, NULL, durations, &duration_bounds);
	pthread_mutex_unlock(&stats_lock);
}

static const struct self_metric exports_metric = {
	.name = "sonde_otlp_exports_total",
	.otel_name = "sonde.otlp.exports",
	.unit = "{attempt}",
	.help = "OTLP export attempts by result: success, partial (the "
		"collector rejected some points; not retried), retried "
		"(429/502/503/504 or a transport error; sent again later), "
		"failed (rejected; not retried), dropped (delta requests given "
		"up on a full queue).",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "result" },
	.otel_labels = { "sonde.otlp.export.result" },
	.collect = collect_exports,
};

static const struct self_metric durations_metric = {
	.name = "sonde_otlp_export_duration_seconds",
	.otel_name = "sonde.otlp.export.duration",
	.unit = "s",
	.help = "Time one OTLP export attempt took, response included.",
	.kind = SELF_HISTOGRAM,
	.collect = collect_durations,
};

void otlp_register_metrics(void)
{
	self_register(&exports_metric);
	self_register(&durations_metric);
}
