/* Building a span's packed text. See trace/span.h. */
#include <string.h>

#include "trace/span.h"

/* Appends v[0..n) and a NUL to s's text; the offset it went to. */
static uint16_t put(struct span *s, const char *v, size_t n)
{
	uint16_t off = s->text_len;

	memcpy(s->text + off, v, n);
	s->text[off + n] = '\0';
	s->text_len = (uint16_t)(off + n + 1);
	return off;
}

void span_set_text(struct span *s, const char *service, size_t service_len,
		   const char *name, size_t name_len, const char *state,
		   size_t state_len)
{
	if (service_len > SPAN_SERVICE_MAX)
		service_len = SPAN_SERVICE_MAX;
	if (name_len > SPAN_NAME_MAX)
		name_len = SPAN_NAME_MAX;
	if (!state || state_len > SPAN_STATE_MAX)
		state_len = 0;
	s->text_len = 0;
	s->nattrs = 0;
	s->service_len = (uint8_t)service_len;
	s->name_len = (uint8_t)name_len;
	s->state_len = (uint8_t)state_len;
	put(s, service, service_len);
	put(s, name, name_len);
	put(s, state_len ? state : "", state_len);
}

bool span_add_string(struct span *s, const char *key, const char *v,
		     size_t n)
{
	struct span_attr *a;

	if (!n || s->nattrs == SPAN_ATTRS_MAX ||
	    n + 1 > (size_t)(SPAN_TEXT_MAX - s->text_len))
		return false;
	a = &s->attrs[s->nattrs++];
	a->key = key;
	a->len = (uint16_t)n;
	a->is_int = false;
	a->ival = 0;
	a->off = put(s, v, n);
	return true;
}

bool span_add_int(struct span *s, const char *key, int64_t v)
{
	struct span_attr *a;

	if (s->nattrs == SPAN_ATTRS_MAX)
		return false;
	a = &s->attrs[s->nattrs++];
	a->key = key;
	a->off = a->len = 0;
	a->is_int = true;
	a->ival = v;
	return true;
}

void span_copy(struct span *dst, const struct span *src)
{
	memcpy(dst, src,
	       offsetof(struct span, attrs) +
		       src->nattrs * sizeof(src->attrs[0]));
	memcpy(dst->text, src->text, src->text_len);
}
