/* sslprobe: where the OpenSSL probes go, from the machine code at the
 * start of the wrappers, and on the host's own libssl. */
#include <errno.h>
#include <stdio.h>

#include "kernel/sslprobe.h"
#include "unit.h"

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

	CHECK(sslprobe_first_call(read_ex_code, sizeof(read_ex_code),
				  &target) == 0);
	CHECK(0x354c0 + target == 0x35290);
	/* SSL_read calls the same function, further in. */
	CHECK(sslprobe_calls(read_code_start, sizeof(read_code_start),
			     0x35290 - 0x35430));
	CHECK(!sslprobe_calls(read_code_start, sizeof(read_code_start),
			      0x35290 - 0x35430 + 1));
}

TEST(first_call_needs_a_plain_prologue)
{
	static const uint8_t endbr_push_call[] = {
		0xf3, 0x0f, 0x1e, 0xfa, 0x53, 0x48, 0x89,
		0xfb, 0xe8, 0x10, 0x00, 0x00, 0x00,
	};
	static const uint8_t load_then_call[] = {
		0x48, 0x8b, 0x07, 0xe8, 0x10, 0x00, 0x00, 0x00,
	};
	static const uint8_t cut_call[] = {
		0x48, 0x83, 0xec, 0x08, 0xe8, 0x01
	};
	int64_t target = 0;

	CHECK(sslprobe_first_call(endbr_push_call, sizeof(endbr_push_call),
				  &target) == 0);
	CHECK(target == 13 + 0x10);
	/* A load from memory is not prologue: the call may not get the
	 * wrapper's own arguments. */
	CHECK(sslprobe_first_call(load_then_call, sizeof(load_then_call),
				  &target) == -1);
	CHECK(sslprobe_first_call(cut_call, sizeof(cut_call), &target) == -1);
	CHECK(sslprobe_first_call(read_code_start, sizeof(read_code_start),
				  &target) == -1);
}

TEST(cheap_entry_is_a_push_after_an_optional_endbr64)
{
	static const uint8_t endbr_push[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55 };
	static const uint8_t endbr_sub[] = { 0xf3, 0x0f, 0x1e, 0xfa,
					     0x48, 0x83, 0xec, 0x08 };
	size_t skip = 99;

	CHECK(sslprobe_cheap_entry(internal_code, sizeof(internal_code), false,
				   &skip) == 0);
	CHECK(skip == 0);
	CHECK(sslprobe_cheap_entry(endbr_push, sizeof(endbr_push), false,
				   &skip) == 0);
	CHECK(skip == 4);
	CHECK(sslprobe_cheap_entry(endbr_sub, sizeof(endbr_sub), false,
				   &skip) == -1);
	CHECK(sslprobe_cheap_entry(read_ex_code, sizeof(read_ex_code), false,
				   &skip) == -1);
}

/* SSL_free in Debian 12's libssl.so.3 and in node 20 (OpenSSL linked
 * in): a NULL check of its argument, then a jump. */
TEST(entry_only_probe_may_sit_on_the_jump_after_a_null_check)
{
	static const uint8_t free_libssl[] = {
		0x48, 0x85, 0xff,		    /* test %rdi,%rdi */
		0x0f, 0x84, 0x97, 0x03, 0x00, 0x00, /* je rel32 */
		0x41, 0x55,			    /* push %r13 */
	};
	static const uint8_t endbr_test_je8[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x48,
						  0x85, 0xff, 0x74, 0x16 };
	static const uint8_t test_then_mov[] = { 0x48, 0x85, 0xff, 0xb8,
						 0xff, 0xff, 0xff, 0xff };
	size_t skip = 99;

	CHECK(sslprobe_cheap_entry(free_libssl, sizeof(free_libssl), true,
				   &skip) == 0);
	CHECK(skip == 3);
	CHECK(sslprobe_cheap_entry(endbr_test_je8, sizeof(endbr_test_je8), true,
				   &skip) == 0);
	CHECK(skip == 7);
	/* With a return probe the stack must be as the call left it, so
	 * only the function's start will do. */
	CHECK(sslprobe_cheap_entry(free_libssl, sizeof(free_libssl), false,
				   &skip) == -1);
	CHECK(sslprobe_cheap_entry(test_then_mov, sizeof(test_then_mov), true,
				   &skip) == -1);
	/* A jump cut short by the end of the code read is not one. */
	CHECK(sslprobe_cheap_entry(free_libssl, 6, true, &skip) == -1);
}

/* The host's libssl (Debian 12's 3.0 on the machines sonde is tested
 * on): reads and writes are each probed once, where SSL_read and
 * SSL_read_ex (SSL_write and SSL_write_ex) both go, and the probe sits
 * on a push; the handshake on its own symbol; SSL_free, entry only, on
 * the jump after its NULL check. */
#define HOST_LIBSSL "/lib/x86_64-linux-gnu/libssl.so.3"

static void read_at(const char *path, uint64_t off, uint8_t *buf, size_t n)
{
	FILE *f = fopen(path, "re");

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fseeko(f, (off_t)off, SEEK_SET) == 0);
	CHECK(fread(buf, 1, n, f) == n);
	fclose(f);
}

TEST(host_libssl_is_probed_where_the_wrappers_go)
{
	struct sslprobe_point p[SSLPROBE_FNS];
	uint8_t code[16];
	size_t skip;
	int n = sslprobe_points(HOST_LIBSSL, p);

	CHECK(sslprobe_has_openssl(HOST_LIBSSL));
	CHECK(n == 4);
	if (n != 4)
		return;
	CHECK(p[0].fn == SSLPROBE_READ_EX && p[0].inner);
	CHECK(p[1].fn == SSLPROBE_WRITE_EX && p[1].inner);
	CHECK(p[2].fn == SSLPROBE_HANDSHAKE && !p[2].inner);
	CHECK(p[3].fn == SSLPROBE_FREE && p[3].entry_only);
	for (int i = 0; i < 3; i++)
		CHECK(!p[i].entry_only);
	CHECK(p[0].offset != p[1].offset);
	for (int i = 0; i < 2; i++) {
		read_at(HOST_LIBSSL, p[i].offset, code, sizeof(code));
		CHECK(sslprobe_cheap_entry(code, sizeof(code), false, &skip) ==
		      0);
		CHECK(skip == 0);
	}
	/* On the je, 3 bytes past SSL_free's test %rdi,%rdi. */
	read_at(HOST_LIBSSL, p[3].offset - 3, code, sizeof(code));
	CHECK(sslprobe_cheap_entry(code, sizeof(code), true, &skip) == 0);
	CHECK(skip == 3);
}

TEST(files_without_openssl_have_no_points)
{
	struct sslprobe_point p[SSLPROBE_FNS];

	CHECK(!sslprobe_has_openssl("/proc/self/exe"));
	CHECK(sslprobe_points("/proc/self/exe", p) == -ENOENT);
	CHECK(sslprobe_points("/nonexistent/libssl.so.3", p) == -ENOENT);
	CHECK(!sslprobe_has_openssl("/nonexistent/libssl.so.3"));
}

UNIT_MAIN("sslprobe", UNIT_CASE(wrapper_call_leads_to_the_internal_function),
	  UNIT_CASE(first_call_needs_a_plain_prologue),
	  UNIT_CASE(cheap_entry_is_a_push_after_an_optional_endbr64),
	  UNIT_CASE(entry_only_probe_may_sit_on_the_jump_after_a_null_check),
	  UNIT_CASE(host_libssl_is_probed_where_the_wrappers_go),
	  UNIT_CASE(files_without_openssl_have_no_points))
