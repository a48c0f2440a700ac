/* OTLP/HTTP metrics export: every interval, the registry's series become
 * one ExportMetricsServiceRequest delivered to a collector by a sender of
 * export/otlpsend.h (which also reads the configuration), on a thread of
 * its own. Memory stays bounded whatever the collector does: cumulative
 * data keeps only the latest request; delta data keeps a bounded queue
 * and counts what it drops. */
#ifndef SONDE_OTLP_H
#define SONDE_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export/otlpsend.h"
#include "util/pb.h"

/* Starts exporting to cfg->metrics on a thread of its own (cfg is
 * borrowed: keep it until otlp_stop), and has identity/lastseen.h note
 * where each service runs, for its resource attributes. Returns 0, or -1
 * after logging. */
int otlp_start(const struct otlp_config *cfg);

/* Makes a last export (bounded to a few seconds), stops the thread and
 * frees the exporter's state (and the services' processes noted, when no
 * trace exporter still runs). Safe to call when it was never started. */
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

#endif
