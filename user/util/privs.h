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
 * With OpenSSL tracing on, one thread (uprobes.c) keeps CAP_BPF,
 * CAP_PERFMON and CAP_SYS_ADMIN to attach to libraries that processes
 * started later bring; the main and HTTP threads drop them as above. */
#ifndef SONDE_PRIVS_H
#define SONDE_PRIVS_H

#include <stdbool.h>

#include "util/strbuf.h"

/* Returns 0 when the effective set allows loading and attaching (CAP_BPF
 * and CAP_PERFMON, or CAP_SYS_ADMIN); otherwise logs one line naming each
 * missing capability and returns -EPERM. Warns (no error) when one of the
 * capabilities kept for service names is missing. */
int privs_check(void);

/* After attaching: drops every capability but CAP_SYS_PTRACE and
 * CAP_DAC_READ_SEARCH (when held) from the effective, permitted,
 * inheritable, ambient and bounding sets, and sets
 * no_new_privs. Must run before any other thread is started (capabilities
 * are per thread; threads inherit them). Returns 0, or -errno after
 * logging. */
int privs_drop_after_attach(void);

/* For the uprobe discovery thread, which attaches to libraries found in
 * processes started later: drops every capability of the calling thread
 * but CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN (uprobe perf events need it),
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, and sets no_new_privs. Call on that thread before privs_drop_after_attach
 * runs on the main one. Returns 0, or -errno after logging. */
int privs_keep_for_uprobes(void);

/* Drops every capability of the calling thread (the HTTP server's thread
 * needs none). Returns 0 or -errno. */
int privs_drop_thread(void);

/* Appends "CAP_X CAP_Y" for the effective capabilities sonde cares about
 * and returns whether those needed to start are present; for --check. */
bool privs_describe(struct strbuf *sb);

#endif
