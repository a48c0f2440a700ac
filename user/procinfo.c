#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procinfo.h"
#include "strmap.h"

#define OTEL_KEY "OTEL_SERVICE_NAME="
/* /proc/<pid>/environ is read up to this size: 64 KiB covers any sane
 * environment; a variable beyond it is not seen. */
#define ENVIRON_MAX (64 << 10)

static struct strmap cache; /* decimal pid -> char[SERVICE_NAME_MAX + 1] */

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

int procinfo_service_from_environ(const char *env, size_t len, char *out)
{
	size_t keylen = strlen(OTEL_KEY);
	const char *p = env, *end = env + len;

	while (p < end) {
		const char *nul = memchr(p, '\0', end - p);
		size_t entry = nul ? (size_t)(nul - p) : (size_t)(end - p);

		if (entry > keylen && memcmp(p, OTEL_KEY, keylen) == 0 &&
		    procinfo_sanitize(p + keylen, entry - keylen, out))
			return 0;
		p += entry + 1;
	}
	return -1;
}

static int service_from_env_file(uint32_t pid, char *out)
{
	char path[64];
	char *env;
	ssize_t n, total = 0;
	int fd, rc;

	snprintf(path, sizeof(path), "/proc/%u/environ", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	env = malloc(ENVIRON_MAX);
	if (!env) {
		close(fd);
		return -1;
	}
	while (total < ENVIRON_MAX &&
	       (n = read(fd, env + total, ENVIRON_MAX - total)) > 0)
		total += n;
	close(fd);
	rc = procinfo_service_from_environ(env, total, out);
	free(env);
	return rc;
}

static int service_from_exe(uint32_t pid, char *out)
{
	char path[64], target[4096];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return -1;
	target[n] = '\0';
	/* An executable replaced on disk reads "/usr/bin/x (deleted)". */
	if (n > 10 && strcmp(target + n - 10, " (deleted)") == 0)
		target[n - 10] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	return procinfo_sanitize(base, strlen(base), out) ? 0 : -1;
}

const char *procinfo_service(uint32_t pid, const char *comm)
{
	char key[16], *name;

	snprintf(key, sizeof(key), "%u", pid);
	name = strmap_get(&cache, key);
	if (name)
		return name;
	name = malloc(SERVICE_NAME_MAX + 1);
	if (!name)
		return "unknown";
	if (service_from_env_file(pid, name) && service_from_exe(pid, name) &&
	    !procinfo_sanitize(comm, strnlen(comm, 16), name))
		strcpy(name, "unknown");
	if (!strmap_put(&cache, key, name)) {
		free(name);
		return "unknown";
	}
	return name;
}

void procinfo_forget(uint32_t pid)
{
	char key[16];

	snprintf(key, sizeof(key), "%u", pid);
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
	strmap_each(&cache, free_value, NULL);
	strmap_clear(&cache);
}
