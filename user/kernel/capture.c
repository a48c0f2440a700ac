#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture.skel.h"
#include "kernel/capture.h"
#include "kernel/hooks.h"
#include "kernel/host.h"
#include "kernel/listeners.h"
#include "kernel/mapsweep.h"
#include "kernel/propagate.h"
#include "kernel/ring.h"
#include "metrics/registry.h"
#include "metrics/self.h"
#include "sonde_events.h"
#include "trace/trace.h"
#include "util/clock.h"
#include "util/log.h"

#define MAX_PROGRAMS 64
#define CPU_RING_MAX (2u << 20)
#define CPU_RING_MIN (256u << 10)
#define CPU_RINGS_BUDGET (8u << 20)

struct program_status {
	const char *name;
	struct bpf_link *links[HOOKS_MAX_POINTS]; /* one per tracepoint */
	int nlinks;
	int err; /* 0 when attached everywhere */
};

static struct capture_bpf *skel;
static bool select_on;
/* The shared ring: TCP and process events, and wakeups. */
static struct ring_buffer *ring;
/* The per-CPU exchange rings: ring_pos and ring_data, mapped. */
static struct ring_view *cpu_rings;
static int ncpu_rings;
static void *ring_pos_mem, *ring_data_mem;
static size_t ring_pos_len, ring_data_len;
static capture_event_fn event_fn;
static void *event_ctx;
static struct program_status programs[MAX_PROGRAMS];
static int nprograms;
/* The exporters (/metrics, /readyz, OTLP) run while capture_start loads
 * and attaches: they read programs[], the skeleton and the map fills only
 * once capture_start has published them, and under status_lock, which
 * capture_stop takes to withdraw them before it frees anything. */
static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static bool published;
/* Held while the kernel counts every BPF program's runs (--bpf-stats). */
static int stats_fd = -1;

/* Sonde's BPF hash maps are walked every MAP_SWEEP_NS by the consumer
 * thread (capture_sweep_maps): counted for sonde_map_entries, and cleared
 * of what exited processes and threads left behind. A full 32768-entry
 * map of connections (600-byte values) takes about 10 ms, 0.2% of a CPU
 * at this pace; an empty one, microseconds. */
#define MAP_SWEEP_NS 5000000000ull
#define MAX_HASH_MAPS 16

struct map_fill {
	const char *name;
	int fd;
	uint32_t entries;
	uint32_t max_entries;
	uint64_t removed; /* since start */
	int owner_offset; /* of the owning task's id in the key; -1: none */
	/* db_sums: per CPU, counted by its own reads (kernel/dbsums.h),
	 * not walked. */
	bool summed;
};

/* Processes whose verdict turned against tracing them: the connections
 * they had (tracked while they were pending, or before an exec) are
 * removed at the next sweep, so that the kernel stops looking at them;
 * the daemon drops their records meanwhile. Beyond UNTRACED_MAX between
 * two sweeps, a process's connections stay until they close. Consumer
 * thread only. */
#define UNTRACED_MAX 256
static uint32_t untraced[UNTRACED_MAX];
static unsigned nuntraced;

/* Written by the consumer thread, read by the /metrics thread. */
static pthread_mutex_t fills_lock = PTHREAD_MUTEX_INITIALIZER;
static struct map_fill fills[MAX_HASH_MAPS];
static int nfills;
static uint64_t swept_at_ns;

/* The maps whose keys name the task that owns each entry, as the BPF side
 * lays them out (bpf/capture.bpf.h, tls.bpf.h, uprobe.bpf.h). socks is
 * not here: it is keyed by socket and forgets one when it is destroyed. */
static const struct map_owner {
	const char *map;
	uint32_t key_size;
	int offset;
} map_owners[] = {
	{ "conns", 8, 0 },	   /* struct conn_key: tgid, fd */
	{ "skip_fds", 8, 0 },	   /* struct conn_key */
	{ "procs", 4, 0 },	   /* the tgid */
	{ "verdicts", 4, 0 },	   /* the tgid */
	{ "tls_bio_procs", 4, 0 }, /* the tgid */
	{ "tls_fds", 16, 8 },	   /* struct tls_session_key: ssl, tgid */
	{ "func_starts", 8, 0 },   /* struct func_key: tid, func_id */
};

static const char *const drop_names[SONDE_DROP_REASON_COUNT] = {
	[SONDE_DROP_RINGBUF_FULL] = "ringbuf_full",
	[SONDE_DROP_CONN_FULL] = "conn_map_full",
	[SONDE_DROP_PROC_FULL] = "proc_map_full",
	[SONDE_DROP_SOCK_FULL] = "sock_map_full",
	[SONDE_DROP_TLS_NO_SOCKET] = "tls_no_socket",
	[SONDE_DROP_HTTP2_UNFOLLOWED] = "http2_unfollowed",
	[SONDE_DROP_RING_BUSY] = "ring_busy",
};

static const char *const proto_names[SONDE_PROTO_COUNT] = {
	[SONDE_PROTO_HTTP1] = "http1",
	[SONDE_PROTO_HTTP2] = "http2",
	[SONDE_PROTO_TLS] = "tls",
	[SONDE_PROTO_UNKNOWN] = "unknown",
	[SONDE_PROTO_POSTGRESQL] = "postgresql",
	[SONDE_PROTO_MYSQL] = "mysql",
	[SONDE_PROTO_REDIS] = "redis",
	[SONDE_PROTO_MEMCACHED] = "memcached",
};

static int print_libbpf(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG && !log_verbose)
		return 0;
	fputs("sonde: libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

/* The daemon and the BPF object must agree on the shared structs. */
static int check_map_layout(void)
{
	if (bpf_map__value_size(skel->maps.drops) != sizeof(__u64) ||
	    bpf_map__max_entries(skel->maps.drops) != SONDE_DROP_REASON_COUNT) {
		log_error("BPF object does not match this build of sonde "
			  "(drops map layout): rebuild with make");
		return -EINVAL;
	}
	if (bpf_map__max_entries(skel->maps.classified) != SONDE_PROTO_COUNT) {
		log_error("BPF object does not match this build of sonde "
			  "(classified map layout): rebuild with make");
		return -EINVAL;
	}
	if (bpf_map__key_size(skel->maps.listeners) !=
		    sizeof(struct sonde_listener_key) ||
	    bpf_map__value_size(skel->maps.listeners) !=
		    sizeof(struct sonde_listener)) {
		log_error("BPF object does not match this build of sonde "
			  "(listeners map layout): rebuild with make");
		return -EINVAL;
	}
	return 0;
}

/* Resolves --hooks: socket hooks when asked or, by default, when the
 * kernel has them. -ENOENT (said why) when asked for on a kernel without
 * them. */
static int choose_hooks(enum capture_hooks asked, bool *socket)
{
	bool has = hooks_kernel_has_socket(HOST_TRACEFS);

	if (asked == CAPTURE_HOOKS_SOCKET && !has) {
		log_error("--hooks socket: this kernel has no "
			  "sock:sock_recv_length and sock:sock_send_length "
			  "tracepoints (Linux 6.3 on); use --hooks syscall");
		return -ENOENT;
	}
	*socket = asked == CAPTURE_HOOKS_AUTO ? has :
						asked == CAPTURE_HOOKS_SOCKET;
	log_debug("reads and writes seen on %s tracepoints",
		  *socket ? "socket" : "syscall");
	return 0;
}

/* Uprobe programs are loaded only when something will attach them. */
static void set_uprobe_autoload(const struct capture_options *o)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj) {
		const char *name = bpf_program__name(prog);

		if (bpf_program__type(prog) != BPF_PROG_TYPE_KPROBE)
			continue;
		bpf_program__set_autoload(prog, strncmp(name, "func_", 5) ?
							o->tls :
							o->functions);
	}
}

static int attach_all(void)
{
	struct bpf_program *prog;
	int attached = 0;

	bpf_object__for_each_program(prog, skel->obj) {
		struct program_status *st;
		int n;

		if (nprograms == MAX_PROGRAMS)
			break;
		/* Uprobes have no fixed target: uprobes.c attaches them;
		 * propagate.c attaches its own. */
		if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE ||
		    propagate_owns(prog) || !bpf_program__autoload(prog))
			continue;
		st = &programs[nprograms++];
		st->name = bpf_program__name(prog);
		n = hooks_attach(prog, st->links, &st->nlinks);
		if (n < 0) {
			st->err = n;
			log_error("cannot attach %s (%s, tracepoint %d): %s",
				  st->name, bpf_program__section_name(prog),
				  st->nlinks + 1, strerror(-st->err));
			continue;
		}
		attached++;
	}
	if (!attached) {
		log_error("no BPF program could be attached");
		return -ENOENT;
	}
	log_debug("%d of %d BPF programs attached", attached, nprograms);
	return 0;
}

size_t capture_cpu_ring_bytes(int ncpus)
{
	size_t bytes = CPU_RING_MAX;

	while (bytes > CPU_RING_MIN && bytes * (size_t)ncpus > CPU_RINGS_BUDGET)
		bytes /= 2;
	return bytes;
}

/* The programs read their settings (.rodata) and counters (.bss) on
 * every run. libbpf makes those maps mappable, which puts their values in
 * pages of their own; unmappable, the kernel allocates small ones from
 * its own memory, mapped with large pages: one page walk fewer per
 * run on a host that flushes the TLB at every syscall. sonde sets them
 * before load and never reads them after, so the skeleton's pointers to
 * them are NULL once loaded. */
static void keep_globals_unmapped(void)
{
	struct bpf_map *maps[] = { skel->maps.rodata, skel->maps.bss };

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		bpf_map__set_map_flags(maps[i], bpf_map__map_flags(maps[i]) &
							~BPF_F_MMAPABLE);
}

/* Sizes the exchange rings for ncpus CPUs, before load. */
static void size_cpu_rings(int ncpus)
{
	size_t bytes = capture_cpu_ring_bytes(ncpus);

	bpf_map__set_max_entries(skel->maps.ring_pos, ncpus);
	bpf_map__set_max_entries(skel->maps.ring_data, ncpus);
	bpf_map__set_value_size(skel->maps.ring_data, bytes + SONDE_RING_SLACK);
	skel->rodata->ring_mask = bytes - 1;
}

/* How far apart a mapped array's values are: the kernel rounds each up
 * to 8 bytes. */
static size_t array_stride(const struct bpf_map *map)
{
	return (bpf_map__value_size(map) + 7) & ~(size_t)7;
}

static void *map_array(struct bpf_map *map, int prot, size_t *len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t elem = array_stride(map);
	void *mem;

	*len = (elem * bpf_map__max_entries(map) + page - 1) & ~(page - 1);
	mem = mmap(NULL, *len, prot, MAP_SHARED, bpf_map__fd(map), 0);
	return mem == MAP_FAILED ? NULL : mem;
}

/* Maps the loaded exchange rings into the daemon's memory: -errno, said
 * why, when it cannot. */
static int map_cpu_rings(void)
{
	int n = (int)bpf_map__max_entries(skel->maps.ring_pos);
	size_t stride = array_stride(skel->maps.ring_data);
	size_t bytes =
		bpf_map__value_size(skel->maps.ring_data) - SONDE_RING_SLACK;

	ring_pos_mem = map_array(skel->maps.ring_pos, PROT_READ | PROT_WRITE,
				 &ring_pos_len);
	ring_data_mem =
		map_array(skel->maps.ring_data, PROT_READ, &ring_data_len);
	cpu_rings = calloc(n, sizeof(*cpu_rings));
	if (!ring_pos_mem || !ring_data_mem || !cpu_rings) {
		int err = -errno;

		log_error("cannot map the per-CPU exchange rings: %s",
			  strerror(-err));
		return err;
	}
	for (int i = 0; i < n; i++)
		cpu_rings[i] = (struct ring_view){
			.pos = (struct sonde_ring_pos *)ring_pos_mem + i,
			.data = (const uint8_t *)ring_data_mem + i * stride,
			.mask = bytes - 1,
		};
	ncpu_rings = n;
	log_debug("%d per-CPU rings of %zu KiB", n, bytes >> 10);
	return 0;
}

static void unmap_cpu_rings(void)
{
	if (ring_pos_mem)
		munmap(ring_pos_mem, ring_pos_len);
	if (ring_data_mem)
		munmap(ring_data_mem, ring_data_len);
	free(cpu_rings);
	ring_pos_mem = ring_data_mem = NULL;
	cpu_rings = NULL;
	ncpu_rings = 0;
}

/* A ring an eighth full is read behind its programs: spans then give
 * way, so that the records the metrics count are read before a full ring
 * loses them, until every ring is down to a thirty-second. */
#define SHED_ON_SHIFT 3
#define SHED_OFF_SHIFT 5

/* Whether the consumer is behind the rings, by those bounds. */
static bool rings_behind(void)
{
	static bool behind;
	bool above_on = false, above_off = false;

	for (int i = 0; i < ncpu_rings; i++) {
		uint64_t backlog = ring_backlog(&cpu_rings[i]);
		uint64_t size = cpu_rings[i].mask + 1;

		above_on |= backlog > size >> SHED_ON_SHIFT;
		above_off |= backlog > size >> SHED_OFF_SHIFT;
	}
	behind = above_on || (behind && above_off);
	return behind;
}

/* Reads every CPU's exchange ring, oldest record first across them;
 * returns the records handled. */
static int drain_cpu_rings(void)
{
	static bool said;
	int bad, n;

	trace_shed(rings_behind());
	n = ring_read_merged(cpu_rings, ncpu_rings, event_fn, event_ctx, &bad);
	if (bad >= 0 && !said) {
		log_error("the exchange ring of CPU %d held a record of "
			  "impossible length: its contents were dropped",
			  bad);
		said = true;
	}
	return n;
}

/* Where the owning task's id lies in map's keys; -1 for a map not
 * swept, or one whose keys are not the size the table expects (counted
 * only, and said once). */
static int owner_offset(const struct bpf_map *map)
{
	const char *name = bpf_map__name(map);

	for (size_t i = 0; i < sizeof(map_owners) / sizeof(map_owners[0]);
	     i++) {
		if (strcmp(name, map_owners[i].map))
			continue;
		if (bpf_map__key_size(map) == map_owners[i].key_size)
			return map_owners[i].offset;
		log_error("BPF map %s has %u-byte keys, not %u: entries of "
			  "exited processes stay in it (rebuild with make)",
			  name, bpf_map__key_size(map), map_owners[i].key_size);
		return -1;
	}
	return -1;
}

/* The plain hash maps, the ones mapsweep can walk, and db_sums. */
static void list_hash_maps(void)
{
	struct bpf_map *map;

	nfills = 0;
	bpf_object__for_each_map(map, skel->obj) {
		enum bpf_map_type t = bpf_map__type(map);
		bool summed = map == skel->maps.db_sums;
		struct map_fill *f;

		if (nfills == MAX_HASH_MAPS)
			break;
		if (bpf_map__fd(map) < 0 ||
		    (t != BPF_MAP_TYPE_HASH && t != BPF_MAP_TYPE_LRU_HASH &&
		     !summed))
			continue;
		f = &fills[nfills++];
		memset(f, 0, sizeof(*f));
		f->name = bpf_map__name(map);
		f->fd = bpf_map__fd(map);
		f->max_entries = bpf_map__max_entries(map);
		f->owner_offset = summed ? -1 : owner_offset(map);
		f->summed = summed;
	}
}

/* mapsweep_gone_fn for the maps of connections: an exited process's,
 * or one whose verdict turned against tracing it. */
static bool conn_unwanted(uint32_t tgid)
{
	for (unsigned i = 0; i < nuntraced; i++)
		if (untraced[i] == tgid)
			return true;
	return mapsweep_task_gone(tgid);
}

static bool is_connection_map(const struct map_fill *f)
{
	return !strcmp(f->name, "conns");
}

static void sweep_maps(void)
{
	for (int i = 0; i < nfills; i++) {
		struct mapsweep_result r;
		int err;

		if (fills[i].summed)
			continue;
		err = mapsweep_walk(fills[i].fd, fills[i].owner_offset,
				    is_connection_map(&fills[i]) ?
					    conn_unwanted :
					    mapsweep_task_gone,
				    &r);
		if (err)
			log_debug("cannot walk BPF map %s: %s", fills[i].name,
				  strerror(-err));
		pthread_mutex_lock(&fills_lock);
		fills[i].entries = r.entries;
		fills[i].removed += r.removed;
		pthread_mutex_unlock(&fills_lock);
	}
	nuntraced = 0;
	swept_at_ns = clock_monotonic_ns();
}

bool capture_sweep_maps(void)
{
	if (!skel || clock_monotonic_ns() - swept_at_ns < MAP_SWEEP_NS)
		return false;
	sweep_maps();
	return true;
}

/* How often the sums of database calls are read: a scrape sees a call
 * summed at most this long after it. */
#define DB_SUMS_READ_NS 100000000ull
static uint64_t db_sums_read_at_ns, db_sums_probed_at_ns;
static bool db_sums_on;

/* Whose sums a read deletes: the processes the caller says exited and,
 * every MAP_SWEEP_NS, any whose exit it never heard of (its record
 * lost), asked of the kernel. */
struct sums_gone {
	dbsums_gone_fn gone;
	void *arg;
	struct mapsweep_gone_cache *probe; /* NULL: no asking this read */
};

static bool sums_gone(uint32_t tgid, void *arg)
{
	const struct sums_gone *g = arg;

	return (g->gone && g->gone(tgid, g->arg)) ||
	       (g->probe &&
		mapsweep_gone_cached(g->probe, tgid, mapsweep_task_gone));
}

static void set_db_sum_bounds(const struct capture_options *o)
{
	uint32_t n = o->db_sum_nbounds;

	if (n > SONDE_DB_SUM_BOUNDS)
		n = 0;
	skel->rodata->db_sum_nbounds = n;
	for (uint32_t i = 0; i < n; i++)
		skel->rodata->db_sum_bounds[i] = o->db_sum_bounds[i];
	db_sums_on = n > 0;
}

void capture_read_db_sums(bool now, dbsums_fn fn, dbsums_gone_fn gone,
			  void *arg)
{
	uint64_t t = clock_monotonic_ns();
	static struct mapsweep_gone_cache asked;
	struct sums_gone g = { gone, arg, NULL };
	int err;

	if (!skel || !db_sums_on ||
	    (!now && t - db_sums_read_at_ns < DB_SUMS_READ_NS))
		return;
	db_sums_read_at_ns = t;
	if (t - db_sums_probed_at_ns >= MAP_SWEEP_NS) {
		memset(&asked, 0, sizeof(asked));
		g.probe = &asked;
		db_sums_probed_at_ns = t;
	}
	err = dbsums_read(bpf_map__fd(skel->maps.db_sums),
			  libbpf_num_possible_cpus(), fn, sums_gone, &g, arg);
	if (err) {
		log_debug("cannot read BPF map db_sums: %s", strerror(-err));
		return;
	}
	pthread_mutex_lock(&fills_lock);
	for (int i = 0; i < nfills; i++)
		if (fills[i].summed) {
			fills[i].entries = dbsums_keys();
			fills[i].removed = dbsums_removed();
		}
	pthread_mutex_unlock(&fills_lock);
}

bool capture_db_sums_kept(void)
{
	return db_sums_on && dbsums_keys() > 0;
}

bool capture_conn_open(uint32_t tgid, uint32_t fd, uint64_t sk)
{
	struct {
		__u32 tgid, fd;
	} key = { tgid, fd };
	/* struct conn (bpf/capture.bpf.h) starts with its struct sock *. */
	uint64_t value[1024 / sizeof(uint64_t)];

	if (!skel || bpf_map__value_size(skel->maps.conns) > sizeof(value))
		return true;
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.conns), &key, value))
		return false;
	return value[0] == sk;
}

/* The maps with an entry per connection: the socket-level state, the
 * socket's owner, and an OpenSSL session's socket. skip_fds and the
 * per-process maps keep their built-in sizes. */
static void size_connection_maps(uint32_t n)
{
	bpf_map__set_max_entries(skel->maps.conns, n);
	bpf_map__set_max_entries(skel->maps.socks, n);
	bpf_map__set_max_entries(skel->maps.tls_fds, n);
}

static void enter_listener(void *ctx, const struct sonde_listener_key *key,
			   const struct sonde_listener *value)
{
	/* One the BPF side entered since it attached is newer. */
	bpf_map_update_elem(*(int *)ctx, key, value, BPF_NOEXIST);
}

/* Enters the listeners that were there before the programs attached
 * (user/listeners.h): under socket hooks an accepted connection is
 * charged to its listener's process until one reads or writes it, and
 * under both a database connection open before sonde learns its side
 * from them. Without them, their connections still count from their
 * first read or write. */
static void enter_listeners(uint32_t self_pid)
{
	int fd = bpf_map__fd(skel->maps.listeners), n;

	n = listeners_scan("/proc", self_pid, enter_listener, &fd);
	if (n < 0)
		log_error("cannot list the sockets listening already: %s",
			  strerror(-n));
	else
		log_debug("%d listening ports found at start", n);
}

/* Has the kernel count runs and run time of every BPF program for as
 * long as sonde holds the returned fd; never fatal. */
static void enable_run_stats(void)
{
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0)
		log_error("cannot turn on BPF run statistics (--bpf-stats): "
			  "%s; sonde_program_runs_total stays 0",
			  strerror(errno));
	else
		log_debug("BPF run statistics on");
}

static void publish(bool on)
{
	pthread_mutex_lock(&status_lock);
	published = on;
	pthread_mutex_unlock(&status_lock);
}

int capture_start(const struct capture_options *o, capture_event_fn fn,
		  void *ctx)
{
	int ncpus = libbpf_num_possible_cpus();
	bool socket_hooks;
	int err;

	libbpf_set_print(print_libbpf);
	err = choose_hooks(o->hooks, &socket_hooks);
	if (err)
		return err;
	skel = capture_bpf__open();
	if (!skel) {
		err = -errno;
		log_error("cannot open the BPF object: %s", strerror(-err));
		return err;
	}
	skel->rodata->self_tgid = o->self_pid;
	skel->rodata->filter_tgid = o->filter_pid;
	skel->rodata->filter_port = o->filter_port;
	skel->rodata->select_enabled = o->select_enabled;
	skel->rodata->select_pending = o->select_pending;
	select_on = o->select_enabled;
	skel->rodata->report_execs = o->tls;
	skel->rodata->tls_enabled = o->tls;
	skel->rodata->socket_hooks = socket_hooks;
	skel->rodata->client_heads = o->client_heads;
	skel->rodata->propagation_on = o->propagation;
	skel->rodata->trace_key0 = o->trace_key[0];
	skel->rodata->trace_key1 = o->trace_key[1];
	set_db_sum_bounds(o);
	hooks_load_only(skel->obj, socket_hooks);
	bpf_program__set_autoload(skel->progs.process_fork, o->select_enabled);
	set_uprobe_autoload(o);
	err = propagate_prepare(skel->obj, o->propagation, o->max_tracked);
	if (err)
		goto fail;
	if (ncpus <= 0) {
		err = ncpus ? ncpus : -EINVAL;
		log_error("cannot count the CPUs: %s", strerror(-err));
		goto fail;
	}
	size_cpu_rings(ncpus);
	keep_globals_unmapped();
	if (o->max_tracked)
		size_connection_maps(o->max_tracked);
	err = check_map_layout();
	if (err)
		goto fail;
	err = capture_bpf__load(skel);
	if (err) {
		log_error("cannot load the BPF programs: %s (run with -v for "
			  "the verifier log)",
			  strerror(-err));
		goto fail;
	}
	err = attach_all();
	if (!err)
		err = propagate_attach(skel->obj);
	if (err)
		goto fail;
	enter_listeners(o->self_pid);
	if (o->bpf_stats)
		enable_run_stats();
	ring = ring_buffer__new(bpf_map__fd(skel->maps.events),
				(ring_buffer_sample_fn)fn, ctx, NULL);
	if (!ring) {
		err = -errno;
		log_error("cannot open the ring buffer: %s", strerror(-err));
		goto fail;
	}
	event_fn = fn;
	event_ctx = ctx;
	err = map_cpu_rings();
	if (err)
		goto fail;
	list_hash_maps();
	sweep_maps();
	publish(true);
	return 0;
fail:
	capture_stop();
	return err;
}

int capture_poll(int timeout_ms)
{
	int n = ring_buffer__poll(ring, timeout_ms);

	/* Records arrive without wakeups: drain after every timeout too.
	 * The shared ring first: a process's exit waits for the end of the
	 * round, so its last exchanges, read after, keep its identity. */
	if (n >= 0) {
		int more = ring_buffer__consume(ring);

		n = more < 0 ? more : n + more;
	}
	if (n >= 0)
		n += drain_cpu_rings();
	return n;
}

int capture_set_verdict(uint32_t pid, uint8_t verdict)
{
	if (!skel || !select_on)
		return 0;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.verdicts), &pid,
				&verdict, BPF_ANY))
		return -errno;
	if (verdict != SONDE_VERDICT_TRACE && nuntraced < UNTRACED_MAX)
		untraced[nuntraced++] = pid;
	return 0;
}

bool capture_exit_identity(uint32_t pid, struct sonde_exit_identity *out)
{
	return skel && !bpf_map_lookup_and_delete_elem(
			       bpf_map__fd(skel->maps.exit_ids), &pid, out);
}

void capture_process_named(uint32_t pid)
{
	uint8_t named = SONDE_PROC_NAMED;

	/* Only a process in the map: one named before its first record
	 * (decided on at its fork) is not entered for nothing; its exit
	 * keeps an identity no one takes, until the map's LRU drops it. */
	if (skel)
		bpf_map_update_elem(bpf_map__fd(skel->maps.procs), &pid, &named,
				    BPF_EXIST);
}

int capture_set_port_rule(uint16_t port, uint8_t how)
{
	if (!skel || !select_on)
		return 0;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.select_ports), &port,
				&how, BPF_ANY))
		return -errno;
	return 0;
}

int capture_set_fold_op(const char *name, uint16_t index)
{
	char key[16] = { 0 };
	size_t n = strlen(name);

	if (!skel)
		return 0;
	if (n >= sizeof(key))
		return -EINVAL;
	memcpy(key, name, n);
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.redis_fold_ops), key,
				&index, BPF_ANY))
		return -errno;
	return 0;
}

struct bpf_object *capture_object(void)
{
	return skel ? skel->obj : NULL;
}

bool capture_all_attached(void)
{
	bool all;

	pthread_mutex_lock(&status_lock);
	all = published && nprograms > 0;
	for (int i = 0; all && i < nprograms; i++)
		all = !programs[i].err;
	pthread_mutex_unlock(&status_lock);
	return all;
}

/* The sum over CPUs of a per-CPU array's counter at index; 0 when map is
 * NULL (not loaded). */
static uint64_t per_cpu_sum(const struct bpf_map *map, __u32 index)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *values, total = 0;

	if (ncpus <= 0 || !map)
		return 0;
	values = calloc(ncpus, sizeof(*values));
	if (!values)
		return 0;
	if (!bpf_map_lookup_elem(bpf_map__fd(map), &index, values))
		for (int i = 0; i < ncpus; i++)
			total += values[i];
	free(values);
	return total;
}

static uint64_t kernel_drops(__u32 reason)
{
	return per_cpu_sum(skel ? skel->maps.drops : NULL, reason);
}

/* A loaded program's counters: runs and run time (kept by the kernel only
 * while BPF stats are on) and recursion misses (always kept). False for a
 * program not loaded (an unused uprobe) or when the kernel says nothing. */
static bool program_info(const struct bpf_program *prog,
			 struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);
	int fd = bpf_program__fd(prog);

	memset(info, 0, sizeof(*info));
	return fd >= 0 && !bpf_obj_get_info_by_fd(fd, info, &len);
}

/* ---- sonde's own metrics ---------------------------------------------- */

/* No line for a program before capture_start has attached them all. */
static void collect_attached(const struct self_metric *m,
			     struct self_sink *sink)
{
	(void)m;
	pthread_mutex_lock(&status_lock);
	for (int i = 0; published && i < nprograms; i++)
		self_emit_u64(sink, &programs[i].name, programs[i].err == 0);
	pthread_mutex_unlock(&status_lock);
}

/* Every reason, 0 before the programs are loaded. */
static void collect_drops(const struct self_metric *m, struct self_sink *sink)
{
	static const char *const series_limit = "series_limit";

	(void)m;
	pthread_mutex_lock(&status_lock);
	for (__u32 r = 0; r < SONDE_DROP_REASON_COUNT; r++)
		self_emit_u64(sink, &drop_names[r],
			      published ? kernel_drops(r) : 0);
	pthread_mutex_unlock(&status_lock);
	self_emit_u64(sink, &series_limit, registry_dropped());
}

enum program_counter {
	PROGRAM_RUNS,
	PROGRAM_RUN_SECONDS,
	PROGRAM_RECURSION_MISSES,
};

static void emit_program_counter(struct self_sink *sink,
				 const struct bpf_program *prog,
				 enum program_counter which)
{
	const char *name = bpf_program__name(prog);
	struct bpf_prog_info info;

	if (!program_info(prog, &info))
		return;
	if (which == PROGRAM_RUNS)
		self_emit_u64(sink, &name, info.run_cnt);
	else if (which == PROGRAM_RUN_SECONDS)
		self_emit_double(sink, &name, info.run_time_ns / 1e9);
	else
		self_emit_u64(sink, &name, info.recursion_misses);
}

/* One of the kernel's counters for every loaded program; none before
 * capture_start is done. */
static void collect_program_counter(struct self_sink *sink,
				    enum program_counter which)
{
	struct bpf_program *prog;

	pthread_mutex_lock(&status_lock);
	if (published)
		bpf_object__for_each_program(prog, skel->obj)
			emit_program_counter(sink, prog, which);
	pthread_mutex_unlock(&status_lock);
}

static void collect_runs(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	collect_program_counter(sink, PROGRAM_RUNS);
}

static void collect_run_seconds(const struct self_metric *m,
				struct self_sink *sink)
{
	(void)m;
	collect_program_counter(sink, PROGRAM_RUN_SECONDS);
}

static void collect_recursion_misses(const struct self_metric *m,
				     struct self_sink *sink)
{
	(void)m;
	collect_program_counter(sink, PROGRAM_RECURSION_MISSES);
}

enum fill_value { FILL_ENTRIES, FILL_MAX_ENTRIES, FILL_REMOVED };

/* One value of every swept map, from a copy taken under fills_lock; none
 * before capture_start is done (it lists the maps unlocked). The map
 * names belong to the skeleton: status_lock keeps it alive meanwhile. */
static void collect_fill(struct self_sink *sink, enum fill_value which)
{
	struct map_fill copy[MAX_HASH_MAPS];
	int n = 0;

	pthread_mutex_lock(&status_lock);
	pthread_mutex_lock(&fills_lock);
	if (published) {
		n = nfills;
		memcpy(copy, fills, sizeof(copy[0]) * (size_t)n);
	}
	pthread_mutex_unlock(&fills_lock);
	for (int i = 0; i < n; i++)
		self_emit_u64(sink, &copy[i].name,
			      which == FILL_ENTRIES	? copy[i].entries :
			      which == FILL_MAX_ENTRIES ? copy[i].max_entries :
							  copy[i].removed);
	pthread_mutex_unlock(&status_lock);
}

/* Every protocol, 0 before the programs are loaded. */
static void collect_classified(const struct self_metric *m,
			       struct self_sink *sink)
{
	(void)m;
	pthread_mutex_lock(&status_lock);
	for (__u32 p = SONDE_PROTO_HTTP1; p < SONDE_PROTO_COUNT; p++)
		self_emit_u64(
			sink, &proto_names[p],
			published ? per_cpu_sum(skel->maps.classified, p) : 0);
	pthread_mutex_unlock(&status_lock);
}

static void collect_map_entries(const struct self_metric *m,
				struct self_sink *sink)
{
	(void)m;
	collect_fill(sink, FILL_ENTRIES);
}

static void collect_map_max_entries(const struct self_metric *m,
				    struct self_sink *sink)
{
	(void)m;
	collect_fill(sink, FILL_MAX_ENTRIES);
}

static void collect_map_removed(const struct self_metric *m,
				struct self_sink *sink)
{
	(void)m;
	collect_fill(sink, FILL_REMOVED);
}

static const struct self_metric capture_metrics[] = {
	{
		.name = "sonde_program_attached",
		.otel_name = "sonde.program.attached",
		.unit = "1",
		.help = "1 when the BPF program is attached to its hook.",
		.kind = SELF_GAUGE,
		.nlabels = 1,
		.labels = { "program" },
		.otel_labels = { "sonde.program.name" },
		.collect = collect_attached,
	},
	{
		.name = "sonde_events_dropped_total",
		.otel_name = "sonde.events.dropped",
		.unit = "{event}",
		.help = "Events or state lost instead of slowing a traced "
			"process, by reason.",
		.kind = SELF_COUNTER,
		.nlabels = 1,
		.labels = { "reason" },
		.otel_labels = { "sonde.drop.reason" },
		.collect = collect_drops,
	},
	{
		.name = "sonde_connections_classified_total",
		.otel_name = "sonde.connections.classified",
		.unit = "{connection}",
		.help = "TCP connections by what their first bytes were: "
			"http1, http2, tls (ciphertext; its plaintext, when "
			"sonde reads it from OpenSSL, is counted again as its "
			"own protocol) or unknown (never parsed).",
		.kind = SELF_COUNTER,
		.nlabels = 1,
		.labels = { "protocol" },
		.otel_labels = { "sonde.protocol" },
		.collect = collect_classified,
	},
	{
		.name = "sonde_program_runs_total",
		.otel_name = "sonde.program.runs",
		.unit = "{run}",
		.help = "Times the BPF program ran; counted only while BPF "
			"stats are on (--bpf-stats).",
		.kind = SELF_COUNTER,
		.nlabels = 1,
		.labels = { "program" },
		.otel_labels = { "sonde.program.name" },
		.collect = collect_runs,
	},
	{
		.name = "sonde_program_run_seconds_total",
		.otel_name = "sonde.program.run_time",
		.unit = "s",
		.help = "Time the BPF program ran, in the traced processes; "
			"counted only while BPF stats are on (--bpf-stats).",
		.kind = SELF_COUNTER,
		.nlabels = 1,
		.labels = { "program" },
		.otel_labels = { "sonde.program.name" },
		.collect = collect_run_seconds,
	},
	{
		.name = "sonde_program_recursion_misses_total",
		.otel_name = "sonde.program.recursion_misses",
		.unit = "{run}",
		.help = "Times the kernel skipped the BPF program because "
			"another BPF program was running on that CPU: what it "
			"would have seen is not counted.",
		.kind = SELF_COUNTER,
		.nlabels = 1,
		.labels = { "program" },
		.otel_labels = { "sonde.program.name" },
		.collect = collect_recursion_misses,
	},
	{
		.name = "sonde_map_entries",
		.otel_name = "sonde.map.entries",
		.unit = "{entry}",
		.help = "Entries in sonde's BPF hash map (counted every 5 s); "
			"an LRU map at its size forgets its oldest entries.",
		.kind = SELF_GAUGE,
		.nlabels = 1,
		.labels = { "map" },
		.otel_labels = { "sonde.map.name" },
		.collect = collect_map_entries,
	},
	{
		.name = "sonde_map_max_entries",
		.otel_name = "sonde.map.max_entries",
		.unit = "{entry}",
		.help = "Size of sonde's BPF hash map.",
		.kind = SELF_GAUGE,
		.nlabels = 1,
		.labels = { "map" },
		.otel_labels = { "sonde.map.name" },
		.collect = collect_map_max_entries,
	},
	{
		.name = "sonde_map_entries_removed_total",
		.otel_name = "sonde.map.entries.removed",
		.unit = "{entry}",
		.help = "Entries sonde removed from its BPF hash map because "
			"the process or thread that owned them had exited "
			"without closing them, or (connections) is no longer "
			"traced.",
		.kind = SELF_COUNTER,
		.nlabels = 1,
		.labels = { "map" },
		.otel_labels = { "sonde.map.name" },
		.collect = collect_map_removed,
	},
};

void capture_register_metrics(void)
{
	for (size_t i = 0;
	     i < sizeof(capture_metrics) / sizeof(capture_metrics[0]); i++)
		self_register(&capture_metrics[i]);
}

int capture_count_tracepoints(const char *tracefs_dir, int *total, int *present,
			      char *missing, size_t nmissing)
{
	struct capture_bpf *obj = capture_bpf__open();
	bool socket = hooks_kernel_has_socket(tracefs_dir);
	struct bpf_program *prog;
	char path[256];

	if (!obj)
		return -errno;
	*total = *present = 0;
	missing[0] = '\0';
	bpf_object__for_each_program(prog, obj->obj) {
		enum hook_set set = hooks_set_of(prog);
		const char *points[HOOKS_MAX_POINTS];
		int n = hooks_points(prog, points);

		/* The set --hooks auto would not load is not needed. Raw
		 * tracepoints but the socket hooks (fork, loaded only with a
		 * selection) have no points. */
		if (set != HOOKS_SHARED &&
		    set != (socket ? HOOKS_SOCKET : HOOKS_SYSCALL))
			continue;
		for (int i = 0; i < n; i++) {
			(*total)++;
			snprintf(path, sizeof(path), "%s/events/%s",
				 tracefs_dir, points[i]);
			if (access(path, F_OK) == 0)
				(*present)++;
			else if (!missing[0])
				snprintf(missing, nmissing, "%s", points[i]);
		}
	}
	capture_bpf__destroy(obj);
	return 0;
}

void capture_stop(void)
{
	publish(false);
	propagate_detach();
	ring_buffer__free(ring);
	ring = NULL;
	unmap_cpu_rings();
	for (int i = 0; i < nprograms; i++)
		while (programs[i].nlinks)
			bpf_link__destroy(
				programs[i].links[--programs[i].nlinks]);
	nprograms = 0;
	if (stats_fd >= 0)
		close(stats_fd);
	stats_fd = -1;
	pthread_mutex_lock(&fills_lock);
	nfills = 0;
	pthread_mutex_unlock(&fills_lock);
	swept_at_ns = 0;
	dbsums_clear();
	db_sums_on = false;
	db_sums_read_at_ns = db_sums_probed_at_ns = 0;
	capture_bpf__destroy(skel);
	skel = NULL;
}
