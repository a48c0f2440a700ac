// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sonde's BPF programs: their settings, the maps they share, and their
 * entry points. What they do lives by concern in core/ (connections and
 * socket ownership, rings, syscall and socket decoding, processes, TCP
 * lifecycle, function latency) and by protocol in proto/ (the classifier
 * and dispatcher, HTTP/1, HTTP/2, TLS); a protocol's own state map lives
 * in the connection's entry, laid out by its header.
 *
 * Two sets of read and write hooks see the same reads and writes; the
 * daemon loads one. Socket hooks (sock:sock_recv_length and
 * sock:sock_send_length, kernel 6.3 on) fire for socket I/O only: the rest
 * of the host's syscalls pay nothing. One program serves both, attached
 * as raw tracepoints, which hand it the socket as the kernel passes it: no
 * trace record is built first. Syscall hooks (sys_exit of each read and
 * write syscall, accept, connect, close) work on older kernels, but while
 * any syscall tracepoint is on, every syscall of every process takes the
 * kernel's slow path; one program serves the eight read and write
 * syscalls, told apart by the syscall number.
 *
 * A read or write finds its connection (one lookup), classifies it from
 * its first bytes once, and from then on runs only its protocol's handler
 * (proto/proto.bpf.h). Handlers send one record per finished exchange
 * with the bytes the daemon's parser needs; parsing beyond "where does
 * the exchange start and end" happens in the daemon. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sonde_events.h"
#include "capture.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the daemon before load. */
const volatile __u32 self_tgid = 0;   /* sonde itself: never traced */
const volatile __u32 filter_tgid = 0; /* 0: every process */
const volatile __u16 filter_port = 0; /* 0: every port */
/* Process selection (user/identity/selection.h): when on, a process is
 * looked up in "verdicts" when one of its connections is first seen; one
 * not decided yet is reported once and gets select_pending until the
 * daemon writes its verdict. */
const volatile bool select_enabled = false;
const volatile __u8 select_pending = SONDE_VERDICT_TRACE;
const volatile bool report_execs = false; /* every exec: uprobe discovery */
/* Which hooks the daemon loaded: socket tracepoints, or syscall ones. */
const volatile bool socket_hooks = false;
const volatile bool tls_enabled = false; /* the OpenSSL probes are loaded */
/* The exchange rings' bytes less one, set at load with ring_data's value
 * size. */
const volatile __u64 ring_mask = SONDE_CPU_RING_TEMPLATE_BYTES - 1;
/* --trace-propagation: servers' threads keep the trace of the HTTP/1
 * request they serve (serving), for the traceparent their calls get; a
 * request with none gets one derived with this key
 * (sonde_derived_trace_id). */
const volatile bool propagation_on = false;
const volatile __u64 trace_key0 = 0, trace_key1 = 0;

/* (tgid, fd) -> struct conn (core/conn.bpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, struct conn);
} conns SEC(".maps");

/* Under syscall hooks, fds that are not TCP sockets, or are filtered out:
 * nothing to do. The value says whether the fd is a socket at all (enum
 * skip_why). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, __u8);
} skip_fds SEC(".maps");

/* Processes that produced a record (enum sonde_proc_state): their exit
 * and exec are reported so the daemon can forget what it cached about
 * them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SONDE_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u8);
} procs SEC(".maps");

/* tgid -> what identified a process the daemon had not named when it
 * exited; the daemon takes it out when it names the process. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_EXIT_IDS);
	__type(key, __u32);
	__type(value, struct sonde_exit_identity);
} exit_ids SEC(".maps");

/* Where an exit identity is put together (too large for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_exit_identity);
} exit_id_scratch SEC(".maps");

/* struct sock * -> the process that connected or accepted it, until the
 * kernel destroys the socket. Under socket hooks, an accepted socket is
 * entered at its passive open, charged to its listener's process (or to
 * none) until a process uses it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct sock_owner);
} socks SEC(".maps");

/* Under socket hooks, who listens where (struct sonde_listener). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_LISTENERS);
	__type(key, struct sonde_listener_key);
	__type(value, struct sonde_listener);
} listeners SEC(".maps");

/* tgid -> enum sonde_verdict, written by the daemon. LRU: a process
 * evicted is asked about again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_VERDICTS);
	__type(key, __u32);
	__type(value, __u8);
} verdicts SEC(".maps");

/* Local port -> enum sonde_port_rule, written by the daemon at start. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SONDE_MAX_PORT_RULES);
	__type(key, __u16);
	__type(value, __u8);
} select_ports SEC(".maps");

/* Records and state lost, by enum sonde_drop_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_DROP_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Connections classified, by enum sonde_proto. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_PROTO_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} classified SEC(".maps");

/* The shared ring (core/ring.bpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SONDE_RINGBUF_BYTES);
} events SEC(".maps");

/* The exchange rings (struct sonde_ring_pos), indexed by CPU; both
 * arrays are sized to the CPU count, and ring_data's values to the ring's
 * bytes, at load. A BPF ring buffer costs a record its lock, its two
 * positions and its header, each on a page of its own: on a VM that
 * flushes the TLB at every syscall, every page touched is a page walk.
 * Here a record touches one line of ring_pos and the bytes it fills. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_ring_pos);
} ring_pos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, SONDE_CPU_RING_TEMPLATE_BYTES + SONDE_RING_SLACK);
} ring_data SEC(".maps");

/* --trace-propagation (core/propagate.bpf.h): client TCP sockets by
 * socket cookie, and what became of the requests seen, by enum
 * sonde_propagation_result. Created and sized only with the option. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SONDE_MAX_CONNS);
	__type(key, __u64);
	__type(value, __u64);
} prop_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_PROP_RESULT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} prop_results SEC(".maps");

/* pid_tgid -> struct sonde_serving: sized down to one entry without
 * --trace-propagation (the HTTP/1 handler names it either way). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct sonde_serving);
} serving SEC(".maps");

#include "core/ring.bpf.h"
#include "core/process.bpf.h"
#include "core/conn.bpf.h"
#include "core/io.bpf.h"
#include "proto/proto.bpf.h"
#include "core/tcp.bpf.h"
#include "core/func.bpf.h"
#include "core/propagate.bpf.h"

/* Socket hooks: the socket sk received or sent ret bytes (flags: the
 * receive's) inside the syscall of the current task, whose saved
 * registers give the fd, the buffer and, by the syscall's number, which
 * way the bytes went. The tracepoints' arguments: struct sock *sk, int
 * ret, int flags. Attached to sock_send_length too. */
SEC("raw_tracepoint/sock_recv_length")
int sock_io(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct conn_key key = { .tgid = task->tgid };
	struct io_call io = { .ret = (int)ctx->args[1] };
	__u8 flags_at, skipped;
	struct conn *c;

	/* A peek leaves the bytes for the read that follows. */
	if (!proto_io_wanted(io.ret) || ((__u32)ctx->args[2] & MSG_PEEK))
		return 0;
	/* A kernel thread's or an io_uring worker's registers are not a
	 * syscall's. */
	if (task->flags & (PF_KTHREAD | PF_IO_WORKER) ||
	    process_excluded(key.tgid))
		return 0;
	io.regs = syscall_args(task, &key.fd, &io.arg2);
	if (!io_syscall(io.regs->orig_ax, &io.how, &io.is_read, &flags_at))
		return 0;
	c = conn_find(&key, (struct sock *)ctx->args[0], &skipped);
	if (!c && skip_entirely(skipped))
		return 0;
	proto_socket_io(&key, c, &io);
	return 0;
}

/* Syscall hooks: a read or write syscall returned; ctx->id says which.
 * Attached to the exit of read, readv, recvfrom, recvmsg, write, writev,
 * sendto and sendmsg. */
SEC("tracepoint/syscalls/sys_exit_read")
int sys_exit_io(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct conn_key key = { .tgid = task->tgid };
	struct io_call io = { .ret = ctx->ret };
	__u8 flags_at, skipped;
	struct conn *c;

	if (!proto_io_wanted(io.ret) || process_excluded(key.tgid) ||
	    !io_syscall(ctx->id, &io.how, &io.is_read, &flags_at))
		return 0;
	io.regs = syscall_args(task, &key.fd, &io.arg2);
	/* A peek leaves the bytes for the read that follows (a server
	 * sniffing for TLS): they are taken in once, there. */
	if (recv_flags(io.regs, flags_at) & MSG_PEEK)
		return 0;
	c = conn_find(&key, NULL, &skipped);
	if (!c && skip_entirely(skipped))
		return 0;
	proto_socket_io(&key, c, &io);
	return 0;
}

/* Syscall hooks: accept and accept4 returned a connection. */
SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	struct conn_key key = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.fd = ctx->ret,
	};

	if (ctx->ret < 0 || process_ignored(key.tgid))
		return 0;
	conn_track(&key, NULL, ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int sys_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	__u64 unused;

	/* Non-blocking connects return -EINPROGRESS and finish later. */
	if (process_ignored(key.tgid) ||
	    (ctx->ret != 0 && ctx->ret != -EINPROGRESS))
		return 0;
	syscall_args(bpf_get_current_task_btf(), &key.fd, &unused);
	conn_track(&key, NULL, ROLE_CLIENT);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct conn_key key = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.fd = ctx->args[0],
	};
	bpf_map_delete_elem(&conns, &key);
	bpf_map_delete_elem(&skip_fds, &key);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(struct trace_event_raw_sched_process_template *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	bool decided;
	__u8 *state;

	if (tid != tgid)
		return 0;
	/* A process the selection decided on is forgotten with it. */
	decided = select_enabled && !bpf_map_delete_elem(&verdicts, &tgid);
	state = bpf_map_lookup_elem(&procs, &tgid);
	if (state && *state != SONDE_PROC_NAMED)
		keep_exit_identity(tgid);
	if (bpf_map_delete_elem(&procs, &tgid) && !decided)
		return 0;
	report_process(tgid, SONDE_EV_PROCESS_EXIT);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 *state;

	/* A new image is a new decision, asked for now: under socket
	 * hooks the next sign of the process may be its first request. */
	if (select_enabled) {
		bpf_map_delete_elem(&verdicts, &tgid);
		process_verdict(tgid);
	}
	/* The new image is named afresh. */
	state = bpf_map_lookup_elem(&procs, &tgid);
	if (state)
		*state = SONDE_PROC_NOTED;
	else if (!report_execs)
		return 0;
	report_process(tgid, SONDE_EV_PROCESS_EXEC);
	return 0;
}

/* With a process selection, a new process (not a thread) is decided on
 * from its fork, before it serves anything: a server's forked workers
 * (nginx) would otherwise be asked about at their first request, which
 * would be lost while the daemon decides. Loaded only with a selection. */
SEC("raw_tracepoint/sched_process_fork")
int process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 tgid = BPF_CORE_READ(child, tgid);

	if ((__u32)BPF_CORE_READ(child, pid) == tgid)
		process_verdict(tgid);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	tcp_state_changed(ctx);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcp_retransmit(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	tcp_sock_event(ctx->skaddr, SONDE_TCP_RETRANSMIT, 0);
	return 0;
}

/* skaddr is NULL for a reset answering a segment no socket wanted. */
SEC("tracepoint/tcp/tcp_send_reset")
int tcp_reset_sent(struct trace_event_raw_tcp_send_reset *ctx)
{
	tcp_sock_event(ctx->skaddr, SONDE_TCP_RESET, SONDE_TCP_RESET_SENT);
	return 0;
}

/* A reset answering a SYN is a refused connect, counted as such. */
SEC("tracepoint/tcp/tcp_receive_reset")
int tcp_reset_received(struct trace_event_raw_tcp_event_sk *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;

	if (sk && BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_SYN_SENT)
		return 0;
	tcp_sock_event(sk, SONDE_TCP_RESET, SONDE_TCP_RESET_RECEIVED);
	return 0;
}

SEC("tracepoint/tcp/tcp_destroy_sock")
int tcp_destroy(struct trace_event_raw_tcp_event_sk *ctx)
{
	tcp_destroyed((__u64)ctx->skaddr);
	return 0;
}

/* OpenSSL (proto/tls.bpf.h): one entry program for SSL_read, SSL_write,
 * their _ex forms and SSL_do_handshake, told apart by the attach cookie;
 * their return probes run tls_plain, below. */
SEC("uprobe")
int ssl_entry(struct pt_regs *ctx)
{
	return tls_enter(ctx, bpf_get_attach_cookie(ctx));
}

/* Plaintext a TLS library handed over, on the connection key names: its
 * ciphertext is not parsed from now on. */
static __always_inline void tls_plaintext(struct conn_key *key,
					  const struct tls_plain *plain)
{
	struct conn *c;
	__u8 skipped;

	c = conn_find(key, NULL, &skipped);
	if (!c)
		return;
	tls_mark(c);
	if (plain->bound)
		c->tls_bound = 1;
	proto_data(key, c, plain->buf, plain->n, plain->is_read);
}

/* Plaintext a TLS library hands over: one program for every probe that
 * hands some over, so that the verifier checks the protocol handlers
 * once. OpenSSL's return probe (cookie 0), and Go's crypto/tls entry and
 * return probes (proto/gotls.bpf.h), told apart by the attach cookie's
 * kind (SONDE_TLS_PLAIN_*). */
SEC("uprobe")
int tls_plain(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct conn_key key;
	struct tls_plain plain;
	bool got;

	switch ((cookie >> SONDE_TLS_PLAIN_KIND_SHIFT) & 0xff) {
	case SONDE_TLS_PLAIN_GO_ENTRY:
		got = gotls_enter(ctx, cookie, &key, &plain);
		break;
	case SONDE_TLS_PLAIN_GO_RETURN:
		got = gotls_return(ctx, &key, &plain);
		break;
	default:
		got = tls_exit(ctx, &key, &plain);
	}
	if (got)
		tls_plaintext(&key, &plain);
	return 0;
}

SEC("uprobe")
int ssl_free_entry(struct pt_regs *ctx)
{
	tls_free(ctx);
	return 0;
}

/* --uprobe BINARY:SYMBOL (core/func.bpf.h). */
SEC("uprobe")
int func_entry(struct pt_regs *ctx)
{
	func_enter(ctx);
	return 0;
}

SEC("uretprobe")
int func_exit(struct pt_regs *ctx)
{
	func_return(ctx);
	return 0;
}

/* --trace-propagation (core/propagate.bpf.h): client sockets join
 * prop_socks as their connect completes; what they send passes
 * propagate_msg first. Both are left out of the load without the
 * option. */
SEC("sockops")
int propagate_sockops(struct bpf_sock_ops *skops)
{
	propagate_sock_op(skops);
	return 1;
}

SEC("sk_msg")
int propagate_sk_msg(struct sk_msg_md *msg)
{
	propagate_msg(msg);
	return SK_PASS;
}
