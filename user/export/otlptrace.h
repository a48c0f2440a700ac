/* OTLP/HTTP trace export: the spans trace/trace.h queues become
 * ExportTraceServiceRequests (opentelemetry-proto v1
 * collector/trace/v1/trace_service.proto, trace/v1/trace.proto) delivered
 * by a sender of export/otlpsend.h on a thread of its own, in batches, as
 * the batch span processor of the OpenTelemetry SDKs sends them: a batch
 * goes when max_batch spans wait or every schedule_delay ms, whichever
 * comes first. Memory stays bounded whatever the collector does: the
 * sender keeps a bounded queue of requests, and every span it gives up
 * is counted in sonde_spans_dropped_total. */
#ifndef SONDE_OTLPTRACE_H
#define SONDE_OTLPTRACE_H

#include "export/otlpsend.h"
#include "trace/span.h"
#include "trace/trace.h"
#include "util/pb.h"

/* Encodes spans[0..n) as one ExportTraceServiceRequest into out: one
 * ResourceSpans per service (in the order of the services' names), with
 * the resource the metrics give that service (otlp_resource), and one
 * ScopeSpans "sonde" holding that service's spans in their order. Spans
 * whose text does not hold their attributes lose those attributes. Out of
 * memory sets out->failed. */
void otlptrace_encode(struct pb_buf *out, const struct span *spans, unsigned n);

/* Starts exporting the spans of trace_queue_take to cfg->traces (cfg is
 * borrowed: keep it until otlptrace_stop) in batches timed by tcfg
 * (copied), and has trace_queue_notify wake the exporter when a batch is
 * ready. Does nothing, and returns 0, when cfg->traces.endpoint is NULL.
 * Returns 0, or -1 after logging. */
int otlptrace_start(const struct otlp_config *cfg,
		    const struct trace_config *tcfg);

/* Stops being woken, sends what the queue holds (bounded to a few
 * seconds), stops the thread and frees the exporter's state. Call after
 * the consumer thread stopped queueing spans, before trace_stop. Safe to
 * call when it was never started. */
void otlptrace_stop(void);

/* Registers the trace exporter's own metrics (metrics/self.h):
 * sonde_otlp_trace_exports_total{result} and
 * sonde_otlp_trace_export_duration_seconds, which have samples once
 * otlptrace_start has run. Once, at start-up, when traces are exported. */
void otlptrace_register_metrics(void);

#endif
