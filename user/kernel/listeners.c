#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/listeners.h"

/* /proc/net/tcp's "st" column for TCP_LISTEN (include/net/tcp_states.h). */
#define STATE_LISTEN 0x0A

/* A listening socket of one namespace, and the lowest-numbered process
 * seen holding it (0: none yet). */
struct listening {
	uint64_t inode;
	uint32_t holder;
	uint16_t port;
	char comm[SONDE_COMM_LEN];
};

struct netns {
	uint32_t inum;
	struct listening *socks; /* sorted by inode once read */
	size_t n, cap;
};

struct scan {
	const char *proc;
	struct netns *ns;
	size_t n, cap;
};

/* A line looks like (tcp6 has 32 hex digits of address):
 *    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000
 *       00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
 * sl, local address:port, remote address:port, state, queues, timer,
 * retransmits, uid, timeout, inode. */
bool listeners_parse_line(const char *line, uint16_t *port, uint64_t *inode)
{
	unsigned lport, state;
	uint64_t ino;

	if (sscanf(line,
		   " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*x:%*x "
		   "%*x:%*x %*x %*u %*u %" SCNu64,
		   &lport, &state, &ino) != 3)
		return false;
	if (state != STATE_LISTEN || lport > UINT16_MAX || !ino)
		return false;
	*port = (uint16_t)lport;
	*inode = ino;
	return true;
}

static int add_listening(struct netns *ns, uint16_t port, uint64_t inode)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		struct listening *p = realloc(ns->socks, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		ns->socks = p;
		ns->cap = cap;
	}
	ns->socks[ns->n++] = (struct listening){ .inode = inode, .port = port };
	return 0;
}

/* Adds the listening sockets of path (a tcp or tcp6 file) to ns. A file
 * that cannot be opened (no IPv6) adds none. */
static int read_tcp_file(const char *path, struct netns *ns)
{
	FILE *f = fopen(path, "re");
	char line[512];
	uint64_t inode;
	uint16_t port;
	int err = 0;

	if (!f)
		return 0;
	while (!err && fgets(line, sizeof(line), f))
		if (listeners_parse_line(line, &port, &inode))
			err = add_listening(ns, port, inode);
	fclose(f);
	return err;
}

static int by_inode(const void *a, const void *b)
{
	const struct listening *x = a, *y = b;

	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

static int by_port(const void *a, const void *b)
{
	const struct listening *x = a, *y = b;

	return x->port < y->port ? -1 : x->port > y->port;
}

/* The namespace inum, read through pid's view of /proc/net the first
 * time one of its processes is seen; NULL when out of memory. */
static struct netns *netns_of(struct scan *s, const char *pid, uint32_t inum,
			      int *err)
{
	char path[PATH_MAX];
	struct netns *ns;

	for (size_t i = 0; i < s->n; i++)
		if (s->ns[i].inum == inum)
			return &s->ns[i];
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct netns *p = realloc(s->ns, cap * sizeof(*p));

		if (!p) {
			*err = -ENOMEM;
			return NULL;
		}
		s->ns = p;
		s->cap = cap;
	}
	ns = &s->ns[s->n++];
	*ns = (struct netns){ .inum = inum };
	snprintf(path, sizeof(path), "%s/%s/net/tcp", s->proc, pid);
	*err = read_tcp_file(path, ns);
	snprintf(path, sizeof(path), "%s/%s/net/tcp6", s->proc, pid);
	if (!*err)
		*err = read_tcp_file(path, ns);
	qsort(ns->socks, ns->n, sizeof(*ns->socks), by_inode);
	return *err ? NULL : ns;
}

/* The inode number a link such as "net:[4026531840]" or
 * "socket:[31337]" names, when it is of that kind. */
static bool link_inode(const char *path, const char *kind, uint64_t *inode)
{
	char target[64], tail;
	size_t len = strlen(kind);
	ssize_t n = readlink(path, target, sizeof(target) - 1);

	if (n <= (ssize_t)len || strncmp(target, kind, len))
		return false;
	target[n] = '\0';
	return sscanf(target + len, ":[%" SCNu64 "%c", inode, &tail) == 2 &&
	       tail == ']';
}

static void read_comm(const char *proc, const char *pid, char *comm)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/comm", proc, pid);
	memset(comm, 0, SONDE_COMM_LEN);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(comm, SONDE_COMM_LEN, f))
		comm[strcspn(comm, "\n")] = '\0';
	fclose(f);
}

/* Marks the listening sockets of ns that process pid holds as its. */
static void claim_held(struct scan *s, struct netns *ns, const char *pid)
{
	char path[PATH_MAX], comm[SONDE_COMM_LEN];
	uint32_t tgid = (uint32_t)strtoul(pid, NULL, 10);
	bool named = false;
	struct dirent *d;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/%s/fd", s->proc, pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		struct listening key, *l;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/fd/%s", s->proc, pid,
			 d->d_name);
		if (!link_inode(path, "socket", &key.inode))
			continue;
		l = bsearch(&key, ns->socks, ns->n, sizeof(*ns->socks),
			    by_inode);
		if (!l || (l->holder && l->holder <= tgid))
			continue;
		if (!named) {
			read_comm(s->proc, pid, comm);
			named = true;
		}
		l->holder = tgid;
		memcpy(l->comm, comm, sizeof(comm));
	}
	closedir(dir);
}

static bool is_pid(const char *name)
{
	return *name && strspn(name, "0123456789") == strlen(name);
}

/* Passes each (namespace, port) of ns with a holder to fn. */
static int report(struct netns *ns, listeners_fn fn, void *ctx)
{
	int found = 0;

	qsort(ns->socks, ns->n, sizeof(*ns->socks), by_port);
	for (size_t i = 0; i < ns->n;) {
		struct sonde_listener_key key = { .netns = ns->inum,
						  .port = ns->socks[i].port };
		struct sonde_listener value = { 0 };
		const struct listening *first = NULL;

		for (; i < ns->n && ns->socks[i].port == key.port; i++) {
			const struct listening *l = &ns->socks[i];

			value.sockets++;
			if (l->holder && (!first || l->holder < first->holder))
				first = l;
		}
		if (!first)
			continue;
		value.tgid = first->holder;
		memcpy(value.comm, first->comm, sizeof(value.comm));
		fn(ctx, &key, &value);
		found++;
	}
	return found;
}

int listeners_scan(const char *proc, uint32_t skip_tgid, listeners_fn fn,
		   void *ctx)
{
	struct scan s = { .proc = proc };
	char path[PATH_MAX];
	struct dirent *d;
	int err = 0, found = 0;
	DIR *dir = opendir(proc);

	if (!dir)
		return -errno;
	while (!err && (d = readdir(dir))) {
		struct netns *ns;
		uint64_t inum;

		if (!is_pid(d->d_name) ||
		    strtoul(d->d_name, NULL, 10) == skip_tgid)
			continue;
		snprintf(path, sizeof(path), "%s/%s/ns/net", proc, d->d_name);
		if (!link_inode(path, "net", &inum) || inum > UINT32_MAX)
			continue;
		ns = netns_of(&s, d->d_name, (uint32_t)inum, &err);
		if (ns && ns->n)
			claim_held(&s, ns, d->d_name);
	}
	closedir(dir);
	for (size_t i = 0; i < s.n; i++) {
		if (!err)
			found += report(&s.ns[i], fn, ctx);
		free(s.ns[i].socks);
	}
	free(s.ns);
	return err ? err : found;
}
