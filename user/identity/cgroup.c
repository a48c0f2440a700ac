/* cgroup paths as container runtimes and systemd lay them out.
 *
 * cgroup v2 (one line "0::PATH") and v1 (one line per hierarchy,
 * "ID:CONTROLLERS:PATH"): https://docs.kernel.org/admin-guide/cgroup-v2.html
 * systemd unit names and their \xNN escapes: systemd.unit(5).
 * Kubernetes pod cgroups: "kubepods[-QOS]-pod<UID with _>.slice" with the
 * systemd driver, "kubepods/QOS/pod<UID>" with the cgroupfs driver. Each
 * runtime names the container's cgroup after its 64-hex-digit id:
 *   docker      docker-<id>.scope          /docker/<id>
 *   containerd  cri-containerd-<id>.scope  /kubepods/.../<id>
 *   cri-o       crio-<id>.scope            /kubepods/.../crio-<id>
 *   podman      libpod-<id>.scope
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "identity/cgroup.h"

struct runtime_prefix {
	const char *prefix;
	enum cgroup_runtime runtime;
};

static const struct runtime_prefix runtime_prefixes[] = {
	{ "docker-", CGROUP_RUNTIME_DOCKER },
	{ "cri-containerd-", CGROUP_RUNTIME_CONTAINERD },
	{ "containerd-", CGROUP_RUNTIME_CONTAINERD },
	{ "crio-", CGROUP_RUNTIME_CRIO },
	{ "libpod-", CGROUP_RUNTIME_PODMAN },
	{ "", CGROUP_RUNTIME_UNKNOWN },
};

const char *cgroup_runtime_name(enum cgroup_runtime r)
{
	switch (r) {
	case CGROUP_RUNTIME_NONE:
		return "";
	case CGROUP_RUNTIME_DOCKER:
		return "docker";
	case CGROUP_RUNTIME_CONTAINERD:
		return "containerd";
	case CGROUP_RUNTIME_CRIO:
		return "cri-o";
	case CGROUP_RUNTIME_PODMAN:
		return "podman";
	case CGROUP_RUNTIME_UNKNOWN:
		break;
	}
	return "unknown";
}

static bool is_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

static bool has_suffix(const char *p, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && memcmp(p + n - m, suffix, m) == 0;
}

static bool has_prefix(const char *p, size_t n, const char *prefix)
{
	size_t m = strlen(prefix);

	return n >= m && memcmp(p, prefix, m) == 0;
}

/* "docker-<64 hex>.scope", "crio-<64 hex>", "<64 hex>": the container id
 * and runtime, or false. "crio-conmon-<id>.scope" (cri-o's monitor) is not
 * a container. */
static bool component_container(const char *c, size_t n, const char *parent,
				size_t parent_len, struct cgroup_info *out)
{
	if (has_suffix(c, n, ".scope"))
		n -= strlen(".scope");
	for (size_t i = 0;
	     i < sizeof(runtime_prefixes) / sizeof(runtime_prefixes[0]); i++) {
		const struct runtime_prefix *rp = &runtime_prefixes[i];
		size_t plen = strlen(rp->prefix);

		if (!has_prefix(c, n, rp->prefix) ||
		    n - plen != CGROUP_ID_LEN ||
		    !is_hex(c + plen, CGROUP_ID_LEN))
			continue;
		memcpy(out->container_id, c + plen, CGROUP_ID_LEN);
		out->container_id[CGROUP_ID_LEN] = '\0';
		out->runtime = rp->runtime;
		/* cgroupfs docker: "/docker/<id>". */
		if (rp->runtime == CGROUP_RUNTIME_UNKNOWN && parent_len == 6 &&
		    memcmp(parent, "docker", 6) == 0)
			out->runtime = CGROUP_RUNTIME_DOCKER;
		return true;
	}
	return false;
}

/* 36 characters of a UUID whose separators are sep ('-' or '_'). */
static bool is_uid(const char *p, size_t n, char sep)
{
	if (n != CGROUP_UID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? p[i] != sep : !is_hex(p + i, 1))
			return false;
	}
	return true;
}

/* "pod<UID>" (cgroupfs) or "kubepods[-QOS]-pod<UID with _>.slice". */
static bool component_pod(const char *c, size_t n, struct cgroup_info *out)
{
	const char *uid = NULL;
	char sep = '-';

	if (has_prefix(c, n, "pod")) {
		uid = c + 3;
	} else if (has_prefix(c, n, "kubepods") && has_suffix(c, n, ".slice")) {
		n -= strlen(".slice");
		if (n < CGROUP_UID_LEN + 4)
			return false;
		uid = c + n - CGROUP_UID_LEN;
		if (memcmp(uid - 4, "-pod", 4) != 0)
			return false;
		sep = '_';
	}
	if (!uid || !is_uid(uid, c + n - uid, sep))
		return false;
	for (size_t i = 0; i < CGROUP_UID_LEN; i++)
		out->pod_uid[i] = uid[i] == '_' ? '-' : uid[i];
	out->pod_uid[CGROUP_UID_LEN] = '\0';
	return true;
}

/* A unit that names a service: "nginx.service", "billing.scope"; not the
 * units systemd makes for logins and user managers. */
static bool component_unit(const char *c, size_t n)
{
	if (!has_suffix(c, n, ".service") && !has_suffix(c, n, ".scope"))
		return false;
	return !has_prefix(c, n, "session-") && !has_prefix(c, n, "user@") &&
	       !has_prefix(c, n, "crio-conmon-") &&
	       !has_prefix(c, n, "user-runtime-dir@") &&
	       !(n == 10 && memcmp(c, "init.scope", 10) == 0);
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Copies a unit name, turning systemd's "\x2d" escapes back into bytes:
 * "openvpn\x2dclient@a.service" -> "openvpn-client@a.service". */
static void unit_unescape(const char *c, size_t n, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < outsz; i++) {
		int hi, lo;

		if (c[i] == '\\' && i + 3 < n && c[i + 1] == 'x' &&
		    (hi = hex_value(c[i + 2])) >= 0 &&
		    (lo = hex_value(c[i + 3])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 3;
			continue;
		}
		out[o++] = c[i];
	}
	out[o] = '\0';
}

void cgroup_parse_path(const char *path, struct cgroup_info *out)
{
	const char *p = path, *parent = "";
	size_t parent_len = 0;
	const char *unit = NULL;
	size_t unit_len = 0;

	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "%s", path);
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n) {
			component_pod(p, n, out);
			if (component_container(p, n, parent, parent_len, out))
				unit = NULL;
			else if (!out->container_id[0] &&
				 component_unit(p, n)) {
				unit = p;
				unit_len = n;
			}
			parent = p;
			parent_len = n;
		}
		p += n + (slash ? 1 : 0);
	}
	/* Inside a pod, a scope that is not a container is the runtime's
	 * (the pause container, conmon), not a service. */
	if (unit && !out->container_id[0] && !out->pod_uid[0])
		unit_unescape(unit, unit_len, out->unit, sizeof(out->unit));
}

/* How much a parsed line says: a container beats a unit beats a path. */
static int info_score(const struct cgroup_info *i)
{
	if (i->container_id[0])
		return 3;
	if (i->unit[0])
		return 2;
	return strcmp(i->path, "/") != 0 ? 1 : 0;
}

int cgroup_parse_proc(const char *text, size_t len, struct cgroup_info *out)
{
	const char *p = text, *end = text + len;
	struct cgroup_info cand;
	int best = -1;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		const char *line_end = nl ? nl : end;
		const char *c1 = memchr(p, ':', line_end - p);
		const char *c2 =
			c1 ? memchr(c1 + 1, ':', line_end - c1 - 1) : NULL;
		char path[CGROUP_PATH_MAX];
		size_t n;
		int score;

		p = line_end + 1;
		if (!c2 || c2 + 1 >= line_end || c2[1] != '/')
			continue;
		n = line_end - c2 - 1;
		if (n >= sizeof(path))
			n = sizeof(path) - 1;
		memcpy(path, c2 + 1, n);
		path[n] = '\0';
		cgroup_parse_path(path, &cand);
		/* Among lines that say as much, the v2 line, then systemd's
		 * own v1 hierarchy, name the process's unit best. */
		score = info_score(&cand) * 4;
		if (c2 == c1 + 1)
			score += 2;
		else if (c2 - c1 - 1 == 12 &&
			 memcmp(c1 + 1, "name=systemd", 12) == 0)
			score += 1;
		if (score > best) {
			best = score;
			*out = cand;
		}
	}
	return best < 0 ? -1 : 0;
}
