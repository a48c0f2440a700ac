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

/* Puts tgid in the procs map, so its exit and exec get reported. A
 * process met for the first time wakes the daemon: it names a process
 * from its /proc entry, which a short-lived client (a Go program making a
 * thousand requests in 30 ms) may have lost by the daemon's next timed
 * poll. Returns false when the map is full (counted). */
static __always_inline bool note_tgid(__u32 tgid)
{
	__u8 one = 1;
	long err = bpf_map_update_elem(&procs, &tgid, &one, BPF_NOEXIST);

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
