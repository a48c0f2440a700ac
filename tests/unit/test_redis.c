/* Unit tests for user/proto/redis.c through the stream framework
 * (db_conn_new, db_feed): commands and replies byte for byte, pipelines,
 * every split of a stream, errors, transactions, RESP3 pushes and
 * attributes, inline commands, values passed over across holes, pub/sub,
 * and a fixed-seed fuzz loop that checks only invariants. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/db.h"
#include "proto/dbstream.h"
#include "dbcalls.h"
#include "unit.h"

/* A connection whose calls go to calls[], emptied. */
static struct db_conn *open_conn(bool server)
{
	return calls_open(&db_redis, server);
}

/* One write of the client (or read of the server), all captured. */
static void cmd(struct db_conn *c, const char *s, uint64_t ts)
{
	db_feed(c, true, (const uint8_t *)s, strlen(s), strlen(s), ts);
}

/* One read of the client (or write of the server), all captured. */
static void reply(struct db_conn *c, const char *s, uint64_t ts)
{
	db_feed(c, false, (const uint8_t *)s, strlen(s), strlen(s), ts);
}

/* Appends the RESP command of the words in argv to buf at *len. */
static void resp_append(char *buf, size_t *len, int argc,
			const char *const *argv)
{
	*len += (size_t)sprintf(buf + *len, "*%d\r\n", argc);
	for (int i = 0; i < argc; i++)
		*len += (size_t)sprintf(buf + *len, "$%zu\r\n%s\r\n",
					strlen(argv[i]), argv[i]);
}

static bool op_shape_ok(const char *op)
{
	size_t n = strlen(op);

	if (!n || n >= DB_OP_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((op[i] >= 'A' && op[i] <= 'Z') || op[i] == '_'))
			return false;
	}
	return true;
}

static bool status_shape_ok(const char *s)
{
	for (; *s; s++) {
		if (*s < 'A' || *s > 'Z')
			return false;
	}
	return true;
}

/* ---- one call at a time ---- */

TEST(set_then_get_timed)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", 100);
	reply(c, "+OK\r\n", 150);
	cmd(c, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 200);
	CHECK(db_calls_open(c) == 1);
	reply(c, "$1\r\nv\r\n", 260);
	CHECK(ncalls == 2);
	calls_expect(0, "redis", "SET", "", "", 100, 150);
	CHECK_STR(calls[1].op, "GET");
	CHECK(calls[1].start == 200 && calls[1].end == 260);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(command_names_any_case_and_unknown)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "*1\r\n$4\r\nping\r\n", 1);
	cmd(c, "*2\r\n$4\r\nhGeT\r\n$1\r\nh\r\n", 2);
	cmd(c, "*2\r\n$8\r\nJSON.GET\r\n$1\r\nk\r\n", 3);
	cmd(c, "*1\r\n$30\r\nABCDEFGHIJKLMNOPQRSTUVWXYZABCD\r\n", 4);
	cmd(c, "*1\r\n$0\r\n\r\n", 5);
	cmd(c, "*1\r\n$3\r\nGE\x01\r\n", 6);
	reply(c,
	      "+PONG\r\n$-1\r\n-ERR unknown command\r\n-ERR x\r\n-ERR y\r\n"
	      "-ERR z\r\n",
	      9);
	CHECK(ncalls == 6);
	CHECK_STR(calls[0].op, "PING");
	CHECK_STR(calls[1].op, "HGET");
	CHECK_STR(calls[2].op, "_OTHER");
	CHECK_STR(calls[3].op, "_OTHER");
	CHECK_STR(calls[4].op, "_OTHER");
	CHECK_STR(calls[5].op, "_OTHER");
	db_conn_free(c);
}

TEST(common_commands_are_named)
{
	/* Space-separated, each sent on its own and read back as its op. */
	static const char names[] =
		"GET SET DEL MGET MSET HGET HSET HGETALL HDEL INCR "
		"INCRBY DECR EXPIRE TTL EXISTS LPUSH RPUSH LPOP RPOP "
		"LRANGE SADD SREM SMEMBERS ZADD ZRANGE ZREM ZSCORE EVAL "
		"EVALSHA MULTI EXEC DISCARD WATCH UNWATCH PING SELECT "
		"AUTH HELLO CLIENT INFO SCAN KEYS PUBLISH XADD XREAD "
		"XRANGE EVAL_RO EVALSHA_RO SORT_RO BLPOP BRPOPLPUSH "
		"GEORADIUSBYMEMBER ZREVRANGEBYSCORE SETEX APPEND "
		"ZUNIONSTORE";
	struct db_conn *c = open_conn(false);
	const char *p = names;
	unsigned n = 0;

	while (*p) {
		size_t len = strcspn(p, " ");
		char name[DB_OP_MAX], buf[128];

		snprintf(name, sizeof(name), "%.*s", (int)len, p);
		snprintf(buf, sizeof(buf), "*1\r\n$%zu\r\n%s\r\n", len, name);
		cmd(c, buf, n);
		reply(c, "+OK\r\n", n);
		CHECK(ncalls == n + 1);
		if (ncalls == n + 1)
			CHECK_STR(calls[n].op, name);
		n++;
		p += len + (p[len] == ' ');
	}
	CHECK(n == 56);
	db_conn_free(c);
}

TEST(reply_types_each_end_one_call)
{
	static const char *const replies[] = {
		"+OK\r\n",
		":1000\r\n",
		":-9223372036854775808\r\n",
		"$5\r\nhello\r\n",
		"$0\r\n\r\n",
		"$-1\r\n",
		"*-1\r\n",
		"*0\r\n",
		"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n",
		"*3\r\n:1\r\n*2\r\n+a\r\n-ERR inner\r\n$-1\r\n",
		"_\r\n",
		"#t\r\n",
		"#f\r\n",
		",3.14\r\n",
		",-inf\r\n",
		"(3492890328409238509324850943850943825024385\r\n",
		"=15\r\ntxt:Some string\r\n",
		"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
		"~2\r\n+a\r\n+b\r\n",
		"%0\r\n"
	};
	size_t n = sizeof(replies) / sizeof(replies[0]);
	struct db_conn *c = open_conn(false);

	for (size_t i = 0; i < n; i++) {
		cmd(c, "*1\r\n$4\r\nPING\r\n", 10 * i);
		reply(c, replies[i], 10 * i + 5);
	}
	CHECK(ncalls == n);
	for (size_t i = 0; i < n && i < ncalls; i++) {
		CHECK_STR(calls[i].status, "");
		CHECK(!calls[i].error);
		CHECK(calls[i].end == 10 * i + 5);
	}
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

/* ---- errors ---- */

TEST(error_codes)
{
	static const struct {
		const char *reply, *status;
	} cases[] = {
		{ "-WRONGTYPE Operation against a key holding the wrong kind "
		  "of value\r\n",
		  "WRONGTYPE" },
		{ "-ERR unknown command 'FOO'\r\n", "ERR" },
		{ "-MOVED 3999 127.0.0.1:6381\r\n", "MOVED" },
		{ "-NOSCRIPT No matching script.\r\n", "NOSCRIPT" },
		{ "-ERR\r\n", "ERR" },
		{ "-\r\n", "ERR" },
		{ "-Error: lower case\r\n", "ERR" },
		{ "-ERR2 digits\r\n", "ERR" },
		{ "-ABCDEFGHIJKLMNO fifteen\r\n", "ABCDEFGHIJKLMNO" },
		{ "-ABCDEFGHIJKLMNOP sixteen\r\n", "ERR" },
		{ "-ABCDEFGHIJKLMNOPQRSTUVWXYZ a very long first word\r\n",
		  "ERR" },
		{ "!21\r\nSYNTAX invalid syntax\r\n", "SYNTAX" },
		{ "!3\r\nBAD\r\n", "BAD" },
		{ "!0\r\n\r\n", "ERR" },
		{ "!41\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ long code here\r\n",
		  "ERR" },
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);
	struct db_conn *c = open_conn(false);

	for (size_t i = 0; i < n; i++) {
		cmd(c, "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n", 2 * i);
		reply(c, cases[i].reply, 2 * i + 1);
	}
	CHECK(ncalls == n);
	for (size_t i = 0; i < n && i < ncalls; i++) {
		CHECK_STR(calls[i].status, cases[i].status);
		CHECK(calls[i].error);
	}
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(error_code_split_before_its_end)
{
	static const char r[] = "-WRONGTYPE Operation against a key\r\n";

	for (size_t k = 1; k < sizeof(r) - 1; k++) {
		struct db_conn *c = open_conn(false);

		cmd(c, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 1);
		db_feed(c, false, (const uint8_t *)r, k, k, 2);
		db_feed(c, false, (const uint8_t *)r + k, sizeof(r) - 1 - k,
			sizeof(r) - 1 - k, 3);
		CHECK(ncalls == 1);
		CHECK_STR(calls[0].status, "WRONGTYPE");
		CHECK(calls[0].error);
		db_conn_free(c);
	}
}

/* ---- pipelines ---- */

/* n commands in one write, their n replies in one read. */
static void check_pipeline(unsigned n)
{
	static const char *const set[] = { "SET", "k", "v" };
	static const char *const get[] = { "GET", "k" };
	static const char *const hset[] = { "HSET", "h", "f", "v" };
	static const char *const lrange[] = { "LRANGE", "l", "0", "-1" };
	char *out = malloc(64 * n), *in = malloc(64 * n);
	size_t olen = 0, ilen = 0;
	struct db_conn *c = open_conn(false);

	for (unsigned i = 0; i < n; i++) {
		switch (i % 4) {
		case 0:
			resp_append(out, &olen, 3, set);
			ilen += (size_t)sprintf(in + ilen, "+OK\r\n");
			break;
		case 1:
			resp_append(out, &olen, 2, get);
			ilen += (size_t)sprintf(in + ilen, "$3\r\nabc\r\n");
			break;
		case 2:
			resp_append(out, &olen, 4, hset);
			ilen += (size_t)sprintf(in + ilen,
						"-WRONGTYPE Operation\r\n");
			break;
		default:
			resp_append(out, &olen, 4, lrange);
			ilen += (size_t)sprintf(in + ilen,
						"*2\r\n$1\r\na\r\n:5\r\n");
			break;
		}
	}
	db_feed(c, true, (const uint8_t *)out, olen, olen, 1000);
	CHECK(db_calls_open(c) == n);
	db_feed(c, false, (const uint8_t *)in, ilen, ilen, 2000);
	CHECK(ncalls == n);
	for (unsigned i = 0; i < n && i < ncalls; i++) {
		static const char *const ops[] = { "SET", "GET", "HSET",
						   "LRANGE" };

		CHECK_STR(calls[i].op, ops[i % 4]);
		CHECK_STR(calls[i].status, i % 4 == 2 ? "WRONGTYPE" : "");
		CHECK(calls[i].error == (i % 4 == 2));
		CHECK(calls[i].start == 1000 && calls[i].end == 2000);
	}
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
	free(out);
	free(in);
}

TEST(pipeline_of_100)
{
	check_pipeline(100);
}

TEST(pipeline_of_500)
{
	check_pipeline(500);
}

/* ---- splits ---- */

static const char split_cmds[] =
	"*3\r\n$3\r\nSET\r\n$5\r\nk\r\n\r\n\r\n$7\r\nv\r\n*\r\n$\r\n"
	"*2\r\n$3\r\nGET\r\n$5\r\nk\r\n\r\n\r\n"
	"PING\r\n"
	"*1\r\n$5\r\nMULTI\r\n"
	"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"
	"*1\r\n$4\r\nEXEC\r\n"
	"*2\r\n$7\r\nHGETALL\r\n$1\r\nh\r\n";
static const char split_replies[] = "+OK\r\n"
				    "$7\r\nv\r\n*\r\n$\r\n"
				    "+PONG\r\n"
				    "+OK\r\n"
				    "+QUEUED\r\n"
				    "*1\r\n|1\r\n+ttl\r\n:3\r\n:1\r\n"
				    "-WRONGTYPE Operation against a key\r\n";
static const char *const split_ops[] = { "SET",	 "GET",	 "PING",   "MULTI",
					 "INCR", "EXEC", "HGETALL" };

static void check_split_result(const char *what, size_t k)
{
	bool ok = ncalls == 7;

	for (unsigned i = 0; ok && i < 7; i++)
		ok = strcmp(calls[i].op, split_ops[i]) == 0 &&
		     strcmp(calls[i].status, i == 6 ? "WRONGTYPE" : "") == 0;
	if (!ok)
		fprintf(stderr, "%s split at %zu: %u calls\n", what, k, ncalls);
	CHECK(ok);
}

TEST(split_at_every_offset)
{
	size_t nc = sizeof(split_cmds) - 1, nr = sizeof(split_replies) - 1;

	for (size_t k = 0; k <= nc; k++) {
		struct db_conn *c = open_conn(false);

		db_feed(c, true, (const uint8_t *)split_cmds, k, k, 1);
		db_feed(c, true, (const uint8_t *)split_cmds + k, nc - k,
			nc - k, 2);
		db_feed(c, false, (const uint8_t *)split_replies, nr, nr, 3);
		check_split_result("commands", k);
		db_conn_free(c);
	}
	for (size_t k = 0; k <= nr; k++) {
		struct db_conn *c = open_conn(false);

		db_feed(c, true, (const uint8_t *)split_cmds, nc, nc, 1);
		db_feed(c, false, (const uint8_t *)split_replies, k, k, 2);
		db_feed(c, false, (const uint8_t *)split_replies + k, nr - k,
			nr - k, 3);
		check_split_result("replies", k);
		db_conn_free(c);
	}
}

TEST(one_byte_at_a_time)
{
	size_t nc = sizeof(split_cmds) - 1, nr = sizeof(split_replies) - 1;
	struct db_conn *c = open_conn(true);

	for (size_t i = 0; i < nc; i++)
		db_feed(c, true, (const uint8_t *)split_cmds + i, 1, 1, i);
	for (size_t i = 0; i < nr; i++)
		db_feed(c, false, (const uint8_t *)split_replies + i, 1, 1,
			1000 + i);
	check_split_result("bytes", 1);
	/* A length line is read whole: SET starts with the write that ends
	 * "*3\r\n" (or its first byte's, if kept bytes keep their time);
	 * "+OK" ends it at its first byte. */
	CHECK(calls[0].start <= 3);
	CHECK(calls[0].end == 1000);
	db_conn_free(c);
}

/* ---- transactions ---- */

TEST(multi_exec)
{
	struct db_conn *c = open_conn(false);

	cmd(c,
	    "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
	    "*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*1\r\n$4\r\nEXEC\r\n",
	    10);
	reply(c, "+OK\r\n+QUEUED\r\n", 20);
	reply(c, "+QUEUED\r\n", 21);
	CHECK(db_calls_open(c) == 1);
	reply(c, "*2\r\n+OK\r\n-ERR value is not an integer\r\n", 30);
	CHECK(ncalls == 4);
	CHECK_STR(calls[0].op, "MULTI");
	CHECK_STR(calls[1].op, "SET");
	CHECK_STR(calls[2].op, "INCR");
	CHECK_STR(calls[3].op, "EXEC");
	CHECK(calls[1].end == 20 && calls[2].end == 21);
	CHECK(calls[3].end == 30);
	/* An error inside EXEC's reply is the command's, not EXEC's. */
	CHECK_STR(calls[3].status, "");
	CHECK(!calls[3].error);

	cmd(c, "*2\r\n$5\r\nWATCH\r\n$1\r\na\r\n*1\r\n$5\r\nMULTI\r\n", 40);
	cmd(c, "*1\r\n$4\r\nEXEC\r\n", 41);
	reply(c, "+OK\r\n+OK\r\n*-1\r\n", 50);
	CHECK(ncalls == 7);
	CHECK_STR(calls[6].op, "EXEC");
	CHECK(!calls[6].error);

	cmd(c, "*1\r\n$5\r\nMULTI\r\n*1\r\n$3\r\nBAD\r\n*1\r\n$4\r\nEXEC\r\n",
	    60);
	reply(c,
	      "+OK\r\n-ERR unknown command 'BAD'\r\n"
	      "-EXECABORT Transaction discarded because of previous errors."
	      "\r\n",
	      70);
	CHECK(ncalls == 10);
	CHECK_STR(calls[8].status, "ERR");
	CHECK_STR(calls[9].op, "EXEC");
	CHECK_STR(calls[9].status, "EXECABORT");
	CHECK(calls[9].error);
	db_conn_free(c);
}

/* ---- RESP3 ---- */

static const char hello3_reply[] =
	"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4"
	"\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n"
	"$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
	"$7\r\nmodules\r\n*0\r\n";

TEST(resp3_pushes_are_not_replies)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", 1);
	reply(c, hello3_reply, 2);
	cmd(c, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 3);
	reply(c, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", 4);
	CHECK(db_calls_open(c) == 1);
	reply(c, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n$1\r\nv\r\n",
	      5);
	reply(c, ">0\r\n", 6);
	CHECK(ncalls == 2);
	CHECK_STR(calls[0].op, "HELLO");
	CHECK(calls[0].end == 2);
	CHECK_STR(calls[1].op, "GET");
	CHECK(calls[1].end == 5);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(resp3_attributes_precede_replies)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n",
	    1);
	cmd(c, "*1\r\n$4\r\nPING\r\n", 1);
	/* The spec's example: an attribute, then the reply it describes. */
	reply(c,
	      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb"
	      "\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
	      2);
	CHECK(ncalls == 1);
	/* An attribute inside an array is no element of it. */
	reply(c, "*2\r\n|1\r\n+a\r\n*1\r\n:1\r\n:1\r\n:2\r\n", 3);
	CHECK(ncalls == 2);
	reply(c, "|0\r\n+PONG\r\n", 4);
	CHECK(ncalls == 3);
	CHECK(calls[0].end == 2 && calls[1].end == 3 && calls[2].end == 4);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

/* ---- inline commands ---- */

TEST(inline_commands)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "PING\r\n", 1);
	cmd(c, "set k \"a value\"\r\n  GET k\r\n\r\n\nFOO bar\r\n", 2);
	cmd(c, "EXISTS", 3);
	cmd(c, " k\n", 4);
	reply(c,
	      "+PONG\r\n+OK\r\n$7\r\na value\r\n-ERR unknown command\r\n"
	      ":1\r\n",
	      5);
	CHECK(ncalls == 5);
	CHECK_STR(calls[0].op, "PING");
	CHECK_STR(calls[1].op, "SET");
	CHECK_STR(calls[2].op, "GET");
	CHECK_STR(calls[3].op, "_OTHER");
	CHECK_STR(calls[3].status, "ERR");
	CHECK_STR(calls[4].op, "EXISTS");
	CHECK(calls[4].start == 4);
	db_conn_free(c);
}

TEST(inline_long_line_and_garbage)
{
	char line[9000];
	struct db_conn *c = open_conn(false);

	memset(line, 'x', sizeof(line));
	memcpy(line, "SET k ", 6);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	db_feed(c, true, (const uint8_t *)line, sizeof(line), sizeof(line), 1);
	cmd(c, "GET k\r\n", 2);
	/* A word of 100 letters names nothing. */
	memset(line, 'A', 100);
	memcpy(line + 100, "\r\n", 2);
	db_feed(c, true, (const uint8_t *)line, 102, 102, 3);
	reply(c, "+OK\r\n$1\r\nx\r\n-ERR unknown\r\n", 4);
	CHECK(ncalls == 3);
	CHECK_STR(calls[0].op, "SET");
	CHECK_STR(calls[1].op, "GET");
	CHECK_STR(calls[2].op, "_OTHER");
	/* TLS's first bytes are no command: the write is lost, the next
	 * one starts again. */
	db_feed(c, true, (const uint8_t *)"\x16\x03\x01\x02\x00\x01", 6, 6, 5);
	CHECK(db_calls_open(c) == 0);
	cmd(c, "*1\r\n$4\r\nPING\r\n", 6);
	reply(c, "+PONG\r\n", 7);
	CHECK(ncalls == 4);
	CHECK_STR(calls[3].op, "PING");
	db_conn_free(c);
}

/* ---- values passed over ---- */

TEST(big_values_with_holes)
{
	static const char set_head[] =
		"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$10000000\r\n";
	static const char get_head[] = "$10000000\r\n";
	uint8_t buf[4096];
	uint64_t total = sizeof(set_head) - 1 + 10000000 + 2;
	struct db_conn *c = open_conn(false);

	/* The write carried the whole value; 4096 bytes were captured. */
	memset(buf, 'v', sizeof(buf));
	memcpy(buf, set_head, sizeof(set_head) - 1);
	db_feed(c, true, buf, sizeof(buf), total, 10);
	cmd(c, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 20);
	reply(c, "+OK\r\n", 30);
	/* The value comes back over three reads, each cut short. */
	memcpy(buf, get_head, sizeof(get_head) - 1);
	db_feed(c, false, buf, sizeof(buf), 4000000, 40);
	memset(buf, 'v', sizeof(buf));
	db_feed(c, false, buf, sizeof(buf), 4000000, 41);
	db_feed(c, false, buf, 100, sizeof(get_head) - 1 + 10000002 - 8000000,
		42);
	cmd(c, "*1\r\n$4\r\nPING\r\n", 50);
	reply(c, "+PONG\r\n", 60);
	CHECK(ncalls == 3);
	CHECK_STR(calls[0].op, "SET");
	CHECK(calls[0].start == 10 && calls[0].end == 30);
	CHECK_STR(calls[1].op, "GET");
	CHECK(calls[1].start == 20 && calls[1].end == 40);
	CHECK_STR(calls[2].op, "PING");
	CHECK(calls[2].end == 60);
	db_conn_free(c);
}

TEST(big_array_reply_streams_through)
{
	enum { ELEMS = 20000 };
	char *in = malloc(ELEMS * 16 + 32);
	size_t len = (size_t)sprintf(in, "*%d\r\n", ELEMS);
	struct db_conn *c = open_conn(false);

	for (int i = 0; i < ELEMS; i++)
		len += (size_t)sprintf(in + len, "$5\r\n%05d\r\n", i);
	len += (size_t)sprintf(in + len, "+OK\r\n");
	cmd(c, "*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n", 1);
	cmd(c, "*1\r\n$4\r\nPING\r\n", 2);
	for (size_t off = 0; off < len; off += 1000) {
		size_t k = len - off < 1000 ? len - off : 1000;

		db_feed(c, false, (const uint8_t *)in + off, k, k, 100 + off);
	}
	CHECK(ncalls == 2);
	CHECK_STR(calls[0].op, "LRANGE");
	CHECK(calls[0].end == 100);
	CHECK_STR(calls[1].op, "PING");
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
	free(in);
}

TEST(a_hole_in_needed_bytes_loses_the_stream)
{
	static const char r[] = "*3\r\n$1\r\na\r\n$1\r\nb\r\n";
	struct db_conn *c = open_conn(false);

	cmd(c, "*2\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n", 1);
	cmd(c, "*1\r\n$4\r\nPING\r\n", 2);
	/* The read was longer than its capture: element heads are lost. */
	db_feed(c, false, (const uint8_t *)r, sizeof(r) - 1, 500, 3);
	/* LRANGE was counted at its reply's first byte; PING's reply went
	 * with the hole, PING is dropped with the stream. */
	CHECK(ncalls == 1);
	CHECK(db_calls_open(c) == 0);
	cmd(c, "*1\r\n$4\r\nPING\r\n", 4);
	reply(c, "+PONG\r\n", 5);
	CHECK(ncalls == 2);
	CHECK_STR(calls[1].op, "PING");
	db_conn_free(c);
}

/* ---- pub/sub ---- */

TEST(subscribe_resp2)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n", 10);
	reply(c, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", 20);
	reply(c, "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n", 21);
	cmd(c, "*2\r\n$10\r\nPSUBSCRIBE\r\n$2\r\np*\r\n", 30);
	cmd(c, "*1\r\n$4\r\nPING\r\n", 31);
	reply(c, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n", 35);
	reply(c, "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n", 40);
	reply(c,
	      "*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$2\r\nhi\r\n"
	      "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$0\r\n\r\n",
	      45);
	CHECK(ncalls == 2);
	reply(c, "*2\r\n$4\r\npong\r\n$0\r\n\r\n", 50);
	CHECK(ncalls == 3);
	CHECK_STR(calls[0].op, "SUBSCRIBE");
	CHECK(calls[0].end == 20);
	CHECK_STR(calls[1].op, "PSUBSCRIBE");
	CHECK(calls[1].end == 40);
	CHECK_STR(calls[2].op, "PING");
	CHECK(calls[2].end == 50);
	/* Out of subscribe mode once no subscription is left. */
	cmd(c, "*1\r\n$11\r\nUNSUBSCRIBE\r\n", 60);
	cmd(c, "*1\r\n$12\r\nPUNSUBSCRIBE\r\n", 61);
	reply(c,
	      "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n"
	      "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n",
	      70);
	reply(c, "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n", 71);
	CHECK(ncalls == 5);
	CHECK_STR(calls[3].op, "UNSUBSCRIBE");
	CHECK(calls[3].end == 70);
	CHECK_STR(calls[4].op, "PUNSUBSCRIBE");
	CHECK(calls[4].end == 71);
	/* Now an array that starts with "message" is a reply. */
	cmd(c, "*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$1\r\n1\r\n", 80);
	reply(c, "*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", 90);
	CHECK(ncalls == 6);
	CHECK_STR(calls[5].op, "LRANGE");
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(subscribe_confirmations_of_pipelined_calls)
{
	struct db_conn *c = open_conn(false);

	/* Two subscribes in one write: the first names two channels, so
	 * the second confirmation is still the first call's. */
	cmd(c,
	    "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n"
	    "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nc\r\n"
	    "*2\r\n$11\r\nUNSUBSCRIBE\r\n$1\r\na\r\n",
	    10);
	reply(c, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", 20);
	reply(c, "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n", 21);
	CHECK(ncalls == 1);
	reply(c, "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:3\r\n", 22);
	reply(c, "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n", 23);
	CHECK(ncalls == 3);
	CHECK(calls[0].end == 20);
	CHECK(calls[1].end == 22);
	CHECK_STR(calls[2].op, "UNSUBSCRIBE");
	CHECK(calls[2].end == 23);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(subscribe_resp3)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", 1);
	reply(c, hello3_reply, 2);
	cmd(c, "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n", 10);
	reply(c, ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", 20);
	reply(c, ">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n", 21);
	cmd(c, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 30);
	reply(c, ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n", 35);
	/* In RESP3 a reply may be an array starting with "message". */
	reply(c, "*1\r\n$7\r\nmessage\r\n", 40);
	CHECK(ncalls == 3);
	CHECK_STR(calls[1].op, "SUBSCRIBE");
	CHECK(calls[1].end == 20);
	CHECK_STR(calls[2].op, "GET");
	CHECK(calls[2].end == 40);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(replication_link)
{
	struct db_conn *c = open_conn(true);

	cmd(c, "*1\r\n$4\r\nPING\r\n", 1);
	reply(c, "+PONG\r\n", 2);
	cmd(c,
	    "*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n6380"
	    "\r\n*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n"
	    "$4\r\ncapa\r\n$6\r\npsync2\r\n",
	    3);
	reply(c, "+OK\r\n+OK\r\n", 4);
	cmd(c, "*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n", 5);
	/* The RDB has no CR LF after it; the master's writes follow. */
	reply(c,
	      "+FULLRESYNC 8de1787ba490483314a4d30f1c628bc5025eb761 0\r\n"
	      "$5\r\nREDIS",
	      6);
	reply(c, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", 7);
	for (int i = 0; i < 100; i++)
		cmd(c, "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n0\r\n",
		    8 + i);
	CHECK(ncalls == 4);
	CHECK_STR(calls[1].op, "REPLCONF");
	CHECK_STR(calls[3].op, "PSYNC");
	CHECK(calls[3].end == 6);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

/* ---- both sides, garbage, depth ---- */

TEST(server_side_reads_the_same)
{
	struct db_conn *c = open_conn(true);

	cmd(c, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n", 5);
	reply(c, "$-1\r\n", 7);
	reply(c, "+PONG\r\n", 8);
	CHECK(ncalls == 2);
	CHECK(calls[0].start == 5 && calls[0].end == 7);
	CHECK(calls[1].start == 5 && calls[1].end == 8);
	db_conn_free(c);
}

TEST(garbage_replies_lose_the_stream)
{
	static const char *const bad[] = {
		"?what\r\n",	   "$abc\r\n",
		"$-2\r\n",	   "*-5\r\n",
		"%-1\r\n",	   ":12x\r\n",
		"_x\r\n",	   "#x\r\n",
		"$3\r\nabcXY",	   "$99999999999999999999\r\n",
		"*5000000000\r\n", "$?\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct db_conn *c = open_conn(false);

		cmd(c, "*1\r\n$4\r\nPING\r\n", 1);
		reply(c, bad[i], 2);
		CHECK(ncalls == 0);
		CHECK(db_calls_open(c) == 0);
		cmd(c, "*1\r\n$4\r\nPING\r\n", 3);
		reply(c, "+PONG\r\n", 4);
		CHECK(ncalls == 1);
		db_conn_free(c);
	}
}

TEST(garbage_commands_lose_the_stream)
{
	static const char *const bad[] = {
		"*2\r\n:1\r\n",	     "*x\r\n",		 "*1\r\n$-1\r\n",
		"*1\r\n$3\r\nGETXY", "\x80\x01\x00\x05", "GE\x01T k\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct db_conn *c = open_conn(false);

		cmd(c, bad[i], 1);
		CHECK(db_calls_open(c) <= 1);
		cmd(c, "*1\r\n$4\r\nPING\r\n", 3);
		reply(c, "+PONG\r\n", 4);
		CHECK(ncalls == 1);
		CHECK_STR(calls[0].op, "PING");
		db_conn_free(c);
	}
}

TEST(nesting_depth)
{
	char deep[512];
	size_t len = 0;
	struct db_conn *c = open_conn(false);

	for (int i = 0; i < 32; i++)
		len += (size_t)sprintf(deep + len, "*1\r\n");
	len += (size_t)sprintf(deep + len, ":1\r\n");
	cmd(c, "*1\r\n$7\r\nCOMMAND\r\n", 1);
	db_feed(c, false, (const uint8_t *)deep, len, len, 2);
	CHECK(ncalls == 1);
	cmd(c, "*1\r\n$7\r\nCOMMAND\r\n", 3);
	cmd(c, "*1\r\n$4\r\nPING\r\n", 3);
	/* One level more than the stack holds: counted at its head, then
	 * the stream is lost. */
	len = 0;
	for (int i = 0; i < 33; i++)
		len += (size_t)sprintf(deep + len, "*1\r\n");
	len += (size_t)sprintf(deep + len, ":1\r\n+PONG\r\n");
	db_feed(c, false, (const uint8_t *)deep, len, len, 4);
	CHECK(ncalls == 2);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

/* ---- fuzz ---- */

static const char *const fuzz_pieces[] = {
	"*",	"$",	     "%",	"~",	       ">",	"|",
	"+",	"-",	     ":",	"_",	       "#",	",",
	"(",	"!",	     "=",	"0",	       "1",	"2",
	"3",	"-1",	     "\r\n",	"\r",	       "\n",	" ",
	"OK",	"ERR",	     "GET",	"set",	       "PING",	"MULTI",
	"EXEC", "subscribe", "message", "unsubscribe", "HELLO", "RESET",
	"ab",	"\x00",	     "\xff",	"WRONGTYPE x",
};

/* Appends a random run of pieces and bytes to buf (room for 512). */
static size_t fuzz_fill(uint8_t *buf, uint32_t *seed)
{
	size_t len = 0, pieces = 1 + unit_xorshift32(seed) % 40;

	for (size_t i = 0; i < pieces && len < 480; i++) {
		uint32_t r = unit_xorshift32(seed);

		if (r % 8 == 0) {
			buf[len++] = (uint8_t)(r >> 8);
		} else {
			const char *s = fuzz_pieces[(r >> 3) %
						    (sizeof(fuzz_pieces) /
						     sizeof(fuzz_pieces[0]))];
			size_t n = s[0] ? strlen(s) : 1;

			memcpy(buf + len, s, n);
			len += n;
		}
	}
	return len;
}

TEST(fuzz_labels_stay_in_their_sets)
{
	uint32_t seed = 0x5eed1234;
	unsigned total = 0;

	for (int round = 0; round < 3000; round++) {
		struct db_conn *c = open_conn(round % 2);

		for (int f = 0; f < 12; f++) {
			uint8_t buf[512];
			size_t len = fuzz_fill(buf, &seed);
			uint32_t r = unit_xorshift32(&seed);
			uint64_t hole = r % 5 == 0 ? r % 64 : 0;

			db_feed(c, r & 1, buf, len, len + hole,
				(uint64_t)(round * 100 + f));
		}
		for (unsigned i = 0; i < ncalls && i < MAX_CALLS; i++) {
			CHECK(op_shape_ok(calls[i].op));
			CHECK_STR(calls[i].coll, "");
			CHECK(status_shape_ok(calls[i].status));
			CHECK(calls[i].error == (calls[i].status[0] != '\0'));
			CHECK(calls[i].end >= calls[i].start);
		}
		total += ncalls;
		db_conn_free(c);
	}
	/* The pieces make real calls often enough to test something. */
	CHECK(total > 100);
}

/* More calls than a connection holds open: those beyond are lost,
 * counted, and so are the calls after them until the replies have
 * caught up; each reply still ends its own call. */
TEST(calls_beyond_the_open_cap_do_not_shift_replies)
{
	struct db_conn *c = open_conn(false);
	static char buf[64 * (DB_MAX_OPEN + 8)], out[16 * (DB_MAX_OPEN + 8)];
	size_t len = 0, olen = 0;

	db_take_losses();
	for (unsigned i = 0; i < DB_MAX_OPEN + 5; i++) {
		len += (size_t)sprintf(buf + len,
				       "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
		olen += (size_t)sprintf(out + olen, "$-1\r\n");
	}
	db_feed(c, true, (const uint8_t *)buf, len, len, 100);
	/* The first reply frees room, but the refused calls' replies are
	 * still due before a new call's: DEL is refused too. */
	reply(c, "$-1\r\n", 120);
	cmd(c, "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n", 150);
	db_feed(c, false, (const uint8_t *)out + 5, olen - 5, olen - 5, 200);
	reply(c, ":0\r\n", 250);
	CHECK(ncalls == DB_MAX_OPEN);
	for (unsigned i = 0; i < ncalls; i++)
		if (strcmp(calls[i].op, "GET") != 0)
			CHECK(!"a call other than GET ended");
	CHECK(db_take_losses().calls == 6);
	/* Caught up: the next call is timed by its own reply. */
	cmd(c, "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", 300);
	reply(c, ":1\r\n", 340);
	CHECK(ncalls == DB_MAX_OPEN + 1);
	CHECK_STR(calls[DB_MAX_OPEN].op, "INCR");
	CHECK(calls[DB_MAX_OPEN].end - calls[DB_MAX_OPEN].start == 40);
	db_conn_free(c);
}

/* A lost direction starts again at the first piece of a read or write,
 * never in the middle of a long buffer's pieces (a value's bytes). */
TEST(a_lost_direction_starts_again_at_a_buffer)
{
	struct db_conn *c = open_conn(false);
	static const char value_bytes[] = "*1\r\n$4\r\nPING\r\n";

	db_take_losses();
	/* Bytes that are no RESP: the client's direction is lost. */
	cmd(c, "\x01\x02garbage\r\n", 10);
	CHECK(db_take_losses().streams == 1);
	/* A later piece of some buffer that happens to look like a
	 * command: passed over. */
	db_feed_piece(c, true, (const uint8_t *)value_bytes,
		      strlen(value_bytes), strlen(value_bytes), 20, false);
	reply(c, "+PONG\r\n", 30);
	CHECK(ncalls == 0);
	/* The next read or write starts it again. */
	cmd(c, "*1\r\n$4\r\nPING\r\n", 40);
	reply(c, "+PONG\r\n", 45);
	CHECK(ncalls == 1 && calls[0].end - calls[0].start == 5);
	db_conn_free(c);
}

UNIT_MAIN("redis", UNIT_CASE(set_then_get_timed),
	  UNIT_CASE(command_names_any_case_and_unknown),
	  UNIT_CASE(common_commands_are_named),
	  UNIT_CASE(reply_types_each_end_one_call), UNIT_CASE(error_codes),
	  UNIT_CASE(error_code_split_before_its_end),
	  UNIT_CASE(pipeline_of_100), UNIT_CASE(pipeline_of_500),
	  UNIT_CASE(split_at_every_offset), UNIT_CASE(one_byte_at_a_time),
	  UNIT_CASE(multi_exec), UNIT_CASE(resp3_pushes_are_not_replies),
	  UNIT_CASE(resp3_attributes_precede_replies),
	  UNIT_CASE(inline_commands), UNIT_CASE(inline_long_line_and_garbage),
	  UNIT_CASE(big_values_with_holes),
	  UNIT_CASE(big_array_reply_streams_through),
	  UNIT_CASE(a_hole_in_needed_bytes_loses_the_stream),
	  UNIT_CASE(subscribe_resp2),
	  UNIT_CASE(subscribe_confirmations_of_pipelined_calls),
	  UNIT_CASE(subscribe_resp3), UNIT_CASE(replication_link),
	  UNIT_CASE(server_side_reads_the_same),
	  UNIT_CASE(garbage_replies_lose_the_stream),
	  UNIT_CASE(garbage_commands_lose_the_stream), UNIT_CASE(nesting_depth),
	  UNIT_CASE(fuzz_labels_stay_in_their_sets),
	  UNIT_CASE(calls_beyond_the_open_cap_do_not_shift_replies),
	  UNIT_CASE(a_lost_direction_starts_again_at_a_buffer))
