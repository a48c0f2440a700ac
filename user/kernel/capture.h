/* Userspace side of bpf/capture.bpf.c: loads and attaches the programs,
 * drains the ring buffer, and reports attach status and in-kernel drops. */
#ifndef SONDE_CAPTURE_H
#define SONDE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/options.h"
#include "kernel/dbsums.h"

struct capture_options {
	uint32_t self_pid;
	uint32_t filter_pid;	/* 0: all processes */
	uint16_t filter_port;	/* 0: all ports */
	bool select_enabled;	/* per-process verdicts (selection.h) */
	uint8_t select_pending; /* verdict while a process is decided */
	bool tls;	      /* load the OpenSSL uprobes; report every exec */
	bool functions;	      /* load the --uprobe function programs */
	bool bpf_stats;	      /* have the kernel count runs and run time */
	bool propagation;     /* --trace-propagation (propagate.h) */
	bool client_heads;    /* keep clients' request heads (traces) */
	/* --trace-propagation's key for the trace ids of requests that come
	 * with none (sonde_derived_trace_id) */
	uint64_t trace_key[2];
	uint32_t max_tracked; /* entries of the connection maps; 0: built in */
	/* The database families' bucket bounds, in ns, for the calls the
	 * BPF side sums itself (kernel/dbsums.h); 0: it sums none. */
	uint32_t db_sum_nbounds;
	uint64_t db_sum_bounds[SONDE_DB_SUM_BOUNDS];
	enum capture_hooks hooks;
};

struct bpf_object;

/* Called for each ring-buffer record; returns 0 (non-zero stops the drain
 * early, as with libbpf's ring_buffer_sample_fn). */
typedef int (*capture_event_fn)(void *ctx, void *data, size_t size);

/* Opens, configures, loads and attaches the BPF programs. A program that
 * fails to attach is reported (log and sonde_program_attached) and the
 * others go on; returns 0, or -errno when loading failed or nothing could
 * be attached (a one-line reason was logged). */
int capture_start(const struct capture_options *o, capture_event_fn fn,
		  void *ctx);

/* Bytes of each per-CPU exchange ring for ncpus CPUs: the largest power
 * of two, from 2 MiB down to 256 KiB, that keeps them all within 8 MiB
 * (past 32 CPUs, 256 KiB each). */
size_t capture_cpu_ring_bytes(int ncpus);

/* Waits up to timeout_ms for a wakeup, then drains whatever is in the ring
 * buffers. Returns the number of records handled, or -errno (-EINTR on a
 * signal). */
int capture_poll(int timeout_ms);

/* Every 5 s (a no-op between): walks sonde's BPF hash maps, counting
 * their entries and removing those of processes and threads that have
 * exited. Call from the thread that calls capture_poll. True when it
 * walked them this time. */
bool capture_sweep_maps(void);

/* Every 100 ms (a no-op between), or now when now: hands what the BPF
 * side's sums of database calls grew by to fn (kernel/dbsums.h), then
 * deletes the sums of processes gone() says exited. Consumer thread. */
void capture_read_db_sums(bool now, dbsums_fn fn, dbsums_gone_fn gone,
			  void *arg);
/* Whether the BPF side sums any database call: sums are kept. */
bool capture_db_sums_kept(void);
/* Whether the kernel still tracks the connection on fd in process tgid,
 * on the struct sock at address sk. */
bool capture_conn_open(uint32_t tgid, uint32_t fd, uint64_t sk);

/* Writes the selection verdict (SONDE_VERDICT_*) for pid into the kernel's
 * map, and each port rule selection_each_port gives. Return 0 or -errno;
 * 0 without doing anything when selection is off or nothing is loaded. */
int capture_set_verdict(uint32_t pid, uint8_t verdict);
int capture_set_port_rule(uint16_t port, uint8_t how);

/* What pid's exit kept of its identity (struct sonde_exit_identity),
 * taken out of the kernel's map; false when it kept nothing. */
bool capture_exit_identity(uint32_t pid, struct sonde_exit_identity *out);
/* pid was named while it ran: its exit keeps nothing. */
void capture_process_named(uint32_t pid);

/* Puts the Redis command name (upper case, at most 15 bytes) on the
 * list of those the BPF side follows whole, as index (proto/db.h's
 * redis_each_fold_op). 0, or -errno. */
int capture_set_fold_op(const char *name, uint16_t index);

/* The loaded BPF object, for attaching its uprobe programs (uprobes.c);
 * NULL before capture_start. Owned by this module. */
struct bpf_object *capture_object(void);

/* True when every program is attached; false until capture_start has
 * returned 0 and after capture_stop. Any thread. */
bool capture_all_attached(void);

/* Registers sonde's metrics of its BPF side (metrics/self.h):
 * sonde_program_attached, sonde_events_dropped_total (the kernel's drop
 * reasons plus the registry's "series_limit" count), each loaded
 * program's runs, run time and recursion misses, and the fill of each BPF
 * hash map with the entries of exited tasks removed from it. Call once at
 * start-up; exporters may read them before and during capture_start,
 * which they see as no program and every drop count 0. */
void capture_register_metrics(void);

/* For --check: counts the tracepoints the programs that --hooks auto
 * would load attach to, and how many of them exist under tracefs_dir;
 * names the first missing one in missing[0..n). Returns 0, or -errno when
 * the object cannot be opened. */
int capture_count_tracepoints(const char *tracefs_dir, int *total, int *present,
			      char *missing, size_t n);

/* Detaches and unloads everything; safe to call twice. */
void capture_stop(void);

#endif
