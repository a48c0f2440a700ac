/* `sonde top`: a live terminal view of every service's rate, errors and
 * latency, from a running sonde's /metrics. top.c reads the options and
 * sonde, and prints the one-shot table and JSON; tui.c draws the live
 * view with ncurses. */
#ifndef SONDE_TOP_TOP_H
#define SONDE_TOP_TOP_H

#include <stdint.h>

#include "top/fetch.h"
#include "top/snapshot.h"
#include "top/table.h"

struct top_session {
	struct top_source src;
	double interval;	  /* seconds between reads */
	double error_threshold;	  /* error ratio that colours a row */
	double latency_threshold; /* p99 in seconds that colours a row */
	char host[256];
	/* The last two reads; prev is empty before the second. */
	struct top_snapshot prev, cur;
	uint64_t prev_ns, cur_ns;
	unsigned reads;
};

/* `sonde top ARGS`: argv[0] is "top". Returns the exit code. */
int top_main(int argc, char **argv);

/* Reads sonde once more: cur becomes prev. Returns 0, or -1 with a
 * one-line message in err (the reads kept are unchanged). */
int top_session_read(struct top_session *s, char *err, size_t errsz);

/* Seconds between the last two reads. */
double top_session_seconds(const struct top_session *s);

/* A duration as the tables show it ("850us", "1.25ms", "2.50s"); "-"
 * for NaN. */
void top_format_duration(double seconds, char *out, size_t outsz);

/* The live view; returns the exit code. */
int top_tui_run(struct top_session *s);

#endif
