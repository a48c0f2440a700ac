/* Where the OpenSSL probes go in one file: a shared libssl, or an
 * executable that carries OpenSSL statically. Shared by the agent
 * (uprobes.c) and the benchmark's floor (tools/floor.c), so that the floor
 * pays for exactly the uprobes sonde places. */
#ifndef SONDE_SSLPROBE_H
#define SONDE_SSLPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The OpenSSL functions sonde probes. SSL_read_ex and SSL_write_ex exist
 * from OpenSSL 1.1.1 on; SSL_read and SSL_write are required.
 * SSL_do_handshake (every version has it) only tells which socket an SSL
 * object uses; SSL_free (entry only) that the object is gone, so one
 * allocated at its address does not inherit that socket. */
enum sslprobe_fn {
	SSLPROBE_READ,
	SSLPROBE_WRITE,
	SSLPROBE_READ_EX,
	SSLPROBE_WRITE_EX,
	SSLPROBE_HANDSHAKE,
	SSLPROBE_FREE,
	SSLPROBE_FNS
};

/* Their symbol names, indexed by enum sslprobe_fn. */
extern const char *const sslprobe_symbols[SSLPROBE_FNS];

/* One probe pair (entry and return) to place: at offset in the file,
 * with the programs for fn. inner: the offset is the internal function
 * that both fn and its non-_ex form call, not fn's own symbol. */
struct sslprobe_point {
	enum sslprobe_fn fn;
	uint64_t offset;
	bool inner;
	bool entry_only; /* no return probe (SSL_free) */
};

/* Fills points (room for SSLPROBE_FNS) with where to probe path: per
 * direction one pair where SSL_read and SSL_read_ex both go (see
 * sslprobe.c), or else a pair on each exported function; a pair on
 * SSL_do_handshake and an entry probe on SSL_free when there are.
 * Returns how many, -ENOENT when path does not define SSL_read and
 * SSL_write, or -errno as elfsym_lookup. */
int sslprobe_points(const char *path, struct sslprobe_point *points);

/* True when path defines SSL_read and SSL_write. */
bool sslprobe_has_openssl(const char *path);

/* x86-64 code at the start of a wrapper function: when it is only
 * prologue (endbr64, push, sub $imm,%rsp, mov between registers) and then
 * a call, sets *target to the callee's offset from the code's start and
 * returns 0; -1 otherwise. Exposed for tests. */
int sslprobe_first_call(const uint8_t *code, size_t n, int64_t *target);

/* True when code holds a call to target (an offset from code's start).
 * Exposed for tests. */
bool sslprobe_calls(const uint8_t *code, size_t n, int64_t target);

/* When a uprobe *skip bytes into code costs one trap, returns 0; -1
 * otherwise. The probe goes on a push, after an optional endbr64; one
 * with no return probe (entry_only) may also go on the conditional jump
 * after "test %rdi,%rdi". Exposed for tests. */
int sslprobe_cheap_entry(const uint8_t *code, size_t n, bool entry_only,
			 size_t *skip);

#endif
