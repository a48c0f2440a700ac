/* Redis, RESP2 and RESP3
 * (https://redis.io/docs/latest/develop/reference/protocol-spec/). The
 * daemon reads it (user/proto/redis.c); this is its detector. Handler:
 * db_data (proto/db.bpf.h). */
#ifndef SONDE_PROTO_REDIS_BPF_H
#define SONDE_PROTO_REDIS_BPF_H

/* A command: an array of bulk strings, "*3\r\n$3\r\nSET\r\n...": '*', a
 * count of at most 6 digits, CRLF, then '$'. */
static __always_inline bool redis_detect(const char *p, __u32 n)
{
	__u32 i;

	if (n < 5 || p[0] != '*' || p[1] < '1' || p[1] > '9')
		return false;
	for (i = 2; i < 8; i++) {
		if (i + 2 >= n)
			return false;
		if (p[i] == '\r')
			return p[i + 1] == '\n' && p[i + 2] == '$';
		if (p[i] < '0' || p[i] > '9')
			return false;
	}
	return false;
}

#endif
