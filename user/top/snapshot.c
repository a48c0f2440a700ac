#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top/expo.h"
#include "top/snapshot.h"
#include "util/strbuf.h"

/* The histogram families top shows, by the names sonde exports them
 * under (user/metrics/families.c); the database one is the
 * OpenTelemetry convention's, shown once sonde measures it. */
static const struct {
	const char *name;
	enum top_kind kind;
} families[] = {
	{ "http_server_request_duration_seconds", TOP_HTTP_SERVER },
	{ "rpc_server_call_duration_seconds", TOP_GRPC_SERVER },
	{ "http_client_request_duration_seconds", TOP_HTTP_CLIENT },
	{ "rpc_client_call_duration_seconds", TOP_GRPC_CLIENT },
	{ "db_client_operation_duration_seconds", TOP_DB_CLIENT },
	{ "db_server_operation_duration_seconds", TOP_DB_SERVER },
};

static const char *const kind_names[TOP_NKINDS] = {
	[TOP_HTTP_SERVER] = "http-server", [TOP_GRPC_SERVER] = "grpc-server",
	[TOP_HTTP_CLIENT] = "http-client", [TOP_GRPC_CLIENT] = "grpc-client",
	[TOP_DB_CLIENT] = "db-client",	   [TOP_DB_SERVER] = "db-server",
};

const char *top_kind_name(enum top_kind kind)
{
	return kind < TOP_NKINDS ? kind_names[kind] : "?";
}

bool top_kind_serves(enum top_kind kind)
{
	return kind == TOP_HTTP_SERVER || kind == TOP_GRPC_SERVER ||
	       kind == TOP_DB_SERVER;
}

/* The family a sample's name belongs to and which of its lines it is:
 * 'b' for a bucket, 'c' for the count, 0 for anything else. */
static int family_of(const char *name, char *which)
{
	size_t n = strlen(name);

	*which = 0;
	if (n > 7 && strcmp(name + n - 7, "_bucket") == 0) {
		*which = 'b';
		n -= 7;
	} else if (n > 6 && strcmp(name + n - 6, "_count") == 0) {
		*which = 'c';
		n -= 6;
	} else {
		return -1;
	}
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (strlen(families[i].name) == n &&
		    strncmp(families[i].name, name, n) == 0)
			return (int)i;
	return -1;
}

static const char *label_or_empty(const struct expo_sample *s, const char *name)
{
	const char *v = expo_label(s, name);

	return v ? v : "";
}

/* Whether an HTTP status label is a failure: not a status at all (no
 * response), or at least limit (500 served, 400 made). */
static bool http_failed(const char *status, long limit)
{
	char *end;
	long code = strtol(status, &end, 10);

	return end == status || *end || code >= limit;
}

/* gRPC statuses that fail a call on the server side, as sonde counts
 * them (user/proto/http.c): the server's own faults, not the caller's (a
 * NOT_FOUND, an INVALID_ARGUMENT). A client counts every status but OK. */
static bool grpc_server_failed(const char *status)
{
	static const char *const faults[] = {
		"UNKNOWN",  "DEADLINE_EXCEEDED", "UNIMPLEMENTED",
		"INTERNAL", "UNAVAILABLE",	 "DATA_LOSS"
	};

	for (size_t i = 0; i < sizeof(faults) / sizeof(*faults); i++)
		if (strcmp(status, faults[i]) == 0)
			return true;
	return false;
}

/* Control bytes in s (from whatever answered at the URL) become '?', so
 * that no label moves the terminal's cursor. */
static char *printable(char *s)
{
	for (char *c = s; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return s;
}

static char *joined(const char *a, const char *sep, const char *b)
{
	char *out;

	if (!*b)
		return strdup(a);
	if (!*a)
		return strdup(b);
	if (asprintf(&out, "%s%s%s", a, sep, b) < 0)
		return NULL;
	return out;
}

/* Fills in what a series is about from the labels of its first line. */
static int describe(struct top_series *t, const struct expo_sample *s)
{
	const char *status = "";

	t->service = strdup(label_or_empty(s, "service_name"));
	t->peer = joined(label_or_empty(s, "server_address"), ":",
			 label_or_empty(s, "server_port"));
	if (top_kind_serves(t->kind)) {
		free(t->peer);
		t->peer = strdup("");
	}
	switch (t->kind) {
	case TOP_HTTP_SERVER:
	case TOP_HTTP_CLIENT:
		t->op = joined(label_or_empty(s, "http_request_method"), " ",
			       label_or_empty(s, "http_route"));
		status = label_or_empty(s, "http_response_status_code");
		t->error = http_failed(status,
				       t->kind == TOP_HTTP_SERVER ? 500 : 400);
		break;
	case TOP_GRPC_SERVER:
	case TOP_GRPC_CLIENT:
		t->op = strdup(label_or_empty(s, "rpc_method"));
		status = label_or_empty(s, "rpc_response_status_code");
		t->error = t->kind == TOP_GRPC_SERVER ?
				   grpc_server_failed(status) :
				   strcmp(status, "OK") != 0;
		break;
	default:
		t->op = joined(label_or_empty(s, "db_operation_name"), " ",
			       label_or_empty(s, "db_collection_name"));
		status = label_or_empty(s, "db_response_status_code");
		t->error = *label_or_empty(s, "error_type") != '\0';
		break;
	}
	t->status = strdup(status);
	printable(t->service);
	printable(t->op);
	printable(t->peer);
	printable(t->status);
	return t->service && t->peer && t->op && t->status ? 0 : -1;
}

static void series_free(struct top_series *t)
{
	if (!t)
		return;
	free(t->service);
	free(t->op);
	free(t->peer);
	free(t->status);
	free(t);
}

/* The series a histogram line belongs to, made on its first line. */
static struct top_series *series_of(struct top_snapshot *snap, int family,
				    const struct expo_sample *s)
{
	struct strbuf key = { 0 };
	struct top_series *t;

	strbuf_puts(&key, families[family].name);
	for (int i = 0; i < s->nlabels; i++) {
		if (strcmp(s->labels[i].name, "le") == 0)
			continue;
		strbuf_printf(&key, "\x1f%s=%s", s->labels[i].name,
			      s->labels[i].value);
	}
	if (key.failed)
		return NULL;
	t = strmap_get(&snap->by_key, key.data);
	if (t)
		goto out;
	if (snap->nseries == snap->cap) {
		size_t cap = snap->cap ? snap->cap * 2 : 64;
		struct top_series **grown =
			realloc(snap->series, cap * sizeof(*grown));

		if (!grown)
			goto out;
		snap->series = grown;
		snap->cap = cap;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->kind = families[family].kind;
	if (describe(t, s) ||
	    !(t->key = strmap_put(&snap->by_key, key.data, t))) {
		series_free(t);
		t = NULL;
		goto out;
	}
	snap->series[snap->nseries++] = t;
out:
	strbuf_release(&key);
	return t;
}

static int note_histogram(struct top_snapshot *snap, int family, char which,
			  const struct expo_sample *s)
{
	struct top_series *t;
	const char *le;

	/* A count is a whole number from 0 to 2^53 (where a double stops
	 * holding every integer): anything else is not sonde's. */
	if (!(s->value >= 0 && s->value <= 9007199254740992.0)) {
		snap->broken++;
		return 0;
	}
	t = series_of(snap, family, s);
	if (!t)
		return -1;
	if (which == 'c') {
		t->count = s->value;
		return 0;
	}
	le = expo_label(s, "le");
	if (!le || t->nbuckets == TOP_MAX_BUCKETS) {
		snap->broken++;
		return 0;
	}
	t->bound[t->nbuckets] = strtod(le, NULL);
	t->cum[t->nbuckets++] = s->value;
	return 0;
}

static int note_conns(struct top_snapshot *snap, const struct expo_sample *s)
{
	char *key = joined(label_or_empty(s, "service_name"), "\x1f",
			   label_or_empty(s, "role"));
	double *v;
	int rc = -1;

	if (!key)
		return -1;
	v = strmap_get(&snap->conns, key);
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (!v || !strmap_put(&snap->conns, key, v)) {
			free(v);
			goto out;
		}
	}
	*v += s->value;
	rc = 0;
out:
	free(key);
	return rc;
}

static int note_sample(struct top_snapshot *snap, const struct expo_sample *s)
{
	const char *version;
	char which;
	int family = family_of(s->name, &which);

	if (family >= 0)
		return note_histogram(snap, family, which, s);
	if (strcmp(s->name, "sonde_tcp_active_connections") == 0)
		return note_conns(snap, s);
	if (strcmp(s->name, "sonde_build_info") == 0) {
		version = label_or_empty(s, "version");
		snap->is_sonde = true;
		snprintf(snap->version, sizeof(snap->version), "%s", version);
	} else if (strcmp(s->name, "sonde_events_received_total") == 0) {
		snap->events += s->value;
	} else if (strcmp(s->name, "sonde_events_dropped_total") == 0) {
		snap->drops += s->value;
	} else if (strcmp(s->name, "sonde_series") == 0) {
		snap->nseries_total = s->value;
	}
	return 0;
}

int top_snapshot_parse(struct top_snapshot *snap, const char *body, size_t len)
{
	char *text = malloc(len + 1), *line, *next;
	struct expo_sample s;

	if (!text)
		return -1;
	memcpy(text, body, len);
	text[len] = '\0';
	for (line = text; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		switch (expo_parse_line(line, &s)) {
		case EXPO_SKIP:
			break;
		case EXPO_BROKEN:
			snap->broken++;
			break;
		case EXPO_SAMPLE:
			if (note_sample(snap, &s)) {
				free(text);
				top_snapshot_release(snap);
				return -1;
			}
		}
	}
	free(text);
	return 0;
}

double top_snapshot_conns(const struct top_snapshot *snap, const char *service,
			  const char *role)
{
	char *key = joined(service, "\x1f", role);
	double *v = key ? strmap_get(&snap->conns, key) : NULL;

	free(key);
	return v ? *v : 0;
}

static void free_value(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

void top_snapshot_release(struct top_snapshot *snap)
{
	for (size_t i = 0; i < snap->nseries; i++)
		series_free(snap->series[i]);
	free(snap->series);
	strmap_clear(&snap->by_key);
	strmap_each(&snap->conns, free_value, NULL);
	strmap_clear(&snap->conns);
	memset(snap, 0, sizeof(*snap));
}
