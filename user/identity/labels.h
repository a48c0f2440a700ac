/* Labels beyond each family's fixed ones: the optional identity labels
 * (service_namespace, container_id, k8s_pod_uid; off by default for
 * cardinality), on every family, and request headers an operator chose to
 * capture (http.capture_headers), on the server series only, each with a
 * cap on its distinct values. Set up once at start-up, before the first
 * observation; then read by the consumer thread. */
#ifndef SONDE_LABELS_H
#define SONDE_LABELS_H

#include <stddef.h>

#include "identity/procinfo.h"
#include "metrics/registry.h"

#define LABELS_MAX_HEADERS 4
#define LABELS_NAME_MAX 63
/* Captured values are cut to this many bytes. */
#define LABELS_VALUE_MAX 64
#define LABELS_DEFAULT_MAX_VALUES 100
/* Room for every extra label: three optional ones and the headers. */
#define LABELS_MAX_EXTRA (3 + LABELS_MAX_HEADERS)

struct labels_header {
	char header[LABELS_NAME_MAX + 1]; /* "X-Tenant-ID" */
	char label[LABELS_NAME_MAX + 1];  /* "tenant_id" */
	unsigned max_values;		  /* distinct values before overflow */
};

/* Parses "header=X-Tenant-ID,label=tenant_id,max_values=50", or just the
 * header name ("X-Tenant-ID": label tenant_id, 100 values). Returns 0, or
 * -1 with a reason in err. */
int labels_parse_header(const char *text, struct labels_header *out, char *err,
			size_t errsz);

/* Checks an optional label name: service_namespace, container_id or
 * k8s_pod_uid. Returns 0, or -1 with a reason in err. */
int labels_check_optional(const char *name, char *err, size_t errsz);

/* Appends the chosen optional labels, then the captured headers' labels,
 * to f's label list, and caps the header labels in the registry. Call once,
 * before the first observation. Returns 0, or -1 with a reason in err (a
 * label twice, too many labels). */
int labels_init(struct metric_family *f, char *const *optional,
		unsigned noptional, char *const *headers, unsigned nheaders,
		char *err, size_t errsz);

/* Appends the optional labels that labels_init chose to another family
 * (client, TCP, function). Returns 0, or -1 with a reason in err. */
int labels_init_optional(struct metric_family *f, char *err, size_t errsz);

/* Fills values[0..n) for the optional labels alone, from the process.
 * Returns n. */
unsigned labels_fill_optional(const struct procinfo *pi, const char **values);

/* Headers captured (http.capture_headers): 0 unless configured. */
unsigned labels_headers(void);

/* Looks a request's field up by name (any case): 0 with its value, or -1
 * when the request has none. */
typedef int (*labels_field_fn)(const void *ctx, const char *name,
			       const char **value, size_t *len);

/* Fills values[0..n) for the captured headers, in labels_init's order,
 * each looked up with field(ctx, ...); buf holds their text. A header
 * that is absent gives "". Returns n (0 when none are captured). */
unsigned labels_fill_headers(labels_field_fn field, const void *ctx,
			     const char **values,
			     char (*buf)[LABELS_VALUE_MAX + 1]);

/* Drops the configuration (tests). */
void labels_reset(void);

#endif
