/* The two sets of read and write hooks in bpf/capture.bpf.c, socket and
 * syscall tracepoints: which programs belong to which, where each program
 * attaches (one program serves several tracepoints), and whether the
 * kernel has the socket ones. sonde's loader and the benchmark's floor
 * choose the same way. */
#ifndef SONDE_HOOKS_H
#define SONDE_HOOKS_H

#include <stdbool.h>

struct bpf_link;
struct bpf_object;
struct bpf_program;

enum hook_set {
	HOOKS_SHARED,  /* not a read or write hook: both sets need it */
	HOOKS_SOCKET,  /* raw_tracepoint/sock_{recv,send}_length */
	HOOKS_SYSCALL, /* tracepoint/syscalls/... */
};

/* Tracepoints one program attaches to at most. */
#define HOOKS_MAX_POINTS 8

/* The set prog belongs to, from its section name. */
enum hook_set hooks_set_of(const struct bpf_program *prog);

/* Whether tracefs at tracefs_dir has both socket tracepoints (Linux 6.3
 * on). */
bool hooks_kernel_has_socket(const char *tracefs_dir);

/* Before load: only the socket set (socket) or only the syscall set of obj
 * is loaded; the other programs are left as they were. */
void hooks_load_only(struct bpf_object *obj, bool socket);

/* The tracepoints prog attaches to, as "category/name" ("sock/
 * sock_recv_length", "syscalls/sys_exit_read"), into points (room for
 * HOOKS_MAX_POINTS; static strings). Returns how many: those its section
 * names, plus the others a program serving several has; 0 for one that
 * is not a tracepoint's (uprobes). */
int hooks_points(const struct bpf_program *prog, const char **points);

/* Attaches the loaded prog to each of its tracepoints (hooks_points), or
 * as its section says when it has none of its own (uprobes are not
 * attached here). Fills links (room for HOOKS_MAX_POINTS) and returns how
 * many; on a failure returns -errno with the links made so far in links
 * (*nlinks of them), for the caller to keep or destroy. */
int hooks_attach(struct bpf_program *prog, struct bpf_link **links,
		 int *nlinks);

#endif
