/* An SQL statement's operation (its first keyword) and the table of a
 * single-table statement, read from its text without keeping any of it.
 *
 * Lexical structure followed:
 *   PostgreSQL: https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 *   MySQL: https://dev.mysql.com/doc/refman/8.0/en/identifiers.html and
 *          https://dev.mysql.com/doc/refman/8.0/en/comments.html
 *
 * Every byte sequence is valid input and nothing past sql[n) is read. The
 * lexer knows just enough to walk past what could hide a keyword: quoted
 * identifiers ("x", `x`), string literals ('it''s', 'it\'s': a backslash
 * escapes, as in MySQL and PostgreSQL's E'' strings; in a standard
 * PostgreSQL string such as 'C:\' it does not, and what follows is taken
 * for the string, which can hide a later JOIN), dollar quotes ($$...$$,
 * $tag$...$tag$), comments (--, nested slash-star). A NUL ends the text.
 * Only the first statement of a list ("BEGIN; SELECT 1") is read.
 *
 * A collection is named only when the statement plainly touches one table:
 * a second FROM (a subquery, INSERT ... SELECT ... FROM), a JOIN, a comma
 * list of tables, a function in FROM or a DELETE ... USING leave it empty.
 * A statement cut short may hide a JOIN beyond its end: the caller cuts
 * long statements (DB_MSG_MAX) well after the FROM clause of most.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/sql.h"
#include "util/strmap.h"

/* The operations, in the order of enum sql_op. */
static const char *const sql_op_names[] = {
	"SELECT",  "INSERT",  "UPDATE",	    "DELETE",	"MERGE",     "UPSERT",
	"BEGIN",   "START",   "COMMIT",	    "ROLLBACK", "SAVEPOINT", "RELEASE",
	"CREATE",  "ALTER",   "DROP",	    "TRUNCATE", "COPY",	     "CALL",
	"EXECUTE", "PREPARE", "DEALLOCATE", "WITH",	"SET",	     "SHOW",
	"EXPLAIN", "ANALYZE", "VACUUM",	    "GRANT",	"REVOKE",    "LOCK",
	"LISTEN",  "NOTIFY",  "UNLISTEN",   "DECLARE",	"FETCH",     "CLOSE",
	"DO",	   "USE",     "REPLACE",    "LOAD",	"VALUES",    "TABLE",
};

enum sql_op {
	SQL_SELECT,
	SQL_INSERT,
	SQL_UPDATE,
	SQL_DELETE,
	SQL_MERGE,
	SQL_UPSERT,
	SQL_BEGIN,
	SQL_START,
	SQL_COMMIT,
	SQL_ROLLBACK,
	SQL_SAVEPOINT,
	SQL_RELEASE,
	SQL_CREATE,
	SQL_ALTER,
	SQL_DROP,
	SQL_TRUNCATE,
	SQL_COPY,
	SQL_CALL,
	SQL_EXECUTE,
	SQL_PREPARE,
	SQL_DEALLOCATE,
	SQL_WITH,
	SQL_SET,
	SQL_SHOW,
	SQL_EXPLAIN,
	SQL_ANALYZE,
	SQL_VACUUM,
	SQL_GRANT,
	SQL_REVOKE,
	SQL_LOCK,
	SQL_LISTEN,
	SQL_NOTIFY,
	SQL_UNLISTEN,
	SQL_DECLARE,
	SQL_FETCH,
	SQL_CLOSE,
	SQL_DO,
	SQL_USE,
	SQL_REPLACE,
	SQL_LOAD,
	SQL_VALUES,
	SQL_TABLE,
	SQL_OTHER,
};

_Static_assert(sizeof(sql_op_names) / sizeof(sql_op_names[0]) == SQL_OTHER,
	       "one name per operation");

/* The longest operation keyword: "DEALLOCATE". */
#define SQL_KEYWORD_MAX 10

static const char sql_other[] = "_OTHER";

/* Byte classes, looked up once per byte of every statement. */
enum {
	SQL_SPACE = 1,
	SQL_ALPHA = 2,	 /* [A-Za-z] */
	SQL_DIGIT = 4,	 /* [0-9] */
	SQL_IDENT = 8,	 /* what a collection may be made of: [A-Za-z0-9_$] */
	SQL_WSTART = 16, /* starts an unquoted word */
	SQL_WORD = 32,	 /* continues one */
};

/* An unquoted word starts with a letter or '_'; bytes of UTF-8 letters
 * are taken in too, so that "tåble" is one word, and not a plain
 * identifier, rather than "t" followed by something else. */
static const uint8_t sql_class[256] = {
	[' '] = SQL_SPACE,
	['\t'] = SQL_SPACE,
	['\n'] = SQL_SPACE,
	['\r'] = SQL_SPACE,
	['\f'] = SQL_SPACE,
	['\v'] = SQL_SPACE,
	['A' ... 'Z'] = SQL_ALPHA | SQL_IDENT | SQL_WSTART | SQL_WORD,
	['a' ... 'z'] = SQL_ALPHA | SQL_IDENT | SQL_WSTART | SQL_WORD,
	['0' ... '9'] = SQL_DIGIT | SQL_IDENT | SQL_WORD,
	['_'] = SQL_IDENT | SQL_WSTART | SQL_WORD,
	['$'] = SQL_IDENT | SQL_WORD,
	[0x80 ... 0xff] = SQL_WSTART | SQL_WORD,
};

static bool sql_is_space(unsigned char c)
{
	return sql_class[c] & SQL_SPACE;
}

static bool sql_is_alpha(unsigned char c)
{
	return sql_class[c] & SQL_ALPHA;
}

static bool sql_is_digit(unsigned char c)
{
	return sql_class[c] & SQL_DIGIT;
}

/* "orders", "t_2", "a$b" are made of these. */
static bool sql_is_ident_char(unsigned char c)
{
	return sql_class[c] & SQL_IDENT;
}

static bool sql_is_word_start(unsigned char c)
{
	return sql_class[c] & SQL_WSTART;
}

static bool sql_is_word_char(unsigned char c)
{
	return sql_class[c] & SQL_WORD;
}

static unsigned char sql_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

enum sql_kind {
	SQL_TOK_END,	/* the text or its first statement ended */
	SQL_TOK_WORD,	/* an unquoted identifier or keyword */
	SQL_TOK_QUOTED, /* "identifier" or `identifier` */
	SQL_TOK_VALUE,	/* a string, number or parameter */
	SQL_TOK_PUNCT,	/* any other single byte */
};

struct sql_token {
	enum sql_kind kind;
	const char *p; /* WORD: the word; QUOTED: what is inside the quotes */
	size_t len;
	/* WORD, QUOTED: nonempty, closed, only [A-Za-z0-9_$]. */
	bool plain;
};

struct sql_lexer {
	const char *s;
	size_t n, i;
	unsigned depth; /* of parentheses */
};

/* The byte at i, or 0 past the end. */
static unsigned char sql_at(const struct sql_lexer *lx, size_t i)
{
	return i < lx->n ? (unsigned char)lx->s[i] : 0;
}

/* Passes over a comment starting at i: "-- to the line's end" or a
 * slash-star one, nested as PostgreSQL nests them. Returns where it ends,
 * or i when none starts there. */
static size_t sql_comment_end(const struct sql_lexer *lx, size_t i)
{
	unsigned nest = 0;

	if (sql_at(lx, i) == '-' && sql_at(lx, i + 1) == '-') {
		while (i < lx->n && lx->s[i] != '\n')
			i++;
		return i;
	}
	if (sql_at(lx, i) != '/' || sql_at(lx, i + 1) != '*')
		return i;
	while (i < lx->n) {
		if (sql_at(lx, i) == '/' && sql_at(lx, i + 1) == '*') {
			nest++;
			i += 2;
		} else if (sql_at(lx, i) == '*' && sql_at(lx, i + 1) == '/') {
			i += 2;
			if (--nest == 0)
				break;
		} else {
			i++;
		}
	}
	return i < lx->n ? i : lx->n;
}

static void sql_skip_blanks(struct sql_lexer *lx)
{
	for (;;) {
		size_t end;

		while (lx->i < lx->n && sql_is_space(lx->s[lx->i]))
			lx->i++;
		if (lx->i >= lx->n ||
		    (lx->s[lx->i] != '-' && lx->s[lx->i] != '/'))
			return;
		end = sql_comment_end(lx, lx->i);
		if (end == lx->i)
			return;
		lx->i = end;
	}
}

/* Length of the quoted run at s[i] ('...' or "..." or `...`), its
 * doubled quotes and, for strings, backslash escapes included; the rest
 * of the text when it is not closed (*closed false). */
static size_t sql_quoted_len(const struct sql_lexer *lx, size_t i,
			     bool backslash, bool *closed)
{
	unsigned char q = sql_at(lx, i);
	size_t j = i + 1;

	*closed = false;
	while (j < lx->n) {
		unsigned char c = sql_at(lx, j);

		if (backslash && c == '\\') {
			j += 2;
		} else if (c == q && j + 1 < lx->n && sql_at(lx, j + 1) == q) {
			j += 2;
		} else if (c == q) {
			*closed = true;
			return j + 1 - i;
		} else {
			j++;
		}
	}
	return lx->n - i;
}

/* A dollar quote's opening tag at s[i]: "$$" or "$body$" (letters, digits
 * and '_', not starting with a digit). Its length, or 0 when there is
 * none ("$1" is a parameter, "a$b" is never looked at here). */
static size_t sql_dollar_tag_len(const struct sql_lexer *lx, size_t i)
{
	size_t j = i + 1;

	if (sql_is_digit(sql_at(lx, j)))
		return 0;
	while (j < lx->n &&
	       (sql_is_alpha(sql_at(lx, j)) || sql_is_digit(sql_at(lx, j)) ||
		sql_at(lx, j) == '_'))
		j++;
	return sql_at(lx, j) == '$' && j < lx->n ? j + 1 - i : 0;
}

/* Length of the dollar-quoted string at s[i] whose tag is tag bytes long:
 * up to and including the closing tag, or the rest of the text. */
static size_t sql_dollar_len(const struct sql_lexer *lx, size_t i, size_t tag)
{
	for (size_t j = i + tag; j + tag <= lx->n; j++) {
		if (memcmp(lx->s + j, lx->s + i, tag) == 0)
			return j + tag - i;
	}
	return lx->n - i;
}

static void sql_set(struct sql_token *t, enum sql_kind kind, const char *p,
		    size_t len)
{
	t->kind = kind;
	t->p = p;
	t->len = len;
	t->plain = false;
}

/* True when p[0..len) is a plain identifier: nonempty, [A-Za-z0-9_$]. */
static bool sql_plain(const char *p, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!sql_is_ident_char(p[i]))
			return false;
	}
	return true;
}

static void sql_word(struct sql_lexer *lx, struct sql_token *t)
{
	size_t j = lx->i;
	uint8_t all = SQL_IDENT;

	/* One pass: the word's end, and whether it is plain. */
	while (j < lx->n && sql_is_word_char(lx->s[j]))
		all &= sql_class[(unsigned char)lx->s[j++]];
	sql_set(t, SQL_TOK_WORD, lx->s + lx->i, j - lx->i);
	t->plain = j > lx->i && all;
	lx->i = j;
}

static void sql_quoted_ident(struct sql_lexer *lx, struct sql_token *t)
{
	bool closed;
	size_t len = sql_quoted_len(lx, lx->i, false, &closed);

	/* An unclosed one runs to the end; a closed one keeps its doubled
	 * quotes inside, which are not plain. */
	sql_set(t, SQL_TOK_QUOTED, lx->s + lx->i + 1, closed ? len - 2 : 0);
	t->plain = closed && sql_plain(t->p, t->len);
	lx->i += len;
}

/* A number ("42", "1.5e3", "0x1F") or a parameter's digits ("$1"). */
static void sql_number(struct sql_lexer *lx, struct sql_token *t)
{
	size_t j = lx->i + 1;

	while (j < lx->n && (sql_is_word_char(lx->s[j]) || lx->s[j] == '.'))
		j++;
	sql_set(t, SQL_TOK_VALUE, lx->s + lx->i, j - lx->i);
	lx->i = j;
}

/* The next token of the first statement; SQL_TOK_END from its ';' (outside
 * parentheses), a NUL, or the end of the text on, for good. */
static void sql_next(struct sql_lexer *lx, struct sql_token *t)
{
	unsigned char c;
	size_t len;
	bool closed;

	sql_skip_blanks(lx);
	c = sql_at(lx, lx->i);
	if (lx->i >= lx->n || c == '\0' || (c == ';' && !lx->depth)) {
		lx->n = lx->i;
		sql_set(t, SQL_TOK_END, lx->s + lx->i, 0);
		return;
	}
	if (sql_is_word_start(c)) {
		sql_word(lx, t);
		return;
	}
	if (c == '"' || c == '`') {
		sql_quoted_ident(lx, t);
		return;
	}
	if (c == '\'') {
		len = sql_quoted_len(lx, lx->i, true, &closed);
		sql_set(t, SQL_TOK_VALUE, lx->s + lx->i, len);
		lx->i += len;
		return;
	}
	if (sql_is_digit(c) ||
	    (c == '$' && sql_is_digit(sql_at(lx, lx->i + 1)))) {
		sql_number(lx, t);
		return;
	}
	len = c == '$' ? sql_dollar_tag_len(lx, lx->i) : 0;
	if (len) {
		len = sql_dollar_len(lx, lx->i, len);
		sql_set(t, SQL_TOK_VALUE, lx->s + lx->i, len);
		lx->i += len;
		return;
	}
	if (c == '(')
		lx->depth++;
	else if (c == ')' && lx->depth)
		lx->depth--;
	sql_set(t, SQL_TOK_PUNCT, lx->s + lx->i, 1);
	lx->i++;
}

/* The token is the keyword kw (upper case), in any case: "from", "FROM". */
static bool sql_is(const struct sql_token *t, const char *kw)
{
	size_t len;

	if (t->kind != SQL_TOK_WORD || sql_upper(t->p[0]) != kw[0])
		return false;
	len = strlen(kw);
	if (t->len != len)
		return false;
	for (size_t i = 1; i < len; i++) {
		if (sql_upper(t->p[i]) != (unsigned char)kw[i])
			return false;
	}
	return true;
}

static bool sql_is_punct(const struct sql_token *t, char c)
{
	return t->kind == SQL_TOK_PUNCT && t->p[0] == c;
}

/* Moves past t when it is the keyword kw. */
static bool sql_accept(struct sql_lexer *lx, struct sql_token *t,
		       const char *kw)
{
	if (!sql_is(t, kw))
		return false;
	sql_next(lx, t);
	return true;
}

/* Moves past any of the keywords kws (NULL-terminated), in any order. */
static void sql_accept_any(struct sql_lexer *lx, struct sql_token *t,
			   const char *const *kws)
{
	bool again = true;

	while (again) {
		again = false;
		for (const char *const *k = kws; *k && !again; k++)
			again = sql_accept(lx, t, *k);
	}
}

/* Reads the name starting at t, maybe qualified ("public.orders",
 * "\"S\".\"T\"", "`db`.`t`"), into out (DB_COLL_MAX bytes), its parts
 * joined by '.'. False, with out empty, when it is not a name or not a
 * plain one of at most DB_COLL_MAX - 1 bytes. After it, t is the token
 * that follows the name, and the lexer is past that token. */
static bool sql_read_name(struct sql_lexer *lx, struct sql_token *t, char *out)
{
	size_t len = 0;
	bool ok = true;

	out[0] = '\0';
	for (;;) {
		if (t->kind != SQL_TOK_WORD && t->kind != SQL_TOK_QUOTED)
			return false;
		if (!t->plain || len + !!len + t->len > DB_COLL_MAX - 1)
			ok = false;
		if (ok) {
			if (len)
				out[len++] = '.';
			memcpy(out + len, t->p, t->len);
			len += t->len;
		}
		sql_next(lx, t);
		if (!sql_is_punct(t, '.'))
			break;
		sql_next(lx, t);
	}
	out[ok ? len : 0] = '\0';
	return ok;
}

/* After a table's name, t the token that follows it: "(" when the name
 * is a function's in a FROM clause ("FROM generate_series(1, 3)"), or an
 * alias and then "," ("FROM a x, b y", "UPDATE a, b SET"): not one
 * table. */
static bool sql_more_than_one(struct sql_lexer lx, struct sql_token t,
			      bool in_from)
{
	if (in_from && sql_is_punct(&t, '('))
		return true;
	sql_accept(&lx, &t, "AS");
	if (t.kind == SQL_TOK_WORD || t.kind == SQL_TOK_QUOTED)
		sql_next(&lx, &t);
	return sql_is_punct(&t, ',');
}

/* The rest of the statement, from token t on, names another table: a
 * FROM (subquery, INSERT ... SELECT), a JOIN, or for DELETE a USING. */
static bool sql_names_another(struct sql_lexer lx, struct sql_token t,
			      bool using)
{
	for (; t.kind != SQL_TOK_END; sql_next(&lx, &t)) {
		/* Most words are none of them: their length tells. */
		if (t.kind != SQL_TOK_WORD ||
		    (t.len != 4 && t.len != 5 && t.len != 13))
			continue;
		if (sql_is(&t, "FROM") || sql_is(&t, "JOIN") ||
		    sql_is(&t, "STRAIGHT_JOIN") ||
		    (using && sql_is(&t, "USING")))
			return true;
	}
	return false;
}

/* Moves t to the first FROM of the statement, at any depth. */
static bool sql_find_from(struct sql_lexer *lx, struct sql_token *t)
{
	for (sql_next(lx, t); t->kind != SQL_TOK_END; sql_next(lx, t)) {
		if (sql_is(t, "FROM"))
			return true;
	}
	return false;
}

/* Moves t to the table's name in the statement of operation op, the
 * lexer just past its first keyword; false when op names none here. */
static bool sql_to_table(enum sql_op op, struct sql_lexer *lx,
			 struct sql_token *t)
{
	static const char *const insert_mods[] = { "LOW_PRIORITY", "DELAYED",
						   "HIGH_PRIORITY", "IGNORE",
						   NULL };
	static const char *const update_mods[] = { "LOW_PRIORITY", "IGNORE",
						   "ONLY", NULL };
	static const char *const delete_mods[] = { "LOW_PRIORITY", "QUICK",
						   "IGNORE", NULL };
	static const char *const create_mods[] = { "GLOBAL",   "LOCAL",
						   "TEMP",     "TEMPORARY",
						   "UNLOGGED", NULL };

	if (op == SQL_SELECT) {
		if (!sql_find_from(lx, t))
			return false;
		sql_next(lx, t);
		sql_accept(lx, t, "ONLY");
		return true;
	}
	sql_next(lx, t);
	switch (op) {
	case SQL_INSERT:
	case SQL_REPLACE:
		sql_accept_any(lx, t, insert_mods);
		return sql_accept(lx, t, "INTO");
	case SQL_UPDATE:
		sql_accept_any(lx, t, update_mods);
		return true;
	case SQL_DELETE:
		sql_accept_any(lx, t, delete_mods);
		if (!sql_accept(lx, t, "FROM"))
			return false;
		sql_accept(lx, t, "ONLY");
		return true;
	case SQL_COPY:
		return true;
	case SQL_TRUNCATE:
	case SQL_LOCK:
		if (!sql_accept(lx, t, "TABLE"))
			sql_accept(lx, t, "TABLES");
		sql_accept(lx, t, "ONLY");
		return true;
	case SQL_CREATE:
		sql_accept_any(lx, t, create_mods);
		if (!sql_accept(lx, t, "TABLE"))
			return false;
		if (sql_accept(lx, t, "IF"))
			return sql_accept(lx, t, "NOT") &&
			       sql_accept(lx, t, "EXISTS");
		return true;
	case SQL_DROP:
	case SQL_ALTER:
		if (!sql_accept(lx, t, "TABLE"))
			return false;
		if (sql_accept(lx, t, "IF") && !sql_accept(lx, t, "EXISTS"))
			return false;
		sql_accept(lx, t, "ONLY");
		return true;
	case SQL_TABLE:
		sql_accept(lx, t, "ONLY");
		return true;
	default:
		return false;
	}
}

/* The collection of the statement of operation op, the lexer just past
 * its first keyword, into out (DB_COLL_MAX bytes; empty when none). */
static void sql_collection(enum sql_op op, struct sql_lexer *lx, char *out)
{
	struct sql_token t;
	char name[DB_COLL_MAX];

	out[0] = '\0';
	if (!sql_to_table(op, lx, &t) || !sql_read_name(lx, &t, name))
		return;
	if (sql_more_than_one(*lx, t, op == SQL_SELECT))
		return;
	/* COPY t FROM STDIN: its FROM is a file, not a table. */
	if (op != SQL_COPY && sql_names_another(*lx, t, op == SQL_DELETE))
		return;
	memcpy(out, name, strlen(name) + 1);
}

/* Moves past what may precede the first keyword: blanks, comments (and
 * MySQL's "# to the line's end" there), opening parentheses. */
static void sql_skip_lead(struct sql_lexer *lx)
{
	for (;;) {
		sql_skip_blanks(lx);
		if (sql_at(lx, lx->i) == '(' && lx->i < lx->n) {
			lx->i++;
		} else if (sql_at(lx, lx->i) == '#' && lx->i < lx->n) {
			while (lx->i < lx->n && lx->s[lx->i] != '\n')
				lx->i++;
		} else {
			return;
		}
	}
}

/* The operation whose keyword starts at the lexer ("select ..."), which
 * moves past it; SQL_OTHER for any other word or none. */
static enum sql_op sql_read_op(struct sql_lexer *lx)
{
	char word[SQL_KEYWORD_MAX];
	size_t len = 0;

	while (lx->i < lx->n && sql_is_alpha(lx->s[lx->i])) {
		if (len < SQL_KEYWORD_MAX)
			word[len] = sql_upper(lx->s[lx->i]);
		len++;
		lx->i++;
	}
	/* "SELECTED", "SELECT1", "DEALLOCATED": not the keyword. */
	if (!len || len > SQL_KEYWORD_MAX ||
	    (lx->i < lx->n && sql_is_word_char(lx->s[lx->i])))
		return SQL_OTHER;
	for (int op = 0; op < SQL_OTHER; op++) {
		const char *name = sql_op_names[op];
		size_t k = 0;

		while (k < len && name[k] == word[k])
			k++;
		if (k == len && name[k] == '\0')
			return op;
	}
	return SQL_OTHER;
}

void sql_summarize(const char *sql, size_t n, char *op, char *collection)
{
	struct sql_lexer lx = { .s = sql ? sql : "", .n = sql ? n : 0 };
	enum sql_op o;
	const char *name;

	sql_skip_lead(&lx);
	o = sql_read_op(&lx);
	name = o == SQL_OTHER ? sql_other : sql_op_names[o];
	memcpy(op, name, strlen(name) + 1);
	sql_collection(o, &lx, collection);
}

/* ---- Statements summarized before ----
 *
 * A service sends a few statements again and again, most often differing
 * in their numbers alone ("... WHERE aid = 12345"). A summary never
 * depends on what a number says: a number is one value token whatever
 * its digits (sql_number), and only words, quoted names and punctuation
 * are looked at. So a statement is remembered by its text with each
 * number's digits written as one '0', and the next one whose text reads
 * the same is given the remembered summary, not lexed again.
 *
 * Which digits are a number's, without lexing: a run of digits after a
 * byte that no word continues (a blank, '=', '(', ','), but for a
 * quote that opens a name ("1" is a plain name). Digits inside a word
 * ("t2", "a$1") follow a word's byte and are kept. Digits inside a
 * string, a comment or a name that has a blank or punctuation in it
 * may be taken for a number's: there they change nothing either (a
 * string's and a comment's contents are passed over; such a name is
 * not plain), and no quote, backslash or comment mark is ever written.
 *
 * The memo is direct-mapped, by a hash of the text as written: a
 * statement of another text takes the slot over. A text is compared
 * whole, so two statements never share a summary by their hashes
 * alone. Texts of more than SQL_MEMO_TEXT bytes are not remembered. */
#define SQL_MEMO_SLOTS 128
#define SQL_MEMO_TEXT 512

struct sql_memo {
	uint64_t hash;
	size_t len; /* of text; 0: an empty slot */
	char text[SQL_MEMO_TEXT];
	char op[DB_OP_MAX];
	char collection[DB_COLL_MAX];
};

static struct sql_memo sql_memos[SQL_MEMO_SLOTS];

/* Whether a digit after byte c starts a number's digits, as above. */
static bool sql_number_follows(unsigned char c)
{
	return !sql_is_word_char(c) && c != '"' && c != '`';
}

/* Writes the text sql[0..n) as the memo keeps it into out
 * (SQL_MEMO_TEXT bytes), and its hash into *hash: its length, or 0 when
 * it is empty or longer than out. */
static size_t sql_memo_text(const char *sql, size_t n, char *out,
			    uint64_t *hash)
{
	size_t len = 0, i = 0;

	if (!n || n > SQL_MEMO_TEXT)
		return 0;
	while (i < n) {
		size_t from = i;

		/* The bytes up to the next digit, as they are. */
		while (i < n && !sql_is_digit(sql[i]))
			i++;
		memcpy(out + len, sql + from, i - from);
		len += i - from;
		if (i == n)
			break;
		/* A run of digits: a number's, written '0', after a byte no
		 * word continues; else kept (the first byte is a word's). */
		from = i;
		while (i < n && sql_is_digit(sql[i]))
			i++;
		if (from && sql_number_follows((unsigned char)sql[from - 1])) {
			out[len++] = '0';
		} else {
			memcpy(out + len, sql + from, i - from);
			len += i - from;
		}
	}
	*hash = strmap_hash_finish(
		strmap_hash_bytes(STRMAP_HASH_SEED, out, len));
	return len;
}

/* A statement the memo does not hold: summarized, and kept in m (NULL:
 * not kept) under its text. Apart, so that a memo's answer does not pay
 * for the lexer's registers. */
static __attribute__((noinline)) void
sql_memo_miss(const char *sql, size_t n, char *op, char *collection,
	      struct sql_memo *m, const char *text, size_t len, uint64_t hash)
{
	sql_summarize(sql, n, op, collection);
	if (!m)
		return;
	m->hash = hash;
	m->len = len;
	memcpy(m->text, text, len);
	memcpy(m->op, op, strlen(op) + 1);
	memcpy(m->collection, collection, strlen(collection) + 1);
}

void sql_summarize_memo(const char *sql, size_t n, char *op, char *collection)
{
	char text[SQL_MEMO_TEXT];
	uint64_t hash = 0;
	size_t len = sql ? sql_memo_text(sql, n, text, &hash) : 0;
	struct sql_memo *m = &sql_memos[hash % SQL_MEMO_SLOTS];

	if (len && m->len == len && m->hash == hash &&
	    memcmp(m->text, text, len) == 0) {
		memcpy(op, m->op, strlen(m->op) + 1);
		memcpy(collection, m->collection, strlen(m->collection) + 1);
		return;
	}
	sql_memo_miss(sql, n, op, collection, len ? m : NULL, text, len, hash);
}

void sql_memo_clear(void)
{
	memset(sql_memos, 0, sizeof(sql_memos));
}
