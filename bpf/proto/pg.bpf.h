/* PostgreSQL, the frontend/backend protocol version 3
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html).
 * The daemon reads it (user/proto/pg.c); this is its detector. Handler:
 * db_data (proto/db.bpf.h). */
#ifndef SONDE_PROTO_PG_BPF_H
#define SONDE_PROTO_PG_BPF_H

#define PG_SSL_REQUEST 80877103
#define PG_GSSENC_REQUEST 80877104
#define PG_CANCEL_REQUEST 80877102

static __always_inline __u32 pg_be32(const char *p)
{
	return (__u32)(__u8)p[0] << 24 | (__u32)(__u8)p[1] << 16 |
	       (__u32)(__u8)p[2] << 8 | (__u8)p[3];
}

/* A client's first message: a StartupMessage of protocol 3.x
 * ("\0\0\0\x29" "\0\x03\0\0" "user\0..."), or an SSLRequest,
 * GSSENCRequest or CancelRequest ("\0\0\0\x08" "\x04\xd2\x16\x2f"). */
static __always_inline bool pg_detect_startup(const char *p, __u32 n)
{
	__u32 len, code;

	if (n < 8)
		return false;
	len = pg_be32(p);
	code = pg_be32(p + 4);
	if (len < 8 || len > 10000)
		return false;
	return (code >> 16) == 3 || code == PG_SSL_REQUEST ||
	       code == PG_GSSENC_REQUEST || code == PG_CANCEL_REQUEST;
}

/* On a connection open before sonde: a simple query or a Parse, the
 * messages a pooled connection sends next ("Q\0\0\0\x1aSELECT ..." or
 * "P\0\0\0\x2a\0SELECT ..."): a type, a length under 16 MiB, then text
 * (a Parse's statement name may be empty). */
static __always_inline bool pg_detect_midstream(const char *p, __u32 n)
{
	__u32 len;
	char ch;

	if (n < 7 || (p[0] != 'Q' && p[0] != 'P') || p[1] != 0)
		return false;
	len = pg_be32(p + 1);
	ch = p[5];
	if (len < 6)
		return false;
	if (p[0] == 'P' && ch == 0)
		ch = p[6];
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       ch == ' ' || ch == '(' || ch == '\n' || ch == '/' || ch == '-';
}

#endif
