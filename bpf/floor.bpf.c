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

#define EMPTY_AT(tp, line) EMPTY_(tp, line)
#define EMPTY_(tp, line)            \
	SEC("tracepoint/" tp)       \
	int floor_##line(void *ctx) \
	{                           \
		return 0;           \
	}
#define FLOOR(tp) EMPTY_AT(tp, __LINE__)

/* sonde attaches the socket hooks as raw tracepoints. */
SEC("raw_tracepoint/sock_recv_length")
int floor_sock_recv(void *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sock_send_length")
int floor_sock_send(void *ctx)
{
	return 0;
}

FLOOR("syscalls/sys_exit_read")
FLOOR("syscalls/sys_exit_readv")
FLOOR("syscalls/sys_exit_recvfrom")
FLOOR("syscalls/sys_exit_recvmsg")
FLOOR("syscalls/sys_exit_write")
FLOOR("syscalls/sys_exit_writev")
FLOOR("syscalls/sys_exit_sendto")
FLOOR("syscalls/sys_exit_sendmsg")
FLOOR("syscalls/sys_exit_accept")
FLOOR("syscalls/sys_exit_accept4")
FLOOR("syscalls/sys_exit_connect")
FLOOR("syscalls/sys_enter_close")
FLOOR("sched/sched_process_exit")
FLOOR("sched/sched_process_exec")
FLOOR("sock/inet_sock_set_state")
FLOOR("tcp/tcp_retransmit_skb")
FLOOR("tcp/tcp_send_reset")
FLOOR("tcp/tcp_receive_reset")
FLOOR("tcp/tcp_destroy_sock")

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
