/* x86-64 instruction lengths, to find a function's return instructions: a
 * Go function cannot carry a uretprobe (the Go runtime walks and copies
 * goroutine stacks, and fails on the return address a uretprobe rewrites),
 * so sonde places a plain uprobe on each of its returns instead. Long mode
 * only; the decoder knows what gcc, clang and Go's gc compiler emit, and
 * refuses the rest. */
#ifndef SONDE_X86RET_H
#define SONDE_X86RET_H

#include <stddef.h>
#include <stdint.h>

/* Length in bytes of the one instruction at p, of which avail bytes may be
 * read. Returns -1 when the bytes do not decode: an opcode the decoder
 * does not know or that long mode does not define, an instruction longer
 * than avail or than the 15 bytes the CPU allows, or a near branch with
 * an operand-size prefix (its length differs between Intel and AMD). */
int x86_insn_len(const uint8_t *p, size_t avail);

/* Walks code (len bytes, the whole body of one function) instruction by
 * instruction and writes the offsets of its return instructions (RET C3,
 * RET imm16 C2, and their prefixed forms such as F3 C3) to offsets[], at
 * most max. Returns how many were found (may exceed max: only max are
 * written), or -1 when a byte sequence cannot be decoded (as
 * x86_insn_len, including an instruction running past len) or len is over
 * INT32_MAX: the caller must then not place probes. Far returns and IRET
 * are not counted; compilers do not emit them in functions. */
int x86_returns(const uint8_t *code, size_t len, uint32_t *offsets, size_t max);

#endif
