/* Go programs built by the unit tests with the machine's Go toolchain
 * (Debian's golang-go), from the standard library only, with the go
 * command's caches inside the test's own directory: nothing is read from
 * or left in $HOME. */
#ifndef SONDE_TEST_GOBUILD_H
#define SONDE_TEST_GOBUILD_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GOBUILD_GO "/usr/bin/go"

/* A program that links crypto/tls and net/http and uses them; the tests
 * build it, never run it. The calls behind the argument check keep
 * crypto/tls.(*Conn).Read and Write and the HTTP client in the binary
 * (the linker drops unreachable functions), and tls.Dial brings in the
 * types under a client connection: tls.Conn, net.TCPConn, net.netFD and
 * internal/poll.FD. */
static const char gobuild_tls_program[] =
	"package main\n"
	"\n"
	"import (\n"
	"\t\"crypto/tls\"\n"
	"\t\"fmt\"\n"
	"\t\"net/http\"\n"
	"\t\"os\"\n"
	")\n"
	"\n"
	"func main() {\n"
	"\tif len(os.Args) > 1 {\n"
	"\t\tc, err := tls.Dial(\"tcp\", os.Args[1], &tls.Config{})\n"
	"\t\tif err == nil {\n"
	"\t\t\tc.Write([]byte(\"x\"))\n"
	"\t\t\tb := make([]byte, 1)\n"
	"\t\t\tc.Read(b)\n"
	"\t\t}\n"
	"\t\thttp.Get(os.Args[1])\n"
	"\t}\n"
	"\tfmt.Println(\"ok\")\n"
	"}\n";

static inline bool gobuild_available(void)
{
	return access(GOBUILD_GO, X_OK) == 0;
}

/* "go ARGS" run in dir with its caches there and cgo on or off, into
 * cmd; the caller adds the redirections. */
static inline void gobuild_command(char *cmd, size_t len, const char *dir,
				   int cgo, const char *args)
{
	snprintf(cmd, len,
		 "cd %s && env GOCACHE=%s/gocache GOPATH=%s/gopath GOFLAGS= "
		 "GO111MODULE=off CGO_ENABLED=%d " GOBUILD_GO " %s",
		 dir, dir, dir, cgo, args);
}

/* Runs "go ARGS" in dir, its caches there, output to dir/go.log; returns
 * the exit status. The standard library is installed built with cgo:
 * with cgo off, go would build net and all above it again (12 s on two
 * CPUs), so cgo stays on unless the build fails with it (no C
 * compiler). With cgo on, the go command still links internally, with
 * Go's own linker, when only the standard library's cgo packages (net,
 * runtime/cgo) are used: the binary then also holds their C functions
 * and needs the dynamic loader. */
static inline int gobuild_go(const char *dir, const char *args)
{
	char cmd[2048];
	int rc = -1;

	for (int cgo = 1; cgo >= 0 && rc; cgo--) {
		size_t n;

		gobuild_command(cmd, sizeof(cmd), dir, cgo, args);
		n = strlen(cmd);
		snprintf(cmd + n, sizeof(cmd) - n, " >%s/go.log 2>&1", dir);
		rc = system(cmd);
	}
	if (rc)
		fprintf(stderr, "failed (%d): %s\n", rc, cmd);
	return rc;
}

/* The first line "go ARGS" prints ("env GOVERSION", "version"), run as
 * gobuild_go runs it, its newline dropped and cut to outsz; errors to
 * dir/go.log. 0, or -1 when go fails or prints nothing (said). */
static inline int gobuild_output(const char *dir, const char *args, char *out,
				 size_t outsz)
{
	char cmd[2048];
	size_t n;
	FILE *p;
	int ok;

	if (!outsz)
		return -1;
	gobuild_command(cmd, sizeof(cmd), dir, 1, args);
	n = strlen(cmd);
	snprintf(cmd + n, sizeof(cmd) - n, " 2>%s/go.log", dir);
	p = popen(cmd, "r");
	if (!p) {
		perror("gobuild: popen");
		return -1;
	}
	ok = fgets(out, (int)outsz, p) != NULL;
	/* Read to the end: go must not die of SIGPIPE. */
	while (fgetc(p) != EOF)
		;
	if (pclose(p) != 0 || !ok) {
		fprintf(stderr, "failed: %s\n", cmd);
		out[0] = '\0';
		return -1;
	}
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/* Writes source as dir/NAME.go and builds it to dir/NAME with ldflags
 * ("" or "-s -w"); the binary's path goes to out. 0, or -1 (said). */
static inline int gobuild(const char *dir, const char *name, const char *source,
			  const char *ldflags, char *out, size_t outsz)
{
	char src[512], args[1200];
	FILE *f;
	int ok;

	snprintf(src, sizeof(src), "%s/%s.go", dir, name);
	f = fopen(src, "w");
	if (!f)
		return -1;
	ok = fputs(source, f) >= 0;
	if (fclose(f) || !ok)
		return -1;
	snprintf(out, outsz, "%s/%s", dir, name);
	snprintf(args, sizeof(args), "build -ldflags='%s' -o %s %s", ldflags,
		 out, src);
	return gobuild_go(dir, args) ? -1 : 0;
}

#endif
