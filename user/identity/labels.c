#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/labels.h"
#include "identity/selection.h"

enum optional_label {
	LABEL_SERVICE_NAMESPACE,
	LABEL_CONTAINER_ID,
	LABEL_K8S_POD_UID,
	LABEL_OPTIONAL_COUNT,
};

static const char *const optional_names[LABEL_OPTIONAL_COUNT] = {
	[LABEL_SERVICE_NAMESPACE] = "service_namespace",
	[LABEL_CONTAINER_ID] = "container_id",
	[LABEL_K8S_POD_UID] = "k8s_pod_uid",
};

/* The OTLP attribute keys of the semantic conventions. */
static const char *const optional_otel[LABEL_OPTIONAL_COUNT] = {
	[LABEL_SERVICE_NAMESPACE] = "service.namespace",
	[LABEL_CONTAINER_ID] = "container.id",
	[LABEL_K8S_POD_UID] = "k8s.pod.uid",
};

static enum optional_label optional[LABEL_OPTIONAL_COUNT];
static unsigned noptional;
static struct labels_header headers[LABELS_MAX_HEADERS];
/* OTLP keys for header labels: "http.request.header.x-tenant-id". */
static char header_otel[LABELS_MAX_HEADERS][LABELS_NAME_MAX + 32];
static unsigned nheaders;

static int optional_index(const char *name)
{
	for (int i = 0; i < LABEL_OPTIONAL_COUNT; i++)
		if (strcmp(optional_names[i], name) == 0)
			return i;
	return -1;
}

int labels_check_optional(const char *name, char *err, size_t errsz)
{
	if (optional_index(name) >= 0)
		return 0;
	snprintf(err, errsz,
		 "unknown label '%s' (service_namespace, container_id, "
		 "k8s_pod_uid)",
		 name);
	return -1;
}

/* A field name is an RFC 9110 token; keep to letters, digits, '-', '_'. */
static bool header_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= LABELS_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_") == n;
}

/* A Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*, not reserved "__". */
static bool label_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= LABELS_NAME_MAX && !(s[0] >= '0' && s[0] <= '9') &&
	       strncmp(s, "__", 2) != 0 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_") == n;
}

/* "X-Tenant-ID" -> "x_tenant_id" */
static void label_from_header(const char *h, char *out)
{
	size_t i;

	for (i = 0; h[i] && i < LABELS_NAME_MAX; i++)
		out[i] = h[i] == '-'		      ? '_' :
			 (h[i] >= 'A' && h[i] <= 'Z') ? h[i] - 'A' + 'a' :
							h[i];
	out[i] = '\0';
}

static int set_header(struct labels_header *out, const char *name, char *err,
		      size_t errsz)
{
	if (!header_name_ok(name)) {
		snprintf(err, errsz, "'%s' is not a header name", name);
		return -1;
	}
	snprintf(out->header, sizeof(out->header), "%s", name);
	if (!out->label[0])
		label_from_header(name, out->label);
	return 0;
}

int labels_parse_header(const char *text, struct labels_header *out, char *err,
			size_t errsz)
{
	char key[32], value[128];
	const char *p = text;
	int got;

	memset(out, 0, sizeof(*out));
	out->max_values = LABELS_DEFAULT_MAX_VALUES;
	if (!strchr(text, '=')) /* just the header's name */
		return set_header(out, text, err, errsz);
	while ((got = selection_kv_next(&p, key, sizeof(key), value,
					sizeof(value))) == 1) {
		if (strcmp(key, "header") == 0) {
			if (set_header(out, value, err, errsz))
				return -1;
		} else if (strcmp(key, "label") == 0) {
			if (!label_name_ok(value)) {
				snprintf(err, errsz,
					 "'%s' is not a Prometheus label name",
					 value);
				return -1;
			}
			snprintf(out->label, sizeof(out->label), "%s", value);
		} else if (strcmp(key, "max_values") == 0) {
			char *end;
			unsigned long n = strtoul(value, &end, 10);

			if (value[0] < '0' || value[0] > '9' || *end || n < 1 ||
			    n > 100000) {
				snprintf(err, errsz,
					 "max_values '%s' is not a number from "
					 "1 to 100000",
					 value);
				return -1;
			}
			out->max_values = (unsigned)n;
		} else {
			snprintf(err, errsz,
				 "unknown key '%s' (header, label, "
				 "max_values)",
				 key);
			return -1;
		}
	}
	if (got < 0) {
		snprintf(err, errsz, "'%s' is not KEY=VALUE,...", text);
		return -1;
	}
	if (!out->header[0]) {
		snprintf(err, errsz, "'%s' names no header", text);
		return -1;
	}
	return 0;
}

static int add_label(struct metric_family *f, const char *name,
		     const char *otel, char *err, size_t errsz)
{
	for (unsigned i = 0; i < f->nlabels; i++)
		if (strcmp(f->labels[i], name) == 0) {
			snprintf(err, errsz, "label '%s' is given twice", name);
			return -1;
		}
	if (f->nlabels >= REGISTRY_MAX_LABELS) {
		snprintf(err, errsz, "too many labels on %s", f->name);
		return -1;
	}
	f->labels[f->nlabels] = name;
	f->otel_labels[f->nlabels] = otel;
	f->nlabels++;
	return 0;
}

int labels_init(struct metric_family *f, char *const *opt, unsigned nopt,
		char *const *specs, unsigned nspecs, char *err, size_t errsz)
{
	labels_reset();
	if (nspecs > LABELS_MAX_HEADERS) {
		snprintf(err, errsz, "at most %d captured headers",
			 LABELS_MAX_HEADERS);
		return -1;
	}
	for (unsigned i = 0; i < nopt; i++) {
		int idx = optional_index(opt[i]);

		if (idx < 0) {
			labels_check_optional(opt[i], err, errsz);
			return -1;
		}
		if (add_label(f, optional_names[idx], optional_otel[idx], err,
			      errsz))
			return -1;
		optional[noptional++] = idx;
	}
	for (unsigned i = 0; i < nspecs; i++) {
		struct labels_header *h = &headers[nheaders];

		if (labels_parse_header(specs[i], h, err, errsz))
			return -1;
		snprintf(header_otel[nheaders], sizeof(header_otel[0]),
			 "http.request.header.%s", h->header);
		for (char *c = header_otel[nheaders]; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = *c - 'A' + 'a';
		if (add_label(f, h->label, header_otel[nheaders], err, errsz))
			return -1;
		registry_cap_label(f, f->nlabels - 1, h->max_values);
		nheaders++;
	}
	return 0;
}

/* Header values become label values: visible ASCII, at most
 * LABELS_VALUE_MAX bytes, anything else '_'. */
static void copy_value(const char *v, size_t n, char *out)
{
	if (n > LABELS_VALUE_MAX)
		n = LABELS_VALUE_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = v[i];

		out[i] = c >= 0x20 && c < 0x7f ? c : '_';
	}
	out[n] = '\0';
}

int labels_init_optional(struct metric_family *f, char *err, size_t errsz)
{
	for (unsigned i = 0; i < noptional; i++)
		if (add_label(f, optional_names[optional[i]],
			      optional_otel[optional[i]], err, errsz))
			return -1;
	return 0;
}

unsigned labels_fill_optional(const struct procinfo *pi, const char **values)
{
	for (unsigned i = 0; i < noptional; i++) {
		switch (optional[i]) {
		case LABEL_SERVICE_NAMESPACE:
			values[i] = pi->namespace;
			break;
		case LABEL_CONTAINER_ID:
			values[i] = pi->container_id;
			break;
		default:
			values[i] = pi->pod_uid;
			break;
		}
	}
	return noptional;
}

unsigned labels_headers(void)
{
	return nheaders;
}

unsigned labels_fill_headers(labels_field_fn field, const void *ctx,
			     const char **values,
			     char (*buf)[LABELS_VALUE_MAX + 1])
{
	for (unsigned i = 0; i < nheaders; i++) {
		const char *v;
		size_t vlen;

		buf[i][0] = '\0';
		if (!field(ctx, headers[i].header, &v, &vlen))
			copy_value(v, vlen, buf[i]);
		values[i] = buf[i];
	}
	return nheaders;
}

void labels_reset(void)
{
	noptional = nheaders = 0;
}
