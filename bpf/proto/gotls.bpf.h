/* Go's crypto/tls: plaintext from uprobes on crypto/tls.(*Conn).Read and
 * crypto/tls.(*Conn).Write in Go executables (Go 1.17 and later, amd64),
 * placed by user/kernel/goprobe.c.
 *
 * Go 1.17's register calling convention (the Go internal ABI,
 * src/cmd/compile/abi-internal.md) passes the integer arguments in RAX,
 * RBX, RCX, RDI, ... and returns results in the same registers; the
 * current goroutine is in R14. So at the entry of
 *   func (c *Conn) Read(b []byte) (int, error)
 * RAX is c, RBX the address of b's bytes and RCX its length; at a return,
 * RAX is n. Write is the same.
 *
 * A uretprobe would replace the return address on the goroutine's stack,
 * which the runtime may move (stack growth) or walk (tracebacks, GC)
 * while the call runs: Read is probed at its entry and at each of its
 * return instructions instead, and its entry keeps the call per
 * goroutine (tgid, R14), which stays the same whatever thread the
 * goroutine resumes on. Write hands its bytes over at its entry: Go's
 * Write writes them all or fails the connection.
 *
 * The socket: the *Conn holds its net.Conn (an interface: type word, then
 * data word), whose data is a *net.TCPConn, whose conn.fd is a *netFD,
 * whose pfd.Sysfd is the fd. Their offsets come from the binary (DWARF,
 * or a table by Go version) in the entry probe's attach cookie
 * (SONDE_GO_TLS_*). The plaintext then goes to the classifier and the
 * protocol handlers on that connection, as OpenSSL's does (tls.bpf.h),
 * and its ciphertext is no longer parsed. */
#ifndef SONDE_PROTO_GOTLS_BPF_H
#define SONDE_PROTO_GOTLS_BPF_H

/* A Read in progress, per goroutine. */
struct gotls_key {
	__u64 g; /* R14: the goroutine */
	__u32 tgid;
	__u32 pad;
};

struct gotls_call {
	__u64 conn;   /* the *tls.Conn */
	__u64 buf;    /* b's bytes */
	__u64 cookie; /* the entry's: the offsets to the fd */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_GO_READS);
	__type(key, struct gotls_key);
	__type(value, struct gotls_call);
} gotls_reads SEC(".maps");

/* The fd of the socket under the *tls.Conn conn, by the offsets in
 * cookie; false when a pointer on the way is NULL or unreadable. */
static __always_inline bool gotls_fd(__u64 conn, __u64 cookie, __s32 *fd)
{
	__u64 iface_at = conn + ((cookie >> SONDE_GO_TLS_CONN_SHIFT) & 0xffff),
	      data, netfd;
	__s64 sysfd;

	/* The interface's data word follows its type word. */
	if (bpf_probe_read_user(&data, sizeof(data), (void *)(iface_at + 8)) ||
	    !data)
		return false;
	if (bpf_probe_read_user(
		    &netfd, sizeof(netfd),
		    (void *)(data +
			     ((cookie >> SONDE_GO_TLS_FD_SHIFT) & 0xffff))) ||
	    !netfd)
		return false;
	if (bpf_probe_read_user(
		    &sysfd, sizeof(sysfd),
		    (void *)(netfd + ((cookie >> SONDE_GO_TLS_SYSFD_SHIFT) &
				      0xffff))) ||
	    sysfd < 0 || sysfd > 0x7fffffff)
		return false;
	*fd = (__s32)sysfd;
	return true;
}

/* The n bytes at buf that a call on the *tls.Conn conn moved, into key
 * and *plain; false when its socket cannot be named. */
static __always_inline bool gotls_plain(__u32 tgid, __u64 conn, __u64 cookie,
					__u64 buf, long n, bool is_read,
					struct conn_key *key,
					struct tls_plain *plain)
{
	__s32 fd;

	if (n <= 0 || !gotls_fd(conn, cookie, &fd))
		return false;
	key->tgid = tgid;
	key->fd = fd;
	plain->buf = buf;
	plain->n = n;
	plain->is_read = is_read;
	plain->bound = true;
	return true;
}

/* The entry of Read or Write, told apart by cookie. A Write fills *plain
 * and key and returns true: its bytes go now. A Read is kept for its
 * return. */
static __always_inline bool gotls_enter(struct pt_regs *ctx, __u64 cookie,
					struct conn_key *key,
					struct tls_plain *plain)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct gotls_key gk = { .g = ctx->r14, .tgid = tgid };
	struct gotls_call call = {
		.conn = ctx->ax,
		.buf = ctx->bx,
		.cookie = cookie,
	};

	if (process_ignored(tgid))
		return false;
	if (cookie & SONDE_GO_TLS_READ) {
		bpf_map_update_elem(&gotls_reads, &gk, &call, BPF_ANY);
		return false;
	}
	return gotls_plain(tgid, call.conn, cookie, call.buf, (long)ctx->cx,
			   false, key, plain);
}

/* A return of Read: true with key and *plain filled when it read
 * bytes. */
static __always_inline bool
gotls_return(struct pt_regs *ctx, struct conn_key *key, struct tls_plain *plain)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct gotls_key gk = { .g = ctx->r14, .tgid = tgid };
	struct gotls_call *callp = bpf_map_lookup_elem(&gotls_reads, &gk);
	struct gotls_call call;

	if (!callp)
		return false;
	call = *callp;
	bpf_map_delete_elem(&gotls_reads, &gk);
	return gotls_plain(tgid, call.conn, call.cookie, call.buf,
			   (long)ctx->ax, true, key, plain);
}

#endif
