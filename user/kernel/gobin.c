/* Go executables: build info and the function table, read from the file.
 *
 * Build info: https://go.dev/src/debug/buildinfo/buildinfo.go (reader) and
 * cmd/link/internal/ld/data.go (Link.buildinfo, writer). Function table:
 * https://go.dev/src/runtime/symtab.go (pcHeader, functab, moduledata),
 * runtime/runtime2.go (_func), cmd/link/internal/ld/pcln.go (writer) and
 * debug/gosym/pclntab.go (the format's versions). Checked against Go 1.19's
 * sources and binaries; Go 1.20 changed the magic only where read here.
 *
 * The file is mapped once through libelf (elf_rawfile) and every read is
 * bounded by the section, segment or file that holds it. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/elfsym.h"
#include "kernel/gobin.h"

/* More PT_LOAD segments than any linker writes (Go's writes 3). */
#define MAX_SEGMENTS 32

/* Build info: a 32-byte header at a 16-byte boundary, "\xff Go buildinf:"
 * then the pointer size and flags. Go's reader looks at the first 64 KiB
 * of the data segment when there is no section; so does this one. */
#define BUILDINFO_HDR 32
#define BUILDINFO_ALIGN 16
#define BUILDINFO_SCAN (64 * 1024)
#define BUILDINFO_BIG_ENDIAN 1
#define BUILDINFO_INLINE 2 /* Go 1.18+: varint-prefixed strings follow */
/* Longer than any version Go writes ("devel go1.22-2f0da6d9e2 Wed Nov 1
 * 18:37:46 2023 +0000" is the longest kind): more is garbage. */
#define VERSION_MAX 256

static const char buildinfo_magic[] = "\xff Go buildinf:";

/* pcHeader magics, by the release that introduced the layout. */
#define PCLN_MAGIC_116 0xfffffffau
#define PCLN_MAGIC_118 0xfffffff0u
#define PCLN_MAGIC_120 0xfffffff1u /* same layout as 1.18 */

/* gobin_code refuses more: no function comes near. */
#define CODE_MAX (16u << 20)

struct segment {
	uint64_t vaddr, off, filesz;
	uint32_t flags;
};

/* An ELF file mapped for reading. */
struct gofile {
	int fd;
	Elf *elf;
	const uint8_t *raw;
	size_t rawlen;
	struct segment seg[MAX_SEGMENTS];
	size_t nseg;
};

/* Bytes of the file: a section, a segment or the part of one after a
 * header, with the virtual address of its first byte. */
struct span {
	const uint8_t *p;
	uint64_t len;
	uint64_t vaddr;
};

/* A parsed pcHeader. Offsets are from its first byte; all were checked
 * to lie within len when the header was accepted. */
struct pcln {
	struct span s;
	bool be;
	bool absolute; /* Go 1.16/1.17: functab holds addresses, not offsets */
	unsigned ptrsize;
	unsigned field; /* bytes of one functab field */
	uint64_t nfunc;
	uint64_t nametab;    /* funcnametab: NUL-terminated names */
	uint64_t ftab;	     /* functab, and the base of funcoff */
	uint64_t text_field; /* pcHeader.textStart (1.18+), 0 if unset */
};

static bool fits(uint64_t off, uint64_t n, uint64_t len)
{
	return off <= len && n <= len - off;
}

static uint32_t rd32(const uint8_t *p, bool be)
{
	if (be)
		return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		       (uint32_t)p[2] << 8 | p[3];
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[1] << 8 | p[0];
}

/* A 4- or 8-byte unsigned word. */
static uint64_t rdword(const uint8_t *p, unsigned size, bool be)
{
	if (size == 4)
		return rd32(p, be);
	if (be)
		return (uint64_t)rd32(p, be) << 32 | rd32(p + 4, be);
	return (uint64_t)rd32(p + 4, be) << 32 | rd32(p, be);
}

static void gofile_close(struct gofile *g)
{
	elfsym_close(g->elf, g->fd);
}

/* Maps path and notes its PT_LOAD segments, each cut to the bytes the
 * file holds (a truncated file keeps what is left). */
static int gofile_open(struct gofile *g, const char *path)
{
	size_t nphdr;

	memset(g, 0, sizeof(*g));
	g->elf = elfsym_open(path, &g->fd);
	if (!g->elf)
		return -errno;
	g->raw = (const uint8_t *)elf_rawfile(g->elf, &g->rawlen);
	if (!g->raw || elf_getphdrnum(g->elf, &nphdr))
		goto not_elf;
	for (size_t i = 0; i < nphdr && g->nseg < MAX_SEGMENTS; i++) {
		struct segment *s = &g->seg[g->nseg];
		GElf_Phdr ph;

		if (!gelf_getphdr(g->elf, i, &ph) || ph.p_type != PT_LOAD ||
		    ph.p_offset >= g->rawlen)
			continue;
		s->vaddr = ph.p_vaddr;
		s->off = ph.p_offset;
		s->filesz = ph.p_filesz;
		if (s->filesz > g->rawlen - s->off)
			s->filesz = g->rawlen - s->off;
		s->flags = ph.p_flags;
		g->nseg++;
	}
	return 0;
not_elf:
	gofile_close(g);
	return -ENOEXEC;
}

/* The segment holding all n bytes at vaddr, or NULL. */
static const struct segment *segment_at(const struct gofile *g, uint64_t vaddr,
					uint64_t n)
{
	for (size_t i = 0; i < g->nseg; i++) {
		const struct segment *s = &g->seg[i];

		if (vaddr >= s->vaddr && fits(vaddr - s->vaddr, n, s->filesz))
			return s;
	}
	return NULL;
}

/* The file bytes at vaddr, n of them, or NULL (elfsym's translation:
 * offset = vaddr - p_vaddr + p_offset). */
static const uint8_t *at_vaddr(const struct gofile *g, uint64_t vaddr,
			       uint64_t n)
{
	const struct segment *s = segment_at(g, vaddr, n);

	return s ? g->raw + s->off + (vaddr - s->vaddr) : NULL;
}

/* From vaddr to the end of its segment's bytes in the file. */
static int span_from(const struct gofile *g, uint64_t vaddr, struct span *out)
{
	const struct segment *s = segment_at(g, vaddr, 1);

	if (!s)
		return -ENOENT;
	out->p = g->raw + s->off + (vaddr - s->vaddr);
	out->len = s->filesz - (vaddr - s->vaddr);
	out->vaddr = vaddr;
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The first section whose name ends with suffix (the PIE linker calls
 * the table .data.rel.ro.gopclntab), cut to the bytes the file holds. */
static int find_section(const struct gofile *g, const char *suffix,
			struct span *out)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(g->elf, &shstrndx))
		return -ENOENT;
	while ((scn = elf_nextscn(g->elf, scn))) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS ||
		    sh.sh_offset >= g->rawlen)
			continue;
		name = elf_strptr(g->elf, shstrndx, sh.sh_name);
		if (!name || !ends_with(name, suffix))
			continue;
		out->p = g->raw + sh.sh_offset;
		out->len = sh.sh_size;
		if (out->len > g->rawlen - sh.sh_offset)
			out->len = g->rawlen - sh.sh_offset;
		out->vaddr = sh.sh_addr;
		return 0;
	}
	return -ENOENT;
}

/* Sets *f to the code at vaddr, size bytes, when the file holds it all. */
static bool set_func(const struct gofile *g, uint64_t vaddr, uint64_t size,
		     struct gobin_func *f)
{
	const struct segment *s = segment_at(g, vaddr, size);

	if (!s || !size)
		return false;
	f->offset = vaddr - s->vaddr + s->off;
	f->size = size;
	return true;
}

/* What .symtab tells: the functions asked for (those of a known size),
 * and the symbols that locate the function table. */
struct symtab_info {
	uint64_t text;	   /* runtime.text: base of 1.18+ entry offsets */
	uint64_t pcheader; /* runtime.pcheader or runtime.pclntab */
	uint64_t pclntab;
};

static void note_runtime_symbol(const char *name, const GElf_Sym *sym,
				struct symtab_info *info)
{
	if (strncmp(name, "runtime.", 8) != 0)
		return;
	if (strcmp(name, "runtime.text") == 0)
		info->text = sym->st_value;
	else if (strcmp(name, "runtime.pcheader") == 0)
		info->pcheader = sym->st_value;
	else if (strcmp(name, "runtime.pclntab") == 0)
		info->pclntab = sym->st_value;
}

static void scan_symtab(const struct gofile *g, const char *const *names,
			size_t n, struct gobin_func *funcs,
			struct symtab_info *info)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf_Data *data;

	while ((scn = elf_nextscn(g->elf, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB)
			break;
	if (!scn || !sh.sh_entsize || !(data = elf_getdata(scn, NULL)))
		return;
	for (uint64_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(data, (int)i, &sym) ||
		    sym.st_shndx == SHN_UNDEF || !sym.st_value)
			continue;
		name = elf_strptr(g->elf, sh.sh_link, sym.st_name);
		if (!name)
			continue;
		note_runtime_symbol(name, &sym, info);
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC)
			continue;
		for (size_t k = 0; k < n; k++)
			if (!funcs[k].size && strcmp(name, names[k]) == 0)
				set_func(g, sym.st_value, sym.st_size,
					 &funcs[k]);
	}
}

/* functab entry i: the function's entry (an offset from text, or from
 * 1.16 an address), and where its _func is, from ftab. */
static uint64_t pcln_entry(const struct pcln *t, uint64_t i)
{
	return rdword(t->s.p + t->ftab + 2 * i * t->field, t->field, t->be);
}

static uint64_t pcln_funcoff(const struct pcln *t, uint64_t i)
{
	return rdword(t->s.p + t->ftab + (2 * i + 1) * t->field, t->field,
		      t->be);
}

/* Function i's _func: its entry (as in functab) and its name, or NULL
 * when the record or the name falls outside the table. */
static const char *pcln_func(const struct pcln *t, uint64_t i, uint64_t *entry)
{
	unsigned entry_size = t->absolute ? t->ptrsize : 4;
	uint64_t off = pcln_funcoff(t, i), name;
	const uint8_t *f, *end;
	int32_t nameoff;

	if (off > t->s.len - t->ftab ||
	    !fits(t->ftab + off, entry_size + 4, t->s.len))
		return NULL;
	f = t->s.p + t->ftab + off;
	*entry = rdword(f, entry_size, t->be);
	nameoff = (int32_t)rd32(f + entry_size, t->be);
	if (nameoff < 0)
		return NULL;
	name = t->nametab + (uint64_t)nameoff;
	if (name >= t->s.len)
		return NULL;
	end = memchr(t->s.p + name, '\0', t->s.len - name);
	return end ? (const char *)t->s.p + name : NULL;
}

/* The layout of a header with this magic, or false when not known. */
static bool pcln_layout(uint32_t magic, struct pcln *t, unsigned *words,
			unsigned *name_word, unsigned *ftab_word)
{
	switch (magic) {
	case PCLN_MAGIC_116:
		/* nfunc, nfiles, funcnameOffset, cuOffset, filetabOffset,
		 * pctabOffset, pclnOffset */
		t->absolute = true;
		t->field = t->ptrsize;
		*words = 7;
		*name_word = 2;
		*ftab_word = 6;
		return true;
	case PCLN_MAGIC_118:
	case PCLN_MAGIC_120:
		/* nfunc, nfiles, textStart, funcnameOffset, cuOffset,
		 * filetabOffset, pctabOffset, pclnOffset */
		t->absolute = false;
		t->field = 4;
		*words = 8;
		*name_word = 3;
		*ftab_word = 7;
		return true;
	}
	return false;
}

/* Accepts the pcHeader at the start of s when its layout is known and
 * every table it names lies within s:
 *   f0 ff ff ff  00 00  01  08  <nfunc> <nfiles> <textStart> ...
 *   magic        pad    minLC ptrSize (little-endian amd64, Go 1.18) */
static int pcln_parse(const struct span *s, struct pcln *t)
{
	const uint8_t *p = s->p;
	unsigned words, name_word, ftab_word;
	uint64_t entry;

	memset(t, 0, sizeof(*t));
	t->s = *s;
	if (s->len < 8 || p[4] || p[5] ||
	    (p[6] != 1 && p[6] != 2 && p[6] != 4) || (p[7] != 4 && p[7] != 8))
		return -ENOEXEC;
	t->ptrsize = p[7];
	t->be = !pcln_layout(rd32(p, false), t, &words, &name_word, &ftab_word);
	if (t->be &&
	    !pcln_layout(rd32(p, true), t, &words, &name_word, &ftab_word))
		return -ENOEXEC;
	if (!fits(8, (uint64_t)words * t->ptrsize, s->len))
		return -ENOEXEC;
	t->nfunc = rdword(p + 8, t->ptrsize, t->be);
	t->nametab = rdword(p + 8 + name_word * t->ptrsize, t->ptrsize, t->be);
	t->ftab = rdword(p + 8 + ftab_word * t->ptrsize, t->ptrsize, t->be);
	if (!t->absolute)
		t->text_field =
			rdword(p + 8 + 2 * t->ptrsize, t->ptrsize, t->be);
	/* nfunc pairs and the end entry; the first test bounds the product */
	if (!t->nfunc || t->nametab >= s->len || t->ftab >= s->len ||
	    t->nfunc >= (s->len - t->ftab) / (2 * t->field) ||
	    !fits(t->ftab, (2 * t->nfunc + 1) * t->field, s->len))
		return -ENOEXEC;
	/* Entries ascend, and the first _func agrees with functab. */
	if (pcln_entry(t, 0) > pcln_entry(t, t->nfunc) ||
	    !pcln_func(t, 0, &entry) || entry != pcln_entry(t, 0))
		return -ENOEXEC;
	return 0;
}

/* Searches the segments for a pcHeader, for files without section
 * headers. Headers are pointer-aligned; 4 covers both sizes. */
static int pcln_search(const struct gofile *g, struct pcln *t)
{
	for (size_t i = 0; i < g->nseg; i++) {
		const struct segment *seg = &g->seg[i];

		for (uint64_t o = 0; o + 8 <= seg->filesz; o += 4) {
			const uint8_t *p = g->raw + seg->off + o;
			struct span s = { p, seg->filesz - o, seg->vaddr + o };

			/* ff ff ff in the middle of the magic, either order */
			if (p[1] != 0xff || p[2] != 0xff || p[4] || p[5])
				continue;
			if (!pcln_parse(&s, t))
				return 0;
		}
	}
	return -ENOEXEC;
}

/* The function table: the .gopclntab section when there is one (then it
 * alone: a bad one is an error), else at a runtime symbol, else searched
 * for. */
static int pcln_find(const struct gofile *g, const struct symtab_info *sym,
		     struct pcln *t)
{
	const uint64_t at[] = { sym->pcheader, sym->pclntab };
	struct span s;

	if (!find_section(g, ".gopclntab", &s))
		return pcln_parse(&s, t);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		if (at[i] && !span_from(g, at[i], &s) && !pcln_parse(&s, t))
			return 0;
	return pcln_search(g, t);
}

/* Whether text is where entry offsets count from: the first function and
 * the end of the last lie in one executable segment. */
static bool text_plausible(const struct gofile *g, const struct pcln *t,
			   uint64_t text)
{
	uint64_t first = text + pcln_entry(t, 0);
	uint64_t end = text + pcln_entry(t, t->nfunc);
	const struct segment *s = segment_at(g, first, end - first);

	return first >= text && end >= first && s && (s->flags & PF_X);
}

/* runtime.firstmoduledata, in the writable segments: it starts with the
 * pcHeader's address, then the slices funcnametab, cutab, filetab, pctab,
 * pclntable and ftab (address, len, cap each), findfunctab, minpc, maxpc
 * and text (runtime/symtab.go, moduledata, unchanged from Go 1.16 on).
 * Believed when its pointers and bounds agree with the table. */
enum {
	MD_FUNCNAMETAB = 1,
	MD_FTAB = 16,
	MD_FTAB_LEN = 17,
	MD_MINPC = 20,
	MD_MAXPC = 21,
	MD_TEXT = 22,
	MD_WORDS = 23,
};

static int moduledata_text(const struct gofile *g, const struct pcln *t,
			   uint64_t *text)
{
	unsigned ps = t->ptrsize;

	for (size_t i = 0; i < g->nseg; i++) {
		const struct segment *seg = &g->seg[i];

		if (!(seg->flags & PF_W))
			continue;
		for (uint64_t o = 0; o + MD_WORDS * ps <= seg->filesz;
		     o += ps) {
			const uint8_t *md = g->raw + seg->off + o;
			uint64_t base;

			if (rdword(md, ps, t->be) != t->s.vaddr ||
			    rdword(md + MD_FUNCNAMETAB * ps, ps, t->be) !=
				    t->s.vaddr + t->nametab ||
			    rdword(md + MD_FTAB * ps, ps, t->be) !=
				    t->s.vaddr + t->ftab ||
			    rdword(md + MD_FTAB_LEN * ps, ps, t->be) !=
				    t->nfunc + 1)
				continue;
			base = rdword(md + MD_TEXT * ps, ps, t->be);
			if (rdword(md + MD_MINPC * ps, ps, t->be) !=
				    base + pcln_entry(t, 0) ||
			    rdword(md + MD_MAXPC * ps, ps, t->be) !=
				    base + pcln_entry(t, t->nfunc))
				continue;
			*text = base;
			return 0;
		}
	}
	return -ENOENT;
}

/* Where 1.18+ entry offsets count from (runtime.text): the header's
 * textStart, which the linker fills up to some release after 1.19 and
 * leaves 0 since; else runtime.text from .symtab; else moduledata's
 * text. Not the .text section's address, which debug/gosym takes: with
 * external linking C code comes first, and a uprobe placed off an
 * instruction boundary corrupts the program. */
static int pcln_text(const struct gofile *g, const struct pcln *t,
		     uint64_t sym_text, uint64_t *text)
{
	if (t->absolute) {
		*text = 0;
		return text_plausible(g, t, 0) ? 0 : -ENOEXEC;
	}
	if (t->text_field && text_plausible(g, t, t->text_field)) {
		*text = t->text_field;
		return 0;
	}
	if (sym_text && text_plausible(g, t, sym_text)) {
		*text = sym_text;
		return 0;
	}
	if (!moduledata_text(g, t, text) && text_plausible(g, t, *text))
		return 0;
	return -ENOEXEC;
}

/* Whether a table name is the one asked for. .symtab spells the middle
 * dot of generated names as '.' (cmd/link rewrites it for ASCII-only
 * tools), the table keeps it: "type..eq.net.dialResult\xc2\xb71" (U+00B7)
 * is asked for, as nm shows it, as "type..eq.net.dialResult.1". */
static bool table_name_matches(const char *name, const char *want)
{
	for (; *want; want++) {
		if (*name == *want)
			name++;
		else if (*want == '.' && (uint8_t)name[0] == 0xc2 &&
			 (uint8_t)name[1] == 0xb7)
			name += 2;
		else
			return false;
	}
	return *name == '\0';
}

/* One pass over the table for the names not found yet. A function whose
 * record disagrees with functab, or whose next entry does not follow
 * it, is skipped. */
static void pcln_scan(const struct gofile *g, const struct pcln *t,
		      uint64_t text, const char *const *names, size_t n,
		      struct gobin_func *funcs)
{
	size_t left = 0;

	for (size_t k = 0; k < n; k++)
		left += !funcs[k].size;
	for (uint64_t i = 0; i < t->nfunc && left; i++) {
		uint64_t entry = pcln_entry(t, i), next = pcln_entry(t, i + 1);
		uint64_t rec_entry;
		const char *name = pcln_func(t, i, &rec_entry);

		if (!name || rec_entry != entry || next <= entry ||
		    text + entry < text)
			continue;
		for (size_t k = 0; k < n; k++) {
			if (funcs[k].size ||
			    !table_name_matches(name, names[k]))
				continue;
			if (set_func(g, text + entry, next - entry, &funcs[k]))
				left--;
		}
	}
}

static int lookup(const char *path, const char *const *names, size_t n,
		  struct gobin_func *funcs, bool use_symtab)
{
	struct symtab_info sym = { 0 };
	struct gofile g;
	struct pcln t;
	uint64_t text;
	size_t missing = 0;
	int err = gofile_open(&g, path), found = 0;

	if (err)
		return err;
	memset(funcs, 0, n * sizeof(*funcs));
	if (use_symtab)
		scan_symtab(&g, names, n, funcs, &sym);
	/* Go or not is the table's say, .symtab or not. */
	err = pcln_find(&g, &sym, &t);
	if (err)
		goto out;
	for (size_t k = 0; k < n; k++)
		missing += !funcs[k].size;
	if (missing) {
		err = pcln_text(&g, &t, sym.text, &text);
		if (!err)
			pcln_scan(&g, &t, text, names, n, funcs);
		else if (missing < n)
			err = 0; /* .symtab's answers stand */
	}
out:
	gofile_close(&g);
	if (err)
		return err;
	for (size_t k = 0; k < n; k++)
		found += funcs[k].size != 0;
	return found;
}

int gobin_lookup(const char *path, const char *const *names, size_t n,
		 struct gobin_func *funcs)
{
	return lookup(path, names, n, funcs, true);
}

int gobin_lookup_pclntab(const char *path, const char *const *names, size_t n,
			 struct gobin_func *funcs)
{
	return lookup(path, names, n, funcs, false);
}

/* Go's binary.Uvarint within len bytes; the count used, or 0 when the
 * value does not end in time. */
static unsigned uvarint(const uint8_t *p, uint64_t len, uint64_t *v)
{
	*v = 0;
	for (unsigned i = 0; i < len && i < 10; i++) {
		*v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80))
			return i + 1;
	}
	return 0;
}

/* Where the build info header may be: its section, else the first
 * writable, non-executable segment (Go's DataStart). */
static int buildinfo_region(const struct gofile *g, struct span *r)
{
	if (!find_section(g, ".go.buildinfo", r))
		return 0;
	for (size_t i = 0; i < g->nseg; i++) {
		const struct segment *s = &g->seg[i];

		if ((s->flags & (PF_X | PF_W)) == PF_W)
			return span_from(g, s->vaddr, r);
	}
	return -ENOEXEC;
}

/* The version string: after the header (1.18+) or through a pointer to a
 * Go string {data, len} (1.13 to 1.17). */
static int buildinfo_version(const struct gofile *g, const uint8_t *h,
			     uint64_t room, const uint8_t **v, uint64_t *vlen)
{
	unsigned ptrsize = h[14], used;
	bool be = h[15] & BUILDINFO_BIG_ENDIAN;
	const uint8_t *str;

	if (h[15] & BUILDINFO_INLINE) {
		used = uvarint(h + BUILDINFO_HDR, room - BUILDINFO_HDR, vlen);
		if (!used || !fits(BUILDINFO_HDR + used, *vlen, room))
			return -ENOEXEC;
		*v = h + BUILDINFO_HDR + used;
		return 0;
	}
	if (ptrsize != 4 && ptrsize != 8)
		return -ENOEXEC;
	str = at_vaddr(g, rdword(h + 16, ptrsize, be), 2 * ptrsize);
	if (!str)
		return -ENOEXEC;
	*vlen = rdword(str + ptrsize, ptrsize, be);
	*v = *vlen <= VERSION_MAX ?
		     at_vaddr(g, rdword(str, ptrsize, be), *vlen) :
		     NULL;
	return *v ? 0 : -ENOEXEC;
}

int gobin_version(const char *path, char *version, size_t vlen)
{
	struct gofile g;
	struct span r;
	const uint8_t *v = NULL;
	uint64_t len = 0, scan;
	int err;

	if (!vlen)
		return -EINVAL;
	err = gofile_open(&g, path);
	if (err)
		return err;
	err = buildinfo_region(&g, &r);
	if (err)
		goto out;
	err = -ENOEXEC;
	scan = r.len < BUILDINFO_SCAN ? r.len : BUILDINFO_SCAN;
	for (uint64_t o = 0; o + BUILDINFO_HDR <= scan; o += BUILDINFO_ALIGN) {
		if (memcmp(r.p + o, buildinfo_magic,
			   sizeof(buildinfo_magic) - 1) != 0)
			continue;
		err = buildinfo_version(&g, r.p + o, r.len - o, &v, &len);
		break;
	}
	if (!err && (!len || len > VERSION_MAX))
		err = -ENOEXEC;
	if (!err) {
		if (len > vlen - 1)
			len = vlen - 1;
		memcpy(version, v, len);
		version[len] = '\0';
	}
out:
	gofile_close(&g);
	return err;
}

uint8_t *gobin_code(const char *path, uint64_t off, uint64_t size)
{
	struct stat st;
	uint8_t *buf = NULL;
	uint64_t done = 0;
	int fd, err = 0;

	if (!size || size > CODE_MAX) {
		errno = EINVAL;
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		err = errno;
	} else if (!fits(off, size, (uint64_t)st.st_size)) {
		err = EINVAL;
	} else if (!(buf = malloc(size))) {
		err = ENOMEM;
	}
	while (!err && done < size) {
		ssize_t got =
			pread(fd, buf + done, size - done, (off_t)(off + done));

		if (got <= 0)
			err = got ? errno : EIO;
		else
			done += (uint64_t)got;
	}
	close(fd);
	if (err) {
		free(buf);
		errno = err;
		return NULL;
	}
	return buf;
}
