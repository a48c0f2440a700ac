/* libFuzzer target: what an OTLP collector answers. The input is both a
 * response body (an ExportMetricsServiceResponse or
 * ExportTraceServiceResponse, which share their shape and their parser,
 * read for a partial success) and, as text, a Retry-After header value.
 * Neither may crash the exporter; the message read stays within its
 * buffer and the delay within the cap, or -1 when the header means
 * nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/otlp.h"

/* The exporter waits at most this long on a collector's word
 * (otlpsend.c). */
#define RETRY_AFTER_CAP_MS (5 * 60 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[128], *text;
	int64_t rejected, ms;

	memset(msg, 'x', sizeof(msg));
	if (otlp_parse_response(size ? data : NULL, size, &rejected, msg,
				sizeof(msg)) == 0 &&
	    !memchr(msg, '\0', sizeof(msg))) {
		fprintf(stderr, "fuzz_otlp: message not terminated\n");
		abort();
	}
	text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	ms = otlp_retry_after_ms(text, 1700000000);
	if (ms < -1 || ms > RETRY_AFTER_CAP_MS) {
		fprintf(stderr, "fuzz_otlp: Retry-After '%s' gave %lld ms\n",
			text, (long long)ms);
		abort();
	}
	free(text);
	return 0;
}
