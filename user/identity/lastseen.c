#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/lastseen.h"
#include "util/strmap.h"

/* Services whose process is remembered. */
#define LASTSEEN_MAX 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct strmap services; /* service -> struct lastseen_process */
static bool enabled;

void lastseen_enable(bool on)
{
	__atomic_store_n(&enabled, on, __ATOMIC_RELAXED);
}

void lastseen_note(const struct procinfo *info, uint32_t pid, const char *exe)
{
	const char *service = info->service;
	struct lastseen_process *p;

	if (!__atomic_load_n(&enabled, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&lock);
	p = strmap_get(&services, service);
	if (!p && services.count < LASTSEEN_MAX) {
		p = calloc(1, sizeof(*p));
		if (p && !strmap_put(&services, service, p)) {
			free(p);
			p = NULL;
		}
	}
	if (p && p->pid != pid) {
		p->pid = pid;
		snprintf(p->exe, sizeof(p->exe), "%s", exe);
		snprintf(p->namespace, sizeof(p->namespace), "%s",
			 info->namespace);
		snprintf(p->pod_uid, sizeof(p->pod_uid), "%s", info->pod_uid);
		if (info->container_id[0])
			snprintf(p->container, sizeof(p->container), "%s",
				 info->container_id);
	}
	pthread_mutex_unlock(&lock);
}

int lastseen_container_id(const char *cgroup, char out[CGROUP_ID_LEN + 1])
{
	int found = -1;
	size_t run = 0;

	/* The last run of exactly 64 hex digits: docker-<id>.scope,
	 * /docker/<id>, cri-containerd-<id>.scope, /kubepods/…/<id>. */
	for (const char *p = cgroup;; p++) {
		if (*p && isxdigit((unsigned char)*p)) {
			run++;
			continue;
		}
		if (run == CGROUP_ID_LEN) {
			memcpy(out, p - CGROUP_ID_LEN, CGROUP_ID_LEN);
			out[CGROUP_ID_LEN] = '\0';
			for (int i = 0; i < CGROUP_ID_LEN; i++)
				out[i] = (char)tolower((unsigned char)out[i]);
			found = 0;
		}
		run = 0;
		if (!*p)
			return found;
	}
}

static void read_container(uint32_t pid, char out[CGROUP_ID_LEN + 1])
{
	char path[32], text[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	lastseen_container_id(text, out);
}

bool lastseen_get(const char *service, struct lastseen_process *out)
{
	char container[CGROUP_ID_LEN + 1] = "";
	struct lastseen_process *p;
	uint32_t pid;

	pthread_mutex_lock(&lock);
	p = strmap_get(&services, service);
	pid = p ? p->pid : 0;
	pthread_mutex_unlock(&lock);
	if (!pid)
		return false;
	/* Outside the lock: the consumer never waits on /proc reads. */
	read_container(pid, container);
	pthread_mutex_lock(&lock);
	p = strmap_get(&services, service);
	if (p && container[0])
		memcpy(p->container, container, sizeof(container));
	if (p)
		*out = *p;
	pthread_mutex_unlock(&lock);
	return p != NULL;
}

static void free_entry(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

void lastseen_reset(void)
{
	pthread_mutex_lock(&lock);
	strmap_each(&services, free_entry, NULL);
	strmap_clear(&services);
	pthread_mutex_unlock(&lock);
}
