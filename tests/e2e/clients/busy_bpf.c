/* busy_bpf OBJECT SECONDS: loads and attaches the programs in OBJECT
 * (busy_bpf.bpf.o), then keeps every CPU calling getppid() for SECONDS, one
 * child pinned to each, so that the CPUs spend most of that time inside
 * the BPF program. Prints "busy" once attached, and each child's number
 * of calls when done; exits 1 when loading or attaching failed. */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void call_until(int cpu, double end)
{
	cpu_set_t set;
	long calls = 0;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	while (now() < end) {
		syscall(SYS_getppid);
		calls++;
	}
	printf("cpu %d: %ld calls\n", cpu, calls);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double end;

	if (argc != 3) {
		fprintf(stderr, "usage: busy_bpf OBJECT SECONDS\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "busy_bpf: cannot load %s\n", argv[1]);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "busy_bpf: cannot attach\n");
			return 1;
		}
	}
	printf("busy\n");
	fflush(stdout);
	end = now() + atof(argv[2]);
	for (long cpu = 0; cpu < ncpu; cpu++) {
		if (fork() == 0) {
			call_until(cpu, end);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	bpf_object__close(obj);
	return 0;
}
