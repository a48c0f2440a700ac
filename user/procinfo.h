/* Service identity per process: OTEL_SERVICE_NAME from the process's
 * environment when set, else the executable's file name, else the command
 * name the kernel reported. Cached per pid until the process exits or
 * execs. Used by the event consumer thread only. */
#ifndef SONDE_PROCINFO_H
#define SONDE_PROCINFO_H

#include <stdint.h>

/* Longest service name kept; longer ones are cut. */
#define SERVICE_NAME_MAX 64

/* The service name for pid. comm is the kernel's name for the task, used
 * when /proc no longer has the process. Never NULL; the string stays valid
 * until procinfo_forget(pid) or procinfo_free(). */
const char *procinfo_service(uint32_t pid, const char *comm);

/* Drops what is cached for pid (it exited or exec'd). */
void procinfo_forget(uint32_t pid);

/* Extracts a service name from an environment block as found in
 * /proc/<pid>/environ (NUL-separated "KEY=value" entries) into out
 * (SERVICE_NAME_MAX + 1 bytes). Returns 0 when OTEL_SERVICE_NAME is set to
 * a usable value, -1 otherwise. */
int procinfo_service_from_environ(const char *env, size_t len, char *out);

/* Copies name into out (SERVICE_NAME_MAX + 1 bytes), keeping visible ASCII
 * and replacing anything else with '_'. Returns the length (0: unusable). */
size_t procinfo_sanitize(const char *name, size_t len, char *out);

void procinfo_free(void);

#endif
