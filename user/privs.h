/* Capabilities: what sonde needs, checked at start; what it keeps after
 * the programs are attached.
 *
 *   CAP_BPF, CAP_PERFMON   load programs, attach tracepoints (start only)
 *   CAP_SYS_ADMIN          mount tracefs when missing (start only)
 *   CAP_SYS_PTRACE         read /proc/<pid>/environ and exe of processes
 *                          of other users, for service names (kept)
 *
 * CAP_SYS_ADMIN also stands in for CAP_BPF and CAP_PERFMON on kernels
 * before 5.8 and wherever it is granted. */
#ifndef SONDE_PRIVS_H
#define SONDE_PRIVS_H

#include <stdbool.h>

#include "strbuf.h"

/* Returns 0 when the effective set allows loading and attaching (CAP_BPF
 * and CAP_PERFMON, or CAP_SYS_ADMIN); otherwise logs one line naming each
 * missing capability and returns -EPERM. Warns (no error) when
 * CAP_SYS_PTRACE is missing. */
int privs_check(void);

/* After attaching: drops every capability but CAP_SYS_PTRACE from the
 * effective, permitted, inheritable, ambient and bounding sets, and sets
 * no_new_privs. Must run before any other thread is started (capabilities
 * are per thread; threads inherit them). Returns 0, or -errno after
 * logging. */
int privs_drop_after_attach(void);

/* Drops every capability of the calling thread (the HTTP server's thread
 * needs none). Returns 0 or -errno. */
int privs_drop_thread(void);

/* Appends "CAP_X CAP_Y" for the effective capabilities sonde cares about
 * and returns whether those needed to start are present; for --check. */
bool privs_describe(struct strbuf *sb);

#endif
