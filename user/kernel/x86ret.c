/* x86-64 instruction-length decoder, written from the Intel SDM vol. 2
 * (325383): chapter 2 (instruction format, REX, VEX and EVEX) and the
 * opcode maps of appendix A (tables ).
 * https://www.intel.com/content/www/us/en/developer/articles/technical/intel-sdm.html
 *
 * An instruction is: legacy prefixes, REX, an opcode in one of four maps
 * (one byte, 0F, 0F 38, 0F 3A; VEX and EVEX select the map in their own
 * prefix bytes), then ModRM, SIB and displacement when the opcode takes a
 * ModRM, then the immediate. The tables below say, per opcode, whether it
 * is defined in long mode, whether a ModRM follows and which immediate. */
#include <stdbool.h>

#include "kernel/x86ret.h"

/* The CPU raises #GP on a longer instruction, whatever its prefixes. */
#define X86_MAX_LEN 15

/* Immediate that follows an opcode (its operands, if any, are in ModRM). */
enum imm_kind {
	IMM_NONE,
	IMM_8,
	IMM_16,
	IMM_Z,	    /* 32 bits, 16 with a 66 prefix and no REX.W */
	IMM_V,	    /* MOV r, imm: 64 bits with REX.W, else as IMM_Z */
	IMM_MOFFS,  /* MOV to/from moffs: an address, 8 bytes, 4 with 67 */
	IMM_ENTER,  /* ENTER imm16, imm8 */
	IMM_REL_Z,  /* near CALL, JMP, Jcc: rel32; rel16 with 66 on AMD */
	IMM_TEST_8, /* group 3, F6: imm8 for TEST (/0, /1) only */
	IMM_TEST_Z, /* group 3, F7: imm32 for TEST (/0, /1) only */
	IMM_SSE4A,  /* 0F 78: two imm8 as EXTRQ (66) or INSERTQ (F2) */
};

/* One table cell: bit 7 set when the opcode is defined and decoded, bit 6
 * when a ModRM byte follows, bit 5 when that ModRM always names registers
 * (no SIB or displacement, whatever its mod), the low bits the enum
 * imm_kind. */
#define DEF 0x80
#define MODRM 0x40
#define MODRM_REG 0x20
#define IMM_MASK 0x0f

/* Cell names, two letters to keep the tables in the SDM's 16x16 layout. */
#define UD 0 /* undefined in long mode, or not decoded (3DNow!) */
#define PX 0 /* prefix or escape byte, consumed before the table */
#define NO DEF
#define I1 (DEF | IMM_8) /* also rel8 branches */
#define I2 (DEF | IMM_16)
#define IZ (DEF | IMM_Z)
#define IV (DEF | IMM_V)
#define MO (DEF | IMM_MOFFS)
#define EN (DEF | IMM_ENTER)
#define JZ (DEF | IMM_REL_Z)
#define MR (DEF | MODRM)
#define M1 (DEF | MODRM | IMM_8)
#define MZ (DEF | MODRM | IMM_Z)
#define T1 (DEF | MODRM | IMM_TEST_8)
#define TZ (DEF | MODRM | IMM_TEST_Z)
#define XQ (DEF | MODRM | IMM_SSE4A)
#define RR (DEF | MODRM | MODRM_REG) /* MOV to/from CRn, DRn */

/* clang-format off */

/* Table A-2, one-byte opcodes, as in 64-bit mode: 06/07, 27, 60/61, 82,
 * 9A, CE, D4-D6 and EA are invalid there; C4/C5 and 62 are VEX and EVEX;
 * 40-4F are REX. */
static const uint8_t map_one[256] = {
/*	0   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F */
/* 0 */	MR, MR, MR, MR, I1, IZ, UD, UD, MR, MR, MR, MR, I1, IZ, UD, PX,
/* 1 */	MR, MR, MR, MR, I1, IZ, UD, UD, MR, MR, MR, MR, I1, IZ, UD, UD,
/* 2 */	MR, MR, MR, MR, I1, IZ, PX, UD, MR, MR, MR, MR, I1, IZ, PX, UD,
/* 3 */	MR, MR, MR, MR, I1, IZ, PX, UD, MR, MR, MR, MR, I1, IZ, PX, UD,
/* 4 */	PX, PX, PX, PX, PX, PX, PX, PX, PX, PX, PX, PX, PX, PX, PX, PX,
/* 5 */	NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO,
/* 6 */	UD, UD, PX, MR, PX, PX, PX, PX, IZ, MZ, I1, M1, NO, NO, NO, NO,
/* 7 */	I1, I1, I1, I1, I1, I1, I1, I1, I1, I1, I1, I1, I1, I1, I1, I1,
/* 8 */	M1, MZ, UD, M1, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* 9 */	NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, UD, NO, NO, NO, NO, NO,
/* A */	MO, MO, MO, MO, NO, NO, NO, NO, I1, IZ, NO, NO, NO, NO, NO, NO,
/* B */	I1, I1, I1, I1, I1, I1, I1, I1, IV, IV, IV, IV, IV, IV, IV, IV,
/* C */	M1, M1, I2, NO, PX, PX, M1, MZ, EN, NO, I2, NO, NO, I1, UD, NO,
/* D */	MR, MR, MR, MR, UD, UD, UD, NO, MR, MR, MR, MR, MR, MR, MR, MR,
/* E */	I1, I1, I1, I1, I1, I1, I1, I1, JZ, JZ, UD, I1, NO, NO, NO, NO,
/* F */	PX, NO, PX, PX, NO, NO, T1, TZ, NO, NO, NO, NO, NO, NO, MR, MR,
};

/* Table A-3, two-byte opcodes 0F xx. 0F 0E and 0F 0F are 3DNow!, which
 * no compiler emits for x86-64 any more; 0F 38 and 0F 3A are escapes. */
static const uint8_t map_0f[256] = {
/*	0   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F */
/* 0 */	MR, MR, MR, MR, UD, NO, NO, NO, NO, NO, UD, NO, UD, MR, UD, UD,
/* 1 */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* 2 */	RR, RR, RR, RR, UD, UD, UD, UD, MR, MR, MR, MR, MR, MR, MR, MR,
/* 3 */	NO, NO, NO, NO, NO, NO, UD, NO, PX, UD, PX, UD, UD, UD, UD, UD,
/* 4 */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* 5 */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* 6 */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* 7 */	M1, M1, M1, M1, MR, MR, MR, NO, XQ, MR, UD, UD, MR, MR, MR, MR,
/* 8 */	JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ, JZ,
/* 9 */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* A */	NO, NO, NO, MR, M1, MR, UD, UD, NO, NO, NO, MR, M1, MR, MR, MR,
/* B */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, M1, MR, MR, MR, MR, MR,
/* C */	MR, MR, M1, MR, M1, M1, M1, MR, NO, NO, NO, NO, NO, NO, NO, NO,
/* D */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* E */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* F */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR,
};

/* Table A-4, three-byte opcodes 0F 38 xx without VEX: SSSE3, SSE4, SHA,
 * AES (and Key Locker), VMX/INVPCID, MOVBE, CRC32, ADX, CET, MOVDIR,
 * ENQCMD. All take a ModRM and no immediate. */
static const uint8_t map_0f38[256] = {
/*	0   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F */
/* 0 */	MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, MR, UD, UD, UD, UD,
/* 1 */	MR, UD, UD, UD, MR, MR, UD, MR, UD, UD, UD, UD, MR, MR, MR, UD,
/* 2 */	MR, MR, MR, MR, MR, MR, UD, UD, MR, MR, MR, MR, UD, UD, UD, UD,
/* 3 */	MR, MR, MR, MR, MR, MR, UD, MR, MR, MR, MR, MR, MR, MR, MR, MR,
/* 4 */	MR, MR, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 5 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 6 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 7 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 8 */	MR, MR, MR, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 9 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* A */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* B */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* C */	UD, UD, UD, UD, UD, UD, UD, UD, MR, MR, MR, MR, MR, MR, UD, MR,
/* D */	UD, UD, UD, UD, UD, UD, UD, UD, MR, UD, UD, MR, MR, MR, MR, MR,
/* E */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* F */	MR, MR, UD, UD, UD, MR, MR, UD, MR, MR, MR, MR, MR, UD, UD, UD,
};

/* Table A-5, three-byte opcodes 0F 3A xx without VEX: SSE4.1/4.2 rounds,
 * blends, inserts and extracts, string compares, PCLMULQDQ, SHA1RNDS4,
 * GFNI, AESKEYGENASSIST. All take a ModRM and an imm8. */
static const uint8_t map_0f3a[256] = {
/*	0   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F */
/* 0 */	UD, UD, UD, UD, UD, UD, UD, UD, M1, M1, M1, M1, M1, M1, M1, M1,
/* 1 */	UD, UD, UD, UD, M1, M1, M1, M1, UD, UD, UD, UD, UD, UD, UD, UD,
/* 2 */	M1, M1, M1, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 3 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 4 */	M1, M1, M1, UD, M1, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 5 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 6 */	M1, M1, M1, M1, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 7 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 8 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 9 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* A */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* B */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* C */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, M1, UD, M1, M1,
/* D */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, M1,
/* E */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* F */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
};

/* VEX and EVEX: which of the two defines each opcode. The shape needs no
 * table: every opcode of map 0F38 takes a ModRM and no immediate, every
 * one of map 0F3A a ModRM and an imm8; map 0F follows vex_shape_0f(). */
#define VX 1 /* VEX only */
#define EX 2 /* EVEX only */
#define VE (VX | EX)

/* Map 0F: AVX and AVX-512 moves, arithmetic, compares and shuffles, the
 * AVX-512 opmask instructions (41-4B, 90-99, VEX only), VLDMXCSR and
 * VSTMXCSR (AE), VZEROUPPER/VZEROALL (77). */
static const uint8_t vex_0f[256] = {
/*	0   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F */
/* 0 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 1 */	VE, VE, VE, VE, VE, VE, VE, VE, UD, UD, UD, UD, UD, UD, UD, UD,
/* 2 */	UD, UD, UD, UD, UD, UD, UD, UD, VE, VE, VE, VE, VE, VE, VE, VE,
/* 3 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 4 */	UD, VX, VX, UD, VX, VX, VX, VX, UD, UD, VX, VX, UD, UD, UD, UD,
/* 5 */	VX, VE, VX, VX, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE,
/* 6 */	VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE,
/* 7 */	VE, VE, VE, VE, VE, VE, VE, VX, EX, EX, EX, EX, VX, VX, VE, VE,
/* 8 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 9 */	VX, VX, VX, VX, UD, UD, UD, UD, VX, VX, UD, UD, UD, UD, UD, UD,
/* A */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, VX, UD,
/* B */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* C */	UD, UD, VE, UD, VE, VE, VE, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* D */	VX, VE, VE, VE, VE, VE, VE, VX, VE, VE, VE, VE, VE, VE, VE, VE,
/* E */	VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE,
/* F */	VX, VE, VE, VE, VE, VE, VE, VX, VE, VE, VE, VE, VE, VE, VE, UD,
};

/* Map 0F38: AVX2 and AVX-512 permutes, broadcasts, variable shifts,
 * gathers and scatters, FMA, VAES, GFNI, AVX-VNNI, AMX (49-5E), CMPccXADD
 * (E0-EF), BMI1/BMI2 (F2-F7). */
static const uint8_t vex_0f38[256] = {
/*	0   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F */
/* 0 */	VE, VX, VX, VX, VE, VX, VX, VX, VX, VX, VX, VE, VE, VE, VX, VX,
/* 1 */	EX, EX, EX, VE, EX, EX, VE, VX, VE, VE, VE, EX, VE, VE, VE, EX,
/* 2 */	VE, VE, VE, VE, VE, VE, EX, EX, VE, VE, VE, VE, VE, VE, VX, VX,
/* 3 */	VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE,
/* 4 */	VE, VX, EX, EX, EX, VE, VE, VE, UD, VX, UD, VX, EX, EX, EX, EX,
/* 5 */	VE, VE, VE, VE, EX, EX, UD, UD, VE, VE, VE, EX, VX, UD, VX, UD,
/* 6 */	UD, UD, EX, EX, EX, EX, EX, UD, EX, UD, UD, UD, UD, UD, UD, UD,
/* 7 */	EX, EX, VE, EX, UD, EX, EX, EX, VE, VE, EX, EX, EX, EX, EX, EX,
/* 8 */	UD, UD, UD, EX, UD, UD, UD, UD, EX, EX, EX, EX, VX, EX, VX, EX,
/* 9 */	VE, VE, VE, VE, UD, UD, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE,
/* A */	EX, EX, EX, EX, UD, UD, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE,
/* B */	VX, VX, UD, UD, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE, VE,
/* C */	UD, UD, UD, UD, EX, UD, EX, EX, EX, UD, EX, EX, EX, EX, UD, VE,
/* D */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, VX, VE, VE, VE, VE,
/* E */	VX, VX, VX, VX, VX, VX, VX, VX, VX, VX, VX, VX, VX, VX, VX, VX,
/* F */	UD, UD, VX, VX, UD, VX, VX, VX, UD, UD, UD, UD, UD, UD, UD, UD,
};

/* Map 0F3A: permutes, blends, rounds, inserts and extracts with an imm8,
 * the opmask shifts (30-33), AVX-512 ternary logic, ranges, fixups and
 * classes, VPCLMULQDQ, GFNI, RORX (F0); AMD's FMA4 and VPERMIL2 (48-49,
 * 5C-5F, 68-6F, 78-7F) are VEX-encoded here too. */
static const uint8_t vex_0f3a[256] = {
/*	0   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F */
/* 0 */	VE, VE, VX, EX, VE, VE, VX, UD, VE, VE, VE, VE, VX, VX, VX, VE,
/* 1 */	UD, UD, UD, UD, VE, VE, VE, VE, VE, VE, EX, EX, UD, VE, EX, EX,
/* 2 */	VE, VE, VE, EX, UD, EX, EX, EX, UD, UD, UD, UD, UD, UD, UD, UD,
/* 3 */	VX, VX, VX, VX, UD, UD, UD, UD, VE, VE, EX, EX, UD, UD, EX, EX,
/* 4 */	VX, VX, VE, EX, VE, UD, VX, UD, VX, VX, VX, VX, VX, UD, UD, UD,
/* 5 */	EX, EX, UD, UD, EX, EX, EX, EX, UD, UD, UD, UD, VX, VX, VX, VX,
/* 6 */	VX, VX, VX, VX, UD, UD, EX, EX, VX, VX, VX, VX, VX, VX, VX, VX,
/* 7 */	EX, EX, EX, EX, UD, UD, UD, UD, VX, VX, VX, VX, VX, VX, VX, VX,
/* 8 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* 9 */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* A */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* B */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* C */	UD, UD, EX, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, VE, VE,
/* D */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, VX,
/* E */	UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
/* F */	VX, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD, UD,
};

/* clang-format on */

/* The prefixes seen before the opcode that change its length or
 * validity. */
struct prefixes {
	bool opsize;   /* 66 */
	bool addrsize; /* 67 */
	bool rep;      /* F3 */
	bool repne;    /* F2 */
	bool lock;     /* F0 */
	uint8_t rex; /* 40-4F when it immediately precedes the opcode, else 0 */
};

/* Opcode maps as the VEX and EVEX map-select fields number them. */
enum opmap { MAP_ONE, MAP_0F, MAP_0F38, MAP_0F3A };

enum encoding { ENC_LEGACY, ENC_VEX, ENC_EVEX };

struct insn {
	struct prefixes pfx;
	enum encoding enc;
	enum opmap map;
	uint8_t op;
	size_t len;
};

/* Reads one more byte of the instruction, or fails when it would run past
 * what may be read. */
static bool next_byte(const uint8_t *p, size_t avail, size_t *n, uint8_t *b)
{
	if (*n >= avail)
		return false;
	*b = p[(*n)++];
	return true;
}

static bool is_rex(uint8_t b)
{
	return (b & 0xf0) == 0x40;
}

static bool is_legacy_prefix(uint8_t b)
{
	switch (b) {
	case 0x66: /* operand size */
	case 0x67: /* address size */
	case 0xf0: /* LOCK */
	case 0xf2: /* REPNE */
	case 0xf3: /* REP */
	case 0x2e: /* segment overrides, and branch hints */
	case 0x36:
	case 0x3e:
	case 0x26:
	case 0x64:
	case 0x65:
		return true;
	}
	return false;
}

/* Consumes legacy prefixes and REX. A REX counts only right before the
 * opcode: the CPU ignores one that another prefix follows (SDM §2.2.1),
 * while disassemblers show it as an instruction of its own. No compiler
 * emits that, so it is refused. */
static bool read_prefixes(const uint8_t *p, size_t avail, size_t *n,
			  struct prefixes *pfx)
{
	for (;; (*n)++) {
		uint8_t b;

		if (*n >= avail)
			return false;
		b = p[*n];
		if (!is_legacy_prefix(b) && !is_rex(b))
			return true;
		if (pfx->rex)
			return false;
		if (is_rex(b))
			pfx->rex = b;
		pfx->opsize |= b == 0x66;
		pfx->addrsize |= b == 0x67;
		pfx->rep |= b == 0xf3;
		pfx->repne |= b == 0xf2;
		pfx->lock |= b == 0xf0;
	}
}

/* VEX (C5 RvvvvLpp, or C4 RXBmmmmm WvvvvLpp) or EVEX (62 P0 P1 P2, the
 * map in P0's low bits): the prefix carries the map, then comes the
 * opcode. 66, F2, F3, F0 or REX before either is #UD. */
static bool read_vex(const uint8_t *p, size_t avail, size_t *n, struct insn *in,
		     uint8_t first)
{
	const struct prefixes *pfx = &in->pfx;
	uint8_t b, mmm;

	if (pfx->opsize || pfx->rep || pfx->repne || pfx->lock || pfx->rex)
		return false;
	if (!next_byte(p, avail, n, &b))
		return false;
	if (first == 0xc5) {
		mmm = 1; /* 0F implied */
	} else if (first == 0xc4) {
		mmm = b & 0x1f;
		if (!next_byte(p, avail, n, &b))
			return false;
	} else {
		/* EVEX maps 5 and 6 (AVX512-FP16) and APX's map 4 are left
		 * out: no compiler emits them by default yet. */
		mmm = b & 0x07;
		if (!next_byte(p, avail, n, &b) || !next_byte(p, avail, n, &b))
			return false;
	}
	if (mmm < 1 || mmm > 3)
		return false;
	in->enc = first == 0x62 ? ENC_EVEX : ENC_VEX;
	in->map = (enum opmap)mmm;
	return next_byte(p, avail, n, &in->op);
}

/* The shape of a VEX or EVEX opcode in map 0F: as in the legacy map,
 * with VZEROUPPER the only one without a ModRM. */
static uint8_t vex_shape_0f(uint8_t op)
{
	if (op == 0x77)
		return NO;
	if ((op >= 0x70 && op <= 0x73) || op == 0xc2 ||
	    (op >= 0xc4 && op <= 0xc6))
		return M1;
	return MR;
}

static uint8_t vex_cell(const struct insn *in)
{
	uint8_t enc = in->enc == ENC_EVEX ? EX : VX;

	switch (in->map) {
	case MAP_0F:
		return vex_0f[in->op] & enc ? vex_shape_0f(in->op) : UD;
	case MAP_0F38:
		return vex_0f38[in->op] & enc ? MR : UD;
	case MAP_0F3A:
		return vex_0f3a[in->op] & enc ? M1 : UD;
	default:
		return UD;
	}
}

/* The table cell (DEF, MODRM, immediate) for the opcode. */
static uint8_t opcode_cell(const struct insn *in)
{
	if (in->enc != ENC_LEGACY)
		return vex_cell(in);
	switch (in->map) {
	case MAP_ONE:
		return map_one[in->op];
	case MAP_0F:
		return map_0f[in->op];
	case MAP_0F38:
		return map_0f38[in->op];
	case MAP_0F3A:
		return map_0f3a[in->op];
	}
	return UD;
}

/* Opcodes defined only for some ModRM.reg values (the group's /digit),
 * or only with a mandatory prefix. Their length does not change; they are
 * refused so that a walk through data fails sooner. */
static bool form_defined(const struct insn *in, uint8_t modrm)
{
	unsigned int reg = (modrm >> 3) & 7;

	if (in->enc != ENC_LEGACY)
		return true;
	if (in->map == MAP_0F)
		/* 0F B8 is POPCNT with F3, JMPE (IA-64 only) without. */
		return in->op != 0xb8 || in->pfx.rep;
	if (in->map != MAP_ONE)
		return true;
	switch (in->op) {
	case 0x8f: /* group 1A: POP r/m; others are AMD's XOP */
		return reg == 0;
	case 0xc6: /* group 11: MOV r/m, imm; XABORT is C6 F8 */
	case 0xc7: /* XBEGIN is C7 F8 */
		return reg == 0 || modrm == 0xf8;
	case 0xfe: /* group 4: INC, DEC */
		return reg <= 1;
	case 0xff: /* group 5: /7 undefined */
		return reg != 7;
	}
	return true;
}

/* ModRM, then SIB and displacement (SDM §2.1.5, tables 2-2 and 2-3). The
 * 67 prefix selects 32-bit addressing, which in long mode has the same
 * encoding as 64-bit addressing: it does not change the length. */
static bool read_modrm(const uint8_t *p, size_t avail, size_t *n, uint8_t cell,
		       uint8_t *modrm)
{
	unsigned int mod, rm;
	size_t disp = 0;
	uint8_t sib;

	if (!next_byte(p, avail, n, modrm))
		return false;
	mod = *modrm >> 6;
	rm = *modrm & 7;
	if (mod == 3 || (cell & MODRM_REG))
		return true;
	if (mod == 1)
		disp = 1;
	else if (mod == 2 || rm == 5) /* mod 0, rm 5: RIP + disp32 */
		disp = 4;
	if (rm == 4) {
		if (!next_byte(p, avail, n, &sib))
			return false;
		if (mod == 0 && (sib & 7) == 5) /* no base: disp32 */
			disp = 4;
	}
	if (disp > avail - *n)
		return false;
	*n += disp;
	return true;
}

/* Size of the immediate, or -1 when it depends on the CPU's vendor. */
static int imm_size(const struct insn *in, unsigned int kind, uint8_t modrm)
{
	const struct prefixes *pfx = &in->pfx;
	bool rex_w = pfx->rex & 0x08;
	int z = pfx->opsize && !rex_w ? 2 : 4;
	unsigned int reg = (modrm >> 3) & 7;

	switch (kind) {
	case IMM_8:
		return 1;
	case IMM_16:
		return 2;
	case IMM_Z:
		return z;
	case IMM_V:
		return rex_w ? 8 : z;
	case IMM_MOFFS:
		return pfx->addrsize ? 4 : 8;
	case IMM_ENTER:
		return 3;
	case IMM_REL_Z:
		/* Intel ignores 66 on near branches in long mode, AMD
		 * takes rel16: no length is right for both. */
		return pfx->opsize ? -1 : 4;
	case IMM_TEST_8:
		return reg <= 1 ? 1 : 0;
	case IMM_TEST_Z:
		return reg <= 1 ? z : 0;
	case IMM_SSE4A:
		return pfx->opsize || pfx->repne ? 2 : 0;
	}
	return 0;
}

/* Decodes the instruction at p: its length, map and opcode. */
static bool decode(const uint8_t *p, size_t avail, struct insn *in)
{
	size_t n = 0;
	uint8_t first = 0, cell, modrm = 0;
	int imm;

	*in = (struct insn){ 0 };
	if (avail > X86_MAX_LEN)
		avail = X86_MAX_LEN;
	if (!read_prefixes(p, avail, &n, &in->pfx) ||
	    !next_byte(p, avail, &n, &first))
		return false;
	if (first == 0xc4 || first == 0xc5 || first == 0x62) {
		if (!read_vex(p, avail, &n, in, first))
			return false;
	} else if (first == 0x0f) {
		if (!next_byte(p, avail, &n, &in->op))
			return false;
		in->map = MAP_0F;
		if (in->op == 0x38 || in->op == 0x3a) {
			in->map = in->op == 0x38 ? MAP_0F38 : MAP_0F3A;
			if (!next_byte(p, avail, &n, &in->op))
				return false;
		}
	} else {
		in->map = MAP_ONE;
		in->op = first;
	}
	cell = opcode_cell(in);
	if (!(cell & DEF))
		return false;
	if ((cell & MODRM) && (!read_modrm(p, avail, &n, cell, &modrm) ||
			       !form_defined(in, modrm)))
		return false;
	imm = imm_size(in, cell & IMM_MASK, modrm);
	if (imm < 0 || (size_t)imm > avail - n)
		return false;
	in->len = n + (size_t)imm;
	return true;
}

int x86_insn_len(const uint8_t *p, size_t avail)
{
	struct insn in;

	return decode(p, avail, &in) ? (int)in.len : -1;
}

/* RET (C3) and RET imm16 (C2), whatever their prefixes: F3 C3 is the
 * "repz ret" older gcc emitted for AMD's branch predictor, F2 C3 MPX's
 * "bnd ret". */
static bool is_near_ret(const struct insn *in)
{
	return in->enc == ENC_LEGACY && in->map == MAP_ONE &&
	       (in->op == 0xc3 || in->op == 0xc2);
}

int x86_returns(const uint8_t *code, size_t len, uint32_t *offsets, size_t max)
{
	size_t off = 0;
	int found = 0;

	if (len > INT32_MAX)
		return -1;
	while (off < len) {
		struct insn in;

		if (!decode(code + off, len - off, &in))
			return -1;
		if (is_near_ret(&in)) {
			if ((size_t)found < max)
				offsets[found] = (uint32_t)off;
			found++;
		}
		off += in.len;
	}
	return found;
}
