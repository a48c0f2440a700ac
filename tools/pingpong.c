/* pingpong: HTTP exchanges over loopback, one at a time, for the benchmark.
 *
 *   pingpong [--split] [--h2] PORT SECONDS
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
 * --split: the server end and the client end are two processes (forked,
 * on whatever CPUs the caller allows), so that a tracer can be told to
 * watch one of them (sonde --pid, floor --bound --pid). pingpong prints
 * "pingpong: server PID client PID" and waits for a line (or end of file)
 * on its standard input before the client connects: a tracer started in
 * between sees the connection from its accept or connect on.
 *
 * --h2: the exchanges are HTTP/2 (RFC 9113) instead of HTTP/1.1. The
 * client opens with the 24-byte preface and an empty SETTINGS, the server
 * answers SETTINGS and its ACK, the client ACKs; then each exchange is a
 * new stream (1, 3, 5, ...): the client writes a HEADERS frame (GET /ping,
 * END_STREAM), the server a HEADERS frame (:status 200) and a DATA frame
 * ("ok\n", END_STREAM) in one write. The header blocks use the static
 * table and literals that are never indexed: each is whole by itself.
 *
 * The exchanges run in passes of PASS_EXCHANGES for SECONDS. The client
 * prints "pingpong: N exchanges in S s; ns/exchange fastest F median M"
 * and pingpong exits 0. The fastest pass is the one the rest of the host
 * disturbed least: with the process pinned to a CPU (taskset), it moves
 * by a percent or so from run to run, where throughput under wrk moves by
 * ten. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PASS_EXCHANGES 2000
#define MAX_SECONDS 3600
/* A pass takes over a millisecond: that would be 500 ns an exchange, four
 * syscalls and two loopback packets, where this host takes 9 us. */
#define PASSES_PER_SECOND 1000
/* The longest message either dialect sends. */
#define MAX_MESSAGE 64

/* A message one end writes whole and the other reads whole. */
struct message {
	const char *bytes;
	size_t len;
	bool from_client;
};

/* What the two ends say: first the opening messages, in turn, then per
 * exchange a request and a response. */
struct dialect {
	const struct message *opening;
	int nopening;
	struct message request, response;
	/* HTTP/2: each exchange is its own stream, numbered in every frame
	 * of its request and response. */
	bool streams;
};

/* The two ends of the connection this process holds; -1 for an end it
 * does not. */
struct ends {
	int client, server;
};

static const char http1_request[] =
	"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char http1_response[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

static const struct dialect http1 = {
	.request = { http1_request, sizeof(http1_request) - 1, true },
	.response = { http1_response, sizeof(http1_response) - 1, false },
};

/* HTTP/2 frames: a 9-byte header (24-bit length, type, flags, 31-bit
 * stream) and the payload. The stream of a request's or response's
 * frames is written in before each exchange. */
#define H2_FRAME_HEADER 9
#define H2_SETTINGS "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
#define H2_SETTINGS_ACK "\x00\x00\x00\x04\x01\x00\x00\x00\x00"

static const char h2_client_opening[] =
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" H2_SETTINGS;
static const char h2_server_opening[] = H2_SETTINGS H2_SETTINGS_ACK;
static const char h2_client_ack[] = H2_SETTINGS_ACK;

/* HEADERS, END_STREAM | END_HEADERS: :method GET (static index 2),
 * :scheme http (6), :path "/ping" and :authority "127.0.0.1" as literals
 * never indexed with the names of static entries 4 and 1. */
static const char h2_request[] = "\x00\x00\x14\x01\x05\x00\x00\x00\x00"
				 "\x82\x86"
				 "\x04\x05/ping"
				 "\x01\x09"
				 "127.0.0.1";
/* HEADERS, END_HEADERS: :status 200 (static index 8); then DATA,
 * END_STREAM: "ok\n". */
static const char h2_response[] = "\x00\x00\x01\x01\x04\x00\x00\x00\x00"
				  "\x88"
				  "\x00\x00\x03\x00\x01\x00\x00\x00\x00"
				  "ok\n";

static const struct message h2_opening[] = {
	{ h2_client_opening, sizeof(h2_client_opening) - 1, true },
	{ h2_server_opening, sizeof(h2_server_opening) - 1, false },
	{ h2_client_ack, sizeof(h2_client_ack) - 1, true },
};

_Static_assert(sizeof(http1_request) <= MAX_MESSAGE &&
		       sizeof(http1_response) <= MAX_MESSAGE &&
		       sizeof(h2_client_opening) <= MAX_MESSAGE &&
		       sizeof(h2_server_opening) <= MAX_MESSAGE &&
		       sizeof(h2_request) <= MAX_MESSAGE &&
		       sizeof(h2_response) <= MAX_MESSAGE,
	       "a message longer than pass_message's buffer");

static const struct dialect http2 = {
	.opening = h2_opening,
	.nopening = sizeof(h2_opening) / sizeof(h2_opening[0]),
	.request = { h2_request, sizeof(h2_request) - 1, true },
	.response = { h2_response, sizeof(h2_response) - 1, false },
	.streams = true,
};

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

/* Reads exactly n bytes (a peer's whole message) from fd: 0 on success,
 * 1 when the peer closed before the message began, -1 on an error or a
 * message cut short (errno set). */
static int read_all(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			return r == 0 && got == 0 ? 1 : -1;
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

/* Writes stream into every frame header of the n bytes of frames at buf. */
static void h2_set_stream(char *buf, size_t n, uint32_t stream)
{
	for (size_t at = 0; at + H2_FRAME_HEADER <= n;) {
		const unsigned char *f = (const unsigned char *)buf + at;
		size_t len = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];

		buf[at + 5] = (char)(stream >> 24 & 0x7f);
		buf[at + 6] = (char)(stream >> 16);
		buf[at + 7] = (char)(stream >> 8);
		buf[at + 8] = (char)stream;
		at += H2_FRAME_HEADER + len;
	}
}

/* Sends m from the end that writes it, if this process holds that end,
 * and reads it at the other end, if it holds that one. A stream other
 * than 0 is written into each of m's HTTP/2 frames. Returns read_all's 1
 * when the server's peer has gone, else 0 or -1. */
static int pass_message(const struct ends *e, const struct message *m,
			uint32_t stream)
{
	int from = m->from_client ? e->client : e->server;
	int to = m->from_client ? e->server : e->client;
	char buf[MAX_MESSAGE];

	if (from >= 0) {
		memcpy(buf, m->bytes, m->len);
		if (stream)
			h2_set_stream(buf, m->len, stream);
		if (write_all(from, buf, m->len))
			return -1;
	}
	return to >= 0 ? read_all(to, buf, m->len) : 0;
}

/* Exchange n, or the held ends' part of it. Over HTTP/2 it is stream
 * 2n + 1, the client's n-th (n < 2^30 within MAX_SECONDS at any rate
 * this host reaches: a stream id has 31 bits). */
static int exchange(const struct dialect *d, const struct ends *e,
		    unsigned long long n)
{
	uint32_t stream = d->streams ? (uint32_t)(2 * n + 1) : 0;
	int r = pass_message(e, &d->request, stream);

	return r ? r : pass_message(e, &d->response, stream);
}

static int open_dialect(const struct dialect *d, const struct ends *e)
{
	for (int i = 0; i < d->nopening; i++)
		if (pass_message(e, &d->opening[i], 0))
			return -1;
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The client's side, or both: opens, makes exchanges in passes for
 * seconds, prints the result line. 0 on success. */
static int drive(const struct dialect *d, const struct ends *e, long seconds)
{
	long max_passes = seconds * PASSES_PER_SECOND, n = 0;
	unsigned long long exchanges = 0;
	double start, pass_start, *passes;

	passes = calloc((size_t)max_passes, sizeof(*passes));
	if (!passes)
		return fail("calloc");
	if (open_dialect(d, e))
		return fail("opening");
	start = now_ns();
	do {
		pass_start = now_ns();
		for (int i = 0; i < PASS_EXCHANGES; i++)
			if (exchange(d, e, exchanges + (unsigned long long)i))
				return fail("exchange");
		passes[n++] = (now_ns() - pass_start) / PASS_EXCHANGES;
		exchanges += PASS_EXCHANGES;
	} while (now_ns() - start < (double)seconds * 1e9 && n < max_passes);
	qsort(passes, (size_t)n, sizeof(*passes), by_value);
	printf("pingpong: %llu exchanges in %.3f s; ns/exchange fastest %.1f "
	       "median %.1f\n",
	       exchanges, (now_ns() - start) / 1e9, passes[0], passes[n / 2]);
	fflush(stdout);
	free(passes);
	return 0;
}

/* The server's side alone: answers until the client closes. */
static int serve(const struct dialect *d, const struct ends *e)
{
	unsigned long long n = 0;
	int r;

	if (open_dialect(d, e))
		return fail("opening");
	while (!(r = exchange(d, e, n)))
		n++;
	return r < 0 ? fail("exchange") : 0;
}

static int listen_on(unsigned short port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_port = htons(port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 1))
		return -1;
	return fd;
}

/* Each message leaves at once, as a server's response does. */
static int no_delay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int connect_to(unsigned short port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_port = htons(port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    no_delay(fd))
		return -1;
	return fd;
}

static int accept_on(int listener)
{
	int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0 || no_delay(fd))
		return -1;
	return fd;
}

/* Both ends in this thread. */
static int run_joined(const struct dialect *d, unsigned short port,
		      long seconds)
{
	struct ends e;
	int listener = listen_on(port), r;

	if (listener < 0)
		return fail("listen");
	e.client = connect_to(port);
	if (e.client < 0)
		return fail("connect");
	e.server = accept_on(listener);
	if (e.server < 0)
		return fail("accept");
	close(listener);
	r = drive(d, &e, seconds);
	close(e.client);
	close(e.server);
	return r;
}

/* In a forked end: dies with pingpong (the bench stops pingpong by its
 * pid), then waits until the parent closes the pipe's other end. */
static int await_go(pid_t parent, const int go[2])
{
	char c;

	close(go[1]);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != parent)
		return -1;
	while (read(go[0], &c, 1) > 0)
		;
	close(go[0]);
	return 0;
}

static int server_end(const struct dialect *d, pid_t parent, const int go[2],
		      int listener)
{
	struct ends e = { .client = -1 };

	if (await_go(parent, go))
		return 1;
	e.server = accept_on(listener);
	if (e.server < 0)
		return fail("accept");
	close(listener);
	return serve(d, &e);
}

static int client_end(const struct dialect *d, pid_t parent, const int go[2],
		      unsigned short port, long seconds)
{
	struct ends e = { .server = -1 };

	if (await_go(parent, go))
		return 1;
	e.client = connect_to(port);
	if (e.client < 0)
		return fail("connect");
	return drive(d, &e, seconds);
}

/* Waits for both ends; 0 when both exited 0. */
static int reap(pid_t server, pid_t client)
{
	int rc = 0, status;

	if (waitpid(client, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		rc = 1;
	if (waitpid(server, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		rc = 1;
	return rc;
}

/* The two ends in two processes, started when standard input gives a
 * line or ends. */
static int run_split(const struct dialect *d, unsigned short port, long seconds)
{
	pid_t parent = getpid(), server, client;
	int listener = listen_on(port), go[2];
	char line[16];

	if (listener < 0)
		return fail("listen");
	if (pipe(go))
		return fail("pipe");
	fflush(stdout);
	server = fork();
	if (server == 0)
		_exit(server_end(d, parent, go, listener));
	if (server < 0)
		return fail("fork");
	close(listener);
	client = fork();
	if (client == 0)
		_exit(client_end(d, parent, go, port, seconds));
	if (client < 0) {
		kill(server, SIGTERM);
		return fail("fork");
	}
	close(go[0]);
	printf("pingpong: server %d client %d\n", server, client);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin) && ferror(stdin))
		fprintf(stderr, "pingpong: reading stdin failed; starting\n");
	close(go[1]);
	return reap(server, client);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pingpong [--split] [--h2] PORT SECONDS (port 1 to "
		"65535, seconds 1 to %d)\n",
		MAX_SECONDS);
}

int main(int argc, char **argv)
{
	const struct dialect *d = &http1;
	bool split = false;
	long port, seconds;
	char *end1, *end2;
	int i = 1;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--split"))
			split = true;
		else if (!strcmp(argv[i], "--h2"))
			d = &http2;
		else
			break;
	}
	if (argc - i != 2) {
		usage();
		return 2;
	}
	port = strtol(argv[i], &end1, 10);
	seconds = strtol(argv[i + 1], &end2, 10);
	if (*end1 || *end2 || port < 1 || port > 65535 || seconds < 1 ||
	    seconds > MAX_SECONDS) {
		usage();
		return 2;
	}
	if (split)
		return run_split(d, (unsigned short)port, seconds);
	return run_joined(d, (unsigned short)port, seconds);
}
