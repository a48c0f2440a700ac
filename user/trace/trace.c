/* Spans from observations: context, linking, sampling and the batch
 * queue. See trace/trace.h.
 *
 * Context follows W3C Trace Context
 * (https://www.w3.org/TR/trace-context/): a request's traceparent gives
 * its SERVER span the trace id and parent; without one a new trace
 * starts. A CLIENT span's own traceparent (a service with an SDK, or one
 * the kernel added with --trace-propagation) gives its trace.
 *
 * Linking: a call a thread makes while it serves a request is that
 * request's child. The exchange records of the calls come in before the
 * one of the request they were made for (it ends last), so a CLIENT span
 * from a thread that has served requests waits, up to HOLD_NS, for the
 * SERVER span of the same thread whose time holds it. A thread seen
 * serving two requests at once (an event loop, goroutines sharing
 * threads) is not linked: its requests' times overlap, and which one a
 * call belongs to cannot be told from the thread.
 *
 * Sampling follows the SDK samplers
 * (https://opentelemetry.io/docs/specs/otel/trace/sdk/#sampling): the
 * decision is the root's, and the children linked to a span share it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "metrics/self.h"
#include "sonde_events.h"
#include "trace/trace.h"
#include "util/clock.h"
#include "util/fmt.h"
#include "util/log.h"

/* Spans waiting for the end of their round (and client spans waiting
 * for their request's): at about 1.1 KiB each, 2048 is 2.3 MiB at most,
 * a round's worth at 100k spans a second. When it fills, every span
 * waiting goes at once, unlinked. */
#define PENDING_MAX 2048
/* How long a call from a thread that serves requests waits for the
 * request it was made for: longer than most requests take, short enough
 * that spans are not late. A call of a request that takes longer is
 * exported unlinked, a root. */
#define HOLD_NS (2 * 1000000000ull)
/* How long a call from a thread not seen serving yet waits: a server
 * that starts a thread per request has each request's calls on a new
 * thread, and the request's record may come a round after them. A
 * thread seen for longer than CLIENT_ONLY_NS without serving makes calls
 * only: its spans wait for nothing. */
#define NEW_THREAD_HOLD_NS (100 * 1000000ull)
#define CLIENT_ONLY_NS (1000 * 1000000ull)
/* Threads remembered: whether each serves, and one request at a time. */
#define THREADS_SLOTS 8192
/* A thread seen serving requests that overlap is not linked for this
 * long after. */
#define CONCURRENT_NS (60 * 1000000000ull)
/* Connections whose requests the kernel added a traceparent to, their
 * injections waiting for the requests' CLIENT spans: a table by hash,
 * each connection in one of INJECT_PROBES slots from its own; when all
 * are taken, a new one takes the slot of the one injected least
 * recently. */
#define INJECT_SLOTS 1024
#define INJECT_PROBES 4
/* An injection is made in the write of a request, before the
 * exchange's recorded start: the two hooks' clocks are read at different
 * points of the same call, microseconds apart, unless the writer is
 * preempted between them, which on a busy host takes milliseconds. One
 * this much older than a start is another request's (a span never made,
 * its queue full). */
#define INJECT_WINDOW_NS (100 * 1000000ull)
/* ... and one this much after a start is, whatever the hooks. */
#define INJECT_AFTER_NS 1000000ull

struct pending {
	struct span s;
	uint32_t tgid, tid, fd;
	uint64_t start_ns, end_ns; /* monotonic */
	uint16_t sport, dport;
	bool server;
	bool has_context; /* ids from its own traceparent or injection */
	bool injected;
	bool sampled; /* the context's flag, when has_context */
	bool settled; /* its round has ended: links made */
	bool linked;  /* a child of a span settled before it */
	bool parent_sampled;
	uint64_t hold_until; /* a client span: how long it may wait */
};

struct thread_entry {
	uint64_t key; /* tgid << 32 | tid; 0: free */
	uint64_t first_seen;
	uint64_t last_start, last_end; /* its latest request; 0: none */
	uint64_t concurrent_until;
	unsigned held; /* its client spans not yet released */
};

struct injected {
	uint64_t ts_ns; /* 0: none */
	uint8_t trace_id[16];
	uint8_t span_id[8];
};

/* A connection's latest injections, by (tgid, local port, peer port): a
 * keep-alive client may send its next request, and have it injected,
 * before the daemon has settled the span of the one before. */
#define INJECTED_PER_CONN 4
struct inject_conn {
	uint32_t tgid;	  /* 0: free */
	uint64_t last_ns; /* its latest injection */
	uint16_t sport, dport;
	unsigned next;
	struct injected e[INJECTED_PER_CONN];
};

static struct trace_config cfg;
static bool enabled;
static uint64_t wall_offset_ns; /* realtime - monotonic, at start */
static uint64_t round_ns;	/* monotonic time at the last round's end */
static bool shedding;		/* trace_shed */
static bool derive_ids;		/* trace_derive_ids */
static uint64_t trace_key[2];
static uint64_t offset_read_ns;
#define OFFSET_TTL_NS (60 * 1000000000ull)
static uint64_t rng[4];

static struct pending *pending;
static unsigned npending;
static struct thread_entry *threads;
static struct inject_conn *injected; /* INJECT_SLOTS of them */
/* Injections noted since start: while 0, the pass over them is
 * skipped. */
static unsigned ninjected_seen;

/* The batch queue: a ring of cfg.max_queue spans, one thread putting
 * (the consumer) and one taking (the exporter), so no lock: each counter
 * is written by its side alone, and read by the other with acquire
 * order, after the spans it covers. */
static struct span *queue;
static unsigned qhead, qtail; /* spans taken, and put, since start */
static void (*notify_fn)(void *);
static void *notify_arg;

/* Self-metrics: atomic, added to from any thread. */
static uint64_t exported, dropped[TRACE_DROP_COUNT];

/* ---- configuration ------------------------------------------------------ */

static const struct {
	const char *name;
	enum trace_sampler sampler;
} samplers[] = {
	{ "always_on", TRACE_SAMPLER_ALWAYS_ON },
	{ "always_off", TRACE_SAMPLER_ALWAYS_OFF },
	{ "traceidratio", TRACE_SAMPLER_RATIO },
	{ "parentbased_always_on", TRACE_SAMPLER_PARENT_ALWAYS_ON },
	{ "parentbased_always_off", TRACE_SAMPLER_PARENT_ALWAYS_OFF },
	{ "parentbased_traceidratio", TRACE_SAMPLER_PARENT_RATIO },
};

static int env_uint(const char *name, unsigned min, unsigned *out, char *err,
		    size_t errsz)
{
	const char *v = getenv(name);
	unsigned long n;

	if (!v || !*v)
		return 0;
	if (fmt_parse_ulong(v, min, 1000000000ul, &n)) {
		snprintf(err, errsz, "%s: \"%s\" is not a whole number from %u",
			 name, v, min);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

static bool ratio_sampler(enum trace_sampler s)
{
	return s == TRACE_SAMPLER_RATIO || s == TRACE_SAMPLER_PARENT_RATIO;
}

int trace_config_load(struct trace_config *c, char *err, size_t errsz)
{
	const char *v = getenv("OTEL_TRACES_SAMPLER");
	const char *arg = getenv("OTEL_TRACES_SAMPLER_ARG");
	size_t i;

	*c = (struct trace_config){
		.sampler = TRACE_SAMPLER_PARENT_ALWAYS_ON,
		.ratio = 1.0,
		.schedule_delay_ms = 5000,
		.max_queue = 2048,
		.max_batch = 512,
	};
	if (v && *v) {
		for (i = 0; i < sizeof(samplers) / sizeof(samplers[0]); i++)
			if (strcasecmp(v, samplers[i].name) == 0)
				break;
		if (i == sizeof(samplers) / sizeof(samplers[0])) {
			snprintf(err, errsz,
				 "OTEL_TRACES_SAMPLER: \"%s\" is not one of "
				 "always_on, always_off, traceidratio, "
				 "parentbased_always_on, "
				 "parentbased_always_off, "
				 "parentbased_traceidratio",
				 v);
			return -1;
		}
		c->sampler = samplers[i].sampler;
	}
	if (ratio_sampler(c->sampler) && arg && *arg) {
		char *end;

		errno = 0;
		c->ratio = strtod(arg, &end);
		if (errno || *end || end == arg || !(c->ratio >= 0) ||
		    c->ratio > 1) {
			snprintf(err, errsz,
				 "OTEL_TRACES_SAMPLER_ARG: \"%s\" is not a "
				 "ratio from 0 to 1",
				 arg);
			return -1;
		}
	}
	if (env_uint("OTEL_BSP_SCHEDULE_DELAY", 1, &c->schedule_delay_ms, err,
		     errsz) ||
	    env_uint("OTEL_BSP_MAX_QUEUE_SIZE", 1, &c->max_queue, err, errsz) ||
	    env_uint("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, &c->max_batch, err,
		     errsz))
		return -1;
	if (c->max_queue > 1000000) {
		snprintf(err, errsz,
			 "OTEL_BSP_MAX_QUEUE_SIZE: %u spans is more than "
			 "1000000",
			 c->max_queue);
		return -1;
	}
	/* As the SDKs do: a batch is never larger than the queue. */
	if (c->max_batch > c->max_queue)
		c->max_batch = c->max_queue;
	return 0;
}

/* ---- ids ------------------------------------------------------------------ */

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (https://prng.di.unimi.it/): ids need to be unique and
 * spread, not secret; one getrandom at start seeds it. */
static uint64_t next_random(void)
{
	uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;

	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return r;
}

static void random_id(uint8_t *id, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t r;

		do
			r = next_random();
		while (!r);
		memcpy(id + i, &r, n - i < 8 ? n - i : 8);
	}
}

static bool all_zero(const uint8_t *id, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (id[i])
			return false;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is not valid in a traceparent */
}

static int hex_bytes(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* "00-<32 hex>-<16 hex>-<2 hex>": 55 characters. A later version may add
 * fields after a '-'. */
int trace_parse_traceparent(const char *v, size_t len, uint8_t trace_id[16],
			    uint8_t parent_id[8], bool *sampled)
{
	uint8_t version, flags;

	if (len < 55 || hex_bytes(v, &version, 1) || version == 0xff ||
	    v[2] != '-' || v[35] != '-' || v[52] != '-' ||
	    (version == 0 && len != 55) || (len > 55 && v[55] != '-') ||
	    hex_bytes(v + 3, trace_id, 16) || hex_bytes(v + 36, parent_id, 8) ||
	    hex_bytes(v + 53, &flags, 1) || all_zero(trace_id, 16) ||
	    all_zero(parent_id, 8))
		return -1;
	*sampled = flags & 1;
	return 0;
}

bool trace_ratio_keeps(const uint8_t trace_id[16], double ratio)
{
	uint64_t r = 0;

	if (ratio >= 1)
		return true;
	if (ratio <= 0)
		return false;
	for (int i = 8; i < 16; i++)
		r = r << 8 | trace_id[i];
	return (double)r < ratio * 18446744073709551616.0;
}

/* ---- building a span ----------------------------------------------------- */

/* What a family's spans need to know of its labels, worked out once:
 * which values go out as integers, and which one is an HTTP or RPC
 * span's error.type when it fails (a database family has its own
 * error_type label). */
struct family_spans {
	const struct metric_family *f;
	uint32_t ints; /* bit i: label i */
	int status;    /* the label whose value is error.type, or -1 */
};

#define FAMILIES_MAX 16
static struct family_spans families[FAMILIES_MAX];
static unsigned nfamilies;

static bool key_is(const char *key, const char *name)
{
	return strcmp(key, name) == 0;
}

static const struct family_spans *family_spans(const struct metric_family *f)
{
	struct family_spans *fs;

	for (unsigned i = 0; i < nfamilies; i++)
		if (families[i].f == f)
			return &families[i];
	fs = &families[nfamilies < FAMILIES_MAX ? nfamilies++ : 0];
	fs->f = f;
	fs->ints = 0;
	fs->status = -1;
	for (unsigned i = 1; i < f->nlabels && i < 32; i++) {
		const char *key = f->otel_labels[i];

		if (key_is(key, "http.response.status_code") ||
		    key_is(key, "server.port"))
			fs->ints |= 1u << i;
		if (key_is(key, "http.response.status_code") ||
		    key_is(key, "rpc.response.status_code"))
			fs->status = (int)i;
	}
	for (unsigned i = 1; i < f->nlabels; i++)
		if (key_is(f->otel_labels[i], "error.type"))
			fs->status = -1;
	return fs;
}

/* Adds label value v under key, as an integer when the family says so
 * and it is one. */
static void add_value(struct span *s, const char *key, const char *v, size_t n,
		      bool integer)
{
	int64_t i = 0;
	size_t k = 0;

	if (integer && n && n < 10) {
		for (; k < n && v[k] >= '0' && v[k] <= '9'; k++)
			i = i * 10 + (v[k] - '0');
		if (k == n) {
			span_add_int(s, key, i);
			return;
		}
	}
	span_add_string(s, key, v, n);
}

/* Whether a label value is a value: routes and methods sonde could not
 * read stay out of a span's name. */
static bool known(const char *v)
{
	return v && *v && strcmp(v, ROUTE_UNKNOWN) != 0;
}

/* The span's name into buf (SPAN_NAME_MAX + 1 bytes): the family's name
 * labels' values, "GET /users/{id}", "SELECT orders"; its length. */
static size_t name_of(const struct metric_family *f, const char *const *values,
		      char *buf)
{
	const char *a = f->span_name[0] ? values[f->span_name[0]] : NULL;
	const char *b = f->span_name[1] ? values[f->span_name[1]] : NULL;
	size_t n, m;

	if (!known(a))
		a = f->otel_name;
	n = strnlen(a, SPAN_NAME_MAX);
	memcpy(buf, a, n);
	if (known(b) && n + 1 < SPAN_NAME_MAX) {
		buf[n++] = ' ';
		m = strnlen(b, SPAN_NAME_MAX - n);
		memcpy(buf + n, b, m);
		n += m;
	}
	return n;
}

static struct pending *pending_add(uint64_t now);
static struct thread_entry *thread_of(uint32_t tgid, uint32_t tid, bool add);

void trace_observe(const struct metric_family *f, const char *const *values,
		   unsigned n, bool error, uint32_t tgid,
		   const struct trace_exchange *x)
{
	char name[SPAN_NAME_MAX + 1];
	const struct family_spans *fs;
	struct pending *p;
	struct span *s;
	const char *state;
	uint64_t now_ns;

	if (!enabled || !f->span_kind || !x->start_ns)
		return;
	/* The exporter is behind: the span would find the queue full. It
	 * is counted lost now, before any work is spent on it. */
	if (qtail - __atomic_load_n(&qhead, __ATOMIC_ACQUIRE) >=
	    cfg.max_queue) {
		trace_count_dropped(TRACE_DROP_QUEUE_FULL, 1);
		return;
	}
	if (shedding) {
		trace_count_dropped(TRACE_DROP_BEHIND, 1);
		return;
	}
	/* Arrival is kept to the round: waits are counted in tenths of a
	 * second, and a clock read per span costs more than the span's ids. */
	now_ns = round_ns;
	p = pending_add(now_ns);
	s = &p->s;
	/* All but the attributes and text, written as far as used. */
	memset(s, 0, offsetof(struct span, attrs));
	memset((char *)p + offsetof(struct pending, tgid), 0,
	       sizeof(*p) - offsetof(struct pending, tgid));
	p->tgid = tgid;
	p->tid = x->tid;
	p->fd = x->fd;
	p->start_ns = x->start_ns;
	p->end_ns = x->end_ns > x->start_ns ? x->end_ns : x->start_ns;
	p->sport = x->sport;
	p->dport = x->dport;
	p->server = f->span_kind == SPAN_KIND_SERVER;
	/* A thread's first call starts its clock: one that never serves
	 * is soon known not to. */
	if (!p->server && p->tid)
		thread_of(tgid, p->tid, true)->held++;
	s->kind = (uint8_t)f->span_kind;
	s->error = error;
	s->pid = tgid;
	s->start_unix_ns = p->start_ns + wall_offset_ns;
	s->end_unix_ns = p->end_ns + wall_offset_ns;
	random_id(s->span_id, 8);
	state = NULL;
	if (x->traceparent &&
	    trace_parse_traceparent(x->traceparent, x->traceparent_len,
				    s->trace_id, s->parent_id,
				    &p->sampled) == 0) {
		p->has_context = true;
		state = x->tracestate;
	}
	span_set_text(s, values[0], strlen(values[0]), name,
		      name_of(f, values, name), state,
		      state ? x->tracestate_len : 0);
	fs = family_spans(f);
	for (unsigned i = 1; i < n && i < f->nlabels; i++)
		if (known(values[i]))
			add_value(s, f->otel_labels[i], values[i],
				  strlen(values[i]), fs->ints >> i & 1);
	if (x->path)
		span_add_string(s, "url.path", x->path, x->path_len);
	if (error && fs->status > 0 && (unsigned)fs->status < n)
		span_add_string(s, "error.type", values[fs->status],
				strlen(values[fs->status]));
}

/* ---- threads ---------------------------------------------------------------- */

static struct thread_entry *thread_of(uint32_t tgid, uint32_t tid, bool add)
{
	uint64_t key = (uint64_t)tgid << 32 | tid;
	size_t h = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 40);

	for (unsigned probe = 0; probe < 8; probe++) {
		struct thread_entry *t =
			&threads[(h + probe) & (THREADS_SLOTS - 1)];

		if (t->key == key)
			return t;
		if (!t->key && add) {
			t->key = key;
			t->first_seen = clock_monotonic_ns();
			return t;
		}
	}
	if (!add)
		return NULL;
	/* Full around here: the first slot is taken over. */
	memset(&threads[h & (THREADS_SLOTS - 1)], 0, sizeof(*threads));
	threads[h & (THREADS_SLOTS - 1)].key = key;
	threads[h & (THREADS_SLOTS - 1)].first_seen = clock_monotonic_ns();
	return &threads[h & (THREADS_SLOTS - 1)];
}

/* A server span on its thread: whether its time overlaps the previous
 * one's there, which makes the thread one that serves many at once. */
static void note_served(const struct pending *p, uint64_t now)
{
	struct thread_entry *t = thread_of(p->tgid, p->tid, true);

	if (t->last_end && p->start_ns < t->last_end &&
	    p->end_ns > t->last_start)
		t->concurrent_until = now + CONCURRENT_NS;
	if (p->end_ns > t->last_end) {
		t->last_start = p->start_ns;
		t->last_end = p->end_ns;
	}
}

/* Whether span p's thread serves requests one at a time, so that the
 * calls it makes while serving one are that one's. */
static bool links(const struct pending *p, uint64_t now)
{
	const struct thread_entry *t;

	if (!p->tid)
		return false;
	t = thread_of(p->tgid, p->tid, false);
	return t && t->last_end && now >= t->concurrent_until;
}

/* How long client span c may wait for the request it was made for: 0
 * when it has none to wait for. */
static uint64_t hold_for(const struct pending *c, uint64_t now)
{
	const struct thread_entry *t;

	if (!c->tid || (c->has_context && !c->injected))
		return 0;
	t = thread_of(c->tgid, c->tid, false);
	if (!t || now < t->concurrent_until)
		return 0;
	if (t->last_end)
		return HOLD_NS;
	return now - t->first_seen < CLIENT_ONLY_NS ? NEW_THREAD_HOLD_NS : 0;
}

/* ---- settling ------------------------------------------------------------- */

/* Connection (tgid, sport, dport)'s slot; with add, one is made for it
 * if it has none. NULL when it has none. */
static struct inject_conn *inject_slot(uint32_t tgid, uint16_t sport,
				       uint16_t dport, bool add)
{
	uint64_t key = (uint64_t)tgid << 32 | (uint32_t)sport << 16 | dport;
	unsigned h = (unsigned)((key * 0x9e3779b97f4a7c15ULL) >> 54);
	struct inject_conn *free = NULL, *oldest = NULL, *ic;

	for (unsigned probe = 0; probe < INJECT_PROBES; probe++) {
		ic = &injected[(h + probe) & (INJECT_SLOTS - 1)];
		if (ic->tgid == tgid && ic->sport == sport &&
		    ic->dport == dport)
			return ic;
		if (!ic->tgid) {
			if (!free)
				free = ic;
		} else if (!oldest || ic->last_ns < oldest->last_ns) {
			oldest = ic;
		}
	}
	if (!add)
		return NULL;
	ic = free ? free : oldest;
	memset(ic, 0, sizeof(*ic));
	ic->tgid = tgid;
	ic->sport = sport;
	ic->dport = dport;
	return ic;
}

/* The injection made for client span c's request, if one was: on its
 * connection, the latest not taken that was made before the exchange
 * started (the next request's comes after its end). */
static void take_injection(struct pending *c)
{
	struct inject_conn *ic =
		inject_slot(c->tgid, c->sport, c->dport, false);
	uint64_t until = c->start_ns + INJECT_AFTER_NS;
	struct injected *in = NULL;

	if (!ic)
		return;
	if (until > c->end_ns)
		until = c->end_ns;
	for (unsigned i = 0; i < INJECTED_PER_CONN; i++) {
		struct injected *e = &ic->e[i];

		if (e->ts_ns && e->ts_ns + INJECT_WINDOW_NS >= c->start_ns &&
		    e->ts_ns <= until && (!in || e->ts_ns > in->ts_ns))
			in = e;
	}
	if (!in)
		return;
	in->ts_ns = 0; /* used */
	memcpy(c->s.trace_id, in->trace_id, 16);
	memcpy(c->s.span_id, in->span_id, 8);
	memset(c->s.parent_id, 0, 8);
	c->has_context = c->injected = true;
	c->sampled = true;
}

static bool root_sampled(const uint8_t trace_id[16])
{
	switch (cfg.sampler) {
	case TRACE_SAMPLER_ALWAYS_OFF:
	case TRACE_SAMPLER_PARENT_ALWAYS_OFF:
		return false;
	case TRACE_SAMPLER_RATIO:
	case TRACE_SAMPLER_PARENT_RATIO:
		return trace_ratio_keeps(trace_id, cfg.ratio);
	default:
		return true;
	}
}

/* The decision for a span whose context came from outside (a parent
 * elsewhere, sampled or not). */
static bool remote_sampled(const struct pending *p)
{
	switch (cfg.sampler) {
	case TRACE_SAMPLER_ALWAYS_ON:
		return true;
	case TRACE_SAMPLER_ALWAYS_OFF:
		return false;
	case TRACE_SAMPLER_RATIO:
		return trace_ratio_keeps(p->s.trace_id, cfg.ratio);
	default:
		return p->sampled;
	}
}

static void queue_put(const struct span *s)
{
	unsigned head = __atomic_load_n(&qhead, __ATOMIC_ACQUIRE);

	if (qtail - head >= cfg.max_queue) {
		trace_count_dropped(TRACE_DROP_QUEUE_FULL, 1);
		return;
	}
	span_copy(&queue[qtail % cfg.max_queue], s);
	__atomic_store_n(&qtail, qtail + 1, __ATOMIC_RELEASE);
	if (qtail - head == cfg.max_batch && notify_fn)
		notify_fn(notify_arg);
}

/* A span with no parent here: its own context's, or a new trace's. */
static bool settle_root(struct pending *p)
{
	if (p->injected)
		return root_sampled(p->s.trace_id);
	if (p->has_context)
		return remote_sampled(p);
	random_id(p->s.trace_id, 16);
	return root_sampled(p->s.trace_id);
}

/* Links the held client spans that server span sp's thread made during
 * it as its children, and gives it a trace. Returns whether it is
 * sampled; its children are then queued with it. */
static bool settle_server(struct pending *sp, uint64_t now)
{
	bool sampled;
	struct thread_entry *t;

	note_served(sp, now);
	if (!sp->has_context) {
		/* A root. Under --trace-propagation its trace is the one the
		 * kernel sent downstream with its calls. */
		if (derive_ids)
			sonde_derived_trace_id(trace_key[0], trace_key[1],
					       sp->tgid, sp->fd, sp->start_ns,
					       sp->s.trace_id);
		else
			random_id(sp->s.trace_id, 16);
		sampled = root_sampled(sp->s.trace_id);
	} else {
		sampled = remote_sampled(sp);
	}
	t = thread_of(sp->tgid, sp->tid, false);
	if (!links(sp, now) || !t || !t->held)
		return sampled;
	for (unsigned i = 0; i < npending; i++) {
		struct pending *c = &pending[i];

		if (c->server || c->linked || c->tgid != sp->tgid ||
		    c->tid != sp->tid || c->start_ns < sp->start_ns ||
		    c->end_ns > sp->end_ns)
			continue;
		/* A call with a context of its own from an SDK keeps it; one
		 * the kernel added joins if it carries this trace. */
		if (c->has_context &&
		    (!c->injected ||
		     memcmp(c->s.trace_id, sp->s.trace_id, 16) != 0))
			continue;
		memcpy(c->s.trace_id, sp->s.trace_id, 16);
		memcpy(c->s.parent_id, sp->s.span_id, 8);
		c->linked = true;
		c->parent_sampled = sampled;
	}
	return sampled;
}

/* Moves a waiting span down the table: what it uses, not its room. */
static void pending_move(struct pending *dst, const struct pending *src)
{
	memcpy((char *)dst + offsetof(struct pending, tgid),
	       (const char *)src + offsetof(struct pending, tgid),
	       sizeof(*src) - offsetof(struct pending, tgid));
	span_copy(&dst->s, &src->s);
}

/* Queues p when sampled; its slot is free after. */
static void release(struct pending *p, bool sampled)
{
	if (sampled)
		queue_put(&p->s);
}

/* Settles what came in: injections first, then each server span with
 * its children, then the client spans that need not wait (or can wait no
 * longer). With force, every span goes, waiting or not: the table is
 * full, and emptying it whole keeps the cost of that a pass per
 * PENDING_MAX spans, not one per span. */
static void settle(uint64_t now, bool force)
{
	unsigned i, kept = 0;

	for (i = 0; ninjected_seen && i < npending; i++)
		if (!pending[i].server && !pending[i].has_context)
			take_injection(&pending[i]);
	for (i = 0; i < npending; i++) {
		struct pending *p = &pending[i];

		if (p->server && !p->settled) {
			p->parent_sampled = settle_server(p, now);
			p->settled = true;
		}
	}
	for (i = 0; i < npending; i++) {
		struct pending *p = &pending[i];
		struct thread_entry *t;
		bool go = p->server || p->linked || force;

		if (!go && !p->settled) {
			p->settled = true;
			p->hold_until = now + hold_for(p, now);
		}
		if (!go && now < p->hold_until) {
			if (kept != i)
				pending_move(&pending[kept], p);
			kept++;
			continue;
		}
		if (!p->server && p->tid &&
		    (t = thread_of(p->tgid, p->tid, false)) && t->held)
			t->held--;
		if (p->server || p->linked)
			release(p, p->parent_sampled);
		else
			release(p, settle_root(p));
	}
	npending = kept;
}

static struct pending *pending_add(uint64_t now)
{
	if (npending == PENDING_MAX)
		settle(now, true);
	return &pending[npending++];
}

void trace_end_round(uint64_t now_ns)
{
	round_ns = now_ns;
	/* A step of the wall clock (NTP, an operator) reaches spans within
	 * a minute; between, no clock is read per span. */
	if (enabled && now_ns - offset_read_ns > OFFSET_TTL_NS) {
		wall_offset_ns = clock_realtime_ns() - clock_monotonic_ns();
		offset_read_ns = now_ns;
	}
	if (enabled && npending)
		settle(now_ns, false);
}

void trace_note_injected(uint32_t tgid, uint16_t sport, uint16_t dport,
			 uint64_t ts_ns, const uint8_t trace_id[16],
			 const uint8_t span_id[8])
{
	struct inject_conn *ic;
	struct injected *in;

	if (!enabled)
		return;
	ic = inject_slot(tgid, sport, dport, true);
	ic->last_ns = ts_ns;
	in = &ic->e[ic->next++ % INJECTED_PER_CONN];
	in->ts_ns = ts_ns ? ts_ns : 1;
	memcpy(in->trace_id, trace_id, 16);
	memcpy(in->span_id, span_id, 8);
	ninjected_seen++;
}

/* ---- start and stop ------------------------------------------------------ */

void trace_start(const struct trace_config *c)
{
	cfg = *c;
	if (getrandom(rng, sizeof(rng), 0) != sizeof(rng) ||
	    all_zero((const uint8_t *)rng, sizeof(rng))) {
		rng[0] = clock_realtime_ns();
		rng[1] = clock_monotonic_ns() | 1;
		rng[2] = (uint64_t)getpid() << 32 | 0x5bd1e995;
		rng[3] = 0x9e3779b97f4a7c15ULL;
	}
	/* Kernel timestamps are CLOCK_MONOTONIC: one offset, read now,
	 * puts every span on the wall clock. */
	wall_offset_ns = clock_realtime_ns() - clock_monotonic_ns();
	round_ns = offset_read_ns = clock_monotonic_ns();
	pending = calloc(PENDING_MAX, sizeof(*pending));
	threads = calloc(THREADS_SLOTS, sizeof(*threads));
	injected = calloc(INJECT_SLOTS, sizeof(*injected));
	queue = calloc(cfg.max_queue, sizeof(*queue));
	qhead = qtail = 0;
	if (!pending || !threads || !queue || !injected) {
		log_error("traces: out of memory; no spans will be made");
		trace_stop();
		return;
	}
	npending = 0;
	ninjected_seen = 0;
	derive_ids = false;
	enabled = true;
}

void trace_derive_ids(uint64_t k0, uint64_t k1)
{
	trace_key[0] = k0;
	trace_key[1] = k1;
	derive_ids = true;
}

void trace_shed(bool on)
{
	shedding = on;
}

bool trace_enabled(void)
{
	return enabled;
}

void trace_stop(void)
{
	enabled = false;
	free(pending);
	pending = NULL;
	npending = 0;
	free(threads);
	threads = NULL;
	free(injected);
	injected = NULL;
	free(queue);
	queue = NULL;
	qhead = qtail = 0;
}

/* ---- the queue -------------------------------------------------------- */

unsigned trace_queue_peek(const struct span **first, unsigned max)
{
	unsigned n = __atomic_load_n(&qtail, __ATOMIC_ACQUIRE) - qhead;
	unsigned at = queue ? qhead % cfg.max_queue : 0;

	if (!queue)
		return 0;
	if (n > cfg.max_queue - at)
		n = cfg.max_queue - at;
	if (n > max)
		n = max;
	*first = &queue[at];
	return n;
}

void trace_queue_release(unsigned n)
{
	__atomic_store_n(&qhead, qhead + n, __ATOMIC_RELEASE);
}

unsigned trace_queue_len(void)
{
	return queue ? __atomic_load_n(&qtail, __ATOMIC_ACQUIRE) -
			       __atomic_load_n(&qhead, __ATOMIC_ACQUIRE) :
		       0;
}

void trace_queue_notify(void (*fn)(void *arg), void *arg)
{
	notify_fn = fn;
	notify_arg = arg;
}

/* ---- self-metrics ----------------------------------------------------- */

void trace_count_dropped(enum trace_drop why, unsigned n)
{
	__atomic_add_fetch(&dropped[why], n, __ATOMIC_RELAXED);
}

void trace_count_exported(unsigned n)
{
	__atomic_add_fetch(&exported, n, __ATOMIC_RELAXED);
}

static const char *const drop_names[TRACE_DROP_COUNT] = {
	[TRACE_DROP_QUEUE_FULL] = "queue_full",
	[TRACE_DROP_EXPORT] = "export_failed",
	[TRACE_DROP_RETRY_FULL] = "retry_queue_full",
	[TRACE_DROP_BEHIND] = "consumer_behind",
};

static void collect_exported(const struct self_metric *m,
			     struct self_sink *sink)
{
	(void)m;
	self_emit_u64(sink, NULL, __atomic_load_n(&exported, __ATOMIC_RELAXED));
}

static void collect_dropped(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	for (int i = 0; i < TRACE_DROP_COUNT; i++)
		self_emit_u64(sink, &drop_names[i],
			      __atomic_load_n(&dropped[i], __ATOMIC_RELAXED));
}

static const struct self_metric exported_metric = {
	.name = "sonde_spans_exported_total",
	.otel_name = "sonde.spans.exported",
	.unit = "{span}",
	.help = "Spans the trace collector accepted.",
	.kind = SELF_COUNTER,
	.collect = collect_exported,
};

static const struct self_metric dropped_metric = {
	.name = "sonde_spans_dropped_total",
	.otel_name = "sonde.spans.dropped",
	.unit = "{span}",
	.help = "Spans sampled but never exported, by reason: queue_full (the "
		"batch queue, OTEL_BSP_MAX_QUEUE_SIZE, was full), "
		"export_failed (the collector rejected their request; not "
		"retried), retry_queue_full (their request was given up "
		"while the collector could not be reached), consumer_behind "
		"(the event consumer was behind the kernel's rings: spans "
		"gave way to the records the metrics count).",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "reason" },
	.otel_labels = { "sonde.span.drop.reason" },
	.collect = collect_dropped,
};

void trace_register_metrics(void)
{
	self_register(&exported_metric);
	self_register(&dropped_metric);
}
