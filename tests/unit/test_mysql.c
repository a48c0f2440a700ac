/* Unit tests for user/proto/mysql.c through the streams of dbstream.c:
 * byte-exact packets of handshakes (MySQL, MariaDB, SSL), queries with
 * result sets ended with and without EOF packets, errors, prepared
 * statements, multi-result calls, LOCAL INFILE, replies split across reads
 * and holes, connections seen after their handshake, and a fixed-seed
 * fuzz loop that checks only that labels stay within their sets. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/db.h"
#include "proto/dbstream.h"
#include "proto/sql.h"
#include "dbcalls.h"
#include "unit.h"

/* Capability flags. */
#define CAP_LONG_PASSWORD 0x00000001u
#define CAP_CONNECT_WITH_DB 0x00000008u
#define CAP_COMPRESS 0x00000020u
#define CAP_PROTOCOL_41 0x00000200u
#define CAP_SSL 0x00000800u
#define CAP_TRANSACTIONS 0x00002000u
#define CAP_SECURE_CONNECTION 0x00008000u
#define CAP_MULTI_STATEMENTS 0x00010000u
#define CAP_MULTI_RESULTS 0x00020000u
#define CAP_PLUGIN_AUTH 0x00080000u
#define CAP_DEPRECATE_EOF 0x01000000u
#define CAP_QUERY_ATTRIBUTES 0x08000000u
#define CAPS                                                            \
	(CAP_LONG_PASSWORD | CAP_CONNECT_WITH_DB | CAP_PROTOCOL_41 |    \
	 CAP_TRANSACTIONS | CAP_SECURE_CONNECTION | CAP_MULTI_RESULTS | \
	 CAP_MULTI_STATEMENTS | CAP_PLUGIN_AUTH)

/* Server status flags. */
#define ST_AUTOCOMMIT 0x0002u
#define ST_MORE_RESULTS 0x0008u
#define ST_CURSOR_EXISTS 0x0040u

/* ---- what the sink saw ---- */

static unsigned long nseen; /* calls, all tests long */
static bool got_labels_ok = true;

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* mysql.c's own operation names; the SQL's come from sql.h. */
static const char *const command_ops[] = {
	"USE",	  "PING",	 "PREPARE",    "EXECUTE",
	"FETCH",  "STMT_RESET",	 "FIELD_LIST", "STATISTICS",
	"KILL",	  "CHANGE_USER", "SET_OPTION", "RESET_CONNECTION",
	"_OTHER",
};

/* An operation from the command list, or one sql_summarize gives for
 * its own name ("SELECT" -> SELECT). */
static bool op_valid(const char *op)
{
	char o[DB_OP_MAX], c[DB_COLL_MAX];

	if (strnlen(op, DB_OP_MAX) >= DB_OP_MAX)
		return false;
	if (in_list(op, command_ops,
		    sizeof(command_ops) / sizeof(*command_ops)))
		return true;
	sql_summarize(op, strlen(op), o, c);
	return strcmp(o, op) == 0;
}

/* Empty, or at most 63 bytes of [A-Za-z0-9_$.]. */
static bool coll_valid(const char *s)
{
	size_t n = strnlen(s, DB_COLL_MAX);

	if (n >= DB_COLL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '$' ||
		      ch == '.'))
			return false;
	}
	return true;
}

/* Empty, or decimal digits. */
static bool status_valid(const char *s)
{
	size_t n = strnlen(s, DB_STATUS_MAX);

	if (n >= DB_STATUS_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Every call's labels are of their shapes, whatever the bytes. */
static void check_labels(const struct db_result *r)
{
	if (!op_valid(r->op) || !coll_valid(r->collection) ||
	    !status_valid(r->status) || r->end_ns < r->start_ns ||
	    (strcmp(r->system_name, "mysql") != 0 &&
	     strcmp(r->system_name, "mariadb") != 0))
		got_labels_ok = false;
	nseen++;
}

static void reset_sink(void)
{
	calls_reset();
	calls_check = check_labels;
	got_labels_ok = true;
	db_take_losses();
}

static uint64_t streams_lost(void)
{
	return db_take_losses().streams;
}

/* ---- packets ---- */

struct wire {
	uint8_t b[1 << 16];
	size_t n;
};

static void wire_bytes(struct wire *w, const void *p, size_t n)
{
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void wire_byte(struct wire *w, uint8_t b)
{
	w->b[w->n++] = b;
}

static void wire_le16(struct wire *w, uint32_t v)
{
	wire_byte(w, v & 0xff);
	wire_byte(w, v >> 8 & 0xff);
}

static void wire_le32(struct wire *w, uint32_t v)
{
	wire_le16(w, v & 0xffff);
	wire_le16(w, v >> 16);
}

/* A length-encoded string (under 251 bytes). */
static void wire_lenstr(struct wire *w, const char *s)
{
	wire_byte(w, (uint8_t)strlen(s));
	wire_bytes(w, s, strlen(s));
}

/* One packet: header, then payload p[0..n). */
static void packet(struct wire *w, uint8_t seq, const void *p, size_t n)
{
	wire_byte(w, n & 0xff);
	wire_byte(w, n >> 8 & 0xff);
	wire_byte(w, n >> 16 & 0xff);
	wire_byte(w, seq);
	wire_bytes(w, p, n);
}

/* A packet whose payload is built in a wire of its own. */
static void packet_of(struct wire *w, uint8_t seq, const struct wire *body)
{
	packet(w, seq, body->b, body->n);
}

static struct wire scratch;

static struct wire *body(void)
{
	scratch.n = 0;
	return &scratch;
}

/* HandshakeV10: protocol 10, version, connection id, auth data, the
 * capabilities, character set, status, auth plugin. */
static void greeting(struct wire *w, const char *version, uint32_t caps)
{
	struct wire *b = body();

	wire_byte(b, 0x0a);
	wire_bytes(b, version, strlen(version) + 1);
	wire_le32(b, 42);
	wire_bytes(b, "abcdefgh", 8);
	wire_byte(b, 0);
	wire_le16(b, caps & 0xffff);
	wire_byte(b, 0x21);
	wire_le16(b, ST_AUTOCOMMIT);
	wire_le16(b, caps >> 16);
	wire_byte(b, 21);
	wire_bytes(b, "\0\0\0\0\0\0\0\0\0\0", 10);
	wire_bytes(b, "ijklmnopqrst", 13);
	wire_bytes(b, "mysql_native_password", 22);
	packet_of(w, 0, b);
}

/* HandshakeResponse41, with a database. */
static void response(struct wire *w, uint8_t seq, uint32_t caps)
{
	struct wire *b = body();
	static const uint8_t filler[23];

	wire_le32(b, caps);
	wire_le32(b, 16777216);
	wire_byte(b, 0x21);
	wire_bytes(b, filler, sizeof(filler));
	wire_bytes(b, "shopper", 8);
	wire_byte(b, 20);
	wire_bytes(b, "01234567890123456789", 20);
	wire_bytes(b, "shop", 5);
	wire_bytes(b, "mysql_native_password", 22);
	packet_of(w, seq, b);
}

/* SSLRequest: the first 32 bytes of a response, CLIENT_SSL. */
static void ssl_request(struct wire *w, uint32_t caps)
{
	struct wire *b = body();
	static const uint8_t filler[23];

	wire_le32(b, caps | CAP_SSL);
	wire_le32(b, 16777216);
	wire_byte(b, 0x21);
	wire_bytes(b, filler, sizeof(filler));
	packet_of(w, 1, b);
}

/* OK: 0 rows, no insert id, status, no warnings. header 0x00, or 0xfe
 * when it ends a result set under CLIENT_DEPRECATE_EOF. */
static void ok_packet(struct wire *w, uint8_t seq, uint8_t header,
		      uint32_t status)
{
	struct wire *b = body();

	wire_byte(b, header);
	wire_byte(b, 0);
	wire_byte(b, 0);
	wire_le16(b, status);
	wire_le16(b, 0);
	packet_of(w, seq, b);
}

static void ok(struct wire *w, uint8_t seq, uint32_t status)
{
	ok_packet(w, seq, 0x00, status);
}

static void eof(struct wire *w, uint8_t seq, uint32_t status)
{
	struct wire *b = body();

	wire_byte(b, 0xfe);
	wire_le16(b, 0);
	wire_le16(b, status);
	packet_of(w, seq, b);
}

static void err(struct wire *w, uint8_t seq, uint32_t code,
		const char *sqlstate, const char *msg)
{
	struct wire *b = body();

	wire_byte(b, 0xff);
	wire_le16(b, code);
	wire_byte(b, '#');
	wire_bytes(b, sqlstate, 5);
	wire_bytes(b, msg, strlen(msg));
	packet_of(w, seq, b);
}

/* Column definition 4.1 of a column of table users. */
static void coldef(struct wire *w, uint8_t seq, const char *name)
{
	struct wire *b = body();

	wire_lenstr(b, "def");
	wire_lenstr(b, "shop");
	wire_lenstr(b, "users");
	wire_lenstr(b, "users");
	wire_lenstr(b, name);
	wire_lenstr(b, name);
	wire_byte(b, 0x0c);
	wire_le16(b, 0x21);
	wire_le32(b, 255);
	wire_byte(b, 0xfd);
	wire_le16(b, 0);
	wire_byte(b, 0);
	wire_le16(b, 0);
	packet_of(w, seq, b);
}

/* A text row of length-encoded strings. */
static void row2(struct wire *w, uint8_t seq, const char *a, const char *b2)
{
	struct wire *b = body();

	wire_lenstr(b, a);
	wire_lenstr(b, b2);
	packet_of(w, seq, b);
}

static void column_count(struct wire *w, uint8_t seq, uint8_t n)
{
	packet(w, seq, &n, 1);
}

/* A command: its byte, then text. */
static void command(struct wire *w, uint8_t cmd, const char *text)
{
	struct wire *b = body();

	wire_byte(b, cmd);
	wire_bytes(b, text, strlen(text));
	packet_of(w, 0, b);
}

/* A command naming a statement. */
static void stmt_command(struct wire *w, uint8_t cmd, uint32_t id)
{
	struct wire *b = body();

	wire_byte(b, cmd);
	wire_le32(b, id);
	if (cmd == 0x17) {
		wire_byte(b, 0); /* no cursor */
		wire_le32(b, 1); /* iterations */
		wire_byte(b, 0); /* NULL bitmap of one parameter */
		wire_byte(b, 1); /* types follow */
		wire_le16(b, 3); /* LONG */
		wire_le32(b, 1234);
	}
	packet_of(w, 0, b);
}

/* COM_STMT_PREPARE_OK. */
static void prepare_ok(struct wire *w, uint8_t seq, uint32_t id, uint32_t cols,
		       uint32_t params)
{
	struct wire *b = body();

	wire_byte(b, 0);
	wire_le32(b, id);
	wire_le16(b, cols);
	wire_le16(b, params);
	wire_byte(b, 0);
	wire_le16(b, 0);
	packet_of(w, seq, b);
}

/* A result set of two columns and the rows given, from sequence id
 * *seq; EOF packets or (deprecate) an OK with 0xfe at the end. */
static void result_set(struct wire *w, uint8_t *seq, bool deprecate,
		       unsigned rows, uint32_t status)
{
	column_count(w, (*seq)++, 2);
	coldef(w, (*seq)++, "id");
	coldef(w, (*seq)++, "name");
	if (!deprecate)
		eof(w, (*seq)++, ST_AUTOCOMMIT);
	for (unsigned i = 0; i < rows; i++)
		row2(w, (*seq)++, "1", "alice");
	if (deprecate)
		ok_packet(w, (*seq)++, 0xfe, status);
	else
		eof(w, (*seq)++, status);
}

/* ---- connections ---- */

static void send_client(struct db_conn *c, const struct wire *w, uint64_t ts)
{
	db_feed(c, true, w->b, w->n, w->n, ts);
}

static void send_server(struct db_conn *c, const struct wire *w, uint64_t ts)
{
	db_feed(c, false, w->b, w->n, w->n, ts);
}

/* A client connection through its handshake: greeting, response, OK. */
static struct db_conn *connect_with(const char *version, uint32_t server_caps,
				    uint32_t client_caps)
{
	struct db_conn *c = db_conn_new(&db_mysql, false);
	struct wire w = { .n = 0 };

	greeting(&w, version, server_caps);
	send_server(c, &w, 1);
	w.n = 0;
	response(&w, 1, client_caps);
	send_client(c, &w, 2);
	w.n = 0;
	ok(&w, 2, ST_AUTOCOMMIT);
	send_server(c, &w, 3);
	return c;
}

static struct db_conn *connect_mysql(bool deprecate)
{
	uint32_t caps = CAPS | CAP_DEPRECATE_EOF;

	return connect_with("8.0.36", caps,
			    deprecate ? caps : caps & ~CAP_DEPRECATE_EOF);
}

/* Sends a command's text and its reply, each in one read. */
static void exchange(struct db_conn *c, uint8_t cmd, const char *text,
		     const struct wire *reply, uint64_t t0, uint64_t t1)
{
	struct wire w = { .n = 0 };

	command(&w, cmd, text);
	send_client(c, &w, t0);
	send_server(c, reply, t1);
}

/* ---- handshake ---- */

TEST(handshake_mysql_greeting)
{
	struct db_conn *c;

	reset_sink();
	c = connect_mysql(true);
	CHECK_STR(c->system_name, "mysql");
	CHECK(ncalls == 0);
	CHECK(db_calls_open(c) == 0);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

TEST(handshake_mariadb_greeting)
{
	struct db_conn *c;
	struct wire r = { .n = 0 };

	reset_sink();
	c = connect_with("5.5.5-10.11.6-MariaDB-0+deb12u1", CAPS, CAPS);
	CHECK_STR(c->system_name, "mariadb");
	ok(&r, 1, ST_AUTOCOMMIT);
	exchange(c, 0x03, "UPDATE users SET a = 1", &r, 10, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].system, "mariadb");
	CHECK_STR(calls[0].op, "UPDATE");
	CHECK_STR(calls[0].coll, "users");
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* Authentication switched to another plugin, then more data: none of it
 * is a call, and the first query after it is read. */
TEST(handshake_auth_switch)
{
	struct db_conn *c = db_conn_new(&db_mysql, false);
	struct wire w = { .n = 0 }, r = { .n = 0 };
	struct wire *b;

	reset_sink();
	greeting(&w, "8.4.0", CAPS | CAP_DEPRECATE_EOF);
	send_server(c, &w, 1);
	w.n = 0;
	response(&w, 1, CAPS | CAP_DEPRECATE_EOF);
	send_client(c, &w, 2);
	w.n = 0;
	b = body();
	wire_byte(b, 0xfe);
	wire_bytes(b, "caching_sha2_password", 22);
	wire_bytes(b, "0123456789abcdefghij", 21);
	packet_of(&w, 2, b);
	send_server(c, &w, 3);
	w.n = 0;
	packet(&w, 3, "01234567890123456789012345678901", 32);
	send_client(c, &w, 4);
	w.n = 0;
	packet(&w, 4, "\x01\x03", 2); /* fast auth success */
	ok(&w, 5, ST_AUTOCOMMIT);
	send_server(c, &w, 5);
	CHECK(ncalls == 0);
	ok(&r, 1, ST_AUTOCOMMIT);
	exchange(c, 0x03, "DELETE FROM sessions", &r, 10, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "DELETE");
	CHECK_STR(calls[0].coll, "sessions");
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* SSLRequest, then the response again through TLS (sequence id 2). */
TEST(handshake_ssl_request)
{
	struct db_conn *c = db_conn_new(&db_mysql, false);
	struct wire w = { .n = 0 }, r = { .n = 0 };
	uint8_t seq = 1;

	reset_sink();
	greeting(&w, "8.0.36", CAPS | CAP_SSL);
	send_server(c, &w, 1);
	w.n = 0;
	ssl_request(&w, CAPS);
	send_client(c, &w, 2);
	w.n = 0;
	response(&w, 2, CAPS | CAP_SSL);
	send_client(c, &w, 3);
	w.n = 0;
	ok(&w, 3, ST_AUTOCOMMIT);
	send_server(c, &w, 4);
	CHECK(ncalls == 0);
	/* no CLIENT_DEPRECATE_EOF: EOF packets */
	result_set(&r, &seq, false, 2, ST_AUTOCOMMIT);
	exchange(c, 0x03, "SELECT * FROM users", &r, 10, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "SELECT");
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* The server refuses the login: no call, and the connection ends. */
TEST(handshake_access_denied)
{
	struct db_conn *c = db_conn_new(&db_mysql, false);
	struct wire w = { .n = 0 };

	reset_sink();
	greeting(&w, "8.0.36", CAPS);
	send_server(c, &w, 1);
	w.n = 0;
	response(&w, 1, CAPS);
	send_client(c, &w, 2);
	w.n = 0;
	err(&w, 2, 1045, "28000", "Access denied for user 'shopper'");
	send_server(c, &w, 3);
	CHECK(ncalls == 0);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* ---- queries ---- */

TEST(query_result_set_eof_packets)
{
	struct db_conn *c;
	struct wire r = { .n = 0 };
	uint8_t seq = 1;

	reset_sink();
	c = connect_mysql(false);
	result_set(&r, &seq, false, 3, ST_AUTOCOMMIT);
	exchange(c, 0x03, "SELECT id, name FROM users WHERE id > 0", &r, 100,
		 250);
	CHECK(ncalls == 1);
	calls_expect(0, "mysql", "SELECT", "users", "", 100, 250);
	CHECK(db_calls_open(c) == 0);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

TEST(query_result_set_deprecate_eof)
{
	struct db_conn *c;
	struct wire r = { .n = 0 };
	uint8_t seq = 1;

	reset_sink();
	c = connect_mysql(true);
	result_set(&r, &seq, true, 3, ST_AUTOCOMMIT);
	exchange(c, 0x03, "select id, name from shop.users", &r, 100, 300);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "SELECT");
	CHECK_STR(calls[0].coll, "shop.users");
	CHECK(calls[0].start == 100 && calls[0].end == 300);
	/* an empty result set: no rows before the end */
	r.n = 0;
	seq = 1;
	result_set(&r, &seq, true, 0, ST_AUTOCOMMIT);
	exchange(c, 0x03, "SELECT id, name FROM users WHERE 0", &r, 400, 500);
	CHECK(ncalls == 2);
	CHECK(calls[1].start == 400 && calls[1].end == 500);
	CHECK(db_calls_open(c) == 0);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

TEST(query_error_with_sqlstate)
{
	struct db_conn *c;
	struct wire r = { .n = 0 };

	reset_sink();
	c = connect_mysql(true);
	err(&r, 1, 1146, "42S02", "Table 'shop.nope' doesn't exist");
	exchange(c, 0x03, "SELECT * FROM nope", &r, 10, 15);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "SELECT");
	CHECK_STR(calls[0].coll, "nope");
	CHECK_STR(calls[0].status, "1146");
	CHECK(calls[0].error);
	CHECK(calls[0].start == 10 && calls[0].end == 15);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* An error after some rows ends the result set, failed. */
TEST(query_error_after_rows)
{
	struct db_conn *c;
	struct wire r = { .n = 0 };

	reset_sink();
	c = connect_mysql(false);
	column_count(&r, 1, 2);
	coldef(&r, 2, "id");
	coldef(&r, 3, "name");
	eof(&r, 4, 0);
	row2(&r, 5, "1", "a");
	err(&r, 6, 1317, "70100", "Query execution was interrupted");
	exchange(c, 0x03, "SELECT * FROM users", &r, 10, 30);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].status, "1317");
	CHECK(calls[0].error);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A CALL answers with result sets whose ends say more follow, then the
 * procedure's OK: one call, ended by the last packet. */
TEST(query_multi_result_call)
{
	struct db_conn *c;
	struct wire r1 = { .n = 0 }, r2 = { .n = 0 }, w = { .n = 0 };
	uint8_t seq = 1;

	reset_sink();
	c = connect_mysql(false);
	command(&w, 0x03, "CALL report()");
	send_client(c, &w, 10);
	result_set(&r1, &seq, false, 2, ST_AUTOCOMMIT | ST_MORE_RESULTS);
	send_server(c, &r1, 20);
	CHECK(ncalls == 0);
	result_set(&r2, &seq, false, 1, ST_AUTOCOMMIT | ST_MORE_RESULTS);
	ok(&r2, seq++, ST_AUTOCOMMIT);
	send_server(c, &r2, 30);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "CALL");
	CHECK(calls[0].start == 10 && calls[0].end == 30);
	CHECK(db_calls_open(c) == 0);
	/* the same under CLIENT_DEPRECATE_EOF, with an OK in between */
	db_conn_free(c);
	c = connect_mysql(true);
	w.n = r1.n = 0;
	seq = 1;
	command(&w, 0x03, "INSERT INTO t VALUES (1); SELECT 1 FROM t");
	send_client(c, &w, 40);
	ok(&r1, seq++, ST_AUTOCOMMIT | ST_MORE_RESULTS);
	result_set(&r1, &seq, true, 1, ST_AUTOCOMMIT);
	send_server(c, &r1, 50);
	CHECK(ncalls == 2);
	CHECK_STR(calls[1].op, "INSERT");
	CHECK_STR(calls[1].coll, "t");
	CHECK(calls[1].start == 40 && calls[1].end == 50);
	/* MariaDB ends a CALL's OUT parameters without saying more follows
	 * (MDEV-6304): the CALL's OK does */
	r1.n = 0;
	seq = 1;
	result_set(&r1, &seq, true, 1, ST_AUTOCOMMIT | 0x1000);
	ok(&r1, seq++, ST_AUTOCOMMIT);
	exchange(c, 0x03, "CALL out_params(@a)", &r1, 60, 70);
	CHECK(ncalls == 3);
	CHECK(calls[2].start == 60 && calls[2].end == 70);
	CHECK(db_calls_open(c) == 0);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* MySQL 8's query attributes come before the SQL. */
TEST(query_attributes)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };
	struct wire *b;
	uint32_t caps = CAPS | CAP_DEPRECATE_EOF | CAP_QUERY_ATTRIBUTES;

	reset_sink();
	c = connect_with("8.0.36", caps, caps);
	/* none */
	b = body();
	wire_bytes(b, "\x03\x00\x01", 3);
	wire_bytes(b, "DELETE FROM carts", 17);
	packet_of(&w, 0, b);
	send_client(c, &w, 10);
	ok(&r, 1, ST_AUTOCOMMIT);
	send_server(c, &r, 11);
	/* two: a LONGLONG and a NULL string */
	w.n = 0;
	b = body();
	wire_bytes(b, "\x03\x02\x01", 3);
	wire_byte(b, 0x02); /* the second is NULL */
	wire_byte(b, 1);
	wire_bytes(b, "\x08\x00\x02id", 5);
	wire_bytes(b, "\xfe\x00\x05trace", 8);
	wire_bytes(b, "\x07\x00\x00\x00\x00\x00\x00\x00", 8);
	wire_bytes(b, "UPDATE carts SET n = 2", 22);
	packet_of(&w, 0, b);
	send_client(c, &w, 20);
	send_server(c, &r, 21);
	CHECK(ncalls == 2);
	CHECK_STR(calls[0].op, "DELETE");
	CHECK_STR(calls[0].coll, "carts");
	CHECK_STR(calls[1].op, "UPDATE");
	CHECK_STR(calls[1].coll, "carts");
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* Two commands in one write, their replies in one read: each call ends
 * with its own reply, in order. */
TEST(query_pipelined)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };
	uint8_t seq = 1;

	reset_sink();
	c = connect_mysql(true);
	command(&w, 0x03, "SELECT * FROM a");
	command(&w, 0x03, "UPDATE b SET x = 1");
	send_client(c, &w, 10);
	CHECK(db_calls_open(c) == 2);
	result_set(&r, &seq, true, 2, 0);
	send_server(c, &r, 20);
	r.n = 0;
	err(&r, 1, 1205, "HY000", "Lock wait timeout exceeded");
	send_server(c, &r, 30);
	CHECK(ncalls == 2);
	CHECK_STR(calls[0].coll, "a");
	CHECK(calls[0].start == 10 && calls[0].end == 20);
	CHECK_STR(calls[1].coll, "b");
	CHECK_STR(calls[1].status, "1205");
	CHECK(calls[1].start == 10 && calls[1].end == 30);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A command split over writes starts with its first bytes. */
TEST(query_split_over_writes)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };

	reset_sink();
	c = connect_mysql(true);
	command(&w, 0x03, "INSERT INTO events (a, b, c) VALUES (1, 2, 3)");
	db_feed(c, true, w.b, 2, 2, 10);
	db_feed(c, true, w.b + 2, 10, 10, 11);
	db_feed(c, true, w.b + 12, w.n - 12, w.n - 12, 12);
	ok(&r, 1, 0);
	send_server(c, &r, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].coll, "events");
	CHECK(calls[0].start == 10 && calls[0].end == 20);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A statement of more than 2^24 - 1 bytes: its first packet is read from
 * its first DB_MSG_MAX bytes (what the capture holds of the write), the
 * rest and the next packets passed over. */
TEST(query_over_several_packets)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };
	static const char sql[] = "\x03INSERT INTO blobs VALUES ('";
	static uint8_t head[DB_MSG_MAX] = { 0xff, 0xff, 0xff, 0 };

	reset_sink();
	c = connect_mysql(true);
	memset(head + 4, 'x', sizeof(head) - 4);
	memcpy(head + 4, sql, sizeof(sql) - 1);
	db_feed(c, true, head, sizeof(head), 4 + 0xffffff, 10);
	/* its second packet: seq 1, starting like a command */
	packet(&w, 1, "\x03')", 3);
	send_client(c, &w, 11);
	CHECK(db_calls_open(c) == 1);
	ok(&r, 2, 0);
	send_server(c, &r, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "INSERT");
	CHECK_STR(calls[0].coll, "blobs");
	CHECK(calls[0].start == 10 && calls[0].end == 20);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* MariaDB reports the progress of a long ALTER as ERR packets of code
 * 0xffff: not the end. */
TEST(mariadb_progress_report)
{
	struct db_conn *c;
	struct wire r = { .n = 0 };

	reset_sink();
	c = connect_with("10.11.6-MariaDB", CAPS, CAPS);
	/* code 0xffff, stage 1 of 1, progress, the stage's name */
	packet(&r, 1, "\xff\xff\xff\x01\x01\x10\x27\x00\x05stage", 14);
	ok(&r, 2, 0);
	exchange(c, 0x03, "ALTER TABLE big ADD c INT", &r, 10, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "ALTER");
	CHECK_STR(calls[0].status, "");
	CHECK(!calls[0].error);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A column count with the metadata flag after it (MariaDB's
 * MARIADB_CLIENT_CACHE_METADATA, MySQL's optional metadata): 0 skips the
 * definitions. */
TEST(result_set_without_metadata)
{
	struct db_conn *c;
	struct wire r = { .n = 0 };

	reset_sink();
	c = connect_mysql(true);
	packet(&r, 1, "\x02\x00", 2);
	row2(&r, 2, "1", "a");
	ok_packet(&r, 3, 0xfe, 0);
	exchange(c, 0x03, "SELECT id, name FROM users", &r, 10, 20);
	r.n = 0;
	packet(&r, 1, "\x02\x01", 2);
	coldef(&r, 2, "id");
	coldef(&r, 3, "name");
	row2(&r, 4, "1", "a");
	ok_packet(&r, 5, 0xfe, 0);
	exchange(c, 0x03, "SELECT id, name FROM users", &r, 30, 40);
	CHECK(ncalls == 2);
	CHECK(calls[0].end == 20 && calls[1].end == 40);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* An execute that opens a cursor ends after the definitions' EOF, whose
 * status says so; the rows come with COM_STMT_FETCH. */
TEST(execute_with_cursor)
{
	struct db_conn *c;
	struct wire r = { .n = 0 }, w = { .n = 0 };

	reset_sink();
	c = connect_mysql(false);
	prepare_ok(&r, 1, 2, 1, 0);
	coldef(&r, 2, "id");
	eof(&r, 3, 0);
	exchange(c, 0x16, "SELECT id FROM users", &r, 10, 11);
	stmt_command(&w, 0x17, 2);
	send_client(c, &w, 20);
	r.n = 0;
	column_count(&r, 1, 1);
	coldef(&r, 2, "id");
	eof(&r, 3, ST_CURSOR_EXISTS);
	send_server(c, &r, 21);
	CHECK(ncalls == 2);
	CHECK_STR(calls[1].op, "SELECT");
	CHECK(calls[1].end == 21);
	w.n = 0;
	packet(&w, 0, "\x1c\x02\x00\x00\x00\x10\x00\x00\x00", 9);
	send_client(c, &w, 30);
	r.n = 0;
	packet(&r, 1, "\x00\x00\x01\x00\x00\x00", 6);
	eof(&r, 2, 0x0080); /* last row sent */
	send_server(c, &r, 31);
	CHECK(ncalls == 3);
	CHECK_STR(calls[2].op, "FETCH");
	CHECK_STR(calls[2].coll, "users");
	CHECK(calls[2].end == 31);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* ---- prepared statements ---- */

TEST(prepare_execute_close)
{
	struct db_conn *c;
	struct wire r = { .n = 0 }, w = { .n = 0 };
	uint8_t seq = 1;

	reset_sink();
	c = connect_mysql(false);
	/* one parameter, no columns; EOF packets */
	prepare_ok(&r, 1, 7, 0, 1);
	coldef(&r, 2, "?");
	eof(&r, 3, ST_AUTOCOMMIT);
	exchange(c, 0x16, "INSERT INTO orders (total) VALUES (?)", &r, 10, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "PREPARE");
	CHECK_STR(calls[0].coll, "orders");
	CHECK(calls[0].start == 10 && calls[0].end == 20);
	stmt_command(&w, 0x17, 7);
	send_client(c, &w, 30);
	r.n = 0;
	ok(&r, 1, ST_AUTOCOMMIT);
	send_server(c, &r, 35);
	CHECK(ncalls == 2);
	CHECK_STR(calls[1].op, "INSERT");
	CHECK_STR(calls[1].coll, "orders");
	CHECK(calls[1].start == 30 && calls[1].end == 35);
	/* a prepared SELECT: one parameter, two columns, binary rows */
	r.n = 0;
	prepare_ok(&r, 1, 8, 2, 1);
	coldef(&r, 2, "?");
	eof(&r, 3, 0);
	coldef(&r, 4, "id");
	coldef(&r, 5, "name");
	eof(&r, 6, 0);
	exchange(c, 0x16, "SELECT id, name FROM users WHERE id = ?", &r, 40,
		 45);
	CHECK(ncalls == 3);
	CHECK_STR(calls[2].op, "PREPARE");
	CHECK_STR(calls[2].coll, "users");
	w.n = 0;
	stmt_command(&w, 0x17, 8);
	send_client(c, &w, 50);
	r.n = 0;
	column_count(&r, seq++, 2);
	coldef(&r, seq++, "id");
	coldef(&r, seq++, "name");
	eof(&r, seq++, 0);
	packet(&r, seq++, "\x00\x00\x01\x00\x00\x00\x01z", 8);
	packet(&r, seq++, "\x00\x00\x02\x00\x00\x00\x01y", 8);
	eof(&r, seq++, ST_AUTOCOMMIT);
	send_server(c, &r, 55);
	CHECK(ncalls == 4);
	CHECK_STR(calls[3].op, "SELECT");
	CHECK_STR(calls[3].coll, "users");
	CHECK(calls[3].end == 55);
	/* closed: no reply, no call; executed again it is unknown */
	w.n = 0;
	stmt_command(&w, 0x19, 7);
	send_client(c, &w, 60);
	CHECK(db_calls_open(c) == 0);
	w.n = 0;
	stmt_command(&w, 0x17, 7);
	send_client(c, &w, 70);
	r.n = 0;
	ok(&r, 1, ST_AUTOCOMMIT);
	send_server(c, &r, 75);
	CHECK(ncalls == 5);
	CHECK_STR(calls[4].op, "EXECUTE");
	CHECK_STR(calls[4].coll, "");
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A statement prepared before sonde saw the connection. */
TEST(execute_unknown_statement)
{
	struct db_conn *c = db_conn_new(&db_mysql, false);
	struct wire w = { .n = 0 }, r = { .n = 0 };

	reset_sink();
	stmt_command(&w, 0x17, 99);
	send_client(c, &w, 10);
	err(&r, 1, 1243, "HY000", "Unknown prepared statement handler");
	send_server(c, &r, 12);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "EXECUTE");
	CHECK_STR(calls[0].coll, "");
	CHECK_STR(calls[0].status, "1243");
	CHECK(calls[0].error);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A failed prepare maps nothing; a reset and a fetch keep the table. */
TEST(prepare_failed_reset_fetch)
{
	struct db_conn *c;
	struct wire r = { .n = 0 }, w = { .n = 0 };

	reset_sink();
	c = connect_mysql(true);
	err(&r, 1, 1064, "42000", "You have an error in your SQL syntax");
	exchange(c, 0x16, "SELEC oops FROM users", &r, 10, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "PREPARE");
	CHECK_STR(calls[0].status, "1064");
	CHECK(calls[0].error);
	/* CLIENT_DEPRECATE_EOF: no EOF after the definitions */
	r.n = 0;
	prepare_ok(&r, 1, 3, 1, 0);
	coldef(&r, 2, "n");
	exchange(c, 0x16, "SELECT n FROM counters", &r, 30, 40);
	CHECK(ncalls == 2);
	CHECK(calls[1].end == 40);
	w.n = 0;
	stmt_command(&w, 0x1a, 3);
	send_client(c, &w, 50);
	r.n = 0;
	ok(&r, 1, 0);
	send_server(c, &r, 55);
	CHECK(ncalls == 3);
	CHECK_STR(calls[2].op, "STMT_RESET");
	CHECK_STR(calls[2].coll, "counters");
	/* a fetch from a cursor: binary rows, then an OK with 0xfe */
	w.n = 0;
	stmt_command(&w, 0x1c, 3);
	send_client(c, &w, 60);
	r.n = 0;
	packet(&r, 1, "\x00\x00\x05\x00\x00\x00", 6);
	ok_packet(&r, 2, 0xfe, ST_CURSOR_EXISTS);
	send_server(c, &r, 65);
	CHECK(ncalls == 4);
	CHECK_STR(calls[3].op, "FETCH");
	CHECK_STR(calls[3].coll, "counters");
	CHECK(calls[3].end == 65);
	/* send long data has no reply */
	w.n = 0;
	packet(&w, 0, "\x18\x03\x00\x00\x00\x00\x00long", 11);
	send_client(c, &w, 70);
	CHECK(db_calls_open(c) == 0);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* MariaDB's statement id -1: the statement prepared just before, sent
 * without waiting for its reply. */
TEST(mariadb_pipelined_prepare_execute)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };

	reset_sink();
	c = connect_with("11.4.2-MariaDB", CAPS | CAP_DEPRECATE_EOF,
			 CAPS | CAP_DEPRECATE_EOF);
	command(&w, 0x16, "UPDATE stock SET n = n - 1 WHERE id = ?");
	stmt_command(&w, 0x17, 0xffffffff);
	send_client(c, &w, 10);
	CHECK(db_calls_open(c) == 2);
	prepare_ok(&r, 1, 12, 0, 1);
	coldef(&r, 2, "?");
	ok(&r, 1, ST_AUTOCOMMIT);
	send_server(c, &r, 20);
	CHECK(ncalls == 2);
	CHECK_STR(calls[0].system, "mariadb");
	CHECK_STR(calls[0].op, "PREPARE");
	CHECK_STR(calls[1].op, "UPDATE");
	CHECK_STR(calls[1].coll, "stock");
	CHECK(calls[1].start == 10 && calls[1].end == 20);
	/* and by its id afterwards */
	w.n = 0;
	stmt_command(&w, 0x17, 12);
	send_client(c, &w, 30);
	r.n = 0;
	ok(&r, 1, ST_AUTOCOMMIT);
	send_server(c, &r, 40);
	CHECK(ncalls == 3);
	CHECK_STR(calls[2].op, "UPDATE");
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* More statements than the map holds: the least recently used go. */
TEST(statement_map_is_bounded)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };
	char sql[64];

	reset_sink();
	c = connect_mysql(true);
	for (uint32_t id = 1; id <= 100; id++) {
		snprintf(sql, sizeof(sql), "DELETE FROM t%u", id);
		r.n = 0;
		prepare_ok(&r, 1, id, 0, 0);
		exchange(c, 0x16, sql, &r, id * 10, id * 10 + 1);
	}
	CHECK(ncalls == 100);
	w.n = 0;
	stmt_command(&w, 0x17, 100);
	stmt_command(&w, 0x17, 1);
	send_client(c, &w, 2000);
	r.n = 0;
	ok(&r, 1, 0);
	ok(&r, 1, 0);
	send_server(c, &r, 2001);
	CHECK(ncalls == 102);
	CHECK_STR(calls[100].coll, "t100");
	CHECK_STR(calls[101].op, "EXECUTE");
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* ---- other commands ---- */

TEST(init_db_and_ping)
{
	struct db_conn *c;
	struct wire r = { .n = 0 };

	reset_sink();
	c = connect_mysql(true);
	ok(&r, 1, ST_AUTOCOMMIT);
	exchange(c, 0x02, "shop", &r, 10, 11);
	exchange(c, 0x0e, "", &r, 20, 22);
	r.n = 0;
	err(&r, 1, 1049, "42000", "Unknown database 'nope'");
	exchange(c, 0x02, "nope", &r, 30, 33);
	CHECK(ncalls == 3);
	CHECK_STR(calls[0].op, "USE");
	CHECK_STR(calls[0].coll, "");
	CHECK(calls[0].start == 10 && calls[0].end == 11);
	CHECK_STR(calls[1].op, "PING");
	CHECK(calls[1].start == 20 && calls[1].end == 22);
	CHECK_STR(calls[2].op, "USE");
	CHECK_STR(calls[2].status, "1049");
	CHECK(calls[2].error);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

TEST(other_commands)
{
	struct db_conn *c;
	struct wire r = { .n = 0 }, w = { .n = 0 };

	reset_sink();
	c = connect_mysql(false);
	/* COM_STATISTICS answers with text */
	packet(&r, 1, "Uptime: 5  Threads: 1", 21);
	exchange(c, 0x09, "", &r, 10, 11);
	/* COM_FIELD_LIST: definitions then EOF */
	r.n = 0;
	coldef(&r, 1, "id");
	coldef(&r, 2, "name");
	eof(&r, 3, 0);
	w.n = 0;
	packet(&w, 0, "\x04users\0%", 8);
	send_client(c, &w, 20);
	send_server(c, &r, 21);
	/* COM_SET_OPTION answers with an EOF */
	r.n = 0;
	eof(&r, 1, 0);
	w.n = 0;
	packet(&w, 0, "\x1b\x00\x00", 3);
	send_client(c, &w, 30);
	send_server(c, &r, 31);
	/* COM_RESET_CONNECTION, COM_PROCESS_KILL */
	r.n = 0;
	ok(&r, 1, 0);
	exchange(c, 0x1f, "", &r, 40, 41);
	w.n = 0;
	packet(&w, 0, "\x0c\x05\x00\x00\x00", 5);
	send_client(c, &w, 50);
	send_server(c, &r, 51);
	/* COM_REFRESH */
	w.n = 0;
	packet(&w, 0, "\x07\x01", 2);
	send_client(c, &w, 60);
	send_server(c, &r, 61);
	CHECK(ncalls == 6);
	CHECK_STR(calls[0].op, "STATISTICS");
	CHECK_STR(calls[1].op, "FIELD_LIST");
	CHECK_STR(calls[1].coll, "users");
	CHECK(calls[1].end == 21);
	CHECK_STR(calls[2].op, "SET_OPTION");
	CHECK_STR(calls[3].op, "RESET_CONNECTION");
	CHECK_STR(calls[4].op, "KILL");
	CHECK_STR(calls[5].op, "_OTHER");
	/* COM_QUIT: no reply */
	w.n = 0;
	packet(&w, 0, "\x01", 1);
	send_client(c, &w, 70);
	CHECK(db_calls_open(c) == 0);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* COM_CHANGE_USER authenticates again; its OK forgets the statements. */
TEST(change_user_forgets_statements)
{
	struct db_conn *c;
	struct wire r = { .n = 0 }, w = { .n = 0 };

	reset_sink();
	c = connect_mysql(true);
	prepare_ok(&r, 1, 5, 0, 0);
	exchange(c, 0x16, "DELETE FROM old", &r, 10, 11);
	w.n = 0;
	packet(&w, 0, "\x11other\0\x00shop\0", 13);
	send_client(c, &w, 20);
	r.n = 0;
	packet(&r, 1, "\xfemysql_native_password\0abcdefghijabcdefghij\0", 44);
	send_server(c, &r, 21);
	w.n = 0;
	packet(&w, 2, "01234567890123456789", 20);
	send_client(c, &w, 22);
	r.n = 0;
	ok(&r, 3, ST_AUTOCOMMIT);
	send_server(c, &r, 23);
	CHECK(ncalls == 2);
	CHECK_STR(calls[1].op, "CHANGE_USER");
	CHECK(calls[1].start == 20 && calls[1].end == 23);
	w.n = 0;
	stmt_command(&w, 0x17, 5);
	send_client(c, &w, 30);
	r.n = 0;
	err(&r, 1, 1243, "HY000", "Unknown prepared statement handler");
	send_server(c, &r, 31);
	CHECK(ncalls == 3);
	CHECK_STR(calls[2].op, "EXECUTE");
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* LOAD DATA LOCAL INFILE: the server asks for the file, the client sends
 * it and an empty packet, the server's OK ends the call. */
TEST(local_infile)
{
	struct db_conn *c;
	struct wire r = { .n = 0 }, w = { .n = 0 };

	reset_sink();
	c = connect_mysql(true);
	command(&w, 0x03, "LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t");
	send_client(c, &w, 10);
	packet(&r, 1, "\xfb/tmp/x.csv", 11);
	send_server(c, &r, 11);
	w.n = 0;
	packet(&w, 2, "1,2\n3,4\n", 8);
	send_client(c, &w, 12);
	w.n = 0;
	packet(&w, 3, "", 0);
	send_client(c, &w, 13);
	r.n = 0;
	ok(&r, 4, ST_AUTOCOMMIT);
	send_server(c, &r, 14);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "LOAD");
	CHECK(calls[0].start == 10 && calls[0].end == 14);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* ---- reads, holes and losses ---- */

/* A whole conversation fed one byte per read. */
TEST(result_set_one_byte_at_a_time)
{
	for (int deprecate = 0; deprecate <= 1; deprecate++) {
		struct db_conn *c;
		struct wire r = { .n = 0 }, w = { .n = 0 };
		uint8_t seq = 1;

		reset_sink();
		c = connect_mysql(deprecate);
		command(&w, 0x03, "SELECT * FROM users");
		for (size_t i = 0; i < w.n; i++)
			db_feed(c, true, w.b + i, 1, 1, 100 + i);
		result_set(&r, &seq, deprecate, 5, ST_AUTOCOMMIT);
		for (size_t i = 0; i < r.n; i++) {
			db_feed(c, false, r.b + i, 1, 1, 1000 + i);
			CHECK(ncalls == (i + 1 == r.n));
		}
		CHECK(ncalls == 1);
		CHECK_STR(calls[0].op, "SELECT");
		CHECK_STR(calls[0].coll, "users");
		CHECK(calls[0].start == 100);
		CHECK(calls[0].end == 1000 + r.n - 1);
		CHECK(streams_lost() == 0);
		db_conn_free(c);
	}
}

/* A row of 100000 bytes of which the capture holds the first 60: the
 * rest is a hole, passed over; the end comes in the next read. */
TEST(huge_row_with_hole)
{
	struct db_conn *c;
	struct wire r = { .n = 0 }, w = { .n = 0 };
	uint8_t big[64];
	uint32_t len = 100000;

	reset_sink();
	c = connect_mysql(true);
	command(&w, 0x03, "SELECT body FROM blobs");
	send_client(c, &w, 10);
	column_count(&r, 1, 1);
	coldef(&r, 2, "body");
	send_server(c, &r, 20);
	/* the row: header, lenenc 0xfd + 3 bytes, then data */
	big[0] = len & 0xff;
	big[1] = len >> 8 & 0xff;
	big[2] = len >> 16;
	big[3] = 3;
	big[4] = 0xfd;
	big[5] = (len - 4) & 0xff;
	big[6] = (len - 4) >> 8 & 0xff;
	big[7] = (len - 4) >> 16;
	memset(big + 8, 'x', sizeof(big) - 8);
	db_feed(c, false, big, sizeof(big), 4 + len, 30);
	CHECK(ncalls == 0);
	CHECK(streams_lost() == 0);
	r.n = 0;
	ok_packet(&r, 4, 0xfe, ST_AUTOCOMMIT);
	send_server(c, &r, 40);
	CHECK(ncalls == 1);
	CHECK(calls[0].start == 10 && calls[0].end == 40);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A row longer than DB_MSG_MAX over many reads, every byte captured. */
TEST(long_row_over_many_reads)
{
	static struct wire r;
	struct db_conn *c;
	struct wire w = { .n = 0 };
	static char text[20000];

	reset_sink();
	c = connect_mysql(false);
	command(&w, 0x03, "SELECT doc FROM docs");
	send_client(c, &w, 10);
	r.n = 0;
	column_count(&r, 1, 1);
	coldef(&r, 2, "doc");
	eof(&r, 3, 0);
	memset(text, 'y', sizeof(text) - 1);
	{
		struct wire *b = body();

		wire_byte(b, 0xfc);
		wire_le16(b, sizeof(text) - 1);
		wire_bytes(b, text, sizeof(text) - 1);
		packet_of(&r, 4, b);
	}
	eof(&r, 5, ST_AUTOCOMMIT);
	for (size_t off = 0; off < r.n; off += 1000) {
		size_t n = r.n - off < 1000 ? r.n - off : 1000;

		db_feed(c, false, r.b + off, n, n, 100 + off);
	}
	CHECK(ncalls == 1);
	CHECK(calls[0].end == 100 + (r.n - 1) / 1000 * 1000);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A payload of 0xffffff bytes goes on in the next packet, whatever its
 * first byte. */
TEST(packet_continued)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };
	uint8_t head[8] = { 0xff, 0xff, 0xff, 3, 0xfe, 0xff, 0xff, 0xff };

	reset_sink();
	c = connect_mysql(true);
	command(&w, 0x03, "SELECT big FROM blobs");
	send_client(c, &w, 10);
	column_count(&r, 1, 1);
	coldef(&r, 2, "big");
	send_server(c, &r, 20);
	/* a row of 2^24 - 1 bytes starting 0xfe, then its rest: 0xfe 5 */
	db_feed(c, false, head, sizeof(head), 4 + 0xffffff, 30);
	r.n = 0;
	packet(&r, 4, "\xfe\x00\x00\x00\x00", 5);
	send_server(c, &r, 40);
	CHECK(ncalls == 0);
	r.n = 0;
	ok_packet(&r, 5, 0xfe, 0);
	send_server(c, &r, 50);
	CHECK(ncalls == 1);
	CHECK(calls[0].end == 50);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* A hole over bytes the parser needs loses the stream and its calls;
 * the next command starts again. */
TEST(hole_in_needed_bytes_then_recovery)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };
	uint8_t seq = 1;

	reset_sink();
	c = connect_mysql(true);
	command(&w, 0x03, "SELECT * FROM users");
	send_client(c, &w, 10);
	result_set(&r, &seq, true, 50, ST_AUTOCOMMIT);
	db_feed(c, false, r.b, 100, r.n, 20); /* the end in the hole */
	CHECK(streams_lost() == 1);
	CHECK(db_calls_open(c) == 0);
	/* the rest of that reply, in a later read, is passed over */
	r.n = 0;
	row2(&r, 40, "2", "bob");
	send_server(c, &r, 25);
	CHECK(ncalls == 0);
	r.n = 0;
	ok(&r, 1, 0);
	exchange(c, 0x03, "DELETE FROM users", &r, 30, 40);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "DELETE");
	CHECK(calls[0].start == 30 && calls[0].end == 40);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* ---- connections seen after their handshake ---- */

/* The first bytes are a command; how result sets end is learned. */
TEST(midlife_learns_eof_packets)
{
	for (int deprecate = 0; deprecate <= 1; deprecate++) {
		struct db_conn *c = db_conn_new(&db_mysql, false);
		struct wire r = { .n = 0 };
		uint8_t seq = 1;

		reset_sink();
		/* the tail of a reply before the first command: ignored */
		row2(&r, 9, "x", "y");
		send_server(c, &r, 1);
		r.n = 0;
		result_set(&r, &seq, deprecate, 2, ST_AUTOCOMMIT);
		exchange(c, 0x03, "SELECT * FROM users", &r, 10, 20);
		r.n = 0;
		seq = 1;
		result_set(&r, &seq, deprecate, 0, ST_AUTOCOMMIT);
		exchange(c, 0x03, "SELECT * FROM users", &r, 30, 40);
		/* a prepare whose reply ends in the read */
		r.n = 0;
		prepare_ok(&r, 1, 4, 1, 1);
		coldef(&r, 2, "?");
		if (!deprecate)
			eof(&r, 3, 0);
		coldef(&r, deprecate ? 3 : 4, "n");
		if (!deprecate)
			eof(&r, 5, 0);
		exchange(c, 0x16, "SELECT n FROM t WHERE id = ?", &r, 50, 60);
		CHECK(ncalls == 3);
		CHECK(calls[0].end == 20);
		CHECK(calls[1].end == 40);
		CHECK_STR(calls[2].op, "PREPARE");
		CHECK(calls[2].end == 60);
		CHECK(db_calls_open(c) == 0);
		CHECK(streams_lost() == 0);
		db_conn_free(c);
	}
}

/* Not knowing, the EOF of a prepare's last definitions in the same read
 * is taken as its end. */
TEST(midlife_prepare_unknown_eof)
{
	for (int deprecate = 0; deprecate <= 1; deprecate++) {
		struct db_conn *c = db_conn_new(&db_mysql, false);
		struct wire r = { .n = 0 }, w = { .n = 0 };

		reset_sink();
		prepare_ok(&r, 1, 4, 0, 2);
		coldef(&r, 2, "?");
		coldef(&r, 3, "?");
		if (!deprecate)
			eof(&r, 4, 0);
		exchange(c, 0x16, "INSERT INTO t VALUES (?, ?)", &r, 10, 20);
		CHECK(ncalls == 1);
		CHECK(calls[0].end == 20);
		stmt_command(&w, 0x17, 4);
		send_client(c, &w, 30);
		r.n = 0;
		ok(&r, 1, 0);
		send_server(c, &r, 40);
		CHECK(ncalls == 2);
		CHECK_STR(calls[1].op, "INSERT");
		CHECK_STR(calls[1].coll, "t");
		CHECK(streams_lost() == 0);
		db_conn_free(c);
	}
}

/* The traced process is the server: the same bytes, the same calls. */
TEST(server_side)
{
	struct db_conn *c = db_conn_new(&db_mysql, true);
	struct wire r = { .n = 0 };
	uint8_t seq = 1;

	reset_sink();
	result_set(&r, &seq, true, 1, 0);
	exchange(c, 0x03, "SELECT * FROM users", &r, 10, 20);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "SELECT");
	CHECK(calls[0].start == 10 && calls[0].end == 20);
	db_conn_free(c);
}

/* A compressed connection is not read: no calls, no losses. */
TEST(compressed_is_not_read)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };

	reset_sink();
	c = connect_with("8.0.36", CAPS | CAP_COMPRESS, CAPS | CAP_COMPRESS);
	wire_bytes(&w,
		   "\x0d\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x03SELECT 1",
		   20);
	send_client(c, &w, 10);
	wire_bytes(&r,
		   "\x0b\x00\x00\x01\x00\x00\x00\x07\x00\x00\x01\x00\x00\x00"
		   "\x02\x00\x00\x00",
		   18);
	send_server(c, &r, 20);
	CHECK(ncalls == 0);
	CHECK(db_calls_open(c) == 0);
	CHECK(streams_lost() == 0);
	db_conn_free(c);
}

/* ---- garbage ---- */

TEST(garbage_loses_the_stream)
{
	struct db_conn *c;
	struct wire w = { .n = 0 }, r = { .n = 0 };

	reset_sink();
	c = connect_mysql(true);
	/* an unknown command */
	packet(&w, 0, "\x42hello", 6);
	send_client(c, &w, 10);
	CHECK(streams_lost() == 1);
	/* a command packet with a sequence id that is not 0 */
	w.n = 0;
	command(&w, 0x03, "SELECT 1");
	w.b[3] = 7;
	send_client(c, &w, 20);
	CHECK(streams_lost() == 1);
	/* a reply out of sequence */
	w.n = 0;
	command(&w, 0x03, "SELECT a FROM b");
	send_client(c, &w, 30);
	column_count(&r, 1, 1);
	coldef(&r, 5, "a");
	send_server(c, &r, 31);
	CHECK(streams_lost() == 1);
	/* HTTP is not MySQL */
	w.n = 0;
	wire_bytes(&w, "GET / HTTP/1.1\r\n\r\n", 18);
	send_client(c, &w, 40);
	CHECK(streams_lost() == 1);
	CHECK(ncalls == 0);
	/* and it starts again at the next command */
	r.n = 0;
	ok(&r, 1, 0);
	exchange(c, 0x0e, "", &r, 50, 51);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "PING");
	db_conn_free(c);
}

/* ---- fuzz ---- */

/* A conversation of many kinds of exchanges, as reads from either side. */
struct script {
	struct wire w[2]; /* [from_client] */
	size_t cut[2][64];
	unsigned ncut[2];
};

static void script_add(struct script *s, bool from_client, const struct wire *x)
{
	struct wire *w = &s->w[from_client];

	memcpy(w->b + w->n, x->b, x->n);
	w->n += x->n;
	s->cut[from_client][s->ncut[from_client]++] = w->n;
}

static void build_script(struct script *s)
{
	struct wire x = { .n = 0 };
	uint8_t seq = 1;

	memset(s, 0, sizeof(*s));
	greeting(&x, "5.5.5-10.6.18-MariaDB", CAPS);
	script_add(s, false, &x);
	x.n = 0;
	response(&x, 1, CAPS);
	script_add(s, true, &x);
	x.n = 0;
	ok(&x, 2, 0);
	script_add(s, false, &x);
	x.n = 0;
	command(&x, 0x03, "SELECT id, name FROM users");
	script_add(s, true, &x);
	x.n = 0;
	result_set(&x, &seq, false, 4, ST_MORE_RESULTS);
	ok(&x, seq++, 0);
	script_add(s, false, &x);
	x.n = 0;
	command(&x, 0x16, "INSERT INTO orders VALUES (?)");
	script_add(s, true, &x);
	x.n = 0;
	prepare_ok(&x, 1, 1, 0, 1);
	coldef(&x, 2, "?");
	eof(&x, 3, 0);
	script_add(s, false, &x);
	x.n = 0;
	stmt_command(&x, 0x17, 1);
	script_add(s, true, &x);
	x.n = 0;
	err(&x, 1, 1062, "23000", "Duplicate entry");
	script_add(s, false, &x);
	x.n = 0;
	command(&x, 0x03, "LOAD DATA LOCAL INFILE '/f' INTO TABLE t");
	script_add(s, true, &x);
	x.n = 0;
	packet(&x, 1, "\xfb/f", 3);
	script_add(s, false, &x);
	x.n = 0;
	packet(&x, 2, "1\n", 2);
	packet(&x, 3, "", 0);
	script_add(s, true, &x);
	x.n = 0;
	ok(&x, 4, 0);
	script_add(s, false, &x);
	x.n = 0;
	command(&x, 0x0e, "");
	script_add(s, true, &x);
	x.n = 0;
	ok(&x, 1, 0);
	script_add(s, false, &x);
}

/* Feeds the script, mutated, in reads alternating by its cuts, some
 * split or with holes. */
static void feed_mutated(const struct script *s, uint32_t *rng)
{
	static struct wire w[2];
	struct db_conn *c = db_conn_new(&db_mysql, unit_xorshift32(rng) & 1);
	size_t pos[2] = { 0, 0 };
	unsigned k[2] = { 0, 0 };
	uint64_t ts = 1;

	for (int d = 0; d < 2; d++) {
		w[d] = s->w[d];
		for (unsigned i = unit_xorshift32(rng) % 4; i > 0; i--)
			w[d].b[unit_xorshift32(rng) % w[d].n] =
				(uint8_t)unit_xorshift32(rng);
	}
	/* the server's greeting, then turns from each side */
	for (int turn = 0; k[0] < s->ncut[0] || k[1] < s->ncut[1]; turn++) {
		int d = turn & 1 ? 1 : 0;
		size_t end, n;
		uint64_t total;

		if (k[d] >= s->ncut[d])
			d = !d;
		end = s->cut[d][k[d]++];
		while (pos[d] < end) {
			n = end - pos[d];
			if (unit_xorshift32(rng) % 3 == 0)
				n = 1 + unit_xorshift32(rng) % n;
			total = n;
			if (unit_xorshift32(rng) % 8 == 0)
				n = unit_xorshift32(rng) % (n + 1);
			db_feed(c, d, w[d].b + pos[d], n, total, ts++);
			pos[d] += total;
		}
	}
	db_conn_free(c);
}

TEST(fuzz_labels_stay_in_their_sets)
{
	static struct script s;
	static uint8_t buf[512];
	uint32_t rng = 0x6d797371;

	reset_sink();
	build_script(&s);
	nseen = 0;
	for (int i = 0; i < 10000; i++) {
		ncalls = 0;
		feed_mutated(&s, &rng);
	}
	/* most mutations leave most of the calls readable */
	CHECK(nseen > 10000);
	for (int i = 0; i < 10000; i++) {
		struct db_conn *c = db_conn_new(&db_mysql, false);

		ncalls = 0;
		for (int j = 0; j < 8; j++) {
			size_t n = unit_xorshift32(&rng) % sizeof(buf);
			uint32_t r = unit_xorshift32(&rng);

			for (size_t b = 0; b < n; b++)
				buf[b] = (uint8_t)unit_xorshift32(&rng);
			/* a plausible header now and then */
			if (n >= 5 && r % 2) {
				buf[0] = (uint8_t)(n - 4);
				buf[1] = buf[2] = 0;
				buf[3] = r % 4 ? 0 : (uint8_t)r;
			}
			db_feed(c, r >> 8 & 1, buf, n,
				n + (r % 16 == 0 ? r >> 12 : 0), j);
		}
		db_conn_free(c);
	}
	CHECK(got_labels_ok);
	db_test_sink = NULL;
}

UNIT_MAIN(
	"mysql", UNIT_CASE(handshake_mysql_greeting),
	UNIT_CASE(handshake_mariadb_greeting), UNIT_CASE(handshake_auth_switch),
	UNIT_CASE(handshake_ssl_request), UNIT_CASE(handshake_access_denied),
	UNIT_CASE(query_result_set_eof_packets),
	UNIT_CASE(query_result_set_deprecate_eof),
	UNIT_CASE(query_error_with_sqlstate), UNIT_CASE(query_error_after_rows),
	UNIT_CASE(query_multi_result_call), UNIT_CASE(query_attributes),
	UNIT_CASE(query_pipelined), UNIT_CASE(query_split_over_writes),
	UNIT_CASE(query_over_several_packets),
	UNIT_CASE(mariadb_progress_report),
	UNIT_CASE(result_set_without_metadata), UNIT_CASE(execute_with_cursor),
	UNIT_CASE(prepare_execute_close), UNIT_CASE(execute_unknown_statement),
	UNIT_CASE(prepare_failed_reset_fetch),
	UNIT_CASE(mariadb_pipelined_prepare_execute),
	UNIT_CASE(statement_map_is_bounded), UNIT_CASE(init_db_and_ping),
	UNIT_CASE(other_commands), UNIT_CASE(change_user_forgets_statements),
	UNIT_CASE(local_infile), UNIT_CASE(result_set_one_byte_at_a_time),
	UNIT_CASE(huge_row_with_hole), UNIT_CASE(long_row_over_many_reads),
	UNIT_CASE(packet_continued),
	UNIT_CASE(hole_in_needed_bytes_then_recovery),
	UNIT_CASE(midlife_learns_eof_packets),
	UNIT_CASE(midlife_prepare_unknown_eof), UNIT_CASE(server_side),
	UNIT_CASE(compressed_is_not_read), UNIT_CASE(garbage_loses_the_stream),
	UNIT_CASE(fuzz_labels_stay_in_their_sets))
