// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* floor: the benchmark's baseline agent. Loads bpf/floor.bpf.c, empty
 * programs on exactly the tracepoints sonde uses and, for each
 * --tls LIBRARY, an empty entry and return probe wherever sonde probes that
 * OpenSSL file (user/kernel/sslprobe.c), and for each --go-tls EXECUTABLE
 * an empty probe wherever sonde probes its Go crypto/tls
 * (user/kernel/goprobe.c); prints "floor: attached" and holds them
 * until SIGINT or SIGTERM. What a workload loses with this running is the
 * price of the hooks alone; tools/bench.py compares sonde's loss against
 * it. With --bound, the socket hooks run the bound's programs instead of
 * empty ones: the least work per call any HTTP tracer on them does
 * (--bound-calls: any tracer of a protocol of requests and replies in
 * turn, a database's); with --pid PID as well, the bound works for that
 * process only, as sonde --pid does (the empty programs have nothing to
 * filter). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"
#include "kernel/goprobe.h"
#include "kernel/hooks.h"
#include "kernel/sslprobe.h"

#define TRACEFS "/sys/kernel/tracing"
/* --tls and --go-tls flags accepted, each one OpenSSL file or Go
 * executable. */
#define MAX_TLS_FILES 16
/* Per file: an entry and a return probe per OpenSSL point, or a probe per
 * Go point. */
#define MAX_LINKS                                                 \
	(MAX_TLS_FILES * (SSLPROBE_FNS * 2 > GOPROBE_MAX_POINTS ? \
				  SSLPROBE_FNS * 2 :              \
				  GOPROBE_MAX_POINTS))

static struct bpf_link *links[MAX_LINKS];
static int nlinks;

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

static int attach_at(struct bpf_program *prog, const char *path,
		     uint64_t offset, bool retprobe)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe);
	struct bpf_link *l =
		bpf_program__attach_uprobe_opts(prog, -1, path, offset, &opts);

	if (!l)
		return -errno;
	links[nlinks++] = l;
	return 0;
}

/* Empty probes wherever sonde probes the OpenSSL file at path. */
static int attach_tls(struct floor_bpf *skel, const char *path)
{
	struct sslprobe_point points[SSLPROBE_FNS];
	int n = sslprobe_points(path, points), err = 0;

	if (n < 0) {
		fprintf(stderr, "floor: --tls %s: %s\n", path,
			n == -ENOENT ? "no SSL_read and SSL_write there" :
				       strerror(-n));
		return n;
	}
	for (int i = 0; i < n && !err; i++) {
		err = attach_at(skel->progs.floor_ssl_entry, path,
				points[i].offset, false);
		if (!err && !points[i].entry_only)
			err = attach_at(skel->progs.floor_ssl_exit, path,
					points[i].offset, true);
	}
	if (err)
		fprintf(stderr, "floor: --tls %s: attaching failed: %s\n", path,
			strerror(-err));
	else
		fprintf(stderr, "floor: %d probe points in %s\n", n, path);
	return err;
}

/* Empty probes wherever sonde probes the Go executable at path. */
static int attach_go_tls(struct floor_bpf *skel, const char *path)
{
	struct goprobe_point points[GOPROBE_MAX_POINTS];
	char why[256];
	int n = goprobe_points(path, points, why, sizeof(why)), err = 0;

	if (n < 0) {
		fprintf(stderr, "floor: --go-tls %s: %s\n", path,
			why[0]		   ? why :
			access(path, R_OK) ? strerror(errno) :
			n == -ENOEXEC	   ? "not a Go executable" :
					     "no crypto/tls there");
		return n;
	}
	for (int i = 0; i < n && !err; i++)
		err = attach_at(skel->progs.floor_ssl_entry, path,
				points[i].offset, false);
	if (err)
		fprintf(stderr, "floor: --go-tls %s: attaching failed: %s\n",
			path, strerror(-err));
	else
		fprintf(stderr, "floor: %d probe points in %s\n", n, path);
	return err;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: floor [--hooks auto|socket|syscall] "
		"[--bound|--bound-calls [--pid PID]] "
		"[--tls OPENSSL_FILE]... [--go-tls GO_EXECUTABLE]...\n");
}

/* With the socket hooks chosen, loads on them either the bound's programs
 * (bpf/floor.bpf.c) or the empty ones, not both. */
static void load_socket_programs(struct bpf_object *obj, bool bound)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		bool is_bound = !strncmp(bpf_program__name(prog), "bound_", 6);

		if (hooks_set_of(prog) == HOOKS_SOCKET)
			bpf_program__set_autoload(prog, is_bound == bound);
	}
}

int main(int argc, char **argv)
{
	const char *tls_files[MAX_TLS_FILES], *hooks = "auto";
	bool is_go[MAX_TLS_FILES];
	bool bound = false, calls = false, socket_hooks;
	struct floor_bpf *skel;
	sigset_t wait_mask;
	int ntls = 0, err;
	long pid = 0;
	char *end;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--hooks") && i + 1 < argc &&
		    (!strcmp(argv[i + 1], "auto") ||
		     !strcmp(argv[i + 1], "socket") ||
		     !strcmp(argv[i + 1], "syscall"))) {
			hooks = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "--bound") ||
		    !strcmp(argv[i], "--bound-calls")) {
			bound = true;
			calls = !strcmp(argv[i], "--bound-calls");
			continue;
		}
		if (!strcmp(argv[i], "--pid") && i + 1 < argc) {
			pid = strtol(argv[++i], &end, 10);
			if (*end || pid < 1 || pid > UINT32_MAX) {
				usage();
				return 2;
			}
			continue;
		}
		if ((strcmp(argv[i], "--tls") && strcmp(argv[i], "--go-tls")) ||
		    i + 1 == argc) {
			usage();
			return 2;
		}
		if (ntls == MAX_TLS_FILES) {
			fprintf(stderr, "floor: more than %d --tls files\n",
				MAX_TLS_FILES);
			return 2;
		}
		is_go[ntls] = !strcmp(argv[i], "--go-tls");
		tls_files[ntls++] = argv[++i];
	}
	if (pid && !bound) {
		usage();
		return 2;
	}
	libbpf_set_print(print_libbpf);
	wait_mask = install_signal_handlers();
	if (ensure_tracefs())
		return 1;

	skel = floor_bpf__open();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "floor: opening the BPF object failed: %s\n",
			strerror(-err));
		return 1;
	}
	/* The set sonde would load, as its --hooks does. */
	socket_hooks = !strcmp(hooks, "auto") ?
			       hooks_kernel_has_socket(TRACEFS) :
			       !strcmp(hooks, "socket");
	if (bound && !socket_hooks) {
		fprintf(stderr,
			"floor: --bound: the bound is built on the "
			"socket hooks, and --hooks %s loads the "
			"syscall ones\n",
			hooks);
		err = -EINVAL;
		goto out;
	}
	skel->rodata->bound_tgid = (__u32)pid;
	skel->rodata->bound_calls = calls;
	hooks_load_only(skel->obj, socket_hooks);
	if (socket_hooks)
		load_socket_programs(skel->obj, bound);
	err = floor_bpf__load(skel);
	if (err) {
		fprintf(stderr, "floor: loading the BPF programs failed: %s\n",
			strerror(-err));
		goto out;
	}
	err = floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr,
			"floor: attaching the BPF programs failed: %s\n",
			strerror(-err));
		goto out;
	}
	for (int i = 0; i < ntls && !err; i++)
		err = is_go[i] ? attach_go_tls(skel, tls_files[i]) :
				 attach_tls(skel, tls_files[i]);
	if (err)
		goto out;
	printf("floor: attached\n");
	fflush(stdout);

	while (!stopping)
		sigsuspend(&wait_mask);
out:
	while (nlinks)
		bpf_link__destroy(links[--nlinks]);
	floor_bpf__destroy(skel);
	return err ? 1 : 0;
}
