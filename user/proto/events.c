#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "identity/labels.h"
#include "identity/lastseen.h"
#include "identity/procinfo.h"
#include "identity/selection.h"
#include "kernel/capture.h"
#include "kernel/uprobes.h"
#include "metrics/families.h"
#include "metrics/registry.h"
#include "metrics/route.h"
#include "metrics/self.h"
#include "proto/events.h"
#include "proto/grpc.h"
#include "proto/http1.h"
#include "proto/http2.h"
#include "proto/tcp.h"
#include "sonde_events.h"
#include "util/fmt.h"
#include "util/log.h"

enum parse_error {
	PARSE_ERROR_RESPONSE,	/* no final status line in the response head */
	PARSE_ERROR_RECORD,	/* a record of unknown kind or size */
	PARSE_ERROR_NO_REQUEST, /* a server's status line no request asked for */
	PARSE_ERROR_HTTP2_LOST, /* an HTTP/2 connection no longer decoded */
	PARSE_ERROR_COUNT,
};

static const char *const parse_error_names[PARSE_ERROR_COUNT] = {
	[PARSE_ERROR_RESPONSE] = "response_status",
	[PARSE_ERROR_RECORD] = "record",
	[PARSE_ERROR_NO_REQUEST] = "no_request",
	[PARSE_ERROR_HTTP2_LOST] = "http2_lost",
};

static uint64_t received;
static uint64_t parse_errors[PARSE_ERROR_COUNT];

/* Processes that exited during this round of reading. An exit comes on
 * the shared ring, the process's last exchanges and calls on the per-CPU
 * rings, which are read after it: what is known of the process must
 * outlive the round, or those would be named afresh from a /proc entry
 * that is gone (its comm, without its environment's identity). */
#define EXITS_MAX 1024
static uint32_t exits[EXITS_MAX];
static unsigned nexits;

static void count(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* True when the path of req's target is whole: the capture did not cut
 * it, or cut it only after its query or fragment had begun. A path cut
 * short would make up a route ("/users/prof") for every length. */
static bool path_complete(const struct http1_request *req)
{
	return req->target_complete ||
	       memchr(req->target, '?', req->target_len) ||
	       memchr(req->target, '#', req->target_len);
}

/* Method and route of the request this response answers. A request whose
 * head is not in the capture (a pipelined one beyond SONDE_REQ_CAP), whose
 * path the capture cut short, or whose target is not a path is still
 * counted, as _OTHER / ROUTE_UNKNOWN. route may be NULL when only the
 * method is wanted. */
static void request_labels(const struct sonde_http_event *ev, size_t len,
			   enum http_method *method, char *route,
			   size_t routesz)
{
	struct http1_request req;

	*method = HTTP_METHOD_OTHER;
	if (route)
		strcpy(route, ROUTE_UNKNOWN);
	if (http1_parse_request(ev->req, len, ev->pipeline_idx, &req))
		return;
	*method = req.method;
	if (route &&
	    (!path_complete(&req) ||
	     !route_template(req.target, req.target_len, route, routesz)))
		strcpy(route, ROUTE_UNKNOWN);
}

/* The request bytes of an exchange record size bytes long: no more than
 * it says it holds, nor than it holds. */
static size_t exchange_req_len(const struct sonde_http_event *ev, size_t size)
{
	size_t room = size - SONDE_EXCHANGE_BYTES(0);
	size_t len = ev->req_len < SONDE_REQ_CAP ? ev->req_len : SONDE_REQ_CAP;

	return len < room ? len : room;
}

/* The process that made exchange ev, or NULL when it is not traced;
 * comm receives the name the kernel gave. */
static const struct procinfo *
exchange_process(const struct sonde_http_event *ev,
		 char comm[SONDE_COMM_LEN + 1])
{
	const struct procinfo *info;

	memcpy(comm, ev->comm, SONDE_COMM_LEN);
	comm[SONDE_COMM_LEN] = '\0';
	info = procinfo_get(ev->hdr.tgid, comm);
	/* The kernel filters by verdict; this catches a process's first
	 * exchanges while the daemon was still deciding on it. */
	if (!selection_conn_traced(info->verdict, ev->sport))
		return NULL;
	lastseen_note(info, ev->hdr.tgid, comm);
	return info;
}

static uint64_t exchange_duration(const struct sonde_http_event *ev)
{
	return ev->end_ns > ev->start_ns ? ev->end_ns - ev->start_ns : 0;
}

/* The client side's server_address and server_port labels. */
static void peer_labels(const struct sonde_http_event *ev,
			char peer[INET6_ADDRSTRLEN], char port[8])
{
	if (fmt_address(ev->family, ev->daddr, peer, INET6_ADDRSTRLEN))
		strcpy(peer, ROUTE_UNKNOWN);
	fmt_uint(ev->dport, port, 8);
}

static void handle_exchange(const struct sonde_http_event *ev, size_t size)
{
	size_t resp_len =
		ev->resp_len < SONDE_RESP_CAP ? ev->resp_len : SONDE_RESP_CAP;
	size_t req_len = exchange_req_len(ev, size);
	const char *values[REGISTRY_MAX_LABELS];
	char captured[LABELS_MAX_HEADERS][LABELS_VALUE_MAX + 1];
	const struct procinfo *info;
	enum http_method method;
	char route[ROUTE_MAX + 1];
	char comm[SONDE_COMM_LEN + 1];
	char status[12], port[8], peer[INET6_ADDRSTRLEN];
	int code;

	info = exchange_process(ev, comm);
	if (!info)
		return;
	code = http1_parse_status(ev->resp, resp_len);
	if (code < 0) {
		count(&parse_errors[PARSE_ERROR_RESPONSE]);
		return;
	}
	/* A server's later write that starts like a status line answers
	 * the next pipelined request, or is a body that happens to look like
	 * one (an HTTP message served as content). The capture holds every
	 * byte read before the first response unless it filled up; when it
	 * did not, and its requests are whole and already answered, there
	 * is no request for this one: counting it would add a request
	 * nobody made. */
	if (ev->role != SONDE_ROLE_CLIENT && ev->pipeline_idx > 0 &&
	    ev->req_len < SONDE_REQ_CAP && req_len == ev->req_len &&
	    http1_requests_end_before(ev->req, req_len, ev->pipeline_idx)) {
		count(&parse_errors[PARSE_ERROR_NO_REQUEST]);
		return;
	}
	/* Client series have no route: no template to work out. */
	if (ev->role == SONDE_ROLE_CLIENT)
		request_labels(ev, req_len, &method, NULL, 0);
	else
		request_labels(ev, req_len, &method, route, sizeof(route));
	fmt_uint((unsigned)code, status, sizeof(status));
	values[0] = info->service;
	if (ev->role == SONDE_ROLE_CLIENT) {
		peer_labels(ev, peer, port);
		values[HTTP_CLIENT_METHOD] = http1_method_name(method);
		values[HTTP_CLIENT_STATUS] = status;
		values[HTTP_CLIENT_ADDRESS] = peer;
		values[HTTP_CLIENT_PORT] = port;
		labels_fill_optional(info, values + HTTP_CLIENT_NLABELS);
		registry_observe(&family_http_client, values,
				 exchange_duration(ev));
		return;
	}
	fmt_uint(ev->sport, port, sizeof(port));
	values[HTTP_SERVER_METHOD] = http1_method_name(method);
	values[HTTP_SERVER_STATUS] = status;
	values[HTTP_SERVER_ROUTE] = route;
	values[HTTP_SERVER_PORT] = port;
	labels_fill(info, ev->req, req_len, ev->pipeline_idx,
		    values + HTTP_SERVER_NLABELS, captured);
	registry_observe(&family_http_server, values, exchange_duration(ev));
}

/* A gRPC call, as http2_handle hands it back: the exchange record of its
 * request, and its status. */
static void handle_grpc(const struct sonde_http_event *ev, size_t size,
			int grpc_status)
{
	size_t req_len = exchange_req_len(ev, size);
	const char *values[REGISTRY_MAX_LABELS];
	const struct procinfo *info;
	struct http1_request req;
	char comm[SONDE_COMM_LEN + 1];
	char method[ROUTE_MAX + 1], port[8], peer[INET6_ADDRSTRLEN];

	info = exchange_process(ev, comm);
	if (!info)
		return;
	if (http1_parse_request(ev->req, req_len, 0, &req) ||
	    !path_complete(&req) ||
	    !grpc_method(req.target, req.target_len, method, sizeof(method)))
		strcpy(method, METHOD_OTHER);
	values[0] = info->service;
	values[RPC_SYSTEM] = "grpc";
	values[RPC_METHOD] = method;
	values[RPC_STATUS] = grpc_status_name(grpc_status);
	if (ev->role == SONDE_ROLE_CLIENT) {
		peer_labels(ev, peer, port);
		values[RPC_CLIENT_ADDRESS] = peer;
		values[RPC_CLIENT_PORT] = port;
		labels_fill_optional(info, values + RPC_CLIENT_NLABELS);
		registry_observe(&family_rpc_client, values,
				 exchange_duration(ev));
		return;
	}
	fmt_uint(ev->sport, port, sizeof(port));
	values[RPC_SERVER_PORT] = port;
	labels_fill_optional(info, values + RPC_SERVER_NLABELS);
	registry_observe(&family_rpc_server, values, exchange_duration(ev));
}

static void handle_http2(const struct sonde_h2_event *ev, size_t size)
{
	static union {
		struct sonde_http_event ev;
		char bytes[SONDE_EXCHANGE_BYTES(SONDE_REQ_CAP)];
	} out;

	int grpc_status;

	switch (http2_handle(ev, size, &out.ev, &grpc_status)) {
	case HTTP2_EXCHANGE:
		if (grpc_status >= 0)
			handle_grpc(&out.ev, sizeof(out.bytes), grpc_status);
		else
			handle_exchange(&out.ev, sizeof(out.bytes));
		break;
	case HTTP2_LOST:
		count(&parse_errors[PARSE_ERROR_HTTP2_LOST]);
		break;
	case HTTP2_NO_REQUEST:
		count(&parse_errors[PARSE_ERROR_NO_REQUEST]);
		break;
	case HTTP2_NOTHING:
		break;
	}
}

/* A process the kernel has no verdict for (new, or a new image): look at
 * it afresh and tell the kernel. */
static void decide(const struct sonde_process_event *ev)
{
	char comm[SONDE_COMM_LEN + 1];

	memcpy(comm, ev->comm, SONDE_COMM_LEN);
	comm[SONDE_COMM_LEN] = '\0';
	procinfo_forget(ev->hdr.tgid);
	capture_set_verdict(ev->hdr.tgid,
			    procinfo_get(ev->hdr.tgid, comm)->verdict);
}

int events_handle(void *ctx, void *data, size_t size)
{
	const struct sonde_event_header *hdr = data;

	(void)ctx;
	count(&received);
	if (size < sizeof(*hdr)) {
		count(&parse_errors[PARSE_ERROR_RECORD]);
		return 0;
	}
	switch (hdr->kind) {
	case SONDE_EV_HTTP_EXCHANGE:
		if (size < SONDE_EXCHANGE_BYTES(0))
			break;
		handle_exchange(data, size);
		return 0;
	case SONDE_EV_HTTP2:
		if (size < offsetof(struct sonde_h2_event, data))
			break;
		handle_http2(data, size);
		return 0;
	case SONDE_EV_TCP:
		if (size < sizeof(struct sonde_tcp_event))
			break;
		tcp_handle(data);
		return 0;
	case SONDE_EV_PROCESS_EXEC:
		/* A new image: what follows is the new program's. */
		uprobes_note_exec(hdr->tgid);
		procinfo_forget(hdr->tgid);
		return 0;
	case SONDE_EV_PROCESS_EXIT:
		if (nexits == EXITS_MAX)
			events_end_round();
		exits[nexits++] = hdr->tgid;
		return 0;
	case SONDE_EV_PROCESS_SEEN:
		if (size < sizeof(struct sonde_process_event))
			break;
		decide(data);
		return 0;
	case SONDE_EV_FUNC_CALL:
		if (size < sizeof(struct sonde_func_event))
			break;
		uprobes_handle_call(data);
		return 0;
	}
	count(&parse_errors[PARSE_ERROR_RECORD]);
	return 0;
}

void events_end_round(void)
{
	for (unsigned i = 0; i < nexits; i++)
		procinfo_forget(exits[i]);
	nexits = 0;
}

static void collect_received(const struct self_metric *m,
			     struct self_sink *sink)
{
	(void)m;
	self_emit_u64(sink, NULL, load(&received));
}

static void collect_parse_errors(const struct self_metric *m,
				 struct self_sink *sink)
{
	(void)m;
	for (int i = 0; i < PARSE_ERROR_COUNT; i++)
		self_emit_u64(sink, &parse_error_names[i],
			      load(&parse_errors[i]));
}

static const struct self_metric received_metric = {
	.name = "sonde_events_received_total",
	.otel_name = "sonde.events.received",
	.unit = "{event}",
	.help = "Events read from the kernel's ring buffer.",
	.kind = SELF_COUNTER,
	.collect = collect_received,
};

static const struct self_metric parse_errors_metric = {
	.name = "sonde_parse_errors_total",
	.otel_name = "sonde.parse_errors",
	.unit = "{event}",
	.help = "Events the daemon could not turn into a measurement, by "
		"reason.",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "reason" },
	.otel_labels = { "sonde.parse_error.reason" },
	.collect = collect_parse_errors,
};

void events_register_metrics(void)
{
	self_register(&received_metric);
	self_register(&parse_errors_metric);
}
