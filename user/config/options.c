#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/options.h"
#include "export/prom.h"
#include "identity/labels.h"
#include "metrics/exphist.h"
#include "identity/selection.h"
#include "sonde_events.h"
#include "util/fmt.h"
#include "util/strbuf.h"

#define DEFAULT_LISTEN "127.0.0.1:9464"
#define DEFAULT_MAX_ROUTES 100
#define DEFAULT_MAX_PEERS 100
/* Native histograms: schema 3 grows a bucket by 2^(1/8), about 9%, the
 * resolution Prometheus' own clients default to; 160 buckets, OTLP's. */
#define DEFAULT_NATIVE_SCHEMA 3
#define DEFAULT_NATIVE_MAX_BUCKETS 160
#define DEFAULT_MAX_SERIES 10000
/* Idle connections are closed after 10 s (httpd.c); 512 of them cost
 * little with epoll and leave room for scrapes when a client hoards
 * connections. */
#define DEFAULT_MAX_CONNECTIONS 512
#define MAX_TRACKED_MIN 1024
#define MAX_TRACKED_MAX (1 << 20)
/* A series with no observation for 5 minutes is gone from /metrics: long
 * enough for a quiet service between two bursts, short enough that a
 * restarted process's old series do not linger for hours. */
#define DEFAULT_SERIES_TTL_MS (5 * 60 * 1000ULL)

enum long_only {
	OPT_BUCKETS = 256,
	OPT_MAX_ROUTES,
	OPT_MAX_PEERS,
	OPT_MAX_SERIES,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_TRACKED,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_BASIC_AUTH_FILE,
	OPT_CHECK,
	OPT_OTLP_ENDPOINT,
	OPT_CONFIG,
	OPT_PRINT_CONFIG,
	OPT_INCLUDE,
	OPT_EXCLUDE,
	OPT_SERVICE,
	OPT_CAPTURE_HEADER,
	OPT_LABEL,
	OPT_SERIES_TTL,
	OPT_UPROBE,
	OPT_NO_TLS,
	OPT_BPF_STATS,
	OPT_NATIVE_HISTOGRAMS,
	OPT_NATIVE_SCHEMA,
	OPT_NATIVE_MAX_BUCKETS,
	OPT_HOOKS,
	OPT_TRACE_PROPAGATION,
};

/* --hooks values, by enum capture_hooks. */
static const char *const hooks_names[] = {
	[CAPTURE_HOOKS_AUTO] = "auto",
	[CAPTURE_HOOKS_SOCKET] = "socket",
	[CAPTURE_HOOKS_SYSCALL] = "syscall",
};

static const char usage[] =
	"Usage: sonde [OPTION]...\n"
	"       sonde top [OPTION]...  (a live view of a running sonde; "
	"sonde top --help)\n"
	"Measures the rate, errors and duration of every HTTP/1.x and HTTP/2 "
	"server\nand client on this host (HTTPS through OpenSSL too), and each "
	"process's TCP\nconnects, resets and retransmits, from tracepoints and "
	"uprobes; serves them\nat /metrics.\n"
	"\n"
	"  -l, --listen ADDR:PORT  serve /metrics, /healthz, /readyz here\n"
	"                          (default " DEFAULT_LISTEN
	"; IPv6 as [::1]:9464)\n"
	"  -p, --pid PID           trace only this process\n"
	"  -P, --port PORT         trace only connections with this local or "
	"peer port\n"
	"      --buckets LIST      histogram bounds in seconds, comma-separated, "
	"for every\n"
	"                          histogram family (default 0.005,0.01,0.025,"
	"0.05,0.075,\n"
	"                          0.1,0.25,0.5,0.75,1,2.5,5,7.5,10), the "
	"database families'\n"
	"                          finer default (0.0001 to 10) included\n"
	"      --max-routes N      distinct routes per service before "
	"http_route=\"_overflow\"\n"
	"                          (gRPC methods and database collections "
	"count too;\n"
	"                          default 100)\n"
	"      --max-peers N       distinct peer addresses per service before "
	"server_address=\"_overflow\"\n"
	"                          (default 100)\n"
	"      --max-series N      series kept in all; beyond it observations "
	"are dropped\n"
	"                          and counted (default 10000)\n"
	"      --max-tracked-connections N\n"
	"                          connections the BPF maps hold at once "
	"(1024 to 1048576;\n"
	"                          default 32768, about 700 bytes of kernel "
	"memory each)\n"
	"      --tls-cert FILE     serve the endpoint over TLS with this PEM "
	"certificate\n"
	"      --tls-key FILE      and this PEM private key (both or neither)\n"
	"      --basic-auth-file FILE\n"
	"                          require HTTP basic auth on /metrics; lines "
	"user:hash,\n"
	"                          hashes from `openssl passwd -6`\n"
	"      --max-connections N connections to the endpoint at once "
	"(default 512)\n"
	"      --native-histograms also keep base-2 exponential histograms and "
	"serve them\n"
	"                          as Prometheus native histograms to scrapers "
	"asking for\n"
	"                          the protobuf format\n"
	"      --native-histogram-schema N\n"
	"                          their finest resolution, -4 to 8 (default "
	"3: buckets\n"
	"                          grow by 2^(1/8), 9%)\n"
	"      --native-histogram-max-buckets N\n"
	"                          buckets per series before the resolution "
	"halves\n"
	"                          (1 to 160, default 160)\n"
	"      --otlp-endpoint URL push metrics and spans over OTLP/HTTP "
	"(protobuf) to this\n"
	"                          collector; /v1/metrics and /v1/traces "
	"when URL has no\n"
	"                          path. Also set by "
	"OTEL_EXPORTER_OTLP_[METRICS_|TRACES_]ENDPOINT;\n"
	"                          the other OTEL_EXPORTER_OTLP_*, "
	"OTEL_METRIC_EXPORT_INTERVAL,\n"
	"                          OTEL_TRACES_* and OTEL_BSP_* apply "
	"(README: OTLP export)\n"
	"      --series-ttl DURATION\n"
	"                          drop series with no observation for this "
	"long\n"
	"                          (300s; 500ms, 2s, 5m, 1h; 0: never)\n"
	"      --include RULE      trace only what a rule matches (repeatable): "
	"exe=GLOB,\n"
	"                          port=N, pid=N, cgroup=GLOB, container=ID\n"
	"      --exclude RULE      never trace what the rule matches "
	"(repeatable)\n"
	"      --service RULE      name matching processes: name=NAME"
	"[,namespace=NS],\n"
	"                          then exe=, pid=, cgroup=, container= "
	"(repeatable)\n"
	"      --capture-header SPEC\n"
	"                          label requests with a header: header=NAME"
	"[,label=L]\n"
	"                          [,max_values=N] (repeatable, at most 4)\n"
	"      --label NAME        add service_namespace, container_id or "
	"k8s_pod_uid\n"
	"                          to every series (repeatable)\n"
	"      --config FILE       read options from a YAML file; flags "
	"override it\n"
	"      --print-config      print the effective configuration as YAML "
	"and exit\n"
	"      --uprobe BINARY:SYMBOL\n"
	"                          measure every call of this function "
	"(repeatable)\n"
	"                          into sonde_function_duration_seconds\n"
	"      --no-tls            do not trace TLS libraries (OpenSSL, Go's\n"
	"                          crypto/tls: no HTTPS plaintext)\n"
	"      --bpf-stats         count each BPF program's runs and run time\n"
	"                          (sonde_program_runs_total; every BPF program "
	"on\n"
	"                          the host pays two clock reads a run while on)\n"
	"      --hooks WHICH       where reads and writes are seen: socket "
	"(socket\n"
	"                          tracepoints, Linux 6.3 on), syscall (syscall "
	"tracepoints;\n"
	"                          every syscall on the host pays), or auto "
	"(default:\n"
	"                          socket when the kernel has them)\n"
	"      --trace-propagation add a W3C traceparent header to outgoing "
	"plaintext\n"
	"                          HTTP/1.x requests that carry none, so the "
	"service\n"
	"                          called joins the trace (sock_ops and sk_msg "
	"programs;\n"
	"                          needs cgroup v2 and CAP_NET_ADMIN; off by "
	"default)\n"
	"      --check             report what this host supports and exit "
	"(0: can run)\n"
	"  -v, --verbose           log attach details and libbpf debug output\n"
	"  -h, --help              show this help and exit\n"
	"  -V, --version           show the version and exit\n"
	"\n"
	"Needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN to mount "
	"tracefs,\nCAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to name other users' "
	"services); after\nattaching it keeps only the last two.\n";

static const struct option long_options[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "pid", required_argument, NULL, 'p' },
	{ "port", required_argument, NULL, 'P' },
	{ "buckets", required_argument, NULL, OPT_BUCKETS },
	{ "max-routes", required_argument, NULL, OPT_MAX_ROUTES },
	{ "max-peers", required_argument, NULL, OPT_MAX_PEERS },
	{ "max-series", required_argument, NULL, OPT_MAX_SERIES },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "max-tracked-connections", required_argument, NULL, OPT_MAX_TRACKED },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "basic-auth-file", required_argument, NULL, OPT_BASIC_AUTH_FILE },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "otlp-endpoint", required_argument, NULL, OPT_OTLP_ENDPOINT },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "print-config", no_argument, NULL, OPT_PRINT_CONFIG },
	{ "include", required_argument, NULL, OPT_INCLUDE },
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "service", required_argument, NULL, OPT_SERVICE },
	{ "capture-header", required_argument, NULL, OPT_CAPTURE_HEADER },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "series-ttl", required_argument, NULL, OPT_SERIES_TTL },
	{ "uprobe", required_argument, NULL, OPT_UPROBE },
	{ "no-tls", no_argument, NULL, OPT_NO_TLS },
	{ "bpf-stats", no_argument, NULL, OPT_BPF_STATS },
	{ "native-histograms", no_argument, NULL, OPT_NATIVE_HISTOGRAMS },
	{ "native-histogram-schema", required_argument, NULL,
	  OPT_NATIVE_SCHEMA },
	{ "native-histogram-max-buckets", required_argument, NULL,
	  OPT_NATIVE_MAX_BUCKETS },
	{ "hooks", required_argument, NULL, OPT_HOOKS },
	{ "trace-propagation", no_argument, NULL, OPT_TRACE_PROPAGATION },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int options_parse_listen(const char *text, struct sonde_options *o, char *err,
			 size_t errsz)
{
	const char *colon = strrchr(text, ':');
	const char *host = text;
	size_t host_len;
	unsigned long port;
	unsigned char addr[16];

	if (!colon || fmt_parse_ulong(colon + 1, 1, 65535, &port)) {
		snprintf(err, errsz,
			 "--listen: '%s' is not ADDR:PORT with a port from 1 "
			 "to 65535",
			 text);
		return -1;
	}
	host_len = colon - text;
	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		host++;
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof(o->listen_host)) {
		snprintf(err, errsz, "--listen: '%s' has no address", text);
		return -1;
	}
	memcpy(o->listen_host, host, host_len);
	o->listen_host[host_len] = '\0';
	if (inet_pton(AF_INET, o->listen_host, addr) != 1 &&
	    inet_pton(AF_INET6, o->listen_host, addr) != 1) {
		snprintf(err, errsz,
			 "--listen: '%s' is not a numeric IPv4 or IPv6 "
			 "address",
			 o->listen_host);
		return -1;
	}
	snprintf(o->listen_port, sizeof(o->listen_port), "%lu", port);
	return 0;
}

static void set_defaults(struct sonde_options *o)
{
	char ignored[8];

	memset(o, 0, sizeof(*o));
	options_parse_listen(DEFAULT_LISTEN, o, ignored, sizeof(ignored));
	o->max_routes = DEFAULT_MAX_ROUTES;
	o->max_peers = DEFAULT_MAX_PEERS;
	o->native_schema = DEFAULT_NATIVE_SCHEMA;
	o->native_max_buckets = DEFAULT_NATIVE_MAX_BUCKETS;
	o->max_series = DEFAULT_MAX_SERIES;
	o->max_connections = DEFAULT_MAX_CONNECTIONS;
	o->max_tracked = SONDE_MAX_CONNS;
	o->series_ttl_ms = DEFAULT_SERIES_TTL_MS;
	histogram_bounds_default(&o->buckets);
}

static const char *flag_name(int opt)
{
	for (const struct option *o = long_options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

int options_parse_duration_ms(const char *text, uint64_t *ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = { { "ms", 1 },
		      { "s", 1000 },
		      { "m", 60000 },
		      { "h", 3600000 },
		      { "", 1000 } };
	unsigned long long v;
	char *end;

	if (*text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > 7ULL * 24 * 3600000 / units[i].ms)
			return -1;
		*ms = v * units[i].ms;
		return 0;
	}
	return -1;
}

static struct options_list *list_of(struct sonde_options *o, int opt)
{
	switch (opt) {
	case OPT_INCLUDE:
		return &o->include;
	case OPT_EXCLUDE:
		return &o->exclude;
	case OPT_SERVICE:
		return &o->services;
	case OPT_CAPTURE_HEADER:
		return &o->capture_headers;
	case OPT_UPROBE:
		return &o->uprobes;
	default:
		return &o->labels;
	}
}

static void list_clear(struct options_list *l)
{
	for (unsigned i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static int list_push(struct options_list *l, const char *item)
{
	char **grown, *copy;

	grown = realloc(l->items, (l->n + 1) * sizeof(*l->items));
	if (!grown)
		return -1;
	l->items = grown;
	copy = strdup(item);
	if (!copy)
		return -1;
	l->items[l->n++] = copy;
	return 0;
}

/* Flags replace a list the config file set rather than add to it. */
static int list_add(struct sonde_options *o, struct options_list *l,
		    const char *item)
{
	if (o->from_flags && !l->from_flags) {
		list_clear(l);
		l->from_flags = true;
	}
	return list_push(l, item);
}

/* Validates one value of a repeatable option with its module's parser. */
static int check_list_item(int opt, const char *arg, char *why, size_t n)
{
	struct selection_rule rule;
	struct selection_service service;
	struct labels_header header;

	switch (opt) {
	case OPT_INCLUDE:
	case OPT_EXCLUDE:
		return selection_parse_rule(arg, &rule, why, n);
	case OPT_SERVICE:
		return selection_parse_service(arg, &service, why, n);
	case OPT_CAPTURE_HEADER:
		return labels_parse_header(arg, &header, why, n);
	case OPT_UPROBE: /* checked against the binary at start */
		return 0;
	default:
		return labels_check_optional(arg, why, n);
	}
}

static enum options_result apply(int opt, const char *arg,
				 struct sonde_options *o, char *err,
				 size_t errsz)
{
	unsigned long n;
	char why[160];

	switch (opt) {
	case 'l':
		return options_parse_listen(arg, o, err, errsz) ?
			       OPTIONS_ERROR :
			       OPTIONS_RUN;
	case 'p':
		if (fmt_parse_ulong(arg, 1, 4194304, &n))
			goto bad;
		o->pid = n;
		return OPTIONS_RUN;
	case 'P':
		if (fmt_parse_ulong(arg, 1, 65535, &n))
			goto bad;
		o->port = n;
		return OPTIONS_RUN;
	case OPT_BUCKETS:
		if (histogram_bounds_parse(arg, &o->buckets, why,
					   sizeof(why))) {
			snprintf(err, errsz, "--buckets: %s", why);
			return OPTIONS_ERROR;
		}
		o->buckets_given = true;
		return OPTIONS_RUN;
	case OPT_MAX_ROUTES:
		if (fmt_parse_ulong(arg, 1, 1000000, &n))
			goto bad;
		o->max_routes = n;
		return OPTIONS_RUN;
	case OPT_MAX_PEERS:
		if (fmt_parse_ulong(arg, 1, 1000000, &n))
			goto bad;
		o->max_peers = n;
		return OPTIONS_RUN;
	case OPT_MAX_SERIES:
		if (fmt_parse_ulong(arg, 1, 10000000, &n))
			goto bad;
		o->max_series = n;
		return OPTIONS_RUN;
	case OPT_MAX_CONNECTIONS:
		if (fmt_parse_ulong(arg, 1, 65536, &n))
			goto bad;
		o->max_connections = n;
		return OPTIONS_RUN;
	case OPT_MAX_TRACKED:
		if (fmt_parse_ulong(arg, MAX_TRACKED_MIN, MAX_TRACKED_MAX,
				    &n)) {
			snprintf(err, errsz,
				 "--max-tracked-connections: '%s' is not a "
				 "number from %u to %u",
				 arg, MAX_TRACKED_MIN, MAX_TRACKED_MAX);
			return OPTIONS_ERROR;
		}
		o->max_tracked = n;
		return OPTIONS_RUN;
	case OPT_TLS_CERT:
		o->tls_cert = arg;
		return OPTIONS_RUN;
	case OPT_TLS_KEY:
		o->tls_key = arg;
		return OPTIONS_RUN;
	case OPT_BASIC_AUTH_FILE:
		o->auth_file = arg;
		return OPTIONS_RUN;
	case OPT_OTLP_ENDPOINT:
		o->otlp_endpoint = arg;
		return OPTIONS_RUN;
	case OPT_CHECK:
		o->check = true;
		return OPTIONS_RUN;
	case OPT_CONFIG:
		o->config_path = arg;
		return OPTIONS_RUN;
	case OPT_PRINT_CONFIG:
		o->print_config = true;
		return OPTIONS_RUN;
	case OPT_SERIES_TTL:
		if (options_parse_duration_ms(arg, &o->series_ttl_ms)) {
			snprintf(err, errsz,
				 "--series-ttl: '%s' is not a duration such "
				 "as 500ms, 30s, 5m, 1h or 0",
				 arg);
			return OPTIONS_ERROR;
		}
		return OPTIONS_RUN;
	case OPT_INCLUDE:
	case OPT_EXCLUDE:
	case OPT_SERVICE:
	case OPT_CAPTURE_HEADER:
	case OPT_LABEL:
	case OPT_UPROBE:
		if (check_list_item(opt, arg, why, sizeof(why))) {
			snprintf(err, errsz, "--%s: %s", flag_name(opt), why);
			return OPTIONS_ERROR;
		}
		if (list_add(o, list_of(o, opt), arg)) {
			snprintf(err, errsz, "--%s: out of memory",
				 flag_name(opt));
			return OPTIONS_ERROR;
		}
		return OPTIONS_RUN;
	case OPT_NO_TLS:
		o->no_tls = true;
		return OPTIONS_RUN;
	case OPT_NATIVE_HISTOGRAMS:
		o->native_histograms = true;
		return OPTIONS_RUN;
	case OPT_NATIVE_SCHEMA:
		/* -4 to 8: the schemas Prometheus defines. */
		if (fmt_parse_ulong(arg[0] == '-' ? arg + 1 : arg, 0,
				    arg[0] == '-' ? 4 : 8, &n)) {
			snprintf(err, errsz,
				 "--native-histogram-schema: '%s' is not a "
				 "number from -4 to 8",
				 arg);
			return OPTIONS_ERROR;
		}
		o->native_schema = arg[0] == '-' ? -(int)n : (int)n;
		return OPTIONS_RUN;
	case OPT_NATIVE_MAX_BUCKETS:
		if (fmt_parse_ulong(arg, 1, EXPHIST_MAX_BUCKETS, &n)) {
			snprintf(err, errsz,
				 "--native-histogram-max-buckets: '%s' is not "
				 "a number from 1 to %d",
				 arg, EXPHIST_MAX_BUCKETS);
			return OPTIONS_ERROR;
		}
		o->native_max_buckets = n;
		return OPTIONS_RUN;
	case OPT_BPF_STATS:
		o->bpf_stats = true;
		return OPTIONS_RUN;
	case OPT_TRACE_PROPAGATION:
		o->trace_propagation = true;
		return OPTIONS_RUN;
	case OPT_HOOKS:
		for (int h = 0;
		     h < (int)(sizeof(hooks_names) / sizeof(hooks_names[0]));
		     h++)
			if (!strcmp(arg, hooks_names[h])) {
				o->hooks = (enum capture_hooks)h;
				return OPTIONS_RUN;
			}
		snprintf(err, errsz,
			 "--hooks: '%s' is not one of auto, socket, syscall",
			 arg);
		return OPTIONS_ERROR;
	case 'v':
		o->verbose = true;
		return OPTIONS_RUN;
	case 'h':
		fputs(usage, stdout);
		return OPTIONS_EXIT;
	case 'V':
		printf("sonde %s\n", SONDE_VERSION);
		return OPTIONS_EXIT;
	}
	snprintf(err, errsz, "unknown option (see --help)");
	return OPTIONS_ERROR;
bad:
	snprintf(err, errsz, "--%s: '%s' is out of range or not a number",
		 flag_name(opt), arg);
	return OPTIONS_ERROR;
}

/* Finds --config FILE before anything else is applied: the file sets the
 * defaults the other flags then override. Errors are left for the real
 * pass to report. */
static const char *find_config(int argc, char **argv)
{
	const char *path = NULL;
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":l:p:P:vhV", long_options,
				  NULL)) != -1)
		if (opt == OPT_CONFIG)
			path = optarg;
	return path;
}

/* config_setter: a key of the config file is its flag. */
static int set_from_file(void *ctx, const char *flag, const char *text,
			 char *err, size_t errsz)
{
	return options_set(ctx, flag, text, err, errsz);
}

static enum options_result parse(int argc, char **argv, struct sonde_options *o,
				 char *err, size_t errsz)
{
	enum options_result r;
	const char *config;
	int opt;

	set_defaults(o);
	config = find_config(argc, argv);
	if (config) {
		o->config_path = config;
		if (config_load(config, set_from_file, o, err, errsz))
			return OPTIONS_ERROR;
	}
	o->from_flags = true;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":l:p:P:vhV", long_options,
				  NULL)) != -1) {
		if (opt == '?' || opt == ':') {
			const char *flag = argv[optind - 1];

			snprintf(err, errsz, "%s '%s' (see --help)",
				 opt == '?' ? "unknown option" :
					      "missing value for",
				 flag);
			return OPTIONS_ERROR;
		}
		r = apply(opt, optarg, o, err, errsz);
		if (r != OPTIONS_RUN)
			return r;
	}
	if (optind < argc) {
		snprintf(err, errsz, "unexpected argument '%s' (see --help)",
			 argv[optind]);
		return OPTIONS_ERROR;
	}
	/* Checks of options taken together: the file may have set them. */
	if (!o->tls_cert != !o->tls_key) {
		if (config)
			snprintf(err, errsz,
				 "%s: endpoint.tls_cert and endpoint.tls_key "
				 "(--tls-cert, --tls-key) go together",
				 config);
		else
			snprintf(err, errsz,
				 "--tls-cert and --tls-key go together");
		return OPTIONS_ERROR;
	}
	if (o->capture_headers.n > LABELS_MAX_HEADERS) {
		if (config && !o->capture_headers.from_flags)
			snprintf(err, errsz,
				 "%s: http.capture_headers: at most %d headers",
				 config, LABELS_MAX_HEADERS);
		else
			snprintf(err, errsz,
				 "--capture-header: at most %d headers",
				 LABELS_MAX_HEADERS);
		return OPTIONS_ERROR;
	}
	if (o->print_config) {
		options_print_yaml(o, stdout);
		return OPTIONS_EXIT;
	}
	return OPTIONS_RUN;
}

enum options_result options_parse(int argc, char **argv,
				  struct sonde_options *o, char *err,
				  size_t errsz)
{
	enum options_result r = parse(argc, argv, o, err, errsz);
	char *raw;

	/* A message quotes what it was given: the reason stays on its one
	 * line whatever bytes a flag's value holds. */
	if (r == OPTIONS_ERROR && errsz && (raw = strdup(err)) != NULL) {
		escape_controls(raw, err, errsz);
		free(raw);
	}
	return r;
}

/* Options that are actions, not configuration: not settable from a file. */
static bool is_action(int opt)
{
	return opt == 'h' || opt == 'V' || opt == OPT_CHECK ||
	       opt == OPT_CONFIG || opt == OPT_PRINT_CONFIG;
}

int options_set(struct sonde_options *o, const char *flag, const char *value,
		char *err, size_t errsz)
{
	const struct option *opt;
	char *copy;

	for (opt = long_options; opt->name; opt++)
		if (strcmp(opt->name, flag) == 0)
			break;
	if (!opt->name || is_action(opt->val)) {
		snprintf(err, errsz, "--%s: not a configurable option", flag);
		return -1;
	}
	if (opt->has_arg == no_argument) {
		if (strcmp(value, "true") == 0)
			return apply(opt->val, NULL, o, err, errsz) ==
					       OPTIONS_RUN ?
				       0 :
				       -1;
		if (strcmp(value, "false") == 0) {
			if (opt->val == 'v')
				o->verbose = false;
			return 0;
		}
		snprintf(err, errsz, "--%s: '%s' is not true or false", flag,
			 value);
		return -1;
	}
	/* The file's strings must outlive it, as argv's do. */
	if (list_push(&o->owned, value)) {
		snprintf(err, errsz, "--%s: out of memory", flag);
		return -1;
	}
	copy = o->owned.items[o->owned.n - 1];
	return apply(opt->val, copy, o, err, errsz) == OPTIONS_RUN ? 0 : -1;
}

/* A YAML double-quoted scalar: any byte string round-trips. */
static void print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* "exe=/x,pid=3" as the flow mapping {exe: "/x", pid: "3"}. */
static void print_kv_map(FILE *out, const char *text)
{
	char key[64], value[512];
	const char *p = text;
	bool first = true;

	fputc('{', out);
	while (selection_kv_next(&p, key, sizeof(key), value, sizeof(value)) ==
	       1) {
		fprintf(out, "%s%s: ", first ? "" : ", ", key);
		print_quoted(out, value);
		first = false;
	}
	fputc('}', out);
}

static void print_list(FILE *out, const char *indent, const char *key,
		       const struct options_list *l, bool kv)
{
	fprintf(out, "%s%s:%s\n", indent, key, l->n ? "" : " []");
	for (unsigned i = 0; i < l->n; i++) {
		fprintf(out, "%s  - ", indent);
		if (kv && strchr(l->items[i], '='))
			print_kv_map(out, l->items[i]);
		else
			print_quoted(out, l->items[i]);
		fputc('\n', out);
	}
}

static void print_optional(FILE *out, const char *indent, const char *key,
			   const char *value)
{
	if (value) {
		fprintf(out, "%s%s: ", indent, key);
		print_quoted(out, value);
		fputc('\n', out);
	} else {
		fprintf(out, "%s# %s: (not set)\n", indent, key);
	}
}

/* In the largest unit that keeps it exact: 5m, 2s, 1500ms, 0. */
static void print_duration(FILE *out, const char *key, uint64_t ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = { { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };

	for (size_t i = 0; ms && i < sizeof(units) / sizeof(units[0]); i++)
		if (ms % units[i].ms == 0) {
			fprintf(out, "%s: %llu%s\n", key,
				(unsigned long long)(ms / units[i].ms),
				units[i].unit);
			return;
		}
	fprintf(out, "%s: %llu%s\n", key, (unsigned long long)ms,
		ms ? "ms" : "");
}

static void print_bounds(FILE *out, const struct histogram_bounds *b)
{
	char num[32];

	fputc('[', out);
	for (size_t i = 0; i < b->n; i++) {
		prom_format_double(b->seconds[i], num);
		fprintf(out, "%s%s", i ? ", " : "", num);
	}
	fputc(']', out);
}

/* Written out only when given: bounds set in a file replace the database
 * families' finer defaults too. Unset, both defaults show, commented. */
static void print_buckets(FILE *out, const struct sonde_options *o)
{
	struct histogram_bounds fine;

	if (o->buckets_given) {
		fprintf(out, "buckets: ");
		print_bounds(out, &o->buckets);
		fputc('\n', out);
		return;
	}
	histogram_bounds_fine(&fine);
	fprintf(out, "# buckets: (not set: each family's default)\n"
		     "#   most families: ");
	print_bounds(out, &o->buckets);
	fprintf(out, "\n#   database families: ");
	print_bounds(out, &fine);
	fputc('\n', out);
}

void options_print_yaml(const struct sonde_options *o, FILE *out)
{
	bool v6 = strchr(o->listen_host, ':') != NULL;

	fprintf(out,
		"# sonde %s: effective configuration (sonde "
		"--print-config)\n",
		SONDE_VERSION);
	fprintf(out, "listen: \"%s%s%s:%s\"\n", v6 ? "[" : "", o->listen_host,
		v6 ? "]" : "", o->listen_port);
	if (o->pid)
		fprintf(out, "pid: %u\n", o->pid);
	else
		fprintf(out, "# pid: (every process)\n");
	if (o->port)
		fprintf(out, "port: %u\n", o->port);
	else
		fprintf(out, "# port: (every port)\n");
	print_buckets(out, o);
	fprintf(out, "max_routes: %u\nmax_peers: %u\nmax_series: %u\n",
		o->max_routes, o->max_peers, o->max_series);
	fprintf(out, "max_tracked_connections: %u\n", o->max_tracked);
	print_duration(out, "series_ttl", o->series_ttl_ms);
	fprintf(out, "verbose: %s\n", o->verbose ? "true" : "false");
	fprintf(out, "endpoint:\n");
	print_optional(out, "  ", "tls_cert", o->tls_cert);
	print_optional(out, "  ", "tls_key", o->tls_key);
	print_optional(out, "  ", "basic_auth_file", o->auth_file);
	fprintf(out, "  max_connections: %u\n", o->max_connections);
	fprintf(out, "  native_histograms: %s\n",
		o->native_histograms ? "true" : "false");
	fprintf(out, "  native_histogram_schema: %d\n", o->native_schema);
	fprintf(out, "  native_histogram_max_buckets: %u\n",
		o->native_max_buckets);
	fprintf(out, "select:\n");
	print_list(out, "  ", "include", &o->include, true);
	print_list(out, "  ", "exclude", &o->exclude, true);
	print_list(out, "", "services", &o->services, true);
	print_list(out, "", "labels", &o->labels, false);
	fprintf(out, "http:\n");
	print_list(out, "  ", "capture_headers", &o->capture_headers, true);
	print_list(out, "", "uprobes", &o->uprobes, false);
	fprintf(out, "no_tls: %s\n", o->no_tls ? "true" : "false");
	fprintf(out, "bpf_stats: %s\n", o->bpf_stats ? "true" : "false");
	fprintf(out, "hooks: %s\n", hooks_names[o->hooks]);
	fprintf(out, "trace_propagation: %s\n",
		o->trace_propagation ? "true" : "false");
	if (o->otlp_endpoint) {
		fprintf(out, "otlp:\n");
		print_optional(out, "  ", "endpoint", o->otlp_endpoint);
	} else {
		fprintf(out, "# otlp:\n#   endpoint: (not set)\n");
	}
}

void options_free(struct sonde_options *o)
{
	list_clear(&o->include);
	list_clear(&o->exclude);
	list_clear(&o->services);
	list_clear(&o->capture_headers);
	list_clear(&o->labels);
	list_clear(&o->uprobes);
	list_clear(&o->owned);
}
