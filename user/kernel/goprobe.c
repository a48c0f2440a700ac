#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/gobin.h"
#include "kernel/godwarf.h"
#include "kernel/goprobe.h"
#include "kernel/x86ret.h"
#include "sonde_events.h"

/* The register calling convention came with Go 1.17 (amd64). */
#define GO_REGABI_MINOR 17

/* Go releases whose layout the table vouches for: the fields below have
 * not moved since before Go 1.17 (crypto/tls/conn.go, net/net.go,
 * net/tcpsock.go, net/fd_posix.go, internal/poll/fd_unix.go):
 *   tls.Conn    { conn net.Conn; ... }              conn at 0
 *   net.TCPConn { conn }, net.conn { fd *netFD }    fd at 0
 *   net.netFD   { pfd poll.FD; ... }
 *   poll.FD     { fdmu fdMutex; Sysfd int; ... }
 *   fdMutex     { state uint64; rsema, wsema uint32 } 16 bytes: Sysfd at 16
 * A newer release is taken from its DWARF, or refused. The tests
 * check the table against DWARF (tests/unit/test_goprobe.c). */
#define GO_TABLE_LAST_MINOR 24
static const struct goprobe_offsets table_offsets = { 0, 0, 16 };

static const char *const functions[] = {
	"crypto/tls.(*Conn).Read",
	"crypto/tls.(*Conn).Write",
};

/* The minor release of "go1.N..." (or "devel go1.N-..."), or -1. */
static int go_minor(const char *version)
{
	const char *p = strstr(version, "go1.");
	char *end;
	long minor;

	if (!p)
		return -1;
	minor = strtol(p + 4, &end, 10);
	return end == p + 4 || minor < 0 || minor > 1000 ? -1 : (int)minor;
}

int goprobe_version_offsets(const char *version, struct goprobe_offsets *o)
{
	int minor = go_minor(version);

	if (minor < GO_REGABI_MINOR || minor > GO_TABLE_LAST_MINOR)
		return -ENOENT;
	*o = table_offsets;
	return 0;
}

uint64_t goprobe_cookie(const struct goprobe_offsets *o, int is_read)
{
	return (uint64_t)SONDE_TLS_PLAIN_GO_ENTRY
		       << SONDE_TLS_PLAIN_KIND_SHIFT |
	       (is_read ? SONDE_GO_TLS_READ : 0) |
	       (uint64_t)o->conn << SONDE_GO_TLS_CONN_SHIFT |
	       (uint64_t)o->fd << SONDE_GO_TLS_FD_SHIFT |
	       (uint64_t)o->sysfd << SONDE_GO_TLS_SYSFD_SHIFT;
}

int goprobe_dwarf_offsets(const char *path, struct goprobe_offsets *o)
{
	struct godwarf_member m[] = {
		{ "crypto/tls.Conn", "conn", -1 },
		{ "net.TCPConn", "conn", -1 },
		{ "net.conn", "fd", -1 },
		{ "net.netFD", "pfd", -1 },
		{ "internal/poll.FD", "Sysfd", -1 },
	};
	size_t n = sizeof(m) / sizeof(m[0]);
	int64_t fd, sysfd;

	if (godwarf_offsets(path, m, n) != (int)n)
		return -ENOENT;
	fd = m[1].offset + m[2].offset;
	sysfd = m[3].offset + m[4].offset;
	if (m[0].offset > 0xfff0 || fd > 0xffff || sysfd > 0xffff)
		return -ENOENT;
	o->conn = (uint16_t)m[0].offset;
	o->fd = (uint16_t)fd;
	o->sysfd = (uint16_t)sysfd;
	return 0;
}

/* The offsets for path, built by Go version: from the table for the
 * releases it covers (the tests check it against the DWARF of what Go
 * builds here), else from path's DWARF. The table first: reading
 * .debug_info means inflating megabytes of it, which would raise sonde's
 * peak memory by about 3 MiB a binary. */
static int offsets_for(const char *path, const char *version,
		       struct goprobe_offsets *o, char *why, size_t whysz)
{
	int minor = go_minor(version);

	if (minor >= 0 && minor < GO_REGABI_MINOR) {
		snprintf(why, whysz,
			 "built by %s, before Go 1.17's register calling "
			 "convention",
			 version);
		return -ENOTSUP;
	}
	if (!goprobe_version_offsets(version, o) ||
	    !goprobe_dwarf_offsets(path, o))
		return 0;
	snprintf(why, whysz,
		 "built by %s: no DWARF, and sonde's table of field offsets "
		 "stops at go1.%d",
		 version, GO_TABLE_LAST_MINOR);
	return -ENOTSUP;
}

size_t goprobe_entry_skip(const uint8_t *code, size_t n)
{
	/* cmp 0x10(%r14),%rsp; or, after lea -N(%rsp),%r12 (disp8 or
	 * disp32), cmp 0x10(%r14),%r12 */
	static const uint8_t cmp_rsp[] = { 0x49, 0x3b, 0x66, 0x10 },
			     cmp_r12[] = { 0x4d, 0x3b, 0x66, 0x10 };
	const uint8_t *cmp = cmp_rsp;
	size_t at = 0;

	if (n >= 5 && !memcmp(code, "\x4c\x8d\x64\x24", 4)) {
		at = 5;
		cmp = cmp_r12;
	} else if (n >= 8 && !memcmp(code, "\x4c\x8d\xa4\x24", 4)) {
		at = 8;
		cmp = cmp_r12;
	}
	if (n < at + sizeof(cmp_rsp) + 2 ||
	    memcmp(code + at, cmp, sizeof(cmp_rsp)))
		return 0;
	at += sizeof(cmp_rsp);
	/* jbe rel8, or jbe rel32 */
	if (code[at] == 0x76 || (code[at] == 0x0f && code[at + 1] == 0x86))
		return at;
	return 0;
}

/* The code of function i, found at f; NULL (said in why) when it cannot
 * be read. */
static uint8_t *code_of(const char *path, const struct gobin_func *f, int i,
			char *why, size_t whysz)
{
	uint8_t *code = gobin_code(path, f->offset, f->size);

	if (!code)
		snprintf(why, whysz, "cannot read the code of %s",
			 functions[i]);
	return code;
}

/* Appends a point for each return instruction of Read, whose code is
 * code at f; an error when its code cannot be decoded, or has too
 * many. */
static int add_returns(const uint8_t *code, const struct gobin_func *f,
		       struct goprobe_point *points, int n, char *why,
		       size_t whysz)
{
	uint32_t rets[GOPROBE_MAX_POINTS];
	int found = x86_returns(code, f->size, rets, GOPROBE_MAX_POINTS);

	if (found < 0) {
		snprintf(why, whysz, "cannot decode the instructions of %s",
			 functions[0]);
		return -ENOTSUP;
	}
	if (!found || n + found > GOPROBE_MAX_POINTS) {
		snprintf(why, whysz, "%s has %d return instructions",
			 functions[0], found);
		return -ENOTSUP;
	}
	for (int i = 0; i < found; i++)
		points[n++] = (struct goprobe_point){
			.kind = GOPROBE_READ_RETURN,
			.offset = f->offset + rets[i],
			.cookie = (uint64_t)SONDE_TLS_PLAIN_GO_RETURN
				  << SONDE_TLS_PLAIN_KIND_SHIFT,
		};
	return n;
}

/* rc from reading path: said in why unless it means the file is no Go
 * executable with crypto/tls. */
static int read_error(int rc, char *why, size_t whysz)
{
	if (rc != -ENOEXEC && rc != -ENOENT)
		snprintf(why, whysz, "cannot read it: %s", strerror(-rc));
	return rc;
}

int goprobe_points(const char *path, struct goprobe_point *points, char *why,
		   size_t whysz)
{
	struct gobin_func f[2];
	struct goprobe_offsets o;
	uint8_t *code[2] = { NULL, NULL };
	char version[64];
	int rc;

	why[0] = '\0';
	rc = gobin_version(path, version, sizeof(version));
	if (rc)
		return read_error(rc, why, whysz);
	/* The Go symbol table first: every Go executable has it, and it
	 * costs less memory to search than .symtab. */
	rc = gobin_lookup_pclntab(path, functions, 2, f);
	if (rc < 2)
		rc = gobin_lookup(path, functions, 2, f);
	if (rc < 0)
		return read_error(rc, why, whysz);
	if (rc < 2 || !f[0].offset || !f[1].offset)
		return -ENOENT;
	rc = offsets_for(path, version, &o, why, whysz);
	if (rc)
		return rc;
	for (int i = 0; i < 2; i++)
		if (!(code[i] = code_of(path, &f[i], i, why, whysz))) {
			free(code[0]);
			return -EIO;
		}
	points[0] = (struct goprobe_point){
		.kind = GOPROBE_READ_ENTRY,
		.offset = f[0].offset + goprobe_entry_skip(code[0], f[0].size),
		.cookie = goprobe_cookie(&o, 1),
	};
	points[1] = (struct goprobe_point){
		.kind = GOPROBE_WRITE_ENTRY,
		.offset = f[1].offset + goprobe_entry_skip(code[1], f[1].size),
		.cookie = goprobe_cookie(&o, 0),
	};
	rc = add_returns(code[0], &f[0], points, 2, why, whysz);
	free(code[0]);
	free(code[1]);
	return rc;
}
