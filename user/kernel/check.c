#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "kernel/capture.h"
#include "kernel/check.h"
#include "kernel/host.h"
#include "util/privs.h"

#define UPROBE_PMU "/sys/bus/event_source/devices/uprobe"
#define KPROBE_PMU "/sys/bus/event_source/devices/kprobe"

static bool report(const char *what, bool ok, bool needed, const char *detail)
{
	printf("%-22s %-8s %s\n", what,
	       ok     ? "ok" :
	       needed ? "MISSING" :
			"absent",
	       detail);
	return ok || !needed;
}

static bool check_tracepoints(void)
{
	char missing[96], detail[160];
	int total, present;

	if (access(HOST_TRACEFS "/events", F_OK) != 0)
		return report("tracepoints", true, true,
			      "tracefs not mounted: sonde mounts it at start "
			      "(needs CAP_SYS_ADMIN)");
	if (capture_count_tracepoints(HOST_TRACEFS, &total, &present, missing,
				      sizeof(missing)))
		return report("tracepoints", false, true,
			      "cannot open sonde's BPF object");
	if (present == total)
		snprintf(detail, sizeof(detail), "%d of %d", present, total);
	else
		snprintf(detail, sizeof(detail), "%d of %d (no %s)", present,
			 total, missing);
	return report("tracepoints", present == total, true, detail);
}

int check_host(void)
{
	struct strbuf caps = { 0 };
	bool ok = true, can_attach;
	int prog, rb;

	ok &= report("kernel BTF", access(HOST_BTF_PATH, R_OK) == 0, true,
		     HOST_BTF_PATH);
	ok &= check_tracepoints();
	prog = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, NULL);
	ok &= report("tracepoint programs", prog == 1, true,
		     prog < 0 ? "cannot probe (privileges?)" : "");
	rb = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL);
	ok &= report("BPF ring buffer", rb == 1, true,
		     rb < 0 ? "cannot probe (privileges?)" : "");
	report("uprobes", access(UPROBE_PMU, F_OK) == 0, false,
	       "for TLS and --uprobe (not needed yet)");
	report("kprobes", access(KPROBE_PMU, F_OK) == 0, false,
	       "not used by sonde");
	can_attach = privs_describe(&caps);
	ok &= report("capabilities", can_attach, true,
		     caps.failed ? "" : caps.data);
	strbuf_release(&caps);
	printf("%s\n", ok ? "sonde can run on this host" :
			    "sonde cannot run on this host: see MISSING above");
	return ok ? 0 : 1;
}
