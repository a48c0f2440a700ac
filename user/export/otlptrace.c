#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/otlptrace.h"
#include "util/clock.h"
#include "util/log.h"

/* Field numbers from opentelemetry-proto v1
 * (opentelemetry/proto/{collector/trace,trace}/v1). */
enum {
	REQ_RESOURCE_SPANS = 1,
	RS_RESOURCE = 1,
	RS_SCOPE_SPANS = 2,
	SS_SCOPE = 1,
	SS_SPANS = 2,
	SPAN_TRACE_ID = 1,
	SPAN_SPAN_ID = 2,
	SPAN_TRACE_STATE = 3,
	SPAN_PARENT_SPAN_ID = 4,
	SPAN_NAME = 5,
	SPAN_KIND = 6,
	SPAN_START_TIME = 7, /* fixed64 */
	SPAN_END_TIME = 8,   /* fixed64 */
	SPAN_ATTRIBUTES = 9,
	SPAN_STATUS = 15,
	STATUS_CODE = 3,
};

enum { STATUS_CODE_ERROR = 2 };

#define DEFAULT_SCHEDULE_DELAY_MS 5000
#define DEFAULT_MAX_BATCH 512

/* ---- encoding --------------------------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A span is written whole into a buffer on the stack, then appended in
 * one copy: the sizes of its nested messages (attributes, their values,
 * the status) are worked out first, so nothing is moved after. The
 * fields are all numbered below 16: each key is one byte. */
#define KEY(field, wire) ((uint8_t)((field) << 3 | (wire)))
#define WIRE_VARINT 0
#define WIRE_I64 1
#define WIRE_LEN 2
/* common.proto: KeyValue.key 1, .value 2; AnyValue.string_value 1,
 * .int_value 3. */
enum { KV_KEY = 1, KV_VALUE = 2, ANY_STRING = 1, ANY_INT = 3 };
/* Room for the largest span: its fixed fields, a name, a trace state,
 * and SPAN_ATTRS_MAX attributes whose values fill text[]. */
#define SPAN_BYTES_MAX 2048

/* Bytes a length-delimited field of n bytes takes (one-byte key). */
static size_t len_field(size_t n)
{
	return 1 + pb_varint_size(n) + n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_len(uint8_t *p, uint8_t key, const void *data, size_t n)
{
	*p++ = key;
	p = put_varint(p, n);
	memcpy(p, data, n);
	return p + n;
}

static uint8_t *put_fixed64(uint8_t *p, uint8_t key, uint64_t v)
{
	*p++ = key;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* An attribute's value, whether it can be written: a string's bytes
 * must lie in the span's text. */
static bool attr_ok(const struct span *s, const struct span_attr *a)
{
	size_t text_len =
		s->text_len < SPAN_TEXT_MAX ? s->text_len : SPAN_TEXT_MAX;

	return a->key && (a->is_int || (size_t)a->off + a->len <= text_len);
}

/* The AnyValue's size, and the KeyValue's. */
static size_t any_size(const struct span_attr *a)
{
	return a->is_int ? 1 + pb_varint_size((uint64_t)a->ival) :
			   len_field(a->len);
}

static size_t kv_size(const struct span_attr *a)
{
	return len_field(strlen(a->key)) + len_field(any_size(a));
}

static uint8_t *put_attr(uint8_t *p, const struct span *s,
			 const struct span_attr *a)
{
	size_t klen = strlen(a->key);

	*p++ = KEY(SPAN_ATTRIBUTES, WIRE_LEN);
	p = put_varint(p, len_field(klen) + len_field(any_size(a)));
	p = put_len(p, KEY(KV_KEY, WIRE_LEN), a->key, klen);
	*p++ = KEY(KV_VALUE, WIRE_LEN);
	p = put_varint(p, any_size(a));
	if (a->is_int) {
		*p++ = KEY(ANY_INT, WIRE_VARINT);
		return put_varint(p, (uint64_t)a->ival);
	}
	return put_len(p, KEY(ANY_STRING, WIRE_LEN), s->text + a->off, a->len);
}

static void encode_span(struct pb_buf *b, const struct span *s)
{
	uint8_t buf[SPAN_BYTES_MAX], *p = buf;
	unsigned n = s->nattrs < SPAN_ATTRS_MAX ? s->nattrs : SPAN_ATTRS_MAX;
	bool parent = !all_zero(s->parent_id, sizeof(s->parent_id));
	size_t body = len_field(16) + len_field(8) + len_field(s->name_len) +
		      2 + 9 + 9;

	if (s->state_len)
		body += len_field(s->state_len);
	if (parent)
		body += len_field(8);
	for (unsigned i = 0; i < n; i++)
		if (attr_ok(s, &s->attrs[i]))
			body += len_field(kv_size(&s->attrs[i]));
	/* Status UNSET unless an error: OK is for the application to say.
	 * Status { code = 3 (ERROR: 2) }: four bytes with its key. */
	if (s->error)
		body += 4;
	if (body + 8 > sizeof(buf)) /* no span built by span.c is this big */
		return;
	*p++ = KEY(SS_SPANS, WIRE_LEN);
	p = put_varint(p, body);
	p = put_len(p, KEY(SPAN_TRACE_ID, WIRE_LEN), s->trace_id, 16);
	p = put_len(p, KEY(SPAN_SPAN_ID, WIRE_LEN), s->span_id, 8);
	if (s->state_len)
		p = put_len(p, KEY(SPAN_TRACE_STATE, WIRE_LEN),
			    span_trace_state(s), s->state_len);
	/* A root span has no parent_span_id at all, not eight zeros. */
	if (parent)
		p = put_len(p, KEY(SPAN_PARENT_SPAN_ID, WIRE_LEN), s->parent_id,
			    8);
	p = put_len(p, KEY(SPAN_NAME, WIRE_LEN), span_name(s), s->name_len);
	*p++ = KEY(SPAN_KIND, WIRE_VARINT);
	*p++ = s->kind;
	p = put_fixed64(p, KEY(SPAN_START_TIME, WIRE_I64), s->start_unix_ns);
	p = put_fixed64(p, KEY(SPAN_END_TIME, WIRE_I64), s->end_unix_ns);
	for (unsigned i = 0; i < n; i++)
		if (attr_ok(s, &s->attrs[i]))
			p = put_attr(p, s, &s->attrs[i]);
	if (s->error) {
		*p++ = KEY(SPAN_STATUS, WIRE_LEN);
		*p++ = 2;
		*p++ = KEY(STATUS_CODE, WIRE_VARINT);
		*p++ = STATUS_CODE_ERROR;
	}
	pb_raw(b, buf, (size_t)(p - buf));
}

/* Each service's encoded resource, kept for RESOURCE_TTL_NS: building
 * one reads /proc (lastseen_get), and a busy host sends batches many
 * times a second. Encoder's thread only. */
#define RESOURCES_MAX 64
#define RESOURCE_TTL_NS (10 * 1000000000ull)

struct resource {
	char service[SPAN_SERVICE_MAX + 1];
	uint64_t made_ns;
	struct pb_buf bytes;
};

static struct resource resources[RESOURCES_MAX];
static unsigned resources_next;

static void put_resource(struct pb_buf *out, const char *service)
{
	uint64_t now = clock_monotonic_ns();
	struct resource *r = NULL;

	for (unsigned i = 0; i < RESOURCES_MAX && !r; i++)
		if (resources[i].made_ns &&
		    strcmp(resources[i].service, service) == 0)
			r = &resources[i];
	if (!r) {
		r = &resources[resources_next];
		resources_next = (resources_next + 1) % RESOURCES_MAX;
		r->made_ns = 0;
		snprintf(r->service, sizeof(r->service), "%.*s",
			 SPAN_SERVICE_MAX, service);
	}
	if (!r->made_ns || now - r->made_ns > RESOURCE_TTL_NS) {
		r->bytes.len = 0;
		r->bytes.failed = false;
		otlp_resource(&r->bytes, RS_RESOURCE, service);
		r->made_ns = r->bytes.failed ? 0 : now;
	}
	if (r->made_ns)
		pb_raw(out, r->bytes.data, r->bytes.len);
	else
		otlp_resource(out, RS_RESOURCE, service);
}

static void forget_resources(void)
{
	for (unsigned i = 0; i < RESOURCES_MAX; i++) {
		pb_release(&resources[i].bytes);
		resources[i].made_ns = 0;
	}
}

/* Services one request's spans come from, each a ResourceSpans: a
 * batch of a busy host has a handful. Past SERVICES_MAX the spans of the
 * services beyond go in the next pass. */
#define SERVICES_MAX 32

/* Which of the services in svc[0..*nsvc) s is from, added when new;
 * -1 when there is no room. The previous span's service is tried first:
 * spans come in runs. */
static int service_of(const struct span *s, const struct span **svc,
		      unsigned *nsvc, int last)
{
	const char *name = span_service(s);

	if (last >= 0 && svc[last]->service_len == s->service_len &&
	    memcmp(span_service(svc[last]), name, s->service_len) == 0)
		return last;
	for (unsigned k = 0; k < *nsvc; k++)
		if (svc[k]->service_len == s->service_len &&
		    memcmp(span_service(svc[k]), name, s->service_len) == 0)
			return (int)k;
	if (*nsvc == SERVICES_MAX)
		return -1;
	svc[*nsvc] = s;
	return (int)(*nsvc)++;
}

void otlptrace_encode(struct pb_buf *out, const struct span *spans, unsigned n)
{
	const struct span *svc[SERVICES_MAX];
	uint8_t *of = malloc(n + 1); /* each span's service; 0xff: later */
	unsigned done = 0;

	if (!of) {
		out->failed = true;
		return;
	}
	memset(of, 0xff, n);
	/* Usually one pass: more only when a batch has more services than
	 * SERVICES_MAX. */
	while (done < n) {
		unsigned nsvc = 0;
		int last = -1;

		for (unsigned i = 0; i < n; i++) {
			int k;

			if (of[i] == 0xfe)
				continue;
			k = service_of(&spans[i], svc, &nsvc, last);
			of[i] = k < 0 ? 0xff : (uint8_t)k;
			if (k >= 0)
				last = k;
		}
		for (unsigned k = 0; k < nsvc; k++) {
			size_t rs = pb_begin(out, REQ_RESOURCE_SPANS), ss;

			/* The span's own pid does not replace process.pid:
			 * the resource is the service's, as in its metrics,
			 * whichever of its processes made the span. */
			put_resource(out, span_service(svc[k]));
			ss = pb_begin(out, RS_SCOPE_SPANS);
			otlp_scope(out, SS_SCOPE);
			for (unsigned i = 0; i < n; i++)
				if (of[i] == k) {
					encode_span(out, &spans[i]);
					of[i] = 0xfe; /* encoded */
					done++;
				}
			pb_end(out, ss);
			pb_end(out, rs);
		}
	}
	free(of);
}

/* ---- the exporter ----------------------------------------------------- */

static struct otlp_stats stats = {
	.exports = {
		.name = "sonde_otlp_trace_exports_total",
		.otel_name = "sonde.otlp.trace.exports",
		.help = "OTLP trace export attempts by result: success, "
			"partial (the collector rejected some spans; not "
			"retried), retried (429/502/503/504 or a transport "
			"error; sent again later), failed (rejected; not "
			"retried), dropped (requests given up on a full "
			"queue). Spans lost either way count in "
			"sonde_spans_dropped_total.",
	},
	.durations = {
		.name = "sonde_otlp_trace_export_duration_seconds",
		.otel_name = "sonde.otlp.trace.export.duration",
		.help = "Time one OTLP trace export attempt took, response "
			"included.",
	},
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static struct otlp_sender *sender;
static struct trace_config tcfg;


/* One batch off the trace queue. While running, again when a full batch
 * waits already; at the end, until the queue is empty. */
static unsigned collect(void *arg, struct pb_buf *out, bool last, bool *again)
{
	const struct span *first;
	unsigned n = trace_queue_peek(&first, tcfg.max_batch);

	(void)arg;
	/* Encoded where they wait: the queue has room for the consumer
	 * meanwhile, and none of these is overwritten before the release. */
	if (n) {
		otlptrace_encode(out, first, n);
		trace_queue_release(n);
	}
	*again = last ? n && trace_queue_len() > 0 :
			trace_queue_len() >= tcfg.max_batch;
	return n;
}

/* Counts a request's spans as exported or dropped. */
static void done(void *arg, unsigned items, enum otlp_result result,
		 int64_t rejected)
{
	unsigned lost;

	(void)arg;
	switch (result) {
	case OTLP_RESULT_SUCCESS:
	case OTLP_RESULT_PARTIAL:
		lost = rejected <= 0		  ? 0 :
		       rejected >= (int64_t)items ? items :
						    (unsigned)rejected;
		trace_count_exported(items - lost);
		if (lost)
			trace_count_dropped(TRACE_DROP_EXPORT, lost);
		break;
	case OTLP_RESULT_FAILED:
		trace_count_dropped(TRACE_DROP_EXPORT, items);
		break;
	case OTLP_RESULT_DROPPED:
		trace_count_dropped(TRACE_DROP_RETRY_FULL, items);
		break;
	default:
		break;
	}
}

/* trace_queue_notify's callback: a batch is ready. Consumer thread. */
static void batch_ready(void *arg)
{
	otlp_sender_wake(arg);
}

int otlptrace_start(const struct otlp_config *cfg,
		    const struct trace_config *tc)
{
	struct otlp_sender_ops ops = {
		.name = "otlp traces",
		.what = "spans",
		.collect = collect,
		.done = done,
		.stats = &stats,
	};

	if (!cfg->traces.endpoint)
		return 0;
	tcfg = *tc;
	if (!tcfg.max_batch)
		tcfg.max_batch = DEFAULT_MAX_BATCH;
	if (!tcfg.schedule_delay_ms)
		tcfg.schedule_delay_ms = DEFAULT_SCHEDULE_DELAY_MS;
	ops.interval_ms = tcfg.schedule_delay_ms;
	sender = otlp_sender_start(&cfg->traces, &ops);
	if (!sender)
		return -1;
	trace_queue_notify(batch_ready, sender);
	log_info("exporting traces over OTLP to %s in batches of up to %u "
		 "spans, at least every %u ms%s",
		 cfg->traces.endpoint, tcfg.max_batch, tcfg.schedule_delay_ms,
		 cfg->traces.gzip ? " (gzip)" : "");
	return 0;
}

void otlptrace_stop(void)
{
	if (!sender)
		return;
	trace_queue_notify(NULL, NULL);
	otlp_sender_stop(sender);
	sender = NULL;
	forget_resources();
}

void otlptrace_register_metrics(void)
{
	otlp_stats_register(&stats);
}
