/* Structures shared by the BPF programs (bpf/) and the daemon (user/).
 * Only fixed-width kernel types and fixed arrays, largest fields first, so
 * both compilers lay them out the same way; the daemon checks the sizes of
 * the maps it reads against these at start-up. */
#ifndef SONDE_EVENTS_H
#define SONDE_EVENTS_H

/* BPF objects get the __u* types from vmlinux.h. */
#ifndef __bpf__
#include <linux/types.h>
#endif

/* Bytes of the request kept per server exchange. 256 holds a request line
 * with a long path plus a few pipelined heads; a power of two so a mask
 * bounds the copy for the verifier. */
#define SONDE_REQ_CAP 256
/* A client's series need only the method: the first bytes of what it
 * wrote. With traces on, a client keeps SONDE_REQ_CAP bytes, as a server
 * does, for the traceparent a request may carry. */
#define SONDE_CLIENT_REQ_CAP 16
/* Bytes of the final status line sent per exchange ("HTTP/1.1 200 OK"):
 * the daemon reads the code. Interim 1xx heads are skipped in BPF. */
#define SONDE_RESP_CAP 16
#define SONDE_COMM_LEN 16
/* Connections the maps hold by default: 32768 at about 700 bytes of
 * kernel memory each is 22 MiB, enough for a busy front end; LRU evicts
 * the idlest beyond it. The daemon sizes conns, socks and tls_fds from
 * --max-tracked-connections, whose default this is. */
#define SONDE_MAX_CONNS 32768
/* Listening sockets the "listeners" map holds (struct sonde_listener). */
#define SONDE_MAX_LISTENERS 4096

enum sonde_event_kind {
	SONDE_EV_HTTP_EXCHANGE = 1,
	SONDE_EV_PROCESS_EXIT = 2,
	SONDE_EV_PROCESS_EXEC = 3,
	SONDE_EV_TCP = 4,
	SONDE_EV_PROCESS_SEEN = 5, /* first syscall of a process not decided */
	SONDE_EV_HTTP2 = 6,	   /* a piece of an HTTP/2 header block */
	SONDE_EV_DB = 7,	   /* bytes of a database connection */
	SONDE_EV_TRACE_INJECT = 8, /* a traceparent was added to a request */
	SONDE_EV_DB_CALL = 9,	   /* a Redis call followed whole in BPF */
	/* Calls the BPF side summed itself (struct sonde_db_sums_event):
	 * made by the daemon from the db_sums map, never on a ring. */
	SONDE_EV_DB_SUMS = 10,
	/* Kinds from 16 on come from uprobes (bpf/uprobe.bpf.h). */
	SONDE_EV_FUNC_CALL = 16,
};

/* What a connection's bytes were classified as, once, from the first ones
 * seen (bpf/proto/proto.bpf.h). Indexes the per-CPU "classified" array;
 * names in user/kernel/capture.c. A TLS connection whose plaintext sonde
 * reads through OpenSSL is classified twice: TLS for its ciphertext,
 * then its plaintext's protocol. */
enum sonde_proto {
	SONDE_PROTO_NONE = 0, /* nothing seen yet */
	SONDE_PROTO_HTTP1,
	SONDE_PROTO_HTTP2,
	SONDE_PROTO_TLS,     /* ciphertext: never parsed from the socket */
	SONDE_PROTO_UNKNOWN, /* no protocol claimed it: ignored from then on */
	SONDE_PROTO_POSTGRESQL,
	SONDE_PROTO_MYSQL,
	SONDE_PROTO_REDIS,
	SONDE_PROTO_MEMCACHED,
	SONDE_PROTO_COUNT,
};

/* Per-process verdicts of the process selection (user/selection.h), the
 * values of the "verdicts" map; absent means not decided yet. */
enum sonde_verdict {
	SONDE_VERDICT_PENDING = 0, /* reported, the daemon is deciding */
	SONDE_VERDICT_TRACE = 1,
	SONDE_VERDICT_PORTS_ONLY = 2, /* only connections on included ports */
	SONDE_VERDICT_IGNORE = 3,
};

/* Values of the "select_ports" map, keyed by local port. */
enum sonde_port_rule {
	SONDE_PORT_INCLUDE = 1,
	SONDE_PORT_EXCLUDE = 2,
};

/* Why an event or a piece of state was lost in the kernel. Indexes the
 * per-CPU "drops" array; names in user/capture.c. */
enum sonde_drop_reason {
	SONDE_DROP_RINGBUF_FULL = 0, /* bpf_ringbuf_reserve failed */
	SONDE_DROP_CONN_FULL,	     /* connection map insert failed */
	SONDE_DROP_PROC_FULL,	     /* process map insert failed */
	SONDE_DROP_SOCK_FULL,	     /* socket owner map insert failed */
	SONDE_DROP_TLS_NO_SOCKET,    /* TLS plaintext, socket never seen */
	SONDE_DROP_HTTP2_UNFOLLOWED, /* an HTTP/2 connection's frames lost */
	SONDE_DROP_RING_BUSY,	     /* the CPU's ring was mid-record */
	SONDE_DROP_REASON_COUNT,
};

/* Exchange rings: one per CPU, each a value of two arrays the daemon maps
 * into its memory (BPF_F_MMAPABLE). The "ring_pos" value of a CPU holds
 * its positions, counted in bytes since the start; the "ring_data" value
 * holds the bytes, a power of two of them plus SONDE_RING_SLACK, so the
 * one record that crosses the end each time round is written whole past
 * it (and read from there). A record is a __u32 length, 4 bytes of
 * padding, then the length's bytes, padded to 8. */
struct sonde_ring_pos {
	__u64 producer; /* written by the BPF programs */
	__u64 consumer; /* written by the daemon */
	__u64 busy;	/* a program on this CPU is writing a record */
	__u64 pad[5];	/* a cache line each */
};

#define SONDE_RING_REC_HDR 8
/* Also the largest a record may be, header included: a database record
 * of SONDE_DB_DATA_CAP bytes fits. */
#define SONDE_RING_SLACK 8192
/* Ring bytes a record of size bytes takes: header, record, padding. */
#define SONDE_RING_RECORD_BYTES(size) \
	((SONDE_RING_REC_HDR + (__u64)(size) + 7) & ~7ULL)

/* Every ring-buffer record starts with this header. */
struct sonde_event_header {
	__u64 ts_ns; /* bpf_ktime_get_ns() when the event was made */
	__u32 tgid;
	__u16 kind; /* enum sonde_event_kind */
	__u16 pad;
};

/* Which side of the connection the traced process is on. */
enum sonde_role {
	SONDE_ROLE_UNKNOWN = 0,
	SONDE_ROLE_SERVER = 1, /* it accepted the connection */
	SONDE_ROLE_CLIENT = 2, /* it connected */
};

/* One request/response exchange. On the server side it starts when the
 * first request bytes are read and ends when the response head is written;
 * on the client side it starts when the first request bytes are written
 * and ends when the response head is read. pipeline_idx is how many
 * responses were already reported for the request bytes in req: pipelined
 * requests share the capture, and the idx-th head in req belongs to this
 * response.
 *
 * The record ends with req and is only as long as req_len needs, rounded
 * up to one of a few sizes (SONDE_EXCHANGE_BYTES): a short request does not
 * carry 256 bytes of nothing through the ring. The bytes of req beyond the
 * record's end are not there. */
struct sonde_http_event {
	struct sonde_event_header hdr;
	__u64 start_ns; /* first request bytes read (server) or written */
	__u64 end_ns;	/* response head written (server) or read */
	__u8 saddr[16]; /* local address (IPv4 in the first 4 bytes) */
	__u8 daddr[16]; /* peer address */
	__u32 fd;
	__u32 tid;	/* the thread that ended the exchange (for spans) */
	__u16 sport;	/* local port, host order */
	__u16 dport;	/* peer port, host order */
	__u16 family;	/* AF_INET or AF_INET6 */
	__u16 req_len;	/* bytes valid in req */
	__u16 resp_len; /* bytes valid in resp */
	__u8 pipeline_idx;
	__u8 role; /* enum sonde_role: server or client */
	char comm[SONDE_COMM_LEN];
	char resp[SONDE_RESP_CAP]; /* the final status line */
	char req[SONDE_REQ_CAP];
};

/* Size of an exchange record whose req holds req_room bytes. */
#define SONDE_EXCHANGE_BYTES(req_room) \
	(__builtin_offsetof(struct sonde_http_event, req) + (req_room))

/* What happened to a TCP socket (sonde_tcp_event.what). */
enum sonde_tcp_what {
	SONDE_TCP_CONNECT = 1, /* a connect finished: err 0, or why it failed */
	SONDE_TCP_OPEN,	       /* an accepted connection is established */
	SONDE_TCP_CLOSE,       /* a counted connection left ESTABLISHED */
	SONDE_TCP_RESET,       /* detail: SONDE_TCP_RESET_SENT or _RECEIVED */
	SONDE_TCP_RETRANSMIT,  /* a segment was sent again */
};

#define SONDE_TCP_CONNECT_FAILED 0
#define SONDE_TCP_CONNECT_ESTABLISHED 1
#define SONDE_TCP_RESET_SENT 0
#define SONDE_TCP_RESET_RECEIVED 1

/* A TCP lifecycle event, attributed to the process that owns the socket
 * (it connected or accepted it) even when the kernel raised it in softirq
 * context: hdr.tgid and comm are the owner's. */
struct sonde_tcp_event {
	struct sonde_event_header hdr;
	__u64 sk;	   /* struct sock *: pairs OPEN/CONNECT with CLOSE */
	__u64 duration_ns; /* CONNECT: SYN sent to the connect's outcome */
	__u8 daddr[16];	   /* peer address (IPv4 in the first 4 bytes) */
	__s32 err;    /* CONNECT: the socket's error, 0 when it succeeded */
	__u16 dport;  /* peer port, host order */
	__u16 family; /* AF_INET or AF_INET6 */
	__u8 what;    /* enum sonde_tcp_what */
	__u8 detail;  /* CONNECT: outcome; RESET: direction */
	__u8 role;    /* enum sonde_role of the owner */
	__u8 pad[5];
	char comm[SONDE_COMM_LEN];
};

/* Under socket hooks, the "listeners" map: a listening TCP socket's
 * network namespace and local port -> the process that made it listen.
 * An accepted connection is charged to that process from its passive
 * open until a process reads or writes it. The BPF side enters a listener
 * when a socket moves to LISTEN; the daemon enters those that already
 * listen when it starts (user/listeners.c). */
struct sonde_listener_key {
	__u32 netns; /* the namespace's inode number */
	__u16 port;  /* local port, host order */
	__u16 pad;
};

struct sonde_listener {
	__u32 tgid;    /* the last process to make one of them listen */
	__u32 sockets; /* listening sockets on this key (SO_REUSEPORT) */
	char comm[SONDE_COMM_LEN];
};

/* HTTP/2 (RFC 9113) on a connection that began with the client's
 * preface: the BPF side follows the frames in each direction and sends
 * the payloads of HEADERS, CONTINUATION and PUSH_PROMISE frames (the
 * header blocks the daemon's HPACK decoder needs, in order) and of
 * RST_STREAM frames. One record per piece of such a frame that one read
 * or write carried, at most SONDE_H2_DATA_CAP bytes (the record ends
 * after len of them, in one of two sizes); a longer piece takes several.
 * They go to the exchange ring of the CPU that made them, and seq numbers
 * them per connection and direction: the daemon reads them in that
 * order, whichever ring each came through, and a gap that stays means
 * one was lost. (A reader and a writer thread may send at once: each
 * direction has its own numbers, and its own HPACK table.) */
#define SONDE_H2_DATA_CAP 512
#define SONDE_H2_HEADERS 0x1
#define SONDE_H2_RST_STREAM 0x3
#define SONDE_H2_PUSH_PROMISE 0x5
#define SONDE_H2_CONTINUATION 0x9
#define SONDE_H2_FLAG_END_STREAM 0x1
#define SONDE_H2_FLAG_END_HEADERS 0x4
#define SONDE_H2_FLAG_PADDED 0x8
#define SONDE_H2_FLAG_PRIORITY 0x20
struct sonde_h2_event {
	struct sonde_event_header hdr;
	__u64 sk;	/* struct sock * of the connection */
	__u64 since;	/* when its preface went: with tgid and fd, names it */
	__u8 saddr[16]; /* local address (IPv4 in the first 4 bytes) */
	__u8 daddr[16]; /* peer address */
	__u32 fd;
	__u32 seq; /* records sent before this one, this direction */
	__u32 stream_id;
	__u32 frame_len; /* the frame's payload length */
	__u32 offset;	 /* of data[0] in the frame's payload */
	__u16 sport;	 /* local port, host order */
	__u16 dport;	 /* peer port, host order */
	__u16 family;	 /* AF_INET or AF_INET6 */
	__u16 len;	 /* bytes valid in data */
	__u8 type;	 /* SONDE_H2_HEADERS, _CONTINUATION, _PUSH_PROMISE or
			  * _RST_STREAM */
	__u8 flags;	 /* the frame's flags */
	__u8 to_client;	 /* 0: sent by the client, 1: by the server */
	__u8 role;	 /* enum sonde_role of the traced process */
	char comm[SONDE_COMM_LEN];
	char data[SONDE_H2_DATA_CAP];
};
/* Databases and caches (PostgreSQL, MySQL/MariaDB, Redis, Memcached):
 * the bytes of each read or write of a connection classified as one of
 * them, one record per buffer (or per 4 KiB piece of a longer one). The
 * first len bytes of the buffer's total are in data; the rest of a
 * longer one is a hole the daemon's parser passes over by length
 * (user/proto/db.h). The record ends after len bytes of data, in one of
 * three sizes. Each goes to the exchange ring of the CPU that made it;
 * order numbers a connection's records across both directions, so the
 * daemon takes them in the order they were moved whichever ring each
 * came through (requests before their replies). */
#define SONDE_DB_DATA_CAP 4096
/* Records one buffer may take: a longer buffer's bytes beyond
 * SONDE_DB_CHUNKS * SONDE_DB_DATA_CAP are sent as a hole. 64 KiB holds
 * hundreds of pipelined commands or their replies. */
#define SONDE_DB_CHUNKS 16
#define SONDE_DB_SMALL 64
#define SONDE_DB_MEDIUM 512
struct sonde_db_event {
	struct sonde_event_header hdr;
	__u64 sk;	/* struct sock * of the connection */
	__u8 daddr[16]; /* peer address (IPv4 in the first 4 bytes) */
	__u32 fd;
	__u32 total;	  /* bytes the buffer moved */
	__u16 sport;	  /* local port, host order */
	__u16 dport;	  /* peer port, host order */
	__u16 family;	  /* AF_INET or AF_INET6 */
	__u16 len;	  /* bytes valid in data */
	__u8 proto;	  /* enum sonde_proto */
	__u8 from_client; /* 1: the bytes went from client to server */
	__u8 role;	  /* enum sonde_role of the traced process */
	__u8 starts;	  /* 1: data starts a buffer (not a later piece) */
	/* Records this connection's direction was sent before this one, lost
	 * ones included: a gap says bytes are missing. */
	__u32 seq;
	__u32 tid; /* the thread that moved the bytes (for spans) */
	/* Records this connection sent before this one, both directions,
	 * lost ones included. */
	__u32 order;
	char comm[SONDE_COMM_LEN];
	char data[SONDE_DB_DATA_CAP];
};

/* A Redis call the BPF side followed whole (bpf/proto/redis.bpf.h): one
 * command, written or read in one call, and the reply that came next,
 * the first line of it in one call. ts_ns is when that reply came. */
#define SONDE_DB_STATUS_PEEK 16
struct sonde_db_call_event {
	struct sonde_event_header hdr;
	__u64 start_ns; /* when the command went */
	__u8 daddr[16]; /* peer address (IPv4 in the first 4 bytes) */
	__u32 tid;	/* the thread that moved the reply */
	__u16 sport;	/* local port, host order */
	__u16 dport;	/* peer port, host order */
	__u16 family;	/* AF_INET or AF_INET6 */
	__u16 op;	/* the command's index in the daemon's table */
	__u8 proto;	/* enum sonde_proto */
	__u8 role;	/* enum sonde_role of the traced process */
	__u8 error;	/* the reply is an error: status is its start */
	__u8 pad;
	char status[SONDE_DB_STATUS_PEEK]; /* after the '-' */
	char comm[SONDE_COMM_LEN];
};

/* Calls followed whole that succeeded, summed by the BPF side in the
 * per-CPU hash map db_sums instead of sent one record each: the daemon
 * reads the sums' growth (user/kernel/dbsums.c). Each key is a series
 * of db_client_ or db_server_operation_duration_seconds within its
 * process. Bucket bounds are the families' own, which the daemon sets
 * (at most SONDE_DB_SUM_BOUNDS of them; none: nothing is summed). */
#define SONDE_DB_SUM_BOUNDS 32
#define SONDE_DB_SUMS_MAX 4096

struct sonde_db_sum_key {
	__u32 tgid;
	__u16 op;	/* the command's index in the daemon's table */
	__u16 port;	/* server: the local port; client: the peer's */
	__u8 daddr[16]; /* client: the peer's address; server: zero */
	__u16 family;	/* client: AF_INET or AF_INET6; server: 0 */
	__u8 proto;	/* enum sonde_proto */
	__u8 role;	/* enum sonde_role of the traced process */
};

struct sonde_db_sum {
	__u64 sum_ns;
	/* Per bucket, not cumulative, as struct histogram's. */
	__u64 buckets[SONDE_DB_SUM_BOUNDS + 1];
	char comm[SONDE_COMM_LEN]; /* set when the entry is made */
};

/* What one key's sums grew by since the daemon last read them. */
struct sonde_db_sums_event {
	struct sonde_event_header hdr; /* kind SONDE_EV_DB_SUMS */
	struct sonde_db_sum_key key;
	__u64 count;
	struct sonde_db_sum grew;
};

/* Size of a database record whose data holds room bytes. */
#define SONDE_DB_BYTES(room) \
	(__builtin_offsetof(struct sonde_db_event, data) + (room))

/* What the procs map holds for a process that produced a record. */
enum sonde_proc_state {
	SONDE_PROC_NOTED = 1, /* not named by the daemon yet */
	SONDE_PROC_NAMED = 2, /* named from its live /proc entry */
};

/* Room in struct sonde_exit_identity. A path's components start in the
 * first half of its room, each with a name's room after it. */
#define SONDE_EXIT_ENV 8192
#define SONDE_EXIT_ARGS 1024
#define SONDE_EXIT_PATH 512
#define SONDE_EXIT_NAME 256

/* What identifies a process, read from it as it exits when the daemon has
 * not named it yet (exit_ids map, bpf/core/process.bpf.h): a short-lived
 * client may be gone, its /proc entry with it, before the daemon reads
 * its records. env and args hold the first bytes of what
 * /proc/<pid>/environ and cmdline would. exe and cgroup hold a path's
 * components, the last first, each NUL-terminated ("curl\0bin\0usr\0" is
 * /usr/bin/curl); *_whole says the walk reached the root. */
struct sonde_exit_identity {
	__u16 env_len;
	__u16 args_len;
	__u16 exe_len;
	__u16 cgroup_len;
	__u8 exe_whole;
	__u8 cgroup_whole;
	__u8 pad[6];
	char exe[SONDE_EXIT_PATH];
	char cgroup[SONDE_EXIT_PATH];
	char args[SONDE_EXIT_ARGS];
	char env[SONDE_EXIT_ENV];
};

/* A traced process ended or replaced its image: whatever the daemon cached
 * about it (service name) is stale. */
struct sonde_process_event {
	struct sonde_event_header hdr;
	char comm[SONDE_COMM_LEN];
};

/* The attach cookie of the one OpenSSL entry program (ssl_entry): which
 * call it probes, as flags. */
#define SONDE_TLS_CALL_READ 0x1	     /* SSL_read, SSL_read_ex */
#define SONDE_TLS_CALL_EX 0x2	     /* the _ex forms */
#define SONDE_TLS_CALL_HANDSHAKE 0x4 /* SSL_do_handshake */

/* The attach cookie of the program that takes plaintext from TLS
 * libraries (tls_plain): its kind in bits 8 to 15 says which probe it
 * is. */
#define SONDE_TLS_PLAIN_KIND_SHIFT 8
enum sonde_tls_plain_kind {
	SONDE_TLS_PLAIN_OPENSSL_RETURN = 0, /* an OpenSSL call returned */
	SONDE_TLS_PLAIN_GO_ENTRY = 1,	    /* crypto/tls Read or Write */
	SONDE_TLS_PLAIN_GO_RETURN = 2,	    /* a return of Read */
};
/* A Go entry's cookie also has bit 0 set for crypto/tls.(*Conn).Read,
 * clear for Write; then three 16-bit byte offsets that lead from a
 * *tls.Conn to its socket's fd (bpf/proto/gotls.bpf.h): tls.Conn's
 * net.Conn field, the *netFD in the net.TCPConn, and the fd (pfd.Sysfd)
 * in the netFD. */
#define SONDE_GO_TLS_READ 0x1
#define SONDE_GO_TLS_CONN_SHIFT 16
#define SONDE_GO_TLS_FD_SHIFT 32
#define SONDE_GO_TLS_SYSFD_SHIFT 48

/* One call of a --uprobe function: how long it took, and which of the
 * --uprobe targets it was (the attach cookie: the flag's index). */
struct sonde_func_event {
	struct sonde_event_header hdr;
	__u64 duration_ns;
	__u32 func_id;
	__u32 pad;
	char comm[SONDE_COMM_LEN];
};

/* --trace-propagation (bpf/core/propagate.bpf.h): the kernel added
 *
 *     traceparent: 00-<trace_id>-<span_id>-01
 *
 * to an HTTP/1.x request that process hdr.tgid sent (hdr.ts_ns: when),
 * from local port sport to peer port dport. The ids are as the header
 * spells them, most significant byte first. Goes through the exchange
 * rings. */
struct sonde_trace_inject_event {
	struct sonde_event_header hdr;
	__u8 trace_id[16];
	__u8 span_id[8];
	__u16 sport; /* local port, host order */
	__u16 dport; /* peer port, host order */
	__u32 pad;
};

/* --trace-propagation: what the thread pid_tgid serving an HTTP/1
 * request is in the middle of (the "serving" map, bpf/proto/http1.bpf.h):
 * the trace its calls carry downstream. */
struct sonde_serving {
	__u8 trace_id[16];
	__u8 open;	 /* its request read, the response not yet written */
	__u8 concurrent; /* it read a request while one was open: an event
			  * loop, whose calls cannot be told to a request */
	__u8 pad[6];
};

/* splitmix64's finalizer (Steele, Lea, Flood, "Fast splittable
 * pseudorandom number generators", 2014). */
static inline __u64 sonde_mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The trace id of an HTTP/1 request that arrived with no traceparent,
 * under --trace-propagation: derived, with the key (k0, k1) the daemon
 * draws at start, from what the kernel and the daemon both know of the
 * request (its process, fd and start time), so that the trace the kernel
 * sends downstream and the one the daemon gives the request's span agree
 * with no more bytes on the ring. Never all zero. */
static inline void sonde_derived_trace_id(__u64 k0, __u64 k1, __u32 tgid,
					  __u32 fd, __u64 start_ns,
					  __u8 out[16])
{
	__u64 a = sonde_mix64(k0 ^ start_ns);
	__u64 b = sonde_mix64(k1 ^ ((__u64)tgid << 32 | fd) ^ a);

	b |= !(a | b);
	for (int i = 0; i < 8; i++) {
		out[i] = (__u8)(a >> (56 - 8 * i));
		out[8 + i] = (__u8)(b >> (56 - 8 * i));
	}
}

/* What --trace-propagation did with a request it saw start: indexes the
 * per-CPU "prop_results" array; names in user/kernel/propagate.c. All
 * but INJECTED leave the request as it was. */
enum sonde_propagation_result {
	SONDE_PROP_INJECTED = 0,
	SONDE_PROP_PRESENT,	   /* it carried a traceparent already */
	SONDE_PROP_HEAD_SPLIT,	   /* its head went on past this send */
	SONDE_PROP_HEAD_LONG,	   /* longer than the bytes checked */
	SONDE_PROP_PULL_FAILED,	   /* its head could not be made linear */
	SONDE_PROP_PUSH_FAILED,	   /* no room could be made for the line */
	SONDE_PROP_RING_FULL,	   /* the ids could not be reported */
	SONDE_PROP_CONN_UNTRACKED, /* a connection (not a request) not
				     * followed: the socket map was full */
	SONDE_PROP_RESULT_COUNT,
};

#endif
