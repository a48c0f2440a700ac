/* The protocol of database and cache records (struct sonde_db_event): each
 * connection's bytes go to its system's parser through the streams of
 * dbstream.c, and each call a parser finishes comes back out of ready()
 * as a record of its own, observed in db_client_operation_duration_seconds
 * or db_server_operation_duration_seconds. See proto/db.h. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/families.h"
#include "metrics/registry.h"
#include "proto/db.h"
#include "proto/dbstream.h"
#include "proto/events.h"
#include "proto/proto.h"
#include "util/fmt.h"
#include "util/holdq.h"
#include "util/probe.h"

/* The kind of a finished call's record: never one the kernel sends. */
#define DB_CALL_KIND 0x8000

/* A finished call, as ready() hands it back to the dispatcher. Never
 * crosses the kernel boundary. */
struct db_call_record {
	struct sonde_event_header hdr; /* kind DB_CALL_KIND */
	uint64_t duration_ns;
	uint64_t start_ns, end_ns;
	uint32_t tid; /* the thread that read its reply (or wrote it) */
	uint8_t daddr[16];
	uint16_t sport, dport, family;
	uint8_t role;
	bool error;
	const char *system_name;
	char comm[SONDE_COMM_LEN];
	uint8_t op_len, collection_len, status_len;
	char op[DB_OP_MAX];
	char collection[DB_COLL_MAX];
	char status[DB_STATUS_MAX];
};

/* A connection known by (tgid, fd, socket, ports): a process that closes
 * a connection and opens another may get the same fd and the same socket
 * memory back, and the last records of the one may be read after the
 * first of the other (each CPU has its ring). */
struct db_entry {
	uint32_t tgid, fd;
	uint64_t sk;
	struct db_conn *conn;
	/* What its calls' records carry. */
	uint8_t daddr[16];
	uint16_t sport, dport, family;
	uint8_t role;
	uint8_t proto; /* enum sonde_proto */
	/* The seq the next record of each direction should carry. */
	uint32_t next_seq[2];
	bool seq_known[2];
	/* The order the next record should carry, and the records read
	 * before one they follow (util/holdq.h). */
	uint32_t next_order;
	struct holdq held;
	uint64_t last_ns; /* the time of its latest record */
	/* A newer connection took its (tgid, fd, socket): forgotten once
	 * the records it may still have in other CPUs' rings have come
	 * (HELD_ROUNDS rounds). */
	bool superseded;
	unsigned superseded_round;
	uint32_t tid; /* the thread of the latest record */
	char comm[SONDE_COMM_LEN];
};

/* Connections beyond DB_MAX_CONNS (until the sweep forgets closed ones)
 * are not followed: each of their records is counted, in db_full, as a
 * stream lost. About 4.5 KiB each, plus what their open calls hold. */
#define DB_MAX_CONNS 16384
static uint64_t db_full;

/* Calls finished and not yet handed back, oldest first. A record can
 * finish hundreds (a pipeline's replies in one read); beyond
 * QUEUE_MAX they are lost, counted. */
#define QUEUE_MAX 65536
static struct db_call_record *queue;
static size_t qcap, qhead, qlen;

/* Ends of round a held record waits through for the ones before it (a
 * record is committed before the next is made: the one it waits for is
 * read in the same round or the next), records one connection holds at
 * most, and the bytes of all held together. Past either bound the
 * records held are taken in at once, as after a loss. */
#define HELD_ROUNDS 2
#define HELD_PER_CONN 4096
#define HELD_BYTES (8u << 20)
static struct hold_budget budget = { .max_bytes = HELD_BYTES };
static unsigned rounds;
static size_t nsuperseded;

/* The home slot of the connections of (tgid, fd, socket) in a table of
 * n slots (a power of two): the product's high bits, as its low ones see
 * only the inputs' low ones (consecutive fds, slab-aligned sockets). */
static size_t home_of(uint32_t tgid, uint32_t fd, uint64_t sk, size_t n)
{
	uint64_t h = ((uint64_t)tgid << 32 | fd) * 0x9e3779b97f4a7c15ULL;

	h = (h ^ (sk >> 4)) * 0xff51afd7ed558ccdULL;
	return (size_t)(h >> (64 - __builtin_ctzll(n)));
}

static size_t entry_home(const void *s, size_t n)
{
	const struct db_entry *e = s;

	return home_of(e->tgid, e->fd, e->sk, n);
}

static bool entry_used(const void *s)
{
	return ((const struct db_entry *)s)->conn != NULL;
}

/* The connections' entries: open addressing (util/probe.h), found by
 * slot_for. */
static struct probe_table table = {
	.size = sizeof(struct db_entry),
	.home = entry_home,
	.used = entry_used,
};

/* Entry i of the table: indexed by its type's size, which the compiler
 * knows, as every record's lookup does. */
static struct db_entry *entry_at(size_t i)
{
	return (struct db_entry *)table.slots + i;
}

/* What tells a connection's entry. */
struct db_key {
	uint64_t sk;
	uint32_t tgid, fd;
	uint16_t sport, dport;
};

/* The slot of the connection k: its own, or the free one it would
 * take. The connections of one (tgid, fd, socket) share a home. */
static struct db_entry *slot_for(const struct db_key *k)
{
	size_t i = home_of(k->tgid, k->fd, k->sk, table.nslots);
	struct db_entry *t;

	while ((t = entry_at(i))->conn &&
	       !(t->sk == k->sk && t->tgid == k->tgid && t->fd == k->fd &&
		 t->sport == k->sport && t->dport == k->dport))
		i = probe_next(&table, i);
	return t;
}

/* Deletes the entry at slot i, moving later ones of its run back. */
static void table_delete(size_t i)
{
	struct db_entry *e = entry_at(i);

	db_conn_close(e->conn);
	db_conn_free(e->conn);
	holdq_free(&e->held, &budget);
	if (e->superseded)
		nsuperseded--;
	probe_delete(&table, i);
}

static const struct db_system *system_of(uint8_t proto)
{
	switch (proto) {
	case SONDE_PROTO_POSTGRESQL:
		return &db_postgresql;
	case SONDE_PROTO_MYSQL:
		return &db_mysql;
	case SONDE_PROTO_REDIS:
		return &db_redis;
	case SONDE_PROTO_MEMCACHED:
		return &db_memcached;
	}
	return NULL;
}

/* Copies the string src (shorter than size: dbstream.c cut it) into
 * dst, NUL included; returns its length. */
static uint8_t copy_text(char *dst, const char *src, size_t size)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
	return (uint8_t)n;
}

/* A call the parser of e's connection finished: queued for ready(). */
static void call_done(void *owner, const struct db_result *res)
{
	const struct db_entry *e = owner;
	struct db_call_record *rec;

	if (qlen == qcap) {
		size_t cap = qcap ? 2 * qcap : 64;
		struct db_call_record *q;

		if (cap > QUEUE_MAX || !(q = malloc(cap * sizeof(*q)))) {
			events_count_parse_error(PARSE_ERROR_DB_CALL);
			return;
		}
		for (size_t i = 0; i < qlen; i++)
			q[i] = queue[(qhead + i) % qcap];
		free(queue);
		queue = q;
		qcap = cap;
		qhead = 0;
	}
	rec = &queue[(qhead + qlen) % qcap];
	qlen++;
	memset(&rec->hdr, 0, sizeof(rec->hdr));
	rec->hdr.tgid = e->tgid;
	rec->hdr.kind = DB_CALL_KIND;
	rec->duration_ns = res->end_ns - res->start_ns;
	rec->start_ns = res->start_ns;
	rec->end_ns = res->end_ns;
	rec->tid = e->tid;
	memcpy(rec->daddr, e->daddr, sizeof(rec->daddr));
	rec->sport = e->sport;
	rec->dport = e->dport;
	rec->family = e->family;
	rec->role = e->role;
	rec->error = res->error;
	rec->system_name = res->system_name;
	memcpy(rec->comm, e->comm, sizeof(rec->comm));
	rec->op_len = copy_text(rec->op, res->op, sizeof(rec->op));
	rec->collection_len = copy_text(rec->collection, res->collection,
					sizeof(rec->collection));
	rec->status_len =
		copy_text(rec->status, res->status, sizeof(rec->status));
}

/* Fills e, a free slot or one whose connection is gone, for ev's
 * connection: false when memory ran out. */
static bool entry_start(struct db_entry *e, const struct sonde_db_event *ev,
			const struct db_system *sys)
{
	e->conn = db_conn_new_owned(sys, ev->role == SONDE_ROLE_SERVER,
				    call_done, e);
	if (!e->conn)
		return false;
	e->tgid = ev->hdr.tgid;
	e->fd = ev->fd;
	e->sk = ev->sk;
	memcpy(e->daddr, ev->daddr, sizeof(e->daddr));
	e->sport = ev->sport;
	e->dport = ev->dport;
	e->family = ev->family;
	e->role = ev->role;
	e->proto = ev->proto;
	e->seq_known[0] = e->seq_known[1] = false;
	/* Seen from its first records, it waits for any read after the
	 * later ones; seen later (its entry forgotten meanwhile), it starts
	 * where it is. */
	e->next_order = ev->order < HELD_PER_CONN ? 0 : ev->order;
	e->held = (struct holdq){ 0 };
	e->last_ns = ev->hdr.ts_ns;
	e->superseded = false;
	memcpy(e->comm, ev->comm, sizeof(e->comm));
	return true;
}

/* Whether ev comes from a new connection with the tgid, fd, socket and
 * ports of e's (tracked afresh by the kernel): its records are numbered
 * from 0 again. */
static bool entry_reused(const struct db_entry *e,
			 const struct sonde_db_event *ev)
{
	bool dir = ev->from_client;

	return e->proto != ev->proto || e->role != ev->role ||
	       (ev->seq == 0 && e->seq_known[dir] && e->next_seq[dir] != 0) ||
	       (ev->order == 0 && e->next_order != 0);
}

/* The queue's entries point at their connection's entry (the owner):
 * growing the table moves entries, so owners are fixed up after. */
static void rehome_owners(void)
{
	for (size_t i = 0; i < table.nslots; i++) {
		struct db_entry *e = entry_at(i);

		if (e->conn)
			db_conn_set_owner(e->conn, e);
	}
}

/* e is a new connection: the older ones of its (tgid, fd, socket), whose
 * records all came before e's first, are closed. */
static void supersede_older(const struct db_entry *e)
{
	size_t i = home_of(e->tgid, e->fd, e->sk, table.nslots);

	for (; entry_at(i)->conn; i = probe_next(&table, i)) {
		struct db_entry *o = entry_at(i);

		if (o == e || o->superseded || o->tgid != e->tgid ||
		    o->fd != e->fd || o->sk != e->sk || o->last_ns > e->last_ns)
			continue;
		o->superseded = true;
		o->superseded_round = rounds;
		nsuperseded++;
	}
}

/* Forgets the connections gone(e, arg) says are gone. */
static void forget_where(bool (*gone)(const struct db_entry *e, void *arg),
			 void *arg)
{
	for (size_t i = 0; i < table.nslots;) {
		if (entry_at(i)->conn && gone(entry_at(i), arg)) {
			table_delete(i);
			continue; /* another entry may have moved into i */
		}
		i++;
	}
	rehome_owners();
}

/* A superseded connection whose last records have come. */
static bool superseded_long_enough(const struct db_entry *e, void *arg)
{
	(void)arg;
	return e->superseded && rounds - e->superseded_round >= HELD_ROUNDS;
}

/* The entry of ev's connection, made when new; NULL when memory ran out
 * or the record names no system. */
static struct db_entry *entry_of(const struct sonde_db_event *ev)
{
	const struct db_system *sys = system_of(ev->proto);
	struct db_key key = { ev->sk, ev->hdr.tgid, ev->fd, ev->sport,
			      ev->dport };
	struct db_entry *e;
	struct db_conn *old;
	struct holdq old_held;
	bool was_superseded;

	if (!sys || !probe_grow(&table))
		return NULL;
	e = slot_for(&key);
	if (e->conn && !entry_reused(e, ev)) {
		if (ev->hdr.ts_ns > e->last_ns)
			e->last_ns = ev->hdr.ts_ns;
		return e;
	}
	if (!e->conn && table.nused >= DB_MAX_CONNS) {
		db_full++;
		return NULL;
	}
	old = e->conn;
	old_held = e->held;
	was_superseded = old && e->superseded;
	if (!entry_start(e, ev, sys)) {
		e->conn = old;
		e->held = old_held;
		return NULL;
	}
	if (old) {
		db_conn_close(old);
		db_conn_free(old);
		holdq_free(&old_held, &budget);
		if (was_superseded)
			nsuperseded--;
	} else {
		table.nused++;
		supersede_older(e);
	}
	return e;
}

/* ev, size bytes (its length checked), whose turn on e's connection has
 * come: its bytes go to the connection's parser. */
static void take_in(struct db_entry *e, const struct sonde_db_event *ev)
{
	bool dir = ev->from_client ? 1 : 0;

	if (e->seq_known[dir] && ev->seq != e->next_seq[dir])
		db_gap(e->conn, dir);
	e->seq_known[dir] = true;
	e->next_seq[dir] = ev->seq + 1;
	e->next_order = ev->order + 1;
	e->tid = ev->tid;
	db_feed_piece(e->conn, ev->from_client, (const uint8_t *)ev->data,
		      ev->len, ev->total, ev->hdr.ts_ns, ev->starts);
}

/* Takes in the records e holds whose turn has come. */
static void take_following(struct db_entry *e)
{
	struct held *h;

	if (!e->held.n)
		return;
	while ((h = holdq_take(&e->held, &budget, e->next_order, false))) {
		take_in(e, (const struct sonde_db_event *)h->rec);
		free(h);
	}
}

/* Takes in the records e holds, from the first whatever its order
 * (all: every one; else up to the next gap). The records the gaps
 * stand for are lost: their direction's seq tells the parser. */
static void take_held(struct db_entry *e, bool all)
{
	struct held *h;

	while ((h = holdq_take(&e->held, &budget, 0, true))) {
		take_in(e, (const struct sonde_db_event *)h->rec);
		free(h);
		take_following(e);
		if (!all)
			return;
	}
}

/* The bytes of a record: taken in when its turn has come, with those
 * held that follow it; kept when some before it are still to be read;
 * passed over when their place was given up. */
static enum proto_next bytes_read(const struct sonde_db_event *ev, size_t size)
{
	size_t before = table.nslots;
	struct db_entry *e;

	if (ev->len > size - SONDE_DB_BYTES(0) || ev->len > ev->total)
		return PROTO_NEXT_NOTHING;
	e = entry_of(ev);
	if (table.nslots != before)
		rehome_owners();
	if (!e || seq_before(ev->order, e->next_order))
		return PROTO_NEXT_NOTHING;
	if (ev->order != e->next_order) {
		if (e->held.n < HELD_PER_CONN &&
		    holdq_put(&e->held, &budget, ev->order, rounds, ev, size))
			return PROTO_NEXT_NOTHING;
		/* No room to wait: what came is taken in as it is. */
		take_held(e, true);
		if (seq_before(ev->order, e->next_order))
			return PROTO_NEXT_NOTHING;
	}
	take_in(e, ev);
	take_following(e);
	return PROTO_NEXT_NOTHING;
}

/* Appends n bytes at p to r's key; false when they do not fit. */
static bool key_put(struct proto_record *r, const void *p, size_t n)
{
	if (r->key_len + n > PROTO_KEY_MAX)
		return false;
	memcpy(r->key + r->key_len, p, n);
	r->key_len += n;
	return true;
}

/* r's key (struct proto_record): everything db_observe's labels come
 * from, so that the next call like it goes straight to its series. None
 * when it does not fit (a long collection). */
static void call_key(const struct db_call_record *call, struct proto_record *r)
{
	bool server = call->role == SONDE_ROLE_SERVER;
	uint8_t head[2] = { server, call->error };
	bool fits =
		key_put(r, head, sizeof(head)) &&
		key_put(r, &call->system_name, sizeof(call->system_name)) &&
		key_put(r, server ? &call->sport : &call->dport,
			sizeof(call->sport)) &&
		(server || (key_put(r, &call->family, sizeof(call->family)) &&
			    key_put(r, call->daddr, sizeof(call->daddr)))) &&
		key_put(r, call->op, call->op_len + 1u) &&
		key_put(r, call->collection, call->collection_len + 1u) &&
		key_put(r, call->status, call->status_len + 1u);

	if (!fits)
		r->key_len = 0;
}

/* The call the BPF side followed whole (bpf/proto/redis.bpf.h) that is
 * being observed: read() fills it, observe() reads it. */
static struct db_call_record folded;

/* Starts folded afresh as a call of the process of hdr, named comm, to
 * the system of proto, its command numbered op: the system, or NULL,
 * counted in r, when the daemon knows no such system or command. */
static const struct db_system *
folded_start(uint8_t proto, uint16_t op, const struct sonde_event_header *hdr,
	     const char *comm, struct proto_record *r)
{
	const struct db_system *sys = system_of(proto);
	const char *name = sys && sys->op_name ? sys->op_name(op) : NULL;
	struct db_call_record *rec = &folded;

	if (!name) {
		r->error = PARSE_ERROR_DB_CALL;
		return NULL;
	}
	memset(rec, 0, sizeof(*rec));
	rec->hdr = *hdr;
	rec->system_name = sys->name;
	memcpy(rec->comm, comm, sizeof(rec->comm));
	rec->op_len = copy_text(rec->op, name, sizeof(rec->op));
	return sys;
}

/* Fills folded from ev; false, counted in r, when the daemon does not
 * know its system or its command. */
static bool folded_read(const struct sonde_db_call_event *ev,
			struct proto_record *r)
{
	const struct db_system *sys =
		folded_start(ev->proto, ev->op, &ev->hdr, ev->comm, r);
	struct db_call_record *rec = &folded;

	if (!sys)
		return false;
	rec->start_ns = ev->start_ns;
	rec->end_ns =
		ev->hdr.ts_ns > ev->start_ns ? ev->hdr.ts_ns : ev->start_ns;
	rec->duration_ns = rec->end_ns - rec->start_ns;
	rec->tid = ev->tid;
	memcpy(rec->daddr, ev->daddr, sizeof(rec->daddr));
	rec->sport = ev->sport;
	rec->dport = ev->dport;
	rec->family = ev->family;
	rec->role = ev->role;
	rec->error = ev->error;
	if (ev->error && sys->status_of)
		sys->status_of((const uint8_t *)ev->status, sizeof(ev->status),
			       rec->status);
	rec->status_len = (uint8_t)strlen(rec->status);
	return true;
}

/* The merge of the calls being observed that the BPF side summed. */
static struct registry_merge summed;
static uint64_t summed_buckets[SONDE_DB_SUM_BOUNDS + 1];

/* Fills folded with what the calls of ev's key share, and summed with
 * their growth; false when the daemon does not know their system or
 * command: each of the calls is then counted lost. */
static bool sums_read(const struct sonde_db_sums_event *ev,
		      struct proto_record *r)
{
	bool server = ev->key.role == SONDE_ROLE_SERVER;
	struct db_call_record *rec = &folded;

	if (!folded_start(ev->key.proto, ev->key.op, &ev->hdr, ev->grew.comm,
			  r)) {
		events_count_parse_errors(r->error, ev->count);
		return false;
	}
	memcpy(rec->daddr, ev->key.daddr, sizeof(rec->daddr));
	rec->sport = server ? ev->key.port : 0;
	rec->dport = server ? 0 : ev->key.port;
	rec->family = ev->key.family;
	rec->role = ev->key.role;
	summed.count = ev->count;
	summed.sum_ns = ev->grew.sum_ns;
	for (size_t b = 0; b <= SONDE_DB_SUM_BOUNDS; b++)
		summed_buckets[b] = ev->grew.buckets[b];
	summed.buckets = summed_buckets;
	summed.bounds = registry_family_bounds(server ? &family_db_server :
							&family_db_client);
	r->merge = &summed;
	/* A client's sums are of its process, whatever its local ports:
	 * the BPF side sums none the selection judges by them. */
	r->filter = server ? PROTO_FILTER_CONN : PROTO_FILTER_PROCESS;
	return true;
}

static enum proto_next db_read(const void *rec, size_t size,
			       struct proto_record *r)
{
	const struct db_call_record *call = rec;

	if (call->hdr.kind == SONDE_EV_DB_SUMS) {
		if (!sums_read(rec, r))
			return PROTO_NEXT_NOTHING; /* counted, every call */
		call = &folded;
	} else if (call->hdr.kind == SONDE_EV_DB_CALL) {
		if (!folded_read(rec, r))
			return PROTO_NEXT_ERROR;
		call = &folded;
	} else if (call->hdr.kind != DB_CALL_KIND) {
		return bytes_read(rec, size);
	}
	r->tgid = call->hdr.tgid;
	r->comm = call->comm;
	if (!r->merge)
		r->filter = PROTO_FILTER_CONN;
	r->port = call->sport;
	r->value = call->duration_ns;
	call_key(call, r);
	return PROTO_NEXT_OBSERVE;
}

/* Label text for the observation being made: the registry copies it. */
static char peer_text[48], port_text[8];

static unsigned db_observe(const void *rec, size_t size,
			   const struct proto_record *r, struct proto_obs *obs)
{
	const struct db_call_record *call = rec;
	struct proto_obs *o = &obs[0];

	(void)size;
	if (call->hdr.kind == SONDE_EV_DB_CALL ||
	    call->hdr.kind == SONDE_EV_DB_SUMS)
		call = &folded;
	o->op = r->merge ? PROTO_MERGE : PROTO_OBSERVE;
	o->merge = r->merge;
	o->value = r->value;
	o->error = call->error;
	o->values[DB_SYSTEM] = call->system_name;
	o->values[DB_OPERATION] = call->op;
	o->values[DB_COLLECTION] = call->collection;
	o->values[DB_STATUS] = call->status;
	o->values[DB_ERROR_TYPE] = !call->error	   ? "" :
				   call->status[0] ? call->status :
						     "_OTHER";
	if (call->role == SONDE_ROLE_SERVER) {
		fmt_uint(call->sport, port_text, sizeof(port_text));
		o->family = &family_db_server;
		o->nfixed = DB_SERVER_NLABELS;
		o->values[DB_SERVER_PORT] = port_text;
		return 1;
	}
	if (fmt_address(call->family, call->daddr, peer_text,
			sizeof(peer_text)))
		strcpy(peer_text, ROUTE_UNKNOWN);
	fmt_uint(call->dport, port_text, sizeof(port_text));
	o->family = &family_db_client;
	o->nfixed = DB_CLIENT_NLABELS;
	o->values[DB_CLIENT_ADDRESS] = peer_text;
	o->values[DB_CLIENT_PORT] = port_text;
	if (o->span.want && !r->merge) {
		/* Operation and table only: the statement stays here. */
		o->span.start_ns = call->start_ns;
		o->span.end_ns = call->end_ns;
		o->span.tid = call->tid;
		o->span.sport = call->sport;
		o->span.dport = call->dport;
		o->span.traceparent = o->span.tracestate = o->span.path = NULL;
	}
	return 1;
}

static const void *db_ready(size_t *size)
{
	const struct db_call_record *rec;

	if (!qlen)
		return NULL;
	/* The slot is free from now on, and stays as it is until the next
	 * record of bytes finishes calls: the dispatcher is done with it
	 * by then. */
	rec = &queue[qhead];
	qhead = (qhead + 1) % qcap;
	qlen--;
	*size = sizeof(*rec);
	return rec;
}

/* A connection the kernel no longer tracks (arg: the proto_open_fn
 * that asks). */
static bool closed(const struct db_entry *e, void *arg)
{
	proto_open_fn *open = arg;

	return !(*open)(e->tgid, e->fd, e->sk);
}

static void db_sweep(proto_open_fn open)
{
	forget_where(closed, &open);
}

static void db_clear(void)
{
	for (size_t i = 0; i < table.nslots; i++) {
		struct db_entry *e = entry_at(i);

		if (e->conn) {
			db_conn_free(e->conn);
			holdq_free(&e->held, &budget);
		}
	}
	probe_free(&table);
	nsuperseded = 0;
	qhead = qlen = 0;
}

static unsigned db_end_round(enum parse_error *why)
{
	struct db_losses lost;

	/* A record held this long waits for one that was lost. */
	rounds++;
	for (size_t i = 0; budget.queues && i < table.nslots; i++) {
		struct db_entry *e = entry_at(i);

		if (e->conn && holdq_waited(&e->held, rounds, HELD_ROUNDS))
			take_held(e, false);
	}
	if (nsuperseded)
		forget_where(superseded_long_enough, NULL);
	lost = db_take_losses();
	events_count_parse_errors(PARSE_ERROR_DB_CALL, lost.calls);
	*why = PARSE_ERROR_DB_STREAM;
	lost.streams += db_full;
	db_full = 0;
	return lost.streams > UINT_MAX ? UINT_MAX : (unsigned)lost.streams;
}

/* The protocol of database records, in dispatch.c's table. */
const struct proto proto_db = {
	.name = "db",
	.kind = SONDE_EV_DB,
	.min_size = SONDE_DB_BYTES(0),
	.read = db_read,
	.observe = db_observe,
	.sweep = db_sweep,
	.clear = db_clear,
	.ready = db_ready,
	.end_round = db_end_round,
};

/* The calls the BPF side summed (kernel/dbsums.h): each key's growth
 * read and observed as one merge into the series its calls' records
 * would have gone to. */
const struct proto proto_db_sums = {
	.name = "db_sums",
	.kind = SONDE_EV_DB_SUMS,
	.min_size = sizeof(struct sonde_db_sums_event),
	.read = db_read,
	.observe = db_observe,
};

/* The calls the BPF side followed whole: read and observed as the
 * calls above, each at once. */
const struct proto proto_db_call = {
	.name = "db_call",
	.kind = SONDE_EV_DB_CALL,
	.min_size = sizeof(struct sonde_db_call_event),
	.read = db_read,
	.observe = db_observe,
};
