/* Databases and caches: the bytes of a PostgreSQL, MySQL/MariaDB, Redis or
 * Memcached connection, sent as they are moved.
 *
 * These protocols frame their messages by length (a PostgreSQL message's
 * int32, a MySQL packet's 3 bytes, a RESP bulk string's $n, a Memcached
 * value's byte count), pipeline freely (hundreds of Redis commands in one
 * write, many PostgreSQL Executes before one Sync) and answer in order.
 * Counting each call exactly means following every message, which is the
 * daemon's work (user/proto/db.h, where it can be tested): the BPF side
 * sends each buffer a read or write moved, its first bytes and its
 * length, on the exchange ring of the CPU it runs on (the shared ring's
 * lock, taken by every CPU, cost more than the rest of a call's work),
 * numbered so that the daemon takes a connection's requests and replies
 * in the order they were moved. What lies beyond the first bytes of a
 * long buffer is rows and values, which the daemon passes over by
 * length.
 *
 * The detectors are in one header per system (pg, mysql, redis,
 * memcached); they share this handler, db_data. Redis's header also
 * follows the plainest calls whole, which then send no bytes. */
#ifndef SONDE_PROTO_DB_BPF_H
#define SONDE_PROTO_DB_BPF_H

/* Buffers of one readv, writev, recvmsg or sendmsg sent; the bytes of
 * any further ones are sent as one hole. */
#define DB_MAX_IOVECS 8

/* Calls of a PostgreSQL or MySQL connection in which its client may ask
 * for TLS (PostgreSQL's SSLRequest comes first; MySQL's after the
 * greeting). */
#define DB_TLS_WINDOW 6

struct db_conn {
	__u32 seq[2]; /* records sent, by from_client */
	__u32 order;  /* records sent, both ways */
	__u8 calls;   /* up to DB_TLS_WINDOW */
	/* The client asked for TLS: the next TLS handshake record starts
	 * ciphertext. */
	__u8 tls_asked;
	/* It did: the socket carries ciphertext from now on, and OpenSSL's
	 * plaintext continues the same protocol. */
	__u8 secured;
};

_Static_assert(sizeof(struct db_conn) <= CONN_PROTO_STATE,
	       "a database connection's state fits");

/* proto/redis.bpf.h: a Redis call followed whole in BPF. */
int redis_fold(struct conn_key *key, struct conn *c, __u64 buf, long n,
	       __u32 from_client);

static __always_inline bool db_proto(__u8 proto)
{
	return proto == SONDE_PROTO_POSTGRESQL || proto == SONDE_PROTO_MYSQL ||
	       proto == SONDE_PROTO_REDIS || proto == SONDE_PROTO_MEMCACHED;
}

/* c was just classified as a database: nothing of another protocol's
 * state (after CONNECT or 101) is kept. The whole of it: Redis keeps the
 * call it follows after struct db_conn (proto/redis.bpf.h). */
static __always_inline void db_start(struct conn *c)
{
	__builtin_memset(c->proto_state, 0, CONN_PROTO_STATE);
}

/* A client's request for TLS, n bytes at p (8 of them read): PostgreSQL's
 * SSLRequest ("\0\0\0\x08\x04\xd2\x16\x2f"), or MySQL's, the short
 * handshake response of sequence 1 with CLIENT_SSL (0x800) set
 * ("\x20\0\0\x01" then capabilities, little-endian). */
static __always_inline bool db_tls_request(__u8 proto, const __u8 *p, long n)
{
	if (proto == SONDE_PROTO_POSTGRESQL)
		return n == 8 && p[0] == 0 && p[1] == 0 && p[2] == 0 &&
		       p[3] == 8 && p[4] == 0x04 && p[5] == 0xd2 &&
		       p[6] == 0x16 && p[7] == 0x2f;
	return n == 36 && p[0] == 32 && p[1] == 0 && p[2] == 0 && p[3] == 1 &&
	       (p[5] & 0x08);
}

/* A TLS handshake record starting a ClientHello or a ServerHello
 * ("\x16\x03\x01" length, then 1 or 2). */
static __always_inline bool db_tls_hello(const __u8 *p, long n)
{
	return n >= 6 && p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x04 &&
	       (p[5] == 1 || p[5] == 2);
}

/* Whether c's n bytes at buf start TLS, which its client asked for early
 * in a PostgreSQL or MySQL connection. The socket is then marked as
 * carrying ciphertext, and OpenSSL's plaintext continues the protocol.
 * A payload that happens to look like a TLS record is not taken for
 * one: only a hello after the request counts. */
static __always_inline bool db_turns_tls(struct conn *c, __u64 buf, long n,
					 bool from_client)
{
	struct db_conn *d = (struct db_conn *)c->proto_state;
	__u8 peek[8] = { 0 };

	if (!buf || c->tls || d->calls >= DB_TLS_WINDOW ||
	    (c->proto != SONDE_PROTO_POSTGRESQL &&
	     c->proto != SONDE_PROTO_MYSQL))
		return false;
	d->calls++;
	if (bpf_probe_read_user(peek, n < 8 ? n & 7 : 8, (const void *)buf))
		return false;
	if (!d->tls_asked) {
		d->tls_asked = from_client && db_tls_request(c->proto, peek, n);
		return false;
	}
	if (!db_tls_hello(peek, n))
		return false;
	d->secured = 1;
	c->tls = 1;
	count_classified(SONDE_PROTO_TLS);
	return true;
}

/* Fills a reserved record's fixed part. */
static __always_inline void db_fill(struct sonde_db_event *ev,
				    struct conn_key *key, struct conn *c,
				    __u64 total, __u32 len, bool from_client)
{
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = key->tgid;
	ev->hdr.kind = SONDE_EV_DB;
	ev->hdr.pad = 0;
	ev->sk = c->sk;
	__builtin_memcpy(ev->daddr, c->daddr, sizeof(ev->daddr));
	ev->fd = key->fd;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->total = total > 0xffffffffULL ? 0xffffffffU : (__u32)total;
	ev->sport = c->sport;
	ev->dport = c->dport;
	ev->family = c->family;
	ev->len = len;
	ev->proto = c->proto;
	ev->from_client = from_client;
	ev->role = c->role;
	__builtin_memcpy(ev->comm, c->comm, SONDE_COMM_LEN);
}

/* Sends n bytes at buf, the first room of them (room: one of the record
 * sizes, a constant once inlined). kept_ts 0: buf is the process's and
 * the bytes moved now; else buf is a copy the connection's state kept of
 * bytes that moved at kept_ts. False when the ring was full or busy
 * (counted) or the bytes could not be read. */
static __always_inline bool db_send_from(struct conn_key *key, struct conn *c,
					 const void *buf, __u64 n,
					 bool from_client, __u32 room,
					 __u8 starts, __u64 kept_ts)
{
	struct db_conn *d = (struct db_conn *)c->proto_state;
	__u32 len = n < room ? n : room;
	__u32 seq = d->seq[from_client & 1]++;
	__u32 order = d->order++;
	struct sonde_db_event *ev;
	struct ring_slot slot;

	ev = ring_reserve(&slot, SONDE_DB_BYTES(room));
	if (!ev)
		return false;
	barrier_var(len);
	if (len > room ||
	    (len && buf &&
	     (kept_ts ? bpf_probe_read_kernel(ev->data, len, buf) :
			bpf_probe_read_user(ev->data, len, buf)))) {
		ring_discard(&slot);
		return false;
	}
	if (!buf)
		len = 0;
	db_fill(ev, key, c, n, len, from_client);
	if (kept_ts)
		ev->hdr.ts_ns = kept_ts;
	ev->starts = starts;
	ev->seq = seq;
	ev->order = order;
	ring_submit(&slot);
	return true;
}

/* ---- Calls summed here ----
 *
 * A call followed whole that succeeded (proto/redis.bpf.h) need not reach
 * the daemon at all: its duration is filed in db_sums, under its
 * process, operation, peer and role, in the bucket of the family's
 * bounds it falls in. The daemon reads what the sums grew by
 * (user/kernel/dbsums.c) into the same series its records would have
 * gone to. A call whose sums have no room (the map is full) goes as a
 * record. The daemon sets no bounds, and nothing is summed, when each
 * call must reach it: for its span, or for an exponential histogram. */
const volatile __u32 db_sum_nbounds = 0;
const volatile __u64 db_sum_bounds[SONDE_DB_SUM_BOUNDS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SONDE_DB_SUMS_MAX);
	__type(key, struct sonde_db_sum_key);
	__type(value, struct sonde_db_sum);
} db_sums SEC(".maps");

static const struct sonde_db_sum db_sum_zero;

enum db_sum_verdict {
	DB_SUM_UNKNOWN = 0, /* the process's verdict is still pending */
	DB_SUM_YES,
	DB_SUM_NO,
};

/* Whether the calls of c, of process tgid, may be summed. The daemon
 * files sums by process and by the server's local port, not by
 * connection: only a verdict that holds for every such connection
 * lets them be summed (a client's connections under PORTS_ONLY are
 * judged by their local ports, which the sums do not keep). */
static __always_inline __u8 db_sum_verdict(__u32 tgid, const struct conn *c)
{
	__u8 *v;

	if (!db_sum_nbounds)
		return DB_SUM_NO;
	if (!select_enabled)
		return DB_SUM_YES;
	v = bpf_map_lookup_elem(&verdicts, &tgid);
	if (!v || *v == SONDE_VERDICT_PENDING)
		return DB_SUM_UNKNOWN;
	if (*v == SONDE_VERDICT_TRACE ||
	    (*v == SONDE_VERDICT_PORTS_ONLY && c->role == SONDE_ROLE_SERVER))
		return DB_SUM_YES;
	return DB_SUM_NO;
}

/* Files a call of c, operation op, that took dur ns: 0 when its sums
 * have no room. A global function: verified once, and the bucket it
 * picks is not followed bound by bound through its callers. */
__attribute__((noinline)) int db_sum_call(struct conn_key *key, struct conn *c,
					  __u32 op, __u64 dur)
{
	struct sonde_db_sum_key k;
	struct sonde_db_sum *v;
	__u32 b;

	if (!key || !c)
		return 0;
	__builtin_memset(&k, 0, sizeof(k));
	k.tgid = key->tgid;
	k.op = op;
	k.proto = c->proto;
	k.role = c->role;
	if (c->role == SONDE_ROLE_SERVER) {
		k.port = c->sport;
	} else {
		k.port = c->dport;
		k.family = c->family;
		__builtin_memcpy(k.daddr, c->daddr, sizeof(k.daddr));
	}
	v = bpf_map_lookup_elem(&db_sums, &k);
	if (!v) {
		bpf_map_update_elem(&db_sums, &k, &db_sum_zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&db_sums, &k);
		if (!v)
			return 0;
		__builtin_memcpy(v->comm, c->comm, SONDE_COMM_LEN);
	}
	for (b = 0; b < SONDE_DB_SUM_BOUNDS; b++)
		if (b >= db_sum_nbounds || dur <= db_sum_bounds[b])
			break;
	if (b > SONDE_DB_SUM_BOUNDS)
		b = SONDE_DB_SUM_BOUNDS;
	/* Atomic: another task may run this on the same CPU when the
	 * kernel preempts the one that was. */
	__sync_fetch_and_add(&v->buckets[b], 1);
	__sync_fetch_and_add(&v->sum_ns, dur);
	return 1;
}

/* db_send_from for bytes of the process that moved now. */
static __always_inline bool db_send(struct conn_key *key, struct conn *c,
				    const void *buf, __u64 n, bool from_client,
				    __u32 room, __u8 starts)
{
	return db_send_from(key, c, buf, n, from_client, room, starts, 0);
}

/* The handler: n bytes at buf were read (is_read) or written on c, a
 * database connection; buf 0 sends a hole of n bytes. A global
 * function: verified once. */
__attribute__((noinline)) int db_data(struct conn_key *key, struct conn *c,
				      __u64 buf, long n, __u32 is_read)
{
	bool from_client;

	if (!key || !c || n <= 0)
		return 0;
	from_client = !to_client(c, is_read);
	if (db_turns_tls(c, buf, n, from_client))
		return 0;
	if (!buf || n <= SONDE_DB_SMALL) {
		db_send(key, c, (const void *)buf, n, from_client,
			SONDE_DB_SMALL, buf != 0);
		return 0;
	}
	if (n <= SONDE_DB_MEDIUM) {
		db_send(key, c, (const void *)buf, n, from_client,
			SONDE_DB_MEDIUM, 1);
		return 0;
	}
	for (__u32 i = 0; i < SONDE_DB_CHUNKS && n > 0; i++) {
		long k = n < SONDE_DB_DATA_CAP ? n : SONDE_DB_DATA_CAP;

		db_send(key, c, (const void *)buf, k, from_client,
			SONDE_DB_DATA_CAP, i == 0);
		buf += k;
		n -= k;
	}
	if (n > 0)
		db_send(key, c, NULL, n, from_client, SONDE_DB_SMALL, 0);
	return 0;
}

/* Walking the buffers of a vector read or write. */
struct db_iov_walk {
	struct conn_key *key;
	struct conn *c;
	const struct iovec *iovp;
	__u64 count;
	long left;   /* bytes the call moved not yet sent */
	__u32 first; /* the buffer to start from */
	__u32 is_read;
};

static long db_iov_step(__u64 step, void *ctx)
{
	struct db_iov_walk *w = ctx;
	__u64 i = step + w->first;
	struct iovec iov;
	long n;

	if (w->left <= 0 || i >= w->count)
		return 1;
	if (step == DB_MAX_IOVECS - 1 || i > 1024 ||
	    bpf_probe_read_user(&iov, sizeof(iov), &w->iovp[i])) {
		db_data(w->key, w->c, 0, w->left, w->is_read);
		return 1;
	}
	n = iov.iov_len < (__u64)w->left ? (long)iov.iov_len : w->left;
	if (n > 0)
		db_data(w->key, w->c, (__u64)iov.iov_base, n, w->is_read);
	w->left -= n;
	return 0;
}

/* The walk of db_vector: the buffers from (where & 0xff) on of an iovec
 * array (arg, shaped as where >> 16 says; sizes >> 32 of them, for readv
 * and writev) that moved (__u32)sizes bytes, read ((where >> 8) & 1) or
 * written. A global function (five arguments at most, hence the
 * packing), so that the walk's state is not on the socket program's
 * stack, which the deepest call path shares. */
__attribute__((noinline)) int db_vector_walk(struct conn_key *key,
					     struct conn *c, __u64 arg,
					     __u64 sizes, __u32 where)
{
	struct db_iov_walk w = {
		.key = key,
		.c = c,
		.count = sizes >> 32,
		.left = (__u32)sizes,
		.first = where & 0xff,
		.is_read = (where >> 8) & 1,
	};

	if (!key || !c)
		return 0;
	w.iovp = io_iovecs(arg, where >> 16, &w.count);
	if (!w.iovp) {
		db_data(key, c, 0, w.left, w.is_read);
		return 0;
	}
	bpf_loop(DB_MAX_IOVECS, db_iov_step, &w, 0);
	return 0;
}

/* The buffers of a readv, writev, recvmsg or sendmsg from the first-th
 * on, which moved io->ret less sent bytes, each sent in turn (node writes
 * a Parse/Bind/Execute/Sync sequence from several buffers). */
static __always_inline void db_vector(struct conn_key *key, struct conn *c,
				      const struct io_call *io, __u32 first,
				      long sent)
{
	__u64 count = PT_REGS_PARM3_SYSCALL(io->regs);
	__u64 left = io->ret - sent;

	/* A Redis call is followed whole only from one plain buffer: to its
	 * follower, a vector call is bytes it cannot look into. */
	if (io->ret > sent && c->proto == SONDE_PROTO_REDIS &&
	    redis_fold(key, c, 0, left, !to_client(c, io->is_read)))
		return;
	if (io->ret > sent)
		db_vector_walk(
			key, c, io->arg2,
			(count > 0xffffffffULL ? 0xffffffffULL : count) << 32 |
				(left & 0xffffffffULL),
			first | (__u32)io->is_read << 8 | (__u32)io->how << 16);
}

#endif
