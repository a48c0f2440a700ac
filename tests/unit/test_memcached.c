/* Unit tests for user/proto/memcached.c through the stream framework
 * (db_conn_new, db_feed): classic and meta commands byte for byte,
 * multi-key gets, noreply and quiet mode, errors, values passed over
 * across holes, pipelines, every split of a stream, and a fixed-seed fuzz
 * loop that checks only invariants. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/db.h"
#include "dbcalls.h"
#include "unit.h"

/* A connection whose calls go to calls[], emptied. */
static struct db_conn *open_conn(bool server)
{
	return calls_open(&db_memcached, server);
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

/* ---- classic commands ---- */

TEST(get_hit_and_miss_timed)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "get k\r\n", 100);
	reply(c, "VALUE k 0 5\r\nhello\r\nEND\r\n", 150);
	cmd(c, "get nope\r\n", 200);
	reply(c, "END\r\n", 230);
	CHECK(ncalls == 2);
	calls_expect(0, "memcached", "GET", "", "", 100, 150);
	CHECK_STR(calls[1].op, "GET");
	CHECK(calls[1].start == 200 && calls[1].end == 230);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(multi_key_get_is_one_call)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "get a b c\r\ngets a\r\ngat 60 a b\r\ngats 0 z\r\n", 10);
	reply(c, "VALUE a 0 1\r\n1\r\nVALUE c 7 3\r\n3\r\n\r\nEND\r\n", 20);
	/* A reply of several lines is timed at its first. */
	reply(c, "VALUE a 0 1 99\r\n1\r\n", 30);
	reply(c, "END\r\n", 31);
	reply(c, "VALUE a 0 1\r\nx\r\nVALUE b 0 2\r\nyy\r\nEND\r\nEND\r\n", 40);
	CHECK(ncalls == 4);
	CHECK_STR(calls[0].op, "GET");
	CHECK(calls[0].end == 20);
	CHECK_STR(calls[1].op, "GETS");
	CHECK(calls[1].end == 30);
	CHECK_STR(calls[2].op, "GAT");
	CHECK_STR(calls[3].op, "GATS");
	CHECK(calls[3].end == 40);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(answers_that_are_not_errors)
{
	static const struct {
		const char *cmd, *reply, *op;
	} cases[] = {
		{ "set k 0 0 1\r\nv\r\n", "STORED\r\n", "SET" },
		{ "add k 0 0 1\r\nv\r\n", "NOT_STORED\r\n", "ADD" },
		{ "replace k 0 0 1\r\nv\r\n", "NOT_STORED\r\n", "REPLACE" },
		{ "append k 0 0 2\r\nvv\r\n", "STORED\r\n", "APPEND" },
		{ "prepend k 0 0 0\r\n\r\n", "STORED\r\n", "PREPEND" },
		{ "cas k 0 0 1 12345\r\nv\r\n", "EXISTS\r\n", "CAS" },
		{ "cas k 0 0 1 12345\r\nv\r\n", "NOT_FOUND\r\n", "CAS" },
		{ "delete k\r\n", "DELETED\r\n", "DELETE" },
		{ "delete k\r\n", "NOT_FOUND\r\n", "DELETE" },
		{ "incr n 5\r\n", "15\r\n", "INCR" },
		{ "decr n 100\r\n", "0\r\n", "DECR" },
		{ "incr m 1\r\n", "NOT_FOUND\r\n", "INCR" },
		{ "touch k 10\r\n", "TOUCHED\r\n", "TOUCH" },
		{ "flush_all\r\n", "OK\r\n", "FLUSH_ALL" },
		{ "flush_all 10\r\n", "OK\r\n", "FLUSH_ALL" },
		{ "version\r\n", "VERSION 1.6.21\r\n", "VERSION" },
		{ "verbosity 1\r\n", "OK\r\n", "VERBOSITY" },
		{ "cache_memlimit 4\r\n", "MEMLIMIT_TOO_SMALL cannot set\r\n",
		  "CACHE_MEMLIMIT" },
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);
	struct db_conn *c = open_conn(false);

	for (size_t i = 0; i < n; i++) {
		cmd(c, cases[i].cmd, 10 * i);
		reply(c, cases[i].reply, 10 * i + 3);
	}
	CHECK(ncalls == n);
	for (size_t i = 0; i < n && i < ncalls; i++) {
		CHECK_STR(calls[i].op, cases[i].op);
		CHECK_STR(calls[i].status, "");
		CHECK(!calls[i].error);
		CHECK(calls[i].start == 10 * i && calls[i].end == 10 * i + 3);
	}
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(errors)
{
	static const struct {
		const char *cmd, *reply, *op, *status;
	} cases[] = {
		{ "bogus\r\n", "ERROR\r\n", "_OTHER", "ERROR" },
		{ "\r\n", "ERROR\r\n", "_OTHER", "ERROR" },
		{ "GET k\r\n", "ERROR\r\n", "_OTHER", "ERROR" },
		{ "set k 0 0 2\r\nvv\r\n", "CLIENT_ERROR bad data chunk\r\n",
		  "SET", "CLIENT_ERROR" },
		{ "set k 0 0 2000000\r\n", "SERVER_ERROR object too large\r\n",
		  "SET", "SERVER_ERROR" },
		{ "shutdown\r\n", "ERROR: shutdown not enabled\r\n", "SHUTDOWN",
		  "ERROR" },
		{ "incr k x\r\n", "CLIENT_ERROR invalid numeric delta\r\n",
		  "INCR", "CLIENT_ERROR" },
		{ "get k\r\n", "SERVER_ERROR out of memory writing get\r\n",
		  "GET", "SERVER_ERROR" },
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);
	struct db_conn *c = open_conn(false);

	for (size_t i = 0; i < n; i++) {
		if (i == 4) {
			/* Too large: memcached swallows the block; here it
			 * went as a hole. */
			db_feed(c, true, (const uint8_t *)cases[i].cmd,
				strlen(cases[i].cmd),
				strlen(cases[i].cmd) + 2000002, 10 * i);
		} else {
			cmd(c, cases[i].cmd, 10 * i);
		}
		reply(c, cases[i].reply, 10 * i + 3);
	}
	CHECK(ncalls == n);
	for (size_t i = 0; i < n && i < ncalls; i++) {
		CHECK_STR(calls[i].op, cases[i].op);
		CHECK_STR(calls[i].status, cases[i].status);
		CHECK(calls[i].error);
	}
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(noreply_and_quit_take_no_time)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "set k 0 0 1 noreply\r\nx\r\n", 5);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "SET");
	CHECK(calls[0].start == 5 && calls[0].end == 5);
	/* Behind a call still waiting, they end when their turn comes. */
	cmd(c,
	    "get a\r\nset b 0 0 1 noreply\r\nx\r\ndelete c noreply\r\n"
	    "incr n 1 noreply\r\nget d\r\n",
	    10);
	CHECK(ncalls == 1);
	reply(c, "END\r\n", 20);
	CHECK(ncalls == 5);
	reply(c, "VALUE d 0 1\r\nD\r\nEND\r\n", 30);
	CHECK(ncalls == 6);
	CHECK_STR(calls[1].op, "GET");
	CHECK(calls[1].end == 20);
	CHECK_STR(calls[2].op, "SET");
	CHECK(calls[2].start == 10 && calls[2].end == 10);
	CHECK_STR(calls[3].op, "DELETE");
	CHECK(calls[3].end == 10);
	CHECK_STR(calls[4].op, "INCR");
	CHECK(calls[4].end == 10);
	CHECK_STR(calls[5].op, "GET");
	CHECK(calls[5].end == 30);
	cmd(c, "quit\r\n", 40);
	CHECK(ncalls == 7);
	CHECK_STR(calls[6].op, "QUIT");
	CHECK(calls[6].start == 40 && calls[6].end == 40);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(stats_and_other_several_line_replies)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "stats\r\nstats reset\r\nstats detail dump\r\nversion\r\n", 1);
	reply(c, "STAT pid 4242\r\nSTAT uptime 10\r\nSTAT version 1.6.21\r\n",
	      2);
	reply(c, "STAT curr_items 0\r\nEND\r\nRESET\r\n", 3);
	reply(c, "PREFIX a get 1 hit 1 set 0 del 0\r\nEND\r\n", 4);
	reply(c, "VERSION 1.6.21\r\n", 5);
	CHECK(ncalls == 4);
	CHECK_STR(calls[0].op, "STATS");
	CHECK(calls[0].end == 2);
	CHECK_STR(calls[1].op, "STATS");
	CHECK(calls[1].end == 3);
	CHECK(calls[2].end == 4);
	CHECK_STR(calls[3].op, "VERSION");
	CHECK(calls[3].end == 5);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

/* ---- meta commands ---- */

TEST(meta_commands)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "ms k 5 T60 F3\r\nhello\r\n", 1);
	reply(c, "HD\r\n", 2);
	cmd(c, "mg k v f t\r\n", 3);
	reply(c, "VA 5 f3 t59\r\nhello\r\n", 4);
	cmd(c, "mg x v\r\nmd k\r\nma n D5\r\nma n v\r\nmn\r\nme k\r\n", 5);
	reply(c, "EN\r\nHD\r\nNF\r\nVA 1\r\n6\r\nMN\r\n", 6);
	reply(c, "ME k exp=-1 la=2 cas=3 fetch=no cls=1 size=63\r\n", 7);
	cmd(c, "ms k S5 T0\r\nhello\r\n", 8);
	reply(c, "NS\r\n", 9);
	CHECK(ncalls == 9);
	CHECK_STR(calls[0].op, "MS");
	CHECK(calls[0].start == 1 && calls[0].end == 2);
	CHECK_STR(calls[1].op, "MG");
	CHECK(calls[1].end == 4);
	CHECK_STR(calls[2].op, "MG");
	CHECK_STR(calls[3].op, "MD");
	CHECK_STR(calls[4].op, "MA");
	CHECK_STR(calls[5].op, "MA");
	CHECK_STR(calls[6].op, "MN");
	CHECK_STR(calls[7].op, "ME");
	CHECK(calls[7].end == 7);
	CHECK_STR(calls[8].op, "MS");
	for (unsigned i = 0; i < ncalls; i++) {
		CHECK_STR(calls[i].status, "");
		CHECK(!calls[i].error);
	}
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(quiet_meta_gets_closed_by_mn)
{
	struct db_conn *c = open_conn(false);

	/* a hits, b misses (its EN hidden), c hits, then mn. */
	cmd(c, "mg a v q\r\nmg b v q\r\nmg c v q k\r\nmn\r\n", 10);
	reply(c, "VA 1\r\nA\r\n", 20);
	reply(c, "VA 1 kc\r\nC\r\n", 30);
	CHECK(ncalls == 2);
	reply(c, "MN\r\n", 40);
	CHECK(ncalls == 4);
	CHECK_STR(calls[0].op, "MG");
	CHECK(calls[0].end == 20);
	CHECK(calls[1].end == 30);
	CHECK_STR(calls[2].op, "MG");
	CHECK(calls[2].end == 40);
	CHECK_STR(calls[3].op, "MN");
	CHECK(calls[3].end == 40);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

TEST(quiet_meta_sets)
{
	struct db_conn *c = open_conn(false);

	/* Both sets stored: their HD hidden; mg's VA shows it. */
	cmd(c, "ms a 1 q\r\nA\r\nms b 1 q T0\r\nB\r\nmg a v\r\n", 10);
	reply(c, "VA 1\r\nA\r\n", 20);
	CHECK(ncalls == 3);
	CHECK(calls[0].end == 20 && calls[1].end == 20);
	CHECK_STR(calls[2].op, "MG");
	/* A failed quiet set is still answered. */
	cmd(c, "ms a 1 q C99\r\nA\r\nmd b q\r\nmd c q\r\nmn\r\n", 30);
	reply(c, "EX\r\nNF\r\nMN\r\n", 40);
	CHECK(ncalls == 7);
	CHECK_STR(calls[3].op, "MS");
	CHECK_STR(calls[4].op, "MD");
	CHECK_STR(calls[5].op, "MD");
	CHECK_STR(calls[6].op, "MN");
	/* An error is a quiet call's too. */
	cmd(c, "ma n q\r\nmn\r\n", 50);
	reply(c,
	      "CLIENT_ERROR cannot increment or decrement non-numeric "
	      "value\r\nMN\r\n",
	      60);
	CHECK(ncalls == 9);
	CHECK_STR(calls[7].op, "MA");
	CHECK_STR(calls[7].status, "CLIENT_ERROR");
	CHECK(calls[7].error);
	CHECK(db_calls_open(c) == 0);
	db_conn_free(c);
}

/* ---- values passed over ---- */

TEST(big_values_with_holes)
{
	static const char set_head[] = "set big 0 0 10000000\r\n";
	static const char value_head[] = "VALUE big 0 10000000\r\n";
	uint8_t buf[4096];
	struct db_conn *c = open_conn(false);

	memset(buf, 'v', sizeof(buf));
	memcpy(buf, set_head, sizeof(set_head) - 1);
	db_feed(c, true, buf, sizeof(buf), sizeof(set_head) - 1 + 10000002, 10);
	cmd(c, "get big\r\n", 20);
	reply(c, "STORED\r\n", 30);
	/* The value comes back over three reads, each cut short; the last
	 * one's END was captured. */
	memcpy(buf, value_head, sizeof(value_head) - 1);
	db_feed(c, false, buf, sizeof(buf), 5000000, 40);
	memset(buf, 'v', sizeof(buf));
	db_feed(c, false, buf, sizeof(buf), 5000000, 41);
	/* What is left: 22 bytes of the value, its CR LF, and END. */
	memcpy(buf + 22, "\r\nEND\r\n", 7);
	CHECK(sizeof(value_head) - 1 + 10000002 + 5 - 10000000 == 29);
	db_feed(c, false, buf, 29, 29, 42);
	CHECK(db_calls_open(c) == 0);
	cmd(c, "version\r\n", 50);
	reply(c, "VERSION 1.6.21\r\n", 60);
	CHECK(ncalls == 3);
	CHECK_STR(calls[0].op, "SET");
	CHECK(calls[0].start == 10 && calls[0].end == 30);
	CHECK_STR(calls[1].op, "GET");
	CHECK(calls[1].start == 20 && calls[1].end == 40);
	CHECK_STR(calls[2].op, "VERSION");
	CHECK(calls[2].end == 60);
	db_conn_free(c);
}

TEST(end_in_a_hole_keeps_the_get)
{
	static const char r[] = "VALUE k 0 3\r\nabc\r\n";
	struct db_conn *c = open_conn(false);

	cmd(c, "get k\r\nget j\r\n", 1);
	/* The read was longer than its capture: END and the next reply
	 * went with the hole. */
	db_feed(c, false, (const uint8_t *)r, sizeof(r) - 1, 400, 2);
	CHECK(ncalls == 1);
	CHECK(db_calls_open(c) == 0);
	cmd(c, "get k\r\n", 3);
	reply(c, "END\r\n", 4);
	CHECK(ncalls == 2);
	db_conn_free(c);
}

/* ---- pipelines ---- */

static void check_pipeline(unsigned n)
{
	static const char *const cmds[] = { "get k\r\n",
					    "set k 0 0 3\r\nabc\r\n",
					    "delete k\r\n", "mg k v\r\n" };
	static const char *const replies[] = { "VALUE k 0 3\r\nabc\r\nEND\r\n",
					       "STORED\r\n",
					       "SERVER_ERROR busy\r\n",
					       "VA 2\r\nab\r\n" };
	static const char *const ops[] = { "GET", "SET", "DELETE", "MG" };
	char *out = malloc(32 * n), *in = malloc(32 * n);
	size_t olen = 0, ilen = 0;
	struct db_conn *c = open_conn(false);

	for (unsigned i = 0; i < n; i++) {
		olen += (size_t)sprintf(out + olen, "%s", cmds[i % 4]);
		ilen += (size_t)sprintf(in + ilen, "%s", replies[i % 4]);
	}
	db_feed(c, true, (const uint8_t *)out, olen, olen, 1000);
	CHECK(db_calls_open(c) == n);
	db_feed(c, false, (const uint8_t *)in, ilen, ilen, 2000);
	CHECK(ncalls == n);
	for (unsigned i = 0; i < n && i < ncalls; i++) {
		CHECK_STR(calls[i].op, ops[i % 4]);
		CHECK_STR(calls[i].status, i % 4 == 2 ? "SERVER_ERROR" : "");
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

static const char split_cmds[] = "get a b\r\n"
				 "set k 0 0 8\r\nv\r\nEND\r\n\r\n"
				 "ms m 4 T1\r\nab\r\n\r\n"
				 "mg m v q\r\n"
				 "mn\r\n"
				 "delete k noreply\r\n"
				 "incr n 1\r\n"
				 "stats\r\n";
static const char split_replies[] =
	"VALUE a 0 3\r\nEND\r\nVALUE b 0 0\r\n\r\nEND\r\n"
	"STORED\r\n"
	"HD\r\n"
	"VA 4\r\nab\r\n\r\n"
	"MN\r\n"
	"CLIENT_ERROR cannot increment\r\n"
	"STAT pid 1\r\nSTAT x END\r\nEND\r\n";
static const char *const split_ops[] = { "GET", "SET",	  "MS",	  "MG",
					 "MN",	"DELETE", "INCR", "STATS" };

static void check_split_result(const char *what, size_t k)
{
	bool ok = ncalls == 8;

	for (unsigned i = 0; ok && i < 8; i++)
		ok = strcmp(calls[i].op, split_ops[i]) == 0 &&
		     strcmp(calls[i].status, i == 6 ? "CLIENT_ERROR" : "") == 0;
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
	/* A line is read whole: "get a b\r\n" starts with its last byte's
	 * write (or its first byte's, if kept bytes keep their time). */
	CHECK(calls[0].start <= 8);
	CHECK(calls[0].end >= 1000);
	db_conn_free(c);
}

/* ---- lines, garbage ---- */

TEST(long_lines)
{
	char *line = malloc(20000);
	size_t len = (size_t)sprintf(line, "get");
	struct db_conn *c = open_conn(false);

	/* A get of 2000 keys: longer than a line may be, still one call. */
	for (int i = 0; i < 2000; i++)
		len += (size_t)sprintf(line + len, " key%05d", i);
	len += (size_t)sprintf(line + len, "\r\n");
	db_feed(c, true, (const uint8_t *)line, len, len, 1);
	cmd(c, "version\r\n", 2);
	reply(c, "END\r\nVERSION 1\r\n", 3);
	CHECK(ncalls == 2);
	CHECK_STR(calls[0].op, "GET");
	CHECK_STR(calls[1].op, "VERSION");
	/* Any other command that long is not memcached's. */
	memset(line, 'x', 3000);
	memcpy(line, "set ", 4);
	db_feed(c, true, (const uint8_t *)line, 3000, 3000, 4);
	CHECK(db_calls_open(c) == 0);
	cmd(c, "version\r\n", 5);
	reply(c, "VERSION 1\r\n", 6);
	CHECK(ncalls == 3);
	db_conn_free(c);
	free(line);
}

TEST(binary_protocol_and_garbage_are_lost)
{
	/* A binary get: magic 0x80, opcode 0x00, key length 3. */
	static const uint8_t bin[] = { 0x80, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
				       0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
				       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
				       0x00, 0x00, 0x00, 'k',  'e',  'y' };
	static const char *const bad_replies[] = {
		"\x81\x00\x00\x00",	    "\r\n",   "VALUE k 0 x\r\n",
		"VALUE k 0 3\r\nabcde\r\n", "VA\r\n", "\x01\x02\r\n",
	};
	struct db_conn *c = open_conn(false);

	db_feed(c, true, bin, sizeof(bin), sizeof(bin), 1);
	CHECK(db_calls_open(c) == 0);
	cmd(c, "get k\r\n", 2);
	reply(c, "END\r\n", 3);
	CHECK(ncalls == 1);
	/* A data block longer than announced: the stream is misframed. */
	cmd(c, "set k 0 0 1\r\nvv\r\n", 4);
	CHECK(db_calls_open(c) == 0);
	cmd(c, "get k\r\n", 5);
	reply(c, "END\r\n", 6);
	CHECK(ncalls == 2);
	db_conn_free(c);
	for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]);
	     i++) {
		c = open_conn(false);
		cmd(c, "get k\r\n", 1);
		reply(c, bad_replies[i], 2);
		CHECK(ncalls == 0);
		CHECK(db_calls_open(c) == 0);
		cmd(c, "get k\r\n", 3);
		reply(c, "END\r\n", 4);
		CHECK(ncalls == 1);
		db_conn_free(c);
	}
}

TEST(watcher_lines_answer_nothing)
{
	struct db_conn *c = open_conn(false);

	cmd(c, "watch fetchers\r\n", 1);
	reply(c, "OK\r\n", 2);
	reply(c,
	      "ts=1700000000.1 gid=1 type=item_get key=a status=found\r\n"
	      "ts=1700000000.2 gid=2 type=item_get key=b status=not_found\r\n",
	      3);
	CHECK(ncalls == 1);
	CHECK_STR(calls[0].op, "WATCH");
	CHECK(calls[0].end == 2);
	db_conn_free(c);

	/* A metadump's lines are the dump, its END the reply. */
	c = open_conn(false);
	cmd(c, "lru_crawler metadump all\r\nversion\r\n", 1);
	reply(c, "key=a exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n", 2);
	reply(c, "key=b exp=-1 la=1 cas=3 fetch=no cls=1 size=63\r\nEND\r\n",
	      3);
	reply(c, "VERSION 1.6.21\r\n", 4);
	CHECK(ncalls == 2);
	CHECK_STR(calls[0].op, "LRU_CRAWLER");
	CHECK(calls[0].end == 3);
	CHECK_STR(calls[1].op, "VERSION");
	CHECK(calls[1].end == 4);
	db_conn_free(c);
}

TEST(server_side_reads_the_same)
{
	struct db_conn *c = open_conn(true);

	cmd(c, "get k\r\nset k 0 0 1\r\nv\r\n", 5);
	reply(c, "END\r\n", 7);
	reply(c, "STORED\r\n", 8);
	CHECK(ncalls == 2);
	CHECK(calls[0].start == 5 && calls[0].end == 7);
	CHECK(calls[1].start == 5 && calls[1].end == 8);
	db_conn_free(c);
}

/* ---- fuzz ---- */

static const char *const fuzz_pieces[] = {
	"get",
	"gets",
	"set",
	"mg",
	"ms",
	"mn",
	"md",
	"ma",
	"delete",
	"incr",
	"quit",
	"noreply",
	"q",
	"v",
	"k",
	" ",
	"  ",
	"\r\n",
	"\n",
	"\r",
	"0",
	"1",
	"5",
	"12",
	"VALUE",
	"END",
	"STORED",
	"HD",
	"VA",
	"EN",
	"MN",
	"STAT",
	"ERROR",
	"CLIENT_ERROR",
	"SERVER_ERROR",
	"x",
	"ts=1",
	"abc",
	"\x80",
	"\x00",
};

static size_t fuzz_fill(uint8_t *buf, uint32_t *seed)
{
	size_t len = 0, pieces = 1 + unit_xorshift32(seed) % 40;

	for (size_t i = 0; i < pieces && len < 480; i++) {
		uint32_t r = unit_xorshift32(seed);

		if (r % 10 == 0) {
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

/* op is one of memcached's operations or "_OTHER". */
static bool op_known(const char *op)
{
	static const char ops[] =
		" GET GETS SET MG MS MD MA MN DELETE ADD REPLACE APPEND "
		"PREPEND CAS INCR DECR TOUCH GAT GATS ME VERSION STATS "
		"FLUSH_ALL VERBOSITY QUIT CACHE_MEMLIMIT LRU LRU_CRAWLER "
		"SLABS WATCH SHUTDOWN _OTHER ";
	char word[DB_OP_MAX + 2];

	snprintf(word, sizeof(word), " %s ", op);
	return *op && !strchr(op, ' ') && strstr(ops, word) != NULL;
}

static bool status_known(const char *s)
{
	return !*s || !strcmp(s, "ERROR") || !strcmp(s, "CLIENT_ERROR") ||
	       !strcmp(s, "SERVER_ERROR");
}

TEST(fuzz_labels_stay_in_their_sets)
{
	uint32_t seed = 0xc0ffee11;
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
			CHECK(op_known(calls[i].op));
			CHECK_STR(calls[i].coll, "");
			CHECK(status_known(calls[i].status));
			CHECK(calls[i].error == (calls[i].status[0] != '\0'));
			CHECK(calls[i].end >= calls[i].start);
		}
		total += ncalls;
		db_conn_free(c);
	}
	CHECK(total > 100);
}

UNIT_MAIN("memcached", UNIT_CASE(get_hit_and_miss_timed),
	  UNIT_CASE(multi_key_get_is_one_call),
	  UNIT_CASE(answers_that_are_not_errors), UNIT_CASE(errors),
	  UNIT_CASE(noreply_and_quit_take_no_time),
	  UNIT_CASE(stats_and_other_several_line_replies),
	  UNIT_CASE(meta_commands), UNIT_CASE(quiet_meta_gets_closed_by_mn),
	  UNIT_CASE(quiet_meta_sets), UNIT_CASE(big_values_with_holes),
	  UNIT_CASE(end_in_a_hole_keeps_the_get), UNIT_CASE(pipeline_of_100),
	  UNIT_CASE(pipeline_of_500), UNIT_CASE(split_at_every_offset),
	  UNIT_CASE(one_byte_at_a_time), UNIT_CASE(long_lines),
	  UNIT_CASE(binary_protocol_and_garbage_are_lost),
	  UNIT_CASE(watcher_lines_answer_nothing),
	  UNIT_CASE(server_side_reads_the_same),
	  UNIT_CASE(fuzz_labels_stay_in_their_sets))
