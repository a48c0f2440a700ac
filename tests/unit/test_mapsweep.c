/* The map sweep against real BPF maps (needs CAP_BPF, as the tests run
 * as root): entries of exited processes and threads go, those of live and
 * zombie ones stay, and the count is exact across several batches. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "kernel/mapsweep.h"
#include "unit.h"

/* The shape of the BPF side's (process, fd) key, with a value as large as
 * a connection's state. */
struct key {
	uint32_t tgid;
	uint32_t fd;
};

struct value {
	char bytes[600];
};

static int make_map(enum bpf_map_type type, uint32_t key_size,
		    uint32_t max_entries)
{
	int fd = bpf_map_create(type, "sweep_test", key_size,
				sizeof(struct value), max_entries, NULL);

	if (fd < 0)
		fprintf(stderr, "bpf_map_create: %s\n", strerror(-fd));
	return fd;
}

static void put(int fd, const void *key)
{
	struct value v = { { 1 } };

	CHECK(bpf_map_update_elem(fd, key, &v, BPF_NOEXIST) == 0);
}

static void put_fds(int fd, uint32_t tgid, uint32_t from, uint32_t n)
{
	for (uint32_t i = from; i < from + n; i++) {
		struct key k = { tgid, i };

		put(fd, &k);
	}
}

static bool has(int fd, uint32_t tgid, uint32_t fdnum)
{
	struct key k = { tgid, fdnum };
	struct value v;

	return bpf_map_lookup_elem(fd, &k, &v) == 0;
}

/* A pid that existed and has been reaped. */
static pid_t exited_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static void *thread_tid(void *out)
{
	*(pid_t *)out = (pid_t)syscall(SYS_gettid);
	return NULL;
}

/* A thread id that existed and has been joined. */
static pid_t exited_tid(void)
{
	pthread_t t;
	pid_t tid = 0;

	pthread_create(&t, NULL, thread_tid, &tid);
	pthread_join(t, NULL);
	return tid;
}

TEST(live_and_exited_processes_are_told_apart)
{
	pid_t zombie = fork();

	if (zombie == 0)
		_exit(0);
	/* Give the child time to exit; it stays a zombie until reaped. */
	usleep(50000);
	CHECK(!mapsweep_task_gone((uint32_t)getpid()));
	CHECK(!mapsweep_task_gone((uint32_t)zombie));
	CHECK(!mapsweep_task_gone(1));
	CHECK(mapsweep_task_gone((uint32_t)exited_pid()));
	CHECK(mapsweep_task_gone((uint32_t)exited_tid()));
	/* 0 would mean "the caller's process group": never gone. */
	CHECK(!mapsweep_task_gone(0));
	waitpid(zombie, NULL, 0);
	CHECK(mapsweep_task_gone((uint32_t)zombie));
}

TEST(entries_of_exited_processes_are_removed)
{
	int fd = make_map(BPF_MAP_TYPE_LRU_HASH, sizeof(struct key), 4096);
	uint32_t self = (uint32_t)getpid(), dead = (uint32_t)exited_pid();
	struct mapsweep_result r;

	if (fd < 0) {
		CHECK(fd >= 0);
		return;
	}
	/* More than one batch of each, interleaved in the buckets. */
	put_fds(fd, self, 0, 700);
	put_fds(fd, dead, 0, 900);
	CHECK(mapsweep_walk(fd, 0, mapsweep_task_gone, &r) == 0);
	CHECK(r.entries == 700);
	CHECK(r.removed == 900);
	CHECK(has(fd, self, 0) && has(fd, self, 699));
	CHECK(!has(fd, dead, 0) && !has(fd, dead, 899));
	/* Nothing left to remove: a second walk only counts. */
	CHECK(mapsweep_walk(fd, 0, mapsweep_task_gone, &r) == 0);
	CHECK(r.entries == 700 && r.removed == 0);
	close(fd);
}

TEST(a_negative_offset_only_counts)
{
	int fd = make_map(BPF_MAP_TYPE_HASH, sizeof(struct key), 1024);
	struct mapsweep_result r;

	if (fd < 0) {
		CHECK(fd >= 0);
		return;
	}
	put_fds(fd, (uint32_t)exited_pid(), 0, 300);
	CHECK(mapsweep_walk(fd, -1, mapsweep_task_gone, &r) == 0);
	CHECK(r.entries == 300 && r.removed == 0);
	close(fd);
}

/* A thread-keyed map (bpf_get_current_pid_tgid(): the thread id is the
 * low half) loses only the exited thread's entry. */
TEST(entries_of_exited_threads_are_removed)
{
	int fd = make_map(BPF_MAP_TYPE_LRU_HASH, sizeof(uint64_t), 64);
	uint64_t tgid = (uint64_t)getpid() << 32;
	uint64_t live = tgid | (uint32_t)syscall(SYS_gettid);
	uint64_t dead = tgid | (uint32_t)exited_tid();
	struct mapsweep_result r;
	struct value v;

	if (fd < 0) {
		CHECK(fd >= 0);
		return;
	}
	put(fd, &live);
	put(fd, &dead);
	CHECK(mapsweep_walk(fd, 0, mapsweep_task_gone, &r) == 0);
	CHECK(r.entries == 1 && r.removed == 1);
	CHECK(bpf_map_lookup_elem(fd, &live, &v) == 0);
	CHECK(bpf_map_lookup_elem(fd, &dead, &v) != 0);
	close(fd);
}

TEST(an_empty_map_counts_zero)
{
	int fd = make_map(BPF_MAP_TYPE_HASH, sizeof(struct key), 32768);
	struct mapsweep_result r = { 7, 7 };

	if (fd < 0) {
		CHECK(fd >= 0);
		return;
	}
	CHECK(mapsweep_walk(fd, 0, mapsweep_task_gone, &r) == 0);
	CHECK(r.entries == 0 && r.removed == 0);
	close(fd);
}

TEST(bad_maps_and_offsets_are_refused)
{
	int hash = make_map(BPF_MAP_TYPE_HASH, sizeof(struct key), 16);
	int array = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sweep_test", 4,
				   sizeof(struct value), 16, NULL);
	struct mapsweep_result r = { 7, 7 };

	CHECK(hash >= 0 && array >= 0);
	/* The owner's four bytes must lie within the 8-byte key. */
	CHECK(mapsweep_walk(hash, 5, mapsweep_task_gone, &r) == -EINVAL);
	CHECK(r.entries == 0 && r.removed == 0);
	CHECK(mapsweep_walk(hash, 4, mapsweep_task_gone, &r) == 0);
	CHECK(mapsweep_walk(array, -1, mapsweep_task_gone, &r) == -EINVAL);
	CHECK(mapsweep_walk(-1, -1, mapsweep_task_gone, &r) < 0);
	close(hash);
	close(array);
}

static unsigned nasked;

/* Odd ids have exited. */
static bool odd_gone(uint32_t id)
{
	nasked++;
	return id & 1;
}

TEST(a_walk_asks_about_each_process_once)
{
	struct mapsweep_gone_cache c = { 0 };
	bool right = true;

	nasked = 0;
	for (int round = 0; round < 3; round++)
		for (uint32_t id = 100; id < 110; id++)
			right &= mapsweep_gone_cached(&c, id, odd_gone) ==
				 (id & 1);
	CHECK(right && nasked == 10);
	/* An id sharing a slot takes it over; the first is asked again. */
	CHECK(!mapsweep_gone_cached(&c, 100 + MAPSWEEP_GONE_CACHE, odd_gone));
	CHECK(!mapsweep_gone_cached(&c, 100, odd_gone));
	CHECK(nasked == 12);
}

UNIT_MAIN("mapsweep", UNIT_CASE(live_and_exited_processes_are_told_apart),
	  UNIT_CASE(entries_of_exited_processes_are_removed),
	  UNIT_CASE(a_negative_offset_only_counts),
	  UNIT_CASE(entries_of_exited_threads_are_removed),
	  UNIT_CASE(an_empty_map_counts_zero),
	  UNIT_CASE(bad_maps_and_offsets_are_refused),
	  UNIT_CASE(a_walk_asks_about_each_process_once))
