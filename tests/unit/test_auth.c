/* Basic-auth users file and password checks. */
#include <stdlib.h>
#include <unistd.h>

#include "export/auth.h"
#include "unit.h"

/* openssl passwd -6 -salt saltsalt secret; openssl passwd -5 -salt abc
 * other */
#define HASH_SECRET                                                           \
	"$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5kn" \
	"V8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1"
#define HASH_OTHER "$5$abc$dMzZpLNEBTUXNqfMMCjiwTv2sBMGc7Cv2T3ti4L/r2."

static char path[] = "/tmp/sonde-auth-XXXXXX";

static int load(const char *text, char *err)
{
	int fd = mkstemp(path);
	int rc;

	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	rc = auth_load(path, err, 256);
	unlink(path);
	strcpy(path, "/tmp/sonde-auth-XXXXXX");
	return rc;
}

TEST(good_file_checks_passwords)
{
	char err[256];

	CHECK(load("# scrapers\n\nprom:" HASH_SECRET "\r\nops:" HASH_OTHER "\n",
		   err) == 0);
	CHECK(auth_enabled());
	CHECK(auth_check("prom", "secret"));
	CHECK(auth_check("ops", "other"));
	CHECK(!auth_check("prom", "other"));
	CHECK(!auth_check("prom", "secre"));
	CHECK(!auth_check("prom", ""));
	CHECK(!auth_check("nobody", "secret"));
	CHECK(!auth_check(NULL, NULL));
	CHECK(!auth_check("prom", NULL));
	auth_free();
	CHECK(!auth_enabled());
	CHECK(!auth_check("prom", "secret"));
}

TEST(bad_files_name_the_line_and_reason)
{
	char err[256];

	CHECK(load("prom:secret\n", err) == -1);
	CHECK(strstr(err, ":1: password is not a crypt(3) hash") != NULL);
	CHECK(load("# c\nprom:" HASH_SECRET "\nnocolon\n", err) == -1);
	CHECK(strstr(err, ":3: expected user:hash") != NULL);
	CHECK(!auth_enabled());
	CHECK(load(":" HASH_SECRET "\n", err) == -1);
	CHECK(strstr(err, ":1: expected user:hash") != NULL);
	CHECK(load("x:$99$nope$abc\n", err) == -1);
	CHECK(strstr(err, ":1: hash algorithm not supported") != NULL);
	CHECK(load("# only comments\n", err) == -1);
	CHECK(strstr(err, ": no users") != NULL);
	CHECK(auth_load("/nonexistent/users", err, sizeof(err)) == -1);
	CHECK_STR(err, "/nonexistent/users: No such file or directory");
}

UNIT_MAIN("auth", UNIT_CASE(good_file_checks_passwords),
	  UNIT_CASE(bad_files_name_the_line_and_reason))
