/* The ring-buffer consumer: turns each event from the kernel into an
 * observation in the registry. Runs on the consumer thread only; its
 * counters may be read from any thread. */
#ifndef SONDE_USER_EVENTS_H
#define SONDE_USER_EVENTS_H

#include <stddef.h>

#include "strbuf.h"

/* capture_event_fn: handles one record. Always returns 0. */
int events_handle(void *ctx, void *data, size_t size);

/* Appends sonde_events_received_total and sonde_parse_errors_total. */
void events_render(struct strbuf *sb);

#endif
