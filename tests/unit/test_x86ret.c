/* x86ret: instruction lengths and the return instructions of a function.
 * Pinned two ways: byte sequences with the lengths the Intel SDM gives
 * them, one or more per encoding class, and agreement with objdump on
 * whole binaries: every instruction boundary and every ret of every
 * function in .text of this test's own executable (gcc, or clang under
 * ASan), /usr/bin/ls, glibc (hand-written AVX2 and AVX-512 string
 * functions), and a Go program built here that links crypto/tls and
 * net/http. */
#include <elf.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gobuild.h"
#include "kernel/x86ret.h"
#include "unit.h"

static char tmpdir[] = "/tmp/sonde-x86ret-XXXXXX";

/* Parses "48 8b 05 ..." into out; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;
	unsigned int b;
	int used;

	while (n < max && sscanf(hex, " %2x%n", &b, &used) == 1) {
		out[n++] = (uint8_t)b;
		hex += used;
	}
	return n;
}

struct insn_case {
	const char *what;
	const char *hex;
	int len; /* -1: must not decode */
};

/* Each case is decoded with exactly its bytes available, then with
 * trailing bytes that must not be counted. */
static void check_cases(const struct insn_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t buf[32];
		size_t len = unhex(cases[i].hex, buf, 16);
		int got = x86_insn_len(buf, len), got_pad;

		memset(buf + len, 0x90, sizeof(buf) - len);
		got_pad = x86_insn_len(buf, sizeof(buf));
		if (got != cases[i].len ||
		    (cases[i].len >= 0 && got_pad != cases[i].len)) {
			fprintf(stderr,
				"%s [%s]: length %d (%d padded), want %d\n",
				cases[i].what, cases[i].hex, got, got_pad,
				cases[i].len);
			CHECK(0);
		}
	}
}

TEST(lengths_by_encoding_class)
{
	static const struct insn_case cases[] = {
		/* returns, traps, NOPs of every length gcc and Go pad with */
		{ "ret", "c3", 1 },
		{ "ret imm16", "c2 08 00", 3 },
		{ "repz ret", "f3 c3", 2 },
		{ "int3", "cc", 1 },
		{ "ud2", "0f 0b", 2 },
		{ "nop", "90", 1 },
		{ "xchg ax,ax", "66 90", 2 },
		{ "nopl (rax)", "0f 1f 00", 3 },
		{ "nopl 0(rax)", "0f 1f 40 00", 4 },
		{ "nopl 0(rax,rax)", "0f 1f 44 00 00", 5 },
		{ "nopw 0(rax,rax)", "66 0f 1f 44 00 00", 6 },
		{ "nopl disp32(rax)", "0f 1f 80 00 00 00 00", 7 },
		{ "nopl disp32(rax,rax)", "0f 1f 84 00 00 00 00 00", 8 },
		{ "nopw disp32(rax,rax)", "66 0f 1f 84 00 00 00 00 00", 9 },
		{ "cs nopw", "66 2e 0f 1f 84 00 00 00 00 00", 10 },
		{ "data16 cs nopw", "66 66 2e 0f 1f 84 00 00 00 00 00", 11 },
		{ "15 bytes", "66 66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00",
		  15 },
		{ "endbr64", "f3 0f 1e fa", 4 },
		/* one-byte map, ModRM, SIB, displacements */
		{ "push rbp", "55", 1 },
		{ "push r15", "41 57", 2 },
		{ "mov rbp,rsp", "48 89 e5", 3 },
		{ "mov rax,[rsp+8]", "48 8b 44 24 08", 5 },
		{ "mov rax,[rbp+rcx*8+disp32]", "48 8b 84 cd 00 01 00 00", 8 },
		{ "mov rax,[r13+0]", "49 8b 45 00", 4 },
		{ "mov rax,[r12]", "49 8b 04 24", 4 },
		{ "mov rax,[rip+disp32]", "48 8b 05 10 20 30 40", 7 },
		{ "lea rax,[rip+disp32]", "48 8d 05 00 00 00 00", 7 },
		{ "mov eax,[disp32] (SIB, no base)", "8b 04 25 00 10 00 00",
		  7 },
		{ "mov rcx,fs:[-8] (Go's g)", "64 48 8b 0c 25 f8 ff ff ff", 9 },
		{ "movsxd rax,[rcx]", "48 63 01", 3 },
		{ "lock cmpxchg [rdx],rcx", "f0 48 0f b1 0a", 5 },
		{ "rep stosq", "f3 48 ab", 3 },
		{ "fld qword [rsp+8]", "dd 44 24 08", 4 },
		{ "fwait", "9b", 1 },
		/* immediates, and what 66 and REX.W do to them */
		{ "sub rsp,imm8", "48 83 ec 18", 4 },
		{ "sub rsp,imm32", "48 81 ec 00 01 00 00", 7 },
		{ "add eax,imm32", "05 78 56 34 12", 5 },
		{ "add ax,imm16", "66 05 34 12", 4 },
		{ "add ax,imm16 (ModRM)", "66 81 c0 34 12", 5 },
		{ "add rax,imm32 (REX.W beats 66)", "66 48 81 c0 78 56 34 12",
		  8 },
		{ "mov r64,imm64", "48 b8 88 77 66 55 44 33 22 11", 10 },
		{ "mov r32,imm32", "b8 78 56 34 12", 5 },
		{ "mov r16,imm16", "66 b8 34 12", 4 },
		{ "mov r8b,imm8", "41 b0 01", 3 },
		{ "mov [rip+disp32],imm32", "48 c7 05 00 00 00 00 01 00 00 00",
		  11 },
		{ "mov al,moffs64", "a0 88 77 66 55 44 33 22 11", 9 },
		{ "mov eax,moffs32 (67)", "67 a1 44 33 22 11", 6 },
		{ "test al,imm8", "a8 01", 2 },
		{ "test byte [rax],imm8", "f6 00 01", 3 },
		{ "not byte [rax] (F6 /2)", "f6 10", 2 },
		{ "test dword [rax+8],imm32", "f7 40 08 00 00 00 01", 7 },
		{ "test word [rax],imm16", "66 f7 00 01 00", 5 },
		{ "neg rax (F7 /3)", "48 f7 d8", 3 },
		{ "imul eax,ecx,imm32", "69 c1 00 01 00 00", 6 },
		{ "imul eax,ecx,imm8", "6b c1 10", 3 },
		{ "push imm32", "68 00 01 00 00", 5 },
		{ "push imm16", "66 68 00 01", 4 },
		{ "shl rax,imm8", "48 c1 e0 04", 4 },
		{ "enter", "c8 10 00 00", 4 },
		{ "leave", "c9", 1 },
		{ "xbegin rel32", "c7 f8 00 00 00 00", 6 },
		{ "xabort imm8", "c6 f8 01", 3 },
		/* branches */
		{ "jmp rel8", "eb fe", 2 },
		{ "jne rel8", "75 10", 2 },
		{ "jmp rel32", "e9 00 00 00 00", 5 },
		{ "call rel32", "e8 00 00 00 00", 5 },
		{ "je rel32", "0f 84 00 01 00 00", 6 },
		{ "call [rip+disp32]", "ff 15 00 00 00 00", 6 },
		{ "notrack jmp rax", "3e ff e0", 3 },
		/* two-byte map */
		{ "syscall", "0f 05", 2 },
		{ "cpuid", "0f a2", 2 },
		{ "xgetbv", "0f 01 d0", 3 },
		{ "prefetcht0 [rax]", "0f 18 08", 3 },
		{ "cmove rax,rcx", "48 0f 44 c1", 4 },
		{ "setne al", "0f 95 c0", 3 },
		{ "movzx eax,byte [rdi]", "0f b6 07", 3 },
		{ "shld eax,ecx,imm8", "0f a4 c8 04", 4 },
		{ "bt eax,imm8", "0f ba e0 04", 4 },
		{ "popcnt rax,rcx", "f3 48 0f b8 c1", 5 },
		{ "cmpxchg16b [rsi]", "f0 48 0f c7 0e", 5 },
		{ "movups xmm0,[rsi]", "0f 10 06", 3 },
		{ "movdqu xmm0,[rsi+16]", "f3 0f 6f 46 10", 5 },
		{ "pshufd xmm0,xmm1,imm8", "66 0f 70 c1 1b", 5 },
		{ "mov rbp,cr0 (mod ignored)", "0f 20 05", 3 },
		/* three-byte maps */
		{ "pshufb xmm0,xmm1", "66 0f 38 00 c1", 5 },
		{ "aesenc xmm0,xmm1", "66 0f 38 dc c1", 5 },
		{ "crc32 eax,cl", "f2 0f 38 f0 c1", 5 },
		{ "movbe eax,[rdi]", "0f 38 f0 07", 4 },
		{ "adox rax,rcx", "f3 48 0f 38 f6 c1", 6 },
		{ "palignr xmm0,xmm1,imm8", "66 0f 3a 0f c1 08", 6 },
		{ "pclmulqdq xmm0,xmm1,imm8", "66 0f 3a 44 c1 00", 6 },
		{ "pcmpestri xmm0,[rip+disp32],imm8",
		  "66 0f 3a 61 05 00 00 00 00 0c", 10 },
		/* VEX */
		{ "vzeroupper", "c5 f8 77", 3 },
		{ "vmovdqu ymm0,[rsi]", "c5 fe 6f 06", 4 },
		{ "vpcmpeqb ymm1,ymm0,[rdi+disp32]", "c5 fd 74 8f 00 01 00 00",
		  8 },
		{ "vpshufd ymm0,ymm1,imm8", "c5 fd 70 c1 1b", 5 },
		{ "vpsrldq ymm0,ymm1,imm8", "c5 fd 73 d9 08", 5 },
		{ "vpbroadcastb ymm0,xmm0", "c4 e2 7d 78 c0", 5 },
		{ "shlx rax,rax,rcx", "c4 e2 f1 f7 c0", 5 },
		{ "vpalignr ymm0,ymm0,ymm1,imm8", "c4 e3 7d 0f c1 08", 6 },
		{ "rorx rax,rcx,imm8", "c4 e3 fb f0 c1 0d", 6 },
		{ "vpgatherdd (VSIB)", "c4 e2 75 90 04 90", 6 },
		/* EVEX */
		{ "vmovdqu64 zmm0,[rsi]", "62 f1 fe 48 6f 06", 6 },
		{ "vmovdqu64 zmm0,[rsi+64] (disp8*N)", "62 f1 fe 48 6f 46 01",
		  7 },
		{ "vpcmpeqb k1,zmm0,[rdi+rax+disp32]",
		  "62 f1 7d 48 74 8c 07 00 01 00 00", 11 },
		{ "vpternlogd zmm0,zmm1,zmm2,imm8", "62 f3 75 48 25 c2 96", 7 },
		{ "vpminub zmm0,zmm0,zmm1", "62 b1 7d 48 da c1", 6 },
		{ "vpbroadcastd zmm0,eax", "62 f2 7d 48 7c c0", 6 },
	};

	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Truncated, undefined, or of a length the CPUs do not agree on. */
TEST(refuses_what_it_cannot_decode)
{
	static const struct insn_case cases[] = {
		{ "empty", "", -1 },
		{ "REX alone", "48", -1 },
		{ "escape alone", "0f", -1 },
		{ "call, rel32 cut", "e8 00 00", -1 },
		{ "mov r64,imm64 cut", "48 b8 00 00 00 00", -1 },
		{ "SIB missing", "8b 04", -1 },
		{ "disp32 cut", "8b 80 00 00", -1 },
		{ "VEX cut", "c4 e2", -1 },
		{ "EVEX without opcode", "62 f1 fe 48", -1 },
		{ "16 bytes", "66 66 66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00",
		  -1 },
		{ "push es (not in long mode)", "06", -1 },
		{ "salc", "d6", -1 },
		{ "far call", "9a 00 00 00 00 00 00", -1 },
		{ "0F 04", "0f 04", -1 },
		{ "3DNow!", "0f 0f c1 b4", -1 },
		{ "JMPE (0F B8 without F3)", "0f b8 c1", -1 },
		{ "0F 38 undefined", "66 0f 38 50 c1", -1 },
		{ "0F 3A undefined", "66 0f 3a 00 c1 00", -1 },
		{ "FF /7", "ff f8", -1 },
		{ "FE /2", "fe d0", -1 },
		{ "XOP (8F /1)", "8f e8 78 c2 c1 00", -1 },
		{ "C7 /1", "c7 c8 00 00 00 00", -1 },
		{ "call with 66 (rel16 on AMD only)", "66 e8 00 00 00 00", -1 },
		{ "jcc with 66", "66 0f 84 00 00 00 00", -1 },
		{ "REX before a prefix", "48 66 90", -1 },
		{ "REX before REX", "40 48 90", -1 },
		{ "66 before VEX", "66 c5 f8 77", -1 },
		{ "REX before VEX", "48 c5 f8 77", -1 },
		{ "VEX map 4", "c4 e4 78 00 c0", -1 },
		{ "VEX undefined", "c5 f8 00 c0", -1 },
		{ "EVEX-only opcode under VEX", "c5 f9 78 c0", -1 },
		{ "VEX-only opcode under EVEX", "62 f1 7c 48 77", -1 },
		{ "EVEX map 5 (FP16)", "62 f5 7c 48 58 c1", -1 },
	};

	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A function body with C3 bytes inside immediates and displacements,
 * which are not returns, around four that are. */
TEST(returns_in_a_body)
{
	static const char body_hex[] =
		"55 "			/*  0 push rbp */
		"48 89 e5 "		/*  1 mov rbp,rsp */
		"b8 c3 00 00 00 "	/*  4 mov eax,0xc3 */
		"48 8b 05 c3 c3 c3 c3 " /*  9 mov rax,[rip+..] */
		"74 01 "		/* 16 je +1 */
		"c3 "			/* 18 ret */
		"c2 08 00 "		/* 19 ret 8 */
		"80 c3 c3 "		/* 22 add bl,0xc3 */
		"f3 c3 "		/* 25 repz ret */
		"62 f3 75 48 25 c2 c3 " /* 27 vpternlogd ..,0xc3 */
		"c5 fd 70 c1 c3 "	/* 34 vpshufd ..,0xc3 */
		"66 0f 1f 44 00 00 "	/* 39 nopw */
		"5d "			/* 45 pop rbp */
		"c3 "			/* 46 ret */
		"cc";			/* 47 int3 */
	static const uint32_t want[] = { 18, 19, 25, 46 };
	uint32_t offs[8], two[3] = { 0, 0, 0xdead };
	uint8_t body[64];
	size_t len = unhex(body_hex, body, sizeof(body));

	CHECK(len == 48);
	CHECK(x86_returns(body, len, offs, 8) == 4);
	CHECK(memcmp(offs, want, sizeof(want)) == 0);
	/* more returns than room: all counted, max written */
	CHECK(x86_returns(body, len, two, 2) == 4);
	CHECK(two[0] == 18 && two[1] == 19 && two[2] == 0xdead);
	CHECK(x86_returns(body, len, NULL, 0) == 4);
	CHECK(x86_returns(body, 0, offs, 8) == 0);
	/* cut inside the mov at 4, or right after a prefix */
	CHECK(x86_returns(body, 7, offs, 8) == -1);
	CHECK(x86_returns(body, 26, offs, 8) == -1);
	/* the walk stops at bytes it cannot decode */
	body[45] = 0x06;
	CHECK(x86_returns(body, len, offs, 8) == -1);
}

/* objdump's view of one binary's .text: instruction addresses, which of
 * them are rets, and the functions its labels start. */
struct od_insn {
	uint64_t addr;
	bool ret;
};

struct od_func {
	char *name;
	uint64_t start;
	size_t first, count; /* into od_listing.insns */
	bool bad;	     /* objdump printed (bad): data inside the code */
};

struct od_listing {
	struct od_insn *insns;
	size_t ninsns, cap_insns;
	struct od_func *funcs;
	size_t nfuncs, cap_funcs;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	*cap = *cap ? *cap * 2 : 1024;
	if (*cap < need)
		*cap = need;
	p = realloc(p, *cap * size);
	if (!p) {
		perror("realloc");
		exit(1);
	}
	return p;
}

/* objdump's mnemonic is a ret when, past its prefixes ("repz", "bnd",
 * "data16", "rex.W"), it reads ret, retq or retw; lret and iret are far
 * returns. */
static bool od_is_ret(const char *text)
{
	static const char *const prefixes[] = { "rep",	  "repz",    "repnz",
						"bnd",	  "notrack", "data16",
						"addr32", "cs",	     "ds" };
	char word[32];
	int used;

	while (sscanf(text, "%31s%n", word, &used) == 1) {
		bool prefix = strncmp(word, "rex", 3) == 0;

		for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes);
		     i++)
			prefix |= strcmp(word, prefixes[i]) == 0;
		if (!prefix)
			return strcmp(word, "ret") == 0 ||
			       strcmp(word, "retq") == 0 ||
			       strcmp(word, "retw") == 0;
		text += used;
	}
	return false;
}

/* Reads `objdump -d` of path's .text: "0000000000401000 <name>:" starts a
 * function, "  401000:\tmnemonic operands" is an instruction. */
static int od_read(const char *path, struct od_listing *l)
{
	char cmd[512], line[4096];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/objdump -d -z --no-show-raw-insn -j .text '%s'",
		 path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		uint64_t addr;
		int used = 0;
		char *lt, *gt;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] != ' ' &&
		    sscanf(line, "%" SCNx64 " <%n", &addr, &used) == 1 &&
		    used) {
			struct od_func *f;

			lt = strchr(line, '<');
			gt = strrchr(line, '>');
			if (!lt || !gt || gt < lt)
				continue;
			l->funcs = grow(l->funcs, &l->cap_funcs, l->nfuncs + 1,
					sizeof(*l->funcs));
			f = &l->funcs[l->nfuncs++];
			*gt = '\0';
			f->name = strdup(lt + 1);
			f->start = addr;
			f->first = l->ninsns;
			f->count = 0;
			f->bad = false;
		} else if (line[0] == ' ' && l->nfuncs &&
			   sscanf(line, " %" SCNx64 ":%n", &addr, &used) == 1 &&
			   used && line[used] == '\t') {
			struct od_func *f = &l->funcs[l->nfuncs - 1];
			const char *text = line + used + 1;

			l->insns = grow(l->insns, &l->cap_insns, l->ninsns + 1,
					sizeof(*l->insns));
			l->insns[l->ninsns].addr = addr;
			l->insns[l->ninsns].ret = od_is_ret(text);
			l->ninsns++;
			f->count++;
			if (strstr(text, "(bad)"))
				f->bad = true;
		}
	}
	return pclose(p) == 0 && l->nfuncs ? 0 : -1;
}

static void od_free(struct od_listing *l)
{
	for (size_t i = 0; i < l->nfuncs; i++)
		free(l->funcs[i].name);
	free(l->funcs);
	free(l->insns);
}

/* The .text section of an ELF file read whole into memory. */
struct text {
	uint8_t *file;
	const uint8_t *code;
	uint64_t addr, size;
};

static int text_read(const char *path, struct text *t)
{
	FILE *f = fopen(path, "rb");
	const Elf64_Ehdr *eh;
	const Elf64_Shdr *sh, *strtab;
	long size;

	memset(t, 0, sizeof(*t));
	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) || !(t->file = malloc(size)) ||
	    fread(t->file, 1, size, f) != (size_t)size) {
		fclose(f);
		return -1;
	}
	fclose(f);
	eh = (const Elf64_Ehdr *)t->file;
	if ((size_t)size < sizeof(*eh) ||
	    memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shstrndx >= eh->e_shnum ||
	    eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(*sh) > (size_t)size)
		return -1;
	sh = (const Elf64_Shdr *)(t->file + eh->e_shoff);
	strtab = &sh[eh->e_shstrndx];
	for (int i = 0; i < eh->e_shnum; i++) {
		const char *name = (const char *)t->file + strtab->sh_offset +
				   sh[i].sh_name;

		if (strcmp(name, ".text") != 0 ||
		    sh[i].sh_offset + sh[i].sh_size > (size_t)size)
			continue;
		t->code = t->file + sh[i].sh_offset;
		t->addr = sh[i].sh_addr;
		t->size = sh[i].sh_size;
		return 0;
	}
	return -1;
}

struct agreement {
	size_t funcs, insns, rets, skipped, errors;
};

static void report(struct agreement *a, const struct od_func *f,
		   const char *what, uint64_t off, const uint8_t *p,
		   size_t avail)
{
	if (a->errors++ >= 10)
		return;
	fprintf(stderr, "%s+0x%" PRIx64 ": %s [", f->name, off, what);
	for (size_t i = 0; i < avail && i < 16; i++)
		fprintf(stderr, "%s%02x", i ? " " : "", p[i]);
	fprintf(stderr, "]\n");
}

/* objdump shows FWAIT and the x87 instruction after it as one ("fstcw" is
 * 9B D9 /7): the CPU runs them as two. */
static bool fwait_merged(const uint8_t *code, uint64_t prev, uint64_t off,
			 const struct od_insn *od_prev, uint64_t start)
{
	return off == prev + 1 && code[prev] == 0x9b &&
	       od_prev->addr == start + prev && code[off] >= 0xd8 &&
	       code[off] <= 0xdf;
}

/* Decodes f (up to the next label) and compares with objdump. */
static void check_func(const struct text *t, const struct od_listing *l,
		       size_t i, struct agreement *a)
{
	const struct od_func *f = &l->funcs[i];
	uint64_t end =
		i + 1 < l->nfuncs ? l->funcs[i + 1].start : t->addr + t->size;
	const struct od_insn *od = &l->insns[f->first];
	const uint8_t *code = t->code + (f->start - t->addr);
	uint64_t len = end - f->start, off = 0, prev = 0;
	uint32_t rets[512];
	size_t k = 0, nret = 0;
	int found;

	if (f->bad) {
		a->skipped++;
		return;
	}
	while (off < len) {
		int n;

		if (k < f->count && od[k].addr == f->start + off) {
			nret += od[k].ret;
			k++;
		} else if (!(k && fwait_merged(code, prev, off, &od[k - 1],
					       f->start))) {
			report(a, f, "instruction boundaries differ", off,
			       code + off, len - off);
			return;
		}
		n = x86_insn_len(code + off, len - off);
		if (n < 0) {
			report(a, f, "cannot decode", off, code + off,
			       len - off);
			return;
		}
		prev = off;
		off += (uint64_t)n;
		a->insns++;
	}
	if (off != len || k != f->count) {
		report(a, f, "walk ends off objdump's", off, code + off, 0);
		return;
	}
	found = x86_returns(code, len, rets, 512);
	if (found < 0 || (size_t)found != nret) {
		report(a, f, "return count differs", 0, code, 0);
		return;
	}
	for (size_t r = 0, j = 0; j < f->count && r < 512; j++) {
		if (!od[j].ret)
			continue;
		if (od[j].addr != f->start + rets[r++]) {
			report(a, f, "return offset differs",
			       od[j].addr - f->start, code, 0);
			return;
		}
	}
	a->rets += nret;
	a->funcs++;
}

/* Checks every function of path's .text; fills *l for the caller to look
 * functions up, returns 0 when all agree. */
static int agree_with_objdump(const char *path, struct od_listing *l,
			      struct agreement *a)
{
	struct text t = { 0 };

	memset(a, 0, sizeof(*a));
	if (od_read(path, l) || text_read(path, &t)) {
		fprintf(stderr, "%s: no objdump listing or .text\n", path);
		free(t.file);
		return -1;
	}
	for (size_t i = 0; i < l->nfuncs; i++) {
		const struct od_func *f = &l->funcs[i];

		if (f->start < t.addr || f->start >= t.addr + t.size) {
			a->skipped++;
			continue;
		}
		check_func(&t, l, i, a);
	}
	free(t.file);
	printf("  objdump agreement, %s: %zu functions, %zu instructions, "
	       "%zu returns; %zu functions with data inside skipped\n",
	       path, a->funcs, a->insns, a->rets, a->skipped);
	return a->errors ? -1 : 0;
}

static void check_binary(const char *path, size_t min_funcs)
{
	struct od_listing l = { 0 };
	struct agreement a;

	CHECK(agree_with_objdump(path, &l, &a) == 0);
	CHECK(a.funcs >= min_funcs);
	od_free(&l);
}

TEST(agrees_with_objdump_on_this_executable)
{
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	CHECK(n > 0);
	if (n <= 0)
		return;
	self[n] = '\0';
	check_binary(self, 100);
}

/* Stripped: objdump's few labels cut .text into long runs, decoded
 * straight through, padding between functions included. */
TEST(agrees_with_objdump_on_ls)
{
	check_binary("/usr/bin/ls", 2);
}

/* glibc's string functions are hand-written for SSE2, AVX2 and AVX-512
 * (EVEX), which compilers rarely emit. */
TEST(agrees_with_objdump_on_libc)
{
	char line[512], path[512] = "";
	FILE *maps = fopen("/proc/self/maps", "r");

	CHECK(maps != NULL);
	if (!maps)
		return;
	while (!path[0] && fgets(line, sizeof(line), maps)) {
		char *p = strchr(line, '/');

		if (p && strstr(p, "/libc.so.6"))
			snprintf(path, sizeof(path), "%.*s",
				 (int)strcspn(p, "\n"), p);
	}
	fclose(maps);
	CHECK(path[0] != '\0');
	if (path[0])
		check_binary(path, 1000);
}

static const struct od_func *find_func(const struct od_listing *l,
				       const char *name)
{
	for (size_t i = 0; i < l->nfuncs; i++)
		if (strcmp(l->funcs[i].name, name) == 0)
			return &l->funcs[i];
	return NULL;
}

/* Go's gc compiler: the functions sonde probes for Go TLS, and every
 * other function of a program that links crypto/tls and net/http. */
TEST(agrees_with_objdump_on_go)
{
	static const char *const probed[] = { "crypto/tls.(*Conn).Read",
					      "crypto/tls.(*Conn).Write" };
	struct od_listing l = { 0 };
	struct agreement a;
	char exe[300];
	int rc;

	if (!gobuild_available()) {
		printf("  note: no go toolchain, Go agreement not checked\n");
		return;
	}
	rc = gobuild(tmpdir, "goprog", gobuild_tls_program, "", exe,
		     sizeof(exe));
	CHECK(rc == 0);
	if (rc)
		return;
	CHECK(agree_with_objdump(exe, &l, &a) == 0);
	CHECK(a.funcs >= 1000);
	for (size_t i = 0; i < 2; i++) {
		const struct od_func *f = find_func(&l, probed[i]);
		size_t nret = 0;

		CHECK(f != NULL && !f->bad);
		if (!f)
			continue;
		for (size_t j = 0; j < f->count; j++)
			nret += l.insns[f->first + j].ret;
		CHECK(nret >= 1);
	}
	od_free(&l);
}

UNIT_MAIN_IN_DIR("x86ret", tmpdir, NULL, UNIT_CASE(lengths_by_encoding_class),
		 UNIT_CASE(refuses_what_it_cannot_decode),
		 UNIT_CASE(returns_in_a_body),
		 UNIT_CASE(agrees_with_objdump_on_this_executable),
		 UNIT_CASE(agrees_with_objdump_on_ls),
		 UNIT_CASE(agrees_with_objdump_on_libc),
		 UNIT_CASE(agrees_with_objdump_on_go))
