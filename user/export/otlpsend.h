/* What the OTLP/HTTP exporters of metrics (otlp.c) and traces
 * (otlptrace.c) share: their configuration from the SDK environment
 * variables (https://opentelemetry.io/docs/specs/otel/protocol/exporter/)
 * and --otlp-endpoint, the resource and scope every request carries, and
 * the sender that delivers requests by the rules of
 * https://opentelemetry.io/docs/specs/otlp/#otlphttp: protobuf, optionally
 * gzip, POSTed with libcurl on a thread of its own; 429, 502, 503, 504 and
 * connection failures retried with exponential backoff and jitter
 * (Retry-After honoured), any other error not; a partial success logged
 * and not retried. Each exporter owns one sender, which asks it for the
 * next request body through a callback. Memory stays bounded whatever the
 * collector does: a sender keeps at most a bounded queue of requests and
 * says which it gives up. */
#ifndef SONDE_OTLPSEND_H
#define SONDE_OTLPSEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/histogram.h"
#include "metrics/self.h"
#include "util/pb.h"

#define OTLP_MAX_HEADERS 32

/* Where and how one signal's requests go. */
struct otlp_target {
	char *endpoint; /* full URL requests go to; NULL: not exported */
	unsigned timeout_ms;
	bool gzip;
	unsigned nheaders;
	char *headers[OTLP_MAX_HEADERS]; /* "Name: value" */
	char *ca_pem;			 /* trusted CAs for https, or NULL */
	size_t ca_len;
};

struct otlp_config {
	/* OTEL_EXPORTER_OTLP_METRICS_* (else the generic variables). */
	struct otlp_target metrics;
	/* OTEL_EXPORTER_OTLP_TRACES_* (else the generic variables);
	 * OTEL_TRACES_EXPORTER=none turns it off. */
	struct otlp_target traces;
	unsigned interval_ms; /* metrics */
	bool delta;	      /* metrics: counters and histograms as deltas */
	bool exponential;     /* metrics: base-2 exponential histograms */
};

/* Reads the OTEL_* environment variables and the --otlp-endpoint flag
 * (flag_endpoint, may be NULL) into cfg, for metrics and traces. A signal
 * is off (its endpoint NULL) when no endpoint is given for it. The flag
 * serves both: metrics at it as is when it has a path, else at /v1/metrics
 * under it; traces at /v1/traces under it (its /v1/metrics replaced).
 * Returns 0, or -1 with a one-line reason naming the variable in err when
 * a value is invalid. cfg owns what it holds: free with otlp_config_free. */
int otlp_config_load(const char *flag_endpoint, struct otlp_config *cfg,
		     char *err, size_t errsz);

void otlp_config_free(struct otlp_config *cfg);

/* Parses a headers variable named name ("k=v,k2=v2", values
 * percent-encoded) into "k: v" strings appended to t->headers. Returns 0,
 * or -1 with a reason in err. */
int otlp_parse_headers(const char *name, const char *text,
		       struct otlp_target *t, char *err, size_t errsz);

/* ---- request pieces (common.proto, resource.proto) -------------------- */

/* A KeyValue field with a string value: value[0..len). */
void otlp_kv_strn(struct pb_buf *b, uint32_t field, const char *key,
		  const char *value, size_t len);
void otlp_kv_string(struct pb_buf *b, uint32_t field, const char *key,
		    const char *value);
/* A KeyValue field with an int value. */
void otlp_kv_int(struct pb_buf *b, uint32_t field, const char *key,
		 int64_t value);

/* The Resource of service as field: service.name, host.name and, for a
 * service identity/lastseen.h saw, process.pid, process.executable.name,
 * container.id, service.namespace and k8s.pod.uid. */
void otlp_resource(struct pb_buf *b, uint32_t field, const char *service);

/* The InstrumentationScope "sonde" with sonde's version, as field. */
void otlp_scope(struct pb_buf *b, uint32_t field);

/* ---- responses and retries -------------------------------------------- */

/* Reads an ExportMetricsServiceResponse or ExportTraceServiceResponse
 * (the same shape): the rejected data points or spans and the error
 * message of a partial success (0 and "" when none). Returns 0, or -1
 * when the bytes are not such a message. */
int otlp_parse_response(const uint8_t *p, size_t len, int64_t *rejected,
			char *msg, size_t msgsz);

/* A Retry-After header value (delay-seconds or an HTTP-date) as a delay in
 * ms from now_unix; -1 when it is neither. */
int64_t otlp_retry_after_ms(const char *value, int64_t now_unix);

/* The delay before retry number failures (1, 2, …): 1 s doubling up to
 * 30 s, times a jitter factor in [0.75, 1) drawn from rnd. */
uint64_t otlp_backoff_ms(unsigned failures, uint32_t rnd);

/* ---- the sender ------------------------------------------------------- */

enum otlp_result {
	OTLP_RESULT_SUCCESS,
	OTLP_RESULT_PARTIAL, /* the collector rejected some items */
	OTLP_RESULT_RETRIED, /* 429/502/503/504 or a transport error */
	OTLP_RESULT_FAILED,  /* rejected for good */
	OTLP_RESULT_DROPPED, /* given up unsent */
	OTLP_RESULT_COUNT,
};

/* A sender's self-metrics: attempts by result ({result} label) and their
 * durations. The owner sets the name, otel_name and help of both metrics
 * and initialises lock (PTHREAD_MUTEX_INITIALIZER) in a static; the rest
 * is otlpsend.c's. */
struct otlp_stats {
	struct self_metric exports, durations;
	pthread_mutex_t lock;
	uint64_t results[OTLP_RESULT_COUNT];
	struct histogram_bounds bounds;
	struct histogram *hist; /* NULL while no sender runs: no samples */
};

/* Fills in the rest of st's two metrics and registers them
 * (metrics/self.h). Once, at start-up. */
void otlp_stats_register(struct otlp_stats *st);

struct otlp_sender_ops {
	const char *name; /* log prefix: "otlp", "otlp traces" */
	const char *what; /* the items, in log lines: "data points" */
	/* collect is called this often, and when woken. */
	unsigned interval_ms;
	/* Only the newest request matters (cumulative data): an older one is
	 * given up, uncounted, when a newer one comes. Otherwise the oldest
	 * is given up, and counted as dropped, when the queue is full. */
	bool latest_only;
	/* Encodes the next request into out and returns its items (0:
	 * nothing to send). Sets *again when it should be called again at
	 * once; last is the last round, at shutdown. Sender thread. */
	unsigned (*collect)(void *arg, struct pb_buf *out, bool last,
			    bool *again);
	/* A request of items left the queue: SUCCESS, PARTIAL (rejected of
	 * them refused), FAILED, or DROPPED (given up unsent: queue full,
	 * out of memory, or still queued at shutdown). Sender thread; may
	 * be NULL. */
	void (*done)(void *arg, unsigned items, enum otlp_result result,
		     int64_t rejected);
	void *arg;
	struct otlp_stats *stats; /* must outlive the sender */
};

struct otlp_sender;

/* Starts a sender thread for requests to t (borrowed: t must live until
 * otlp_sender_stop) with ops (copied). The thread drops its capabilities
 * first. While any sender runs, identity/lastseen.h notes where each
 * service runs, for the resources. Returns the sender, or NULL after
 * logging. */
struct otlp_sender *otlp_sender_start(const struct otlp_target *t,
				      const struct otlp_sender_ops *ops);

/* Has the sender collect at once rather than at its next interval. Takes
 * a lock the sender never holds while encoding or sending: cheap enough
 * for the consumer thread. Any thread. */
void otlp_sender_wake(struct otlp_sender *s);

/* Collects and sends a last time (bounded to a few seconds), gives up
 * what is still queued, stops the thread and frees s. NULL is a no-op. */
void otlp_sender_stop(struct otlp_sender *s);

#endif
