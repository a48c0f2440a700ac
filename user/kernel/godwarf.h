/* Struct member offsets from an executable's DWARF, for Go binaries: sonde
 * follows *tls.Conn -> net.Conn -> *net.TCPConn -> *net.netFD -> poll.FD
 * .Sysfd from BPF, and those structs are unexported and change layout
 * between Go releases, so their offsets are read from the binary itself.
 * A small reader of its own (libdw is not a dependency): .debug_info
 * units of DWARF 2 to 5 (32-bit DWARF), their .debug_abbrev tables and
 * the string sections, plain or zlib-compressed. Not read: DWARF 4's
 * .debug_types, supplementary files (dwz), split DWARF (.dwo), zstd. */
#ifndef SONDE_GODWARF_H
#define SONDE_GODWARF_H

#include <stddef.h>
#include <stdint.h>

struct godwarf_member {
	const char *type;   /* the struct's DW_AT_name: "crypto/tls.Conn" */
	const char *member; /* the member's DW_AT_name: "conn" */
	int64_t offset;	    /* out: its byte offset, -1 when not found */
};

/* Fills the offset of each of the n members from path's DWARF:
 * .debug_info and .debug_abbrev, plain, SHF_COMPRESSED (ELF compression
 * header, zlib), or the older .zdebug_* form ("ZLIB" + 8-byte big-endian
 * size + zlib stream). Each member is taken from the first struct of its
 * type's name that has it. Returns how many were found (0 when the DWARF
 * has none of the types); -ENOENT when the file has no DWARF (Go built
 * with -ldflags='-s -w') or does not exist; -ENOEXEC when it is not ELF,
 * or its DWARF is damaged where the members not yet found could be;
 * -ENOMEM; -errno when it cannot be opened. On error every offset is -1.
 * Allocates at most 512 MiB per decompressed section, all freed before
 * returning; members and their strings stay the caller's. */
int godwarf_offsets(const char *path, struct godwarf_member *members, size_t n);

#endif
