/* Function latency on uprobes, for --uprobe BINARY:SYMBOL.
 *
 * One program pair serves every target: the daemon attaches func_entry and
 * func_exit once per target, with the target's index as the attach cookie.
 * The entry stores the time per (thread, target); the return sends one
 * record with the duration. A recursive call overwrites its caller's
 * start, so only the innermost of nested calls to one function is
 * measured. */
#ifndef SONDE_CORE_FUNC_BPF_H
#define SONDE_CORE_FUNC_BPF_H

struct func_key {
	__u32 tid;
	__u32 func_id;
};

/* LRU: a thread that dies inside a call leaves its entry behind, and the
 * oldest entries make room instead of new calls being lost. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SONDE_MAX_FUNC_CALLS);
	__type(key, struct func_key);
	__type(value, __u64);
} func_starts SEC(".maps");

static __always_inline void func_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct func_key key = { .tid = (__u32)id,
				.func_id = bpf_get_attach_cookie(ctx) };
	__u64 now;

	if (process_ignored(id >> 32))
		return;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&func_starts, &key, &now, BPF_ANY);
}

static __always_inline void func_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct func_key key = { .tid = (__u32)id,
				.func_id = bpf_get_attach_cookie(ctx) };
	struct sonde_func_event *ev;
	struct ring_slot slot;
	__u32 tgid = id >> 32;
	__u64 *start, now;
	__u8 noted = SONDE_PROC_NOTED;

	start = bpf_map_lookup_elem(&func_starts, &key);
	if (!start)
		return;
	now = bpf_ktime_get_ns();
	ev = ring_reserve(&slot, sizeof(*ev));
	if (!ev) {
		bpf_map_delete_elem(&func_starts, &key);
		return;
	}
	ev->hdr.ts_ns = now;
	ev->hdr.tgid = tgid;
	ev->hdr.kind = SONDE_EV_FUNC_CALL;
	ev->hdr.pad = 0;
	ev->duration_ns = now > *start ? now - *start : 0;
	ev->func_id = key.func_id;
	ev->pad = 0;
	current_comm(ev->comm);
	ring_submit(&slot);
	bpf_map_delete_elem(&func_starts, &key);
	/* Its exit and exec are reported, so the daemon forgets its name. */
	if (!bpf_map_lookup_elem(&procs, &tgid))
		bpf_map_update_elem(&procs, &tgid, &noted, BPF_NOEXIST);
}

#endif
