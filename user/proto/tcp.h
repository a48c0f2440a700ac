/* TCP lifecycle events from the kernel in (struct sonde_tcp_event), the
 * TCP families out: connect durations and results, resets, retransmits
 * and the active-connection gauge: the protocol proto_tcp (tcp.c). */
#ifndef SONDE_TCP_H
#define SONDE_TCP_H

/* The result label of a connect that ended with the socket error err
 * (positive errno; 0 for success): "ok", "refused", "timeout",
 * "unreachable", "aborted" (err 0 on a connect that never established:
 * the client closed it first), or "other". */
const char *tcp_connect_result(int err, int established);

#endif
