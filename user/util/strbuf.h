/* A growable byte buffer for building text (the /metrics exposition). */
#ifndef SONDE_STRBUF_H
#define SONDE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *data; /* NUL-terminated while not failed */
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: contents are incomplete */
};

/* Makes room for more bytes (and the NUL) at once. Returns false, with
 * sb->failed set, when memory ran out. */
bool strbuf_reserve(struct strbuf *sb, size_t more);

/* Appends; on allocation failure sets sb->failed and drops the text. */
void strbuf_append(struct strbuf *sb, const char *s, size_t n);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Copies s into out (outsz bytes, at least 1) with control bytes written
 * as \n, \t or \xHH, cut short at a whole character when out is full: a
 * value quoted in a message stays on the message's one line and cannot
 * move a terminal's cursor. */
void escape_controls(const char *s, char *out, size_t outsz);
/* Hands the bytes to the caller (free() them) and empties sb. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_release(struct strbuf *sb);

#endif
