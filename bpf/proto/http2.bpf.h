/* HTTP/2 (RFC 9113, https://www.rfc-editor.org/rfc/rfc9113), and gRPC
 * over it.
 *
 * After the client's preface, a connection carries frames: a 9-byte
 * header (24-bit payload length, type, flags, 31-bit stream id) and the
 * payload. Each direction's frames are followed across reads or writes of
 * any size and any number of buffers; the payloads of header blocks
 * (HEADERS, CONTINUATION, PUSH_PROMISE) and of RST_STREAM go to the daemon
 * (user/proto/http2.c decodes them with HPACK), everything else (DATA above
 * all) is only counted past. A connection whose frames cannot be followed
 * any more is given up, counted: the daemon cannot decode its header
 * blocks without every byte of them.
 *
 * Detector: h2_detect (and h2_detect_server). State: struct h2_conn, in
 * the connection's protocol state. Handler: h2_data,
 * and h2_vector for the buffers of a vector read or write after the
 * first. */
#ifndef SONDE_PROTO_HTTP2_BPF_H
#define SONDE_PROTO_HTTP2_BPF_H

/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 section 3.4); its first
 * 16 bytes fill a peek. */
#define H2_PREFACE_LEN 24
#define H2_FRAME_HEADER 9
/* Room for a frame header's bytes: at most 8 kept from before, then at
 * most 8 more; a power of two the verifier can bound. */
#define H2_FRAME_HEADER_ROOM 16
/* Steps (a frame header, a payload piece forwarded or skipped) one read or
 * write may take; a buffer holding more frames than that loses the
 * connection, counted. */
#define H2_MAX_STEPS 512
/* Buffers of one readv or writev followed: the kernel's own limit
 * (UIO_MAXIOV), so none is too many. */
#define H2_MAX_IOVECS 1024
/* A record carries the piece of a frame one call moved, with room for
 * it rounded up to 8 bytes: most header blocks are a few dozen bytes once
 * HPACK-encoded, and a ring that fills slower stays in the caches. Pieces
 * of at most H2_SMALL_PIECE early in the window are copied word by
 * word. */
#define H2_SMALL_PIECE 128
/* The first bytes of each buffer, read from the process once: frame
 * headers and header-block pieces that lie within them are taken from
 * this copy, and only what lies beyond is read from the process again (a
 * read of user memory costs as much as the rest of a step). Most calls
 * are whole within it: a request's or a response's HEADERS, a short DATA
 * frame's header. The copy lives in the connection's state, one per
 * direction: a reader and a writer thread may walk the two at once, and
 * nothing else can be in the middle of the same walk. */
#define H2_WINDOW 192

/* Per direction (index 0: bytes the client sends): records sent, the
 * frame being read, how much of its payload is still to come, a frame
 * header cut short by the end of a read or write, and the window of the
 * call being walked. */
struct h2_conn {
	__u64 since;  /* sonde_h2_event.since: when the preface went */
	__u32 seq[2]; /* records sent (sonde_h2_event.seq) */
	/* Bytes of the current read or write walked so far: kept here, not
	 * on the stack, so that the verifier sees bpf_loop's steps alike. */
	__u32 pos[2];
	__u32 left[2];
	__u32 len[2];
	__u32 stream[2];
	__u8 type[2];
	__u8 flags[2];
	__u8 part_len[2];
	__u8 lost; /* a frame or a record was lost: no longer followed */
	__u8 pad;
	char part[2][H2_FRAME_HEADER_ROOM];
	char win[2][H2_WINDOW];
};

_Static_assert(sizeof(struct h2_conn) <= CONN_PROTO_STATE,
	       "HTTP/2's state fits in a connection's protocol state");

/* c's HTTP/2 state. */
static __always_inline struct h2_conn *h2_of(struct conn *c)
{
	return (struct h2_conn *)c->proto_state;
}

/* The detector: the client's preface, its first 16 bytes. */
static __always_inline bool h2_detect(const char *p, __u32 n)
{
	const char preface[] = "PRI * HTTP/2.0\r\n";

	if (n < sizeof(preface) - 1)
		return false;
	for (__u32 i = 0; i < sizeof(preface) - 1; i++)
		if (p[i] != preface[i])
			return false;
	return true;
}

/* The server's side of the detector: its connection preface, a SETTINGS
 * frame on stream 0 ("\x00\x00\x12\x04\x00\x00\x00\x00\x00" and
 * three settings), which a server may write before it has read the
 * client's (nginx over TLS does). Only for bytes going to the client. */
static __always_inline bool h2_detect_server(const char *p, __u32 n)
{
	const __u8 *f = (const __u8 *)p;
	__u32 len;

	if (n < H2_FRAME_HEADER)
		return false;
	len = (__u32)f[0] << 16 | (__u32)f[1] << 8 | f[2];
	return f[3] == 0x4 && f[4] == 0 && !f[5] && !f[6] && !f[7] && !f[8] &&
	       len % 6 == 0;
}

struct h2_walk {
	struct conn_key *key;
	struct conn *c;
	struct h2_conn *st;
	const char *buf;
	long n;
	__u32 dir; /* 0: sent by the client, 1: by the server */
	__u32 got; /* bytes of buf in st->win[dir] */
};

static __always_inline bool h2_forwarded(__u8 type)
{
	return type == SONDE_H2_HEADERS || type == SONDE_H2_CONTINUATION ||
	       type == SONDE_H2_PUSH_PROMISE || type == SONDE_H2_RST_STREAM;
}

static __always_inline void h2_unfollow(struct h2_conn *st)
{
	st->lost = 1;
	count_drop(SONDE_DROP_HTTP2_UNFOLLOWED);
}

/* Fills a record (its data already in place) about direction d's frame.
 * room: the bytes data has. */
static __always_inline void h2_fill(struct sonde_h2_event *ev,
				    struct h2_walk *w, __u32 d, __u64 len)
{
	struct h2_conn *st = w->st;
	struct conn *c = w->c;

	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = w->key->tgid;
	ev->hdr.kind = SONDE_EV_HTTP2;
	ev->hdr.pad = 0;
	ev->sk = c->sk;
	__builtin_memcpy(ev->saddr, c->saddr, sizeof(ev->saddr));
	__builtin_memcpy(ev->daddr, c->daddr, sizeof(ev->daddr));
	ev->fd = w->key->fd;
	ev->since = st->since;
	ev->seq = st->seq[d]++;
	ev->stream_id = st->stream[d];
	ev->frame_len = st->len[d];
	ev->offset = st->len[d] - st->left[d];
	ev->sport = c->sport;
	ev->dport = c->dport;
	ev->family = c->family;
	ev->len = len;
	ev->type = st->type[d];
	ev->flags = st->flags[d];
	ev->to_client = d;
	ev->role = c->role;
	__builtin_memcpy(ev->comm, c->comm, SONDE_COMM_LEN);
}

/* Words a piece copied from the window takes at most: a small piece's
 * room. */
#define H2_COPY_WORDS (H2_SMALL_PIECE / 8)

/* Copies the len bytes at w->buf + pos, src, to dst, which has room for
 * len rounded up to 8: from the window when they lie within it (a small
 * piece early in it by words, with loads and stores the program makes
 * itself: the helper that copies kernel memory costs about half as much
 * as the rest of a record), else from the process. Nonzero when they
 * cannot be read. */
static __always_inline long h2_copy(void *dst, struct h2_walk *w,
				    const char *src, __u64 len)
{
	__u32 d = w->dir & 1;
	__u64 pos = w->st->pos[d]; /* 64 bits: one register the checks bound */
	const char *win;

	barrier_var(len);
	if (len > SONDE_H2_DATA_CAP)
		return -1;
	if (len > w->got || pos > w->got - len)
		return bpf_probe_read_user(dst, len, src);
	barrier_var(pos);
	if (pos >= H2_WINDOW)
		return bpf_probe_read_user(dst, len, src);
	if (len > H2_SMALL_PIECE || pos > H2_WINDOW - H2_SMALL_PIECE)
		return bpf_probe_read_kernel(dst, len, &w->st->win[d][pos]);
	barrier_var(pos);
	win = &w->st->win[d][pos];
	for (__u32 i = 0; i < H2_COPY_WORDS; i++) {
		if (i * 8 >= len)
			break;
		((__u64 *)dst)[i] = *(const __u64 *)(win + i * 8);
	}
	return 0;
}

/* Sends the next len bytes of direction d's frame, at w->buf + st->pos[d].
 * The records of one direction are numbered: the daemon reads them in
 * that order, across the CPUs' rings, and decodes a header block only
 * from every piece in turn. False when the record was lost. */
static __always_inline bool h2_send(struct h2_walk *w, __u32 d, __u64 len)
{
	const char *src = w->buf + w->st->pos[d];
	struct sonde_h2_event *ev;
	struct ring_slot slot;
	__u64 room = (len + 7) & ~7ULL;

	barrier_var(room);
	if (room > SONDE_H2_DATA_CAP)
		return false;
	ev = ring_reserve(&slot,
			  __builtin_offsetof(struct sonde_h2_event, data) + room);
	if (!ev)
		return false;
	if (len && h2_copy(ev->data, w, src, len)) {
		ring_discard(&slot);
		return false;
	}
	h2_fill(ev, w, d, len);
	ring_submit(&slot);
	return true;
}

/* Where direction d's next frame header lies in the window, or NULL
 * when it does not lie whole within it. */
static __always_inline const __u8 *h2_header_in_window(struct h2_walk *w,
						       __u32 d)
{
	__u64 pos = w->st->pos[d]; /* 64 bits: one register the checks bound */

	if (pos + H2_FRAME_HEADER > w->got)
		return NULL;
	barrier_var(pos);
	if (pos > H2_WINDOW - H2_FRAME_HEADER)
		return NULL;
	return (const __u8 *)&w->st->win[d][pos];
}

/* Direction d's next frame starts with the 9-byte header f: its payload
 * follows. bpf_loop's callback's result: 1 stops (the connection is no
 * longer followed). */
static __always_inline long h2_header(struct h2_walk *w, __u32 d,
				      const __u8 *f)
{
	struct h2_conn *st = w->st;

	st->len[d] = (__u32)f[0] << 16 | (__u32)f[1] << 8 | f[2];
	st->left[d] = st->len[d];
	st->type[d] = f[3];
	st->flags[d] = f[4];
	st->stream[d] = ((__u32)f[5] & 0x7f) << 24 | (__u32)f[6] << 16 |
			(__u32)f[7] << 8 | f[8];
	/* An empty piece of a header block may still end the block. */
	if (!st->len[d] && h2_forwarded(st->type[d]) && !h2_send(w, d, 0)) {
		h2_unfollow(st);
		return 1;
	}
	return 0;
}

/* Takes in (some of) direction d's next frame header, rest bytes of w's
 * buffer from its position on. 0: the header is whole and its payload
 * follows; 1: stop (the buffer ends inside the header, or the connection
 * is no longer followed). */
static __always_inline long h2_next_header(struct h2_walk *w, __u32 d,
					   long rest)
{
	struct h2_conn *st = w->st;
	__u32 have = st->part_len[d], want;
	const __u8 *f = have ? NULL : h2_header_in_window(w, d);

	if (f) {
		st->pos[d] += H2_FRAME_HEADER;
		return h2_header(w, d, f);
	}
	if (have >= H2_FRAME_HEADER)
		have = 0;
	want = H2_FRAME_HEADER - have;
	if (want > rest)
		want = rest;
	barrier_var(want);
	barrier_var(have);
	if (want > H2_FRAME_HEADER || have >= H2_FRAME_HEADER ||
	    bpf_probe_read_user(&st->part[d][have], want,
				w->buf + st->pos[d])) {
		h2_unfollow(st);
		return 1;
	}
	st->pos[d] += want;
	have += want;
	if (have < H2_FRAME_HEADER) {
		st->part_len[d] = have;
		return 1;
	}
	st->part_len[d] = 0;
	return h2_header(w, d, (const __u8 *)st->part[d]);
}

/* One step through w's buffer: the next frame's header if the current
 * frame is done, then what follows of its payload: a piece forwarded or
 * skipped. bpf_loop's callback: 1 stops, as soon as the buffer is
 * walked. */
static long h2_step(__u32 i, void *ctx)
{
	struct h2_walk *w = ctx;
	struct h2_conn *st = w->st;
	__u32 d = w->dir & 1, left, take;
	long rest = w->n - st->pos[d];

	if (rest <= 0 || st->lost)
		return 1;
	left = st->left[d];
	if (!left) {
		if (h2_next_header(w, d, rest))
			return 1;
		rest = w->n - st->pos[d];
		left = st->left[d];
		if (rest <= 0)
			return 1;
		if (!left)
			return 0;
	}
	take = left < rest ? left : rest;
	if (h2_forwarded(st->type[d])) {
		if (take > SONDE_H2_DATA_CAP)
			take = SONDE_H2_DATA_CAP;
		if (!h2_send(w, d, take)) {
			h2_unfollow(st);
			return 1;
		}
	}
	st->left[d] = left - take;
	st->pos[d] += take;
	return st->pos[d] >= w->n;
}

/* c, the connection key, was just classified HTTP/2 by its preface (or
 * its server's SETTINGS): the client's preface is skipped like the payload
 * of a frame nobody forwards (type 0). */
static __always_inline void h2_start(struct conn_key *key, struct conn *c)
{
	struct h2_conn *st = h2_of(c);

	__builtin_memset(st, 0, sizeof(*st));
	st->since = bpf_ktime_get_ns();
	st->len[0] = H2_PREFACE_LEN;
	st->left[0] = H2_PREFACE_LEN;
	note_process(key->tgid, c);
}

/* The handler: n bytes at user address buf went in direction dir (as
 * to_client gives it) on the HTTP/2 connection key, which c tracks. A
 * global function, verified once for every program that calls it.
 * Returns 1 while the connection is followed, 0 once it is not. */
__attribute__((noinline)) int h2_data(struct conn_key *key, struct conn *c,
				      __u64 buf, long n, __u32 dir)
{
	struct h2_walk w = {
		.key = key,
		.c = c,
		.buf = (const char *)buf,
		.n = n,
		.dir = dir,
	};
	__u32 d = dir & 1;
	__u64 got;

	if (!key || !c)
		return 0;
	w.st = h2_of(c);
	if (w.st->lost) {
		c->proto = SONDE_PROTO_UNKNOWN;
		return 0;
	}
	w.st->pos[d] = 0;
	got = n > H2_WINDOW ? H2_WINDOW : n;
	barrier_var(got);
	if (got <= H2_WINDOW &&
	    !bpf_probe_read_user(w.st->win[d], got, (const void *)buf))
		w.got = got;
	bpf_loop(H2_MAX_STEPS, h2_step, &w, 0);
	if (!w.st->lost && w.st->pos[d] < n)
		h2_unfollow(w.st);
	if (!w.st->lost)
		return 1;
	/* Given up: from now on its calls cost the connection lookup. */
	c->proto = SONDE_PROTO_UNKNOWN;
	return 0;
}

struct h2_iov_walk {
	struct conn_key *key;
	struct conn *c;
	const struct iovec *iovp;
	__u64 count;
	long ret;    /* bytes still to walk */
	__u32 first; /* the buffer to start from */
	__u32 dir;
	bool followed;
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
	v->followed =
		h2_data(v->key, v->c, (__u64)iov.iov_base, iov.iov_len, v->dir);
	v->ret -= iov.iov_len;
	return !v->followed;
}

/* The buffers of a readv, writev, recvmsg or sendmsg from the first-th
 * on, which carried io->ret less skip bytes, in order: frames are cut
 * anywhere (nginx writes a frame's header and its payload from two
 * buffers; node writes each frame's parts from their own, a hundred
 * buffers in one writev). */
static __always_inline void h2_vector(struct conn_key *key, struct conn *c,
				      const struct io_call *io, __u32 first,
				      long skip)
{
	struct h2_iov_walk v = {
		.key = key,
		.c = c,
		.count = PT_REGS_PARM3_SYSCALL(io->regs),
		.ret = io->ret - skip,
		.first = first,
		.dir = to_client(c, io->is_read),
		.followed = true,
	};
	struct h2_conn *st = h2_of(c);

	v.iovp = io_iovecs(io->arg2, io->how, &v.count);
	if (v.iovp)
		bpf_loop(H2_MAX_IOVECS, h2_iov_step, &v, 0);
	if (v.followed && v.ret > 0) {
		if (!st->lost)
			h2_unfollow(st);
		c->proto = SONDE_PROTO_UNKNOWN;
	}
}

#endif
