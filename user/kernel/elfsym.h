/* Symbol lookup in ELF files for uprobes: a uprobe is placed at a file
 * offset, so a function's address (its st_value, a virtual address in the
 * file's own layout) is translated through the PT_LOAD segment that holds
 * it. Works on executables (PIE or not) and shared objects, stripped or
 * not: .symtab is read when present, .dynsym otherwise as well. */
#ifndef SONDE_ELFSYM_H
#define SONDE_ELFSYM_H

#include <libelf.h>
#include <stddef.h>
#include <stdint.h>

/* Looks up n function names in one pass over path's symbol tables. Sets
 * offsets[i] to the file offset of names[i], or 0 when the file does not
 * define it (an undefined import does not count). Returns how many were
 * found, or -errno when the file cannot be read (-ENOEXEC: not an ELF
 * file, or no symbol table at all). */
int elfsym_lookup(const char *path, const char *const *names, size_t n,
		  uint64_t *offsets);

/* One name: returns 0 with *offset set, -ENOENT when path does not define
 * the function, or -errno as elfsym_lookup. */
int elfsym_offset(const char *path, const char *name, uint64_t *offset);

/* Opens path read-only and starts libelf on it (mapped, ELF_C_READ_MMAP).
 * Returns the descriptor with *fd the open file, both the caller's to
 * release with elfsym_close. On failure returns NULL with *fd -1 and
 * errno set: ENOEXEC when path is not an ELF file or libelf cannot
 * start, open's error otherwise. */
Elf *elfsym_open(const char *path, int *fd);

/* Ends what elfsym_open began: elf_end, then close. */
void elfsym_close(Elf *elf, int fd);

#endif
