#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto/grpc.h"
#include "proto/http2.h"
#include "util/holdq.h"
#include "util/strmap.h"

/* Ends of round a held record waits through for the ones before it: a
 * record is committed before the next is made, so the one it waits for
 * is in the same round, or in the next when its CPU's ring had been read
 * just before it was committed. */
#define HELD_ROUNDS 2

/* The largest dynamic table a peer may have announced in its SETTINGS,
 * which sonde does not read: the decoder accepts size updates up to it.
 * The table starts at the protocol's 4096 either way. */
#define DECODER_TABLE_MAX 65536
#define NBUCKETS 256

/* One direction of a connection (0: what the client sends). */
struct direction {
	nghttp2_hd_inflater *decoder;
	uint8_t *block; /* the header block being put together */
	size_t block_len, block_room;
	uint32_t stream;       /* the request or response it is */
	uint32_t frame_stream; /* the stream its frames are sent on */
	uint64_t block_ns;     /* when its first piece went */
	bool in_block;	       /* a HEADERS came; pieces until END_HEADERS */
	bool end_stream;       /* its HEADERS ends the stream */
	bool promise; /* a PUSH_PROMISE: the request of a pushed stream */
	/* The frame being received: bytes before the block (pad length,
	 * priority) and padding after it. */
	uint8_t frame_flags;
	uint32_t front, pad;
};

/* A stream not yet handed back. Usually its request, waiting for the
 * response. A client's reader thread can take the response in before
 * the writer thread's syscall has returned from sending the request:
 * the response then waits for its request. A gRPC call waits on after
 * its response head, for the trailers that carry its status. */
struct pending {
	uint32_t stream;
	bool requested; /* its request came: method, ns, text hold it */
	bool grpc;	/* the request is a gRPC call */
	bool responded; /* its final response head came */
	bool ended;	/* the response ended, or the stream was reset */
	bool target_complete;
	uint8_t method;	     /* enum http_method */
	uint16_t target_len; /* text: the target, then the field lines */
	uint16_t fields_len;
	int status;	     /* responded: the response's code */
	int grpc_status;     /* ended: the call's gRPC status */
	uint64_t timeout_ns; /* the request's grpc-timeout (0: none) */
	uint64_t ns;	     /* the request's time */
	uint64_t resp_ns, end_ns;
	/* When a RST_STREAM ended the stream before its response head came
	 * (0: none). */
	uint64_t reset_ns;
	/* As far as they fit, as HTTP/1's capture of a request head. */
	char text[SONDE_REQ_CAP];
};

struct conn {
	uint32_t tgid, fd;
	uint64_t since, sk;
	uint32_t next_seq[2];
	bool lost;
	bool given_up; /* no room when it began: never decoded */
	struct direction dir[2];
	struct pending *pending; /* grown up to HTTP2_MAX_PENDING */
	unsigned npending, pending_room;
	/* Records read before one they follow, per direction, by seq
	 * (util/holdq.h). */
	struct holdq held[2];
	/* A newer connection took its fd: forgotten once the records it may
	 * still have in other CPUs' rings have come (HELD_ROUNDS rounds). */
	bool superseded;
	unsigned superseded_round;
	struct conn *next; /* hash chain */
};

static struct conn *buckets[NBUCKETS];
static size_t nconns;
/* Held records whose turn has come, to be read again (http2_ready), and
 * the one handed out last, freed at the next call. */
static struct held *ready_head, **ready_tail = &ready_head, *handed_out;
/* Rounds of reading the rings so far, connections holding records, and
 * connections superseded and not forgotten yet. */
static unsigned rounds;
static size_t nsuperseded;
static struct hold_budget budget = { .max_bytes = HTTP2_HELD_BYTES };
/* Connections given up at their first record for want of room: kept, as
 * small entries without decoders, so they are counted once. */
static size_t ngiven_up;

/* Every connection a process has had on one fd is in one bucket. */
static unsigned bucket_of(uint32_t tgid, uint32_t fd)
{
	return (unsigned)(strmap_hash_finish((uint64_t)tgid << 32 | fd) &
			  (NBUCKETS - 1));
}

static struct conn **find(uint32_t tgid, uint32_t fd, uint64_t since)
{
	struct conn **p = &buckets[bucket_of(tgid, fd)];

	while (*p &&
	       ((*p)->tgid != tgid || (*p)->fd != fd || (*p)->since != since))
		p = &(*p)->next;
	return p;
}

static void decoders_free(struct conn *c)
{
	for (int d = 0; d < 2; d++) {
		if (c->dir[d].decoder)
			nghttp2_hd_inflate_del(c->dir[d].decoder);
		c->dir[d].decoder = NULL;
	}
}

/* Forgets the records c holds back. */
static void held_free(struct conn *c)
{
	holdq_free(&c->held[0], &budget);
	holdq_free(&c->held[1], &budget);
}

static void conn_free(struct conn *c)
{
	if (c->superseded)
		nsuperseded--;
	held_free(c);
	decoders_free(c);
	for (int d = 0; d < 2; d++)
		free(c->dir[d].block);
	free(c->pending);
	if (c->given_up)
		ngiven_up--;
	else
		nconns--;
	free(c);
}

/* A new connection, or one given up at once when there is no room for
 * it (or none for that either: NULL). */
static struct conn *conn_new(const struct sonde_h2_event *ev)
{
	bool room = nconns < HTTP2_MAX_CONNS;
	struct conn *c;

	if (!room && ngiven_up >= HTTP2_MAX_CONNS)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->tgid = ev->hdr.tgid;
	c->fd = ev->fd;
	c->since = ev->since;
	c->sk = ev->sk;
	for (int d = 0; room && d < 2; d++)
		if (nghttp2_hd_inflate_new(&c->dir[d].decoder) ||
		    nghttp2_hd_inflate_change_table_size(c->dir[d].decoder,
							 DECODER_TABLE_MAX))
			room = false;
	if (!room) {
		decoders_free(c);
		c->given_up = c->lost = true;
		ngiven_up++;
		return c;
	}
	nconns++;
	return c;
}

static struct pending *pending_find(struct conn *c, uint32_t stream)
{
	for (unsigned i = 0; i < c->npending; i++)
		if (c->pending[i].stream == stream)
			return &c->pending[i];
	return NULL;
}

static void pending_remove(struct conn *c, struct pending *p)
{
	size_t i = (size_t)(p - c->pending);

	memmove(p, p + 1, (c->npending - i - 1) * sizeof(*p));
	c->npending--;
}

/* Appends len bytes at s to dst, which holds *used of its cap bytes, as
 * far as they fit: beyond cap the text is cut, as HTTP/1's capture is. */
static void put(char *dst, size_t cap, size_t *used, const void *s, size_t len)
{
	if (len > cap - *used)
		len = cap - *used;
	memcpy(dst + *used, s, len);
	*used += len;
}

/* What a header block says, as far as sonde uses it: copied as each
 * field is decoded, since the decoder reuses its buffers. */
struct block_fields {
	char method[32], path[SONDE_REQ_CAP], authority[SONDE_REQ_CAP];
	size_t method_len, path_len, authority_len;
	bool has_method, has_path, has_authority;
	int status;	     /* -1: none, 0: not a status code */
	int grpc_status;     /* -1: none */
	bool grpc;	     /* content-type names gRPC */
	uint64_t timeout_ns; /* grpc-timeout; 0: none */
	/* Regular fields as "name: value\r\n" lines, as far as they fit. */
	char fields[SONDE_REQ_CAP];
	size_t fields_len;
};

static bool name_is(const nghttp2_nv *nv, const char *name)
{
	size_t len = strlen(name);

	return nv->namelen == len && memcmp(nv->name, name, len) == 0;
}

/* A field value that a request head could carry: no CR, LF or NUL. */
static bool clean(const uint8_t *v, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
			return false;
	return true;
}

/* Copies a pseudo-header's value, cut to room; false when unusable. */
static bool take_value(const nghttp2_nv *nv, char *dst, size_t room,
		       size_t *len)
{
	if (!clean(nv->value, nv->valuelen))
		return false;
	*len = nv->valuelen < room ? nv->valuelen : room;
	memcpy(dst, nv->value, *len);
	return true;
}

static void fields_put(struct block_fields *f, const void *s, size_t len)
{
	put(f->fields, sizeof(f->fields), &f->fields_len, s, len);
}

/* The status code in a :status value: three digits, 100 to 599; 0 for
 * anything else. */
static int status_code(const nghttp2_nv *nv)
{
	const uint8_t *v = nv->value;

	if (nv->valuelen != 3 || v[0] < '1' || v[0] > '5' || v[1] < '0' ||
	    v[1] > '9' || v[2] < '0' || v[2] > '9')
		return 0;
	return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

static void field(struct block_fields *f, const nghttp2_nv *nv)
{
	if (name_is(nv, ":method"))
		f->has_method = take_value(nv, f->method, sizeof(f->method),
					   &f->method_len);
	else if (name_is(nv, ":path"))
		f->has_path =
			take_value(nv, f->path, sizeof(f->path), &f->path_len);
	else if (name_is(nv, ":authority"))
		f->has_authority =
			take_value(nv, f->authority, sizeof(f->authority),
				   &f->authority_len);
	else if (name_is(nv, ":status"))
		f->status = status_code(nv);
	else if (name_is(nv, "grpc-status"))
		f->grpc_status = grpc_status_parse(nv->value, nv->valuelen);
	else if (nv->namelen && nv->name[0] != ':' &&
		 clean(nv->name, nv->namelen) &&
		 clean(nv->value, nv->valuelen)) {
		if (name_is(nv, "content-type"))
			f->grpc = grpc_content_type(nv->value, nv->valuelen);
		else if (name_is(nv, "grpc-timeout"))
			f->timeout_ns =
				grpc_timeout_parse(nv->value, nv->valuelen);
		fields_put(f, nv->name, nv->namelen);
		fields_put(f, ": ", 2);
		fields_put(f, nv->value, nv->valuelen);
		fields_put(f, "\r\n", 2);
	}
}

/* Decodes d's finished header block into f. False when it does not
 * decode: the table is then out of step with the peer's. */
static bool decode(struct direction *d, struct block_fields *f)
{
	/* An empty block has no buffer yet: it still ends, with no field. */
	static const uint8_t empty[1];
	const uint8_t *in = d->block ? d->block : empty;
	size_t rest = d->block_len;

	f->status = -1;
	f->grpc_status = -1;
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t n = nghttp2_hd_inflate_hd2(d->decoder, &nv, &flags, in,
						   rest, 1);

		if (n < 0)
			return false;
		in += n;
		rest -= (size_t)n;
		if (flags & NGHTTP2_HD_INFLATE_EMIT)
			field(f, &nv);
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->decoder);
			return true;
		}
		if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && rest == 0)
			return false;
	}
}

/* Keeps in p what labels a request: its method, its target (CONNECT has
 * no :path: its target is the authority) and its field lines, with
 * :authority first as the "host" HTTP/1.1 would have sent. They share
 * SONDE_REQ_CAP bytes, as in HTTP/1's capture; a target cut short is
 * marked so, and is no route. */
static void request_text(struct pending *p, const struct block_fields *f)
{
	const char *target = "*";
	size_t target_len = 1, used = 0;

	if (f->has_path && f->path_len) {
		target = f->path;
		target_len = f->path_len;
	} else if (f->has_authority && f->authority_len) {
		target = f->authority;
		target_len = f->authority_len;
	}
	p->method = (uint8_t)http_method_parse(f->method, f->method_len);
	put(p->text, sizeof(p->text), &used, target, target_len);
	p->target_len = (uint16_t)used;
	p->target_complete = target_len < sizeof(p->text);
	if (f->has_authority) {
		put(p->text, sizeof(p->text), &used, "host: ", 6);
		put(p->text, sizeof(p->text), &used, f->authority,
		    f->authority_len);
		put(p->text, sizeof(p->text), &used, "\r\n", 2);
	}
	put(p->text, sizeof(p->text), &used, f->fields, f->fields_len);
	p->fields_len = (uint16_t)(used - p->target_len);
}

/* The exchange handed back last, out of the pending stream that is then
 * removed: valid until the next record. */
static char done_text[SONDE_REQ_CAP];
static uint8_t done_daddr[16];

/* The exchange that p, ended at end_ns, makes on ev's connection. */
static void fill_exchange(const struct sonde_h2_event *ev,
			  const struct pending *p, uint64_t end_ns,
			  struct http_exchange *out)
{
	memcpy(done_text, p->text, (size_t)p->target_len + p->fields_len);
	memcpy(done_daddr, ev->daddr, sizeof(done_daddr));
	*out = (struct http_exchange){
		.role = ev->role,
		.method = (enum http_method)p->method,
		.target = done_text,
		.target_len = p->target_len,
		.target_complete = p->target_complete,
		.fields = done_text + p->target_len,
		.fields_len = p->fields_len,
		/* 0 when the :status was no code, or a call was reset
		 * before its head came. */
		.status = p->status,
		.grpc_status = p->grpc ? p->grpc_status : -1,
		.start_ns = p->ns,
		.end_ns = end_ns,
		.fd = ev->fd,
		.sport = ev->sport,
		.dport = ev->dport,
		.family = ev->family,
		.daddr = done_daddr,
	};
}

/* A new pending stream at the end, for stream: when the table is full,
 * the oldest goes, and *unanswered says whether that was a response
 * whose request never came. NULL when out of memory. */
static struct pending *pending_add(struct conn *c, uint32_t stream,
				   bool *unanswered)
{
	struct pending *p;

	*unanswered = false;
	if (c->npending == c->pending_room &&
	    c->pending_room < HTTP2_MAX_PENDING) {
		unsigned n = c->pending_room ? 2 * c->pending_room : 8;

		p = realloc(c->pending, n * sizeof(*p));
		if (p) {
			c->pending = p;
			c->pending_room = n;
		}
	}
	if (c->npending == c->pending_room) {
		if (!c->npending)
			return NULL;
		*unanswered = !c->pending[0].requested;
		pending_remove(c, &c->pending[0]);
	}
	p = &c->pending[c->npending++];
	memset(p, 0, offsetof(struct pending, text));
	p->stream = stream;
	return p;
}

/* Hands p back as an exchange once it is whole: an HTTP exchange at its
 * response head, a gRPC call at its end, when its status is known. */
static enum http2_result finish(struct conn *c, struct pending *p,
				const struct sonde_h2_event *ev,
				struct http_exchange *out)
{
	if (!p->requested || !(p->grpc ? p->ended : p->responded))
		return HTTP2_NOTHING;
	fill_exchange(ev, p, p->grpc ? p->end_ns : p->resp_ns, out);
	pending_remove(c, p);
	return HTTP2_EXCHANGE;
}

/* The stream's response ended at ns with a gRPC status (meaningful only
 * if its request turns out to be a gRPC call). */
static void end(struct pending *p, int grpc_status, uint64_t ns)
{
	p->ended = true;
	p->grpc_status = grpc_status;
	p->end_ns = ns;
}

/* Acts on d's finished header block: a request (or a server's promise)
 * opens its stream, a final response head answers it, and trailers (or
 * a head that ends the stream) end it. Interim responses change
 * nothing. */
static enum http2_result block_done(struct conn *c, struct direction *d,
				    const struct sonde_h2_event *ev,
				    struct http_exchange *out)
{
	struct block_fields f;
	struct pending *p;
	enum http2_result r;
	bool dropped = false;

	d->in_block = false;
	memset(&f, 0, sizeof(f));
	if (!decode(d, &f))
		return HTTP2_LOST;
	p = pending_find(c, d->stream);
	if (!ev->to_client || d->promise) {
		if (!f.has_method || (p && p->requested))
			return HTTP2_NOTHING;
		if (!p)
			p = pending_add(c, d->stream, &dropped);
		if (!p)
			return HTTP2_LOST;
		p->requested = true;
		p->grpc = f.grpc && !d->promise;
		p->timeout_ns = f.timeout_ns;
		p->ns = d->block_ns;
		request_text(p, &f);
	} else if (f.status < 0) {
		/* Trailers: the end of a stream whose head came. */
		if (!p || !p->responded || p->ended)
			return HTTP2_NOTHING;
		end(p, f.grpc_status >= 0 ? f.grpc_status : GRPC_UNKNOWN,
		    d->block_ns);
	} else if (f.status >= 100 && f.status < 200) {
		return HTTP2_NOTHING;
	} else {
		if (p && p->reset_ns && d->block_ns > p->reset_ns) {
			pending_remove(c, p);
			return HTTP2_NOTHING;
		}
		if (p && p->responded)
			return p->requested ? HTTP2_NOTHING : HTTP2_NO_REQUEST;
		if (!p)
			p = pending_add(c, d->stream, &dropped);
		if (!p)
			return HTTP2_LOST;
		p->responded = true;
		p->status = f.status;
		p->resp_ns = d->block_ns;
		/* A head alone ("trailers-only"): the status is in it, or
		 * follows from the HTTP one. */
		if (d->end_stream)
			end(p,
			    f.grpc_status >= 0 ?
				    f.grpc_status :
				    grpc_status_from_http(f.status),
			    d->block_ns);
	}
	r = finish(c, p, ev, out);
	return r == HTTP2_NOTHING && dropped ? HTTP2_NO_REQUEST : r;
}

/* Takes in the piece [offset, offset + len) of a HEADERS or CONTINUATION
 * frame's payload. */
static enum http2_result block_piece(struct conn *c,
				     const struct sonde_h2_event *ev,
				     size_t len, struct http_exchange *out)
{
	struct direction *d = &c->dir[ev->to_client ? 1 : 0];
	size_t lo, hi, end = (size_t)ev->offset + len;

	if (ev->offset == 0) {
		bool padded = ev->type != SONDE_H2_CONTINUATION &&
			      (ev->flags & SONDE_H2_FLAG_PADDED);

		d->front = padded ? 1 : 0;
		if (ev->type == SONDE_H2_CONTINUATION) {
			if (!d->in_block || ev->stream_id != d->frame_stream)
				return HTTP2_LOST;
		} else {
			if (d->in_block)
				return HTTP2_LOST;
			d->in_block = true;
			d->block_len = 0;
			d->frame_stream = ev->stream_id;
			d->stream = ev->stream_id;
			d->block_ns = ev->hdr.ts_ns;
			d->promise = ev->type == SONDE_H2_PUSH_PROMISE;
			d->end_stream = ev->type == SONDE_H2_HEADERS &&
					(ev->flags & SONDE_H2_FLAG_END_STREAM);
			if (ev->type == SONDE_H2_HEADERS &&
			    (ev->flags & SONDE_H2_FLAG_PRIORITY))
				d->front += 5;
		}
		/* A promise names its stream ahead of the block. */
		if (d->promise && ev->type == SONDE_H2_PUSH_PROMISE) {
			const uint8_t *id =
				(const uint8_t *)ev->data + d->front;

			if (len < (size_t)d->front + 4)
				return HTTP2_LOST;
			d->stream = ((uint32_t)id[0] & 0x7f) << 24 |
				    (uint32_t)id[1] << 16 |
				    (uint32_t)id[2] << 8 | id[3];
			d->front += 4;
		}
		d->frame_flags = ev->flags;
		d->pad = padded && len ? (uint8_t)ev->data[0] : 0;
		if ((size_t)d->front + d->pad > ev->frame_len)
			return HTTP2_LOST;
	} else if (!d->in_block || ev->stream_id != d->frame_stream) {
		return HTTP2_LOST;
	}
	lo = ev->offset > d->front ? ev->offset : d->front;
	hi = ev->frame_len - d->pad;
	if (end < hi)
		hi = end;
	if (hi > lo) {
		size_t need = d->block_len + (hi - lo);

		if (need > HTTP2_MAX_BLOCK)
			return HTTP2_LOST;
		if (need > d->block_room) {
			size_t room = d->block_room ? d->block_room : 1024;
			uint8_t *b;

			while (room < need)
				room *= 2;
			b = realloc(d->block, room);
			if (!b)
				return HTTP2_LOST;
			d->block = b;
			d->block_room = room;
		}
		memcpy(d->block + d->block_len, ev->data + (lo - ev->offset),
		       hi - lo);
		d->block_len = need;
	}
	if (end == ev->frame_len &&
	    (d->frame_flags & SONDE_H2_FLAG_END_HEADERS))
		return block_done(c, d, ev, out);
	return HTTP2_NOTHING;
}

/* c is superseded: a newer connection took its fd. It is forgotten a few
 * rounds later, not at once: its last records may be read after the
 * newer one's first, from another CPU's ring. */
static void supersede(struct conn *c)
{
	c->superseded = true;
	c->superseded_round = rounds;
	nsuperseded++;
}

/* Meeting process tgid's connection on fd that began at since: the ones
 * it had there before are superseded (an fd holds one connection at a
 * time). Returns whether one that began after it is known already (its
 * first record was read first, from another CPU's ring): then the one
 * met is superseded from the start. */
static bool supersede_earlier(uint32_t tgid, uint32_t fd, uint64_t since)
{
	bool newer = false;

	for (struct conn *c = buckets[bucket_of(tgid, fd)]; c; c = c->next) {
		if (c->tgid != tgid || c->fd != fd)
			continue;
		if (c->since < since && !c->superseded)
			supersede(c);
		else if (c->since > since)
			newer = true;
	}
	return newer;
}

/* Forgets the superseded connections whose time is up. */
static void forget_superseded(void)
{
	for (unsigned b = 0; b < NBUCKETS; b++) {
		struct conn **p = &buckets[b];

		while (*p) {
			struct conn *c = *p;

			if (c->superseded &&
			    rounds - c->superseded_round >= HELD_ROUNDS) {
				*p = c->next;
				conn_free(c);
			} else {
				p = &c->next;
			}
		}
	}
}

/* RST_STREAM error codes (RFC 9113 section 7) sonde tells apart. */
#define H2_NO_ERROR 0x0
#define H2_CANCEL 0x8

/* A stream was reset: no response will come. A gRPC call ends there,
 * with the status the reset's error code stands for, or with
 * DEADLINE_EXCEEDED when it was reset at its deadline (grpc-timeout). */
static enum http2_result reset(struct conn *c, const struct sonde_h2_event *ev,
			       size_t len, struct http_exchange *out)
{
	struct pending *p = pending_find(c, ev->stream_id);
	const uint8_t *code = (const uint8_t *)ev->data;
	uint32_t error;
	int status;

	if (!p)
		return HTTP2_NOTHING;
	/* The response may still come: made before the reset (a client
	 * resets a stream once it has its answer) but read after it, from
	 * another CPU's ring. It counts if it was made first; otherwise the
	 * stream is forgotten when it comes, or pushed out unanswered. */
	if (p->requested && !p->grpc) {
		if (!p->reset_ns)
			p->reset_ns = ev->hdr.ts_ns ? ev->hdr.ts_ns : 1;
		return HTTP2_NOTHING;
	}
	if (p->ended)
		return finish(c, p, ev, out);
	error = ev->offset == 0 && len >= 4 ?
			(uint32_t)code[0] << 24 | (uint32_t)code[1] << 16 |
				(uint32_t)code[2] << 8 | code[3] :
			H2_NO_ERROR;
	/* At the deadline, the client cancels and the server may end the
	 * stream with NO_ERROR; whichever comes first here, the deadline
	 * ended the call. */
	if ((error == H2_CANCEL || error == H2_NO_ERROR) && p->requested &&
	    ev->hdr.ts_ns > p->ns &&
	    grpc_deadline_passed(p->timeout_ns, ev->hdr.ts_ns - p->ns))
		status = GRPC_DEADLINE_EXCEEDED;
	else
		status = grpc_status_from_reset(error);
	end(p, status, ev->hdr.ts_ns);
	return finish(c, p, ev, out);
}

/* From here on c's header blocks cannot be decoded: its requests are
 * not measured. */
static enum http2_result lose(struct conn *c)
{
	/* Keep the entry, marked, so the rest of its records are passed
	 * over: until it is swept. */
	c->lost = true;
	c->npending = 0;
	held_free(c);
	return HTTP2_LOST;
}

/* The record c holds next in direction dir, when its turn has come, goes
 * to be read again. */
static void release(struct conn *c, unsigned dir)
{
	struct held *h =
		holdq_take(&c->held[dir], &budget, c->next_seq[dir], false);

	if (!h)
		return;
	*ready_tail = h;
	ready_tail = &h->next;
}

enum http2_result http2_handle(const struct sonde_h2_event *ev, size_t size,
			       struct http_exchange *out)
{
	size_t len = ev->len,
	       room = size - offsetof(struct sonde_h2_event, data);
	unsigned dir = ev->to_client ? 1 : 0;
	struct conn **slot = find(ev->hdr.tgid, ev->fd, ev->since);
	struct conn *c = *slot;
	enum http2_result r;

	if (len > room)
		len = room;
	if (len > SONDE_H2_DATA_CAP)
		len = SONDE_H2_DATA_CAP;
	if (!c) {
		/* Its first record read: seq 0, or a later one read first. */
		bool newer = supersede_earlier(ev->hdr.tgid, ev->fd, ev->since);

		c = conn_new(ev);
		if (!c)
			return HTTP2_LOST;
		slot = find(ev->hdr.tgid, ev->fd, ev->since);
		*slot = c;
		if (newer)
			supersede(c);
		if (c->given_up)
			return HTTP2_LOST;
	}
	if (c->lost || seq_before(ev->seq, c->next_seq[dir]))
		return HTTP2_NOTHING;
	if (ev->seq != c->next_seq[dir])
		return holdq_put(&c->held[dir], &budget, ev->seq, rounds, ev,
				 size) ?
			       HTTP2_NOTHING :
			       lose(c);
	if ((size_t)ev->offset + len > ev->frame_len)
		r = HTTP2_LOST;
	else if (ev->type == SONDE_H2_RST_STREAM)
		r = reset(c, ev, len, out);
	else if (ev->type == SONDE_H2_HEADERS ||
		 ev->type == SONDE_H2_CONTINUATION ||
		 ev->type == SONDE_H2_PUSH_PROMISE)
		r = block_piece(c, ev, len, out);
	else
		r = HTTP2_LOST;
	c->next_seq[dir] = ev->seq + 1;
	if (r == HTTP2_LOST)
		return lose(c);
	release(c, dir);
	return r;
}

const struct sonde_h2_event *http2_ready(size_t *size)
{
	free(handed_out);
	handed_out = ready_head;
	if (!ready_head)
		return NULL;
	ready_head = ready_head->next;
	if (!ready_head)
		ready_tail = &ready_head;
	*size = handed_out->size;
	return (const struct sonde_h2_event *)handed_out->rec;
}

/* Whether c has held a record through HELD_ROUNDS ends of round: the one
 * before it would have come by then, had it been made. */
static bool held_too_long(const struct conn *c)
{
	return holdq_waited(&c->held[0], rounds, HELD_ROUNDS) ||
	       holdq_waited(&c->held[1], rounds, HELD_ROUNDS);
}

unsigned http2_end_round(void)
{
	unsigned lost = 0;

	rounds++;
	for (unsigned b = 0; budget.queues && b < NBUCKETS; b++)
		for (struct conn *c = buckets[b]; c; c = c->next)
			if (held_too_long(c)) {
				lose(c);
				lost++;
			}
	if (nsuperseded)
		forget_superseded();
	return lost;
}

void http2_sweep(proto_open_fn open)
{
	for (unsigned b = 0; b < NBUCKETS; b++) {
		struct conn **p = &buckets[b];

		while (*p) {
			struct conn *c = *p;

			if (open(c->tgid, c->fd, c->sk)) {
				p = &c->next;
				continue;
			}
			*p = c->next;
			conn_free(c);
		}
	}
}

size_t http2_connections(void)
{
	return nconns;
}

void http2_clear(void)
{
	while (http2_ready(&(size_t){ 0 }))
		;
	for (unsigned b = 0; b < NBUCKETS; b++)
		while (buckets[b]) {
			struct conn *c = buckets[b];

			buckets[b] = c->next;
			conn_free(c);
		}
}

/* ---- The protocol: pieces of header blocks ----------------------------- */

static struct http_exchange done;

static enum proto_next http2_read(const void *rec, size_t size,
				  struct proto_record *r)
{
	const struct sonde_h2_event *ev = rec;

	r->tgid = ev->hdr.tgid;
	r->comm = ev->comm;
	r->filter = PROTO_FILTER_CONN;
	r->port = ev->sport;
	switch (http2_handle(ev, size, &done)) {
	case HTTP2_EXCHANGE:
		/* A :status that was no code: a response that could not be
		 * read. A gRPC call's status is its own. */
		if (done.grpc_status < 0 && done.status == 0) {
			r->error = PARSE_ERROR_RESPONSE;
			return PROTO_NEXT_TRACED_ERROR;
		}
		r->state = &done;
		return PROTO_NEXT_OBSERVE;
	case HTTP2_LOST:
		r->error = PARSE_ERROR_HTTP2_LOST;
		return PROTO_NEXT_ERROR;
	case HTTP2_NO_REQUEST:
		r->error = PARSE_ERROR_NO_REQUEST;
		return PROTO_NEXT_ERROR;
	case HTTP2_NOTHING:
		break;
	}
	return PROTO_NEXT_NOTHING;
}

static const void *http2_ready_record(size_t *size)
{
	return http2_ready(size);
}

static unsigned http2_rounds_lost(enum parse_error *why)
{
	*why = PARSE_ERROR_HTTP2_LOST;
	return http2_end_round();
}

static unsigned http2_observe(const void *rec, size_t size,
			      const struct proto_record *r,
			      struct proto_obs *obs)
{
	(void)rec;
	(void)size;
	return http_observe(r->state, obs);
}

/* The protocol of HTTP/2 header blocks, in dispatch.c's table. */
const struct proto proto_http2 = {
	.name = "http2",
	.kind = SONDE_EV_HTTP2,
	.min_size = offsetof(struct sonde_h2_event, data),
	.read = http2_read,
	.observe = http2_observe,
	.sweep = http2_sweep,
	.clear = http2_clear,
	.ready = http2_ready_record,
	.end_round = http2_rounds_lost,
};
