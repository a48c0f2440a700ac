/* TLS (RFC 8446, https://www.rfc-editor.org/rfc/rfc8446): ciphertext on
 * the socket, and plaintext from OpenSSL through uprobes on SSL_read,
 * SSL_write, SSL_read_ex and SSL_write_ex (OpenSSL 1.1 and 3.x, shared
 * libssl or linked into the executable).
 *
 * A connection whose first bytes are a TLS record (tls_detect), or whose
 * socket OpenSSL reads or writes, is marked tls: its ciphertext is never
 * parsed. The plaintext OpenSSL hands over goes to the same classifier and
 * protocol handlers as a plaintext connection's bytes, on the same
 * connection, so an HTTPS exchange carries its socket's addresses and
 * ports.
 *
 * Which socket an SSL object writes to is not in its arguments. The
 * entry probe remembers the call per thread; the socket syscalls that the
 * library makes on that thread while inside the call name the fd (and
 * mark the connection as TLS); the return probe hands the plaintext over
 * for (tgid, fd). A read served from OpenSSL's own buffer makes no
 * syscall: the fd the SSL object used last is kept per (tgid, SSL *) for
 * it.
 *
 * SSL_do_handshake (which SSL_accept and SSL_connect call) is probed the
 * same way, for the fd alone: a server that reads ahead (nginx) takes a
 * TLS 1.3 client's first request in with the client's Finished, and the
 * SSL_read that returns it makes no syscall. SSL_free's entry forgets the
 * object's fd, so that one allocated where it was starts afresh.
 *
 * Some programs feed OpenSSL through memory BIOs (node, python's
 * SSLObject, event loops that do their own I/O): no call ever makes a
 * syscall. The first such call marks the process; from then on, the
 * last TCP socket each of its threads read from is remembered, and an
 * SSL object with no syscall of its own takes that socket when it
 * returns plaintext or finishes a handshake: such programs read the
 * ciphertext and hand it to OpenSSL on the same thread, in the same
 * callback. Writes keep the socket the object took last.
 *
 * One entry program serves every function, told which by its attach
 * cookie (SONDE_TLS_CALL_*); one return program serves them all, since the
 * entry wrote down what the call was.
 *
 * Signatures (OpenSSL manual, SSL_read(3)):
 *   int SSL_read(SSL *ssl, void *buf, int num);             > 0: bytes
 *   int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes);
 *                                                           1: success
 * and the same for SSL_write / SSL_write_ex. */
#ifndef SONDE_PROTO_TLS_BPF_H
#define SONDE_PROTO_TLS_BPF_H

/* An OpenSSL call in progress on a thread. */
struct tls_call {
	__u64 ssl;
	__u64 buf;
	__u64 size_ptr; /* *_ex: where the byte count is written */
	__s32 fd; /* TLS_FD_NONE until a syscall inside the call names it */
	__u8 is_read;
	__u8 is_ex;
	__u8 is_handshake; /* no plaintext: the call only names the fd */
	__u8 open;	   /* 0: the thread's last call has returned */
};

struct tls_session_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

struct tls_socket {
	__s32 fd;
	__u8 from_read; /* memory BIO: taken from the thread's last read */
	__u8 pad[3];
};

/* Each thread's OpenSSL call, in the thread's own storage: kept between
 * calls (open says whether one is in progress), found without a hash,
 * and freed with the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_TLS_SESSIONS);
	__type(key, struct tls_session_key);
	__type(value, struct tls_socket);
} tls_fds SEC(".maps");

/* Processes whose OpenSSL calls make no syscalls (memory BIOs). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u8);
} tls_bio_procs SEC(".maps");

/* The TCP socket each thread of those processes read from last, in the
 * thread's own storage. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __s32);
} tls_last_read SEC(".maps");

/* Set at the first OpenSSL call sonde sees, and never cleared: until
 * then no syscall needs a look at its thread's call. Written once, so
 * the CPUs do not pass its cache line back and forth. */
__u32 tls_seen;
/* Set once a process has been put in tls_bio_procs: until then no read
 * needs remembering. */
__u32 tls_bio_seen;

/* What a syscall inside an OpenSSL call says about the call's socket. */
#define TLS_FD_NONE (-1) /* no syscall yet */
/* A socket sonde does not trace (not TCP, or a port filtered out): the
 * call is not ours. */
#define TLS_FD_UNTRACED (-2)

/* The detector: a TLS record's header, 0x16 (handshake) then the record
 * version 0x03 0x00..0x04 ("\x16\x03\x01\x02\x00" starts a ClientHello),
 * or as much of it as came. */
static __always_inline bool tls_detect(const char *p, __u32 n)
{
	return n >= 1 && (__u8)p[0] == 0x16 && (n < 2 || p[1] == 0x03) &&
	       (n < 3 || (__u8)p[2] <= 0x04);
}

/* False before any OpenSSL call: the syscall path then has nothing to
 * tell the TLS programs. */
static __always_inline bool tls_maybe_calls(void)
{
	return tls_enabled && *(volatile __u32 *)&tls_seen;
}

/* The OpenSSL call the current thread is inside, or NULL. */
static __always_inline struct tls_call *tls_open_call(void)
{
	struct tls_call *call;

	if (!tls_maybe_calls())
		return NULL;
	call = bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0,
				    0);
	return call && call->open ? call : NULL;
}

/* From now on c's socket carries ciphertext: counted once as TLS, and
 * the plaintext OpenSSL hands over is classified afresh. */
static __always_inline void tls_mark(struct conn *c)
{
	if (c->tls)
		return;
	c->tls = 1;
	c->proto = SONDE_PROTO_NONE;
	c->tries = 0;
	count_classified(SONDE_PROTO_TLS);
}

/* A read or write (or one that would block) on the socket key->fd by this
 * thread; c is its connection, NULL when sonde does not trace it. Inside an
 * OpenSSL call, it names the call's socket, and a traced connection is
 * marked TLS so that its ciphertext is not parsed. */
static __always_inline void tls_note_fd(const struct conn_key *key,
					struct conn *c)
{
	struct tls_call *call = tls_open_call();

	if (!call)
		return;
	if (c) {
		call->fd = key->fd;
		tls_mark(c);
	} else if (call->fd == TLS_FD_NONE) {
		call->fd = TLS_FD_UNTRACED;
	}
}

/* Called for every read from a socket that returned bytes, before they
 * are looked at, unless the connection is known to be plaintext; traced:
 * key->fd is a connection sonde traces. A read on another socket is
 * remembered as TLS_FD_UNTRACED, so plaintext decrypted after it is not
 * tied to an older one. Reads of files, pipes and eventfds never get
 * here. */
static __always_inline void tls_note_read(const struct conn_key *key,
					  bool traced)
{
	__s32 fd = traced ? (__s32)key->fd : TLS_FD_UNTRACED;
	__s32 *last;

	if (!tls_enabled || !*(volatile __u32 *)&tls_bio_seen ||
	    !bpf_map_lookup_elem(&tls_bio_procs, &key->tgid))
		return;
	last = bpf_task_storage_get(&tls_last_read, bpf_get_current_task_btf(),
				    0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (last)
		*last = fd;
}

/* The entry of an OpenSSL call; how: its SONDE_TLS_CALL_* flags. */
static __always_inline int tls_enter(struct pt_regs *ctx, __u64 how)
{
	bool is_ex = how & SONDE_TLS_CALL_EX,
	     is_handshake = how & SONDE_TLS_CALL_HANDSHAKE;
	struct tls_call *call;

	if (process_ignored(bpf_get_current_pid_tgid() >> 32))
		return 0;
	call = bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!call)
		return 0;
	call->ssl = PT_REGS_PARM1(ctx);
	call->buf = is_handshake ? 0 : PT_REGS_PARM2(ctx);
	call->size_ptr = is_ex ? PT_REGS_PARM4(ctx) : 0;
	call->fd = TLS_FD_NONE;
	call->is_read = !!(how & SONDE_TLS_CALL_READ);
	call->is_ex = is_ex;
	call->is_handshake = is_handshake;
	call->open = 1;
	if (!*(volatile __u32 *)&tls_seen)
		tls_seen = 1;
	return 0;
}

/* Bytes the call moved, from its return value (and *readbytes for the
 * _ex forms); 0 when it failed or would block. */
static __always_inline long tls_bytes(struct pt_regs *ctx,
				      const struct tls_call *call)
{
	long ret = PT_REGS_RC(ctx);
	__u64 n = 0;

	if (!call->is_ex)
		return (int)ret > 0 ? (int)ret : 0;
	/* _ex: 1 on success; the internal function they wrap may say so
	 * with any positive value. */
	if ((int)ret <= 0 ||
	    bpf_probe_read_user(&n, sizeof(n), (void *)call->size_ptr))
		return 0;
	return n > 0x7fffffff ? 0x7fffffff : n;
}

/* The socket the call's plaintext belongs to, kept per SSL object, with
 * *bound saying whether a syscall of the object's named it. A
 * syscall inside the call named it; or else the object's known one; or,
 * for a memory BIO, the thread's last read when the call returned
 * plaintext or finished a handshake (a fresh SSL object takes it at its
 * first call that moves plaintext). TLS_FD_NONE when there is none; the
 * first such call marks the process. */
static __always_inline __s32 tls_socket(const struct tls_session_key *skey,
					const struct tls_call *call, long ret,
					long n, bool *bound)
{
	struct tls_socket *known = bpf_map_lookup_elem(&tls_fds, skey);
	struct tls_socket seen = { .fd = call->fd };
	bool fed = call->is_handshake ? ret == 1 : call->is_read && n > 0;
	__u8 yes = 1;
	__s32 *last;

	*bound = false;
	if (call->fd == TLS_FD_NONE) {
		if (known && (!known->from_read || !fed)) {
			*bound = !known->from_read;
			return known->fd;
		}
		last = bpf_task_storage_get(&tls_last_read,
					    bpf_get_current_task_btf(), 0, 0);
		if (!last) {
			if (!known &&
			    !bpf_map_lookup_elem(&tls_bio_procs, &skey->tgid)) {
				bpf_map_update_elem(&tls_bio_procs, &skey->tgid,
						    &yes, BPF_ANY);
				tls_bio_seen = 1;
			}
			return known ? known->fd : TLS_FD_NONE;
		}
		/* A call that moved no plaintext and finished no handshake
		 * says nothing about a fresh object's socket: a client's
		 * first calls come before it has read anything from its new
		 * connection, when the thread's last read was another's. */
		if (!known && !fed && n <= 0)
			return TLS_FD_NONE;
		seen.fd = *last;
		seen.from_read = 1;
	}
	if (!known || known->fd != seen.fd ||
	    known->from_read != seen.from_read)
		bpf_map_update_elem(&tls_fds, skey, &seen, BPF_ANY);
	*bound = !seen.from_read;
	return seen.fd;
}

/* Plaintext an OpenSSL call handed over, for the protocol handlers. */
struct tls_plain {
	__u64 buf;
	long n;
	bool is_read;
	bool bound; /* a syscall of the SSL object's named its socket */
};

/* The return of an OpenSSL call: true when it moved plaintext on a
 * connection sonde can name, with key->fd, *plain filled in. */
static __always_inline bool tls_exit(struct pt_regs *ctx, struct conn_key *key,
				     struct tls_plain *plain)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tls_session_key skey = { .tgid = tgid };
	struct tls_call *callp, call;
	long n;

	callp = bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0,
				     0);
	if (!callp || !callp->open)
		return false;
	call = *callp;
	callp->open = 0;
	skey.ssl = call.ssl;
	n = call.is_handshake ? 0 : tls_bytes(ctx, &call);
	call.fd = tls_socket(&skey, &call, PT_REGS_RC(ctx), n, &plain->bound);
	if (n <= 0 || call.fd == TLS_FD_UNTRACED)
		return false;
	if (call.fd < 0) {
		count_drop(SONDE_DROP_TLS_NO_SOCKET);
		return false;
	}
	key->tgid = tgid;
	key->fd = call.fd;
	plain->buf = call.buf;
	plain->n = n;
	plain->is_read = call.is_read;
	return true;
}

/* SSL_free(ssl): the object's socket is forgotten, so that one allocated
 * at the same address starts afresh. */
static __always_inline void tls_free(struct pt_regs *ctx)
{
	struct tls_session_key skey = {
		.ssl = PT_REGS_PARM1(ctx),
		.tgid = bpf_get_current_pid_tgid() >> 32,
	};

	bpf_map_delete_elem(&tls_fds, &skey);
}

#endif
