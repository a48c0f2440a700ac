#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "kernel/mapsweep.h"

/* Entries read per batch: one syscall per 256 entries instead of one per
 * key makes a full 32768-entry map of connections about 10 ms, not 60.
 * Only the keys are looked at; the kernel copies the values too, and
 * that copy is most of the time for a map with large values. */
#define BATCH 256

bool mapsweep_task_gone(uint32_t id)
{
	return id > 0 && kill((pid_t)id, 0) != 0 && errno == ESRCH;
}

bool mapsweep_gone_cached(struct mapsweep_gone_cache *c, uint32_t id,
			  mapsweep_gone_fn gone)
{
	unsigned i = id % MAPSWEEP_GONE_CACHE;

	if (c->slot[i].known && c->slot[i].id == id)
		return c->slot[i].known - 1;
	c->slot[i].id = id;
	c->slot[i].known = 1 + gone(id);
	return c->slot[i].known - 1;
}

static bool is_plain_hash(uint32_t type)
{
	return type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH;
}

/* Deletes the entries among keys[0..n) whose owner has exited; returns
 * how many it deleted. One the BPF side deleted first is not counted. */
static uint32_t remove_gone(int fd, const char *keys, uint32_t n,
			    uint32_t key_size, int owner_offset,
			    mapsweep_gone_fn gone,
			    struct mapsweep_gone_cache *cache)
{
	uint32_t removed = 0;

	for (uint32_t i = 0; i < n; i++) {
		const char *key = keys + (size_t)i * key_size;
		uint32_t id;

		memcpy(&id, key + owner_offset, sizeof(id));
		if (mapsweep_gone_cached(cache, id, gone) &&
		    bpf_map_delete_elem(fd, key) == 0)
			removed++;
	}
	return removed;
}

int mapsweep_walk(int fd, int owner_offset, mapsweep_gone_fn gone,
		  struct mapsweep_result *out)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info), in_batch, out_batch;
	struct mapsweep_gone_cache *cache = NULL;
	char *keys = NULL, *values = NULL;
	void *from = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		return err;
	if (!is_plain_hash(info.type) ||
	    (owner_offset >= 0 &&
	     (uint32_t)owner_offset + sizeof(uint32_t) > info.key_size))
		return -EINVAL;
	keys = malloc((size_t)BATCH * info.key_size);
	values = malloc((size_t)BATCH * info.value_size);
	cache = calloc(1, sizeof(*cache));
	if (!keys || !values || !cache) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		uint32_t n = BATCH;

		/* The batch token of a hash map is a bucket index: deleting
		 * entries already read does not disturb the walk. */
		err = bpf_map_lookup_batch(fd, from, &out_batch, keys, values,
					   &n, NULL);
		if (err && err != -ENOENT)
			break;
		out->entries += n;
		if (owner_offset >= 0)
			out->removed += remove_gone(fd, keys, n, info.key_size,
						    owner_offset, gone, cache);
		if (err == -ENOENT) {
			err = 0;
			break;
		}
		in_batch = out_batch;
		from = &in_batch;
	}
	out->entries -= out->removed;
	if (err)
		memset(out, 0, sizeof(*out));
out:
	free(keys);
	free(values);
	free(cache);
	return err;
}
