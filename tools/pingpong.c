/* pingpong: HTTP exchanges over loopback, one at a time, for the benchmark.
 *
 *   pingpong PORT SECONDS
 *
 * One thread holds both ends of one TCP connection on 127.0.0.1:PORT. An
 * exchange is four calls: the client writes a GET, the server reads it,
 * writes a 200 response, the client reads it. So each exchange is one
 * server exchange and one client exchange to a tracer, and four runs of
 * its read and write programs, with no other work around them: nginx and
 * wrk spend tens of microseconds a request of their own, and the host's
 * drift hides a tracer's share of it; here the share is the most of it
 * there can be, and it shows.
 *
 * The exchanges run in passes of PASS_EXCHANGES for SECONDS. Prints
 * "pingpong: N exchanges in S s; ns/exchange fastest F median M" and exits
 * 0. The fastest pass is the one the rest of the host disturbed least:
 * with the process pinned to a CPU (taskset), it moves by a percent or so
 * from run to run, where throughput under wrk moves by ten. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PASS_EXCHANGES 2000
#define MAX_SECONDS 3600
/* A pass takes over a millisecond: that would be 500 ns an exchange, four
 * syscalls and two loopback packets, where this host takes 9 us. */
#define PASSES_PER_SECOND 1000

static const char request[] = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char response[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int fail(const char *what)
{
	fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Reads exactly n bytes (a peer's whole message) from fd; 0 on success. */
static int read_all(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* Writes all n bytes to fd; 0 on success. */
static int write_all(int fd, const char *buf, size_t n)
{
	size_t put = 0;

	while (put < n) {
		ssize_t w = write(fd, buf + put, n - put);

		if (w < 0)
			return -1;
		put += (size_t)w;
	}
	return 0;
}

/* The client's and the server's ends of one loopback connection. */
static int connect_pair(unsigned short port, int *client, int *server)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_port = htons(port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, listener;

	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 ||
	    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(listener, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(listener, 1))
		return fail("listen");
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*client < 0 ||
	    connect(*client, (struct sockaddr *)&addr, sizeof(addr)))
		return fail("connect");
	*server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (*server < 0)
		return fail("accept");
	close(listener);
	/* Each message leaves at once, as a server's response does. */
	if (setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return fail("TCP_NODELAY");
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	char buf[sizeof(request) + sizeof(response)];
	unsigned long long exchanges = 0;
	double start, pass_start, *passes;
	long port, seconds, max_passes, n = 0;
	int client = -1, server = -1;
	char *end1, *end2;

	port = argc == 3 ? strtol(argv[1], &end1, 10) : 0;
	seconds = argc == 3 ? strtol(argv[2], &end2, 10) : 0;
	if (argc != 3 || *end1 || *end2 || port < 1 || port > 65535 ||
	    seconds < 1 || seconds > MAX_SECONDS) {
		fprintf(stderr,
			"usage: pingpong PORT SECONDS (port 1 to 65535, "
			"seconds 1 to %d)\n",
			MAX_SECONDS);
		return 2;
	}
	max_passes = seconds * PASSES_PER_SECOND;
	passes = calloc((size_t)max_passes, sizeof(*passes));
	if (!passes)
		return fail("calloc");
	if (connect_pair((unsigned short)port, &client, &server))
		return 1;
	start = now_ns();
	do {
		pass_start = now_ns();
		for (int i = 0; i < PASS_EXCHANGES; i++) {
			if (write_all(client, request, sizeof(request) - 1) ||
			    read_all(server, buf, sizeof(request) - 1) ||
			    write_all(server, response, sizeof(response) - 1) ||
			    read_all(client, buf, sizeof(response) - 1))
				return fail("exchange");
		}
		passes[n++] = (now_ns() - pass_start) / PASS_EXCHANGES;
		exchanges += PASS_EXCHANGES;
	} while (now_ns() - start < (double)seconds * 1e9 && n < max_passes);
	qsort(passes, (size_t)n, sizeof(*passes), by_value);
	printf("pingpong: %llu exchanges in %.3f s; ns/exchange fastest %.1f "
	       "median %.1f\n",
	       exchanges, (now_ns() - start) / 1e9, passes[0], passes[n / 2]);
	close(client);
	close(server);
	free(passes);
	return 0;
}
