/* Unit tests for user/proto/pg.c through the streams of dbstream.c: the
 * messages of protocol 3 built byte by byte, fed as the reads and writes
 * of a connection, and the calls they finish read back from the test
 * sink with their times. Ends with a fixed-seed fuzz loop that checks
 * only invariants. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/db.h"
#include "dbcalls.h"
#include "unit.h"

/* ---- the calls finished ---- */

static struct db_conn *conn(bool server)
{
	return calls_open(&db_postgresql, server);
}

/* The i-th call finished is op on coll, ok or failed with status, timed
 * from start to end. */
static void check_call(unsigned i, const char *op, const char *coll,
		       const char *status, uint64_t start, uint64_t end)
{
	calls_expect(i, "postgresql", op, coll, status, start, end);
}

/* ---- building messages ---- */

struct msg {
	uint8_t b[1 << 17];
	size_t n;
};

static struct msg m; /* what the next feed sends */

static void put8(uint8_t v)
{
	m.b[m.n++] = v;
}

static void put16(uint16_t v)
{
	put8(v >> 8);
	put8(v & 0xff);
}

static void put32(uint32_t v)
{
	put16(v >> 16);
	put16(v & 0xffff);
}

static void put_bytes(const void *p, size_t n)
{
	memcpy(m.b + m.n, p, n);
	m.n += n;
}

/* A string and its NUL. */
static void put_str(const char *s)
{
	put_bytes(s, strlen(s) + 1);
}

/* Starts a typed message; its length is filled in by end_msg. */
static size_t begin_msg(char type)
{
	size_t at;

	put8((uint8_t)type);
	at = m.n;
	put32(0);
	return at;
}

static void end_msg(size_t at)
{
	uint32_t len = (uint32_t)(m.n - at);

	m.b[at] = len >> 24;
	m.b[at + 1] = len >> 16;
	m.b[at + 2] = len >> 8;
	m.b[at + 3] = len;
}

static void empty_msg(char type)
{
	end_msg(begin_msg(type));
}

static void str_msg(char type, const char *s)
{
	size_t at = begin_msg(type);

	put_str(s);
	end_msg(at);
}

/* Client messages. */
static void query_msg(const char *sql)
{
	str_msg('Q', sql);
}

static void parse_msg(const char *name, const char *sql)
{
	size_t at = begin_msg('P');

	put_str(name);
	put_str(sql);
	put16(1); /* one parameter type given */
	put32(23);
	end_msg(at);
}

static void bind_msg(const char *portal, const char *stmt)
{
	size_t at = begin_msg('B');

	put_str(portal);
	put_str(stmt);
	put16(0); /* parameter formats */
	put16(1); /* one parameter */
	put32(2);
	put_bytes("42", 2);
	put16(0); /* result formats */
	end_msg(at);
}

static void describe_msg(char kind, const char *name)
{
	size_t at = begin_msg('D');

	put8((uint8_t)kind);
	put_str(name);
	end_msg(at);
}

static void close_msg(char kind, const char *name)
{
	size_t at = begin_msg('C');

	put8((uint8_t)kind);
	put_str(name);
	end_msg(at);
}

static void execute_msg(const char *portal, uint32_t max_rows)
{
	size_t at = begin_msg('E');

	put_str(portal);
	put32(max_rows);
	end_msg(at);
}

static void sync_msg(void)
{
	empty_msg('S');
}

static void flush_msg(void)
{
	empty_msg('H');
}

static void copy_data(const char *row)
{
	size_t at = begin_msg('d');

	put_bytes(row, strlen(row));
	end_msg(at);
}

static void function_call(void)
{
	size_t at = begin_msg('F');

	put32(955); /* lo_open's OID */
	put16(0);
	put16(1);
	put32(4);
	put32(1234);
	put16(0);
	end_msg(at);
}

static void startup(void)
{
	size_t at = m.n;

	put32(0);
	put32(196608);
	put_str("user");
	put_str("bob");
	put_str("database");
	put_str("shop");
	put8(0);
	m.b[at + 3] = (uint8_t)(m.n - at);
}

static void untyped_request(uint32_t code)
{
	put32(8);
	put32(code);
}

/* Server messages. */
static void ready(char status)
{
	size_t at = begin_msg('Z');

	put8((uint8_t)status);
	end_msg(at);
}

static void row_description(void)
{
	size_t at = begin_msg('T');

	put16(1);
	put_str("id");
	put32(16384);
	put16(1);
	put32(23);
	put16(4);
	put32(UINT32_MAX);
	put16(0);
	end_msg(at);
}

static void data_row(const char *v)
{
	size_t at = begin_msg('D');

	put16(1);
	put32((uint32_t)strlen(v));
	put_bytes(v, strlen(v));
	end_msg(at);
}

static void error_response(const char *severity, const char *code)
{
	size_t at = begin_msg('E');

	put8('S');
	put_str(severity);
	put8('V');
	put_str(severity);
	put8('C');
	put_str(code);
	put8('M');
	put_str("relation \"missing\" does not exist");
	put8(0);
	end_msg(at);
}

static void login_ok(void)
{
	size_t at = begin_msg('R');

	put32(0);
	end_msg(at);
	at = begin_msg('S');
	put_str("server_version");
	put_str("16.2");
	end_msg(at);
	at = begin_msg('K');
	put32(4242);
	put32(0xdeadbeef);
	end_msg(at);
	ready('I');
}

/* A SELECT's reply in the extended protocol, after its BindComplete. */
static void rows(const char *tag)
{
	row_description();
	data_row("1");
	data_row("2");
	str_msg('C', tag);
}

/* Sends what was built as one write (client) or read (server) at ts. */
static void send_as(struct db_conn *c, bool from_client, uint64_t ts)
{
	db_feed(c, from_client, m.b, m.n, m.n, ts);
	m.n = 0;
}

static void cli(struct db_conn *c, uint64_t ts)
{
	send_as(c, true, ts);
}

static void srv(struct db_conn *c, uint64_t ts)
{
	send_as(c, false, ts);
}

/* ---- simple queries ---- */

TEST(simple_query)
{
	struct db_conn *c = conn(false);

	query_msg("SELECT * FROM orders WHERE id = 1");
	cli(c, 100);
	row_description();
	data_row("1");
	srv(c, 150);
	str_msg('C', "SELECT 1");
	srv(c, 200);
	CHECK(ncalls == 0); /* a Query ends at its ReadyForQuery */
	ready('I');
	srv(c, 250);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "orders", "", 100, 250);
	CHECK(db_calls_open(c) == 0);

	/* Two more, answered in one read. */
	query_msg("insert into public.orders values (1)");
	cli(c, 300);
	query_msg("DELETE FROM orders");
	cli(c, 310);
	str_msg('C', "INSERT 0 1");
	ready('T');
	str_msg('C', "DELETE 3");
	ready('I');
	srv(c, 400);
	CHECK(ncalls == 3);
	check_call(1, "INSERT", "public.orders", "", 300, 400);
	check_call(2, "DELETE", "orders", "", 310, 400);
	db_conn_free(c);
}

TEST(simple_query_error)
{
	struct db_conn *c = conn(true);

	query_msg("SELECT * FROM missing");
	cli(c, 10);
	error_response("ERROR", "42P01");
	srv(c, 20);
	CHECK(ncalls == 0);
	ready('I');
	srv(c, 30);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "missing", "42P01", 10, 30);

	/* A malformed SQLSTATE: failed, status left empty. */
	query_msg("SELECT 1");
	cli(c, 40);
	error_response("ERROR", "42p01");
	ready('I');
	srv(c, 50);
	CHECK(ncalls == 2);
	if (ncalls == 2) {
		CHECK_STR(calls[1].status, "");
		CHECK(calls[1].error);
	}
	db_conn_free(c);
}

TEST(multi_statement_query_is_one_call)
{
	struct db_conn *c = conn(false);

	query_msg("BEGIN; SELECT * FROM t; COMMIT");
	cli(c, 1000);
	str_msg('C', "BEGIN");
	rows("SELECT 2");
	str_msg('C', "COMMIT");
	srv(c, 1100);
	CHECK(ncalls == 0);
	ready('I');
	srv(c, 1200);
	CHECK(ncalls == 1);
	check_call(0, "BEGIN", "", "", 1000, 1200);

	/* An error in the second statement: the rest is skipped, the
	 * status is the first error's. */
	query_msg("BEGIN; SELECT * FROM missing; COMMIT");
	cli(c, 2000);
	str_msg('C', "BEGIN");
	error_response("ERROR", "42P01");
	error_response("ERROR", "25P02");
	ready('E');
	srv(c, 2100);
	CHECK(ncalls == 2);
	check_call(1, "BEGIN", "", "42P01", 2000, 2100);
	db_conn_free(c);
}

TEST(empty_query_and_notices)
{
	struct db_conn *c = conn(false);
	size_t at;

	query_msg("");
	cli(c, 1);
	empty_msg('I');
	srv(c, 2);
	CHECK(ncalls == 0);
	ready('I');
	srv(c, 3);
	check_call(0, "_OTHER", "", "", 1, 3);

	/* A notice, a notification and a parameter change are not
	 * replies. */
	query_msg("VACUUM t");
	cli(c, 10);
	at = begin_msg('N');
	put8('S');
	put_str("NOTICE");
	put8(0);
	end_msg(at);
	at = begin_msg('A');
	put32(77);
	put_str("chan");
	put_str("payload");
	end_msg(at);
	str_msg('C', "VACUUM");
	ready('I');
	srv(c, 20);
	CHECK(ncalls == 2);
	check_call(1, "VACUUM", "", "", 10, 20);
	db_conn_free(c);
}

TEST(fatal_error_ends_query_at_once)
{
	struct db_conn *c = conn(false);

	query_msg("SELECT pg_sleep(10)");
	cli(c, 5);
	error_response("FATAL", "57P01");
	srv(c, 9);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "", "57P01", 5, 9);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

/* ---- the extended protocol ---- */

TEST(extended_named_and_unnamed)
{
	struct db_conn *c = conn(false);

	parse_msg("s1", "SELECT * FROM accounts WHERE id = $1");
	parse_msg("", "UPDATE ledger SET x = $1");
	bind_msg("", "s1");
	execute_msg("", 0);
	bind_msg("", "");
	execute_msg("", 0);
	sync_msg();
	cli(c, 100);
	empty_msg('1');
	empty_msg('1');
	empty_msg('2');
	srv(c, 110);
	rows("SELECT 2");
	srv(c, 120);
	empty_msg('2');
	srv(c, 130);
	str_msg('C', "UPDATE 1");
	srv(c, 140);
	ready('I');
	srv(c, 150);
	CHECK(ncalls == 2);
	check_call(0, "SELECT", "accounts", "", 100, 120);
	check_call(1, "UPDATE", "ledger", "", 100, 140);

	/* The named statement again, bound to a named portal. */
	bind_msg("p1", "s1");
	execute_msg("p1", 0);
	sync_msg();
	cli(c, 200);
	empty_msg('2');
	rows("SELECT 1");
	ready('I');
	srv(c, 210);
	CHECK(ncalls == 3);
	check_call(2, "SELECT", "accounts", "", 200, 210);
	db_conn_free(c);
}

TEST(pipelined_executes_each_timed)
{
	struct db_conn *c = conn(false);
	uint64_t t = 1000;

	/* Three statements, each Parse/Bind/Execute written separately,
	 * and one Sync. */
	parse_msg("", "SELECT * FROM a");
	bind_msg("", "");
	execute_msg("", 0);
	cli(c, 1000);
	parse_msg("", "INSERT INTO b VALUES ($1)");
	bind_msg("", "");
	execute_msg("", 0);
	cli(c, 1010);
	parse_msg("", "DELETE FROM c");
	bind_msg("", "");
	execute_msg("", 0);
	sync_msg();
	cli(c, 1020);
	for (int i = 0; i < 3; i++) {
		empty_msg('1');
		empty_msg('2');
		if (i == 0)
			rows("SELECT 2");
		else
			str_msg('C', i == 1 ? "INSERT 0 1" : "DELETE 0");
		srv(c, t += 100);
	}
	ready('I');
	srv(c, 2000);
	CHECK(ncalls == 3);
	check_call(0, "SELECT", "a", "", 1000, 1100);
	check_call(1, "INSERT", "b", "", 1010, 1200);
	check_call(2, "DELETE", "c", "", 1020, 1300);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(error_mid_pipeline_drops_the_rest)
{
	struct db_conn *c = conn(false);

	for (int i = 0; i < 4; i++) {
		parse_msg("",
			  i == 1 ? "SELECT * FROM missing" : "SELECT * FROM t");
		bind_msg("", "");
		execute_msg("", 0);
	}
	sync_msg();
	cli(c, 10);
	empty_msg('1');
	empty_msg('2');
	rows("SELECT 2");
	srv(c, 20);
	error_response("ERROR", "42P01");
	srv(c, 30);
	CHECK(ncalls == 2);
	/* No ParseComplete came: the second Parse failed. Its Execute and
	 * the Parses and Executes after it wait for the Sync's reply. */
	CHECK(db_calls_open(c) == 5);
	ready('E');
	srv(c, 40);
	CHECK(ncalls == 2);
	check_call(0, "SELECT", "t", "", 10, 20);
	check_call(1, "SELECT", "missing", "42P01", 10, 30);
	CHECK(db_calls_open(c) == 0);

	/* The connection goes on in step. */
	query_msg("SELECT * FROM t");
	cli(c, 50);
	rows("SELECT 2");
	ready('I');
	srv(c, 60);
	CHECK(ncalls == 3);
	check_call(2, "SELECT", "t", "", 50, 60);
	db_conn_free(c);
}

TEST(error_only_in_its_own_sync)
{
	struct db_conn *c = conn(false);

	/* Batch 1 fails; batch 2, pipelined behind it, does not suffer. */
	parse_msg("", "SELECT * FROM missing");
	bind_msg("", "");
	execute_msg("", 0);
	sync_msg();
	parse_msg("", "SELECT * FROM t");
	bind_msg("", "");
	execute_msg("", 0);
	sync_msg();
	cli(c, 10);
	error_response("ERROR", "42P01");
	ready('I');
	srv(c, 20);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "missing", "42P01", 10, 20);
	empty_msg('1');
	empty_msg('2');
	rows("SELECT 2");
	srv(c, 30);
	ready('I');
	srv(c, 40);
	CHECK(ncalls == 2);
	check_call(1, "SELECT", "t", "", 10, 30);

	/* A Parse that fails with no Execute in its Sync is a call of its
	 * own, and ends none sent behind it. */
	parse_msg("bad", "SELEC oops");
	sync_msg();
	query_msg("SELECT 1");
	cli(c, 50);
	error_response("ERROR", "42601");
	ready('I');
	srv(c, 60);
	CHECK(ncalls == 3);
	check_call(2, "_OTHER", "", "42601", 50, 60);
	rows("SELECT 1");
	ready('I');
	srv(c, 70);
	CHECK(ncalls == 4);
	check_call(3, "SELECT", "", "", 50, 70);
	db_conn_free(c);
}

TEST(unknown_statement_is_execute)
{
	struct db_conn *c = conn(false);

	/* Prepared before sonde saw the connection. */
	bind_msg("", "stmtcache_9f2c");
	execute_msg("", 0);
	sync_msg();
	cli(c, 5);
	empty_msg('2');
	str_msg('C', "UPDATE 1");
	ready('I');
	srv(c, 6);
	CHECK(ncalls == 1);
	check_call(0, "EXECUTE", "", "", 5, 6);

	/* A portal never bound that sonde saw. */
	execute_msg("C_5", 100);
	sync_msg();
	cli(c, 7);
	data_row("x");
	empty_msg('s');
	ready('T');
	srv(c, 8);
	CHECK(ncalls == 2);
	check_call(1, "EXECUTE", "", "", 7, 8);

	/* A statement closed is forgotten. */
	parse_msg("s", "SELECT * FROM t");
	sync_msg();
	close_msg('S', "s");
	sync_msg();
	bind_msg("", "s");
	execute_msg("", 0);
	sync_msg();
	cli(c, 9);
	empty_msg('1');
	ready('I');
	empty_msg('3');
	ready('I');
	error_response("ERROR", "26000");
	ready('I');
	srv(c, 10);
	CHECK(ncalls == 3);
	check_call(2, "EXECUTE", "", "26000", 9, 10);
	db_conn_free(c);
}

TEST(statement_cache_keeps_the_recent)
{
	struct db_conn *c = conn(false);
	char name[16], sql[64];

	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		snprintf(sql, sizeof(sql), "SELECT * FROM t%d", i);
		parse_msg(name, sql);
		describe_msg('S', name);
	}
	sync_msg();
	bind_msg("", "s0");
	execute_msg("", 0);
	bind_msg("", "s99");
	execute_msg("", 0);
	sync_msg();
	cli(c, 1);
	for (int i = 0; i < 100; i++) {
		empty_msg('1');
		empty_msg('t');
		empty_msg('n');
	}
	ready('I');
	srv(c, 2);
	CHECK(ncalls == 0);
	str_msg('C', "SELECT 0");
	str_msg('C', "SELECT 0");
	ready('I');
	srv(c, 3);
	CHECK(ncalls == 2);
	check_call(0, "EXECUTE", "", "", 1, 3);
	check_call(1, "SELECT", "t99", "", 1, 3);
	db_conn_free(c);
}

TEST(prepare_with_flush_and_no_sync)
{
	struct db_conn *c = conn(false);

	parse_msg("q1", "SELECT * FROM items WHERE id = $1");
	describe_msg('S', "q1");
	flush_msg();
	cli(c, 10);
	empty_msg('1');
	put8('t');
	put32(10);
	put16(1);
	put32(23);
	row_description();
	srv(c, 20);
	CHECK(ncalls == 0);

	bind_msg("", "q1");
	execute_msg("", 0);
	flush_msg();
	cli(c, 30);
	empty_msg('2');
	rows("SELECT 2");
	srv(c, 40);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "items", "", 30, 40);

	bind_msg("", "q1");
	execute_msg("", 0);
	sync_msg();
	cli(c, 50);
	empty_msg('2');
	rows("SELECT 2");
	srv(c, 60);
	ready('I');
	srv(c, 70);
	CHECK(ncalls == 2);
	check_call(1, "SELECT", "items", "", 50, 60);
	CHECK(db_calls_open(c) == 0);

	/* Parse/Describe/Sync then a Query, pipelined: the prepare's
	 * ReadyForQuery is not the Query's. */
	parse_msg("q2", "SELECT 1");
	describe_msg('S', "q2");
	sync_msg();
	query_msg("SELECT * FROM x");
	cli(c, 80);
	empty_msg('1');
	empty_msg('n');
	ready('I');
	srv(c, 90);
	CHECK(ncalls == 2);
	rows("SELECT 0");
	ready('I');
	srv(c, 100);
	CHECK(ncalls == 3);
	check_call(2, "SELECT", "x", "", 80, 100);
	db_conn_free(c);
}

/* asyncpg's conn.fetch("SELECT 1 FROM missing_table"): it prepares
 * first, the Parse fails, and no Execute is ever sent. */
TEST(parse_error_is_a_failed_call)
{
	struct db_conn *c = conn(false);

	parse_msg("__asyncpg_stmt_1__", "SELECT 1 FROM missing_table");
	describe_msg('S', "__asyncpg_stmt_1__");
	sync_msg();
	cli(c, 100);
	error_response("ERROR", "42P01");
	srv(c, 130);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "missing_table", "42P01", 100, 130);
	ready('I');
	srv(c, 140);
	CHECK(ncalls == 1);
	CHECK(db_calls_open(c) == 0);

	/* Parse/Describe/Flush, the unnamed statement: the client sends
	 * its Sync only after the error. */
	parse_msg("", "DELETE FROM gone WHERE id = $1");
	describe_msg('S', "");
	flush_msg();
	cli(c, 200);
	error_response("ERROR", "42P01");
	srv(c, 210);
	CHECK(ncalls == 2);
	check_call(1, "DELETE", "gone", "42P01", 200, 210);
	sync_msg();
	cli(c, 220);
	ready('I');
	srv(c, 230);
	CHECK(ncalls == 2);
	CHECK(db_calls_open(c) == 0);

	/* A COPY FROM STDIN through the extended protocol whose table is
	 * missing: no copy-in mode, the Sync after its Execute is
	 * answered. */
	parse_msg("", "COPY gone FROM STDIN");
	bind_msg("", "");
	execute_msg("", 0);
	sync_msg();
	cli(c, 250);
	error_response("ERROR", "42P01");
	ready('I');
	srv(c, 260);
	CHECK(ncalls == 3);
	check_call(2, "COPY", "gone", "42P01", 250, 260);
	CHECK(db_calls_open(c) == 0);

	/* Still in step. */
	query_msg("SELECT * FROM t");
	cli(c, 300);
	rows("SELECT 2");
	ready('I');
	srv(c, 310);
	CHECK(ncalls == 4);
	check_call(3, "SELECT", "t", "", 300, 310);
	db_conn_free(c);
}

TEST(prepare_then_execute_is_one_call)
{
	struct db_conn *c = conn(false);

	/* Prepared in its own Sync, executed in the next. */
	parse_msg("s1", "SELECT * FROM accounts WHERE id = $1");
	describe_msg('S', "s1");
	sync_msg();
	cli(c, 10);
	empty_msg('1');
	put8('t');
	put32(10);
	put16(1);
	put32(23);
	row_description();
	ready('I');
	srv(c, 20);
	CHECK(ncalls == 0);
	CHECK(db_calls_open(c) == 0);
	bind_msg("", "s1");
	execute_msg("", 0);
	sync_msg();
	cli(c, 30);
	empty_msg('2');
	rows("SELECT 2");
	ready('I');
	srv(c, 40);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "accounts", "", 30, 40);

	/* Prepared and executed in one Sync, the ParseComplete in a read
	 * of its own. */
	parse_msg("", "UPDATE ledger SET x = $1");
	bind_msg("", "");
	execute_msg("", 0);
	sync_msg();
	cli(c, 50);
	empty_msg('1');
	srv(c, 60);
	CHECK(db_calls_open(c) == 1);
	empty_msg('2');
	str_msg('C', "UPDATE 1");
	ready('I');
	srv(c, 70);
	CHECK(ncalls == 2);
	check_call(1, "UPDATE", "ledger", "", 50, 70);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(pipeline_second_parse_fails)
{
	struct db_conn *c = conn(false);

	parse_msg("", "SELECT * FROM t");
	bind_msg("", "");
	execute_msg("", 0);
	parse_msg("", "SELECT * FROM missing");
	bind_msg("", "");
	execute_msg("", 0);
	sync_msg();
	cli(c, 10);
	empty_msg('1');
	empty_msg('2');
	rows("SELECT 2");
	srv(c, 20);
	error_response("ERROR", "42P01");
	srv(c, 30);
	ready('E');
	srv(c, 40);
	CHECK(ncalls == 2);
	check_call(0, "SELECT", "t", "", 10, 20);
	check_call(1, "SELECT", "missing", "42P01", 10, 30);
	CHECK(db_calls_open(c) == 0);

	/* The first Execute fails: the second Parse is skipped with its
	 * Execute, neither counted. */
	parse_msg("", "INSERT INTO u VALUES ($1)");
	bind_msg("", "");
	execute_msg("", 0);
	parse_msg("", "SELECT * FROM u");
	bind_msg("", "");
	execute_msg("", 0);
	sync_msg();
	cli(c, 50);
	empty_msg('1');
	empty_msg('2');
	error_response("ERROR", "23505");
	ready('I');
	srv(c, 60);
	CHECK(ncalls == 3);
	check_call(2, "INSERT", "u", "23505", 50, 60);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(one_byte_at_a_time)
{
	struct db_conn *c = conn(true);
	uint8_t cl[4096], sv[4096];
	size_t ncl, nsv;
	uint64_t ts = 1;

	startup();
	parse_msg("s", "SELECT * FROM orders");
	bind_msg("", "s");
	describe_msg('P', "");
	execute_msg("", 0);
	sync_msg();
	query_msg("UPDATE orders SET x = 1");
	memcpy(cl, m.b, m.n);
	ncl = m.n;
	m.n = 0;
	login_ok();
	empty_msg('1');
	empty_msg('2');
	rows("SELECT 2");
	ready('I');
	error_response("ERROR", "40P01");
	ready('I');
	memcpy(sv, m.b, m.n);
	nsv = m.n;
	m.n = 0;

	for (size_t i = 0; i < ncl; i++)
		db_feed(c, true, cl + i, 1, 1, ts++);
	for (size_t i = 0; i < nsv; i++)
		db_feed(c, false, sv + i, 1, 1, ts++);
	CHECK(ncalls == 2);
	if (ncalls == 2) {
		CHECK_STR(calls[0].op, "SELECT");
		CHECK_STR(calls[0].coll, "orders");
		CHECK(!calls[0].error);
		CHECK_STR(calls[1].op, "UPDATE");
		CHECK_STR(calls[1].status, "40P01");
		CHECK(calls[0].end < calls[1].end);
		CHECK(calls[1].end == ts - 1);
	}
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

/* ---- long messages and holes ---- */

TEST(big_data_row_with_a_hole)
{
	struct db_conn *c = conn(false);
	size_t at, captured;

	query_msg("SELECT body FROM blobs WHERE id = 7");
	cli(c, 1);
	row_description();
	/* A DataRow of 1 MB, of which the read's capture holds the first
	 * 4000 bytes. */
	at = begin_msg('D');
	put16(1);
	put32(1000000);
	memset(m.b + m.n, 'x', 4000);
	m.n += 4000;
	captured = m.n;
	m.n = at + 4 + 6 + 1000000;
	end_msg(at);
	db_feed(c, false, m.b, captured, m.n, 2);
	m.n = 0;
	CHECK(ncalls == 0);
	str_msg('C', "SELECT 1");
	ready('I');
	srv(c, 3);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "blobs", "", 1, 3);

	/* A DataRow split across two reads with no hole, the second read
	 * finishing it and carrying the end. */
	query_msg("SELECT * FROM t2");
	cli(c, 10);
	data_row("0123456789abcdef");
	str_msg('C', "SELECT 1");
	ready('I');
	db_feed(c, false, m.b, 9, 9, 11);
	db_feed(c, false, m.b + 9, m.n - 9, m.n - 9, 12);
	m.n = 0;
	CHECK(ncalls == 2);
	check_call(1, "SELECT", "t2", "", 10, 12);
	db_conn_free(c);
}

TEST(long_statement_and_bind_with_holes)
{
	struct db_conn *c = conn(false);
	size_t at;
	size_t len;

	/* A Query of 20000 bytes; the write's capture holds its first
	 * 4096. */
	at = begin_msg('Q');
	len = (size_t)snprintf((char *)m.b + m.n, 64,
			       "SELECT * FROM wide WHERE id IN (1");
	m.n += len;
	while (m.n < 20000)
		put_bytes(",1", 2);
	put_str(")");
	end_msg(at);
	db_feed(c, true, m.b, 4096, m.n, 5);
	m.n = 0;
	CHECK(db_calls_open(c) == 1);
	str_msg('C', "SELECT 0");
	ready('I');
	srv(c, 6);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "wide", "", 5, 6);

	/* A statement cut in its table's name is not named after half of
	 * it. */
	at = begin_msg('Q');
	/* 5 + 4071 + 20 = 4096: the capture ends after "orders". */
	memset(m.b + m.n, ' ', 4071);
	m.n += 4071;
	put_bytes("SELECT * FROM orders_archive", 29);
	memset(m.b + m.n, ' ', 5000);
	m.n += 5000;
	put8(0);
	end_msg(at);
	db_feed(c, true, m.b, 4096, m.n, 7);
	m.n = 0;
	ready('I');
	srv(c, 8);
	CHECK(ncalls == 2);
	if (ncalls == 2)
		CHECK_STR(calls[1].coll, "");

	/* Parse, then a Bind of a 100 kB value, split across writes: the
	 * first write's capture ends inside the Bind, after its names; the
	 * Execute and Sync come in the next write. */
	parse_msg("", "INSERT INTO files VALUES ($1)");
	at = begin_msg('B');
	put_str("");
	put_str("");
	put16(0);
	put16(1);
	put32(100000);
	memset(m.b + m.n, 'z', 100000);
	m.n += 100000;
	put16(0);
	end_msg(at);
	db_feed(c, true, m.b, 200, 8192, 10);
	db_feed(c, true, m.b + 8192, 1000, m.n - 8192, 11);
	m.n = 0;
	execute_msg("", 0);
	sync_msg();
	cli(c, 12);
	empty_msg('1');
	empty_msg('2');
	str_msg('C', "INSERT 0 1");
	ready('I');
	srv(c, 13);
	CHECK(ncalls == 3);
	check_call(2, "INSERT", "files", "", 12, 13);
	db_conn_free(c);
}

TEST(stream_lost_then_in_step_again)
{
	struct db_conn *c = conn(false);
	size_t at, captured;

	query_msg("SELECT * FROM big");
	cli(c, 1);
	/* A read's capture ends inside a short DataRow, and the hole goes
	 * on past it, over bytes needed: the stream and the call are
	 * lost. */
	row_description();
	data_row("0123456789");
	captured = m.n - 4;
	data_row("0123456789");
	str_msg('C', "SELECT 2");
	db_feed(c, false, m.b, captured, m.n, 2);
	m.n = 0;
	CHECK(db_calls_open(c) == 0);
	/* The next read starts inside a message, then the end of the
	 * reply: lost again, or taken for a ReadyForQuery answering
	 * nothing. */
	put_bytes("9\0\0\0\x0a"
		  "789",
		  8);
	srv(c, 3);
	ready('I');
	srv(c, 4);
	CHECK(ncalls == 0);

	query_msg("SELECT * FROM t");
	cli(c, 5);
	rows("SELECT 2");
	ready('I');
	srv(c, 6);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "t", "", 5, 6);

	/* The extended protocol too, its statements kept. */
	parse_msg("s", "UPDATE t SET a = 1");
	sync_msg();
	cli(c, 7);
	empty_msg('1');
	ready('I');
	srv(c, 8);
	at = begin_msg('Q');
	put_str("SELECT");
	end_msg(at);
	m.b[at + 3] = 200; /* a length past what comes: a hole in it */
	db_feed(c, true, m.b, m.n, m.n + 50, 9);
	m.n = 0;
	bind_msg("", "s");
	execute_msg("", 0);
	sync_msg();
	cli(c, 10);
	empty_msg('2');
	str_msg('C', "UPDATE 1");
	ready('I');
	srv(c, 11);
	CHECK(ncalls == 2);
	check_call(1, "UPDATE", "t", "", 10, 11);
	db_conn_free(c);
}

/* ---- COPY, functions ---- */

TEST(copy_from_stdin)
{
	struct db_conn *c = conn(false);
	size_t at;

	query_msg("COPY items FROM STDIN");
	cli(c, 100);
	at = begin_msg('G');
	put8(0);
	put16(0);
	end_msg(at);
	srv(c, 110);
	copy_data("1\tone\n");
	copy_data("2\ttwo\n");
	cli(c, 120);
	empty_msg('c');
	cli(c, 130);
	str_msg('C', "COPY 2");
	srv(c, 140);
	CHECK(ncalls == 0);
	ready('I');
	srv(c, 150);
	CHECK(ncalls == 1);
	check_call(0, "COPY", "items", "", 100, 150);

	/* Through the extended protocol, as libpq sends it: the Sync after
	 * the Execute is ignored in copy-in mode, the one after CopyDone
	 * is answered. */
	parse_msg("", "COPY items FROM STDIN");
	bind_msg("", "");
	describe_msg('P', "");
	execute_msg("", 0);
	sync_msg();
	cli(c, 200);
	empty_msg('1');
	empty_msg('2');
	empty_msg('n');
	at = begin_msg('G');
	put8(0);
	put16(0);
	end_msg(at);
	srv(c, 210);
	copy_data("3\tthree\n");
	empty_msg('c');
	sync_msg();
	cli(c, 220);
	str_msg('C', "COPY 1");
	ready('I');
	srv(c, 230);
	CHECK(ncalls == 2);
	check_call(1, "COPY", "items", "", 200, 230);

	/* Still in step. */
	query_msg("SELECT 1");
	cli(c, 300);
	rows("SELECT 1");
	ready('I');
	srv(c, 310);
	CHECK(ncalls == 3);
	check_call(2, "SELECT", "", "", 300, 310);
	db_conn_free(c);
}

TEST(function_call_and_portal_suspended)
{
	struct db_conn *c = conn(false);
	size_t at;

	function_call();
	cli(c, 1);
	at = begin_msg('V');
	put32(4);
	put32(0);
	end_msg(at);
	srv(c, 2);
	CHECK(ncalls == 0);
	ready('T');
	srv(c, 3);
	check_call(0, "CALL", "", "", 1, 3);

	/* A cursor read 10 rows at a time. */
	parse_msg("", "SELECT * FROM big");
	bind_msg("C_1", "");
	execute_msg("C_1", 10);
	sync_msg();
	cli(c, 10);
	empty_msg('1');
	empty_msg('2');
	data_row("1");
	empty_msg('s');
	srv(c, 11);
	ready('T');
	srv(c, 12);
	execute_msg("C_1", 10);
	sync_msg();
	cli(c, 13);
	data_row("11");
	str_msg('C', "SELECT 1");
	ready('T');
	srv(c, 14);
	CHECK(ncalls == 3);
	check_call(1, "SELECT", "big", "", 10, 11);
	check_call(2, "SELECT", "big", "", 13, 14);
	db_conn_free(c);
}

/* ---- the start of a connection ---- */

TEST(startup_message)
{
	struct db_conn *c = conn(true);
	size_t at;

	startup();
	cli(c, 1);
	/* SCRAM: a challenge, the client's answers, then success. */
	at = begin_msg('R');
	put32(10);
	put_str("SCRAM-SHA-256");
	put8(0);
	end_msg(at);
	srv(c, 2);
	at = begin_msg('p');
	put_str("SCRAM-SHA-256");
	put32(4);
	put_bytes("n,,n", 4);
	end_msg(at);
	cli(c, 3);
	login_ok();
	srv(c, 4);
	CHECK(ncalls == 0);
	query_msg("SELECT * FROM t");
	cli(c, 5);
	rows("SELECT 2");
	ready('I');
	srv(c, 6);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "t", "", 5, 6);

	/* Query pipelined right behind the StartupMessage: the login's
	 * ReadyForQuery is not its reply. */
	db_conn_free(c);
	c = conn(false);
	startup();
	query_msg("SELECT * FROM t");
	cli(c, 1);
	login_ok();
	srv(c, 2);
	CHECK(ncalls == 0);
	rows("SELECT 2");
	ready('I');
	srv(c, 3);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "t", "", 1, 3);

	/* A failed login. */
	db_conn_free(c);
	c = conn(false);
	startup();
	cli(c, 1);
	error_response("FATAL", "28P01");
	srv(c, 2);
	CHECK(ncalls == 0);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

static void ssl_then_query(uint32_t code, char answer)
{
	struct db_conn *c = conn(false);

	untyped_request(code);
	cli(c, 1);
	put8((uint8_t)answer);
	srv(c, 2);
	/* Accepted or not, a StartupMessage comes next (through TLS: sonde
	 * sees its plaintext on the same connection). */
	startup();
	cli(c, 3);
	login_ok();
	srv(c, 4);
	query_msg("SELECT * FROM t");
	cli(c, 5);
	rows("SELECT 2");
	ready('I');
	srv(c, 6);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "t", "", 5, 6);
	db_conn_free(c);
}

TEST(ssl_and_gssenc_requests)
{
	ssl_then_query(80877103, 'S');
	ssl_then_query(80877103, 'N');
	ssl_then_query(80877104, 'G');
	ssl_then_query(80877104, 'N');
}

TEST(ssl_answer_seen_without_its_request)
{
	struct db_conn *c = conn(false);

	/* The server's lone 'N', its SSLRequest not seen. */
	put8('N');
	srv(c, 1);
	login_ok();
	srv(c, 2);
	query_msg("SELECT * FROM t");
	cli(c, 3);
	rows("SELECT 2");
	ready('I');
	srv(c, 4);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "t", "", 3, 4);
	db_conn_free(c);
}

TEST(cancel_request)
{
	struct db_conn *c = conn(true);
	uint64_t skip = 1;

	put32(16);
	put32(80877102);
	put32(4242);
	put32(0xdeadbeef);
	CHECK(db_postgresql.parse(c, true, m.b, m.n, 1, &skip) == 16);
	CHECK(skip == 0);
	m.n = 0;
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(connection_seen_mid_life)
{
	struct db_conn *c = conn(false);

	/* The replies to a request sent before sonde: no call to end. */
	data_row("x");
	str_msg('C', "SELECT 1");
	ready('I');
	srv(c, 1);
	CHECK(ncalls == 0);
	query_msg("SELECT * FROM t");
	cli(c, 2);
	rows("SELECT 2");
	ready('I');
	srv(c, 3);
	CHECK(ncalls == 1);
	check_call(0, "SELECT", "t", "", 2, 3);
	db_conn_free(c);
}

/* ---- what is not PostgreSQL ---- */

/* db_postgresql.parse() on bytes, from one side of a fresh connection. */
static size_t parse_once(bool from_client, const void *p, size_t n)
{
	struct db_conn *c = conn(false);
	uint64_t skip = 0;
	size_t used = db_postgresql.parse(c, from_client, p, n, 1, &skip);

	db_conn_free(c);
	return used;
}

TEST(garbage_is_lost)
{
	static const struct {
		bool from_client;
		const char *bytes;
		size_t n;
	} cases[] = {
		{ true, "!\0\0\0\x04", 5 },	     /* unknown type */
		{ false, "Q\0\0\0\x04", 5 },	     /* a client's type */
		{ true, "Q\0\0\0\x03", 5 },	     /* length under 4 */
		{ true, "Q\x40\0\0\x01", 5 },	     /* over 1 GiB */
		{ true, "S\0\0\0\x05x", 6 },	     /* Sync with a body */
		{ false, "Z\0\0\0\x05X", 6 },	     /* unknown status */
		{ false, "1\0\0\0\x05x", 6 },	     /* ParseComplete */
		{ true, "Q\0\0\0\x06xy", 7 },	     /* no NUL */
		{ true, "E\0\0\0\x05\0", 6 },	     /* no max rows */
		{ true, "C\0\0\0\x06Xs\0", 7 },	     /* close what? */
		{ true, "\0\0\0\x08\0\x02\0\0", 8 }, /* protocol 2 */
		{ true, "\0\0\0\x09\x04\xd2\x16\x2f", 8 }, /* long SSL */
		{ true, "\0\0\x40\0\0\x03\0\0", 8 },	   /* huge startup */
		{ true, "\x16\x03\x01\x02\0", 5 },	   /* TLS ClientHello */
		{ false, "HTTP/1.1 200 OK\r\n", 17 },
		{ true, "GET / HTTP/1.1\r\n", 16 },
		{ true, "P\0\0\0\x0bs\0x\0\0\x01", 12 }, /* a type missing */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t used = parse_once(cases[i].from_client, cases[i].bytes,
					 cases[i].n);

		if (used != DB_PARSE_LOST)
			fprintf(stderr, "  case %zu took %zu\n", i, used);
		CHECK(used == DB_PARSE_LOST);
	}
	/* Incomplete heads are waited for, not lost. */
	CHECK(parse_once(true, "Q\0\0", 3) == 0);
	CHECK(parse_once(true, "\0\0\0", 3) == 0);
	CHECK(parse_once(true, "Q\0\0\0\x20SELECT", 11) == 0);
}

/* A finished call's labels stay within their sets whatever was fed. */
static const char *const known_ops[] = {
	"SELECT",  "INSERT",  "UPDATE",	    "DELETE",	"MERGE",     "UPSERT",
	"BEGIN",   "START",   "COMMIT",	    "ROLLBACK", "SAVEPOINT", "RELEASE",
	"CREATE",  "ALTER",   "DROP",	    "TRUNCATE", "COPY",	     "CALL",
	"EXECUTE", "PREPARE", "DEALLOCATE", "WITH",	"SET",	     "SHOW",
	"EXPLAIN", "ANALYZE", "VACUUM",	    "GRANT",	"REVOKE",    "LOCK",
	"LISTEN",  "NOTIFY",  "UNLISTEN",   "DECLARE",	"FETCH",     "CLOSE",
	"DO",	   "USE",     "REPLACE",    "LOAD",	"VALUES",    "TABLE",
	"_OTHER",
};

static int bad_labels, fuzz_calls;

static bool in_charset(const char *s, const char *extra, bool lower)
{
	for (; *s; s++) {
		char ch = *s;

		if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') ||
		      (lower && ch >= 'a' && ch <= 'z') ||
		      (extra && strchr(extra, ch))))
			return false;
	}
	return true;
}

static void check_labels(const struct db_result *r)
{
	bool op_ok = false;
	size_t clen = strlen(r->collection);

	fuzz_calls++;
	for (size_t i = 0; i < sizeof(known_ops) / sizeof(known_ops[0]); i++)
		op_ok = op_ok || strcmp(r->op, known_ops[i]) == 0;
	if (!op_ok || clen > 63 || !in_charset(r->collection, "_$.", true) ||
	    (clen &&
	     (r->collection[0] == '.' || r->collection[clen - 1] == '.')) ||
	    !(r->status[0] == '\0' ||
	      (strlen(r->status) == 5 && in_charset(r->status, NULL, false))) ||
	    (r->status[0] && !r->error) ||
	    strcmp(r->system_name, "postgresql") != 0 ||
	    r->end_ns < r->start_ns)
		bad_labels++;
}

TEST(garbage_fed_keeps_labels_in_their_sets)
{
	struct db_conn *c;
	uint32_t seed = 0xc0ffee;
	uint8_t junk[512];

	db_test_sink = check_labels;
	bad_labels = 0;
	fuzz_calls = 0;
	c = db_conn_new(&db_postgresql, false);
	for (int i = 0; i < 2000; i++) {
		size_t n = unit_xorshift32(&seed) % sizeof(junk);

		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)unit_xorshift32(&seed);
		if (n && (i & 3) == 0)
			junk[0] = "QPBESZCDE"[i % 9];
		db_feed(c, i & 1, junk, n, n + (i % 7 == 0 ? 100 : 0),
			(uint64_t)i);
	}
	db_conn_free(c);
	CHECK(bad_labels == 0);
}

/* Valid messages of every kind, some with random text and codes, fed in
 * random pieces with random holes and random bytes between: the
 * framework may lose the stream, the calls may be misread, but labels
 * stay in their sets and nothing breaks. */
TEST(fuzz_valid_messages_in_random_pieces)
{
	static const char *const texts[] = {
		"SELECT * FROM t",
		"insert into s.t values (1)",
		"BEGIN; SELECT 1",
		"COPY t FROM STDIN",
		"UPDATE \"T\" SET a = 1",
		"select * from `x`.`y`",
		"DELETE FROM a USING b",
		"/* c */ (select 1)",
		"",
		"\xff\xfe garbage",
	};
	uint32_t seed = 0x1234567;
	struct db_conn *c;
	uint64_t ts = 1;

	db_test_sink = check_labels;
	bad_labels = 0;
	fuzz_calls = 0;
	c = db_conn_new(&db_postgresql, false);
	for (int round = 0; round < 3000; round++) {
		uint32_t r = unit_xorshift32(&seed);
		bool from_client = r & 1;
		const char *text = texts[(r >> 1) % 10];
		char code[6];

		/* A corrupted length can have a direction pass over the
		 * rest of the run: a new connection now and then. */
		if (round % 64 == 0) {
			db_conn_free(c);
			c = db_conn_new(&db_postgresql, round & 64);
		}
		m.n = 0;
		for (int k = 0; k < 5; k++)
			code[k] = (char)(' ' + unit_xorshift32(&seed) % 95);
		code[5] = '\0';
		if (from_client) {
			switch ((r >> 8) % 8) {
			case 0:
				query_msg(text);
				break;
			case 1:
				parse_msg(r & 0x10000 ? "a" : "", text);
				bind_msg("", r & 0x20000 ? "a" : "");
				execute_msg("", 0);
				break;
			case 2:
				sync_msg();
				break;
			case 3:
				startup();
				break;
			case 4:
				untyped_request(80877103);
				break;
			case 5:
				copy_data(text);
				break;
			case 6:
				function_call();
				break;
			default:
				close_msg('S', "a");
			}
		} else {
			switch ((r >> 8) % 8) {
			case 0:
				ready('I');
				break;
			case 1:
				str_msg('C', "SELECT 1");
				break;
			case 2:
				error_response("ERROR",
					       (r >> 16) & 1 ? code : "42P01");
				break;
			case 3:
				rows("SELECT 2");
				break;
			case 4:
				put8('S');
				break;
			case 5:
				empty_msg((r >> 16) & 1 ? 'I' : '1');
				break;
			case 6:
				error_response("FATAL", code);
				break;
			default:
				data_row(text);
			}
		}
		if ((r >> 20) % 16 == 0)
			m.b[unit_xorshift32(&seed) % (m.n + 1)] ^= 0x41;
		for (size_t off = 0; off < m.n;) {
			size_t piece = 1 + unit_xorshift32(&seed) % (m.n - off);
			uint64_t hole = (r >> 24) % 8 == 0 ? piece / 2 : 0;

			db_feed(c, from_client, m.b + off, piece - hole, piece,
				ts++);
			off += piece;
		}
	}
	m.n = 0;
	db_conn_free(c);
	CHECK(bad_labels == 0);
	CHECK(fuzz_calls > 0);
}

UNIT_MAIN("pg", UNIT_CASE(simple_query), UNIT_CASE(simple_query_error),
	  UNIT_CASE(multi_statement_query_is_one_call),
	  UNIT_CASE(empty_query_and_notices),
	  UNIT_CASE(fatal_error_ends_query_at_once),
	  UNIT_CASE(extended_named_and_unnamed),
	  UNIT_CASE(pipelined_executes_each_timed),
	  UNIT_CASE(error_mid_pipeline_drops_the_rest),
	  UNIT_CASE(error_only_in_its_own_sync),
	  UNIT_CASE(unknown_statement_is_execute),
	  UNIT_CASE(statement_cache_keeps_the_recent),
	  UNIT_CASE(prepare_with_flush_and_no_sync),
	  UNIT_CASE(parse_error_is_a_failed_call),
	  UNIT_CASE(prepare_then_execute_is_one_call),
	  UNIT_CASE(pipeline_second_parse_fails), UNIT_CASE(one_byte_at_a_time),
	  UNIT_CASE(big_data_row_with_a_hole),
	  UNIT_CASE(long_statement_and_bind_with_holes),
	  UNIT_CASE(stream_lost_then_in_step_again), UNIT_CASE(copy_from_stdin),
	  UNIT_CASE(function_call_and_portal_suspended),
	  UNIT_CASE(startup_message), UNIT_CASE(ssl_and_gssenc_requests),
	  UNIT_CASE(ssl_answer_seen_without_its_request),
	  UNIT_CASE(cancel_request), UNIT_CASE(connection_seen_mid_life),
	  UNIT_CASE(garbage_is_lost),
	  UNIT_CASE(garbage_fed_keeps_labels_in_their_sets),
	  UNIT_CASE(fuzz_valid_messages_in_random_pieces))
