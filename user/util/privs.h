/* Capabilities: what sonde needs, checked at start; what it keeps after
 * the programs are attached.
 *
 *   CAP_BPF, CAP_PERFMON   load programs, attach tracepoints (start only)
 *   CAP_SYS_ADMIN          mount tracefs when missing (start only)
 *   CAP_SYS_PTRACE         pass the ptrace access check on
 *                          /proc/<pid>/environ and exe of other users'
 *                          processes, for service names (kept)
 *   CAP_DAC_READ_SEARCH    open /proc/<pid>/environ, mode 0400 and owned
 *                          by the process's user (kept)
 *
 * CAP_SYS_ADMIN also stands in for CAP_BPF and CAP_PERFMON on kernels
 * before 5.8 and wherever it is granted.
 *
 * Capabilities belong to each thread, and a new thread starts with its
 * creator's. The HTTP server starts before the programs load, from a
 * thread that first drops everything (privs_drop_thread), so its own
 * thread never holds a capability. With OpenSSL tracing on, one thread
 * (uprobes.c) keeps CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN to attach to
 * libraries that processes started later bring. The main thread drops
 * them after attaching (privs_drop_after_attach), before it starts the
 * OTLP exporter. */
#ifndef SONDE_PRIVS_H
#define SONDE_PRIVS_H

#include <stdbool.h>

#include "util/strbuf.h"

/* Returns 0 when the effective set allows loading and attaching (CAP_BPF
 * and CAP_PERFMON, or CAP_SYS_ADMIN); otherwise logs one line naming each
 * missing capability and returns -EPERM. Warns (no error) when one of the
 * capabilities kept for service names is missing. */
int privs_check(void);

/* After attaching: drops every capability of the calling thread but
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (when held) from the effective,
 * permitted, inheritable, ambient and bounding sets, and sets
 * no_new_privs. Threads started before it keep what they had: start them
 * from a thread that dropped its own (privs_drop_thread) or have them drop
 * theirs. Returns 0, or -errno after logging. */
int privs_drop_after_attach(void);

/* For the uprobe discovery thread, which attaches to libraries found in
 * processes started later: drops every capability of the calling thread
 * but CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN (uprobe perf events need it),
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, and sets no_new_privs. Call on that thread before privs_drop_after_attach
 * runs on the main one. Returns 0, or -errno after logging. */
int privs_keep_for_uprobes(void);

/* Drops every capability of the calling thread from all its sets and
 * sets no_new_privs: threads it creates afterwards start with nothing
 * (the HTTP server's, the OTLP exporter's). The bounding set is left as
 * it is when the thread can no longer change it. Returns 0 or -errno. */
int privs_drop_thread(void);

/* Appends "CAP_X CAP_Y" for the effective capabilities sonde cares about
 * and returns whether those needed to start are present; for --check. */
bool privs_describe(struct strbuf *sb);

#endif
