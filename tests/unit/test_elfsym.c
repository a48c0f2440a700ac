/* elfsym: a function's file offset is where its code sits in the file.
 * Checked the direct way: the bytes a running process executes for the
 * function equal the bytes of the file at the offset elfsym computed. The
 * first byte is left out of the comparison: a uprobe that another agent
 * placed there shows as int3 in memory. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/elfsym.h"
#include "unit.h"

#define CODE_BYTES 16

static char tmpdir[] = "/tmp/sonde-elfsym-XXXXXX";

/* A program that prints the first CODE_BYTES bytes of its own function
 * sonde_target in hex, as it is mapped at run time. */
static const char program[] =
	"#include <stdio.h>\n"
	"#include <time.h>\n"
	"__attribute__((noinline)) int sonde_target(int x)\n"
	"{ struct timespec t = { 0, x }; return nanosleep(&t, 0) + x * 3; }\n"
	"int main(void) {\n"
	"  const unsigned char *p = (const void *)sonde_target;\n"
	"  for (int i = 0; i < 16; i++) printf(\"%02x\", p[i]);\n"
	"  printf(\"\\n\");\n"
	"  return sonde_target(0) == 0 ? 0 : 1;\n"
	"}\n";

static int read_file_bytes(const char *path, uint64_t off, unsigned char *out,
			   size_t n)
{
	FILE *f = fopen(path, "rb");
	int ok;

	if (!f)
		return -1;
	ok = fseek(f, (long)off, SEEK_SET) == 0 && fread(out, 1, n, f) == n;
	fclose(f);
	return ok ? 0 : -1;
}

/* Builds the program with the given cc flags into tmpdir/name; returns
 * the path (static buffer) or NULL. */
static const char *build(const char *name, const char *flags)
{
	static char exe[256];
	char src[256], cmd[1024];
	FILE *f;

	snprintf(src, sizeof(src), "%s/prog.c", tmpdir);
	f = fopen(src, "w");
	if (!f)
		return NULL;
	fputs(program, f);
	fclose(f);
	snprintf(exe, sizeof(exe), "%s/%s", tmpdir, name);
	snprintf(cmd, sizeof(cmd), "cc -O1 %s -o %s %s", flags, exe, src);
	return system(cmd) == 0 ? exe : NULL;
}

/* Runs exe and parses the code bytes it printed. */
static int run_and_read_code(const char *exe, unsigned char *code)
{
	char line[64];
	FILE *p = popen(exe, "r");
	int ok;

	if (!p)
		return -1;
	ok = fgets(line, sizeof(line), p) != NULL;
	if (pclose(p) != 0 || !ok || strlen(line) < 2 * CODE_BYTES)
		return -1;
	for (int i = 0; i < CODE_BYTES; i++)
		if (sscanf(line + 2 * i, "%2hhx", &code[i]) != 1)
			return -1;
	return 0;
}

static void check_built(const char *name, const char *flags)
{
	unsigned char mem[CODE_BYTES], file[CODE_BYTES];
	const char *exe = build(name, flags);
	uint64_t off = 0;

	CHECK(exe != NULL);
	if (!exe)
		return;
	CHECK(elfsym_offset(exe, "sonde_target", &off) == 0);
	CHECK(off > 0);
	CHECK(run_and_read_code(exe, mem) == 0);
	CHECK(read_file_bytes(exe, off, file, CODE_BYTES) == 0);
	if (memcmp(mem + 1, file + 1, CODE_BYTES - 1) != 0) {
		fprintf(stderr, "%s (%s): code at offset 0x%llx differs\n",
			name, flags, (unsigned long long)off);
		CHECK(0);
	}
	/* printf is imported, not defined: no offset. */
	CHECK(elfsym_offset(exe, "printf", &off) == -ENOENT);
	CHECK(elfsym_offset(exe, "no_such_function", &off) == -ENOENT);
}

TEST(pie_executable)
{
	check_built("pie", "-fPIE -pie");
}

/* Non-PIE: the text segment is linked at 0x400000, so offsets and
 * addresses differ. */
TEST(non_pie_executable)
{
	check_built("nopie", "-fno-pie -no-pie");
}

/* Stripped: only .dynsym is left, which has the function when exported. */
TEST(stripped_executable_uses_dynsym)
{
	check_built("stripped", "-s -rdynamic");
}

/* The system's libssl: the four functions sonde probes, checked against
 * the copy this process maps. */
TEST(system_libssl)
{
	static const char *const names[] = { "SSL_read", "SSL_write",
					     "SSL_read_ex", "SSL_write_ex" };
	uint64_t offs[4];
	void *h = dlopen("libssl.so.3", RTLD_NOW);
	Dl_info info;

	if (!h)
		h = dlopen("libssl.so.1.1", RTLD_NOW);
	CHECK(h != NULL);
	if (!h)
		return;
	CHECK(dladdr(dlsym(h, "SSL_read"), &info) != 0);
	CHECK(elfsym_lookup(info.dli_fname, names, 4, offs) == 4);
	for (int i = 0; i < 4; i++) {
		unsigned char file[CODE_BYTES];
		const unsigned char *mem = dlsym(h, names[i]);

		CHECK(mem != NULL);
		CHECK(read_file_bytes(info.dli_fname, offs[i], file,
				      CODE_BYTES) == 0);
		if (mem && memcmp(mem + 1, file + 1, CODE_BYTES - 1) != 0) {
			fprintf(stderr, "%s: code at 0x%llx differs\n",
				names[i], (unsigned long long)offs[i]);
			CHECK(0);
		}
	}
	dlclose(h);
}

TEST(not_elf_or_missing)
{
	char path[300];
	uint64_t off;
	FILE *f;

	snprintf(path, sizeof(path), "%s/text", tmpdir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs("#!/bin/sh\necho not elf\n", f);
	fclose(f);
	CHECK(elfsym_offset(path, "main", &off) == -ENOEXEC);
	CHECK(elfsym_offset("/nonexistent/sonde/binary", "main", &off) ==
	      -ENOENT);
}

UNIT_MAIN_IN_DIR("elfsym", tmpdir, NULL, UNIT_CASE(pie_executable),
		 UNIT_CASE(non_pie_executable),
		 UNIT_CASE(stripped_executable_uses_dynsym),
		 UNIT_CASE(system_libssl), UNIT_CASE(not_elf_or_missing))
