/* Redis: the commands a client sends and the replies that answer them,
 * RESP2 and RESP3, each command its own call.
 *
 * RESP: https://redis.io/docs/latest/develop/reference/protocol-spec/
 * Pub/Sub: https://redis.io/docs/latest/develop/interact/pubsub/
 * Transactions: https://redis.io/docs/latest/develop/interact/transactions/
 *
 * A command is an array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
 * or an inline line ("GET k\r\n"); its first word, upper-cased, is the
 * operation when it is on redis_commands[], else "_OTHER". The collection
 * stays empty: what follows the command is keys and values, user data.
 *
 * A call starts with the write that completes its command's first line
 * ("*3\r\n", or the inline command's first word). Each reply ends the
 * oldest open call as soon as its first line tells how it went, at the
 * read that brought that line: a long reply whose middle falls in a hole
 * is still counted. Both directions are read element by element with a
 * stack of counts, so arrays of any length and bulk strings of any size
 * pass through the DB_MSG_MAX window; a bulk string is passed over by its
 * length, holes included.
 *
 * What is not a reply: a push ('>', RESP3: messages, invalidations), an
 * attribute ('|', it comes before a reply) and, on a RESP2 connection in
 * subscribe mode, arrays whose first element is "message", "pmessage" or
 * "smessage". A SUBSCRIBE (PSUBSCRIBE, UNSUBSCRIBE, ...) of n channels is
 * one call, ended by the first of its n confirmations (arrays in RESP2,
 * pushes in RESP3, whose first element is "subscribe", ...); the others
 * are passed over. An UNSUBSCRIBE of all channels gets one confirmation
 * per subscription, how many is not known here: the extra ones are passed
 * over, and would end early only a second UNSUBSCRIBE waiting behind it.
 *
 * A replication link is followed up to PSYNC's (or SYNC's) reply; what
 * comes after, the RDB and the command feed one way, REPLCONF ACKs the
 * other, is no call.
 *
 * Not followed: CLIENT REPLY OFF/SKIP (the replies the server leaves out
 * make later calls end on earlier replies' behalf), the feed after
 * MONITOR (its lines end no call, when none is open), and RESP3 streamed
 * strings and aggregates ("$?"), which Redis does not send: they lose the
 * stream.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/db.h"

/* Aggregates nested in one reply: COMMAND DOCS, the deepest a server
 * sends, nests 7; RESP has no limit, so deeper replies lose the stream. */
#define REDIS_MAX_DEPTH 32

/* Longest length a bulk string or aggregate may claim: proto-max-bulk-len
 * is 512 MB by default; anything past 4 GiB is taken for garbage. */
#define REDIS_MAX_LEN (INT64_C(1) << 32)

/* Commands have at most INT_MAX arguments ("invalid multibulk length"). */
#define REDIS_MAX_ARGS INT64_C(0x7fffffff)

/* Bytes of an inline command's first word looked at; longer words name
 * no command on the list ("GEORADIUSBYMEMBER_RO" is 20). */
#define REDIS_WORD_SCAN 64

/* Longest first element of a push that says what it is: "punsubscribe". */
#define REDIS_PUSH_WORD_MAX 12

enum {
	REDIS_CMD_SUBSCRIBE = 1,   /* enters subscribe mode, is confirmed */
	REDIS_CMD_UNSUBSCRIBE = 2, /* is confirmed */
	REDIS_CMD_RESET = 4,	   /* back to RESP2, out of subscribe mode */
	REDIS_CMD_HELLO = 8,	   /* may switch protocol */
	REDIS_CMD_SYNC = 16,	   /* turns the link into a replication one */
};

/* The tag of a call to the subscribe family: the confirmations it waits
 * for (enum redis_push) and the number of channels it named (0: all of
 * them, how many unknown). */
#define REDIS_TAG_SUB (UINT32_C(1) << 31)
#define REDIS_TAG_KIND_SHIFT 16
#define REDIS_TAG_KIND UINT32_C(0xff)
#define REDIS_TAG_CHANNELS UINT32_C(0xffff)

struct redis_command {
	const char *name;
	uint8_t flags;
};

/* The operations sonde names, sorted (C locale: '_' after the
 * letters); anything else is "_OTHER". */
static const struct redis_command redis_commands[] = {
	{ "APPEND", 0 },
	{ "AUTH", 0 },
	{ "BGREWRITEAOF", 0 },
	{ "BGSAVE", 0 },
	{ "BITCOUNT", 0 },
	{ "BITFIELD", 0 },
	{ "BITFIELD_RO", 0 },
	{ "BITOP", 0 },
	{ "BITPOS", 0 },
	{ "BLMOVE", 0 },
	{ "BLMPOP", 0 },
	{ "BLPOP", 0 },
	{ "BRPOP", 0 },
	{ "BRPOPLPUSH", 0 },
	{ "BZMPOP", 0 },
	{ "BZPOPMAX", 0 },
	{ "BZPOPMIN", 0 },
	{ "CLIENT", 0 },
	{ "CLUSTER", 0 },
	{ "COMMAND", 0 },
	{ "CONFIG", 0 },
	{ "COPY", 0 },
	{ "DBSIZE", 0 },
	{ "DECR", 0 },
	{ "DECRBY", 0 },
	{ "DEL", 0 },
	{ "DISCARD", 0 },
	{ "DUMP", 0 },
	{ "ECHO", 0 },
	{ "EVAL", 0 },
	{ "EVALSHA", 0 },
	{ "EVALSHA_RO", 0 },
	{ "EVAL_RO", 0 },
	{ "EXEC", 0 },
	{ "EXISTS", 0 },
	{ "EXPIRE", 0 },
	{ "EXPIREAT", 0 },
	{ "EXPIRETIME", 0 },
	{ "FCALL", 0 },
	{ "FCALL_RO", 0 },
	{ "FLUSHALL", 0 },
	{ "FLUSHDB", 0 },
	{ "FUNCTION", 0 },
	{ "GEOADD", 0 },
	{ "GEODIST", 0 },
	{ "GEOHASH", 0 },
	{ "GEOPOS", 0 },
	{ "GEORADIUS", 0 },
	{ "GEORADIUSBYMEMBER", 0 },
	{ "GEOSEARCH", 0 },
	{ "GEOSEARCHSTORE", 0 },
	{ "GET", 0 },
	{ "GETBIT", 0 },
	{ "GETDEL", 0 },
	{ "GETEX", 0 },
	{ "GETRANGE", 0 },
	{ "GETSET", 0 },
	{ "HDEL", 0 },
	{ "HELLO", REDIS_CMD_HELLO },
	{ "HEXISTS", 0 },
	{ "HEXPIRE", 0 },
	{ "HGET", 0 },
	{ "HGETALL", 0 },
	{ "HINCRBY", 0 },
	{ "HINCRBYFLOAT", 0 },
	{ "HKEYS", 0 },
	{ "HLEN", 0 },
	{ "HMGET", 0 },
	{ "HMSET", 0 },
	{ "HRANDFIELD", 0 },
	{ "HSCAN", 0 },
	{ "HSET", 0 },
	{ "HSETNX", 0 },
	{ "HSTRLEN", 0 },
	{ "HTTL", 0 },
	{ "HVALS", 0 },
	{ "INCR", 0 },
	{ "INCRBY", 0 },
	{ "INCRBYFLOAT", 0 },
	{ "INFO", 0 },
	{ "KEYS", 0 },
	{ "LASTSAVE", 0 },
	{ "LATENCY", 0 },
	{ "LINDEX", 0 },
	{ "LINSERT", 0 },
	{ "LLEN", 0 },
	{ "LMOVE", 0 },
	{ "LMPOP", 0 },
	{ "LPOP", 0 },
	{ "LPOS", 0 },
	{ "LPUSH", 0 },
	{ "LPUSHX", 0 },
	{ "LRANGE", 0 },
	{ "LREM", 0 },
	{ "LSET", 0 },
	{ "LTRIM", 0 },
	{ "MEMORY", 0 },
	{ "MGET", 0 },
	{ "MIGRATE", 0 },
	{ "MODULE", 0 },
	{ "MONITOR", 0 },
	{ "MOVE", 0 },
	{ "MSET", 0 },
	{ "MSETNX", 0 },
	{ "MULTI", 0 },
	{ "OBJECT", 0 },
	{ "PERSIST", 0 },
	{ "PEXPIRE", 0 },
	{ "PEXPIREAT", 0 },
	{ "PEXPIRETIME", 0 },
	{ "PFADD", 0 },
	{ "PFCOUNT", 0 },
	{ "PFMERGE", 0 },
	{ "PING", 0 },
	{ "PSETEX", 0 },
	{ "PSUBSCRIBE", REDIS_CMD_SUBSCRIBE },
	{ "PSYNC", REDIS_CMD_SYNC },
	{ "PTTL", 0 },
	{ "PUBLISH", 0 },
	{ "PUBSUB", 0 },
	{ "PUNSUBSCRIBE", REDIS_CMD_UNSUBSCRIBE },
	{ "QUIT", 0 },
	{ "RANDOMKEY", 0 },
	{ "READONLY", 0 },
	{ "READWRITE", 0 },
	{ "RENAME", 0 },
	{ "RENAMENX", 0 },
	{ "REPLCONF", 0 },
	{ "RESET", REDIS_CMD_RESET },
	{ "RESTORE", 0 },
	{ "ROLE", 0 },
	{ "RPOP", 0 },
	{ "RPOPLPUSH", 0 },
	{ "RPUSH", 0 },
	{ "RPUSHX", 0 },
	{ "SADD", 0 },
	{ "SAVE", 0 },
	{ "SCAN", 0 },
	{ "SCARD", 0 },
	{ "SCRIPT", 0 },
	{ "SDIFF", 0 },
	{ "SDIFFSTORE", 0 },
	{ "SELECT", 0 },
	{ "SET", 0 },
	{ "SETBIT", 0 },
	{ "SETEX", 0 },
	{ "SETNX", 0 },
	{ "SETRANGE", 0 },
	{ "SINTER", 0 },
	{ "SINTERCARD", 0 },
	{ "SINTERSTORE", 0 },
	{ "SISMEMBER", 0 },
	{ "SLOWLOG", 0 },
	{ "SMEMBERS", 0 },
	{ "SMISMEMBER", 0 },
	{ "SMOVE", 0 },
	{ "SORT", 0 },
	{ "SORT_RO", 0 },
	{ "SPOP", 0 },
	{ "SPUBLISH", 0 },
	{ "SRANDMEMBER", 0 },
	{ "SREM", 0 },
	{ "SSCAN", 0 },
	{ "SSUBSCRIBE", REDIS_CMD_SUBSCRIBE },
	{ "STRLEN", 0 },
	{ "SUBSCRIBE", REDIS_CMD_SUBSCRIBE },
	{ "SUNION", 0 },
	{ "SUNIONSTORE", 0 },
	{ "SUNSUBSCRIBE", REDIS_CMD_UNSUBSCRIBE },
	{ "SWAPDB", 0 },
	{ "SYNC", REDIS_CMD_SYNC },
	{ "TIME", 0 },
	{ "TOUCH", 0 },
	{ "TTL", 0 },
	{ "TYPE", 0 },
	{ "UNLINK", 0 },
	{ "UNSUBSCRIBE", REDIS_CMD_UNSUBSCRIBE },
	{ "UNWATCH", 0 },
	{ "WAIT", 0 },
	{ "WAITAOF", 0 },
	{ "WATCH", 0 },
	{ "XACK", 0 },
	{ "XADD", 0 },
	{ "XAUTOCLAIM", 0 },
	{ "XCLAIM", 0 },
	{ "XDEL", 0 },
	{ "XGROUP", 0 },
	{ "XINFO", 0 },
	{ "XLEN", 0 },
	{ "XPENDING", 0 },
	{ "XRANGE", 0 },
	{ "XREAD", 0 },
	{ "XREADGROUP", 0 },
	{ "XREVRANGE", 0 },
	{ "XTRIM", 0 },
	{ "ZADD", 0 },
	{ "ZCARD", 0 },
	{ "ZCOUNT", 0 },
	{ "ZDIFF", 0 },
	{ "ZDIFFSTORE", 0 },
	{ "ZINCRBY", 0 },
	{ "ZINTER", 0 },
	{ "ZINTERCARD", 0 },
	{ "ZINTERSTORE", 0 },
	{ "ZLEXCOUNT", 0 },
	{ "ZMPOP", 0 },
	{ "ZMSCORE", 0 },
	{ "ZPOPMAX", 0 },
	{ "ZPOPMIN", 0 },
	{ "ZRANDMEMBER", 0 },
	{ "ZRANGE", 0 },
	{ "ZRANGEBYLEX", 0 },
	{ "ZRANGEBYSCORE", 0 },
	{ "ZRANGESTORE", 0 },
	{ "ZRANK", 0 },
	{ "ZREM", 0 },
	{ "ZREMRANGEBYLEX", 0 },
	{ "ZREMRANGEBYRANK", 0 },
	{ "ZREMRANGEBYSCORE", 0 },
	{ "ZREVRANGE", 0 },
	{ "ZREVRANGEBYLEX", 0 },
	{ "ZREVRANGEBYSCORE", 0 },
	{ "ZREVRANK", 0 },
	{ "ZSCAN", 0 },
	{ "ZSCORE", 0 },
	{ "ZUNION", 0 },
	{ "ZUNIONSTORE", 0 },
};

/* What the message being read on the server side still has to tell.
 * REDIS_MSG_ARRAY: in RESP2 subscribe mode, an array is a reply unless
 * its first element says it is a message or a confirmation.
 * REDIS_MSG_UNSUB: a RESP2 unsubscribe confirmation, whose third element
 * counts the subscriptions left. */
enum redis_msg {
	REDIS_MSG_NONE, /* nothing: counted, or not a reply */
	REDIS_MSG_ARRAY,
	REDIS_MSG_PUSH, /* a push: not a reply, maybe a confirmation */
	REDIS_MSG_UNSUB,
};

/* What the first element of a push, or of a RESP2 array in subscribe
 * mode, says it is: a message, a confirmation of one of the subscribe
 * family (named like the command), or something else. Confirmations from
 * REDIS_PUSH_UNSUBSCRIBE on count the subscriptions left. */
enum redis_push {
	REDIS_PUSH_OTHER,
	REDIS_PUSH_MESSAGE,
	REDIS_PUSH_SUBSCRIBE,
	REDIS_PUSH_PSUBSCRIBE,
	REDIS_PUSH_SSUBSCRIBE,
	REDIS_PUSH_UNSUBSCRIBE,
	REDIS_PUSH_PUNSUBSCRIBE,
	REDIS_PUSH_SUNSUBSCRIBE,
};

/* One direction, read element by element. */
struct redis_dir {
	uint64_t msg_ts;    /* when the message being read started */
	uint64_t top_count; /* elements of the top-level aggregate */
	uint64_t left[REDIS_MAX_DEPTH]; /* elements still due, per level */
	uint32_t attr;			/* bit k: level k is an attribute */
	uint8_t depth;			/* aggregates open */
	uint8_t msg;			/* enum redis_msg */
	bool in_line;			/* passing over the rest of a line */
};

struct redis_conn {
	struct redis_dir dir[2]; /* [1]: from the client */
	uint32_t sub_absorb;	 /* confirmations due to a call already ended */
	uint8_t absorb_kind;	 /* enum redis_push: which ones */
	bool resp3;		 /* the server was seen using RESP3 types */
	bool sub_mode;	  /* subscribed: RESP2 messages arrive as arrays */
	bool replication; /* PSYNC or SYNC sent: no more calls */
};

_Static_assert(sizeof(struct redis_conn) <= DB_PRIV_BYTES,
	       "struct redis_conn must fit in db_conn.priv");

static struct redis_conn *redis_of(struct db_conn *c)
{
	return (struct redis_conn *)c->priv;
}

/* ---- bytes ---- */

/* Separators of an inline command's words, and of lines. */
static bool redis_space(uint8_t b)
{
	return b == ' ' || b == '\t' || b == '\r' || b == '\n';
}

/* Bytes a command name can be made of: printable ASCII, no space. */
static bool redis_word_byte(uint8_t b)
{
	return b > ' ' && b < 0x7f;
}

/* Types RESP2 does not have: seeing one means the connection is RESP3. */
static bool redis_resp3_type(uint8_t type)
{
	switch (type) {
	case '_':
	case '#':
	case ',':
	case '(':
	case '!':
	case '=':
	case '%':
	case '~':
	case '|':
	case '>':
		return true;
	}
	return false;
}

/* Reads the length or integer line p[0..n) after its type byte: "$5\r\n"
 * is 5, "*-1\r\n" -1, ":+7\r\n" 7. Returns the line's size, type byte and
 * CRLF included; 0 when it is not all there yet; DB_PARSE_LOST when it is
 * not a decimal integer that fits in 64 bits (19 digits at most). */
static size_t redis_int_line(const uint8_t *p, size_t n, int64_t *val)
{
	uint64_t v = 0;
	size_t i = 1, digits = 0;
	bool neg = false;

	if (i < n && (p[i] == '-' || p[i] == '+')) {
		neg = p[i] == '-';
		i++;
	}
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		if (++digits > 19)
			return DB_PARSE_LOST;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (i == n)
		return 0;
	if (!digits || p[i] != '\r' || v > (uint64_t)INT64_MAX + neg)
		return DB_PARSE_LOST;
	if (i + 1 == n)
		return 0;
	if (p[i + 1] != '\n')
		return DB_PARSE_LOST;
	*val = neg ? (int64_t)(0 - v) : (int64_t)v;
	return i + 2;
}

/* Checks that p[0..n) starts with the fixed line want ("_\r\n"): its
 * size, 0 when it is not all there yet, DB_PARSE_LOST when it differs. */
static size_t redis_fixed_line(const uint8_t *p, size_t n, const char *want)
{
	size_t len = strlen(want);

	if (memcmp(p, want, n < len ? n : len) != 0)
		return DB_PARSE_LOST;
	return n < len ? 0 : len;
}

/* An error's first word can be read from s[0..n): it ends there, or is
 * too long to be a code anyway. */
static bool redis_word_known(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n && i < DB_STATUS_MAX; i++) {
		if (s[i] == ' ' || s[i] == '\r' || s[i] == '\n')
			return true;
	}
	return n >= DB_STATUS_MAX;
}

/* The code of an error whose text starts s[0..n) (n at most
 * DB_STATUS_MAX, or the text ends there): its first word when it is 1 to
 * 15 capital letters, else "ERR".
 *   "WRONGTYPE Operation against a key..." -> "WRONGTYPE"
 *   "MOVED 3999 127.0.0.1:6381"            -> "MOVED"
 *   "Error in script", "ERR2 x", ""        -> "ERR" */
static void redis_error_code(const uint8_t *s, size_t n, char *code)
{
	size_t len = 0;

	while (len < n && s[len] >= 'A' && s[len] <= 'Z')
		len++;
	if (!len || len >= DB_STATUS_MAX ||
	    (len < n && s[len] != ' ' && s[len] != '\r' && s[len] != '\n')) {
		strcpy(code, "ERR");
		return;
	}
	memcpy(code, s, len);
	code[len] = '\0';
}

/* What a push's first element s[0..len), in any case, says it is:
 *   "message", "pmessage", "smessage" -> a published message
 *   "subscribe" ... "sunsubscribe"    -> a confirmation of that command
 *   "invalidate", anything else        -> other */
static enum redis_push redis_push_kind(const uint8_t *s, size_t len)
{
	static const struct {
		const char *word;
		enum redis_push kind;
	} words[] = {
		{ "message", REDIS_PUSH_MESSAGE },
		{ "pmessage", REDIS_PUSH_MESSAGE },
		{ "smessage", REDIS_PUSH_MESSAGE },
		{ "subscribe", REDIS_PUSH_SUBSCRIBE },
		{ "psubscribe", REDIS_PUSH_PSUBSCRIBE },
		{ "ssubscribe", REDIS_PUSH_SSUBSCRIBE },
		{ "unsubscribe", REDIS_PUSH_UNSUBSCRIBE },
		{ "punsubscribe", REDIS_PUSH_PUNSUBSCRIBE },
		{ "sunsubscribe", REDIS_PUSH_SUNSUBSCRIBE },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strlen(words[i].word) == len &&
		    strncasecmp(words[i].word, (const char *)s, len) == 0)
			return words[i].kind;
	}
	return REDIS_PUSH_OTHER;
}

/* redis_commands[] by name: an open-addressing table of their indexes
 * plus one (0: empty), built on first use. A pipeline's commands are
 * looked up one by one, so this is on the path of every call. */
#define REDIS_LOOKUP_SLOTS 1024
#define REDIS_NCOMMANDS (sizeof(redis_commands) / sizeof(redis_commands[0]))
_Static_assert(REDIS_NCOMMANDS < REDIS_LOOKUP_SLOTS / 2,
	       "the command table stays at most half full");
static uint16_t redis_lookup[REDIS_LOOKUP_SLOTS];
static uint8_t redis_name_len[REDIS_NCOMMANDS];
static bool redis_lookup_built;

/* FNV-1a of an upper-case name. */
static uint32_t redis_name_hash(const char *name, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	return h;
}

static void redis_lookup_build(void)
{
	for (size_t i = 0; i < REDIS_NCOMMANDS; i++) {
		const char *name = redis_commands[i].name;
		size_t len = strlen(name);
		uint32_t at = redis_name_hash(name, len);

		redis_name_len[i] = (uint8_t)len;
		while (redis_lookup[at % REDIS_LOOKUP_SLOTS])
			at++;
		redis_lookup[at % REDIS_LOOKUP_SLOTS] = (uint16_t)(i + 1);
	}
	redis_lookup_built = true;
}

/* Whether a and b agree in their first len bytes: names are a few
 * bytes, shorter than a call to memcmp is worth. */
static bool redis_same_name(const char *a, const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* The command named name[0..len) in any case ("get", "Get"), or NULL
 * when it is not on the list. */
static const struct redis_command *redis_command_find(const uint8_t *name,
						      size_t len)
{
	char upper[DB_OP_MAX];
	uint32_t at;

	if (!len || len >= sizeof(upper))
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (!redis_word_byte(name[i]))
			return NULL;
		upper[i] = name[i] >= 'a' && name[i] <= 'z' ?
				   (char)(name[i] - 'a' + 'A') :
				   (char)name[i];
	}
	upper[len] = '\0';
	if (!redis_lookup_built)
		redis_lookup_build();
	for (at = redis_name_hash(upper, len);; at++) {
		uint16_t i = redis_lookup[at % REDIS_LOOKUP_SLOTS];

		if (!i)
			return NULL;
		if (redis_name_len[i - 1] == len &&
		    redis_same_name(redis_commands[i - 1].name, upper, len))
			return &redis_commands[i - 1];
	}
}

/* Words in the rest of an inline command, p[0..n) up to its line end:
 * the arguments after its name. 0 when the line end is not there. */
static uint32_t redis_inline_args(const uint8_t *p, size_t n)
{
	const uint8_t *lf = memchr(p, '\n', n);
	uint32_t words = 0;
	bool in_word = false;

	if (!lf)
		return 0;
	for (; p < lf; p++) {
		bool space = redis_space(*p);

		if (!space && !in_word)
			words++;
		in_word = !space;
	}
	return words;
}

/* ---- the element stack ---- */

/* Opens an aggregate of count elements (an attribute's are not elements
 * of the one around it). False when it nests too deep. */
static bool redis_open(struct redis_dir *d, uint64_t count, bool attr)
{
	if (d->depth == REDIS_MAX_DEPTH)
		return false;
	d->left[d->depth] = count;
	if (attr)
		d->attr |= UINT32_C(1) << d->depth;
	else
		d->attr &= ~(UINT32_C(1) << d->depth);
	if (!d->depth)
		d->top_count = count;
	d->depth++;
	return true;
}

/* An element is complete: it is counted off the aggregate around it, and
 * the aggregates it completes with it. */
static void redis_element_done(struct redis_dir *d)
{
	while (d->depth) {
		unsigned k = d->depth - 1u;
		bool attr = d->attr & (UINT32_C(1) << k);

		if (--d->left[k])
			return;
		d->depth--;
		if (attr)
			return;
	}
	d->msg = REDIS_MSG_NONE;
}

/* The payload of a bulk string whose length line is p[0..h): len bytes
 * and a CRLF, read here when all there, else passed over. */
static size_t redis_payload(const uint8_t *p, size_t n, size_t h, uint64_t len,
			    uint64_t *skip)
{
	uint64_t total = len + 2;

	if (n - h < total) {
		*skip = total;
		return h;
	}
	if (p[h + len] != '\r' || p[h + len + 1] != '\n')
		return DB_PARSE_LOST;
	return h + total;
}

/* ---- calls ---- */

/* A command named name[0..len) (NULL: too long to be on the list) with
 * nargs arguments was sent at ts. */
static void redis_command(struct db_conn *c, struct redis_conn *rc, uint64_t ts,
			  const uint8_t *name, size_t len, uint64_t nargs)
{
	const struct redis_command *cmd =
		name ? redis_command_find(name, len) : NULL;
	uint8_t flags = cmd ? cmd->flags : 0;
	uint32_t tag = 0;

	if (flags & (REDIS_CMD_SUBSCRIBE | REDIS_CMD_UNSUBSCRIBE)) {
		uint32_t kind = redis_push_kind((const uint8_t *)cmd->name,
						strlen(cmd->name));

		tag = REDIS_TAG_SUB | kind << REDIS_TAG_KIND_SHIFT |
		      (nargs < REDIS_TAG_CHANNELS ? (uint32_t)nargs :
						    REDIS_TAG_CHANNELS);
	}
	if (flags & REDIS_CMD_SUBSCRIBE)
		rc->sub_mode = true;
	if (flags & REDIS_CMD_RESET)
		rc->sub_mode = false;
	if (flags & (REDIS_CMD_RESET | REDIS_CMD_HELLO))
		rc->resp3 = false;
	if (flags & REDIS_CMD_SYNC)
		rc->replication = true;
	db_call_begin(c, ts, cmd ? cmd->name : "_OTHER", NULL, tag);
}

/* A confirmation of kind arrived at ts: the first of a subscribe call's
 * ends it, the others are passed over. */
static void redis_confirm(struct db_conn *c, struct redis_conn *rc,
			  enum redis_push kind, uint64_t ts)
{
	uint32_t tag = db_call_tag(c);

	if (rc->sub_absorb && rc->absorb_kind == kind) {
		rc->sub_absorb--;
		return;
	}
	if (!db_calls_open(c) || !(tag & REDIS_TAG_SUB) ||
	    (tag >> REDIS_TAG_KIND_SHIFT & REDIS_TAG_KIND) != kind)
		return;
	db_call_end(c, ts, NULL, false);
	rc->absorb_kind = (uint8_t)kind;
	rc->sub_absorb =
		tag & REDIS_TAG_CHANNELS ? (tag & REDIS_TAG_CHANNELS) - 1 : 0;
}

/* The first element of a pending top-level array or push says what it
 * is: a reply, a confirmation, or neither. */
static void redis_classify(struct db_conn *c, struct redis_conn *rc,
			   enum redis_push kind)
{
	struct redis_dir *d = &rc->dir[0];
	bool array = d->msg == REDIS_MSG_ARRAY;

	d->msg = REDIS_MSG_NONE;
	if (kind == REDIS_PUSH_OTHER && array)
		db_call_end(c, d->msg_ts, NULL, false);
	if (kind >= REDIS_PUSH_SUBSCRIBE)
		redis_confirm(c, rc, kind, d->msg_ts);
	if (kind >= REDIS_PUSH_UNSUBSCRIBE && array)
		d->msg = REDIS_MSG_UNSUB;
}

/* The element about to be read is the first of a top-level array or push
 * that waits for it to tell what it is. */
static bool redis_first_of_pending(const struct redis_dir *d)
{
	return (d->msg == REDIS_MSG_ARRAY || d->msg == REDIS_MSG_PUSH) &&
	       d->depth == 1 && d->left[0] == d->top_count;
}

/* A reply element that is not an aggregate starts at ts: at the top it is
 * a whole reply, and ends the oldest call with status and error. */
static void redis_scalar(struct db_conn *c, struct redis_conn *rc, uint64_t ts,
			 const char *status, bool error)
{
	struct redis_dir *d = &rc->dir[0];

	if (!d->depth) {
		d->msg_ts = ts;
		db_call_end(c, ts, status, error);
	} else if (redis_first_of_pending(d)) {
		redis_classify(c, rc, REDIS_PUSH_OTHER);
	}
}

/* ---- the server side ---- */

/* "-ERR unknown command 'x'\r\n": an error reply; the rest of its line is
 * passed over. */
static size_t redis_error_line(struct db_conn *c, struct redis_conn *rc,
			       const uint8_t *p, size_t n, uint64_t ts)
{
	char code[DB_STATUS_MAX];
	size_t seen = n - 1 < DB_STATUS_MAX ? n - 1 : DB_STATUS_MAX;

	if (!redis_word_known(p + 1, n - 1))
		return 0;
	redis_error_code(p + 1, seen, code);
	redis_scalar(c, rc, ts, code, true);
	rc->dir[0].in_line = true;
	return 1;
}

/* ":1\r\n", "_\r\n", "#t\r\n": short lines read whole. */
static size_t redis_short_line(struct db_conn *c, struct redis_conn *rc,
			       const uint8_t *p, size_t n, uint64_t ts)
{
	struct redis_dir *d = &rc->dir[0];
	int64_t v = -1;
	size_t len;

	if (p[0] == ':')
		len = redis_int_line(p, n, &v);
	else if (p[0] == '_')
		len = redis_fixed_line(p, n, "_\r\n");
	else if (n >= 2 && p[1] == 'f')
		len = redis_fixed_line(p, n, "#f\r\n");
	else
		len = redis_fixed_line(p, n, "#t\r\n");
	if (!len || len == DB_PARSE_LOST)
		return len;
	redis_scalar(c, rc, ts, NULL, false);
	/* "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n": no channel left */
	if (d->msg == REDIS_MSG_UNSUB && d->depth == 1 &&
	    d->top_count - d->left[0] == 2 && v == 0)
		rc->sub_mode = false;
	redis_element_done(d);
	return len;
}

/* "$5\r\nhello\r\n", "!21\r\nSYNTAX invalid syntax\r\n", "=15\r\ntxt:Some
 * string\r\n": bulk strings; only a top-level error's code and a pending
 * push's first word are read, the rest passed over. */
static size_t redis_bulk(struct db_conn *c, struct redis_conn *rc,
			 const uint8_t *p, size_t n, uint64_t ts,
			 uint64_t *skip)
{
	struct redis_dir *d = &rc->dir[0];
	int64_t v = 0;
	size_t used, h = redis_int_line(p, n, &v);
	bool error, word;
	uint64_t len;

	if (!h || h == DB_PARSE_LOST)
		return h;
	if (v < -1 || (v == -1 && p[0] != '$') || v > REDIS_MAX_LEN)
		return DB_PARSE_LOST;
	if (v == -1) {
		redis_scalar(c, rc, ts, NULL, false);
		redis_element_done(d);
		return h;
	}
	len = (uint64_t)v;
	error = !d->depth && p[0] == '!';
	word = redis_first_of_pending(d) && p[0] == '$' &&
	       len <= REDIS_PUSH_WORD_MAX;
	if ((error && n - h < (len < DB_STATUS_MAX ? len : DB_STATUS_MAX)) ||
	    (word && n - h < len))
		return 0;
	used = redis_payload(p, n, h, len, skip);
	if (used == DB_PARSE_LOST)
		return used;
	if (error) {
		char code[DB_STATUS_MAX];

		redis_error_code(
			p + h, len < DB_STATUS_MAX ? len : DB_STATUS_MAX, code);
		redis_scalar(c, rc, ts, code, true);
	} else if (word) {
		redis_classify(c, rc, redis_push_kind(p + h, len));
	} else {
		redis_scalar(c, rc, ts, NULL, false);
	}
	redis_element_done(d);
	return used;
}

/* "*2\r\n", "%1\r\n", "~3\r\n", ">3\r\n", "|1\r\n": aggregates. At the top
 * an array, map or set is a reply, a push is not, and a RESP2 array in
 * subscribe mode waits for its first element; an attribute is no element
 * at all. */
static size_t redis_aggregate(struct db_conn *c, struct redis_conn *rc,
			      const uint8_t *p, size_t n, uint64_t ts)
{
	struct redis_dir *d = &rc->dir[0];
	uint8_t type = p[0];
	int64_t v = 0;
	size_t h = redis_int_line(p, n, &v);
	uint64_t count;

	if (!h || h == DB_PARSE_LOST)
		return h;
	if (v < -1 || (v == -1 && type != '*') || v > REDIS_MAX_LEN)
		return DB_PARSE_LOST;
	count = v <= 0 ? 0 : (uint64_t)v;
	if (type == '%' || type == '|')
		count *= 2;
	if (type == '|')
		return !count || redis_open(d, count, true) ? h : DB_PARSE_LOST;
	if (!d->depth) {
		d->msg_ts = ts;
		if (type == '>')
			d->msg = count ? REDIS_MSG_PUSH : REDIS_MSG_NONE;
		else if (type == '*' && count && rc->sub_mode && !rc->resp3)
			d->msg = REDIS_MSG_ARRAY;
		else
			db_call_end(c, ts, NULL, false);
	} else if (redis_first_of_pending(d)) {
		redis_classify(c, rc, REDIS_PUSH_OTHER);
	}
	if (!count) {
		redis_element_done(d);
		return h;
	}
	return redis_open(d, count, false) ? h : DB_PARSE_LOST;
}

/* Reads one element head of a reply at p[0..n). */
static size_t redis_server_step(struct db_conn *c, struct redis_conn *rc,
				const uint8_t *p, size_t n, uint64_t ts,
				uint64_t *skip)
{
	if (redis_resp3_type(p[0]))
		rc->resp3 = true;
	switch (p[0]) {
	case '+':
	case ',':
	case '(':
		redis_scalar(c, rc, ts, NULL, false);
		rc->dir[0].in_line = true;
		return 1;
	case '-':
		return redis_error_line(c, rc, p, n, ts);
	case ':':
	case '_':
	case '#':
		return redis_short_line(c, rc, p, n, ts);
	case '$':
	case '=':
	case '!':
		return redis_bulk(c, rc, p, n, ts, skip);
	case '*':
	case '%':
	case '~':
	case '>':
	case '|':
		return redis_aggregate(c, rc, p, n, ts);
	default:
		return DB_PARSE_LOST;
	}
}

/* ---- the client side ---- */

/* "*3\r\n": a command of 3 words; "*0\r\n" and "*-1\r\n" are none (Redis
 * reads them and answers nothing). */
static size_t redis_multibulk(struct redis_dir *d, const uint8_t *p, size_t n,
			      uint64_t ts)
{
	int64_t v = 0;
	size_t h = redis_int_line(p, n, &v);

	if (!h || h == DB_PARSE_LOST)
		return h;
	if (v > REDIS_MAX_ARGS)
		return DB_PARSE_LOST;
	if (v <= 0)
		return h;
	d->msg_ts = ts;
	redis_open(d, (uint64_t)v, false);
	return h;
}

/* "$3\r\nSET\r\n": one word of a command, the first its name. */
static size_t redis_argument(struct db_conn *c, struct redis_conn *rc,
			     const uint8_t *p, size_t n, uint64_t *skip)
{
	struct redis_dir *d = &rc->dir[1];
	bool name = d->left[0] == d->top_count;
	int64_t v = 0;
	size_t h, used;

	if (p[0] != '$') /* Redis: "expected '$'" */
		return DB_PARSE_LOST;
	h = redis_int_line(p, n, &v);
	if (!h || h == DB_PARSE_LOST)
		return h;
	if (v < 0 || v > REDIS_MAX_LEN)
		return DB_PARSE_LOST;
	/* A name short enough to be on the list is read whole. */
	if (name && v < DB_OP_MAX && n - h < (uint64_t)v)
		return 0;
	used = redis_payload(p, n, h, (uint64_t)v, skip);
	if (used == DB_PARSE_LOST)
		return used;
	if (name)
		redis_command(c, rc, d->msg_ts, v < DB_OP_MAX ? p + h : NULL,
			      (size_t)v, d->top_count - 1);
	redis_element_done(d);
	return used;
}

/* "PING\r\n", "set k v\r\n": an inline command, its first word read here,
 * the rest of its line passed over. */
static size_t redis_inline(struct db_conn *c, struct redis_conn *rc,
			   const uint8_t *p, size_t n, uint64_t ts)
{
	size_t lim = n < REDIS_WORD_SCAN ? n : REDIS_WORD_SCAN;
	size_t k = 0;

	while (k < lim && redis_word_byte(p[k]))
		k++;
	if (k == n && n < REDIS_WORD_SCAN)
		return 0;
	if (k < lim && !redis_space(p[k]))
		return DB_PARSE_LOST;
	redis_command(c, rc, ts, k < DB_OP_MAX ? p : NULL, k,
		      redis_inline_args(p + k, n - k));
	rc->dir[1].in_line = true;
	return k;
}

/* Reads one element head of a command at p[0..n). */
static size_t redis_client_step(struct db_conn *c, struct redis_conn *rc,
				const uint8_t *p, size_t n, uint64_t ts,
				uint64_t *skip)
{
	struct redis_dir *d = &rc->dir[1];
	size_t k = 0;

	if (d->depth)
		return redis_argument(c, rc, p, n, skip);
	/* Blank lines between commands are inline commands of no word. */
	while (k < n && redis_space(p[k]))
		k++;
	if (k)
		return k;
	if (p[0] == '*')
		return redis_multibulk(d, p, n, ts);
	return redis_inline(c, rc, p, n, ts);
}

/* Frames the element head p[0..n) starts with, or the rest of a line
 * too long to keep (an inline command's tail, passed over to its end). */
static size_t redis_parse(struct db_conn *c, bool from_client, const uint8_t *p,
			  size_t n, uint64_t ts, uint64_t *skip)
{
	struct redis_conn *rc = redis_of(c);
	struct redis_dir *d = &rc->dir[from_client];
	size_t used;

	*skip = 0;
	/* After PSYNC's reply come the RDB (a bulk string with no CR LF)
	 * and the feed of the master's commands; the replica's REPLCONF
	 * ACKs get no reply. */
	if (rc->replication && (from_client || !db_calls_open(c)))
		return n;
	if (!d->in_line)
		return from_client ? redis_client_step(c, rc, p, n, ts, skip) :
				     redis_server_step(c, rc, p, n, ts, skip);
	used = db_line_rest(p, n, &d->in_line);
	if (!d->in_line)
		redis_element_done(d);
	return used;
}

/* The direction starts again at its next read or write; the calls open
 * were dropped, and with them the confirmations still due. */
static void redis_lost(struct db_conn *c, bool from_client)
{
	struct redis_conn *rc = redis_of(c);

	memset(&rc->dir[from_client], 0, sizeof(rc->dir[0]));
	rc->sub_absorb = 0;
}

/* Redis for db.c and the tests: see proto/db.h. Stateless apart from
 * c->priv; never fails but by losing a stream. */
/* ---- calls followed whole in BPF ---- */

/* Commands on the list whose replies may not come one a command, or
 * change how later ones do. */
static bool redis_fold_refused(const char *name)
{
	static const char *const refused[] = { "CLIENT", "EXEC", "MONITOR",
					       "MULTI" };

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (!strcmp(name, refused[i]))
			return true;
	return false;
}

/* The commands the BPF side may follow, by index: worked out once. */
static bool redis_foldable[REDIS_NCOMMANDS];
static bool redis_foldable_known;

static void redis_foldable_build(void)
{
	for (size_t i = 0; i < REDIS_NCOMMANDS; i++) {
		const struct redis_command *cmd = &redis_commands[i];

		redis_foldable[i] = !cmd->flags && strlen(cmd->name) <= 15 &&
				    !redis_fold_refused(cmd->name);
	}
	redis_foldable_known = true;
}

void redis_each_fold_op(void (*fn)(const char *name, uint16_t index, void *arg),
			void *arg)
{
	if (!redis_foldable_known)
		redis_foldable_build();
	for (size_t i = 0; i < REDIS_NCOMMANDS; i++)
		if (redis_foldable[i])
			fn(redis_commands[i].name, (uint16_t)i, arg);
}

static const char *redis_op_name(unsigned index)
{
	if (!redis_foldable_known)
		redis_foldable_build();
	if (index >= REDIS_NCOMMANDS || !redis_foldable[index])
		return NULL;
	return redis_commands[index].name;
}

static void redis_status_of(const uint8_t *s, size_t n, char *code)
{
	redis_error_code(s, n < DB_STATUS_MAX ? n : DB_STATUS_MAX, code);
}

const struct db_system db_redis = {
	.name = "redis",
	.parse = redis_parse,
	.lost = redis_lost,
	.op_name = redis_op_name,
	.status_of = redis_status_of,
};
