#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "kernel/elfsym.h"
#include "kernel/goprobe.h"
#include "kernel/sslprobe.h"
#include "kernel/uprobes.h"
#include "metrics/self.h"
#include "sonde_events.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/privs.h"

/* Distinct TLS library files attached at once: one per libssl build and
 * per executable that carries OpenSSL or Go's crypto/tls, host and
 * containers together. */
#define MAX_TLS_TARGETS 256
/* An exec'd process is looked at three times: at once, for OpenSSL in
 * the executable itself (node), mapped by the exec; once its dynamic
 * loader has mapped the libraries it links; and once more for libraries
 * it loads with dlopen while starting up (python's ssl module). */
#define EXEC_SCAN_EARLY_NS (100ULL * 1000000ULL)
#define EXEC_SCAN_LATE_NS (2000ULL * 1000000ULL)
/* Execs waiting for their scans; beyond it they wait for the next full
 * rescan (counted). */
#define EXEC_QUEUE_LEN 4096
/* Every process is looked at again this often: catches libraries loaded
 * late, and processes whose exec was not seen. */
#define FULL_RESCAN_NS (30ULL * 1000000000ULL)
/* Libraries whose last user exited are detached within this. */
#define SWEEP_NS (2ULL * 1000000000ULL)
/* Executables known to carry neither OpenSSL nor Go's crypto/tls, by
 * (dev, inode). */
#define EXE_CACHE_LEN 4096

/* The programs that probe each OpenSSL function (bpf/proto/tls.bpf.h):
 * one entry program, told by its attach cookie which function it is in,
 * and for all returns tls_plain, which also takes Go's crypto/tls
 * plaintext (bpf/proto/gotls.bpf.h), told by the cookie; SSL_free has
 * its own entry. */
#define TLS_ENTRY "ssl_entry"
#define TLS_PLAIN "tls_plain"
#define TLS_FREE "ssl_free_entry"
/* Links one file's probes take at most. */
#define TARGET_LINKS_MAX                                              \
	(GOPROBE_MAX_POINTS > 2 * SSLPROBE_FNS ? GOPROBE_MAX_POINTS : \
						 2 * SSLPROBE_FNS)
static const uint64_t tls_cookies[SSLPROBE_FNS] = {
	[SSLPROBE_READ] = SONDE_TLS_CALL_READ,
	[SSLPROBE_WRITE] = 0,
	[SSLPROBE_READ_EX] = SONDE_TLS_CALL_READ | SONDE_TLS_CALL_EX,
	[SSLPROBE_WRITE_EX] = SONDE_TLS_CALL_EX,
	[SSLPROBE_HANDSHAKE] = SONDE_TLS_CALL_HANDSHAKE,
};

struct function_target {
	char path[PATH_MAX];
	char symbol[128];
	char label[PATH_MAX + 130]; /* BINARY:SYMBOL as given */
	uint64_t offset;
	struct bpf_link *entry, *exit;
	int err;
};

/* A file whose TLS library sonde probes: a libssl, or an executable that
 * carries OpenSSL or Go's crypto/tls. */
struct tls_target {
	bool used;
	bool pinned; /* the host's own libssl: kept with no user */
	dev_t dev;
	ino_t ino;
	char label[PATH_MAX];
	struct bpf_link *links[TARGET_LINKS_MAX];
	int nlinks;
	int err;	/* 0: attached */
	uint32_t *pids; /* processes seen mapping it */
	size_t npids, pidcap;
};

/* Where the Go probes go in one executable (goprobe_points): n points,
 * or -errno with the reason in why. */
struct go_plan {
	struct goprobe_point points[GOPROBE_MAX_POINTS];
	int n;
	char why[256];
};

struct pending_scan {
	uint32_t pid;
	uint64_t due_ns;
};

struct exe_seen {
	dev_t dev;
	ino_t ino;
	bool used;
};

static struct function_target funcs[UPROBES_MAX_FUNCTIONS];
static int nfuncs;

/* tls[], the attach status of funcs[] and the counters below are written
 * under lock (tls[] by the discovery thread only) and read under it by
 * the exporters, which may run while uprobes_start attaches. */
static struct tls_target tls[MAX_TLS_TARGETS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static pthread_t thread;
static bool thread_running, stopping;
static struct bpf_object *object;
static struct pending_scan queue[EXEC_QUEUE_LEN];
static size_t nqueue;
static uint64_t queue_dropped, attach_failures;
static struct exe_seen exes[EXE_CACHE_LEN];
static uint32_t self_pid;

/* "nginx" -> "/usr/sbin/nginx" through PATH; a name with a slash is
 * taken as is. */
static int find_binary(const char *name, char *out, size_t outsz)
{
	const char *path = getenv("PATH");
	char *dirs, *dir, *save = NULL;
	int found = -1;

	if (strchr(name, '/')) {
		snprintf(out, outsz, "%s", name);
		return access(out, F_OK) ? -1 : 0;
	}
	dirs = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!dirs)
		return -1;
	for (dir = strtok_r(dirs, ":", &save); dir && found;
	     dir = strtok_r(NULL, ":", &save)) {
		int n = snprintf(out, outsz, "%s/%s", dir, name);

		if (n > 0 && (size_t)n < outsz && access(out, X_OK) == 0)
			found = 0;
	}
	free(dirs);
	return found;
}

int uprobes_add_function(const char *spec, char *err, size_t errsz)
{
	const char *colon = strrchr(spec, ':');
	struct function_target *f;
	char binary[PATH_MAX];
	size_t blen;
	int rc;

	if (nfuncs == UPROBES_MAX_FUNCTIONS) {
		snprintf(err, errsz, "--uprobe: at most %d targets",
			 UPROBES_MAX_FUNCTIONS);
		return -1;
	}
	blen = colon ? (size_t)(colon - spec) : 0;
	if (!colon || !blen || !colon[1] || blen >= sizeof(binary) ||
	    strlen(colon + 1) >= sizeof(f->symbol)) {
		snprintf(err, errsz, "--uprobe: '%s' is not BINARY:SYMBOL",
			 spec);
		return -1;
	}
	f = &funcs[nfuncs];
	memcpy(binary, spec, blen);
	binary[blen] = '\0';
	if (find_binary(binary, f->path, sizeof(f->path))) {
		snprintf(err, errsz, "--uprobe %s: no such binary '%s'", spec,
			 binary);
		return -1;
	}
	snprintf(f->symbol, sizeof(f->symbol), "%s", colon + 1);
	rc = elfsym_offset(f->path, f->symbol, &f->offset);
	if (rc == -ENOENT) {
		snprintf(err, errsz, "--uprobe %s: %s defines no function '%s'",
			 spec, f->path, f->symbol);
		return -1;
	}
	if (rc) {
		snprintf(err, errsz, "--uprobe %s: cannot read %s: %s", spec,
			 f->path,
			 rc == -ENOEXEC ? "not an ELF file with symbols" :
					  strerror(-rc));
		return -1;
	}
	snprintf(f->label, sizeof(f->label), "%s", spec);
	nfuncs++;
	return 0;
}

static struct bpf_link *attach_one(const char *prog_name, const char *path,
				   uint64_t offset, bool retprobe,
				   uint64_t cookie, int *err)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe,
		    .bpf_cookie = cookie);
	struct bpf_program *prog =
		bpf_object__find_program_by_name(object, prog_name);
	struct bpf_link *link;

	if (!prog) {
		*err = -ENOENT;
		return NULL;
	}
	/* pid -1: every process that maps the file, now and later. */
	link = bpf_program__attach_uprobe_opts(prog, -1, path, offset, &opts);
	*err = link ? 0 : -errno;
	return link;
}

static void attach_functions(void)
{
	for (int i = 0; i < nfuncs; i++) {
		struct function_target *f = &funcs[i];
		struct bpf_link *entry, *exit = NULL;
		int err;

		entry = attach_one("func_entry", f->path, f->offset, false, i,
				   &err);
		if (entry)
			exit = attach_one("func_exit", f->path, f->offset, true,
					  i, &err);
		if (err) {
			bpf_link__destroy(entry);
			entry = NULL;
		}
		/* /metrics may be reading the status already. */
		pthread_mutex_lock(&lock);
		f->entry = entry;
		f->exit = exit;
		f->err = err;
		if (err)
			attach_failures++;
		pthread_mutex_unlock(&lock);
		if (err) {
			log_error("--uprobe %s: cannot attach: %s", f->label,
				  strerror(-err));
			continue;
		}
		log_debug("uprobe attached: %s at offset 0x%llx of %s",
			  f->label, (unsigned long long)f->offset, f->path);
	}
}

static bool tls_programs_present(void)
{
	return bpf_object__find_program_by_name(object, TLS_ENTRY) &&
	       bpf_object__find_program_by_name(object, TLS_PLAIN) &&
	       bpf_object__find_program_by_name(object, TLS_FREE);
}

/* The entry probe at p, and its return probe (which shares the entry's
 * trap) unless p has none; appended to t->links. */
static int attach_tls_point(struct tls_target *t, const char *path,
			    const struct sslprobe_point *p)
{
	struct bpf_link *l;
	int err;

	if (p->fn == SSLPROBE_FREE)
		l = attach_one(TLS_FREE, path, p->offset, false, 0, &err);
	else
		l = attach_one(TLS_ENTRY, path, p->offset, false,
			       tls_cookies[p->fn], &err);
	if (l)
		t->links[t->nlinks++] = l;
	if (err || p->entry_only)
		return err;
	l = attach_one(TLS_PLAIN, path, p->offset, true,
		       SONDE_TLS_PLAIN_OPENSSL_RETURN, &err);
	if (l)
		t->links[t->nlinks++] = l;
	return err;
}

/* Attaches the OpenSSL probes to the file at path (see sslprobe_points);
 * fills t->links, or leaves it empty on failure. */
static int attach_tls(struct tls_target *t, const char *path)
{
	struct sslprobe_point points[SSLPROBE_FNS];
	int n = sslprobe_points(path, points);
	int err = n < 0 ? n : 0;

	for (int i = 0; i < n && !err; i++) {
		if (points[i].inner)
			log_debug("%s: %s probed with its non-_ex form "
				  "where both go, at offset 0x%llx",
				  path, sslprobe_symbols[points[i].fn],
				  (unsigned long long)points[i].offset);
		err = attach_tls_point(t, path, &points[i]);
	}
	if (err) {
		while (t->nlinks)
			bpf_link__destroy(t->links[--t->nlinks]);
	}
	return err;
}

/* Attaches the Go crypto/tls probes of plan to the executable at path;
 * fills t->links, or leaves it empty on failure. */
static int attach_go(struct tls_target *t, const char *path,
		     const struct go_plan *plan)
{
	int err = plan->n < 0 ? plan->n : 0;

	for (int i = 0; i < plan->n && !err; i++) {
		const struct goprobe_point *p = &plan->points[i];
		struct bpf_link *l = attach_one(TLS_PLAIN, path, p->offset,
						false, p->cookie, &err);

		if (l)
			t->links[t->nlinks++] = l;
	}
	if (err) {
		while (t->nlinks)
			bpf_link__destroy(t->links[--t->nlinks]);
	}
	return err;
}

static struct tls_target *tls_find(dev_t dev, ino_t ino)
{
	for (int i = 0; i < MAX_TLS_TARGETS; i++)
		if (tls[i].used && tls[i].dev == dev && tls[i].ino == ino)
			return &tls[i];
	return NULL;
}

static void tls_add_pid(struct tls_target *t, uint32_t pid)
{
	uint32_t *grown;

	if (!pid)
		return;
	for (size_t i = 0; i < t->npids; i++)
		if (t->pids[i] == pid)
			return;
	if (t->npids == t->pidcap) {
		size_t cap = t->pidcap ? 2 * t->pidcap : 8;

		grown = realloc(t->pids, cap * sizeof(*grown));
		if (!grown)
			return;
		t->pids = grown;
		t->pidcap = cap;
	}
	pthread_mutex_lock(&lock);
	t->pids[t->npids++] = pid;
	pthread_mutex_unlock(&lock);
}

/* Makes sure the file (dev, ino), openable at path, is attached (its
 * OpenSSL, or its Go crypto/tls by go's plan), and notes that pid maps
 * it. The attach happens outside the lock. */
static void tls_ensure(uint32_t pid, dev_t dev, ino_t ino, const char *path,
		       const char *label, bool pinned, const struct go_plan *go)
{
	struct tls_target *t = tls_find(dev, ino), fresh = { 0 };
	int slot = -1;

	if (t) {
		tls_add_pid(t, pid);
		return;
	}
	for (int i = 0; i < MAX_TLS_TARGETS && slot < 0; i++)
		if (!tls[i].used)
			slot = i;
	if (slot < 0) {
		log_debug("uprobe: %s not attached: %d TLS library files "
			  "already are",
			  label, MAX_TLS_TARGETS);
		return;
	}
	fresh.err = go ? attach_go(&fresh, path, go) : attach_tls(&fresh, path);
	fresh.used = true;
	fresh.pinned = pinned;
	fresh.dev = dev;
	fresh.ino = ino;
	snprintf(fresh.label, sizeof(fresh.label), "%s", label);
	if (go && go->why[0]) {
		log_info("uprobe: Go crypto/tls in %s (pid %u) not traced: %s",
			 label, pid, go->why);
	} else if (fresh.err) {
		log_debug("uprobe: cannot attach %s probes to %s "
			  "(pid %u): %s",
			  go ? "Go crypto/tls" : "OpenSSL", label, pid,
			  strerror(-fresh.err));
	} else {
		log_debug("uprobe: %s probes attached to %s (pid %u)",
			  go ? "Go crypto/tls" : "OpenSSL", label, pid);
	}
	pthread_mutex_lock(&lock);
	tls[slot] = fresh;
	if (fresh.err)
		attach_failures++;
	pthread_mutex_unlock(&lock);
	tls_add_pid(&tls[slot], pid);
}

int uprobes_parse_maps_line(const char *line, uint64_t *dev, uint64_t *ino,
			    char *path, size_t pathsz)
{
	unsigned long long start, end, off, inode;
	unsigned major, minor;
	char perms[8];
	int consumed = 0;
	const char *p;
	size_t len;

	/* "7f0c1a2b3000-7f0c1a2d5000 r-xp 0001f000 fd:01 1234567   /usr/lib/x.so" */
	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu%n", &start, &end, perms,
		   &off, &major, &minor, &inode, &consumed) != 7)
		return -1;
	p = line + consumed;
	while (*p == ' ' || *p == '\t')
		p++;
	len = strcspn(p, "\n");
	if (len >= pathsz)
		return -1;
	memcpy(path, p, len);
	path[len] = '\0';
	*dev = ((uint64_t)major << 32) | minor;
	*ino = inode;
	return 0;
}

bool uprobes_is_libssl(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, "libssl.so", 9) == 0 &&
	       (base[9] == '\0' || base[9] == '.') &&
	       !strstr(base, " (deleted)");
}

/* Executables found to carry no TLS library: a small open-addressed table,
 * emptied when full. One that does carry it is not kept here: after its
 * last process exits and its probes are released, the next process that
 * runs it must be attached again. exe_slot returns the entry of (dev,
 * ino), or else the free one where it would go; NULL when the table is
 * full. */
static struct exe_seen *exe_slot(dev_t dev, ino_t ino)
{
	size_t h = ((size_t)ino * 2654435761u) ^ (size_t)dev;

	for (size_t n = 0; n < EXE_CACHE_LEN; n++) {
		struct exe_seen *e = &exes[(h + n) % EXE_CACHE_LEN];

		if (!e->used || (e->dev == dev && e->ino == ino))
			return e;
	}
	return NULL;
}

static bool exe_without_tls(dev_t dev, ino_t ino)
{
	struct exe_seen *e = exe_slot(dev, ino);

	return e && e->used;
}

static void exe_note_without_tls(dev_t dev, ino_t ino)
{
	struct exe_seen *e = exe_slot(dev, ino);

	if (!e) {
		memset(exes, 0, sizeof(exes));
		e = exe_slot(dev, ino);
	}
	*e = (struct exe_seen){ .used = true, .dev = dev, .ino = ino };
}

static void tls_forget_pid(uint32_t pid)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_TLS_TARGETS; i++) {
		struct tls_target *t = &tls[i];

		for (size_t k = 0; t->used && k < t->npids; k++)
			if (t->pids[k] == pid) {
				t->pids[k] = t->pids[--t->npids];
				break;
			}
	}
	pthread_mutex_unlock(&lock);
}

/* Where the Go probes go in the executable at path; false when it is no
 * Go executable with crypto/tls. */
static bool go_plan_for(const char *path, struct go_plan *plan)
{
	plan->n = goprobe_points(path, plan->points, plan->why,
				 sizeof(plan->why));
	return plan->n != -ENOEXEC && plan->n != -ENOENT;
}

/* A static OpenSSL in the executable itself (node), or Go's crypto/tls:
 * found by their symbols, once per distinct executable. */
static void scan_exe(uint32_t pid)
{
	static struct go_plan plan; /* the discovery thread's alone */
	char path[64], label[PATH_MAX];
	struct tls_target *t;
	struct stat st;
	bool openssl;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (stat(path, &st))
		return;
	t = tls_find(st.st_dev, st.st_ino);
	if (t) {
		tls_add_pid(t, pid);
		return;
	}
	if (exe_without_tls(st.st_dev, st.st_ino))
		return;
	openssl = sslprobe_has_openssl(path);
	if (!openssl && !go_plan_for(path, &plan)) {
		exe_note_without_tls(st.st_dev, st.st_ino);
		return;
	}
	n = readlink(path, label, sizeof(label) - 1);
	label[n > 0 ? n : 0] = '\0';
	tls_ensure(pid, st.st_dev, st.st_ino, path, n > 0 ? label : path, false,
		   openssl ? NULL : &plan);
}

/* Looks at what pid maps now: the libssl files and the executable. */
static void scan_pid(uint32_t pid)
{
	char path[64], line[PATH_MAX + 128], file[PATH_MAX],
		root[PATH_MAX + 32];
	uint64_t dev, ino;
	struct stat st;
	FILE *f;

	if (pid == self_pid)
		return;
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "re");
	tls_forget_pid(pid);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "libssl") ||
		    uprobes_parse_maps_line(line, &dev, &ino, file,
					    sizeof(file)) ||
		    !uprobes_is_libssl(file))
			continue;
		/* Through the process's root: the path of a container's
		 * library is relative to its own mount namespace. */
		snprintf(root, sizeof(root), "/proc/%u/root%s", pid, file);
		if (stat(root, &st) == 0)
			tls_ensure(pid, st.st_dev, st.st_ino, root, file, false,
				   NULL);
	}
	fclose(f);
	scan_exe(pid);
}

static void scan_all(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);

		if (isdigit((unsigned char)de->d_name[0]) && !*end)
			scan_pid(pid);
	}
	closedir(d);
}

/* The host's own libssl files, attached whether or not a process maps
 * them yet, so one that loads OpenSSL later is traced from its first
 * call. */
static void attach_system_libssl(void)
{
	static const char *const patterns[] = {
		"/usr/lib/*-linux-gnu/libssl.so.*",
		"/usr/lib64/libssl.so.*",
		"/usr/lib/libssl.so.*",
		"/usr/local/lib/libssl.so.*",
		"/usr/local/lib64/libssl.so.*",
	};

	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		glob_t g;

		if (glob(patterns[i], 0, NULL, &g))
			continue;
		for (size_t k = 0; k < g.gl_pathc; k++) {
			const char *p = g.gl_pathv[k];
			struct stat st;

			if (uprobes_is_libssl(p) && stat(p, &st) == 0 &&
			    S_ISREG(st.st_mode))
				tls_ensure(0, st.st_dev, st.st_ino, p, p, true,
					   NULL);
		}
		globfree(&g);
	}
}

static bool alive(uint32_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* Drops exited processes; detaches libraries nobody maps any more. */
static void sweep(void)
{
	for (int i = 0; i < MAX_TLS_TARGETS; i++) {
		struct tls_target *t = &tls[i], gone;

		if (!t->used)
			continue;
		pthread_mutex_lock(&lock);
		for (size_t k = 0; k < t->npids;)
			if (alive(t->pids[k]))
				k++;
			else
				t->pids[k] = t->pids[--t->npids];
		if (t->npids || t->pinned) {
			pthread_mutex_unlock(&lock);
			continue;
		}
		gone = *t;
		memset(t, 0, sizeof(*t));
		pthread_mutex_unlock(&lock);
		log_debug("uprobe: %s released: no process maps it",
			  gone.label);
		while (gone.nlinks)
			bpf_link__destroy(gone.links[--gone.nlinks]);
		free(gone.pids);
	}
}

/* Takes the scans that are due out of the queue; lock held. */
static size_t take_due(uint64_t now, uint32_t *pids, size_t max, uint64_t *next)
{
	size_t n = 0;

	for (size_t i = 0; i < nqueue;) {
		if (queue[i].due_ns <= now && n < max) {
			pids[n++] = queue[i].pid;
			queue[i] = queue[--nqueue];
			continue;
		}
		if (queue[i].due_ns < *next)
			*next = queue[i].due_ns;
		i++;
	}
	return n;
}

static void *discovery_main(void *arg)
{
	uint64_t next_sweep = clock_monotonic_ns() + SWEEP_NS;
	uint64_t next_full = clock_monotonic_ns() + FULL_RESCAN_NS;
	uint32_t due[256];

	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping) {
		uint64_t now = clock_monotonic_ns(), next = next_sweep;
		struct timespec ts;
		size_t n;

		if (next_full < next)
			next = next_full;
		n = take_due(now, due, sizeof(due) / sizeof(due[0]), &next);
		if (!n && next > now) {
			ts.tv_sec = next / 1000000000ULL;
			ts.tv_nsec = next % 1000000000ULL;
			pthread_cond_timedwait(&wake, &lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&lock);
		for (size_t i = 0; i < n; i++)
			scan_pid(due[i]);
		if (now >= next_sweep) {
			sweep();
			next_sweep = now + SWEEP_NS;
		}
		if (now >= next_full) {
			scan_all();
			next_full = clock_monotonic_ns() + FULL_RESCAN_NS;
		}
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void *discovery_thread(void *arg)
{
	/* Keeps only what attaching needs; the main thread drops these
	 * after this thread has started. */
	if (privs_keep_for_uprobes())
		return NULL;
	return discovery_main(arg);
}

int uprobes_start(struct bpf_object *obj, bool tls_on)
{
	pthread_condattr_t attr;
	int err;

	object = obj;
	self_pid = getpid();
	attach_functions();
	if (!tls_on)
		return 0;
	if (!tls_programs_present()) {
		log_debug("uprobe: this build has no OpenSSL programs");
		return 0;
	}
	attach_system_libssl();
	scan_all();
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&wake, &attr);
	pthread_condattr_destroy(&attr);
	err = -pthread_create(&thread, NULL, discovery_thread, NULL);
	if (err) {
		log_error("cannot start the uprobe discovery thread: %s",
			  strerror(-err));
		return err;
	}
	thread_running = true;
	return 0;
}

void uprobes_note_exec(uint32_t tgid)
{
	uint64_t now;

	if (!thread_running)
		return;
	now = clock_monotonic_ns();
	pthread_mutex_lock(&lock);
	if (nqueue + 3 > EXEC_QUEUE_LEN) {
		queue_dropped++;
	} else {
		queue[nqueue++] = (struct pending_scan){ tgid, now };
		queue[nqueue++] =
			(struct pending_scan){ tgid, now + EXEC_SCAN_EARLY_NS };
		queue[nqueue++] =
			(struct pending_scan){ tgid, now + EXEC_SCAN_LATE_NS };
	}
	/* The thread may be asleep until its next sweep, 2 s away. */
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}

const char *uprobes_function_symbol(uint32_t id)
{
	return id < (uint32_t)nfuncs ? funcs[id].symbol : NULL;
}

static void collect_attached(const struct self_metric *m,
			     struct self_sink *sink)
{
	(void)m;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nfuncs; i++) {
		const char *target = funcs[i].label;

		/* 0 until uprobes_start has attached it. */
		self_emit_u64(sink, &target,
			      funcs[i].err == 0 && funcs[i].exit);
	}
	for (int i = 0; i < MAX_TLS_TARGETS; i++) {
		const char *target = tls[i].label;

		if (tls[i].used)
			self_emit_u64(sink, &target, tls[i].err == 0);
	}
	pthread_mutex_unlock(&lock);
}

static void collect_attach_failures(const struct self_metric *m,
				    struct self_sink *sink)
{
	uint64_t n;

	(void)m;
	pthread_mutex_lock(&lock);
	n = attach_failures;
	pthread_mutex_unlock(&lock);
	self_emit_u64(sink, NULL, n);
}

static void collect_scans_dropped(const struct self_metric *m,
				  struct self_sink *sink)
{
	uint64_t n;

	(void)m;
	pthread_mutex_lock(&lock);
	n = queue_dropped;
	pthread_mutex_unlock(&lock);
	self_emit_u64(sink, NULL, n);
}

static const struct self_metric uprobe_metrics[] = {
	{
		.name = "sonde_uprobe_attached",
		.otel_name = "sonde.uprobe.attached",
		.unit = "1",
		.help = "1 when the uprobes of the target (a --uprobe "
			"function, an OpenSSL file, or a Go executable's "
			"crypto/tls) are attached.",
		.kind = SELF_GAUGE,
		.nlabels = 1,
		.labels = { "target" },
		.otel_labels = { "sonde.uprobe.target" },
		.collect = collect_attached,
	},
	{
		.name = "sonde_uprobe_attach_failures_total",
		.otel_name = "sonde.uprobe.attach_failures",
		.unit = "{target}",
		.help = "Targets sonde could not attach uprobes to (reasons "
			"with -v).",
		.kind = SELF_COUNTER,
		.collect = collect_attach_failures,
	},
	{
		.name = "sonde_uprobe_exec_scans_dropped_total",
		.otel_name = "sonde.uprobe.exec_scans.dropped",
		.unit = "{exec}",
		.help = "Execs whose libraries were left to the next full "
			"rescan because the scan queue was full.",
		.kind = SELF_COUNTER,
		.collect = collect_scans_dropped,
	},
};

void uprobes_register_metrics(void)
{
	for (size_t i = 0;
	     i < sizeof(uprobe_metrics) / sizeof(uprobe_metrics[0]); i++)
		self_register(&uprobe_metrics[i]);
}

void uprobes_stop(void)
{
	if (thread_running) {
		pthread_mutex_lock(&lock);
		stopping = true;
		pthread_cond_signal(&wake);
		pthread_mutex_unlock(&lock);
		pthread_join(thread, NULL);
		thread_running = false;
	}
	/* Under the lock: an exporter may be reading the status. */
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nfuncs; i++) {
		bpf_link__destroy(funcs[i].exit);
		bpf_link__destroy(funcs[i].entry);
		funcs[i].entry = funcs[i].exit = NULL;
	}
	for (int i = 0; i < MAX_TLS_TARGETS; i++) {
		while (tls[i].nlinks)
			bpf_link__destroy(tls[i].links[--tls[i].nlinks]);
		free(tls[i].pids);
		memset(&tls[i], 0, sizeof(tls[i]));
	}
	pthread_mutex_unlock(&lock);
}
