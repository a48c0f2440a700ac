/* The calls a database parser finishes, as the parsers' unit tests see
 * them (test_pg.c, test_mysql.c, test_redis.c, test_memcached.c): the
 * stream framework's test sink (db_test_sink) copies each into calls[]. */
#ifndef SONDE_TEST_DBCALLS_H
#define SONDE_TEST_DBCALLS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/db.h"
#include "unit.h"

#define MAX_CALLS 8192

/* A finished call, its labels copied out of the sink. */
struct call {
	char system[16];
	char op[DB_OP_MAX];
	char coll[DB_COLL_MAX];
	char status[DB_STATUS_MAX];
	bool error;
	uint64_t start, end;
};

static struct call calls[MAX_CALLS];
/* Calls finished since calls_reset; the first MAX_CALLS are in calls. */
static unsigned ncalls;
/* When set, sees every call before it is kept: a test's own check of
 * each call's labels. */
static void (*calls_check)(const struct db_result *r);

static void calls_copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "(null)");
}

static void calls_sink(const struct db_result *r)
{
	struct call *k;

	if (calls_check)
		calls_check(r);
	if (ncalls >= MAX_CALLS) {
		ncalls++;
		return;
	}
	k = &calls[ncalls++];
	calls_copy(k->system, sizeof(k->system), r->system_name);
	calls_copy(k->op, sizeof(k->op), r->op);
	calls_copy(k->coll, sizeof(k->coll), r->collection);
	calls_copy(k->status, sizeof(k->status), r->status);
	k->error = r->error;
	k->start = r->start_ns;
	k->end = r->end_ns;
}

/* calls[] emptied, and the sink set: the next calls finished go there. */
static void calls_reset(void)
{
	ncalls = 0;
	db_test_sink = calls_sink;
}

/* calls[i] is a call of system with these labels (status "" for a
 * success, which sets no error) from start to end. */
static inline void calls_expect(unsigned i, const char *system, const char *op,
				const char *coll, const char *status,
				uint64_t start, uint64_t end)
{
	CHECK(i < ncalls);
	if (i >= ncalls)
		return;
	CHECK_STR(calls[i].system, system);
	CHECK_STR(calls[i].op, op);
	CHECK_STR(calls[i].coll, coll);
	CHECK_STR(calls[i].status, status);
	CHECK(calls[i].error == (status != NULL && status[0] != '\0'));
	if (calls[i].start != start || calls[i].end != end)
		fprintf(stderr, "  call %u: %llu..%llu, want %llu..%llu\n", i,
			(unsigned long long)calls[i].start,
			(unsigned long long)calls[i].end,
			(unsigned long long)start, (unsigned long long)end);
	CHECK(calls[i].start == start);
	CHECK(calls[i].end == end);
}

/* A connection of sys, a server's or a client's, whose calls go to
 * calls[], emptied. */
static inline struct db_conn *calls_open(const struct db_system *sys,
					 bool server)
{
	calls_reset();
	return db_conn_new(sys, server);
}

#endif
