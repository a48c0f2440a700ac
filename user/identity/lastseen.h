/* Where each traced service was last seen: the process and executable that
 * served for it, and its namespace, container and pod. The event consumer
 * notes it for every traced record; the OTLP exporter reads it for each
 * service's resource attributes. Off until lastseen_enable, so the
 * consumer pays nothing for it while nobody reads it. Bounded to 4096
 * services; thread-safe. */
#ifndef SONDE_LASTSEEN_H
#define SONDE_LASTSEEN_H

#include <stdbool.h>
#include <stdint.h>

#include "identity/cgroup.h"
#include "identity/procinfo.h"

struct lastseen_process {
	uint32_t pid;
	char exe[24];
	char container[CGROUP_ID_LEN + 1];    /* "" when none */
	char namespace[SERVICE_NAME_MAX + 1]; /* "" when unknown */
	char pod_uid[CGROUP_UID_LEN + 1];     /* "" outside Kubernetes */
};

/* Turns the table on (a reader exists) or off. Off, lastseen_note does
 * nothing; what was noted stays until lastseen_reset. Any thread. */
void lastseen_enable(bool on);

/* Remembers that info->service was last seen in process pid, running exe
 * (the kernel's command name), with info's namespace, container and pod.
 * Cheap when nothing changed; a no-op while off, or when the table is
 * full and the service new. Any thread (the consumer's in practice). */
void lastseen_note(const struct procinfo *info, uint32_t pid, const char *exe);

/* Copies what is known of service's process into out, the container id
 * read again from /proc/<pid>/cgroup (a process can move). Returns false
 * when the service was never noted. Reads /proc without holding the
 * table's lock, so the consumer never waits on it. */
bool lastseen_get(const char *service, struct lastseen_process *out);

/* Finds a container id (64 hex digits, the last such run) in
 * /proc/<pid>/cgroup text into out, lower-cased. Returns 0, or -1 when
 * there is none. */
int lastseen_container_id(const char *cgroup, char out[CGROUP_ID_LEN + 1]);

/* Forgets every service noted (shutdown, tests). */
void lastseen_reset(void);

#endif
