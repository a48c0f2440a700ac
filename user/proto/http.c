/* HTTP exchanges into the HTTP and RPC families.
 *
 * Label sets follow the OpenTelemetry semantic conventions for HTTP
 * (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/) and
 * for RPC (https://opentelemetry.io/docs/specs/semconv/rpc/rpc-metrics/);
 * what counts as an error, their span status rules
 * (https://opentelemetry.io/docs/specs/semconv/http/http-spans/,
 * https://opentelemetry.io/docs/specs/semconv/rpc/grpc/).
 */
#include <string.h>
#include <strings.h>

#include "identity/labels.h"
#include "metrics/families.h"
#include "metrics/route.h"
#include "proto/grpc.h"
#include "proto/http.h"
#include "util/fmt.h"

static const char *const method_names[HTTP_METHOD_COUNT] = {
	[HTTP_METHOD_OTHER] = "_OTHER",	   [HTTP_METHOD_GET] = "GET",
	[HTTP_METHOD_HEAD] = "HEAD",	   [HTTP_METHOD_POST] = "POST",
	[HTTP_METHOD_PUT] = "PUT",	   [HTTP_METHOD_DELETE] = "DELETE",
	[HTTP_METHOD_CONNECT] = "CONNECT", [HTTP_METHOD_OPTIONS] = "OPTIONS",
	[HTTP_METHOD_TRACE] = "TRACE",	   [HTTP_METHOD_PATCH] = "PATCH",
};

/* Label text for the observation being made: the registry copies it. */
static char status_text[12], port_text[8], peer_text[48];
static char route_text[ROUTE_MAX + 1];
static char captured[LABELS_MAX_HEADERS][LABELS_VALUE_MAX + 1];

const char *http_method_name(enum http_method m)
{
	if ((int)m < 0 || m >= HTTP_METHOD_COUNT)
		return method_names[HTTP_METHOD_OTHER];
	return method_names[m];
}

/* Whether tok[0..n) is the method m's name. */
static bool method_is(const char *tok, size_t n, enum http_method m)
{
	return memcmp(tok, method_names[m], n) == 0;
}

/* By length first: one comparison or two, not one per method. */
enum http_method http_method_parse(const char *tok, size_t n)
{
	static const enum http_method by_len[8][2] = {
		[3] = { HTTP_METHOD_GET, HTTP_METHOD_PUT },
		[4] = { HTTP_METHOD_POST, HTTP_METHOD_HEAD },
		[5] = { HTTP_METHOD_PATCH, HTTP_METHOD_TRACE },
		[6] = { HTTP_METHOD_DELETE, HTTP_METHOD_OTHER },
		[7] = { HTTP_METHOD_OPTIONS, HTTP_METHOD_CONNECT },
	};

	if (n >= 8)
		return HTTP_METHOD_OTHER;
	for (int i = 0; i < 2; i++) {
		enum http_method m = by_len[n][i];

		if (m != HTTP_METHOD_OTHER && method_is(tok, n, m))
			return m;
	}
	return HTTP_METHOD_OTHER;
}

/* A line the capture cut short is not a value: a truncated tenant id
 * would be a wrong label. */
int http_find_field(const char *fields, size_t len, const char *name,
		    const char **value, size_t *value_len)
{
	size_t name_len = strlen(name), pos = 0;

	if (!fields || !name_len)
		return -1;
	while (pos < len) {
		const char *line = fields + pos, *nl;
		size_t line_len, v, v_end;

		nl = memchr(line, '\n', len - pos);
		if (!nl)
			return -1;
		line_len = (size_t)(nl - line);
		pos += line_len + 1;
		if (line_len && line[line_len - 1] == '\r')
			line_len--;
		if (line_len == 0)
			return -1; /* end of the head */
		if (line_len <= name_len || line[name_len] != ':' ||
		    strncasecmp(line, name, name_len) != 0)
			continue;
		/* The value without the optional whitespace around it
		 * (RFC 9112 section 5). */
		v = name_len + 1;
		v_end = line_len;
		while (v < v_end && (line[v] == ' ' || line[v] == '\t'))
			v++;
		while (v_end > v &&
		       (line[v_end - 1] == ' ' || line[v_end - 1] == '\t'))
			v_end--;
		*value = line + v;
		*value_len = v_end - v;
		return 0;
	}
	return -1;
}

/* True when x's target holds its whole path: the capture did not cut it,
 * or cut it only after its query or fragment had begun. A path cut short
 * would make up a route ("/users/prof") for every length. */
static bool path_complete(const struct http_exchange *x)
{
	return x->target &&
	       (x->target_complete || memchr(x->target, '?', x->target_len) ||
		memchr(x->target, '#', x->target_len));
}

/* The route of a server's request. A request whose head is not in the
 * capture (a pipelined one beyond it), whose path the capture cut short,
 * or whose target is not a path is still counted, as ROUTE_UNKNOWN. */
static const char *route(const struct http_exchange *x)
{
	if (!path_complete(x) ||
	    !route_template(x->target, x->target_len, route_text,
			    sizeof(route_text)))
		return ROUTE_UNKNOWN;
	return route_text;
}

/* The rpc_method of a call: "pkg.Service/Method" from its path, or
 * METHOD_OTHER when the path names none. */
static const char *rpc_method(const struct http_exchange *x)
{
	if (!path_complete(x) || !grpc_method(x->target, x->target_len,
					      route_text, sizeof(route_text)))
		return METHOD_OTHER;
	return route_text;
}

/* The client side's server_address label. */
static const char *peer(const struct http_exchange *x)
{
	if (fmt_address(x->family, x->daddr, peer_text, sizeof(peer_text)))
		return ROUTE_UNKNOWN;
	return peer_text;
}

static const char *port(uint16_t p)
{
	fmt_uint(p, port_text, sizeof(port_text));
	return port_text;
}

static int exchange_field(const void *ctx, const char *name, const char **value,
			  size_t *len)
{
	const struct http_exchange *x = ctx;

	return http_find_field(x->fields, x->fields_len, name, value, len);
}

/* The status code's label: three digits, written as such (every
 * exchange has one). */
static const char *status(int code)
{
	if (code < 100 || code > 999) {
		fmt_uint((unsigned)code, status_text, sizeof(status_text));
		return status_text;
	}
	status_text[0] = (char)('0' + code / 100);
	status_text[1] = (char)('0' + code / 10 % 10);
	status_text[2] = (char)('0' + code % 10);
	status_text[3] = '\0';
	return status_text;
}

static void http_labels(const struct http_exchange *x, struct proto_obs *o)
{
	const char *code = status(x->status);

	if (x->role == SONDE_ROLE_CLIENT) {
		o->family = &family_http_client;
		o->nfixed = HTTP_CLIENT_NLABELS;
		o->values[HTTP_CLIENT_METHOD] = http_method_name(x->method);
		o->values[HTTP_CLIENT_STATUS] = code;
		o->values[HTTP_CLIENT_ADDRESS] = peer(x);
		o->values[HTTP_CLIENT_PORT] = port(x->dport);
		/* Both sides' failures fail a client's request. */
		o->error = x->status >= 400;
		return;
	}
	o->family = &family_http_server;
	o->nfixed = HTTP_SERVER_NLABELS;
	o->values[HTTP_SERVER_METHOD] = http_method_name(x->method);
	o->values[HTTP_SERVER_STATUS] = code;
	o->values[HTTP_SERVER_ROUTE] = route(x);
	o->values[HTTP_SERVER_PORT] = port(x->sport);
	if (x->headers) {
		o->nextra = labels_headers();
		memcpy(o->extra, x->headers, o->nextra * sizeof(*o->extra));
	} else {
		o->nextra = labels_fill_headers(exchange_field, x, o->extra,
						captured);
	}
	/* A 4xx is the client's mistake, not the server's failure. */
	o->error = x->status >= 500;
}

/* Codes that fail a call on the server side: the server's own faults,
 * not the caller's (a NOT_FOUND, an INVALID_ARGUMENT). */
static bool grpc_server_error(int code)
{
	switch (code) {
	case 2:	 /* UNKNOWN */
	case 4:	 /* DEADLINE_EXCEEDED */
	case 12: /* UNIMPLEMENTED */
	case 13: /* INTERNAL */
	case 14: /* UNAVAILABLE */
	case 15: /* DATA_LOSS */
		return true;
	}
	return false;
}

static void rpc_labels(const struct http_exchange *x, struct proto_obs *o)
{
	o->values[RPC_SYSTEM] = "grpc";
	o->values[RPC_METHOD] = rpc_method(x);
	o->values[RPC_STATUS] = grpc_status_name(x->grpc_status);
	if (x->role == SONDE_ROLE_CLIENT) {
		o->family = &family_rpc_client;
		o->nfixed = RPC_CLIENT_NLABELS;
		o->values[RPC_CLIENT_ADDRESS] = peer(x);
		o->values[RPC_CLIENT_PORT] = port(x->dport);
		o->error = x->grpc_status != GRPC_OK;
		return;
	}
	o->family = &family_rpc_server;
	o->nfixed = RPC_SERVER_NLABELS;
	o->values[RPC_SERVER_PORT] = port(x->sport);
	o->error = grpc_server_error(x->grpc_status);
}

/* url.path: the target's path, without query or fragment; NULL when
 * it has none, or the capture cut it short. An absolute-form target
 * ("http://host/p") has its path after the authority. */
static const char *url_path(const struct http_exchange *x, size_t *len)
{
	const char *t = x->target, *end;
	size_t n = x->target_len;

	if (!t || !n)
		return NULL;
	if (t[0] != '/') {
		const char *scheme = memmem(t, n, "://", 3);
		const char *slash;

		if (!scheme)
			return NULL;
		slash = memchr(scheme + 3, '/', n - (size_t)(scheme + 3 - t));
		if (!slash)
			return NULL;
		n -= (size_t)(slash - t);
		t = slash;
	}
	end = memchr(t, '?', n);
	if (!end)
		end = memchr(t, '#', n);
	if (!end && !x->target_complete)
		return NULL;
	*len = end ? (size_t)(end - t) : n;
	return t;
}

/* What x's span needs beyond its labels. */
static void span_of(const struct http_exchange *x, struct trace_exchange *s)
{
	s->start_ns = x->start_ns;
	s->end_ns = x->end_ns;
	s->tid = x->tid;
	s->fd = x->fd;
	s->sport = x->sport;
	s->dport = x->dport;
	s->path = url_path(x, &s->path_len);
	if (http_find_field(x->fields, x->fields_len, "traceparent",
			    &s->traceparent, &s->traceparent_len))
		s->traceparent = NULL;
	if (!s->traceparent ||
	    http_find_field(x->fields, x->fields_len, "tracestate",
			    &s->tracestate, &s->tracestate_len))
		s->tracestate = NULL;
}

unsigned http_observe(const struct http_exchange *x, struct proto_obs *obs)
{
	if (obs->span.want)
		span_of(x, &obs->span);
	obs->op = PROTO_OBSERVE;
	obs->value = x->end_ns > x->start_ns ? x->end_ns - x->start_ns : 0;
	obs->nextra = 0;
	if (x->grpc_status >= 0)
		rpc_labels(x, obs);
	else
		http_labels(x, obs);
	return 1;
}
