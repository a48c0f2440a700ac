#include <stdlib.h>
#include <string.h>

#include "util/holdq.h"

bool holdq_put(struct holdq *q, struct hold_budget *b, uint32_t seq,
	       unsigned round, const void *rec, size_t size)
{
	struct held *h, **at = &q->head;

	if (size > b->max_bytes - b->bytes)
		return false;
	/* Mostly they come in order after the gap: after the last. */
	if (q->last && seq_before(q->last->seq, seq))
		at = &q->last->next;
	while (*at && seq_before((*at)->seq, seq))
		at = &(*at)->next;
	if (*at && (*at)->seq == seq)
		return true;
	h = malloc(sizeof(*h) + size);
	if (!h)
		return false;
	h->seq = seq;
	h->round = round;
	h->size = size;
	memcpy(h->rec, rec, size);
	h->next = *at;
	*at = h;
	if (!h->next)
		q->last = h;
	b->bytes += size;
	if (!q->n++)
		b->queues++;
	return true;
}

struct held *holdq_take(struct holdq *q, struct hold_budget *b, uint32_t seq,
			bool any)
{
	struct held *h = q->head;

	if (!h || (!any && h->seq != seq))
		return NULL;
	q->head = h->next;
	if (!h->next)
		q->last = NULL;
	b->bytes -= h->size;
	if (!--q->n)
		b->queues--;
	h->next = NULL;
	return h;
}

bool holdq_waited(const struct holdq *q, unsigned now, unsigned rounds)
{
	return q->head && now - q->head->round >= rounds;
}

void holdq_free(struct holdq *q, struct hold_budget *b)
{
	struct held *h;

	while ((h = holdq_take(q, b, 0, true)))
		free(h);
}
