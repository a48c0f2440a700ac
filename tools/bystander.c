/* bystander: a process that never touches a socket, for the benchmark.
 *
 *   bystander SECONDS
 *
 * For SECONDS, reads 64 bytes from /dev/zero, then writes 64 bytes into a
 * pipe and reads them back: three read and write syscalls a round, the
 * kind a database, a build or a shell makes all day. Prints
 * "bystander: CALLS calls in SECONDS s" and exits 0. tools/bench.py runs
 * it with no agent, with the floor and with sonde: what the rest of a
 * host pays for an agent whose hooks fire on every read and write, or on
 * socket I/O only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Rounds between two looks at the clock: a look costs about as much as
 * one syscall, so the clock is a small share of the loop. */
#define ROUNDS_PER_CHECK 256
#define MAX_SECONDS 3600

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "bystander: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	char buf[64], *end;
	unsigned long long calls = 0;
	double start, elapsed;
	long seconds;
	int zero, pipefd[2];

	seconds = argc == 2 ? strtol(argv[1], &end, 10) : 0;
	if (argc != 2 || *end || seconds < 1 || seconds > MAX_SECONDS) {
		fprintf(stderr, "usage: bystander SECONDS (1 to %d)\n",
			MAX_SECONDS);
		return 2;
	}
	zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (zero < 0)
		return fail("/dev/zero");
	if (pipe(pipefd))
		return fail("pipe");
	start = now();
	do {
		for (int i = 0; i < ROUNDS_PER_CHECK; i++) {
			if (read(zero, buf, sizeof(buf)) != sizeof(buf))
				return fail("read /dev/zero");
			if (write(pipefd[1], buf, sizeof(buf)) != sizeof(buf))
				return fail("write pipe");
			if (read(pipefd[0], buf, sizeof(buf)) != sizeof(buf))
				return fail("read pipe");
		}
		calls += 3 * ROUNDS_PER_CHECK;
		elapsed = now() - start;
	} while (elapsed < (double)seconds);
	printf("bystander: %llu calls in %.3f s\n", calls, elapsed);
	return 0;
}
