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

/* A byte a statement's text starts with: a keyword's letter, a space, a
 * parenthesis ("SELECT", " SELECT", "(SELECT"). */
static __always_inline bool mysql_sql_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       ch == ' ' || ch == '(';
}

/* On a connection open before sonde: a COM_QUERY, a pooled connection's
 * next command: sequence 0, then statement text ("\x13\0\0" "\0" "\x03"
 * "SELECT ..."). A MySQL 8 client that negotiated CLIENT_QUERY_ATTRIBUTES
 * puts its attributes before the text: their count and the count of
 * their sets (always 1), both length-encoded, then, for a count above 0,
 * their NULL bitmap, types, names and values
 * (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query.html).
 * With none, the common case, that is "\0\x01" ("\x0b\0\0" "\0" "\x03"
 * "\0\x01" "SELECT 1"). */
static __always_inline bool mysql_detect_midstream(const char *p, __u32 n)
{
	bool attrs;
	__u32 len;

	if (n < 7 || p[3] != 0 || p[4] != 0x03)
		return false;
	len = (__u8)p[0] | (__u32)(__u8)p[1] << 8 | (__u32)(__u8)p[2] << 16;
	attrs = p[5] == 0 && p[6] == 0x01 && n >= 8;
	return len >= (attrs ? 4 : 2) && mysql_sql_start(attrs ? p[7] : p[5]);
}

#endif
