/* Prometheus protobuf exposition: length-delimited
 * io.prometheus.client.MetricFamily messages (metrics.proto of
 * prometheus/client_model), served to scrapers that ask for it, with
 * native (sparse, base-2 exponential) histograms alongside the classic
 * buckets when --native-histograms is on:
 * https://prometheus.io/docs/specs/native_histograms/ */
#ifndef SONDE_EXPORT_PROMPROTO_H
#define SONDE_EXPORT_PROMPROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics/exphist.h"
#include "util/strbuf.h"

#define PROMPROTO_CONTENT_TYPE              \
	"application/vnd.google.protobuf; " \
	"proto=io.prometheus.client.MetricFamily; encoding=delimited"

struct promproto_config {
	bool native;	      /* native histograms from the registry's */
	int schema;	      /* finest schema served, -4 to 8 */
	unsigned max_buckets; /* buckets per histogram, 1 to 160 */
};

/* Sets what promproto_render writes; before the HTTP server starts. */
void promproto_configure(const struct promproto_config *cfg);

/* Whether an Accept header asks for this format (with a q above 0). */
bool promproto_accepted(const char *accept);

/* The whole exposition, as prom_render's text has it: every registry
 * family, then the self-metrics. */
void promproto_render(struct strbuf *sb);

/* A native histogram's buckets from an exponential histogram at scale,
 * counts[0] at index offset: lowered to at most schema and max_buckets
 * buckets (and no lower than -4), with Prometheus' indices (bucket i holds
 * (2^((i-1)/2^s), 2^(i/2^s)], one above OTLP's). Writes the counts into
 * out (room for EXPHIST_MAX_BUCKETS) and returns how many, with the
 * schema and the first index in *schema and *first. */
uint32_t promproto_native_buckets(int32_t scale, int32_t offset,
				  const uint64_t *counts, uint32_t len,
				  int schema, unsigned max_buckets,
				  int32_t *out_schema, int32_t *first,
				  uint64_t *out);

#endif
