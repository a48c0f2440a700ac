/* What sonde keeps of an SQL statement: its operation (the first keyword)
 * and the table of a single-table statement, never its text or
 * parameters. Shared by the PostgreSQL and MySQL parsers. Any bytes are
 * safe input. */
#ifndef SONDE_SQL_H
#define SONDE_SQL_H

#include <stddef.h>

#include "proto/db.h"

/* Reads the statement at sql[0..n) (maybe cut short, maybe not
 * NUL-terminated; leading spaces, comments and parentheses skipped) into
 * op (DB_OP_MAX bytes: "SELECT", "INSERT", ..., or "_OTHER") and
 * collection (DB_COLL_MAX bytes: "orders", "public.orders" as written,
 * quotes removed; empty when there is none, several, or the name is not
 * a plain identifier of at most 63 bytes). */
void sql_summarize(const char *sql, size_t n, char *op, char *collection);

/* sql_summarize, answered from a memo of the statements summarized
 * before when sql reads as one of them but for its numbers' digits
 * ("... WHERE id = 7" as "... WHERE id = 12"): the same summary, without
 * lexing the statement again. The memo holds the normalized text of up
 * to 128 recent statements of at most 512 bytes: nothing of it leaves
 * the process. Consumer thread only. */
void sql_summarize_memo(const char *sql, size_t n, char *op, char *collection);

/* Forgets every statement the memo holds. */
void sql_memo_clear(void);

#endif
