/* libFuzzer target: what `sonde top` makes of two /metrics bodies from
 * whatever answers at its URL (the input, split at its first NUL): never
 * crash, hang or leak, and every row it would show keeps its promises
 * (errors within requests, an error ratio from 0 to 1, rates not
 * negative). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top/snapshot.h"
#include "top/table.h"
#include "top/top.h"

static void check_rows(const struct top_table *t)
{
	char out[32];

	for (size_t i = 0; i < t->n; i++) {
		const struct top_row *r = &t->rows[i];

		if (!(r->requests >= 0) || !(r->errors >= 0) ||
		    r->errors > r->requests || !(r->rate >= 0) ||
		    !(r->error_ratio >= 0 && r->error_ratio <= 1)) {
			fprintf(stderr,
				"fuzz_top: row %s: requests %g errors %g "
				"rate %g ratio %g\n",
				r->service, r->requests, r->errors, r->rate,
				r->error_ratio);
			abort();
		}
		top_format_duration(r->p99, out, sizeof(out));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	const char *split = memchr(body, '\0', size);
	size_t first = split ? (size_t)(split - body) : size;
	struct top_snapshot a = { 0 }, b = { 0 };
	static const enum top_group groups[] = { TOP_BY_SERVICE,
						 TOP_BY_OPERATION,
						 TOP_BY_STATUS };

	if (top_snapshot_parse(&a, body, first))
		abort();
	if (split && top_snapshot_parse(&b, split + 1, size - first - 1))
		abort();
	for (size_t g = 0; g < sizeof(groups) / sizeof(*groups); g++) {
		struct top_table t;

		if (top_table_build(
			    &t, &a, &b, 2.0, groups[g],
			    g ? (b.nseries ? b.series[0]->service : "x") :
				NULL))
			abort();
		for (int by = 0; by < TOP_NSORTS; by++) {
			top_table_sort(&t, by);
			check_rows(&t);
		}
		top_table_release(&t);
	}
	top_snapshot_release(&a);
	top_snapshot_release(&b);
	return 0;
}
