#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "top/expo.h"

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c == ':' || (!first && c >= '0' && c <= '9');
}

/* The name at *p, NUL-terminated in place by the caller's next write;
 * returns its end, or NULL when there is none. */
static char *scan_name(char *p)
{
	if (!name_char(*p, true))
		return NULL;
	while (name_char(*p, false))
		p++;
	return p;
}

/* A quoted value at p (p at the opening quote): unescaped in place
 * (\\, \" and \n); returns the character after the closing quote, or
 * NULL when it is not closed. */
static char *scan_value(char *p, const char **value)
{
	char *out = ++p;

	*value = out;
	for (; *p && *p != '"'; p++) {
		if (*p == '\\') {
			p++;
			if (*p == 'n')
				*out++ = '\n';
			else if (*p == '\\' || *p == '"')
				*out++ = *p;
			else
				return NULL;
			continue;
		}
		*out++ = *p;
	}
	if (*p != '"')
		return NULL;
	*out = '\0';
	return p + 1;
}

/* The label set after '{': returns the character after '}', or NULL. */
static char *scan_labels(char *p, struct expo_sample *s)
{
	char *end;

	while (*p != '}') {
		struct expo_label *l;

		if (s->nlabels == EXPO_MAX_LABELS)
			return NULL;
		l = &s->labels[s->nlabels++];
		end = scan_name(p);
		if (!end || *end != '=' || end[1] != '"')
			return NULL;
		l->name = p;
		*end = '\0';
		p = scan_value(end + 1, &l->value);
		if (!p)
			return NULL;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return NULL;
	}
	return p + 1;
}

enum expo_line expo_parse_line(char *line, struct expo_sample *s)
{
	char *p = line, *end;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return EXPO_SKIP;
	s->nlabels = 0;
	s->name = p;
	end = scan_name(p);
	if (!end || (*end != '{' && *end != ' '))
		return EXPO_BROKEN;
	if (*end == '{') {
		*end = '\0';
		p = scan_labels(end + 1, s);
		if (!p)
			return EXPO_BROKEN;
	} else {
		*end = '\0';
		p = end + 1;
	}
	while (*p == ' ')
		p++;
	/* The value; a timestamp in milliseconds may follow it. */
	s->value = strtod(p, &end);
	if (end == p)
		return EXPO_BROKEN;
	p = end;
	while (*p == ' ')
		p++;
	if (*p == '-')
		p++;
	while (*p >= '0' && *p <= '9')
		p++;
	while (*p == ' ' || *p == '\r')
		p++;
	return *p ? EXPO_BROKEN : EXPO_SAMPLE;
}

const char *expo_label(const struct expo_sample *s, const char *name)
{
	for (int i = 0; i < s->nlabels; i++)
		if (strcmp(s->labels[i].name, name) == 0)
			return s->labels[i].value;
	return NULL;
}
