#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/labels.h"
#include "identity/lastseen.h"
#include "identity/procinfo.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "proto/tcp.h"
#include "util/fmt.h"
#include "util/strmap.h"

/* Connections counted in the gauge, by socket: their CLOSE must decrement
 * the same series even when the owner has exited (and its service name
 * is no longer resolvable) by then. Bounded: beyond it a connection is
 * not counted at all, so the gauge never drifts upwards. */
#define TCP_MAX_TRACKED 65536

/* Room for a family's fixed labels and the optional identity ones. */
#define TCP_MAX_VALUES (TCP_CONNECTS_NLABELS + LABELS_MAX_EXTRA)

/* The gauge series a connection was counted in: its label values, copied
 * into text. */
struct active {
	const char *values[TCP_ACTIVE_NLABELS + LABELS_MAX_EXTRA];
	unsigned n; /* how many */
	char text[];
};

static struct strmap active; /* "%llx" of the sock -> struct active */

static const char *role_name(__u8 role)
{
	return role == SONDE_ROLE_CLIENT ? "client" : "server";
}

const char *tcp_connect_result(int err, int established)
{
	if (established)
		return "ok";
	switch (err) {
	case 0:
		return "aborted";
	case ECONNREFUSED:
		return "refused";
	case ETIMEDOUT:
		return "timeout";
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
		return "unreachable";
	case ECONNABORTED:
	case ECONNRESET:
		return "aborted";
	}
	return "other";
}

/* What sonde knows of the owner, or NULL when the process selection leaves
 * it out (the kernel filters too; this catches a process's first events
 * while the daemon was still deciding on it). */
static const struct procinfo *owner_info(const struct sonde_tcp_event *ev)
{
	char comm[SONDE_COMM_LEN + 1];
	const struct procinfo *info;

	memcpy(comm, ev->comm, SONDE_COMM_LEN);
	comm[SONDE_COMM_LEN] = '\0';
	info = procinfo_get(ev->hdr.tgid, comm);
	if (info->verdict == SONDE_VERDICT_IGNORE)
		return NULL;
	lastseen_note(info, ev->hdr.tgid, comm);
	return info;
}

static void active_close(const struct sonde_tcp_event *ev)
{
	struct active *a;
	char key[24];

	snprintf(key, sizeof(key), "%llx", (unsigned long long)ev->sk);
	a = strmap_remove(&active, key);
	if (!a)
		return;
	registry_gauge_add(&family_tcp_active, a->values, -1);
	free(a);
}

/* Whether a connection counted under a's series would be counted under
 * values[0..n) all the same. */
static bool same_series(const struct active *a, const char **values, unsigned n)
{
	if (a->n != n)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (strcmp(a->values[i], values[i]))
			return false;
	return true;
}

/* Counts ev's connection in the gauge series of values[0..n), and keeps
 * a copy of them for its close. A connection counted already, for its
 * listener's process, moves to the new owner's series (a worker of a
 * pre-forked server took it). */
static void active_open(const struct sonde_tcp_event *ev, const char **values,
			unsigned n)
{
	size_t len[TCP_ACTIVE_NLABELS + LABELS_MAX_EXTRA], total = 0;
	struct active *a;
	char key[24], *p;

	snprintf(key, sizeof(key), "%llx", (unsigned long long)ev->sk);
	a = strmap_get(&active, key);
	if (a && same_series(a, values, n))
		return;
	if (a)
		active_close(ev);
	if (active.count >= TCP_MAX_TRACKED)
		return;
	for (unsigned i = 0; i < n; i++)
		total += len[i] = strlen(values[i]) + 1;
	a = malloc(sizeof(*a) + total);
	if (!a)
		return;
	a->n = n;
	p = a->text;
	for (unsigned i = 0; i < n; i++) {
		a->values[i] = memcpy(p, values[i], len[i]);
		p += len[i];
	}
	if (!strmap_put(&active, key, a) ||
	    registry_gauge_add(&family_tcp_active, a->values, 1)) {
		free(strmap_remove(&active, key));
		return;
	}
}

/* Counts the owner's connection in the gauge, under its role. */
static void owner_open(const struct sonde_tcp_event *ev,
		       const struct procinfo *info)
{
	const char *values[TCP_ACTIVE_NLABELS + LABELS_MAX_EXTRA];
	unsigned n;

	values[0] = info->service;
	values[TCP_ACTIVE_ROLE] = role_name(ev->role);
	n = labels_fill_optional(info, values + TCP_ACTIVE_NLABELS);
	active_open(ev, values, TCP_ACTIVE_NLABELS + n);
}

static void connect_done(const struct sonde_tcp_event *ev,
			 const struct procinfo *info)
{
	const char *values[TCP_MAX_VALUES], *peer_values[TCP_MAX_VALUES];
	char peer[48], port[8];
	int established = ev->detail == SONDE_TCP_CONNECT_ESTABLISHED;

	if (fmt_address(ev->family, ev->daddr, peer, sizeof(peer)))
		strcpy(peer, ROUTE_UNKNOWN);
	fmt_uint(ev->dport, port, sizeof(port));
	values[0] = info->service;
	values[TCP_PEER_ADDRESS] = peer;
	values[TCP_PEER_PORT] = port;
	values[TCP_CONNECTS_RESULT] = tcp_connect_result(ev->err, established);
	labels_fill_optional(info, values + TCP_CONNECTS_NLABELS);
	registry_add(&family_tcp_connects, values, 1);
	if (!established)
		return;
	/* The duration has no result label: the optional ones move up. */
	memcpy(peer_values, values, TCP_PEER_NLABELS * sizeof(*values));
	labels_fill_optional(info, peer_values + TCP_PEER_NLABELS);
	registry_observe(&family_tcp_connect_duration, peer_values,
			 ev->duration_ns);
	owner_open(ev, info);
}

void tcp_handle(const struct sonde_tcp_event *ev)
{
	const char *values[TCP_MAX_VALUES];
	const struct procinfo *info;

	if (ev->what == SONDE_TCP_CLOSE) {
		active_close(ev);
		return;
	}
	info = owner_info(ev);
	if (!info)
		return;
	values[0] = info->service;
	switch (ev->what) {
	case SONDE_TCP_CONNECT:
		connect_done(ev, info);
		break;
	case SONDE_TCP_OPEN:
		owner_open(ev, info);
		break;
	case SONDE_TCP_RESET:
		values[TCP_RESETS_DIRECTION] =
			ev->detail == SONDE_TCP_RESET_RECEIVED ? "received" :
								 "sent";
		labels_fill_optional(info, values + TCP_RESETS_NLABELS);
		registry_add(&family_tcp_resets, values, 1);
		break;
	case SONDE_TCP_RETRANSMIT:
		labels_fill_optional(info, values + TCP_RETRANSMITS_NLABELS);
		registry_add(&family_tcp_retransmits, values, 1);
		break;
	}
}

unsigned tcp_active_tracked(void)
{
	return active.count;
}

static void free_active(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

void tcp_free(void)
{
	strmap_each(&active, free_active, NULL);
	strmap_clear(&active);
}
