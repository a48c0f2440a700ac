/* MySQL and MariaDB: the client/server protocol's packets framed into
 * calls, each command timed from its packet to the last packet of its
 * reply.
 *
 * MySQL: https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html
 * MariaDB: https://mariadb.com/kb/en/clientserver-protocol/
 *
 * A packet is a 3-byte little-endian payload length, a sequence id and the
 * payload; a payload of 0xffffff bytes goes on in the next packet. The
 * connection starts with the server's greeting and the client's handshake
 * response, then authentication until the server's OK or ERR; none of it
 * is a call. Then the client sends commands, each in a packet of sequence
 * id 0 whose first byte names it, and the server answers them in order.
 * A stream first seen after its handshake (the connection is older than
 * sonde) starts at such a command.
 *
 * What is counted, and under which db_operation_name:
 *   COM_QUERY              the SQL's operation and table (sql.h)
 *   COM_STMT_PREPARE       PREPARE and the SQL's table; the statement id
 *                          of its reply is mapped to the SQL's operation
 *                          and table, per connection (MYSQL_STMTS)
 *   COM_STMT_EXECUTE       the prepared SQL's operation and table, or
 *                          EXECUTE and none for a statement prepared
 *                          before sonde saw the connection (or forgotten)
 *   COM_STMT_FETCH         FETCH and the statement's table
 *   COM_STMT_RESET         STMT_RESET and the statement's table
 *   COM_INIT_DB            USE (the SQL statement it stands for)
 *   COM_PING, COM_STATISTICS, COM_FIELD_LIST (with its table),
 *   COM_CHANGE_USER, COM_SET_OPTION, COM_RESET_CONNECTION
 *                          their names without COM_
 *   COM_PROCESS_KILL       KILL
 *   the other commands a client may send: _OTHER
 * COM_QUIT, COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA have no reply and
 * are not calls. A replication stream (COM_BINLOG_DUMP, COM_CLONE) and a
 * compressed connection are not read at all: their connection's calls are
 * not counted.
 *
 * A reply ends with an OK, an ERR (whose error code is the status, "1146";
 * the call failed), or the end of its last result set. An OK or the end
 * of a result set whose status flags say more results follow (a
 * multi-statement query, a CALL) keeps the call open. A LOCAL INFILE
 * request waits for the client's file, passed over, and the server's OK
 * or ERR after it.
 *
 * Whether result sets and statement definitions end with EOF packets or
 * not (CLIENT_DEPRECATE_EOF) comes from the handshake; on a connection
 * first seen later it is learned from the first result set, and until then
 * the end of a PREPARE reply is guessed from the bytes after it.
 *
 * Rows and column definitions are read by their first byte and passed
 * over by length; a call's reply can take many reads and have holes. A
 * command split over reads starts its call with its first bytes. Bytes
 * that make no sense (an unknown command, a reply packet out of sequence,
 * a column count of 0) lose the stream; what the connection negotiated
 * and the statements it prepared are kept, and server bytes are passed
 * over until the client's next command.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/db.h"
#include "proto/sql.h"

#define MYSQL_HEADER 4
/* A payload of this length goes on in the next packet. */
#define MYSQL_MAX_PAYLOAD 0xffffffu
/* The payload bytes read of a packet that may end a reply: the header
 * byte, an OK's two length-encoded integers of up to 9 bytes each and its
 * 2 bytes of status flags. Covers an ERR's code, a column count with its
 * metadata flag and a COM_STMT_PREPARE_OK (13 bytes) too. */
#define MYSQL_STATUS_WANT 21
/* Of a client's handshake response: capabilities 4, max packet size 4,
 * character set 1, filler 23 (an SSLRequest is exactly this). */
#define MYSQL_SSL_REQUEST_LEN 32
/* COM_FIELD_LIST: the command byte, the table and its NUL. */
#define MYSQL_FIELD_LIST_WANT (1 + DB_COLL_MAX)
/* A command naming a statement: the command byte and the id, LE32. */
#define MYSQL_STMT_CMD_LEN 5
/* A result set of more columns than this is garbage: MySQL and MariaDB
 * allow 4096 per table, and COM_STMT_PREPARE_OK counts them in 16 bits. */
#define MYSQL_MAX_COLUMNS 65535u
/* Prepared statements remembered per connection: 40 entries of 96 bytes
 * fill 3840 of the DB_PRIV_BYTES, the rest holds the connection's state.
 * The least recently used one gives way to a new one. */
#define MYSQL_STMTS 40
/* MariaDB's COM_STMT_EXECUTE of the statement last prepared (pipelined
 * after its COM_STMT_PREPARE). */
#define MYSQL_STMT_LAST 0xffffffffu

/* Capability flags. */
#define MYSQL_CLIENT_COMPRESS 0x00000020u
#define MYSQL_CLIENT_PROTOCOL_41 0x00000200u
#define MYSQL_CLIENT_SSL 0x00000800u
#define MYSQL_CLIENT_DEPRECATE_EOF 0x01000000u
#define MYSQL_CLIENT_ZSTD 0x04000000u
#define MYSQL_CLIENT_QUERY_ATTRIBUTES 0x08000000u

/* Server status flags of OK and EOF packets. */
#define MYSQL_MORE_RESULTS 0x0008u
#define MYSQL_CURSOR_EXISTS 0x0040u
/* The result set of a CALL's OUT parameters, which MariaDB sends without
 * MYSQL_MORE_RESULTS (MDEV-6304): the CALL's OK follows. */
#define MYSQL_PS_OUT_PARAMS 0x1000u

/* A MariaDB progress report is an ERR of this code, not the end. */
#define MYSQL_PROGRESS_CODE 0xffffu

/* Payload first bytes. */
#define MYSQL_OK 0x00
#define MYSQL_GREETING_V10 0x0a
#define MYSQL_INFILE 0xfb
#define MYSQL_EOF 0xfe
#define MYSQL_ERR 0xff
/* A column definition's catalog, always "def": length-encoded, 3. */
#define MYSQL_DEF 0x03

/* Commands. */
#define COM_QUIT 0x01
#define COM_INIT_DB 0x02
#define COM_QUERY 0x03
#define COM_FIELD_LIST 0x04
#define COM_CREATE_DB 0x05
#define COM_DROP_DB 0x06
#define COM_REFRESH 0x07
#define COM_SHUTDOWN 0x08
#define COM_STATISTICS 0x09
#define COM_PROCESS_INFO 0x0a
#define COM_PROCESS_KILL 0x0c
#define COM_DEBUG 0x0d
#define COM_PING 0x0e
#define COM_CHANGE_USER 0x11
#define COM_BINLOG_DUMP 0x12
#define COM_REGISTER_SLAVE 0x15
#define COM_STMT_PREPARE 0x16
#define COM_STMT_EXECUTE 0x17
#define COM_STMT_SEND_LONG_DATA 0x18
#define COM_STMT_CLOSE 0x19
#define COM_STMT_RESET 0x1a
#define COM_SET_OPTION 0x1b
#define COM_STMT_FETCH 0x1c
#define COM_BINLOG_DUMP_GTID 0x1e
#define COM_RESET_CONNECTION 0x1f
#define COM_CLONE 0x20
#define COM_STMT_BULK_EXECUTE 0xfa /* MariaDB */

/* How a command's reply is read; 0 is not a command. Kept in the low
 * byte of its call's tag, a COM_STMT_PREPARE's statement slot + 1 in the
 * next one. */
enum mysql_reply {
	MYSQL_REPLY_NONE = 1, /* none: not a call */
	MYSQL_REPLY_SIMPLE,   /* one packet: OK, ERR, EOF or a string */
	MYSQL_REPLY_FORGET,   /* one packet; an OK deallocates statements */
	MYSQL_REPLY_RESULT,   /* OK, ERR, result sets, LOCAL INFILE */
	MYSQL_REPLY_PREPARE,  /* COM_STMT_PREPARE_OK and definitions, ERR */
	MYSQL_REPLY_ROWS,     /* rows then EOF or OK (COM_STMT_FETCH) */
	MYSQL_REPLY_FIELDS,   /* definitions then EOF (COM_FIELD_LIST) */
	MYSQL_REPLY_AUTH,     /* authentication until OK or ERR */
	MYSQL_REPLY_STREAM,   /* replication: no end, stop reading */
};

struct mysql_command {
	const char *op;
	enum mysql_reply reply;
};

/* The commands a client sends, by first byte. COM_SLEEP, COM_CONNECT,
 * COM_TIME, COM_DELAYED_INSERT, COM_TABLE_DUMP, COM_CONNECT_OUT and
 * COM_DAEMON are the server's own: never on the wire. */
static const struct mysql_command mysql_commands[256] = {
	[COM_QUIT] = { NULL, MYSQL_REPLY_NONE },
	[COM_INIT_DB] = { "USE", MYSQL_REPLY_SIMPLE },
	[COM_QUERY] = { NULL, MYSQL_REPLY_RESULT },
	[COM_FIELD_LIST] = { "FIELD_LIST", MYSQL_REPLY_FIELDS },
	[COM_CREATE_DB] = { "_OTHER", MYSQL_REPLY_SIMPLE },
	[COM_DROP_DB] = { "_OTHER", MYSQL_REPLY_SIMPLE },
	[COM_REFRESH] = { "_OTHER", MYSQL_REPLY_SIMPLE },
	[COM_SHUTDOWN] = { "_OTHER", MYSQL_REPLY_SIMPLE },
	[COM_STATISTICS] = { "STATISTICS", MYSQL_REPLY_SIMPLE },
	[COM_PROCESS_INFO] = { "_OTHER", MYSQL_REPLY_RESULT },
	[COM_PROCESS_KILL] = { "KILL", MYSQL_REPLY_SIMPLE },
	[COM_DEBUG] = { "_OTHER", MYSQL_REPLY_SIMPLE },
	[COM_PING] = { "PING", MYSQL_REPLY_SIMPLE },
	[COM_CHANGE_USER] = { "CHANGE_USER", MYSQL_REPLY_AUTH },
	[COM_BINLOG_DUMP] = { NULL, MYSQL_REPLY_STREAM },
	[COM_REGISTER_SLAVE] = { "_OTHER", MYSQL_REPLY_SIMPLE },
	[COM_STMT_PREPARE] = { "PREPARE", MYSQL_REPLY_PREPARE },
	[COM_STMT_EXECUTE] = { "EXECUTE", MYSQL_REPLY_RESULT },
	[COM_STMT_SEND_LONG_DATA] = { NULL, MYSQL_REPLY_NONE },
	[COM_STMT_CLOSE] = { NULL, MYSQL_REPLY_NONE },
	[COM_STMT_RESET] = { "STMT_RESET", MYSQL_REPLY_SIMPLE },
	[COM_SET_OPTION] = { "SET_OPTION", MYSQL_REPLY_SIMPLE },
	[COM_STMT_FETCH] = { "FETCH", MYSQL_REPLY_ROWS },
	[COM_BINLOG_DUMP_GTID] = { NULL, MYSQL_REPLY_STREAM },
	[COM_RESET_CONNECTION] = { "RESET_CONNECTION", MYSQL_REPLY_FORGET },
	[COM_CLONE] = { NULL, MYSQL_REPLY_STREAM },
	[COM_STMT_BULK_EXECUTE] = { "EXECUTE", MYSQL_REPLY_RESULT },
};

enum mysql_phase {
	MYSQL_START,	 /* zeroed: greeting, handshake response or command */
	MYSQL_HANDSHAKE, /* greeting seen: response, authentication */
	MYSQL_COMMAND,	 /* commands and their replies */
	MYSQL_OPAQUE,	 /* compressed, or replication: not read */
};

/* Whether result sets and definitions end with EOF packets. */
enum mysql_eof {
	MYSQL_EOF_UNKNOWN,
	MYSQL_EOF_CLASSIC,    /* EOF packets */
	MYSQL_EOF_DEPRECATED, /* CLIENT_DEPRECATE_EOF: OK packets, 0xfe */
};

/* Where the oldest call's reply stands. */
enum mysql_state {
	MYSQL_R_NONE,	  /* not started */
	MYSQL_R_SIMPLE,	  /* its one packet */
	MYSQL_R_RESULT,	  /* a result's first packet */
	MYSQL_R_COLDEFS,  /* column definitions, defs_left of them */
	MYSQL_R_COLS_END, /* after the definitions: EOF or rows */
	MYSQL_R_ROWS,	  /* rows until EOF, OK or ERR */
	MYSQL_R_PREPARE,  /* COM_STMT_PREPARE_OK or ERR */
	MYSQL_R_PDEFS,	  /* a PREPARE_OK's definitions, defs_left */
	MYSQL_R_PEOF,	  /* the EOF after them */
	MYSQL_R_FIELDS,	  /* COM_FIELD_LIST's definitions until EOF */
	MYSQL_R_AUTH,	  /* COM_CHANGE_USER's exchange */
	MYSQL_R_INFILE,	  /* the client sends a file */
};

struct mysql_stmt {
	uint32_t id;
	uint32_t used; /* the clock at its last use; 0: free */
	char op[DB_OP_MAX];
	char collection[DB_COLL_MAX];
};

/* Laid over db_conn.priv, zeroed when the connection is first seen and
 * kept when one of its streams is lost. */
struct mysql_conn {
	uint64_t pending; /* bit i: stmts[i] waits for its PREPARE_OK */
	/* when the client's bytes kept for the packet they start came */
	uint64_t client_since;
	uint32_t defs_left; /* definitions still to come */
	uint32_t server_caps, client_caps;
	uint32_t clock;	       /* counts statement uses, for the LRU */
	uint16_t prep_cols;    /* column definitions after the parameters' */
	uint8_t phase;	       /* enum mysql_phase */
	uint8_t eof;	       /* enum mysql_eof */
	uint8_t state;	       /* enum mysql_state */
	uint8_t seq;	       /* the sequence id of the reply's next packet */
	uint8_t last_prepared; /* slot + 1 of the latest COM_STMT_PREPARE */
	bool have_server_caps, have_client_caps;
	bool response_seen; /* the handshake response (not an SSLRequest) */
	bool client_waits;  /* client_since is set */
	/* [from_client]: the last packet was 0xffffff long, the next one
	 * goes on with its payload */
	bool cont[2];
	struct mysql_stmt stmts[MYSQL_STMTS];
};

_Static_assert(sizeof(struct mysql_conn) <= DB_PRIV_BYTES,
	       "struct mysql_conn must fit db_conn.priv");
_Static_assert(MYSQL_STMTS <= 64 && MYSQL_STMTS < 255,
	       "pending is a 64-bit mask, slots + 1 fit a byte");

/* One packet: its header, and the payload bytes at hand. */
struct mysql_packet {
	uint32_t len; /* of the payload */
	uint8_t seq;
	const uint8_t *body;
	size_t have; /* of the payload's bytes, at most len */
	/* The bytes after the packet in the same parse, when it is whole */
	const uint8_t *after;
	size_t nafter;
};

/* What a packet's handler made of it. */
enum mysql_verdict {
	MYSQL_TAKEN, /* read: the packet is used, the rest passed over */
	MYSQL_LOST,  /* garbage */
};

static struct mysql_conn *mysql_of(struct db_conn *c)
{
	return (struct mysql_conn *)c->priv;
}

static uint32_t mysql_le16(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8;
}

static uint32_t mysql_le24(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static uint32_t mysql_le32(const uint8_t *p)
{
	return mysql_le24(p) | (uint32_t)p[3] << 24;
}

/* Reads the length-encoded integer at b[*off..n) and moves *off past it:
 *   "\x05" -> 5, "\xfc\x10\x27" -> 10000, "\xfd\x01\x00\x01" -> 65537.
 * False when it is cut short, or is 0xfb (NULL) or 0xff. */
static bool mysql_lenenc(const uint8_t *b, size_t n, size_t *off, uint64_t *v)
{
	size_t size, at = *off;

	if (at >= n || b[at] == 0xfb || b[at] == 0xff)
		return false;
	size = b[at] < 0xfb ? 0 : b[at] == 0xfc ? 2 : b[at] == 0xfd ? 3 : 8;
	if (n - at - 1 < size)
		return false;
	*v = size ? 0 : b[at];
	for (size_t i = size; i > 0; i--)
		*v = *v << 8 | b[at + i];
	*off = at + 1 + size;
	return true;
}

/* An EOF packet: 0xfe and fewer than 9 bytes ("\xfe\x00\x00\x02\x00").
 * CLIENT_DEPRECATE_EOF's OK packets with the 0xfe header are at least 7
 * bytes, so one of 5 is an EOF whatever was negotiated. */
static bool mysql_is_eof(const struct mysql_conn *m, uint32_t len, uint8_t b0)
{
	if (b0 != MYSQL_EOF || len >= 9)
		return false;
	return len < 7 || m->eof == MYSQL_EOF_CLASSIC;
}

/* How result sets end, seen on a connection whose handshake was not:
 * what was negotiated stays. */
static void mysql_learn_eof(struct mysql_conn *m, enum mysql_eof eof)
{
	if (m->eof == MYSQL_EOF_UNKNOWN)
		m->eof = eof;
}

/* The end of a result set's rows: an EOF, or an OK with the 0xfe header;
 * a text row starting with 0xfe (a value of 2^24 bytes or more) fills
 * the packet, 0xffffff long. */
static bool mysql_ends_rows(const struct mysql_conn *m, uint32_t len,
			    uint8_t b0)
{
	if (b0 != MYSQL_EOF || len >= MYSQL_MAX_PAYLOAD)
		return false;
	return m->eof != MYSQL_EOF_CLASSIC || len < 9;
}

/* The status flags of an OK ("\x00\x01\x00\x08\x00\x00\x00": 1 row, more
 * results) or an EOF ("\xfe\x00\x00\x0a\x00"), when there. */
static uint32_t mysql_status_flags(const struct mysql_packet *pk)
{
	size_t off = 1;
	uint64_t v;

	if (pk->len < 7 && pk->body[0] == MYSQL_EOF)
		return pk->have >= 5 ? mysql_le16(pk->body + 3) : 0;
	if (!mysql_lenenc(pk->body, pk->have, &off, &v) ||
	    !mysql_lenenc(pk->body, pk->have, &off, &v) || off + 2 > pk->have)
		return 0;
	return mysql_le16(pk->body + off);
}

/* An ERR's code ("\xff\x7a\x04#42S02..." -> 1146), 0 when cut short. */
static uint32_t mysql_error_code(const struct mysql_packet *pk)
{
	return pk->have >= 3 ? mysql_le16(pk->body + 1) : 0;
}

/* A table kept as a collection, as sql.h keeps them: 1 to 63 ASCII
 * letters, digits, '_' or '$' ("orders", "t$1"; not "a b", "a.b"). */
static bool mysql_plain_identifier(const uint8_t *s, size_t n)
{
	if (!n || n >= DB_COLL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = s[i];

		if (!((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
		      (b >= '0' && b <= '9') || b == '_' || b == '$'))
			return false;
	}
	return true;
}

/* ---- query attributes (CLIENT_QUERY_ATTRIBUTES, MySQL 8.0.23) ---- */

/* Moves *off past a binary protocol value of field type t at b[*off..n):
 * false for a type it does not know, or a value cut short. */
static bool mysql_skip_value(uint8_t t, const uint8_t *b, size_t n, size_t *off)
{
	uint64_t len;

	switch (t) {
	case 6: /* NULL */
		return true;
	case 1: /* TINY */
		len = 1;
		break;
	case 2:	 /* SHORT */
	case 13: /* YEAR */
		len = 2;
		break;
	case 3: /* LONG */
	case 4: /* FLOAT */
	case 9: /* INT24 */
		len = 4;
		break;
	case 5: /* DOUBLE */
	case 8: /* LONGLONG */
		len = 8;
		break;
	case 7:	 /* TIMESTAMP */
	case 10: /* DATE */
	case 11: /* TIME */
	case 12: /* DATETIME */
	case 14: /* NEWDATE */
	case 17: /* TIMESTAMP2 */
	case 18: /* DATETIME2 */
	case 19: /* TIME2: one byte of length, then the fields */
		if (*off >= n)
			return false;
		len = b[(*off)++];
		break;
	case 0:		  /* DECIMAL */
	case 15:	  /* VARCHAR */
	case 16:	  /* BIT */
	case 242:	  /* VECTOR */
	case 245 ... 255: /* JSON, NEWDECIMAL, ENUM, SET, BLOBs, strings */
		if (!mysql_lenenc(b, n, off, &len))
			return false;
		break;
	default:
		return false;
	}
	if (len > n - *off)
		return false;
	*off += len;
	return true;
}

/* Moves *off past a query attribute's type and name at b[*off..n), the
 * type into *t: "\x08\x00\x05trace" (LONGLONG "trace"). */
static bool mysql_skip_attribute(const uint8_t *b, size_t n, size_t *off,
				 uint8_t *t)
{
	uint64_t len;

	if (n - *off < 2)
		return false;
	*t = b[*off];
	*off += 2;
	if (!mysql_lenenc(b, n, off, &len) || len > n - *off)
		return false;
	*off += len;
	return true;
}

/* Where the SQL starts in a COM_QUERY b[0..n) whose query attributes come
 * first: "\x03\x00\x01SELECT 1" (none) -> 3; 0 when they cannot be walked
 * in the bytes at hand. The attributes' count, the count of their sets
 * (1), and for more than none: a NULL bitmap, a flag (1: types follow),
 * each one's type and name, then the values not NULL. */
static size_t mysql_query_text_at(const uint8_t *b, size_t n)
{
	size_t off = 1, bitmap, types;
	uint64_t count, sets;
	uint8_t t;

	if (!mysql_lenenc(b, n, &off, &count) ||
	    !mysql_lenenc(b, n, &off, &sets))
		return 0;
	if (!count)
		return off;
	if (count > n)
		return 0;
	bitmap = off;
	off += (count + 7) / 8;
	if (off >= n || b[off] != 1)
		return 0;
	types = ++off;
	for (uint64_t i = 0; i < count; i++)
		if (!mysql_skip_attribute(b, n, &off, &t))
			return 0;
	for (uint64_t i = 0; i < count; i++) {
		size_t at = types;

		if (!mysql_skip_attribute(b, n, &at, &t))
			return 0;
		types = at;
		if (b[bitmap + i / 8] >> (i % 8) & 1)
			continue;
		if (!mysql_skip_value(t, b, n, &off))
			return 0;
	}
	return off;
}

/* Whether a COM_QUERY carries query attributes before its SQL: as
 * negotiated, or, with the handshake unseen, when the byte after the
 * command cannot start SQL ("\x03\x00\x01SELECT", not "\x03SELECT" nor
 * "\x03\n SELECT"). */
static bool mysql_has_query_attributes(const struct mysql_conn *m,
				       const uint8_t *b, size_t n)
{
	if (m->have_client_caps)
		return m->client_caps & MYSQL_CLIENT_QUERY_ATTRIBUTES &&
		       (!m->have_server_caps ||
			m->server_caps & MYSQL_CLIENT_QUERY_ATTRIBUTES);
	return n > 1 && b[1] < 0x20 && !(b[1] >= '\t' && b[1] <= '\r');
}

/* The operation and table of the SQL in a COM_QUERY or COM_STMT_PREPARE
 * b[0..n). */
static void mysql_summarize(const struct mysql_conn *m, const uint8_t *b,
			    size_t n, char *op, char *collection)
{
	size_t at = 1;

	if (b[0] == COM_QUERY && mysql_has_query_attributes(m, b, n))
		at = mysql_query_text_at(b, n);
	if (!at) {
		strcpy(op, "_OTHER");
		collection[0] = '\0';
		return;
	}
	sql_summarize_memo((const char *)b + at, n - at, op, collection);
}

/* ---- prepared statements ---- */

static bool mysql_stmt_pending(const struct mysql_conn *m, unsigned i)
{
	return m->pending >> i & 1;
}

/* The slot of statement id, MYSQL_STMTS when none: MariaDB's -1 is the
 * one last prepared, its reply maybe not in yet. */
static unsigned mysql_stmt_find(const struct mysql_conn *m, uint32_t id)
{
	unsigned last = m->last_prepared;

	if (id == MYSQL_STMT_LAST)
		return last && m->stmts[last - 1].used ? last - 1 : MYSQL_STMTS;
	for (unsigned i = 0; i < MYSQL_STMTS; i++)
		if (m->stmts[i].used && !mysql_stmt_pending(m, i) &&
		    m->stmts[i].id == id)
			return i;
	return MYSQL_STMTS;
}

static void mysql_stmt_touch(struct mysql_conn *m, unsigned i)
{
	if (!++m->clock)
		m->clock = 1;
	m->stmts[i].used = m->clock;
}

static void mysql_stmt_free(struct mysql_conn *m, unsigned i)
{
	m->stmts[i].used = 0;
	m->pending &= ~(UINT64_C(1) << i);
}

/* A slot for a statement being prepared: a free one, or the least
 * recently used one not pending; MYSQL_STMTS when all are pending. */
static unsigned mysql_stmt_new(struct mysql_conn *m, const char *op,
			       const char *collection)
{
	unsigned pick = MYSQL_STMTS;

	for (unsigned i = 0; i < MYSQL_STMTS; i++) {
		if (mysql_stmt_pending(m, i))
			continue;
		if (!m->stmts[i].used) {
			pick = i;
			break;
		}
		if (pick == MYSQL_STMTS ||
		    m->stmts[i].used < m->stmts[pick].used)
			pick = i;
	}
	if (pick == MYSQL_STMTS)
		return pick;
	mysql_stmt_touch(m, pick);
	m->pending |= UINT64_C(1) << pick;
	m->stmts[pick].id = 0;
	snprintf(m->stmts[pick].op, DB_OP_MAX, "%s", op);
	snprintf(m->stmts[pick].collection, DB_COLL_MAX, "%s", collection);
	return pick;
}

/* The PREPARE_OK of slot i came: it is statement id now. */
static void mysql_stmt_bind(struct mysql_conn *m, unsigned i, uint32_t id)
{
	unsigned old = mysql_stmt_find(m, id);

	if (old < MYSQL_STMTS && id != MYSQL_STMT_LAST)
		mysql_stmt_free(m, old);
	m->stmts[i].id = id;
	m->pending &= ~(UINT64_C(1) << i);
}

/* The server deallocated the connection's statements (COM_CHANGE_USER,
 * COM_RESET_CONNECTION). */
static void mysql_stmt_forget_all(struct mysql_conn *m)
{
	for (unsigned i = 0; i < MYSQL_STMTS; i++)
		if (!mysql_stmt_pending(m, i))
			m->stmts[i].used = 0;
}

/* The calls open were lost: so are the statements they were preparing. */
static void mysql_stmt_drop_pending(struct mysql_conn *m)
{
	for (unsigned i = 0; i < MYSQL_STMTS; i++)
		if (mysql_stmt_pending(m, i))
			mysql_stmt_free(m, i);
}

/* ---- handshake ---- */

/* Reads a HandshakeV10 greeting b[0..n): "\x0a" "5.5.5-10.11.6-MariaDB\0",
 * connection id 4, auth data 8, filler 1, capabilities' low 2 bytes,
 * character set 1, status 2, capabilities' high 2 bytes... False when it
 * is not one. */
static bool mysql_read_greeting(const uint8_t *b, size_t n, uint32_t *caps,
				bool *mariadb)
{
	const uint8_t *nul = memchr(b + 1, '\0', n - 1);
	size_t at;

	if (!nul)
		return false;
	*mariadb = memmem(b + 1, nul - b - 1, "MariaDB", 7) != NULL;
	at = nul - b + 1 + 4 + 8 + 1;
	*caps = 0;
	if (at + 2 <= n)
		*caps = mysql_le16(b + at);
	if (at + 7 <= n)
		*caps |= mysql_le16(b + at + 5) << 16;
	return true;
}

/* After the handshake response: how result sets end, from both sides'
 * capabilities (the server's when it was seen). */
static void mysql_negotiated(struct mysql_conn *m)
{
	uint32_t caps = m->client_caps;

	if (m->have_server_caps)
		caps &= m->server_caps;
	m->eof = caps & MYSQL_CLIENT_DEPRECATE_EOF ? MYSQL_EOF_DEPRECATED :
						     MYSQL_EOF_CLASSIC;
}

static bool mysql_compressed(const struct mysql_conn *m)
{
	uint32_t caps = m->client_caps;

	if (m->have_server_caps)
		caps &= m->server_caps;
	return caps & (MYSQL_CLIENT_COMPRESS | MYSQL_CLIENT_ZSTD);
}

/* The client's HandshakeResponse41 (or 320, two bytes of capabilities),
 * or an SSLRequest: 32 bytes, CLIENT_SSL, then TLS, whose plaintext goes
 * on with the whole response. Compression, when both sides have it,
 * starts at the end of the handshake: nothing after the response is
 * read. */
static enum mysql_verdict
mysql_handshake_response(struct mysql_conn *m, const struct mysql_packet *pk)
{
	uint32_t caps;

	if (pk->len < 2)
		return MYSQL_LOST;
	caps = mysql_le16(pk->body);
	if (caps & MYSQL_CLIENT_PROTOCOL_41 && pk->len >= 4)
		caps = mysql_le32(pk->body);
	m->phase = MYSQL_HANDSHAKE;
	if (pk->len == MYSQL_SSL_REQUEST_LEN && caps & MYSQL_CLIENT_SSL)
		return MYSQL_TAKEN;
	m->client_caps = caps;
	m->have_client_caps = true;
	m->response_seen = true;
	mysql_negotiated(m);
	if (mysql_compressed(m))
		m->phase = MYSQL_OPAQUE;
	return MYSQL_TAKEN;
}

/* The server during authentication: an OK or an ERR ends it; an auth
 * switch request (0xfe) or more data (0x01) goes on. */
static enum mysql_verdict mysql_auth_reply(struct mysql_conn *m,
					   const struct mysql_packet *pk)
{
	if (!pk->len)
		return MYSQL_TAKEN;
	if (pk->body[0] == MYSQL_OK || pk->body[0] == MYSQL_ERR)
		m->phase = MYSQL_COMMAND;
	return MYSQL_TAKEN;
}

/* The server's greeting: sequence id 0, protocol 10. */
static enum mysql_verdict mysql_server_first(struct db_conn *c,
					     struct mysql_conn *m,
					     const struct mysql_packet *pk)
{
	bool mariadb;
	uint32_t caps;

	if (!mysql_read_greeting(pk->body, pk->have, &caps, &mariadb))
		return MYSQL_LOST;
	if (mariadb)
		c->system_name = "mariadb";
	m->server_caps = caps;
	m->have_server_caps = true;
	m->phase = MYSQL_HANDSHAKE;
	return MYSQL_TAKEN;
}

/* ---- replies ---- */

static uint8_t mysql_tag_reply(uint32_t tag)
{
	return tag & 0xff;
}

/* The statement slot a COM_STMT_PREPARE's call prepares, MYSQL_STMTS
 * when none. */
static unsigned mysql_tag_slot(uint32_t tag)
{
	unsigned slot = tag >> 8 & 0xff;

	return slot ? slot - 1 : MYSQL_STMTS;
}

/* The oldest call ends at ts; its reply is over. */
static void mysql_end(struct db_conn *c, struct mysql_conn *m, uint64_t ts,
		      const char *status, bool error)
{
	db_call_end(c, ts, status, error);
	m->state = MYSQL_R_NONE;
	m->defs_left = 0;
	m->prep_cols = 0;
}

/* An ERR ends the call, failed, with its code; a COM_STMT_PREPARE's
 * statement is not. A MariaDB progress report does not. */
static enum mysql_verdict mysql_error(struct db_conn *c, struct mysql_conn *m,
				      const struct mysql_packet *pk,
				      uint64_t ts)
{
	uint32_t tag = db_call_tag(c), code = mysql_error_code(pk);
	unsigned slot = mysql_tag_slot(tag);
	char status[DB_STATUS_MAX];

	if (code == MYSQL_PROGRESS_CODE)
		return MYSQL_TAKEN;
	if (mysql_tag_reply(tag) == MYSQL_REPLY_PREPARE && slot < MYSQL_STMTS) {
		mysql_stmt_free(m, slot);
		if (m->last_prepared == slot + 1)
			m->last_prepared = 0;
	}
	snprintf(status, sizeof(status), "%u", (unsigned)code);
	mysql_end(c, m, ts, status, true);
	return MYSQL_TAKEN;
}

/* An OK, or the end of a result set, with the status flags: another
 * result follows, or the call is over. */
static enum mysql_verdict mysql_result_done(struct db_conn *c,
					    struct mysql_conn *m,
					    const struct mysql_packet *pk,
					    uint64_t ts)
{
	uint32_t flags = mysql_status_flags(pk);

	if (flags & (MYSQL_MORE_RESULTS | MYSQL_PS_OUT_PARAMS)) {
		m->state = MYSQL_R_RESULT;
		return MYSQL_TAKEN;
	}
	mysql_end(c, m, ts, NULL, false);
	return MYSQL_TAKEN;
}

/* A column count packet: "\x03" (3 columns), with MariaDB's
 * MARIADB_CLIENT_CACHE_METADATA or MySQL's
 * CLIENT_OPTIONAL_RESULTSET_METADATA a byte after it, 0 when no
 * definitions follow: "\x03\x00". */
static enum mysql_verdict mysql_column_count(struct mysql_conn *m,
					     const struct mysql_packet *pk)
{
	size_t off = 0;
	uint64_t count;
	bool defs = true;

	if (!mysql_lenenc(pk->body, pk->have, &off, &count) || !count ||
	    count > MYSQL_MAX_COLUMNS)
		return MYSQL_LOST;
	if (pk->len == off + 1)
		defs = pk->body[off] != 0;
	else if (pk->len != off)
		return MYSQL_LOST;
	m->defs_left = defs ? count : 0;
	m->state = defs ? MYSQL_R_COLDEFS : MYSQL_R_COLS_END;
	return MYSQL_TAKEN;
}

/* A result's first packet: an OK, an ERR, a LOCAL INFILE request or a
 * result set's column count. */
static enum mysql_verdict mysql_result(struct db_conn *c, struct mysql_conn *m,
				       const struct mysql_packet *pk,
				       uint64_t ts)
{
	if (!pk->len)
		return MYSQL_LOST;
	switch (pk->body[0]) {
	case MYSQL_OK:
	case MYSQL_EOF:
		return mysql_result_done(c, m, pk, ts);
	case MYSQL_ERR:
		return mysql_error(c, m, pk, ts);
	case MYSQL_INFILE:
		m->state = MYSQL_R_INFILE;
		return MYSQL_TAKEN;
	default:
		return mysql_column_count(m, pk);
	}
}

/* The packet after a result set's column definitions: the EOF ending
 * them, or (CLIENT_DEPRECATE_EOF) the first row or the end. An EOF whose
 * status says a cursor was opened ends the reply: COM_STMT_FETCH reads
 * the rows. */
static enum mysql_verdict mysql_columns_end(struct db_conn *c,
					    struct mysql_conn *m,
					    const struct mysql_packet *pk,
					    uint64_t ts)
{
	uint8_t b0 = pk->len ? pk->body[0] : 0;

	if (b0 == MYSQL_ERR)
		return mysql_error(c, m, pk, ts);
	if (mysql_is_eof(m, pk->len, b0)) {
		mysql_learn_eof(m, MYSQL_EOF_CLASSIC);
		if (mysql_status_flags(pk) & MYSQL_CURSOR_EXISTS) {
			mysql_end(c, m, ts, NULL, false);
			return MYSQL_TAKEN;
		}
		m->state = MYSQL_R_ROWS;
		return MYSQL_TAKEN;
	}
	if (m->eof == MYSQL_EOF_CLASSIC)
		return MYSQL_LOST;
	mysql_learn_eof(m, MYSQL_EOF_DEPRECATED);
	if (mysql_ends_rows(m, pk->len, b0))
		return mysql_result_done(c, m, pk, ts);
	m->state = MYSQL_R_ROWS;
	return MYSQL_TAKEN;
}

static enum mysql_verdict mysql_rows(struct db_conn *c, struct mysql_conn *m,
				     const struct mysql_packet *pk, uint64_t ts)
{
	uint8_t b0 = pk->len ? pk->body[0] : 0;

	if (b0 == MYSQL_ERR)
		return mysql_error(c, m, pk, ts);
	if (mysql_ends_rows(m, pk->len, b0))
		return mysql_result_done(c, m, pk, ts);
	return MYSQL_TAKEN;
}

/* A column definition starts with its catalog, "\x03def". */
static bool mysql_is_definition(const struct mysql_packet *pk)
{
	return pk->len && pk->body[0] == MYSQL_DEF;
}

/* The next group of a PREPARE_OK's definitions, or the end. */
static enum mysql_verdict mysql_prepare_next(struct db_conn *c,
					     struct mysql_conn *m, uint64_t ts)
{
	if (!m->prep_cols) {
		mysql_end(c, m, ts, NULL, false);
		return MYSQL_TAKEN;
	}
	m->defs_left = m->prep_cols;
	m->prep_cols = 0;
	m->state = MYSQL_R_PDEFS;
	return MYSQL_TAKEN;
}

/* Whether the bytes after pk start an EOF packet. */
static bool mysql_eof_follows(const struct mysql_conn *m,
			      const struct mysql_packet *pk)
{
	if (pk->nafter <= MYSQL_HEADER)
		return false;
	return mysql_is_eof(m, mysql_le24(pk->after), pk->after[MYSQL_HEADER]);
}

/* A group of definitions is over: its EOF follows, unless
 * CLIENT_DEPRECATE_EOF. Not knowing, the EOF is awaited between groups,
 * but after the last one only if its bytes are already there: otherwise
 * the reply has ended. */
static enum mysql_verdict mysql_prepare_defs_done(struct db_conn *c,
						  struct mysql_conn *m,
						  const struct mysql_packet *pk,
						  uint64_t ts)
{
	bool eof = m->eof == MYSQL_EOF_CLASSIC;

	if (m->eof == MYSQL_EOF_UNKNOWN)
		eof = m->prep_cols || mysql_eof_follows(m, pk);
	if (eof) {
		m->state = MYSQL_R_PEOF;
		return MYSQL_TAKEN;
	}
	return mysql_prepare_next(c, m, ts);
}

static enum mysql_verdict mysql_prepare_defs(struct db_conn *c,
					     struct mysql_conn *m,
					     const struct mysql_packet *pk,
					     uint64_t ts)
{
	if (!mysql_is_definition(pk))
		return MYSQL_LOST;
	if (--m->defs_left)
		return MYSQL_TAKEN;
	return mysql_prepare_defs_done(c, m, pk, ts);
}

/* The EOF after a group of definitions; not knowing whether one comes,
 * anything else is the next group's first. */
static enum mysql_verdict mysql_prepare_eof(struct db_conn *c,
					    struct mysql_conn *m,
					    const struct mysql_packet *pk,
					    uint64_t ts)
{
	uint8_t b0 = pk->len ? pk->body[0] : 0;

	if (mysql_is_eof(m, pk->len, b0)) {
		mysql_learn_eof(m, MYSQL_EOF_CLASSIC);
		return mysql_prepare_next(c, m, ts);
	}
	if (m->eof != MYSQL_EOF_UNKNOWN || !m->prep_cols)
		return MYSQL_LOST;
	mysql_learn_eof(m, MYSQL_EOF_DEPRECATED);
	mysql_prepare_next(c, m, ts);
	return mysql_prepare_defs(c, m, pk, ts);
}

/* COM_STMT_PREPARE_OK: 0x00, statement id LE32, columns LE16, parameters
 * LE16, a filler byte, warnings LE16, and with MySQL's
 * CLIENT_OPTIONAL_RESULTSET_METADATA a byte, 0 when no definitions
 * follow. Then the parameters' definitions and the columns'. */
static enum mysql_verdict mysql_prepare_ok(struct db_conn *c,
					   struct mysql_conn *m,
					   const struct mysql_packet *pk,
					   uint64_t ts)
{
	unsigned slot = mysql_tag_slot(db_call_tag(c));
	uint32_t cols, params;

	if (pk->len < 9)
		return MYSQL_LOST;
	if (slot < MYSQL_STMTS && mysql_stmt_pending(m, slot))
		mysql_stmt_bind(m, slot, mysql_le32(pk->body + 1));
	cols = mysql_le16(pk->body + 5);
	params = mysql_le16(pk->body + 7);
	if (pk->len >= 13 && !pk->body[12])
		cols = params = 0;
	m->prep_cols = params ? cols : 0;
	m->defs_left = params ? params : cols;
	if (!m->defs_left) {
		mysql_end(c, m, ts, NULL, false);
		return MYSQL_TAKEN;
	}
	m->state = MYSQL_R_PDEFS;
	return MYSQL_TAKEN;
}

static enum mysql_verdict mysql_prepare(struct db_conn *c, struct mysql_conn *m,
					const struct mysql_packet *pk,
					uint64_t ts)
{
	if (!pk->len)
		return MYSQL_LOST;
	if (pk->body[0] == MYSQL_ERR)
		return mysql_error(c, m, pk, ts);
	if (pk->body[0] != MYSQL_OK)
		return MYSQL_LOST;
	return mysql_prepare_ok(c, m, pk, ts);
}

/* COM_FIELD_LIST: column definitions, then an EOF. */
static enum mysql_verdict mysql_fields(struct db_conn *c, struct mysql_conn *m,
				       const struct mysql_packet *pk,
				       uint64_t ts)
{
	uint8_t b0 = pk->len ? pk->body[0] : 0;

	if (b0 == MYSQL_ERR)
		return mysql_error(c, m, pk, ts);
	if (b0 == MYSQL_EOF && pk->len < MYSQL_MAX_PAYLOAD) {
		mysql_end(c, m, ts, NULL, false);
		return MYSQL_TAKEN;
	}
	return mysql_is_definition(pk) ? MYSQL_TAKEN : MYSQL_LOST;
}

/* One packet ends the call: an ERR failed, anything else did not (an
 * OK, an EOF, COM_STATISTICS's text). */
static enum mysql_verdict mysql_simple(struct db_conn *c, struct mysql_conn *m,
				       const struct mysql_packet *pk,
				       uint64_t ts)
{
	uint8_t b0 = pk->len ? pk->body[0] : 0;

	if (b0 == MYSQL_ERR)
		return mysql_error(c, m, pk, ts);
	if (b0 == MYSQL_OK &&
	    mysql_tag_reply(db_call_tag(c)) == MYSQL_REPLY_FORGET)
		mysql_stmt_forget_all(m);
	mysql_end(c, m, ts, NULL, false);
	return MYSQL_TAKEN;
}

/* COM_CHANGE_USER: authentication again, until an OK (the session is
 * new: its statements are gone) or an ERR. */
static enum mysql_verdict mysql_auth(struct db_conn *c, struct mysql_conn *m,
				     const struct mysql_packet *pk, uint64_t ts)
{
	uint8_t b0 = pk->len ? pk->body[0] : 0x01;

	if (b0 == MYSQL_ERR)
		return mysql_error(c, m, pk, ts);
	if (b0 != MYSQL_OK)
		return MYSQL_TAKEN;
	mysql_stmt_forget_all(m);
	mysql_end(c, m, ts, NULL, false);
	return MYSQL_TAKEN;
}

/* Where the reply of a command of this kind starts. */
static enum mysql_state mysql_first_state(enum mysql_reply reply)
{
	switch (reply) {
	case MYSQL_REPLY_RESULT:
		return MYSQL_R_RESULT;
	case MYSQL_REPLY_PREPARE:
		return MYSQL_R_PREPARE;
	case MYSQL_REPLY_ROWS:
		return MYSQL_R_ROWS;
	case MYSQL_REPLY_FIELDS:
		return MYSQL_R_FIELDS;
	case MYSQL_REPLY_AUTH:
		return MYSQL_R_AUTH;
	default:
		return MYSQL_R_SIMPLE;
	}
}

/* A packet of the oldest call's reply. Its packets' sequence ids follow
 * each other from the first's. */
static enum mysql_verdict mysql_reply(struct db_conn *c, struct mysql_conn *m,
				      const struct mysql_packet *pk,
				      uint64_t ts)
{
	if (m->state == MYSQL_R_NONE) {
		m->state = mysql_first_state(mysql_tag_reply(db_call_tag(c)));
		m->seq = pk->seq;
	}
	if (pk->seq != m->seq)
		return MYSQL_LOST;
	m->seq++;
	switch (m->state) {
	case MYSQL_R_RESULT:
		return mysql_result(c, m, pk, ts);
	case MYSQL_R_COLDEFS:
		if (!mysql_is_definition(pk))
			return MYSQL_LOST;
		if (!--m->defs_left)
			m->state = MYSQL_R_COLS_END;
		return MYSQL_TAKEN;
	case MYSQL_R_COLS_END:
		return mysql_columns_end(c, m, pk, ts);
	case MYSQL_R_ROWS:
		return mysql_rows(c, m, pk, ts);
	case MYSQL_R_PREPARE:
		return mysql_prepare(c, m, pk, ts);
	case MYSQL_R_PDEFS:
		return mysql_prepare_defs(c, m, pk, ts);
	case MYSQL_R_PEOF:
		return mysql_prepare_eof(c, m, pk, ts);
	case MYSQL_R_FIELDS:
		return mysql_fields(c, m, pk, ts);
	case MYSQL_R_AUTH:
		return mysql_auth(c, m, pk, ts);
	case MYSQL_R_INFILE:
		return MYSQL_LOST;
	default:
		return mysql_simple(c, m, pk, ts);
	}
}

/* Where the oldest call's reply stands, its first packet included. */
static enum mysql_state mysql_reply_state(const struct db_conn *c,
					  const struct mysql_conn *m)
{
	if (m->state != MYSQL_R_NONE)
		return m->state;
	return mysql_first_state(mysql_tag_reply(db_call_tag(c)));
}

/* Server bytes that start nothing: before the greeting of a connection
 * seen late, or with no call open. Passed over until the client's next
 * command, after which the server's next bytes are its reply. */
static bool mysql_server_idle(const struct db_conn *c,
			      const struct mysql_conn *m,
			      const struct mysql_packet *pk)
{
	if (m->phase == MYSQL_START)
		return pk->seq || !pk->len || pk->body[0] != MYSQL_GREETING_V10;
	return m->phase == MYSQL_COMMAND && !db_calls_open(c);
}

/* Payload bytes a server packet is read from: a greeting whole; a packet
 * that may end a reply up to its status flags; a row or a definition by
 * its first byte. */
static size_t mysql_server_want(const struct db_conn *c,
				const struct mysql_conn *m,
				const struct mysql_packet *pk)
{
	size_t want = MYSQL_STATUS_WANT;
	uint8_t b0;

	if (!pk->len)
		return 0;
	b0 = pk->body[0];
	if (m->phase == MYSQL_START) {
		want = DB_MSG_MAX - MYSQL_HEADER;
	} else if (m->phase == MYSQL_COMMAND) {
		switch (mysql_reply_state(c, m)) {
		case MYSQL_R_ROWS:
		case MYSQL_R_COLS_END:
			/* a row: binary ones start with 0x00, text ones
			 * maybe with 0xfe */
			if (b0 != MYSQL_ERR &&
			    !mysql_ends_rows(m, pk->len, b0) &&
			    !mysql_is_eof(m, pk->len, b0))
				want = 1;
			break;
		case MYSQL_R_COLDEFS:
		case MYSQL_R_PDEFS:
		case MYSQL_R_FIELDS:
			if (b0 == MYSQL_DEF)
				want = 1;
			break;
		default:
			break;
		}
	}
	return want < pk->len ? want : pk->len;
}

static enum mysql_verdict mysql_server_packet(struct db_conn *c,
					      struct mysql_conn *m,
					      const struct mysql_packet *pk,
					      uint64_t ts)
{
	switch (m->phase) {
	case MYSQL_START:
		return mysql_server_first(c, m, pk);
	case MYSQL_HANDSHAKE:
		return mysql_auth_reply(m, pk);
	default:
		return mysql_reply(c, m, pk, ts);
	}
}

/* ---- commands ---- */

/* COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_RESET, COM_STMT_CLOSE,
 * COM_STMT_SEND_LONG_DATA and MariaDB's COM_STMT_BULK_EXECUTE name a
 * statement: "\x17\x01\x00\x00\x00..." is statement 1. */
static bool mysql_names_stmt(uint8_t cmd)
{
	return (cmd >= COM_STMT_EXECUTE && cmd <= COM_STMT_RESET) ||
	       cmd == COM_STMT_FETCH || cmd == COM_STMT_BULK_EXECUTE;
}

/* The id of the statement a command names ("\x17\x01\x00\x00\x00..."
 * is 1) and its slot, MYSQL_STMTS when unknown. */
static unsigned mysql_command_stmt(const struct mysql_conn *m,
				   const struct mysql_packet *pk)
{
	return mysql_stmt_find(m, mysql_le32(pk->body + 1));
}

/* COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_RESET, COM_STMT_CLOSE. */
static enum mysql_verdict mysql_stmt_command(struct db_conn *c,
					     struct mysql_conn *m,
					     const struct mysql_packet *pk,
					     uint64_t ts)
{
	const struct mysql_command *cmd = &mysql_commands[pk->body[0]];
	unsigned slot;
	const char *op = cmd->op, *collection = NULL;

	if (pk->len < MYSQL_STMT_CMD_LEN)
		return MYSQL_LOST;
	slot = mysql_command_stmt(m, pk);
	if (pk->body[0] == COM_STMT_CLOSE) {
		if (slot < MYSQL_STMTS && !mysql_stmt_pending(m, slot))
			mysql_stmt_free(m, slot);
		return MYSQL_TAKEN;
	}
	if (slot < MYSQL_STMTS) {
		mysql_stmt_touch(m, slot);
		collection = m->stmts[slot].collection;
		if (cmd->reply == MYSQL_REPLY_RESULT)
			op = m->stmts[slot].op;
	}
	db_call_begin(c, ts, op, collection, cmd->reply);
	return MYSQL_TAKEN;
}

/* COM_QUERY and COM_STMT_PREPARE, from their SQL. */
static enum mysql_verdict mysql_sql_command(struct db_conn *c,
					    struct mysql_conn *m,
					    const struct mysql_packet *pk,
					    uint64_t ts)
{
	char op[DB_OP_MAX], collection[DB_COLL_MAX];
	unsigned slot;

	mysql_summarize(m, pk->body, pk->have, op, collection);
	if (pk->body[0] == COM_QUERY) {
		db_call_begin(c, ts, op, collection, MYSQL_REPLY_RESULT);
		return MYSQL_TAKEN;
	}
	slot = mysql_stmt_new(m, op, collection);
	m->last_prepared = slot < MYSQL_STMTS ? slot + 1 : 0;
	db_call_begin(c, ts, "PREPARE", collection,
		      MYSQL_REPLY_PREPARE | (uint32_t)m->last_prepared << 8);
	return MYSQL_TAKEN;
}

/* COM_FIELD_LIST: the table, NUL-terminated, then a wildcard. */
static enum mysql_verdict
mysql_field_list(struct db_conn *c, const struct mysql_packet *pk, uint64_t ts)
{
	char table[DB_COLL_MAX] = "";
	const uint8_t *nul = memchr(pk->body + 1, '\0', pk->have - 1);
	size_t n = nul ? (size_t)(nul - pk->body - 1) : 0;

	if (mysql_plain_identifier(pk->body + 1, n)) {
		memcpy(table, pk->body + 1, n);
		table[n] = '\0';
	}
	db_call_begin(c, ts, "FIELD_LIST", table, MYSQL_REPLY_FIELDS);
	return MYSQL_TAKEN;
}

/* A command packet (sequence id 0) starts a call, or none for the
 * commands without a reply; an unknown first byte is garbage. */
static enum mysql_verdict mysql_command(struct db_conn *c, struct mysql_conn *m,
					const struct mysql_packet *pk,
					uint64_t ts)
{
	const struct mysql_command *cmd;

	if (!pk->len || !mysql_commands[pk->body[0]].reply)
		return MYSQL_LOST;
	cmd = &mysql_commands[pk->body[0]];
	m->phase = MYSQL_COMMAND;
	switch (pk->body[0]) {
	case COM_QUERY:
	case COM_STMT_PREPARE:
		return mysql_sql_command(c, m, pk, ts);
	case COM_STMT_EXECUTE:
	case COM_STMT_BULK_EXECUTE:
	case COM_STMT_FETCH:
	case COM_STMT_RESET:
	case COM_STMT_CLOSE:
		return mysql_stmt_command(c, m, pk, ts);
	case COM_FIELD_LIST:
		return mysql_field_list(c, pk, ts);
	default:
		break;
	}
	switch (cmd->reply) {
	case MYSQL_REPLY_NONE:
		return MYSQL_TAKEN;
	case MYSQL_REPLY_STREAM:
		m->phase = MYSQL_OPAQUE;
		return MYSQL_TAKEN;
	default:
		db_call_begin(c, ts, cmd->op, NULL, cmd->reply);
		return MYSQL_TAKEN;
	}
}

/* What a client packet is, from where the connection stands. */
enum mysql_client_kind {
	MYSQL_C_COMMAND,
	MYSQL_C_RESPONSE, /* the handshake response, or an SSLRequest */
	MYSQL_C_AUTH,	  /* authentication data */
	MYSQL_C_INFILE,	  /* a LOCAL INFILE's file */
	MYSQL_C_GARBAGE,
};

static enum mysql_client_kind mysql_client_kind(const struct mysql_conn *m,
						const struct mysql_packet *pk)
{
	if (!pk->seq)
		return MYSQL_C_COMMAND;
	switch (m->phase) {
	case MYSQL_START:
		return pk->seq == 1 ? MYSQL_C_RESPONSE : MYSQL_C_GARBAGE;
	case MYSQL_HANDSHAKE:
		return m->response_seen ? MYSQL_C_AUTH : MYSQL_C_RESPONSE;
	default:
		break;
	}
	if (m->state == MYSQL_R_INFILE)
		return MYSQL_C_INFILE;
	if (m->state == MYSQL_R_AUTH)
		return MYSQL_C_AUTH;
	return MYSQL_C_GARBAGE;
}

/* Payload bytes a client packet is read from: a statement's SQL up to
 * DB_MSG_MAX in all, a statement's id, COM_FIELD_LIST's table, the
 * handshake response's capabilities; of others the first byte or none. */
static size_t mysql_client_want(const struct mysql_conn *m,
				const struct mysql_packet *pk)
{
	size_t want = 0;

	if (!pk->len)
		return 0;
	switch (mysql_client_kind(m, pk)) {
	case MYSQL_C_COMMAND:
		want = 1;
		if (pk->body[0] == COM_QUERY || pk->body[0] == COM_STMT_PREPARE)
			want = DB_MSG_MAX - MYSQL_HEADER;
		else if (pk->body[0] == COM_FIELD_LIST)
			want = MYSQL_FIELD_LIST_WANT;
		else if (mysql_names_stmt(pk->body[0]))
			want = MYSQL_STMT_CMD_LEN;
		break;
	case MYSQL_C_RESPONSE:
		want = MYSQL_SSL_REQUEST_LEN;
		break;
	default:
		break;
	}
	return want < pk->len ? want : pk->len;
}

static enum mysql_verdict mysql_client_packet(struct db_conn *c,
					      struct mysql_conn *m,
					      const struct mysql_packet *pk,
					      uint64_t ts)
{
	switch (mysql_client_kind(m, pk)) {
	case MYSQL_C_COMMAND:
		return mysql_command(c, m, pk, ts);
	case MYSQL_C_RESPONSE:
		return mysql_handshake_response(m, pk);
	case MYSQL_C_AUTH:
		m->seq = pk->seq + 1;
		return MYSQL_TAKEN;
	case MYSQL_C_INFILE:
		if (pk->seq != m->seq)
			return MYSQL_LOST;
		m->seq++;
		/* an empty packet ends the file; the server's OK or ERR
		 * follows */
		if (!pk->len)
			m->state = MYSQL_R_RESULT;
		return MYSQL_TAKEN;
	default:
		return MYSQL_LOST;
	}
}

/* ---- framing ---- */

/* Whether the direction's packets are the reply's, their sequence ids
 * followed: the server's once it answers, the client's sending a file
 * or authenticating in the middle of it. */
static bool mysql_numbers_reply(const struct mysql_conn *m, bool from_client)
{
	if (!from_client)
		return m->state != MYSQL_R_NONE;
	return m->state == MYSQL_R_INFILE || m->state == MYSQL_R_AUTH;
}

/* Uses the packet of total bytes at the start of p[0..n): whole, or what
 * there is with the rest to pass over. */
static size_t mysql_take(size_t n, size_t total, uint64_t *skip)
{
	if (total <= n)
		return total;
	*skip = total - n;
	return n;
}

static size_t mysql_frame(struct db_conn *c, bool from_client, const uint8_t *p,
			  size_t n, uint64_t ts, uint64_t *skip)
{
	struct mysql_conn *m = mysql_of(c);
	struct mysql_packet pk;
	enum mysql_verdict v;
	size_t total, want;

	if (m->phase == MYSQL_OPAQUE)
		return n;
	if (n < MYSQL_HEADER)
		return 0;
	pk.len = mysql_le24(p);
	pk.seq = p[3];
	pk.body = p + MYSQL_HEADER;
	pk.have = n - MYSQL_HEADER < pk.len ? n - MYSQL_HEADER : pk.len;
	total = MYSQL_HEADER + (size_t)pk.len;
	pk.after = total < n ? p + total : NULL;
	pk.nafter = total < n ? n - total : 0;
	if (m->cont[from_client]) {
		m->cont[from_client] = pk.len == MYSQL_MAX_PAYLOAD;
		if (mysql_numbers_reply(m, from_client))
			m->seq = pk.seq + 1;
		return mysql_take(n, total, skip);
	}
	if (pk.len && !pk.have)
		return 0;
	if (!from_client && mysql_server_idle(c, m, &pk))
		return n;
	want = from_client ? mysql_client_want(m, &pk) :
			     mysql_server_want(c, m, &pk);
	if (pk.have < want)
		return 0;
	v = from_client ? mysql_client_packet(c, m, &pk, ts) :
			  mysql_server_packet(c, m, &pk, ts);
	if (v == MYSQL_LOST)
		return DB_PARSE_LOST;
	m->cont[from_client] = pk.len == MYSQL_MAX_PAYLOAD;
	return mysql_take(n, total, skip);
}

/* Frames one packet. A command that came in several reads was sent (or
 * read, on the server's side) with its first bytes: its call starts
 * then. A reply ends with its last bytes. */
static size_t mysql_parse(struct db_conn *c, bool from_client, const uint8_t *p,
			  size_t n, uint64_t ts, uint64_t *skip)
{
	struct mysql_conn *m = mysql_of(c);
	uint64_t at = from_client && m->client_waits ? m->client_since : ts;
	size_t used = mysql_frame(c, from_client, p, n, at, skip);

	if (!from_client)
		return used;
	if (used) {
		m->client_waits = false;
	} else if (!m->client_waits) {
		m->client_waits = true;
		m->client_since = ts;
	}
	return used;
}

/* The calls open are gone, and where their replies stood with them; what
 * the connection negotiated and prepared stays. */
static void mysql_lost(struct db_conn *c, bool from_client)
{
	struct mysql_conn *m = mysql_of(c);

	m->cont[from_client] = false;
	if (from_client)
		m->client_waits = false;
	m->state = MYSQL_R_NONE;
	m->defs_left = 0;
	m->prep_cols = 0;
	mysql_stmt_drop_pending(m);
	if (m->phase == MYSQL_HANDSHAKE)
		m->phase = MYSQL_START;
}

/* MySQL and MariaDB ("mariadb" from the server's greeting); see db.h. */
const struct db_system db_mysql = {
	.name = "mysql",
	.parse = mysql_parse,
	.lost = mysql_lost,
};
