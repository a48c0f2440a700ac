/* Where the Go crypto/tls probes go in one Go executable: the entries of
 * crypto/tls.(*Conn).Read and (*Conn).Write, and each return instruction
 * of Read (bpf/proto/gotls.bpf.h says why not a uretprobe), with the
 * offsets from a *tls.Conn to its socket's fd in the attach cookie.
 * Shared by the agent (uprobes.c) and the benchmark's floor
 * (tools/floor.c), so that the floor pays for exactly the uprobes sonde
 * places. */
#ifndef SONDE_GOPROBE_H
#define SONDE_GOPROBE_H

#include <stddef.h>
#include <stdint.h>

/* Probes placed in one executable at most: two entries and Read's
 * returns. */
#define GOPROBE_MAX_POINTS 48

enum goprobe_kind {
	GOPROBE_READ_ENTRY,
	GOPROBE_WRITE_ENTRY,
	GOPROBE_READ_RETURN,
};

struct goprobe_point {
	enum goprobe_kind kind;
	uint64_t offset; /* in the file */
	uint64_t cookie; /* SONDE_TLS_PLAIN_GO_*, and the entries'
			  * SONDE_GO_TLS_* */
};

/* The byte offsets that lead from a *tls.Conn to its fd: tls.Conn's
 * net.Conn field; the *netFD in a net.TCPConn (TCPConn.conn plus
 * conn.fd); the fd in a netFD (netFD.pfd plus poll.FD.Sysfd). */
struct goprobe_offsets {
	uint16_t conn, fd, sysfd;
};

/* Fills points (room for GOPROBE_MAX_POINTS) with where to probe the Go
 * executable at path. Returns how many; -ENOEXEC when path is not a Go
 * executable, -ENOENT when it has no crypto/tls; any other -errno with a
 * one-line reason in why (a Go too old for the register calling
 * convention, offsets neither in its DWARF nor known for its version,
 * code the return finder cannot decode). */
int goprobe_points(const char *path, struct goprobe_point *points, char *why,
		   size_t whysz);

/* The offsets for a Go version ("go1.19.8") from sonde's table: 0, or
 * -ENOENT for a version the table does not cover. Exposed for tests. */
int goprobe_version_offsets(const char *version, struct goprobe_offsets *o);

/* The offsets from the DWARF of the executable at path: 0, or -ENOENT
 * when it has none or lacks one of the fields. Exposed for tests. */
int goprobe_dwarf_offsets(const char *path, struct goprobe_offsets *o);

/* Where in a Go function's code (n bytes) its entry probe goes: on the
 * conditional jump of the stack check that opens it ("cmp
 * 0x10(%r14),%rsp; jbe", or with "lea -N(%rsp),%r12" first), which the
 * kernel emulates, where a probe on the cmp would also single-step it
 * (a second trap: four times the cost here). Neither instruction touches
 * the argument registers. 0 (the first instruction) for any other
 * opening. Exposed for tests. */
size_t goprobe_entry_skip(const uint8_t *code, size_t n);

/* The attach cookie of an entry probe. Exposed for tests. */
uint64_t goprobe_cookie(const struct goprobe_offsets *o, int is_read);

#endif
