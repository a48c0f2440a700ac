/* Minimal unit-test harness: each test file defines tests with TEST() and
 * lists them in a main() built from UNIT_MAIN(). A failing CHECK prints the
 * file, line and expression, and the run ends with the plain closing line
 * "N passed, N failed" that CI reads. */
#ifndef SONDE_UNIT_H
#define SONDE_UNIT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failed_checks;

#define CHECK(expr)                                                            \
	do {                                                                   \
		if (!(expr)) {                                                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #expr);                              \
			unit_failed_checks++;                                  \
		}                                                              \
	} while (0)

#define CHECK_STR(got, want)                                                 \
	do {                                                                 \
		const char *g_ = (got), *w_ = (want);                        \
		if (!g_ || strcmp(g_, w_) != 0) {                            \
			fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n",  \
				__FILE__, __LINE__, g_ ? g_ : "(null)", w_); \
			unit_failed_checks++;                                \
		}                                                            \
	} while (0)

#define TEST(name) static void name(void)

/* xorshift32: pseudo-random numbers from a fixed seed, so fuzz-style tests
 * feed the same inputs on every run. */
static inline uint32_t unit_xorshift32(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

struct unit_case {
	const char *name;
	void (*fn)(void);
};

static inline int unit_run(const char *suite, const struct unit_case *cases,
			   int n)
{
	int passed = 0, failed = 0;

	for (int i = 0; i < n; i++) {
		int before = unit_failed_checks;

		cases[i].fn();
		if (unit_failed_checks == before) {
			passed++;
		} else {
			failed++;
			fprintf(stderr, "FAIL %s.%s\n", suite, cases[i].name);
		}
	}
	printf("%s: %d passed, %d failed\n", suite, passed, failed);
	return failed ? 1 : 0;
}

/* Removes dir and all in it, made writable first: the go command leaves
 * its module cache read-only. A failure is said on stderr; it fails no
 * test. */
static inline void unit_remove_dir(const char *dir)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", dir, dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* unit_run inside a scratch directory: makes dir from its mkdtemp
 * template (rewritten in place), runs setup (when not NULL) and the
 * cases, then removes dir with all in it. Returns unit_run's result, or
 * 1 when dir cannot be made. */
static inline int unit_run_in_dir(const char *suite,
				  const struct unit_case *cases, int n,
				  char *dir, void (*setup)(void))
{
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	if (setup)
		setup();
	rc = unit_run(suite, cases, n);
	unit_remove_dir(dir);
	return rc;
}

#define UNIT_CASE(fn)   \
	{               \
#fn, fn \
	}
#define UNIT_MAIN(suite, ...)                                            \
	int main(void)                                                   \
	{                                                                \
		static const struct unit_case cases[] = { __VA_ARGS__ }; \
		return unit_run(suite, cases,                            \
				sizeof(cases) / sizeof(cases[0]));       \
	}

/* UNIT_MAIN for suites that work in a scratch directory: see
 * unit_run_in_dir. */
#define UNIT_MAIN_IN_DIR(suite, dir, setup, ...)                              \
	int main(void)                                                        \
	{                                                                     \
		static const struct unit_case cases[] = { __VA_ARGS__ };      \
		return unit_run_in_dir(suite, cases,                          \
				       sizeof(cases) / sizeof(cases[0]), dir, \
				       setup);                                \
	}

#endif
