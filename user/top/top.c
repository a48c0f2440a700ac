#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/options.h"
#include "top/top.h"
#include "util/clock.h"

#define TOP_DEFAULT_URL "http://127.0.0.1:9464"
#define TOP_MIN_INTERVAL 0.2
#define TOP_MAX_INTERVAL 3600.0

static const char usage[] =
	"Usage: sonde top [OPTION]...\n"
	"Shows each service's request rate, error share and p50/p95/p99 "
	"latency over the\nlast interval, from a running sonde, refreshed "
	"like top(1).\n"
	"\n"
	"  -u, --url URL           where sonde listens (default " TOP_DEFAULT_URL
	")\n"
	"  -d, --delay SECONDS     between reads (default 2; 0.2 to 3600)\n"
	"      --once              print one table after two reads and exit\n"
	"                          (the default when stdout is not a "
	"terminal)\n"
	"      --json              print the same as a JSON array and exit\n"
	"      --tls-ca FILE       verify sonde's certificate against this CA "
	"(PEM)\n"
	"      --tls-insecure      do not verify sonde's certificate\n"
	"      --basic-auth-file FILE\n"
	"                          send user:password from the file's first "
	"line\n"
	"      --error-threshold PERCENT\n"
	"                          colour rows with more errors (default 1)\n"
	"      --latency-threshold DURATION\n"
	"                          colour rows with a slower p99 (default "
	"500ms)\n"
	"  -h, --help              show this help and exit\n"
	"\n"
	"Keys: P sort by p99, R by rate, E by errors, N by name, < and > by "
	"the column\nleft or right; / filter by service; up/down and Enter "
	"show one service's\noperations, peers and statuses; Esc back; q "
	"quit.\n";

enum {
	OPT_ONCE = 256,
	OPT_JSON,
	OPT_TLS_CA,
	OPT_TLS_INSECURE,
	OPT_AUTH_FILE,
	OPT_ERROR_THRESHOLD,
	OPT_LATENCY_THRESHOLD,
};

static const struct option top_options[] = {
	{ "url", required_argument, NULL, 'u' },
	{ "delay", required_argument, NULL, 'd' },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "tls-insecure", no_argument, NULL, OPT_TLS_INSECURE },
	{ "basic-auth-file", required_argument, NULL, OPT_AUTH_FILE },
	{ "error-threshold", required_argument, NULL, OPT_ERROR_THRESHOLD },
	{ "latency-threshold", required_argument, NULL, OPT_LATENCY_THRESHOLD },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static void fail(const char *fmt, const char *what)
{
	fprintf(stderr, "sonde top: ");
	fprintf(stderr, fmt, what);
	fputc('\n', stderr);
}

static int parse_number(const char *text, double min, double max, double *out)
{
	char *end;
	double v = strtod(text, &end);

	if (end == text || *end || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

void top_format_duration(double seconds, char *out, size_t outsz)
{
	if (isnan(seconds))
		snprintf(out, outsz, "-");
	else if (seconds < 0.001)
		snprintf(out, outsz, "%.0fus", seconds * 1e6);
	else if (seconds < 0.01)
		snprintf(out, outsz, "%.2fms", seconds * 1e3);
	else if (seconds < 1)
		snprintf(out, outsz, "%.1fms", seconds * 1e3);
	else
		snprintf(out, outsz, "%.2fs", seconds);
}

int top_session_read(struct top_session *s, char *err, size_t errsz)
{
	struct strbuf body = { 0 };
	struct top_snapshot next = { 0 };
	int rc = -1;

	if (top_fetch(&s->src, &body, err, errsz))
		goto out;
	if (top_snapshot_parse(&next, body.data ? body.data : "", body.len)) {
		snprintf(err, errsz, "out of memory reading %s", s->src.url);
		goto out;
	}
	if (!next.is_sonde) {
		snprintf(err, errsz,
			 "%s answers, but not as sonde (no sonde_build_info "
			 "in it)",
			 s->src.url);
		top_snapshot_release(&next);
		goto out;
	}
	top_snapshot_release(&s->prev);
	s->prev = s->cur;
	s->prev_ns = s->cur_ns;
	s->cur = next;
	s->cur_ns = clock_monotonic_ns();
	s->reads++;
	rc = 0;
out:
	strbuf_release(&body);
	return rc;
}

double top_session_seconds(const struct top_session *s)
{
	return s->reads < 2 ? 0 : (s->cur_ns - s->prev_ns) / 1e9;
}

static void sleep_seconds(double seconds)
{
	struct timespec ts = {
		.tv_sec = (time_t)seconds,
		.tv_nsec = (long)((seconds - (time_t)seconds) * 1e9),
	};

	while (nanosleep(&ts, &ts))
		;
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json_number(const char *name, double v)
{
	if (isnan(v))
		printf(", \"%s\": null", name);
	else
		printf(", \"%s\": %.9g", name, v);
}

static void print_json(const struct top_table *t)
{
	printf("[");
	for (size_t i = 0; i < t->n; i++) {
		const struct top_row *r = &t->rows[i];

		printf(i ? ",\n {\"service\": " : "{\"service\": ");
		print_json_string(r->service);
		printf(", \"kind\": \"%s\"", top_kind_name(r->kind));
		print_json_number("rate", r->rate);
		print_json_number("error_ratio", r->error_ratio);
		print_json_number("p50", r->p50);
		print_json_number("p95", r->p95);
		print_json_number("p99", r->p99);
		print_json_number("requests", r->requests);
		print_json_number("errors", r->errors);
		print_json_number("active_connections", r->conns);
		printf("}");
	}
	printf("]\n");
}

static void print_table(const struct top_table *t)
{
	size_t width = 7;
	char p[3][32];

	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->rows[i].service) > width)
			width = strlen(t->rows[i].service);
	printf("%-*s %9s %6s %8s %8s %8s %6s  %s\n", (int)width, "SERVICE",
	       "REQ/S", "ERR%", "P50", "P95", "P99", "CONNS", "KIND");
	for (size_t i = 0; i < t->n; i++) {
		const struct top_row *r = &t->rows[i];

		top_format_duration(r->p50, p[0], sizeof(p[0]));
		top_format_duration(r->p95, p[1], sizeof(p[1]));
		top_format_duration(r->p99, p[2], sizeof(p[2]));
		printf("%-*s %9.1f %6.1f %8s %8s %8s %6.0f  %s\n", (int)width,
		       r->service, r->rate, r->error_ratio * 100, p[0], p[1],
		       p[2], r->conns, top_kind_name(r->kind));
	}
}

/* --once and --json: two reads an interval apart, one table. */
static int run_once(struct top_session *s, bool json)
{
	struct top_table t;
	char err[512];

	if (top_session_read(s, err, sizeof(err)))
		goto failed;
	sleep_seconds(s->interval);
	if (top_session_read(s, err, sizeof(err)))
		goto failed;
	if (top_table_build(&t, &s->prev, &s->cur, top_session_seconds(s),
			    TOP_BY_SERVICE, NULL)) {
		fail("%s", "out of memory");
		return 1;
	}
	top_table_sort(&t, TOP_SORT_RATE);
	if (json)
		print_json(&t);
	else
		print_table(&t);
	top_table_release(&t);
	return 0;
failed:
	fail("%s", err);
	return 1;
}

int top_main(int argc, char **argv)
{
	struct top_session s = {
		.interval = 2,
		.error_threshold = 0.01,
		.latency_threshold = 0.5,
	};
	const char *url = TOP_DEFAULT_URL;
	bool once = false, json = false;
	char err[512];
	uint64_t ms;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "u:d:h", top_options, NULL)) !=
	       -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'd':
			if (parse_number(optarg, TOP_MIN_INTERVAL,
					 TOP_MAX_INTERVAL, &s.interval)) {
				fail("-d %s: expected seconds from 0.2 to 3600",
				     optarg);
				return 2;
			}
			break;
		case OPT_ONCE:
			once = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_TLS_CA:
			s.src.ca_file = optarg;
			break;
		case OPT_TLS_INSECURE:
			s.src.insecure = true;
			break;
		case OPT_AUTH_FILE:
			s.src.auth_file = optarg;
			break;
		case OPT_ERROR_THRESHOLD:
			if (parse_number(optarg, 0, 100, &s.error_threshold)) {
				fail("--error-threshold %s: expected a percentage "
				     "from 0 to 100",
				     optarg);
				return 2;
			}
			s.error_threshold /= 100;
			break;
		case OPT_LATENCY_THRESHOLD:
			if (options_parse_duration_ms(optarg, &ms)) {
				fail("--latency-threshold %s: expected a duration "
				     "such as 250ms or 2s",
				     optarg);
				return 2;
			}
			s.latency_threshold = ms / 1000.0;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs("Try 'sonde top --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fail("unexpected argument '%s' (see sonde top --help)",
		     argv[optind]);
		return 2;
	}
	if (top_source_open(&s.src, url, err, sizeof(err))) {
		fail("%s", err);
		rc = 2;
		goto out;
	}
	if (gethostname(s.host, sizeof(s.host)))
		snprintf(s.host, sizeof(s.host), "?");
	/* The live view needs a terminal both ways: keys come from stdin. */
	if (once || json || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))
		rc = run_once(&s, json);
	else
		rc = top_tui_run(&s);
out:
	top_snapshot_release(&s.prev);
	top_snapshot_release(&s.cur);
	top_source_close(&s.src);
	return rc;
}
