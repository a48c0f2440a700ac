/* sonde: zero-code latency and error tracer. Wires the modules together:
 * checks the host, serves /metrics from libmicrohttpd's thread (from
 * before the BPF programs load), loads them, and consumes their events on
 * this thread. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config/options.h"
#include "export/auth.h"
#include "export/httpd.h"
#include "export/otlp.h"
#include "export/otlptrace.h"
#include "export/prom.h"
#include "export/promproto.h"
#include "export/scrape.h"
#include "identity/labels.h"
#include "identity/procinfo.h"
#include "identity/selection.h"
#include "kernel/capture.h"
#include "kernel/check.h"
#include "kernel/host.h"
#include "kernel/uprobes.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "metrics/self.h"
#include "proto/db.h"
#include "proto/dispatch.h"
#include "proto/events.h"
#include "top/top.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/privs.h"

/* Records arrive without a wakeup each: the consumer drains every 10 ms
 * while they flow, or sooner when the kernel side sees a ring filling up
 * (or reports a new process or image). Each drain costs a wakeup whatever
 * it finds: at 10 ms, 100k requests a second fill a CPU's ring by about
 * 40 KiB between drains, far from the quarter that wakes the daemon, and
 * the daemon spends about a tenth less per request than at 5 ms. A poll
 * that finds nothing doubles the wait, up to 80 ms: an idle host pays
 * about 12 wakeups a second, and the first record after a quiet spell
 * waits at most 80 ms. */
#define POLL_INTERVAL_MS 10
#define POLL_IDLE_MAX_MS 80
/* /readyz fails when the consumer has not come round for this long. */
#define READY_STALL_NS (5ULL * 1000000000ULL)

/* Stale series are looked for at most this often. */
#define EXPIRE_INTERVAL_NS (1000000000ULL)

static volatile sig_atomic_t stopping;
static uint64_t last_poll_ns;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void install_signal_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* No SA_RESTART: the consumer's poll returns at once. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void collect_build_info(const struct self_metric *m,
			       struct self_sink *sink)
{
	static const char *const version = SONDE_VERSION;

	(void)m;
	self_emit_u64(sink, &version, 1);
}

static const struct self_metric build_info = {
	.name = "sonde_build_info",
	.otel_name = "sonde.build_info",
	.unit = "1",
	.help = "Always 1; the version label says which sonde runs.",
	.kind = SELF_GAUGE,
	.nlabels = 1,
	.labels = { "version" },
	.otel_labels = { "sonde.version" },
	.collect = collect_build_info,
};

/* sonde's own metrics, in the order /metrics lists them after the
 * families it measures. */
static void register_self_metrics(const struct otlp_config *ocfg)
{
	registry_register_metrics();
	events_register_metrics();
	capture_register_metrics();
	if (ocfg->metrics.endpoint)
		otlp_register_metrics();
	if (ocfg->traces.endpoint) {
		trace_register_metrics();
		otlptrace_register_metrics();
	}
	uprobes_register_metrics();
	scrape_register_metrics();
	self_register(&build_info);
}

static bool ready(const char **why)
{
	uint64_t last = __atomic_load_n(&last_poll_ns, __ATOMIC_RELAXED);

	if (!capture_all_attached()) {
		*why = "not every BPF program is attached (see "
		       "sonde_program_attached)\n";
		return false;
	}
	if (!last || clock_monotonic_ns() - last > READY_STALL_NS) {
		*why = "the event consumer is not running\n";
		return false;
	}
	return true;
}

/* Drops series with no observation for ttl_ms, once a second or, for a
 * short TTL, four times per TTL. */
static void expire_series(uint64_t ttl_ms)
{
	static uint64_t last_ns;
	uint64_t ttl_ns = ttl_ms * 1000000ULL;
	uint64_t every = ttl_ns / 4 < EXPIRE_INTERVAL_NS ? ttl_ns / 4 :
							   EXPIRE_INTERVAL_NS;
	uint64_t now = clock_monotonic_ns();

	if (!ttl_ms || now - last_ns < every)
		return;
	last_ns = now;
	registry_expire(clock_realtime_ns(), ttl_ns);
}

static int consume_until_signalled(uint64_t ttl_ms)
{
	int wait_ms = POLL_INTERVAL_MS;

	while (!stopping) {
		int n = capture_poll(wait_ms);

		if (n > 0)
			wait_ms = POLL_INTERVAL_MS;
		else if ((wait_ms *= 2) > POLL_IDLE_MAX_MS)
			wait_ms = POLL_IDLE_MAX_MS;

		dispatch_end_round();
		if (n < 0 && n != -EINTR) {
			log_error("reading the ring buffer failed: %s",
				  strerror(-n));
			return -1;
		}
		__atomic_store_n(&last_poll_ns, clock_monotonic_ns(),
				 __ATOMIC_RELAXED);
		expire_series(ttl_ms);
		if (capture_sweep_maps())
			dispatch_sweep(capture_conn_open);
	}
	return 0;
}

/* Reads a whole (small) file, NUL-terminated; NULL after logging. */
static char *read_pem(const char *flag, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");

	if (!f || getdelim(&data, &len, '\0', f) < 0) {
		log_error("%s %s: %s", flag, path,
			  f ? "empty or unreadable" : strerror(errno));
		free(data);
		data = NULL;
	}
	if (f)
		fclose(f);
	return data;
}

/* Each endpoint connection is an fd: allow as many as the hard limit. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int load_endpoint_security(const struct sonde_options *o,
				  struct httpd_config *cfg)
{
	char err[512];

	if (o->auth_file && auth_load(o->auth_file, err, sizeof(err))) {
		log_error("--basic-auth-file %s", err);
		return -1;
	}
	if (!o->tls_cert)
		return 0;
	cfg->tls_cert_pem = read_pem("--tls-cert", o->tls_cert);
	cfg->tls_key_pem = read_pem("--tls-key", o->tls_key);
	return cfg->tls_cert_pem && cfg->tls_key_pem ? 0 : -1;
}

static void set_port_rule(uint16_t port, uint8_t how, void *arg)
{
	(void)arg;
	capture_set_port_rule(port, how);
}

static void set_fold_op(const char *name, uint16_t index, void *arg)
{
	(void)arg;
	capture_set_fold_op(name, index);
}

/* Processes already running get their verdict before the first event, so
 * an included server's next request is not lost while it is decided. */
static void decide_running_processes(void)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;
	unsigned n = 0;

	selection_each_port(set_port_rule, NULL);
	if (!proc)
		return;
	while ((d = readdir(proc)) != NULL) {
		char *end;
		unsigned long pid = strtoul(d->d_name, &end, 10);

		if (!isdigit((unsigned char)d->d_name[0]) || *end || !pid)
			continue;
		capture_set_verdict(pid, procinfo_get(pid, "")->verdict);
		n++;
	}
	closedir(proc);
	log_debug("process selection: %u running processes decided", n);
}

/* Every family but the server one, which takes the captured headers too:
 * the optional identity labels go on each. */
static struct metric_family *const identity_families[] = {
	&family_http_client,	   &family_rpc_server,
	&family_rpc_client,	   &family_tcp_connect_duration,
	&family_tcp_connects,	   &family_tcp_resets,
	&family_tcp_retransmits,   &family_tcp_active,
	&family_function_duration, &family_db_client,
	&family_db_server,
};

/* Database calls take tens of microseconds where HTTP requests take
 * milliseconds: their families start at 100 us, unless the operator
 * chose bounds for every family (--buckets, or the file's buckets). */
static void use_db_bounds(const struct sonde_options *o)
{
	static struct histogram_bounds db_bounds; /* the registry keeps it */

	if (o->buckets_given)
		return;
	histogram_bounds_fine(&db_bounds);
	family_db_client.bounds = &db_bounds;
	family_db_server.bounds = &db_bounds;
}

/* The BPF side sums the database calls it follows whole, in the
 * families' buckets, unless each call must reach the daemon: for its
 * span, or for an exponential histogram, which counts per bucket could
 * not fill. */
static void use_db_sums(struct capture_options *c, bool each_call)
{
	const struct histogram_bounds *b =
		registry_family_bounds(&family_db_client);

	c->db_sum_nbounds = 0;
	if (each_call || b->n > SONDE_DB_SUM_BOUNDS ||
	    registry_family_bounds(&family_db_server) != b)
		return;
	c->db_sum_nbounds = (uint32_t)b->n;
	memcpy(c->db_sum_bounds, b->ns, b->n * sizeof(b->ns[0]));
}

/* Rules and labels from the options; a mistake here is a config error. */
static int setup_rules(const struct sonde_options *o)
{
	size_t n = sizeof(identity_families) / sizeof(identity_families[0]);
	char err[256];
	int failed;

	failed =
		selection_init(o->include.items, o->include.n, o->exclude.items,
			       o->exclude.n, o->services.items, o->services.n,
			       err, sizeof(err)) ||
		labels_init(&family_http_server, o->labels.items, o->labels.n,
			    o->capture_headers.items, o->capture_headers.n, err,
			    sizeof(err));
	for (size_t i = 0; !failed && i < n; i++)
		failed = labels_init_optional(identity_families[i], err,
					      sizeof(err));
	if (failed) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct httpd_hooks hooks = { prom_render, ready };
	struct sonde_options opts;
	struct httpd_config hcfg = { 0 };
	struct otlp_config ocfg = { 0 };
	struct trace_config tcfg;
	struct capture_options copts = { 0 };
	struct registry_limits limits;
	char err[256];
	int listen_fd, rc = 1;

	if (argc > 1 && strcmp(argv[1], "top") == 0)
		return top_main(argc - 1, argv + 1);
	/* Blocks of 256 KiB and more (a /metrics body, a render's copies)
	 * are mapped, and given back when freed. Left to itself, glibc raises
	 * this threshold to the largest block freed (up to 32 MiB) and keeps
	 * later such blocks in the heap, whose pages stay in RSS between
	 * scrapes. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	switch (options_parse(argc, argv, &opts, err, sizeof(err))) {
	case OPTIONS_EXIT:
		options_free(&opts);
		return 0;
	case OPTIONS_ERROR:
		log_error("%s", err);
		options_free(&opts);
		return 2;
	case OPTIONS_RUN:
		break;
	}
	log_verbose = opts.verbose;
	if (opts.check) {
		rc = check_host();
		goto out_free;
	}
	rc = 2;
	if (otlp_config_load(opts.otlp_endpoint, &ocfg, err, sizeof(err)) ||
	    (ocfg.traces.endpoint &&
	     trace_config_load(&tcfg, err, sizeof(err)))) {
		log_error("%s", err);
		goto out_free;
	}
	for (unsigned i = 0; i < opts.uprobes.n; i++)
		if (uprobes_add_function(opts.uprobes.items[i], err,
					 sizeof(err))) {
			log_error("%s", err);
			goto out_free;
		}
	rc = 1;
	if (privs_check() || host_check_btf(HOST_BTF_PATH) ||
	    host_ensure_tracefs() || load_endpoint_security(&opts, &hcfg))
		goto out_free;
	raise_fd_limit();
	listen_fd = host_listen(opts.listen_host, opts.listen_port);
	if (listen_fd < 0)
		goto out_free;

	limits.max_routes_per_service = opts.max_routes;
	limits.max_peers_per_service = opts.max_peers;
	limits.max_series = opts.max_series;
	registry_init(&opts.buckets, &limits);
	use_db_bounds(&opts);
	if (ocfg.exponential || opts.native_histograms)
		registry_enable_exphist();
	promproto_configure(&(struct promproto_config){
		.native = opts.native_histograms,
		.schema = opts.native_schema,
		.max_buckets = opts.native_max_buckets,
	});
	if (setup_rules(&opts)) {
		rc = 2;
		goto out_close;
	}
	install_signal_handlers();
	register_self_metrics(&ocfg);
	/* Before loading, which takes the verifier some 0.3 s: /healthz and
	 * /metrics answer meanwhile, /readyz once everything is attached.
	 * The server's thread holds no capability (httpd.h). */
	hcfg.listen_fd = listen_fd;
	hcfg.max_connections = opts.max_connections;
	if (httpd_start(&hcfg, &hooks))
		goto out_close;
	log_info("serving %s://%s%s%s:%s/metrics",
		 hcfg.tls_cert_pem ? "https" : "http",
		 strchr(opts.listen_host, ':') ? "[" : "", opts.listen_host,
		 strchr(opts.listen_host, ':') ? "]" : "", opts.listen_port);

	copts.self_pid = getpid();
	copts.filter_pid = opts.pid;
	copts.filter_port = opts.port;
	copts.select_enabled = selection_enabled();
	copts.select_pending = selection_pending_verdict();
	copts.tls = !opts.no_tls;
	copts.functions = opts.uprobes.n > 0;
	copts.bpf_stats = opts.bpf_stats;
	copts.propagation = opts.trace_propagation;
	/* The key of the trace ids the kernel and the spans derive for
	 * requests that come with none: secret, so that a client cannot
	 * steer them. */
	if (copts.propagation &&
	    getrandom(copts.trace_key, sizeof(copts.trace_key), 0) !=
		    sizeof(copts.trace_key)) {
		log_error("--trace-propagation: cannot draw a random key");
		goto out_stop;
	}
	copts.max_tracked = opts.max_tracked;
	copts.hooks = opts.hooks;
	/* Spans read a client request's traceparent from its head. */
	copts.client_heads = ocfg.traces.endpoint != NULL;
	use_db_sums(&copts, ocfg.traces.endpoint || ocfg.exponential ||
				    opts.native_histograms);
	if (capture_start(&copts, dispatch_record, NULL))
		goto out_stop;
	procinfo_use_kernel(&(struct procinfo_kernel){
		.exit_identity = capture_exit_identity,
		.named = capture_process_named,
	});
	redis_each_fold_op(set_fold_op, NULL);
	if (copts.select_enabled)
		decide_running_processes();
	/* Before the drop: its thread keeps what attaching needs. */
	if (uprobes_start(capture_object(), !opts.no_tls))
		goto out_stop;
	/* Everything privileged is done; the OTLP thread starts after this
	 * and inherits the reduced set. */
	if (privs_drop_after_attach())
		goto out_stop;
	/* Runs with the reduced privileges; curl never sees the lock. */
	if (ocfg.metrics.endpoint && otlp_start(&ocfg))
		goto out_stop;
	if (ocfg.traces.endpoint) {
		trace_start(&tcfg);
		if (copts.propagation)
			trace_derive_ids(copts.trace_key[0],
					 copts.trace_key[1]);
		if (otlptrace_start(&ocfg, &tcfg))
			goto out_stop;
	}

	rc = consume_until_signalled(opts.series_ttl_ms) ? 1 : 0;
	if (!rc)
		log_info("stopping: detaching BPF programs");
out_stop:
	/* Each is safe to call when it never started. */
	httpd_stop();
	/* The trace exporter drains the span queue before it goes; the
	 * metrics exporter goes last, with the final span counts. */
	otlptrace_stop();
	trace_stop();
	otlp_stop();
	uprobes_stop();
	capture_stop();
out_close:
	close(listen_fd);
	registry_free();
	procinfo_free();
	selection_free();
out_free:
	otlp_config_free(&ocfg);
	auth_free();
	free((char *)hcfg.tls_cert_pem);
	free((char *)hcfg.tls_key_pem);
	options_free(&opts);
	return rc;
}
