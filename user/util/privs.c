#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"
#include "util/privs.h"

/* Older headers lack the capabilities split out of CAP_SYS_ADMIN in 5.8. */
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct caps {
	struct __user_cap_data_struct data[2];
};

static const struct {
	int cap;
	const char *name;
} known[] = {
	{ CAP_BPF, "CAP_BPF" },
	{ CAP_PERFMON, "CAP_PERFMON" },
	{ CAP_SYS_ADMIN, "CAP_SYS_ADMIN" },
	{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
	{ CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH" },
};

/* What service naming needs after start: see privs.h. */
static const int kept[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH };
/* What the uprobe discovery thread keeps: attaching as well. A uprobe
 * perf event needs CAP_SYS_ADMIN, not only CAP_PERFMON (perf_event_open
 * returns EACCES without it, kernel 6.18). */
static const int kept_uprobes[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH,
				    CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN };

static bool in_list(int cap, const int *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == cap)
			return true;
	return false;
}

static int caps_get(struct caps *c)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};

	memset(c, 0, sizeof(*c));
	return syscall(SYS_capget, &hdr, c->data) ? -errno : 0;
}

static int caps_set(const struct caps *c)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};

	return syscall(SYS_capset, &hdr, c->data) ? -errno : 0;
}

static bool effective(const struct caps *c, int cap)
{
	return c->data[cap / 32].effective & (1u << (cap % 32));
}

static bool can_attach(const struct caps *c, bool *bpf, bool *perfmon)
{
	bool admin = effective(c, CAP_SYS_ADMIN);

	*bpf = admin || effective(c, CAP_BPF);
	*perfmon = admin || effective(c, CAP_PERFMON);
	return *bpf && *perfmon;
}

int privs_check(void)
{
	bool bpf, perfmon;
	struct caps c;
	int err = caps_get(&c);

	if (err) {
		log_error("cannot read this process's capabilities: %s",
			  strerror(-err));
		return err;
	}
	if (!can_attach(&c, &bpf, &perfmon)) {
		log_error("missing privileges: need root, or CAP_BPF and "
			  "CAP_PERFMON (missing:%s%s)",
			  bpf ? "" : " CAP_BPF", perfmon ? "" : " CAP_PERFMON");
		return -EPERM;
	}
	if (!effective(&c, CAP_SYS_PTRACE) ||
	    !effective(&c, CAP_DAC_READ_SEARCH))
		log_info(
			"no CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH: services of "
			"other users may be named by their command instead of "
			"OTEL_SERVICE_NAME");
	return 0;
}

/* Drops every capability of the calling thread but those in keep[]
 * (when held), from all its sets, and sets no_new_privs. */
static int drop_all_but(const int *keep_list, size_t n)
{
	struct caps held, keep;
	int err = caps_get(&held);

	if (err)
		return err;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * the capset below takes away. */
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if (!in_list(cap, keep_list, n) &&
		    prctl(PR_CAPBSET_DROP, cap) && errno != EPERM &&
		    errno != EINVAL)
			return -errno;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(&keep, 0, sizeof(keep));
	for (size_t i = 0; i < n; i++) {
		int cap = keep_list[i];

		if (!effective(&held, cap))
			continue;
		keep.data[cap / 32].effective |= 1u << (cap % 32);
		keep.data[cap / 32].permitted |= 1u << (cap % 32);
	}
	err = caps_set(&keep);
	if (err)
		return err;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return 0;
}

int privs_drop_after_attach(void)
{
	int err = drop_all_but(kept, sizeof(kept) / sizeof(kept[0]));

	if (err) {
		log_error("cannot drop capabilities: %s", strerror(-err));
		return err;
	}
	log_debug("capabilities dropped: keeping CAP_SYS_PTRACE and "
		  "CAP_DAC_READ_SEARCH where held");
	return 0;
}

int privs_keep_for_uprobes(void)
{
	int err = drop_all_but(kept_uprobes,
			       sizeof(kept_uprobes) / sizeof(kept_uprobes[0]));

	if (err)
		log_error("uprobe thread: cannot drop capabilities: %s",
			  strerror(-err));
	return err;
}

int privs_drop_thread(void)
{
	return drop_all_but(NULL, 0);
}

bool privs_describe(struct strbuf *sb)
{
	bool bpf, perfmon, first = true;
	struct caps c;

	if (caps_get(&c)) {
		strbuf_puts(sb, "unreadable");
		return false;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (!effective(&c, known[i].cap))
			continue;
		strbuf_printf(sb, "%s%s", first ? "" : " ", known[i].name);
		first = false;
	}
	if (first)
		strbuf_puts(sb, "none");
	return can_attach(&c, &bpf, &perfmon);
}
