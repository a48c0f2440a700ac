/* The stream side of proto/db.h for its one user in the daemon, db.c:
 * connections whose finished calls go to an owner rather than to the test
 * sink, and what was lost, counted. Consumer thread only. */
#ifndef SONDE_DBSTREAM_H
#define SONDE_DBSTREAM_H

#include <stdint.h>

#include "proto/db.h"

/* Called with each call a connection finishes, and the owner it was
 * made with. */
typedef void (*db_done_fn)(void *owner, const struct db_result *r);

/* A connection of system sys, server side or not, whose finished calls go
 * to done(owner, ...). NULL when memory ran out. db_conn_free frees it. */
struct db_conn *db_conn_new_owned(const struct db_system *sys, bool server,
				  db_done_fn done, void *owner);

/* Points the connection's finished calls at another owner (its owner
 * moved). */
void db_conn_set_owner(struct db_conn *c, void *owner);

/* What all connections lost since the last call: streams (a direction
 * whose bytes stopped making sense, or whose needed bytes fell in a hole)
 * and calls (open when their stream was lost, over DB_MAX_OPEN, or
 * dropped with their connection). Counters restart at zero. */
struct db_losses {
	uint64_t streams;
	uint64_t calls;
};
struct db_losses db_take_losses(void);

/* Bytes of one direction went missing (a record lost on the way): the
 * direction is lost, as when its bytes stop making sense. */
void db_gap(struct db_conn *c, bool from_client);

/* The connection is going away: its open calls are counted as lost. */
void db_conn_close(struct db_conn *c);

#endif
