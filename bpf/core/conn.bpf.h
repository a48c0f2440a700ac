/* Connection tracking and socket ownership.
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
 * struct conn starts with the small state every call on a connection
 * reads: the socket, addresses, role, its process's name and what its
 * bytes were classified as. Its protocol's own state follows, in room the
 * core does not look into (each header in bpf/proto/ lays out its part):
 * one lookup finds both, and the calls of a connection no protocol claims
 * touch only the first part. A connection exists only for a process
 * the selection traces: a call that finds its connection needs no verdict
 * lookup (the daemon removes a process's connections when its verdict
 * turns against it). */
#ifndef SONDE_CORE_CONN_BPF_H
#define SONDE_CORE_CONN_BPF_H

struct conn_key {
	__u32 tgid;
	__u32 fd;
};

/* Bytes of protocol state a connection carries: HTTP/1's request capture
 * (struct http1_conn) is the largest. Each protocol checks that its state
 * fits. */
#define CONN_PROTO_STATE 560

struct conn {
	__u64 sk;   /* struct sock *: names the connection; first, for
		     * capture_conn_open */
	__u64 file; /* struct file *: fd reuse, under syscall hooks */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 role;	    /* enum sonde_role */
	__u8 proto;	    /* enum sonde_proto of its (plain) bytes */
	__u8 tls;	    /* OpenSSL carries it: the socket sees ciphertext */
	__u8 process_noted; /* its process is in the procs map */
	__u8 tries;	    /* calls no detector claimed (PROTO_TRIES) */
	/* The OpenSSL object on it is known to use this socket, through a
	 * syscall inside one of its calls: its calls need name it no more. */
	__u8 tls_bound;
	/* The name of the task that first used the connection, for its
	 * records: here it shares a cache line each record reads anyway,
	 * where the task's own copy is usually a cache miss. */
	char comm[SONDE_COMM_LEN];
	/* The state of the protocol in proto, laid out by proto/<p>.bpf.h;
	 * zeroed when the connection is tracked. */
	__u8 proto_state[CONN_PROTO_STATE] __attribute__((aligned(8)));
};

/* Who owns a TCP socket, so that events raised in softirq context (a
 * SYN-ACK or a reset arriving, a retransmit timer) can be attributed. */
struct sock_owner {
	__u64 syn_ns; /* SYN sent, while a client connects */
	/* 0: accepted, no process has used it yet, and no listener known */
	__u32 tgid;
	__u32 fd; /* the owner's fd for it, once it has read or written */
	/* The peer's port: an entry whose port is not the socket's is a
	 * freed socket's, whose close the kernel ran while another BPF
	 * program held the CPU (missed: sonde_program_recursion_misses),
	 * found again in reused memory. */
	__u16 dport;
	__u8 role;   /* enum sonde_role */
	__u8 active; /* counted as an active connection by the daemon */
	__u8 closed; /* reached TCP_CLOSE: a reset may still follow */
	/* Accepted, no process has used it yet: tgid is the listener's
	 * (struct sonde_listener), until the first process to use it. */
	__u8 by_listener;
	__u8 pad[2];
	char comm[SONDE_COMM_LEN];
};

/* The network namespace sk lives in, as its inode number. */
static __always_inline __u32 sock_netns(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* Whether a socket listens on c's local port in c's namespace: c was
 * accepted from it (a client's local port is its own). */
static __always_inline bool conn_port_listens(const struct conn *c)
{
	struct sonde_listener_key k = {
		.netns = sock_netns((struct sock *)c->sk),
		.port = c->sport,
	};

	return bpf_map_lookup_elem(&listeners, &k) != NULL;
}

/* Template for a new connection: inserted, then filled in place. */
static const struct conn zero_conn;

/* Why conn_find found no connection. The TLS bookkeeping cares: a syscall
 * inside an OpenSSL call on a socket sonde does not trace says the call is
 * not ours; one on a file, pipe or eventfd (a key log, the time zone file,
 * an event loop's wakeup) says nothing about the call's socket. */
enum skip_why {
	SKIP_NOT_SOCKET = 1,
	SKIP_SOCKET = 2,  /* not TCP, or filtered out */
	SKIP_IGNORED = 3, /* the selection ignores the process */
};

/* Whether a call that found no connection (skipped) is of no interest at
 * all, not even to the TLS bookkeeping. */
static __always_inline bool skip_entirely(__u8 skipped)
{
	return skipped == SKIP_NOT_SOCKET || skipped == SKIP_IGNORED;
}

/* The open file behind fd in the current process, or NULL. The walk to
 * the fd table is made of direct loads from the BTF-typed task (no helper
 * call each); only the table slot, at a variable index, needs
 * bpf_probe_read_kernel. */
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

static __always_inline void skip_fd(struct conn_key *key, __u8 why)
{
	bpf_map_update_elem(&skip_fds, key, &why, BPF_ANY);
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
	event_submit(ev);
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
 * pre-forked server) moves to that one. A global function: verified
 * once, not at every place a connection is tracked. */
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
 * remembered in skip_fds. The caller has checked the process's verdict. */
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
 * does not trace, with *skipped saying why (enum skip_why; 0 when a
 * connection is returned). Under socket hooks, sk is the syscall's socket,
 * of any kind: a connection whose socket is another one is tracked
 * afresh, so a closed fd's number reused is a new connection. sk is NULL
 * for the TLS probes, which make no syscall: they take the connection
 * known on the fd as it is (a reused fd's handshake, made of syscalls,
 * has tracked it afresh before any plaintext), and the fd's socket only
 * for one not known yet. The common case, a connection known already,
 * costs one lookup: no verdict, no fd table. */
static __always_inline struct conn *conn_find(struct conn_key *key,
					      struct sock *sk, __u8 *skipped)
{
	struct conn *c = bpf_map_lookup_elem(&conns, key);
	__u8 *why;

	*skipped = 0;
	if (socket_hooks) {
		if (c && (!sk || c->sk == (__u64)sk))
			return c;
		if (process_verdict(key->tgid) == SONDE_VERDICT_IGNORE) {
			*skipped = SKIP_IGNORED;
			return NULL;
		}
		/* Only another socket has its kind read from the kernel. */
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
	if (why) {
		*skipped = *why;
		return NULL;
	}
	if (process_verdict(key->tgid) == SONDE_VERDICT_IGNORE) {
		*skipped = SKIP_IGNORED;
		return NULL;
	}
	c = conn_track(key, NULL, ROLE_UNKNOWN);
	if (c)
		return c;
	/* Not in skip_fds after conn_track: a TCP socket the connection
	 * map had no room for. */
	why = bpf_map_lookup_elem(&skip_fds, key);
	*skipped = why ? *why : SKIP_SOCKET;
	return NULL;
}

/* Under syscall hooks, an fd can be closed behind our back (dup2 onto it,
 * close_range, exec with O_CLOEXEC) and reused. Checked once per
 * exchange, not once per syscall: the open file behind the fd must still
 * be the one we saw. Socket hooks check the socket at every call. Returns
 * c, or the connection tracked afresh (NULL when the fd is no longer one
 * sonde traces). */
static __always_inline struct conn *conn_revalidate(struct conn_key *key,
						    struct conn *c, __u8 role)
{
	if (socket_hooks || c->file == (__u64)file_of_fd(key->fd))
		return c;
	return conn_track(key, NULL, role);
}

/* Whether bytes read (is_read) or written on c go from server to client:
 * a server writes them, a client reads them. */
static __always_inline __u32 to_client(const struct conn *c, bool is_read)
{
	return is_read != (c->role == ROLE_SERVER);
}

/* Once per connection, not per exchange: the process gets its exit and
 * exec reported. */
static __always_inline void note_process(__u32 tgid, struct conn *c)
{
	if (!c->process_noted && note_tgid(tgid))
		c->process_noted = 1;
}

#endif
