/* What a process's cgroup path says about where it runs: its systemd unit,
 * or its container (id, runtime) and Kubernetes pod. Pure functions over
 * caller-owned text: nothing is allocated, any input is safe. */
#ifndef SONDE_CGROUP_H
#define SONDE_CGROUP_H

#include <stddef.h>

#define CGROUP_PATH_MAX 512
#define CGROUP_UNIT_MAX 128
#define CGROUP_ID_LEN 64  /* container ids are 64 hex digits */
#define CGROUP_UID_LEN 36 /* 8-4-4-4-12 */

enum cgroup_runtime {
	CGROUP_RUNTIME_NONE = 0,
	CGROUP_RUNTIME_DOCKER,
	CGROUP_RUNTIME_CONTAINERD,
	CGROUP_RUNTIME_CRIO,
	CGROUP_RUNTIME_PODMAN,
	CGROUP_RUNTIME_UNKNOWN, /* an id under kubepods with no prefix */
};

struct cgroup_info {
	char path[CGROUP_PATH_MAX];	      /* the path the rest came from */
	char unit[CGROUP_UNIT_MAX];	      /* "billing.service", unescaped */
	char container_id[CGROUP_ID_LEN + 1]; /* "" outside containers */
	char pod_uid[CGROUP_UID_LEN + 1];     /* "" outside Kubernetes */
	enum cgroup_runtime runtime;
};

/* Parses one cgroup path ("/system.slice/nginx.service") into out. A
 * container path yields no unit. Always succeeds; fields it cannot find are
 * empty. */
void cgroup_parse_path(const char *path, struct cgroup_info *out);

/* Parses the text of /proc/<pid>/cgroup (lines "ID:CONTROLLERS:PATH", for
 * cgroup v1 and v2) into out, picking the line that says the most: one
 * naming a container, else a systemd unit, else the v2 or name=systemd
 * path. Returns 0, or -1 when no line is usable (out is then zeroed). */
int cgroup_parse_proc(const char *text, size_t len, struct cgroup_info *out);

/* "docker", "containerd", "cri-o", "podman", "unknown" or "" (none). */
const char *cgroup_runtime_name(enum cgroup_runtime r);

#endif
