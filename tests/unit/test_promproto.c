/* The Prometheus protobuf exposition: which Accept headers get it, native
 * histogram buckets from sonde's exponential histograms, and a rendered
 * body read back field by field against metrics.proto's numbers. */
#include <math.h>
#include <stdlib.h>

#include "export/promproto.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "pbdec.h"
#include "unit.h"

TEST(accept_headers)
{
	/* What Prometheus 2.42 sends with native histograms on. */
	CHECK(promproto_accepted(
		"application/vnd.google.protobuf;proto=io.prometheus.client."
		"MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;"
		"q=0.3,*/*;q=0.1"));
	CHECK(promproto_accepted(
		"text/plain;q=0.5, application/vnd.google.protobuf; "
		"proto=io.prometheus.client.MetricFamily; encoding=delimited"));
	/* Without it: the text. */
	CHECK(!promproto_accepted("text/plain;version=0.0.4;q=1,*/*;q=0.1"));
	CHECK(!promproto_accepted("*/*"));
	CHECK(!promproto_accepted(""));
	/* Refused, or another encoding or message. */
	CHECK(!promproto_accepted(
		"application/vnd.google.protobuf;proto=io.prometheus.client."
		"MetricFamily;encoding=delimited;q=0"));
	CHECK(!promproto_accepted(
		"application/vnd.google.protobuf;proto=io.prometheus.client."
		"MetricFamily;encoding=text"));
	CHECK(!promproto_accepted("application/vnd.google.protobuf;proto=x.Y;"
				  "encoding=delimited"));
}

TEST(native_buckets_keep_the_schema_asked)
{
	/* Scale 5, indices 8..11; to schema 3 each 4 merge into one: OTLP
	 * index 2 (8..11 >> 2), Prometheus index 3. */
	const uint64_t counts[] = { 1, 2, 3, 4 };
	uint64_t out[EXPHIST_MAX_BUCKETS];
	int32_t schema, first;
	uint32_t n = promproto_native_buckets(5, 8, counts, 4, 3, 160, &schema,
					      &first, out);

	CHECK(n == 1 && schema == 3 && first == 3 && out[0] == 10);
	/* A coarser histogram is kept as it is, only shifted by one. */
	n = promproto_native_buckets(2, -3, counts, 4, 3, 160, &schema, &first,
				     out);
	CHECK(n == 4 && schema == 2 && first == -2);
	CHECK(out[0] == 1 && out[3] == 4);
}

TEST(native_buckets_merge_negative_indices_downwards)
{
	/* Indices -3, -2, -1, 0 at scale 1 to scale 0: -3 >> 1 = -2,
	 * -2 >> 1 = -1, -1 >> 1 = -1, 0 >> 1 = 0. */
	const uint64_t counts[] = { 1, 2, 3, 4 };
	uint64_t out[EXPHIST_MAX_BUCKETS];
	int32_t schema, first;
	uint32_t n = promproto_native_buckets(1, -3, counts, 4, 0, 160, &schema,
					      &first, out);

	CHECK(n == 3 && schema == 0 && first == -1);
	CHECK(out[0] == 1 && out[1] == 5 && out[2] == 4);
}

TEST(native_buckets_within_the_bucket_limit)
{
	uint64_t counts[100], out[EXPHIST_MAX_BUCKETS];
	int32_t schema, first;
	uint32_t n;

	for (int i = 0; i < 100; i++)
		counts[i] = 1;
	/* 100 buckets at schema 3, at most 30: halved twice (25). */
	n = promproto_native_buckets(3, 0, counts, 100, 3, 30, &schema, &first,
				     out);
	CHECK(schema == 1 && n == 25 && first == 1 && out[0] == 4);
	/* Never below -4, whatever the limit. */
	n = promproto_native_buckets(3, 0, counts, 100, 3, 1, &schema, &first,
				     out);
	CHECK(schema == -4);
}

TEST(native_buckets_leave_out_empty_ends)
{
	const uint64_t counts[] = { 0, 0, 5, 0, 7, 0 };
	uint64_t out[EXPHIST_MAX_BUCKETS];
	int32_t schema, first;
	uint32_t n = promproto_native_buckets(3, 10, counts, 6, 3, 160, &schema,
					      &first, out);

	CHECK(n == 3 && first == 13 && out[0] == 5 && out[1] == 0 &&
	      out[2] == 7);
	n = promproto_native_buckets(3, 10, counts, 0, 3, 160, &schema, &first,
				     out);
	CHECK(n == 0);
}

static struct pb_span family_named(struct pb_span body, const char *name)
{
	const uint8_t *p = body.p, *end = body.p + body.n;
	uint64_t len;

	while (p < end && dec_varint(&p, end, &len)) {
		struct pb_span fam = { p, len };

		if (dec_str_eq(dec_msg(fam, 1, 0), name))
			return fam;
		p += len;
	}
	return (struct pb_span){ NULL, 0 };
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

TEST(rendered_histogram_with_native_buckets)
{
	struct registry_limits lim = { 100, 100, 1000 };
	struct histogram_bounds b;
	const char *v[] = { "web", "GET", "200", "/", "80" };
	struct strbuf sb = { 0 };
	struct pb_span body, fam, m, h, label, span, deltas;
	const uint8_t *p;
	uint64_t d[8];
	unsigned n = 0;

	registry_free();
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	registry_enable_exphist();
	promproto_configure(&(struct promproto_config){
		.native = true, .schema = 3, .max_buckets = 160 });
	/* 50 ms twice and 0 once: 50 ms is in schema 3's bucket
	 * (2^(-35/8), 2^(-34/8)] = (0.0481, 0.0526]: index -34. */
	registry_observe(&family_http_server, v, 50000000);
	registry_observe(&family_http_server, v, 50000000);
	registry_observe(&family_http_server, v, 0);
	promproto_render(&sb);
	CHECK(!sb.failed);
	body = (struct pb_span){ (const uint8_t *)sb.data, sb.len };
	fam = family_named(body, "http_server_request_duration_seconds");
	CHECK(fam.p != NULL);
	CHECK(dec_u64(fam, 3, 99) == 4); /* HISTOGRAM */
	CHECK(dec_count(fam, 4) == 1);
	m = dec_msg(fam, 4, 0);
	CHECK(dec_count(m, 1) == 5);
	label = dec_msg(m, 1, 3);
	CHECK(dec_str_eq(dec_msg(label, 1, 0), "http_route"));
	CHECK(dec_str_eq(dec_msg(label, 2, 0), "/"));
	h = dec_msg(m, 7, 0);
	CHECK(dec_u64(h, 1, 0) == 3);
	CHECK(fabs(dec_double(h, 2) - 0.1) < 1e-12);
	/* Classic buckets: 14 finite bounds, 0.05 holds all three. */
	CHECK(dec_count(h, 3) == 14);
	CHECK(dec_u64(dec_msg(h, 3, 3), 1, 0) == 3);
	CHECK(dec_double(dec_msg(h, 3, 3), 2) == 0.05);
	CHECK(dec_u64(dec_msg(h, 3, 0), 1, 0) == 1); /* the 0 */
	/* Native: schema 3, the zero bucket, one span of one bucket. */
	CHECK(unzigzag(dec_u64(h, 5, 99)) == 3);
	CHECK(dec_double(h, 6) > 0 && dec_double(h, 6) < 1e-30);
	CHECK(dec_u64(h, 7, 0) == 1);
	CHECK(dec_count(h, 12) == 1);
	span = dec_msg(h, 12, 0);
	CHECK(unzigzag(dec_u64(span, 1, 0)) == -34);
	CHECK(dec_u64(span, 2, 0) == 1);
	deltas = dec_msg(h, 13, 0);
	for (p = deltas.p; p && p < deltas.p + deltas.n && n < 8; n++)
		dec_varint(&p, deltas.p + deltas.n, &d[n]);
	CHECK(n == 1 && unzigzag(d[0]) == 2);
	strbuf_release(&sb);
	registry_free();
}

/* A family with bounds of its own, as the database ones have. */
static struct histogram_bounds fine_bounds;
static struct metric_family fine_family = {
	.name = "t_fine_seconds",
	.otel_name = "t.fine",
	.unit = "s",
	.help = "Fine.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = 2,
	.labels = { "service_name", "op" },
	.otel_labels = { "service.name", "op" },
	.capped_label = -1,
	.bounds = &fine_bounds,
};

/* The Histogram of the first series of family name. */
static struct pb_span histogram_of(struct pb_span body, const char *name)
{
	return dec_msg(dec_msg(family_named(body, name), 4, 0), 7, 0);
}

/* Classic bucket i of h: its upper bound, and its cumulative count in
 * *cum. */
static double bucket_of(struct pb_span h, unsigned i, uint64_t *cum)
{
	struct pb_span bucket = dec_msg(h, 3, i);

	*cum = dec_u64(bucket, 1, 0);
	return dec_double(bucket, 2);
}

TEST(each_family_has_its_own_classic_buckets)
{
	struct registry_limits lim = { 100, 100, 1000 };
	struct histogram_bounds b;
	const char *web[] = { "web", "GET", "200", "/", "80" };
	const char *op[] = { "cache", "GET" };
	/* 50 us, 100 us (on the first bound), 300 us, 2 ms, 20 s. */
	const uint64_t ns[] = { 50000, 100000, 300000, 2000000,
				20000000000ULL };
	const uint64_t fine_cum[] = { 2, 2, 3, 3, 4, 4, 4, 4,
				      4, 4, 4, 4, 4, 4, 4, 4 };
	struct strbuf sb = { 0 };
	struct pb_span body, h;
	uint64_t cum;

	registry_free();
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	histogram_bounds_fine(&fine_bounds);
	promproto_configure(&(struct promproto_config){
		.native = false, .schema = 3, .max_buckets = 160 });
	registry_observe(&family_http_server, web, 1000000);
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		registry_observe(&fine_family, op, ns[i]);
	promproto_render(&sb);
	CHECK(!sb.failed);
	body = (struct pb_span){ (const uint8_t *)sb.data, sb.len };
	/* 16 bounds from 0.0001 to 10, the 20 s one in sample_count only. */
	h = histogram_of(body, "t_fine_seconds");
	CHECK(dec_u64(h, 1, 0) == 5 && dec_count(h, 3) == 16);
	for (unsigned i = 0; i < 16; i++)
		CHECK(bucket_of(h, i, &cum) == fine_bounds.seconds[i] &&
		      cum == fine_cum[i]);
	CHECK(bucket_of(h, 0, &cum) == 0.0001 && bucket_of(h, 15, &cum) == 10);
	/* The registry's 14, from 0.005. */
	h = histogram_of(body, "http_server_request_duration_seconds");
	CHECK(dec_u64(h, 1, 0) == 1 && dec_count(h, 3) == 14);
	for (unsigned i = 0; i < 14; i++)
		CHECK(bucket_of(h, i, &cum) == b.seconds[i] && cum == 1);
	CHECK(bucket_of(h, 0, &cum) == 0.005);
	strbuf_release(&sb);
	registry_free();
}

UNIT_MAIN("promproto", UNIT_CASE(accept_headers),
	  UNIT_CASE(native_buckets_keep_the_schema_asked),
	  UNIT_CASE(native_buckets_merge_negative_indices_downwards),
	  UNIT_CASE(native_buckets_within_the_bucket_limit),
	  UNIT_CASE(native_buckets_leave_out_empty_ends),
	  UNIT_CASE(rendered_histogram_with_native_buckets),
	  UNIT_CASE(each_family_has_its_own_classic_buckets))
