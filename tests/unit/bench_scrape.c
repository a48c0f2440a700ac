/* What one /metrics scrape costs at 1k, 10k and 100k series: the time to
 * render the text (median of 5 renders, on the process's CPU clock), its
 * size, and the time and size of its gzip. The series are 10 services'
 * HTTP server routes, each observed a few times across the buckets, as
 * the registry holds them in the daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export/prom.h"
#include "export/scrape.h"
#include "metrics/families.h"
#include "metrics/registry.h"

#define BENCH_SERVICES 10
#define BENCH_RENDERS 5

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void fill(unsigned nseries)
{
	struct registry_limits lim = {
		.max_routes_per_service = nseries / BENCH_SERVICES + 1,
		.max_peers_per_service = 100,
		.max_series = nseries + 100,
	};
	struct histogram_bounds b;
	char service[32], route[64];
	const char *values[] = { service, "GET", "200", route, "8080" };

	registry_free();
	histogram_bounds_default(&b);
	registry_init(&b, &lim);
	for (unsigned i = 0; i < nseries; i++) {
		snprintf(service, sizeof(service), "service-%u",
			 i % BENCH_SERVICES);
		snprintf(route, sizeof(route), "/api/v1/resource-%u/items",
			 i / BENCH_SERVICES);
		for (unsigned k = 0; k < 3; k++)
			registry_observe(&family_http_server, values,
					 (uint64_t)(i % 97 + 1) * (k + 1) *
						 1000000ULL);
	}
}

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void run(unsigned nseries)
{
	uint64_t plain[BENCH_RENDERS], zip[BENCH_RENDERS];
	size_t len = 0, zlen = 0;

	fill(nseries);
	for (int r = 0; r < BENCH_RENDERS; r++) {
		struct strbuf sb = { 0 };
		uint64_t t0 = cpu_ns(), t1;
		char *z;

		prom_render(&sb);
		t1 = cpu_ns();
		z = scrape_gzip(sb.data, sb.len, &zlen);
		zip[r] = cpu_ns() - t1;
		plain[r] = t1 - t0;
		len = sb.len;
		if (!z || sb.failed) {
			fprintf(stderr, "bench_scrape: out of memory\n");
			exit(1);
		}
		free(z);
		strbuf_release(&sb);
	}
	qsort(plain, BENCH_RENDERS, sizeof(*plain), by_value);
	qsort(zip, BENCH_RENDERS, sizeof(*zip), by_value);
	printf("{\"series\": %u, \"render_ms\": %.2f, \"bytes\": %zu, "
	       "\"gzip_ms\": %.2f, \"gzip_bytes\": %zu}\n",
	       nseries, plain[BENCH_RENDERS / 2] / 1e6, len,
	       zip[BENCH_RENDERS / 2] / 1e6, zlen);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		run((unsigned)strtoul(argv[i], NULL, 10));
	if (argc == 1) {
		run(1000);
		run(10000);
		run(100000);
	}
	return 0;
}
