/* The ring-buffer consumer: turns each event from the kernel into an
 * observation in the registry. Runs on the consumer thread only; its
 * counters may be read from any thread. */
#ifndef SONDE_USER_EVENTS_H
#define SONDE_USER_EVENTS_H

#include <stddef.h>

#include <linux/types.h>

#include "strbuf.h"

/* capture_event_fn: handles one record. Always returns 0. */
int events_handle(void *ctx, void *data, size_t size);

/* Called after each round of reading every ring: forgets the processes
 * whose exit the round brought. */
void events_end_round(void);

/* Writes a peer address as label text: dotted IPv4 (also for IPv4-mapped
 * IPv6 addresses) or IPv6. Returns 0, or -1 for an unknown family or a
 * short buffer (INET6_ADDRSTRLEN is enough). */
int events_format_address(__u16 family, const __u8 addr[16], char *out,
			  size_t outsz);

/* Writes value in decimal, as label text (a status code, a port). Returns
 * 0, or -1 when out is too short. */
int events_format_uint(unsigned value, char *out, size_t outsz);

/* Appends sonde_events_received_total and sonde_parse_errors_total. */
void events_render(struct strbuf *sb);

#endif
