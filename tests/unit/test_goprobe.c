/* goprobe: where the Go crypto/tls probes go, checked on Go programs the
 * test builds, as is and stripped (-ldflags='-s -w'): the entries are
 * the functions' symbols, each return point is a return instruction of
 * Read, and both builds give the same points. */
#include <errno.h>
#include <stdlib.h>

#include "gobuild.h"
#include "kernel/gobin.h"
#include "kernel/elfsym.h"
#include "kernel/goprobe.h"
#include "sonde_events.h"
#include "unit.h"

static char tmpdir[] = "/tmp/sonde-goprobe-XXXXXX";
static char plain[600], stripped[600];

TEST(offsets_by_go_version)
{
	struct goprobe_offsets o = { 1, 1, 1 };

	CHECK(goprobe_version_offsets("go1.19.8", &o) == 0);
	CHECK(o.conn == 0 && o.fd == 0 && o.sysfd == 16);
	CHECK(goprobe_version_offsets("go1.17", &o) == 0);
	CHECK(goprobe_version_offsets("devel go1.22-4f2a7c0 Tue", &o) == 0);
	/* Before the register calling convention, and past the table. */
	CHECK(goprobe_version_offsets("go1.16.15", &o) == -ENOENT);
	CHECK(goprobe_version_offsets("go1.99", &o) == -ENOENT);
	CHECK(goprobe_version_offsets("go2", &o) == -ENOENT);
	CHECK(goprobe_version_offsets("", &o) == -ENOENT);
}

TEST(the_cookie_carries_direction_and_offsets)
{
	struct goprobe_offsets o = { 0x10, 0x208, 0xfff8 };
	uint64_t r = goprobe_cookie(&o, 1), w = goprobe_cookie(&o, 0);

	CHECK(r & SONDE_GO_TLS_READ);
	CHECK(!(w & SONDE_GO_TLS_READ));
	CHECK(((r >> SONDE_GO_TLS_CONN_SHIFT) & 0xffff) == 0x10);
	CHECK(((r >> SONDE_GO_TLS_FD_SHIFT) & 0xffff) == 0x208);
	CHECK(((r >> SONDE_GO_TLS_SYSFD_SHIFT) & 0xffff) == 0xfff8);
	CHECK((r & ~(uint64_t)SONDE_GO_TLS_READ) == w);
	CHECK(((r >> SONDE_TLS_PLAIN_KIND_SHIFT) & 0xff) ==
	      SONDE_TLS_PLAIN_GO_ENTRY);
}

/* Go's prologues (amd64): the probe goes on the stack check's jump. */
TEST(entry_probes_skip_the_stack_check_to_its_jump)
{
	/* cmp 0x10(%r14),%rsp; jbe rel8; sub $0x68,%rsp */
	static const uint8_t small[] = { 0x49, 0x3b, 0x66, 0x10, 0x76,
					 0x40, 0x48, 0x83, 0xec, 0x68 };
	/* cmp 0x10(%r14),%rsp; jbe rel32 */
	static const uint8_t far[] = { 0x49, 0x3b, 0x66, 0x10, 0x0f,
				       0x86, 0xc2, 0x03, 0x00, 0x00 };
	/* lea -0x68(%rsp),%r12; cmp 0x10(%r14),%r12; jbe rel32 */
	static const uint8_t big[] = { 0x4c, 0x8d, 0x64, 0x24, 0x98,
				       0x4d, 0x3b, 0x66, 0x10, 0x0f,
				       0x86, 0x64, 0x07, 0x00, 0x00 };
	/* lea -0x1000(%rsp),%r12; cmp 0x10(%r14),%r12; jbe rel8 */
	static const uint8_t huge[] = { 0x4c, 0x8d, 0xa4, 0x24, 0x00,
					0xf0, 0xff, 0xff, 0x4d, 0x3b,
					0x66, 0x10, 0x76, 0x10 };
	/* A nosplit function: no check. */
	static const uint8_t nosplit[] = { 0x48, 0x83, 0xec, 0x18, 0xc3 };
	/* The check, but the cmp against another register. */
	static const uint8_t other[] = { 0x4d, 0x3b, 0x66, 0x10, 0x76, 0x40 };

	CHECK(goprobe_entry_skip(small, sizeof(small)) == 4);
	CHECK(goprobe_entry_skip(far, sizeof(far)) == 4);
	CHECK(goprobe_entry_skip(big, sizeof(big)) == 9);
	CHECK(goprobe_entry_skip(huge, sizeof(huge)) == 12);
	CHECK(goprobe_entry_skip(nosplit, sizeof(nosplit)) == 0);
	CHECK(goprobe_entry_skip(other, sizeof(other)) == 0);
	CHECK(goprobe_entry_skip(small, 5) == 0); /* cut short */
	CHECK(goprobe_entry_skip(big, 4) == 0);
}

/* The byte at offset off of path, or -1. */
static int byte_at(const char *path, uint64_t off)
{
	FILE *f = fopen(path, "rb");
	int c = EOF;

	if (f && fseek(f, (long)off, SEEK_SET) == 0)
		c = fgetc(f);
	if (f)
		fclose(f);
	return c == EOF ? -1 : c;
}

/* Whether the byte at offset off of path is a RET (C3 or C2). */
static bool ret_at(const char *path, uint64_t off)
{
	int c = byte_at(path, off);

	return c == 0xc3 || c == 0xc2;
}

/* Whether an entry probe at off of path, past the function's start at
 * entry, is on a jbe (rel8 76, or rel32 0f 86) within its first 16
 * bytes. */
static bool on_the_stack_check_jump(const char *path, uint64_t entry,
				    uint64_t off)
{
	int c = byte_at(path, off);

	return off > entry && off - entry < 16 &&
	       (c == 0x76 || (c == 0x0f && byte_at(path, off + 1) == 0x86));
}

static void check_points(const char *path)
{
	struct goprobe_point p[GOPROBE_MAX_POINTS];
	uint64_t read_at = 0, write_at = 0;
	char why[256];
	int n = goprobe_points(path, p, why, sizeof(why));

	CHECK(n >= 3);
	if (n < 3) {
		fprintf(stderr, "%s: %d (%s)\n", path, n, why);
		return;
	}
	/* The unstripped build's symbols say where the functions are. */
	CHECK(elfsym_offset(plain, "crypto/tls.(*Conn).Read", &read_at) == 0);
	CHECK(elfsym_offset(plain, "crypto/tls.(*Conn).Write", &write_at) == 0);
	CHECK(p[0].kind == GOPROBE_READ_ENTRY);
	CHECK(on_the_stack_check_jump(path, read_at, p[0].offset));
	CHECK(p[0].cookie & SONDE_GO_TLS_READ);
	CHECK(p[1].kind == GOPROBE_WRITE_ENTRY);
	CHECK(on_the_stack_check_jump(path, write_at, p[1].offset));
	CHECK(!(p[1].cookie & SONDE_GO_TLS_READ));
	for (int i = 2; i < n; i++) {
		CHECK(p[i].kind == GOPROBE_READ_RETURN);
		CHECK(p[i].cookie == (uint64_t)SONDE_TLS_PLAIN_GO_RETURN
					     << SONDE_TLS_PLAIN_KIND_SHIFT);
		CHECK(p[i].offset > read_at);
		CHECK(ret_at(path, p[i].offset));
	}
}

TEST(points_in_a_go_program_as_built)
{
	check_points(plain);
}

/* No symbol table and no DWARF: the Go symbol table and the offsets by
 * version give the same points. */
TEST(points_in_a_stripped_go_program)
{
	struct goprobe_point a[GOPROBE_MAX_POINTS], b[GOPROBE_MAX_POINTS];
	char why[256];
	int na = goprobe_points(plain, a, why, sizeof(why));
	int nb = goprobe_points(stripped, b, why, sizeof(why));

	check_points(stripped);
	CHECK(na == nb);
	for (int i = 0; i < na && na == nb; i++)
		CHECK(a[i].kind == b[i].kind && a[i].offset == b[i].offset &&
		      a[i].cookie == b[i].cookie);
}

/* The table agrees with the DWARF of what this machine's Go builds. */
TEST(the_version_table_agrees_with_dwarf)
{
	struct goprobe_offsets table, dwarf;
	char version[64];

	CHECK(gobin_version(plain, version, sizeof(version)) == 0);
	CHECK(goprobe_version_offsets(version, &table) == 0);
	CHECK(goprobe_dwarf_offsets(plain, &dwarf) == 0);
	CHECK(table.conn == dwarf.conn && table.fd == dwarf.fd &&
	      table.sysfd == dwarf.sysfd);
	CHECK(goprobe_dwarf_offsets(stripped, &dwarf) == -ENOENT);
}

TEST(files_that_are_not_go_programs_with_tls)
{
	static const char no_tls[] = "package main\n"
				     "\n"
				     "import \"fmt\"\n"
				     "\n"
				     "func main() { fmt.Println(\"hi\") }\n";
	struct goprobe_point p[GOPROBE_MAX_POINTS];
	char why[256], hello[600];

	CHECK(goprobe_points("/bin/ls", p, why, sizeof(why)) == -ENOEXEC);
	CHECK(goprobe_points("/nonexistent", p, why, sizeof(why)) < 0);
	CHECK(gobuild(tmpdir, "hello", no_tls, "-s -w", hello, sizeof(hello)) ==
	      0);
	CHECK(goprobe_points(hello, p, why, sizeof(why)) == -ENOENT);
}

int main(void)
{
	static const struct unit_case plain_cases[] = {
		UNIT_CASE(offsets_by_go_version),
		UNIT_CASE(the_cookie_carries_direction_and_offsets),
		UNIT_CASE(entry_probes_skip_the_stack_check_to_its_jump),
	};
	static const struct unit_case go_cases[] = {
		UNIT_CASE(points_in_a_go_program_as_built),
		UNIT_CASE(points_in_a_stripped_go_program),
		UNIT_CASE(the_version_table_agrees_with_dwarf),
		UNIT_CASE(files_that_are_not_go_programs_with_tls),
	};
	int rc;

	rc = unit_run("goprobe", plain_cases,
		      sizeof(plain_cases) / sizeof(plain_cases[0]));
	if (!gobuild_available()) {
		printf("goprobe: no Go toolchain at " GOBUILD_GO
		       ": the Go programs are not built\n");
		return rc;
	}
	if (!mkdtemp(tmpdir) ||
	    gobuild(tmpdir, "plain", gobuild_tls_program, "", plain,
		    sizeof(plain)) ||
	    gobuild(tmpdir, "stripped", gobuild_tls_program, "-s -w", stripped,
		    sizeof(stripped))) {
		fprintf(stderr, "goprobe: cannot build the Go programs\n");
		return 1;
	}
	rc |= unit_run("goprobe (Go programs)", go_cases,
		       sizeof(go_cases) / sizeof(go_cases[0]));
	unit_remove_dir(tmpdir);
	return rc;
}
