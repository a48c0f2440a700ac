/* Label text from numbers: what the dispatcher and the TCP families write
 * per record, without printf; and numbers from text, as flags, rules and
 * variables give them. Pure functions. */
#ifndef SONDE_UTIL_FMT_H
#define SONDE_UTIL_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Writes an address as label text: dotted IPv4 (also for IPv4-mapped
 * IPv6 addresses) or IPv6. Returns 0, or -1 for an unknown family or a
 * short buffer (INET6_ADDRSTRLEN is enough). */
int fmt_address(uint16_t family, const uint8_t addr[16], char *out,
		size_t outsz);

/* The most digits a uint64_t has in decimal. */
#define FMT_U64_DIGITS 20

/* Writes value's decimal digits at out, with no NUL; returns how many. */
size_t fmt_u64_digits(uint64_t value, char out[FMT_U64_DIGITS]);

/* Writes value in decimal (a status code, a port). Returns 0, or -1 when
 * out is too short. */
int fmt_uint(unsigned value, char *out, size_t outsz);

/* Reads text, decimal digits and nothing else, as a number from min to
 * max into *out: the one reading of a number a flag, a rule or a
 * variable gives. Returns 0, or -1 when it is none (empty, signed,
 * blank, anything after the digits, out of range). */
int fmt_parse_ulong(const char *text, unsigned long min, unsigned long max,
		    unsigned long *out);

#endif
