#include <errno.h>
#include <string.h>

#include "metrics/families.h"
#include "metrics/registry.h"
#include "proto/proto.h"
#include "proto/tcp.h"
#include "util/fmt.h"

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

/* Label text for the observations being made: the registry copies it. */
static char peer_text[48], port_text[8];

/* The connection gauge, under the owner's role, held by the socket: a
 * worker of a pre-forked server that takes a connection counted for its
 * listener's process moves it to its own series, and the close lowers
 * whichever holds it, even once the owner has exited and its name is
 * gone. */
static void hold(const struct sonde_tcp_event *ev, struct proto_obs *o)
{
	o->family = &family_tcp_active;
	o->op = PROTO_HOLD;
	o->value = ev->sk;
	o->nfixed = TCP_ACTIVE_NLABELS;
	o->values[TCP_ACTIVE_ROLE] = role_name(ev->role);
}

/* A connect counted by result; one that succeeded is also timed, and
 * held in the gauge. */
static unsigned connect_done(const struct sonde_tcp_event *ev,
			     struct proto_obs *obs)
{
	int established = ev->detail == SONDE_TCP_CONNECT_ESTABLISHED;

	if (fmt_address(ev->family, ev->daddr, peer_text, sizeof(peer_text)))
		strcpy(peer_text, ROUTE_UNKNOWN);
	fmt_uint(ev->dport, port_text, sizeof(port_text));
	obs[0].family = &family_tcp_connects;
	obs[0].op = PROTO_ADD;
	obs[0].value = 1;
	obs[0].error = !established;
	obs[0].nfixed = TCP_CONNECTS_NLABELS;
	obs[0].values[TCP_PEER_ADDRESS] = peer_text;
	obs[0].values[TCP_PEER_PORT] = port_text;
	obs[0].values[TCP_CONNECTS_RESULT] =
		tcp_connect_result(ev->err, established);
	if (!established)
		return 1;
	/* The duration has no result label. */
	obs[1].family = &family_tcp_connect_duration;
	obs[1].op = PROTO_OBSERVE;
	obs[1].value = ev->duration_ns;
	obs[1].nfixed = TCP_PEER_NLABELS;
	obs[1].values[TCP_PEER_ADDRESS] = peer_text;
	obs[1].values[TCP_PEER_PORT] = port_text;
	hold(ev, &obs[2]);
	return 3;
}

static enum proto_next tcp_read(const void *rec, size_t size,
				struct proto_record *r)
{
	const struct sonde_tcp_event *ev = rec;

	(void)size;
	r->tgid = ev->hdr.tgid;
	r->comm = ev->comm;
	/* A close comes with whatever comm the kernel had, maybe after its
	 * owner exited: it only lowers what the open raised. */
	r->filter = ev->what == SONDE_TCP_CLOSE ? PROTO_NO_PROCESS :
						  PROTO_FILTER_PROCESS;
	return PROTO_NEXT_OBSERVE;
}

static unsigned tcp_observe(const void *rec, size_t size,
			    const struct proto_record *r, struct proto_obs *obs)
{
	const struct sonde_tcp_event *ev = rec;

	(void)size;
	(void)r;
	switch (ev->what) {
	case SONDE_TCP_CLOSE:
		obs[0].op = PROTO_RELEASE;
		obs[0].value = ev->sk;
		return 1;
	case SONDE_TCP_CONNECT:
		return connect_done(ev, obs);
	case SONDE_TCP_OPEN:
		hold(ev, &obs[0]);
		return 1;
	case SONDE_TCP_RESET:
		obs[0].family = &family_tcp_resets;
		obs[0].op = PROTO_ADD;
		obs[0].value = 1;
		obs[0].error = true;
		obs[0].nfixed = TCP_RESETS_NLABELS;
		obs[0].values[TCP_RESETS_DIRECTION] =
			ev->detail == SONDE_TCP_RESET_RECEIVED ? "received" :
								 "sent";
		return 1;
	case SONDE_TCP_RETRANSMIT:
		obs[0].family = &family_tcp_retransmits;
		obs[0].op = PROTO_ADD;
		obs[0].value = 1;
		obs[0].nfixed = TCP_RETRANSMITS_NLABELS;
		return 1;
	}
	return 0;
}

/* The protocol of TCP lifecycle records, in dispatch.c's table. */
const struct proto proto_tcp = {
	.name = "tcp",
	.kind = SONDE_EV_TCP,
	.min_size = sizeof(struct sonde_tcp_event),
	.read = tcp_read,
	.observe = tcp_observe,
};
