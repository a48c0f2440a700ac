/* Records read ahead of their turn, kept in order until it comes.
 *
 * The BPF side writes each record to the exchange ring of the CPU it runs
 * on, and the daemon reads the rings one after another, so a connection's
 * record can be read before one made just ahead of it on another CPU. A
 * protocol whose records depend on their order (HTTP/2's header blocks,
 * a database's requests and replies) numbers them; the one read early is
 * kept here, a copy, until those before it have come. Numbers wrap. */
#ifndef SONDE_HOLDQ_H
#define SONDE_HOLDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct held {
	struct held *next;
	uint32_t seq;
	unsigned round; /* the round of reading the rings it came in */
	size_t size;
	_Alignas(8) uint8_t rec[];
};

/* One sequence's records, by number. */
struct holdq {
	struct held *head, *last;
	unsigned n;
};

/* What the queues of one protocol hold together. */
struct hold_budget {
	size_t bytes;	  /* of the records held */
	size_t max_bytes; /* which bytes may not pass */
	size_t queues;	  /* queues holding a record */
};

/* Whether a comes before b. */
static inline bool seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* Keeps a copy of rec, size bytes, numbered seq, which came in round.
 * False when the budget has no room or memory ran out. A number already
 * held keeps its first record. */
bool holdq_put(struct holdq *q, struct hold_budget *b, uint32_t seq,
	       unsigned round, const void *rec, size_t size);
/* q's first record, taken out, when it is numbered seq (any number when
 * any); NULL otherwise. The caller frees it. */
struct held *holdq_take(struct holdq *q, struct hold_budget *b, uint32_t seq,
			bool any);
/* Whether q's first record has waited through rounds ends of round. */
bool holdq_waited(const struct holdq *q, unsigned now, unsigned rounds);
/* Forgets what q holds. */
void holdq_free(struct holdq *q, struct hold_budget *b);

#endif
