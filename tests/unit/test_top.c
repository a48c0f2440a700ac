/* sonde top's arithmetic: exposition lines, the snapshot of a /metrics
 * body, deltas between two reads (with counter resets) and quantiles from
 * bucket deltas. */
#include <math.h>
#include <stdlib.h>

#include "top/expo.h"
#include "top/snapshot.h"
#include "top/table.h"
#include "top/top.h"
#include "unit.h"

static const double bounds[] = { 0.005, 0.01, 0.025, 0.05, INFINITY };

static bool near(double got, double want)
{
	return fabs(got - want) < 1e-9;
}

TEST(sample_line_with_escaped_labels)
{
	char line[] =
		"http_server_request_duration_seconds_bucket{service_name="
		"\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 12 1700000000000";
	struct expo_sample s;

	CHECK(expo_parse_line(line, &s) == EXPO_SAMPLE);
	CHECK_STR(s.name, "http_server_request_duration_seconds_bucket");
	CHECK(s.nlabels == 2);
	CHECK_STR(expo_label(&s, "service_name"), "a\"b\\c\nd");
	CHECK_STR(expo_label(&s, "le"), "+Inf");
	CHECK(expo_label(&s, "route") == NULL);
	CHECK(s.value == 12);
}

TEST(lines_that_are_not_samples)
{
	char comment[] = "# TYPE sonde_series gauge", blank[] = "",
	     bare[] = "sonde_series 4", unclosed[] = "x{a=\"b} 1",
	     no_value[] = "x{a=\"b\"}", bad_escape[] = "x{a=\"\\q\"} 1",
	     junk[] = "x 1 2 3 junk";
	struct expo_sample s;

	CHECK(expo_parse_line(comment, &s) == EXPO_SKIP);
	CHECK(expo_parse_line(blank, &s) == EXPO_SKIP);
	CHECK(expo_parse_line(bare, &s) == EXPO_SAMPLE && s.value == 4 &&
	      s.nlabels == 0);
	CHECK(expo_parse_line(unclosed, &s) == EXPO_BROKEN);
	CHECK(expo_parse_line(no_value, &s) == EXPO_BROKEN);
	CHECK(expo_parse_line(bad_escape, &s) == EXPO_BROKEN);
	CHECK(expo_parse_line(junk, &s) == EXPO_BROKEN);
}

TEST(quantile_interpolates_inside_its_bucket)
{
	/* 100 observations: 50 under 5 ms, 40 in (5, 10], 10 in (10, 25]. */
	const double cum[] = { 50, 90, 100, 100, 100 };

	/* p50: the 50th, at the top of the first bucket. */
	CHECK(near(top_quantile(bounds, cum, 5, 0.50), 0.005));
	/* p70: 20 of the 40 in (5, 10]: half way. */
	CHECK(near(top_quantile(bounds, cum, 5, 0.70), 0.0075));
	/* p95: 5 of the 10 in (10, 25]. */
	CHECK(near(top_quantile(bounds, cum, 5, 0.95), 0.0175));
	/* p10: within the first bucket, from 0. */
	CHECK(near(top_quantile(bounds, cum, 5, 0.10), 0.001));
}

TEST(quantile_in_the_inf_bucket_is_the_largest_bound)
{
	const double cum[] = { 0, 0, 0, 1, 10 };

	CHECK(near(top_quantile(bounds, cum, 5, 0.99), 0.05));
	/* p5: half of the one observation in (25, 50 ms]. */
	CHECK(near(top_quantile(bounds, cum, 5, 0.05), 0.0375));
}

TEST(quantile_of_an_empty_interval_is_nan)
{
	const double cum[] = { 0, 0, 0, 0, 0 };

	CHECK(isnan(top_quantile(bounds, cum, 5, 0.5)));
	CHECK(isnan(top_quantile(bounds, cum, 0, 0.5)));
}

static struct top_series series(double count, const double *cum)
{
	struct top_series s = { .nbuckets = 5, .count = count };

	memcpy(s.bound, bounds, sizeof(bounds));
	memcpy(s.cum, cum, sizeof(bounds));
	return s;
}

TEST(delta_between_two_reads)
{
	const double c0[] = { 10, 20, 30, 30, 30 },
		     c1[] = { 15, 30, 45, 46, 46 };
	struct top_series a = series(30, c0), b = series(46, c1);
	double count, cum[TOP_MAX_BUCKETS];

	top_series_delta(&a, &b, &count, cum);
	CHECK(count == 16);
	CHECK(cum[0] == 5 && cum[1] == 10 && cum[2] == 15 && cum[3] == 16 &&
	      cum[4] == 16);
	/* No earlier read: all of it. */
	top_series_delta(NULL, &b, &count, cum);
	CHECK(count == 46 && cum[4] == 46);
}

TEST(delta_after_a_counter_reset_counts_from_zero)
{
	const double before[] = { 10, 20, 30, 30, 30 },
		     after[] = { 3, 4, 4, 4, 4 },
		     /* the count alone did not go down, one bucket did */
		shifted[] = { 9, 30, 30, 31, 31 };
	struct top_series a = series(30, before), b = series(4, after),
			  c = series(31, shifted);
	double count, cum[TOP_MAX_BUCKETS];

	top_series_delta(&a, &b, &count, cum);
	CHECK(count == 4 && cum[0] == 3 && cum[4] == 4);
	top_series_delta(&a, &c, &count, cum);
	CHECK(count == 31 && cum[0] == 9);
}

static const char first_read[] =
	"# HELP sonde_build_info Always 1\n"
	"sonde_build_info{version=\"1.2.3\"} 1\n"
	"http_server_request_duration_seconds_bucket{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"200\","
	"http_route=\"/\",server_port=\"80\",le=\"0.01\"} 10\n"
	"http_server_request_duration_seconds_bucket{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"200\","
	"http_route=\"/\",server_port=\"80\",le=\"+Inf\"} 10\n"
	"http_server_request_duration_seconds_count{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"200\","
	"http_route=\"/\",server_port=\"80\"} 10\n"
	"sonde_events_received_total 100\n";

static const char second_read[] =
	"sonde_build_info{version=\"1.2.3\"} 1\n"
	"http_server_request_duration_seconds_bucket{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"200\","
	"http_route=\"/\",server_port=\"80\",le=\"0.01\"} 28\n"
	"http_server_request_duration_seconds_bucket{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"200\","
	"http_route=\"/\",server_port=\"80\",le=\"+Inf\"} 28\n"
	"http_server_request_duration_seconds_count{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"200\","
	"http_route=\"/\",server_port=\"80\"} 28\n"
	/* new since the first read: all of it counts */
	"http_server_request_duration_seconds_bucket{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"503\","
	"http_route=\"/fail\",server_port=\"80\",le=\"0.01\"} 0\n"
	"http_server_request_duration_seconds_bucket{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"503\","
	"http_route=\"/fail\",server_port=\"80\",le=\"+Inf\"} 2\n"
	"http_server_request_duration_seconds_count{service_name=\"web\","
	"http_request_method=\"GET\",http_response_status_code=\"503\","
	"http_route=\"/fail\",server_port=\"80\"} 2\n"
	"rpc_client_call_duration_seconds_bucket{service_name=\"web\","
	"rpc_system_name=\"grpc\",rpc_method=\"shop.Cart/Get\","
	"rpc_response_status_code=\"UNAVAILABLE\",server_address=\"10.0.0.2\","
	"server_port=\"50051\",le=\"+Inf\"} 4\n"
	"rpc_client_call_duration_seconds_count{service_name=\"web\","
	"rpc_system_name=\"grpc\",rpc_method=\"shop.Cart/Get\","
	"rpc_response_status_code=\"UNAVAILABLE\",server_address=\"10.0.0.2\","
	"server_port=\"50051\"} 4\n"
	"sonde_tcp_active_connections{service_name=\"web\",role=\"server\"} 7\n"
	"sonde_series 3\n"
	"not a sample line\n"
	"sonde_events_received_total 160\n"
	"sonde_events_dropped_total{reason=\"ringbuf_full\"} 1\n"
	"sonde_events_dropped_total{reason=\"conn_map_full\"} 2\n";

static const struct top_row *row_of(const struct top_table *t,
				    enum top_kind kind, const char *status)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->rows[i].kind == kind &&
		    strcmp(t->rows[i].status, status) == 0)
			return &t->rows[i];
	return NULL;
}

TEST(table_of_two_reads)
{
	struct top_snapshot a = { 0 }, b = { 0 };
	struct top_table t;
	const struct top_row *r;

	CHECK(top_snapshot_parse(&a, first_read, strlen(first_read)) == 0);
	CHECK(top_snapshot_parse(&b, second_read, strlen(second_read)) == 0);
	CHECK(a.is_sonde && b.is_sonde);
	CHECK_STR(b.version, "1.2.3");
	CHECK(b.events == 160 && b.drops == 3 && b.nseries_total == 3);
	CHECK(b.broken == 1);
	CHECK(b.nseries == 3);

	CHECK(top_table_build(&t, &a, &b, 2.0, TOP_BY_SERVICE, NULL) == 0);
	top_table_sort(&t, TOP_SORT_RATE);
	CHECK(t.n == 2);
	r = row_of(&t, TOP_HTTP_SERVER, "");
	CHECK(r && r->requests == 20 && r->errors == 2);
	CHECK(r && near(r->rate, 10) && near(r->error_ratio, 0.1));
	CHECK(r && r->conns == 7);
	/* 18 under 10 ms, 2 over: p50 inside (0, 10 ms], p99 in +Inf. */
	CHECK(r && r->p50 > 0 && r->p50 <= 0.01);
	CHECK(r && near(r->p99, 0.01));
	CHECK(r == &t.rows[0]); /* 10/s before 2/s */
	r = row_of(&t, TOP_GRPC_CLIENT, "");
	CHECK(r && r->requests == 4 && r->errors == 4 && near(r->rate, 2));
	/* Only a +Inf bucket: no quantile to give. */
	CHECK(r && isnan(r->p99));
	top_table_release(&t);

	CHECK(top_table_build(&t, &a, &b, 2.0, TOP_BY_STATUS, "web") == 0);
	CHECK(t.n == 3);
	r = row_of(&t, TOP_HTTP_SERVER, "503");
	CHECK(r && r->requests == 2 && r->errors == 2);
	r = row_of(&t, TOP_HTTP_SERVER, "200");
	CHECK(r && r->requests == 18 && r->errors == 0);
	top_table_release(&t);

	CHECK(top_table_build(&t, &a, &b, 2.0, TOP_BY_OPERATION, "web") == 0);
	top_table_sort(&t, TOP_SORT_NAME);
	CHECK(t.n == 3);
	CHECK_STR(t.rows[0].op, "GET /");
	CHECK_STR(t.rows[1].op, "GET /fail");
	CHECK_STR(t.rows[2].op, "shop.Cart/Get");
	CHECK_STR(t.rows[2].peer, "10.0.0.2:50051");
	CHECK_STR(t.rows[0].peer, "");
	top_table_release(&t);

	CHECK(top_table_build(&t, &a, &b, 2.0, TOP_BY_SERVICE, "other") == 0);
	CHECK(t.n == 0);
	top_table_release(&t);
	top_snapshot_release(&a);
	top_snapshot_release(&b);
}

TEST(sort_by_p99_puts_idle_rows_last)
{
	struct top_table t = { 0 };
	struct top_row rows[3] = {
		{ .service = "a",
		  .op = "",
		  .peer = "",
		  .status = "",
		  .p99 = NAN },
		{ .service = "b",
		  .op = "",
		  .peer = "",
		  .status = "",
		  .p99 = 0.2 },
		{ .service = "c",
		  .op = "",
		  .peer = "",
		  .status = "",
		  .p99 = 0.9 },
	};

	t.rows = rows;
	t.n = 3;
	top_table_sort(&t, TOP_SORT_P99);
	CHECK_STR(t.rows[0].service, "c");
	CHECK_STR(t.rows[1].service, "b");
	CHECK_STR(t.rows[2].service, "a");
	top_table_sort(&t, TOP_SORT_NAME);
	CHECK_STR(t.rows[0].service, "a");
	t.rows[0].conns = 3;
	t.rows[2].conns = 5;
	top_table_sort(&t, TOP_SORT_CONNS);
	CHECK_STR(t.rows[0].service, "c");
	CHECK_STR(t.rows[1].service, "a");
	CHECK_STR(t.rows[2].service, "b");
}

TEST(grpc_server_errors_are_the_servers_faults_alone)
{
	static const char body[] =
		"sonde_build_info{version=\"1\"} 1\n"
		"rpc_server_call_duration_seconds_count{service_name=\"api\","
		"rpc_method=\"a.B/C\",rpc_response_status_code=\"NOT_FOUND\"}"
		" 3\n"
		"rpc_server_call_duration_seconds_count{service_name=\"api\","
		"rpc_method=\"a.B/C\",rpc_response_status_code=\"UNAVAILABLE\"}"
		" 1\n"
		"rpc_client_call_duration_seconds_count{service_name=\"api\","
		"rpc_method=\"a.B/C\",rpc_response_status_code=\"NOT_FOUND\"}"
		" 2\n";
	struct top_snapshot s = { 0 };
	struct top_table t;
	const struct top_row *r;

	CHECK(top_snapshot_parse(&s, body, strlen(body)) == 0);
	CHECK(top_table_build(&t, NULL, &s, 1.0, TOP_BY_SERVICE, NULL) == 0);
	r = row_of(&t, TOP_GRPC_SERVER, "");
	CHECK(r && r->requests == 4 && r->errors == 1);
	r = row_of(&t, TOP_GRPC_CLIENT, "");
	CHECK(r && r->requests == 2 && r->errors == 2);
	top_table_release(&t);
	top_snapshot_release(&s);
}

/* A database server's calls are a row of their own, next to its
 * callers'; a call failed exactly when it has an error_type. */
TEST(database_calls_by_side)
{
	static const char body[] =
		"sonde_build_info{version=\"1\"} 1\n"
		"db_server_operation_duration_seconds_count{service_name="
		"\"redis-server\",db_system_name=\"redis\","
		"db_operation_name=\"GET\",db_collection_name=\"\","
		"db_response_status_code=\"\",error_type=\"\","
		"server_port=\"6379\"} 6\n"
		"db_server_operation_duration_seconds_count{service_name="
		"\"redis-server\",db_system_name=\"redis\","
		"db_operation_name=\"LPUSH\",db_collection_name=\"\","
		"db_response_status_code=\"WRONGTYPE\",error_type=\"WRONGTYPE\","
		"server_port=\"6379\"} 2\n"
		"db_client_operation_duration_seconds_count{service_name="
		"\"api\",db_system_name=\"redis\",db_operation_name=\"GET\","
		"db_collection_name=\"\",db_response_status_code=\"\","
		"error_type=\"\",server_address=\"10.0.0.5\","
		"server_port=\"6379\"} 6\n";
	struct top_snapshot s = { 0 };
	struct top_table t;
	const struct top_row *r;

	CHECK(top_snapshot_parse(&s, body, strlen(body)) == 0);
	CHECK(top_table_build(&t, NULL, &s, 1.0, TOP_BY_SERVICE, NULL) == 0);
	r = row_of(&t, TOP_DB_SERVER, "");
	CHECK(r && r->requests == 8 && r->errors == 2);
	CHECK(r && strcmp(r->service, "redis-server") == 0);
	r = row_of(&t, TOP_DB_CLIENT, "");
	CHECK(r && r->requests == 6 && r->errors == 0);
	CHECK(strcmp(top_kind_name(TOP_DB_SERVER), "db-server") == 0);
	top_table_release(&t);
	top_snapshot_release(&s);
}

TEST(what_no_sonde_would_write_is_left_out)
{
	static const char body[] =
		"sonde_build_info{version=\"1\"} 1\n"
		"http_server_request_duration_seconds_count{service_name=\"a\","
		"http_response_status_code=\"200\"} +Inf\n"
		"http_server_request_duration_seconds_count{service_name=\"b\","
		"http_response_status_code=\"200\"} 1e300\n"
		"http_server_request_duration_seconds_count{service_name="
		"\"c\\n\x1b[2J\",http_response_status_code=\"200\"} 5\n";
	struct top_snapshot s = { 0 };

	CHECK(top_snapshot_parse(&s, body, strlen(body)) == 0);
	CHECK(s.broken == 2 && s.nseries == 1);
	/* The newline and the escape are shown as '?'. */
	CHECK(s.nseries == 1 && strchr(s.series[0]->service, '\n') == NULL &&
	      strchr(s.series[0]->service, 0x1b) == NULL);
	top_snapshot_release(&s);
}

TEST(not_sonde)
{
	static const char other[] = "up 1\nnode_cpu_seconds_total 5\n";
	struct top_snapshot s = { 0 };

	CHECK(top_snapshot_parse(&s, other, strlen(other)) == 0);
	CHECK(!s.is_sonde);
	top_snapshot_release(&s);
}

TEST(durations_with_their_unit)
{
	char out[32];

	top_format_duration(0.000850, out, sizeof(out));
	CHECK_STR(out, "850us");
	top_format_duration(0.00125, out, sizeof(out));
	CHECK_STR(out, "1.25ms");
	top_format_duration(0.25, out, sizeof(out));
	CHECK_STR(out, "250.0ms");
	top_format_duration(2.5, out, sizeof(out));
	CHECK_STR(out, "2.50s");
	top_format_duration(NAN, out, sizeof(out));
	CHECK_STR(out, "-");
}

UNIT_MAIN("top", UNIT_CASE(sample_line_with_escaped_labels),
	  UNIT_CASE(lines_that_are_not_samples),
	  UNIT_CASE(quantile_interpolates_inside_its_bucket),
	  UNIT_CASE(quantile_in_the_inf_bucket_is_the_largest_bound),
	  UNIT_CASE(quantile_of_an_empty_interval_is_nan),
	  UNIT_CASE(delta_between_two_reads),
	  UNIT_CASE(delta_after_a_counter_reset_counts_from_zero),
	  UNIT_CASE(table_of_two_reads),
	  UNIT_CASE(sort_by_p99_puts_idle_rows_last),
	  UNIT_CASE(grpc_server_errors_are_the_servers_faults_alone),
	  UNIT_CASE(database_calls_by_side),
	  UNIT_CASE(what_no_sonde_would_write_is_left_out),
	  UNIT_CASE(not_sonde), UNIT_CASE(durations_with_their_unit))
