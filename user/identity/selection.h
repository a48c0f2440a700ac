/* Which processes and connections sonde traces, and the service rules that
 * name processes. Rules come from --include/--exclude/--service or the
 * config file, as text "KIND=VALUE" (a rule) or "KEY=VALUE,KEY=VALUE" (a
 * service rule):
 *   exe=GLOB        the executable's path (a glob without '/' matches the
 *                   file name only), fnmatch(3) syntax
 *   port=N          the connection's local (listening) port
 *   pid=N           the process
 *   cgroup=GLOB     the process's cgroup path (/proc/<pid>/cgroup)
 *   container=ID    the container id, or an unambiguous prefix of it
 * A connection is traced when no include rule exists or one matches it (its
 * process, or its local port), and no exclude rule matches. sonde itself
 * is never traced. State is set once at start-up, then read-only. */
#ifndef SONDE_SELECTION_H
#define SONDE_SELECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sonde_events.h"

#define SELECTION_GLOB_MAX 256
#define SELECTION_NAME_MAX 64
/* Matchers in one service rule. */
#define SELECTION_SERVICE_MATCHERS 4

enum selection_kind {
	SELECTION_EXE = 0,
	SELECTION_PORT,
	SELECTION_PID,
	SELECTION_CGROUP,
	SELECTION_CONTAINER,
	SELECTION_KIND_COUNT,
};

struct selection_rule {
	enum selection_kind kind;
	char glob[SELECTION_GLOB_MAX]; /* exe, cgroup, container */
	uint32_t number;	       /* port, pid */
};

/* A config rule naming the processes it matches (every matcher must). */
struct selection_service {
	struct selection_rule match[SELECTION_SERVICE_MATCHERS];
	unsigned nmatch;
	char name[SELECTION_NAME_MAX + 1];
	char namespace[SELECTION_NAME_MAX + 1]; /* "" when not given */
};

/* What is known of a process when deciding. Strings may be "". */
struct selection_process {
	uint32_t pid;
	const char *exe;	  /* full path of the executable */
	const char *cgroup;	  /* cgroup path */
	const char *container_id; /* 64 hex digits */
};

/* Splits the next "KEY=VALUE" off the comma-separated text at *p into key
 * and value (NUL-terminated, truncated to their sizes) and advances *p.
 * Returns 1 when a pair was read, 0 at the end, -1 when an item has no
 * '=' or an empty key. */
int selection_kv_next(const char **p, char *key, size_t keysz, char *value,
		      size_t valuesz);

/* Parses one rule, "exe=/usr/sbin/nginx". Returns 0, or -1 with a reason
 * in err (unknown kind, bad glob, port or pid out of range). */
int selection_parse_rule(const char *text, struct selection_rule *out,
			 char *err, size_t errsz);

/* Parses a service rule, "name=checkout,namespace=shop,exe=*\/checkout".
 * name and at least one process matcher (exe, pid, cgroup, container) are
 * required. Returns 0, or -1 with a reason in err. */
int selection_parse_service(const char *text, struct selection_service *out,
			    char *err, size_t errsz);

/* Installs the rules (texts already accepted by the parsers above; copied).
 * Returns 0, or -1 with a reason in err. */
int selection_init(char *const *include, unsigned ninclude,
		   char *const *exclude, unsigned nexclude,
		   char *const *services, unsigned nservices, char *err,
		   size_t errsz);

/* True when any include or exclude rule is set: the kernel then consults
 * per-process verdicts. */
bool selection_enabled(void);

/* The verdict for a process (SONDE_VERDICT_*): IGNORE when an exclude rule
 * matches it, TRACE when no include rule exists or one matches it,
 * PORTS_ONLY when only its connections on included ports are wanted. */
uint8_t selection_decide(const struct selection_process *p);

/* The verdict while a new process is being decided: TRACE unless include
 * rules exist (an excluded process's early events are dropped by
 * selection_conn_traced). */
uint8_t selection_pending_verdict(void);

/* Whether a connection with local port of a process with that verdict is
 * traced. */
bool selection_conn_traced(uint8_t verdict, uint16_t port);

/* Calls fn for every port rule (SONDE_PORT_INCLUDE or _EXCLUDE; exclude
 * wins when a port is in both). */
void selection_each_port(void (*fn)(uint16_t port, uint8_t how, void *arg),
			 void *arg);

/* The first service rule matching p, or NULL. */
const struct selection_service *
selection_service_for(const struct selection_process *p);

/* Drops every rule. */
void selection_free(void);

#endif
