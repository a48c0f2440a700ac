/* Each direction of a database connection as a byte stream: the bytes
 * the BPF side captured of each read or write, and the holes after them,
 * put back in order and framed by the system's parser; and the calls
 * open on the connection, oldest first, each ended by the next reply.
 * See proto/db.h. */
#include <stdlib.h>
#include <string.h>

#include "proto/db.h"
#include "proto/dbstream.h"

void (*db_test_sink)(const struct db_result *r);

/* A call waiting for its reply. */
struct open_call {
	uint64_t start_ns;
	uint32_t tag;
	char op[DB_OP_MAX];
	char collection[DB_COLL_MAX];
};

/* One direction: the start of a message whose end has not come yet
 * (kept, up to DB_MSG_MAX), and the bytes of one still to pass over. */
struct direction {
	uint8_t *kept; /* room, allocated when first needed */
	size_t nkept, room;
	uint64_t skip;
	bool lost; /* until the first piece of a read or write */
};

/* Kept room beyond which an emptied direction gives its memory back. */
#define KEEP_ROOM_IDLE 1024
/* Open-call room beyond which an emptied connection gives it back. */
#define CALLS_ROOM_IDLE 64

struct stream_conn {
	struct db_conn pub; /* first: a db_conn * is a stream_conn * */
	const struct db_system *sys;
	db_done_fn done;
	void *owner;
	struct direction dir[2]; /* [1]: from the client */
	struct open_call *calls; /* a ring of cap, count from head */
	unsigned cap, head, count;
	/* Calls refused (over a cap) whose replies are still to come: they
	 * come after those of the open calls, and before any later call's. */
	unsigned refused;
};

static struct db_losses losses;
/* Calls open on all connections. */
static unsigned open_total;

static struct stream_conn *stream_of(struct db_conn *c)
{
	return (struct stream_conn *)c;
}

static const struct stream_conn *stream_of_const(const struct db_conn *c)
{
	return (const struct stream_conn *)c;
}

struct db_conn *db_conn_new_owned(const struct db_system *sys, bool server,
				  db_done_fn done, void *owner)
{
	struct stream_conn *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->sys = sys;
	s->done = done;
	s->owner = owner;
	s->pub.server = server;
	s->pub.system_name = sys->name;
	return &s->pub;
}

static void to_test_sink(void *owner, const struct db_result *r)
{
	(void)owner;
	if (db_test_sink)
		db_test_sink(r);
}

struct db_conn *db_conn_new(const struct db_system *sys, bool server)
{
	return db_conn_new_owned(sys, server, to_test_sink, NULL);
}

void db_conn_set_owner(struct db_conn *c, void *owner)
{
	stream_of(c)->owner = owner;
}

void db_conn_free(struct db_conn *c)
{
	struct stream_conn *s;

	if (!c)
		return;
	s = stream_of(c);
	open_total -= s->count;
	free(s->dir[0].kept);
	free(s->dir[1].kept);
	free(s->calls);
	free(s);
}

/* Forgets every call open on s, counting them as lost. */
static void drop_open(struct stream_conn *s)
{
	losses.calls += s->count;
	open_total -= s->count;
	s->count = 0;
	s->refused = 0;
}

void db_conn_close(struct db_conn *c)
{
	drop_open(stream_of(c));
}

struct db_losses db_take_losses(void)
{
	struct db_losses now = losses;

	memset(&losses, 0, sizeof(losses));
	return now;
}

/* Copies src into dst (size bytes), cut to fit, NUL-terminated. */
static void copy_label(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

/* Room for one more open call: false when DB_MAX_OPEN are open, or
 * memory ran out. */
static bool make_room(struct stream_conn *s)
{
	struct open_call *calls;
	unsigned cap;

	if (open_total >= DB_MAX_OPEN_TOTAL)
		return false;
	if (s->count < s->cap)
		return true;
	if (s->cap >= DB_MAX_OPEN)
		return false;
	cap = s->cap ? 2 * s->cap : 8;
	calls = malloc(cap * sizeof(*calls));
	if (!calls)
		return false;
	for (unsigned i = 0; i < s->count; i++)
		calls[i] = s->calls[(s->head + i) % s->cap];
	free(s->calls);
	s->calls = calls;
	s->cap = cap;
	s->head = 0;
	return true;
}

void db_call_begin(struct db_conn *c, uint64_t ts, const char *op,
		   const char *collection, uint32_t tag)
{
	struct stream_conn *s = stream_of(c);
	struct open_call *call;

	if (s->refused || !make_room(s)) {
		s->refused++;
		losses.calls++;
		return;
	}
	call = &s->calls[(s->head + s->count) % s->cap];
	s->count++;
	open_total++;
	call->start_ns = ts;
	call->tag = tag;
	copy_label(call->op, sizeof(call->op), op);
	copy_label(call->collection, sizeof(call->collection), collection);
}

/* Takes the oldest open call off the ring; NULL when none. The call
 * stays readable until the next call begins. */
static struct open_call *pop_call(struct stream_conn *s)
{
	struct open_call *call;

	if (!s->count)
		return NULL;
	call = &s->calls[s->head];
	s->head = (s->head + 1) % s->cap;
	s->count--;
	open_total--;
	return call;
}

/* A reply that no open call waits for ends a refused one: true when
 * there was one. */
static bool pop_refused(struct stream_conn *s)
{
	if (s->count || !s->refused)
		return false;
	s->refused--;
	return true;
}

/* s has no call open: a ring grown for a burst is given back. */
static void shrink_calls(struct stream_conn *s)
{
	if (s->count || s->cap <= CALLS_ROOM_IDLE)
		return;
	free(s->calls);
	s->calls = NULL;
	s->cap = 0;
	s->head = 0;
}

bool db_call_end(struct db_conn *c, uint64_t ts, const char *status, bool error)
{
	struct stream_conn *s = stream_of(c);
	struct open_call *call;
	char code[DB_STATUS_MAX];
	struct db_result r;

	if (pop_refused(s))
		return true;
	call = pop_call(s);
	if (!call)
		return false;
	copy_label(code, sizeof(code), status);
	r.system_name = c->system_name;
	r.op = call->op;
	r.collection = call->collection;
	r.status = code;
	r.error = error;
	r.start_ns = call->start_ns;
	r.end_ns = ts > call->start_ns ? ts : call->start_ns;
	s->done(s->owner, &r);
	shrink_calls(s);
	return true;
}

bool db_call_drop(struct db_conn *c)
{
	struct stream_conn *s = stream_of(c);
	bool dropped = pop_refused(s) || pop_call(s) != NULL;

	shrink_calls(s);
	return dropped;
}

size_t db_line_rest(const uint8_t *p, size_t n, bool *in_line)
{
	const uint8_t *lf = memchr(p, '\n', n);

	if (!lf)
		return n;
	*in_line = false;
	return (size_t)(lf - p) + 1;
}

unsigned db_calls_open(const struct db_conn *c)
{
	return stream_of_const(c)->count;
}

uint32_t db_call_tag(const struct db_conn *c)
{
	const struct stream_conn *s = stream_of_const(c);

	return s->count ? s->calls[s->head].tag : 0;
}

/* The direction's bytes stopped making sense, or bytes its parser needed
 * fell in a hole: what it kept is dropped, the calls open are lost (their
 * replies, or the requests the replies answer, are gone), and it starts
 * again at its next read or write. */
static void lose(struct stream_conn *s, bool from_client)
{
	struct direction *d = &s->dir[from_client];

	losses.streams++;
	drop_open(s);
	d->nkept = 0;
	d->skip = 0;
	d->lost = true;
	if (s->sys->lost)
		s->sys->lost(&s->pub, from_client);
}

void db_gap(struct db_conn *c, bool from_client)
{
	lose(stream_of(c), from_client);
}

/* Passes over what is left of the hole after a read or write's captured
 * bytes: it must fall inside a message being passed over. */
static void pass_hole(struct stream_conn *s, bool from_client, uint64_t hole)
{
	struct direction *d = &s->dir[from_client];

	if (!hole)
		return;
	if (d->skip < hole || d->nkept) {
		lose(s, from_client);
		return;
	}
	d->skip -= hole;
}

/* Room for n bytes kept in d: false when memory ran out. */
static bool grow(struct direction *d, size_t n)
{
	uint8_t *kept;

	if (n <= d->room)
		return true;
	kept = realloc(d->kept, n);
	if (!kept)
		return false;
	d->kept = kept;
	d->room = n;
	return true;
}

/* Frames p[0..n), which start where the stream stands (after anything
 * kept), with the system's parser; keeps the start of an unfinished
 * message. */
static void frame(struct stream_conn *s, bool from_client, const uint8_t *p,
		  size_t n, uint64_t ts)
{
	struct direction *d = &s->dir[from_client];

	while (n) {
		uint64_t skip = 0;
		size_t used =
			s->sys->parse(&s->pub, from_client, p, n, ts, &skip);

		if (used == DB_PARSE_LOST || used > n) {
			lose(s, from_client);
			return;
		}
		if (!used)
			break;
		p += used;
		n -= used;
		if (skip) {
			size_t k = skip < n ? skip : n;

			p += k;
			n -= k;
			d->skip = skip - k;
			if (d->skip)
				break;
		}
	}
	if (n > DB_MSG_MAX || (n && d->skip)) {
		lose(s, from_client);
		return;
	}
	if (n && p != d->kept && !grow(d, n)) {
		lose(s, from_client);
		return;
	}
	if (n && p != d->kept)
		memmove(d->kept, p, n);
	d->nkept = n;
	if (!n && d->room > KEEP_ROOM_IDLE) {
		free(d->kept);
		d->kept = NULL;
		d->room = 0;
	}
}

void db_feed(struct db_conn *c, bool from_client, const uint8_t *data,
	     size_t len, uint64_t total, uint64_t ts)
{
	db_feed_piece(c, from_client, data, len, total, ts, true);
}

void db_feed_piece(struct db_conn *c, bool from_client, const uint8_t *data,
		   size_t len, uint64_t total, uint64_t ts, bool starts)
{
	struct stream_conn *s = stream_of(c);
	struct direction *d = &s->dir[from_client];
	uint64_t hole = total > len ? total - len : 0;

	if (d->lost && !starts)
		return;
	d->lost = false;

	if (d->skip) {
		size_t k = d->skip < len ? d->skip : len;

		data += k;
		len -= k;
		d->skip -= k;
	}
	if (!len) {
		pass_hole(s, from_client, hole);
		return;
	}
	if (d->nkept) {
		if (!grow(d, d->nkept + len)) {
			lose(s, from_client);
			return;
		}
		memcpy(d->kept + d->nkept, data, len);
		frame(s, from_client, d->kept, d->nkept + len, ts);
	} else {
		frame(s, from_client, data, len, ts);
	}
	pass_hole(s, from_client, hole);
}
