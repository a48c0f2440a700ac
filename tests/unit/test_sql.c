/* Unit tests for user/proto/sql.c: operations, the table of single-table
 * statements, what leaves it empty, and a fixed-seed fuzz loop over
 * SQL-like and random bytes that checks only invariants. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sql.h"
#include "unit.h"

static const char *const known_ops[] = {
	"SELECT",  "INSERT",  "UPDATE",	    "DELETE",	"MERGE",     "UPSERT",
	"BEGIN",   "START",   "COMMIT",	    "ROLLBACK", "SAVEPOINT", "RELEASE",
	"CREATE",  "ALTER",   "DROP",	    "TRUNCATE", "COPY",	     "CALL",
	"EXECUTE", "PREPARE", "DEALLOCATE", "WITH",	"SET",	     "SHOW",
	"EXPLAIN", "ANALYZE", "VACUUM",	    "GRANT",	"REVOKE",    "LOCK",
	"LISTEN",  "NOTIFY",  "UNLISTEN",   "DECLARE",	"FETCH",     "CLOSE",
	"DO",	   "USE",     "REPLACE",    "LOAD",	"VALUES",    "TABLE",
};
#define NOPS (sizeof(known_ops) / sizeof(known_ops[0]))

static char op[DB_OP_MAX], coll[DB_COLL_MAX];

/* Summarizes s from a heap copy of exactly its bytes (no NUL), so that
 * AddressSanitizer sees any read past the end. */
static void summarize_n(const char *s, size_t n)
{
	char *copy = malloc(n ? n : 1);

	memcpy(copy, s, n);
	memset(op, 'x', sizeof(op));
	memset(coll, 'x', sizeof(coll));
	sql_summarize(copy, n, op, coll);
	free(copy);
}

static void summarize(const char *s)
{
	summarize_n(s, strlen(s));
}

static bool op_valid(const char *o)
{
	if (strnlen(o, DB_OP_MAX) >= DB_OP_MAX)
		return false;
	if (strcmp(o, "_OTHER") == 0)
		return true;
	for (size_t i = 0; i < NOPS; i++) {
		if (strcmp(o, known_ops[i]) == 0)
			return true;
	}
	return false;
}

/* Empty, or identifier parts of [A-Za-z0-9_$] joined by single dots, at
 * most 63 bytes. */
static bool coll_valid(const char *c)
{
	size_t len = strnlen(c, DB_COLL_MAX);

	if (len >= DB_COLL_MAX)
		return false;
	if (!len)
		return true;
	if (c[0] == '.' || c[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = c[i];

		if (ch == '.' && c[i + 1] == '.')
			return false;
		if (!(ch == '.' || ch == '_' || ch == '$' ||
		      (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z')))
			return false;
	}
	return true;
}

TEST(every_operation_keyword)
{
	for (size_t i = 0; i < NOPS; i++) {
		char buf[64], lower[64];
		size_t len = strlen(known_ops[i]);

		memcpy(buf, known_ops[i], len);
		memcpy(buf + len, " x", 3);
		summarize(buf);
		CHECK_STR(op, known_ops[i]);
		for (size_t j = 0; j <= len; j++)
			lower[j] = known_ops[i][j] | (j < len ? 0x20 : 0);
		summarize(lower);
		CHECK_STR(op, known_ops[i]);
	}
}

TEST(other_operations)
{
	static const char *const cases[] = {
		"",
		"   \n\t ",
		"garbage here",
		"SELECTED * FROM t",
		"SELECT1",
		"DEALLOCATED",
		"SEL",
		"\x16\x03\x01",
		"\xc3\xa9t",
		"_SELECT 1",
		"1 SELECT",
		"; SELECT 1",
		"-- only a comment",
		"/* unclosed",
		"REINDEX TABLE t",
		"MERGEX INTO t",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		summarize(cases[i]);
		CHECK_STR(op, "_OTHER");
		CHECK_STR(coll, "");
	}
	sql_summarize(NULL, 0, op, coll);
	CHECK_STR(op, "_OTHER");
	CHECK_STR(coll, "");
}

TEST(leading_comments_spaces_parentheses)
{
	summarize("  -- why\n  /* a /* nested */ one */ select * from t");
	CHECK_STR(op, "SELECT");
	CHECK_STR(coll, "t");
	summarize("# mysql\nINSERT INTO t VALUES (1)");
	CHECK_STR(op, "INSERT");
	CHECK_STR(coll, "t");
	summarize("((SELECT a FROM t))");
	CHECK_STR(op, "SELECT");
	CHECK_STR(coll, "t");
	summarize("\r\n\fSELECT(1)");
	CHECK_STR(op, "SELECT");
	CHECK_STR(coll, "");
}

struct coll_case {
	const char *sql, *op, *coll;
};

static void check_cases(const struct coll_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		summarize(cases[i].sql);
		if (strcmp(op, cases[i].op) || strcmp(coll, cases[i].coll))
			fprintf(stderr, "  for: %s\n", cases[i].sql);
		CHECK_STR(op, cases[i].op);
		CHECK_STR(coll, cases[i].coll);
	}
}

TEST(single_table_statements)
{
	static const struct coll_case cases[] = {
		{ "SELECT * FROM orders", "SELECT", "orders" },
		{ "select id, name from users where id = $1", "SELECT",
		  "users" },
		{ "SELECT * FROM public.orders o WHERE o.id = 1", "SELECT",
		  "public.orders" },
		{ "SELECT * FROM \"Public\".\"Orders\"", "SELECT",
		  "Public.Orders" },
		{ "SELECT * FROM `shop`.`orders` LIMIT 1, 2", "SELECT",
		  "shop.orders" },
		{ "SELECT * FROM t AS x ORDER BY a, b", "SELECT", "t" },
		{ "SELECT * FROM ONLY t", "SELECT", "t" },
		{ "SELECT a FROM t; SELECT b FROM u", "SELECT", "t" },
		{ "SELECT * FROM t WHERE s = 'a FROM b, c JOIN d'", "SELECT",
		  "t" },
		{ "SELECT * FROM t WHERE s = 'it''s' AND u = 'x\\'y'", "SELECT",
		  "t" },
		{ "SELECT $$ FROM x $$, $f$ JOIN $f$ FROM t", "SELECT", "t" },
		{ "SELECT a -- FROM x\n FROM t /* JOIN y */", "SELECT", "t" },
		{ "SELECT * FROM t FOR UPDATE", "SELECT", "t" },
		{ "SELECT a$b FROM t$1", "SELECT", "t$1" },
		{ "INSERT INTO orders (a, b) VALUES ($1, $2), ($3, $4)",
		  "INSERT", "orders" },
		{ "insert into s.t values (1) on conflict do nothing", "INSERT",
		  "s.t" },
		{ "INSERT IGNORE INTO t SET a = 1, b = 2", "INSERT", "t" },
		{ "INSERT INTO t DEFAULT VALUES RETURNING id", "INSERT", "t" },
		{ "UPDATE t SET a = 1, b = 2 WHERE id = 3", "UPDATE", "t" },
		{ "UPDATE ONLY t SET a = 1", "UPDATE", "t" },
		{ "DELETE FROM t WHERE id = 1", "DELETE", "t" },
		{ "DELETE LOW_PRIORITY FROM t", "DELETE", "t" },
		{ "COPY t FROM STDIN", "COPY", "t" },
		{ "COPY t (a, b) FROM STDIN WITH (FORMAT csv)", "COPY", "t" },
		{ "COPY s.t TO STDOUT", "COPY", "s.t" },
		{ "TRUNCATE t", "TRUNCATE", "t" },
		{ "TRUNCATE TABLE ONLY t RESTART IDENTITY", "TRUNCATE", "t" },
		{ "CREATE TABLE t (id int, b text)", "CREATE", "t" },
		{ "CREATE TABLE IF NOT EXISTS s.t (id int)", "CREATE", "s.t" },
		{ "CREATE TEMP TABLE t (id int)", "CREATE", "t" },
		{ "DROP TABLE t", "DROP", "t" },
		{ "DROP TABLE IF EXISTS t CASCADE", "DROP", "t" },
		{ "ALTER TABLE t ADD COLUMN c int", "ALTER", "t" },
		{ "ALTER TABLE IF EXISTS ONLY t RENAME TO u", "ALTER", "t" },
		{ "REPLACE INTO t VALUES (1)", "REPLACE", "t" },
		{ "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LOCK", "t" },
		{ "LOCK t", "LOCK", "t" },
		{ "TABLE t", "TABLE", "t" },
		{ "TABLE s.t;", "TABLE", "s.t" },
	};

	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

TEST(no_single_table)
{
	static const struct coll_case cases[] = {
		{ "SELECT 1", "SELECT", "" },
		{ "SELECT * FROM a JOIN b ON a.id = b.id", "SELECT", "" },
		{ "SELECT * FROM a LEFT OUTER JOIN b USING (id)", "SELECT",
		  "" },
		{ "SELECT * FROM a, b", "SELECT", "" },
		{ "SELECT * FROM a x, b y", "SELECT", "" },
		{ "SELECT * FROM a WHERE id IN (SELECT id FROM b)", "SELECT",
		  "" },
		{ "SELECT (SELECT max(x) FROM b) FROM a", "SELECT", "" },
		{ "SELECT * FROM (SELECT 1) s", "SELECT", "" },
		{ "SELECT * FROM generate_series(1, 3)", "SELECT", "" },
		{ "SELECT a FROM t UNION SELECT a FROM u", "SELECT", "" },
		{ "SELECT * FROM", "SELECT", "" },
		{ "SELECT * FROM 'x'", "SELECT", "" },
		{ "SELECT * FROM \"a b\"", "SELECT", "" },
		{ "SELECT * FROM \"a\"\"b\"", "SELECT", "" },
		{ "SELECT * FROM \"\"", "SELECT", "" },
		{ "SELECT * FROM \"unclosed", "SELECT", "" },
		{ "SELECT * FROM t\xc3\xa5"
		  "ble",
		  "SELECT", "" },
		{ "SELECT * FROM s.", "SELECT", "" },
		{ "SELECT * FROM s.\"a-b\"", "SELECT", "" },
		{ "INSERT INTO t SELECT * FROM u", "INSERT", "" },
		{ "INSERT t VALUES (1)", "INSERT", "" },
		{ "UPDATE a SET x = 1 FROM b WHERE a.id = b.id", "UPDATE", "" },
		{ "UPDATE a JOIN b ON a.id = b.id SET a.x = 1", "UPDATE", "" },
		{ "UPDATE a, b SET a.x = b.x", "UPDATE", "" },
		{ "DELETE FROM a USING b WHERE a.id = b.id", "DELETE", "" },
		{ "DELETE a FROM a JOIN b", "DELETE", "" },
		{ "COPY (SELECT * FROM t) TO STDOUT", "COPY", "" },
		{ "TRUNCATE a, b", "TRUNCATE", "" },
		{ "CREATE INDEX i ON t (a)", "CREATE", "" },
		{ "CREATE TABLE t AS SELECT * FROM u", "CREATE", "" },
		{ "CREATE TABLE IF EXISTS t", "CREATE", "" },
		{ "DROP TABLE a, b", "DROP", "" },
		{ "DROP VIEW v", "DROP", "" },
		{ "ALTER INDEX i RENAME TO j", "ALTER", "" },
		{ "WITH x AS (SELECT 1) SELECT * FROM x", "WITH", "" },
		{ "BEGIN; SELECT * FROM t", "BEGIN", "" },
		{ "MERGE INTO t USING u ON t.id = u.id", "MERGE", "" },
		{ "EXPLAIN SELECT * FROM t", "EXPLAIN", "" },
	};

	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

TEST(name_length_limit)
{
	char sql[256];
	char name63[64], name64[65];

	memset(name63, 'a', 63);
	name63[63] = '\0';
	memset(name64, 'b', 64);
	name64[64] = '\0';
	snprintf(sql, sizeof(sql), "SELECT * FROM %s", name63);
	summarize(sql);
	CHECK_STR(coll, name63);
	snprintf(sql, sizeof(sql), "SELECT * FROM %s", name64);
	summarize(sql);
	CHECK_STR(coll, "");
	/* 31 + '.' + 31 = 63 fits; one more byte does not. */
	snprintf(sql, sizeof(sql), "DELETE FROM %.31s.%.31s", name63, name63);
	summarize(sql);
	CHECK(strlen(coll) == 63);
	snprintf(sql, sizeof(sql), "DELETE FROM %.31s.%.32s", name63, name63);
	summarize(sql);
	CHECK_STR(coll, "");
}

TEST(never_reads_past_n)
{
	static const char sql[] = "SELECT * FROM orders JOIN x";

	/* Cut before the JOIN: the name is what there is of it. */
	summarize_n(sql, 20);
	CHECK_STR(op, "SELECT");
	CHECK_STR(coll, "orders");
	summarize_n(sql, 3);
	CHECK_STR(op, "_OTHER");
	summarize_n(sql, 6);
	CHECK_STR(op, "SELECT");
	/* A NUL ends the text. */
	summarize_n("SELECT * FROM t\0JOIN u", 22);
	CHECK_STR(coll, "t");
	/* Unclosed string, quote, comment, dollar quote at the very end. */
	summarize_n("SELECT * FROM t WHERE a = '\\", 28);
	CHECK_STR(coll, "t");
	summarize_n("SELECT * FROM t WHERE a = $x", 28);
	CHECK_STR(coll, "t");
	summarize_n("SELECT * FROM t /", 17);
	CHECK_STR(coll, "t");
	summarize_n("SELECT * FROM `t", 16);
	CHECK_STR(coll, "");
}

/* Pieces that steer the lexer into its corners. */
static const char *const pieces[] = {
	"SELECT ", "select ", "FROM ", "from ",	 "JOIN ", "INSERT ", "INTO ",
	"DELETE ", "UPDATE ", "COPY ", "TABLE ", "IF ",	  "NOT ",    "EXISTS ",
	"ONLY ",   "t",	      "s.t",   "\"q\"",	 "`b`",	  "\"",	     "`",
	"'",	   "''",      "\\",    "$$",	 "$a$",	  "$1",	     "--",
	"/*",	   "*/",      "\n",    "(",	 ")",	  ",",	     ";",
	".",	   " ",	      "#",     "\xff",	 "\0",	  "AS ",     "USING ",
};

#define NPIECES(p) (sizeof(p) / sizeof((p)[0]))

/* Appends to buf[0..n) pieces drawn from p (np of them), and with raw
 * random bytes between them, until want bytes or a piece that does not
 * fit: the text's length. A piece "" is one NUL. */
static size_t random_text(uint32_t *seed, const char *const *p, size_t np,
			  bool raw, char *buf, size_t n, size_t want)
{
	while (n < want) {
		uint32_t r = unit_xorshift32(seed);
		const char *piece = p[(r >> 8) % np];
		size_t len = piece[0] ? strlen(piece) : 1;

		if (raw && (r & 1)) {
			buf[n++] = (char)(r >> 8);
			continue;
		}
		if (n + len > want)
			break;
		memcpy(buf + n, piece, len);
		n += len;
	}
	return n;
}

TEST(fuzz_invariants)
{
	uint32_t seed = 0x5eed1234;
	char buf[200];

	for (int iter = 0; iter < 200000; iter++) {
		size_t want = unit_xorshift32(&seed) % sizeof(buf);
		size_t n = random_text(&seed, pieces, NPIECES(pieces), true,
				       buf, 0, want);

		summarize_n(buf, n);
		CHECK(op_valid(op));
		CHECK(coll_valid(coll));
		if (!op_valid(op) || !coll_valid(coll))
			break;
	}
}

/* The memo's answer for s[0..n) is sql_summarize's own. */
static bool memo_agrees(const char *s, size_t n)
{
	char mop[DB_OP_MAX], mcoll[DB_COLL_MAX];

	summarize_n(s, n);
	sql_summarize_memo(s, n, mop, mcoll);
	if (strcmp(op, mop) == 0 && strcmp(coll, mcoll) == 0)
		return true;
	fprintf(stderr, "memo: \"%.*s\": %s %s, alone %s %s\n", (int)n, s, mop,
		mcoll, op, coll);
	return false;
}

/* Statements that differ in their digits, one after the other: each gets
 * its own summary, whether the memo answers it or not. Digits that are
 * a name's, quoted or not, tell statements apart. */
TEST(memo_answers_as_the_statement_itself)
{
	static const char *const runs[][2] = {
		{ "SELECT abalance FROM pgbench_accounts WHERE aid = 1;",
		  "SELECT abalance FROM pgbench_accounts WHERE aid = 99999;" },
		{ "SELECT * FROM \"1\"", "SELECT * FROM \"2\"" },
		{ "SELECT * FROM `1`", "SELECT * FROM `22`" },
		{ "SELECT * FROM s.\"1\" WHERE x=1",
		  "SELECT * FROM s.\"2\" WHERE x=2" },
		{ "SELECT * FROM t1", "SELECT * FROM t2" },
		{ "SELECT * FROM a$1", "SELECT * FROM a$2" },
		{ "SELECT * FROM 1abc", "SELECT * FROM 2abc" },
		{ "SELECT * FROM \"t 1\"", "SELECT * FROM \"t 2\"" },
		{ "SELECT * FROM \"1t\"", "SELECT * FROM \"2t\"" },
		{ "INSERT INTO t VALUES (1, 'a 2', $1, 4.5e6)",
		  "INSERT INTO t VALUES (3, 'a 4', $2, 7.8e9)" },
		{ "SELECT * FROM t /* 1 */ WHERE a = 1",
		  "SELECT * FROM t /* 2 */ WHERE a = 2" },
		{ "SELECT * FROM t\xc3\xa5\x31",
		  "SELECT * FROM t\xc3\xa5\x32" },
		{ "DELETE FROM orders WHERE id IN (1, 2, 3)",
		  "DELETE FROM orders WHERE id IN (44, 55, 66)" },
	};
	bool all = true;

	sql_memo_clear();
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		for (int k = 0; k < 4; k++)
			all &= memo_agrees(runs[i][k % 2],
					   strlen(runs[i][k % 2]));
	CHECK(all);
	summarize("SELECT * FROM \"2\"");
	CHECK_STR(coll, "2");
	sql_summarize_memo("SELECT * FROM \"1\"", 17, op, coll);
	CHECK_STR(coll, "1");
	sql_summarize_memo("SELECT * FROM t2", 16, op, coll);
	CHECK_STR(coll, "t2");
}

/* Pieces with digits where a number, a name or a string may have them. */
static const char *const digit_pieces[] = {
	"1",	   "23",      "4.5",	" 6",	 "=7",	"(8",  ",9",
	"\"1\"",   "`2`",     "a1",	"$1",	 "a$2", "'3'", "x.4",
	"5e6",	   "\"a 7\"", "FROM ",	"JOIN ", "t",	"t1",  "SELECT ",
	"DELETE ", "\"",      "'",	"`",	 "--",	"\n",  "/*",
	"*/",	   "$$",      "$a1$",	" ",	 ";",	".",   "\xc3\xa5",
	"\\",	   "AS ",     "USING ",
};

/* Random statements of few pieces: many read alike but for their
 * digits, so the memo answers often; its answer is always the
 * statement's own. */
TEST(memo_fuzz_agrees_with_the_lexer)
{
	uint32_t seed = 0x0badcafe;
	char buf[96];
	bool all = true;

	sql_memo_clear();
	for (int iter = 0; iter < 200000 && all; iter++) {
		size_t n = 0, want = 4 + unit_xorshift32(&seed) % 40;

		/* Most statements name a table early, or try to. */
		if (unit_xorshift32(&seed) % 4) {
			memcpy(buf, "SELECT * FROM ", 14);
			n = 14;
			want += n;
		}
		n = random_text(&seed, digit_pieces, NPIECES(digit_pieces),
				false, buf, n, want);
		all &= memo_agrees(buf, n);
	}
	CHECK(all);
	sql_memo_clear();
}

UNIT_MAIN("sql", UNIT_CASE(every_operation_keyword),
	  UNIT_CASE(other_operations),
	  UNIT_CASE(leading_comments_spaces_parentheses),
	  UNIT_CASE(single_table_statements), UNIT_CASE(no_single_table),
	  UNIT_CASE(name_length_limit), UNIT_CASE(never_reads_past_n),
	  UNIT_CASE(fuzz_invariants),
	  UNIT_CASE(memo_answers_as_the_statement_itself),
	  UNIT_CASE(memo_fuzz_agrees_with_the_lexer))
