#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "families.h"
#include "otlp.h"
#include "procinfo.h"
#include "registry.h"
#include "strmap.h"
#include "tcp.h"

/* Connections counted in the gauge, by socket: their CLOSE must decrement
 * the same series even when the owner has exited (and its service name
 * is no longer resolvable) by then. Bounded: beyond it a connection is
 * not counted at all, so the gauge never drifts upwards. */
#define TCP_MAX_TRACKED 65536

struct active {
	char service[SERVICE_NAME_MAX + 1];
	const char *role;
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

/* The owner's service, or NULL when the process selection leaves it out
 * (the kernel filters too; this catches a process's first events while
 * the daemon was still deciding on it). */
static const char *owner_service(const struct sonde_tcp_event *ev)
{
	char comm[SONDE_COMM_LEN + 1];
	const struct procinfo *info;

	memcpy(comm, ev->comm, SONDE_COMM_LEN);
	comm[SONDE_COMM_LEN] = '\0';
	info = procinfo_get(ev->hdr.tgid, comm);
	if (info->verdict == SONDE_VERDICT_IGNORE)
		return NULL;
	otlp_note_process(info, ev->hdr.tgid, comm);
	return info->service;
}

static void active_open(const struct sonde_tcp_event *ev, const char *service)
{
	const char *values[TCP_ACTIVE_NLABELS];
	struct active *a;
	char key[24];

	snprintf(key, sizeof(key), "%llx", (unsigned long long)ev->sk);
	if (strmap_get(&active, key) || active.count >= TCP_MAX_TRACKED)
		return;
	a = calloc(1, sizeof(*a));
	if (!a)
		return;
	snprintf(a->service, sizeof(a->service), "%s", service);
	a->role = role_name(ev->role);
	values[0] = a->service;
	values[TCP_ACTIVE_ROLE] = a->role;
	if (!strmap_put(&active, key, a) ||
	    registry_gauge_add(&family_tcp_active, values, 1)) {
		free(strmap_remove(&active, key));
		return;
	}
}

static void active_close(const struct sonde_tcp_event *ev)
{
	const char *values[TCP_ACTIVE_NLABELS];
	struct active *a;
	char key[24];

	snprintf(key, sizeof(key), "%llx", (unsigned long long)ev->sk);
	a = strmap_remove(&active, key);
	if (!a)
		return;
	values[0] = a->service;
	values[TCP_ACTIVE_ROLE] = a->role;
	registry_gauge_add(&family_tcp_active, values, -1);
	free(a);
}

static void connect_done(const struct sonde_tcp_event *ev, const char *service)
{
	const char *values[TCP_CONNECTS_NLABELS];
	char peer[48], port[8];
	int established = ev->detail == SONDE_TCP_CONNECT_ESTABLISHED;

	if (events_format_address(ev->family, ev->daddr, peer, sizeof(peer)))
		strcpy(peer, ROUTE_UNKNOWN);
	events_format_uint(ev->dport, port, sizeof(port));
	values[0] = service;
	values[TCP_PEER_ADDRESS] = peer;
	values[TCP_PEER_PORT] = port;
	values[TCP_CONNECTS_RESULT] = tcp_connect_result(ev->err, established);
	registry_add(&family_tcp_connects, values, 1);
	if (!established)
		return;
	registry_observe(&family_tcp_connect_duration, values, ev->duration_ns);
	active_open(ev, service);
}

void tcp_handle(const struct sonde_tcp_event *ev)
{
	const char *values[TCP_RESETS_NLABELS];

	if (ev->what == SONDE_TCP_CLOSE) {
		active_close(ev);
		return;
	}
	values[0] = owner_service(ev);
	if (!values[0])
		return;
	switch (ev->what) {
	case SONDE_TCP_CONNECT:
		connect_done(ev, values[0]);
		break;
	case SONDE_TCP_OPEN:
		active_open(ev, values[0]);
		break;
	case SONDE_TCP_RESET:
		values[TCP_RESETS_DIRECTION] =
			ev->detail == SONDE_TCP_RESET_RECEIVED ? "received" :
								 "sent";
		registry_add(&family_tcp_resets, values, 1);
		break;
	case SONDE_TCP_RETRANSMIT:
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
