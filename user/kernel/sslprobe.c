#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kernel/elfsym.h"
#include "kernel/sslprobe.h"

const char *const sslprobe_symbols[SSLPROBE_FNS] = {
	[SSLPROBE_READ] = "SSL_read",
	[SSLPROBE_WRITE] = "SSL_write",
	[SSLPROBE_READ_EX] = "SSL_read_ex",
	[SSLPROBE_WRITE_EX] = "SSL_write_ex",
	[SSLPROBE_HANDSHAKE] = "SSL_do_handshake",
	[SSLPROBE_FREE] = "SSL_free",
};

/* x86-64 machine code, as far as choosing where a uprobe goes needs it.
 * A uprobe on an instruction the kernel emulates (push, call, jumps, nops)
 * costs one trap; on any other one (sub, mov, endbr64) the kernel also
 * single-steps a copy of it, a second trap. Where traps are expensive
 * (virtual machines: about 5 us against 19 us on the machines sonde is
 * tested on) that decides what TLS tracing costs. */
#define ENDBR64_LEN 4
#if defined(__x86_64__)
#define IS_X86_64 1
#else
#define IS_X86_64 0
#endif

static bool is_endbr64(const uint8_t *p, size_t n)
{
	return n >= ENDBR64_LEN && p[0] == 0xf3 && p[1] == 0x0f &&
	       p[2] == 0x1e && p[3] == 0xfa;
}

/* push %r64: 50+r, or REX.B (41) 50+r. Returns its length, or 0. */
static size_t push_len(const uint8_t *p, size_t n)
{
	if (n >= 1 && p[0] >= 0x50 && p[0] <= 0x57)
		return 1;
	if (n >= 2 && p[0] == 0x41 && p[1] >= 0x50 && p[1] <= 0x57)
		return 2;
	return 0;
}

/* The instructions a compiler puts before a wrapper's call: endbr64,
 * push %r64, sub $imm,%rsp and mov %r64,%r64. Returns the length, or 0
 * for anything else. */
static size_t prologue_len(const uint8_t *p, size_t n)
{
	if (is_endbr64(p, n))
		return ENDBR64_LEN;
	if (push_len(p, n))
		return push_len(p, n);
	if (n >= 4 && p[0] == 0x48 && p[1] == 0x83 && p[2] == 0xec)
		return 4; /* sub $imm8,%rsp */
	if (n >= 7 && p[0] == 0x48 && p[1] == 0x81 && p[2] == 0xec)
		return 7; /* sub $imm32,%rsp */
	if (n >= 3 && (p[0] & 0xfa) == 0x48 && p[1] == 0x89 &&
	    (p[2] & 0xc0) == 0xc0)
		return 3; /* mov %r64,%r64 */
	return 0;
}

static int64_t rel32_at(const uint8_t *p)
{
	int32_t rel;

	memcpy(&rel, p, sizeof(rel));
	return rel;
}

int sslprobe_first_call(const uint8_t *code, size_t n, int64_t *target)
{
	size_t off = 0, len;

	for (int i = 0; i < 4; i++) {
		len = prologue_len(code + off, n - off);
		if (!len)
			break;
		off += len;
	}
	if (off + 5 > n || code[off] != 0xe8)
		return -1;
	*target = (int64_t)(off + 5) + rel32_at(code + off + 1);
	return 0;
}

bool sslprobe_calls(const uint8_t *code, size_t n, int64_t target)
{
	for (size_t i = 0; i + 5 <= n; i++)
		if (code[i] == 0xe8 &&
		    (int64_t)(i + 5) + rel32_at(code + i + 1) == target)
			return true;
	return false;
}

/* test %rdi,%rdi: sets flags, changes no register. */
static bool is_test_rdi(const uint8_t *p, size_t n)
{
	return n >= 3 && p[0] == 0x48 && p[1] == 0x85 && p[2] == 0xff;
}

/* A conditional jump, rel8 (70+cc) or rel32 (0f 80+cc). */
static bool is_jcc(const uint8_t *p, size_t n)
{
	return (n >= 2 && p[0] >= 0x70 && p[0] <= 0x7f) ||
	       (n >= 6 && p[0] == 0x0f && p[1] >= 0x80 && p[1] <= 0x8f);
}

int sslprobe_cheap_entry(const uint8_t *code, size_t n, bool entry_only,
			 size_t *skip)
{
	size_t off = is_endbr64(code, n) ? ENDBR64_LEN : 0;

	/* With no return probe, the stack may be anything: the probe can
	 * sit on the jump after a NULL check of the first argument, which
	 * every call runs with its arguments untouched. */
	if (entry_only && is_test_rdi(code + off, n - off) &&
	    is_jcc(code + off + 3, n - off - 3)) {
		*skip = off + 3;
		return 0;
	}
	if (!push_len(code + off, n - off))
		return -1;
	*skip = off;
	return 0;
}

static int read_code(const char *path, uint64_t offset, uint8_t *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	int rc = -1;

	if (f && fseeko(f, (off_t)offset, SEEK_SET) == 0 &&
	    fread(buf, 1, n, f) == n)
		rc = 0;
	if (f)
		fclose(f);
	return rc;
}

/* OpenSSL's SSL_read and SSL_read_ex both call one internal function,
 * ssl_read_internal(s, buf, num, &readbytes), which has SSL_read_ex's
 * arguments and result (likewise for writes, since OpenSSL 1.1.1). It is
 * not exported, but the wrapper SSL_read_ex calls it first thing. When
 * that call is found, SSL_read calls the same function, and the function
 * starts with a push, one probe there sees every read for a single trap,
 * where SSL_read itself starts with sub $x,%rsp (two). Sets *inner to
 * the probe's file offset and returns true; false leaves the exported
 * functions to be probed. */
static bool inner_function(const char *path, uint64_t ex, uint64_t plain,
			   uint64_t *inner)
{
	uint8_t wrapper[32], head[16], caller[128];
	int64_t target;
	size_t skip;

	if (!IS_X86_64 || !ex || !plain ||
	    read_code(path, ex, wrapper, sizeof(wrapper)) ||
	    sslprobe_first_call(wrapper, sizeof(wrapper), &target))
		return false;
	target += (int64_t)ex;
	if (target <= 0 ||
	    read_code(path, (uint64_t)target, head, sizeof(head)) ||
	    sslprobe_cheap_entry(head, sizeof(head), false, &skip) ||
	    read_code(path, plain, caller, sizeof(caller)) ||
	    !sslprobe_calls(caller, sizeof(caller), target - (int64_t)plain))
		return false;
	*inner = (uint64_t)target + skip;
	return true;
}

/* Where an entry probe alone goes on the function at offset fn: past
 * what sslprobe_cheap_entry skips when the kernel emulates what follows,
 * or else on the function's first instruction. */
static uint64_t entry_only_offset(const char *path, uint64_t fn)
{
	uint8_t head[16];
	size_t skip;

	if (IS_X86_64 && !read_code(path, fn, head, sizeof(head)) &&
	    !sslprobe_cheap_entry(head, sizeof(head), true, &skip))
		return fn + skip;
	return fn;
}

int sslprobe_points(const char *path, struct sslprobe_point *points)
{
	static const enum sslprobe_fn ex_of[2] = { SSLPROBE_READ_EX,
						   SSLPROBE_WRITE_EX };
	static const enum sslprobe_fn plain_of[2] = { SSLPROBE_READ,
						      SSLPROBE_WRITE };
	uint64_t offs[SSLPROBE_FNS], inner;
	int found = elfsym_lookup(path, sslprobe_symbols, SSLPROBE_FNS, offs);
	int n = 0;

	if (found < 0)
		return found;
	if (!offs[SSLPROBE_READ] || !offs[SSLPROBE_WRITE])
		return -ENOENT;
	for (int d = 0; d < 2; d++) {
		enum sslprobe_fn ex = ex_of[d], plain = plain_of[d];

		if (inner_function(path, offs[ex], offs[plain], &inner)) {
			points[n++] = (struct sslprobe_point){ .fn = ex,
							       .offset = inner,
							       .inner = true };
			continue;
		}
		points[n++] = (struct sslprobe_point){ .fn = plain,
						       .offset = offs[plain] };
		if (offs[ex])
			points[n++] =
				(struct sslprobe_point){ .fn = ex,
							 .offset = offs[ex] };
	}
	if (offs[SSLPROBE_HANDSHAKE])
		points[n++] = (struct sslprobe_point){
			.fn = SSLPROBE_HANDSHAKE,
			.offset = offs[SSLPROBE_HANDSHAKE]
		};
	if (offs[SSLPROBE_FREE])
		points[n++] = (struct sslprobe_point){
			.fn = SSLPROBE_FREE,
			.offset = entry_only_offset(path, offs[SSLPROBE_FREE]),
			.entry_only = true
		};
	return n;
}

bool sslprobe_has_openssl(const char *path)
{
	uint64_t offs[SSLPROBE_FNS];

	return elfsym_lookup(path, sslprobe_symbols, SSLPROBE_FNS, offs) > 0 &&
	       offs[SSLPROBE_READ] && offs[SSLPROBE_WRITE];
}
