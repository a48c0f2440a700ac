/* Memcached, the text protocol and its meta commands
 * (https://github.com/memcached/memcached/blob/master/doc/protocol.txt).
 * The daemon reads it (user/proto/memcached.c); this is its detector.
 * Handler: db_data (proto/db.bpf.h). */
#ifndef SONDE_PROTO_MEMCACHED_BPF_H
#define SONDE_PROTO_MEMCACHED_BPF_H

/* A command word of up to 8 bytes as one number, its first byte lowest. */
#define MC_W2(a, b) ((__u64)(a) | (__u64)(b) << 8)
#define MC_W3(a, b, c) (MC_W2(a, b) | (__u64)(c) << 16)
#define MC_W4(a, b, c, d) (MC_W3(a, b, c) | (__u64)(d) << 24)
#define MC_W5(a, b, c, d, e) (MC_W4(a, b, c, d) | (__u64)(e) << 32)
#define MC_W6(a, b, c, d, e, f) (MC_W5(a, b, c, d, e) | (__u64)(f) << 40)
#define MC_W7(a, b, c, d, e, f, g) (MC_W6(a, b, c, d, e, f) | (__u64)(g) << 48)

/* The command word a connection's first bytes start with (lower-case
 * letters, '_' allowed after the first, at most 7 of them; 9 for
 * "flush_all", whose first 7 count), and what follows it: *sep is ' ' or
 * '\r'. 0 when there is none. Built in a register: detectors run in the
 * dispatcher's stack frame, which the deepest call path shares. */
static __always_inline __u64 mc_command(const char *p, __u32 n, char *sep)
{
	__u64 w = 0;
	__u32 i;

	for (i = 0; i < 10; i++) {
		char ch = p[i];

		if (i >= n)
			return 0;
		if (ch == ' ' || ch == '\r') {
			*sep = ch;
			return i ? w : 0;
		}
		if (!((ch >= 'a' && ch <= 'z') || (i && ch == '_')))
			return 0;
		if (i < 7)
			w |= (__u64)(__u8)ch << (8 * i);
	}
	return 0;
}

/* A command, in lower case: "get k\r\n", "set k 0 0 5\r\n", "mg k v\r\n"
 * (HTTP's methods are upper case). */
static __always_inline bool memcached_detect(const char *p, __u32 n)
{
	char sep = 0;
	__u64 w = mc_command(p, n, &sep);

	switch (w) {
	case MC_W3('g', 'e', 't'):
	case MC_W4('g', 'e', 't', 's'):
	case MC_W3('g', 'a', 't'):
	case MC_W4('g', 'a', 't', 's'):
	case MC_W3('s', 'e', 't'):
	case MC_W3('a', 'd', 'd'):
	case MC_W7('r', 'e', 'p', 'l', 'a', 'c', 'e'):
	case MC_W6('a', 'p', 'p', 'e', 'n', 'd'):
	case MC_W7('p', 'r', 'e', 'p', 'e', 'n', 'd'):
	case MC_W3('c', 'a', 's'):
	case MC_W6('d', 'e', 'l', 'e', 't', 'e'):
	case MC_W4('i', 'n', 'c', 'r'):
	case MC_W4('d', 'e', 'c', 'r'):
	case MC_W5('t', 'o', 'u', 'c', 'h'):
	case MC_W2('m', 'g'):
	case MC_W2('m', 's'):
	case MC_W2('m', 'd'):
	case MC_W2('m', 'a'):
		return sep == ' ';
	case MC_W2('m', 'n'):
	case MC_W7('v', 'e', 'r', 's', 'i', 'o', 'n'):
	case MC_W5('s', 't', 'a', 't', 's'):
	case MC_W7('f', 'l', 'u', 's', 'h', '_', 'a'):
		return true;
	}
	return false;
}

#endif
