/* The calls the BPF side sums itself (bpf/proto/db.bpf.h's db_sums, a
 * per-CPU hash map): what each key's sums grew by since they were last
 * read, and the forgetting of the keys of processes that exited.
 *
 * The BPF side only ever adds to an entry. The daemon keeps each key's
 * totals as it last read them and hands on the difference, so an entry
 * is never written from here while a call may be adding to it; a key is
 * deleted only once its process has exited, after a last read.
 *
 * Consumer thread only. */
#ifndef SONDE_DBSUMS_H
#define SONDE_DBSUMS_H

#include <stdbool.h>
#include <stdint.h>

#include "sonde_events.h"

/* Called for each key whose calls grew, with the growth; ev is valid
 * until it returns. */
typedef void (*dbsums_fn)(const struct sonde_db_sums_event *ev, void *arg);

/* Whether process tgid has exited: its keys are read a last time and
 * deleted. */
typedef bool (*dbsums_gone_fn)(uint32_t tgid, void *arg);

/* Reads the map behind fd, whose values are per CPU (ncpus copies), and
 * calls fn (with arg) for each key that grew; then deletes the keys
 * gone() (with gone_arg) names (NULL: none). Returns 0, or -errno when
 * the map could not be read (what grew and was not handed on is handed
 * on by a later read). */
int dbsums_read(int fd, int ncpus, dbsums_fn fn, dbsums_gone_fn gone,
		void *gone_arg, void *arg);

/* Keys read and kept: the map's entries, as of the latest read. */
unsigned dbsums_keys(void);

/* Keys of exited processes deleted since start (or dbsums_clear). */
uint64_t dbsums_removed(void);

/* Forgets every key's totals (the map is gone). */
void dbsums_clear(void);

#endif
