/* OTLP/HTTP metrics export: every interval, the registry's series become
 * one ExportMetricsServiceRequest (protobuf, optionally gzip) POSTed with
 * libcurl to a collector, on a thread of its own, by the rules of
 * https://opentelemetry.io/docs/specs/otlp/#otlphttp: 429, 502, 503, 504
 * and connection failures are retried with exponential backoff and jitter
 * (Retry-After honoured), any other error is not; a partial success is
 * logged and not retried. Configuration comes from the SDK environment
 * variables (https://opentelemetry.io/docs/specs/otel/protocol/exporter/)
 * and --otlp-endpoint. Memory stays bounded whatever the collector does:
 * cumulative data keeps only the latest request; delta data keeps a
 * bounded queue and counts what it drops. */
#ifndef SONDE_OTLP_H
#define SONDE_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/pb.h"

#define OTLP_MAX_HEADERS 32

struct otlp_config {
	char *endpoint; /* full URL requests go to; NULL: export is off */
	unsigned interval_ms;
	unsigned timeout_ms;
	bool gzip;
	bool delta;	  /* counters and histograms as deltas */
	bool exponential; /* base-2 exponential histograms */
	unsigned nheaders;
	char *headers[OTLP_MAX_HEADERS]; /* "Name: value" */
	char *ca_pem;			 /* trusted CAs for https, or NULL */
	size_t ca_len;
};

/* Reads the OTEL_* environment variables and the --otlp-endpoint flag
 * (flag_endpoint, may be NULL) into cfg. Export is off (cfg->endpoint
 * NULL, return 0) when no endpoint is given. Returns -1 with a one-line
 * reason in err when a value is invalid. cfg owns what it holds: free with
 * otlp_config_free. */
int otlp_config_load(const char *flag_endpoint, struct otlp_config *cfg,
		     char *err, size_t errsz);

void otlp_config_free(struct otlp_config *cfg);

/* Parses OTEL_EXPORTER_OTLP_HEADERS ("k=v,k2=v2", values percent-encoded)
 * into "k: v" strings appended to cfg->headers. Returns 0, or -1 with a
 * reason in err. */
int otlp_parse_headers(const char *text, struct otlp_config *cfg, char *err,
		       size_t errsz);

/* Starts the exporter thread with a copy of cfg (cfg keeps its memory),
 * and has identity/lastseen.h note where each service runs, for its
 * resource attributes. Returns 0, or -1 after logging. */
int otlp_start(const struct otlp_config *cfg);

/* Makes a last export (bounded to a few seconds), stops the thread and
 * frees the exporter's state and the services' processes noted. Safe to call when it was never started. */
void otlp_stop(void);

/* Registers the exporter's own metrics (metrics/self.h):
 * sonde_otlp_exports_total and sonde_otlp_export_duration_seconds, which
 * have samples once otlp_start has run. Call once at start-up, when
 * export is on. */
void otlp_register_metrics(void);

/* Encodes the registry's series as one ExportMetricsServiceRequest into
 * out, as of now_ns (wall clock): a ResourceMetrics per service, then one
 * for sonde itself (service.name "sonde") with every self-metric of
 * metrics/self.h, cumulative. With delta, the registry's counters and
 * histograms carry what changed since the previous call and unchanged
 * ones are left out. Returns the number of data points (0: nothing to
 * send). Holds the registry lock only while encoding data points.
 * Exporter thread (or tests) only. */
unsigned otlp_encode(struct pb_buf *out, bool delta, bool exponential,
		     uint64_t now_ns);

/* Forgets the delta state (tests). */
void otlp_reset(void);

/* Reads an ExportMetricsServiceResponse: the rejected data points and
 * error message of a partial success (0 and "" when none). Returns 0, or
 * -1 when the bytes are not such a message. */
int otlp_parse_response(const uint8_t *p, size_t len, int64_t *rejected,
			char *msg, size_t msgsz);

/* A Retry-After header value (delay-seconds or an HTTP-date) as a delay in
 * ms from now_unix; -1 when it is neither. */
int64_t otlp_retry_after_ms(const char *value, int64_t now_unix);

/* The delay before retry number failures (1, 2, …): 1 s doubling up to
 * 30 s, times a jitter factor in [0.75, 1) drawn from rnd. */
uint64_t otlp_backoff_ms(unsigned failures, uint32_t rnd);

#endif
