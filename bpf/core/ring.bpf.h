/* Getting records to the daemon: the per-CPU exchange rings (mapped
 * arrays the daemon reads in place), the shared BPF ring buffer for
 * records whose order across CPUs matters, and the drop counters. Nothing
 * here waits: a record with no room is dropped and counted by reason. */
#ifndef SONDE_CORE_RING_BPF_H
#define SONDE_CORE_RING_BPF_H

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* A record being written on the current CPU's exchange ring. Records
 * whose order against others matters and cannot be told from the record
 * (a connection's open before its close, a process's exit) stay on the
 * shared ring. An exchange is complete in itself; an HTTP/2 or database
 * connection numbers its records, and the daemon puts them back in
 * order. */
struct ring_slot {
	struct sonde_ring_pos *pos;
	__u64 at;    /* the record's position */
	__u32 bytes; /* its length with header and padding */
};

/* Room for a record of size bytes (at most SONDE_RING_SLACK less the
 * header) on this CPU's ring: where to write it, or NULL, counted. The
 * socket and syscall programs run with preemption off and are the only
 * writers outside a uprobe, but a uprobe's program can be preempted by a
 * task whose program then writes on the same CPU: the busy flag keeps
 * the two records apart, and the second is dropped.
 * ring_submit or ring_discard must follow. */
static __always_inline void *ring_reserve(struct ring_slot *s, __u32 size)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct sonde_ring_pos *pos = bpf_map_lookup_elem(&ring_pos, &cpu);
	__u8 *data = bpf_map_lookup_elem(&ring_data, &cpu);
	__u64 off;

	if (!pos || !data) {
		count_drop(SONDE_DROP_RINGBUF_FULL);
		return NULL;
	}
	if (__sync_lock_test_and_set(&pos->busy, 1)) {
		count_drop(SONDE_DROP_RING_BUSY);
		return NULL;
	}
	s->pos = pos;
	s->at = pos->producer;
	s->bytes = SONDE_RING_RECORD_BYTES(size);
	if (s->at + s->bytes - *(volatile __u64 *)&pos->consumer >
	    ring_mask + 1) {
		pos->busy = 0;
		count_drop(SONDE_DROP_RINGBUF_FULL);
		return NULL;
	}
	off = s->at & ring_mask;
	*(__u32 *)(data + off) = size;
	return data + off + SONDE_RING_REC_HDR;
}

/* Wakes the daemon now: an empty record discarded on the shared ring. */
static __always_inline void wake_daemon(void)
{
	void *wake = bpf_ringbuf_reserve(&events, sizeof(__u64), 0);

	if (wake)
		bpf_ringbuf_discard(wake, BPF_RB_FORCE_WAKEUP);
}

/* Publishes the record: its bytes before the position that covers them.
 * x86, the one target (vmlinux/x86), keeps two stores in order once the
 * compiler does; a weakly ordered CPU would need a release here. When
 * the ring passes a quarter full, an empty record discarded on the shared
 * ring wakes the daemon; otherwise it drains on its timer. */
static __always_inline void ring_submit(struct ring_slot *s)
{
	struct sonde_ring_pos *pos = s->pos;
	__u64 end = s->at + s->bytes;
	__u64 quarter = (ring_mask + 1) / 4;
	__u64 read = *(volatile __u64 *)&pos->consumer;

	barrier();
	*(volatile __u64 *)&pos->producer = end;
	barrier();
	pos->busy = 0;
	if (s->at - read <= quarter && end - read > quarter)
		wake_daemon();
}

/* Gives up the record being written: nothing is published, and the next
 * reservation takes its place. */
static __always_inline void ring_discard(struct ring_slot *s)
{
	barrier();
	s->pos->busy = 0;
}

/* Submits a record reserved on the shared ring. No wakeup per record:
 * the daemon polls on a short timer, and is woken only when a quarter of
 * the ring is waiting. */
static __always_inline void event_submit(void *ev)
{
	__u64 fill = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(ev, fill > SONDE_RINGBUF_BYTES / 4 ?
				       BPF_RB_FORCE_WAKEUP :
				       BPF_RB_NO_WAKEUP);
}

#endif
