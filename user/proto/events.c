#include <stdint.h>

#include "export/prom.h"
#include "proto/events.h"

static const char *const parse_error_names[PARSE_ERROR_COUNT] = {
	[PARSE_ERROR_RESPONSE] = "response_status",
	[PARSE_ERROR_RECORD] = "record",
	[PARSE_ERROR_NO_REQUEST] = "no_request",
	[PARSE_ERROR_HTTP2_LOST] = "http2_lost",
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

void events_render(struct strbuf *sb)
{
	prom_write_family(sb, "sonde_events_received_total", "counter",
			  "Events read from the kernel's ring buffer.");
	prom_write_u64(sb, "sonde_events_received_total", NULL, 0,
		       load(&received));
	prom_write_family(sb, "sonde_parse_errors_total", "counter",
			  "Events the daemon could not turn into a "
			  "measurement, by reason.");
	for (int i = 0; i < PARSE_ERROR_COUNT; i++) {
		struct prom_label label = { "reason", parse_error_names[i] };

		prom_write_u64(sb, "sonde_parse_errors_total", &label, 1,
			       load(&parse_errors[i]));
	}
}
