/* uprobes: /proc/<pid>/maps lines, libssl names, --uprobe resolution and
 * the consumer's filing of function calls. */
#include <errno.h>
#include <stdlib.h>

#include "events.h"
#include "options.h"
#include "registry.h"
#include "uprobes.h"
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

/* A function call record becomes one observation under the target's
 * symbol; an id no --uprobe has is ignored. */
TEST(call_events_are_filed_by_target)
{
	struct sonde_func_event ev = { 0 };
	struct histogram_bounds b;
	struct registry_limits lim = { 100, 100, 100 };
	struct strbuf sb = { 0 };
	char err[256];

	registry_free();
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	CHECK(uprobes_add_function("/proc/self/exe:main", err, sizeof(err)) ==
	      0);
	ev.hdr.kind = SONDE_EV_FUNC_CALL;
	ev.hdr.tgid = 0x7ffffff2;
	memcpy(ev.comm, "unitfn", 7);
	ev.duration_ns = 30000000;
	ev.func_id = 0;
	events_handle(NULL, &ev, sizeof(ev));
	ev.func_id = 9;
	events_handle(NULL, &ev, sizeof(ev));
	events_handle(NULL, &ev, sizeof(ev) - 1);
	registry_render(&sb);
	CHECK(strstr(sb.data,
		     "sonde_function_duration_seconds_count{"
		     "service_name=\"unitfn\",function=\"main\"} 1\n"));
	CHECK(strstr(sb.data, "sonde_function_duration_seconds_bucket{"
			      "service_name=\"unitfn\",function=\"main\","
			      "le=\"0.025\"} 0\n"));
	CHECK(strstr(sb.data, "sonde_function_duration_seconds_bucket{"
			      "service_name=\"unitfn\",function=\"main\","
			      "le=\"0.05\"} 1\n"));
	strbuf_release(&sb);
	registry_free();
}

/* The starts of SSL_read_ex and SSL_read in Debian 12's libssl.so.3
 * (3.0.19), and of the internal function both call (at 0x35290; SSL_read_ex
 * at 0x354c0, SSL_read at 0x35430). */
static const uint8_t read_ex_code[] = {
	0x48, 0x83, 0xec, 0x08,	      /* sub $0x8,%rsp */
	0xe8, 0xc7, 0xfd, 0xff, 0xff, /* call 0x35290 */
	0x31, 0xd2,		      /* xor %edx,%edx */
};
static const uint8_t read_code_start[] = {
	0x48, 0x83, 0xec, 0x18,			     /* sub $0x18,%rsp */
	0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0, /* mov %fs:0x28,%rax */
	0x48, 0x89, 0x44, 0x24, 0x08,		     /* mov %rax,8(%rsp) */
	0x31, 0xc0,				     /* xor %eax,%eax */
	0x85, 0xd2,				     /* test %edx,%edx */
	0x78, 0x2f,				     /* js */
	0x48, 0x89, 0xe1,			     /* mov %rsp,%rcx */
	0x48, 0x63, 0xd2,			     /* movslq %edx,%rdx */
	0xe8, 0x3d, 0xfe, 0xff, 0xff, /* call 0x35290 (at +0x1e) */
};
static const uint8_t internal_code[] = { 0x41, 0x55, 0x41, 0x54 };

TEST(wrapper_call_leads_to_the_internal_function)
{
	int64_t target = 0;

	CHECK(uprobes_first_call(read_ex_code, sizeof(read_ex_code),
				 &target) == 0);
	CHECK(0x354c0 + target == 0x35290);
	/* SSL_read calls the same function, further in. */
	CHECK(uprobes_calls(read_code_start, sizeof(read_code_start),
			    0x35290 - 0x35430));
	CHECK(!uprobes_calls(read_code_start, sizeof(read_code_start),
			     0x35290 - 0x35430 + 1));
}

TEST(first_call_needs_a_plain_prologue)
{
	static const uint8_t endbr_push_call[] = {
		0xf3, 0x0f, 0x1e, 0xfa, 0x53, 0x48, 0x89, 0xfb,
		0xe8, 0x10, 0x00, 0x00, 0x00,
	};
	static const uint8_t load_then_call[] = {
		0x48, 0x8b, 0x07, 0xe8, 0x10, 0x00, 0x00, 0x00,
	};
	static const uint8_t cut_call[] = { 0x48, 0x83, 0xec, 0x08, 0xe8, 0x01 };
	int64_t target = 0;

	CHECK(uprobes_first_call(endbr_push_call, sizeof(endbr_push_call),
				 &target) == 0);
	CHECK(target == 13 + 0x10);
	/* A load from memory is not prologue: the call may not get the
	 * wrapper's own arguments. */
	CHECK(uprobes_first_call(load_then_call, sizeof(load_then_call),
				 &target) == -1);
	CHECK(uprobes_first_call(cut_call, sizeof(cut_call), &target) == -1);
	CHECK(uprobes_first_call(read_code_start, sizeof(read_code_start),
				 &target) == -1);
}

TEST(cheap_entry_is_a_push_after_an_optional_endbr64)
{
	static const uint8_t endbr_push[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55 };
	static const uint8_t endbr_sub[] = { 0xf3, 0x0f, 0x1e, 0xfa,
					     0x48, 0x83, 0xec, 0x08 };
	size_t skip = 99;

	CHECK(uprobes_cheap_entry(internal_code, sizeof(internal_code),
				  &skip) == 0);
	CHECK(skip == 0);
	CHECK(uprobes_cheap_entry(endbr_push, sizeof(endbr_push), &skip) == 0);
	CHECK(skip == 4);
	CHECK(uprobes_cheap_entry(endbr_sub, sizeof(endbr_sub), &skip) == -1);
	CHECK(uprobes_cheap_entry(read_ex_code, sizeof(read_ex_code),
				  &skip) == -1);
}

UNIT_MAIN("uprobes", UNIT_CASE(maps_line_with_file),
	  UNIT_CASE(maps_line_anonymous_and_bad), UNIT_CASE(libssl_names),
	  UNIT_CASE(uprobe_flags_repeat), UNIT_CASE(add_function_errors),
	  UNIT_CASE(call_events_are_filed_by_target),
	  UNIT_CASE(wrapper_call_leads_to_the_internal_function),
	  UNIT_CASE(first_call_needs_a_plain_prologue),
	  UNIT_CASE(cheap_entry_is_a_push_after_an_optional_endbr64))
