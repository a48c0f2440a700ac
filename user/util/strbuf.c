#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

bool strbuf_reserve(struct strbuf *sb, size_t more)
{
	size_t cap = sb->cap ? sb->cap : 4096;
	char *data;

	if (sb->failed)
		return false;
	if (sb->len + more + 1 <= sb->cap)
		return true;
	while (cap < sb->len + more + 1)
		cap *= 2;
	data = realloc(sb->data, cap);
	if (!data) {
		sb->failed = true;
		return false;
	}
	sb->data = data;
	sb->cap = cap;
	return true;
}

void strbuf_append(struct strbuf *sb, const char *s, size_t n)
{
	if (!strbuf_reserve(sb, n))
		return;
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
	strbuf_append(sb, s, strlen(s));
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !strbuf_reserve(sb, n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, n + 1, fmt, ap);
	va_end(ap);
	sb->len += n;
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *data = sb->data;

	if (len)
		*len = sb->len;
	memset(sb, 0, sizeof(*sb));
	return data;
}

void strbuf_release(struct strbuf *sb)
{
	free(sb->data);
	memset(sb, 0, sizeof(*sb));
}

void escape_controls(const char *s, char *out, size_t outsz)
{
	size_t n = 0;

	for (; *s && n + 5 < outsz; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch >= 0x20 && ch != 0x7f)
			out[n++] = (char)ch;
		else if (ch == '\n' || ch == '\t')
			n += (size_t)snprintf(out + n, outsz - n, "\\%c",
					      ch == '\n' ? 'n' : 't');
		else
			n += (size_t)snprintf(out + n, outsz - n, "\\x%02x",
					      ch);
	}
	out[n] = '\0';
}
