/* HTTP/1.0 and HTTP/1.1 (RFC 9112, https://www.rfc-editor.org/rfc/rfc9112).
 *
 * Server side: an exchange starts when a read returns bytes that look like
 * the start of a request line, and ends when a write starts with a final
 * status line. Client side, the other way round: it starts when a write
 * sends a request line and ends when a read returns a status line. One
 * record per exchange carries both timestamps and the first bytes of the
 * request and of the response; the daemon (user/proto/http1.c) parses
 * them. Interim 1xx responses do not end an exchange. A server may answer
 * pipelined requests: each response is the next request's, and
 * pipeline_idx says which head of the capture it answers.
 *
 * Detector: http1_detect. State: struct http1_conn, in the connection's
 * protocol state. Handler: http1_data. */
#ifndef SONDE_PROTO_HTTP1_BPF_H
#define SONDE_PROTO_HTTP1_BPF_H

/* "HTTP/1.1 200": what a status line needs to be recognised. */
#define SONDE_STATUS_LEN 12
/* Bytes searched for the end of an interim (1xx) head, and how many heads
 * (interim ones, then the final one) are looked at in one write. */
#define SONDE_HEAD_PEEK 128
#define SONDE_MAX_HEADS 2

enum http1_phase {
	PHASE_IDLE = 0,
	PHASE_REQUEST,	/* request bytes seen, no response head yet */
	PHASE_RESPONSE, /* response head seen */
};

struct http1_conn {
	__u64 start_ns; /* exchange start */
	__u16 req_len;
	__u8 phase; /* enum http1_phase */
	__u8 pipeline_idx;
	__u8 resp_part_len; /* bytes in resp_part */
	__u8 pad[3];
	/* The start of a status line that came in pieces shorter than one
	 * ("HTTP/1.1 2"), or read a byte at a time: kept until it is whole. */
	char resp_part[SONDE_STATUS_LEN];
	/* The capture is the first SONDE_REQ_CAP bytes. The second half lets
	 * the verifier see that a copy of at most SONDE_REQ_CAP bytes at an
	 * offset below SONDE_REQ_CAP stays in bounds; a server reads the
	 * start of a new request there before it becomes the capture. */
	char req[2 * SONDE_REQ_CAP];
};

_Static_assert(sizeof(struct http1_conn) <= CONN_PROTO_STATE,
	       "HTTP/1's state fits in a connection's protocol state");

/* c's HTTP/1 state. */
static __always_inline struct http1_conn *http1_of(struct conn *c)
{
	return (struct http1_conn *)c->proto_state;
}

/* Room to look for the final head after an interim one: off the stack,
 * which the handler shares with its callers. */
struct http1_scratch {
	char head[SONDE_HEAD_PEEK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http1_scratch);
} http1_scratch SEC(".maps");

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

/* The detector: a connection's first bytes p[0..n) are HTTP/1 when they
 * start a request line ("GET / HTTP/1.1", or a piece of one: "GE") or a
 * status line ("HTTP/1.1 200", or "HTTP/1."), the latter when sonde came
 * in between a request and its response. */
static __always_inline bool http1_detect(const char *p, __u32 n)
{
	return looks_like_request(p, n) || looks_like_status_line(p, n) ||
	       could_start_status_line(p, n);
}

/* "HTTP/1.1 100 Continue", 102 Processing, 103 Early Hints: the final
 * response is still to come. 101 Switching Protocols is final. */
static __always_inline bool is_interim_status(const char *p)
{
	return p[9] == '1' && p[10] == '0' &&
	       (p[11] == '0' || p[11] == '2' || p[11] == '3');
}

/* Copies up to SONDE_REQ_CAP bytes from the start of a user buffer into
 * the second half of h->req, which the capture never reaches; returns
 * how many. */
static __always_inline __u32 read_request_start(struct http1_conn *h,
						const void *src, long n)
{
	__u32 len = n > SONDE_REQ_CAP ? SONDE_REQ_CAP : n;

	barrier_var(len);
	if (len > SONDE_REQ_CAP ||
	    bpf_probe_read_user(h->req + SONDE_REQ_CAP, len, src))
		return 0;
	return len;
}

/* Makes the got bytes read_request_start put in the second half of
 * h->req the capture. Only as many lines as they fill are copied, in
 * three sizes: a whole capture's copy cost more than the read it saves. */
static __always_inline void req_take_start(struct http1_conn *h, __u32 got)
{
	const char *start = h->req + SONDE_REQ_CAP;

	if (got <= SONDE_REQ_CAP / 4)
		__builtin_memcpy(h->req, start, SONDE_REQ_CAP / 4);
	else if (got <= SONDE_REQ_CAP / 2)
		__builtin_memcpy(h->req, start, SONDE_REQ_CAP / 2);
	else
		__builtin_memcpy(h->req, start, SONDE_REQ_CAP);
	h->req_len = got;
}

/* Appends the bytes at buf to the request captured in h, up to cap
 * (SONDE_REQ_CAP at most) in all. */
static __always_inline void req_append(struct http1_conn *h, const void *buf,
				       long n, __u32 cap)
{
	__u32 off = h->req_len;
	__u32 len = n > SONDE_REQ_CAP ? SONDE_REQ_CAP : n;

	if (off >= cap || cap > SONDE_REQ_CAP)
		return;
	barrier_var(len);
	if (len > SONDE_REQ_CAP)
		return;
	if (off + len > cap)
		len = cap - off;
	/* off < CAP and len <= CAP: the copy stays inside req[2 * CAP]. */
	if (bpf_probe_read_user(&h->req[off], len, buf))
		return;
	h->req_len = off + len;
}

/* Set when traces are on: a client's request head is kept like a
 * server's, for the traceparent it may carry. */
const volatile bool client_heads = false;

/* How much of the request a connection keeps: a client's series need
 * only its method. */
static __always_inline __u32 req_cap(const struct conn *c)
{
	return c->role == ROLE_CLIENT && !client_heads ? SONDE_CLIENT_REQ_CAP :
							 SONDE_REQ_CAP;
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
	__u32 zero = 0, len, end;
	long pos = 0;
	char *head;

	head = bpf_map_lookup_elem(&http1_scratch, &zero);
	if (!head)
		return 0;
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

/* ---- --trace-propagation: the trace a serving thread's calls carry -- */

/* "traceparent:" (any case) and the value's start: the W3C header. */
#define TP_NAME_LEN 12
/* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TP_VALUE_LEN 55

static __always_inline int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is not valid in a traceparent */
}

/* Whether p (TP_NAME_LEN bytes) is "traceparent:", in any case. */
static __always_inline bool is_traceparent_name(const char *p)
{
	const char name[TP_NAME_LEN] = "traceparent:";

	for (int i = 0; i < TP_NAME_LEN; i++)
		if ((p[i] | (p[i] >= 'A' && p[i] <= 'Z' ? 0x20 : 0)) !=
		    name[i])
			return false;
	return true;
}

/* Where a "traceparent:" line can start in a capture: after an LF, with
 * room for the name, a space and the value before the capture's end. */
#define TP_LAST_START (SONDE_REQ_CAP - TP_NAME_LEN - 1 - TP_VALUE_LEN)

/* Offset of the first "traceparent:" line in the request head
 * h->req[0..req_len), or 0 when none. */
static __always_inline __u32 traceparent_line(const struct http1_conn *h)
{
	__u32 n = h->req_len < SONDE_REQ_CAP ? h->req_len : SONDE_REQ_CAP;
	struct bpf_iter_num it;
	__u32 found = 0;
	int *ip;

	bpf_iter_num_new(&it, 1, TP_LAST_START + 1);
	while ((ip = bpf_iter_num_next(&it))) {
		__u32 i = *ip;

		if (i < 1 || i > TP_LAST_START ||
		    i + TP_NAME_LEN + 1 + TP_VALUE_LEN > n)
			break;
		if (h->req[i - 1] == '\n' && is_traceparent_name(&h->req[i])) {
			found = i;
			break;
		}
	}
	bpf_iter_num_destroy(&it);
	return found;
}

/* Reads the trace id of a version-00 traceparent field in the request
 * head h into out, as the daemon reads it (trace_parse_traceparent):
 * false when there is none, or it is not well formed, or names the
 * all-zero trace. */
static __always_inline bool head_trace_id(const struct http1_conn *h,
					  __u8 out[16])
{
	__u32 at = traceparent_line(h);
	const char *v;
	__u8 any = 0;

	if (!at || at > TP_LAST_START)
		return false;
	v = &h->req[at + TP_NAME_LEN];
	if (*v == ' ' || *v == '\t')
		v++;
	if (v[0] != '0' || v[1] != '0' || v[2] != '-' || v[35] != '-')
		return false;
	for (int k = 0; k < 16; k++) {
		int hi = hex_nibble(v[3 + 2 * k]);
		int lo = hex_nibble(v[4 + 2 * k]);

		if (hi < 0 || lo < 0)
			return false;
		out[k] = (__u8)(hi << 4 | lo);
		any |= out[k];
	}
	return any != 0;
}

/* A server thread starts serving the request in h on key's connection:
 * the trace its calls carry is the request's own, or one derived from
 * what the daemon also knows of it. A thread that starts a request with
 * one still open serves many at once: marked, its calls get fresh
 * traces. */
static __always_inline void serving_begin(const struct conn_key *key,
					  const struct http1_conn *h)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_serving fresh = {}, *s;

	s = bpf_map_lookup_elem(&serving, &id);
	if (!s) {
		bpf_map_update_elem(&serving, &id, &fresh, BPF_ANY);
		s = bpf_map_lookup_elem(&serving, &id);
		if (!s)
			return;
	} else if (s->open) {
		s->concurrent = 1;
	}
	if (!head_trace_id(h, s->trace_id))
		sonde_derived_trace_id(trace_key0, trace_key1, key->tgid,
				       key->fd, h->start_ns, s->trace_id);
	s->open = 1;
}

/* The serving thread wrote its response. */
static __always_inline void serving_end(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_serving *s = bpf_map_lookup_elem(&serving, &id);

	if (s)
		s->open = 0;
}

/* Reserves an exchange record with room for req_room bytes of request
 * and copies them from h. */
#define EXCHANGE_RESERVE(slot, h, req_room)                                 \
	({                                                                  \
		struct sonde_http_event *e_ =                               \
			ring_reserve(slot, SONDE_EXCHANGE_BYTES(req_room)); \
		if (e_)                                                     \
			__builtin_memcpy(e_->req, (h)->req, req_room);      \
		e_;                                                         \
	})

/* Sends the exchange in h, on c, whose final status line is
 * status[0..len). The record is only as long as the request bytes need,
 * in four sizes: a 40-byte GET travels in 176 bytes, where the longest
 * record is 368. */
static __always_inline void emit_exchange(struct conn_key *key, struct conn *c,
					  struct http1_conn *h,
					  const char *status, __u32 len)
{
	struct sonde_http_event *ev;
	__u16 req_len = h->req_len;
	struct ring_slot slot;

	if (req_len <= SONDE_CLIENT_REQ_CAP)
		ev = EXCHANGE_RESERVE(&slot, h, SONDE_CLIENT_REQ_CAP);
	else if (req_len <= SONDE_REQ_CAP / 4)
		ev = EXCHANGE_RESERVE(&slot, h, SONDE_REQ_CAP / 4);
	else if (req_len <= SONDE_REQ_CAP / 2)
		ev = EXCHANGE_RESERVE(&slot, h, SONDE_REQ_CAP / 2);
	else
		ev = EXCHANGE_RESERVE(&slot, h, SONDE_REQ_CAP);
	if (!ev)
		return;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = key->tgid;
	ev->hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	ev->hdr.pad = 0;
	ev->start_ns = h->start_ns;
	ev->end_ns = ev->hdr.ts_ns;
	__builtin_memcpy(ev->saddr, c->saddr, sizeof(ev->saddr));
	__builtin_memcpy(ev->daddr, c->daddr, sizeof(ev->daddr));
	ev->fd = key->fd;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->sport = c->sport;
	ev->dport = c->dport;
	ev->family = c->family;
	ev->req_len = req_len;
	ev->resp_len = len;
	ev->pipeline_idx = h->pipeline_idx;
	ev->role = c->role;
	__builtin_memcpy(ev->comm, c->comm, SONDE_COMM_LEN);
	__builtin_memcpy(ev->resp, status, SONDE_RESP_CAP);
	ring_submit(&slot);
	note_process(key->tgid, c);
	if (propagation_on && c->role == ROLE_SERVER)
		serving_end();
}

/* Bytes going from client to server (read by a server, written by a
 * client). Outside an exchange, a request line starts one; within it,
 * they are the rest of the head, pipelined requests or a body. */
static __always_inline void on_request_bytes(struct conn_key *key,
					     struct conn *c,
					     struct http1_conn *h,
					     const void *buf, long n)
{
	char peek[SONDE_PEEK];
	__u32 got;

	if (h->phase == PHASE_REQUEST) {
		req_append(h, buf, n, req_cap(c));
		return;
	}
	/* A server's capture is read at once into the unused half of
	 * h->req: one read from user memory, not a peek and then another.
	 * A client's capture is what it peeks, or, with traces on, its
	 * head like a server's. */
	if (c->role == ROLE_SERVER || client_heads) {
		got = read_request_start(h, buf, n);
		if (!looks_like_request(h->req + SONDE_REQ_CAP, got))
			return;
		req_take_start(h, got);
	} else {
		got = peek_user(peek, buf, n);
		if (!looks_like_request(peek, got))
			return;
		__builtin_memcpy(h->req, peek, SONDE_PEEK);
		h->req_len = got;
	}
	h->phase = PHASE_REQUEST;
	h->start_ns = bpf_ktime_get_ns();
	h->pipeline_idx = 0;
	h->resp_part_len = 0;
	if (propagation_on && c->role == ROLE_SERVER)
		serving_begin(key, h);
}

/* The first bytes of a response that continues the status line begun
 * in h->resp_part: that start, then what buf adds, in peek (room for two
 * peeks: the start is shorter than a status line, and the verifier sees
 * the copy in bounds). Returns how many, at most SONDE_PEEK, like
 * peek_user; the part is used up. */
static __always_inline __u32 resume_status_line(struct http1_conn *h,
						const void *buf, long n,
						char *peek)
{
	__u32 have = h->resp_part_len, more = n > SONDE_PEEK ? SONDE_PEEK : n;

	h->resp_part_len = 0;
	__builtin_memcpy(peek, h->resp_part, SONDE_STATUS_LEN);
	if (have >= SONDE_STATUS_LEN)
		return 0;
	barrier_var(more);
	if (more > SONDE_PEEK || bpf_probe_read_user(peek + have, more, buf))
		return have;
	return have + more > SONDE_PEEK ? SONDE_PEEK : have + more;
}

/* "CONNECT host:443 HTTP/1.1": the request of a tunnel. */
static __always_inline bool is_connect(const char *req)
{
	const char m[] = "CONNECT ";

	for (__u32 i = 0; i < sizeof(m) - 1; i++)
		if (req[i] != m[i])
			return false;
	return true;
}

/* Whether the final status line in status ends HTTP/1 on the connection:
 * "101 Switching Protocols" (WebSocket, h2c), or a 2xx to a CONNECT (a
 * tunnel, usually of TLS). What follows is another protocol's. */
static __always_inline bool switches_protocol(const struct http1_conn *h,
					      const char *status)
{
	if (status[9] == '1' && status[10] == '0' && status[11] == '1')
		return true;
	return status[9] == '2' && h->pipeline_idx == 0 && is_connect(h->req);
}

/* Bytes going from server to client (written by a server, read by a
 * client). A final status line ends the exchange. A server may go on
 * writing pipelined responses, each one the next request's; a client's
 * exchange ends at its first one, and the body after it is not looked
 * at. A status line that comes shorter than SONDE_STATUS_LEN bytes (read
 * a byte at a time: curl reading a proxy's answer to CONNECT) is put
 * together across calls. */
static __always_inline void on_response_bytes(struct conn_key *key,
					      struct conn *c,
					      struct http1_conn *h,
					      const void *buf, long n)
{
	char peek[2 * SONDE_PEEK];
	bool resumed = h->resp_part_len;
	__u32 got;

	if (h->phase == PHASE_IDLE ||
	    (c->role == ROLE_CLIENT && h->phase == PHASE_RESPONSE))
		return;
	got = resumed ? resume_status_line(h, buf, n, peek) :
			peek_user(peek, buf, n);
	if (!looks_like_status_line(peek, got)) {
		if (could_start_status_line(peek, got)) {
			__builtin_memcpy(h->resp_part, peek, SONDE_STATUS_LEN);
			h->resp_part_len = got;
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
	emit_exchange(key, c, h, peek, got);
	if (switches_protocol(h, peek)) {
		proto_switched(c);
		return;
	}
	h->phase = PHASE_RESPONSE;
	if (h->pipeline_idx < 255)
		h->pipeline_idx++;
}

/* A connection found lazily takes the role its first request shows: a
 * request read makes it the server side, a request written the client.
 * Bytes that could be a status line's start ("HTT") say nothing: no
 * method is called HTTP. False while it is not known. */
static __always_inline bool http1_role(struct conn *c, const void *buf, long n,
				       bool is_read)
{
	char peek[SONDE_PEEK];
	__u32 got;

	if (c->role != ROLE_UNKNOWN)
		return true;
	got = peek_user(peek, buf, n);
	if (!looks_like_request(peek, got) ||
	    could_start_status_line(peek, got))
		return false;
	c->role = is_read ? ROLE_SERVER : ROLE_CLIENT;
	return true;
}

/* c was just classified HTTP/1: no exchange is open. (Its capture need
 * not be cleared: it is read only as far as an exchange wrote it.) */
static __always_inline void http1_start(struct conn *c)
{
	struct http1_conn *h = http1_of(c);

	h->phase = PHASE_IDLE;
	h->req_len = 0;
	h->pipeline_idx = 0;
	h->resp_part_len = 0;
}

/* The handler: n bytes at user address buf were read (is_read) or
 * written on the HTTP/1 connection key, which c tracks. A global
 * function, verified once for every program that calls it. Returns 0. */
__attribute__((noinline)) int http1_data(struct conn_key *key, struct conn *c,
					 __u64 buf, long n, __u32 is_read)
{
	const void *p = (const void *)buf;
	struct http1_conn *h;

	if (!key || !c || n <= 0)
		return 0;
	h = http1_of(c);
	if (!http1_role(c, p, n, is_read))
		return 0;
	if (!to_client(c, is_read))
		on_request_bytes(key, c, h, p, n);
	else
		on_response_bytes(key, c, h, p, n);
	return 0;
}

#endif
