/* Spans: one per HTTP request and gRPC call served (SERVER) or made, and
 * per database call made (CLIENT), from the observations the dispatcher
 * files. trace.c gives each its W3C trace context (the request's own
 * traceparent, or a new trace), links the calls a thread makes while it
 * serves a request under that request's span, applies the sampler and
 * puts the spans it keeps on a bounded queue that the OTLP trace exporter
 * (export/otlptrace.c) empties in batches, as the batch span processor
 * of the OpenTelemetry SDKs does.
 *
 * Configuration comes from the SDK environment variables:
 * OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_SCHEDULE_DELAY,
 * OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE.
 *
 * trace_observe and trace_end_round: consumer thread only. The queue
 * functions: any thread. */
#ifndef SONDE_TRACE_H
#define SONDE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/registry.h"
#include "trace/span.h"

enum trace_sampler {
	TRACE_SAMPLER_ALWAYS_ON,
	TRACE_SAMPLER_ALWAYS_OFF,
	TRACE_SAMPLER_RATIO,
	TRACE_SAMPLER_PARENT_ALWAYS_ON, /* the default */
	TRACE_SAMPLER_PARENT_ALWAYS_OFF,
	TRACE_SAMPLER_PARENT_RATIO,
};

struct trace_config {
	enum trace_sampler sampler;
	double ratio;		    /* RATIO samplers: 0 to 1 */
	unsigned schedule_delay_ms; /* OTEL_BSP_SCHEDULE_DELAY: 5000 */
	unsigned max_queue;	    /* OTEL_BSP_MAX_QUEUE_SIZE: 2048 */
	unsigned max_batch; /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 512 */
};

/* Why a span was lost: sonde_spans_dropped_total's reason label. */
enum trace_drop {
	TRACE_DROP_QUEUE_FULL, /* the batch queue was full */
	TRACE_DROP_EXPORT,     /* the collector rejected its request */
	TRACE_DROP_RETRY_FULL, /* its request was given up while retrying */
	TRACE_DROP_BEHIND,     /* the event consumer was behind the rings */
	TRACE_DROP_COUNT,
};

/* What a protocol says of an exchange beyond its labels, for its span.
 * Pointers are the protocol's, valid during the call. */
struct trace_exchange {
	bool want;		   /* set by the dispatcher: traces are on */
	uint64_t start_ns, end_ns; /* kernel (monotonic) clock; 0: no span */
	uint32_t tid;		   /* the thread that served or made it; 0 */
	uint32_t fd;		   /* its connection's, in its process */
	uint16_t sport, dport;	   /* local and peer port */
	/* The request's traceparent and tracestate field values; NULL
	 * when it has none (within the capture). */
	const char *traceparent, *tracestate;
	size_t traceparent_len, tracestate_len;
	/* url.path: the request-target's path, its query left out; NULL
	 * for none. */
	const char *path;
	size_t path_len;
};

/* Reads the OTEL_TRACES_SAMPLER* and OTEL_BSP_* variables into cfg.
 * Returns 0, or -1 with a one-line reason naming the variable in err. */
int trace_config_load(struct trace_config *cfg, char *err, size_t errsz);

/* Turns span making on with cfg (copied). Until then the dispatcher makes
 * no spans and pays nothing for them. */
void trace_start(const struct trace_config *cfg);
bool trace_enabled(void);
/* Turns it off and frees the queue. */
void trace_stop(void);

/* A span for an observation of family f (f->span_kind not 0) with its
 * own label values values[0..n) (values[0] the service), failed or not,
 * made by process tgid, with what x says. Its context and parent are
 * settled, and it is sampled, at the end of the round (trace_end_round):
 * by then the calls the same thread made while serving it have come in.
 * Consumer thread. */
void trace_observe(const struct metric_family *f, const char *const *values,
		   unsigned n, bool error, uint32_t tgid,
		   const struct trace_exchange *x);

/* After each round of reading the rings, at monotonic time now_ns:
 * settles the spans that came in and queues those sampled. Consumer
 * thread. */
void trace_end_round(uint64_t now_ns);

/* Parses a W3C traceparent value (version 00, or a later one read as
 * 00): trace id, parent id and whether the sampled flag is set. Returns
 * 0, or -1 when it is malformed or names an all-zero id. */
int trace_parse_traceparent(const char *v, size_t len, uint8_t trace_id[16],
			    uint8_t parent_id[8], bool *sampled);

/* Whether the ratio sampler keeps a trace: its id's last 8 bytes, read
 * as a big-endian number, below ratio * 2^64. */
bool trace_ratio_keeps(const uint8_t trace_id[16], double ratio);

/* The oldest spans waiting, up to max of them, where they are: *first
 * points at them, unchanged until trace_queue_release. Returns how many:
 * those before the queue's end wraps round (call again for the rest).
 * One thread only (the exporter's). */
unsigned trace_queue_peek(const struct span **first, unsigned max);
/* The n oldest spans (at most what trace_queue_peek gave) leave the
 * queue. */
void trace_queue_release(unsigned n);
/* Spans waiting on the queue. */
unsigned trace_queue_len(void);
/* fn(arg) is called (on the consumer thread) each time the queue reaches
 * a batch's size, to wake the exporter. */
void trace_queue_notify(void (*fn)(void *arg), void *arg);

/* While on (the event consumer is behind the kernel's rings), no span
 * is made: each is counted lost (TRACE_DROP_BEHIND), and the time goes to
 * the records the metrics count. Consumer thread. */
void trace_shed(bool on);

/* Counts n spans lost for why. Any thread. */
void trace_count_dropped(enum trace_drop why, unsigned n);
/* Counts n spans the collector took. Any thread. */
void trace_count_exported(unsigned n);

/* --trace-propagation: a request span with no traceparent of its own
 * (a root) takes the trace id sonde_derived_trace_id (sonde_events.h)
 * gives it with this key, the one the kernel also uses for the calls its
 * thread makes while serving it; not a random one. Consumer thread,
 * after trace_start. */
void trace_derive_ids(uint64_t k0, uint64_t k1);

/* --trace-propagation: the kernel added a traceparent naming trace_id
 * and span_id to a request that process tgid sent at ts_ns (monotonic)
 * from local port sport to peer port dport. The CLIENT span of that
 * request takes these ids, so the server's span becomes its child.
 * Consumer thread. */
void trace_note_injected(uint32_t tgid, uint16_t sport, uint16_t dport,
			 uint64_t ts_ns, const uint8_t trace_id[16],
			 const uint8_t span_id[8]);

/* Registers sonde_spans_exported_total and sonde_spans_dropped_total
 * (metrics/self.h). Once, at start-up, when traces are on. */
void trace_register_metrics(void);

#endif
