/* What the consumer counts of the records it reads: every record
 * received, and those it could not turn into a measurement, by reason.
 * Counted on the consumer thread; read from any thread. */
#ifndef SONDE_USER_EVENTS_H
#define SONDE_USER_EVENTS_H

#include <stdint.h>

/* Why a record made no measurement (sonde_parse_errors_total's reason). */
enum parse_error {
	PARSE_ERROR_RESPONSE,	/* no final status line in the response head */
	PARSE_ERROR_RECORD,	/* a record of unknown kind or size */
	PARSE_ERROR_NO_REQUEST, /* a server's status line no request asked for */
	PARSE_ERROR_HTTP2_LOST, /* an HTTP/2 connection no longer decoded */
	PARSE_ERROR_DB_STREAM,	/* a database stream stopped making sense */
	PARSE_ERROR_DB_CALL,	/* a database call lost with its stream */
	PARSE_ERROR_COUNT,
};

/* Counts one record read from the kernel. */
void events_count_received(void);

/* Counts one record lost for reason why. */
void events_count_parse_error(enum parse_error why);

/* Counts n of them at once. */
void events_count_parse_errors(enum parse_error why, uint64_t n);

/* Registers sonde_events_received_total and sonde_parse_errors_total
 * (metrics/self.h). Call once at start-up. */
void events_register_metrics(void);

#endif
