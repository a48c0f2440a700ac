#include <stdint.h>
#include <string.h>

#include "export/otlp.h"
#include "identity/labels.h"
#include "identity/procinfo.h"
#include "identity/selection.h"
#include "kernel/capture.h"
#include "kernel/uprobes.h"
#include "proto/dispatch.h"
#include "proto/events.h"
#include "proto/func.h"
#include "proto/http1.h"
#include "proto/http2.h"
#include "proto/tcp.h"
#include "sonde_events.h"

/* Every protocol, one entry each. */
static const struct proto *const protocols[] = {
	&proto_http1,
	&proto_http2,
	&proto_tcp,
	&proto_func,
};

#define NPROTOCOLS (sizeof(protocols) / sizeof(protocols[0]))

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
	otlp_note_process(info, r->tgid, comm);
	return info;
}

/* Files o, an observation of a process with info (NULL for a release),
 * in the registry, under its full label set: service_name, the
 * protocol's labels, the identity labels, the captured headers. */
static void file(const struct proto_obs *o, const struct procinfo *info)
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
		registry_observe(o->family, values, o->value);
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

static void dispatch(const struct proto *p, const void *rec, size_t size)
{
	struct proto_obs obs[PROTO_MAX_OBS];
	const struct procinfo *info = NULL;
	struct proto_record r;
	unsigned n;

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
	}
	for (unsigned i = 0; i < PROTO_MAX_OBS; i++) {
		obs[i].error = false;
		obs[i].nextra = 0;
	}
	n = p->observe(rec, size, &r, obs);
	for (unsigned i = 0; i < n && i < PROTO_MAX_OBS; i++)
		file(&obs[i], info);
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
		/* A new image: what follows is the new program's. */
		uprobes_note_exec(hdr->tgid);
		procinfo_forget(hdr->tgid);
		return true;
	case SONDE_EV_PROCESS_EXIT:
		if (nexits == EXITS_MAX)
			dispatch_end_round();
		exits[nexits++] = hdr->tgid;
		return true;
	case SONDE_EV_PROCESS_SEEN:
		if (size < sizeof(struct sonde_process_event))
			events_count_parse_error(PARSE_ERROR_RECORD);
		else
			decide((const struct sonde_process_event *)hdr);
		return true;
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
	return 0;
}

void dispatch_end_round(void)
{
	for (unsigned i = 0; i < nexits; i++)
		procinfo_forget(exits[i]);
	nexits = 0;
}

void dispatch_sweep(proto_open_fn open)
{
	for (size_t i = 0; i < NPROTOCOLS; i++)
		if (protocols[i]->sweep)
			protocols[i]->sweep(open);
}

void dispatch_clear(void)
{
	for (size_t i = 0; i < NPROTOCOLS; i++)
		if (protocols[i]->clear)
			protocols[i]->clear();
}
