/* The protocol seam of the daemon. Each kind of record the kernel sends
 * about traffic belongs to one protocol, a file in proto/ that fills in a
 * struct proto: it reads its records and turns each into observations
 * (which family, the label values the protocol knows, a duration or a
 * count, whether the exchange failed). The dispatcher (dispatch.c) does
 * the rest the same way for every protocol: it names the process, applies
 * the process selection, adds service_name and the identity labels, and
 * makes the one call into the registry for each observation.
 *
 * Adding a protocol: proto/<p>.c defining its struct proto, proto_<p>;
 * its families in metrics/families.c; and one entry in the table in
 * dispatch.c.
 *
 * Consumer thread only. */
#ifndef SONDE_PROTO_H
#define SONDE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity/labels.h"
#include "metrics/registry.h"
#include "proto/events.h"
#include "sonde_events.h"
#include "trace/trace.h"

/* Observations one record makes at most: a finished connect is counted,
 * timed and held in the connection gauge. */
#define PROTO_MAX_OBS 4
/* The longest key a record's labels are cached under: a request line of
 * a hundred-odd bytes. A multiple of 8 (dispatch.c reads it in words). */
#define PROTO_KEY_MAX 128

/* Which records the process selection leaves out (identity/selection.h). */
enum proto_filter {
	PROTO_NO_PROCESS,     /* none, and no process is looked up: the
			       * record only releases what a hold raised */
	PROTO_FILTER_NONE,    /* none: the process is only named */
	PROTO_FILTER_PROCESS, /* those of processes it ignores */
	PROTO_FILTER_CONN,    /* those, and those on local ports it leaves
			       * out */
};

/* How an observation changes its series. */
enum proto_op {
	PROTO_OBSERVE, /* a duration into a histogram family */
	PROTO_MERGE,   /* many durations, counted together, into one */
	PROTO_ADD,     /* a count onto a counter family */
	PROTO_HOLD,    /* a gauge family up by one until released */
	PROTO_RELEASE, /* what the hold of the same id raised, down again;
			* needs no family nor labels */
};

/* One observation for the registry. The labels are the family's own
 * ones, values[1..nfixed); the dispatcher sets values[0] (service_name)
 * and appends the identity labels the operator chose, then extra[]
 * (captured request headers: the server family's last labels). */
struct proto_obs {
	const struct metric_family *family;
	enum proto_op op;
	/* OBSERVE: the duration in ns; ADD: the count; HOLD and RELEASE:
	 * the holder's id (a socket) */
	uint64_t value;
	const struct registry_merge *merge; /* MERGE: what is added */
	bool error; /* the protocol calls the exchange a failure */
	unsigned nfixed;
	const char *values[REGISTRY_MAX_LABELS];
	unsigned nextra;
	const char *extra[LABELS_MAX_HEADERS];
	/* For its span, when span.want: what the protocol knows of the
	 * exchange beyond its labels (start_ns 0: none). */
	struct trace_exchange span;
};

/* What comes after a protocol has read a record. */
enum proto_next {
	PROTO_NEXT_OBSERVE, /* look its process up, filter, observe */
	PROTO_NEXT_NOTHING, /* nothing to observe (yet) */
	/* Nothing to observe: r->error is counted whatever the process
	 * (the protocol's own state for the connection is lost). */
	PROTO_NEXT_ERROR,
	/* Nothing to observe: r->error is counted when the selection traces
	 * the process, as an observation would have been. */
	PROTO_NEXT_TRACED_ERROR,
};

/* One record as its protocol read it: who made it, for the dispatcher,
 * and what the protocol keeps from read() for observe().
 *
 * The key: a record that makes one PROTO_OBSERVE observation may say,
 * in key[0..key_len), the bytes that decide all of its labels but those
 * of its process (a server's status, port and request line, say). The
 * dispatcher then files the next record with the same key from the same
 * process entry straight into the series the first one found, with
 * value as its duration (merge, when set, for a record that makes one
 * PROTO_MERGE), and calls no observe(). So a key must hold everything
 * its labels depend on, or two records would share a series they should
 * not; key_len 0 (the default) asks for no such shortcut. */
struct proto_record {
	uint32_t tgid;
	const char *comm; /* SONDE_COMM_LEN bytes, NUL-padded */
	enum proto_filter filter;
	uint16_t port; /* local port, for PROTO_FILTER_CONN */
	enum parse_error error;
	uint64_t value;
	const struct registry_merge *merge;
	uint16_t key_len;
	uint8_t key[PROTO_KEY_MAX];
	/* The protocol's own, from read() to observe(). */
	int code;
	const void *state;
};

/* Whether the connection (tgid, fd), on the socket at address sk, is
 * still open (capture_conn_open). */
typedef bool (*proto_open_fn)(uint32_t tgid, uint32_t fd, uint64_t sk);

struct proto {
	const char *name;
	uint16_t kind;	 /* enum sonde_event_kind of its records */
	size_t min_size; /* a shorter record is a parse error ("record") */
	/* Reads rec, size bytes (at least min_size): fills r and says what
	 * comes next. Stateful protocols keep their state here, for every
	 * record, whether or not its process turns out to be traced. */
	enum proto_next (*read)(const void *rec, size_t size,
				struct proto_record *r);
	/* The observations of a record read() passed on, into obs (room
	 * for PROTO_MAX_OBS). Returns how many. */
	unsigned (*observe)(const void *rec, size_t size,
			    const struct proto_record *r,
			    struct proto_obs *obs);
	/* Optional: forgets the state of connections open() says are
	 * closed; and all of it. */
	void (*sweep)(proto_open_fn open);
	void (*clear)(void);
	/* Optional, for a protocol whose records may be read out of the
	 * order they were made in (each CPU has its ring) and that holds some
	 * back: one whose turn has come, size bytes, valid until the next
	 * call; NULL when none. The dispatcher reads them after each of the
	 * protocol's records, as if they came then, and after end_round. */
	const void *(*ready)(size_t *size);
	/* Optional: after each round of reading the rings, how many
	 * measurements the protocol has given up since, and why. It may
	 * stop waiting for a record and hand out, through ready(), what
	 * was held for it. */
	unsigned (*end_round)(enum parse_error *why);
};

#endif
