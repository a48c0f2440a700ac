/* The loader's sizing of the per-CPU exchange rings, and what its
 * metrics say before anything is loaded. */
#include <string.h>

#include "export/prom.h"
#include "kernel/capture.h"
#include "metrics/self.h"
#include "unit.h"

TEST(cpu_rings_are_2_mib_up_to_4_cpus)
{
	CHECK(capture_cpu_ring_bytes(1) == 2u << 20);
	CHECK(capture_cpu_ring_bytes(2) == 2u << 20);
	CHECK(capture_cpu_ring_bytes(4) == 2u << 20);
}

TEST(cpu_rings_shrink_to_keep_the_budget)
{
	CHECK(capture_cpu_ring_bytes(5) == 1u << 20);
	CHECK(capture_cpu_ring_bytes(8) == 1u << 20);
	CHECK(capture_cpu_ring_bytes(16) == 512u << 10);
	CHECK(capture_cpu_ring_bytes(32) == 256u << 10);
	/* Beyond 32 CPUs the floor holds: the total grows past the budget. */
	CHECK(capture_cpu_ring_bytes(33) == 256u << 10);
	CHECK(capture_cpu_ring_bytes(512) == 256u << 10);
}

TEST(cpu_ring_sizes_are_powers_of_two_in_pages)
{
	for (int n = 1; n <= 1024; n++) {
		size_t b = capture_cpu_ring_bytes(n);

		CHECK((b & (b - 1)) == 0);
		CHECK(b % 4096 == 0);
	}
}

/* /metrics answers while the programs load: before capture_start has
 * published anything, no program is listed, every drop count is 0 and
 * sonde is not ready. */
TEST(metrics_before_the_programs_are_loaded)
{
	struct strbuf sb = { 0 };

	self_reset();
	capture_register_metrics();
	prom_render(&sb);
	CHECK(strstr(sb.data, "# TYPE sonde_program_attached gauge\n"));
	CHECK(!strstr(sb.data, "sonde_program_attached{"));
	CHECK(!strstr(sb.data, "sonde_program_runs_total{"));
	CHECK(!strstr(sb.data, "sonde_map_entries{"));
	CHECK(strstr(
		sb.data,
		"sonde_events_dropped_total{reason=\"ringbuf_full\"} 0\n"));
	CHECK(strstr(
		sb.data,
		"sonde_events_dropped_total{reason=\"series_limit\"} 0\n"));
	CHECK(!capture_all_attached());
	strbuf_release(&sb);
	self_reset();
}

UNIT_MAIN("capture", UNIT_CASE(cpu_rings_are_2_mib_up_to_4_cpus),
	  UNIT_CASE(cpu_rings_shrink_to_keep_the_budget),
	  UNIT_CASE(cpu_ring_sizes_are_powers_of_two_in_pages),
	  UNIT_CASE(metrics_before_the_programs_are_loaded))
