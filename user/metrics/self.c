#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "metrics/self.h"
#include "util/clock.h"
#include "util/log.h"

/* sonde has about 25 self-metrics. */
#define SELF_MAX_METRICS 64

/* Written under lock by the registering thread; nmetrics is published
 * after its entry, so a reader that loads it sees every entry below it
 * without the lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const struct self_metric *metrics[SELF_MAX_METRICS];
static unsigned nmetrics;
static uint64_t start_unix_ns;

/* Every label has a name in both worlds: exporters write them unchecked. */
static bool labels_named(const struct self_metric *m)
{
	if (m->nlabels > SELF_MAX_LABELS)
		return false;
	for (unsigned i = 0; i < m->nlabels; i++)
		if (!m->labels[i] || !m->otel_labels[i])
			return false;
	return true;
}

int self_register(const struct self_metric *m)
{
	int err = 0;

	if (!labels_named(m)) {
		log_error("self-metric %s: a label lacks its Prometheus or "
			  "OTLP name",
			  m->name);
		return -1;
	}
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < nmetrics; i++) {
		if (metrics[i] == m)
			goto out;
		if (strcmp(metrics[i]->name, m->name) == 0) {
			log_error("self-metric %s registered twice", m->name);
			err = -1;
			goto out;
		}
	}
	if (nmetrics == SELF_MAX_METRICS) {
		log_error("self-metric %s: more than %d self-metrics", m->name,
			  SELF_MAX_METRICS);
		err = -1;
		goto out;
	}
	if (!nmetrics)
		__atomic_store_n(&start_unix_ns, clock_realtime_ns(),
				 __ATOMIC_RELAXED);
	metrics[nmetrics] = m;
	__atomic_store_n(&nmetrics, nmetrics + 1, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&lock);
	return err;
}

void self_each(void (*fn)(const struct self_metric *m, void *arg), void *arg)
{
	unsigned n = __atomic_load_n(&nmetrics, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i < n; i++)
		fn(metrics[i], arg);
}

uint64_t self_start_unix_ns(void)
{
	return __atomic_load_n(&start_unix_ns, __ATOMIC_RELAXED);
}

void self_reset(void)
{
	pthread_mutex_lock(&lock);
	__atomic_store_n(&nmetrics, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&start_unix_ns, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lock);
}
