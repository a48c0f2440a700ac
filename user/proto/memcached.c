/* Memcached's text protocol: the commands a client sends, classic and
 * meta, and the replies that answer them, each command line its own call.
 *
 * Protocol: https://github.com/memcached/memcached/blob/master/doc/protocol.txt
 * Meta commands, quiet mode: the same file, "Meta Get" to "Meta No-Op",
 * and memcached's proto_text.c (which replies each quiet command hides).
 *
 * A command is a line ("get a b c\r\n"), and for the storage commands
 * and ms a data block of the length the line gives ("set k 0 0 5\r\n"
 * "hello\r\n"), passed over by that length, holes included. The command's
 * name, upper-cased, is the operation when it is on mc_commands[], else
 * "_OTHER"; a get of several keys is one call. The collection stays
 * empty: keys are user data.
 *
 * A call starts with the write that completes its command line. Each
 * reply ends the oldest open call at the read that completes the reply's
 * first line: a get's VALUE lines and END, stats' STAT lines and END are
 * one reply, counted at their first line, so a long reply whose END falls
 * in a hole is still counted. ERROR, CLIENT_ERROR and SERVER_ERROR are
 * errors with that status; NOT_FOUND, NOT_STORED, EXISTS, EN, NF, NS, EX
 * are answers, not errors.
 *
 * Calls that may get no reply:
 * - "noreply" (classic commands) and quit get none: they are counted with
 *   no duration, ended at their own start as soon as no older call is
 *   open. An error the server still sends for a malformed noreply line
 *   ends a later call.
 * - The q flag of mg, ms, md, ma hides the nominal reply (EN for mg, HD
 *   for the others) and keeps the rest. A quiet call at the head of the
 *   queue takes a reply it could have been sent (VA, HD or an error for
 *   mg; NS, EX, NF or an error for the others); any other reply, the MN of
 *   the mn that usually closes such a batch among them, shows that its own
 *   was hidden: it ends then, as a success, and the reply goes on to the
 *   next call. Replies in a batch of quiet commands go to the calls in
 *   order, so a miss followed by a hit is timed as a hit followed by a
 *   miss: counts stay right, timings are those of the batch.
 *
 * The binary protocol (requests start with the magic byte 0x80, replies
 * with 0x81) is deprecated and not read: it loses the stream, like any
 * line whose first word is not printable ASCII. Lines of "watch" and
 * "lru_crawler metadump" ("ts=... gid=...", "key=...") answer no call.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/db.h"

/* memcached itself gives up on a command line with no line end in its
 * first 2048 bytes, unless it is a get of many keys (try_read_command_ascii
 * in proto_text.c). Replies are held to the same length; a longer one is
 * read by its first word. */
#define MC_LINE_MAX 2048

/* Words of a line kept apart; memcached splits no more (MAX_TOKENS). The
 * last slot holds the line's last word. */
#define MC_TOKENS_MAX 24

/* Data blocks are at most INT_MAX - 2 bytes (process_update_command). */
#define MC_DATA_MAX (INT64_C(0x7fffffff) - 2)

enum mc_kind {
	MC_PLAIN,	/* a line */
	MC_UPDATE,	/* a line; "noreply" as its last word: no reply */
	MC_RETRIEVE,	/* get, gets, gat, gats: every word after is a key */
	MC_STORE,	/* a data block of <bytes> (the 5th word) follows */
	MC_META_GET,	/* mg <key> <flags>* */
	MC_META_SET,	/* ms <key> <datalen> <flags>*, and the data */
	MC_META_DELETE, /* md <key> <flags>* */
	MC_META_ARITH,	/* ma <key> <flags>* */
	MC_QUIT,	/* closes the connection: no reply */
};

struct mc_command {
	const char *name;
	const char *op;
	uint8_t len; /* of name */
	uint8_t kind;
};

#define MC_COMMAND(name, op, kind)               \
	{                                        \
		name, op, sizeof(name) - 1, kind \
	}

/* The operations sonde names, the most used first. */
static const struct mc_command mc_commands[] = {
	MC_COMMAND("get", "GET", MC_RETRIEVE),
	MC_COMMAND("gets", "GETS", MC_RETRIEVE),
	MC_COMMAND("set", "SET", MC_STORE),
	MC_COMMAND("mg", "MG", MC_META_GET),
	MC_COMMAND("ms", "MS", MC_META_SET),
	MC_COMMAND("md", "MD", MC_META_DELETE),
	MC_COMMAND("ma", "MA", MC_META_ARITH),
	MC_COMMAND("mn", "MN", MC_PLAIN),
	MC_COMMAND("delete", "DELETE", MC_UPDATE),
	MC_COMMAND("add", "ADD", MC_STORE),
	MC_COMMAND("replace", "REPLACE", MC_STORE),
	MC_COMMAND("append", "APPEND", MC_STORE),
	MC_COMMAND("prepend", "PREPEND", MC_STORE),
	MC_COMMAND("cas", "CAS", MC_STORE),
	MC_COMMAND("incr", "INCR", MC_UPDATE),
	MC_COMMAND("decr", "DECR", MC_UPDATE),
	MC_COMMAND("touch", "TOUCH", MC_UPDATE),
	MC_COMMAND("gat", "GAT", MC_RETRIEVE),
	MC_COMMAND("gats", "GATS", MC_RETRIEVE),
	MC_COMMAND("me", "ME", MC_PLAIN),
	MC_COMMAND("version", "VERSION", MC_PLAIN),
	MC_COMMAND("stats", "STATS", MC_PLAIN),
	MC_COMMAND("flush_all", "FLUSH_ALL", MC_UPDATE),
	MC_COMMAND("verbosity", "VERBOSITY", MC_UPDATE),
	MC_COMMAND("quit", "QUIT", MC_QUIT),
	MC_COMMAND("cache_memlimit", "CACHE_MEMLIMIT", MC_UPDATE),
	MC_COMMAND("lru", "LRU", MC_UPDATE),
	MC_COMMAND("lru_crawler", "LRU_CRAWLER", MC_PLAIN),
	MC_COMMAND("slabs", "SLABS", MC_PLAIN),
	MC_COMMAND("watch", "WATCH", MC_UPDATE),
	MC_COMMAND("shutdown", "SHUTDOWN", MC_PLAIN),
};

/* What a reply line is, by its first word. MC_R_ITEM: VALUE (then its
 * data), STAT, ITEM, PREFIX, the lines of a reply that END closes.
 * MC_R_LOG: "ts=... gid=...", "key=... exp=...", the lines of watch and
 * lru_crawler metadump, no reply. */
enum mc_reply {
	MC_R_OTHER, /* STORED, DELETED, OK, "5", VERSION ...: a whole reply */
	MC_R_HD,
	MC_R_VA, /* VA <size> <flags>*, then the data */
	MC_R_EN,
	MC_R_NF,
	MC_R_NS,
	MC_R_EX,
	MC_R_MN,
	MC_R_ME,
	MC_R_ERROR,
	MC_R_CLIENT_ERROR,
	MC_R_SERVER_ERROR,
	MC_R_ITEM,
	MC_R_END,
	MC_R_LOG,
};

#define MC_BIT(r) (UINT32_C(1) << (r))
#define MC_ERRORS                                         \
	(MC_BIT(MC_R_ERROR) | MC_BIT(MC_R_CLIENT_ERROR) | \
	 MC_BIT(MC_R_SERVER_ERROR))

/* Tags of the calls that may get no reply. A quiet one holds the replies
 * it can still be sent; a noreply one gets none at all. */
#define MC_TAG_QUIET (UINT32_C(1) << 30)
#define MC_TAG_NOREPLY (UINT32_C(1) << 31)

/* One direction. in_items: the server is in a reply of several lines
 * whose call was counted at its first, until its END. */
struct mc_dir {
	bool in_line; /* passing over the rest of a long line */
	bool in_items;
};

struct mc_conn {
	struct mc_dir dir[2]; /* [1]: from the client */
};

_Static_assert(sizeof(struct mc_conn) <= DB_PRIV_BYTES,
	       "struct mc_conn must fit in db_conn.priv");

/* The words of a line, as offsets into it. */
struct mc_tokens {
	unsigned n;
	struct {
		uint16_t off, len;
	} t[MC_TOKENS_MAX];
};

static struct mc_conn *mc_of(struct db_conn *c)
{
	return (struct mc_conn *)c->priv;
}

/* ---- lines ---- */

/* Bytes a command's or a reply's first word can be made of. */
static bool mc_word_byte(uint8_t b)
{
	return b > ' ' && b < 0x7f;
}

/* The first word of a line that starts p[0..n) could be memcached's:
 * printable up to a space or the line end. Binary protocol packets
 * (0x80 ...) and other strangers fail at their first byte. */
static bool mc_plausible(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] == ' ')
		i++;
	for (; i < n && p[i] != ' ' && p[i] != '\r' && p[i] != '\n'; i++) {
		if (!mc_word_byte(p[i]))
			return false;
	}
	return true;
}

/* Splits the line p[0..len) (its CR LF left out) at spaces, as memcached
 * does: "get  a b" is "get", "a", "b". */
static void mc_tokenize(const uint8_t *p, size_t len, struct mc_tokens *tk)
{
	size_t i = 0;

	tk->n = 0;
	while (i < len) {
		size_t start;
		unsigned slot;

		while (i < len && p[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && p[i] != ' ')
			i++;
		slot = tk->n < MC_TOKENS_MAX ? tk->n++ : MC_TOKENS_MAX - 1;
		tk->t[slot].off = (uint16_t)start;
		tk->t[slot].len = (uint16_t)(i - start);
	}
}

/* Word i of the line is s: mc_is(p, tk, 0, "END"). */
static bool mc_is(const uint8_t *p, const struct mc_tokens *tk, unsigned i,
		  const char *s)
{
	size_t len = strlen(s);

	return i < tk->n && tk->t[i].len == len &&
	       memcmp(p + tk->t[i].off, s, len) == 0;
}

/* s[0..n) as a data length: "5" is 5; "", "-1", "5x", "99999999999"
 * are none memcached would take. */
static bool mc_number(const uint8_t *s, size_t n, uint64_t *len)
{
	uint64_t v = 0;

	if (!n || n > 10)
		return false;
	for (size_t k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[k] - '0');
	}
	if (v > (uint64_t)MC_DATA_MAX)
		return false;
	*len = v;
	return true;
}

/* Word i of the line as a data length ("5" in "set k 0 0 5"). */
static bool mc_length(const uint8_t *p, const struct mc_tokens *tk, unsigned i,
		      uint64_t *len)
{
	return i < tk->n && mc_number(p + tk->t[i].off, tk->t[i].len, len);
}

/* The line's words from first on include the one-letter flag f: the q of
 * "mg k v q". */
static bool mc_has_flag(const uint8_t *p, const struct mc_tokens *tk,
			unsigned first, char f)
{
	for (unsigned i = first; i < tk->n; i++) {
		if (tk->t[i].len == 1 && p[tk->t[i].off] == (uint8_t)f)
			return true;
	}
	return false;
}

/* The data block after a line of h bytes at p[0..n): len bytes and a CR
 * LF, read here when all there, else passed over. */
static size_t mc_data(const uint8_t *p, size_t n, size_t h, uint64_t len,
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

/* ---- commands ---- */

/* The command named word[0..len) (case matters: memcached's are lower
 * case), or NULL. */
static const struct mc_command *mc_command_find(const uint8_t *word, size_t len)
{
	for (size_t i = 0; i < sizeof(mc_commands) / sizeof(mc_commands[0]);
	     i++) {
		const struct mc_command *cmd = &mc_commands[i];

		if (cmd->len == len && memcmp(cmd->name, word, len) == 0)
			return cmd;
	}
	return NULL;
}

/* The replies a quiet call of kind may still be sent: a hit for mg,
 * anything but HD for the others, and errors always. */
static uint32_t mc_quiet_replies(enum mc_kind kind)
{
	switch (kind) {
	case MC_META_GET:
		return MC_BIT(MC_R_VA) | MC_BIT(MC_R_HD) | MC_ERRORS;
	case MC_META_SET:
	case MC_META_ARITH:
		return MC_BIT(MC_R_NS) | MC_BIT(MC_R_EX) | MC_BIT(MC_R_NF) |
		       MC_ERRORS;
	case MC_META_DELETE:
		return MC_BIT(MC_R_EX) | MC_BIT(MC_R_NF) | MC_ERRORS;
	default:
		return 0;
	}
}

/* The tag of a call of kind whose line is p, tk: what replies it waits
 * for. */
static uint32_t mc_command_tag(enum mc_kind kind, const uint8_t *p,
			       const struct mc_tokens *tk)
{
	switch (kind) {
	case MC_QUIT:
		return MC_TAG_NOREPLY;
	case MC_UPDATE:
	case MC_STORE:
		return tk->n > 1 && mc_is(p, tk, tk->n - 1, "noreply") ?
			       MC_TAG_NOREPLY :
			       0;
	case MC_META_GET:
	case MC_META_DELETE:
	case MC_META_ARITH:
		return mc_has_flag(p, tk, 2, 'q') ?
			       MC_TAG_QUIET | mc_quiet_replies(kind) :
			       0;
	case MC_META_SET:
		return mc_has_flag(p, tk, 3, 'q') ?
			       MC_TAG_QUIET | mc_quiet_replies(kind) :
			       0;
	default:
		return 0;
	}
}

/* The length of the data block a command line announces; false when none
 * follows (a malformed length gets CLIENT_ERROR and no block is read). */
static bool mc_command_data(enum mc_kind kind, const uint8_t *p,
			    const struct mc_tokens *tk, uint64_t *len)
{
	if (kind == MC_STORE)
		return mc_length(p, tk, 4, len);
	if (kind != MC_META_SET)
		return false;
	if (mc_length(p, tk, 2, len))
		return true;
	/* Early 1.6 releases: "ms <key> <flags>*" with an S<datalen>
	 * flag. */
	for (unsigned i = 2; i < tk->n; i++) {
		if (tk->t[i].len >= 2 && p[tk->t[i].off] == 'S')
			return mc_number(p + tk->t[i].off + 1,
					 tk->t[i].len - 1u, len);
	}
	return false;
}

/* Ends, oldest first, the calls that get no reply, as their turn comes:
 * at their own start (db_call_end holds an end before the start to it). */
static void mc_end_unanswered(struct db_conn *c)
{
	while (db_calls_open(c) && db_call_tag(c) == MC_TAG_NOREPLY)
		db_call_end(c, 0, NULL, false);
}

/* Reads one command at p[0..n): its line, and the data block after it. */
static size_t mc_client_step(struct db_conn *c, struct mc_conn *mc,
			     const uint8_t *p, size_t n, uint64_t ts,
			     uint64_t *skip)
{
	size_t scan = n < MC_LINE_MAX ? n : MC_LINE_MAX;
	const uint8_t *lf = memchr(p, '\n', scan);
	const struct mc_command *cmd;
	struct mc_tokens tk;
	uint64_t data;
	size_t h;

	if (!mc_plausible(p, scan))
		return DB_PARSE_LOST;
	if (!lf && n < MC_LINE_MAX)
		return 0;
	h = lf ? (size_t)(lf - p) + 1 : scan;
	mc_tokenize(p, lf ? h - 1 - (h > 1 && p[h - 2] == '\r') : scan, &tk);
	cmd = tk.n ? mc_command_find(p + tk.t[0].off, tk.t[0].len) : NULL;
	/* Only a get of many keys has a longer line: its first word is all
	 * it takes, the rest is passed over. */
	if (!lf && (!cmd || cmd->kind != MC_RETRIEVE))
		return DB_PARSE_LOST;
	mc->dir[1].in_line = !lf;
	if (lf && cmd && mc_command_data(cmd->kind, p, &tk, &data))
		h = mc_data(p, n, h, data, skip);
	if (h == DB_PARSE_LOST)
		return h;
	db_call_begin(c, ts, cmd ? cmd->op : "_OTHER", NULL,
		      cmd ? mc_command_tag(cmd->kind, p, &tk) : 0);
	mc_end_unanswered(c);
	return h;
}

/* ---- replies ---- */

/* What the reply line whose words are p, tk is, by its first word. */
static enum mc_reply mc_reply_kind(const uint8_t *p, const struct mc_tokens *tk)
{
	static const struct {
		const char *word;
		enum mc_reply kind;
	} words[] = {
		{ "VALUE", MC_R_ITEM },
		{ "END", MC_R_END },
		{ "HD", MC_R_HD },
		{ "VA", MC_R_VA },
		{ "EN", MC_R_EN },
		{ "NF", MC_R_NF },
		{ "NS", MC_R_NS },
		{ "EX", MC_R_EX },
		{ "MN", MC_R_MN },
		{ "ME", MC_R_ME },
		{ "STAT", MC_R_ITEM },
		{ "ITEM", MC_R_ITEM },
		{ "PREFIX", MC_R_ITEM },
		{ "ERROR", MC_R_ERROR },
		{ "CLIENT_ERROR", MC_R_CLIENT_ERROR },
		{ "SERVER_ERROR", MC_R_SERVER_ERROR },
	};
	const uint8_t *w;
	size_t len;

	if (!tk->n)
		return MC_R_OTHER;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (mc_is(p, tk, 0, words[i].word))
			return words[i].kind;
	}
	w = p + tk->t[0].off;
	len = tk->t[0].len;
	/* "ERROR: shutdown not enabled" */
	if (len > 5 && memcmp(w, "ERROR", 5) == 0 && w[5] == ':')
		return MC_R_ERROR;
	if (memchr(w, '=', len))
		return MC_R_LOG;
	return MC_R_OTHER;
}

/* The status a reply gives its call: the error's name, else none. */
static const char *mc_reply_status(enum mc_reply r)
{
	switch (r) {
	case MC_R_ERROR:
		return "ERROR";
	case MC_R_CLIENT_ERROR:
		return "CLIENT_ERROR";
	case MC_R_SERVER_ERROR:
		return "SERVER_ERROR";
	default:
		return NULL;
	}
}

/* A reply r arrived at ts: it ends the oldest call that can take it; the
 * quiet calls ahead of that one had their replies hidden. */
static void mc_answer(struct db_conn *c, uint64_t ts, enum mc_reply r)
{
	const char *status = mc_reply_status(r);

	mc_end_unanswered(c);
	while (db_calls_open(c)) {
		uint32_t tag = db_call_tag(c);

		if (!(tag & MC_TAG_QUIET) || (tag & MC_BIT(r))) {
			db_call_end(c, ts, status, status != NULL);
			break;
		}
		db_call_end(c, ts, NULL, false);
		mc_end_unanswered(c);
	}
	mc_end_unanswered(c);
}

/* A reply line r arrived at ts: the lines after the first of a reply of
 * several belong to it, up to its END. */
static void mc_reply_line(struct db_conn *c, struct mc_dir *d, uint64_t ts,
			  enum mc_reply r)
{
	if (r == MC_R_LOG)
		return;
	if (d->in_items) {
		if (r == MC_R_ITEM)
			return;
		d->in_items = false;
		if (r == MC_R_END || mc_reply_status(r))
			return;
	}
	if (r == MC_R_ITEM)
		d->in_items = true;
	mc_answer(c, ts, r);
}

/* The data block a reply line r announces: VALUE <key> <flags> <bytes>
 * [<cas>], VA <size> <flags>*. False when its length is malformed. */
static bool mc_reply_data(enum mc_reply r, const uint8_t *p,
			  const struct mc_tokens *tk, bool *has, uint64_t *len)
{
	*has = r == MC_R_VA || (r == MC_R_ITEM && mc_is(p, tk, 0, "VALUE"));
	if (!*has)
		return true;
	return mc_length(p, tk, r == MC_R_VA ? 1 : 3, len);
}

/* Reads one reply line at p[0..n), and the data block after it. */
static size_t mc_server_step(struct db_conn *c, struct mc_conn *mc,
			     const uint8_t *p, size_t n, uint64_t ts,
			     uint64_t *skip)
{
	struct mc_dir *d = &mc->dir[0];
	size_t scan = n < MC_LINE_MAX ? n : MC_LINE_MAX;
	const uint8_t *lf = memchr(p, '\n', scan);
	struct mc_tokens tk;
	enum mc_reply r;
	uint64_t data = 0;
	bool has_data;
	size_t h, len;

	if (!mc_plausible(p, scan))
		return DB_PARSE_LOST;
	if (!lf && n < MC_LINE_MAX)
		return 0;
	h = lf ? (size_t)(lf - p) + 1 : scan;
	len = lf ? h - 1 - (h > 1 && p[h - 2] == '\r') : scan;
	mc_tokenize(p, len, &tk);
	if (!tk.n)
		return DB_PARSE_LOST;
	r = mc_reply_kind(p, &tk);
	if (!mc_reply_data(r, p, &tk, &has_data, &data))
		return DB_PARSE_LOST;
	if (!lf && has_data) /* a VALUE line this long cannot be read */
		return DB_PARSE_LOST;
	d->in_line = !lf;
	if (has_data)
		h = mc_data(p, n, h, data, skip);
	if (h == DB_PARSE_LOST)
		return h;
	mc_reply_line(c, d, ts, r);
	return h;
}

/* Frames the message p[0..n) starts with, or the rest of a line too long
 * to keep (a value line's tail, passed over to its end). */
static size_t mc_parse(struct db_conn *c, bool from_client, const uint8_t *p,
		       size_t n, uint64_t ts, uint64_t *skip)
{
	struct mc_conn *mc = mc_of(c);
	struct mc_dir *d = &mc->dir[from_client];

	*skip = 0;
	if (!d->in_line)
		return from_client ? mc_client_step(c, mc, p, n, ts, skip) :
				     mc_server_step(c, mc, p, n, ts, skip);
	return db_line_rest(p, n, &d->in_line);
}

/* The direction starts again at its next read or write. */
static void mc_lost(struct db_conn *c, bool from_client)
{
	memset(&mc_of(c)->dir[from_client], 0, sizeof(struct mc_dir));
}

/* Memcached's text protocol for db.c and the tests: see proto/db.h.
 * Stateless apart from c->priv; never fails but by losing a stream. */
const struct db_system db_memcached = {
	.name = "memcached",
	.parse = mc_parse,
	.lost = mc_lost,
};
