/* gobin: a Go program built twice by the installed toolchain (gobuild.h:
 * cgo on, so linked by Go's linker with net's and runtime/cgo's C
 * functions, dynamically), as is and stripped (-ldflags='-s -w'), must
 * give the toolchain's version and the same function offsets from both
 * builds: from .symtab, equal to nm's addresses, and from the Go function
 * table .gopclntab alone, with code bytes equal to objdump's. Copies of the stripped binary then lose their
 * section headers, the table's textStart (as later Go releases leave it),
 * its Go 1.18 magic (for 1.20's), or its whole table (for a hand-made Go
 * 1.16 one), and are truncated and damaged: errors, never a crash. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gobuild.h"
#include "kernel/gobin.h"
#include "unit.h"

/* Go aligns functions to 32 bytes on amd64: the table's size (to the next
 * entry) exceeds the symbol's by the padding, less than this. */
#define PAD_MAX 64

static char tmpdir[] = "/tmp/sonde-gobin-XXXXXX";
static char plain[256], stripped[256];
static char go_version[64];

static const char *const tls_names[] = {
	"crypto/tls.(*Conn).Read",
	"crypto/tls.(*Conn).Write",
	"main.main",
};
#define NTLS 3

/* One function as nm tells it. .symtab names assembly functions
 * "name.abi0" (their calling convention), the table plain "name"; the
 * table names a generic instantiation with "[...]" for its type
 * arguments (cmd/link pcln.go), so those are left out of comparisons, as
 * are the symbols Go's linker gives each section of a cgo object,
 * "net(.text)" (cmd/link/internal/loadelf), which are no functions. */
struct sym {
	uint64_t addr, size;
	char *name, *table_name;
	bool ambiguous; /* another function has its table name */
};

static struct sym *syms;
static size_t nsyms;

static int run(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fprintf(stderr, "failed (%d): %s\n", rc, cmd);
	return rc;
}

/* gobuild_tls_program as is and stripped, and the toolchain's version. */
static int build_all(void)
{
	if (gobuild(tmpdir, "plain", gobuild_tls_program, "", plain,
		    sizeof(plain)) ||
	    gobuild(tmpdir, "stripped", gobuild_tls_program, "-s -w", stripped,
		    sizeof(stripped)) ||
	    gobuild_output(tmpdir, "env GOVERSION", go_version,
			   sizeof(go_version)))
		return -1;
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int by_table_name(const void *a, const void *b)
{
	return strcmp((*(const struct sym *const *)a)->table_name,
		      (*(const struct sym *const *)b)->table_name);
}

/* An assembly function and its ABI wrapper ("x.abi0" and "x") share a
 * table name, where either may come first. */
static int mark_ambiguous(void)
{
	struct sym **by = calloc(nsyms, sizeof(*by));

	if (!by)
		return -1;
	for (size_t i = 0; i < nsyms; i++)
		by[i] = &syms[i];
	qsort(by, nsyms, sizeof(*by), by_table_name);
	for (size_t i = 1; i < nsyms; i++)
		if (strcmp(by[i - 1]->table_name, by[i]->table_name) == 0)
			by[i - 1]->ambiguous = by[i]->ambiguous = true;
	free(by);
	return 0;
}

/* Functions of the plain build from nm: defined text symbols with a
 * size. Names may hold spaces (generic instantiations). */
static int load_syms(void)
{
	char cmd[400], line[8192];
	size_t cap = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm -S --defined-only %s", plain);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		unsigned long long addr, size;
		char type;
		int at = 0;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%llx %llx %c %n", &addr, &size, &type, &at) !=
			    3 ||
		    !at || (type != 'T' && type != 't') || !size ||
		    strchr(line + at, '[') || strstr(line + at, "(."))
			continue;
		if (nsyms == cap) {
			struct sym *more;

			cap = cap ? 2 * cap : 1024;
			more = realloc(syms, cap * sizeof(*syms));
			if (!more) {
				pclose(p);
				return -1;
			}
			syms = more;
		}
		syms[nsyms].addr = addr;
		syms[nsyms].size = size;
		syms[nsyms].ambiguous = false;
		syms[nsyms].name = strdup(line + at);
		syms[nsyms].table_name = strdup(line + at);
		if (syms[nsyms].table_name && ends_with(line + at, ".abi0"))
			syms[nsyms].table_name[strlen(line + at) - 5] = '\0';
		nsyms++;
	}
	if (pclose(p) != 0)
		return -1;
	for (size_t i = 0; i < nsyms; i++)
		if (!syms[i].name || !syms[i].table_name)
			return -1;
	return mark_ambiguous();
}

static const struct sym *find_sym(const char *name)
{
	for (size_t i = 0; i < nsyms; i++)
		if (strcmp(syms[i].name, name) == 0)
			return &syms[i];
	return NULL;
}

/* The file offset of vaddr through the PT_LOAD segments (libelf). */
static uint64_t file_offset(const char *path, uint64_t vaddr)
{
	uint64_t off = 0;
	size_t nphdr;
	int fd = open(path, O_RDONLY);
	Elf *elf;

	if (fd < 0)
		return 0;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && !elf_getphdrnum(elf, &nphdr)) {
		for (size_t i = 0; i < nphdr; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD &&
			    vaddr >= ph.p_vaddr &&
			    vaddr < ph.p_vaddr + ph.p_filesz)
				off = vaddr - ph.p_vaddr + ph.p_offset;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return off;
}

/* A section's file offset and size, or of the first SHT_SYMTAB when name
 * is NULL; -1 when absent. */
static int section(const char *path, const char *name, uint64_t *off,
		   uint64_t *size)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int rc = -1, fd = open(path, O_RDONLY);
	Elf *elf;

	if (fd < 0)
		return -1;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && !elf_getshdrstrndx(elf, &shstrndx) &&
	       (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *sname;

		if (!gelf_getshdr(scn, &sh))
			continue;
		sname = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name ? sname && strcmp(sname, name) == 0 :
			   sh.sh_type == SHT_SYMTAB) {
			*off = sh.sh_offset;
			*size = sh.sh_size;
			rc = 0;
			break;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return rc;
}

/* The instruction bytes objdump decodes in [addr, addr + size) of path;
 * how many, at most max. */
static size_t objdump_bytes(const char *path, uint64_t addr, uint64_t size,
			    uint8_t *out, size_t max)
{
	char cmd[512], line[512];
	size_t n = 0;
	FILE *p;

	snprintf(
		cmd, sizeof(cmd),
		"objdump -d -z --start-address=0x%llx --stop-address=0x%llx %s",
		(unsigned long long)addr, (unsigned long long)(addr + size),
		path);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	/* "  61dba0:\t49 3b 66 10          \tcmp    0x10(%r14),%rsp" */
	while (fgets(line, sizeof(line), p)) {
		char *hex = strchr(line, '\t');
		unsigned byte;
		int used;

		if (!hex || hex == line || hex[-1] != ':')
			continue;
		hex++;
		while (n < max && *hex != '\t' &&
		       sscanf(hex, " %2x%n", &byte, &used) == 1) {
			out[n++] = (uint8_t)byte;
			hex += used;
			while (*hex == ' ')
				hex++;
		}
	}
	pclose(p);
	return n;
}

static int copy_file(const char *from, const char *to, uint64_t max)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "head -c %llu %s > %s",
		 (unsigned long long)max, from, to);
	return run(cmd);
}

static int patch(const char *path, uint64_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = pwrite(fd, bytes, n, (off_t)off) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

/* A copy of the stripped build in tmpdir/name. */
static const char *stripped_copy(const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", tmpdir, name);
	return copy_file(stripped, path, file_size(stripped)) ? NULL : path;
}

/* The three functions in path equal those of the stripped build. */
static void check_same_as_stripped(const char *path)
{
	struct gobin_func want[NTLS], got[NTLS];

	CHECK(gobin_lookup(stripped, tls_names, NTLS, want) == NTLS);
	CHECK(gobin_lookup(path, tls_names, NTLS, got) == NTLS);
	for (int i = 0; i < NTLS; i++) {
		CHECK(got[i].offset == want[i].offset);
		CHECK(got[i].size == want[i].size);
	}
}

TEST(version_is_the_toolchains)
{
	char v[64], small[5];

	CHECK(gobin_version(plain, v, sizeof(v)) == 0);
	CHECK_STR(v, go_version);
	CHECK(gobin_version(stripped, v, sizeof(v)) == 0);
	CHECK_STR(v, go_version);
	/* Cut to the room given, NUL included. */
	CHECK(gobin_version(plain, small, sizeof(small)) == 0);
	CHECK(strlen(small) == 4 && strncmp(small, go_version, 4) == 0);
	CHECK(gobin_version(plain, v, 0) == -EINVAL);
}

/* The stripped build really has no .symtab: its offsets come from the
 * table, the plain build's from .symtab, and they agree with nm, with
 * each other and, through the bytes, with objdump. The bytes are those
 * objdump finds at the symbol's address in the stripped build itself:
 * stripping moves no code, but the build settings in .go.buildinfo
 * ("-ldflags=-s -w") can move the data after it, and with it the
 * displacements in the code that reach the data. */
TEST(tls_functions_in_both_builds)
{
	struct gobin_func fp[NTLS], fs[NTLS];
	uint64_t off, size;

	CHECK(section(stripped, NULL, &off, &size) != 0);
	CHECK(section(plain, NULL, &off, &size) == 0);
	CHECK(gobin_lookup(plain, tls_names, NTLS, fp) == NTLS);
	CHECK(gobin_lookup(stripped, tls_names, NTLS, fs) == NTLS);
	for (int i = 0; i < NTLS; i++) {
		const struct sym *s = find_sym(tls_names[i]);
		uint8_t want[4096];
		uint8_t *code;
		size_t n;

		CHECK(s != NULL);
		if (!s)
			continue;
		CHECK(fp[i].offset == file_offset(plain, s->addr));
		CHECK(fp[i].size == s->size);
		/* Stripping moves no code. */
		CHECK(fs[i].offset == fp[i].offset);
		CHECK(fs[i].size >= s->size && fs[i].size < s->size + PAD_MAX);
		n = objdump_bytes(stripped, s->addr, s->size, want,
				  sizeof(want));
		CHECK(n >= 16 &&
		      n == (s->size < sizeof(want) ? s->size : sizeof(want)));
		code = gobin_code(stripped, fs[i].offset, fs[i].size);
		CHECK(code != NULL);
		if (code && memcmp(code, want, n) != 0) {
			fprintf(stderr, "%s: code at 0x%llx differs\n",
				tls_names[i], (unsigned long long)fs[i].offset);
			CHECK(0);
		}
		free(code);
	}
}

/* Every function nm lists is in the table, at the symbol's offset, with
 * the symbol's size plus padding. */
TEST(pclntab_agrees_with_symtab)
{
	const char **names = calloc(nsyms, sizeof(*names));
	struct gobin_func *f = calloc(nsyms, sizeof(*f));
	size_t bad = 0, skipped = 0;

	CHECK(nsyms >= 300);
	CHECK(names && f);
	if (!names || !f)
		goto out;
	for (size_t i = 0; i < nsyms; i++)
		names[i] = syms[i].table_name;
	CHECK(gobin_lookup_pclntab(plain, names, nsyms, f) == (int)nsyms);
	for (size_t i = 0; i < nsyms; i++) {
		if (syms[i].ambiguous) {
			skipped++;
			continue;
		}
		if (f[i].offset == file_offset(plain, syms[i].addr) &&
		    f[i].size >= syms[i].size &&
		    f[i].size < syms[i].size + PAD_MAX)
			continue;
		if (bad++ < 5)
			fprintf(stderr,
				"%s: table 0x%llx+%llu, nm 0x%llx+%llu\n",
				names[i], (unsigned long long)f[i].offset,
				(unsigned long long)f[i].size,
				(unsigned long long)syms[i].addr,
				(unsigned long long)syms[i].size);
	}
	CHECK(bad == 0);
	CHECK(nsyms - skipped >= 300);
	printf("gobin: %zu functions agree, %zu sharing a name skipped\n",
	       nsyms - skipped - bad, skipped);
out:
	free(names);
	free(f);
}

/* ELF64 header fields e_shoff (0x28), e_shnum (0x3c), e_shstrndx (0x3e)
 * zeroed: no sections, so the table and the build info are found in the
 * segments. */
static int drop_section_headers(const char *path)
{
	static const uint8_t zero[8];

	return patch(path, 0x28, zero, 8) || patch(path, 0x3c, zero, 2) ||
	       patch(path, 0x3e, zero, 2);
}

TEST(without_section_headers)
{
	char path[300], v[64];

	CHECK(stripped_copy("noshdr", path, sizeof(path)) != NULL);
	CHECK(drop_section_headers(path) == 0);
	check_same_as_stripped(path);
	CHECK(gobin_version(path, v, sizeof(v)) == 0);
	CHECK_STR(v, go_version);
}

/* Later Go releases write 0 for pcHeader.textStart: the base of the
 * entry offsets then comes from runtime.firstmoduledata. */
TEST(text_start_unset)
{
	static const uint8_t zero[8];
	char path[300];
	uint64_t off = 0, size = 0;

	CHECK(section(stripped, ".gopclntab", &off, &size) == 0);
	CHECK(stripped_copy("notext", path, sizeof(path)) != NULL);
	/* magic, pad, minLC, ptrSize, nfunc, nfiles, then textStart */
	CHECK(patch(path, off + 8 + 2 * 8, zero, 8) == 0);
	check_same_as_stripped(path);
	CHECK(drop_section_headers(path) == 0);
	check_same_as_stripped(path);
}

/* Go 1.20 changed the magic, not the parts read here. */
TEST(go120_magic)
{
	static const uint8_t magic120[4] = { 0xf1, 0xff, 0xff, 0xff };
	char path[300];
	uint64_t off = 0, size = 0;

	CHECK(section(stripped, ".gopclntab", &off, &size) == 0);
	CHECK(stripped_copy("go120", path, sizeof(path)) != NULL);
	CHECK(patch(path, off, magic120, 4) == 0);
	check_same_as_stripped(path);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A Go 1.16/1.17 table, made by hand in place of the stripped build's:
 * header (magic 0xfffffffa, then nfunc, nfiles, funcnameOffset, cuOffset,
 * filetabOffset, pctabOffset, pclnOffset as 8-byte words), names, then
 * functab of (entry address, funcoff) pairs and the end address, then
 * each _func (entry address, nameoff). The three functions ordered by
 * address: Write, Read, main.main in this build. */
TEST(go116_table)
{
	enum { HDR = 64, NAMES = HDR, FTAB = 512 };
	uint8_t tab[1024] = { 0xfa, 0xff, 0xff, 0xff, 0, 0, 1, 8 };
	const struct sym *s[NTLS];
	struct gobin_func f[NTLS];
	char path[300];
	uint64_t off = 0, size = 0, name = NAMES, funcs = 7 * 8;
	int order[NTLS] = { 1, 0, 2 };

	for (int i = 0; i < NTLS; i++) {
		s[i] = find_sym(tls_names[order[i]]);
		CHECK(s[i] != NULL);
		if (!s[i])
			return;
	}
	CHECK(s[0]->addr < s[1]->addr && s[1]->addr < s[2]->addr);
	put64(tab + 8, NTLS);
	put64(tab + 8 + 2 * 8, NAMES);
	put64(tab + 8 + 6 * 8, FTAB);
	for (int i = 0; i < NTLS; i++) {
		uint8_t *rec = tab + FTAB + funcs + 16 * i;

		put64(tab + FTAB + 16 * i, s[i]->addr);
		put64(tab + FTAB + 16 * i + 8, funcs + 16 * i);
		put64(rec, s[i]->addr);
		put64(rec + 8, name - NAMES); /* nameoff, 4 bytes used */
		strcpy((char *)tab + name, tls_names[order[i]]);
		name += strlen(tls_names[order[i]]) + 1;
	}
	put64(tab + FTAB + 16 * NTLS, s[2]->addr + s[2]->size);
	CHECK(section(stripped, ".gopclntab", &off, &size) == 0);
	CHECK(stripped_copy("go116", path, sizeof(path)) != NULL);
	CHECK(patch(path, off, tab, sizeof(tab)) == 0);
	CHECK(gobin_lookup(path, tls_names, NTLS, f) == NTLS);
	for (int i = 0; i < NTLS; i++) {
		int k = order[i];
		uint64_t end =
			i + 1 < NTLS ? s[i + 1]->addr : s[i]->addr + s[i]->size;

		CHECK(f[k].offset == file_offset(plain, s[i]->addr));
		CHECK(f[k].size == end - s[i]->addr);
	}
}

TEST(not_go)
{
	struct gobin_func f[NTLS];
	char path[300], v[64];

	CHECK(gobin_version("/bin/ls", v, sizeof(v)) == -ENOEXEC);
	CHECK(gobin_lookup("/bin/ls", tls_names, NTLS, f) == -ENOEXEC);
	snprintf(path, sizeof(path), "%s/plain.go", tmpdir);
	CHECK(gobin_version(path, v, sizeof(v)) == -ENOEXEC);
	CHECK(gobin_lookup(path, tls_names, NTLS, f) == -ENOEXEC);
	CHECK(gobin_version("/nonexistent/sonde", v, sizeof(v)) == -ENOENT);
	CHECK(gobin_lookup("/nonexistent/sonde", tls_names, NTLS, f) ==
	      -ENOENT);
	/* gobin_code stays within the file. */
	CHECK(gobin_code(stripped, file_size(stripped), 1) == NULL);
	CHECK(gobin_code(stripped, 0, 0) == NULL);
	CHECK(gobin_code(stripped, UINT64_MAX, 16) == NULL);
}

/* Whatever a damaged file gives: an error, or offsets inside it. */
static void check_sane(const char *path, int found, const struct gobin_func *f)
{
	uint64_t len = file_size(path);

	CHECK(found <= NTLS);
	for (int i = 0; found > 0 && i < NTLS; i++)
		CHECK(!f[i].size ||
		      (f[i].offset < len && f[i].size <= len - f[i].offset));
}

/* A copy of the stripped build cut to len bytes: cut before or inside
 * the table, no lookup succeeds; cut after it, any answer lies within
 * what is left. */
static void check_cut(uint64_t len, bool table_cut)
{
	struct gobin_func f[NTLS];
	char path[300], v[64];

	snprintf(path, sizeof(path), "%s/truncated", tmpdir);
	CHECK(copy_file(stripped, path, len) == 0);
	if (table_cut) {
		CHECK(gobin_lookup(path, tls_names, NTLS, f) < 0);
		CHECK(gobin_lookup_pclntab(path, tls_names, NTLS, f) < 0);
	} else {
		check_sane(path, gobin_lookup(path, tls_names, NTLS, f), f);
	}
	if (gobin_version(path, v, sizeof(v)) == 0)
		CHECK_STR(v, go_version);
}

TEST(truncated)
{
	uint64_t off = 0, size = 0;

	CHECK(section(stripped, ".gopclntab", &off, &size) == 0);
	check_cut(0, true);
	check_cut(16, true);
	check_cut(64, true);
	check_cut(4096, true);
	check_cut(off + 64, true);	 /* inside the 72-byte header */
	check_cut(off + size / 2, true); /* functab is in the second half */
	check_cut(off + size, false);
	check_cut(file_size(stripped) - 1, false);
}

/* Header fields set to what no table has: errors. Then random bytes in
 * the table's first 4 KiB (header and names) or anywhere in it (functab,
 * _func records), many times over: no crash, no answer outside the
 * file. */
TEST(damaged_table)
{
	static const uint8_t go12[4] = { 0xfb, 0xff, 0xff, 0xff };
	static const uint8_t huge[8] = { 0xff, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0x7f };
	/* nfunc, funcnameOffset, pclnOffset; then ptrSize */
	const uint64_t words[] = { 8, 8 + 3 * 8, 8 + 7 * 8 };
	struct gobin_func f[NTLS];
	uint64_t off = 0, size = 0;
	uint32_t seed = 0x5eed;
	char path[300], v[64];
	uint8_t orig[4096];
	FILE *in;

	CHECK(section(stripped, ".gopclntab", &off, &size) == 0);
	CHECK(stripped_copy("damaged", path, sizeof(path)) != NULL);
	CHECK(patch(path, off, go12, 4) == 0);
	CHECK(gobin_lookup(path, tls_names, NTLS, f) == -ENOEXEC);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		CHECK(stripped_copy("damaged", path, sizeof(path)) != NULL);
		CHECK(patch(path, off + words[i], huge, 8) == 0);
		CHECK(gobin_lookup(path, tls_names, NTLS, f) == -ENOEXEC);
	}
	CHECK(stripped_copy("damaged", path, sizeof(path)) != NULL);
	CHECK(patch(path, off + 7, "\x10", 1) == 0);
	CHECK(gobin_lookup(path, tls_names, NTLS, f) == -ENOEXEC);

	CHECK(stripped_copy("damaged", path, sizeof(path)) != NULL);
	in = fopen(path, "rb");
	CHECK(in && fseek(in, (long)off, SEEK_SET) == 0 &&
	      fread(orig, 1, sizeof(orig), in) == sizeof(orig));
	if (in)
		fclose(in);
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 4; i++) {
			uint32_t r = unit_xorshift32(&seed);
			uint8_t b = (uint8_t)(r >> 24);

			patch(path,
			      off + (round % 2 ? r % sizeof(orig) : r % size),
			      &b, 1);
		}
		check_sane(path, gobin_lookup(path, tls_names, NTLS, f), f);
		check_sane(path, gobin_lookup_pclntab(path, tls_names, NTLS, f),
			   f);
		gobin_version(path, v, sizeof(v));
		/* Put the first 4 KiB back; damage elsewhere accumulates. */
		patch(path, off, orig, sizeof(orig));
	}
}

TEST(skipped_without_go)
{
	printf("gobin: %s not found, Go binary tests skipped\n", GOBUILD_GO);
}

static void cleanup(void)
{
	unit_remove_dir(tmpdir);
	for (size_t i = 0; i < nsyms; i++) {
		free(syms[i].name);
		free(syms[i].table_name);
	}
	free(syms);
}

int main(void)
{
	static const struct unit_case cases[] = {
		UNIT_CASE(version_is_the_toolchains),
		UNIT_CASE(tls_functions_in_both_builds),
		UNIT_CASE(pclntab_agrees_with_symtab),
		UNIT_CASE(without_section_headers),
		UNIT_CASE(text_start_unset),
		UNIT_CASE(go120_magic),
		UNIT_CASE(go116_table),
		UNIT_CASE(not_go),
		UNIT_CASE(truncated),
		UNIT_CASE(damaged_table),
	};
	static const struct unit_case skip[] = {
		UNIT_CASE(skipped_without_go),
	};
	int rc;

	if (!gobuild_available())
		return unit_run("gobin", skip, 1);
	if (elf_version(EV_CURRENT) == EV_NONE || !mkdtemp(tmpdir)) {
		perror("gobin setup");
		return 1;
	}
	if (build_all() || load_syms()) {
		fprintf(stderr, "gobin: could not build the Go program\n");
		cleanup();
		return 1;
	}
	rc = unit_run("gobin", cases, sizeof(cases) / sizeof(cases[0]));
	cleanup();
	return rc;
}
