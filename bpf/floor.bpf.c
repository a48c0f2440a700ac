// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The floor for benchmarks: empty programs on exactly the tracepoints
 * capture.bpf.c uses, attached the same way, and on the OpenSSL functions
 * sonde probes. What a workload loses with these attached is the cost any
 * design built on these hooks pays; tools/bench.py compares sonde's loss
 * against it. Like sonde, tools/floor.c loads the socket read and write
 * hooks or the syscall ones, not both. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sonde_events.h"
#include "capture.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EMPTY_AT(sec, line) EMPTY_(sec, line)
#define EMPTY_(sec, line)           \
	SEC(sec)                    \
	int floor_##line(void *ctx) \
	{                           \
		return 0;           \
	}
#define FLOOR(sec) EMPTY_AT(sec, __LINE__)

/* sonde attaches the socket hooks as raw tracepoints. */
FLOOR("raw_tracepoint/sock_recv_length")
FLOOR("raw_tracepoint/sock_send_length")

/* The bound (tools/floor.c --bound, in place of the two empty programs
 * above): the least any tracer on the socket hooks has to do for a call
 * that moved bytes, to time HTTP exchanges. It finds the connection's
 * state (one lookup, keyed by the socket the tracepoint names), reads the
 * first bytes of the call's buffer (the saved registers give it; a vector
 * call's first iovec first), stamps the time when they start a request,
 * and writes a 48-byte record when they start a response. Nothing else:
 * no request capture for routes, no HTTP/2, TLS, pipelining or process
 * selection, and nobody reads the records. What a workload loses with it
 * is what the per-request work itself costs on this host, whatever the
 * design. With bound_calls, the same for database calls. */

/* Set by tools/floor.c --bound --pid: like sonde --pid, the bound then
 * works only for this process's calls, and leaves every other call at
 * the same early exit as sonde's filter (0: every process). */
const volatile __u32 bound_tgid = 0;

/* Set by tools/floor.c --bound-calls: the bound for a protocol of
 * requests and replies in turn (a database's): a connection's calls
 * alternate, request then reply, whatever their bytes say, and each reply
 * writes the record. A tracer of those protocols reads the bytes of
 * every call too (an operation, a status), and needs more than this to
 * follow pipelines and replies spread over several calls. */
const volatile __u8 bound_calls = 0;

struct bound_conn {
	__u64 start_ns;
	__u64 calls;
	char head[SONDE_PEEK];
};

struct bound_record {
	__u64 sk;
	__u64 end_ns;
	__u64 duration_ns;
	__u32 tgid;
	__u32 pad;
	char status[SONDE_PEEK];
};

#define BOUND_RECORDS 64

struct bound_records {
	__u32 next;
	__u32 pad;
	struct bound_record at[BOUND_RECORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SONDE_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct bound_conn);
} bound_conns SEC(".maps");

/* Per CPU, the records written in turn, each over the oldest. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bound_records);
} bound_ring SEC(".maps");

static const struct bound_conn bound_zero;

static __always_inline int bound_io(struct sock *sk, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key = (__u64)sk, nr;
	struct bound_records *ring;
	struct bound_record *rec;
	struct bound_conn *c;
	struct pt_regs *regs;
	struct iovec iov;
	const void *buf;
	__u32 zero = 0;

	if (ret <= 0 || task->flags & (PF_KTHREAD | PF_IO_WORKER) ||
	    (bound_tgid && (__u32)task->tgid != bound_tgid))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	nr = regs->orig_ax;
	buf = (const void *)PT_REGS_PARM2_SYSCALL(regs);
	if (nr == NR_readv || nr == NR_writev) {
		if (bpf_probe_read_user(&iov, sizeof(iov), buf))
			return 0;
		buf = iov.iov_base;
	} else if (nr != NR_read && nr != NR_write && nr != NR_recvfrom &&
		   nr != NR_sendto) {
		return 0;
	}
	c = bpf_map_lookup_elem(&bound_conns, &key);
	if (!c) {
		bpf_map_update_elem(&bound_conns, &key, &bound_zero, BPF_ANY);
		c = bpf_map_lookup_elem(&bound_conns, &key);
		if (!c)
			return 0;
	}
	if (bpf_probe_read_user(c->head, sizeof(c->head), buf))
		return 0;
	if (bound_calls ? !(c->calls++ & 1) :
			  c->head[0] != 'H' || c->head[1] != 'T' ||
				  c->head[2] != 'T' || c->head[3] != 'P' ||
				  c->head[4] != '/') {
		c->start_ns = bpf_ktime_get_ns();
		return 0;
	}
	ring = bpf_map_lookup_elem(&bound_ring, &zero);
	if (!ring)
		return 0;
	rec = &ring->at[ring->next++ % BOUND_RECORDS];
	rec->sk = key;
	rec->end_ns = bpf_ktime_get_ns();
	rec->duration_ns = rec->end_ns - c->start_ns;
	rec->tgid = task->tgid;
	__builtin_memcpy(rec->status, c->head, sizeof(rec->status));
	return 0;
}

SEC("raw_tracepoint/sock_recv_length")
int bound_recv(struct bpf_raw_tracepoint_args *ctx)
{
	return bound_io((struct sock *)ctx->args[0], (int)ctx->args[1]);
}

SEC("raw_tracepoint/sock_send_length")
int bound_send(struct bpf_raw_tracepoint_args *ctx)
{
	return bound_io((struct sock *)ctx->args[0], (int)ctx->args[1]);
}

FLOOR("tracepoint/syscalls/sys_exit_read")
FLOOR("tracepoint/syscalls/sys_exit_readv")
FLOOR("tracepoint/syscalls/sys_exit_recvfrom")
FLOOR("tracepoint/syscalls/sys_exit_recvmsg")
FLOOR("tracepoint/syscalls/sys_exit_write")
FLOOR("tracepoint/syscalls/sys_exit_writev")
FLOOR("tracepoint/syscalls/sys_exit_sendto")
FLOOR("tracepoint/syscalls/sys_exit_sendmsg")
FLOOR("tracepoint/syscalls/sys_exit_accept")
FLOOR("tracepoint/syscalls/sys_exit_accept4")
FLOOR("tracepoint/syscalls/sys_exit_connect")
FLOOR("tracepoint/syscalls/sys_enter_close")
FLOOR("tracepoint/sched/sched_process_exit")
FLOOR("tracepoint/sched/sched_process_exec")
FLOOR("tracepoint/sock/inet_sock_set_state")
FLOOR("tracepoint/tcp/tcp_retransmit_skb")
FLOOR("tracepoint/tcp/tcp_send_reset")
FLOOR("tracepoint/tcp/tcp_receive_reset")
FLOOR("tracepoint/tcp/tcp_destroy_sock")

/* Placed by tools/floor.c with --tls, where sonde places its OpenSSL
 * probes (user/kernel/sslprobe.c), and with --go-tls (the entry alone)
 * where it places its Go crypto/tls probes (user/kernel/goprobe.c): the
 * price of the uprobe traps alone. */
SEC("uprobe")
int floor_ssl_entry(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int floor_ssl_exit(void *ctx)
{
	return 0;
}
