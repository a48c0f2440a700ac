/* A finished span, as the trace pipeline hands it to the exporter: ids,
 * times on the wall clock, its name and attributes. Built on the
 * consumer thread (trace.c), read on the exporter's. Field meanings
 * follow OTLP's trace.proto (Span) and the OpenTelemetry semantic
 * conventions.
 *
 * The text a span holds (service, name, trace state, attribute values)
 * is packed in text[], so that copying a span copies what it uses
 * (span_used_bytes), some 300 bytes, not its room. */
#ifndef SONDE_SPAN_H
#define SONDE_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Span.SpanKind values of trace.proto. */
enum span_kind {
	SPAN_KIND_SERVER = 2,
	SPAN_KIND_CLIENT = 3,
};

/* The most attributes a span carries: a database client span has seven. */
#define SPAN_ATTRS_MAX 10
/* Room for the service (64), the name (127), a trace state (W3C allows
 * 512: one longer than 255 is left out) and the attribute values. */
#define SPAN_TEXT_MAX 768
#define SPAN_SERVICE_MAX 64 /* SERVICE_NAME_MAX of identity/procinfo.h */
#define SPAN_NAME_MAX 127
#define SPAN_STATE_MAX 255

/* One attribute: a static key, and its value as text in the span's
 * text[] or, when is_int, the integer value (http.response.status_code,
 * server.port, ...). */
struct span_attr {
	const char *key;
	uint16_t off; /* of the value in text[] */
	uint16_t len;
	bool is_int;
	int64_t ival;
};

struct span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_id[8]; /* all zero: a root span */
	uint64_t start_unix_ns, end_unix_ns;
	uint32_t pid;  /* the process that made the exchange */
	uint8_t kind;  /* enum span_kind */
	bool error;    /* Status.code ERROR; else UNSET */
	uint8_t nattrs;
	/* text[] starts with the service, the name and the trace state,
	 * each NUL-terminated, of these lengths. */
	uint8_t service_len, name_len;
	uint8_t state_len;
	uint16_t text_len; /* bytes of text[] in use */
	struct span_attr attrs[SPAN_ATTRS_MAX];
	char text[SPAN_TEXT_MAX];
};

/* resource service.name, the span's name, its W3C tracestate ("" when
 * none): NUL-terminated, inside s. */
static inline const char *span_service(const struct span *s)
{
	return s->text;
}

static inline const char *span_name(const struct span *s)
{
	return s->text + s->service_len + 1;
}

static inline const char *span_trace_state(const struct span *s)
{
	return s->text + s->service_len + 1 + s->name_len + 1;
}

/* Starts s's text: its service, name and trace state (state may be NULL),
 * each cut to its maximum, and no attributes. */
void span_set_text(struct span *s, const char *service, size_t service_len,
		   const char *name, size_t name_len, const char *state,
		   size_t state_len);

/* Adds a string attribute, its value v[0..n) copied into s's text.
 * False (nothing added) when n is 0, or s has no room left. */
bool span_add_string(struct span *s, const char *key, const char *v,
		     size_t n);

/* Adds an integer attribute; false when s has no room left. */
bool span_add_int(struct span *s, const char *key, int64_t v);

/* Copies src's used bytes into dst: what dst then reads is src. */
void span_copy(struct span *dst, const struct span *src);

#endif
