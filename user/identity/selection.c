#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/selection.h"
#include "util/fmt.h"

struct rule_set {
	struct selection_rule *v;
	unsigned n;
};

static struct rule_set includes, excludes;
static struct selection_service *services;
static unsigned nservices;
static bool include_ports; /* some include rule is a port */

static const char *const kind_names[SELECTION_KIND_COUNT] = {
	[SELECTION_EXE] = "exe",
	[SELECTION_PORT] = "port",
	[SELECTION_PID] = "pid",
	[SELECTION_CGROUP] = "cgroup",
	[SELECTION_CONTAINER] = "container",
};

int selection_kv_next(const char **p, char *key, size_t keysz, char *value,
		      size_t valuesz)
{
	const char *s = *p, *comma, *eq;
	size_t n;

	if (!*s)
		return 0;
	comma = strchr(s, ',');
	if (!comma)
		comma = s + strlen(s);
	eq = memchr(s, '=', comma - s);
	*p = *comma ? comma + 1 : comma;
	if (!eq || eq == s)
		return -1;
	n = (size_t)(eq - s) < keysz - 1 ? (size_t)(eq - s) : keysz - 1;
	memcpy(key, s, n);
	key[n] = '\0';
	n = (size_t)(comma - eq - 1) < valuesz - 1 ? (size_t)(comma - eq - 1) :
						     valuesz - 1;
	memcpy(value, eq + 1, n);
	value[n] = '\0';
	return 1;
}

/* fnmatch(3) accepts anything; reject what is surely a mistake: an empty
 * pattern, an unclosed '[' class, a trailing backslash. */
static const char *glob_problem(const char *g)
{
	if (!*g)
		return "is empty";
	for (const char *p = g; *p; p++) {
		if (*p == '\\') {
			if (!p[1])
				return "ends with a backslash";
			p++;
		} else if (*p == '[') {
			const char *q = p + 1;

			if (*q == '!' || *q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']')
				q++;
			if (!*q)
				return "has an unclosed '['";
			p = q;
		}
	}
	return NULL;
}

static int parse_u32(const char *text, unsigned long max, uint32_t *out)
{
	unsigned long v;

	if (fmt_parse_ulong(text, 1, max, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int kind_from_name(const char *name)
{
	for (int k = 0; k < SELECTION_KIND_COUNT; k++)
		if (strcmp(kind_names[k], name) == 0)
			return k;
	return -1;
}

/* Fills r from one "kind" and "value". */
static int rule_set_value(struct selection_rule *r, int kind, const char *value,
			  char *err, size_t errsz)
{
	const char *problem;
	size_t len = strlen(value);

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	switch (kind) {
	case SELECTION_PORT:
		if (parse_u32(value, 65535, &r->number)) {
			snprintf(err, errsz,
				 "port '%s' is not a number from 1 to 65535",
				 value);
			return -1;
		}
		return 0;
	case SELECTION_PID:
		if (parse_u32(value, 4194304, &r->number)) {
			snprintf(err, errsz,
				 "pid '%s' is not a number from 1 to 4194304",
				 value);
			return -1;
		}
		return 0;
	case SELECTION_CONTAINER:
		if (len == 0 || len > 64 ||
		    strspn(value, "0123456789abcdef") != len) {
			snprintf(err, errsz,
				 "container '%s' is not a container id (1 to "
				 "64 lower-case hex digits)",
				 value);
			return -1;
		}
		break;
	default:
		problem = glob_problem(value);
		if (problem) {
			snprintf(err, errsz, "bad glob '%s' for %s: it %s",
				 value, kind_names[kind], problem);
			return -1;
		}
		if (len >= sizeof(r->glob)) {
			snprintf(err, errsz, "%s glob is longer than %zu bytes",
				 kind_names[kind], sizeof(r->glob) - 1);
			return -1;
		}
	}
	memcpy(r->glob, value, len + 1);
	return 0;
}

int selection_parse_rule(const char *text, struct selection_rule *out,
			 char *err, size_t errsz)
{
	char key[16], value[SELECTION_GLOB_MAX + 8];
	const char *p = text;
	int kind;

	if (selection_kv_next(&p, key, sizeof(key), value, sizeof(value)) !=
		    1 ||
	    *p) {
		snprintf(err, errsz,
			 "rule '%s' is not KIND=VALUE with KIND one of exe, "
			 "port, pid, cgroup, container",
			 text);
		return -1;
	}
	kind = kind_from_name(key);
	if (kind < 0) {
		snprintf(err, errsz,
			 "unknown rule kind '%s' (exe, port, pid, cgroup, "
			 "container)",
			 key);
		return -1;
	}
	return rule_set_value(out, kind, value, err, errsz);
}

/* Copies a name: visible ASCII, at most SELECTION_NAME_MAX bytes. */
static int copy_name(const char *what, const char *value, char *out, char *err,
		     size_t errsz)
{
	size_t len = strlen(value);

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)value[i] <= 0x20 ||
		    (unsigned char)value[i] >= 0x7f)
			len = 0;
	if (len == 0 || len > SELECTION_NAME_MAX) {
		snprintf(err, errsz,
			 "service %s '%s' must be 1 to %d visible ASCII "
			 "characters",
			 what, value, SELECTION_NAME_MAX);
		return -1;
	}
	memcpy(out, value, len + 1);
	return 0;
}

int selection_parse_service(const char *text, struct selection_service *out,
			    char *err, size_t errsz)
{
	char key[16], value[SELECTION_GLOB_MAX + 8];
	const char *p = text;
	int got, kind;

	memset(out, 0, sizeof(*out));
	while ((got = selection_kv_next(&p, key, sizeof(key), value,
					sizeof(value))) == 1) {
		if (strcmp(key, "name") == 0) {
			if (copy_name("name", value, out->name, err, errsz))
				return -1;
			continue;
		}
		if (strcmp(key, "namespace") == 0) {
			if (copy_name("namespace", value, out->namespace, err,
				      errsz))
				return -1;
			continue;
		}
		kind = kind_from_name(key);
		if (kind < 0 || kind == SELECTION_PORT) {
			snprintf(err, errsz,
				 "unknown service rule key '%s' (name, "
				 "namespace, exe, pid, cgroup, container)",
				 key);
			return -1;
		}
		if (out->nmatch == SELECTION_SERVICE_MATCHERS) {
			snprintf(err, errsz,
				 "a service rule has at most %d matchers",
				 SELECTION_SERVICE_MATCHERS);
			return -1;
		}
		if (rule_set_value(&out->match[out->nmatch++], kind, value, err,
				   errsz))
			return -1;
	}
	if (got < 0) {
		snprintf(err, errsz, "service rule '%s' is not KEY=VALUE,...",
			 text);
		return -1;
	}
	if (!out->name[0] || !out->nmatch) {
		snprintf(err, errsz,
			 "service rule '%s' needs a name and at least one of "
			 "exe, pid, cgroup, container",
			 text);
		return -1;
	}
	return 0;
}

static bool exe_matches(const char *glob, const char *exe)
{
	const char *base;

	if (!exe || !*exe)
		return false;
	if (strchr(glob, '/'))
		return fnmatch(glob, exe, 0) == 0;
	base = strrchr(exe, '/');
	return fnmatch(glob, base ? base + 1 : exe, 0) == 0;
}

static bool rule_matches_process(const struct selection_rule *r,
				 const struct selection_process *p)
{
	switch (r->kind) {
	case SELECTION_EXE:
		return exe_matches(r->glob, p->exe);
	case SELECTION_PID:
		return p->pid == r->number;
	case SELECTION_CGROUP:
		return p->cgroup && *p->cgroup &&
		       fnmatch(r->glob, p->cgroup, 0) == 0;
	case SELECTION_CONTAINER:
		return p->container_id && *p->container_id &&
		       strncmp(p->container_id, r->glob, strlen(r->glob)) == 0;
	default:
		return false;
	}
}

static bool any_matches(const struct rule_set *set,
			const struct selection_process *p)
{
	for (unsigned i = 0; i < set->n; i++)
		if (rule_matches_process(&set->v[i], p))
			return true;
	return false;
}

static bool port_in(const struct rule_set *set, uint16_t port)
{
	for (unsigned i = 0; i < set->n; i++)
		if (set->v[i].kind == SELECTION_PORT &&
		    set->v[i].number == port)
			return true;
	return false;
}

static int load_rules(struct rule_set *set, char *const *texts, unsigned n,
		      char *err, size_t errsz)
{
	set->v = calloc(n ? n : 1, sizeof(*set->v));
	if (!set->v) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		if (selection_parse_rule(texts[i], &set->v[i], err, errsz))
			return -1;
		set->n++;
	}
	return 0;
}

int selection_init(char *const *include, unsigned ninclude,
		   char *const *exclude, unsigned nexclude,
		   char *const *service_texts, unsigned nservice_texts,
		   char *err, size_t errsz)
{
	selection_free();
	if (load_rules(&includes, include, ninclude, err, errsz) ||
	    load_rules(&excludes, exclude, nexclude, err, errsz))
		return -1;
	for (unsigned i = 0; i < includes.n; i++)
		if (includes.v[i].kind == SELECTION_PORT)
			include_ports = true;
	services =
		calloc(nservice_texts ? nservice_texts : 1, sizeof(*services));
	if (!services) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < nservice_texts; i++) {
		if (selection_parse_service(service_texts[i], &services[i], err,
					    errsz))
			return -1;
		nservices++;
	}
	return 0;
}

bool selection_enabled(void)
{
	return includes.n || excludes.n;
}

uint8_t selection_decide(const struct selection_process *p)
{
	if (any_matches(&excludes, p))
		return SONDE_VERDICT_IGNORE;
	if (!includes.n || any_matches(&includes, p))
		return SONDE_VERDICT_TRACE;
	return include_ports ? SONDE_VERDICT_PORTS_ONLY : SONDE_VERDICT_IGNORE;
}

uint8_t selection_pending_verdict(void)
{
	if (!includes.n)
		return SONDE_VERDICT_TRACE;
	return include_ports ? SONDE_VERDICT_PORTS_ONLY : SONDE_VERDICT_IGNORE;
}

bool selection_conn_traced(uint8_t verdict, uint16_t port)
{
	if (verdict == SONDE_VERDICT_IGNORE || port_in(&excludes, port))
		return false;
	if (verdict == SONDE_VERDICT_TRACE)
		return true;
	return port_in(&includes, port);
}

void selection_each_port(void (*fn)(uint16_t port, uint8_t how, void *arg),
			 void *arg)
{
	for (unsigned i = 0; i < includes.n; i++)
		if (includes.v[i].kind == SELECTION_PORT &&
		    !port_in(&excludes, includes.v[i].number))
			fn(includes.v[i].number, SONDE_PORT_INCLUDE, arg);
	for (unsigned i = 0; i < excludes.n; i++)
		if (excludes.v[i].kind == SELECTION_PORT)
			fn(excludes.v[i].number, SONDE_PORT_EXCLUDE, arg);
}

const struct selection_service *
selection_service_for(const struct selection_process *p)
{
	for (unsigned i = 0; i < nservices; i++) {
		const struct selection_service *s = &services[i];
		bool all = true;

		for (unsigned j = 0; j < s->nmatch && all; j++)
			all = rule_matches_process(&s->match[j], p);
		if (all)
			return s;
	}
	return NULL;
}

void selection_free(void)
{
	free(includes.v);
	free(excludes.v);
	free(services);
	memset(&includes, 0, sizeof(includes));
	memset(&excludes, 0, sizeof(excludes));
	services = NULL;
	nservices = 0;
	include_ports = false;
}
