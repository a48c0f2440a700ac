// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Another tool's BPF program that runs long: each getppid() of a process
 * named busy_bpf spins here for a few milliseconds. While it runs, the
 * kernel skips every other tracepoint program on that CPU (one BPF program
 * at a time per CPU), such as sonde's on a TCP timer that fires meanwhile.
 * Built and loaded by test_self_metrics.py through busy_bpf.c. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static long step(__u32 i, void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int busy(void *ctx)
{
	const char name[] = "busy_bpf";
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < sizeof(name); i++)
		if (comm[i] != name[i])
			return 0;
	bpf_loop(1 << 22, step, NULL, 0);
	return 0;
}
