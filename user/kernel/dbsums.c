#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "kernel/dbsums.h"
#include "util/probe.h"

/* Entries read per batch: one syscall for a whole map of a few hundred
 * keys. */
#define BATCH 256
#define NBUCKETS (SONDE_DB_SUM_BOUNDS + 1)

/* A key's sums as last read: at most SONDE_DB_SUMS_MAX keys, 312 bytes
 * each, in a table of open addressing (util/probe.h). */
struct kept {
	bool used;
	struct sonde_db_sum_key key;
	uint64_t sum_ns;
	uint64_t buckets[NBUCKETS];
};

static size_t home_of(const struct sonde_db_sum_key *k, size_t n)
{
	uint64_t w[4] = { 0 }, h = 0;

	memcpy(w, k, sizeof(*k));
	for (int i = 0; i < 4; i++)
		h = (h ^ w[i]) * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> (64 - __builtin_ctzll(n)));
}

static size_t kept_home(const void *s, size_t n)
{
	return home_of(&((const struct kept *)s)->key, n);
}

static bool kept_used(const void *s)
{
	return ((const struct kept *)s)->used;
}

static struct probe_table table = {
	.size = sizeof(struct kept),
	.home = kept_home,
	.used = kept_used,
};
static uint64_t removed; /* keys of exited processes deleted */

/* Read buffers, sized for the CPUs once. */
static struct sonde_db_sum_key *keys;
static char *values;
static int values_ncpus;

/* Bytes of one CPU's copy of a value: the kernel rounds it up to 8. */
#define VALUE_STRIDE ((sizeof(struct sonde_db_sum) + 7) & ~(size_t)7)

/* The slot of k: its own, or the free one it would take. */
static size_t slot_for(const struct sonde_db_sum_key *k)
{
	size_t i = home_of(k, table.nslots);
	struct kept *e;

	while ((e = probe_slot(&table, i))->used &&
	       memcmp(&e->key, k, sizeof(*k)) != 0)
		i = probe_next(&table, i);
	return i;
}

/* The kept sums of k, zero when new; NULL when there is no room. */
static struct kept *kept_of(const struct sonde_db_sum_key *k)
{
	struct kept *e;

	if (table.nslots) {
		e = probe_slot(&table, slot_for(k));
		if (e->used)
			return e;
	}
	if (!probe_grow(&table))
		return NULL;
	e = probe_slot(&table, slot_for(k));
	e->used = true;
	e->key = *k;
	table.nused++;
	return e;
}

/* Forgets the kept sums of k, if any. */
static void kept_forget(const struct sonde_db_sum_key *k)
{
	size_t i;

	if (!table.nslots)
		return;
	i = slot_for(k);
	if (((struct kept *)probe_slot(&table, i))->used)
		probe_delete(&table, i);
}

/* The sums of one key over ncpus copies at v. */
static void total_of(const char *v, int ncpus, struct sonde_db_sum *out)
{
	memset(out, 0, sizeof(*out));
	for (int cpu = 0; cpu < ncpus; cpu++) {
		const struct sonde_db_sum *s =
			(const void *)(v + (size_t)cpu * VALUE_STRIDE);

		out->sum_ns += s->sum_ns;
		for (int b = 0; b < NBUCKETS; b++)
			out->buckets[b] += s->buckets[b];
		if (!out->comm[0])
			memcpy(out->comm, s->comm, sizeof(out->comm));
	}
}

/* Hands on what the key k grew by to total since last read. */
static void take(const struct sonde_db_sum_key *k,
		 const struct sonde_db_sum *total, dbsums_fn fn, void *arg)
{
	struct sonde_db_sums_event ev = { 0 };
	struct kept *e = kept_of(k);
	bool fresh = false;

	if (!e)
		return; /* read again, whole, once there is memory */
	for (int b = 0; b < NBUCKETS; b++)
		fresh |= total->buckets[b] < e->buckets[b];
	if (fresh || total->sum_ns < e->sum_ns) {
		/* Not the entry last read: it was made anew. */
		memset(e->buckets, 0, sizeof(e->buckets));
		e->sum_ns = 0;
	}
	for (int b = 0; b < NBUCKETS; b++) {
		ev.grew.buckets[b] = total->buckets[b] - e->buckets[b];
		ev.count += ev.grew.buckets[b];
	}
	if (!ev.count)
		return;
	ev.hdr.kind = SONDE_EV_DB_SUMS;
	ev.hdr.tgid = k->tgid;
	ev.key = *k;
	ev.grew.sum_ns = total->sum_ns - e->sum_ns;
	memcpy(ev.grew.comm, total->comm, sizeof(ev.grew.comm));
	memcpy(e->buckets, total->buckets, sizeof(e->buckets));
	e->sum_ns = total->sum_ns;
	fn(&ev, arg);
}

static bool buffers_for(int ncpus)
{
	if (values && values_ncpus == ncpus)
		return true;
	free(values);
	values = malloc((size_t)BATCH * ncpus * VALUE_STRIDE);
	if (!keys)
		keys = malloc(BATCH * sizeof(*keys));
	values_ncpus = values ? ncpus : 0;
	return values && keys;
}

int dbsums_read(int fd, int ncpus, dbsums_fn fn, dbsums_gone_fn gone,
		void *gone_arg, void *arg)
{
	uint32_t in_batch, out_batch;
	void *from = NULL;
	int err;

	if (ncpus <= 0 || !buffers_for(ncpus))
		return -ENOMEM;
	for (;;) {
		uint32_t n = BATCH;

		/* The batch token of a hash map is a bucket index: deleting
		 * keys already read does not disturb the walk. */
		err = bpf_map_lookup_batch(fd, from, &out_batch, keys, values,
					   &n, NULL);
		if (err && err != -ENOENT)
			return err;
		for (uint32_t i = 0; i < n; i++) {
			struct sonde_db_sum total;

			total_of(values + (size_t)i * ncpus * VALUE_STRIDE,
				 ncpus, &total);
			take(&keys[i], &total, fn, arg);
			if (!gone || !gone(keys[i].tgid, gone_arg))
				continue;
			if (bpf_map_delete_elem(fd, &keys[i]) == 0)
				removed++;
			kept_forget(&keys[i]);
		}
		if (err == -ENOENT)
			return 0;
		in_batch = out_batch;
		from = &in_batch;
	}
}

unsigned dbsums_keys(void)
{
	return (unsigned)table.nused;
}

uint64_t dbsums_removed(void)
{
	return removed;
}

void dbsums_clear(void)
{
	removed = 0;
	probe_free(&table);
	free(keys);
	free(values);
	keys = NULL;
	values = NULL;
	values_ncpus = 0;
}
