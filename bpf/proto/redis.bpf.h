/* Redis, RESP2 and RESP3
 * (https://redis.io/docs/latest/develop/reference/protocol-spec/). The
 * daemon reads it (user/proto/redis.c); this is its detector, and the
 * following of calls whole (redis_fold, below), which proto_data asks
 * first. Handler of the bytes: db_data (proto/db.bpf.h). */
#ifndef SONDE_PROTO_REDIS_BPF_H
#define SONDE_PROTO_REDIS_BPF_H

/* A command: an array of bulk strings, "*3\r\n$3\r\nSET\r\n...": '*', a
 * count of at most 6 digits, CRLF, then '$'. */
static __always_inline bool redis_detect(const char *p, __u32 n)
{
	__u32 i;

	if (n < 5 || p[0] != '*' || p[1] < '1' || p[1] > '9')
		return false;
	for (i = 2; i < 8; i++) {
		if (i + 2 >= n)
			return false;
		if (p[i] == '\r')
			return p[i + 1] == '\n' && p[i + 2] == '$';
		if (p[i] < '0' || p[i] > '9')
			return false;
	}
	return false;
}

/* ---- Calls followed whole ----
 *
 * Most clients send one command and wait for its reply, and most replies
 * are a line, a bulk string or a few of them in an array. Such a call is
 * followed here, whole: the write (or read) that carries exactly one
 * command, its name on the daemon's list (redis_fold_ops), then the
 * reply's first line in the next call the other way. It goes to the
 * daemon as one small record (struct sonde_db_call_event) instead of the
 * bytes of both, which the daemon would frame, parse and pair.
 *
 * Everything else goes as bytes (db_data), as before: a write of several
 * commands (a pipeline), a command not on the list (the ones that change
 * how the connection talks: HELLO, SUBSCRIBE, MULTI ...), a reply that
 * does not fit the rules below. A connection hands over to the daemon
 * only where the daemon can start: at a command. While whole commands it
 * sent as bytes wait for whole replies, it keeps sending bytes, and takes
 * up following calls again once they are all answered; once it sends
 * bytes it cannot count in whole messages, it sends bytes for the rest of
 * its life. A command already taken here when a call
 * turns out not to be followable is sent from the copy kept of it. */

/* Bytes of a command (and of a reply) looked at: the name and every
 * argument's length line must lie within them. */
#define REDIS_FOLD_WIN 128
/* Arguments a followed command has at most, and strings of an array
 * reply. */
#define REDIS_FOLD_ARGS 8
#define REDIS_FOLD_ELEMS 16
/* Commands sent as bytes that may wait for their replies. */
#define REDIS_FOLD_SENT_MAX 200

enum redis_fold_state {
	REDIS_FOLD_IDLE = 0, /* no call open */
	REDIS_FOLD_OPEN,     /* a followed command waits for its reply */
	REDIS_FOLD_SENT,     /* whole commands sent as bytes wait */
	REDIS_FOLD_NEVER,    /* bytes from now on */
};

/* A name as the list keys it: upper case, zero-padded. */
struct redis_fold_name {
	char b[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct redis_fold_name);
	__type(value, __u16);
} redis_fold_ops SEC(".maps");

struct redis_fold {
	__u64 start_ns;	  /* when the open command went */
	__u64 reply_left; /* bytes of a followed reply still to pass */
	__u64 cmd_left;	  /* bytes of the open command still to come */
	__u32 cmd_len;	  /* bytes of the open command taken */
	__u16 op;	  /* its index on the list */
	__u8 state;	  /* enum redis_fold_state */
	__u8 sent;	  /* REDIS_FOLD_SENT: commands waiting */
	__u8 sums;	  /* enum db_sum_verdict: its calls are summed */
	struct redis_fold_name name; /* the command's, as the list keys it */
	char cmd[REDIS_FOLD_WIN];    /* the open command's first bytes */
	char reply[REDIS_FOLD_WIN];  /* the reply's */
};

#define REDIS_FOLD_AT ((sizeof(struct db_conn) + 7) & ~7UL)
_Static_assert(REDIS_FOLD_AT + sizeof(struct redis_fold) <= CONN_PROTO_STATE,
	       "the followed call fits in a connection's protocol state");

static __always_inline struct redis_fold *redis_fold_of(struct conn *c)
{
	return (struct redis_fold *)(c->proto_state + REDIS_FOLD_AT);
}

#define REDIS_FOLD_MASK (REDIS_FOLD_WIN - 1)

/* The decimal of the length line at w[*at] (after its '*' or '$') up
 * to its CRLF, within got bytes: its value, *at past the CRLF; -1 when
 * it is not one of 1 to 9 digits. */
static __always_inline long redis_fold_digits(const char *w, __u32 got,
					      __u32 *at)
{
	__u32 i = *at + 1;
	long v = 0;

	for (int k = 0; k < 10; k++, i++) {
		char ch;

		if (i + 1 >= got)
			return -1;
		ch = w[i & REDIS_FOLD_MASK];
		if (ch == '\r') {
			if (!k || w[(i + 1) & REDIS_FOLD_MASK] != '\n')
				return -1;
			*at = i + 2;
			return v;
		}
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	return -1;
}

/* redis_fold_digits in f->cmd, or in f->reply when reply. A global
 * function: verified once, and what it finds is not followed value by
 * value through its callers. */
__attribute__((noinline)) long redis_fold_len(struct redis_fold *f, __u32 reply,
					      __u32 got, __u32 *at)
{
	if (!f || !at)
		return -1;
	return redis_fold_digits(reply ? f->reply : f->cmd, got, at);
}

/* Whether w holds a nil ("$-1" or "*-1" and CRLF) at at, within got
 * bytes. */
static __always_inline bool redis_fold_nil(const char *w, __u64 at, __u32 got)
{
	return at + 4 < got && w[(at + 1) & REDIS_FOLD_MASK] == '-' &&
	       w[(at + 2) & REDIS_FOLD_MASK] == '1' &&
	       w[(at + 3) & REDIS_FOLD_MASK] == '\r' &&
	       w[(at + 4) & REDIS_FOLD_MASK] == '\n';
}

/* Walking a command's arguments, or an array reply's strings:
 * bpf_loop's context. */
struct redis_fold_walk {
	struct redis_fold *f;
	__u64 end; /* where the next argument starts */
	__u32 args;
	__u32 name_len;
	__u32 name_at;
	__u32 got;
	__u32 bad;
	__u32 reply; /* in f->reply, where a string may be nil ("$-1") */
};

/* The i-th argument's length line and bytes. bpf_loop's callback: 1
 * stops. */
static long redis_fold_arg(__u64 i, void *ctx)
{
	struct redis_fold_walk *k = ctx;
	const char *w = k->reply ? k->f->reply : k->f->cmd;
	__u32 at;
	long len;

	if (i >= k->args)
		return 1;
	if (k->end >= k->got || w[k->end & REDIS_FOLD_MASK] != '$') {
		k->bad = 1;
		return 1;
	}
	if (k->reply && redis_fold_nil(w, k->end, k->got)) {
		k->end += 5;
		return 0;
	}
	at = k->end;
	len = redis_fold_digits(w, k->got, &at);
	if (len < 0) {
		k->bad = 1;
		return 1;
	}
	if (!i) {
		k->name_at = at;
		k->name_len = len > 255 ? 255 : len;
	}
	k->end = (__u64)at + len + 2;
	return 0;
}

/* Whether the got bytes in f->cmd start one command of at most
 * REDIS_FOLD_ARGS arguments whose length lines all lie within them; *end
 * gets its length (the bytes of the call, n, hold it whole when it is
 * n), name its name, upper case, when it has at most 15 bytes (else it
 * stays empty). */
static __always_inline bool redis_fold_command(struct redis_fold *f, __u32 got,
					       __u64 *end,
					       struct redis_fold_name *name)
{
	struct redis_fold_walk k = { .f = f, .got = got };
	const char *w = f->cmd;
	__u32 at = 0;
	long args;

	__builtin_memset(name, 0, sizeof(*name));
	if (got < 4 || w[0] != '*')
		return false;
	args = redis_fold_len(f, 0, got, &at);
	if (args < 1 || args > REDIS_FOLD_ARGS)
		return false;
	k.args = args;
	k.end = at;
	bpf_loop(REDIS_FOLD_ARGS, redis_fold_arg, &k, 0);
	if (k.bad)
		return false;
	*end = k.end;
	if (k.name_len > 15 || k.name_at + k.name_len > got)
		return true;
	for (__u32 i = 0; i < 15; i++) {
		char ch;

		if (i >= k.name_len)
			break;
		ch = w[(k.name_at + i) & REDIS_FOLD_MASK];
		name->b[i] = ch >= 'a' && ch <= 'z' ? ch - 32 : ch;
	}
	return true;
}

enum redis_fold_reply {
	REDIS_REPLY_NOT,   /* not a reply followed here */
	REDIS_REPLY_OK,	   /* a line, a bulk string, an array of them */
	REDIS_REPLY_ERROR, /* an error line */
};

/* Whether the got bytes in f->reply, of n, are a whole array of at
 * most REDIS_FOLD_ELEMS bulk strings, nil ones included (a few keys'
 * MGET, a small hash's HGETALL): their length lines within them, the
 * last string's rest, in *left, may be to come. */
static __always_inline bool redis_fold_array(struct redis_fold *f, __u32 got,
					     __u64 n, __u64 *left)
{
	struct redis_fold_walk k = { .f = f, .got = got, .reply = 1 };
	const char *w = f->reply;
	__u32 at = 0;
	long count;

	if (redis_fold_nil(w, 0, got))
		return n == 5;
	count = redis_fold_len(f, 1, got, &at);
	if (count < 0 || count > REDIS_FOLD_ELEMS)
		return false;
	k.args = count;
	k.end = at;
	bpf_loop(REDIS_FOLD_ELEMS, redis_fold_arg, &k, 0);
	if (k.bad || k.end < n)
		return false;
	*left = k.end - n;
	return true;
}

/* What the got bytes in f->reply, of n, are: a whole status, integer or
 * error line, or a bulk string or a short array of them whose rest (set
 * in *left) is still to come. */
static __always_inline enum redis_fold_reply
redis_fold_reply(struct redis_fold *f, __u32 got, __u64 n, __u64 *left)
{
	const char *w = f->reply;
	__u32 at = 0;
	long len;
	__u64 total;

	*left = 0;
	if (!got)
		return REDIS_REPLY_NOT;
	if (w[0] == '+' || w[0] == ':' || w[0] == '-') {
		if (n < 3 || n > got || w[(n - 2) & REDIS_FOLD_MASK] != '\r' ||
		    w[(n - 1) & REDIS_FOLD_MASK] != '\n')
			return REDIS_REPLY_NOT;
		return w[0] == '-' ? REDIS_REPLY_ERROR : REDIS_REPLY_OK;
	}
	if (w[0] == '*')
		return redis_fold_array(f, got, n, left) ? REDIS_REPLY_OK :
							   REDIS_REPLY_NOT;
	if (w[0] != '$')
		return REDIS_REPLY_NOT;
	if (redis_fold_nil(w, 0, got))
		return n == 5 ? REDIS_REPLY_OK : REDIS_REPLY_NOT;
	len = redis_fold_len(f, 1, got, &at);
	if (len < 0)
		return REDIS_REPLY_NOT;
	total = (__u64)at + len + 2;
	if (n > total)
		return REDIS_REPLY_NOT;
	*left = total - n;
	return REDIS_REPLY_OK;
}

/* Sends the open command, from its copy, as the bytes it was: its first
 * REDIS_FOLD_WIN, the rest a hole. What the call took of the command so
 * far, no more: the rest, if any, comes as bytes. */
static __always_inline void
redis_fold_send_open(struct conn_key *key, struct conn *c, struct redis_fold *f)
{
	db_send_from(key, c, f->cmd, f->cmd_len, true, REDIS_FOLD_WIN, 1,
		     f->start_ns);
}

/* The open call got its reply: one record. */
static __always_inline void redis_fold_send_call(struct conn_key *key,
						 struct conn *c,
						 struct redis_fold *f,
						 bool error)
{
	struct sonde_db_call_event *ev;
	struct ring_slot slot;

	ev = ring_reserve(&slot, sizeof(*ev));
	if (!ev)
		return;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = key->tgid;
	ev->hdr.kind = SONDE_EV_DB_CALL;
	ev->hdr.pad = 0;
	ev->start_ns = f->start_ns;
	__builtin_memcpy(ev->daddr, c->daddr, sizeof(ev->daddr));
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->sport = c->sport;
	ev->dport = c->dport;
	ev->family = c->family;
	ev->op = f->op;
	ev->proto = c->proto;
	ev->role = c->role;
	ev->error = error;
	ev->pad = 0;
	if (error)
		__builtin_memcpy(ev->status, &f->reply[1], sizeof(ev->status));
	else
		__builtin_memset(ev->status, 0, sizeof(ev->status));
	__builtin_memcpy(ev->comm, c->comm, SONDE_COMM_LEN);
	ring_submit(&slot);
}

/* The open call got a reply that is no error: summed, when it may be
 * (proto/db.bpf.h). */
static __always_inline bool redis_fold_sum(struct conn_key *key, struct conn *c,
					   struct redis_fold *f)
{
	if (f->sums == DB_SUM_UNKNOWN)
		f->sums = db_sum_verdict(key->tgid, c);
	return f->sums == DB_SUM_YES &&
	       db_sum_call(key, c, f->op, bpf_ktime_get_ns() - f->start_ns);
}

/* The command direction: 1 when the buffer was taken here. */
static __always_inline int redis_fold_ask(struct conn_key *key, struct conn *c,
					  struct redis_fold *f, __u64 buf,
					  __u64 n)
{
	__u32 got = n < REDIS_FOLD_WIN ? n : REDIS_FOLD_WIN;
	__u64 end = 0;
	__u16 *op;

	if (f->state == REDIS_FOLD_OPEN && n <= f->cmd_left) {
		/* More of the open command (a long value read in parts). */
		f->cmd_left -= n;
		f->cmd_len += n;
		return 1;
	}
	if (f->state == REDIS_FOLD_OPEN) {
		/* A second command before the first's reply. */
		redis_fold_send_open(key, c, f);
		f->state = REDIS_FOLD_NEVER;
		return 0;
	}
	barrier_var(got);
	if (f->reply_left || !buf || got > REDIS_FOLD_WIN ||
	    bpf_probe_read_user(f->cmd, got, (const void *)buf) ||
	    !redis_fold_command(f, got, &end, &f->name) || end < n) {
		/* Not one command, from its start. */
		f->state = REDIS_FOLD_NEVER;
		return 0;
	}
	op = f->state == REDIS_FOLD_IDLE ?
		     bpf_map_lookup_elem(&redis_fold_ops, &f->name) :
		     NULL;
	if (!op && end == n && f->sent < REDIS_FOLD_SENT_MAX) {
		/* Sent as bytes, whole: its reply is counted off. */
		f->sent++;
		f->state = REDIS_FOLD_SENT;
		return 0;
	}
	if (!op) {
		f->state = REDIS_FOLD_NEVER;
		return 0;
	}
	f->op = *op;
	f->cmd_len = n;
	f->cmd_left = end - n;
	f->start_ns = bpf_ktime_get_ns();
	f->state = REDIS_FOLD_OPEN;
	return 1;
}

/* The reply direction: 1 when the buffer was taken here. */
static __always_inline int redis_fold_answer(struct conn_key *key,
					     struct conn *c,
					     struct redis_fold *f, __u64 buf,
					     __u64 n)
{
	__u32 got = n < REDIS_FOLD_WIN ? n : REDIS_FOLD_WIN;
	enum redis_fold_reply kind = REDIS_REPLY_NOT;
	__u64 left = 0;

	if (f->state == REDIS_FOLD_IDLE) {
		/* The rest of a followed reply's bulk string. */
		if (n <= f->reply_left) {
			f->reply_left -= n;
			return 1;
		}
		f->state = REDIS_FOLD_NEVER;
		return 0;
	}
	barrier_var(got);
	if (buf && got <= REDIS_FOLD_WIN &&
	    !bpf_probe_read_user(f->reply, got, (const void *)buf))
		kind = redis_fold_reply(f, got, n, &left);
	if (f->state == REDIS_FOLD_SENT) {
		/* A reply to a command sent as bytes: sent as bytes too. */
		if (kind == REDIS_REPLY_NOT || left)
			f->state = REDIS_FOLD_NEVER;
		else if (!--f->sent)
			f->state = REDIS_FOLD_IDLE;
		return 0;
	}
	if (kind == REDIS_REPLY_NOT) {
		/* Not one to follow: the daemon gets the command, then this. */
		redis_fold_send_open(key, c, f);
		f->state = REDIS_FOLD_NEVER;
		return 0;
	}
	if (kind == REDIS_REPLY_ERROR || !redis_fold_sum(key, c, f))
		redis_fold_send_call(key, c, f, kind == REDIS_REPLY_ERROR);
	f->reply_left = left;
	f->state = REDIS_FOLD_IDLE;
	return 1;
}

/* n bytes at buf (0: a hole) went on c, a Redis connection, from the
 * client or to it: 1 when they were taken here, 0 when they go to the
 * daemon as bytes. A global function: verified once. */
__attribute__((noinline)) int redis_fold(struct conn_key *key, struct conn *c,
					 __u64 buf, long n, __u32 from_client)
{
	struct redis_fold *f;

	if (!key || !c || n <= 0)
		return 0;
	f = redis_fold_of(c);
	if (f->state == REDIS_FOLD_NEVER)
		return 0;
	if (from_client)
		return redis_fold_ask(key, c, f, buf, n);
	return redis_fold_answer(key, c, f, buf, n);
}

#endif
