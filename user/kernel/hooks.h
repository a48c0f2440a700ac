/* The two sets of read and write hooks in bpf/capture.bpf.c, socket and
 * syscall tracepoints: which programs belong to which, and whether the
 * kernel has the socket ones. sonde's loader and the benchmark's floor
 * choose the same way. */
#ifndef SONDE_HOOKS_H
#define SONDE_HOOKS_H

#include <stdbool.h>

struct bpf_object;
struct bpf_program;

enum hook_set {
	HOOKS_SHARED,  /* not a read or write hook: both sets need it */
	HOOKS_SOCKET,  /* raw_tracepoint/sock_{recv,send}_length */
	HOOKS_SYSCALL, /* tracepoint/syscalls/... */
};

/* The set prog belongs to, from its section name. */
enum hook_set hooks_set_of(const struct bpf_program *prog);

/* Whether tracefs at tracefs_dir has both socket tracepoints (Linux 6.3
 * on). */
bool hooks_kernel_has_socket(const char *tracefs_dir);

/* Before load: only the socket set (socket) or only the syscall set of obj
 * is loaded; the other programs are left as they were. */
void hooks_load_only(struct bpf_object *obj, bool socket);

#endif
