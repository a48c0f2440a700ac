/* gRPC's content type, status codes and method labels. */
#include "proto/grpc.h"
#include "unit.h"

static bool content_type(const char *v)
{
	return grpc_content_type((const uint8_t *)v, strlen(v));
}

static int status(const char *v)
{
	return grpc_status_parse((const uint8_t *)v, strlen(v));
}

TEST(content_types_that_name_grpc)
{
	CHECK(content_type("application/grpc"));
	CHECK(content_type("application/grpc+proto"));
	CHECK(content_type("application/grpc+json"));
	CHECK(content_type("application/grpc;charset=utf-8"));
	CHECK(content_type("Application/GRPC"));
	CHECK(!content_type("application/grpc-web"));
	CHECK(!content_type("application/grpc-web+proto"));
	CHECK(!content_type("application/grpcx"));
	CHECK(!content_type("application/grp"));
	CHECK(!content_type("text/plain"));
	CHECK(!content_type(""));
}

TEST(status_values_are_the_codes_0_to_16)
{
	char v[4];

	for (int i = 0; i <= GRPC_MAX_CODE; i++) {
		snprintf(v, sizeof(v), "%d", i);
		CHECK(status(v) == i);
	}
	CHECK(status("00") == 0);
	CHECK(status("07") == 7);
	CHECK(status("17") == GRPC_UNKNOWN);
	CHECK(status("99") == GRPC_UNKNOWN);
	CHECK(status("100") == GRPC_UNKNOWN);
	CHECK(status("") == GRPC_UNKNOWN);
	CHECK(status("-1") == GRPC_UNKNOWN);
	CHECK(status(" 1") == GRPC_UNKNOWN);
	CHECK(status("1a") == GRPC_UNKNOWN);
}

TEST(every_code_has_its_name)
{
	CHECK_STR(grpc_status_name(0), "OK");
	CHECK_STR(grpc_status_name(1), "CANCELLED");
	CHECK_STR(grpc_status_name(4), "DEADLINE_EXCEEDED");
	CHECK_STR(grpc_status_name(5), "NOT_FOUND");
	CHECK_STR(grpc_status_name(12), "UNIMPLEMENTED");
	CHECK_STR(grpc_status_name(14), "UNAVAILABLE");
	CHECK_STR(grpc_status_name(16), "UNAUTHENTICATED");
	CHECK_STR(grpc_status_name(17), "UNKNOWN");
	CHECK_STR(grpc_status_name(-1), "UNKNOWN");
	for (int i = 0; i <= GRPC_MAX_CODE; i++) {
		const char *n = grpc_status_name(i);

		CHECK(n && n[0]);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(n, grpc_status_name(j)) != 0);
	}
}

TEST(http_statuses_and_resets_map_to_codes)
{
	CHECK(grpc_status_from_http(400) == 13);
	CHECK(grpc_status_from_http(401) == 16);
	CHECK(grpc_status_from_http(403) == 7);
	CHECK(grpc_status_from_http(404) == 12);
	CHECK(grpc_status_from_http(429) == 14);
	CHECK(grpc_status_from_http(502) == 14);
	CHECK(grpc_status_from_http(503) == 14);
	CHECK(grpc_status_from_http(504) == 14);
	CHECK(grpc_status_from_http(500) == GRPC_UNKNOWN);
	CHECK(grpc_status_from_http(200) == GRPC_UNKNOWN);
	CHECK(grpc_status_from_reset(0x8) == 1);
	CHECK(grpc_status_from_reset(0x7) == 14);
	CHECK(grpc_status_from_reset(0xb) == 8);
	CHECK(grpc_status_from_reset(0xc) == 7);
	CHECK(grpc_status_from_reset(0x0) == 13);
	CHECK(grpc_status_from_reset(0x2) == 13);
	CHECK(grpc_status_from_reset(0xffffffff) == 13);
}

static uint64_t timeout(const char *v)
{
	return grpc_timeout_parse((const uint8_t *)v, strlen(v));
}

TEST(timeouts_and_deadlines)
{
	CHECK(timeout("150m") == 150000000ULL);
	CHECK(timeout("1S") == 1000000000ULL);
	CHECK(timeout("2M") == 120000000000ULL);
	CHECK(timeout("1H") == 3600000000000ULL);
	CHECK(timeout("250u") == 250000ULL);
	CHECK(timeout("99999999n") == 99999999ULL);
	CHECK(timeout("0m") == 0);
	CHECK(timeout("99999999H") == UINT64_MAX); /* saturated */
	CHECK(timeout("123456789m") == 0);	   /* nine digits */
	CHECK(timeout("m") == 0);
	CHECK(timeout("15") == 0);
	CHECK(timeout("15s") == 0);
	CHECK(timeout("1 m") == 0);
	CHECK(timeout("") == 0);
	CHECK(grpc_deadline_passed(160000000, 160000000));
	CHECK(grpc_deadline_passed(160000000, 120000000));
	CHECK(!grpc_deadline_passed(160000000, 119999999));
	CHECK(!grpc_deadline_passed(160000000, 1000));
	CHECK(!grpc_deadline_passed(0, 1000000000));
}

static const char *method(const char *path)
{
	static char out[32];

	memset(out, '#', sizeof(out));
	if (!grpc_method(path, strlen(path), out, sizeof(out)))
		return NULL;
	return out;
}

TEST(methods_are_service_slash_method)
{
	CHECK_STR(method("/shop.v1.Cart/AddItem"), "shop.v1.Cart/AddItem");
	CHECK_STR(method("/S/M"), "S/M");
	CHECK_STR(method("/grpc.health.v1.Health/Check"),
		  "grpc.health.v1.Health/Check");
	CHECK_STR(method("/a_b-c/d_e"), "a_b-c/d_e");
	/* 30 bytes fit a 32-byte buffer with the slash dropped. */
	CHECK_STR(method("/aaaaaaaaaaaaaa/bbbbbbbbbbbbbb"),
		  "aaaaaaaaaaaaaa/bbbbbbbbbbbbbb");
	CHECK(method("/aaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb") == NULL);
	CHECK(method("") == NULL);
	CHECK(method("/") == NULL);
	CHECK(method("//M") == NULL);
	CHECK(method("/S/") == NULL);
	CHECK(method("/S") == NULL);
	CHECK(method("S/M") == NULL);
	CHECK(method("/S/M/x") == NULL);
	CHECK(method("/S/M?x=1") == NULL);
	CHECK(method("/S/M N") == NULL);
	CHECK(method("/S/\xc3\xa9") == NULL);
	CHECK(method("/users/{id}") == NULL);
}

UNIT_MAIN("grpc", UNIT_CASE(content_types_that_name_grpc),
	  UNIT_CASE(status_values_are_the_codes_0_to_16),
	  UNIT_CASE(every_code_has_its_name),
	  UNIT_CASE(http_statuses_and_resets_map_to_codes),
	  UNIT_CASE(timeouts_and_deadlines),
	  UNIT_CASE(methods_are_service_slash_method))
