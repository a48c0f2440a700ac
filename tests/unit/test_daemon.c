/* Flags, Accept-Encoding, service identity and the string map. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/options.h"
#include "export/httpd.h"
#include "identity/procinfo.h"
#include "kernel/host.h"
#include "unit.h"
#include "util/strmap.h"

static enum options_result parse(struct sonde_options *o, char *err,
				 const char *a1, const char *a2)
{
	char *argv[] = { "sonde", (char *)a1, (char *)a2, NULL };
	int argc = a2 ? 3 : a1 ? 2 : 1;

	return options_parse(argc, argv, o, err, 256);
}

TEST(defaults)
{
	struct sonde_options o;
	char err[256];

	CHECK(parse(&o, err, NULL, NULL) == OPTIONS_RUN);
	CHECK_STR(o.listen_host, "127.0.0.1");
	CHECK_STR(o.listen_port, "9464");
	CHECK(o.pid == 0 && o.port == 0 && !o.verbose);
	CHECK(o.max_routes == 100 && o.max_series == 10000);
	CHECK(o.buckets.n == 14 && !o.buckets_given);
}

TEST(listen_forms)
{
	struct sonde_options o;
	char err[256];

	CHECK(parse(&o, err, "--listen", "[::1]:9000") == OPTIONS_RUN);
	CHECK_STR(o.listen_host, "::1");
	CHECK_STR(o.listen_port, "9000");
	CHECK(parse(&o, err, "--listen=0.0.0.0:1", NULL) == OPTIONS_RUN);
	CHECK_STR(o.listen_host, "0.0.0.0");
	CHECK(parse(&o, err, "--listen", "127.0.0.1:0") == OPTIONS_ERROR);
	CHECK(strstr(err, "--listen: '127.0.0.1:0'") != NULL);
	CHECK(parse(&o, err, "--listen", "127.0.0.1:99999") == OPTIONS_ERROR);
	CHECK(parse(&o, err, "--listen", ":80") == OPTIONS_ERROR);
	CHECK(parse(&o, err, "--listen", "example.com:80") == OPTIONS_ERROR);
	CHECK(strstr(err, "not a numeric") != NULL);
	CHECK(parse(&o, err, "--listen", "127.0.0.1") == OPTIONS_ERROR);
}

TEST(filters_and_limits)
{
	struct sonde_options o;
	char err[256];

	CHECK(parse(&o, err, "--pid", "4242") == OPTIONS_RUN && o.pid == 4242);
	CHECK(parse(&o, err, "-P", "8080") == OPTIONS_RUN && o.port == 8080);
	CHECK(parse(&o, err, "--port", "0") == OPTIONS_ERROR);
	CHECK(parse(&o, err, "--port", "-1") == OPTIONS_ERROR);
	CHECK(parse(&o, err, "--port", "80x") == OPTIONS_ERROR);
	CHECK(strstr(err, "--port: '80x'") != NULL);
	CHECK(parse(&o, err, "--pid", "") == OPTIONS_ERROR);
	CHECK(parse(&o, err, "--max-routes", "5") == OPTIONS_RUN &&
	      o.max_routes == 5);
	CHECK(parse(&o, err, "--max-series", "0") == OPTIONS_ERROR);
	CHECK(parse(&o, err, "--buckets", "0.5,1") == OPTIONS_RUN &&
	      o.buckets.n == 2 && o.buckets_given);
	CHECK(parse(&o, err, "--pid", "1") == OPTIONS_RUN && !o.buckets_given);
	CHECK(parse(&o, err, "--buckets", "1,0.5") == OPTIONS_ERROR);
	CHECK(strstr(err, "--buckets: ") == err);
	CHECK(parse(&o, err, "-v", NULL) == OPTIONS_RUN && o.verbose);
}

TEST(unknown_and_missing)
{
	struct sonde_options o;
	char err[256];

	CHECK(parse(&o, err, "--nope", NULL) == OPTIONS_ERROR);
	CHECK_STR(err, "unknown option '--nope' (see --help)");
	CHECK(parse(&o, err, "--pid", NULL) == OPTIONS_ERROR);
	CHECK_STR(err, "missing value for '--pid' (see --help)");
	CHECK(parse(&o, err, "stray", NULL) == OPTIONS_ERROR);
	CHECK_STR(err, "unexpected argument 'stray' (see --help)");
}

TEST(accept_encoding)
{
	CHECK(httpd_accepts_gzip("gzip"));
	CHECK(httpd_accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"));
	CHECK(httpd_accepts_gzip(" GZIP "));
	CHECK(httpd_accepts_gzip("*"));
	CHECK(!httpd_accepts_gzip(NULL));
	CHECK(!httpd_accepts_gzip(""));
	CHECK(!httpd_accepts_gzip("identity"));
	CHECK(!httpd_accepts_gzip("gzip;q=0"));
	CHECK(!httpd_accepts_gzip("gzip; q=0.000"));
	CHECK(httpd_accepts_gzip("gzip;q=0.5"));
	CHECK(!httpd_accepts_gzip("x-gzip2"));
	CHECK(!httpd_accepts_gzip("br, zstd"));
}

TEST(service_name_from_environment_block)
{
	static const char env[] = "PATH=/bin\0OTEL_SERVICE_NAME=checkout\0X=1";
	static const char none[] = "PATH=/bin\0OTEL_SERVICE_NAMES=x\0";
	static const char empty[] = "OTEL_SERVICE_NAME=\0";
	static const char odd[] = "OTEL_SERVICE_NAME=a b\"c\n";
	char out[SERVICE_NAME_MAX + 1];

	CHECK(procinfo_service_from_environ(env, sizeof(env) - 1, out) == 0);
	CHECK_STR(out, "checkout");
	CHECK(procinfo_service_from_environ(none, sizeof(none) - 1, out) == -1);
	CHECK(procinfo_service_from_environ(empty, sizeof(empty) - 1, out) ==
	      -1);
	CHECK(procinfo_service_from_environ(odd, sizeof(odd) - 1, out) == 0);
	CHECK_STR(out, "a_b\"c_");
}

TEST(service_names_are_bounded)
{
	char long_name[300], out[SERVICE_NAME_MAX + 1];

	memset(long_name, 'x', sizeof(long_name));
	CHECK(procinfo_sanitize(long_name, sizeof(long_name), out) ==
	      SERVICE_NAME_MAX);
	CHECK(strlen(out) == SERVICE_NAME_MAX);
	CHECK(procinfo_sanitize("\xff\x01", 2, out) == 2);
	CHECK_STR(out, "__");
}

TEST(service_of_this_process_is_its_executable)
{
	const char *name = procinfo_service(getpid(), "comm");

	CHECK_STR(name, "test_daemon");
	procinfo_forget(getpid());
	/* A process that is gone falls back to the kernel's command name. */
	CHECK_STR(procinfo_service(0x7ffffff0, "gone-comm"), "gone-comm");
	procinfo_free();
}

TEST(strmap_put_get_remove_and_grow)
{
	struct strmap m = { 0 };
	char key[16];
	int values[1000];

	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		values[i] = i;
		CHECK(strmap_put(&m, key, &values[i]) != NULL);
	}
	CHECK(m.count == 1000);
	CHECK(*(int *)strmap_get(&m, "k567") == 567);
	CHECK(strmap_get(&m, "k1000") == NULL);
	CHECK(strmap_put(&m, "k1", &values[2]) != NULL);
	CHECK(m.count == 1000 && *(int *)strmap_get(&m, "k1") == 2);
	CHECK(*(int *)strmap_remove(&m, "k5") == 5);
	CHECK(strmap_get(&m, "k5") == NULL && m.count == 999);
	CHECK(strmap_remove(&m, "k5") == NULL);
	strmap_clear(&m);
	CHECK(m.count == 0 && strmap_get(&m, "k1") == NULL);
}

TEST(btf_check)
{
	CHECK(host_check_btf("/nonexistent/btf/vmlinux") == -ENOENT);
	CHECK(host_check_btf("/proc/self/status") == 0);
}

UNIT_MAIN("daemon", UNIT_CASE(btf_check), UNIT_CASE(defaults),
	  UNIT_CASE(listen_forms), UNIT_CASE(filters_and_limits),
	  UNIT_CASE(unknown_and_missing), UNIT_CASE(accept_encoding),
	  UNIT_CASE(service_name_from_environment_block),
	  UNIT_CASE(service_names_are_bounded),
	  UNIT_CASE(service_of_this_process_is_its_executable),
	  UNIT_CASE(strmap_put_get_remove_and_grow))
