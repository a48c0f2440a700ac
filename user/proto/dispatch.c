#include <stdint.h>
#include <string.h>

#include "identity/labels.h"
#include "identity/lastseen.h"
#include "identity/procinfo.h"
#include "identity/selection.h"
#include "kernel/capture.h"
#include "kernel/uprobes.h"
#include "proto/dispatch.h"
#include "proto/events.h"
#include "sonde_events.h"
#include "trace/trace.h"
#include "util/clock.h"
#include "util/strmap.h"

/* Every protocol, one entry each: each is defined in its own file,
 * proto/<name>.c. */
extern const struct proto proto_http1, proto_http2, proto_tcp, proto_func,
	proto_db, proto_db_call;

/* The calls the BPF side summed: read from its map (kernel/dbsums.h),
 * never from a ring, so not in the table. */
extern const struct proto proto_db_sums;

static const struct proto *const protocols[] = {
	&proto_http1, &proto_http2, &proto_tcp,
	&proto_func,  &proto_db,    &proto_db_call,
};

#define NPROTOCOLS (sizeof(protocols) / sizeof(protocols[0]))

/* Series found for records' labels before, by what decides those labels
 * (struct proto_record's key, with the protocol and the process entry):
 * a record like one seen before goes straight to its series, without
 * its labels being worked out and looked up again. Direct-mapped, a new
 * key takes its slot; 1024 slots of 176 bytes. */
#define CACHE_SLOTS 1024

struct cache_entry {
	uint64_t hash;
	uint64_t serial; /* of the process's procinfo entry */
	const struct proto *proto;
	struct registry_ref ref;
	uint16_t key_len;
	uint8_t key[PROTO_KEY_MAX];
};

static struct cache_entry cache[CACHE_SLOTS];

/* Processes that exited during this round of reading. An exit comes on
 * the shared ring, the process's last exchanges and calls on the per-CPU
 * rings, which are read after it: what is known of the process must
 * outlive the round, or those would be named afresh from a /proc entry
 * that is gone (its comm, without its environment's identity). */
#define EXITS_MAX 1024
static uint32_t exits[EXITS_MAX];
static unsigned nexits;

static const struct proto *protocol_of(uint16_t kind)
{
	for (size_t i = 0; i < NPROTOCOLS; i++)
		if (protocols[i]->kind == kind)
			return protocols[i];
	return NULL;
}

/* Whether the selection traces r, from a process with info. The kernel
 * filters by verdict; this catches a process's first records while the
 * daemon was still deciding on it. */
static bool traced(const struct procinfo *info, const struct proto_record *r)
{
	switch (r->filter) {
	case PROTO_FILTER_CONN:
		return selection_conn_traced(info->verdict, r->port);
	case PROTO_FILTER_PROCESS:
		return info->verdict != SONDE_VERDICT_IGNORE;
	default:
		return true;
	}
}

/* The process that made r, or NULL when the selection leaves r out. */
static const struct procinfo *record_process(const struct proto_record *r)
{
	const struct procinfo *info;
	char comm[SONDE_COMM_LEN + 1];

	memcpy(comm, r->comm, SONDE_COMM_LEN);
	comm[SONDE_COMM_LEN] = '\0';
	info = procinfo_get(r->tgid, comm);
	if (!traced(info, r))
		return NULL;
	lastseen_note(info, r->tgid, comm);
	return info;
}

/* Picks r's slot. A key is compared whole before its entry is used, so
 * this need only spread keys over the slots: each 8-byte word is mixed
 * with its place on its own (the multiplies overlap), not in a chain;
 * the last word's bytes past the key are masked off (the key's room is
 * a multiple of 8 bytes). */
static uint64_t cache_hash(const struct proto *p, const struct procinfo *info,
			   const struct proto_record *r)
{
	uint64_t h = (uint64_t)(uintptr_t)p ^
		     info->serial * 0x9e3779b97f4a7c15ULL ^ r->key_len,
		 w;
	size_t i;

	for (i = 0; i + 8 <= r->key_len; i += 8) {
		memcpy(&w, r->key + i, sizeof(w));
		h += (w ^ i) * 0xff51afd7ed558ccdULL;
	}
	if (i < r->key_len) {
		memcpy(&w, r->key + i, sizeof(w));
		w &= ~0ULL >> 8 * (8 - (r->key_len - i));
		h += (w ^ i) * 0xc4ceb9fe1a85ec53ULL;
	}
	return strmap_hash_finish(h);
}

static struct cache_entry *cache_slot(uint64_t hash)
{
	return &cache[hash & (CACHE_SLOTS - 1)];
}

/* Files r's duration (or merge) in the series a record with its key
 * found before, when one did and the series is still there. */
static bool cache_observe(const struct proto *p, const struct procinfo *info,
			  const struct proto_record *r, uint64_t hash)
{
	const struct cache_entry *e = cache_slot(hash);

	return e->hash == hash && e->serial == info->serial && e->proto == p &&
	       e->key_len == r->key_len &&
	       memcmp(e->key, r->key, r->key_len) == 0 &&
	       (r->merge ? registry_merge_at(&e->ref, r->merge) :
			   registry_observe_at(&e->ref, r->value)) == 0;
}

static void cache_put(const struct proto *p, const struct procinfo *info,
		      const struct proto_record *r, uint64_t hash,
		      const struct registry_ref *ref)
{
	struct cache_entry *e = cache_slot(hash);

	if (!ref->series)
		return;
	e->hash = hash;
	e->serial = info->serial;
	e->proto = p;
	e->ref = *ref;
	e->key_len = r->key_len;
	memcpy(e->key, r->key, r->key_len);
}

/* The span of o, an observation of process tgid with info, when it has
 * one: under the protocol's own labels only (captured header values never
 * enter a span). */
static void make_span(const struct proto_obs *o, uint32_t tgid,
		      const struct procinfo *info)
{
	const char *values[REGISTRY_MAX_LABELS];

	if (!o->span.start_ns)
		return;
	values[0] = info->service;
	memcpy(values + 1, o->values + 1, (o->nfixed - 1) * sizeof(*values));
	trace_observe(o->family, values, o->nfixed, o->error, tgid, &o->span);
}

/* Files o, an observation of process tgid with info (NULL for a
 * release), in the registry, under its full label set: service_name, the
 * protocol's labels, the identity labels, the captured headers; and
 * makes its span, when it has one. ref, when not NULL, receives an
 * observation's series. */
static void file(const struct proto_obs *o, uint32_t tgid,
		 const struct procinfo *info, struct registry_ref *ref)
{
	const char *values[REGISTRY_MAX_LABELS];
	unsigned n;

	if (o->op == PROTO_RELEASE) {
		registry_gauge_release(o->value);
		return;
	}
	if (!info)
		return;
	values[0] = info->service;
	memcpy(values + 1, o->values + 1, (o->nfixed - 1) * sizeof(*values));
	n = o->nfixed + labels_fill_optional(info, values + o->nfixed);
	memcpy(values + n, o->extra, o->nextra * sizeof(*values));
	switch (o->op) {
	case PROTO_OBSERVE:
		registry_observe_ref(o->family, values, o->value, ref);
		make_span(o, tgid, info);
		break;
	case PROTO_MERGE:
		registry_merge_ref(o->family, values, o->merge, ref);
		break;
	case PROTO_ADD:
		registry_add(o->family, values, o->value);
		break;
	case PROTO_HOLD:
		registry_gauge_hold(o->family, values, o->value);
		break;
	case PROTO_RELEASE:
		break;
	}
}

/* The observations of r, which the cache did not have, each filed; the
 * series of one that a key names is kept for the next record like it. */
static void observe(const struct proto *p, const void *rec, size_t size,
		    const struct proto_record *r, const struct procinfo *info,
		    uint64_t hash)
{
	struct proto_obs obs[PROTO_MAX_OBS];
	struct registry_ref ref = { 0 };
	unsigned n;

	bool spans = trace_enabled();

	for (unsigned i = 0; i < PROTO_MAX_OBS; i++) {
		obs[i].error = false;
		obs[i].nextra = 0;
		obs[i].span = (struct trace_exchange){ .want = spans };
	}
	n = p->observe(rec, size, r, obs);
	if (r->key_len && n == 1 &&
	    obs[0].op == (r->merge ? PROTO_MERGE : PROTO_OBSERVE)) {
		/* With spans on, the labels were worked out for the span: the
		 * cache still spares the series' lookup. */
		if (spans && cache_observe(p, info, r, hash)) {
			make_span(&obs[0], r->tgid, info);
			return;
		}
		file(&obs[0], r->tgid, info, &ref);
		cache_put(p, info, r, hash, &ref);
		return;
	}
	for (unsigned i = 0; i < n && i < PROTO_MAX_OBS; i++)
		file(&obs[i], r->tgid, info, NULL);
}

static void dispatch(const struct proto *p, const void *rec, size_t size)
{
	const struct procinfo *info = NULL;
	struct proto_record r;
	uint64_t hash = 0;

	r.key_len = 0;
	r.merge = NULL;
	switch (p->read(rec, size, &r)) {
	case PROTO_NEXT_OBSERVE:
		break;
	case PROTO_NEXT_NOTHING:
		return;
	case PROTO_NEXT_ERROR:
		events_count_parse_error(r.error);
		return;
	case PROTO_NEXT_TRACED_ERROR:
		if (record_process(&r))
			events_count_parse_error(r.error);
		return;
	}
	if (r.filter != PROTO_NO_PROCESS) {
		info = record_process(&r);
		if (!info)
			return;
	} else {
		r.key_len = 0;
	}
	if (r.key_len) {
		hash = cache_hash(p, info, &r);
		/* A record the cache files makes no span: with spans on,
		 * each is observed (observe() uses the cache for its series). */
		if (!trace_enabled() && cache_observe(p, info, &r, hash))
			return;
	}
	observe(p, rec, size, &r, info, hash);
}

/* Whether process tgid exited this round (arg: unused). */
static bool exited(uint32_t tgid, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < nexits; i++)
		if (exits[i] == tgid)
			return true;
	return false;
}

/* What a key's sums grew by: observed as its calls' records would have
 * been. No record came: none is counted received. */
static void file_sums(const struct sonde_db_sums_event *ev, void *arg)
{
	(void)arg;
	dispatch(&proto_db_sums, ev, sizeof(*ev));
}

/* The calls the BPF side summed, when their time has come, or now when
 * the process they may be of is about to be forgotten. */
static void read_sums(bool now)
{
	capture_read_db_sums(now && capture_db_sums_kept(), file_sums, exited,
			     NULL);
}

/* The processes whose exit came since the last call are forgotten,
 * after their last summed calls are filed under what is known of them. */
static void forget_exits(void)
{
	read_sums(nexits > 0);
	for (unsigned i = 0; i < nexits; i++)
		procinfo_forget(exits[i]);
	nexits = 0;
}

/* A process the kernel has no verdict for (new, or a new image): look at
 * it afresh and tell the kernel. */
static void decide(const struct sonde_process_event *ev)
{
	char comm[SONDE_COMM_LEN + 1];

	memcpy(comm, ev->comm, SONDE_COMM_LEN);
	comm[SONDE_COMM_LEN] = '\0';
	procinfo_forget(ev->hdr.tgid);
	capture_set_verdict(ev->hdr.tgid,
			    procinfo_get(ev->hdr.tgid, comm)->verdict);
}

/* Records about processes rather than traffic: their identity's. False
 * for a kind that is none of them. */
static bool process_record(const struct sonde_event_header *hdr, size_t size)
{
	switch (hdr->kind) {
	case SONDE_EV_PROCESS_EXEC:
		/* A new image: what follows is the new program's, and what
		 * the old one's calls summed is filed as its. */
		uprobes_note_exec(hdr->tgid);
		read_sums(true);
		procinfo_forget(hdr->tgid);
		return true;
	case SONDE_EV_PROCESS_EXIT:
		if (nexits == EXITS_MAX)
			forget_exits();
		exits[nexits++] = hdr->tgid;
		return true;
	case SONDE_EV_PROCESS_SEEN:
		if (size < sizeof(struct sonde_process_event))
			events_count_parse_error(PARSE_ERROR_RECORD);
		else
			decide((const struct sonde_process_event *)hdr);
		return true;
	case SONDE_EV_TRACE_INJECT: {
		const struct sonde_trace_inject_event *ev = (const void *)hdr;

		if (size < sizeof(*ev))
			events_count_parse_error(PARSE_ERROR_RECORD);
		else
			trace_note_injected(hdr->tgid, ev->sport, ev->dport,
					    hdr->ts_ns, ev->trace_id,
					    ev->span_id);
		return true;
	}
	}
	return false;
}

int dispatch_record(void *ctx, void *data, size_t size)
{
	const struct sonde_event_header *hdr = data;
	const struct proto *p;

	(void)ctx;
	events_count_received();
	if (size < sizeof(*hdr)) {
		events_count_parse_error(PARSE_ERROR_RECORD);
		return 0;
	}
	if (process_record(hdr, size))
		return 0;
	p = protocol_of(hdr->kind);
	if (!p || size < p->min_size) {
		events_count_parse_error(PARSE_ERROR_RECORD);
		return 0;
	}
	dispatch(p, data, size);
	if (p->ready)
		while ((data = (void *)p->ready(&size)) != NULL)
			dispatch(p, data, size);
	return 0;
}

void dispatch_end_round(void)
{
	enum parse_error why;

	for (size_t i = 0; i < NPROTOCOLS; i++) {
		const struct proto *p = protocols[i];
		const void *rec;
		size_t size;

		if (!p->end_round)
			continue;
		for (unsigned n = p->end_round(&why); n; n--)
			events_count_parse_error(why);
		/* What the round's end finished (records it stopped
		 * waiting for) is observed now. */
		if (p->ready)
			while ((rec = p->ready(&size)) != NULL)
				dispatch(p, rec, size);
	}
	trace_end_round(clock_monotonic_ns());
	forget_exits();
	registry_flush();
}

void dispatch_sweep(proto_open_fn open)
{
	for (size_t i = 0; i < NPROTOCOLS; i++)
		if (protocols[i]->sweep)
			protocols[i]->sweep(open);
}

void dispatch_clear(void)
{
	memset(cache, 0, sizeof(cache));
	for (size_t i = 0; i < NPROTOCOLS; i++)
		if (protocols[i]->clear)
			protocols[i]->clear();
}
