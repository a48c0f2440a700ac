#include "metrics/families.h"

/* Names follow the OpenTelemetry semantic conventions for HTTP
 * (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/); the
 * TCP families are sonde's own, under its prefix. Prometheus names are the
 * OTLP ones with dots as underscores and the unit or _total appended. */

struct metric_family family_http_server = {
	.name = "http_server_request_duration_seconds",
	.otel_name = "http.server.request.duration",
	.unit = "s",
	.help = "Duration of HTTP server requests, from the first request "
		"bytes read to the response head written.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = HTTP_SERVER_NLABELS,
	.labels = { "service_name", "http_request_method",
		    "http_response_status_code", "http_route", "server_port" },
	.otel_labels = { "service.name", "http.request.method",
			 "http.response.status_code", "http.route",
			 "server.port" },
	.capped_label = HTTP_SERVER_ROUTE,
	.cap = REGISTRY_CAP_ROUTE,
	.span_kind = 2,
	.span_name = { HTTP_SERVER_METHOD, HTTP_SERVER_ROUTE },
};

struct metric_family family_http_client = {
	.name = "http_client_request_duration_seconds",
	.otel_name = "http.client.request.duration",
	.unit = "s",
	.help = "Duration of HTTP client requests, from the first request "
		"bytes written to the response head read.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = HTTP_CLIENT_NLABELS,
	.labels = { "service_name", "http_request_method",
		    "http_response_status_code", "server_address",
		    "server_port" },
	.otel_labels = { "service.name", "http.request.method",
			 "http.response.status_code", "server.address",
			 "server.port" },
	.capped_label = HTTP_CLIENT_ADDRESS,
	.cap = REGISTRY_CAP_PEER,
	.span_kind = 3,
	.span_name = { HTTP_CLIENT_METHOD, 0 },
};

/* gRPC calls, after the RPC conventions
 * (https://opentelemetry.io/docs/specs/semconv/rpc/rpc-metrics/): the
 * method is "pkg.Service/Method", the status the gRPC code's name. The
 * method comes from the traffic, so it is capped like a route, on both
 * sides (a proxy calls whatever its callers ask for). */
struct metric_family family_rpc_server = {
	.name = "rpc_server_call_duration_seconds",
	.otel_name = "rpc.server.call.duration",
	.unit = "s",
	.help = "Duration of gRPC calls served, from the request head read "
		"to the response's end (trailers) written.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = RPC_SERVER_NLABELS,
	.labels = { "service_name", "rpc_system_name", "rpc_method",
		    "rpc_response_status_code", "server_port" },
	.otel_labels = { "service.name", "rpc.system.name", "rpc.method",
			 "rpc.response.status_code", "server.port" },
	.capped_label = RPC_METHOD,
	.cap = REGISTRY_CAP_ROUTE,
	.span_kind = 2,
	.span_name = { RPC_METHOD, 0 },
};

struct metric_family family_rpc_client = {
	.name = "rpc_client_call_duration_seconds",
	.otel_name = "rpc.client.call.duration",
	.unit = "s",
	.help = "Duration of gRPC calls made, from the request head written "
		"to the response's end (trailers) read.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = RPC_CLIENT_NLABELS,
	.labels = { "service_name", "rpc_system_name", "rpc_method",
		    "rpc_response_status_code", "server_address",
		    "server_port" },
	.otel_labels = { "service.name", "rpc.system.name", "rpc.method",
			 "rpc.response.status_code", "server.address",
			 "server.port" },
	.capped_label = RPC_METHOD,
	.cap = REGISTRY_CAP_ROUTE,
	.span_kind = 3,
	.span_name = { RPC_METHOD, 0 },
};

struct metric_family family_tcp_connect_duration = {
	.name = "sonde_tcp_connect_duration_seconds",
	.otel_name = "sonde.tcp.connect.duration",
	.unit = "s",
	.help = "Time from the SYN sent to the connection established, for "
		"connects that succeeded.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = TCP_PEER_NLABELS,
	.labels = { "service_name", "server_address", "server_port" },
	.otel_labels = { "service.name", "server.address", "server.port" },
	.capped_label = TCP_PEER_ADDRESS,
	.cap = REGISTRY_CAP_PEER,
};

struct metric_family family_tcp_connects = {
	.name = "sonde_tcp_connects_total",
	.otel_name = "sonde.tcp.connects",
	.unit = "{connect}",
	.help = "Outgoing TCP connects by result: ok, refused, timeout, "
		"unreachable, aborted (the client gave up), other.",
	.kind = METRIC_COUNTER,
	.nlabels = TCP_CONNECTS_NLABELS,
	.labels = { "service_name", "server_address", "server_port", "result" },
	.otel_labels = { "service.name", "server.address", "server.port",
			 "sonde.tcp.connect.result" },
	.capped_label = TCP_PEER_ADDRESS,
	.cap = REGISTRY_CAP_PEER,
};

struct metric_family family_tcp_resets = {
	.name = "sonde_tcp_resets_total",
	.otel_name = "sonde.tcp.resets",
	.unit = "{reset}",
	.help = "TCP resets on the service's connections, sent or received.",
	.kind = METRIC_COUNTER,
	.nlabels = TCP_RESETS_NLABELS,
	.labels = { "service_name", "direction" },
	.otel_labels = { "service.name", "sonde.tcp.reset.direction" },
	.capped_label = -1,
};

struct metric_family family_tcp_retransmits = {
	.name = "sonde_tcp_retransmits_total",
	.otel_name = "sonde.tcp.retransmits",
	.unit = "{segment}",
	.help = "TCP segments the service's connections retransmitted.",
	.kind = METRIC_COUNTER,
	.nlabels = TCP_RETRANSMITS_NLABELS,
	.labels = { "service_name" },
	.otel_labels = { "service.name" },
	.capped_label = -1,
};

struct metric_family family_tcp_active = {
	.name = "sonde_tcp_active_connections",
	.otel_name = "sonde.tcp.active_connections",
	.unit = "{connection}",
	.help = "Established TCP connections the service holds, by role "
		"(server: accepted, client: connected).",
	.kind = METRIC_GAUGE,
	.nlabels = TCP_ACTIVE_NLABELS,
	.labels = { "service_name", "role" },
	.otel_labels = { "service.name", "sonde.tcp.role" },
	.capped_label = -1,
};

/* --uprobe BINARY:SYMBOL; the function label is SYMBOL. */
struct metric_family family_function_duration = {
	.name = "sonde_function_duration_seconds",
	.otel_name = "sonde.function.duration",
	.unit = "s",
	.help = "Duration of calls to the functions named with --uprobe, "
		"from entry to return.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = FUNCTION_NLABELS,
	.labels = { "service_name", "function" },
	.otel_labels = { "service.name", "code.function.name" },
	.capped_label = -1,
};

/* Database and cache calls, after the database conventions
 * (https://opentelemetry.io/docs/specs/semconv/database/database-metrics/):
 * the operation is the statement's first keyword or the command, the
 * collection the table of a single-table statement, capped like a route;
 * error_type is set exactly when the call failed. */
struct metric_family family_db_client = {
	.name = "db_client_operation_duration_seconds",
	.otel_name = "db.client.operation.duration",
	.unit = "s",
	.help = "Duration of database calls made, from the request written to "
		"its reply read.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = DB_CLIENT_NLABELS,
	.labels = { "service_name", "db_system_name", "db_operation_name",
		    "db_collection_name", "db_response_status_code",
		    "error_type", "server_address", "server_port" },
	.otel_labels = { "service.name", "db.system.name", "db.operation.name",
			 "db.collection.name", "db.response.status_code",
			 "error.type", "server.address", "server.port" },
	.capped_label = DB_COLLECTION,
	.cap = REGISTRY_CAP_ROUTE,
	.span_kind = 3,
	.span_name = { DB_OPERATION, DB_COLLECTION },
};

struct metric_family family_db_server = {
	.name = "db_server_operation_duration_seconds",
	.otel_name = "db.server.operation.duration",
	.unit = "s",
	.help = "Duration of database calls served, from the request read to "
		"its reply written.",
	.kind = METRIC_HISTOGRAM,
	.nlabels = DB_SERVER_NLABELS,
	.labels = { "service_name", "db_system_name", "db_operation_name",
		    "db_collection_name", "db_response_status_code",
		    "error_type", "server_port" },
	.otel_labels = { "service.name", "db.system.name", "db.operation.name",
			 "db.collection.name", "db.response.status_code",
			 "error.type", "server.port" },
	.capped_label = DB_COLLECTION,
	.cap = REGISTRY_CAP_ROUTE,
};
