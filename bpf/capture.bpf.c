// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Request/response capture on socket or syscall tracepoints.
 *
 * Two sets of hooks see the same reads and writes; the daemon loads one.
 * Socket hooks (sock:sock_recv_length and sock:sock_send_length, kernel
 * 6.3 on) fire for socket I/O only: the rest of the host's syscalls pay
 * nothing. They are attached as raw tracepoints, which hand the program
 * the socket as the kernel passes it: no trace record is built first.
 * Syscall hooks (sys_exit of each read and write syscall, accept,
 * connect, close) work on older kernels, but while any syscall
 * tracepoint is on, every syscall of every process takes the kernel's
 * slow path.
 *
 * A TCP connection is known per (process, fd), and named by its struct
 * sock. Under socket hooks it becomes known at its first read or write:
 * the syscall's registers give the fd and buffer, the tracepoint the
 * socket; a socket that is not the one the fd had is a new connection, so
 * no close hook is needed, and the kernel's destruction of the socket
 * forgets it. Its role comes from its SYN (a client) or its passive open
 * (a server). Under syscall hooks it becomes known when accept or connect
 * returns it, or lazily the first time a traced syscall touches an fd that
 * resolves to a TCP socket (connections opened before sonde started);
 * other fds (files, pipes, unix sockets) are remembered in skip_fds so the
 * socket lookup runs once per fd, not once per syscall.
 *
 * Server side: an exchange starts when a read returns bytes that look like
 * the start of an HTTP request line, and ends when a write starts with an
 * HTTP status line. Client side, the other way round: it starts when a
 * write sends a request line and ends when a read returns a status line.
 * One ring-buffer event per exchange carries both timestamps and the first
 * bytes of the request and of the response; the daemon parses them.
 * Interim 1xx responses do not end an exchange.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "sonde_events.h"
#include "capture.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the daemon before load. */
const volatile __u32 self_tgid = 0;   /* sonde itself: never traced */
const volatile __u32 filter_tgid = 0; /* 0: every process */
const volatile __u16 filter_port = 0; /* 0: every port */
/* Process selection (user/selection.h): when on, each process is looked up
 * in "verdicts"; one not decided yet is reported once and gets
 * select_pending until the daemon writes its verdict. */
const volatile bool select_enabled = false;
const volatile __u8 select_pending = SONDE_VERDICT_TRACE;
const volatile bool report_execs = false; /* every exec: uprobe discovery */
/* Which hooks the daemon loaded: socket tracepoints, or syscall ones. */
const volatile bool socket_hooks = false;

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

/* Processes that produced an exchange: their exit and exec are reported so
 * the daemon can forget what it cached about them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SONDE_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u8);
} procs SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_DROP_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

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

/* The ring's bytes less one, set at load with ring_data's value size. */
const volatile __u64 ring_mask = SONDE_CPU_RING_TEMPLATE_BYTES - 1;

/* Template for a new connection: inserted, then filled in place, because a
 * struct conn does not fit on the BPF stack. */
static const struct conn zero_conn;

_Static_assert(sizeof(((struct task_struct *)0)->comm) == SONDE_COMM_LEN,
	       "a task's name is SONDE_COMM_LEN bytes");

/* The current task's name into dst (SONDE_COMM_LEN bytes), as
 * bpf_get_current_comm gives it, but read in place: the kernel keeps it
 * zero-padded, and the helper costs a call and a string copy. */
static __always_inline void current_comm(char *dst)
{
	struct task_struct *task = bpf_get_current_task_btf();

	__builtin_memcpy(dst, task->comm, SONDE_COMM_LEN);
}

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);

	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void report_process(__u32 tgid, __u16 kind)
{
	struct sonde_process_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_drop(SONDE_DROP_RINGBUF_FULL);
		return;
	}
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = tgid;
	ev->hdr.kind = kind;
	ev->hdr.pad = 0;
	current_comm(ev->comm);
	/* Until the daemon acts on a process to decide on, that process's
	 * requests may go unmeasured: it is woken at once (once per new
	 * process, with selection rules). A new image to look for OpenSSL
	 * in wakes it only when it had read everything before (flags 0).
	 * Exits wait for the next poll. */
	bpf_ringbuf_submit(ev,
			   kind == SONDE_EV_PROCESS_SEEN ? BPF_RB_FORCE_WAKEUP :
			   kind == SONDE_EV_PROCESS_EXEC ? 0 :
							   BPF_RB_NO_WAKEUP);
}

/* The selection's verdict on the current process. The first syscall of a
 * process the daemon has not decided on reports it (once: the pending
 * entry stops further reports). */
static __always_inline __u8 process_verdict(__u32 tgid)
{
	__u8 pending = SONDE_VERDICT_PENDING;
	__u8 *v;

	if (!select_enabled)
		return SONDE_VERDICT_TRACE;
	v = bpf_map_lookup_elem(&verdicts, &tgid);
	if (v)
		return *v == SONDE_VERDICT_PENDING ? select_pending : *v;
	if (!bpf_map_update_elem(&verdicts, &tgid, &pending, BPF_NOEXIST))
		report_process(tgid, SONDE_EV_PROCESS_SEEN);
	return select_pending;
}

/* Checked first in every program: an untraced process costs one lookup. */
static __always_inline bool process_ignored(__u32 tgid)
{
	return tgid == self_tgid || (filter_tgid && tgid != filter_tgid) ||
	       process_verdict(tgid) == SONDE_VERDICT_IGNORE;
}

/* The open file behind fd in the current process, or NULL. Checked at
 * every exchange: the walk to the fd table is made of direct loads from
 * the BTF-typed task (no helper call each); only the table slot, at a
 * variable index, needs bpf_probe_read_kernel. */
static __always_inline struct file *file_of_fd(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	struct fdtable *fdt;
	struct file **fds;
	struct file *file = NULL;

	if (!files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return file;
}

static __always_inline bool is_socket(struct file *file)
{
	return file &&
	       (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) == S_IFSOCK;
}

/* Whether sk is a TCP socket, over IPv4 or IPv6. */
static __always_inline bool sock_is_tcp(struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return false;
	/* sk_protocol was an 8-bit bitfield before v5.6 (commit bf9765145b85
	 * "sock: Make sk_protocol a 16-bit value"); the probed read handles
	 * both shapes. */
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) == IPPROTO_TCP;
}

/* The TCP (IPv4 or IPv6) socket behind file, or NULL for anything else. */
static __always_inline struct sock *tcp_sock_of_file(struct file *file)
{
	struct socket *sock;
	struct sock *sk;

	if (!is_socket(file))
		return NULL;
	sock = (struct socket *)BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	return sk && sock_is_tcp(sk) ? sk : NULL;
}

static __always_inline void conn_set_socket(struct conn *c, struct file *file,
					    struct sock *sk)
{
	__u32 a4;

	c->sk = (__u64)sk;
	c->file = (__u64)file;
	c->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	c->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (c->family == AF_INET) {
		a4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(c->saddr, &a4, sizeof(a4));
		a4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(c->daddr, &a4, sizeof(a4));
	} else {
		BPF_CORE_READ_INTO(&c->saddr, sk,
				   __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&c->daddr, sk,
				   __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

/* --port, then the selection's port rules on the local port: an excluded
 * port is never traced; a process with verdict PORTS_ONLY is traced only on
 * included ports. Runs once per connection. */
static __always_inline bool port_ignored(__u32 tgid, struct sock *sk)
{
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u8 *rule, *verdict, v;

	if (filter_port && lport != filter_port &&
	    bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)) != filter_port)
		return true;
	if (!select_enabled)
		return false;
	rule = bpf_map_lookup_elem(&select_ports, &lport);
	if (rule && *rule == SONDE_PORT_EXCLUDE)
		return true;
	verdict = bpf_map_lookup_elem(&verdicts, &tgid);
	v = verdict ? *verdict : SONDE_VERDICT_PENDING;
	if (v == SONDE_VERDICT_PENDING)
		v = select_pending;
	if (v == SONDE_VERDICT_TRACE)
		return false;
	return !(rule && *rule == SONDE_PORT_INCLUDE);
}

/* Why an fd is in skip_fds. The TLS programs care: a syscall inside an
 * OpenSSL call on a socket sonde does not trace says the call is not
 * ours; one on a file, pipe or eventfd (a key log, the time zone file,
 * an event loop's wakeup) says nothing about the call's socket. */
enum skip_why {
	SKIP_NOT_SOCKET = 1,
	SKIP_SOCKET = 2, /* not TCP, or filtered out */
};

static __always_inline void skip_fd(struct conn_key *key, __u8 why)
{
	bpf_map_update_elem(&skip_fds, key, &why, BPF_ANY);
}

/* Puts tgid in the procs map, so its exit and exec get reported. Returns
 * false when the map is full (counted). */
static __always_inline bool note_tgid(__u32 tgid)
{
	__u8 one = 1;

	if (bpf_map_update_elem(&procs, &tgid, &one, BPF_NOEXIST) == -E2BIG) {
		count_drop(SONDE_DROP_PROC_FULL);
		return false;
	}
	return true;
}

/* A zeroed TCP event about socket sk, charged to tgid, with its header
 * filled in; NULL (counted) when the ring is full. */
static __always_inline struct sonde_tcp_event *tcp_event_reserve(__u32 tgid,
								 __u64 sk)
{
	struct sonde_tcp_event *ev =
		bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		count_drop(SONDE_DROP_RINGBUF_FULL);
		return NULL;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = tgid;
	ev->hdr.kind = SONDE_EV_TCP;
	ev->sk = sk;
	return ev;
}

/* A record being written on the current CPU's exchange ring. Events of
 * one kind whose order matters (a connection's open before its close, a
 * process's exit) stay on the shared ring; an exchange is complete in
 * itself. */
struct ring_slot {
	struct sonde_ring_pos *pos;
	__u64 at;    /* the record's position */
	__u32 bytes; /* its length with header and padding */
};

/* Room for a record of size bytes (at most SONDE_RING_SLACK less the
 * header) on this CPU's ring: where to write it, or NULL, counted. The
 * socket and syscall programs run with preemption off and are the only
 * writers outside a uprobe, but a uprobe's program can be preempted by a
 * task whose program then writes on the same CPU: the busy flag keeps
 * the two records apart, and the second is dropped.
 * ring_submit must follow. */
static __always_inline void *ring_reserve(struct ring_slot *s, __u32 size)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct sonde_ring_pos *pos = bpf_map_lookup_elem(&ring_pos, &cpu);
	__u8 *data = bpf_map_lookup_elem(&ring_data, &cpu);
	__u64 off;

	if (!pos || !data) {
		count_drop(SONDE_DROP_RINGBUF_FULL);
		return NULL;
	}
	if (__sync_lock_test_and_set(&pos->busy, 1)) {
		count_drop(SONDE_DROP_RING_BUSY);
		return NULL;
	}
	s->pos = pos;
	s->at = pos->producer;
	s->bytes = SONDE_RING_RECORD_BYTES(size);
	if (s->at + s->bytes - *(volatile __u64 *)&pos->consumer >
	    ring_mask + 1) {
		pos->busy = 0;
		count_drop(SONDE_DROP_RINGBUF_FULL);
		return NULL;
	}
	off = s->at & ring_mask;
	*(__u32 *)(data + off) = size;
	return data + off + SONDE_RING_REC_HDR;
}

/* Publishes the record: its bytes before the position that covers them.
 * x86, the one target (vmlinux/x86), keeps two stores in order once the
 * compiler does; a weakly ordered CPU would need a release here. When
 * the ring passes a quarter full, an empty record discarded on the shared
 * ring wakes the daemon; otherwise it drains on its timer. */
static __always_inline void ring_submit(struct ring_slot *s)
{
	struct sonde_ring_pos *pos = s->pos;
	__u64 end = s->at + s->bytes;
	__u64 quarter = (ring_mask + 1) / 4;
	__u64 read = *(volatile __u64 *)&pos->consumer;
	void *wake;

	barrier();
	*(volatile __u64 *)&pos->producer = end;
	barrier();
	pos->busy = 0;
	if (s->at - read <= quarter && end - read > quarter) {
		wake = bpf_ringbuf_reserve(&events, sizeof(__u64), 0);
		if (wake)
			bpf_ringbuf_discard(wake, BPF_RB_FORCE_WAKEUP);
	}
}

/* No wakeup per event: the daemon polls on a short timer, and is woken
 * only when a quarter of the ring is waiting. */
static __always_inline void event_submit(void *ring, void *ev)
{
	__u64 fill = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(ring, BPF_RB_RING_SIZE);

	bpf_ringbuf_submit(ev, fill > size / 4 ? BPF_RB_FORCE_WAKEUP :
						 BPF_RB_NO_WAKEUP);
}

/* Sends a TCP event for the socket sk owned by o. */
static __always_inline void tcp_event(__u64 sk, struct sock_owner *o, __u8 what,
				      __u8 detail)
{
	struct sonde_tcp_event *ev = tcp_event_reserve(o->tgid, sk);

	if (!ev)
		return;
	ev->what = what;
	ev->detail = detail;
	ev->role = o->role;
	__builtin_memcpy(ev->comm, o->comm, sizeof(ev->comm));
	event_submit(&events, ev);
}

/* Whether o is what is known of a live socket whose peer port is dport;
 * not when the socket it was about is closed or freed (see dport). */
static __always_inline bool owner_live(const struct sock_owner *o, __u16 dport)
{
	return !o->closed && o->dport == dport;
}

/* Remembers that the current process owns sk (peer port dport) through
 * key->fd, unless a live owner is already known (a client is known from
 * its SYN). Returns the connection's role: role, or when that is unknown
 * what the owner says (a client's SYN, a server's passive open). An
 * accepted connection that is established counts as active from here
 * on, if its listener's process did not count it already; one counted
 * for the listener's process and first used by another (a worker of a
 * pre-forked server) moves to that one. */
__attribute__((noinline)) int owner_note(const struct conn_key *key, __u64 skey,
					 __u16 dport, __u8 role)
{
	struct sock_owner o = { .dport = dport };
	struct sock *sk = (struct sock *)skey;
	struct sock_owner *known;

	if (!key)
		return role;
	o.tgid = key->tgid;
	o.fd = key->fd;
	known = bpf_map_lookup_elem(&socks, &skey);

	if (known && owner_live(known, dport)) {
		if (role == ROLE_UNKNOWN)
			role = known->role;
		if (known->tgid == key->tgid) {
			known->fd = key->fd;
			known->by_listener = 0;
			return role;
		}
		if (known->tgid && !known->by_listener)
			return role;
		/* Accepted: the first process to use it owns it. */
	}
	o.role = role;
	if (role == ROLE_SERVER &&
	    BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_ESTABLISHED)
		o.active = 1;
	current_comm(o.comm);
	if (bpf_map_update_elem(&socks, &skey, &o, BPF_ANY)) {
		count_drop(SONDE_DROP_SOCK_FULL);
		return role;
	}
	note_tgid(key->tgid);
	if (o.active)
		tcp_event(skey, &o, SONDE_TCP_OPEN, 0);
	return role;
}

/* Starts tracking the connection on key->fd, replacing whatever was known
 * about that fd. Returns the new state, or NULL when the fd is not a TCP
 * socket we trace. Under socket hooks, only_sk is the socket the syscall
 * works on: one that is not the fd's (the kernel's own I/O inside the
 * syscall) is not tracked. Under syscall hooks, an fd not traced is
 * remembered in skip_fds. */
static __always_inline struct conn *conn_track(struct conn_key *key,
					       struct sock *only_sk, __u8 role)
{
	struct file *file;
	struct sock *sk;
	struct conn *c;

	/* A filtered socket is passed over before the fd table walk: under
	 * socket hooks it comes back at every call. */
	if (socket_hooks && port_ignored(key->tgid, only_sk))
		return NULL;
	file = file_of_fd(key->fd);
	sk = tcp_sock_of_file(file);
	if (socket_hooks) {
		if (!sk || sk != only_sk)
			return NULL;
	} else if (!sk || port_ignored(key->tgid, sk)) {
		bpf_map_delete_elem(&conns, key);
		skip_fd(key,
			sk || is_socket(file) ? SKIP_SOCKET : SKIP_NOT_SOCKET);
		return NULL;
	} else {
		bpf_map_delete_elem(&skip_fds, key);
	}
	if (bpf_map_update_elem(&conns, key, &zero_conn, BPF_ANY)) {
		count_drop(SONDE_DROP_CONN_FULL);
		return NULL;
	}
	c = bpf_map_lookup_elem(&conns, key);
	if (!c)
		return NULL;
	conn_set_socket(c, file, sk);
	current_comm(c->comm);
	c->role = owner_note(key, (__u64)sk, c->dport, role);
	return c;
}

/* The connection on key, tracking it if it is new; NULL for an fd sonde
 * does not trace, with *skipped saying whether it is a socket (enum
 * skip_why; 0 when a connection is returned). Under socket hooks, sk is
 * the syscall's socket, of any kind, or NULL to take the fd's (the TLS
 * probes, which make no syscall): a connection whose socket is another
 * one is tracked afresh, so a closed fd's number reused is a new
 * connection. */
static __always_inline struct conn *conn_find(struct conn_key *key,
					      struct sock *sk, __u8 *skipped)
{
	struct conn *c = bpf_map_lookup_elem(&conns, key);
	__u8 *why;

	*skipped = 0;
	if (socket_hooks) {
		/* The common case: the socket is the one known. Only
		 * another one has its kind read from the kernel. */
		if (sk && c && c->sk == (__u64)sk)
			return c;
		if (!sk)
			sk = tcp_sock_of_file(file_of_fd(key->fd));
		else if (!sock_is_tcp(sk))
			sk = NULL;
		if (!sk) {
			*skipped = SKIP_SOCKET;
			return NULL;
		}
		if (c && c->sk == (__u64)sk)
			return c;
		c = conn_track(key, sk, ROLE_UNKNOWN);
		if (!c)
			*skipped = SKIP_SOCKET;
		return c;
	}
	if (c)
		return c;
	why = bpf_map_lookup_elem(&skip_fds, key);
	if (!why) {
		c = conn_track(key, NULL, ROLE_UNKNOWN);
		if (c)
			return c;
		why = bpf_map_lookup_elem(&skip_fds, key);
	}
	/* Not in skip_fds after conn_track: a TCP socket the connection
	 * map had no room for. */
	*skipped = why ? *why : SKIP_SOCKET;
	return NULL;
}

/* Under syscall hooks, an fd can be closed behind our back (dup2 onto it,
 * close_range, exec with O_CLOEXEC) and reused. Checked once per
 * exchange, not once per syscall: the open file behind the fd must still
 * be the one we saw. Socket hooks check the socket at every call. */
static __always_inline struct conn *conn_revalidate(struct conn_key *key,
						    struct conn *c, __u8 role)
{
	if (socket_hooks || c->file == (__u64)file_of_fd(key->fd))
		return c;
	return conn_track(key, NULL, role);
}

/* "GET /x" or "PROPFIND /x": an RFC 9110 method token (here: upper-case
 * letters, '-' or '_', at most 15) then a space, after at most one empty
 * line ("\r\n", which a client may send after a body; RFC 9112 section
 * 2.2). A read shorter than that ("GE") passes when every byte seen so
 * far could start one, so a request line that arrives in pieces still
 * starts an exchange. */
static __always_inline bool looks_like_request(const char *p, __u32 n)
{
	__u32 start = 0;

	for (__u32 i = 0; i < SONDE_PEEK; i++) {
		char ch = p[i];

		if (i >= n)
			return i > start;
		if (i == start && i < 2 && (ch == '\r' || ch == '\n')) {
			start++;
			continue;
		}
		if (ch == ' ')
			return i > start;
		if (!((ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'))
			return false;
	}
	return false;
}

/* "HTTP/1.1 200 OK": only a status line starts a response. */
static __always_inline bool looks_like_status_line(const char *p, __u32 n)
{
	return n >= SONDE_STATUS_LEN && p[0] == 'H' && p[1] == 'T' &&
	       p[2] == 'T' && p[3] == 'P' && p[4] == '/' && p[5] == '1' &&
	       p[6] == '.' && p[8] == ' ';
}

/* p[0..n), shorter than a status line, could be the start of one. */
static __always_inline bool could_start_status_line(const char *p, __u32 n)
{
	const char head[] = "HTTP/1.";

	if (n == 0 || n >= SONDE_STATUS_LEN)
		return false;
	for (__u32 i = 0; i < sizeof(head) - 1; i++)
		if (i < n && p[i] != head[i])
			return false;
	return n <= 8 || p[8] == ' ';
}

/* "HTTP/1.1 100 Continue", 102 Processing, 103 Early Hints: the final
 * response is still to come. 101 Switching Protocols is final. */
static __always_inline bool is_interim_status(const char *p)
{
	return p[9] == '1' && p[10] == '0' &&
	       (p[11] == '0' || p[11] == '2' || p[11] == '3');
}

/* Copies up to SONDE_PEEK bytes from the start of a user buffer; returns
 * how many. */
static __always_inline __u32 peek_user(char *dst, const void *src, long n)
{
	__u32 len = n > SONDE_PEEK ? SONDE_PEEK : n;

	barrier_var(len);
	if (len > SONDE_PEEK || bpf_probe_read_user(dst, len, src))
		return 0;
	return len;
}

/* Copies up to SONDE_REQ_CAP bytes from the start of a user buffer into
 * the second half of c->req, which the capture never reaches; returns
 * how many. */
static __always_inline __u32 read_request_start(struct conn *c, const void *src,
						long n)
{
	__u32 len = n > SONDE_REQ_CAP ? SONDE_REQ_CAP : n;

	barrier_var(len);
	if (len > SONDE_REQ_CAP ||
	    bpf_probe_read_user(c->req + SONDE_REQ_CAP, len, src))
		return 0;
	return len;
}

/* Makes the got bytes read_request_start put in the second half of
 * c->req the capture. Only as many lines as they fill are copied, in
 * three sizes: a whole capture's copy cost more than the read it saves. */
static __always_inline void req_take_start(struct conn *c, __u32 got)
{
	const char *start = c->req + SONDE_REQ_CAP;

	if (got <= SONDE_REQ_CAP / 4)
		__builtin_memcpy(c->req, start, SONDE_REQ_CAP / 4);
	else if (got <= SONDE_REQ_CAP / 2)
		__builtin_memcpy(c->req, start, SONDE_REQ_CAP / 2);
	else
		__builtin_memcpy(c->req, start, SONDE_REQ_CAP);
	c->req_len = got;
}

/* Appends the bytes at buf to the request captured on c, up to cap
 * (SONDE_REQ_CAP at most) in all. */
static __always_inline void req_append(struct conn *c, const void *buf, long n,
				       __u32 cap)
{
	__u32 off = c->req_len;
	__u32 len = n > SONDE_REQ_CAP ? SONDE_REQ_CAP : n;

	if (off >= cap || cap > SONDE_REQ_CAP)
		return;
	barrier_var(len);
	if (len > SONDE_REQ_CAP)
		return;
	if (off + len > cap)
		len = cap - off;
	/* off < CAP and len <= CAP: the copy stays inside req[2 * CAP]. */
	if (bpf_probe_read_user(&c->req[off], len, buf))
		return;
	c->req_len = off + len;
}

/* How much of the request a connection keeps: a client's series need
 * only its method. */
static __always_inline __u32 req_cap(const struct conn *c)
{
	return c->role == ROLE_CLIENT ? SONDE_CLIENT_REQ_CAP : SONDE_REQ_CAP;
}

/* Once per connection, not per exchange: the process gets its exit and
 * exec reported. */
static __always_inline void note_process(__u32 tgid, struct conn *c)
{
	if (!c->process_noted && note_tgid(tgid))
		c->process_noted = 1;
}

/* Offset just past the first "\r\n\r\n" in p[0..n), or 0. */
static __always_inline __u32 head_end(const char *p, __u32 n)
{
	for (__u32 i = 3; i < SONDE_HEAD_PEEK; i++) {
		if (i >= n)
			return 0;
		if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
		    p[i - 3] == '\r')
			return i + 1;
	}
	return 0;
}

/* buf[0..n) starts with an interim head ("HTTP/1.1 100 Continue"): finds
 * the final status line after it, and puts its first bytes in status.
 * Returns how many, or 0 when buf holds the interim head only and the final
 * one comes in a later write. Rare: looked for only after a 1xx. */
static __always_inline __u32 final_status_line(const char *buf, long n,
					       char *status)
{
	char head[SONDE_HEAD_PEEK] = {};
	__u32 len, end;
	long pos = 0;

	for (int k = 0; k < SONDE_MAX_HEADS; k++) {
		len = n - pos > SONDE_HEAD_PEEK ? SONDE_HEAD_PEEK : n - pos;
		barrier_var(len);
		if (len > SONDE_HEAD_PEEK ||
		    bpf_probe_read_user(head, len, buf + pos) ||
		    !looks_like_status_line(head, len))
			return 0;
		if (!is_interim_status(head)) {
			__builtin_memcpy(status, head, SONDE_RESP_CAP);
			return len < SONDE_RESP_CAP ? len : SONDE_RESP_CAP;
		}
		if (k == SONDE_MAX_HEADS - 1)
			return 0;
		end = head_end(head, len);
		if (!end || pos + end >= n)
			return 0;
		pos += end;
	}
	return 0;
}

/* Reserves an exchange record with room for req_room bytes of request
 * and copies them from c. */
#define EXCHANGE_RESERVE(slot, c, req_room)                                 \
	({                                                                  \
		struct sonde_http_event *e_ =                               \
			ring_reserve(slot, SONDE_EXCHANGE_BYTES(req_room)); \
		if (e_)                                                     \
			__builtin_memcpy(e_->req, (c)->req, req_room);      \
		e_;                                                         \
	})

/* Sends the exchange on c, whose final status line is status[0..len).
 * The record is only as long as the request bytes need, in four sizes:
 * a 40-byte GET travels in 176 bytes, where the longest record is 368. */
static __always_inline void emit_exchange(struct conn_key *key, struct conn *c,
					  const char *status, __u32 len)
{
	struct sonde_http_event *ev;
	__u16 req_len = c->req_len;
	struct ring_slot slot;

	if (req_len <= SONDE_CLIENT_REQ_CAP)
		ev = EXCHANGE_RESERVE(&slot, c, SONDE_CLIENT_REQ_CAP);
	else if (req_len <= SONDE_REQ_CAP / 4)
		ev = EXCHANGE_RESERVE(&slot, c, SONDE_REQ_CAP / 4);
	else if (req_len <= SONDE_REQ_CAP / 2)
		ev = EXCHANGE_RESERVE(&slot, c, SONDE_REQ_CAP / 2);
	else
		ev = EXCHANGE_RESERVE(&slot, c, SONDE_REQ_CAP);
	if (!ev)
		return;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = key->tgid;
	ev->hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	ev->hdr.pad = 0;
	ev->start_ns = c->start_ns;
	ev->end_ns = ev->hdr.ts_ns;
	__builtin_memcpy(ev->saddr, c->saddr, sizeof(ev->saddr));
	__builtin_memcpy(ev->daddr, c->daddr, sizeof(ev->daddr));
	ev->fd = key->fd;
	ev->sport = c->sport;
	ev->dport = c->dport;
	ev->family = c->family;
	ev->req_len = req_len;
	ev->resp_len = len;
	ev->pipeline_idx = c->pipeline_idx;
	ev->role = c->role;
	__builtin_memcpy(ev->comm, c->comm, SONDE_COMM_LEN);
	__builtin_memcpy(ev->resp, status, SONDE_RESP_CAP);
	ring_submit(&slot);
	note_process(key->tgid, c);
}

/* Whether bytes read (is_read) or written on c go from server to client:
 * a server writes them, a client reads them. */
static __always_inline __u32 to_client(const struct conn *c, bool is_read)
{
	return is_read != (c->role == ROLE_SERVER);
}

/* HTTP/2 (RFC 9113). After the client's preface, a connection carries
 * frames: a 9-byte header (24-bit payload length, type, flags, 31-bit
 * stream id) and the payload. Each direction's frames are followed across
 * reads or writes of any size; the payloads of header blocks (HEADERS,
 * CONTINUATION, PUSH_PROMISE) and of RST_STREAM go to the daemon,
 * everything else (DATA above all) is only counted past. A connection whose frames cannot be followed any more is
 * given up, counted: the daemon cannot decode its header blocks without
 * every byte of them. */
struct h2_walk {
	struct conn_key *key;
	struct conn *c;
	const char *buf;
	long n;
	__u32 dir; /* 0: sent by the client, 1: by the server */
};

static __always_inline bool h2_forwarded(__u8 type)
{
	return type == SONDE_H2_HEADERS || type == SONDE_H2_CONTINUATION ||
	       type == SONDE_H2_PUSH_PROMISE || type == SONDE_H2_RST_STREAM;
}

static __always_inline void h2_unfollow(struct conn *c)
{
	c->h2 = H2_UNFOLLOWED;
	count_drop(SONDE_DROP_HTTP2_UNFOLLOWED);
}

/* Sends the next len bytes of direction d's frame, at w->buf + c->h2_pos.
 * False when the record was lost. */
static __always_inline bool h2_send(struct h2_walk *w, struct conn *c, __u32 d,
				    __u64 len)
{
	struct sonde_h2_event *ev =
		bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		count_drop(SONDE_DROP_RINGBUF_FULL);
		return false;
	}
	barrier_var(len);
	if (len > SONDE_H2_DATA_CAP ||
	    (len && bpf_probe_read_user(ev->data, len, w->buf + c->h2_pos))) {
		bpf_ringbuf_discard(ev, 0);
		return false;
	}
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = w->key->tgid;
	ev->hdr.kind = SONDE_EV_HTTP2;
	ev->hdr.pad = 0;
	ev->sk = c->sk;
	__builtin_memcpy(ev->saddr, c->saddr, sizeof(ev->saddr));
	__builtin_memcpy(ev->daddr, c->daddr, sizeof(ev->daddr));
	ev->fd = w->key->fd;
	ev->since = c->h2_since;
	ev->seq = c->h2_seq[d]++;
	ev->stream_id = c->h2_stream[d];
	ev->frame_len = c->h2_len[d];
	ev->offset = c->h2_len[d] - c->h2_left[d];
	ev->sport = c->sport;
	ev->dport = c->dport;
	ev->family = c->family;
	ev->len = len;
	ev->type = c->h2_type[d];
	ev->flags = c->h2_flags[d];
	ev->to_client = d;
	ev->role = c->role;
	current_comm(ev->comm);
	event_submit(&events, ev);
	return true;
}

/* One step through w's buffer: a piece of the current frame's payload,
 * or (some of) the next frame's header. bpf_loop's callback: 1 stops. */
static long h2_step(__u32 i, void *ctx)
{
	struct h2_walk *w = ctx;
	struct conn *c = w->c;
	__u32 d = w->dir & 1, left, take, have, want;
	long rest = w->n - c->h2_pos;
	const __u8 *f;

	if (rest <= 0 || c->h2 != H2_FOLLOWED)
		return 1;
	left = c->h2_left[d];
	if (left) {
		take = left < rest ? left : rest;
		if (h2_forwarded(c->h2_type[d])) {
			if (take > SONDE_H2_DATA_CAP)
				take = SONDE_H2_DATA_CAP;
			if (!h2_send(w, c, d, take)) {
				h2_unfollow(c);
				return 1;
			}
		}
		c->h2_left[d] = left - take;
		c->h2_pos += take;
		return 0;
	}
	have = c->h2_part_len[d];
	if (have >= H2_FRAME_HEADER)
		have = 0;
	want = H2_FRAME_HEADER - have;
	if (want > rest)
		want = rest;
	barrier_var(want);
	barrier_var(have);
	if (want > H2_FRAME_HEADER || have >= H2_FRAME_HEADER ||
	    bpf_probe_read_user(&c->h2_part[d][have], want,
				w->buf + c->h2_pos)) {
		h2_unfollow(c);
		return 1;
	}
	c->h2_pos += want;
	have += want;
	if (have < H2_FRAME_HEADER) {
		c->h2_part_len[d] = have;
		return 1;
	}
	c->h2_part_len[d] = 0;
	f = (const __u8 *)c->h2_part[d];
	c->h2_len[d] = (__u32)f[0] << 16 | (__u32)f[1] << 8 | f[2];
	c->h2_left[d] = c->h2_len[d];
	c->h2_type[d] = f[3];
	c->h2_flags[d] = f[4];
	c->h2_stream[d] = ((__u32)f[5] & 0x7f) << 24 | (__u32)f[6] << 16 |
			  (__u32)f[7] << 8 | f[8];
	/* An empty piece of a header block may still end the block. */
	if (!c->h2_len[d] && h2_forwarded(c->h2_type[d]) &&
	    !h2_send(w, c, d, 0)) {
		h2_unfollow(c);
		return 1;
	}
	return 0;
}

/* n bytes at buf went in direction dir (as to_client gives it) on the
 * HTTP/2 connection c. */
static __always_inline void h2_data(struct conn_key *key, struct conn *c,
				    const void *buf, long n, __u32 dir)
{
	struct h2_walk w = {
		.key = key,
		.c = c,
		.buf = buf,
		.n = n,
		.dir = dir,
	};

	c->h2_pos = 0;
	bpf_loop(H2_MAX_STEPS, h2_step, &w, 0);
	if (c->h2 == H2_FOLLOWED && c->h2_pos < n)
		h2_unfollow(c);
}

/* The client's preface in peek[0..got): the first 16 bytes of it. */
static __always_inline bool is_h2_preface(const char *p, __u32 got)
{
	const char preface[] = "PRI * HTTP/2.0\r\n";

	if (got < sizeof(preface) - 1)
		return false;
	for (__u32 i = 0; i < sizeof(preface) - 1; i++)
		if (p[i] != preface[i])
			return false;
	return true;
}

/* The client's preface starts buf: from here on c carries frames. The
 * preface is skipped like the payload of a frame nobody forwards (type
 * 0). A connection starts HTTP/2 once, from the zeroed entry conn_track
 * made: the other h2 fields are still 0, and the HTTP/1 state is not
 * looked at again. */
static __always_inline void h2_start(struct conn_key *key, struct conn *c,
				     const void *buf, long n)
{
	c->h2 = H2_FOLLOWED;
	c->h2_since = bpf_ktime_get_ns();
	c->h2_len[0] = H2_PREFACE_LEN;
	c->h2_left[0] = H2_PREFACE_LEN;
	note_process(key->tgid, c);
	h2_data(key, c, buf, n, 0);
}

/* Bytes going from client to server (read by a server, written by a
 * client). Outside an exchange, a request line starts one; within it,
 * they are the rest of the head, pipelined requests or a body. */
static __always_inline void
on_request_bytes(struct conn_key *key, struct conn *c, const void *buf, long n)
{
	char peek[SONDE_PEEK];
	struct conn *seen = c;
	const char *head = peek;
	bool whole = false;
	__u32 got;

	if (c->phase == PHASE_REQUEST) {
		req_append(c, buf, n, req_cap(c));
		return;
	}
	/* A server's capture is read at once into the unused half of
	 * c->req: one read from user memory, not a peek and then another.
	 * A client's capture is what it peeks. */
	if (c->role == ROLE_SERVER) {
		head = c->req + SONDE_REQ_CAP;
		got = read_request_start(c, buf, n);
		whole = true;
	} else {
		got = peek_user(peek, buf, n);
	}
	if (!looks_like_request(head, got))
		return;
	c = conn_revalidate(key, c, c->role);
	if (!c)
		return;
	/* Tracked afresh (syscall hooks: the fd was reused): the bytes went
	 * to the entry replaced. */
	if (c != seen) {
		head = peek;
		got = peek_user(peek, buf, n);
		whole = false;
	}
	if (is_h2_preface(head, got)) {
		h2_start(key, c, buf, n);
		return;
	}
	c->phase = PHASE_REQUEST;
	c->start_ns = bpf_ktime_get_ns();
	c->pipeline_idx = 0;
	c->resp_part_len = 0;
	if (c->role == ROLE_CLIENT) {
		__builtin_memcpy(c->req, head, SONDE_PEEK);
		c->req_len = got;
		return;
	}
	if (whole) {
		req_take_start(c, got);
		return;
	}
	c->req_len = 0;
	req_append(c, buf, n, SONDE_REQ_CAP);
}

/* The first bytes of a response that continues the status line begun
 * in c->resp_part: that start, then what buf adds, in peek (room for two
 * peeks: the start is shorter than a status line, and the verifier sees
 * the copy in bounds). Returns how many, at most SONDE_PEEK, like
 * peek_user; the part is used up. */
static __always_inline __u32 resume_status_line(struct conn *c, const void *buf,
						long n, char *peek)
{
	__u32 have = c->resp_part_len, more = n > SONDE_PEEK ? SONDE_PEEK : n;

	c->resp_part_len = 0;
	__builtin_memcpy(peek, c->resp_part, SONDE_STATUS_LEN);
	if (have >= SONDE_STATUS_LEN)
		return 0;
	barrier_var(more);
	if (more > SONDE_PEEK || bpf_probe_read_user(peek + have, more, buf))
		return have;
	return have + more > SONDE_PEEK ? SONDE_PEEK : have + more;
}

/* Bytes going from server to client (written by a server, read by a
 * client). A final status line ends the exchange. A server may go on
 * writing pipelined responses, each one the next request's; a client's
 * exchange ends at its first one, and the body after it is not looked
 * at. A status line that comes shorter than SONDE_STATUS_LEN bytes (read
 * a byte at a time: curl reading a proxy's answer to CONNECT) is put
 * together across calls. */
static __always_inline void
on_response_bytes(struct conn_key *key, struct conn *c, const void *buf, long n)
{
	char peek[2 * SONDE_PEEK];
	bool resumed = c->resp_part_len;
	__u32 got;

	if (c->phase == PHASE_IDLE ||
	    (c->role == ROLE_CLIENT && c->phase == PHASE_RESPONSE))
		return;
	got = resumed ? resume_status_line(c, buf, n, peek) :
			peek_user(peek, buf, n);
	if (!looks_like_status_line(peek, got)) {
		if (could_start_status_line(peek, got)) {
			__builtin_memcpy(c->resp_part, peek, SONDE_STATUS_LEN);
			c->resp_part_len = got;
		}
		return;
	}
	/* 100 Continue alone: the final head comes in a later write. One
	 * that came in pieces is passed over; the final one follows. */
	if (is_interim_status(peek)) {
		got = resumed ? 0 : final_status_line(buf, n, peek);
		if (!got)
			return;
	}
	emit_exchange(key, c, peek, got);
	c->phase = PHASE_RESPONSE;
	if (c->pipeline_idx < 255)
		c->pipeline_idx++;
}

/* A connection found lazily takes the role its first HTTP bytes show: a
 * request read makes it the server side, a request written the client. */
static __always_inline void classify(struct conn *c, const void *buf, long n,
				     bool is_read)
{
	char peek[SONDE_PEEK];

	if (looks_like_request(peek, peek_user(peek, buf, n)))
		c->role = is_read ? ROLE_SERVER : ROLE_CLIENT;
}

/* n bytes at user address buf were read (is_read) or written on the
 * connection key, which c tracks: the one entry to the HTTP state machine,
 * for both roles. */
static __always_inline void conn_data(struct conn_key *key, struct conn *c,
				      const void *buf, long n, bool is_read)
{
	if (c->h2) {
		if (c->h2 == H2_FOLLOWED)
			h2_data(key, c, buf, n, to_client(c, is_read));
		return;
	}
	if (c->role == ROLE_UNKNOWN)
		classify(c, buf, n, is_read);
	if (c->role == ROLE_UNKNOWN)
		return;
	if (!to_client(c, is_read))
		on_request_bytes(key, c, buf, n);
	else
		on_response_bytes(key, c, buf, n);
}

/* The fd and buffer of the syscall task (the current one) is in. The
 * kernel saved the user registers at syscall entry and leaves them alone
 * until it returns to user space, so sys_exit, or a socket tracepoint on
 * the way, can read the arguments there: no sys_enter program, no
 * per-thread map, and a read that was already blocked when sonde attached
 * is seen like any other. bpf_task_pt_regs gives a BTF-typed pointer:
 * plain loads, not probe reads. */
static __always_inline struct pt_regs *syscall_args(struct task_struct *task,
						    __u32 *fd, __u64 *arg2)
{
	struct pt_regs *regs;

	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	*fd = PT_REGS_PARM1_SYSCALL(regs);
	*arg2 = PT_REGS_PARM2_SYSCALL(regs);
	return regs;
}

/* A receive's flags: argument flags_at (recvfrom's 4th, recvmsg's 3rd), or
 * 0 when the syscall has none (flags_at 0). */
static __always_inline __u32 recv_flags(struct pt_regs *regs, __u8 flags_at)
{
	if (flags_at == 3)
		return PT_REGS_PARM3_SYSCALL(regs);
	if (flags_at == 4)
		return PT_REGS_PARM4_SYSCALL(regs);
	return 0;
}

/* The iovec array of a vector read or write (IO_IOVEC or IO_MSGHDR), or
 * NULL when the msghdr cannot be read. A msghdr also gives the array's
 * length in *count; readv and writev pass it as their third argument. */
static __always_inline const struct iovec *io_iovecs(__u64 arg, __u8 how,
						     __u64 *count)
{
	struct user_msghdr msg;

	if (how != IO_MSGHDR)
		return (const struct iovec *)arg;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)arg))
		return NULL;
	*count = msg.msg_iovlen;
	return msg.msg_iov;
}

/* The first data buffer of a read or write: plain, iovec or msghdr. */
static __always_inline const void *io_first_buffer(__u64 arg, __u8 how, long *n)
{
	const struct iovec *iovp;
	struct iovec iov;
	__u64 count;

	if (how == IO_PLAIN)
		return (const void *)arg;
	iovp = io_iovecs(arg, how, &count);
	if (!iovp || bpf_probe_read_user(&iov, sizeof(iov), iovp))
		return NULL;
	if ((__u64)*n > iov.iov_len)
		*n = iov.iov_len;
	return iov.iov_base;
}

struct h2_iov_walk {
	struct conn_key *key;
	struct conn *c;
	const struct iovec *iovp;
	__u64 count;
	long ret;    /* bytes still to walk */
	__u32 first; /* the buffer to start from */
	__u32 dir;
};

/* The next buffer of a vector call. bpf_loop's callback: 1 stops. */
static long h2_iov_step(__u32 i, void *ctx)
{
	struct h2_iov_walk *v = ctx;
	__u64 at = (__u64)v->first + i;
	struct iovec iov;

	if (v->ret <= 0 || at >= v->count ||
	    bpf_probe_read_user(&iov, sizeof(iov), &v->iovp[at]))
		return 1;
	if ((__u64)v->ret < iov.iov_len)
		iov.iov_len = v->ret;
	h2_data(v->key, v->c, iov.iov_base, iov.iov_len, v->dir);
	v->ret -= iov.iov_len;
	return v->c->h2 != H2_FOLLOWED;
}

/* The buffers of a readv, writev, recvmsg or sendmsg from the first-th
 * on, which carried ret bytes, in order, on an HTTP/2 connection: frames
 * are cut anywhere (nginx writes a frame's header and its payload from
 * two buffers; node writes each frame's parts from their own, a hundred
 * buffers in one writev). */
static __always_inline void h2_vector(struct conn_key *key, struct conn *c,
				      struct pt_regs *regs, __u64 arg, __u8 how,
				      long ret, bool is_read, __u32 first)
{
	struct h2_iov_walk v = {
		.key = key,
		.c = c,
		.count = PT_REGS_PARM3_SYSCALL(regs),
		.ret = ret,
		.first = first,
		.dir = to_client(c, is_read),
	};

	v.iovp = io_iovecs(arg, how, &v.count);
	if (v.iovp)
		bpf_loop(H2_MAX_IOVECS, h2_iov_step, &v, 0);
	if (c->h2 == H2_FOLLOWED && v.ret > 0)
		h2_unfollow(c);
}

#include "tls.bpf.h"

/* The bytes a read or write moved on c: ret of them, in the buffer
 * argument arg2 of the syscall whose registers are regs (how says its
 * shape), into the HTTP state machine or the HTTP/2 walk. */
static __always_inline void io_data(struct conn_key *key, struct conn *c,
				    struct pt_regs *regs, __u64 arg2, __u8 how,
				    long ret, bool is_read)
{
	const void *buf;
	long first;

	if (c->h2 && how != IO_PLAIN) {
		h2_vector(key, c, regs, arg2, how, ret, is_read, 0);
		return;
	}
	first = ret;
	buf = io_first_buffer(arg2, how, &first);
	if (!buf || first <= 0)
		return;
	conn_data(key, c, buf, first, is_read);
	/* The preface filled the first buffer: the other buffers hold
	 * frames (node writes the preface and its SETTINGS from two). */
	if (c->h2 == H2_FOLLOWED && ret > first)
		h2_vector(key, c, regs, arg2, how, ret - first, is_read, 1);
}

/* A read or write on a socket returned ret (-EAGAIN only inside an
 * OpenSSL call, where it still names the socket); c is its connection, or
 * NULL when sonde does not trace it. */
static __always_inline void io_socket(struct conn_key *key, struct conn *c,
				      struct pt_regs *regs, __u64 arg2,
				      __u8 how, long ret, bool is_read)
{
	if (is_read && ret > 0)
		tls_note_read(key, c != NULL);
	tls_note_fd(key, c);
	/* On a connection OpenSSL carries, the bytes are ciphertext. */
	if (ret <= 0 || !c || c->tls)
		return;
	io_data(key, c, regs, arg2, how, ret, is_read);
}

/* Whether ret is worth a look: bytes, or a read that would block inside
 * an OpenSSL call (a handshake waiting for the peer), which carries none
 * but names the call's socket. */
static __always_inline bool io_result_wanted(long ret)
{
	return ret > 0 || (ret == -EAGAIN && tls_calls_maybe_open());
}

/* Syscall hooks. flags_at: as recv_flags. */
static __always_inline int io_exit(long ret, __u8 how, bool is_read,
				   __u8 flags_at)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct conn_key key = { .tgid = task->tgid };
	struct pt_regs *regs;
	struct conn *c;
	__u8 skipped;
	__u64 arg2;

	if (!io_result_wanted(ret) || process_ignored(key.tgid))
		return 0;
	regs = syscall_args(task, &key.fd, &arg2);
	/* A peek leaves the bytes for the read that follows (a server
	 * sniffing for TLS): they are taken in once, there. */
	if (recv_flags(regs, flags_at) & MSG_PEEK)
		return 0;
	c = conn_find(&key, NULL, &skipped);
	/* Only sockets say where OpenSSL's bytes go. */
	if (skipped == SKIP_NOT_SOCKET)
		return 0;
	io_socket(&key, c, regs, arg2, how, ret, is_read);
	return 0;
}

/* Socket hooks: the shape of the syscall now moving bytes on a socket, or
 * false for one whose bytes are not looked at (sendfile, splice,
 * sendmmsg, io_uring, a read where the kernel writes). */
static __always_inline bool io_syscall(long nr, bool is_read, __u8 *how)
{
	switch (nr) {
	case NR_read:
	case NR_recvfrom:
		*how = IO_PLAIN;
		return is_read;
	case NR_readv:
		*how = IO_IOVEC;
		return is_read;
	case NR_recvmsg:
		*how = IO_MSGHDR;
		return is_read;
	case NR_write:
	case NR_sendto:
		*how = IO_PLAIN;
		return !is_read;
	case NR_writev:
		*how = IO_IOVEC;
		return !is_read;
	case NR_sendmsg:
		*how = IO_MSGHDR;
		return !is_read;
	}
	return false;
}

/* Socket hooks: the socket sk received or sent ret bytes (recvmsg or
 * sendmsg flags: flags) inside the syscall of the current task, whose
 * saved registers give the fd and the buffer. */
static __always_inline int sock_io(struct sock *sk, long ret, __u32 flags,
				   bool is_read)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct conn_key key = { .tgid = task->tgid };
	struct pt_regs *regs;
	struct conn *c;
	__u8 how, skipped;
	__u64 arg2;

	/* A peek leaves the bytes for the read that follows. */
	if (!io_result_wanted(ret) || (flags & MSG_PEEK))
		return 0;
	/* A kernel thread's or an io_uring worker's registers are not a
	 * syscall's. */
	if (task->flags & (PF_KTHREAD | PF_IO_WORKER) ||
	    process_ignored(key.tgid))
		return 0;
	regs = syscall_args(task, &key.fd, &arg2);
	if (!io_syscall(regs->orig_ax, is_read, &how))
		return 0;
	c = conn_find(&key, sk, &skipped);
	io_socket(&key, c, regs, arg2, how, ret, is_read);
	return 0;
}

/* The tracepoints' arguments: struct sock *sk, int ret, int flags. */
SEC("raw_tracepoint/sock_recv_length")
int sock_recv(struct bpf_raw_tracepoint_args *ctx)
{
	return sock_io((struct sock *)ctx->args[0], (int)ctx->args[1],
		       ctx->args[2], true);
}

SEC("raw_tracepoint/sock_send_length")
int sock_send(struct bpf_raw_tracepoint_args *ctx)
{
	return sock_io((struct sock *)ctx->args[0], (int)ctx->args[1],
		       ctx->args[2], false);
}

#define IO_PROGRAM(name, how, is_read, flags_at)                  \
	SEC("tracepoint/syscalls/sys_exit_" #name)                \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)     \
	{                                                         \
		return io_exit(ctx->ret, how, is_read, flags_at); \
	}

IO_PROGRAM(read, IO_PLAIN, true, 0)
IO_PROGRAM(readv, IO_IOVEC, true, 0)
IO_PROGRAM(recvfrom, IO_PLAIN, true, 4)
IO_PROGRAM(recvmsg, IO_MSGHDR, true, 3)
IO_PROGRAM(write, IO_PLAIN, false, 0)
IO_PROGRAM(writev, IO_IOVEC, false, 0)
IO_PROGRAM(sendto, IO_PLAIN, false, 0)
IO_PROGRAM(sendmsg, IO_MSGHDR, false, 0)

static __always_inline int accepted(long fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = id >> 32, .fd = fd };

	if (fd < 0 || process_ignored(key.tgid))
		return 0;
	conn_track(&key, NULL, ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
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
int enter_close(struct trace_event_raw_sys_enter *ctx)
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

	if (tid != tgid)
		return 0;
	/* A process the selection decided on is forgotten with it. */
	decided = select_enabled && !bpf_map_delete_elem(&verdicts, &tgid);
	if (bpf_map_delete_elem(&procs, &tgid) && !decided)
		return 0;
	report_process(tgid, SONDE_EV_PROCESS_EXIT);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	/* A new image is a new decision, asked for now: under socket
	 * hooks the next sign of the process may be its first request. */
	if (select_enabled) {
		bpf_map_delete_elem(&verdicts, &tgid);
		process_verdict(tgid);
	}
	if (!report_execs && !bpf_map_lookup_elem(&procs, &tgid))
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

/* A client's SYN is about to leave: the connecting process is current. */
static __always_inline void
client_connecting(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 key = (__u64)ctx->skaddr;
	struct sock_owner o = {
		.syn_ns = bpf_ktime_get_ns(),
		.tgid = tgid,
		.dport = ctx->dport,
		.role = ROLE_CLIENT,
	};

	if (process_ignored(tgid) ||
	    (filter_port && ctx->sport != filter_port &&
	     ctx->dport != filter_port))
		return;
	current_comm(o.comm);
	if (bpf_map_update_elem(&socks, &key, &o, BPF_ANY)) {
		count_drop(SONDE_DROP_SOCK_FULL);
		return;
	}
	note_tgid(tgid);
}

/* The network namespace sk lives in, as its inode number. */
static __always_inline __u32 sock_netns(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* Socket hooks: a socket moved to LISTEN (in the listen() of the current
 * process) or left it. The listeners map keeps, per namespace and port,
 * the last process to listen there and how many sockets do. A listener
 * bound to no port before listen() gets its port after this runs: it is
 * not entered. */
static __always_inline void
listener_changed(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sonde_listener_key k = {
		.netns = sock_netns((struct sock *)ctx->skaddr),
		.port = ctx->sport,
	};
	struct sonde_listener l = { .sockets = 1 }, *known;

	if (!k.port)
		return;
	known = bpf_map_lookup_elem(&listeners, &k);
	if (ctx->newstate == TCP_CLOSE) {
		if (!known)
			return;
		__sync_fetch_and_add(&known->sockets, -1);
		if ((__s32)known->sockets <= 0)
			bpf_map_delete_elem(&listeners, &k);
		return;
	}
	l.tgid = bpf_get_current_pid_tgid() >> 32;
	if (l.tgid == self_tgid)
		return;
	current_comm(l.comm);
	if (known) {
		__sync_fetch_and_add(&known->sockets, 1);
		known->tgid = l.tgid;
		__builtin_memcpy(known->comm, l.comm, sizeof(l.comm));
		return;
	}
	bpf_map_update_elem(&listeners, &k, &l, BPF_NOEXIST);
}

/* Socket hooks: a server's connection is established (in softirq
 * context). It is charged to the process that listens on its port, and
 * counted as active, until a process reads or writes it: the first to do
 * so owns it (owner_note), and it is a server's from then on. With no
 * listener known, it has no process until then. */
static __always_inline void
server_established(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	struct sonde_listener_key lk = { .netns = sock_netns(sk),
					 .port = ctx->sport };
	struct sock_owner o = { .dport = ctx->dport, .role = ROLE_SERVER };
	struct sonde_listener *l;
	__u64 key = (__u64)sk;
	long err;

	if (filter_port && ctx->sport != filter_port)
		return;
	l = bpf_map_lookup_elem(&listeners, &lk);
	if (l && l->tgid && !process_ignored(l->tgid) &&
	    !port_ignored(l->tgid, sk)) {
		o.tgid = l->tgid;
		o.by_listener = 1;
		o.active = 1;
		__builtin_memcpy(o.comm, l->comm, sizeof(o.comm));
	}
	err = bpf_map_update_elem(&socks, &key, &o, BPF_NOEXIST);
	if (err == -E2BIG)
		count_drop(SONDE_DROP_SOCK_FULL);
	if (!err && o.active && note_tgid(o.tgid))
		tcp_event(key, &o, SONDE_TCP_OPEN, 0);
}

/* The connect started by client_connecting() finished: established, or
 * closed with the socket's error (0: the client closed it first). */
static __always_inline void
connect_done(struct trace_event_raw_inet_sock_set_state *ctx,
	     struct sock_owner *o, bool established)
{
	struct sonde_tcp_event *ev =
		tcp_event_reserve(o->tgid, (__u64)ctx->skaddr);

	if (!ev)
		return;
	ev->duration_ns = ev->hdr.ts_ns - o->syn_ns;
	ev->err = established ?
			  0 :
			  BPF_CORE_READ((struct sock *)ctx->skaddr, sk_err);
	ev->dport = ctx->dport;
	ev->family = ctx->family;
	/* The verifier refuses loads through an offset ctx pointer, which a
	 * copy of an array field becomes; the helper reads it instead. */
	if (ctx->family == AF_INET)
		bpf_probe_read_kernel(ev->daddr, 4, ctx->daddr);
	else
		bpf_probe_read_kernel(ev->daddr, 16, ctx->daddr_v6);
	ev->what = SONDE_TCP_CONNECT;
	ev->detail = established ? SONDE_TCP_CONNECT_ESTABLISHED :
				   SONDE_TCP_CONNECT_FAILED;
	ev->role = ROLE_CLIENT;
	__builtin_memcpy(ev->comm, o->comm, sizeof(ev->comm));
	event_submit(&events, ev);
}

/* The socket at key, which o says who owned, is gone: o is forgotten, so
 * that socks holds only live sockets. Under socket hooks, which see no
 * close, so is the owner's connection on it, unless its fd already names
 * another socket. */
static __always_inline void owner_forget(__u64 key, struct sock_owner *o)
{
	struct conn_key ck;
	struct conn *c;

	if (socket_hooks && o->tgid && !o->by_listener) {
		ck.tgid = o->tgid;
		ck.fd = o->fd;
		c = bpf_map_lookup_elem(&conns, &ck);
		if (c && c->sk == key)
			bpf_map_delete_elem(&conns, &ck);
	}
	bpf_map_delete_elem(&socks, &key);
}

/* Every TCP state change. Client connects are timed from SYN_SENT to
 * ESTABLISHED or CLOSE; a counted connection stops being active when it
 * leaves ESTABLISHED (either side closed); the owner is forgotten when
 * the socket is destroyed. Many of these run in softirq context, where
 * the current task is unrelated: the owner comes from the socks map. */
SEC("tracepoint/sock/inet_sock_set_state")
int sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 key = (__u64)ctx->skaddr;
	struct sock_owner *o;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	o = bpf_map_lookup_elem(&socks, &key);
	if (o && !owner_live(o, ctx->dport)) {
		/* A closed socket does not change state again, and one
		 * socket keeps its peer: this is new life in reused memory,
		 * and the old socket's destruction was missed. */
		owner_forget(key, o);
		o = NULL;
	}
	if (ctx->newstate == TCP_SYN_SENT) {
		client_connecting(ctx);
		return 0;
	}
	/* A connection's socket is born a copy of its listener: its first
	 * move, to SYN_RECV, is from LISTEN too. */
	if (socket_hooks &&
	    (ctx->newstate == TCP_LISTEN ||
	     (ctx->oldstate == TCP_LISTEN && ctx->newstate == TCP_CLOSE))) {
		listener_changed(ctx);
		return 0;
	}
	if (!o) {
		if (socket_hooks && ctx->oldstate == TCP_SYN_RECV &&
		    ctx->newstate == TCP_ESTABLISHED)
			server_established(ctx);
		return 0;
	}
	if (ctx->oldstate == TCP_SYN_SENT) {
		connect_done(ctx, o, ctx->newstate == TCP_ESTABLISHED);
		if (ctx->newstate == TCP_ESTABLISHED)
			o->active = 1;
	} else if (ctx->oldstate == TCP_ESTABLISHED && o->active) {
		o->active = 0;
		tcp_event(key, o, SONDE_TCP_CLOSE, 0);
	}
	/* Not forgotten at once: a close with SO_LINGER 0 moves to CLOSE
	 * before it sends its reset. The entry goes when the kernel destroys
	 * the socket (tcp_destroy below). */
	if (ctx->newstate == TCP_CLOSE)
		o->closed = 1;
	return 0;
}

static __always_inline int sock_event(const void *sk, __u8 what, __u8 detail)
{
	__u64 key = (__u64)sk;
	struct sock_owner *o;

	if (!key)
		return 0;
	o = bpf_map_lookup_elem(&socks, &key);
	/* Only a reset can follow the move to CLOSE. An accepted socket
	 * with no listener known that no process has used yet has no one to
	 * charge. */
	if (o && o->tgid && (!o->closed || what == SONDE_TCP_RESET))
		tcp_event(key, o, what, detail);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcp_retransmit(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	return sock_event(ctx->skaddr, SONDE_TCP_RETRANSMIT, 0);
}

/* skaddr is NULL for a reset answering a segment no socket wanted. */
SEC("tracepoint/tcp/tcp_send_reset")
int tcp_reset_sent(struct trace_event_raw_tcp_send_reset *ctx)
{
	return sock_event(ctx->skaddr, SONDE_TCP_RESET, SONDE_TCP_RESET_SENT);
}

/* A reset answering a SYN is a refused connect, counted as such. */
SEC("tracepoint/tcp/tcp_receive_reset")
int tcp_reset_received(struct trace_event_raw_tcp_event_sk *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;

	if (sk && BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_SYN_SENT)
		return 0;
	return sock_event(sk, SONDE_TCP_RESET, SONDE_TCP_RESET_RECEIVED);
}

/* The last the kernel does with a TCP socket (nothing, a reset included,
 * follows). */
SEC("tracepoint/tcp/tcp_destroy_sock")
int tcp_destroy(struct trace_event_raw_tcp_event_sk *ctx)
{
	__u64 key = (__u64)ctx->skaddr;
	struct sock_owner *o = bpf_map_lookup_elem(&socks, &key);

	if (o)
		owner_forget(key, o);
	return 0;
}

#include "uprobe.bpf.h"
