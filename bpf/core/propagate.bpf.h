/* --trace-propagation: a W3C traceparent header added to outgoing
 * plaintext HTTP/1.x requests that carry none, so that the service called
 * joins the caller's trace without an SDK in either. Done at the socket
 * layer: a traced process's memory cannot be written here
 * (bpf_probe_write_user is refused under lockdown), but a message on its
 * way from sendmsg to TCP can be, by an sk_msg program.
 *
 * propagate_sock_op (sock_ops, on the root of cgroup v2) puts every
 * client TCP socket into prop_socks when its connect completes;
 * propagate_msg (sk_msg, on prop_socks) sees each message sent on one
 * before TCP does. A message that starts a request whose whole head it
 * can check and that has no traceparent field gets
 *
 *     traceparent: 00-<32 hex trace id>-<16 hex span id>-01\r\n
 *
 * right after its request line, and the ids go to the daemon, whose
 * CLIENT span of that request takes them. Anything else is sent as it
 * was; a request not changed is counted by why in prop_results (enum
 * sonde_propagation_result).
 *
 * Spec: https://www.w3.org/TR/trace-context/#traceparent-header
 * Loaded and attached only with the option (user/kernel/propagate.c). */
#ifndef SONDE_CORE_PROPAGATE_BPF_H
#define SONDE_CORE_PROPAGATE_BPF_H

/* Bytes of a request head checked for a traceparent: 2 KiB holds the
 * heads services send each other (a bearer token included); a longer one
 * is sent unchanged and counted. The scan runs once per request, 8 bytes
 * a step, and stops at the blank line. */
#define PROP_HEAD_MAX 2048
/* A method token and its space: "OPTIONS " is 8, 16 is room to spare. */
#define PROP_METHOD_MAX 16
/* The shortest request: "GET / HTTP/1.0\r\n\r\n". */
#define PROP_MIN_REQUEST 18
/* A request line ends in " HTTP/1.x\r\n"; the shortest is "M / HTTP/1.x"
 * (12 bytes) then CR: its LF is at 13 at least. */
#define PROP_MIN_LF 13
/* "traceparent: " 13, "00-" 3, 32 + 1 + 16 hex and dashes, "-01\r\n" 5. */
#define PROP_LINE_LEN 70
#define PROP_TRACE_AT 16 /* of the trace id's hex in the line */
#define PROP_SPAN_AT 49	 /* of the span id's hex */

static __always_inline void count_propagation(__u32 result)
{
	__u64 *n = bpf_map_lookup_elem(&prop_results, &result);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* sock_ops: a connect completed (active open): its socket joins
 * prop_socks, where the sk_msg program sees what it sends, until the
 * kernel closes it (the map lets go of it then). Connections opened
 * before sonde attached are not followed. */
static __always_inline void propagate_sock_op(struct bpf_sock_ops *skops)
{
	__u64 cookie;

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ||
	    (skops->family != AF_INET && skops->family != AF_INET6))
		return;
	/* --port: only connections with that local or peer port. */
	if (filter_port && skops->local_port != filter_port &&
	    bpf_ntohl(skops->remote_port) != filter_port)
		return;
	cookie = bpf_get_socket_cookie(skops);
	if (bpf_sock_hash_update(skops, &prop_socks, &cookie, BPF_NOEXIST))
		count_propagation(SONDE_PROP_CONN_UNTRACKED);
}

/* Whether data starts with a method token (upper-case letters) and a
 * space: "GET /", "POST /x". */
static __always_inline bool prop_method(const __u8 *data, const void *end)
{
	for (__u32 i = 0; i < PROP_METHOD_MAX; i++) {
		const __u8 *p = data + i;

		if ((const void *)(p + 1) > end)
			return false;
		if (*p == ' ')
			return i > 0;
		if (*p < 'A' || *p > 'Z')
			return false;
	}
	return false;
}

/* Whether the request line ends with the LF at offset lf of data (in
 * the checked part): " HTTP/1.x\r" before it. */
static __always_inline bool prop_version_ends_at(const __u8 *data,
						 const void *end, __u32 lf)
{
	/* "HTTP/1." as a little-endian word, its eighth byte masked. */
	const __u64 http1 = 0x002e312f50545448ULL;
	const __u8 *q;
	__u32 at;

	if (lf < PROP_MIN_LF)
		return false;
	/* An offset from data of its own, bounded where it is used: the
	 * verifier refuses a pointer below the LF's, which is what the
	 * compiler would make of it. */
	at = lf - 10;
	barrier_var(at);
	if (at >= PROP_HEAD_MAX)
		return false;
	q = data + at;
	if ((const void *)(q + 10) > end)
		return false;
	return q[0] == ' ' &&
	       (*(const __u64 *)(q + 1) & 0x00ffffffffffffffULL) == http1 &&
	       q[8] >= '0' && q[8] <= '9' && q[9] == '\r';
}

/* Whether the 12 bytes at p are "traceparent:", in any case. OR-ing 0x20
 * lower-cases a letter and leaves ':' as it is. */
static __always_inline bool prop_is_traceparent(const __u8 *p)
{
	const __u64 trace = 0x7261706563617274ULL; /* "tracepar" */
	const __u32 ent = 0x3a746e65;		   /* "ent:" */

	return (*(const __u64 *)p | 0x2020202020202020ULL) == trace &&
	       (*(const __u32 *)(p + 8) | 0x20202020) == ent;
}

enum prop_scan {
	PROP_SCAN_MORE,	       /* (a step's: go on) */
	PROP_SCAN_ABSENT,      /* a whole head with no traceparent */
	PROP_SCAN_PRESENT,     /* it has one */
	PROP_SCAN_NOT_REQUEST, /* its first line is not a request line */
	PROP_SCAN_SHORT,       /* the bytes ran out before the blank line */
	PROP_SCAN_LONG,	       /* PROP_HEAD_MAX bytes and no blank line */
};

/* One byte of the head, at offset i: at an LF, the first one ends the
 * request line (checked; *line_end set past it), and each one starts a
 * header line, or the blank line that ends the head. */
static __always_inline enum prop_scan prop_scan_at(const __u8 *data,
						   const void *end, __u32 i,
						   bool *in_head,
						   __u32 *line_end)
{
	const __u8 *p;

	if (i >= PROP_HEAD_MAX)
		return PROP_SCAN_LONG;
	p = data + i;
	if ((const void *)(p + 1) > end)
		return PROP_SCAN_SHORT;
	if (*p != '\n')
		return PROP_SCAN_MORE;
	if (!*in_head) {
		if (!prop_version_ends_at(data, end, i))
			return PROP_SCAN_NOT_REQUEST;
		*line_end = i + 1;
		*in_head = true;
	}
	if ((const void *)(p + 3) <= end && p[1] == '\r' && p[2] == '\n')
		return PROP_SCAN_ABSENT;
	if ((const void *)(p + 13) <= end && prop_is_traceparent(p + 1))
		return PROP_SCAN_PRESENT;
	return PROP_SCAN_MORE;
}

/* Whether any of the 8 bytes in w is an LF: the zero-byte test
 * (Hacker's Delight, 6-1) on w with every LF turned to zero. */
static __always_inline bool prop_has_lf(__u64 w)
{
	__u64 x = w ^ 0x0a0a0a0a0a0a0a0aULL;

	return (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
}

/* The 8 bytes of the head from offset at: at once when none is an LF
 * (most words), byte by byte otherwise, and for the last few. */
static __always_inline enum prop_scan prop_scan_word(const __u8 *data,
						     const void *end, __u32 at,
						     bool *in_head,
						     __u32 *line_end)
{
	const __u8 *p;
	enum prop_scan r;

	if (at >= PROP_HEAD_MAX)
		return PROP_SCAN_LONG;
	p = data + at;
	if ((const void *)(p + 8) <= end && !prop_has_lf(*(const __u64 *)p))
		return PROP_SCAN_MORE;
	for (__u32 j = 0; j < 8; j++) {
		r = prop_scan_at(data, end, at + j, in_head, line_end);
		if (r != PROP_SCAN_MORE)
			return r;
	}
	return PROP_SCAN_MORE;
}

/* Walks the head in data..end (linear) to its blank line, a word a step:
 * checks the request line, finds where it ends (*line_end: just past its
 * LF) and looks for a traceparent field at the start of every header
 * line. */
static __always_inline enum prop_scan
prop_scan(const __u8 *data, const void *end, __u32 *line_end)
{
	enum prop_scan r = PROP_SCAN_LONG;
	struct bpf_iter_num it;
	bool in_head = false;
	int *w;

	bpf_iter_num_new(&it, 0, PROP_HEAD_MAX / 8);
	while ((w = bpf_iter_num_next(&it))) {
		r = prop_scan_word(data, end, *w * 8, &in_head, line_end);
		if (r != PROP_SCAN_MORE)
			break;
		r = PROP_SCAN_LONG;
	}
	bpf_iter_num_destroy(&it);
	return r;
}

/* Whether a request of process tgid may be changed: not sonde's own
 * (its OTLP export), and one sonde traces (--pid, the selection's
 * verdict), so that the CLIENT span the ids name exists. */
static __always_inline bool prop_process_wanted(__u32 tgid)
{
	__u8 *v;

	if (process_excluded(tgid))
		return false;
	if (!select_enabled)
		return true;
	v = bpf_map_lookup_elem(&verdicts, &tgid);
	return !v || *v != SONDE_VERDICT_IGNORE;
}

/* n as two lower-case hex digits at out. */
static __always_inline void prop_hex(char *out, __u8 n)
{
	__u8 hi = n >> 4, lo = n & 0xf;

	out[0] = hi + (hi < 10 ? '0' : 'a' - 10);
	out[1] = lo + (lo < 10 ? '0' : 'a' - 10);
}

/* The header line for the ids in ev, into line (PROP_LINE_LEN bytes). */
static __always_inline void prop_line(char *line,
				      const struct sonde_trace_inject_event *ev)
{
	__builtin_memcpy(line, "traceparent: 00-", 16);
	for (__u32 i = 0; i < sizeof(ev->trace_id); i++)
		prop_hex(line + PROP_TRACE_AT + 2 * i, ev->trace_id[i]);
	line[PROP_SPAN_AT - 1] = '-';
	for (__u32 i = 0; i < sizeof(ev->span_id); i++)
		prop_hex(line + PROP_SPAN_AT + 2 * i, ev->span_id[i]);
	__builtin_memcpy(line + PROP_LINE_LEN - 5, "-01\r\n", 5);
}

/* Fresh ids into ev: random, and never all zero (which the spec
 * forbids). */
static __always_inline void prop_new_ids(struct sonde_trace_inject_event *ev)
{
	__u32 w[6];

	for (__u32 i = 0; i < 6; i++)
		w[i] = bpf_get_prandom_u32();
	w[3] |= !(w[0] | w[1] | w[2] | w[3]);
	w[5] |= !(w[4] | w[5]);
	__builtin_memcpy(ev->trace_id, w, sizeof(ev->trace_id));
	__builtin_memcpy(ev->span_id, &w[4], sizeof(ev->span_id));
}

/* The trace of the request the sending thread serves, into ev, when it
 * serves one at a time (bpf/proto/http1.bpf.h, serving_begin): its call
 * joins that trace. */
static __always_inline void prop_serving_trace(struct sonde_trace_inject_event *ev)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_serving *s = bpf_map_lookup_elem(&serving, &id);

	if (s && s->open && !s->concurrent)
		__builtin_memcpy(ev->trace_id, s->trace_id,
				 sizeof(ev->trace_id));
}

/* Inserts the line for the ids in ev at offset at of msg. The pushed
 * bytes are a scatterlist element of their own, on a page not zeroed, so
 * pulling exactly them copies nothing and does not fail; were it to,
 * they are taken out again (the whole element: nothing to allocate).
 * Returns 0, or the helper's -errno. */
static __always_inline long
prop_insert(struct sk_msg_md *msg, __u32 at,
	    const struct sonde_trace_inject_event *ev)
{
	char line[PROP_LINE_LEN];
	void *data, *end;
	long err;

	prop_line(line, ev);
	err = bpf_msg_push_data(msg, at, PROP_LINE_LEN, 0);
	if (err)
		return err;
	/* The pushed bytes as msg's data: data then points at them. */
	err = bpf_msg_pull_data(msg, at, at + PROP_LINE_LEN, 0);
	data = (void *)(long)msg->data;
	end = (void *)(long)msg->data_end;
	if (err || data + PROP_LINE_LEN > end) {
		bpf_msg_pop_data(msg, at, PROP_LINE_LEN, 0);
		return err ? err : -E2BIG;
	}
	__builtin_memcpy(data, line, PROP_LINE_LEN);
	return 0;
}

/* The head's first bytes linear in msg's data: *data and *end, or false
 * when they cannot be (a message not a request is not counted). A
 * message's first element is usually the whole of what one send
 * copied; a page boundary splits it now and then, and a sendfile page is
 * not readable in place at all. */
static __always_inline bool prop_linear(struct sk_msg_md *msg, __u32 want,
					const __u8 **data, const void **end)
{
	*data = (const __u8 *)(long)msg->data;
	*end = (const void *)(long)msg->data_end;
	if ((const void *)(*data + PROP_METHOD_MAX) > *end) {
		if (bpf_msg_pull_data(msg, 0, PROP_METHOD_MAX, 0))
			return false;
		*data = (const __u8 *)(long)msg->data;
		*end = (const void *)(long)msg->data_end;
	}
	if (!prop_method(*data, *end))
		return false;
	if ((const void *)(*data + want) <= *end)
		return true;
	if (bpf_msg_pull_data(msg, 0, want, 0)) {
		count_propagation(SONDE_PROP_PULL_FAILED);
		return false;
	}
	*data = (const __u8 *)(long)msg->data;
	*end = (const void *)(long)msg->data_end;
	return true;
}

/* sk_msg: a message sent on a client socket, before TCP sees it. */
static __always_inline void propagate_msg(struct sk_msg_md *msg)
{
	__u32 size = msg->size, want, line_end = 0, tgid;
	struct sonde_trace_inject_event *ev;
	struct ring_slot slot;
	const __u8 *data;
	const void *end;

	if (size < PROP_MIN_REQUEST)
		return;
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (!prop_process_wanted(tgid))
		return;
	want = size < PROP_HEAD_MAX ? size : PROP_HEAD_MAX;
	if (!prop_linear(msg, want, &data, &end))
		return;
	switch (prop_scan(data, end, &line_end)) {
	case PROP_SCAN_ABSENT:
		break;
	case PROP_SCAN_PRESENT:
		count_propagation(SONDE_PROP_PRESENT);
		return;
	case PROP_SCAN_MORE: /* (not returned) */
	case PROP_SCAN_NOT_REQUEST:
		return;
	case PROP_SCAN_SHORT:
		/* Past the checked bytes, or past this send. */
		count_propagation(size > want ? SONDE_PROP_HEAD_LONG :
						SONDE_PROP_HEAD_SPLIT);
		return;
	case PROP_SCAN_LONG:
		count_propagation(SONDE_PROP_HEAD_LONG);
		return;
	}
	/* The record first: ids the daemon is not told of would name a
	 * parent span that never comes. */
	ev = ring_reserve(&slot, sizeof(*ev));
	if (!ev) {
		count_propagation(SONDE_PROP_RING_FULL);
		return;
	}
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = tgid;
	ev->hdr.kind = SONDE_EV_TRACE_INJECT;
	ev->hdr.pad = 0;
	ev->sport = msg->local_port;
	ev->dport = bpf_ntohl(msg->remote_port);
	ev->pad = 0;
	prop_new_ids(ev);
	prop_serving_trace(ev);
	if (prop_insert(msg, line_end, ev)) {
		ring_discard(&slot);
		count_propagation(SONDE_PROP_PUSH_FAILED);
		return;
	}
	ring_submit(&slot);
	count_propagation(SONDE_PROP_INJECTED);
}

#endif
