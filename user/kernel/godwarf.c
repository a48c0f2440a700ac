/* A minimal DWARF reader: struct member offsets, nothing else.
 * Specifications: DWARF 4, https://dwarfstd.org/doc/DWARF4.pdf and DWARF 5,
 * https://dwarfstd.org/doc/DWARF5.pdf (unit headers 7.5.1, abbreviations
 * 7.5.3, attribute forms 7.5.5 and 7.5.6, DW_OP_plus_uconst 2.5.1.4). ELF
 * compressed sections: the gABI's "Section Compression".
 *
 * What Go's linker writes (cmd/link/internal/ld/dwarf.go, Go 1.19): DWARF 4
 * compile units with 32-bit offsets, one abbreviation table for all units,
 * names as DW_FORM_string, DW_AT_data_member_location as DW_FORM_udata,
 * and sections compressed with SHF_COMPRESSED (earlier releases wrote
 * .zdebug_*). gcc and clang write the other forms handled here.
 *
 * The input is untrusted: every read goes through a cursor bounded by its
 * section (a unit's DIEs by the unit's end), every loop consumes input,
 * and allocations are capped. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "kernel/elfsym.h"
#include "kernel/godwarf.h"

/* The largest decompressed section read. The .debug_info of a small Go
 * 1.19 program using net/http is 1 MiB; this leaves room for the biggest
 * binaries and caps what a forged size can make us allocate. */
#define MAX_INFLATED (512ull << 20)
/* deflate cannot expand input more than 1032 times (zlib FAQ), so a
 * declared size above that is a lie, refused before allocating it. */
#define ZLIB_MAX_RATIO 1032
/* Abbreviations per table: Go writes ~40, gcc a few hundred per unit.
 * Caps the memory a forged .debug_abbrev can ask for. */
#define MAX_ABBREVS 65536
#define MAX_ATTR_SPECS (1u << 20)

enum {
	DW_TAG_member = 0x0d,
	DW_TAG_structure_type = 0x13,
};

enum {
	DW_AT_name = 0x03,
	DW_AT_data_member_location = 0x38,
	DW_AT_str_offsets_base = 0x72,
};

enum {
	DW_FORM_addr = 0x01,
	DW_FORM_block2 = 0x03,
	DW_FORM_block4 = 0x04,
	DW_FORM_data2 = 0x05,
	DW_FORM_data4 = 0x06,
	DW_FORM_data8 = 0x07,
	DW_FORM_string = 0x08,
	DW_FORM_block = 0x09,
	DW_FORM_block1 = 0x0a,
	DW_FORM_data1 = 0x0b,
	DW_FORM_flag = 0x0c,
	DW_FORM_sdata = 0x0d,
	DW_FORM_strp = 0x0e,
	DW_FORM_udata = 0x0f,
	DW_FORM_ref_addr = 0x10,
	DW_FORM_ref1 = 0x11,
	DW_FORM_ref2 = 0x12,
	DW_FORM_ref4 = 0x13,
	DW_FORM_ref8 = 0x14,
	DW_FORM_ref_udata = 0x15,
	DW_FORM_indirect = 0x16,
	DW_FORM_sec_offset = 0x17,
	DW_FORM_exprloc = 0x18,
	DW_FORM_flag_present = 0x19,
	DW_FORM_strx = 0x1a,
	DW_FORM_addrx = 0x1b,
	DW_FORM_ref_sup4 = 0x1c,
	DW_FORM_strp_sup = 0x1d,
	DW_FORM_data16 = 0x1e,
	DW_FORM_line_strp = 0x1f,
	DW_FORM_ref_sig8 = 0x20,
	DW_FORM_implicit_const = 0x21,
	DW_FORM_loclistx = 0x22,
	DW_FORM_rnglistx = 0x23,
	DW_FORM_ref_sup8 = 0x24,
	DW_FORM_strx1 = 0x25,
	DW_FORM_strx2 = 0x26,
	DW_FORM_strx3 = 0x27,
	DW_FORM_strx4 = 0x28,
	DW_FORM_addrx1 = 0x29,
	DW_FORM_addrx2 = 0x2a,
	DW_FORM_addrx3 = 0x2b,
	DW_FORM_addrx4 = 0x2c,
	/* GNU extensions: split DWARF before DWARF 5, and dwz. */
	DW_FORM_GNU_addr_index = 0x1f01,
	DW_FORM_GNU_str_index = 0x1f02,
	DW_FORM_GNU_ref_alt = 0x1f20,
	DW_FORM_GNU_strp_alt = 0x1f21,
};

enum {
	DW_UT_compile = 0x01,
	DW_UT_type = 0x02,
	DW_UT_partial = 0x03,
	DW_UT_skeleton = 0x04,
	DW_UT_split_compile = 0x05,
	DW_UT_split_type = 0x06,
};

#define DW_OP_plus_uconst 0x23
/* 32-bit DWARF: section offsets in units and forms are 4 bytes. */
#define OFFSET_SIZE 4

/* Bytes left to read. Once a read runs past the end, bad is set, the
 * cursor sits at the end and every later read returns 0 or NULL. */
struct cursor {
	const uint8_t *p, *end;
	bool big; /* multi-byte values are big-endian */
	bool bad;
};

static size_t cur_left(const struct cursor *c)
{
	return (size_t)(c->end - c->p);
}

static const uint8_t *cur_take(struct cursor *c, uint64_t n)
{
	const uint8_t *p = c->p;

	if (c->bad || n > cur_left(c)) {
		c->bad = true;
		c->p = c->end;
		return NULL;
	}
	c->p += n;
	return p;
}

/* An n-byte (1 to 8) unsigned integer in the file's byte order. */
static uint64_t cur_uint(struct cursor *c, unsigned n)
{
	const uint8_t *p = cur_take(c, n);
	uint64_t v = 0;

	if (!p)
		return 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[c->big ? n - 1 - i : i] << (8 * i);
	return v;
}

/* LEB128 (DWARF 5, 7.6), sign-extended when sign is set. Bits past the
 * 64th are dropped: no value this reader uses is that wide, and the
 * padding a producer may add is legal. */
static uint64_t cur_leb(struct cursor *c, bool sign)
{
	const uint8_t *b;
	uint64_t v = 0;
	unsigned shift = 0;

	do {
		b = cur_take(c, 1);
		if (!b)
			return 0;
		if (shift < 64)
			v |= (uint64_t)(*b & 0x7f) << shift;
		if (shift < 64)
			shift += 7;
	} while (*b & 0x80);
	if (sign && shift < 64 && (*b & 0x40))
		v |= ~0ull << shift;
	return v;
}

static uint64_t cur_uleb(struct cursor *c)
{
	return cur_leb(c, false);
}

static int64_t cur_sleb(struct cursor *c)
{
	return (int64_t)cur_leb(c, true);
}

/* A NUL-terminated string inside the cursor's bounds. */
static const char *cur_cstr(struct cursor *c)
{
	const uint8_t *nul;
	const char *s = (const char *)c->p;

	if (c->bad)
		return NULL;
	nul = memchr(c->p, 0, cur_left(c));
	if (!nul) {
		c->bad = true;
		c->p = c->end;
		return NULL;
	}
	c->p = nul + 1;
	return s;
}

enum {
	SEC_INFO,
	SEC_ABBREV,
	SEC_STR,
	SEC_LINE_STR,
	SEC_STR_OFFSETS,
	SEC_COUNT,
};

static const char *const section_suffix[SEC_COUNT] = {
	[SEC_INFO] = "info",
	[SEC_ABBREV] = "abbrev",
	[SEC_STR] = "str",
	[SEC_LINE_STR] = "line_str",
	[SEC_STR_OFFSETS] = "str_offsets",
};

struct section {
	const uint8_t *data;
	size_t size;
	void *owned; /* the decompressed copy data points into, or NULL */
	bool present;
};

struct attr_spec {
	uint32_t name, form; /* UINT32_MAX stands for anything wider */
	int64_t implicit;    /* DW_FORM_implicit_const's value */
};

struct abbrev {
	uint64_t code, tag;
	bool children;
	uint32_t first, count; /* its specs in the table's specs[] */
};

struct abbrev_table {
	uint64_t offset; /* in .debug_abbrev; valid when parsed */
	bool parsed;
	struct abbrev *abbrevs;
	size_t n, cap;
	struct attr_spec *specs;
	size_t nspecs, cap_specs;
};

struct dwarf {
	struct section sec[SEC_COUNT];
	bool big;
	struct abbrev_table table; /* the last unit's; Go's units share one */
};

struct unit {
	struct cursor c; /* its DIEs */
	unsigned version, addr_size;
	uint64_t str_offsets_base;
	bool has_str_offsets_base;
};

/* One attribute's value as read: which fields mean something depends on
 * form (u for fixed-size and unsigned LEB128 forms and string offsets, s
 * for signed ones, str for DW_FORM_string, block/len for blocks). */
struct value {
	uint32_t form;
	uint64_t u;
	int64_t s;
	const char *str;
	const uint8_t *block;
	uint64_t len;
};

/* Where an absent or empty section points: no NULL pointer arithmetic. */
static const uint8_t no_bytes[1];

static struct cursor section_cursor(const struct dwarf *d, int id)
{
	const struct section *s = &d->sec[id];
	const uint8_t *p = s->data ? s->data : no_bytes;

	return (struct cursor){ .p = p, .end = p + s->size, .big = d->big };
}

/* Inflates a zlib stream that must decompress to exactly size bytes. */
static int inflate_section(const uint8_t *src, size_t len, uint64_t size,
			   struct section *out)
{
	uLongf got = size;
	Bytef *dst;

	if (!size || size > MAX_INFLATED || size / ZLIB_MAX_RATIO > len)
		return -ENOEXEC;
	dst = malloc(size);
	if (!dst)
		return -ENOMEM;
	if (uncompress(dst, &got, src, len) != Z_OK || got != size) {
		free(dst);
		return -ENOEXEC;
	}
	out->owned = dst;
	out->data = dst;
	out->size = size;
	return 0;
}

/* SHF_COMPRESSED: an Elf32_Chdr or Elf64_Chdr, then the stream. Read by
 * hand: Go aligns these sections to 1 byte, so the header may be
 * unaligned. */
static int inflate_elf(const uint8_t *p, size_t len, bool is64, bool big,
		       struct section *out)
{
	struct cursor c = { .p = p, .end = p + len, .big = big };
	uint32_t type;
	uint64_t size;

	type = cur_uint(&c, 4);
	if (is64) {
		cur_uint(&c, 4); /* ch_reserved */
		size = cur_uint(&c, 8);
		cur_uint(&c, 8); /* ch_addralign */
	} else {
		size = cur_uint(&c, 4);
		cur_uint(&c, 4);
	}
	if (c.bad || type != ELFCOMPRESS_ZLIB)
		return -ENOEXEC;
	return inflate_section(c.p, cur_left(&c), size, out);
}

/* .zdebug_*: "ZLIB", the size as 8 bytes big-endian, then the stream. */
static int inflate_zdebug(const uint8_t *p, size_t len, struct section *out)
{
	struct cursor c = { .p = p, .end = p + len, .big = true };
	const uint8_t *magic = cur_take(&c, 4);
	uint64_t size = cur_uint(&c, 8);

	if (!magic || c.bad || memcmp(magic, "ZLIB", 4) != 0)
		return -ENOEXEC;
	return inflate_section(c.p, cur_left(&c), size, out);
}

/* Which DWARF section a section name is, or -1; *zdebug for ".zdebug_". */
static int section_id(const char *name, bool *zdebug)
{
	const char *suffix;

	if (strncmp(name, ".debug_", 7) == 0) {
		suffix = name + 7;
		*zdebug = false;
	} else if (strncmp(name, ".zdebug_", 8) == 0) {
		suffix = name + 8;
		*zdebug = true;
	} else {
		return -1;
	}
	for (int i = 0; i < SEC_COUNT; i++)
		if (strcmp(suffix, section_suffix[i]) == 0)
			return i;
	return -1;
}

static int load_section(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh,
			bool zdebug, const struct dwarf *d, struct section *out)
{
	const uint8_t *bytes;
	Elf_Data *raw;
	int err = 0;

	/* NOBITS: the DWARF went to a separate debug file. */
	if (sh->sh_type == SHT_NOBITS)
		return 0;
	/* libelf checks the section lies inside the file. */
	raw = elf_rawdata(scn, NULL);
	if (!raw || (!raw->d_buf && raw->d_size))
		return -ENOEXEC;
	bytes = raw->d_buf ? raw->d_buf : no_bytes;
	if (sh->sh_flags & SHF_COMPRESSED)
		err = inflate_elf(bytes, raw->d_size,
				  gelf_getclass(elf) == ELFCLASS64, d->big,
				  out);
	else if (zdebug)
		err = inflate_zdebug(bytes, raw->d_size, out);
	else
		*out = (struct section){ .data = bytes, .size = raw->d_size };
	if (err)
		return err;
	out->present = true;
	return 0;
}

static int load_sections(Elf *elf, struct dwarf *d)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	char *ident;

	ident = elf_getident(elf, NULL);
	if (!ident || elf_getshdrstrndx(elf, &shstrndx))
		return -ENOEXEC;
	d->big = ident[EI_DATA] == ELFDATA2MSB;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;
		GElf_Shdr sh;
		bool zdebug;
		int id, err;

		if (!gelf_getshdr(scn, &sh))
			return -ENOEXEC;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		id = name ? section_id(name, &zdebug) : -1;
		if (id < 0 || d->sec[id].present)
			continue;
		err = load_section(elf, scn, &sh, zdebug, d, &d->sec[id]);
		if (err)
			return err;
	}
	return 0;
}

static int abbrev_cmp(const void *a, const void *b)
{
	const struct abbrev *x = a, *y = b;

	return x->code < y->code ? -1 : x->code > y->code;
}

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Doubles an array's room; returns it (perhaps moved) with *cap updated,
 * or NULL with the old one still allocated. */
static void *grow(void *arr, size_t *cap, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 64;
	void *p = realloc(arr, ncap * elem);

	if (p)
		*cap = ncap;
	return p;
}

/* Reads one (attribute, form) pair into t: 1 at the (0, 0) that ends an
 * abbreviation, 0 otherwise, -errno when t is full. */
static int add_spec(struct abbrev_table *t, struct cursor *c)
{
	struct attr_spec *s;
	uint64_t name = cur_uleb(c), form = cur_uleb(c);

	if (!name && !form)
		return 1;
	if (t->nspecs == MAX_ATTR_SPECS)
		return -ENOEXEC;
	if (t->nspecs == t->cap_specs) {
		s = grow(t->specs, &t->cap_specs, sizeof(*s));
		if (!s)
			return -ENOMEM;
		t->specs = s;
	}
	s = &t->specs[t->nspecs++];
	s->name = clamp32(name);
	s->form = clamp32(form);
	s->implicit = form == DW_FORM_implicit_const ? cur_sleb(c) : 0;
	return 0;
}

/* Parses the abbreviation table at offset (DWARF 5, 7.5.3): entries of
 * code, tag, children flag and (attribute, form) pairs ending in (0, 0);
 * code 0 ends the table. Sorted by code for abbrev_find. */
static int parse_abbrevs(struct dwarf *d, uint64_t offset)
{
	struct abbrev_table *t = &d->table;
	struct cursor c = section_cursor(d, SEC_ABBREV);
	int err;

	if (t->parsed && t->offset == offset)
		return 0;
	t->parsed = false;
	t->n = 0;
	t->nspecs = 0;
	cur_take(&c, offset);
	for (;;) {
		uint64_t code = cur_uleb(&c);
		struct abbrev *a;

		if (c.bad)
			return -ENOEXEC;
		if (!code)
			break;
		if (t->n == MAX_ABBREVS)
			return -ENOEXEC;
		if (t->n == t->cap) {
			a = grow(t->abbrevs, &t->cap, sizeof(*a));
			if (!a)
				return -ENOMEM;
			t->abbrevs = a;
		}
		a = &t->abbrevs[t->n++];
		a->code = code;
		a->tag = cur_uleb(&c);
		a->children = cur_uint(&c, 1) != 0;
		a->first = (uint32_t)t->nspecs;
		while ((err = add_spec(t, &c)) == 0 && !c.bad)
			;
		if (err < 0)
			return err;
		if (c.bad)
			return -ENOEXEC;
		a->count = (uint32_t)(t->nspecs - a->first);
	}
	if (t->n)
		qsort(t->abbrevs, t->n, sizeof(*t->abbrevs), abbrev_cmp);
	t->offset = offset;
	t->parsed = true;
	return 0;
}

static const struct abbrev *abbrev_find(const struct abbrev_table *t,
					uint64_t code)
{
	size_t lo = 0, hi = t->n;

	/* Producers number abbreviations 1, 2, 3...: usually a direct hit. */
	if (code - 1 < t->n && t->abbrevs[code - 1].code == code)
		return &t->abbrevs[code - 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->abbrevs[mid].code == code)
			return &t->abbrevs[mid];
		if (t->abbrevs[mid].code < code)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Reads one attribute value of the given form, whatever its size (DWARF 5,
 * 7.5.6, and 7.5.5 for which forms have a size of their own). Returns -1
 * for a form this reader does not know: the rest of the unit cannot be
 * located past it. */
static int read_value(struct unit *u, uint32_t form, int64_t implicit,
		      struct value *v)
{
	struct cursor *c = &u->c;
	unsigned size = 0;

	*v = (struct value){ 0 };
	while (form == DW_FORM_indirect) /* each hop consumes input */
		form = clamp32(cur_uleb(c));
	v->form = form;
	switch (form) {
	case DW_FORM_flag_present:
		return 0;
	case DW_FORM_implicit_const:
		v->s = implicit; /* never through indirect: checked below */
		return c->bad ? -1 : 0;
	case DW_FORM_data1:
	case DW_FORM_ref1:
	case DW_FORM_flag:
	case DW_FORM_strx1:
	case DW_FORM_addrx1:
		size = 1;
		break;
	case DW_FORM_data2:
	case DW_FORM_ref2:
	case DW_FORM_strx2:
	case DW_FORM_addrx2:
		size = 2;
		break;
	case DW_FORM_strx3:
	case DW_FORM_addrx3:
		size = 3;
		break;
	case DW_FORM_data4:
	case DW_FORM_ref4:
	case DW_FORM_ref_sup4:
	case DW_FORM_strx4:
	case DW_FORM_addrx4:
		size = 4;
		break;
	case DW_FORM_data8:
	case DW_FORM_ref8:
	case DW_FORM_ref_sig8:
	case DW_FORM_ref_sup8:
		size = 8;
		break;
	case DW_FORM_strp:
	case DW_FORM_line_strp:
	case DW_FORM_strp_sup:
	case DW_FORM_sec_offset:
	case DW_FORM_GNU_ref_alt:
	case DW_FORM_GNU_strp_alt:
		size = OFFSET_SIZE;
		break;
	case DW_FORM_ref_addr:
		/* An address in DWARF 2, an offset from DWARF 3 on. */
		size = u->version == 2 ? u->addr_size : OFFSET_SIZE;
		break;
	case DW_FORM_addr:
		size = u->addr_size;
		break;
	case DW_FORM_data16:
		cur_take(c, 16);
		return c->bad ? -1 : 0;
	case DW_FORM_udata:
	case DW_FORM_ref_udata:
	case DW_FORM_strx:
	case DW_FORM_addrx:
	case DW_FORM_loclistx:
	case DW_FORM_rnglistx:
	case DW_FORM_GNU_addr_index:
	case DW_FORM_GNU_str_index:
		v->u = cur_uleb(c);
		return c->bad ? -1 : 0;
	case DW_FORM_sdata:
		v->s = cur_sleb(c);
		return c->bad ? -1 : 0;
	case DW_FORM_string:
		v->str = cur_cstr(c);
		return c->bad ? -1 : 0;
	case DW_FORM_block1:
		v->len = cur_uint(c, 1);
		break;
	case DW_FORM_block2:
		v->len = cur_uint(c, 2);
		break;
	case DW_FORM_block4:
		v->len = cur_uint(c, 4);
		break;
	case DW_FORM_block:
	case DW_FORM_exprloc:
		v->len = cur_uleb(c);
		break;
	default:
		return -1;
	}
	if (size)
		v->u = cur_uint(c, size);
	else
		v->block = cur_take(c, v->len);
	return c->bad ? -1 : 0;
}

/* A NUL-terminated string at offset in a string section, or NULL. */
static const char *section_string(const struct section *s, uint64_t offset)
{
	if (!s->present || offset >= s->size)
		return NULL;
	if (!memchr(s->data + offset, 0, s->size - offset))
		return NULL;
	return (const char *)s->data + offset;
}

/* DW_FORM_strx*: the index'th 4-byte entry of .debug_str_offsets past the
 * unit's DW_AT_str_offsets_base, an offset into .debug_str. */
static const char *strx_string(const struct dwarf *d, const struct unit *u,
			       uint64_t index)
{
	struct cursor c = section_cursor(d, SEC_STR_OFFSETS);

	if (!u->has_str_offsets_base || index > SIZE_MAX / OFFSET_SIZE)
		return NULL;
	cur_take(&c, u->str_offsets_base);
	cur_take(&c, index * OFFSET_SIZE);
	if (c.bad)
		return NULL;
	return section_string(&d->sec[SEC_STR], cur_uint(&c, OFFSET_SIZE));
}

/* The string an attribute names, or NULL when it is not one or lives
 * where this reader does not look (a supplementary file). */
static const char *value_string(const struct dwarf *d, const struct unit *u,
				const struct value *v)
{
	switch (v->form) {
	case DW_FORM_string:
		return v->str;
	case DW_FORM_strp:
		return section_string(&d->sec[SEC_STR], v->u);
	case DW_FORM_line_strp:
		return section_string(&d->sec[SEC_LINE_STR], v->u);
	case DW_FORM_strx:
	case DW_FORM_strx1:
	case DW_FORM_strx2:
	case DW_FORM_strx3:
	case DW_FORM_strx4:
	case DW_FORM_GNU_str_index:
		return strx_string(d, u, v->u);
	default:
		return NULL;
	}
}

/* DW_AT_data_member_location: a constant (Go; gcc and clang from DWARF
 * 4), or an expression "DW_OP_plus_uconst N" (DWARF 2 and 3). Returns
 * false for anything else, including a location list. */
static bool value_offset(const struct unit *u, const struct value *v,
			 int64_t *offset)
{
	struct cursor expr;

	switch (v->form) {
	case DW_FORM_data4:
	case DW_FORM_data8:
		/* In DWARF 2 and 3 these are location list pointers. */
		if (u->version < 4)
			return false;
		/* fallthrough */
	case DW_FORM_data1:
	case DW_FORM_data2:
	case DW_FORM_udata:
		*offset = (int64_t)v->u;
		return v->u <= INT64_MAX;
	case DW_FORM_sdata:
	case DW_FORM_implicit_const:
		*offset = v->s;
		return v->s >= 0;
	case DW_FORM_block1:
	case DW_FORM_block2:
	case DW_FORM_block4:
	case DW_FORM_block:
	case DW_FORM_exprloc:
		expr = (struct cursor){ .p = v->block,
					.end = v->block + v->len };
		if (!v->block || cur_uint(&expr, 1) != DW_OP_plus_uconst)
			return false;
		*offset = (int64_t)cur_uleb(&expr);
		return !expr.bad && !cur_left(&expr) && *offset >= 0;
	default:
		return false;
	}
}

/* The attributes of one DIE this reader looks at. */
struct die {
	struct value name, location;
	bool has_name, has_location;
};

static int read_die(const struct dwarf *d, struct unit *u,
		    const struct abbrev *a, struct die *die)
{
	die->has_name = die->has_location = false;
	for (uint32_t i = 0; i < a->count; i++) {
		const struct attr_spec *spec = &d->table.specs[a->first + i];
		struct value v;

		if (read_value(u, spec->form, spec->implicit, &v))
			return -ENOEXEC;
		/* implicit_const has its value in the abbreviation only. */
		if (v.form == DW_FORM_implicit_const &&
		    spec->form != DW_FORM_implicit_const)
			return -ENOEXEC;
		if (spec->name == DW_AT_name) {
			die->name = v;
			die->has_name = true;
		} else if (spec->name == DW_AT_data_member_location) {
			die->location = v;
			die->has_location = true;
		} else if (spec->name == DW_AT_str_offsets_base &&
			   v.form == DW_FORM_sec_offset) {
			/* On the unit's DIE, before any name needs it. */
			u->str_offsets_base = v.u;
			u->has_str_offsets_base = true;
		}
	}
	return 0;
}

static bool wanted_type(const struct godwarf_member *m, size_t n,
			const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].offset < 0 && strcmp(m[i].type, name) == 0)
			return true;
	return false;
}

/* A member DIE of the struct named type: fills every wanted member it is
 * and counts them in *found. */
static void match_member(const struct dwarf *d, const struct unit *u,
			 const struct die *die, const char *type,
			 struct godwarf_member *m, size_t n, size_t *found)
{
	const char *name;
	int64_t offset;

	if (!die->has_name || !die->has_location)
		return;
	name = value_string(d, u, &die->name);
	if (!name || !value_offset(u, &die->location, &offset))
		return;
	for (size_t i = 0; i < n; i++) {
		if (m[i].offset >= 0 || strcmp(m[i].member, name) != 0 ||
		    strcmp(m[i].type, type) != 0)
			continue;
		m[i].offset = offset;
		(*found)++;
	}
}

/* Walks a unit's DIEs in order. depth is the nesting level of the next
 * DIE: a DIE with DW_CHILDREN_yes opens a level, a null entry closes one.
 * Inside a wanted struct (at struct_depth), its members are the DIEs one
 * level down. */
static int scan_dies(const struct dwarf *d, struct unit *u,
		     struct godwarf_member *m, size_t n, size_t *found)
{
	uint64_t depth = 0, struct_depth = 0;
	const char *type = NULL; /* the wanted struct we are in, or NULL */

	while (cur_left(&u->c) && *found < n) {
		uint64_t code = cur_uleb(&u->c);
		const struct abbrev *a;
		struct die die;

		if (u->c.bad)
			return -ENOEXEC;
		if (!code) {
			/* Null entry; at level 0 it is padding. */
			if (depth)
				depth--;
			if (type && depth <= struct_depth)
				type = NULL;
			continue;
		}
		a = abbrev_find(&d->table, code);
		if (!a || read_die(d, u, a, &die))
			return -ENOEXEC;
		if (type && a->tag == DW_TAG_member &&
		    depth == struct_depth + 1) {
			match_member(d, u, &die, type, m, n, found);
		} else if (!type && a->tag == DW_TAG_structure_type &&
			   a->children && die.has_name) {
			const char *name = value_string(d, u, &die.name);

			if (name && wanted_type(m, n, name)) {
				type = name;
				struct_depth = depth;
			}
		}
		if (a->children)
			depth++;
	}
	return 0;
}

/* One unit whose header starts at c (its length already read and c
 * bounded by its end): the header (DWARF 5, 7.5.1; DWARF 4, 7.5.1.1),
 * its abbreviations, then its DIEs. */
static int scan_unit(struct dwarf *d, struct cursor c, struct godwarf_member *m,
		     size_t n, size_t *found)
{
	struct unit u = { .c = c };
	uint64_t abbrev_offset;
	unsigned type = DW_UT_compile;
	int err;

	u.version = (unsigned)cur_uint(&u.c, 2);
	if (u.version < 2 || u.version > 5)
		return -ENOEXEC;
	if (u.version == 5) {
		type = (unsigned)cur_uint(&u.c, 1);
		u.addr_size = (unsigned)cur_uint(&u.c, 1);
		abbrev_offset = cur_uint(&u.c, OFFSET_SIZE);
	} else {
		abbrev_offset = cur_uint(&u.c, OFFSET_SIZE);
		u.addr_size = (unsigned)cur_uint(&u.c, 1);
	}
	switch (type) {
	case DW_UT_compile:
	case DW_UT_partial:
		break;
	case DW_UT_skeleton:
	case DW_UT_split_compile:
		cur_take(&u.c, 8); /* dwo_id */
		break;
	case DW_UT_type:
	case DW_UT_split_type:
		cur_take(&u.c, 8 + OFFSET_SIZE); /* signature, type_offset */
		break;
	default:
		return 0; /* a vendor's unit: not ours to read */
	}
	if (u.c.bad || u.addr_size < 1 || u.addr_size > 8)
		return -ENOEXEC;
	err = parse_abbrevs(d, abbrev_offset);
	if (err)
		return err;
	return scan_dies(d, &u, m, n, found);
}

/* Walks .debug_info unit by unit. A unit that cannot be read is skipped
 * (its length still frames the next one) and makes the walk fail unless
 * every member is found elsewhere; a broken length ends the walk. */
static int scan_info(struct dwarf *d, struct godwarf_member *m, size_t n)
{
	struct cursor c = section_cursor(d, SEC_INFO);
	size_t found = 0;
	bool damaged = false;

	while (cur_left(&c) && found < n) {
		uint64_t len = cur_uint(&c, 4);
		struct cursor unit;
		int err;

		if (len == 0xffffffff) {
			/* 64-bit DWARF: not read, skipped whole. */
			len = cur_uint(&c, 8);
			damaged = true;
			cur_take(&c, len);
			if (c.bad)
				break;
			continue;
		}
		if (c.bad || len >= 0xfffffff0 || len > cur_left(&c)) {
			damaged = true;
			break;
		}
		unit = (struct cursor){ .p = c.p,
					.end = c.p + len,
					.big = d->big };
		c.p += len;
		err = scan_unit(d, unit, m, n, &found);
		if (err == -ENOMEM)
			return err;
		if (err)
			damaged = true;
	}
	if (damaged && found < n)
		return -ENOEXEC;
	return (int)found;
}

/* libelf takes a file whose section headers lie past its end for one
 * without sections: that file was cut short, it is not free of DWARF. */
static bool headers_cut(Elf *elf, int fd)
{
	struct stat st;
	GElf_Ehdr eh;

	if (!gelf_getehdr(elf, &eh) || fstat(fd, &st))
		return true;
	return eh.e_shoff && (eh.e_shoff >= (uint64_t)st.st_size ||
			      (uint64_t)eh.e_shnum * eh.e_shentsize >
				      (uint64_t)st.st_size - eh.e_shoff);
}

static void free_dwarf(struct dwarf *d)
{
	for (int i = 0; i < SEC_COUNT; i++)
		free(d->sec[i].owned);
	free(d->table.abbrevs);
	free(d->table.specs);
}

int godwarf_offsets(const char *path, struct godwarf_member *members, size_t n)
{
	struct dwarf d = { 0 };
	int fd, ret;
	Elf *elf;

	for (size_t i = 0; i < n; i++)
		members[i].offset = -1;
	elf = elfsym_open(path, &fd);
	if (!elf)
		return -errno;
	ret = headers_cut(elf, fd) ? -ENOEXEC : load_sections(elf, &d);
	if (!ret && !d.sec[SEC_INFO].present)
		ret = -ENOENT;
	else if (!ret && !d.sec[SEC_ABBREV].present)
		ret = -ENOEXEC;
	if (!ret)
		ret = scan_info(&d, members, n);
	free_dwarf(&d);
	elfsym_close(elf, fd);
	if (ret < 0)
		for (size_t i = 0; i < n; i++)
			members[i].offset = -1;
	return ret;
}
