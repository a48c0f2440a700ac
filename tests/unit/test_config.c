/* The config file and the options behind it; process selection rules;
 * captured-header labels. */
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"
#include "config/options.h"
#include "identity/labels.h"
#include "identity/selection.h"
#include "metrics/families.h"
#include "proto/http1.h"
#include "unit.h"

static char path[64];

/* Writes text to a temporary file; returns its path. */
static const char *write_file(const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/sonde-unit-XXXXXX");
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	return path;
}

static enum options_result load(struct sonde_options *o, char *err,
				const char *file, const char *flag,
				const char *value)
{
	char *argv[] = { "sonde",      "--config",    (char *)file,
			 (char *)flag, (char *)value, NULL };

	return options_parse(flag ? 5 : 3, argv, o, err, 512);
}

TEST(example_config_has_every_section)
{
	struct sonde_options o;
	char err[512];

	CHECK(load(&o, err, "deploy/sonde.yaml", NULL, NULL) == OPTIONS_RUN);
	CHECK_STR(o.listen_host, "127.0.0.1");
	CHECK(o.buckets.n == 14 && o.max_routes == 100);
	/* It leaves each family its default bounds. */
	CHECK(!o.buckets_given);
	CHECK(o.series_ttl_ms == 300000);
	CHECK(o.max_connections == 512 && !o.verbose);
	CHECK(o.max_tracked == 32768);
	CHECK(o.include.n == 0 && o.exclude.n == 3);
	CHECK_STR(o.exclude.items[1], "port=22");
	CHECK(o.services.n == 1);
	CHECK_STR(o.services.items[0],
		  "name=checkout,namespace=shop,exe=/srv/checkout/bin/*");
	CHECK(o.capture_headers.n == 1);
	CHECK_STR(o.capture_headers.items[0],
		  "header=X-Tenant-ID,label=tenant_id,max_values=100");
	options_free(&o);
}

TEST(every_key_loads)
{
	struct sonde_options o;
	char err[512];
	const char *file = write_file(
		"listen: '[::1]:9000'\npid: 77\nport: 8080\n"
		"buckets: 0.1,0.2\nmax_routes: 3\nmax_peers: 4\n"
		"max_series: 5\nmax_tracked_connections: 2048\n"
		"series_ttl: 1500ms\nverbose: yes\n"
		"endpoint:\n  tls_cert: /c.pem\n  tls_key: /k.pem\n"
		"  basic_auth_file: /users\n  max_connections: 9\n"
		"select:\n  include:\n    - exe: nginx\n    - 'pid=5'\n"
		"  exclude:\n    - {cgroup: /system.slice/*}\n"
		"    - container: 3f5c\n"
		"services:\n  - name: a\n    pid: 5\n"
		"labels: [container_id, k8s_pod_uid, service_namespace]\n"
		"http:\n  capture_headers:\n    - X-Request-Tenant\n"
		"hooks: syscall\n");

	CHECK(load(&o, err, file, NULL, NULL) == OPTIONS_RUN);
	CHECK_STR(o.listen_host, "::1");
	CHECK_STR(o.listen_port, "9000");
	CHECK(o.pid == 77 && o.port == 8080 && o.buckets.n == 2);
	CHECK(o.buckets_given);
	CHECK(o.max_routes == 3 && o.max_peers == 4 && o.max_series == 5);
	CHECK(o.max_tracked == 2048);
	CHECK(o.series_ttl_ms == 1500 && o.verbose);
	CHECK_STR(o.tls_cert, "/c.pem");
	CHECK_STR(o.tls_key, "/k.pem");
	CHECK_STR(o.auth_file, "/users");
	CHECK(o.max_connections == 9);
	CHECK(o.include.n == 2 && o.exclude.n == 2 && o.services.n == 1);
	CHECK_STR(o.include.items[1], "pid=5");
	CHECK_STR(o.exclude.items[0], "cgroup=/system.slice/*");
	CHECK(o.labels.n == 3 && o.capture_headers.n == 1);
	CHECK(o.hooks == CAPTURE_HOOKS_SYSCALL);
	options_free(&o);
	/* The flag overrides the file. */
	CHECK(load(&o, err, file, "--hooks", "socket") == OPTIONS_RUN);
	CHECK(o.hooks == CAPTURE_HOOKS_SOCKET);
	options_free(&o);
	unlink(file);
}

/* Each kind of mistake: the exact "FILE:LINE: reason". */
TEST(mistakes_name_file_line_and_reason)
{
	static const struct {
		const char *text;
		int line;
		const char *reason;
	} cases[] = {
		{ "port: 80\nnope: 1\n", 2, "unknown key 'nope'" },
		{ "endpoint:\n  tls: x\n", 2,
		  "unknown key 'tls' in 'endpoint'" },
		{ "max_peers: {a: 1}\n", 1,
		  "max_peers: expected a single value, got a mapping" },
		{ "select:\n  include: exe=nginx\n", 2,
		  "select.include: expected a list, got a single value" },
		{ "verbose: 2\n", 1, "verbose: '2' is not true or false" },
		{ "max_tracked_connections: 1023\n", 1,
		  "max_tracked_connections: '1023' is not a number from 1024 "
		  "to 1048576" },
		{ "select:\n  exclude:\n    - exe: 'a\\'\n", 3,
		  "select.exclude: bad glob 'a\\' for exe: it ends with a "
		  "backslash" },
		{ "select:\n  include:\n\n    - port: -1\n", 4,
		  "select.include: port '-1' is not a number from 1 to 65535" },
		{ "select:\n  include:\n    - port: [1]\n", 3,
		  "select.include: each entry is key: value, with a single "
		  "value" },
		{ "select:\n  include:\n    - port: 1\n      pid: 2\n", 3,
		  "select.include: rule 'port=1,pid=2' is not KIND=VALUE" },
		{ "services:\n  - exe: nginx\n", 2,
		  "services: service rule 'exe=nginx' needs a name" },
		{ "services:\n  - name: a\n    port: 80\n", 2,
		  "services: unknown service rule key 'port'" },
		{ "http:\n  capture_headers:\n    - header: 'X Tenant'\n", 3,
		  "http.capture_headers: 'X Tenant' is not a header name" },
		{ "http:\n  capture_headers:\n    - {header: A, label: 1x}\n",
		  3, "http.capture_headers: '1x' is not a Prometheus label" },
		{ "pid:\n", 1, "pid: no value given" },
		{ "listen: 'x:1'\n", 1, "listen: 'x' is not a numeric" },
		{ "buckets: [0.1, [0.2]]\n", 1,
		  "buckets: a list item is a list, expected a single value" },
		{ "max_routes: 1\n  bad indent: 2\n", 2, "YAML syntax: " },
		{ "port: 80\nhooks: sockets\n", 2,
		  "hooks: 'sockets' is not one of auto, socket, syscall" },
		/* A quoted value's control bytes are escaped: the reason
		 * stays on one line. */
		{ "select:\n  include:\n    - port: \"8\\n\\x01\"\n", 3,
		  "select.include: port '8\\n\\x01' is not a number from 1 "
		  "to 65535" },
	};
	struct sonde_options o;
	char err[512], want[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *file = write_file(cases[i].text);

		CHECK(load(&o, err, file, NULL, NULL) == OPTIONS_ERROR);
		snprintf(want, sizeof(want), "%s:%d: %s", file, cases[i].line,
			 cases[i].reason);
		if (strncmp(err, want, strlen(want)) != 0) {
			fprintf(stderr, "case %zu: got '%s'\n want '%s'\n", i,
				err, want);
			unit_failed_checks++;
		}
		CHECK(!strchr(err, '\n'));
		options_free(&o);
		unlink(file);
	}
}

TEST(flags_override_the_file)
{
	struct sonde_options o;
	char err[512];
	const char *file = write_file("max_routes: 3\nselect:\n  exclude:\n"
				      "    - port: 22\n    - port: 23\n");

	CHECK(load(&o, err, file, "--max-routes", "8") == OPTIONS_RUN);
	CHECK(o.max_routes == 8 && o.exclude.n == 2);
	options_free(&o);
	CHECK(load(&o, err, file, "--exclude", "pid=9") == OPTIONS_RUN);
	CHECK(o.max_routes == 3 && o.exclude.n == 1);
	CHECK_STR(o.exclude.items[0], "pid=9");
	options_free(&o);
	unlink(file);
}

TEST(print_config_round_trips)
{
	struct sonde_options o, again;
	char err[512], *first = NULL, *second = NULL;
	size_t n1 = 0, n2 = 0;
	FILE *f;
	char *argv[] = { "sonde",
			 "--include",
			 "exe=/opt/app \"x\"/*",
			 "--service",
			 "name=a,exe=b",
			 "--capture-header",
			 "header=X-T,max_values=5",
			 "--series-ttl",
			 "90s",
			 "--listen",
			 "[::]:1",
			 "-v",
			 "--bpf-stats",
			 "--max-tracked-connections",
			 "1048576",
			 "--hooks",
			 "syscall",
			 NULL };

	CHECK(options_parse(17, argv, &o, err, sizeof(err)) == OPTIONS_RUN);
	f = open_memstream(&first, &n1);
	options_print_yaml(&o, f);
	fclose(f);
	CHECK(load(&again, err, write_file(first), NULL, NULL) == OPTIONS_RUN);
	unlink(path);
	f = open_memstream(&second, &n2);
	options_print_yaml(&again, f);
	fclose(f);
	CHECK_STR(second, first);
	CHECK(strstr(first, "series_ttl: 90s\n") != NULL);
	CHECK(strstr(first, "listen: \"[::]:1\"\n") != NULL);
	CHECK_STR(again.include.items[0], "exe=/opt/app \"x\"/*");
	CHECK(again.verbose && again.series_ttl_ms == 90000);
	CHECK(again.bpf_stats && strstr(first, "bpf_stats: true\n"));
	CHECK(again.hooks == CAPTURE_HOOKS_SYSCALL &&
	      strstr(first, "hooks: syscall\n"));
	CHECK(again.max_tracked == 1048576 &&
	      strstr(first, "max_tracked_connections: 1048576\n"));
	/* Bounds not given stay not given: commented out, with both
	 * defaults. */
	CHECK(!again.buckets_given && again.buckets.n == 14);
	CHECK(strstr(first, "\nbuckets:") == NULL);
	CHECK(strstr(first, "# buckets: (not set: each family's default)\n"
			    "#   most families: [0.005, 0.01, ") != NULL);
	CHECK(strstr(first, "#   database families: [0.0001, 0.00025, ") !=
	      NULL);
	free(first);
	free(second);
	options_free(&o);
	options_free(&again);
}

TEST(print_config_keeps_buckets_given)
{
	struct sonde_options o, again;
	char err[512], *first = NULL, *second = NULL;
	size_t n1 = 0, n2 = 0;
	FILE *f;
	char *argv[] = { "sonde", "--buckets", "0.0001,0.5", NULL };

	CHECK(options_parse(3, argv, &o, err, sizeof(err)) == OPTIONS_RUN);
	f = open_memstream(&first, &n1);
	options_print_yaml(&o, f);
	fclose(f);
	CHECK(strstr(first, "\nbuckets: [0.0001, 0.5]\n") != NULL);
	CHECK(strstr(first, "# buckets") == NULL);
	CHECK(load(&again, err, write_file(first), NULL, NULL) == OPTIONS_RUN);
	unlink(path);
	CHECK(again.buckets_given && again.buckets.n == 2);
	f = open_memstream(&second, &n2);
	options_print_yaml(&again, f);
	fclose(f);
	CHECK_STR(second, first);
	free(first);
	free(second);
	options_free(&o);
	options_free(&again);
}

TEST(flag_forms_of_the_new_options)
{
	struct sonde_options o;
	char err[512];
	char *bad_ttl[] = { "sonde", "--series-ttl", "5 m", NULL };
	char *bad_rule[] = { "sonde", "--include", "exe", NULL };
	char *big[] = { "sonde", "--max-tracked-connections", "1048577", NULL };
	char *many[] = { "sonde", "--capture-header", "A", "--capture-header",
			 "B",	  "--capture-header", "C", "--capture-header",
			 "D",	  "--capture-header", "E", NULL };

	CHECK(options_parse(3, bad_ttl, &o, err, sizeof(err)) == OPTIONS_ERROR);
	CHECK(strstr(err, "--series-ttl: '5 m' is not a duration") == err);
	CHECK(options_parse(3, bad_rule, &o, err, sizeof(err)) ==
	      OPTIONS_ERROR);
	CHECK(strstr(err, "--include: rule 'exe' is not KIND=VALUE") == err);
	CHECK(options_parse(3, big, &o, err, sizeof(err)) == OPTIONS_ERROR);
	CHECK_STR(err, "--max-tracked-connections: '1048577' is not a number "
		       "from 1024 to 1048576");
	CHECK(options_parse(11, many, &o, err, sizeof(err)) == OPTIONS_ERROR);
	CHECK_STR(err, "--capture-header: at most 4 headers");
	options_free(&o);
}

/* A flag's value quoted in a message has its control bytes escaped, as
 * a file's does: the message stays on one line and cannot drive the
 * terminal. */
TEST(a_flag_value_with_control_bytes_is_quoted_escaped)
{
	struct sonde_options o;
	char err[512], small[16];
	char *hooks[] = { "sonde", "--hooks", "so\ncket\x1b[2J", NULL };
	char *ctl[] = { "sonde", "--hooks", "\x01\x01\x01", NULL };
	char *unknown[] = { "sonde", "--\tfast", NULL };
	char *extra[] = { "sonde", "x\x7fy", NULL };

	CHECK(options_parse(3, hooks, &o, err, sizeof(err)) == OPTIONS_ERROR);
	CHECK_STR(err, "--hooks: 'so\\ncket\\x1b[2J' is not one of auto, "
		       "socket, syscall");
	CHECK(options_parse(2, unknown, &o, err, sizeof(err)) == OPTIONS_ERROR);
	CHECK_STR(err, "unknown option '--\\tfast' (see --help)");
	CHECK(options_parse(2, extra, &o, err, sizeof(err)) == OPTIONS_ERROR);
	CHECK_STR(err, "unexpected argument 'x\\x7fy' (see --help)");
	/* Cut short between escapes, never inside one. */
	CHECK(options_parse(3, ctl, &o, small, sizeof(small)) == OPTIONS_ERROR);
	CHECK_STR(small, "--hooks: '\\x01");
	options_free(&o);
}

/* Options checked together name the file when it set them (found by
 * tests/fuzz). */
TEST(checks_of_options_together_name_the_file)
{
	struct sonde_options o;
	char err[512], want[512];
	const char *file = write_file("http:\n  capture_headers: [A, B, C, "
				      "D, E]\nendpoint:\n  tls_cert: c.pem\n");

	CHECK(load(&o, err, file, "--tls-key", "k.pem") == OPTIONS_ERROR);
	snprintf(want, sizeof(want),
		 "%s: http.capture_headers: at most 4 headers", file);
	CHECK_STR(err, want);
	options_free(&o);
	/* Flags replace the file's list: then the flags are at fault. */
	CHECK(load(&o, err, file, "--capture-header", "A") == OPTIONS_ERROR);
	snprintf(want, sizeof(want),
		 "%s: endpoint.tls_cert and endpoint.tls_key (--tls-cert, "
		 "--tls-key) go together",
		 file);
	CHECK_STR(err, want);
	options_free(&o);
	unlink(file);
}

static uint8_t decide(const char *exe, uint32_t pid, const char *cgroup,
		      const char *container)
{
	struct selection_process p = { pid, exe, cgroup, container };

	return selection_decide(&p);
}

TEST(selection_verdicts)
{
	char *inc[] = { "exe=nginx", "port=8080", "cgroup=/system.slice/*" };
	char *exc[] = { "exe=/usr/bin/python3*", "port=22", "container=3f5c" };
	char err[256];

	CHECK(selection_init(NULL, 0, NULL, 0, NULL, 0, err, sizeof(err)) == 0);
	CHECK(!selection_enabled());
	CHECK(decide("/x", 1, "", "") == SONDE_VERDICT_TRACE);
	CHECK(selection_conn_traced(SONDE_VERDICT_TRACE, 22));

	CHECK(selection_init(inc, 3, exc, 3, NULL, 0, err, sizeof(err)) == 0);
	CHECK(selection_enabled());
	CHECK(selection_pending_verdict() == SONDE_VERDICT_PORTS_ONLY);
	CHECK(decide("/usr/sbin/nginx", 1, "/", "") == SONDE_VERDICT_TRACE);
	CHECK(decide("/usr/bin/python3.11", 1, "/system.slice/a.service", "") ==
	      SONDE_VERDICT_IGNORE);
	CHECK(decide("/srv/app", 1, "/system.slice/a.service", "") ==
	      SONDE_VERDICT_TRACE);
	CHECK(decide("/srv/app", 1, "/user.slice/a", "") ==
	      SONDE_VERDICT_PORTS_ONLY);
	CHECK(decide("/usr/sbin/nginx", 1, "", "3f5c6f8e") ==
	      SONDE_VERDICT_IGNORE);
	CHECK(selection_conn_traced(SONDE_VERDICT_PORTS_ONLY, 8080));
	CHECK(!selection_conn_traced(SONDE_VERDICT_PORTS_ONLY, 8081));
	CHECK(!selection_conn_traced(SONDE_VERDICT_TRACE, 22));
	CHECK(!selection_conn_traced(SONDE_VERDICT_IGNORE, 8080));

	/* Only excludes: new processes are traced while being decided. */
	CHECK(selection_init(NULL, 0, exc, 1, NULL, 0, err, sizeof(err)) == 0);
	CHECK(selection_pending_verdict() == SONDE_VERDICT_TRACE);
	/* Only process includes: nothing else, not even by port. */
	CHECK(selection_init(inc, 1, NULL, 0, NULL, 0, err, sizeof(err)) == 0);
	CHECK(decide("/bin/sh", 1, "", "") == SONDE_VERDICT_IGNORE);
	CHECK(decide("/bin/nginx", 1, "", "") == SONDE_VERDICT_TRACE);
	selection_free();
}

TEST(selection_rule_parsing)
{
	struct selection_rule r;
	char err[256];

	CHECK(selection_parse_rule("pid=42", &r, err, sizeof(err)) == 0);
	CHECK(r.kind == SELECTION_PID && r.number == 42);
	CHECK(selection_parse_rule("exe=[a-z]*d", &r, err, sizeof(err)) == 0);
	CHECK(selection_parse_rule("exe=[]a]", &r, err, sizeof(err)) == 0);
	CHECK(selection_parse_rule("exe=", &r, err, sizeof(err)) == -1);
	CHECK_STR(err, "bad glob '' for exe: it is empty");
	CHECK(selection_parse_rule("cgroup=/a[!b", &r, err, sizeof(err)) == -1);
	CHECK(selection_parse_rule("container=XYZ", &r, err, sizeof(err)) ==
	      -1);
	CHECK(selection_parse_rule("port=65536", &r, err, sizeof(err)) == -1);
	CHECK(selection_parse_rule("port=80,pid=1", &r, err, sizeof(err)) ==
	      -1);
	CHECK(selection_parse_rule("=80", &r, err, sizeof(err)) == -1);
}

TEST(captured_headers_are_found_in_their_request_only)
{
	const char *req = "GET /a HTTP/1.1\r\nHost: x\r\nx-tenant-id:  acme  "
			  "\r\nX-Other: 1\r\n\r\n"
			  "GET /b HTTP/1.1\r\nX-Tenant-ID: globex\r\n\r\n"
			  "GET /c HTTP/1.1\r\nX-Tenant-ID: cut";
	size_t len = strlen(req), vlen;
	const char *v;

	CHECK(http1_find_header(req, len, 0, "X-Tenant-ID", &v, &vlen) == 0);
	CHECK(vlen == 4 && memcmp(v, "acme", 4) == 0);
	CHECK(http1_find_header(req, len, 1, "X-Tenant-ID", &v, &vlen) == 0);
	CHECK(vlen == 6 && memcmp(v, "globex", 6) == 0);
	/* The capture ended inside the line: no value rather than "cut". */
	CHECK(http1_find_header(req, len, 2, "X-Tenant-ID", &v, &vlen) == -1);
	/* Not in the first head, even though the second has it. */
	CHECK(http1_find_header(req, len, 0, "X-Missing", &v, &vlen) == -1);
	CHECK(http1_find_header(req, len, 0, "X-Tenant", &v, &vlen) == -1);
	CHECK(http1_find_header("GET / HTTP/1.1", 14, 0, "Host", &v, &vlen) ==
	      -1);
}

/* A request head's field, as the HTTP protocols look one up. */
static int find_header(const void *ctx, const char *name, const char **value,
		       size_t *len)
{
	return http1_find_header(ctx, strlen(ctx), 0, name, value, len);
}

TEST(header_labels_are_appended_and_filled)
{
	struct metric_family f = family_http_server;
	struct metric_family client = family_http_client;
	struct labels_header h;
	struct procinfo pi = { .service = "s", .namespace = "shop" };
	char *opt[] = { "service_namespace" };
	char *specs[] = { "header=X-Tenant-ID,label=tenant_id", "X-Region" };
	const char *values[LABELS_MAX_EXTRA];
	char buf[LABELS_MAX_HEADERS][LABELS_VALUE_MAX + 1];
	const char *req = "GET / HTTP/1.1\r\nX-Tenant-ID: t\x01"
			  "1\r\nAuthorization: secret\r\n\r\n";
	char err[256];

	CHECK(labels_parse_header("X-Tenant-ID", &h, err, sizeof(err)) == 0);
	CHECK_STR(h.label, "x_tenant_id");
	CHECK(h.max_values == LABELS_DEFAULT_MAX_VALUES);
	CHECK(labels_parse_header("label=t,header=A-B,max_values=7", &h, err,
				  sizeof(err)) == 0);
	CHECK_STR(h.label, "t");
	CHECK(h.max_values == 7);
	CHECK(labels_init(&f, opt, 1, specs, 2, err, sizeof(err)) == 0);
	CHECK(f.nlabels == HTTP_SERVER_NLABELS + 3);
	CHECK_STR(f.labels[HTTP_SERVER_NLABELS], "service_namespace");
	CHECK_STR(f.labels[HTTP_SERVER_NLABELS + 1], "tenant_id");
	CHECK_STR(f.otel_labels[HTTP_SERVER_NLABELS + 1],
		  "http.request.header.x-tenant-id");
	CHECK_STR(f.labels[HTTP_SERVER_NLABELS + 2], "x_region");
	CHECK(labels_fill_optional(&pi, values) == 1);
	CHECK(labels_fill_headers(find_header, req, values + 1, buf) == 2);
	CHECK_STR(values[0], "shop");
	CHECK_STR(values[1], "t_1");
	CHECK_STR(values[2], "");
	/* The optional labels, and not the headers, go on client series. */
	CHECK(labels_init_optional(&client, err, sizeof(err)) == 0);
	CHECK(client.nlabels == HTTP_CLIENT_NLABELS + 1);
	CHECK_STR(client.labels[HTTP_CLIENT_NLABELS], "service_namespace");
	CHECK_STR(client.otel_labels[HTTP_CLIENT_NLABELS], "service.namespace");
	values[0] = NULL;
	CHECK(labels_fill_optional(&pi, values) == 1);
	CHECK_STR(values[0], "shop");
	/* A label twice is refused. */
	f = family_http_server;
	CHECK(labels_init(&f, opt, 1,
			  (char *[]){ "label=service_namespace,"
				      "header=X" },
			  1, err, sizeof(err)) == -1);
	CHECK_STR(err, "label 'service_namespace' is given twice");
	labels_reset();
	registry_free();
}

TEST(uprobes_and_otlp_keys_load_and_flags_replace_them)
{
	const char *file = write_file("uprobes:\n"
				      "  - /bin/true:main\n"
				      "  - sleep:nanosleep\n"
				      "no_tls: true\n"
				      "bpf_stats: true\n"
				      "otlp:\n"
				      "  endpoint: http://collector:4318\n");
	struct sonde_options o;
	char err[512];

	CHECK(load(&o, err, file, NULL, NULL) == OPTIONS_RUN);
	CHECK(o.uprobes.n == 2);
	CHECK_STR(o.uprobes.items[1], "sleep:nanosleep");
	CHECK(o.no_tls);
	CHECK(o.bpf_stats);
	CHECK_STR(o.otlp_endpoint, "http://collector:4318");
	options_free(&o);
	/* A repeatable flag replaces the file's list. */
	CHECK(load(&o, err, file, "--uprobe", "/bin/ls:main") == OPTIONS_RUN);
	CHECK(o.uprobes.n == 1);
	CHECK_STR(o.uprobes.items[0], "/bin/ls:main");
	options_free(&o);
	file = write_file("otlp:\n  endpoint: [a, b]\n");
	CHECK(load(&o, err, file, NULL, NULL) == OPTIONS_ERROR);
	CHECK(strstr(err, ":2: ") != NULL);
	unlink(path);
}

UNIT_MAIN("config", UNIT_CASE(example_config_has_every_section),
	  UNIT_CASE(uprobes_and_otlp_keys_load_and_flags_replace_them),
	  UNIT_CASE(every_key_loads),
	  UNIT_CASE(mistakes_name_file_line_and_reason),
	  UNIT_CASE(flags_override_the_file),
	  UNIT_CASE(checks_of_options_together_name_the_file),
	  UNIT_CASE(a_flag_value_with_control_bytes_is_quoted_escaped),
	  UNIT_CASE(print_config_round_trips),
	  UNIT_CASE(print_config_keeps_buckets_given),
	  UNIT_CASE(flag_forms_of_the_new_options),
	  UNIT_CASE(selection_verdicts), UNIT_CASE(selection_rule_parsing),
	  UNIT_CASE(captured_headers_are_found_in_their_request_only),
	  UNIT_CASE(header_labels_are_appended_and_filled))
