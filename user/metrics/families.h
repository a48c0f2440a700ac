/* Every metric family sonde measures, with its Prometheus and OTLP names.
 * Label 0 is service_name everywhere; in OTLP it becomes the resource's
 * service.name rather than a data point attribute. */
#ifndef SONDE_FAMILIES_H
#define SONDE_FAMILIES_H

#include "metrics/registry.h"

/* Label positions, so callers fill values[] by name. */
enum {
	HTTP_SERVER_METHOD = 1,
	HTTP_SERVER_STATUS,
	HTTP_SERVER_ROUTE,
	HTTP_SERVER_PORT,
	HTTP_SERVER_NLABELS
};
enum {
	HTTP_CLIENT_METHOD = 1,
	HTTP_CLIENT_STATUS,
	HTTP_CLIENT_ADDRESS,
	HTTP_CLIENT_PORT,
	HTTP_CLIENT_NLABELS
};
/* gRPC calls: server_port on the server side, the peer on the client's. */
enum { RPC_SYSTEM = 1, RPC_METHOD, RPC_STATUS, RPC_NLABELS };
enum { RPC_SERVER_PORT = RPC_NLABELS, RPC_SERVER_NLABELS };
enum { RPC_CLIENT_ADDRESS = RPC_NLABELS, RPC_CLIENT_PORT, RPC_CLIENT_NLABELS };
enum { TCP_PEER_ADDRESS = 1, TCP_PEER_PORT, TCP_PEER_NLABELS };
enum { TCP_CONNECTS_RESULT = TCP_PEER_NLABELS, TCP_CONNECTS_NLABELS };
enum { TCP_RESETS_DIRECTION = 1, TCP_RESETS_NLABELS };
enum { TCP_RETRANSMITS_NLABELS = 1 };
enum { TCP_ACTIVE_ROLE = 1, TCP_ACTIVE_NLABELS };
enum { FUNCTION_NAME = 1, FUNCTION_NLABELS };
/* Database calls, after the database conventions: the peer on the
 * client's side, the port it listens on on the server's. */
enum {
	DB_SYSTEM = 1,
	DB_OPERATION,
	DB_COLLECTION,
	DB_STATUS,
	DB_ERROR_TYPE,
	DB_NLABELS
};
enum { DB_SERVER_PORT = DB_NLABELS, DB_SERVER_NLABELS };
enum { DB_CLIENT_ADDRESS = DB_NLABELS, DB_CLIENT_PORT, DB_CLIENT_NLABELS };

extern struct metric_family family_http_server;
extern struct metric_family family_http_client;
extern struct metric_family family_rpc_server;
extern struct metric_family family_rpc_client;
extern struct metric_family family_tcp_connect_duration;
extern struct metric_family family_tcp_connects;
extern struct metric_family family_tcp_resets;
extern struct metric_family family_tcp_retransmits;
extern struct metric_family family_tcp_active;
extern struct metric_family family_function_duration;
extern struct metric_family family_db_client;
extern struct metric_family family_db_server;

#endif
