/* godwarf: the member offsets read from a Go binary's DWARF equal the ones
 * derived by hand from Go 1.19's sources and the ones binutils' readelf
 * prints, whichever way the sections are stored (SHF_COMPRESSED as Go's
 * linker writes them, plain, .zdebug_*); gcc's and clang's DWARF 2 to 5
 * give a C struct's offsets; stripped, foreign, damaged and truncated
 * files give an error or fewer members, never a crash. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gobuild.h"
#include "kernel/godwarf.h"
#include "unit.h"

static char tmpdir[] = "/tmp/sonde-godwarf-XXXXXX";
static bool have_go;
static bool go119;

/* Go 1.19 on amd64, from /usr/lib/go/src:
 * - crypto/tls.Conn (crypto/tls/conn.go): conn net.Conn is the first
 *   field: 0. isClient bool follows the interface (two words): 16.
 * - net.TCPConn (net/tcpsock.go): embeds conn, a field named "conn": 0.
 * - net.conn (net/net.go): fd *netFD, its only field: 0.
 * - net.netFD (net/fd_posix.go): pfd poll.FD first: 0. family int follows
 *   poll.FD, 56 bytes (below): 56.
 * - internal/poll.FD (internal/poll/fd_unix.go): fdmu fdMutex
 *   (fd_mutex.go: state uint64, rsema and wsema uint32: 16 bytes), then
 *   Sysfd int: 16. The rest: pd pollDesc (one uintptr) at 24, iovecs
 *   pointer 32, csema and isBlocking uint32 40 and 44, IsStream,
 *   ZeroReadIsEOF and isFile bools 48 to 50; 51 bytes, aligned to 8: 56.
 * The first five are what sonde reads; the last two are not 0, so a
 * reader that reports 0 for everything fails. */
static const struct go_expect {
	const char *type, *member;
	int64_t go119;
} go_want[] = {
	{ "crypto/tls.Conn", "conn", 0 },
	{ "net.TCPConn", "conn", 0 },
	{ "net.conn", "fd", 0 },
	{ "net.netFD", "pfd", 0 },
	{ "internal/poll.FD", "Sysfd", 16 },
	{ "crypto/tls.Conn", "isClient", 16 },
	{ "net.netFD", "family", 56 },
};

#define GO_WANT (sizeof(go_want) / sizeof(go_want[0]))
/* go_want, then a member and a type the binary does not have. */
#define GO_MEMBERS (GO_WANT + 2)

static void go_members(struct godwarf_member *m)
{
	for (size_t i = 0; i < GO_WANT; i++)
		m[i] = (struct godwarf_member){ go_want[i].type,
						go_want[i].member, -2 };
	m[GO_WANT] =
		(struct godwarf_member){ "net.netFD", "no_such_member", -2 };
	m[GO_WANT + 1] = (struct godwarf_member){ "no/such.Type", "conn", -2 };
}

static const char *tmp_path(const char *name)
{
	static char path[4][300];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static unsigned char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)size);
		if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)size;
	}
	fclose(f);
	return buf;
}

/* Builds gobuild_tls_program with the given -ldflags into tmpdir/name
 * (gobuild.h). With cgo on, Go's linker still links it, net's and
 * runtime/cgo's C objects in, and writes the DWARF as it does without
 * cgo: its own units only, compressed, section headers at the start.
 * Returns the path, valid until the next call, or NULL. */
static const char *go_build(const char *name, const char *ldflags)
{
	static char exe[300];

	if (gobuild(tmpdir, name, gobuild_tls_program, ldflags, exe,
		    sizeof(exe)))
		return NULL;
	return exe;
}

/* The header of the first section called name; false when none. */
static bool find_section(const char *path, const char *name, GElf_Shdr *out)
{
	int fd = open(path, O_RDONLY);
	Elf_Scn *scn = NULL;
	bool found = false;
	size_t shstrndx;
	Elf *elf;

	if (fd < 0)
		return false;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && !elf_getshdrstrndx(elf, &shstrndx)) {
		while (!found && (scn = elf_nextscn(elf, scn))) {
			const char *s;

			if (!gelf_getshdr(scn, out))
				break;
			s = elf_strptr(elf, shstrndx, out->sh_name);
			found = s && strcmp(s, name) == 0;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return found;
}

/* readelf's value after "attr ...: " on an attribute line, or NULL. */
static const char *readelf_attr(const char *line, const char *attr)
{
	const char *p = strstr(line, attr);

	if (!p)
		return NULL;
	p = strstr(p, ": ");
	return p ? p + 2 : NULL;
}

/* The same members as binutils' readelf prints them, an independent
 * reading of the same DWARF. DIE lines read
 * " <1><7e508>: Abbrev Number: 39 (DW_TAG_structure_type)", their
 * attributes "    <7e509>   DW_AT_name        : net.netFD" and
 * "    <7e523>   DW_AT_data_member_location: 0". Returns how many were
 * found, or -1 when readelf cannot be run. */
static int readelf_offsets(const char *exe, struct godwarf_member *m, size_t n)
{
	char cmd[512], line[1024], type[256] = "", member[256] = "";
	int depth = 0, struct_depth = -1, found = 0;
	bool is_struct = false, is_member = false;
	FILE *p;

	for (size_t i = 0; i < n; i++)
		m[i].offset = -1;
	snprintf(cmd, sizeof(cmd), "readelf --debug-dump=info %s 2>/dev/null",
		 exe);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		const char *v;
		int d;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, " <%d><", &d) == 1 &&
		    strstr(line, "Abbrev Number")) {
			depth = d;
			if (struct_depth >= 0 && depth <= struct_depth)
				struct_depth = -1;
			is_struct = strstr(line, "(DW_TAG_structure_type)");
			is_member = strstr(line, "(DW_TAG_member)");
			member[0] = '\0';
		} else if ((v = readelf_attr(line, "DW_AT_name"))) {
			if (is_struct && struct_depth < 0) {
				snprintf(type, sizeof(type), "%s", v);
				struct_depth = depth;
			} else if (is_member && struct_depth == depth - 1) {
				snprintf(member, sizeof(member), "%s", v);
			}
		} else if ((v = readelf_attr(line,
					     "DW_AT_data_member_location")) &&
			   member[0]) {
			char *end;
			long long off = strtoll(v, &end, 10);

			for (size_t i = 0; *end == '\0' && i < n; i++) {
				if (m[i].offset >= 0 ||
				    strcmp(m[i].type, type) != 0 ||
				    strcmp(m[i].member, member) != 0)
					continue;
				m[i].offset = off;
				found++;
			}
		}
	}
	return pclose(p) == 0 ? found : -1;
}

/* The member offsets of exe equal the hand-derived ones (Go 1.19) and
 * readelf's; the two absent ones are not found. */
static void check_go_offsets(const char *exe)
{
	struct godwarf_member m[GO_MEMBERS], theirs[GO_MEMBERS];

	go_members(m);
	CHECK(godwarf_offsets(exe, m, GO_MEMBERS) == (int)GO_WANT);
	go_members(theirs);
	CHECK(readelf_offsets(exe, theirs, GO_MEMBERS) == (int)GO_WANT);
	for (size_t i = 0; i < GO_MEMBERS; i++) {
		bool ok = m[i].offset == theirs[i].offset;

		if (i < GO_WANT && go119)
			ok = ok && m[i].offset == go_want[i].go119;
		if (!ok) {
			fprintf(stderr, "%s: %s.%s at %lld, readelf %lld\n",
				exe, m[i].type, m[i].member,
				(long long)m[i].offset,
				(long long)theirs[i].offset);
			CHECK(0);
		}
	}
	CHECK(m[GO_WANT].offset == -1 && m[GO_WANT + 1].offset == -1);
}

/* As Go's linker writes them: DWARF 4, SHF_COMPRESSED. */
TEST(go_binary_compressed)
{
	const char *exe;
	GElf_Shdr sh;

	if (!have_go)
		return;
	exe = go_build("prog", "");
	CHECK(exe != NULL);
	if (!exe)
		return;
	CHECK(find_section(exe, ".debug_info", &sh));
	CHECK(sh.sh_flags & SHF_COMPRESSED);
	check_go_offsets(exe);
}

TEST(go_binary_plain)
{
	const char *exe;
	GElf_Shdr sh;

	if (!have_go)
		return;
	exe = go_build("prog_plain", "-compressdwarf=false");
	CHECK(exe != NULL);
	if (!exe)
		return;
	CHECK(find_section(exe, ".debug_info", &sh));
	CHECK(!(sh.sh_flags & SHF_COMPRESSED));
	check_go_offsets(exe);
}

/* The .zdebug_* form, as Go 1.11 and 1.12 wrote it; made by objcopy. */
TEST(go_binary_zdebug)
{
	const char *plain = tmp_path("prog_plain"), *z = tmp_path("prog_z");
	char cmd[1024];
	GElf_Shdr sh;

	if (!have_go)
		return;
	snprintf(cmd, sizeof(cmd),
		 "objcopy --compress-debug-sections=zlib-gnu %s %s", plain, z);
	if (system(cmd) != 0) {
		printf("note: objcopy cannot write .zdebug_*: not checked\n");
		return;
	}
	CHECK(find_section(z, ".zdebug_info", &sh));
	check_go_offsets(z);
}

TEST(go_binary_stripped)
{
	struct godwarf_member m[GO_MEMBERS];
	const char *exe;

	if (!have_go)
		return;
	exe = go_build("prog_stripped", "-s -w");
	CHECK(exe != NULL);
	if (!exe)
		return;
	go_members(m);
	CHECK(godwarf_offsets(exe, m, GO_MEMBERS) == -ENOENT);
	for (size_t i = 0; i < GO_MEMBERS; i++)
		CHECK(m[i].offset == -1);
}

/* The forms Go does not write, from C compilers: DW_OP_plus_uconst
 * locations (DWARF 2), strp names and data1 locations (4), the DWARF 5
 * header with line_strp and implicit_const (gcc) or strx1 names through
 * .debug_str_offsets (clang), and gcc's own compressed sections. */
TEST(c_struct_all_versions)
{
	static const char c_program[] =
		"struct sonde_probe { long a; int b; char c[3]; int d; "
		"void *e; };\n"
		"struct sonde_probe sonde_probe_v;\n"
		"int main(void) { return sonde_probe_v.b; }\n";
	static const struct {
		const char *cc;
		bool zdebug; /* then rewritten to .zdebug_* by objcopy */
	} builds[] = {
		{ "cc -gdwarf-2", false },
		{ "cc -gdwarf-3", false },
		{ "cc -gdwarf-4", false },
		{ "cc -gdwarf-5", false },
		{ "cc -gdwarf-5 -gz=zlib", false },
		{ "clang -gdwarf-4", false },
		{ "clang -gdwarf-5", false },
		{ "cc -gdwarf-4", true },
	};
	static const char *const names[] = { "a", "b", "c", "d", "e" };
	static const int64_t want[] = { 0, 8, 12, 16, 24 };
	const char *src = tmp_path("probe.c"), *exe = tmp_path("probe");

	CHECK(write_file(src, c_program, sizeof(c_program) - 1) == 0);
	for (size_t b = 0; b < sizeof(builds) / sizeof(builds[0]); b++) {
		const char *how = builds[b].cc;
		struct godwarf_member m[5];
		char cmd[1024];
		int len;

		len = snprintf(cmd, sizeof(cmd), "%s -O0 -o %s %s", how, exe,
			       src);
		if (builds[b].zdebug)
			snprintf(cmd + len, sizeof(cmd) - len,
				 " && objcopy --compress-debug-sections="
				 "zlib-gnu %s",
				 exe);
		if (system(cmd) != 0) {
			printf("note: '%s' failed: not checked\n", cmd);
			continue;
		}
		for (int i = 0; i < 5; i++)
			m[i] = (struct godwarf_member){ "sonde_probe", names[i],
							-2 };
		if (godwarf_offsets(exe, m, 5) != 5) {
			fprintf(stderr, "%s%s: not all found\n", how,
				builds[b].zdebug ? " (zdebug)" : "");
			CHECK(0);
		}
		for (int i = 0; i < 5; i++) {
			if (m[i].offset == want[i])
				continue;
			fprintf(stderr, "%s: %s at %lld, want %lld\n", how,
				names[i], (long long)m[i].offset,
				(long long)want[i]);
			CHECK(0);
		}
	}
}

/* A C program with no Go types, or no DWARF at all. */
TEST(system_binary)
{
	struct godwarf_member m[GO_MEMBERS];
	int rc;

	go_members(m);
	rc = godwarf_offsets("/bin/ls", m, GO_MEMBERS);
	CHECK(rc == 0 || rc == -ENOENT);
	for (size_t i = 0; i < GO_MEMBERS; i++)
		CHECK(m[i].offset == -1);
}

/* Whatever came back from a damaged file is sane: an error with every
 * offset -1, or a count that matches the offsets filled. */
static void check_sane(const char *what, int rc, const struct godwarf_member *m)
{
	int filled = 0;

	for (size_t i = 0; i < GO_MEMBERS; i++)
		filled += m[i].offset >= 0;
	if ((rc < 0 && (rc != -ENOEXEC || filled)) ||
	    (rc >= 0 && rc != filled) || m[GO_WANT].offset != -1 ||
	    m[GO_WANT + 1].offset != -1) {
		fprintf(stderr, "%s: returned %d, %d offsets filled\n", what,
			rc, filled);
		CHECK(0);
	}
}

/* Overwrites rounds stretches of the section called name with random
 * bytes (fixed seed), one copy of exe at a time. */
static void damage_section(const char *exe, const char *name, int rounds,
			   uint32_t max_len, bool must_fail)
{
	const char *copy = tmp_path("damaged");
	uint32_t seed = 0x50de;
	unsigned char *orig, *buf;
	GElf_Shdr sh;
	size_t len;

	CHECK(find_section(exe, name, &sh));
	orig = read_whole(exe, &len);
	CHECK(orig != NULL);
	buf = orig ? malloc(len) : NULL;
	if (!buf || sh.sh_offset + sh.sh_size > len || sh.sh_size < 16) {
		free(orig);
		free(buf);
		CHECK(0);
		return;
	}
	for (int r = 0; r < rounds; r++) {
		/* The middle half of the section, stretches of 1 byte up. */
		uint64_t at = sh.sh_offset + sh.sh_size / 4 +
			      unit_xorshift32(&seed) % (sh.sh_size / 2);
		uint32_t n = 1 + unit_xorshift32(&seed) % max_len;
		struct godwarf_member m[GO_MEMBERS];
		char what[128];
		int rc;

		memcpy(buf, orig, len);
		for (uint32_t i = 0;
		     i < n && at + i < sh.sh_offset + sh.sh_size; i++)
			buf[at + i] = (unsigned char)unit_xorshift32(&seed);
		CHECK(write_file(copy, buf, len) == 0);
		go_members(m);
		rc = godwarf_offsets(copy, m, GO_MEMBERS);
		snprintf(what, sizeof(what), "%s round %d (%u bytes at %llu)",
			 name, r, n, (unsigned long long)at);
		check_sane(what, rc, m);
		if (must_fail && rc != -ENOEXEC) {
			fprintf(stderr, "%s: returned %d\n", what, rc);
			CHECK(0);
		}
	}
	free(orig);
	free(buf);
}

TEST(damaged_go_binary)
{
	if (!have_go)
		return;
	/* Plain: the DIEs and abbreviations themselves are damaged. */
	damage_section(tmp_path("prog_plain"), ".debug_info", 24, 4096, false);
	damage_section(tmp_path("prog_plain"), ".debug_abbrev", 24, 8, false);
	/* Compressed: zlib's checksum catches it. */
	damage_section(tmp_path("prog"), ".debug_info", 8, 256, true);
	damage_section(tmp_path("prog_z"), ".zdebug_info", 4, 256, true);
}

/* Copies cut short: inside the DWARF, before it, inside the ELF header. */
TEST(truncated_go_binary)
{
	static const char *const sources[] = { "prog", "prog_plain", "prog_z" };
	const char *copy = tmp_path("truncated");

	if (!have_go)
		return;
	for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
		const char *exe = tmp_path(sources[s]);
		GElf_Shdr info = { 0 };
		unsigned char *buf;
		size_t len, cuts[6];

		buf = read_whole(exe, &len);
		CHECK(buf != NULL);
		if (!buf)
			continue;
		if (!find_section(exe, ".debug_info", &info) &&
		    !find_section(exe, ".zdebug_info", &info))
			CHECK(0);
		cuts[0] = info.sh_offset + info.sh_size / 2;
		cuts[1] = info.sh_offset + 1;
		cuts[2] = info.sh_offset;
		cuts[3] = len / 2;
		cuts[4] = 64;
		cuts[5] = 0;
		for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			struct godwarf_member m[GO_MEMBERS];
			char what[128];
			int rc;

			if (cuts[c] > len)
				continue;
			CHECK(write_file(copy, buf, cuts[c]) == 0);
			go_members(m);
			rc = godwarf_offsets(copy, m, GO_MEMBERS);
			snprintf(what, sizeof(what), "%s cut at %zu",
				 sources[s], cuts[c]);
			check_sane(what, rc, m);
			/* The section headers are at the start of a Go
			 * binary: the cut sections are seen and refused. */
			if (rc >= 0) {
				fprintf(stderr, "%s: returned %d\n", what, rc);
				CHECK(0);
			}
		}
		free(buf);
	}
}

TEST(not_elf_or_missing)
{
	static const char text[] = "#!/bin/sh\necho not elf\n";
	struct godwarf_member m[GO_MEMBERS];
	const char *path = tmp_path("text");

	CHECK(write_file(path, text, sizeof(text) - 1) == 0);
	go_members(m);
	CHECK(godwarf_offsets(path, m, GO_MEMBERS) == -ENOEXEC);
	CHECK(m[0].offset == -1);
	CHECK(godwarf_offsets("/nonexistent/sonde/binary", m, GO_MEMBERS) ==
	      -ENOENT);
}

static void setup(void)
{
	char line[128] = "";

	have_go = gobuild_available();
	if (!have_go) {
		printf("note: %s not installed: Go binaries not checked\n",
		       GOBUILD_GO);
		return;
	}
	/* On failure line is empty: offsets checked against readelf. */
	gobuild_output(tmpdir, "version", line, sizeof(line));
	/* "go version go1.19.8 linux/amd64" */
	go119 = strstr(line, " go1.19 ") || strstr(line, " go1.19.");
	if (!go119 || !strstr(line, "amd64"))
		printf("note: not Go 1.19 on amd64: offsets checked against "
		       "readelf only\n");
	go119 = go119 && strstr(line, "amd64");
}

UNIT_MAIN_IN_DIR("godwarf", tmpdir, setup, UNIT_CASE(go_binary_compressed),
		 UNIT_CASE(go_binary_plain), UNIT_CASE(go_binary_zdebug),
		 UNIT_CASE(go_binary_stripped),
		 UNIT_CASE(c_struct_all_versions), UNIT_CASE(system_binary),
		 UNIT_CASE(damaged_go_binary), UNIT_CASE(truncated_go_binary),
		 UNIT_CASE(not_elf_or_missing))
