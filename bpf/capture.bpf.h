/* State private to capture.bpf.c: connection tracking and syscall
 * arguments. Not shared with the daemon beyond map sizes. */
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

/* x86-64 syscall numbers (the only vmlinux.h shipped): the socket hooks
 * learn from the saved registers which syscall moved the bytes. */
#define NR_read 0
#define NR_write 1
#define NR_readv 19
#define NR_writev 20
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47

#define SONDE_MAX_PROCS 16384
/* Selection verdicts, one byte per process: 64k live processes is more
 * than hosts we know run; LRU beyond it. */
#define SONDE_MAX_VERDICTS 65536
#define SONDE_MAX_PORT_RULES 256
/* Threads inside an OpenSSL read or write at once, and SSL objects whose
 * socket is known. */
#define SONDE_MAX_TLS_CALLS 16384
#define SONDE_MAX_TLS_SESSIONS 32768
/* Threads inside a --uprobe function at once. */
#define SONDE_MAX_FUNC_CALLS 16384
/* The shared ring: TCP and process events, and exchanges when a CPU has no
 * ring of its own. */
#define SONDE_RINGBUF_BYTES (1 << 20)
/* Exchanges go to a ring per CPU (the daemon sizes them: see
 * capture_cpu_ring_bytes), so that producers on different CPUs do not
 * contend for one ring's positions. This size is only the template's. */
#define SONDE_CPU_RING_TEMPLATE_BYTES (256 << 10)
/* Bytes looked at to classify a buffer: a method token or a status line.
 * A client's capture (SONDE_CLIENT_REQ_CAP) and a status line
 * (SONDE_RESP_CAP) are one peek. */
#define SONDE_PEEK 16
/* "HTTP/1.1 200": what a status line needs to be recognised. */
#define SONDE_STATUS_LEN 12
_Static_assert(SONDE_CLIENT_REQ_CAP <= SONDE_PEEK &&
		       SONDE_RESP_CAP <= SONDE_PEEK,
	       "a client's request and a status line are copied from a peek");
/* Bytes searched for the end of an interim (1xx) head, and how many heads
 * (interim ones, then the final one) are looked at in one write. */
#define SONDE_HEAD_PEEK 128
#define SONDE_MAX_HEADS 2

/* A connection's role is a sonde_role; ROLE_UNKNOWN: found lazily,
 * nothing seen yet. */
#define ROLE_UNKNOWN SONDE_ROLE_UNKNOWN
#define ROLE_SERVER SONDE_ROLE_SERVER
#define ROLE_CLIENT SONDE_ROLE_CLIENT

enum conn_phase {
	PHASE_IDLE = 0,
	PHASE_REQUEST,	/* request bytes seen, no response head yet */
	PHASE_RESPONSE, /* response head seen */
};

enum h2_state {
	H2_NO = 0,     /* HTTP/1, or nothing seen yet */
	H2_FOLLOWED,   /* began with the preface; frames followed */
	H2_UNFOLLOWED, /* a frame or a record was lost: ignored */
};

/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 section 3.4); its first
 * 16 bytes fill a peek. */
#define H2_PREFACE_LEN 24
#define H2_FRAME_HEADER 9
/* Room for a frame header's bytes: at most 8 kept from before, then at
 * most 8 more; a power of two the verifier can bound. */
#define H2_FRAME_HEADER_ROOM 16
/* Steps (a frame header, a payload piece forwarded or skipped) one read or
 * write may take; a buffer holding more frames than that loses the
 * connection, counted. */
#define H2_MAX_STEPS 512
/* Buffers of one readv or writev followed: the kernel's own limit
 * (UIO_MAXIOV), so none is too many. */
#define H2_MAX_IOVECS 1024

enum io_how {
	IO_PLAIN = 0, /* the buffer argument is the data */
	IO_IOVEC,     /* it is a struct iovec array */
	IO_MSGHDR,    /* it is a struct user_msghdr */
};

/* Who owns a TCP socket, so that events raised in softirq context (a
 * SYN-ACK or a reset arriving, a retransmit timer) can be attributed. */
struct sock_owner {
	__u64 syn_ns; /* SYN sent, while a client connects */
	/* 0: accepted, no process has used it yet, and no listener known */
	__u32 tgid;
	__u32 fd; /* the owner's fd for it, once it has read or written */
	/* The peer's port: an entry whose port is not the socket's is a
	 * freed socket's, whose close the kernel ran while another BPF
	 * program held the CPU (missed: sonde_program_recursion_misses),
	 * found again in reused memory. */
	__u16 dport;
	__u8 role;   /* enum sonde_role */
	__u8 active; /* counted as an active connection by the daemon */
	__u8 closed; /* reached TCP_CLOSE: a reset may still follow */
	/* Accepted, no process has used it yet: tgid is the listener's
	 * (struct sonde_listener), until the first process to use it. */
	__u8 by_listener;
	__u8 pad[2];
	char comm[SONDE_COMM_LEN];
};

struct conn_key {
	__u32 tgid;
	__u32 fd;
};

struct conn {
	__u64 sk;	/* struct sock *: names the connection; first, for
			 * capture_conn_open */
	__u64 file;	/* struct file *: fd reuse, under syscall hooks */
	__u64 start_ns; /* exchange start */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 req_len;
	__u8 role;
	__u8 phase;
	__u8 pipeline_idx;
	__u8 process_noted; /* its process is in the procs map */
	__u8 tls; /* OpenSSL carries it: the syscalls see only ciphertext */
	__u8 resp_part_len; /* bytes in resp_part */
	__u8 h2;	    /* enum h2_state */
	__u8 pad;
	/* The name of the task that first used the connection, for its
	 * exchanges: here it shares a cache line each exchange reads
	 * anyway, where the task's own copy is usually a cache miss. */
	char comm[SONDE_COMM_LEN];
	/* HTTP/2. Arrays are per direction (index 0: bytes the client
	 * sends): records sent, the frame being read, how much of its
	 * payload is still to come, and a frame header cut short by the end
	 * of a read or write. */
	__u64 h2_since;	 /* sonde_h2_event.since */
	__u32 h2_seq[2]; /* records sent (sonde_h2_event.seq) */
	/* Bytes of the current read or write walked so far: kept here, not
	 * on the stack, so that the verifier sees bpf_loop's steps alike. */
	__u32 h2_pos;
	__u32 h2_left[2];
	__u32 h2_len[2];
	__u32 h2_stream[2];
	__u8 h2_type[2];
	__u8 h2_flags[2];
	__u8 h2_part_len[2];
	__u8 h2_pad[2];
	char h2_part[2][H2_FRAME_HEADER_ROOM];
	/* The start of a status line that came in pieces shorter than one
	 * ("HTTP/1.1 2"), or read a byte at a time: kept until it is whole. */
	char resp_part[SONDE_STATUS_LEN];
	/* The capture is the first SONDE_REQ_CAP bytes. The second half lets
	 * the verifier see that a copy of at most SONDE_REQ_CAP bytes at an
	 * offset below SONDE_REQ_CAP stays in bounds; a server reads the
	 * start of a new request there before it becomes the capture. */
	char req[2 * SONDE_REQ_CAP];
};

#endif
