/* The ring-buffer consumer: hands each record from the kernel to its
 * protocol (proto.h), and does what is the same for every protocol: names
 * the record's process, applies the process selection, adds the identity
 * labels and files each observation in the registry. Follows processes as
 * they exec and exit. Runs on the consumer thread only. */
#ifndef SONDE_DISPATCH_H
#define SONDE_DISPATCH_H

#include <stddef.h>

#include "proto/proto.h"

/* capture_event_fn: handles one record. Always returns 0. */
int dispatch_record(void *ctx, void *data, size_t size);

/* Called after each round of reading every ring: forgets the processes
 * whose exit the round brought. */
void dispatch_end_round(void);

/* Forgets the protocols' state of connections open() says are closed. */
void dispatch_sweep(proto_open_fn open);

/* Forgets every protocol's state, and the series found for records
 * seen before (tests). */
void dispatch_clear(void);

#endif
