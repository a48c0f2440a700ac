/* uprobes: /proc/<pid>/maps lines, libssl names, --uprobe resolution and
 * the consumer's filing of function calls. */
#include <errno.h>
#include <stdlib.h>

#include "config/options.h"
#include "export/prom.h"
#include "kernel/uprobes.h"
#include "metrics/registry.h"
#include "proto/dispatch.h"
#include "unit.h"

TEST(maps_line_with_file)
{
	uint64_t dev, ino;
	char path[256];

	CHECK(uprobes_parse_maps_line(
		      "7f0c1a2b3000-7f0c1a2d5000 r-xp 0001f000 fd:01 1234567"
		      "                    /usr/lib/x86_64-linux-gnu/libssl.so.3\n",
		      &dev, &ino, path, sizeof(path)) == 0);
	CHECK_STR(path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
	CHECK(dev == ((uint64_t)0xfd << 32 | 1));
	CHECK(ino == 1234567);
}

TEST(maps_line_anonymous_and_bad)
{
	uint64_t dev, ino;
	char path[16];

	CHECK(uprobes_parse_maps_line(
		      "7ffd1000-7ffd2000 rw-p 00000000 00:00 0\n", &dev, &ino,
		      path, sizeof(path)) == 0);
	CHECK_STR(path, "");
	CHECK(ino == 0);
	CHECK(uprobes_parse_maps_line("garbage\n", &dev, &ino, path,
				      sizeof(path)) == -1);
	/* A path longer than the buffer is refused, not cut. */
	CHECK(uprobes_parse_maps_line("1-2 r-xp 0 08:01 5 /a/very/long/path/"
				      "libssl.so.3\n",
				      &dev, &ino, path, sizeof(path)) == -1);
}

TEST(libssl_names)
{
	CHECK(uprobes_is_libssl("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
	CHECK(uprobes_is_libssl("/usr/lib/libssl.so.1.1"));
	CHECK(uprobes_is_libssl("libssl.so"));
	CHECK(!uprobes_is_libssl("/usr/lib/libssl3.so")); /* NSS */
	CHECK(!uprobes_is_libssl("/usr/lib/libssl.so.3 (deleted)"));
	CHECK(!uprobes_is_libssl("/usr/lib/libcrypto.so.3"));
	CHECK(!uprobes_is_libssl("/opt/libssl.sonic"));
}

TEST(uprobe_flags_repeat)
{
	char *argv[] = { "sonde", "--uprobe", "a:b", "--uprobe",
			 "c:d",	  "--no-tls", NULL };
	struct sonde_options o;
	char err[256];

	CHECK(options_parse(6, argv, &o, err, sizeof(err)) == OPTIONS_RUN);
	CHECK(o.uprobes.n == 2);
	CHECK_STR(o.uprobes.items[0], "a:b");
	CHECK_STR(o.uprobes.items[1], "c:d");
	CHECK(o.no_tls);
	options_free(&o);
}

TEST(add_function_errors)
{
	char err[512];

	CHECK(uprobes_add_function("nocolon", err, sizeof(err)) == -1);
	CHECK_STR(err, "--uprobe: 'nocolon' is not BINARY:SYMBOL");
	CHECK(uprobes_add_function("/proc/self/exe:no_such_symbol_here", err,
				   sizeof(err)) == -1);
	CHECK(strstr(err, "defines no function 'no_such_symbol_here'") != NULL);
	CHECK(uprobes_add_function("/nonexistent:main", err, sizeof(err)) ==
	      -1);
	CHECK_STR(err, "--uprobe /nonexistent:main: no such binary "
		       "'/nonexistent'");
}

/* An empty registry, and --uprobe target 0 (this test's main). */
static void call_setup(void)
{
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	char err[256];

	registry_free();
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	if (!uprobes_function_symbol(0))
		CHECK(uprobes_add_function("/proc/self/exe:main", err,
					   sizeof(err)) == 0);
}

/* A call record of target id that took ns, size bytes of it, from
 * process tgid (no such pid: comm names it). */
static void call(uint32_t tgid, const char *comm, uint32_t id, uint64_t ns,
		 size_t size)
{
	struct sonde_func_event ev = { 0 };

	ev.hdr.kind = SONDE_EV_FUNC_CALL;
	ev.hdr.tgid = tgid;
	memcpy(ev.comm, comm, strlen(comm));
	ev.duration_ns = ns;
	ev.func_id = id;
	dispatch_record(NULL, &ev, size);
}

#define FUNCTION(what, svc)                                                  \
	"sonde_function_duration_seconds_" what "{service_name=\"" svc "\"," \
	"function=\"main\""

/* A function call record becomes one observation under the target's
 * symbol; an id no --uprobe has is ignored. */
TEST(call_events_are_filed_by_target)
{
	struct strbuf sb = { 0 };

	call_setup();
	call(0x7ffffff2, "unitfn", 0, 30000000,
	     sizeof(struct sonde_func_event));
	call(0x7ffffff2, "unitfn", 9, 30000000,
	     sizeof(struct sonde_func_event));
	call(0x7ffffff2, "unitfn", 9, 30000000,
	     sizeof(struct sonde_func_event) - 1);
	prom_render(&sb);
	CHECK(strstr(sb.data, FUNCTION("count", "unitfn") "} 1\n"));
	CHECK(strstr(sb.data,
		     FUNCTION("bucket", "unitfn") ",le=\"0.025\"} 0\n"));
	CHECK(strstr(sb.data,
		     FUNCTION("bucket", "unitfn") ",le=\"0.05\"} 1\n"));
	strbuf_release(&sb);
	registry_free();
}

/* Calls like an earlier one go to the series it found: each counted,
 * each in its own bucket. */
TEST(repeated_calls_are_each_counted)
{
	struct strbuf sb = { 0 };

	call_setup();
	for (int i = 0; i < 5; i++)
		call(0x7ffffff3, "unitrep", 0, i < 2 ? 1000 : 30000000,
		     sizeof(struct sonde_func_event));
	prom_render(&sb);
	CHECK(strstr(sb.data, FUNCTION("count", "unitrep") "} 5\n"));
	CHECK(strstr(sb.data,
		     FUNCTION("bucket", "unitrep") ",le=\"0.005\"} 2\n"));
	strbuf_release(&sb);
	registry_free();
}

UNIT_MAIN("uprobes", UNIT_CASE(maps_line_with_file),
	  UNIT_CASE(maps_line_anonymous_and_bad), UNIT_CASE(libssl_names),
	  UNIT_CASE(uprobe_flags_repeat), UNIT_CASE(add_function_errors),
	  UNIT_CASE(call_events_are_filed_by_target),
	  UNIT_CASE(repeated_calls_are_each_counted))
