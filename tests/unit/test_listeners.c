/* The listening sockets found at start: /proc/net/tcp lines, and a walk
 * of a /proc-shaped tree built here (links made the way procfs names
 * namespaces and sockets). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/listeners.h"
#include "unit.h"

#define HEADER                                                                \
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when " \
	"retrnsmt   uid  timeout inode\n"

TEST(listening_lines_give_port_and_inode)
{
	uint16_t port = 0;
	uint64_t inode = 0;

	CHECK(!listeners_parse_line(HEADER, &port, &inode));
	CHECK(listeners_parse_line(
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000     0        0 31337 1 0000000000000000 "
		"100 0 0 10 0\n",
		&port, &inode));
	CHECK(port == 8080 && inode == 31337);
	/* tcp6: 32 hex digits of address. */
	CHECK(listeners_parse_line(
		"   1: 00000000000000000000000000000000:0050 "
		"00000000000000000000000000000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000   101        0 4242 1 0000000000000000 "
		"100 0 0 10 0\n",
		&port, &inode));
	CHECK(port == 80 && inode == 4242);
}

TEST(other_states_and_malformed_lines_are_not_listeners)
{
	uint16_t port = 7;
	uint64_t inode = 7;

	/* ESTABLISHED (01), TIME_WAIT without an inode (06). */
	CHECK(!listeners_parse_line(
		"   2: 0100007F:1F90 0100007F:D0A2 01 00000000:00000000 "
		"00:00000000 00000000     0        0 555 1 0000000000000000 "
		"20 4 30 10 -1\n",
		&port, &inode));
	CHECK(!listeners_parse_line(
		"   3: 0100007F:1F90 0100007F:D0A4 06 00000000:00000000 "
		"03:00000F2A 00000000     0        0 0 3 0000000000000000\n",
		&port, &inode));
	/* A listener with no inode (being torn down) says nothing. */
	CHECK(!listeners_parse_line(
		"   4: 0100007F:1F91 00000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000     0        0 0 1 0000000000000000\n",
		&port, &inode));
	CHECK(!listeners_parse_line("   5: 0100007F:123456 00000000:0000 0A "
				    "0:0 0:0 0 0 0 77\n",
				    &port, &inode));
	CHECK(!listeners_parse_line("", &port, &inode));
	CHECK(!listeners_parse_line("   6: garbage\n", &port, &inode));
	CHECK(port == 7 && inode == 7);
}

static char root[] = "/tmp/sonde-listeners-XXXXXX";

#define LISTEN_LINE(port_hex, inode)                                        \
	"   0: 0100007F:" port_hex " 00000000:0000 0A 00000000:00000000 "   \
	"00:00000000 00000000     0        0 " inode " 1 0000000000000000 " \
	"100 0 0 10 0\n"

/* Namespace 7: port 8080 over IPv4 and IPv6, port 80 over IPv6, and an
 * established socket. */
static const char NS7_TCP[] =
	HEADER LISTEN_LINE("1F90", "5001") "   1: 0100007F:1F90 0100007F:D0A2 "
					   "01 00000000:00000000 00:00000000 "
					   "00000000     0        0 5002 1 "
					   "0000000000000000 20 4 30 10 -1\n";
static const char NS7_TCP6[] =
	HEADER "   0: 00000000000000000000000000000000:1F90 "
	       "00000000000000000000000000000000:0000 0A 00000000:00000000 "
	       "00:00000000 00000000     0        0 5003 1 0000000000000000 "
	       "100 0 0 10 0\n" LISTEN_LINE("0050", "5004");

/* root/rel, then root/pid/rel: the paths the helpers below make. Each
 * call reuses the buffer. */
static const char *at(const char *rel)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return path;
}

static const char *of(const char *pid, const char *rel)
{
	static char path[64];

	snprintf(path, sizeof(path), "%s/%s", pid, rel);
	return path;
}

static void put(const char *rel, const char *text)
{
	FILE *f = fopen(at(rel), "w");

	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

static void dir(const char *rel)
{
	CHECK(mkdir(at(rel), 0755) == 0);
}

static void link_to(const char *target, const char *rel)
{
	CHECK(symlink(target, at(rel)) == 0);
}

/* A process directory: its namespace link, its name, its namespace's
 * tcp and tcp6 files (every process shows them), and an empty fd/. */
static void process(const char *pid, const char *netns, const char *comm,
		    const char *tcp, const char *tcp6)
{
	dir(pid);
	dir(of(pid, "ns"));
	link_to(netns, of(pid, "ns/net"));
	dir(of(pid, "net"));
	put(of(pid, "net/tcp"), tcp);
	put(of(pid, "net/tcp6"), tcp6);
	dir(of(pid, "fd"));
	put(of(pid, "comm"), comm);
}

struct found {
	struct sonde_listener_key key[8];
	struct sonde_listener value[8];
	int n;
};

static void collect(void *ctx, const struct sonde_listener_key *key,
		    const struct sonde_listener *value)
{
	struct found *f = ctx;

	if (f->n < 8) {
		f->key[f->n] = *key;
		f->value[f->n] = *value;
	}
	f->n++;
}

static const struct sonde_listener *lookup(const struct found *f,
					   uint32_t netns, uint16_t port)
{
	for (int i = 0; i < f->n && i < 8; i++)
		if (f->key[i].netns == netns && f->key[i].port == port)
			return &f->value[i];
	return NULL;
}

TEST(each_listening_port_is_charged_to_its_lowest_holder)
{
	const struct sonde_listener *l;
	struct found f = { 0 };
	char cmd[64];

	if (!mkdtemp(root)) {
		perror("mkdtemp");
		CHECK(0);
		return;
	}
	/* In namespace 7, 8080's IPv4 socket is held by 100 and 200, its
	 * IPv6 one by 200; port 80 only by the skipped process 400. */
	process("200", "net:[7]", "worker\n", NS7_TCP, NS7_TCP6);
	link_to("socket:[5001]", "200/fd/3");
	link_to("socket:[5003]", "200/fd/4");
	process("100", "net:[7]", "web\n", NS7_TCP, NS7_TCP6);
	link_to("socket:[5001]", "100/fd/3");
	link_to("socket:[5002]", "100/fd/4");
	link_to("/dev/null", "100/fd/0");
	link_to("socket:[50011]", "100/fd/5");
	process("400", "net:[7]", "sonde\n", NS7_TCP, NS7_TCP6);
	link_to("socket:[5004]", "400/fd/3");
	/* Namespace 9 has a listener on 8080 of its own (the same inode
	 * number means nothing across namespaces' files). */
	process("300", "net:[9]", "other\n", HEADER LISTEN_LINE("1F90", "5001"),
		HEADER);
	link_to("socket:[5001]", "300/fd/9");
	/* Not processes, or not readable: passed over. */
	dir("self");
	dir("500");
	put("501", "not a directory");

	CHECK(listeners_scan(root, 400, collect, &f) == 2);
	CHECK(f.n == 2);
	l = lookup(&f, 7, 8080);
	CHECK(l && l->tgid == 100 && l->sockets == 2 &&
	      strcmp(l->comm, "web") == 0);
	l = lookup(&f, 9, 8080);
	CHECK(l && l->tgid == 300 && l->sockets == 1 &&
	      strcmp(l->comm, "other") == 0);
	CHECK(lookup(&f, 7, 80) == NULL);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CHECK(system(cmd) == 0);
}

TEST(a_missing_proc_is_an_error)
{
	struct found f = { 0 };

	CHECK(listeners_scan("/nonexistent-proc", 0, collect, &f) == -ENOENT);
	CHECK(f.n == 0);
}

UNIT_MAIN("listeners", UNIT_CASE(listening_lines_give_port_and_inode),
	  UNIT_CASE(other_states_and_malformed_lines_are_not_listeners),
	  UNIT_CASE(each_listening_port_is_charged_to_its_lowest_holder),
	  UNIT_CASE(a_missing_proc_is_an_error))
