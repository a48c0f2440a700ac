/* The ring-buffer consumer: turns each event from the kernel into an
 * observation in the registry. Runs on the consumer thread only; its
 * counters may be read from any thread. */
#ifndef SONDE_USER_EVENTS_H
#define SONDE_USER_EVENTS_H

#include <stddef.h>

#include <linux/types.h>

/* capture_event_fn: handles one record. Always returns 0. */
int events_handle(void *ctx, void *data, size_t size);

/* Called after each round of reading every ring: forgets the processes
 * whose exit the round brought. */
void events_end_round(void);

/* Registers sonde_events_received_total and sonde_parse_errors_total
 * (metrics/self.h). Call once at start-up. */
void events_register_metrics(void);

#endif
