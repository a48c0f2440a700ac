/* Processes: which ones are traced (sonde itself never; --pid; the
 * process selection's per-process verdicts and port rules), and telling
 * the daemon when one appears, execs or exits. */
#ifndef SONDE_CORE_PROCESS_BPF_H
#define SONDE_CORE_PROCESS_BPF_H

_Static_assert(sizeof(((struct task_struct *)0)->comm) == SONDE_COMM_LEN,
	       "a task's name is SONDE_COMM_LEN bytes");

/* The current task's name into dst (SONDE_COMM_LEN bytes), as
 * bpf_get_current_comm gives it, but read in place: the kernel keeps it
 * zero-padded, and the helper costs a call and a string copy. */
static __always_inline void current_comm(char *dst)
{
	struct task_struct *task = bpf_get_current_task_btf();

	__builtin_memcpy(dst, task->comm, SONDE_COMM_LEN);
}

static __always_inline void report_process(__u32 tgid, __u16 kind)
{
	struct sonde_process_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_drop(SONDE_DROP_RINGBUF_FULL);
		return;
	}
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = tgid;
	ev->hdr.kind = kind;
	ev->hdr.pad = 0;
	current_comm(ev->comm);
	/* Until the daemon acts on a process to decide on, that process's
	 * requests may go unmeasured: it is woken at once (once per new
	 * process, with selection rules). A new image to look for OpenSSL
	 * in wakes it only when it had read everything before (flags 0).
	 * Exits wait for the next poll. */
	bpf_ringbuf_submit(ev,
			   kind == SONDE_EV_PROCESS_SEEN ? BPF_RB_FORCE_WAKEUP :
			   kind == SONDE_EV_PROCESS_EXEC ? 0 :
							   BPF_RB_NO_WAKEUP);
}

/* Path components walked at most, mount crossings included. */
#define EXIT_PATH_STEPS 32

/* Appends a path component, NUL-terminated, at *len in path (a
 * SONDE_EXIT_PATH room); false when the room is used up. len lives in
 * the map value: the verifier does not follow its value from one step of
 * a walk to the next, so each step is checked once, not once per length
 * the steps before could have left. */
static __always_inline bool put_component(char *path, __u16 *len,
					  const void *name)
{
	__u32 at = *len;
	long n;

	if (at >= SONDE_EXIT_PATH - SONDE_EXIT_NAME)
		return false;
	n = bpf_probe_read_kernel_str(path + (at & (SONDE_EXIT_NAME - 1)),
				      SONDE_EXIT_NAME, name);
	if (n <= 0)
		return false;
	*len = at + n;
	return true;
}

/* The executable's path, from its file up: a mount's root goes on from
 * where the mount sits, and the root of the process's mount tree ends it
 * (a container's executable reads as the container sees it). */
static __always_inline void exit_exe(struct sonde_exit_identity *id,
				     struct mm_struct *mm)
{
	struct file *file = BPF_CORE_READ(mm, exe_file);
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	struct mount *mnt = container_of(BPF_CORE_READ(file, f_path.mnt),
					 struct mount, mnt);

	id->exe_len = 0;
	if (!file)
		return;
	for (int i = 0; i < EXIT_PATH_STEPS; i++) {
		struct dentry *up = BPF_CORE_READ(d, d_parent);

		if (d == BPF_CORE_READ(mnt, mnt.mnt_root)) {
			struct mount *outer = BPF_CORE_READ(mnt, mnt_parent);

			if (outer == mnt)
				break;
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = outer;
			continue;
		}
		if (up == d)
			break;
		if (!put_component(id->exe, &id->exe_len,
				   BPF_CORE_READ(d, d_name.name)))
			return;
		d = up;
	}
	id->exe_whole = 1;
}

/* kernfs_node's parent before 6.15 named it __parent. */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* The task's cgroup (v2) path, from its own group up. */
static __always_inline void exit_cgroup(struct sonde_exit_identity *id,
					struct task_struct *task)
{
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);

	id->cgroup_len = 0;
	for (int i = 0; i < EXIT_PATH_STEPS && kn; i++) {
		struct kernfs_node *up = kn_parent(kn);

		if (!up) {
			id->cgroup_whole = 1;
			break;
		}
		if (!put_component(id->cgroup, &id->cgroup_len,
				   BPF_CORE_READ(kn, name)))
			break;
		kn = up;
	}
}

/* Up to room - 1 bytes of the process's memory from start to end into
 * dst (room a power of two); the length kept, 0 when unreadable. */
static __always_inline __u16 exit_user_bytes(char *dst, __u32 room,
					     unsigned long start,
					     unsigned long end)
{
	__u64 n = end > start ? end - start : 0;

	if (n > room - 1)
		n = room - 1;
	/* The verifier wants the bound on the register passed. */
	barrier_var(n);
	n &= room - 1;
	if (!n || bpf_probe_read_user(dst, n, (const void *)start))
		return 0;
	return n;
}

/* Keeps what identifies the exiting process (the current task) in
 * exit_ids, for a daemon that has not named it yet. Its memory is still
 * there: the exit tracepoint runs before the task lets go of it (kernel
 * 6.16 on; before, nothing is kept). */
static __always_inline void keep_exit_identity(__u32 tgid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	struct sonde_exit_identity *id;
	__u32 zero = 0;

	if (!mm)
		return;
	id = bpf_map_lookup_elem(&exit_id_scratch, &zero);
	if (!id)
		return;
	id->exe_whole = id->cgroup_whole = 0;
	id->env_len = exit_user_bytes(id->env, SONDE_EXIT_ENV,
				      BPF_CORE_READ(mm, env_start),
				      BPF_CORE_READ(mm, env_end));
	id->args_len = exit_user_bytes(id->args, SONDE_EXIT_ARGS,
				       BPF_CORE_READ(mm, arg_start),
				       BPF_CORE_READ(mm, arg_end));
	exit_exe(id, mm);
	exit_cgroup(id, task);
	bpf_map_update_elem(&exit_ids, &tgid, id, BPF_ANY);
}

/* Puts tgid in the procs map, so its exit and exec get reported. A
 * process met for the first time wakes the daemon: it names a process
 * from its /proc entry, which a short-lived client (a Go program making a
 * thousand requests in 30 ms) may have lost by the daemon's next timed
 * poll. Returns false when the map is full (counted). */
static __always_inline bool note_tgid(__u32 tgid)
{
	__u8 noted = SONDE_PROC_NOTED;
	long err = bpf_map_update_elem(&procs, &tgid, &noted, BPF_NOEXIST);

	if (err == -E2BIG) {
		count_drop(SONDE_DROP_PROC_FULL);
		return false;
	}
	if (!err)
		wake_daemon();
	return true;
}

/* The selection's verdict on a process. The first sign of a process the
 * daemon has not decided on reports it (once: the pending entry stops
 * further reports). */
static __always_inline __u8 process_verdict(__u32 tgid)
{
	__u8 pending = SONDE_VERDICT_PENDING;
	__u8 *v;

	if (!select_enabled)
		return SONDE_VERDICT_TRACE;
	v = bpf_map_lookup_elem(&verdicts, &tgid);
	if (v)
		return *v == SONDE_VERDICT_PENDING ? select_pending : *v;
	if (!bpf_map_update_elem(&verdicts, &tgid, &pending, BPF_NOEXIST))
		report_process(tgid, SONDE_EV_PROCESS_SEEN);
	return select_pending;
}

/* sonde itself, or not the --pid process: settings alone decide, no
 * lookup. The read and write path checks only this at every call: a
 * connection it tracks carries its process's verdict (see conn_find). */
static __always_inline bool process_excluded(__u32 tgid)
{
	return tgid == self_tgid || (filter_tgid && tgid != filter_tgid);
}

/* Whether nothing of process tgid is traced: excluded, or the selection
 * says so (a lookup when a selection is set). */
static __always_inline bool process_ignored(__u32 tgid)
{
	return process_excluded(tgid) ||
	       process_verdict(tgid) == SONDE_VERDICT_IGNORE;
}

/* --port, then the selection's port rules on the local port: an excluded
 * port is never traced; a process with verdict PORTS_ONLY is traced only on
 * included ports. Runs once per connection. */
static __always_inline bool port_ignored(__u32 tgid, struct sock *sk)
{
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u8 *rule, *verdict, v;

	if (filter_port && lport != filter_port &&
	    bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)) != filter_port)
		return true;
	if (!select_enabled)
		return false;
	rule = bpf_map_lookup_elem(&select_ports, &lport);
	if (rule && *rule == SONDE_PORT_EXCLUDE)
		return true;
	verdict = bpf_map_lookup_elem(&verdicts, &tgid);
	v = verdict ? *verdict : SONDE_VERDICT_PENDING;
	if (v == SONDE_VERDICT_PENDING)
		v = select_pending;
	if (v == SONDE_VERDICT_TRACE)
		return false;
	return !(rule && *rule == SONDE_PORT_INCLUDE);
}

#endif
