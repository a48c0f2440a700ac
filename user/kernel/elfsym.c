#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

#include "kernel/elfsym.h"

/* A symbol table entry names the function when it is a defined function
 * and its name is the one asked for, possibly with a version suffix as
 * static archives leave them in .symtab ("SSL_read@@OPENSSL_3.0.0"). */
static int name_matches(const char *sym, const char *want)
{
	size_t n = strlen(want);

	return strncmp(sym, want, n) == 0 && (sym[n] == '\0' || sym[n] == '@');
}

/* PT_LOAD segment holding vaddr: offset = vaddr - p_vaddr + p_offset. */
static int vaddr_to_offset(Elf *elf, uint64_t vaddr, uint64_t *offset)
{
	size_t nphdr;

	if (elf_getphdrnum(elf, &nphdr))
		return -ENOEXEC;
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
			*offset = vaddr - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

/* Fills offsets[] from one symbol table section; returns 1 when the
 * section could be read, 0 otherwise. */
static int scan_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh,
		       const char *const *names, size_t n, uint64_t *offsets)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count;

	if (!data || !sh->sh_entsize)
		return 0;
	count = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym sym;
		const char *name;
		uint64_t off;

		if (!gelf_getsym(data, i, &sym) ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
		    sym.st_shndx == SHN_UNDEF || !sym.st_value)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		for (size_t k = 0; k < n; k++) {
			if (offsets[k] || !name_matches(name, names[k]))
				continue;
			if (!vaddr_to_offset(elf, sym.st_value, &off))
				offsets[k] = off;
		}
	}
	return 1;
}

Elf *elfsym_open(const char *path, int *fd)
{
	Elf *elf;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		*fd = -1;
		errno = ENOEXEC;
		return NULL;
	}
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return NULL;
	elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		if (elf)
			elf_end(elf);
		close(*fd);
		*fd = -1;
		errno = ENOEXEC;
		return NULL;
	}
	return elf;
}

void elfsym_close(Elf *elf, int fd)
{
	elf_end(elf);
	close(fd);
}

int elfsym_lookup(const char *path, const char *const *names, size_t n,
		  uint64_t *offsets)
{
	Elf_Scn *scn = NULL;
	int fd, tables = 0, found = 0;
	Elf *elf = elfsym_open(path, &fd);

	if (!elf)
		return -errno;
	memset(offsets, 0, n * sizeof(*offsets));
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
			tables += scan_symtab(elf, scn, &sh, names, n, offsets);
	}
	elfsym_close(elf, fd);
	if (!tables)
		return -ENOEXEC;
	for (size_t k = 0; k < n; k++)
		found += offsets[k] != 0;
	return found;
}

int elfsym_offset(const char *path, const char *name, uint64_t *offset)
{
	int found = elfsym_lookup(path, &name, 1, offset);

	if (found < 0)
		return found;
	return found ? 0 : -ENOENT;
}
