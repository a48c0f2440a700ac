#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define DEFAULT_LISTEN "127.0.0.1:9464"
#define DEFAULT_MAX_ROUTES 100
#define DEFAULT_MAX_PEERS 100
#define DEFAULT_MAX_SERIES 10000
/* Idle connections are closed after 10 s (httpd.c); 512 of them cost
 * little with epoll and leave room for scrapes when a client hoards
 * connections. */
#define DEFAULT_MAX_CONNECTIONS 512

enum long_only {
	OPT_BUCKETS = 256,
	OPT_MAX_ROUTES,
	OPT_MAX_PEERS,
	OPT_MAX_SERIES,
	OPT_MAX_CONNECTIONS,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_BASIC_AUTH_FILE,
	OPT_CHECK,
	OPT_UPROBE,
	OPT_NO_TLS,
};

static const char usage[] =
	"Usage: sonde [OPTION]...\n"
	"Measures the rate, errors and duration of every HTTP/1.x server on "
	"this host\nfrom syscall tracepoints, and serves them at /metrics.\n"
	"\n"
	"  -l, --listen ADDR:PORT  serve /metrics, /healthz, /readyz here\n"
	"                          (default " DEFAULT_LISTEN
	"; IPv6 as [::1]:9464)\n"
	"  -p, --pid PID           trace only this process\n"
	"  -P, --port PORT         trace only connections with this local or "
	"peer port\n"
	"      --buckets LIST      histogram bounds in seconds, comma-separated"
	"\n"
	"                          (default 0.005,0.01,0.025,0.05,0.075,0.1,"
	"0.25,\n"
	"                          0.5,0.75,1,2.5,5,7.5,10)\n"
	"      --max-routes N      distinct routes per service before "
	"http_route=\"_overflow\"\n"
	"                          (default 100)\n"
	"      --max-peers N       distinct peer addresses per service before "
	"server_address=\"_overflow\"\n"
	"                          (default 100)\n"
	"      --max-series N      series kept in all; beyond it observations "
	"are dropped\n"
	"                          and counted (default 10000)\n"
	"      --tls-cert FILE     serve the endpoint over TLS with this PEM "
	"certificate\n"
	"      --tls-key FILE      and this PEM private key (both or neither)\n"
	"      --basic-auth-file FILE\n"
	"                          require HTTP basic auth on /metrics; lines "
	"user:hash,\n"
	"                          hashes from `openssl passwd -6`\n"
	"      --max-connections N connections to the endpoint at once "
	"(default 512)\n"
	"      --uprobe BINARY:SYMBOL\n"
	"                          measure every call of this function "
	"(repeatable)\n"
	"                          into sonde_function_duration_seconds\n"
	"      --no-tls            do not trace OpenSSL (no HTTPS plaintext)\n"
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
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "basic-auth-file", required_argument, NULL, OPT_BASIC_AUTH_FILE },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "uprobe", required_argument, NULL, OPT_UPROBE },
	{ "no-tls", no_argument, NULL, OPT_NO_TLS },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Parses a decimal in [min, max]; the whole text must be digits. */
static int parse_number(const char *text, unsigned long min, unsigned long max,
			unsigned long *out)
{
	char *end;

	if (!*text || *text == '-' || *text == '+')
		return -1;
	errno = 0;
	*out = strtoul(text, &end, 10);
	return errno || *end || *out < min || *out > max ? -1 : 0;
}

int options_parse_listen(const char *text, struct sonde_options *o, char *err,
			 size_t errsz)
{
	const char *colon = strrchr(text, ':');
	const char *host = text;
	size_t host_len;
	unsigned long port;
	unsigned char addr[16];

	if (!colon || parse_number(colon + 1, 1, 65535, &port)) {
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
	o->max_series = DEFAULT_MAX_SERIES;
	o->max_connections = DEFAULT_MAX_CONNECTIONS;
	histogram_bounds_default(&o->buckets);
}

static const char *flag_name(int opt)
{
	for (const struct option *o = long_options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
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
		if (parse_number(arg, 1, 4194304, &n))
			goto bad;
		o->pid = n;
		return OPTIONS_RUN;
	case 'P':
		if (parse_number(arg, 1, 65535, &n))
			goto bad;
		o->port = n;
		return OPTIONS_RUN;
	case OPT_BUCKETS:
		if (histogram_bounds_parse(arg, &o->buckets, why,
					   sizeof(why))) {
			snprintf(err, errsz, "--buckets: %s", why);
			return OPTIONS_ERROR;
		}
		return OPTIONS_RUN;
	case OPT_MAX_ROUTES:
		if (parse_number(arg, 1, 1000000, &n))
			goto bad;
		o->max_routes = n;
		return OPTIONS_RUN;
	case OPT_MAX_PEERS:
		if (parse_number(arg, 1, 1000000, &n))
			goto bad;
		o->max_peers = n;
		return OPTIONS_RUN;
	case OPT_MAX_SERIES:
		if (parse_number(arg, 1, 10000000, &n))
			goto bad;
		o->max_series = n;
		return OPTIONS_RUN;
	case OPT_MAX_CONNECTIONS:
		if (parse_number(arg, 1, 65536, &n))
			goto bad;
		o->max_connections = n;
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
	case OPT_CHECK:
		o->check = true;
		return OPTIONS_RUN;
	case OPT_UPROBE:
		if (o->nuprobes == OPTIONS_MAX_UPROBES) {
			snprintf(err, errsz, "--uprobe: at most %d targets",
				 OPTIONS_MAX_UPROBES);
			return OPTIONS_ERROR;
		}
		o->uprobes[o->nuprobes++] = arg;
		return OPTIONS_RUN;
	case OPT_NO_TLS:
		o->no_tls = true;
		return OPTIONS_RUN;
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

enum options_result options_parse(int argc, char **argv,
				  struct sonde_options *o, char *err,
				  size_t errsz)
{
	enum options_result r;
	int opt;

	set_defaults(o);
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
	if (!o->tls_cert != !o->tls_key) {
		snprintf(err, errsz, "--tls-cert and --tls-key go together");
		return OPTIONS_ERROR;
	}
	return OPTIONS_RUN;
}
