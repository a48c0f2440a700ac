/* MySQL and MariaDB, the client/server protocol
 * (https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html).
 * The daemon reads it (user/proto/mysql.c); this is its detector.
 * Handler: db_data (proto/db.bpf.h). */
#ifndef SONDE_PROTO_MYSQL_BPF_H
#define SONDE_PROTO_MYSQL_BPF_H

/* The server's greeting, which it sends first: a packet of sequence 0
 * holding protocol version 10 and the server's version
 * ("\x5b\0\0\0" "\x0a" "10.11.6-MariaDB\0..."). */
static __always_inline bool mysql_detect_greeting(const char *p, __u32 n)
{
	__u32 len;

	if (n < 6)
		return false;
	len = (__u8)p[0] | (__u32)(__u8)p[1] << 8 | (__u32)(__u8)p[2] << 16;
	return len >= 32 && len < 1024 && p[3] == 0 && p[4] == 0x0a &&
	       p[5] >= '1' && p[5] <= '9';
}

/* On a connection open before sonde: a COM_QUERY, a pooled connection's
 * next command ("\x13\0\0" "\0" "\x03" "SELECT ..."): sequence 0, then
 * statement text. */
static __always_inline bool mysql_detect_midstream(const char *p, __u32 n)
{
	__u32 len;
	char ch;

	if (n < 7 || p[3] != 0 || p[4] != 0x03)
		return false;
	len = (__u8)p[0] | (__u32)(__u8)p[1] << 8 | (__u32)(__u8)p[2] << 16;
	ch = p[5];
	return len >= 2 && ((ch >= 'A' && ch <= 'Z') ||
			    (ch >= 'a' && ch <= 'z') || ch == ' ' || ch == '(');
}

#endif
