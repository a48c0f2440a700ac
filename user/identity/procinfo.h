/* Service identity per process, first match wins:
 *   1. a service rule from the config (--service)
 *   2. OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES,
 *      from the process's environment
 *   3. its systemd unit ("billing.service" -> billing)
 *   4. its Kubernetes workload: the pod name Kubernetes puts in HOSTNAME,
 *      without the generated suffixes ("checkout-7d9f8c6b5-x2x9z" ->
 *      checkout); the cgroup path gives the container id and pod UID
 *   5. the name it was started as, the file name in argv[0]: a link to a
 *      multi-call binary names it (Debian's /usr/bin/redis-server ->
 *      redis-check-rdb gives redis-server). A title the process rewrote
 *      counts by its first word when that is a plain name
 *      ("/usr/bin/redis-server 127.0.0.1:6379"); "postgres: checkpointer"
 *      or "nginx: worker process" fall through, and so does a name that
 *      starts the executable's or is started by it, a version link
 *      (/usr/bin/python3 -> python3.11 stays python3.11), to
 *   6. the executable's file name, else the kernel's command name
 * Also the process's selection verdict (selection.h). Cached per pid until
 * the process exits or execs. A process whose /proc entry is gone by the
 * time its first record is read is named the same way from what the
 * kernel kept of it as it exited (struct sonde_exit_identity). Used by the event consumer thread only. */
#ifndef SONDE_PROCINFO_H
#define SONDE_PROCINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity/cgroup.h"
#include "sonde_events.h"

/* Longest service name kept; longer ones are cut. */
#define SERVICE_NAME_MAX 64

struct procinfo {
	char service[SERVICE_NAME_MAX + 1];
	char namespace[SERVICE_NAME_MAX + 1]; /* "" when unknown */
	char container_id[CGROUP_ID_LEN + 1]; /* "" outside containers */
	char pod_uid[CGROUP_UID_LEN + 1];     /* "" outside Kubernetes */
	uint8_t verdict;		      /* SONDE_VERDICT_* */
	/* Unique to this entry (0: the stand-in when memory ran out): what
	 * was worked out from it can be kept by serial, and is stale once
	 * procinfo_get gives the pid an entry with another. */
	uint64_t serial;
};

/* What /proc says of a process, for procinfo_identify. */
struct procinfo_source {
	uint32_t pid;
	const char *exe;     /* readlink of /proc/<pid>/exe, "" unknown */
	const char *cmdline; /* /proc/<pid>/cmdline: NUL-separated argv, or
				NULL (then cmdline_len is 0) */
	size_t cmdline_len;
	const char *environ; /* NUL-separated "KEY=value" entries */
	size_t environ_len;
	const struct cgroup_info *cgroup;
	const char *comm; /* the kernel's command name */
};

/* What the kernel side can say of processes (kernel/capture.c gives
 * it; main sets it). */
struct procinfo_kernel {
	/* What pid left of its identity when it exited, taken out: false
	 * when nothing was kept (it was named, or the kernel keeps none). */
	bool (*exit_identity)(uint32_t pid, struct sonde_exit_identity *out);
	/* pid was named from its live /proc entry: its exit need keep
	 * nothing. */
	void (*named)(uint32_t pid);
};

/* Names processes gone from /proc by what k keeps of them; NULL: by their
 * comm alone. */
void procinfo_use_kernel(const struct procinfo_kernel *k);

/* src as /proc would have given it, from what the process's exit kept:
 * the paths joined root first into exe (exe_size bytes) and cg, argv and
 * the environment pointing into id. */
void procinfo_exit_source(const struct sonde_exit_identity *id, char *exe,
			  size_t exe_size, struct cgroup_info *cg,
			  struct procinfo_source *src);

/* Everything sonde knows of pid (read from /proc on first use). comm names
 * the process when /proc no longer has it. Never NULL; valid until
 * procinfo_forget(pid) or procinfo_free(). */
const struct procinfo *procinfo_get(uint32_t pid, const char *comm);

/* procinfo_get(pid, comm)->service. */
const char *procinfo_service(uint32_t pid, const char *comm);

/* Drops what is cached for pid (it exited or exec'd). */
void procinfo_forget(uint32_t pid);

/* The identity chain over what was read from /proc: fills out. Pure
 * but for the service rules installed with selection_init. */
void procinfo_identify(const struct procinfo_source *src, struct procinfo *out);

/* Extracts a service name from an environment block as found in
 * /proc/<pid>/environ into out (SERVICE_NAME_MAX + 1 bytes):
 * OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES.
 * Returns 0 when one is set to a usable value, -1 otherwise. */
int procinfo_service_from_environ(const char *env, size_t len, char *out);

/* Finds key in an OTEL_RESOURCE_ATTRIBUTES value ("k=v,k2=v%2C2"),
 * percent-decodes and sanitizes its value into out (SERVICE_NAME_MAX + 1
 * bytes). Returns 0, or -1 when absent or empty. */
int procinfo_resource_attribute(const char *attrs, size_t len, const char *key,
				char *out);

/* The workload a Kubernetes pod name belongs to: the Deployment's
 * "<name>-<hash>-<suffix>", a DaemonSet's or Job's "<name>-<suffix>" and a
 * StatefulSet's "<name>-<ordinal>" all give <name>. Writes into out
 * (SERVICE_NAME_MAX + 1 bytes). */
void procinfo_workload_from_pod(const char *pod, char *out);

/* Copies name into out (SERVICE_NAME_MAX + 1 bytes), keeping visible ASCII
 * and replacing anything else with '_'. Returns the length (0: unusable). */
size_t procinfo_sanitize(const char *name, size_t len, char *out);

void procinfo_free(void);

#endif
