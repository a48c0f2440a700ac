/* Syscall and socket decoding: which syscall moved bytes, its fd, and
 * where its bytes are (a plain buffer, an iovec array, a msghdr).
 *
 * The kernel saved the user registers at syscall entry and leaves them
 * alone until it returns to user space, so sys_exit, or a socket
 * tracepoint on the way, can read the arguments there: no sys_enter
 * program, no per-thread map, and a read that was already blocked when
 * sonde attached is seen like any other. bpf_task_pt_regs gives a
 * BTF-typed pointer: plain loads, not probe reads. */
#ifndef SONDE_CORE_IO_BPF_H
#define SONDE_CORE_IO_BPF_H

enum io_how {
	IO_PLAIN = 0, /* the buffer argument is the data */
	IO_IOVEC,     /* it is a struct iovec array */
	IO_MSGHDR,    /* it is a struct user_msghdr */
};

/* One read or write that moved bytes: what the protocols are handed. */
struct io_call {
	struct pt_regs *regs;
	__u64 arg2; /* the buffer argument: how says its shape */
	long ret;   /* bytes moved */
	__u8 how;   /* enum io_how */
	bool is_read;
};

/* The saved user registers of the syscall task is in, with its fd and
 * second argument. */
static __always_inline struct pt_regs *syscall_args(struct task_struct *task,
						    __u32 *fd, __u64 *arg2)
{
	struct pt_regs *regs;

	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	*fd = PT_REGS_PARM1_SYSCALL(regs);
	*arg2 = PT_REGS_PARM2_SYSCALL(regs);
	return regs;
}

/* The shape and direction of syscall nr, or false for one whose bytes are
 * not looked at (sendfile, splice, sendmmsg, io_uring, a read where the
 * kernel writes). recv_flags_at: which argument holds a receive's flags
 * (recvfrom's 4th, recvmsg's 3rd), 0 for none. */
static __always_inline bool io_syscall(long nr, __u8 *how, bool *is_read,
				       __u8 *recv_flags_at)
{
	*recv_flags_at = 0;
	switch (nr) {
	case NR_read:
		*how = IO_PLAIN;
		*is_read = true;
		return true;
	case NR_recvfrom:
		*how = IO_PLAIN;
		*is_read = true;
		*recv_flags_at = 4;
		return true;
	case NR_readv:
		*how = IO_IOVEC;
		*is_read = true;
		return true;
	case NR_recvmsg:
		*how = IO_MSGHDR;
		*is_read = true;
		*recv_flags_at = 3;
		return true;
	case NR_write:
	case NR_sendto:
		*how = IO_PLAIN;
		*is_read = false;
		return true;
	case NR_writev:
		*how = IO_IOVEC;
		*is_read = false;
		return true;
	case NR_sendmsg:
		*how = IO_MSGHDR;
		*is_read = false;
		return true;
	}
	return false;
}

/* A receive's flags, from the argument io_syscall named. */
static __always_inline __u32 recv_flags(struct pt_regs *regs, __u8 flags_at)
{
	if (flags_at == 3)
		return PT_REGS_PARM3_SYSCALL(regs);
	if (flags_at == 4)
		return PT_REGS_PARM4_SYSCALL(regs);
	return 0;
}

/* The iovec array of a vector read or write (IO_IOVEC or IO_MSGHDR), or
 * NULL when the msghdr cannot be read. A msghdr also gives the array's
 * length in *count; readv and writev pass it as their third argument. */
static __always_inline const struct iovec *io_iovecs(__u64 arg, __u8 how,
						     __u64 *count)
{
	struct user_msghdr msg;

	if (how != IO_MSGHDR)
		return (const struct iovec *)arg;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)arg))
		return NULL;
	*count = msg.msg_iovlen;
	return msg.msg_iov;
}

/* The first data buffer of a read or write: plain, iovec or msghdr; *n is
 * cut to its length. */
static __always_inline const void *io_first_buffer(__u64 arg, __u8 how, long *n)
{
	const struct iovec *iovp;
	struct iovec iov;
	__u64 count;

	if (how == IO_PLAIN)
		return (const void *)arg;
	iovp = io_iovecs(arg, how, &count);
	if (!iovp || bpf_probe_read_user(&iov, sizeof(iov), iovp))
		return NULL;
	if ((__u64)*n > iov.iov_len)
		*n = iov.iov_len;
	return iov.iov_base;
}

/* Copies up to SONDE_PEEK bytes from the start of a user buffer; returns
 * how many (0 when it cannot be read). */
static __always_inline __u32 peek_user(char *dst, const void *src, long n)
{
	__u32 len = n > SONDE_PEEK ? SONDE_PEEK : n;

	barrier_var(len);
	if (len > SONDE_PEEK || bpf_probe_read_user(dst, len, src))
		return 0;
	return len;
}

#endif
