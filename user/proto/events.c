#include <stdint.h>

#include "metrics/self.h"
#include "proto/events.h"

static const char *const parse_error_names[PARSE_ERROR_COUNT] = {
	[PARSE_ERROR_RESPONSE] = "response_status",
	[PARSE_ERROR_RECORD] = "record",
	[PARSE_ERROR_NO_REQUEST] = "no_request",
	[PARSE_ERROR_HTTP2_LOST] = "http2_lost",
	[PARSE_ERROR_DB_STREAM] = "db_stream_lost",
	[PARSE_ERROR_DB_CALL] = "db_call_lost",
};

static uint64_t received;
static uint64_t parse_errors[PARSE_ERROR_COUNT];

/* The consumer thread is the only writer: a plain add, published with
 * a relaxed store for readers on other threads, and no locked
 * instruction per record. */
static void count(uint64_t *counter)
{
	__atomic_store_n(counter,
			 __atomic_load_n(counter, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void events_count_received(void)
{
	count(&received);
}

void events_count_parse_error(enum parse_error why)
{
	if (why < PARSE_ERROR_COUNT)
		count(&parse_errors[why]);
}

void events_count_parse_errors(enum parse_error why, uint64_t n)
{
	if (why < PARSE_ERROR_COUNT && n)
		__atomic_store_n(
			&parse_errors[why],
			__atomic_load_n(&parse_errors[why], __ATOMIC_RELAXED) +
				n,
			__ATOMIC_RELAXED);
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
