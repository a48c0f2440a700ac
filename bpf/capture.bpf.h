/* Constants the BPF objects share (capture.bpf.c, and the benchmark's
 * floor.bpf.c, which hooks where capture does). Not seen by the daemon:
 * what it shares with BPF is in include/sonde_events.h. */
#ifndef SONDE_CAPTURE_BPF_H
#define SONDE_CAPTURE_BPF_H

/* vmlinux.h carries types, not macros. */
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define E2BIG 7
#define EEXIST 17
#define EAGAIN 11
#define MSG_PEEK 2
/* task_struct.flags: kernel threads, and io_uring's workers, whose saved
 * user registers are not a syscall's. */
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD 0x00200000

/* x86-64 syscall numbers (the only vmlinux.h shipped): the read and write
 * hooks learn from them which syscall moved the bytes. */
#define NR_read 0
#define NR_write 1
#define NR_readv 19
#define NR_writev 20
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47

#define SONDE_MAX_PROCS 16384
/* Identities of exited processes the daemon had not named (struct
 * sonde_exit_identity, 10 KiB each): the ones it has yet to read records
 * of. LRU beyond it. */
#define SONDE_MAX_EXIT_IDS 64
/* Selection verdicts, one byte per process: 64k live processes is more
 * than hosts we know run; LRU beyond it. */
#define SONDE_MAX_VERDICTS 65536
#define SONDE_MAX_PORT_RULES 256
/* SSL objects whose socket is known (each thread's OpenSSL call lives in
 * the thread's own storage, with no bound of its own). */
#define SONDE_MAX_TLS_SESSIONS 32768
/* Go crypto/tls Reads in progress at once (one per goroutine). */
#define SONDE_MAX_GO_READS 16384
/* Threads inside a --uprobe function at once. */
#define SONDE_MAX_FUNC_CALLS 16384
/* The shared ring: TCP and process events, HTTP/2 header pieces and
 * database bytes (whose order across CPUs matters), and wakeups. 4 MiB
 * holds a few hundred milliseconds of a busy Redis's commands and
 * replies at both ends while the daemon waits for a CPU. */
#define SONDE_RINGBUF_BYTES (1 << 20)
/* Exchanges go to a ring per CPU (the daemon sizes them: see
 * capture_cpu_ring_bytes), so that producers on different CPUs do not
 * contend for one ring's positions. This size is only the template's. */
#define SONDE_CPU_RING_TEMPLATE_BYTES (256 << 10)
/* Bytes looked at to classify a connection, or to tell a request line or
 * a status line: a method token or "HTTP/1.1 200 OK". A client's capture
 * (SONDE_CLIENT_REQ_CAP) and a status line (SONDE_RESP_CAP) are one
 * peek. */
#define SONDE_PEEK 16
_Static_assert(SONDE_CLIENT_REQ_CAP <= SONDE_PEEK &&
		       SONDE_RESP_CAP <= SONDE_PEEK,
	       "a client's request and a status line are copied from a peek");

/* A connection's role is a sonde_role; ROLE_UNKNOWN: found lazily,
 * nothing seen yet. */
#define ROLE_UNKNOWN SONDE_ROLE_UNKNOWN
#define ROLE_SERVER SONDE_ROLE_SERVER
#define ROLE_CLIENT SONDE_ROLE_CLIENT

/* The kernel's numeric iterator (6.4 on): the verifier checks the loop's
 * body once for any i, where a loop it unrolls (one state per step, each
 * step's branches pending) stops near a thousand bytes. */
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

#endif
