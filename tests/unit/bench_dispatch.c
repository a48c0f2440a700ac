/* The daemon's cost per record: exchange records as the kernel sends
 * them, fed through the consumer in a loop, timed on the process's own
 * CPU clock. Not a test: `make bench-dispatch` prints ns/record per
 * scenario; under callgrind (BENCH_RECORDS small) it counts instructions
 * repeatably.
 *
 *   direct  tools/bench.py's direct scenario: per request one server
 *           exchange (nginx, "GET / HTTP/1.1" with wrk's Host) and one
 *           client exchange (wrk), every request the same
 *   api     server exchanges of a REST service: paths with ids in them
 *           (each request line differs), a few statuses, captured
 *           X-Tenant-ID; and its client calls to three peers
 *   redis   tools/bench.py's redis scenario: per command the four
 *           database records of a SET or a GET on one of 32 connections
 *           (the client's request and reply, the server's), as
 *           redis-benchmark makes them
 *   postgres tools/bench.py's postgres scenario: per transaction the
 *           four database records of pgbench -S's simple Query and its
 *           reply (RowDescription, DataRow, CommandComplete,
 *           ReadyForQuery) on one of 8 connections, each query's aid
 *           another
 *
 * Usage: bench_dispatch [direct|api|redis|postgres|all] [records] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity/labels.h"
#include "identity/procinfo.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "proto/dispatch.h"
#include "sonde_events.h"
#include "unit.h"

/* Records laid out as in a ring: more of them than the caches hold, so
 * each is read from memory as the consumer reads a ring. */
#define BENCH_POOL 65536
#define BENCH_DEFAULT_RECORDS 4000000
/* No such processes: their comm names them, as for a process gone. */
#define SERVER_TGID 0x7ffffe01u
#define CLIENT_TGID 0x7ffffe02u

struct pool {
	unsigned char *bytes;
	size_t *offset, *size;
	size_t n, used, room;
};

static void *pool_add(struct pool *p, size_t size)
{
	size_t at = p->used;

	if (p->used + size > p->room) {
		p->room = p->room ? 2 * p->room : 1 << 20;
		while (p->used + size > p->room)
			p->room *= 2;
		p->bytes = realloc(p->bytes, p->room);
		if (!p->bytes)
			abort();
	}
	p->offset[p->n] = at;
	p->size[p->n] = size;
	p->n++;
	/* Records start 8-byte aligned, as in the rings. */
	p->used += (size + 7) & ~(size_t)7;
	memset(p->bytes + at, 0, size);
	return p->bytes + at;
}

/* One exchange record with req in its capture and resp as its status
 * line, sized as the kernel sizes it. */
static void add_exchange(struct pool *p, int role, const char *req,
			 const char *resp, uint16_t port, uint8_t peer,
			 uint64_t ns)
{
	size_t len = strlen(req), room;
	struct sonde_http_event *ev;

	if (role == SONDE_ROLE_CLIENT && len > SONDE_CLIENT_REQ_CAP)
		len = SONDE_CLIENT_REQ_CAP;
	room = len <= SONDE_CLIENT_REQ_CAP ? SONDE_CLIENT_REQ_CAP :
	       len <= SONDE_REQ_CAP / 4	   ? SONDE_REQ_CAP / 4 :
	       len <= SONDE_REQ_CAP / 2	   ? SONDE_REQ_CAP / 2 :
					     SONDE_REQ_CAP;
	if (len > room)
		len = room;
	ev = pool_add(p, SONDE_EXCHANGE_BYTES(room));
	ev->hdr.kind = SONDE_EV_HTTP_EXCHANGE;
	ev->hdr.ts_ns = ns;
	ev->start_ns = ns - 250000;
	ev->end_ns = ns;
	ev->family = 2;
	ev->saddr[0] = 127, ev->saddr[3] = 1;
	ev->daddr[0] = 10, ev->daddr[3] = peer;
	ev->fd = 12;
	ev->role = (uint8_t)role;
	if (role == SONDE_ROLE_CLIENT) {
		ev->hdr.tgid = CLIENT_TGID;
		memcpy(ev->comm, "wrk", 3);
		ev->sport = 40000;
		ev->dport = port;
	} else {
		ev->hdr.tgid = SERVER_TGID;
		memcpy(ev->comm, "nginx", 5);
		ev->sport = port;
		ev->dport = 40000;
	}
	ev->req_len = (uint16_t)len;
	memcpy(ev->req, req, len);
	ev->resp_len = (uint16_t)strnlen(resp, SONDE_RESP_CAP);
	memcpy(ev->resp, resp, ev->resp_len);
}

static void fill_direct(struct pool *p)
{
	static const char req[] = "GET / HTTP/1.1\r\n"
				  "Host: 127.0.0.1:41915\r\n\r\n";

	for (size_t i = 0; p->n < BENCH_POOL; i++) {
		add_exchange(p, SONDE_ROLE_SERVER, req, "HTTP/1.1 200 OK\r\n",
			     41915, 1, 1000000 + i * 1000);
		add_exchange(p, SONDE_ROLE_CLIENT, req, "HTTP/1.1 200 OK\r\n",
			     41915, 1, 1000000 + i * 1000);
	}
}

static void fill_api(struct pool *p)
{
	static const char *const paths[] = {
		"/api/v1/users/%u",
		"/api/v1/users/%u/orders?page=2",
		"/api/v1/orders/%u/items/%u",
		"/static/app.js",
		"/healthz",
	};
	static const char *const statuses[] = {
		"HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\n",
		"HTTP/1.1 200 OK\r\n", "HTTP/1.1 404 Not F",
		"HTTP/1.1 500 Inter",
	};
	static const char *const methods[] = { "GET", "GET", "POST", "GET" };
	uint32_t seed = 42;

	for (size_t i = 0; p->n < BENCH_POOL; i++) {
		char path[64], req[SONDE_REQ_CAP];
		unsigned r = unit_xorshift32(&seed);
		unsigned which = r % 5;

		snprintf(path, sizeof(path), paths[which], r % 100000,
			 r % 7 + 1);
		snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: api.internal:8080\r\n"
			 "User-Agent: okhttp/4.12.0\r\nAccept: */*\r\n"
			 "X-Tenant-ID: tenant-%u\r\n\r\n",
			 methods[r / 5 % 4], path, r / 20 % 8);
		add_exchange(p, SONDE_ROLE_SERVER, req, statuses[r / 160 % 5],
			     8080, 0, 1000000 + i * 1000);
		add_exchange(p, SONDE_ROLE_CLIENT, req, statuses[r / 160 % 5],
			     5432, (uint8_t)(r / 800 % 3 + 1),
			     1000000 + i * 1000);
	}
}

/* A database load: its system, its server's port, and the names of the
 * client and the server. */
struct db_load {
	uint8_t proto;
	uint16_t port;
	const char *client, *server;
};

static const struct db_load redis_load = { SONDE_PROTO_REDIS, 6379,
					   "redis-benchmark", "redis-server" };
static const struct db_load pg_load = { SONDE_PROTO_POSTGRESQL, 5432, "pgbench",
					"postgres" };

/* The len bytes one read or write moved on connection conn of load's
 * client (role client) or server (role server), the seq-th that way. */
static void add_db(struct pool *p, const struct db_load *load, int role,
		   unsigned conn, int from_client, uint32_t seq,
		   const void *bytes, size_t len, uint64_t ns)
{
	size_t room = len <= SONDE_DB_SMALL ? SONDE_DB_SMALL : SONDE_DB_MEDIUM;
	struct sonde_db_event *ev = pool_add(p, SONDE_DB_BYTES(room));
	const char *comm =
		role == SONDE_ROLE_CLIENT ? load->client : load->server;

	ev->hdr.kind = SONDE_EV_DB;
	ev->hdr.ts_ns = ns;
	ev->sk = 0xffff888000100000ULL + conn * 0x1000 + role;
	ev->family = 2;
	ev->daddr[0] = 127, ev->daddr[3] = 1;
	ev->fd = 10 + conn;
	ev->total = (uint32_t)len;
	ev->len = (uint16_t)len;
	ev->proto = load->proto;
	ev->from_client = (uint8_t)from_client;
	ev->role = (uint8_t)role;
	ev->seq = seq;
	ev->order =
		2 * seq + !from_client; /* requests and replies take turns */
	ev->starts = 1;
	ev->hdr.tgid = role == SONDE_ROLE_CLIENT ? CLIENT_TGID : SERVER_TGID;
	memcpy(ev->comm, comm, strlen(comm));
	ev->sport = role == SONDE_ROLE_CLIENT ? (uint16_t)(40000 + conn) :
						load->port;
	ev->dport = role == SONDE_ROLE_CLIENT ? load->port :
						(uint16_t)(40000 + conn);
	memcpy(ev->data, bytes, len);
}

static void add_redis(struct pool *p, int role, unsigned conn, int from_client,
		      uint32_t seq, const char *bytes, uint64_t ns)
{
	add_db(p, &redis_load, role, conn, from_client, seq, bytes,
	       strlen(bytes), ns);
}

static void fill_redis(struct pool *p)
{
	static const char set[] = "*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__"
				  "\r\n$3\r\nxxx\r\n";
	static const char get[] = "*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__"
				  "\r\n";
	uint32_t seq[32] = { 0 };

	for (size_t i = 0; p->n + 4 <= BENCH_POOL; i++) {
		unsigned c = i % 32;
		bool is_set = i / 4096 % 2 == 0;
		uint64_t ns = 1000000 + i * 1000;

		add_redis(p, SONDE_ROLE_CLIENT, c, 1, seq[c],
			  is_set ? set : get, ns);
		add_redis(p, SONDE_ROLE_SERVER, c, 1, seq[c],
			  is_set ? set : get, ns + 100);
		add_redis(p, SONDE_ROLE_SERVER, c, 0, seq[c],
			  is_set ? "+OK\r\n" : "$3\r\nxxx\r\n", ns + 200);
		add_redis(p, SONDE_ROLE_CLIENT, c, 0, seq[c],
			  is_set ? "+OK\r\n" : "$3\r\nxxx\r\n", ns + 300);
		seq[c]++;
	}
}

/* Appends a PostgreSQL message at *at: its type, its length (its own
 * four bytes and the n of body), its body. */
static void pg_message(uint8_t *buf, size_t *at, char type, const void *body,
		       size_t n)
{
	uint32_t len = (uint32_t)(4 + n);

	buf[(*at)++] = (uint8_t)type;
	for (int shift = 24; shift >= 0; shift -= 8)
		buf[(*at)++] = (uint8_t)(len >> shift);
	memcpy(buf + *at, body, n);
	*at += n;
}

static void fill_pg(struct pool *p)
{
	/* RowDescription of one int4 column, "abalance". */
	static const uint8_t row_desc[] = {
		0,    1,				       /* one field */
		'a',  'b',  'a',  'l',	'a', 'n', 'c', 'e', 0, /* its name */
		0,    0,    0x40, 0x1c, 0,   3, /* table oid, column */
		0,    0,    0,	  23,	0,   4, /* int4, 4 bytes */
		0xff, 0xff, 0xff, 0xff, 0,   0	/* no modifier, text */
	};
	static const uint8_t data_row[] = { 0, 1, 0, 0, 0, 1, '0' };
	uint8_t query[128], reply[128];
	uint32_t seq[8] = { 0 };

	for (size_t i = 0; p->n + 4 <= BENCH_POOL; i++) {
		unsigned c = i % 8;
		uint64_t ns = 1000000 + i * 1000;
		size_t qn = 0, rn = 0;
		char sql[96];
		int n = snprintf(sql, sizeof(sql),
				 "SELECT abalance FROM pgbench_accounts "
				 "WHERE aid = %zu;",
				 1 + i * 7919 % 100000);

		pg_message(query, &qn, 'Q', sql, (size_t)n + 1);
		pg_message(reply, &rn, 'T', row_desc, sizeof(row_desc));
		pg_message(reply, &rn, 'D', data_row, sizeof(data_row));
		pg_message(reply, &rn, 'C', "SELECT 1", 9);
		pg_message(reply, &rn, 'Z', "I", 1);
		add_db(p, &pg_load, SONDE_ROLE_CLIENT, c, 1, seq[c], query, qn,
		       ns);
		add_db(p, &pg_load, SONDE_ROLE_SERVER, c, 1, seq[c], query, qn,
		       ns + 100);
		add_db(p, &pg_load, SONDE_ROLE_SERVER, c, 0, seq[c], reply, rn,
		       ns + 200);
		add_db(p, &pg_load, SONDE_ROLE_CLIENT, c, 0, seq[c], reply, rn,
		       ns + 300);
		seq[c]++;
	}
}

/* A fresh registry, with X-Tenant-ID captured as the README shows. */
static void setup(bool headers)
{
	static struct metric_family server;
	char *hdrs[] = { "header=X-Tenant-ID,label=tenant_id" }, err[256];
	struct registry_limits lim = { .max_routes_per_service = 100,
				       .max_peers_per_service = 100,
				       .max_series = 10000 };
	struct histogram_bounds b;

	if (!server.name)
		server = family_http_server;
	registry_free();
	family_http_server = server;
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	labels_reset();
	if (labels_init(&family_http_server, NULL, 0, hdrs, headers ? 1 : 0,
			err, sizeof(err))) {
		fprintf(stderr, "bench_dispatch: %s\n", err);
		exit(1);
	}
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void run(const char *name, void (*fill)(struct pool *), bool headers,
		size_t records)
{
	struct pool p = { 0 };
	uint64_t t0, t1;
	size_t i;

	p.offset = calloc(BENCH_POOL, sizeof(*p.offset));
	p.size = calloc(BENCH_POOL, sizeof(*p.size));
	if (!p.offset || !p.size)
		abort();
	fill(&p);
	setup(headers);
	/* One pass to name the processes and make the series. */
	for (i = 0; i < p.n; i++)
		dispatch_record(NULL, p.bytes + p.offset[i], p.size[i]);
	t0 = cpu_ns();
	for (i = 0; i < records; i++) {
		size_t at = i % p.n;

		dispatch_record(NULL, p.bytes + p.offset[at], p.size[at]);
	}
	t1 = cpu_ns();
	printf("%-8s %8zu records  %7.1f ns/record  %u series\n", name, records,
	       (double)(t1 - t0) / (double)records, registry_series_count());
	free(p.bytes);
	free(p.offset);
	free(p.size);
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "all";
	size_t records =
		argc > 2 ? strtoul(argv[2], NULL, 10) : BENCH_DEFAULT_RECORDS;
	bool all = strcmp(which, "all") == 0;

	if (all || strcmp(which, "direct") == 0)
		run("direct", fill_direct, false, records);
	if (all || strcmp(which, "api") == 0)
		run("api", fill_api, true, records);
	if (all || strcmp(which, "redis") == 0)
		run("redis", fill_redis, false, records);
	if (all || strcmp(which, "postgres") == 0)
		run("postgres", fill_pg, false, records);
	registry_free();
	procinfo_free();
	return 0;
}
