/* TCP lifecycle: who owns each socket (so that what the kernel does in
 * softirq context, a SYN-ACK or a reset arriving, a retransmit timer, can
 * be charged to a process), connect durations and results, active
 * connections, resets and retransmits; under socket hooks, who listens
 * where, so that an accepted connection is charged to its server from its
 * passive open. */
#ifndef SONDE_CORE_TCP_BPF_H
#define SONDE_CORE_TCP_BPF_H

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
	event_submit(ev);
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
static __always_inline void
tcp_state_changed(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 key = (__u64)ctx->skaddr;
	struct sock_owner *o;

	if (ctx->protocol != IPPROTO_TCP)
		return;
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
		return;
	}
	/* A connection's socket is born a copy of its listener: its first
	 * move, to SYN_RECV, is from LISTEN too. The listeners are kept
	 * under both hook sets: a database connection open before sonde
	 * learns its side from them. */
	if (ctx->newstate == TCP_LISTEN ||
	    (ctx->oldstate == TCP_LISTEN && ctx->newstate == TCP_CLOSE)) {
		listener_changed(ctx);
		return;
	}
	if (!o) {
		if (socket_hooks && ctx->oldstate == TCP_SYN_RECV &&
		    ctx->newstate == TCP_ESTABLISHED)
			server_established(ctx);
		return;
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
	 * the socket (tcp_destroyed). */
	if (ctx->newstate == TCP_CLOSE)
		o->closed = 1;
}

/* A retransmit or a reset on sk: charged to its owner. */
static __always_inline void tcp_sock_event(const void *sk, __u8 what,
					   __u8 detail)
{
	__u64 key = (__u64)sk;
	struct sock_owner *o;

	if (!key)
		return;
	o = bpf_map_lookup_elem(&socks, &key);
	/* Only a reset can follow the move to CLOSE. An accepted socket
	 * with no listener known that no process has used yet has no one to
	 * charge. */
	if (o && o->tgid && (!o->closed || what == SONDE_TCP_RESET))
		tcp_event(key, o, what, detail);
}

/* The last the kernel does with a TCP socket (nothing, a reset included,
 * follows). */
static __always_inline void tcp_destroyed(__u64 key)
{
	struct sock_owner *o = bpf_map_lookup_elem(&socks, &key);

	if (o)
		owner_forget(key, o);
}

#endif
