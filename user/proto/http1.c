/* HTTP/1.x message heads: the request line, the status line, and just
 * enough of the header section to walk past pipelined requests.
 *
 * RFC 9112, HTTP/1.1: https://www.rfc-editor.org/rfc/rfc9112
 * Tokens and status code classes come from RFC 9110:
 * https://www.rfc-editor.org/rfc/rfc9110
 *
 * Every byte sequence is valid input: a capture can end anywhere, and a
 * process that is not speaking HTTP at all can be traced by mistake.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "identity/labels.h"
#include "proto/http1.h"

/* A body this large cannot sit in a 256-byte capture; a Content-Length
 * above it is treated as hostile rather than skipped. */
#define HTTP1_MAX_CONTENT_LENGTH (UINT64_C(1) << 30)

/* "HTTP/1.1 200" */
#define HTTP1_STATUS_LINE_MIN 12

/* tchar, RFC 9110 section 5.6.2: letters, digits and "!#$%&'*+-.^_`|~".
 *   "GET", "get", "M-SEARCH" are made of tchars; "GE T", "\x16\x03" are not.
 * A table: every request line's method and every field name is looked up
 * byte by byte. */
static const bool http1_tchar[256] = {
	['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true,
	['!'] = true,	      ['#'] = true,	    ['$'] = true,
	['%'] = true,	      ['&'] = true,	    ['\''] = true,
	['*'] = true,	      ['+'] = true,	    ['-'] = true,
	['.'] = true,	      ['^'] = true,	    ['_'] = true,
	['`'] = true,	      ['|'] = true,	    ['~'] = true,
};

/* Length of the token at the start of p[0..len): 3 for "GET /". */
static size_t http1_token_len(const char *p, size_t len)
{
	size_t n = 0;

	while (n < len && http1_tchar[(unsigned char)p[n]])
		n++;
	return n;
}

/* The request-target ends at the SP before the version, or at a line end
 * when an HTTP/0.9-style line has none: "GET /a HTTP/1.1", "GET /a\r\n". */
static bool http1_ends_target(char c)
{
	return c == ' ' || c == '\r' || c == '\n';
}

/* Length of the line terminator at p[0..len): 2 for "\r\n", 1 for a bare
 * "\n" (RFC 9112 section 2.2 lets recipients accept it), else 0. */
static size_t http1_line_end_len(const char *p, size_t len)
{
	if (len >= 1 && p[0] == '\n')
		return 1;
	if (len >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	return 0;
}

/* Offset just past the empty line that ends the head starting at
 * buf[start], or 0 when the capture ends first:
 *   "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET ..." -> 27
 *   "GET / HTTP/1.1\n\n"                       -> 16
 */
static size_t http1_head_end(const char *buf, size_t len, size_t start)
{
	for (size_t i = start; i < len; i++) {
		size_t eol;

		if (buf[i] != '\n')
			continue;
		eol = http1_line_end_len(buf + i + 1, len - i - 1);
		if (eol)
			return i + 1 + eol;
	}
	return 0;
}

/* Offset of the first byte after the line that starts at buf[pos]; the
 * caller knows that line is terminated (it lies before a head end). */
static size_t http1_next_line(const char *buf, size_t end, size_t pos)
{
	while (pos < end && buf[pos] != '\n')
		pos++;
	return pos < end ? pos + 1 : end;
}

/* ASCII-only case-insensitive match of a field name against a lower-case
 * name: "Content-Length" and "content-LENGTH" are "content-length". */
static bool http1_field_name_is(const char *name, size_t n, const char *lower)
{
	return strlen(lower) == n && strncasecmp(name, lower, n) == 0;
}

/* Content-Length value, RFC 9110 section 8.6: "1*DIGIT" and nothing else.
 *   "42" -> 42;  "", "-1", "0x10", "5, 5", "1073741825" -> -1
 */
static int http1_parse_content_length(const char *p, size_t n, size_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
		if (v > HTTP1_MAX_CONTENT_LENGTH)
			return -1;
	}
	*out = (size_t)v;
	return 0;
}

/* The value of the field line "name: value" (name_len bytes of name, then
 * the colon) as line[*v..*v_end), without the optional whitespace around
 * it (RFC 9112 section 5). */
static void field_value(const char *line, size_t line_len, size_t name_len,
			size_t *v, size_t *v_end)
{
	size_t b = name_len + 1, e = line_len;

	while (b < e && (line[b] == ' ' || line[b] == '\t'))
		b++;
	while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	*v = b;
	*v_end = e;
}

/* Length of the body that follows the request head buf[start..end) (end
 * from http1_head_end), so that the next pipelined request can be found.
 * Returns -1 when it cannot be known from the head alone: any
 * Transfer-Encoding (chunked or not, it overrides Content-Length),
 * conflicting or malformed Content-Length, or a field line that is not
 * "name: value". No Content-Length means no body (RFC 9112 section 6.3). */
static int http1_request_body_len(const char *buf, size_t start, size_t end,
				  size_t *body_len)
{
	bool have_length = false;
	size_t length = 0;
	size_t pos = http1_next_line(buf, end, start);

	for (;;) {
		size_t next = http1_next_line(buf, end, pos);
		size_t line_len = next - pos;
		const char *line = buf + pos;
		size_t name_len, v, v_end;

		/* Drop the line terminator, "\r\n" or "\n". */
		if (line_len && line[line_len - 1] == '\n')
			line_len--;
		if (line_len && line[line_len - 1] == '\r')
			line_len--;
		if (line_len == 0)
			break;

		name_len = http1_token_len(line, line_len);
		if (name_len == 0 || name_len == line_len ||
		    line[name_len] != ':')
			return -1;

		field_value(line, line_len, name_len, &v, &v_end);

		if (http1_field_name_is(line, name_len, "transfer-encoding"))
			return -1;
		if (http1_field_name_is(line, name_len, "content-length")) {
			size_t this_length;

			if (http1_parse_content_length(line + v, v_end - v,
						       &this_length))
				return -1;
			if (have_length && this_length != length)
				return -1;
			have_length = true;
			length = this_length;
		}
		pos = next;
	}
	*body_len = length;
	return 0;
}

/* The request line at buf[0..len), up to and including its target:
 *   "GET /users/42 HTTP/1.1\r\n" -> GET, "/users/42", complete
 *   "POST /upl"                  -> POST, "/upl", cut short
 *   "PRI * HTTP/2.0\r\n"         -> OTHER, "*", complete
 *   "GET  /", "\r\nGET /", "GET " -> -1
 */
static int http1_parse_request_line(const char *buf, size_t len,
				    struct http1_request *out)
{
	size_t method_len = http1_token_len(buf, len);
	const char *target;
	size_t room, n = 0;

	if (method_len == 0 || method_len == len || buf[method_len] != ' ')
		return -1;

	target = buf + method_len + 1;
	room = len - method_len - 1;
	while (n < room && !http1_ends_target(target[n]))
		n++;
	if (n == 0)
		return -1;

	out->method = http_method_parse(buf, method_len);
	out->target = target;
	out->target_len = n;
	out->target_complete = n < room;
	return 0;
}

/* Empty lines a client may leave after a body, such as the "\r\n" some
 * send after a POST body; a server ignores them before the next request
 * line (RFC 9112 section 2.2). */
static size_t http1_skip_empty_lines(const char *buf, size_t len, size_t pos)
{
	size_t eol;

	while ((eol = http1_line_end_len(buf + pos, len - pos)) != 0)
		pos += eol;
	return pos;
}

/* Moves *pos from the start of one request to the start of the next one:
 * over its head and its Content-Length body. Returns -1 when the request
 * at *pos is not a request, is cut short, or has a body of unknown length;
 * *pos is then left as it was. */
static int http1_skip_request(const char *buf, size_t len, size_t *pos)
{
	struct http1_request line;
	size_t end, body_len;

	if (http1_parse_request_line(buf + *pos, len - *pos, &line))
		return -1;
	end = http1_head_end(buf, len, *pos);
	if (end == 0)
		return -1;
	if (http1_request_body_len(buf, *pos, end, &body_len))
		return -1;
	if (body_len > len - end)
		return -1;
	*pos = http1_skip_empty_lines(buf, len, end + body_len);
	return 0;
}

/* Walks over up to idx whole requests from the start of buf[0..len),
 * stopping early at one cut short or with a body of unknown length.
 * Returns how many it walked over; *pos is where it stopped. */
static unsigned http1_walk_requests(const char *buf, size_t len, unsigned idx,
				    size_t *pos)
{
	unsigned int n = 0;

	*pos = http1_skip_empty_lines(buf, len, 0);
	while (n < idx && !http1_skip_request(buf, len, pos))
		n++;
	return n;
}

/* Offset of the idx-th request in buf[0..len), or -1. */
static long http1_request_start(const char *buf, size_t len, unsigned idx)
{
	size_t pos;

	if (http1_walk_requests(buf, len, idx, &pos) < idx)
		return -1;
	return (long)pos;
}

int http1_parse_request(const char *buf, size_t len, unsigned int idx,
			struct http1_request *out)
{
	struct http1_request req;
	long pos;

	if (!buf || !out)
		return -1;
	pos = http1_request_start(buf, len, idx);
	if (pos < 0 ||
	    http1_parse_request_line(buf + pos, len - (size_t)pos, &req))
		return -1;
	*out = req;
	return 0;
}

/* Wherever the walk stops (after idx requests, or at one it cannot step
 * over), nothing may follow. */
bool http1_requests_end_before(const char *buf, size_t len, unsigned idx)
{
	size_t pos;

	if (!buf)
		return false;
	http1_walk_requests(buf, len, idx, &pos);
	return pos == len;
}

/* The field lines of the idx-th request head in buf[0..len): what
 * follows its request line, to the capture's end. -1 when the capture
 * holds no idx-th request. */
static int http1_head_fields(const char *buf, size_t len, unsigned idx,
			     const char **fields, size_t *fields_len)
{
	const char *nl;
	long start;

	start = http1_request_start(buf, len, idx);
	if (start < 0)
		return -1;
	nl = memchr(buf + start, '\n', len - (size_t)start);
	*fields = nl ? nl + 1 : buf + len;
	*fields_len = (size_t)(buf + len - *fields);
	return 0;
}

/* Only the named field is looked at: other header values are skipped
 * without being copied or kept. */
int http1_find_header(const char *buf, size_t len, unsigned idx,
		      const char *name, const char **value, size_t *value_len)
{
	const char *fields;
	size_t fields_len;

	if (!buf || !*name ||
	    http1_head_fields(buf, len, idx, &fields, &fields_len))
		return -1;
	return http_find_field(fields, fields_len, name, value, value_len);
}

/* The code of the status line at buf[0..len), which may end right after
 * the code when the capture does:
 *   "HTTP/1.1 200 OK\r\n" -> 200;  "HTTP/1.0 404" -> 404
 *   "HTTP/1.1 204\r\n"    -> 204 (no reason phrase, no SP: seen in the wild)
 *   "HTTP/2 200", "HTTP/1.1 20", "HTTP/1.1 2000", "HTTP/1.1 600" -> -1
 */
static int http1_status_line_code(const char *buf, size_t len)
{
	const char *code;

	if (len < HTTP1_STATUS_LINE_MIN)
		return -1;
	if (memcmp(buf, "HTTP/1.", 7) != 0 ||
	    (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
		return -1;
	code = buf + 9;
	if (code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' ||
	    code[2] < '0' || code[2] > '9')
		return -1;
	if (len > HTTP1_STATUS_LINE_MIN && code[3] != ' ' && code[3] != '\r' &&
	    code[3] != '\n')
		return -1;
	return (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
}

/* 1xx heads come before the final response (RFC 9110 section 15.2):
 * "100 Continue", "102 Processing", "103 Early Hints", and any 1xx not yet
 * assigned. 101 Switching Protocols is the last HTTP/1.1 head on the
 * connection, so it is final. */
static bool http1_status_is_interim(int code)
{
	return code >= 100 && code <= 199 && code != 101;
}

int http1_parse_status(const char *buf, size_t len)
{
	size_t pos = 0;

	if (!buf)
		return -1;
	for (;;) {
		int code = http1_status_line_code(buf + pos, len - pos);

		if (code < 0 || !http1_status_is_interim(code))
			return code;
		pos = http1_head_end(buf, len, pos);
		if (pos == 0)
			return -1;
	}
}

/* ---- The protocol: exchange records ------------------------------------ */

/* The request bytes of an exchange record size bytes long: no more than
 * it says it holds, nor than it holds. */
static size_t exchange_req_len(const struct sonde_http_event *ev, size_t size)
{
	size_t room = size - SONDE_EXCHANGE_BYTES(0);
	size_t len = ev->req_len < SONDE_REQ_CAP ? ev->req_len : SONDE_REQ_CAP;

	return len < room ? len : room;
}

/* A server's later write that starts like a status line answers the
 * next pipelined request, or is a body that happens to look like one (an
 * HTTP message served as content). The capture holds every byte read
 * before the first response unless it filled up; when it did not, and
 * its requests are whole and already answered, there is no request for
 * this one: counting it would add a request nobody made. */
static bool no_request(const struct sonde_http_event *ev, size_t req_len)
{
	return ev->role != SONDE_ROLE_CLIENT && ev->pipeline_idx > 0 &&
	       ev->req_len < SONDE_REQ_CAP && req_len == ev->req_len &&
	       http1_requests_end_before(ev->req, req_len, ev->pipeline_idx);
}

/* A key being written (struct proto_record's). */
struct key {
	uint8_t *bytes;
	size_t len;
};

/* Appends n bytes at s to k; false when they do not fit. */
static bool key_put(struct key *k, const void *s, size_t n)
{
	if (n > PROTO_KEY_MAX - k->len)
		return false;
	memcpy(k->bytes + k->len, s, n);
	k->len += n;
	return true;
}

/* A request field, looked up in the lines fields[0] to fields[1]. */
static int key_field(const void *ctx, const char *name, const char **value,
		     size_t *len)
{
	const char *const *fields = ctx;

	return http_find_field(fields[0], (size_t)(fields[1] - fields[0]), name,
			       value, len);
}

/* A server's labels but its process's come from its status and port
 * (already in k) and from the first request's line, its method and
 * target, when the line ends in the capture, and the captured headers
 * in the lines after it. false for a request past the first (pipelined)
 * or a line cut short. */
static bool server_key(const struct sonde_http_event *ev, size_t req_len,
		       struct key *k, struct proto_record *r)
{
	/* The captured headers' values, kept for http1_observe. */
	static char values[LABELS_MAX_HEADERS][LABELS_VALUE_MAX + 1];
	static const char *headers[LABELS_MAX_HEADERS];
	const char *fields[2], *nl;
	unsigned n;

	if (ev->pipeline_idx || !req_len || ev->req[0] == '\r' ||
	    ev->req[0] == '\n')
		return false;
	nl = memchr(ev->req, '\n', req_len);
	if (!nl || !key_put(k, ev->req, (size_t)(nl - ev->req) + 1))
		return false;
	fields[0] = nl + 1;
	fields[1] = ev->req + req_len;
	n = labels_fill_headers(key_field, fields, headers, values);
	r->state = headers;
	/* Label values hold no NUL: one ends each. */
	for (unsigned i = 0; i < n; i++)
		if (!key_put(k, headers[i], strlen(headers[i]) + 1))
			return false;
	return true;
}

/* A client's labels but its process's come from its status (in k), the
 * peer's address and port, and its request's method. For the first
 * request, the method depends on the bytes up to the one after the first
 * space alone: the method token must end at that space and be followed
 * by a target ("GET /", not "GET " nor "GE\tT /"). Past the first
 * (pipelined), on every byte captured. */
static bool client_key(const struct sonde_http_event *ev, size_t req_len,
		       struct key *k)
{
	const char *sp = memchr(ev->req, ' ', req_len);
	size_t n = req_len;

	if (!ev->pipeline_idx && req_len && ev->req[0] != '\r' &&
	    ev->req[0] != '\n' && sp && sp + 1 < ev->req + req_len)
		n = (size_t)(sp - ev->req) + 2;
	return key_put(k, &ev->family, sizeof(ev->family)) &&
	       key_put(k, &ev->dport, sizeof(ev->dport)) &&
	       key_put(k, ev->daddr, sizeof(ev->daddr)) &&
	       key_put(k, &ev->pipeline_idx, 1) && key_put(k, ev->req, n);
}

/* r's key (struct proto_record): what decides the labels http1_observe
 * gives an exchange with status code, besides its process. */
static void exchange_key(const struct sonde_http_event *ev, size_t req_len,
			 struct proto_record *r)
{
	struct key k = { r->key, 0 };
	uint16_t code = (uint16_t)r->code;
	bool client = ev->role == SONDE_ROLE_CLIENT;

	if (!key_put(&k, &ev->role, 1) || !key_put(&k, &code, sizeof(code)) ||
	    !(client ? client_key(ev, req_len, &k) :
		       key_put(&k, &ev->sport, sizeof(ev->sport)) &&
			       server_key(ev, req_len, &k, r)))
		return;
	r->key_len = (uint16_t)k.len;
}

static enum proto_next http1_read(const void *rec, size_t size,
				  struct proto_record *r)
{
	const struct sonde_http_event *ev = rec;
	size_t resp_len =
		ev->resp_len < SONDE_RESP_CAP ? ev->resp_len : SONDE_RESP_CAP;
	size_t req_len = exchange_req_len(ev, size);

	r->tgid = ev->hdr.tgid;
	r->comm = ev->comm;
	r->filter = PROTO_FILTER_CONN;
	r->port = ev->sport;
	r->state = NULL;
	r->code = http1_parse_status(ev->resp, resp_len);
	if (r->code < 0) {
		r->error = PARSE_ERROR_RESPONSE;
		return PROTO_NEXT_TRACED_ERROR;
	}
	if (no_request(ev, req_len)) {
		r->error = PARSE_ERROR_NO_REQUEST;
		return PROTO_NEXT_TRACED_ERROR;
	}
	r->value = ev->end_ns > ev->start_ns ? ev->end_ns - ev->start_ns : 0;
	exchange_key(ev, req_len, r);
	return PROTO_NEXT_OBSERVE;
}

/* A request whose head is not in the capture (a pipelined one beyond
 * SONDE_REQ_CAP) is still counted, as _OTHER on no known target. */
static unsigned http1_observe(const void *rec, size_t size,
			      const struct proto_record *r,
			      struct proto_obs *obs)
{
	const struct sonde_http_event *ev = rec;
	size_t req_len = exchange_req_len(ev, size);
	struct http_exchange x = {
		.role = ev->role,
		.method = HTTP_METHOD_OTHER,
		.status = r->code,
		.grpc_status = -1,
		.start_ns = ev->start_ns,
		.end_ns = ev->end_ns,
		.tid = ev->tid,
		.fd = ev->fd,
		.sport = ev->sport,
		.dport = ev->dport,
		.family = ev->family,
		.daddr = ev->daddr,
	};
	struct http1_request req;

	if (!http1_parse_request(ev->req, req_len, ev->pipeline_idx, &req)) {
		x.method = req.method;
		x.target = req.target;
		x.target_len = req.target_len;
		x.target_complete = req.target_complete;
	}
	/* Only a server's series carry captured headers, which
	 * exchange_key may have found already. */
	x.headers = r->state;
	if ((ev->role != SONDE_ROLE_CLIENT && !x.headers && labels_headers()) ||
	    obs->span.want)
		http1_head_fields(ev->req, req_len, ev->pipeline_idx, &x.fields,
				  &x.fields_len);
	return http_observe(&x, obs);
}

/* The protocol of HTTP/1 exchange records, in dispatch.c's table. */
const struct proto proto_http1 = {
	.name = "http1",
	.kind = SONDE_EV_HTTP_EXCHANGE,
	.min_size = SONDE_EXCHANGE_BYTES(0),
	.read = http1_read,
	.observe = http1_observe,
};
