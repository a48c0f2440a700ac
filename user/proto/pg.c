/* PostgreSQL's frontend/backend protocol, version 3: the calls a client
 * makes and the server answers, read from either end of the connection.
 *
 * Message formats:
 *   https://www.postgresql.org/docs/current/protocol-message-formats.html
 * Message flow:
 *   https://www.postgresql.org/docs/current/protocol-flow.html
 *
 * What is a call:
 *  - A simple Query ('Q') is one call, from the Query to its
 *    ReadyForQuery ('Z'). A text of several statements ("BEGIN; SELECT 1")
 *    is still one call, named after its first statement (BEGIN): the
 *    server answers each statement with a CommandComplete, but the client
 *    waits for the one ReadyForQuery. Its status is the SQLSTATE of the
 *    first ErrorResponse among its replies. A COPY ... FROM STDIN sent
 *    this way ends at its ReadyForQuery too, after the client's CopyData.
 *  - An Execute ('E') is one call, from the Execute to its
 *    CommandComplete, EmptyQueryResponse, PortalSuspended or
 *    ErrorResponse. Its operation and table come from the Parse ('P') of
 *    the statement its portal was bound ('B') to, kept in a small cache;
 *    a statement prepared before sonde saw the connection is EXECUTE with
 *    no table. After an ErrorResponse the server skips everything up to
 *    the next Sync ('S'): the Executes it skipped never get a reply and
 *    are dropped, uncounted, when that Sync's ReadyForQuery comes.
 *  - A Parse ('P') the server rejects is one failed call, named after its
 *    statement, from the Parse to its ErrorResponse: a client that
 *    prepares before it executes (asyncpg's fetch, JDBC's server-side
 *    statements) never sends the Execute of a statement that does not
 *    parse ("SELECT 1 FROM missing_table": 42P01). Each Parse opens a
 *    call that its ParseComplete ('1') drops unobserved; replies come in
 *    order, so a ParseComplete or an ErrorResponse finds the Parse it
 *    answers the oldest open call, and a Parse the server skipped after
 *    an earlier error is dropped with that Sync's Executes.
 *  - A FunctionCall ('F', the fast path behind large objects) is one call
 *    named CALL, from the FunctionCall to its ReadyForQuery.
 *
 * Which ReadyForQuery ends what: the client's Queries, Syncs,
 * FunctionCalls and StartupMessage each get exactly one, in order. Each
 * call is tagged with its kind and the number of such messages the client
 * had sent before it (a Query or FunctionCall: itself), and the replies
 * count the ReadyForQuery messages: a reply is for the oldest open call
 * only when that call's number has come up. So a Parse/Describe/Sync
 * that prepares a statement, its ReadyForQuery included, ends no call.
 *
 * Both ends read the same way; the traced process being the server
 * changes nothing here. A connection first seen mid-life starts with
 * typed messages; one seen from its start, with the client's untyped
 * StartupMessage, SSLRequest or GSSENCRequest (the first byte 0: a length
 * under 16 MiB), and the server's one-byte answer to the latter two.
 * After an SSLRequest accepted, the plaintext the TLS probes see starts
 * again with a StartupMessage: untyped messages are taken wherever a
 * client message can start.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/db.h"
#include "proto/sql.h"

/* Request codes of the untyped messages, in their length's place. */
#define PG_SSL_REQUEST 80877103	   /* 1234 << 16 | 5679 */
#define PG_GSSENC_REQUEST 80877104 /* 1234 << 16 | 5680 */
#define PG_CANCEL_REQUEST 80877102 /* 1234 << 16 | 5678 */
/* A StartupMessage's protocol: 3.0 is 196608; 3.2 (PostgreSQL 18) too
 * has major version 3. */
#define PG_PROTOCOL_MAJOR 3

/* The server rejects startup packets longer than this
 * (MAX_STARTUP_PACKET_LENGTH in src/include/libpq/pqcomm.h). */
#define PG_STARTUP_MAX 10000
/* A CancelRequest: length, code, process ID, then a key of 4 bytes
 * (protocol 3.0) up to 256 (3.2). */
#define PG_CANCEL_MIN (4 + 4 + 4 + 4)
#define PG_CANCEL_MAX (4 + 4 + 4 + 256)
/* Longer than any message a server accepts (PQ_LARGE_MESSAGE_LIMIT is
 * 1 GiB - 1): a length above it is not PostgreSQL's. */
#define PG_LENGTH_MAX (UINT32_C(1) << 30)
/* A typed message's head: its type and its length. */
#define PG_HEAD 5
/* Columns of a row: MaxTupleAttributeNumber in
 * src/include/access/htup_details.h. */
#define PG_COLUMNS_MAX 1664
/* CommandComplete tags are a command and two counts: "INSERT 0 1". */
#define PG_TAG_MAX 1024
/* The last Authentication request code: AuthenticationSASLFinal. */
#define PG_AUTH_MAX 12

/* Statements kept, and portals. 32 statements of 96 bytes (their name's
 * hash, operation and a table of up to 63 bytes) fill three quarters of
 * DB_PRIV_BYTES; 64 would not fit. Drivers that prepare more (pgx keeps
 * 512) see their least recently bound ones as EXECUTE. Portals are
 * mostly the unnamed one; JDBC names one per open cursor. */
#define PG_STMTS 32
#define PG_PORTALS 8
/* "DEALLOCATE" and its NUL: the longest operation sql_summarize names. */
#define PG_OP_MAX 11

/* A call's tag: its kind in the top three bits, below them its number:
 * how many ReadyForQuery-bound messages the client sent before it.
 * Numbers wrap at 2^29. */
#define PG_SEQ_BITS 29
#define PG_SEQ_MASK ((UINT32_C(1) << PG_SEQ_BITS) - 1)

enum pg_kind {
	PG_QUERY = 1,	 /* 'Q': ends at its ReadyForQuery */
	PG_EXECUTE = 2,	 /* 'E': ends at its CommandComplete or error */
	PG_FUNCTION = 3, /* 'F': ends at its ReadyForQuery */
	PG_PARSE = 4,	 /* 'P': a call only when it fails */
};

/* A statement the client prepared with Parse. */
struct pg_stmt {
	uint64_t name; /* pg_hash of its name ("" is the unnamed one) */
	uint32_t used; /* pg_conn.clock when last parsed or bound; 0: free */
	uint32_t gen;  /* pg_conn.gen when parsed: portals check it */
	char op[PG_OP_MAX];
	char coll[DB_COLL_MAX];
};

/* A portal the client bound to a statement. */
struct pg_portal {
	uint64_t name;
	uint32_t gen; /* its statement's gen when bound */
	int8_t stmt;  /* index in pg_conn.stmts; -1: a statement not seen */
	bool used;
};

struct pg_conn {
	struct pg_stmt stmts[PG_STMTS];
	struct pg_portal portals[PG_PORTALS];
	uint32_t clock; /* ticks at each Parse and Bind, for LRU */
	uint32_t gen;	/* ticks at each Parse */
	/* ReadyForQuery-bound messages the client sent, and ReadyForQuery
	 * messages the server sent, both wrapping at 2^29. */
	uint32_t sent, answered;
	/* Syncs since the last Execute: when CopyData follows, that Execute
	 * was a COPY FROM STDIN and the server ignored them (copy-in mode
	 * ignores Sync and Flush). */
	uint32_t syncs_in_copy;
	uint8_t next_portal; /* round robin */
	/* The SQLSTATE of the first ErrorResponse to the Query or
	 * FunctionCall being answered ("" when it had none valid). */
	bool failed;
	char sqlstate[6];
	/* 'S' after an SSLRequest, 'G' after a GSSENCRequest: the server's
	 * next byte is its one-byte answer. */
	char answer;
	bool server_seen; /* a typed server message came */
};

_Static_assert(sizeof(struct pg_conn) <= DB_PRIV_BYTES,
	       "struct pg_conn lives in db_conn.priv");
_Static_assert(PG_STMTS <= INT8_MAX, "pg_portal.stmt holds an index");
_Static_assert(PG_PARSE < 1 << (32 - PG_SEQ_BITS), "a kind fits in a tag");

static struct pg_conn *pg_conn_of(struct db_conn *c)
{
	return (struct pg_conn *)c->priv;
}

static uint32_t pg_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint16_t pg_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* FNV-1a, 64 bits: names are kept by hash, not by their bytes. */
static uint64_t pg_hash(const uint8_t *p, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* ---- tags and sequence numbers ---- */

static uint32_t pg_tag(enum pg_kind kind, uint32_t seq)
{
	return (uint32_t)kind << PG_SEQ_BITS | (seq & PG_SEQ_MASK);
}

static enum pg_kind pg_tag_kind(uint32_t tag)
{
	return (enum pg_kind)(tag >> PG_SEQ_BITS);
}

/* Sequence number a comes no later than b, both wrapping at 2^29. */
static bool pg_seq_le(uint32_t a, uint32_t b)
{
	return ((b - a) & PG_SEQ_MASK) <= PG_SEQ_MASK / 2;
}

static uint32_t pg_seq_next(uint32_t seq)
{
	return (seq + 1) & PG_SEQ_MASK;
}

/* ---- message types and lengths: pure predicates ---- */

/* What each message type is, looked up once per message. */
enum {
	/* Types of the messages a client sends, protocol 3:
	 *   'B' Bind, 'C' Close, 'D' Describe, 'E' Execute,
	 *   'F' FunctionCall, 'H' Flush, 'P' Parse, 'Q' Query, 'S' Sync,
	 *   'X' Terminate, 'd' CopyData, 'c' CopyDone, 'f' CopyFail,
	 *   'p' PasswordMessage, SASL and GSS responses. */
	PG_FRONTEND = 1,
	/* Types of the messages a server sends:
	 *   'R' Authentication*, 'K' BackendKeyData, 'S' ParameterStatus,
	 *   'v' NegotiateProtocolVersion, 'Z' ReadyForQuery,
	 *   '1' ParseComplete, '2' BindComplete, '3' CloseComplete,
	 *   't' ParameterDescription, 'T' RowDescription, 'n' NoData,
	 *   'D' DataRow, 'C' CommandComplete, 'I' EmptyQueryResponse,
	 *   's' PortalSuspended, 'E' ErrorResponse, 'N' NoticeResponse,
	 *   'A' NotificationResponse, 'V' FunctionCallResponse,
	 *   'G' CopyInResponse, 'H' CopyOutResponse, 'W' CopyBothResponse,
	 *   'd' CopyData, 'c' CopyDone. */
	PG_BACKEND = 2,
	/* A client's messages with no body: Sync, Flush, CopyDone,
	 * Terminate. */
	PG_FRONTEND_EMPTY = 4,
	/* A server's: ParseComplete, BindComplete, CloseComplete, NoData,
	 * EmptyQueryResponse, PortalSuspended, CopyDone. */
	PG_BACKEND_EMPTY = 8,
	/* A client's messages read for more than their head: Query, Parse,
	 * Bind, Execute, Close, Describe. */
	PG_FRONTEND_BODY = 16,
	/* A client's messages a COPY FROM STDIN takes in: Sync, Flush,
	 * CopyData, CopyDone, CopyFail. */
	PG_IN_COPY = 32,
};

static const uint8_t pg_type_class[256] = {
	['B'] = PG_FRONTEND | PG_FRONTEND_BODY,
	['C'] = PG_FRONTEND | PG_FRONTEND_BODY | PG_BACKEND,
	['D'] = PG_FRONTEND | PG_FRONTEND_BODY | PG_BACKEND,
	['E'] = PG_FRONTEND | PG_FRONTEND_BODY | PG_BACKEND,
	['F'] = PG_FRONTEND,
	['H'] = PG_FRONTEND | PG_FRONTEND_EMPTY | PG_IN_COPY | PG_BACKEND,
	['P'] = PG_FRONTEND | PG_FRONTEND_BODY,
	['Q'] = PG_FRONTEND | PG_FRONTEND_BODY,
	['S'] = PG_FRONTEND | PG_FRONTEND_EMPTY | PG_IN_COPY | PG_BACKEND,
	['X'] = PG_FRONTEND | PG_FRONTEND_EMPTY,
	['d'] = PG_FRONTEND | PG_IN_COPY | PG_BACKEND,
	['c'] = PG_FRONTEND | PG_FRONTEND_EMPTY | PG_IN_COPY | PG_BACKEND |
		PG_BACKEND_EMPTY,
	['f'] = PG_FRONTEND | PG_IN_COPY,
	['p'] = PG_FRONTEND,
	['R'] = PG_BACKEND,
	['K'] = PG_BACKEND,
	['v'] = PG_BACKEND,
	['Z'] = PG_BACKEND,
	['1'] = PG_BACKEND | PG_BACKEND_EMPTY,
	['2'] = PG_BACKEND | PG_BACKEND_EMPTY,
	['3'] = PG_BACKEND | PG_BACKEND_EMPTY,
	['t'] = PG_BACKEND,
	['T'] = PG_BACKEND,
	['n'] = PG_BACKEND | PG_BACKEND_EMPTY,
	['I'] = PG_BACKEND | PG_BACKEND_EMPTY,
	['s'] = PG_BACKEND | PG_BACKEND_EMPTY,
	['N'] = PG_BACKEND,
	['A'] = PG_BACKEND,
	['V'] = PG_BACKEND,
	['G'] = PG_BACKEND,
	['W'] = PG_BACKEND,
};

/* Whether message type t is of any of the classes what (PG_FRONTEND,
 * ...). */
static bool pg_type_is(uint8_t t, unsigned what)
{
	return pg_type_class[t] & what;
}

/* The length field a message of type t may carry. Messages with no body
 * are exactly 4 ("S\0\0\0\x04", "1\0\0\0\x04"); ReadyForQuery is 5
 * ("Z\0\0\0\x05I"); any other is at least 4 and at most 1 GiB. */
static bool pg_length_ok(bool from_client, uint8_t t, uint32_t len)
{
	if (len < 4 || len > PG_LENGTH_MAX)
		return false;
	if (from_client)
		return !pg_type_is(t, PG_FRONTEND_EMPTY) || len == 4;
	if (pg_type_is(t, PG_BACKEND_EMPTY))
		return len == 4;
	if (t == 'Z')
		return len == 5;
	return true;
}

static bool pg_is_letter(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Bytes of a server message's start that show it is one (see
 * pg_backend_head_ok); the type and length for most. */
static size_t pg_backend_head(uint8_t t)
{
	switch (t) {
	case 'D':
		return PG_HEAD + 2 + 4;
	case 'T':
		return PG_HEAD + 2;
	case 'R':
		return PG_HEAD + 4;
	case 'C':
	case 'E':
	case 'N':
	case 'G':
	case 'H':
	case 'W':
		return PG_HEAD + 1;
	default:
		return PG_HEAD;
	}
}

/* The start of a server message at p, of type t and length len, looks
 * like one (p holds pg_backend_head(t) bytes of it, or all of a shorter
 * one). After a loss the stream starts again at a read that may
 * start inside a message; these keep a stray byte from passing for a
 * long DataRow or for a CommandComplete that would end a call:
 *   DataRow "D\0\0\0\x0b" "\0\x01" "\0\0\0\x01" "7": at most 1664 columns
 *   (MaxTupleAttributeNumber), the first one NULL (-1) or within it;
 *   RowDescription "T\0\0\0\x1b" "\0\x01" ...: at most 1664 fields;
 *   CommandComplete "C\0\0\0\x0d" "SELECT 1\0": a tag in capitals, short;
 *   ErrorResponse, NoticeResponse "E\0\0\0\x4e" "SERROR\0...": a field code;
 *   Authentication "R\0\0\0\x08" "\0\0\0\0": a request code up to 12;
 *   Copy*Response "G\0\0\0\x07" "\0" "\0\0": a format, 0 or 1;
 *   BackendKeyData: a key of 4 to 256 bytes. */
static bool pg_backend_head_ok(uint8_t t, uint32_t len, const uint8_t *p)
{
	uint32_t cols;
	int32_t first;

	switch (t) {
	case 'D':
	case 'T':
		if (len < 6 || pg_be16(p + PG_HEAD) > PG_COLUMNS_MAX)
			return false;
		cols = pg_be16(p + PG_HEAD);
		if (!cols)
			return len == 6;
		if (t == 'T')
			return true;
		if (len < 10)
			return false;
		first = (int32_t)pg_be32(p + PG_HEAD + 2);
		return first == -1 ||
		       (first >= 0 && (uint32_t)first <= len - 10);
	case 'C':
		return len >= 5 && len <= PG_TAG_MAX && p[PG_HEAD] >= 'A' &&
		       p[PG_HEAD] <= 'Z';
	case 'E':
	case 'N':
		return len >= 5 &&
		       (p[PG_HEAD] == 0 || pg_is_letter(p[PG_HEAD]));
	case 'R':
		return len >= 8 && pg_be32(p + PG_HEAD) <= PG_AUTH_MAX;
	case 'G':
	case 'H':
	case 'W':
		return len >= 7 && p[PG_HEAD] <= 1;
	case 'K':
		return len >= 4 + 4 + 4 && len <= 4 + 4 + 256;
	default:
		return true;
	}
}

/* Messages read for more than their head: a client's Query, Parse, Bind,
 * Execute, Close and Describe; a server's ErrorResponse (its SQLSTATE)
 * and ReadyForQuery (its status byte). Others (a DataRow, CopyData) are
 * passed over by length, holes included. */
static bool pg_reads_body(bool from_client, uint8_t t)
{
	return from_client ? pg_type_is(t, PG_FRONTEND_BODY) :
			     t == 'E' || t == 'Z';
}

/* The start p[0..n) of a Bind holds the two names it is read for
 * ("portal\0" "statement\0"): its parameter values, maybe long enough to
 * fall in a hole, are not needed. */
static bool pg_bind_names_in(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, 0, n);

	return nul && memchr(nul + 1, 0, n - (size_t)(nul + 1 - p));
}

/* A ReadyForQuery's transaction status: idle, in a transaction, in a
 * failed one. */
static bool pg_ready_status(uint8_t s)
{
	return s == 'I' || s == 'T' || s == 'E';
}

/* An SQLSTATE: five of [0-9A-Z], "42P01". */
static bool pg_sqlstate_ok(const uint8_t *p, size_t n)
{
	if (n != 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'A' && p[i] <= 'Z')))
			return false;
	}
	return true;
}

/* An ErrorResponse's severity that ends the session. */
static bool pg_fatal(const uint8_t *p, size_t n)
{
	return (n == 5 && memcmp(p, "FATAL", 5) == 0) ||
	       (n == 5 && memcmp(p, "PANIC", 5) == 0);
}

/* The length of the NUL-terminated string at p[0..n), or n when its NUL
 * is not there. */
static size_t pg_cstr_len(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, 0, n);

	return nul ? (size_t)(nul - p) : n;
}

/* A statement text cut short ends in the middle of a word, maybe of the
 * table's name: that word is left out ("... FROM ord" -> "... FROM "). */
static size_t pg_cut_at_word(const uint8_t *p, size_t n)
{
	while (n &&
	       (p[n - 1] == '_' || p[n - 1] == '$' || p[n - 1] == '.' ||
		p[n - 1] == '"' || p[n - 1] == '`' || p[n - 1] >= 0x80 ||
		(p[n - 1] >= '0' && p[n - 1] <= '9') || pg_is_letter(p[n - 1])))
		n--;
	return n;
}

/* ---- the statement and portal caches ---- */

static uint32_t pg_tick(uint32_t *counter)
{
	if (++*counter == 0)
		*counter = 1;
	return *counter;
}

static struct pg_stmt *pg_stmt_find(struct pg_conn *pc, uint64_t name)
{
	for (int i = 0; i < PG_STMTS; i++) {
		if (pc->stmts[i].used && pc->stmts[i].name == name)
			return &pc->stmts[i];
	}
	return NULL;
}

/* The slot a Parse of name takes: its own, a free one, or the least
 * recently used. */
static struct pg_stmt *pg_stmt_slot(struct pg_conn *pc, uint64_t name)
{
	struct pg_stmt *st = pg_stmt_find(pc, name), *oldest = &pc->stmts[0];

	if (st)
		return st;
	for (int i = 0; i < PG_STMTS; i++) {
		if (!pc->stmts[i].used)
			return &pc->stmts[i];
		if (pc->clock - pc->stmts[i].used > pc->clock - oldest->used)
			oldest = &pc->stmts[i];
	}
	return oldest;
}

static void pg_stmt_put(struct pg_conn *pc, uint64_t name, const char *op,
			const char *coll)
{
	struct pg_stmt *st = pg_stmt_slot(pc, name);
	size_t oplen = strnlen(op, PG_OP_MAX - 1);

	st->name = name;
	st->used = pg_tick(&pc->clock);
	st->gen = pg_tick(&pc->gen);
	memcpy(st->op, op, oplen);
	st->op[oplen] = '\0';
	memcpy(st->coll, coll, strlen(coll) + 1);
}

static struct pg_portal *pg_portal_find(struct pg_conn *pc, uint64_t name)
{
	for (int i = 0; i < PG_PORTALS; i++) {
		if (pc->portals[i].used && pc->portals[i].name == name)
			return &pc->portals[i];
	}
	return NULL;
}

static void pg_portal_bind(struct pg_conn *pc, uint64_t portal, uint64_t stmt)
{
	struct pg_portal *po = pg_portal_find(pc, portal);
	struct pg_stmt *st = pg_stmt_find(pc, stmt);

	if (!po) {
		po = &pc->portals[pc->next_portal];
		pc->next_portal = (pc->next_portal + 1) % PG_PORTALS;
	}
	po->name = portal;
	po->used = true;
	po->stmt = st ? (int8_t)(st - pc->stmts) : -1;
	po->gen = st ? st->gen : 0;
	if (st)
		st->used = pg_tick(&pc->clock);
}

/* The statement a portal runs, when its Parse was seen and is still
 * kept. */
static const struct pg_stmt *pg_portal_stmt(struct pg_conn *pc, uint64_t portal)
{
	const struct pg_portal *po = pg_portal_find(pc, portal);
	const struct pg_stmt *st;

	if (!po || po->stmt < 0)
		return NULL;
	st = &pc->stmts[po->stmt];
	return st->used && st->gen == po->gen ? st : NULL;
}

/* ---- replies ---- */

/* The kind of the oldest open call, when the replies now coming are for
 * it: its number has come up. */
static bool pg_oldest(const struct db_conn *c, const struct pg_conn *pc,
		      enum pg_kind *kind)
{
	uint32_t tag;

	if (!db_calls_open(c))
		return false;
	tag = db_call_tag(c);
	if (!pg_seq_le(tag & PG_SEQ_MASK, pc->answered))
		return false;
	*kind = pg_tag_kind(tag);
	return true;
}

/* ParseComplete: the Parse at the head of the open calls succeeded, and
 * a statement prepared is no call. One that finds another call there
 * answers a Parse sonde did not see, and changes nothing. */
static void pg_parsed(struct db_conn *c, struct pg_conn *pc)
{
	enum pg_kind kind;

	if (pg_oldest(c, pc, &kind) && kind == PG_PARSE)
		db_call_drop(c);
}

/* CommandComplete, EmptyQueryResponse, PortalSuspended: an Execute
 * finished. A Query's statements finish at its ReadyForQuery. */
static void pg_completed(struct db_conn *c, struct pg_conn *pc, uint64_t ts)
{
	enum pg_kind kind;

	if (pg_oldest(c, pc, &kind) && kind == PG_EXECUTE)
		db_call_end(c, ts, NULL, false);
}

/* Reads an ErrorResponse's fields, each a code byte and a string, the
 * last followed by a NUL ("SERROR\0VERROR\0C42P01\0Mrelation ...\0\0"):
 * its SQLSTATE into state (empty when absent or malformed) and whether
 * its severity ends the session. */
static void pg_error_fields(const uint8_t *p, size_t n, char state[6],
			    bool *fatal)
{
	size_t i = 0;

	state[0] = '\0';
	*fatal = false;
	while (i < n && p[i]) {
		uint8_t code = p[i++];
		size_t len = pg_cstr_len(p + i, n - i);

		if (i + len >= n)
			break; /* cut short: the value may be too */
		if (code == 'C' && pg_sqlstate_ok(p + i, len)) {
			memcpy(state, p + i, 5);
			state[5] = '\0';
		}
		if (code == 'V' || code == 'S')
			*fatal = *fatal || pg_fatal(p + i, len);
		i += len + 1;
	}
}

/* An ErrorResponse ends an Execute or a Parse at once. A Query or
 * FunctionCall ends at its ReadyForQuery with the first error's status,
 * or at once when the error ends the session (no ReadyForQuery follows a
 * FATAL). An error with no call of its own (a failed Bind of a statement
 * not seen, a failed login) ends nothing. */
static void pg_error(struct db_conn *c, struct pg_conn *pc, const uint8_t *p,
		     size_t n, uint64_t ts)
{
	char state[6];
	bool fatal;
	enum pg_kind kind;

	pg_error_fields(p, n, state, &fatal);
	if (!pg_oldest(c, pc, &kind))
		return;
	if (kind == PG_EXECUTE || kind == PG_PARSE) {
		db_call_end(c, ts, state, true);
		return;
	}
	if (!pc->failed) {
		pc->failed = true;
		memcpy(pc->sqlstate, state, sizeof(state));
	}
	if (fatal) {
		db_call_end(c, ts, pc->sqlstate, true);
		pc->failed = false;
	}
}

/* ReadyForQuery ends the Query or FunctionCall it answers, and drops the
 * Executes and Parses of its Sync still open: the server skipped them
 * after an error. One that answers nothing the client was seen to send
 * (a connection seen mid-life, or after a loss) changes nothing. */
static void pg_ready(struct db_conn *c, struct pg_conn *pc, uint64_t ts)
{
	enum pg_kind kind;

	if (pc->answered == pc->sent) {
		pc->failed = false;
		return;
	}
	while (pg_oldest(c, pc, &kind)) {
		if (kind == PG_EXECUTE || kind == PG_PARSE) {
			db_call_drop(c);
			continue;
		}
		db_call_end(c, ts, pc->failed ? pc->sqlstate : NULL,
			    pc->failed);
		pc->failed = false;
	}
	pc->failed = false;
	pc->answered = pg_seq_next(pc->answered);
}

/* ---- requests ---- */

/* The operation and table of a statement text, maybe cut short. */
static void pg_summarize(const uint8_t *text, size_t n, bool cut, char *op,
			 char *coll)
{
	if (cut)
		n = pg_cut_at_word(text, n);
	sql_summarize_memo((const char *)text, n, op, coll);
}

/* Query: "Q" len "SELECT 1\0". */
static bool pg_query(struct db_conn *c, struct pg_conn *pc, const uint8_t *p,
		     size_t n, bool whole, uint64_t ts)
{
	char op[DB_OP_MAX], coll[DB_COLL_MAX];
	size_t len = pg_cstr_len(p, n);

	if (whole && len + 1 != n)
		return false;
	pg_summarize(p, len, len == n, op, coll);
	db_call_begin(c, ts, op, coll, pg_tag(PG_QUERY, pc->sent));
	pc->sent = pg_seq_next(pc->sent);
	return true;
}

/* Parse: "P" len "name\0" "SELECT $1\0" int16 nparams, int32 type OIDs.
 * Keeps the statement for its Executes and opens a call that is one only
 * if the server rejects the statement (see pg_parsed, pg_error). */
static bool pg_parse_stmt(struct db_conn *c, struct pg_conn *pc,
			  const uint8_t *p, size_t n, bool whole, uint64_t ts)
{
	char op[DB_OP_MAX], coll[DB_COLL_MAX];
	size_t name = pg_cstr_len(p, n), text;

	if (name == n) {
		if (whole)
			return false;
		/* A name over DB_MSG_MAX: no statement kept, and its
		 * Executes are EXECUTE; its reply still comes. */
		db_call_begin(c, ts, "EXECUTE", "", pg_tag(PG_PARSE, pc->sent));
		return true;
	}
	text = pg_cstr_len(p + name + 1, n - name - 1);
	if (whole) {
		size_t params = name + 1 + text + 1;

		if (params + 2 > n ||
		    params + 2 + 4 * (size_t)pg_be16(p + params) != n)
			return false;
	}
	pg_summarize(p + name + 1, text, name + 1 + text == n, op, coll);
	pg_stmt_put(pc, pg_hash(p, name), op, coll);
	db_call_begin(c, ts, op, coll, pg_tag(PG_PARSE, pc->sent));
	return true;
}

/* Bind: "B" len "portal\0" "statement\0" formats, values... (the values
 * may be long: only the names are read). */
static bool pg_bind(struct pg_conn *pc, const uint8_t *p, size_t n, bool whole)
{
	size_t portal = pg_cstr_len(p, n), stmt;

	if (portal == n)
		return !whole;
	stmt = pg_cstr_len(p + portal + 1, n - portal - 1);
	if (portal + 1 + stmt == n)
		return !whole;
	pg_portal_bind(pc, pg_hash(p, portal), pg_hash(p + portal + 1, stmt));
	return true;
}

/* Execute: "E" len "portal\0" int32 max rows. */
static bool pg_execute(struct db_conn *c, struct pg_conn *pc, const uint8_t *p,
		       size_t n, uint64_t ts)
{
	size_t portal = pg_cstr_len(p, n);
	const struct pg_stmt *st;

	if (portal + 1 + 4 != n)
		return false;
	st = pg_portal_stmt(pc, pg_hash(p, portal));
	db_call_begin(c, ts, st ? st->op : "EXECUTE", st ? st->coll : "",
		      pg_tag(PG_EXECUTE, pc->sent));
	pc->syncs_in_copy = 0;
	return true;
}

/* Close and Describe: "C" len "S" "name\0", 'S' a statement, 'P' a
 * portal. A closed statement is forgotten; portals closed, or ended with
 * their transaction, are replaced by the next Bind of their name. */
static bool pg_close(struct pg_conn *pc, const uint8_t *p, size_t n, bool close)
{
	size_t name;
	struct pg_stmt *st;

	if (n < 2 || (p[0] != 'S' && p[0] != 'P'))
		return false;
	name = pg_cstr_len(p + 1, n - 1);
	if (name + 2 != n)
		return false;
	st = close && p[0] == 'S' ? pg_stmt_find(pc, pg_hash(p + 1, name)) :
				    NULL;
	if (st)
		st->used = 0;
	return true;
}

/* Reads the body p[0..n) of a client's message of type t (the whole body
 * when whole, else its start); false when it is malformed. */
static bool pg_frontend(struct db_conn *c, struct pg_conn *pc, uint8_t t,
			const uint8_t *p, size_t n, bool whole, uint64_t ts)
{
	/* Any message but Sync and Flush after an Execute: that Execute was
	 * not a COPY FROM STDIN ignoring them. */
	if (!pg_type_is(t, PG_IN_COPY))
		pc->syncs_in_copy = 0;
	switch (t) {
	case 'Q':
		return pg_query(c, pc, p, n, whole, ts);
	case 'P':
		return pg_parse_stmt(c, pc, p, n, whole, ts);
	case 'B':
		return pg_bind(pc, p, n, whole);
	case 'E':
		return whole && pg_execute(c, pc, p, n, ts);
	case 'C':
	case 'D':
		return whole && pg_close(pc, p, n, t == 'C');
	case 'S':
		pc->sent = pg_seq_next(pc->sent);
		pc->syncs_in_copy++;
		return true;
	case 'F':
		db_call_begin(c, ts, "CALL", "", pg_tag(PG_FUNCTION, pc->sent));
		pc->sent = pg_seq_next(pc->sent);
		return true;
	case 'd':
	case 'c':
	case 'f':
		/* Copy-in mode: the Syncs sent after its Execute get no
		 * ReadyForQuery; the one after CopyDone does. */
		pc->sent = (pc->sent - pc->syncs_in_copy) & PG_SEQ_MASK;
		pc->syncs_in_copy = 0;
		return true;
	default:
		return true;
	}
}

/* Reads the body of a server's message of type t. */
static bool pg_backend(struct db_conn *c, struct pg_conn *pc, uint8_t t,
		       const uint8_t *p, size_t n, uint64_t ts)
{
	pc->server_seen = true;
	switch (t) {
	case '1':
		pg_parsed(c, pc);
		return true;
	case 'C':
	case 'I':
	case 's':
		pg_completed(c, pc, ts);
		return true;
	case 'E':
		pg_error(c, pc, p, n, ts);
		return true;
	case 'Z':
		if (!pg_ready_status(p[0]))
			return false;
		pg_ready(c, pc, ts);
		return true;
	default:
		return true;
	}
}

/* ---- framing ---- */

/* A typed message at p[0..n): "Q\0\0\0\x0dSELECT 1\0". Returns the bytes
 * it took (all of n, with *skip set, when its end is not there and only
 * its start is needed), 0 when it must be seen whole first, or
 * DB_PARSE_LOST. */
static size_t pg_typed(struct db_conn *c, bool from_client, const uint8_t *p,
		       size_t n, uint64_t ts, uint64_t *skip)
{
	struct pg_conn *pc = pg_conn_of(c);
	uint8_t t = p[0];
	uint32_t len;
	size_t total, need, have;
	bool ok;

	if (!pg_type_is(t, from_client ? PG_FRONTEND : PG_BACKEND))
		return DB_PARSE_LOST;
	if (n < PG_HEAD)
		return 0;
	len = pg_be32(p + 1);
	if (!pg_length_ok(from_client, t, len))
		return DB_PARSE_LOST;
	total = (size_t)len + 1;
	need = from_client ? PG_HEAD : pg_backend_head(t);
	if (need > total)
		need = total;
	if (pg_reads_body(from_client, t))
		need = total < DB_MSG_MAX ? total : DB_MSG_MAX;
	if (n < need && !(from_client && t == 'B' &&
			  pg_bind_names_in(p + PG_HEAD, n - PG_HEAD)))
		return 0;
	if (!from_client && !pg_backend_head_ok(t, len, p))
		return DB_PARSE_LOST;
	have = total < n ? total : n;
	if (from_client)
		ok = pg_frontend(c, pc, t, p + PG_HEAD, have - PG_HEAD,
				 have == total, ts);
	else
		ok = pg_backend(c, pc, t, p + PG_HEAD, have - PG_HEAD, ts);
	if (!ok)
		return DB_PARSE_LOST;
	*skip = total - have;
	return have;
}

/* A client's untyped message at p[0..n), its length first:
 * StartupMessage "\0\0\0\x29" "\0\x03\0\0" "user\0bob\0database\0shop\0\0",
 * SSLRequest "\0\0\0\x08" "\x04\xd2\x16\x2f", GSSENCRequest (…\x30),
 * CancelRequest "\0\0\0\x10" "\x04\xd2\x16\x2e" pid key. */
static size_t pg_untyped(struct db_conn *c, const uint8_t *p, size_t n,
			 uint64_t *skip)
{
	struct pg_conn *pc = pg_conn_of(c);
	uint32_t len, code;

	if (n < 8)
		return 0;
	len = pg_be32(p);
	code = pg_be32(p + 4);
	if (code == PG_SSL_REQUEST || code == PG_GSSENC_REQUEST) {
		if (len != 8)
			return DB_PARSE_LOST;
		pc->answer = code == PG_SSL_REQUEST ? 'S' : 'G';
	} else if (code == PG_CANCEL_REQUEST) {
		if (len < PG_CANCEL_MIN || len > PG_CANCEL_MAX)
			return DB_PARSE_LOST;
	} else if (code >> 16 == PG_PROTOCOL_MAJOR) {
		if (len < 8 || len > PG_STARTUP_MAX)
			return DB_PARSE_LOST;
		/* A session starts: its statements are new, and its login
		 * ends with a ReadyForQuery. */
		memset(pc->stmts, 0, sizeof(pc->stmts));
		memset(pc->portals, 0, sizeof(pc->portals));
		pc->sent = pg_seq_next(pc->sent);
	} else {
		return DB_PARSE_LOST;
	}
	*skip = len > n ? len - n : 0;
	return len < n ? len : n;
}

/* The server's one-byte answer to an SSLRequest ('S' or 'N') or a
 * GSSENCRequest ('G' or 'N'), where one is awaited, or where the
 * server's first read is that byte alone and the request was not seen. */
static bool pg_is_answer(const struct pg_conn *pc, const uint8_t *p, size_t n)
{
	if (pc->answer)
		return p[0] == (uint8_t)pc->answer || p[0] == 'N';
	return !pc->server_seen && n == 1 &&
	       (p[0] == 'S' || p[0] == 'G' || p[0] == 'N');
}

/* Frames the message p[0..n) starts with: a startup packet (no type
 * byte), the server's one-byte answer to a request for TLS or GSS, or a
 * typed message. */
static size_t pg_parse(struct db_conn *c, bool from_client, const uint8_t *p,
		       size_t n, uint64_t ts, uint64_t *skip)
{
	struct pg_conn *pc = pg_conn_of(c);

	*skip = 0;
	if (from_client && p[0] == 0)
		return pg_untyped(c, p, n, skip);
	if (!from_client && pg_is_answer(pc, p, n)) {
		pc->answer = 0;
		return 1;
	}
	if (!from_client)
		pc->answer = 0;
	return pg_typed(c, from_client, p, n, ts, skip);
}

/* A direction's bytes were lost, and the calls open with them: which
 * ReadyForQuery answers what is no longer known, so the counts start
 * again from even. Statements and portals are kept: a lost Close at
 * worst names an Execute after a statement gone. */
static void pg_lost(struct db_conn *c, bool from_client)
{
	struct pg_conn *pc = pg_conn_of(c);

	(void)from_client;
	pc->sent = 0;
	pc->answered = 0;
	pc->syncs_in_copy = 0;
	pc->failed = false;
	pc->answer = 0;
}

const struct db_system db_postgresql = {
	.name = "postgresql",
	.parse = pg_parse,
	.lost = pg_lost,
};
