// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The floor for benchmarks: empty programs on exactly the tracepoints
 * capture.bpf.c uses, attached the same way, and on the OpenSSL functions
 * sonde probes. What a workload loses with these attached is the cost any
 * design built on these hooks pays; tools/bench.py compares sonde's loss
 * against it. Like sonde, tools/floor.c loads the socket read and write
 * hooks or the syscall ones, not both. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EMPTY_AT(sec, line) EMPTY_(sec, line)
#define EMPTY_(sec, line)           \
	SEC(sec)                    \
	int floor_##line(void *ctx) \
	{                           \
		return 0;           \
	}
#define FLOOR(sec) EMPTY_AT(sec, __LINE__)

/* sonde attaches the socket hooks as raw tracepoints. */
FLOOR("raw_tracepoint/sock_recv_length")
FLOOR("raw_tracepoint/sock_send_length")

FLOOR("tracepoint/syscalls/sys_exit_read")
FLOOR("tracepoint/syscalls/sys_exit_readv")
FLOOR("tracepoint/syscalls/sys_exit_recvfrom")
FLOOR("tracepoint/syscalls/sys_exit_recvmsg")
FLOOR("tracepoint/syscalls/sys_exit_write")
FLOOR("tracepoint/syscalls/sys_exit_writev")
FLOOR("tracepoint/syscalls/sys_exit_sendto")
FLOOR("tracepoint/syscalls/sys_exit_sendmsg")
FLOOR("tracepoint/syscalls/sys_exit_accept")
FLOOR("tracepoint/syscalls/sys_exit_accept4")
FLOOR("tracepoint/syscalls/sys_exit_connect")
FLOOR("tracepoint/syscalls/sys_enter_close")
FLOOR("tracepoint/sched/sched_process_exit")
FLOOR("tracepoint/sched/sched_process_exec")
FLOOR("tracepoint/sock/inet_sock_set_state")
FLOOR("tracepoint/tcp/tcp_retransmit_skb")
FLOOR("tracepoint/tcp/tcp_send_reset")
FLOOR("tracepoint/tcp/tcp_receive_reset")
FLOOR("tracepoint/tcp/tcp_destroy_sock")

/* Placed by tools/floor.c with --tls, where sonde places its OpenSSL
 * probes (user/sslprobe.c): the price of the uprobe traps alone. */
SEC("uprobe")
int floor_ssl_entry(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int floor_ssl_exit(void *ctx)
{
	return 0;
}
