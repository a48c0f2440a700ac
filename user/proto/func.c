/* Calls of the functions named with --uprobe BINARY:SYMBOL (struct
 * sonde_func_event), timed in sonde_function_duration_seconds under
 * their symbol: the protocol proto_func. */
#include <string.h>

#include "kernel/uprobes.h"
#include "metrics/families.h"
#include "proto/proto.h"

static enum proto_next func_read(const void *rec, size_t size,
				 struct proto_record *r)
{
	const struct sonde_func_event *ev = rec;

	(void)size;
	/* A target this run does not have: nothing to file it under. */
	if (!uprobes_function_symbol(ev->func_id))
		return PROTO_NEXT_NOTHING;
	r->tgid = ev->hdr.tgid;
	r->comm = ev->comm;
	r->filter = PROTO_FILTER_NONE;
	/* The target alone decides the function label. */
	r->value = ev->duration_ns;
	memcpy(r->key, &ev->func_id, sizeof(ev->func_id));
	r->key_len = sizeof(ev->func_id);
	return PROTO_NEXT_OBSERVE;
}

static unsigned func_observe(const void *rec, size_t size,
			     const struct proto_record *r,
			     struct proto_obs *obs)
{
	const struct sonde_func_event *ev = rec;

	(void)size;
	(void)r;
	obs->family = &family_function_duration;
	obs->op = PROTO_OBSERVE;
	obs->value = ev->duration_ns;
	obs->nfixed = FUNCTION_NLABELS;
	obs->values[FUNCTION_NAME] = uprobes_function_symbol(ev->func_id);
	return 1;
}

/* The protocol of --uprobe calls, in dispatch.c's table. */
const struct proto proto_func = {
	.name = "func",
	.kind = SONDE_EV_FUNC_CALL,
	.min_size = sizeof(struct sonde_func_event),
	.read = func_read,
	.observe = func_observe,
};
