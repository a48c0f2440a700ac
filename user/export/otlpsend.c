#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "export/otlpsend.h"
#include "identity/lastseen.h"
#include "util/clock.h"
#include "util/fmt.h"
#include "util/log.h"
#include "util/privs.h"

/* Field numbers from opentelemetry-proto v1
 * (opentelemetry/proto/{collector/metrics,collector/trace,common,
 * resource}/v1). */
enum {
	RESOURCE_ATTRIBUTES = 1,
	SCOPE_NAME = 1,
	SCOPE_VERSION = 2,
	KV_KEY = 1,
	KV_VALUE = 2,
	ANY_STRING = 1,
	ANY_INT = 3,
	RESP_PARTIAL_SUCCESS = 1,
	PS_REJECTED = 1, /* rejected_data_points, rejected_spans */
	PS_ERROR_MESSAGE = 2,
};

#define DEFAULT_INTERVAL_MS 60000
#define DEFAULT_TIMEOUT_MS 10000
/* A response body beyond this is not read: a partial success message is a
 * few hundred bytes. */
#define RESPONSE_CAP (64 * 1024)
/* Requests waiting while the collector is unreachable: for delta metrics
 * at the default 60 s interval, 20 minutes of data; for traces, 20
 * batches (10240 spans at the default 512 a batch); never more than
 * 32 MiB. */
#define QUEUE_MAX 20
#define QUEUE_MAX_BYTES (32u << 20)
#define BACKOFF_INITIAL_MS 1000
#define BACKOFF_MAX_MS 30000
/* A Retry-After beyond this is taken as this. */
#define RETRY_AFTER_MAX_MS (300 * 1000)
/* The last export at shutdown gives up after this. */
#define FLUSH_BUDGET_MS 3000

/* ---- configuration ---------------------------------------------------- */

/* What differs between the signals' variables. */
struct signal {
	const char *upper;    /* in variable names: "METRICS" */
	const char *path;     /* under a base URL: "/v1/metrics" */
	const char *exporter; /* OTEL_<signal>_EXPORTER, or NULL */
};

static const struct signal metrics_signal = { "METRICS", "/v1/metrics", NULL };
static const struct signal traces_signal = { "TRACES", "/v1/traces",
					     "OTEL_TRACES_EXPORTER" };

/* A variable's value when set and not empty; NULL otherwise. */
static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* OTEL_EXPORTER_OTLP_<signal>_<what> when set and not empty, else
 * OTEL_EXPORTER_OTLP_<what>; NULL when neither is. name gets the name of
 * the variable read (or the generic one). */
static const char *env_signal(const struct signal *sig, const char *what,
			      char *name, size_t namesz)
{
	const char *v;

	snprintf(name, namesz, "OTEL_EXPORTER_OTLP_%s_%s", sig->upper, what);
	if ((v = env(name)))
		return v;
	snprintf(name, namesz, "OTEL_EXPORTER_OTLP_%s", what);
	return env(name);
}

static int parse_ms(const char *name, const char *text, unsigned *out,
		    char *err, size_t errsz)
{
	unsigned long v;

	if (fmt_parse_ulong(text, 1, 86400000, &v)) {
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

/* base[0..len) + path, without doubling the slash. */
static char *append_signal_path(const char *base, size_t len, const char *path)
{
	char *url = malloc(len + strlen(path) + 1);

	if (!url)
		return NULL;
	memcpy(url, base, len);
	if (len && base[len - 1] == '/')
		len--;
	strcpy(url + len, path);
	return url;
}

/* The signal's URL from --otlp-endpoint. A bare collector address gets the
 * signal's path. Otherwise the flag names the metrics' URL (as it did
 * before traces): metrics go to it as is, traces to its /v1/metrics
 * replaced by /v1/traces, or to /v1/traces under any other path, as
 * OTEL_EXPORTER_OTLP_ENDPOINT would send them. */
static char *flag_url(const struct signal *sig, const char *flag)
{
	const char *path = url_path(flag);
	size_t len = strlen(flag), mlen = strlen(metrics_signal.path);

	if (!*path || strcmp(path, "/") == 0)
		return append_signal_path(flag, len, sig->path);
	if (sig == &metrics_signal)
		return strdup(flag);
	if (len >= mlen && strcmp(flag + len - mlen, metrics_signal.path) == 0)
		len -= mlen;
	return append_signal_path(flag, len, sig->path);
}

static int resolve_endpoint(const struct signal *sig, const char *flag,
			    struct otlp_target *t, char *err, size_t errsz)
{
	char name[64];
	const char *url;
	bool append;

	/* The OpenTelemetry variables win over the flag and the config file,
	 * as they do for every SDK. */
	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s_ENDPOINT",
		 sig->upper);
	if ((url = env(name))) {
		append = false;
	} else if ((url = env("OTEL_EXPORTER_OTLP_ENDPOINT"))) {
		snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_ENDPOINT");
		append = true;
	} else if (flag && *flag) {
		snprintf(name, sizeof(name), "--otlp-endpoint");
		url = flag;
		append = false;
	} else {
		return 0;
	}
	if (!has_scheme(url) || strpbrk(url, " \t\r\n")) {
		snprintf(err, errsz,
			 "%s: '%s' is not an http:// or https:// URL", name,
			 url);
		return -1;
	}
	if (url == flag)
		t->endpoint = flag_url(sig, url);
	else if (append)
		t->endpoint = append_signal_path(url, strlen(url), sig->path);
	else
		t->endpoint = strdup(url);
	if (!t->endpoint) {
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

int otlp_parse_headers(const char *name, const char *text,
		       struct otlp_target *t, char *err, size_t errsz)
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
				 "%s: '%.*s' is not key=value with a token key "
				 "and a percent-encoded value",
				 name, (int)len, p);
			free(key);
			free(value);
			return -1;
		}
		if (t->nheaders == OTLP_MAX_HEADERS ||
		    asprintf(&line, "%s: %s", key, value) < 0) {
			snprintf(err, errsz, "%s: more than %d headers", name,
				 OTLP_MAX_HEADERS);
			free(key);
			free(value);
			return -1;
		}
		free(key);
		free(value);
		t->headers[t->nheaders++] = line;
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

/* OTEL_<signal>_EXPORTER: true when it turns the signal off. */
static int exporter_off(const struct signal *sig, bool *off, char *err,
			size_t errsz)
{
	static const char *const exporters[] = { "otlp", "none", NULL };
	const char *v = sig->exporter ? env(sig->exporter) : NULL;
	int choice = 0;

	if (v && parse_choice(sig->exporter, v, exporters, &choice, err, errsz))
		return -1;
	*off = choice == 1;
	return 0;
}

/* One signal's endpoint and the variables of how to reach it. */
static int load_target(const struct signal *sig, const char *flag_endpoint,
		       struct otlp_target *t, char *err, size_t errsz)
{
	static const char *const compressions[] = { "none", "gzip", NULL };
	char name[64];
	const char *v;
	bool off;
	int choice;

	t->timeout_ms = DEFAULT_TIMEOUT_MS;
	if (exporter_off(sig, &off, err, errsz))
		return -1;
	if (off || resolve_endpoint(sig, flag_endpoint, t, err, errsz))
		return off ? 0 : -1;
	if (!t->endpoint)
		return 0;
	v = env_signal(sig, "PROTOCOL", name, sizeof(name));
	if (v && strcmp(v, "http/protobuf") != 0) {
		snprintf(err, errsz,
			 "%s: '%s' is not supported; sonde speaks "
			 "http/protobuf",
			 name, v);
		return -1;
	}
	v = env_signal(sig, "TIMEOUT", name, sizeof(name));
	if (v && parse_ms(name, v, &t->timeout_ms, err, errsz))
		return -1;
	v = env_signal(sig, "COMPRESSION", name, sizeof(name));
	if (v) {
		if (parse_choice(name, v, compressions, &choice, err, errsz))
			return -1;
		t->gzip = choice == 1;
	}
	v = env_signal(sig, "HEADERS", name, sizeof(name));
	if (v && otlp_parse_headers(name, v, t, err, errsz))
		return -1;
	v = env_signal(sig, "CERTIFICATE", name, sizeof(name));
	if (v && read_file(name, v, &t->ca_pem, &t->ca_len, err, errsz))
		return -1;
	return 0;
}

/* The metrics' own variables: interval, temporality, histograms. */
static int load_metrics(struct otlp_config *cfg, char *err, size_t errsz)
{
	static const char *const temporalities[] = { "cumulative", "delta",
						     "lowmemory", NULL };
	static const char *const aggregations[] = {
		"explicit_bucket_histogram",
		"base2_exponential_bucket_histogram", NULL
	};
	const char *v;
	int choice;

	v = env("OTEL_METRIC_EXPORT_INTERVAL");
	if (v && parse_ms("OTEL_METRIC_EXPORT_INTERVAL", v, &cfg->interval_ms,
			  err, errsz))
		return -1;
	v = env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
	if (v) {
		if (parse_choice("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_"
				 "PREFERENCE",
				 v, temporalities, &choice, err, errsz))
			return -1;
		/* sonde's counters and histograms are synchronous
		 * instruments: delta under both "delta" and "lowmemory". */
		cfg->delta = choice != 0;
	}
	v = env("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION");
	if (v) {
		if (parse_choice("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_"
				 "AGGREGATION",
				 v, aggregations, &choice, err, errsz))
			return -1;
		cfg->exponential = choice == 1;
	}
	return 0;
}

int otlp_config_load(const char *flag_endpoint, struct otlp_config *cfg,
		     char *err, size_t errsz)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->interval_ms = DEFAULT_INTERVAL_MS;
	if (load_target(&metrics_signal, flag_endpoint, &cfg->metrics, err,
			errsz) ||
	    (cfg->metrics.endpoint && load_metrics(cfg, err, errsz)) ||
	    load_target(&traces_signal, flag_endpoint, &cfg->traces, err,
			errsz)) {
		otlp_config_free(cfg);
		return -1;
	}
	return 0;
}

static void target_free(struct otlp_target *t)
{
	free(t->endpoint);
	for (unsigned i = 0; i < t->nheaders; i++)
		free(t->headers[i]);
	free(t->ca_pem);
}

void otlp_config_free(struct otlp_config *cfg)
{
	target_free(&cfg->metrics);
	target_free(&cfg->traces);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- request pieces --------------------------------------------------- */

void otlp_kv_strn(struct pb_buf *b, uint32_t field, const char *key,
		  const char *value, size_t len)
{
	size_t kv = pb_begin(b, field), any;

	pb_string(b, KV_KEY, key);
	any = pb_begin(b, KV_VALUE);
	pb_bytes(b, ANY_STRING, value, len);
	pb_end(b, any);
	pb_end(b, kv);
}

void otlp_kv_string(struct pb_buf *b, uint32_t field, const char *key,
		    const char *value)
{
	otlp_kv_strn(b, field, key, value, strlen(value));
}

void otlp_kv_int(struct pb_buf *b, uint32_t field, const char *key,
		 int64_t value)
{
	size_t kv = pb_begin(b, field), any;

	pb_string(b, KV_KEY, key);
	any = pb_begin(b, KV_VALUE);
	pb_uint(b, ANY_INT, (uint64_t)value);
	pb_end(b, any);
	pb_end(b, kv);
}

void otlp_resource(struct pb_buf *b, uint32_t field, const char *service)
{
	size_t res = pb_begin(b, field);
	struct lastseen_process proc;
	char host[256] = "";

	otlp_kv_string(b, RESOURCE_ATTRIBUTES, "service.name", service);
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
		otlp_kv_string(b, RESOURCE_ATTRIBUTES, "host.name", host);
	if (lastseen_get(service, &proc)) {
		otlp_kv_int(b, RESOURCE_ATTRIBUTES, "process.pid", proc.pid);
		otlp_kv_string(b, RESOURCE_ATTRIBUTES,
			       "process.executable.name", proc.exe);
		if (proc.container[0])
			otlp_kv_string(b, RESOURCE_ATTRIBUTES, "container.id",
				       proc.container);
		if (proc.namespace[0])
			otlp_kv_string(b, RESOURCE_ATTRIBUTES,
				       "service.namespace", proc.namespace);
		if (proc.pod_uid[0])
			otlp_kv_string(b, RESOURCE_ATTRIBUTES, "k8s.pod.uid",
				       proc.pod_uid);
	}
	pb_end(b, res);
}

void otlp_scope(struct pb_buf *b, uint32_t field)
{
	size_t sc = pb_begin(b, field);

	pb_string(b, SCOPE_NAME, "sonde");
	pb_string(b, SCOPE_VERSION, SONDE_VERSION);
	pb_end(b, sc);
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

/* ---- self-metrics ----------------------------------------------------- */

static const char *const result_names[OTLP_RESULT_COUNT] = {
	[OTLP_RESULT_SUCCESS] = "success", [OTLP_RESULT_PARTIAL] = "partial",
	[OTLP_RESULT_RETRIED] = "retried", [OTLP_RESULT_FAILED] = "failed",
	[OTLP_RESULT_DROPPED] = "dropped",
};

static void count_result(struct otlp_stats *st, enum otlp_result r,
			 uint64_t duration_ns)
{
	pthread_mutex_lock(&st->lock);
	st->results[r]++;
	if (st->hist && duration_ns)
		histogram_observe(st->hist, &st->bounds, duration_ns);
	pthread_mutex_unlock(&st->lock);
}

static void collect_exports(const struct self_metric *m, struct self_sink *sink)
{
	struct otlp_stats *st =
		(struct otlp_stats *)((char *)m -
				      offsetof(struct otlp_stats, exports));

	pthread_mutex_lock(&st->lock);
	for (int i = 0; st->hist && i < OTLP_RESULT_COUNT; i++)
		self_emit_u64(sink, &result_names[i], st->results[i]);
	pthread_mutex_unlock(&st->lock);
}

static void collect_durations(const struct self_metric *m,
			      struct self_sink *sink)
{
	struct otlp_stats *st =
		(struct otlp_stats *)((char *)m -
				      offsetof(struct otlp_stats, durations));

	pthread_mutex_lock(&st->lock);
	if (st->hist)
		self_emit_histogram(sink, NULL, st->hist, &st->bounds);
	pthread_mutex_unlock(&st->lock);
}

void otlp_stats_register(struct otlp_stats *st)
{
	st->exports.unit = "{attempt}";
	st->exports.kind = SELF_COUNTER;
	st->exports.nlabels = 1;
	st->exports.labels[0] = "result";
	st->exports.otel_labels[0] = "sonde.otlp.export.result";
	st->exports.collect = collect_exports;
	st->durations.unit = "s";
	st->durations.kind = SELF_HISTOGRAM;
	st->durations.collect = collect_durations;
	self_register(&st->exports);
	self_register(&st->durations);
}

static void stats_start(struct otlp_stats *st)
{
	pthread_mutex_lock(&st->lock);
	histogram_bounds_default(&st->bounds);
	st->hist = calloc(1, histogram_size(&st->bounds));
	pthread_mutex_unlock(&st->lock);
}

static void stats_stop(struct otlp_stats *st)
{
	pthread_mutex_lock(&st->lock);
	free(st->hist);
	st->hist = NULL;
	pthread_mutex_unlock(&st->lock);
}

/* ---- where services run ----------------------------------------------- */

/* Senders running: the process table is on while there is one. */
static pthread_mutex_t lastseen_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned lastseen_users;

static void lastseen_hold(bool hold)
{
	pthread_mutex_lock(&lastseen_lock);
	if (hold && lastseen_users++ == 0) {
		/* Services' processes are noted from now on, for their
		 * resources. */
		lastseen_enable(true);
	} else if (!hold && lastseen_users && --lastseen_users == 0) {
		lastseen_enable(false);
		lastseen_reset();
	}
	pthread_mutex_unlock(&lastseen_lock);
}

/* ---- the sender ------------------------------------------------------- */

struct request {
	uint8_t *body;
	size_t len;
	unsigned items;
};

/* What one attempt came to. */
struct outcome {
	enum otlp_result result;
	int64_t rejected;
	int64_t retry_after_ms; /* -1: none given */
	bool aborted;		/* shutting down */
	char why[192];
};

struct otlp_sender {
	const struct otlp_target *t;
	struct otlp_sender_ops ops;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping, woken;
	uint64_t flush_deadline_ns; /* 0 until the final export */

	struct request queue[QUEUE_MAX];
	unsigned qhead, qlen;
	size_t qbytes;
	unsigned failures; /* attempts failed in a row */
	uint64_t retry_at; /* monotonic: the next attempt after one */
	bool curl_ready;   /* curl_global_init succeeded */

	CURL *curl;
	struct curl_slist *headers;
	struct pb_buf response;
	int64_t response_retry_after;
};

static bool is_stopping(struct otlp_sender *s)
{
	bool stopping;

	pthread_mutex_lock(&s->lock);
	stopping = s->stopping;
	pthread_mutex_unlock(&s->lock);
	return stopping;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct otlp_sender *s = arg;

	if (s->response.len + size * n > RESPONSE_CAP)
		return 0; /* ends the transfer: the rest is not read */
	pb_raw(&s->response, data, size * n);
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct otlp_sender *s = arg;
	size_t len = size * n;
	char value[128];

	if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
		snprintf(value, sizeof(value), "%.*s", (int)(len - 12),
			 data + 12);
		value[strcspn(value, "\r\n")] = '\0';
		s->response_retry_after =
			otlp_retry_after_ms(value, (int64_t)time(NULL));
	}
	return len;
}

/* Aborts a transfer on shutdown, or after the final export's budget. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
		       curl_off_t d)
{
	struct otlp_sender *s = arg;
	uint64_t deadline;
	bool stopping;

	(void)a, (void)b, (void)c, (void)d;
	pthread_mutex_lock(&s->lock);
	stopping = s->stopping;
	deadline = s->flush_deadline_ns;
	pthread_mutex_unlock(&s->lock);
	if (!stopping)
		return 0;
	return !deadline || clock_monotonic_ns() > deadline;
}

static int curl_setup(struct otlp_sender *s)
{
	const struct otlp_target *t = s->t;
	CURL *curl;
	char ua[64];

	curl = s->curl = curl_easy_init();
	if (!curl)
		return -1;
	s->headers =
		curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	if (t->gzip)
		s->headers =
			curl_slist_append(s->headers, "Content-Encoding: gzip");
	for (unsigned i = 0; i < t->nheaders; i++)
		s->headers = curl_slist_append(s->headers, t->headers[i]);
	/* No "Expect: 100-continue" round trip for large bodies. */
	s->headers = curl_slist_append(s->headers, "Expect:");
	if (!s->headers)
		return -1;
	snprintf(ua, sizeof(ua), "sonde/%s", SONDE_VERSION);
	curl_easy_setopt(curl, CURLOPT_URL, t->endpoint);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, s);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (t->ca_pem) {
		struct curl_blob blob = { t->ca_pem, t->ca_len,
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

static void classify_http(struct otlp_sender *s, long code, struct outcome *o)
{
	char msg[128];

	if (code >= 200 && code < 300) {
		o->result = OTLP_RESULT_SUCCESS;
		if (otlp_parse_response(s->response.data, s->response.len,
					&o->rejected, msg, sizeof(msg)) == 0 &&
		    (o->rejected || msg[0])) {
			o->result = OTLP_RESULT_PARTIAL;
			snprintf(o->why, sizeof(o->why),
				 "partial success: %" PRId64 " %s rejected: %s",
				 o->rejected, s->ops.what,
				 msg[0] ? msg : "(no message)");
		} else {
			o->rejected = 0;
		}
		return;
	}
	o->result = retryable_status(code) ? OTLP_RESULT_RETRIED :
					     OTLP_RESULT_FAILED;
	o->retry_after_ms = s->response_retry_after;
	snprintf(o->why, sizeof(o->why), "HTTP status %ld", code);
}

static void send_once(struct otlp_sender *s, const struct request *r,
		      struct outcome *o)
{
	CURLcode rc;
	long code = 0;

	memset(o, 0, sizeof(*o));
	o->retry_after_ms = -1;
	s->response.len = 0;
	s->response.failed = false;
	s->response_retry_after = -1;
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)r->len);
	rc = curl_easy_perform(s->curl);
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		o->aborted = true;
		o->result = OTLP_RESULT_FAILED;
		snprintf(o->why, sizeof(o->why), "cut short by shutdown");
	} else if ((rc == CURLE_OK || rc == CURLE_WRITE_ERROR) && code) {
		classify_http(s, code, o);
	} else {
		o->result = permanent_curl_error(rc) ? OTLP_RESULT_FAILED :
						       OTLP_RESULT_RETRIED;
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

static void report(struct otlp_sender *s, unsigned items, enum otlp_result r,
		   int64_t rejected)
{
	if (s->ops.done && items)
		s->ops.done(s->ops.arg, items, r, rejected);
}

/* The head leaves the queue with result r. */
static void queue_pop(struct otlp_sender *s, enum otlp_result r,
		      int64_t rejected)
{
	struct request *head = &s->queue[s->qhead];

	report(s, head->items, r, rejected);
	s->qbytes -= head->len;
	free(head->body);
	head->body = NULL;
	s->qhead = (s->qhead + 1) % QUEUE_MAX;
	s->qlen--;
}

static void queue_push(struct otlp_sender *s, struct request r)
{
	bool latest = s->ops.latest_only;

	/* Cumulative data: the newest request holds everything. Otherwise
	 * the oldest is given up when the queue is full. */
	while (s->qlen && (latest || s->qlen == QUEUE_MAX ||
			   s->qbytes + r.len > QUEUE_MAX_BYTES)) {
		if (!latest)
			count_result(s->ops.stats, OTLP_RESULT_DROPPED, 0);
		queue_pop(s, OTLP_RESULT_DROPPED, 0);
	}
	s->queue[(s->qhead + s->qlen) % QUEUE_MAX] = r;
	s->qlen++;
	s->qbytes += r.len;
}

/* Asks the owner for the next request and queues it. */
static void collect(struct otlp_sender *s, bool last, bool *again)
{
	struct pb_buf b = { 0 };
	struct request r;

	r.items = s->ops.collect(s->ops.arg, &b, last, again);
	if (!r.items || b.failed) {
		if (b.failed) {
			log_error("%s: out of memory encoding a request",
				  s->ops.name);
			report(s, r.items, OTLP_RESULT_DROPPED, 0);
		}
		pb_release(&b);
		return;
	}
	r.body = b.data;
	r.len = b.len;
	if (s->t->gzip && gzip_body(&r)) {
		log_error("%s: gzip failed; request dropped", s->ops.name);
		free(r.body);
		count_result(s->ops.stats, OTLP_RESULT_DROPPED, 0);
		report(s, r.items, OTLP_RESULT_DROPPED, 0);
		return;
	}
	queue_push(s, r);
}

/* Sleeps until the monotonic deadline, a wake-up or a stop request. */
static void sleep_until(struct otlp_sender *s, uint64_t deadline_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000ull),
			       .tv_nsec = (long)(deadline_ns % 1000000000ull) };

	pthread_mutex_lock(&s->lock);
	while (!s->stopping && !s->woken && clock_monotonic_ns() < deadline_ns)
		if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&s->lock);
}

/* Whether a wake-up came, forgetting it. */
static bool take_wake(struct otlp_sender *s)
{
	bool woken;

	pthread_mutex_lock(&s->lock);
	woken = s->woken;
	s->woken = false;
	pthread_mutex_unlock(&s->lock);
	return woken;
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
static bool deliver_head(struct otlp_sender *s)
{
	const char *name = s->ops.name, *url = s->t->endpoint;
	uint64_t t0 = clock_monotonic_ns(), delay_ms;
	struct outcome o;

	send_once(s, &s->queue[s->qhead], &o);
	if (o.aborted)
		return false;
	count_result(s->ops.stats, o.result, clock_monotonic_ns() - t0);
	switch (o.result) {
	case OTLP_RESULT_SUCCESS:
	case OTLP_RESULT_PARTIAL:
		if (s->failures)
			log_info("%s: exporting to %s again, after %u failed "
				 "attempts",
				 name, url, s->failures);
		if (o.result == OTLP_RESULT_PARTIAL)
			log_error("%s: %s: %s", name, url, o.why);
		s->failures = 0;
		queue_pop(s, o.result, o.rejected);
		return true;
	case OTLP_RESULT_RETRIED:
		++s->failures;
		delay_ms = o.retry_after_ms >= 0 ?
				   (uint64_t)o.retry_after_ms :
				   otlp_backoff_ms(s->failures, random_u32());
		if (s->failures == 1)
			log_error("%s: export to %s failed (%s); retrying "
				  "with backoff",
				  name, url, o.why);
		log_debug("%s: retry %u in %" PRIu64 " ms (%s)", name,
			  s->failures, delay_ms, o.why);
		s->retry_at = clock_monotonic_ns() + delay_ms * 1000000ull;
		return false;
	default:
		log_error("%s: export to %s rejected (%s); not retried", name,
			  url, o.why);
		s->failures = 0;
		queue_pop(s, OTLP_RESULT_FAILED, 0);
		return true;
	}
}

/* Collects while the owner has more, and sends, until the budget runs
 * out or the collector asks to wait. */
static void final_flush(struct otlp_sender *s)
{
	bool again = true;
	struct outcome o;

	pthread_mutex_lock(&s->lock);
	s->flush_deadline_ns =
		clock_monotonic_ns() + FLUSH_BUDGET_MS * 1000000ull;
	pthread_mutex_unlock(&s->lock);
	while (again && clock_monotonic_ns() < s->flush_deadline_ns) {
		again = false;
		collect(s, true, &again);
		while (s->qlen && clock_monotonic_ns() < s->flush_deadline_ns) {
			uint64_t t0 = clock_monotonic_ns();

			send_once(s, &s->queue[s->qhead], &o);
			if (o.aborted)
				return;
			count_result(s->ops.stats, o.result,
				     clock_monotonic_ns() - t0);
			if (o.result == OTLP_RESULT_RETRIED)
				return;
			queue_pop(s, o.result, o.rejected);
		}
	}
}

static void *sender_main(void *arg)
{
	struct otlp_sender *s = arg;
	uint64_t interval_ns = (uint64_t)s->ops.interval_ms * 1000000ull;
	uint64_t next_collect = clock_monotonic_ns() + interval_ns, now;

	/* The code that talks to the network holds no capability: /proc's
	 * cgroup files are world-readable. */
	if (privs_drop_thread())
		log_error("%s: cannot drop the exporter thread's "
			  "capabilities",
			  s->ops.name);

	while (!is_stopping(s)) {
		bool due, again = false;

		now = clock_monotonic_ns();
		due = now >= next_collect;
		if (take_wake(s) || due)
			collect(s, false, &again);
		if (due) {
			next_collect += interval_ns;
			if (next_collect <= now)
				next_collect = now + interval_ns;
		}
		if (again)
			otlp_sender_wake(s);
		while (s->qlen && clock_monotonic_ns() >= s->retry_at &&
		       !is_stopping(s) && deliver_head(s))
			;
		sleep_until(s, s->qlen && s->retry_at < next_collect ?
				       s->retry_at :
				       next_collect);
	}
	final_flush(s);
	return NULL;
}

static void sender_free(struct otlp_sender *s)
{
	while (s->qlen)
		queue_pop(s, OTLP_RESULT_DROPPED, 0);
	curl_easy_cleanup(s->curl);
	curl_slist_free_all(s->headers);
	if (s->curl_ready)
		curl_global_cleanup();
	pb_release(&s->response);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	stats_stop(s->ops.stats);
	free(s);
}

struct otlp_sender *otlp_sender_start(const struct otlp_target *t,
				      const struct otlp_sender_ops *ops)
{
	struct otlp_sender *s = calloc(1, sizeof(*s));
	pthread_condattr_t attr;
	int err;

	if (!s) {
		log_error("%s: out of memory", ops->name);
		return NULL;
	}
	s->t = t;
	s->ops = *ops;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &attr);
	pthread_condattr_destroy(&attr);
	stats_start(ops->stats);
	s->curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	if (!s->curl_ready || curl_setup(s)) {
		log_error("%s: cannot set up libcurl", ops->name);
		sender_free(s);
		return NULL;
	}
	lastseen_hold(true);
	err = pthread_create(&s->thread, NULL, sender_main, s);
	if (err) {
		log_error("%s: cannot start the exporter thread: %s", ops->name,
			  strerror(err));
		lastseen_hold(false);
		sender_free(s);
		return NULL;
	}
	return s;
}

void otlp_sender_wake(struct otlp_sender *s)
{
	pthread_mutex_lock(&s->lock);
	s->woken = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

void otlp_sender_stop(struct otlp_sender *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	lastseen_hold(false);
	sender_free(s);
}
