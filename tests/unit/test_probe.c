/* The open-addressing table of util/probe.h against a plain array of
 * what it should hold: every key stays found through growing and
 * through deleting, with keys spread well and with keys piled at the
 * end of the table, whose runs wrap around to its start. */
#include "util/probe.h"
#include "unit.h"

#define NKEYS 3000

/* Key 0 marks a free slot. */
struct item {
	uint32_t key;
	uint32_t value;
};

static size_t spread_home(const void *s, size_t n)
{
	uint64_t h = ((const struct item *)s)->key * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> (64 - __builtin_ctzll(n)));
}

/* Every key's home is one of the last three slots: one long run that
 * wraps. */
static size_t piled_home(const void *s, size_t n)
{
	return n - 1 - ((const struct item *)s)->key % 3;
}

static bool item_used(const void *s)
{
	return ((const struct item *)s)->key != 0;
}

/* The slot of key: its own, or the free one it would take. */
static size_t find(const struct probe_table *t, uint32_t key)
{
	struct item probe = { key, 0 };
	size_t i = t->home(&probe, t->nslots);
	const struct item *it;

	while ((it = probe_slot(t, i))->key && it->key != key)
		i = probe_next(t, i);
	return i;
}

static bool put(struct probe_table *t, uint32_t key, uint32_t value)
{
	struct item *it;

	if (!probe_grow(t))
		return false;
	it = probe_slot(t, find(t, key));
	if (!it->key)
		t->nused++;
	it->key = key;
	it->value = value;
	return true;
}

static void del(struct probe_table *t, uint32_t key)
{
	size_t i = find(t, key);

	if (((struct item *)probe_slot(t, i))->key)
		probe_delete(t, i);
}

/* Whether t holds exactly the keys present[k] says, key k with value
 * 7 * k, and no other. */
static bool holds(const struct probe_table *t, const bool *present)
{
	size_t n = 0, used = 0;

	for (uint32_t k = 1; k <= NKEYS; k++) {
		const struct item *it = probe_slot(t, find(t, k));

		if (present[k] != (it->key == k))
			return false;
		if (present[k] && it->value != 7 * k)
			return false;
		n += present[k];
	}
	for (size_t i = 0; i < t->nslots; i++)
		used += item_used(probe_slot(t, i));
	return n == t->nused && used == n && 2 * n <= t->nslots;
}

static void grow_then_delete(size_t (*home)(const void *, size_t),
			     uint32_t seed)
{
	struct probe_table t = { .size = sizeof(struct item),
				 .home = home,
				 .used = item_used };
	static bool present[NKEYS + 1];
	bool ok = true;

	memset(present, 0, sizeof(present));
	for (uint32_t k = 1; k <= NKEYS; k++) {
		ok &= put(&t, k, 7 * k);
		present[k] = true;
	}
	CHECK(ok);
	CHECK(t.nused == NKEYS && t.nslots == 8192);
	CHECK(holds(&t, present));

	/* Half the keys, at random, one at a time; then the rest back. */
	for (int i = 0; i < NKEYS / 2; i++) {
		uint32_t k = 1 + unit_xorshift32(&seed) % NKEYS;

		del(&t, k);
		present[k] = false;
	}
	CHECK(holds(&t, present));
	for (uint32_t k = 1; k <= NKEYS; k += 2) {
		ok &= put(&t, k, 7 * k);
		present[k] = true;
	}
	CHECK(ok);
	CHECK(holds(&t, present));
	for (uint32_t k = 1; k <= NKEYS; k++) {
		del(&t, k);
		present[k] = false;
	}
	CHECK(t.nused == 0 && holds(&t, present));
	probe_free(&t);
	CHECK(!t.slots && t.nslots == 0 && t.nused == 0);
}

TEST(keys_spread_well_stay_found_through_growing_and_deleting)
{
	grow_then_delete(spread_home, 12345);
}

TEST(keys_whose_run_wraps_stay_found_through_deleting)
{
	grow_then_delete(piled_home, 777);
}

TEST(deleting_the_middle_of_a_wrapped_run_moves_its_tail_back)
{
	struct probe_table t = { .size = sizeof(struct item),
				 .home = piled_home,
				 .used = item_used };
	const struct item *first;

	/* Keys 3, 6 and 9 all call slot 63 home: 63, then 0, then 1. */
	CHECK(put(&t, 3, 21) && put(&t, 6, 42) && put(&t, 9, 63));
	CHECK(t.nslots == 64);
	CHECK(((struct item *)probe_slot(&t, 63))->key == 3);
	CHECK(((struct item *)probe_slot(&t, 1))->key == 9);
	del(&t, 3);
	first = probe_slot(&t, 63);
	CHECK(first->key == 6 && first->value == 42);
	CHECK(((struct item *)probe_slot(&t, 0))->key == 9);
	CHECK(!item_used(probe_slot(&t, 1)));
	CHECK(t.nused == 2);
	probe_free(&t);
}

UNIT_MAIN("probe",
	  UNIT_CASE(keys_spread_well_stay_found_through_growing_and_deleting),
	  UNIT_CASE(keys_whose_run_wraps_stay_found_through_deleting),
	  UNIT_CASE(deleting_the_middle_of_a_wrapped_run_moves_its_tail_back))
