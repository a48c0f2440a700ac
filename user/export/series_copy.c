#include <stdlib.h>
#include <string.h>

#include "export/series_copy.h"
#include "util/probe.h"

/* A series' kept label rendering, by series id. */
struct kept_labels {
	uint64_t id;   /* 0: a free slot */
	uint64_t seen; /* the copy that last used it */
	char *text;
	size_t len;
};

/* Per form, open addressing by id (util/probe.h), and the copy being
 * made. */
struct label_cache {
	struct probe_table table;
	uint64_t gen;
};

static size_t slot_of(uint64_t id, size_t nslots)
{
	return (id * 0x9e3779b97f4a7c15ULL >> 17) & (nslots - 1);
}

static size_t kept_home(const void *slot, size_t n)
{
	return slot_of(((const struct kept_labels *)slot)->id, n);
}

static bool kept_used(const void *slot)
{
	return ((const struct kept_labels *)slot)->id != 0;
}

/* What every form's table starts as. */
static const struct probe_table kept_table = {
	.size = sizeof(struct kept_labels),
	.home = kept_home,
	.used = kept_used,
};

static struct label_cache caches[COPY_LABELS_COUNT];

/* Forgets the renderings the latest copy did not use: their series are
 * gone. */
static void sweep(struct label_cache *lc)
{
	struct probe_table *t = &lc->table;

	for (size_t i = 0; i < t->nslots;) {
		struct kept_labels *k = probe_slot(t, i);

		if (k->id && k->seen != lc->gen) {
			free(k->text);
			/* A key after it may move into i: look again. */
			probe_delete(t, i);
			continue;
		}
		i++;
	}
}

/* The kept rendering of s's labels, made on its first copy. */
static const struct kept_labels *labels_of(struct label_cache *lc,
					   copy_label_writer write,
					   const struct registry_series *s)
{
	struct probe_table *t = &lc->table;
	struct strbuf sb = { 0 };
	struct kept_labels *k;
	size_t j;

	if (!t->size)
		*t = kept_table;
	if (!probe_grow(t))
		return NULL;
	j = slot_of(s->id, t->nslots);
	while ((k = probe_slot(t, j))->id && k->id != s->id)
		j = probe_next(t, j);
	if (!k->id) {
		write(&sb, s);
		if (sb.failed) {
			strbuf_release(&sb);
			return NULL;
		}
		/* Its own allocation, as long as the text: a strbuf starts
		 * with room for 4 KiB. */
		k->text = malloc(sb.len + 1);
		if (!k->text) {
			strbuf_release(&sb);
			return NULL;
		}
		memcpy(k->text, sb.data ? sb.data : "", sb.len);
		k->text[sb.len] = '\0';
		k->len = sb.len;
		strbuf_release(&sb);
		k->id = s->id;
		t->nused++;
	}
	k->seen = lc->gen;
	return k;
}

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 256;
	void *grown;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	grown = realloc(*p, n * size);
	if (!grown)
		return false;
	*p = grown;
	*cap = n;
	return true;
}

struct take {
	struct series_copies *c;
	copy_label_writer write;
};

static struct series_copy *next_copy(struct series_copies *c)
{
	if (c->failed ||
	    !grow((void **)&c->series, &c->cap, c->n + 1, sizeof(*c->series))) {
		c->failed = true;
		return NULL;
	}
	memset(&c->series[c->n], 0, sizeof(c->series[c->n]));
	return &c->series[c->n];
}

static void copy_exp(struct series_copies *c, struct series_copy *out,
		     const struct exphist *e)
{
	if (!grow((void **)&c->exp_counts, &c->exp_cap, c->nexp + e->len,
		  sizeof(*c->exp_counts))) {
		c->failed = true;
		return;
	}
	if (e->len)
		memcpy(c->exp_counts + c->nexp, e->counts,
		       e->len * sizeof(*c->exp_counts));
	out->has_exp = true;
	out->exp_scale = e->scale;
	out->exp_offset = e->offset;
	out->exp_len = e->len;
	out->exp_zero = e->zero_count;
	out->exp_counts = c->nexp;
	c->nexp += e->len;
}

/* Under the registry's lock: the numbers of s, and its labels. */
static void copy_series(const struct registry_series *s, void *arg)
{
	struct take *t = arg;
	struct series_copies *c = t->c;
	const struct metric_family *f = s->family;
	const struct kept_labels *k;
	struct series_copy *out = next_copy(c);

	if (!out)
		return;
	k = labels_of(&caches[c->form], t->write, s);
	if (!k) {
		c->failed = true;
		return;
	}
	out->family = f;
	out->labels = k->text;
	out->labels_len = k->len;
	if (f->kind == METRIC_HISTOGRAM) {
		size_t nb = s->bounds->n + 1;

		if (!grow((void **)&c->buckets, &c->bucket_cap,
			  c->nbuckets + nb, sizeof(*c->buckets))) {
			c->failed = true;
			return;
		}
		memcpy(c->buckets + c->nbuckets, s->hist->buckets,
		       nb * sizeof(*c->buckets));
		out->bounds = s->bounds;
		out->buckets = c->nbuckets;
		c->nbuckets += nb;
		out->count = s->hist->count;
		out->sum_ns = s->hist->sum_ns;
		if (c->with_exp && s->exp)
			copy_exp(c, out, s->exp);
	} else if (f->kind == METRIC_COUNTER) {
		out->value = s->counter;
	} else {
		out->value = (uint64_t)s->gauge;
	}
	if (!c->failed)
		c->n++;
}

/* A family's head goes where a copy with no labels stands. */
static void copy_family(const struct metric_family *f, void *arg)
{
	struct take *t = arg;
	struct series_copy *out = next_copy(t->c);

	if (!out)
		return;
	out->family = f;
	t->c->n++;
}

int series_copies_take(struct series_copies *c, enum copy_labels form,
		       copy_label_writer write, bool with_exp)
{
	struct take t = { c, write };

	memset(c, 0, sizeof(*c));
	c->form = form;
	c->with_exp = with_exp;
	caches[form].gen++;
	registry_walk_families(copy_family, copy_series, &t);
	if (!c->failed)
		return 0;
	series_copies_release(c);
	return -1;
}

void series_copies_release(struct series_copies *c)
{
	struct label_cache *lc = &caches[c->form];

	sweep(lc);
	free(c->series);
	free(c->buckets);
	free(c->exp_counts);
	memset(c, 0, sizeof(*c));
}
