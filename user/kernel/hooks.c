#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "kernel/hooks.h"

/* Programs that serve several tracepoints: the one in their section,
 * then these. sock_io sees both directions of socket I/O and tells them
 * apart by the syscall; sys_exit_io the eight read and write syscalls;
 * sys_exit_accept both accepts. One program verified once instead of one
 * per tracepoint. */
static const struct {
	const char *program;
	const char *points[HOOKS_MAX_POINTS - 1];
} also_at[] = {
	{ "sock_io", { "sock/sock_send_length" } },
	{ "sys_exit_io",
	  { "syscalls/sys_exit_readv", "syscalls/sys_exit_recvfrom",
	    "syscalls/sys_exit_recvmsg", "syscalls/sys_exit_write",
	    "syscalls/sys_exit_writev", "syscalls/sys_exit_sendto",
	    "syscalls/sys_exit_sendmsg" } },
	{ "sys_exit_accept", { "syscalls/sys_exit_accept" } },
};

/* The socket hooks are raw tracepoints, whose sections name no
 * category. */
#define SOCK_CATEGORY "sock/"

enum hook_set hooks_set_of(const struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog);

	if (!strncmp(sec, "tracepoint/syscalls/", 20))
		return HOOKS_SYSCALL;
	if (!strcmp(sec, "raw_tracepoint/sock_recv_length") ||
	    !strcmp(sec, "raw_tracepoint/sock_send_length"))
		return HOOKS_SOCKET;
	return HOOKS_SHARED;
}

bool hooks_kernel_has_socket(const char *tracefs_dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/events/sock/sock_recv_length",
		 tracefs_dir);
	if (access(path, F_OK))
		return false;
	snprintf(path, sizeof(path), "%s/events/sock/sock_send_length",
		 tracefs_dir);
	return access(path, F_OK) == 0;
}

void hooks_load_only(struct bpf_object *obj, bool socket)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		enum hook_set set = hooks_set_of(prog);

		if (set != HOOKS_SHARED)
			bpf_program__set_autoload(
				prog,
				set == (socket ? HOOKS_SOCKET : HOOKS_SYSCALL));
	}
}

/* "sock/sock_recv_length" for the socket raw tracepoints: those are the
 * only raw tracepoints whose category is needed (--check). */
static const char *section_point(const char *sec)
{
	if (!strncmp(sec, "tracepoint/", 11))
		return sec + 11;
	if (!strcmp(sec, "raw_tracepoint/sock_recv_length"))
		return SOCK_CATEGORY "sock_recv_length";
	if (!strcmp(sec, "raw_tracepoint/sock_send_length"))
		return SOCK_CATEGORY "sock_send_length";
	return NULL;
}

int hooks_points(const struct bpf_program *prog, const char **points)
{
	const char *name = bpf_program__name(prog);
	const char *own = section_point(bpf_program__section_name(prog));
	int n = 0;

	if (!own)
		return 0;
	points[n++] = own;
	for (size_t i = 0; i < sizeof(also_at) / sizeof(also_at[0]); i++) {
		if (strcmp(also_at[i].program, name))
			continue;
		for (int j = 0;
		     j < HOOKS_MAX_POINTS - 1 && also_at[i].points[j]; j++)
			points[n++] = also_at[i].points[j];
	}
	return n;
}

/* Attaches prog to the tracepoint point ("category/name"). */
static struct bpf_link *attach_point(struct bpf_program *prog,
				     const char *point)
{
	const char *slash = strchr(point, '/');
	char category[64];

	if (bpf_program__type(prog) == BPF_PROG_TYPE_RAW_TRACEPOINT)
		return bpf_program__attach_raw_tracepoint(prog, slash + 1);
	snprintf(category, sizeof(category), "%.*s", (int)(slash - point),
		 point);
	return bpf_program__attach_tracepoint(prog, category, slash + 1);
}

int hooks_attach(struct bpf_program *prog, struct bpf_link **links, int *nlinks)
{
	const char *points[HOOKS_MAX_POINTS];
	int n = hooks_points(prog, points);

	*nlinks = 0;
	if (!n) {
		links[0] = bpf_program__attach(prog);
		if (!links[0])
			return -errno;
		*nlinks = 1;
		return 1;
	}
	for (int i = 0; i < n; i++) {
		links[i] = attach_point(prog, points[i]);
		if (!links[i])
			return -errno;
		*nlinks = i + 1;
	}
	return n;
}
