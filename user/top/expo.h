/* `sonde top`'s reading of a Prometheus text exposition
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): one
 * sample line at a time, parsed in place. Pure functions. */
#ifndef SONDE_TOP_EXPO_H
#define SONDE_TOP_EXPO_H

#define EXPO_MAX_LABELS 16

struct expo_label {
	const char *name;
	const char *value; /* unescaped */
};

struct expo_sample {
	const char *name;
	struct expo_label labels[EXPO_MAX_LABELS];
	int nlabels;
	double value;
};

enum expo_line {
	EXPO_SAMPLE = 0,
	EXPO_SKIP,   /* a comment or a blank line */
	EXPO_BROKEN, /* not a sample line: ignored, counted by the caller */
};

/* Parses one line (no newline), writing NULs and unescaped label values
 * into it; s points into line until it changes. Labels past
 * EXPO_MAX_LABELS make the line EXPO_BROKEN. */
enum expo_line expo_parse_line(char *line, struct expo_sample *s);

/* The value of label name in s, or NULL. */
const char *expo_label(const struct expo_sample *s, const char *name);

#endif
