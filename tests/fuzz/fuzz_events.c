/* libFuzzer target: what the kernel side hands the daemon, from bytes a
 * peer chose. The input is a run of records, each a 2-byte little-endian
 * length and that many bytes, fed to dispatch_record one after another (an
 * HTTP/2 connection's header blocks build up across them). Afterwards the
 * whole /metrics page and an OTLP export are made from what they left.
 *
 * Beyond crashes (ASan, UBSan), the page is checked: every line parses as
 * the text format, no series appears twice, and every label value is what
 * the README promises (printable, a known method, a 3-digit status, a
 * route that is a path or a placeholder, a port, an address), and no
 * value is negative. One that is not aborts the run with the line. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/otlp.h"
#include "export/prom.h"
#include "export/promproto.h"
#include "identity/labels.h"
#include "identity/procinfo.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "proto/dispatch.h"
#include "proto/events.h"
#include "proto/http2.h"
#include "sonde_events.h"
#include "util/pb.h"
#include "util/strbuf.h"

/* The largest records the kernel sends: an HTTP/2 piece, a database
 * connection's bytes. */
#define RECORD_MAX                                                        \
	((sizeof(struct sonde_h2_event) > sizeof(struct sonde_db_event) ? \
		  sizeof(struct sonde_h2_event) :                         \
		  sizeof(struct sonde_db_event)) +                        \
	 64)
/* Process ids no process has (above pid_max's ceiling): named by the
 * record's comm, as a process gone before its first event is. */
#define FAKE_TGID 0x7ffffff0u

static const char *const methods[] = { "GET",	 "HEAD",    "POST",    "PUT",
				       "DELETE", "CONNECT", "OPTIONS", "TRACE",
				       "PATCH",	 "_OTHER" };

/* The server family as built in, before the captured header is added. */
static struct metric_family server_family;

/* A fresh registry, with one captured header capped at 5 values: each
 * input starts from nothing, so a finding replays alone. */
static void setup(void)
{
	char *headers[] = { "header=X-Tenant-ID,label=tenant_id,max_values=5" };
	struct histogram_bounds b;
	struct registry_limits lim = { .max_routes_per_service = 20,
				       .max_peers_per_service = 8,
				       .max_series = 500 };
	char err[256];

	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	registry_enable_exphist();
	labels_reset();
	family_http_server = server_family;
	if (labels_init(&family_http_server, NULL, 0, headers, 1, err,
			sizeof(err))) {
		fprintf(stderr, "fuzz_events: %s\n", err);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	server_family = family_http_server;
	setup();
	registry_register_metrics();
	events_register_metrics();
	return 0;
}

static _Noreturn void fuzz_fail(const char *why, const char *line)
{
	fprintf(stderr, "fuzz_events: %s: %s\n", why, line);
	abort();
}

/* A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), or a label name (no ':'). */
static bool fuzz_name(char **p, bool metric)
{
	char *s = *p;

	for (; **p; (*p)++) {
		char c = **p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '_' || (metric && c == ':') ||
		      (*p > s && c >= '0' && c <= '9')))
			break;
	}
	return *p > s;
}

/* A quoted label value with the text format's three escapes; unescaped
 * into out. */
static bool fuzz_label_value(char **p, char *out, size_t outsz)
{
	size_t n = 0;

	if (**p != '"')
		return false;
	for ((*p)++; **p != '"'; (*p)++) {
		char c = **p;

		if (!c || n + 1 >= outsz)
			return false;
		if (c == '\\') {
			c = *++*p;
			if (c == 'n')
				c = '\n';
			else if (c != '\\' && c != '"')
				return false;
		}
		out[n++] = c;
	}
	(*p)++;
	out[n] = '\0';
	return true;
}

/* A sample value: a decimal number, +Inf, -Inf or NaN, ending the line. */
static bool fuzz_number(const char *p)
{
	char *end;

	if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 ||
	    strcmp(p, "NaN") == 0)
		return true;
	if (!*p || !((*p >= '0' && *p <= '9') || *p == '-'))
		return false;
	strtod(p, &end);
	return *end == '\0';
}

static bool in_list(const char *v, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v, list[i]) == 0)
			return true;
	return false;
}

static bool all_digits(const char *v, size_t min, size_t max)
{
	size_t n = strlen(v);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

/* Whether value is all [A-Z_] (a command, an error prefix), or empty
 * when empty is let. */
static bool upper_word(const char *v, size_t max, bool empty)
{
	size_t n = strlen(v);

	if (n > max || (!n && !empty))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'A' && v[i] <= 'Z') || v[i] == '_'))
			return false;
	return true;
}

/* The database families' labels (README, "Database and cache calls"). */
static bool db_label_ok(const char *name, const char *value)
{
	static const char *const systems[] = { "postgresql", "mysql", "mariadb",
					       "redis", "memcached" };
	size_t n = strlen(value);

	if (strcmp(name, "db_system_name") == 0)
		return in_list(value, systems,
			       sizeof(systems) / sizeof(*systems));
	if (strcmp(name, "db_operation_name") == 0)
		return upper_word(value, 23, false);
	if (strcmp(name, "db_collection_name") == 0) {
		if (strcmp(value, "_overflow") == 0)
			return true;
		for (size_t i = 0; i < n; i++)
			if (!((value[i] >= 'a' && value[i] <= 'z') ||
			      (value[i] >= 'A' && value[i] <= 'Z') ||
			      (value[i] >= '0' && value[i] <= '9') ||
			      value[i] == '_' || value[i] == '$' ||
			      value[i] == '.'))
				return false;
		return n <= 63;
	}
	if (strcmp(name, "db_response_status_code") == 0 ||
	    strcmp(name, "error_type") == 0) {
		for (size_t i = 0; i < n; i++)
			if (!((value[i] >= 'A' && value[i] <= 'Z') ||
			      (value[i] >= '0' && value[i] <= '9') ||
			      value[i] == '_'))
				return false;
		return n <= 15;
	}
	return true;
}

/* Whether value (unescaped) is one label name may carry. */
static bool label_ok(const char *name, const char *value)
{
	unsigned char a[16];

	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return false;
	if (strcmp(name, "http_request_method") == 0)
		return in_list(value, methods,
			       sizeof(methods) / sizeof(*methods));
	if (strcmp(name, "http_response_status_code") == 0)
		return all_digits(value, 3, 3) && value[0] >= '1' &&
		       value[0] <= '5';
	if (strcmp(name, "http_route") == 0)
		return strcmp(value, "_unknown") == 0 ||
		       strcmp(value, "_overflow") == 0 ||
		       (value[0] == '/' && strlen(value) <= 96 &&
			!strchr(value, ' '));
	if (strcmp(name, "server_port") == 0)
		return all_digits(value, 1, 5) && atoi(value) <= 65535;
	if (strcmp(name, "server_address") == 0)
		return strcmp(value, "_unknown") == 0 ||
		       strcmp(value, "_overflow") == 0 ||
		       inet_pton(AF_INET, value, a) == 1 ||
		       inet_pton(AF_INET6, value, a) == 1;
	if (strcmp(name, "service_name") == 0 || strcmp(name, "tenant_id") == 0)
		return strlen(value) <= 64;
	return db_label_ok(name, value);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks the text-format page; aborts with the offending line. */
static void check_page(char *page)
{
	char **series = NULL;
	size_t nseries = 0, cap = 0;
	char *line = page, *nl;

	for (; *line; line = nl + 1) {
		char name[128], value[512], *p = line, *key;
		size_t n;

		nl = strchr(line, '\n');
		if (!nl)
			fuzz_fail("page does not end in a newline", line);
		*nl = '\0';
		if (strncmp(line, "# HELP ", 7) == 0 ||
		    strncmp(line, "# TYPE ", 7) == 0)
			continue;
		key = p;
		if (!fuzz_name(&p, true))
			fuzz_fail("bad metric name", line);
		if (*p == '{') {
			p++;
			while (*p != '}') {
				char *lname = p;

				if (!fuzz_name(&p, false) || *p != '=')
					fuzz_fail("bad label name", line);
				n = (size_t)(p - lname);
				if (n >= sizeof(name))
					fuzz_fail("label name too long", line);
				memcpy(name, lname, n);
				name[n] = '\0';
				p++;
				if (!fuzz_label_value(&p, value, sizeof(value)))
					fuzz_fail("bad label value", line);
				if (!label_ok(name, value))
					fuzz_fail("label value out of its set",
						  line);
				if (*p == ',')
					p++;
				else if (*p != '}')
					fuzz_fail("bad label list", line);
			}
			p++;
		}
		if (*p != ' ' || !fuzz_number(p + 1))
			fuzz_fail("bad sample value", line);
		/* Counts, sums of durations and gauges of things: none
		 * below zero. */
		if (p[1] == '-')
			fuzz_fail("negative sample", line);
		*p = '\0';
		if (nseries == cap) {
			cap = cap ? 2 * cap : 256;
			series = realloc(series, cap * sizeof(*series));
			if (!series)
				abort();
		}
		series[nseries++] = key;
	}
	qsort(series, nseries, sizeof(*series), compare_strings);
	for (size_t i = 1; i < nseries; i++)
		if (strcmp(series[i - 1], series[i]) == 0)
			fuzz_fail("series twice on the page", series[i]);
	free(series);
}

static void feed(const uint8_t *data, size_t size)
{
	static _Alignas(8) unsigned char rec[RECORD_MAX];

	while (size >= 2) {
		size_t len =
			(size_t)(data[0] | data[1] << 8) % (RECORD_MAX + 1);
		struct sonde_event_header *hdr = (void *)rec;

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		memset(rec, 0, sizeof(rec));
		memcpy(rec, data, len);
		data += len;
		size -= len;
		if (len >= sizeof(*hdr))
			hdr->tgid = FAKE_TGID + hdr->tgid % 4;
		dispatch_record(NULL, rec, len);
	}
	dispatch_end_round();
}

/* The protobuf exposition, native histograms on: a run of
 * length-delimited messages that fill the body exactly. */
static void check_protobuf(void)
{
	struct strbuf sb = { 0 };
	const uint8_t *p, *end;

	promproto_configure(&(struct promproto_config){
		.native = true, .schema = 3, .max_buckets = 20 });
	promproto_render(&sb);
	p = (const uint8_t *)sb.data;
	end = p + sb.len;
	while (p && p < end) {
		uint64_t len = 0;
		int shift = 0;

		while (p < end && shift < 64) {
			len |= (uint64_t)(*p & 0x7f) << shift;
			shift += 7;
			if (!(*p++ & 0x80))
				break;
		}
		if (len > (uint64_t)(end - p)) {
			fprintf(stderr, "fuzz_events: a MetricFamily runs past "
					"the protobuf body\n");
			abort();
		}
		p += len;
	}
	strbuf_release(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf sb = { 0 };
	struct pb_buf pb = { 0 };
	char *page;

	feed(data, size);
	prom_render(&sb);
	page = strbuf_detach(&sb, NULL);
	/* FUZZ_PRINT=1: the page, to see what an input reaches. */
	if (getenv("FUZZ_PRINT"))
		fputs(page, stderr);
	check_page(page);
	free(page);
	otlp_encode(&pb, false, true, 1);
	pb_release(&pb);
	check_protobuf();
	http2_clear();
	procinfo_free();
	otlp_reset();
	registry_free();
	setup();
	return 0;
}
