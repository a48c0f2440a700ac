/* The protocol seam: a connection is classified once, from its first
 * bytes, and from then on only its protocol's handler runs on its reads
 * and writes.
 *
 * Each protocol is one header in this folder: a detector (a pure
 * predicate on the first bytes, with an example of them), the layout of
 * its state in the connection's protocol state, and a handler. Adding one
 * is that header, an id in enum sonde_proto (include/sonde_events.h), a
 * line in classify() and in proto_start(), and a case in proto_data(); the
 * daemon side is user/proto/. A connection no detector claims is unknown: its calls
 * cost the connection lookup and nothing else, and it never makes a
 * record. */
#ifndef SONDE_PROTO_PROTO_BPF_H
#define SONDE_PROTO_PROTO_BPF_H

static __always_inline void count_classified(__u32 proto)
{
	__u64 *n = bpf_map_lookup_elem(&classified, &proto);

	if (n)
		*n += 1; /* per CPU, with preemption off: no atomic needed */
}

/* c's protocol handed over to another (after CONNECT, or 101 Switching
 * Protocols): its next bytes are classified afresh. */
static __always_inline void proto_switched(struct conn *c)
{
	c->proto = SONDE_PROTO_NONE;
	c->tries = 0;
}

/* Calls whose bytes no detector claimed that are let by before a
 * connection found in the middle of its life is unknown. */
#define PROTO_TRIES 16

#include "proto/http1.bpf.h"
#include "proto/http2.bpf.h"
#include "proto/tls.bpf.h"
#include "proto/gotls.bpf.h"
#include "proto/db.bpf.h"
#include "proto/pg.bpf.h"
#include "proto/mysql.bpf.h"
#include "proto/redis.bpf.h"
#include "proto/memcached.bpf.h"

/* The detectors, in order: the most specific first (the HTTP/2 preface
 * would pass for an HTTP/1 request line "PRI * ..."). plain: the bytes are
 * OpenSSL's plaintext, which is no TLS record. known: the connection's
 * role is known, and with it the bytes' direction; to_client: they go
 * from server to client, where a server may speak first (its HTTP/2
 * SETTINGS, a MySQL greeting). A connection open before sonde may be
 * found in the middle of its life: a database's next request then
 * classifies it. */
static __always_inline __u8 classify(const char *p, __u32 n, bool plain,
				     bool known, bool to_client)
{
	if (h2_detect(p, n) || (to_client && h2_detect_server(p, n)))
		return SONDE_PROTO_HTTP2;
	if (!plain && tls_detect(p, n))
		return SONDE_PROTO_TLS;
	if (http1_detect(p, n))
		return SONDE_PROTO_HTTP1;
	if (redis_detect(p, n))
		return SONDE_PROTO_REDIS;
	if (memcached_detect(p, n))
		return SONDE_PROTO_MEMCACHED;
	if ((!known || !to_client) && pg_detect_startup(p, n))
		return SONDE_PROTO_POSTGRESQL;
	if ((!known || to_client) && mysql_detect_greeting(p, n))
		return SONDE_PROTO_MYSQL;
	if (!known && pg_detect_midstream(p, n))
		return SONDE_PROTO_POSTGRESQL;
	if (!known && mysql_detect_midstream(p, n))
		return SONDE_PROTO_MYSQL;
	return SONDE_PROTO_UNKNOWN;
}

/* A connection of unknown role that a database's bytes classified: the
 * side it is on is the listening one when a socket listens on its local
 * port (the listeners map, filled at start for those that already did),
 * else the connecting one. The bytes themselves cannot say: a reply to
 * MGET or BRPOP looks like a command. */
static __always_inline void db_learn_role(struct conn *c)
{
	c->role = conn_port_listens(c) ? ROLE_SERVER : ROLE_CLIENT;
}

/* c, the connection key, was just classified proto: its state starts. */
static __always_inline void proto_start(struct conn_key *key, struct conn *c,
					__u8 proto)
{
	if (proto == SONDE_PROTO_HTTP1)
		http1_start(c);
	else if (proto == SONDE_PROTO_HTTP2)
		h2_start(key, c);
	else if (db_proto(proto))
		db_start(c);
}

/* Classifies the connection key, tracked in c, from the n bytes at buf
 * that went one way (is_read); starts its protocol's state. On a
 * connection seen from its start (its role known), bytes no detector
 * claims make it unknown. One found in the middle of its life (open
 * before sonde) may be in the middle of a message: PROTO_TRIES such calls
 * are let by first. False when there is nothing to hand to a handler: no
 * bytes could be read, the bytes are ciphertext (the socket is marked
 * TLS), or no protocol claims them (yet). A global function, verified
 * once: its frame (the peek, the detectors) stays off the deepest call
 * path, the dispatcher's into a handler's. */
__attribute__((noinline)) int proto_classify(struct conn_key *key,
					     struct conn *c, __u64 buf, long n,
					     __u32 is_read)
{
	bool known, from_server;
	char peek[SONDE_PEEK];
	__u32 got;
	__u8 proto;

	if (!key || !c || n <= 0)
		return false;
	known = c->role != ROLE_UNKNOWN;
	from_server = known && to_client(c, is_read);
	got = peek_user(peek, (const void *)buf, n);
	if (!got)
		return false;
	proto = classify(peek, got, c->tls, known, from_server);
	if (proto == SONDE_PROTO_TLS) {
		tls_mark(c);
		return false;
	}
	if (proto == SONDE_PROTO_UNKNOWN && !known && ++c->tries < PROTO_TRIES)
		return false;
	c->proto = proto;
	count_classified(proto);
	if (!known && db_proto(proto))
		db_learn_role(c);
	proto_start(key, c, proto);
	return proto != SONDE_PROTO_UNKNOWN;
}

/* The dispatcher: n bytes at user address buf were read (is_read) or
 * written on the connection key, which c tracks: plaintext from the
 * socket, or from OpenSSL when c->tls. A global function, verified once
 * for every program that calls it. Returns 0. */
__attribute__((noinline)) int proto_data(struct conn_key *key, struct conn *c,
					 __u64 buf, long n, __u32 is_read)
{
	if (!key || !c || n <= 0)
		return 0;
	if (c->proto == SONDE_PROTO_NONE &&
	    !proto_classify(key, c, buf, n, is_read))
		return 0;
	switch (c->proto) {
	case SONDE_PROTO_HTTP1:
		return http1_data(key, c, buf, n, is_read);
	case SONDE_PROTO_HTTP2:
		h2_data(key, c, buf, n, to_client(c, is_read));
		return 0;
	case SONDE_PROTO_REDIS:
		if (redis_fold(key, c, buf, n, !to_client(c, is_read)))
			return 0;
		return db_data(key, c, buf, n, is_read);
	case SONDE_PROTO_POSTGRESQL:
	case SONDE_PROTO_MYSQL:
	case SONDE_PROTO_MEMCACHED:
		return db_data(key, c, buf, n, is_read);
	}
	return 0;
}

/* The bytes a read or write moved on c, plaintext: the first buffer to
 * the dispatcher and, for a protocol that follows every byte (HTTP/2),
 * the other buffers of a vector call too. */
static __always_inline void proto_io(struct conn_key *key, struct conn *c,
				     const struct io_call *io)
{
	const void *buf;
	long first;

	if (c->proto == SONDE_PROTO_HTTP2 && io->how != IO_PLAIN) {
		h2_vector(key, c, io, 0, 0);
		return;
	}
	if (db_proto(c->proto) && io->how != IO_PLAIN) {
		db_vector(key, c, io, 0, 0);
		return;
	}
	first = io->ret;
	buf = io_first_buffer(io->arg2, io->how, &first);
	if (!buf || first <= 0)
		return;
	proto_data(key, c, (__u64)buf, first, io->is_read);
	/* The preface filled the first buffer: the other buffers hold
	 * frames (node writes the preface and its SETTINGS from two). */
	if (c->proto == SONDE_PROTO_HTTP2 && io->ret > first)
		h2_vector(key, c, io, 1, first);
	if (db_proto(c->proto) && io->ret > first)
		db_vector(key, c, io, 1, first);
}

/* Whether a read or write that returned ret is worth a look: bytes, or a
 * read that would block inside an OpenSSL call (a handshake waiting for
 * the peer), which carries none but names the call's socket. */
static __always_inline bool proto_io_wanted(long ret)
{
	return ret > 0 || (ret == -EAGAIN && tls_open_call());
}

/* Whether the TLS bookkeeping has anything to learn from a call on c: a
 * socket sonde does not trace (an OpenSSL call on it is not ours), one
 * OpenSSL carries whose object is not known to use it yet, or one whose
 * bytes are not known to be a plaintext protocol yet. */
static __always_inline bool tls_maybe_involved(const struct conn *c)
{
	return !c || (c->tls && !c->tls_bound) ||
	       c->proto == SONDE_PROTO_NONE || c->proto == SONDE_PROTO_UNKNOWN;
}

/* A read or write on a socket (ret: bytes, or -EAGAIN inside an OpenSSL
 * call, where it still names the socket); c is its connection, NULL when
 * sonde does not trace it. The TLS bookkeeping runs only where OpenSSL
 * may be in play: never for a connection whose bytes are HTTP (one that
 * switches protocols, after CONNECT or 101, is classified afresh); on a
 * connection OpenSSL carries, the bytes are ciphertext and go no
 * further. */
static __always_inline void
proto_socket_io(struct conn_key *key, struct conn *c, const struct io_call *io)
{
	/* Syscall hooks: the fd may name another socket since it was
	 * tracked (dup2 onto it, close_range): tracked afresh then. */
	if (c && io->ret > 0)
		c = conn_revalidate(key, c, c->role);
	if (tls_maybe_involved(c)) {
		if (io->is_read && io->ret > 0)
			tls_note_read(key, c != NULL);
		tls_note_fd(key, c);
	}
	if (io->ret <= 0 || !c || c->tls || c->proto == SONDE_PROTO_UNKNOWN)
		return;
	proto_io(key, c, io);
}

#endif
