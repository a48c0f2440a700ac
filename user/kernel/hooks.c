#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "kernel/hooks.h"

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
