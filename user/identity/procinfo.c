#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity/procinfo.h"
#include "identity/selection.h"
#include "sonde_events.h"
#include "util/strmap.h"

/* /proc/<pid>/environ is read up to this size: 64 KiB covers any sane
 * environment; a variable beyond it is not seen. */
#define ENVIRON_MAX (64 << 10)
/* /proc/<pid>/cgroup: one line per v1 hierarchy, about a dozen. */
#define CGROUP_FILE_MAX (8 << 10)
#define EXE_MAX 4096
/* /proc/<pid>/cmdline: only argv[0] is used, and a path is at most
 * PATH_MAX (4096) bytes. */
#define CMDLINE_MAX 4096

static struct strmap cache; /* decimal pid -> struct procinfo */
static uint64_t next_serial = 1;

size_t procinfo_sanitize(const char *name, size_t len, char *out)
{
	size_t n = len < SERVICE_NAME_MAX ? len : SERVICE_NAME_MAX;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = name[i];

		out[i] = ch > 0x20 && ch < 0x7f ? ch : '_';
	}
	out[n] = '\0';
	return n;
}

/* The value of KEY in an environment block, or NULL; *n is its length. */
static const char *environ_get(const char *env, size_t len, const char *key,
			       size_t *n)
{
	size_t keylen = strlen(key);
	const char *p = env, *end = env + len;

	while (p < end) {
		const char *nul = memchr(p, '\0', end - p);
		size_t entry = nul ? (size_t)(nul - p) : (size_t)(end - p);

		if (entry > keylen && memcmp(p, key, keylen) == 0 &&
		    p[keylen] == '=') {
			*n = entry - keylen - 1;
			return p + keylen + 1;
		}
		p += entry + 1;
	}
	return NULL;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* OTEL_RESOURCE_ATTRIBUTES, from the OpenTelemetry SDK environment
 * specification: "key1=value1,key2=value2", values percent-encoded. */
int procinfo_resource_attribute(const char *attrs, size_t len, const char *key,
				char *out)
{
	const char *p = attrs, *end = attrs + len;
	size_t keylen = strlen(key);

	while (p < end) {
		const char *comma = memchr(p, ',', end - p);
		const char *item_end = comma ? comma : end;
		const char *eq = memchr(p, '=', item_end - p);
		const char *k = p, *k_end = eq, *v, *v_end = item_end;
		char decoded[SERVICE_NAME_MAX * 3 + 1];
		size_t n = 0;

		p = item_end + 1;
		if (!eq)
			continue;
		while (k < k_end && is_space(*k))
			k++;
		while (k_end > k && is_space(k_end[-1]))
			k_end--;
		if ((size_t)(k_end - k) != keylen || memcmp(k, key, keylen))
			continue;
		v = eq + 1;
		while (v < v_end && is_space(*v))
			v++;
		while (v_end > v && is_space(v_end[-1]))
			v_end--;
		while (v < v_end && n < sizeof(decoded) - 1) {
			int hi, lo;

			if (*v == '%' && v_end - v >= 3 &&
			    (hi = hex_digit(v[1])) >= 0 &&
			    (lo = hex_digit(v[2])) >= 0) {
				decoded[n++] = (char)(hi << 4 | lo);
				v += 3;
			} else {
				decoded[n++] = *v++;
			}
		}
		return procinfo_sanitize(decoded, n, out) ? 0 : -1;
	}
	return -1;
}

int procinfo_service_from_environ(const char *env, size_t len, char *out)
{
	const char *v;
	size_t n;

	v = environ_get(env, len, "OTEL_SERVICE_NAME", &n);
	if (v && procinfo_sanitize(v, n, out))
		return 0;
	v = environ_get(env, len, "OTEL_RESOURCE_ATTRIBUTES", &n);
	if (v && !procinfo_resource_attribute(v, n, "service.name", out))
		return 0;
	return -1;
}

/* Kubernetes' random suffixes use consonants and digits that spell no
 * words (k8s.io/apimachinery/pkg/util/rand). */
static bool is_k8s_random(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("bcdfghjklmnpqrstvwxz2456789", s[i]) || !s[i])
			return false;
	return n > 0;
}

static bool is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

void procinfo_workload_from_pod(const char *pod, char *out)
{
	size_t n = strlen(pod);
	const char *dash;

	/* "<name>-<5 random>", then maybe "-<6..10 random hash>". */
	dash = memrchr(pod, '-', n);
	if (dash && dash > pod) {
		size_t last = n - (size_t)(dash - pod) - 1;

		if (last == 5 && is_k8s_random(dash + 1, 5)) {
			n = (size_t)(dash - pod);
			dash = memrchr(pod, '-', n);
			last = dash ? n - (size_t)(dash - pod) - 1 : 0;
			if (dash && dash > pod && last >= 6 && last <= 10 &&
			    is_k8s_random(dash + 1, last))
				n = (size_t)(dash - pod);
		} else if (is_digits(dash + 1, last)) {
			n = (size_t)(dash - pod);
		}
	}
	procinfo_sanitize(pod, n, out);
}

/* "billing.service" -> "billing"; "billing.scope" -> "billing". */
static size_t unit_service_name(const char *unit, char *out)
{
	const char *dot = strrchr(unit, '.');
	size_t n = dot ? (size_t)(dot - unit) : strlen(unit);

	return procinfo_sanitize(unit, n, out);
}

static size_t exe_service_name(const char *exe, char *out)
{
	const char *base = strrchr(exe, '/');

	base = base ? base + 1 : exe;
	return procinfo_sanitize(base, strlen(base), out);
}

/* A name a file can have and a process can go by: letters, digits and
 * "._+-", not starting with '-' (a login shell's "-bash") or '.'. The
 * ':' of a title rewritten as "<name>: <role>" ("postgres: checkpointer",
 * "nginx: worker process") makes it none. */
static bool is_plain_name(const char *s, size_t n)
{
	if (n == 0 || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && !strchr("._+-", c))
			return false;
	}
	return true;
}

/* The name the process was started as: the file name in argv[0], which
 * tells apart the links to one multi-call binary (Debian's
 * /usr/bin/redis-server -> redis-check-rdb). A title rewritten in place
 * keeps the program as its first word ("/usr/bin/redis-server
 * 127.0.0.1:6379"), so the name ends at the first space. "/proc/self/exe"
 * names no one. Returns 0 when argv[0] gives no plain name. */
static size_t argv0_service_name(const char *cmdline, size_t len, char *out)
{
	const char *end, *base;
	size_t n;

	if (!cmdline)
		return 0;
	end = memchr(cmdline, '\0', len);
	n = end ? (size_t)(end - cmdline) : len;
	end = memchr(cmdline, ' ', n);
	if (end)
		n = (size_t)(end - cmdline);
	if (n >= 6 && memcmp(cmdline, "/proc/", 6) == 0)
		return 0;
	base = memrchr(cmdline, '/', n);
	base = base ? base + 1 : cmdline;
	n -= (size_t)(base - cmdline);
	if (!is_plain_name(base, n))
		return 0;
	return procinfo_sanitize(base, n, out);
}

/* One name starts the other: a link that names a version of the program
 * (python3 -> python3.11, ruby -> ruby3.1, nodejs -> node), not another
 * program. */
static bool is_alias(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	return !memcmp(a, b, na < nb ? na : nb);
}

/* The name in argv[0] when it tells the process apart from its
 * executable's: a multi-call binary's link. An alias keeps the
 * executable's more specific name, as interpreters were always named. */
static size_t started_as_other_name(const struct procinfo_source *src,
				    char *out)
{
	char exe[SERVICE_NAME_MAX + 1];
	size_t n = argv0_service_name(src->cmdline, src->cmdline_len, out);

	if (n && src->exe[0] && exe_service_name(src->exe, exe) &&
	    is_alias(out, exe))
		return 0;
	return n;
}

static void identify_service(const struct procinfo_source *src,
			     const struct selection_process *sp,
			     struct procinfo *out)
{
	const struct selection_service *rule = selection_service_for(sp);
	const char *v;
	size_t n;

	if (rule) {
		snprintf(out->service, sizeof(out->service), "%s", rule->name);
		if (rule->namespace[0])
			snprintf(out->namespace, sizeof(out->namespace), "%s",
				 rule->namespace);
		return;
	}
	if (!procinfo_service_from_environ(src->environ, src->environ_len,
					   out->service))
		return;
	if (src->cgroup->unit[0] &&
	    unit_service_name(src->cgroup->unit, out->service))
		return;
	if (out->pod_uid[0] &&
	    environ_get(src->environ, src->environ_len,
			"KUBERNETES_SERVICE_HOST", &n) &&
	    (v = environ_get(src->environ, src->environ_len, "HOSTNAME", &n)) !=
		    NULL &&
	    n > 0 && n <= SERVICE_NAME_MAX) {
		char pod[SERVICE_NAME_MAX + 1];

		memcpy(pod, v, n);
		pod[n] = '\0';
		procinfo_workload_from_pod(pod, out->service);
		if (out->service[0])
			return;
	}
	if (started_as_other_name(src, out->service))
		return;
	if (src->exe[0] && exe_service_name(src->exe, out->service))
		return;
	if (!procinfo_sanitize(src->comm, strnlen(src->comm, 16), out->service))
		strcpy(out->service, "unknown");
}

void procinfo_identify(const struct procinfo_source *src, struct procinfo *out)
{
	struct selection_process sp = {
		.pid = src->pid,
		.exe = src->exe,
		.cgroup = src->cgroup->path,
		.container_id = src->cgroup->container_id,
	};
	size_t n;
	const char *attrs;

	memset(out, 0, sizeof(*out));
	memcpy(out->container_id, src->cgroup->container_id,
	       sizeof(out->container_id));
	memcpy(out->pod_uid, src->cgroup->pod_uid, sizeof(out->pod_uid));
	identify_service(src, &sp, out);
	attrs = environ_get(src->environ, src->environ_len,
			    "OTEL_RESOURCE_ATTRIBUTES", &n);
	if (!out->namespace[0] && attrs)
		procinfo_resource_attribute(attrs, n, "service.namespace",
					    out->namespace);
	out->verdict = selection_decide(&sp);
}

/* Reads up to max bytes of a /proc file; returns the length, 0 on error.
 * *buf is malloc'ed (NULL on error). */
static size_t read_proc_file(uint32_t pid, const char *name, size_t max,
			     char **buf)
{
	char path[64];
	ssize_t n;
	size_t total = 0;
	int fd;

	*buf = NULL;
	snprintf(path, sizeof(path), "/proc/%u/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	*buf = malloc(max + 1);
	if (*buf)
		while (total < max &&
		       (n = read(fd, *buf + total, max - total)) > 0)
			total += (size_t)n;
	close(fd);
	if (*buf)
		(*buf)[total] = '\0';
	return total;
}

static void read_exe(uint32_t pid, char *out, size_t outsz)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	n = readlink(path, out, outsz - 1);
	if (n <= 0)
		n = 0;
	out[n] = '\0';
	/* An executable replaced on disk reads "/usr/bin/x (deleted)". */
	if (n > 10 && strcmp(out + n - 10, " (deleted)") == 0)
		out[n - 10] = '\0';
}

static struct procinfo_kernel kernel;

void procinfo_use_kernel(const struct procinfo_kernel *k)
{
	if (k)
		kernel = *k;
	else
		memset(&kernel, 0, sizeof(kernel));
}

/* Joins a path's components, kept last first, root first into out
 * ("curl\0bin\0usr\0" -> "/usr/bin/curl"); a path cut short of the root
 * has no leading '/'. */
static void join_components(const char *parts, size_t len, bool whole,
			    char *out, size_t size)
{
	size_t at = 0, end = len;

	out[0] = '\0';
	while (end > 0) {
		size_t start = end - 1, n;
		bool slash = at > 0 || whole;

		/* end is past a component's NUL: find where it starts. */
		while (start > 0 && parts[start - 1] != '\0')
			start--;
		n = strnlen(parts + start, end - start);
		if (at + slash + n >= size)
			break;
		if (slash)
			out[at++] = '/';
		memcpy(out + at, parts + start, n);
		at += n;
		out[at] = '\0';
		end = start;
	}
	if (at == 0 && whole && size > 1)
		strcpy(out, "/");
}

static size_t at_most(size_t n, size_t room)
{
	return n < room ? n : room;
}

void procinfo_exit_source(const struct sonde_exit_identity *id, char *exe,
			  size_t exe_size, struct cgroup_info *cg,
			  struct procinfo_source *src)
{
	char path[SONDE_EXIT_PATH + 2];

	join_components(id->exe, at_most(id->exe_len, SONDE_EXIT_PATH),
			id->exe_whole, exe, exe_size);
	src->exe = exe;
	join_components(id->cgroup, at_most(id->cgroup_len, SONDE_EXIT_PATH),
			true, path, sizeof(path));
	cgroup_parse_path(path, cg);
	src->cgroup = cg;
	src->cmdline = id->args;
	src->cmdline_len = at_most(id->args_len, SONDE_EXIT_ARGS);
	src->environ = id->env;
	src->environ_len = at_most(id->env_len, SONDE_EXIT_ENV);
}

/* Names pid from what its exit kept, when its /proc entry is gone: false
 * when nothing was kept. */
static bool procinfo_read_exited(uint32_t pid, const char *comm,
				 struct procinfo *out)
{
	static struct sonde_exit_identity id;
	struct procinfo_source src = { .pid = pid, .comm = comm };
	struct cgroup_info cg;
	char exe[SONDE_EXIT_PATH + 2];

	if (!kernel.exit_identity || !kernel.exit_identity(pid, &id))
		return false;
	procinfo_exit_source(&id, exe, sizeof(exe), &cg, &src);
	procinfo_identify(&src, out);
	return true;
}

static void procinfo_read(uint32_t pid, const char *comm, struct procinfo *out)
{
	struct procinfo_source src = { .pid = pid, .comm = comm };
	struct cgroup_info cg;
	char exe[EXE_MAX];
	char *env, *cgtext, *cmdline;
	size_t cglen;

	src.cmdline_len = read_proc_file(pid, "cmdline", CMDLINE_MAX, &cmdline);
	src.cmdline = cmdline;
	src.environ_len = read_proc_file(pid, "environ", ENVIRON_MAX, &env);
	src.environ = env ? env : "";
	cglen = read_proc_file(pid, "cgroup", CGROUP_FILE_MAX, &cgtext);
	/* Read last: a process whose executable can still be read had its
	 * memory, so its environment, when the rest was read. */
	read_exe(pid, exe, sizeof(exe));
	if (exe[0] || !procinfo_read_exited(pid, comm, out)) {
		if (!cgtext || cgroup_parse_proc(cgtext, cglen, &cg))
			memset(&cg, 0, sizeof(cg));
		src.exe = exe;
		src.cgroup = &cg;
		procinfo_identify(&src, out);
		if (exe[0] && kernel.named)
			kernel.named(pid);
	}
	free(cmdline);
	free(env);
	free(cgtext);
}

/* In front of the cache, by pid: every event asks for its process, and
 * most come from a few busy ones. Emptied whenever an entry is forgotten. */
#define RECENT_SLOTS 64

static struct {
	uint32_t pid;
	struct procinfo *info;
} recent[RECENT_SLOTS];

const struct procinfo *procinfo_get(uint32_t pid, const char *comm)
{
	static struct procinfo unknown = { .service = "unknown",
					   .verdict = SONDE_VERDICT_TRACE };
	unsigned slot = pid % RECENT_SLOTS;
	struct procinfo *info;
	char key[16];

	if (recent[slot].info && recent[slot].pid == pid)
		return recent[slot].info;
	snprintf(key, sizeof(key), "%u", pid);
	info = strmap_get(&cache, key);
	if (!info) {
		info = malloc(sizeof(*info));
		if (!info)
			return &unknown;
		procinfo_read(pid, comm, info);
		info->serial = next_serial++;
		if (!strmap_put(&cache, key, info)) {
			free(info);
			return &unknown;
		}
	}
	recent[slot].pid = pid;
	recent[slot].info = info;
	return info;
}

const char *procinfo_service(uint32_t pid, const char *comm)
{
	return procinfo_get(pid, comm)->service;
}

void procinfo_forget(uint32_t pid)
{
	char key[16];

	snprintf(key, sizeof(key), "%u", pid);
	memset(recent, 0, sizeof(recent));
	free(strmap_remove(&cache, key));
}

static void free_value(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

void procinfo_free(void)
{
	memset(recent, 0, sizeof(recent));
	strmap_each(&cache, free_value, NULL);
	strmap_clear(&cache);
}
