/* Go executables, for uprobes on Go functions (crypto/tls.(*Conn).Read
 * and Write): the toolchain version a binary was built with, and where its
 * functions sit in the file. Works on stripped binaries too (`go build
 * -ldflags='-s -w'` removes .symtab and DWARF): the Go runtime's own
 * function table, .gopclntab, survives stripping, since panics and the
 * garbage collector need it. The input is untrusted: every read is bounded
 * by the file, and a malformed file gives an error. */
#ifndef SONDE_GOBIN_H
#define SONDE_GOBIN_H

#include <stddef.h>
#include <stdint.h>

/* Where one function's code is. */
struct gobin_func {
	uint64_t offset; /* file offset of the entry, for a uprobe */
	uint64_t size;	 /* bytes of code up to the next function */
};

/* Whether path is a Go executable, and the Go version it was built with
 * ("go1.19.8"), from its build info: the .go.buildinfo section, or when
 * section headers are gone the start of the first writable segment. Go
 * 1.18 and later store the version inline; Go 1.13 to 1.17 point to a Go
 * string; both are read. Returns 0 with version filled (NUL-terminated,
 * cut to vlen), -ENOEXEC when path is not a Go executable (or not ELF),
 * -EINVAL when vlen is 0, or -errno when path cannot be read. */
int gobin_version(const char *path, char *version, size_t vlen);

/* Looks up n Go function names ("crypto/tls.(*Conn).Read", "main.main")
 * in one pass: from .symtab when present (st_value, st_size), and from the
 * Go function table .gopclntab for the names .symtab lacks or when it is
 * gone. The table is the .gopclntab section, else the one at the
 * runtime.pcheader or runtime.pclntab symbol, else (section headers gone)
 * found by searching the segments for its header; formats of Go 1.16/1.17,
 * 1.18/1.19 and 1.20 on.
 * funcs[i] gets names[i]'s file offset (its address translated through
 * the PT_LOAD segment that holds it) and size (the symbol's, or from the
 * table the distance to the next function's entry, which counts the
 * padding after the code); {0, 0} when not found. Returns how many were
 * found, -ENOEXEC when path is not a Go executable or its table has a
 * format not known, or -errno when it cannot be read.
 * Names as nm shows them; the table differs in two ways that a lookup
 * from it inherits: a generic instantiation is "pkg.F[...]" there, and an
 * assembly function and its ABI wrapper share one name ("x.abi0" and "x"
 * in .symtab), the first by address answering. */
int gobin_lookup(const char *path, const char *const *names, size_t n,
		 struct gobin_func *funcs);

/* gobin_lookup from .gopclntab alone, as for a stripped binary even when
 * .symtab is there: the table is smaller to read than .symtab and its
 * strings (goprobe.c looks there first), and tests check it against the
 * symbols. */
int gobin_lookup_pclntab(const char *path, const char *const *names, size_t n,
			 struct gobin_func *funcs);

/* The size bytes of code at file offset off in path (as gobin_lookup
 * gave them), in a buffer the caller frees. NULL with errno set when the
 * file cannot be read, or the range is empty, past the end of the file or
 * over 16 MiB (EINVAL). */
uint8_t *gobin_code(const char *path, uint64_t off, uint64_t size);

#endif
