#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kernel/propagate.h"
#include "metrics/self.h"
#include "sonde_events.h"
#include "util/log.h"

#define SOCKOPS_PROG "propagate_sockops"
#define SK_MSG_PROG "propagate_sk_msg"
#define SOCKET_MAP "prop_socks"
#define RESULTS_MAP "prop_results"
#define SERVING_MAP "serving"
#define MOUNTINFO "/proc/self/mountinfo"
/* Where a cgroup v2 hierarchy is mounted on a unified host; a hybrid one
 * (systemd's) has it at /sys/fs/cgroup/unified. */
#define CGROUP2_USUAL "/sys/fs/cgroup"

static bool enabled;
static char cgroup_dir[256];
static struct bpf_link *sockops_link;
static int sk_msg_link = -1; /* a BPF link, kernel 6.10 on */
static int sk_msg_prog = -1; /* or attached to the map the old way */
static int sk_msg_map = -1;
/* A copy of prop_results' fd, read by the exporters' threads: closed
 * under results_lock when the programs go, before the object is. */
static pthread_mutex_t results_lock = PTHREAD_MUTEX_INITIALIZER;
static int results_fd = -1;

static const char *const result_names[SONDE_PROP_RESULT_COUNT] = {
	[SONDE_PROP_INJECTED] = "injected",
	[SONDE_PROP_PRESENT] = "present",
	[SONDE_PROP_HEAD_SPLIT] = "skipped_head_split",
	[SONDE_PROP_HEAD_LONG] = "skipped_head_long",
	[SONDE_PROP_PULL_FAILED] = "skipped_pull_failed",
	[SONDE_PROP_PUSH_FAILED] = "skipped_push_failed",
	[SONDE_PROP_RING_FULL] = "skipped_ring_full",
	[SONDE_PROP_CONN_UNTRACKED] = "skipped_connection_untracked",
};

bool propagate_owns(const struct bpf_program *prog)
{
	enum bpf_prog_type t = bpf_program__type(prog);

	return t == BPF_PROG_TYPE_SOCK_OPS || t == BPF_PROG_TYPE_SK_MSG;
}

/* sock_ops and sk_msg programs are networking ones: CAP_NET_ADMIN (or
 * CAP_SYS_ADMIN) on top of CAP_BPF. */
static bool net_admin(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data))
		return true; /* let the load say */
	return (data[0].effective & (1u << CAP_NET_ADMIN)) ||
	       (data[0].effective & (1u << CAP_SYS_ADMIN));
}

/* The mount point of a cgroup v2 hierarchy into dir: CGROUP2_USUAL when
 * it is one, else the first in mountinfo. False when none is mounted. */
static bool find_cgroup2(char *dir, size_t n)
{
	FILE *f = fopen(MOUNTINFO, "re");
	char line[1024], point[256];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		/* "36 25 0:30 / /sys/fs/cgroup rw,... - cgroup2 cgroup2 rw" */
		const char *dash = strstr(line, " - cgroup2 ");

		if (!dash || sscanf(line, "%*s %*s %*s %*s %255s", point) != 1)
			continue;
		if (!found || !strcmp(point, CGROUP2_USUAL))
			snprintf(dir, n, "%s", point);
		found = true;
		if (!strcmp(point, CGROUP2_USUAL))
			break;
	}
	fclose(f);
	return found;
}

/* Whether the kernel loads what the programs are: said why when not. */
static bool kernel_supports(void)
{
	static const struct {
		enum bpf_prog_type type;
		const char *name;
	} progs[] = {
		{ BPF_PROG_TYPE_SOCK_OPS, "sock_ops" },
		{ BPF_PROG_TYPE_SK_MSG, "sk_msg" },
	};

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++)
		if (libbpf_probe_bpf_prog_type(progs[i].type, NULL) != 1) {
			log_error("--trace-propagation: this kernel does not "
				  "load %s programs (CONFIG_CGROUP_BPF, "
				  "CONFIG_BPF_STREAM_PARSER): run without "
				  "--trace-propagation",
				  progs[i].name);
			return false;
		}
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL) != 1) {
		log_error("--trace-propagation: this kernel has no socket "
			  "hash maps (CONFIG_BPF_STREAM_PARSER): run without "
			  "--trace-propagation");
		return false;
	}
	return true;
}

static uint64_t result_count(__u32 result)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *values, total = 0;

	if (ncpus <= 0 || results_fd < 0)
		return 0;
	values = calloc(ncpus, sizeof(*values));
	if (!values)
		return 0;
	if (!bpf_map_lookup_elem(results_fd, &result, values))
		for (int i = 0; i < ncpus; i++)
			total += values[i];
	free(values);
	return total;
}

/* Every result, 0 before the programs are loaded and after they go. */
static void collect_results(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	pthread_mutex_lock(&results_lock);
	for (__u32 r = 0; r < SONDE_PROP_RESULT_COUNT; r++)
		self_emit_u64(sink, &result_names[r], result_count(r));
	pthread_mutex_unlock(&results_lock);
}

static const struct self_metric propagation_metric = {
	.name = "sonde_trace_propagation_total",
	.otel_name = "sonde.trace.propagation",
	.unit = "{request}",
	.help = "Outgoing plaintext HTTP/1.x requests seen by "
		"--trace-propagation, by what became of them: injected (a "
		"traceparent was added), present (they had one), or skipped_* "
		"(sent unchanged: head_split, its head went on past one send; "
		"head_long, past the 2 KiB checked; pull_failed or "
		"push_failed, the kernel had no memory to rewrite it; "
		"ring_full, its ids could not be reported). "
		"skipped_connection_untracked counts connections, not "
		"requests: their requests are not seen.",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "result" },
	.otel_labels = { "sonde.propagation.result" },
	.collect = collect_results,
};

int propagate_prepare(struct bpf_object *obj, bool on, uint32_t max_conns)
{
	struct bpf_program *sockops, *sk_msg;
	struct bpf_map *socks, *results, *serving;

	sockops = bpf_object__find_program_by_name(obj, SOCKOPS_PROG);
	sk_msg = bpf_object__find_program_by_name(obj, SK_MSG_PROG);
	socks = bpf_object__find_map_by_name(obj, SOCKET_MAP);
	results = bpf_object__find_map_by_name(obj, RESULTS_MAP);
	serving = bpf_object__find_map_by_name(obj, SERVING_MAP);
	if (!sockops || !sk_msg || !socks || !results || !serving) {
		log_error("BPF object does not match this build of sonde (no "
			  "propagation programs): rebuild with make");
		return -EINVAL;
	}
	enabled = on;
	bpf_program__set_autoload(sockops, on);
	bpf_program__set_autoload(sk_msg, on);
	bpf_map__set_autocreate(socks, on);
	bpf_map__set_autocreate(results, on);
	/* The HTTP/1 handler names it whether or not it is used. */
	bpf_map__set_max_entries(serving, on ? (max_conns ? max_conns :
						   SONDE_MAX_CONNS) :
					       1);
	if (!on)
		return 0;
	if (!net_admin()) {
		log_error("--trace-propagation needs CAP_NET_ADMIN (sock_ops "
			  "and sk_msg programs): add it, or run without "
			  "--trace-propagation");
		return -EPERM;
	}
	if (!kernel_supports())
		return -EOPNOTSUPP;
	if (!find_cgroup2(cgroup_dir, sizeof(cgroup_dir))) {
		log_error(
			"--trace-propagation: no cgroup v2 hierarchy is "
			"mounted (none in " MOUNTINFO "): mount one with "
			"`mount -t cgroup2 none /sys/fs/cgroup/unified`, or run "
			"without --trace-propagation");
		return -ENOENT;
	}
	if (max_conns)
		bpf_map__set_max_entries(socks, max_conns);
	self_register(&propagation_metric);
	return 0;
}

/* The sk_msg program on the socket map: as a link (closing it detaches),
 * or on kernels before 6.10, which have no such links, attached to the
 * map until detached. */
static int attach_sk_msg(int prog_fd, int map_fd)
{
	int fd = bpf_link_create(prog_fd, map_fd, BPF_SK_MSG_VERDICT, NULL);

	if (fd >= 0) {
		sk_msg_link = fd;
		return 0;
	}
	if (bpf_prog_attach(prog_fd, map_fd, BPF_SK_MSG_VERDICT, 0))
		return -errno;
	sk_msg_prog = prog_fd;
	sk_msg_map = map_fd;
	return 0;
}

/* The sock_ops program on the root of cgroup v2: every socket on the
 * host is under it. */
static int attach_sockops(struct bpf_program *prog)
{
	int fd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	sockops_link = bpf_program__attach_cgroup(prog, fd);
	err = sockops_link ? 0 : -errno;
	close(fd);
	return err;
}

int propagate_attach(struct bpf_object *obj)
{
	struct bpf_program *sockops, *sk_msg;
	struct bpf_map *socks, *results;
	int err;

	if (!enabled)
		return 0;
	sockops = bpf_object__find_program_by_name(obj, SOCKOPS_PROG);
	sk_msg = bpf_object__find_program_by_name(obj, SK_MSG_PROG);
	socks = bpf_object__find_map_by_name(obj, SOCKET_MAP);
	results = bpf_object__find_map_by_name(obj, RESULTS_MAP);
	/* The verdict first: a socket is in the map only once it is there
	 * to run. */
	err = attach_sk_msg(bpf_program__fd(sk_msg), bpf_map__fd(socks));
	if (err) {
		log_error("--trace-propagation: cannot attach the sk_msg "
			  "program to its socket map: %s; run without "
			  "--trace-propagation",
			  strerror(-err));
		return err;
	}
	err = attach_sockops(sockops);
	if (err) {
		log_error("--trace-propagation: cannot attach the sock_ops "
			  "program to cgroup v2 at %s: %s; run without "
			  "--trace-propagation",
			  cgroup_dir, strerror(-err));
		return err;
	}
	pthread_mutex_lock(&results_lock);
	results_fd = fcntl(bpf_map__fd(results), F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&results_lock);
	log_debug("trace propagation: sock_ops on %s, sk_msg on %s", cgroup_dir,
		  sk_msg_link >= 0 ? "a link" : "the map");
	return 0;
}

void propagate_detach(void)
{
	/* No socket joins the map from now on, then none is rewritten;
	 * those in it leave when the object frees the map. */
	bpf_link__destroy(sockops_link);
	sockops_link = NULL;
	if (sk_msg_link >= 0)
		close(sk_msg_link);
	sk_msg_link = -1;
	if (sk_msg_prog >= 0 &&
	    bpf_prog_detach2(sk_msg_prog, sk_msg_map, BPF_SK_MSG_VERDICT))
		log_debug("cannot detach the sk_msg program: %s",
			  strerror(errno));
	sk_msg_prog = sk_msg_map = -1;
	pthread_mutex_lock(&results_lock);
	if (results_fd >= 0)
		close(results_fd);
	results_fd = -1;
	pthread_mutex_unlock(&results_lock);
	enabled = false;
}
