/* Databases and caches: the calls a process makes to PostgreSQL,
 * MySQL/MariaDB, Redis or Memcached, and those a database server answers,
 * each timed from its request to its own reply.
 *
 * The BPF side sends the bytes of every read and write of a connection it
 * classified as one of these systems (struct sonde_db_event), the first
 * SONDE_DB_DATA_CAP of each call; the rest of a longer call is a hole
 * whose length is known. db.c puts each direction's bytes back into a
 * stream and hands them to the system's parser (pg.c, mysql.c, redis.c,
 * memcached.c), which frames them into messages: a request starts a call
 * (db_call_begin), its reply ends the oldest call still open (db_call_end).
 * A message whose rest the parser does not need (a row, a value) is passed
 * over by length, across holes; a hole in bytes the parser needs loses the
 * stream, which then starts again at the next read or write, where
 * requests and replies start in practice. Calls lost that way are counted,
 * never guessed at.
 *
 * Consumer thread only. */
#ifndef SONDE_DB_H
#define SONDE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* db_operation_name: a keyword from the system's fixed list, or
 * "_OTHER"; at most DB_OP_MAX - 1 bytes. */
#define DB_OP_MAX 24
/* db_collection_name: an identifier of at most 63 bytes, or empty. */
#define DB_COLL_MAX 64
/* db_response_status_code: "42P01", "1146", "WRONGTYPE",
 * "CLIENT_ERROR"; empty on success. */
#define DB_STATUS_MAX 16
/* Bytes of a message the parsers may ask to see whole before they read
 * it (a statement's text beyond this is not needed: its operation and
 * table come first). A system's parser that needs a longer prefix of a
 * message takes what there is and passes over the rest. */
#define DB_MSG_MAX 4096
/* A system's own state per connection (struct pg_conn, ...). */
#define DB_PRIV_BYTES 4096

/* What parse() returns when the bytes make no sense for the system: the
 * stream is lost until the next read or write. */
#define DB_PARSE_LOST ((size_t)-1)

struct db_conn {
	/* The traced process is the database server (it accepted the
	 * connection, or read the first request). */
	bool server;
	/* db_system_name, from the system; a parser may change it once it
	 * knows better ("mysql" becomes "mariadb" from the greeting). Points
	 * to a string literal. */
	const char *system_name;
	/* The system's own state, zeroed when the connection is first
	 * seen; lost() says when a stream of it was lost. */
	uint8_t priv[DB_PRIV_BYTES] __attribute__((aligned(8)));
};

struct db_system {
	const char *name; /* db_system_name */
	/* Frames the message that the bytes p[0..n) (n > 0) start with,
	 * which went from the client (from_client) or from the server at
	 * time ts, and reads it. Returns how many bytes it used, and is
	 * called again for the rest: 0 when the message is not all there
	 * yet (the bytes are kept and shown again, after the next ones, up
	 * to DB_MSG_MAX of them; a message longer than that must be taken
	 * from its first DB_MSG_MAX bytes). A message it has the start of
	 * and needs no more of it may take whole, setting *skip to how many
	 * of its bytes are still to come: they are passed over, holes
	 * included. Returns DB_PARSE_LOST when the bytes are not the
	 * system's. */
	size_t (*parse)(struct db_conn *c, bool from_client, const uint8_t *p,
			size_t n, uint64_t ts, uint64_t *skip);
	/* Optional: the bytes of one direction were lost (from_client or
	 * not), and the calls open with them; the direction starts again at
	 * the start of its next read or write. */
	void (*lost)(struct db_conn *c, bool from_client);
	/* Optional, for the calls the BPF side follows whole (struct
	 * sonde_db_call_event): the name of the command at index on the
	 * list it was given (NULL when there is none), and the status code
	 * (DB_STATUS_MAX bytes) of an error reply whose text starts
	 * s[0..n). */
	const char *(*op_name)(unsigned index);
	void (*status_of)(const uint8_t *s, size_t n, char *code);
};

extern const struct db_system db_postgresql;
extern const struct db_system db_mysql;
extern const struct db_system db_redis;
extern const struct db_system db_memcached;

/* The Redis commands the BPF side may follow whole: fn(name, index, arg)
 * for each, upper case, at most 15 bytes; index is what op_name takes.
 * Not on it: the commands that change how the connection talks
 * (HELLO, RESET, SUBSCRIBE and the like, SYNC), and CLIENT, MONITOR,
 * MULTI and EXEC, whose replies may not come one a command. */
void redis_each_fold_op(void (*fn)(const char *name, uint16_t index, void *arg),
			void *arg);

/* A call starts: its request was written (client) or read (server) at
 * ts. op and collection are copied (cut to their maxima; NULL is empty);
 * tag is the parser's own, read back with db_call_tag(). A connection
 * holds at most DB_MAX_OPEN calls, and all connections together
 * DB_MAX_OPEN_TOTAL: a call beyond is counted as lost and not timed, and
 * so are the calls after it until the replies have caught up with it
 * (each reply ends its own call, in order). */
#define DB_MAX_OPEN 1024
#define DB_MAX_OPEN_TOTAL 65536
void db_call_begin(struct db_conn *c, uint64_t ts, const char *op,
		   const char *collection, uint32_t tag);

/* The oldest open call ends at ts with status (NULL or "" on success) and
 * error (the call failed). Returns false when no call is open. */
bool db_call_end(struct db_conn *c, uint64_t ts, const char *status,
		 bool error);

/* The oldest open call is dropped unobserved (the server will never answer
 * it: a PostgreSQL Execute after a failed one before Sync). False when
 * none is open. */
bool db_call_drop(struct db_conn *c);

/* How many calls are open; the oldest one's tag (0 when none). */
unsigned db_calls_open(const struct db_conn *c);
uint32_t db_call_tag(const struct db_conn *c);

/* The rest of a line too long to keep (a parser's *in_line), passed
 * over: the bytes of p[0..n) it takes, up to and including its '\n',
 * all n while it goes on; *in_line turns false where it ends. */
size_t db_line_rest(const uint8_t *p, size_t n, bool *in_line);

/* For the parsers and their tests, with no kernel behind them: a
 * connection of system sys on the server side or not, and the bytes of
 * one read or write fed to it: data[0..len) of a call that moved total
 * bytes (total > len: the rest is a hole). Finished calls go to the
 * function db_test_sink points at, when set; otherwise nowhere. */
struct db_conn *db_conn_new(const struct db_system *sys, bool server);
void db_conn_free(struct db_conn *c);
void db_feed(struct db_conn *c, bool from_client, const uint8_t *data,
	     size_t len, uint64_t total, uint64_t ts);

/* db_feed for a piece of a read or write: starts says whether it is the
 * first (a longer buffer comes in several). A direction that was lost
 * starts again only at the first piece of a read or write. */
void db_feed_piece(struct db_conn *c, bool from_client, const uint8_t *data,
		   size_t len, uint64_t total, uint64_t ts, bool starts);

/* A finished call, as the sink sees it. */
struct db_result {
	const char *system_name;
	const char *op;
	const char *collection;
	const char *status;
	bool error;
	uint64_t start_ns, end_ns;
};
extern void (*db_test_sink)(const struct db_result *r);

#endif
