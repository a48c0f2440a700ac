#include <errno.h>
#include <string.h>

#include "export/otlp.h"
#include "identity/labels.h"
#include "identity/procinfo.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "proto/tcp.h"
#include "util/fmt.h"

/* Room for a family's fixed labels and the optional identity ones. */
#define TCP_MAX_VALUES (TCP_CONNECTS_NLABELS + LABELS_MAX_EXTRA)

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
	otlp_note_process(info, ev->hdr.tgid, comm);
	return info;
}

/* Counts the owner's connection in the gauge, under its role. */
static void owner_open(const struct sonde_tcp_event *ev,
		       const struct procinfo *info)
{
	const char *values[TCP_ACTIVE_NLABELS + LABELS_MAX_EXTRA];

	values[0] = info->service;
	values[TCP_ACTIVE_ROLE] = role_name(ev->role);
	labels_fill_optional(info, values + TCP_ACTIVE_NLABELS);
	/* Held by the socket: a worker of a pre-forked server that takes
	 * a connection counted for its listener's process moves it to its
	 * own series, and the close lowers whichever holds it, even once
	 * the owner has exited and its name is gone. */
	registry_gauge_hold(&family_tcp_active, values, ev->sk);
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
		registry_gauge_release(ev->sk);
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
