/* Reading the BPF side's sums of database calls from a real per-CPU hash
 * map (needs CAP_BPF, as the tests run as root): each key's growth is
 * handed on once, summed over the CPUs; a key made anew is handed on
 * whole; the keys of exited processes are read a last time and deleted;
 * a map of many keys is read whole, across batches. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kernel/dbsums.h"
#include "unit.h"

#define STRIDE ((sizeof(struct sonde_db_sum) + 7) & ~(size_t)7)

static int ncpus;

static int make_map(uint32_t max_entries)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "dbsums_test",
				sizeof(struct sonde_db_sum_key),
				sizeof(struct sonde_db_sum), max_entries, NULL);

	if (fd < 0)
		fprintf(stderr, "bpf_map_create: %s\n", strerror(-fd));
	ncpus = libbpf_num_possible_cpus();
	return fd;
}

static struct sonde_db_sum_key key_of(uint32_t tgid, uint16_t op)
{
	struct sonde_db_sum_key k;

	memset(&k, 0, sizeof(k));
	k.tgid = tgid;
	k.op = op;
	k.port = 6379;
	k.proto = SONDE_PROTO_REDIS;
	k.role = SONDE_ROLE_SERVER;
	return k;
}

/* Sets key's sums: on the first CPU, first calls in bucket 0 and sum
 * ns; on the last, last calls in bucket 2 and its comm. */
static void put(int fd, const struct sonde_db_sum_key *k, uint64_t first,
		uint64_t last, uint64_t sum)
{
	char *v = calloc(ncpus, STRIDE);
	struct sonde_db_sum *lo = (void *)v,
			    *hi = (void *)(v + (size_t)(ncpus - 1) * STRIDE);

	lo->buckets[0] = first;
	lo->sum_ns = sum;
	hi->buckets[2] += last;
	memcpy(hi->comm, "redis-server", 12);
	CHECK(bpf_map_update_elem(fd, k, v, BPF_ANY) == 0);
	free(v);
}

#define MAX_GREW 1024
static struct sonde_db_sums_event grew[MAX_GREW];
static unsigned ngrew;

static void note(const struct sonde_db_sums_event *ev, void *arg)
{
	(void)arg;
	if (ngrew < MAX_GREW)
		grew[ngrew++] = *ev;
}

static uint32_t gone_tgid;

static bool is_gone(uint32_t tgid, void *arg)
{
	(void)arg;
	return tgid == gone_tgid;
}

static const struct sonde_db_sums_event *grew_of(uint32_t tgid, uint16_t op)
{
	for (unsigned i = 0; i < ngrew; i++)
		if (grew[i].key.tgid == tgid && grew[i].key.op == op)
			return &grew[i];
	return NULL;
}

TEST(growth_is_handed_on_once_summed_over_cpus)
{
	int fd = make_map(64);
	struct sonde_db_sum_key k = key_of(100, 3);
	const struct sonde_db_sums_event *ev;

	CHECK(fd >= 0);
	put(fd, &k, 3, 2, 900);
	ngrew = 0;
	CHECK(dbsums_read(fd, ncpus, note, NULL, NULL, NULL) == 0);
	CHECK(ngrew == 1);
	ev = grew_of(100, 3);
	CHECK(ev && ev->hdr.kind == SONDE_EV_DB_SUMS && ev->hdr.tgid == 100);
	CHECK(ev->count == 5);
	CHECK(ev->grew.buckets[0] == 3 && ev->grew.buckets[2] == 2);
	CHECK(ev->grew.sum_ns == 900);
	CHECK(strcmp(ev->grew.comm, "redis-server") == 0);
	/* Nothing new: nothing handed on. */
	ngrew = 0;
	CHECK(dbsums_read(fd, ncpus, note, NULL, NULL, NULL) == 0);
	CHECK(ngrew == 0);
	/* Only what grew since. */
	put(fd, &k, 10, 2, 1500);
	CHECK(dbsums_read(fd, ncpus, note, NULL, NULL, NULL) == 0);
	CHECK(ngrew == 1 && grew[0].count == 7);
	CHECK(grew[0].grew.buckets[0] == 7 && grew[0].grew.buckets[2] == 0);
	CHECK(grew[0].grew.sum_ns == 600);
	CHECK(dbsums_keys() == 1);
	dbsums_clear();
	close(fd);
}

TEST(keys_of_exited_processes_are_read_then_deleted)
{
	int fd = make_map(64);
	struct sonde_db_sum_key live = key_of(200, 1), gone = key_of(201, 1);
	char *v = calloc(ncpus, STRIDE);

	CHECK(fd >= 0);
	put(fd, &live, 1, 0, 10);
	put(fd, &gone, 4, 0, 40);
	ngrew = 0;
	CHECK(dbsums_read(fd, ncpus, note, NULL, NULL, NULL) == 0);
	CHECK(ngrew == 2 && dbsums_keys() == 2);
	/* Its last calls come with its exit. */
	put(fd, &gone, 6, 0, 60);
	ngrew = 0;
	gone_tgid = 201;
	CHECK(dbsums_read(fd, ncpus, note, is_gone, NULL, NULL) == 0);
	CHECK(ngrew == 1 && grew_of(201, 1) && grew[0].count == 2);
	CHECK(bpf_map_lookup_elem(fd, &gone, v) == -ENOENT);
	CHECK(bpf_map_lookup_elem(fd, &live, v) == 0);
	CHECK(dbsums_keys() == 1 && dbsums_removed() == 1);
	/* The tgid again, a new process: its sums are new, whole. */
	put(fd, &gone, 2, 0, 20);
	ngrew = 0;
	CHECK(dbsums_read(fd, ncpus, note, NULL, NULL, NULL) == 0);
	CHECK(ngrew == 1 && grew[0].count == 2 && grew[0].grew.sum_ns == 20);
	gone_tgid = 0;
	free(v);
	dbsums_clear();
	close(fd);
}

TEST(a_key_made_anew_is_handed_on_whole)
{
	int fd = make_map(64);
	struct sonde_db_sum_key k = key_of(300, 2);

	CHECK(fd >= 0);
	put(fd, &k, 50, 0, 5000);
	ngrew = 0;
	CHECK(dbsums_read(fd, ncpus, note, NULL, NULL, NULL) == 0);
	/* Deleted and made again behind the reader's back: fewer calls
	 * than were read are not a negative growth. */
	CHECK(bpf_map_delete_elem(fd, &k) == 0);
	put(fd, &k, 3, 0, 300);
	ngrew = 0;
	CHECK(dbsums_read(fd, ncpus, note, NULL, NULL, NULL) == 0);
	CHECK(ngrew == 1 && grew[0].count == 3 && grew[0].grew.sum_ns == 300);
	dbsums_clear();
	close(fd);
}

static bool odd_gone(uint32_t tgid, void *arg)
{
	(void)arg;
	return tgid % 2;
}

static unsigned count_entries(int fd)
{
	struct sonde_db_sum_key k, next;
	unsigned n = 0;
	const void *at = NULL;

	while (bpf_map_get_next_key(fd, at, &next) == 0) {
		k = next;
		at = &k;
		n++;
	}
	return n;
}

TEST(many_keys_are_read_whole_across_batches)
{
	int fd = make_map(1024);
	uint64_t total = 0;

	CHECK(fd >= 0);
	for (uint32_t i = 0; i < 700; i++) {
		struct sonde_db_sum_key k = key_of(1000 + i, i % 7);

		put(fd, &k, i + 1, 0, 1);
	}
	ngrew = 0;
	CHECK(dbsums_read(fd, ncpus, note, NULL, NULL, NULL) == 0);
	CHECK(ngrew == 700 && dbsums_keys() == 700);
	for (unsigned i = 0; i < ngrew; i++)
		total += grew[i].count;
	CHECK(total == 700ull * 701 / 2);
	/* Half of them exit: nothing new to hand on, their keys deleted,
	 * the others kept. */
	ngrew = 0;
	CHECK(dbsums_read(fd, ncpus, note, odd_gone, NULL, NULL) == 0);
	CHECK(ngrew == 0 && dbsums_keys() == 350);
	CHECK(count_entries(fd) == 350);
	dbsums_clear();
	close(fd);
}

TEST(a_map_that_cannot_be_read_is_an_error)
{
	ngrew = 0;
	CHECK(dbsums_read(-1, 2, note, NULL, NULL, NULL) < 0);
	CHECK(dbsums_read(-1, 0, note, NULL, NULL, NULL) == -ENOMEM);
	CHECK(ngrew == 0);
	dbsums_clear();
}

UNIT_MAIN("dbsums", UNIT_CASE(growth_is_handed_on_once_summed_over_cpus),
	  UNIT_CASE(keys_of_exited_processes_are_read_then_deleted),
	  UNIT_CASE(a_key_made_anew_is_handed_on_whole),
	  UNIT_CASE(many_keys_are_read_whole_across_batches),
	  UNIT_CASE(a_map_that_cannot_be_read_is_an_error))
