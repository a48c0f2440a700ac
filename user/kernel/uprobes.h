/* Uprobe targets: user functions named with --uprobe BINARY:SYMBOL, and
 * the TLS libraries that processes on the host use: OpenSSL (shared
 * libssl, or executables that carry it statically) and Go's crypto/tls
 * (in Go executables, stripped or not).
 *
 * A uprobe belongs to a file, not to a process: the kernel places it in
 * every process that maps the file. So each distinct file (device, inode)
 * is attached once, whichever processes and paths (containers) it is seen
 * through. They are found by scanning /proc/<pid>/maps and
 * /proc/<pid>/exe at start, after each exec and every 30 s; a file no
 * process maps any more is detached (the system's own libssl stays
 * attached, for processes that load it later). Attach failures are per
 * target: counted, logged with -v (a Go executable sonde cannot trace
 * is named in the log without -v), never fatal. */
#ifndef SONDE_UPROBES_H
#define SONDE_UPROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --uprobe flags accepted at most. */
#define UPROBES_MAX_FUNCTIONS 64

struct bpf_object;

/* Resolves "BINARY:SYMBOL" (the binary may be a path or a name looked up
 * in PATH) to a file offset and remembers it as the next function target.
 * Returns 0, or -1 with a one-line reason in err (no such file, not ELF,
 * no such function, too many targets). Call before uprobes_start. */
int uprobes_add_function(const char *spec, char *err, size_t errsz);

/* Attaches every function target, and, when tls is set and obj has the
 * OpenSSL programs, every OpenSSL file found in running processes; then
 * starts the discovery thread, which keeps CAP_BPF, CAP_PERFMON and
 * CAP_SYS_ADMIN to attach later (see privs_keep_for_uprobes). Call before capabilities are
 * dropped. Returns 0, or -errno when the thread cannot start (logged). */
int uprobes_start(struct bpf_object *obj, bool tls);

/* The symbol of the id-th --uprobe function target (a call record's
 * func_id), or NULL when there is no such target. Static storage, set
 * before uprobes_start. */
const char *uprobes_function_symbol(uint32_t id);

/* A process exec'd: its libraries are looked at shortly after. Any
 * thread; never blocks for long. */
void uprobes_note_exec(uint32_t tgid);

/* Registers sonde_uprobe_attached, sonde_uprobe_attach_failures_total and
 * sonde_uprobe_exec_scans_dropped_total (metrics/self.h). Call once at
 * start-up. */
void uprobes_register_metrics(void);

/* Stops the discovery thread and detaches everything; safe to call
 * twice. */
void uprobes_stop(void);

/* Parses one line of /proc/<pid>/maps. Sets *dev, *ino and path (the
 * mapped file's path, or "" for anonymous mappings) and returns 0, or -1
 * for a line it cannot read. Exposed for tests. */
int uprobes_parse_maps_line(const char *line, uint64_t *dev, uint64_t *ino,
			    char *path, size_t pathsz);

/* True when path names an OpenSSL libssl shared object
 * ("/usr/lib/x86_64-linux-gnu/libssl.so.3"). Exposed for tests. */
bool uprobes_is_libssl(const char *path);

#endif
