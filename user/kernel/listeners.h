/* The TCP sockets that already listen when sonde starts, and a process
 * that holds each. Under socket hooks the BPF side learns of a listener
 * when it moves to LISTEN, which one made before sonde started never
 * does again: these are entered in the "listeners" map at start, so that
 * a connection such a server accepts is charged to it from the start
 * (struct sonde_listener in sonde_events.h).
 *
 * Listening sockets come from /proc/<pid>/net/tcp and tcp6, read once per
 * network namespace; their holders from the socket:[inode] links under
 * /proc/<pid>/fd. */
#ifndef SONDE_LISTENERS_H
#define SONDE_LISTENERS_H

#include <stdbool.h>
#include <stdint.h>

#include "sonde_events.h"

/* Whether line, one line of /proc/net/tcp or /proc/net/tcp6, is a socket
 * in the LISTEN state; if so *port (host order) and *inode are its local
 * port and inode. False for the header line and anything malformed. */
bool listeners_parse_line(const char *line, uint16_t *port, uint64_t *inode);

/* Called once per (namespace, port) found, with the lowest-numbered
 * process holding one of its listening sockets, that process's name and
 * how many sockets listen there. */
typedef void (*listeners_fn)(void *ctx, const struct sonde_listener_key *key,
			     const struct sonde_listener *value);

/* Walks proc (where procfs is mounted, normally "/proc"), skipping the
 * process skip_tgid (sonde itself). Returns how many (namespace, port)
 * pairs it passed to fn, or -errno when proc cannot be read or memory
 * runs out; processes that exit or deny access during the walk are
 * passed over. */
int listeners_scan(const char *proc, uint32_t skip_tgid, listeners_fn fn,
		   void *ctx);

#endif
