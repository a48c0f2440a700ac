// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* floor: the benchmark's baseline agent. Loads bpf/floor.bpf.c, empty
 * programs on exactly the tracepoints sonde uses, prints "floor: attached"
 * and holds them until SIGINT or SIGTERM. What a workload loses with this
 * running is the price of the hooks alone; tools/bench.py compares sonde's
 * loss against it. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"

#define TRACEFS "/sys/kernel/tracing"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Shows libbpf's warnings and errors; its debug chatter is noise here. */
static int print_libbpf(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int ensure_tracefs(void)
{
	if (access(TRACEFS "/events", F_OK) == 0)
		return 0;
	fprintf(stderr,
		"floor: tracefs not mounted at " TRACEFS ": mounting it\n");
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL)) {
		int err = errno;

		fprintf(stderr,
			"floor: cannot mount tracefs at " TRACEFS ": %s\n",
			strerror(err));
		return -err;
	}
	return 0;
}

/* Blocks SIGINT and SIGTERM outside sigsuspend(), so a signal cannot slip in
 * between testing stopping and going to sleep. Returns the mask to wait in. */
static sigset_t install_signal_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t stops, wait_mask;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigprocmask(SIG_BLOCK, &stops, &wait_mask);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
	return wait_mask;
}

int main(void)
{
	struct floor_bpf *skel;
	sigset_t wait_mask;
	int err;

	libbpf_set_print(print_libbpf);
	wait_mask = install_signal_handlers();
	if (ensure_tracefs())
		return 1;

	skel = floor_bpf__open_and_load();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "floor: loading the BPF programs failed: %s\n",
			strerror(-err));
		return 1;
	}
	err = floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr,
			"floor: attaching the BPF programs failed: %s\n",
			strerror(-err));
		goto out;
	}
	printf("floor: attached\n");
	fflush(stdout);

	while (!stopping)
		sigsuspend(&wait_mask);
out:
	floor_bpf__destroy(skel);
	return err ? 1 : 0;
}
