/* Walks a BPF hash map from userspace: counts its entries and removes
 * those left behind by processes and threads that have exited.
 *
 * A process killed, or one that exits with connections still open, never
 * calls close(): the kernel closes its fds without a syscall sonde sees,
 * so the (process, fd) entries the BPF side keeps would stay until LRU
 * eviction pushed them out, and a full map would say nothing about load. */
#ifndef SONDE_MAPSWEEP_H
#define SONDE_MAPSWEEP_H

#include <stdbool.h>
#include <stdint.h>

struct mapsweep_result {
	uint32_t entries; /* entries left after the walk */
	uint32_t removed; /* entries of exited tasks deleted by this walk */
};

/* Whether task id (a process or thread id) has exited. */
typedef bool (*mapsweep_gone_fn)(uint32_t id);

/* True when no task id exists any more: kill(id, 0) fails with ESRCH. A
 * zombie (exited, not yet reaped) still exists; so does a task we may not
 * signal. */
bool mapsweep_task_gone(uint32_t id);

/* Verdicts remembered during one walk: a process with many entries is
 * asked about once, not once per entry. Zeroed, it knows none. */
#define MAPSWEEP_GONE_CACHE 512
struct mapsweep_gone_cache {
	struct {
		uint32_t id;
		uint8_t known; /* 0: empty slot; else 1 + gone */
	} slot[MAPSWEEP_GONE_CACHE];
};

/* gone(id), asked once per id while c remembers it: a later id that
 * shares its slot takes the slot over. */
bool mapsweep_gone_cached(struct mapsweep_gone_cache *c, uint32_t id,
			  mapsweep_gone_fn gone);

/* Walks the hash or LRU hash map behind fd in batches. When owner_offset
 * is at least 0, the key holds a __u32 task id at that byte offset, and
 * every entry whose task gone() says has exited is deleted. Entries the
 * BPF side adds or deletes meanwhile may or may not be counted. Returns 0,
 * or -errno when the map cannot be walked (not a plain hash map, an
 * offset beyond the key, no memory); *out is then zeroed. */
int mapsweep_walk(int fd, int owner_offset, mapsweep_gone_fn gone,
		  struct mapsweep_result *out);

#endif
