#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/fmt.h"

/* Dotted quad, as inet_ntop writes it, without its sprintf: one per
 * client exchange. */
static int format_ipv4(const uint8_t a[4], char *out, size_t outsz)
{
	size_t off = 0;

	if (outsz < INET_ADDRSTRLEN)
		return -1;
	for (int i = 0; i < 4; i++) {
		if (i)
			out[off++] = '.';
		if (a[i] >= 100)
			out[off++] = (char)('0' + a[i] / 100);
		if (a[i] >= 10)
			out[off++] = (char)('0' + a[i] / 10 % 10);
		out[off++] = (char)('0' + a[i] % 10);
	}
	out[off] = '\0';
	return 0;
}

int fmt_address(uint16_t family, const uint8_t addr[16], char *out,
		size_t outsz)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0,	 0,
					       0, 0, 0, 0, 0xff, 0xff };

	if (family == AF_INET6 && memcmp(addr, v4_mapped, 12) == 0)
		return format_ipv4(addr + 12, out, outsz);
	if (family == AF_INET)
		return format_ipv4(addr, out, outsz);
	if (family == AF_INET6)
		return inet_ntop(family, addr, out, outsz) ? 0 : -1;
	return -1;
}

size_t fmt_u64_digits(uint64_t value, char out[FMT_U64_DIGITS])
{
	char digits[FMT_U64_DIGITS];
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value);
	for (size_t i = 0; i < n; i++)
		out[i] = digits[n - 1 - i];
	return n;
}

int fmt_uint(unsigned value, char *out, size_t outsz)
{
	char digits[FMT_U64_DIGITS];
	size_t n = fmt_u64_digits(value, digits);

	if (n >= outsz)
		return -1;
	memcpy(out, digits, n);
	out[n] = '\0';
	return 0;
}

int fmt_parse_ulong(const char *text, unsigned long min, unsigned long max,
		    unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
