#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/registry.h"
#include "metrics/self.h"
#include "util/clock.h"
#include "util/strmap.h"

/* Distinct values of one capped label within one service. */
struct value_set {
	struct strmap values; /* value -> (void *)1 */
	unsigned n;	      /* distinct values, fixed ones excepted */
	uint64_t overflows;   /* observations put under REGISTRY_OVERFLOW */
};

struct service {
	struct value_set capped[REGISTRY_CAP_COUNT];
};

struct series {
	uint64_t id;
	struct series *next; /* in its index slot */
	uint64_t hash;	     /* series_hash() of family and values */
	const struct metric_family *family;
	const char *values[REGISTRY_MAX_LABELS]; /* copies, in text[] */
	uint64_t start_unix_ns;
	uint64_t last_unix_ns;
	uint64_t counter;
	int64_t gauge;
	unsigned holds; /* registry_gauge_hold()s not yet released */
	char *text;
	/* hist's: its family's when the series was made, so that the
	 * bucket array and what reads it agree. Next to hist, which an
	 * observation reads it for. */
	const struct histogram_bounds *bounds;
	struct exphist *exp;   /* NULL unless registry_enable_exphist() */
	struct histogram hist; /* last: flexible bucket array */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_series_id = 1;
/* Moves on whenever series may have been freed: a registry_ref taken
 * before then is stale. */
static uint64_t epoch = 1;
static struct histogram_bounds bounds;
static struct registry_limits limits;
static struct strmap services; /* name -> struct service */
/* Series by family and label values, chained on series_hash(): an
 * observation finds its series without building a key string. */
static struct series **index_slots;
static size_t index_nslots; /* power of two */
/* Series in creation order, so the exposition is stable between scrapes. */
static struct series **series;
static unsigned nseries, series_cap;
static uint64_t dropped_series_limit;
static bool exphist_enabled;
/* Families with series, in the order their first series was created. */
#define REGISTRY_MAX_FAMILIES 32
static const struct metric_family *families[REGISTRY_MAX_FAMILIES];
static unsigned nfamilies;

/* Caps on one label's distinct values across services (captured
 * headers). */
#define REGISTRY_MAX_LABEL_CAPS 8
struct label_cap {
	const struct metric_family *family;
	unsigned label;
	unsigned max_values;
	struct value_set set;
};
static struct label_cap label_caps[REGISTRY_MAX_LABEL_CAPS];
static unsigned nlabel_caps;

/* Observations by reference (registry_observe_at) not yet filed: filed
 * together, under one taking of the lock, when REGISTRY_WAITING_MAX wait,
 * at registry_flush, and before the observing thread reads, expires or
 * frees series. That thread is the only one to observe by reference and
 * to free series, so a waiting observation's series outlives its wait. */
#define REGISTRY_WAITING_MAX 256
static struct {
	struct series *series;
	uint64_t ns;
} waiting[REGISTRY_WAITING_MAX];
static unsigned nwaiting;
static pthread_t observer;
static bool observer_known;

/* Gauges held by an id: "%llx" of the id -> the series its hold raised,
 * which its release lowers, whatever the labels would be by then. A held
 * series never expires, so the pointer stays good. */
static struct strmap holds;

void registry_init(const struct histogram_bounds *b,
		   const struct registry_limits *l)
{
	bounds = *b;
	limits = *l;
}

void registry_enable_exphist(void)
{
	exphist_enabled = true;
}

const struct histogram_bounds *registry_bounds(void)
{
	return &bounds;
}

const struct histogram_bounds *
registry_family_bounds(const struct metric_family *f)
{
	return f->bounds ? f->bounds : &bounds;
}

static struct service *service_get(const char *name)
{
	struct service *svc = strmap_get(&services, name);

	if (svc)
		return svc;
	svc = calloc(1, sizeof(*svc));
	if (!svc)
		return NULL;
	if (!strmap_put(&services, name, svc)) {
		free(svc);
		return NULL;
	}
	return svc;
}

static unsigned cap_limit(enum registry_cap cap)
{
	return cap == REGISTRY_CAP_ROUTE ? limits.max_routes_per_service :
					   limits.max_peers_per_service;
}

/* value itself when set already holds it or has room for it (it is then
 * added), REGISTRY_OVERFLOW once set holds limit values, counting n
 * observations overflowed; NULL when out of memory. */
static const char *value_set_admit(struct value_set *set, unsigned limit,
				   const char *value, uint64_t n)
{
	if (strmap_get(&set->values, value))
		return value;
	if (set->n >= limit) {
		set->overflows += n;
		return REGISTRY_OVERFLOW;
	}
	if (!strmap_put(&set->values, value, (void *)1))
		return NULL;
	set->n++;
	return value;
}

/* The value a capped label of n observations is filed under: itself
 * while the service is within its cap, REGISTRY_OVERFLOW beyond it. The
 * fixed values do not count against the cap. */
static const char *capped_value(struct service *svc, enum registry_cap cap,
				const char *value, uint64_t n)
{
	if (strcmp(value, ROUTE_UNKNOWN) == 0 ||
	    strcmp(value, METHOD_OTHER) == 0 ||
	    strcmp(value, REGISTRY_OVERFLOW) == 0)
		return value;
	return value_set_admit(&svc->capped[cap], cap_limit(cap), value, n);
}

/* A captured label's value within its cap, or REGISTRY_OVERFLOW (n
 * observations overflowed). */
static const char *label_capped_value(struct label_cap *lc, const char *value,
				      uint64_t n)
{
	if (!*value || strcmp(value, REGISTRY_OVERFLOW) == 0)
		return value;
	return value_set_admit(&lc->set, lc->max_values, value, n);
}

void registry_cap_label(const struct metric_family *f, unsigned label,
			unsigned max_values)
{
	pthread_mutex_lock(&lock);
	if (nlabel_caps < REGISTRY_MAX_LABEL_CAPS) {
		struct label_cap *lc = &label_caps[nlabel_caps++];

		memset(lc, 0, sizeof(*lc));
		lc->family = f;
		lc->label = label;
		lc->max_values = max_values;
	}
	pthread_mutex_unlock(&lock);
}

/* The family is one static object per metric: its address stands for its
 * name, which would otherwise be hashed again for every observation. */
static uint64_t series_hash(const struct metric_family *f,
			    const char *const *values)
{
	uint64_t h = STRMAP_HASH_SEED ^ (uint64_t)(uintptr_t)f;

	for (unsigned i = 0; i < f->nlabels; i++)
		h = strmap_hash_bytes(h, values[i], strlen(values[i]));
	return strmap_hash_finish(h);
}

static struct series **index_slot(uint64_t hash)
{
	return &index_slots[hash & (index_nslots - 1)];
}

static struct series *index_find(const struct metric_family *f,
				 const char *const *values, uint64_t hash)
{
	struct series *s;
	unsigned i;

	if (!index_nslots)
		return NULL;
	for (s = *index_slot(hash); s; s = s->next) {
		if (s->hash != hash || s->family != f)
			continue;
		for (i = 0; i < f->nlabels; i++)
			if (strcmp(s->values[i], values[i]) != 0)
				break;
		if (i == f->nlabels)
			return s;
	}
	return NULL;
}

/* Puts s in the index, which grows to keep chains about one long; -1
 * when out of memory. */
static int index_add(struct series *s)
{
	struct series **slots, *e, *next;
	size_t n = index_nslots;

	if (nseries >= n) {
		n = n ? n * 2 : 64;
		slots = calloc(n, sizeof(*slots));
		if (!slots)
			return -1;
		for (size_t i = 0; i < index_nslots; i++)
			for (e = index_slots[i]; e; e = next) {
				next = e->next;
				e->next = slots[e->hash & (n - 1)];
				slots[e->hash & (n - 1)] = e;
			}
		free(index_slots);
		index_slots = slots;
		index_nslots = n;
	}
	s->next = *index_slot(s->hash);
	*index_slot(s->hash) = s;
	return 0;
}

static void index_remove(const struct series *s)
{
	struct series **e = index_slot(s->hash);

	while (*e && *e != s)
		e = &(*e)->next;
	if (*e)
		*e = s->next;
}

static void family_note(const struct metric_family *f)
{
	for (unsigned i = 0; i < nfamilies; i++)
		if (families[i] == f)
			return;
	if (nfamilies < REGISTRY_MAX_FAMILIES)
		families[nfamilies++] = f;
}

static struct series *series_create(uint64_t hash,
				    const struct metric_family *f,
				    const char *const *values)
{
	const struct histogram_bounds *b = registry_family_bounds(f);
	size_t textsz = 0, off = 0;
	struct series *s, **grown;

	if (nseries == series_cap) {
		unsigned cap = series_cap ? series_cap * 2 : 64;

		grown = realloc(series, cap * sizeof(*series));
		if (!grown)
			return NULL;
		series = grown;
		series_cap = cap;
	}
	for (unsigned i = 0; i < f->nlabels; i++)
		textsz += strlen(values[i]) + 1;
	s = calloc(1,
		   sizeof(*s) + histogram_size(b) - sizeof(struct histogram));
	if (!s)
		return NULL;
	s->text = malloc(textsz ? textsz : 1);
	if (exphist_enabled && f->kind == METRIC_HISTOGRAM) {
		s->exp = malloc(sizeof(*s->exp));
		if (s->exp)
			exphist_init(s->exp);
	}
	s->hash = hash;
	if (!s->text ||
	    (exphist_enabled && f->kind == METRIC_HISTOGRAM && !s->exp) ||
	    index_add(s)) {
		free(s->exp);
		free(s->text);
		free(s);
		return NULL;
	}
	for (unsigned i = 0; i < f->nlabels; i++) {
		size_t len = strlen(values[i]) + 1;

		memcpy(s->text + off, values[i], len);
		s->values[i] = s->text + off;
		off += len;
	}
	s->id = next_series_id++;
	s->family = f;
	s->bounds = b;
	family_note(f);
	s->start_unix_ns = clock_realtime_ns();
	s->last_unix_ns = s->start_unix_ns;
	series[nseries++] = s;
	return s;
}

/* Whether capping changed none of values, given. */
static bool values_kept(const struct metric_family *f,
			const char *const *values, const char *const *given)
{
	for (unsigned i = 0; i < f->nlabels; i++)
		if (values[i] != given[i])
			return false;
	return true;
}

/* The series for the given label values, created if new. A series
 * found under the values as given needs no capping: every value a series
 * holds is admitted to its cap's set, or is one of the fixed ones, which
 * capping leaves alone. *as_given (when not NULL) says whether the series
 * holds the values as given, none filed under REGISTRY_OVERFLOW. n: the
 * observations an overflow counts. */
static struct series *series_find_or_create(const struct metric_family *f,
					    const char *const *given,
					    bool *as_given, uint64_t n)
{
	const char *values[REGISTRY_MAX_LABELS];
	struct service *svc;
	struct series *s;
	uint64_t hash;

	if (as_given)
		*as_given = true;
	if (f->nlabels == 0 || f->nlabels > REGISTRY_MAX_LABELS)
		return NULL;
	hash = series_hash(f, given);
	s = index_find(f, given, hash);
	if (s)
		return s;
	memcpy(values, given, f->nlabels * sizeof(*values));
	if (f->capped_label > 0 && f->cap != REGISTRY_CAP_NONE) {
		svc = service_get(values[0]);
		if (!svc)
			return NULL;
		values[f->capped_label] =
			capped_value(svc, f->cap, values[f->capped_label], n);
		if (!values[f->capped_label])
			return NULL;
	}
	for (unsigned i = 0; i < nlabel_caps; i++) {
		struct label_cap *lc = &label_caps[i];

		if (lc->family != f || lc->label >= f->nlabels)
			continue;
		values[lc->label] =
			label_capped_value(lc, values[lc->label], n);
		if (!values[lc->label])
			return NULL;
	}
	if (as_given)
		*as_given = values_kept(f, values, given);
	hash = series_hash(f, values);
	s = index_find(f, values, hash);
	if (s)
		return s;
	if (nseries >= limits.max_series)
		return NULL;
	return series_create(hash, f, values);
}

/* The time an observation is noted at, for the TTL, which alone reads
 * it: a tick's precision is plenty, and the coarse clock is a plain read
 * where the exact one may not be. It may lag the exact start time of a
 * new series by that tick. */
static uint64_t touch_now(void)
{
	return clock_ns(CLOCK_REALTIME_COARSE);
}

/* Notes an observation of s at now (touch_now()), for its TTL. */
static void series_touch_at(struct series *s, uint64_t now)
{
	if (now > s->last_unix_ns)
		s->last_unix_ns = now;
}

/* Notes an observation of s now. */
static void series_touch(struct series *s)
{
	series_touch_at(s, touch_now());
}

/* Finds the series under the lock; the caller updates it and unlocks.
 * as_given and n as for series_find_or_create. */
static struct series *lock_series(const struct metric_family *f,
				  const char *const *values, bool *as_given,
				  uint64_t n)
{
	struct series *s;

	pthread_mutex_lock(&lock);
	s = series_find_or_create(f, values, as_given, n);
	if (!s) {
		dropped_series_limit += n;
		pthread_mutex_unlock(&lock);
		return NULL;
	}
	series_touch(s);
	return s;
}

static void series_observe(struct series *s, uint64_t duration_ns)
{
	histogram_observe(&s->hist, s->bounds, duration_ns);
	if (s->exp)
		exphist_observe(s->exp, duration_ns);
}

int registry_observe(const struct metric_family *f, const char *const *values,
		     uint64_t duration_ns)
{
	return registry_observe_ref(f, values, duration_ns, NULL);
}

/* A series capping filed elsewhere is not handed out: each observation
 * of its values must pass the cap again, to be counted as an overflow. */
int registry_observe_ref(const struct metric_family *f,
			 const char *const *values, uint64_t duration_ns,
			 struct registry_ref *ref)
{
	bool as_given;
	struct series *s = lock_series(f, values, &as_given, 1);

	if (ref) {
		ref->series = s && as_given ? s : NULL;
		ref->epoch = epoch;
	}
	if (!s)
		return -1;
	series_observe(s, duration_ns);
	pthread_mutex_unlock(&lock);
	return 0;
}

/* Files the observations waiting, under the lock (taken by the caller),
 * on the observing thread. */
static void file_waiting(void)
{
	uint64_t now;

	if (!nwaiting)
		return;
	now = touch_now();
	for (unsigned i = 0; i < nwaiting; i++) {
		series_touch_at(waiting[i].series, now);
		series_observe(waiting[i].series, waiting[i].ns);
	}
	nwaiting = 0;
}

/* Whether this thread is the one observing by reference: only it may
 * touch what waits. */
static bool on_observer(void)
{
	return observer_known && pthread_equal(pthread_self(), observer);
}

int registry_observe_at(const struct registry_ref *ref, uint64_t duration_ns)
{
	/* epoch moves only on this thread (registry_expire, registry_free),
	 * which files what waits first: no lock to read it. */
	if (!ref->series || ref->epoch != epoch)
		return -1;
	if (!observer_known) {
		observer = pthread_self();
		observer_known = true;
	}
	if (nwaiting == REGISTRY_WAITING_MAX)
		registry_flush();
	waiting[nwaiting].series = ref->series;
	waiting[nwaiting].ns = duration_ns;
	nwaiting++;
	return 0;
}

void registry_flush(void)
{
	if (!nwaiting)
		return;
	pthread_mutex_lock(&lock);
	file_waiting();
	pthread_mutex_unlock(&lock);
}

/* Whether m can be added to s: its buckets are s's, and s keeps no
 * exponential histogram, which counts alone could not fill. */
static bool merge_fits(const struct series *s, const struct registry_merge *m)
{
	return !s->exp && m->bounds->n == s->bounds->n &&
	       memcmp(m->bounds->ns, s->bounds->ns,
		      m->bounds->n * sizeof(m->bounds->ns[0])) == 0;
}

static void series_merge(struct series *s, const struct registry_merge *m)
{
	s->hist.count += m->count;
	s->hist.sum_ns += m->sum_ns;
	for (size_t i = 0; i <= s->bounds->n; i++)
		s->hist.buckets[i] += m->buckets[i];
}

int registry_merge_ref(const struct metric_family *f, const char *const *values,
		       const struct registry_merge *m, struct registry_ref *ref)
{
	bool as_given;
	struct series *s = lock_series(f, values, &as_given, m->count);

	if (ref) {
		ref->series = s && as_given ? s : NULL;
		ref->epoch = epoch;
	}
	if (!s)
		return -1;
	if (!merge_fits(s, m)) {
		dropped_series_limit += m->count;
		pthread_mutex_unlock(&lock);
		return -1;
	}
	series_merge(s, m);
	pthread_mutex_unlock(&lock);
	return 0;
}

int registry_merge_at(const struct registry_ref *ref,
		      const struct registry_merge *m)
{
	struct series *s = ref->series;

	if (!s || ref->epoch != epoch)
		return -1;
	pthread_mutex_lock(&lock);
	if (!merge_fits(s, m)) {
		/* Counted dropped here: 0, so that the caller does not merge
		 * by labels and count them again. */
		dropped_series_limit += m->count;
		pthread_mutex_unlock(&lock);
		return 0;
	}
	series_touch(s);
	series_merge(s, m);
	pthread_mutex_unlock(&lock);
	return 0;
}

int registry_add(const struct metric_family *f, const char *const *values,
		 uint64_t n)
{
	struct series *s = lock_series(f, values, NULL, 1);

	if (!s)
		return -1;
	s->counter += n;
	pthread_mutex_unlock(&lock);
	return 0;
}

int registry_gauge_add(const struct metric_family *f, const char *const *values,
		       int64_t delta)
{
	struct series *s = lock_series(f, values, NULL, 1);

	if (!s)
		return -1;
	s->gauge += delta;
	pthread_mutex_unlock(&lock);
	return 0;
}

static void hold_key(uint64_t id, char key[24])
{
	snprintf(key, 24, "%llx", (unsigned long long)id);
}

/* Lowers the series held under key, if any, and forgets the hold. */
static void hold_release(const char *key)
{
	struct series *s = strmap_remove(&holds, key);

	if (!s)
		return;
	s->gauge--;
	s->holds--;
	series_touch(s);
}

int registry_gauge_hold(const struct metric_family *f,
			const char *const *values, uint64_t id)
{
	struct series *s, *held;
	char key[24];

	hold_key(id, key);
	pthread_mutex_lock(&lock);
	held = strmap_get(&holds, key);
	if (!held && holds.count >= REGISTRY_MAX_HOLDS) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	s = series_find_or_create(f, values, NULL, 1);
	if (s && s == held) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	if (held)
		hold_release(key);
	if (!s || !strmap_put(&holds, key, s)) {
		dropped_series_limit++;
		pthread_mutex_unlock(&lock);
		return -1;
	}
	s->gauge++;
	s->holds++;
	series_touch(s);
	pthread_mutex_unlock(&lock);
	return 0;
}

void registry_gauge_release(uint64_t id)
{
	char key[24];

	hold_key(id, key);
	pthread_mutex_lock(&lock);
	hold_release(key);
	pthread_mutex_unlock(&lock);
}

unsigned registry_holds(void)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = (unsigned)holds.count;
	pthread_mutex_unlock(&lock);
	return n;
}

/* The view of s that walkers get. */
static struct registry_series view_of(const struct series *s)
{
	return (struct registry_series){
		.id = s->id,
		.family = s->family,
		.values = s->values,
		.start_unix_ns = s->start_unix_ns,
		.last_unix_ns = s->last_unix_ns,
		.hist = &s->hist,
		.bounds = s->bounds,
		.exp = s->exp,
		.counter = s->counter,
		.gauge = s->gauge,
	};
}

void registry_walk_families(
	void (*family)(const struct metric_family *f, void *arg),
	void (*each)(const struct registry_series *s, void *arg), void *arg)
{
	pthread_mutex_lock(&lock);
	if (on_observer())
		file_waiting();
	for (unsigned i = 0; i < nfamilies; i++) {
		family(families[i], arg);
		for (unsigned j = 0; j < nseries; j++) {
			struct registry_series view;

			if (series[j]->family != families[i])
				continue;
			view = view_of(series[j]);
			each(&view, arg);
		}
	}
	pthread_mutex_unlock(&lock);
}

static bool series_expired(const struct series *s, uint64_t now,
			   uint64_t ttl_ns)
{
	if (s->holds)
		return false;
	if (s->family->kind == METRIC_GAUGE && s->gauge != 0)
		return false;
	return s->last_unix_ns + ttl_ns < now;
}

static void clear_values(const char *name, void *value, void *arg)
{
	struct service *svc = value;

	(void)name;
	(void)arg;
	for (int cap = 0; cap < REGISTRY_CAP_COUNT; cap++) {
		strmap_clear(&svc->capped[cap].values);
		svc->capped[cap].n = 0;
	}
}

/* Re-counts the capped values from the live series, after some expired:
 * a value no live series holds no longer takes a place under its cap.
 * Overflow counters are kept. */
static void recount_capped_values(void)
{
	strmap_each(&services, clear_values, NULL);
	for (unsigned i = 0; i < nlabel_caps; i++) {
		strmap_clear(&label_caps[i].set.values);
		label_caps[i].set.n = 0;
	}
	for (unsigned i = 0; i < nseries; i++) {
		const struct series *s = series[i];
		const struct metric_family *f = s->family;

		if (f->capped_label > 0 && f->cap != REGISTRY_CAP_NONE) {
			struct service *svc = service_get(s->values[0]);

			if (svc)
				capped_value(svc, f->cap,
					     s->values[f->capped_label], 0);
		}
		for (unsigned j = 0; j < nlabel_caps; j++)
			if (label_caps[j].family == f &&
			    label_caps[j].label < f->nlabels)
				label_capped_value(
					&label_caps[j],
					s->values[label_caps[j].label], 0);
	}
}

/* A family whose series all expired is not written, not even its HELP. */
static void forget_empty_families(void)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < nfamilies; i++) {
		bool used = false;

		for (unsigned j = 0; j < nseries && !used; j++)
			used = series[j]->family == families[i];
		if (used)
			families[kept++] = families[i];
	}
	nfamilies = kept;
}

unsigned registry_expire(uint64_t now_unix_ns, uint64_t ttl_ns)
{
	unsigned kept = 0, removed = 0;

	pthread_mutex_lock(&lock);
	if (on_observer())
		file_waiting();
	for (unsigned i = 0; i < nseries; i++) {
		struct series *s = series[i];

		if (!series_expired(s, now_unix_ns, ttl_ns)) {
			series[kept++] = s;
			continue;
		}
		index_remove(s);
		free(s->text);
		free(s->exp);
		free(s);
		removed++;
	}
	nseries = kept;
	if (removed) {
		epoch++;
		recount_capped_values();
		forget_empty_families();
	}
	pthread_mutex_unlock(&lock);
	return removed;
}

void registry_walk(void (*fn)(const struct registry_series *s, void *arg),
		   void *arg)
{
	pthread_mutex_lock(&lock);
	if (on_observer())
		file_waiting();
	for (unsigned i = 0; i < nseries; i++) {
		struct registry_series view = view_of(series[i]);

		fn(&view, arg);
	}
	pthread_mutex_unlock(&lock);
}

uint64_t registry_dropped(void)
{
	uint64_t n;

	pthread_mutex_lock(&lock);
	n = dropped_series_limit;
	pthread_mutex_unlock(&lock);
	return n;
}

unsigned registry_series_count(void)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = nseries;
	pthread_mutex_unlock(&lock);
	return n;
}

static void free_service(const char *name, void *value, void *arg)
{
	struct service *svc = value;

	(void)name;
	(void)arg;
	for (int cap = 0; cap < REGISTRY_CAP_COUNT; cap++)
		strmap_clear(&svc->capped[cap].values);
	free(svc);
}

void registry_free(void)
{
	pthread_mutex_lock(&lock);
	/* What waits is dropped with its series. */
	nwaiting = 0;
	observer_known = false;
	epoch++;
	for (unsigned i = 0; i < nseries; i++) {
		free(series[i]->exp);
		free(series[i]->text);
		free(series[i]);
	}
	free(series);
	series = NULL;
	nseries = series_cap = 0;
	nfamilies = 0;
	free(index_slots);
	index_slots = NULL;
	index_nslots = 0;
	strmap_each(&services, free_service, NULL);
	strmap_clear(&services);
	strmap_clear(&holds);
	for (unsigned i = 0; i < nlabel_caps; i++)
		strmap_clear(&label_caps[i].set.values);
	nlabel_caps = 0;
	pthread_mutex_unlock(&lock);
}

/* ---- sonde's own metrics ---------------------------------------------- */

static void collect_series(const struct self_metric *m, struct self_sink *sink)
{
	(void)m;
	self_emit_u64(sink, NULL, registry_series_count());
}

struct overflow_collect {
	struct self_sink *sink;
	enum registry_cap cap;
};

static void emit_service_overflows(const char *name, void *value, void *arg)
{
	const struct overflow_collect *c = arg;
	const struct service *svc = value;
	const char *values[] = { name };

	self_emit_u64(c->sink, values, svc->capped[c->cap].overflows);
}

static void collect_overflows(enum registry_cap cap, struct self_sink *sink)
{
	struct overflow_collect c = { sink, cap };

	pthread_mutex_lock(&lock);
	strmap_each(&services, emit_service_overflows, &c);
	pthread_mutex_unlock(&lock);
}

static void collect_route_overflows(const struct self_metric *m,
				    struct self_sink *sink)
{
	(void)m;
	collect_overflows(REGISTRY_CAP_ROUTE, sink);
}

static void collect_peer_overflows(const struct self_metric *m,
				   struct self_sink *sink)
{
	(void)m;
	collect_overflows(REGISTRY_CAP_PEER, sink);
}

static void collect_label_overflows(const struct self_metric *m,
				    struct self_sink *sink)
{
	(void)m;
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < nlabel_caps; i++) {
		const struct label_cap *lc = &label_caps[i];
		const char *values[] = { lc->family->labels[lc->label] };

		self_emit_u64(sink, values, lc->set.overflows);
	}
	pthread_mutex_unlock(&lock);
}

static const struct self_metric series_metric = {
	.name = "sonde_series",
	.otel_name = "sonde.series",
	.unit = "{series}",
	.help = "Live series across all sonde families.",
	.kind = SELF_GAUGE,
	.collect = collect_series,
};

static const struct self_metric route_overflows_metric = {
	.name = "sonde_route_overflows_total",
	.otel_name = "sonde.route.overflows",
	.unit = "{request}",
	.help = "Requests filed under http_route=\"" ROUTE_OVERFLOW
		"\" (gRPC calls under rpc_method) because their "
		"service reached its route cap.",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "service_name" },
	.otel_labels = { "service.name" },
	.collect = collect_route_overflows,
};

static const struct self_metric peer_overflows_metric = {
	.name = "sonde_peer_overflows_total",
	.otel_name = "sonde.peer.overflows",
	.unit = "{measurement}",
	.help = "Measurements filed under server_address=\"" REGISTRY_OVERFLOW
		"\" because their service reached its peer cap.",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "service_name" },
	.otel_labels = { "service.name" },
	.collect = collect_peer_overflows,
};

static const struct self_metric label_overflows_metric = {
	.name = "sonde_label_overflows_total",
	.otel_name = "sonde.label.overflows",
	.unit = "{request}",
	.help = "Requests whose captured header value was filed under "
		"\"" REGISTRY_OVERFLOW "\" because the label reached its cap.",
	.kind = SELF_COUNTER,
	.nlabels = 1,
	.labels = { "label" },
	.otel_labels = { "sonde.label.name" },
	.collect = collect_label_overflows,
};

void registry_register_metrics(void)
{
	unsigned ncaps;

	self_register(&series_metric);
	self_register(&route_overflows_metric);
	self_register(&peer_overflows_metric);
	pthread_mutex_lock(&lock);
	ncaps = nlabel_caps;
	pthread_mutex_unlock(&lock);
	if (ncaps)
		self_register(&label_overflows_metric);
}
