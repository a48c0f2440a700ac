/* The config file: a YAML mapping walked with libyaml's document API
 * (https://pyyaml.org/wiki/LibYAML), each key applied through the flag it
 * stands for. To give a new flag a key, add one row to config_keys. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config/config.h"
#include "util/strbuf.h"

enum config_shape {
	CONFIG_SECTION, /* a mapping of further keys */
	CONFIG_SCALAR,	/* one value */
	CONFIG_BOOL,	/* true or false, for a flag without argument */
	CONFIG_JOINED,	/* a list, passed comma-joined (buckets) */
	CONFIG_LIST,	/* a list, each item passed as one repeated flag */
};

struct config_key {
	const char *path; /* "endpoint.tls_cert" */
	const char *flag; /* long flag name, without "--" */
	enum config_shape shape;
};

static const struct config_key config_keys[] = {
	{ "listen", "listen", CONFIG_SCALAR },
	{ "pid", "pid", CONFIG_SCALAR },
	{ "port", "port", CONFIG_SCALAR },
	{ "buckets", "buckets", CONFIG_JOINED },
	{ "max_routes", "max-routes", CONFIG_SCALAR },
	{ "max_peers", "max-peers", CONFIG_SCALAR },
	{ "max_series", "max-series", CONFIG_SCALAR },
	{ "max_tracked_connections", "max-tracked-connections", CONFIG_SCALAR },
	{ "series_ttl", "series-ttl", CONFIG_SCALAR },
	{ "verbose", "verbose", CONFIG_BOOL },
	{ "endpoint", NULL, CONFIG_SECTION },
	{ "endpoint.tls_cert", "tls-cert", CONFIG_SCALAR },
	{ "endpoint.tls_key", "tls-key", CONFIG_SCALAR },
	{ "endpoint.basic_auth_file", "basic-auth-file", CONFIG_SCALAR },
	{ "endpoint.max_connections", "max-connections", CONFIG_SCALAR },
	{ "endpoint.native_histograms", "native-histograms", CONFIG_BOOL },
	{ "endpoint.native_histogram_schema", "native-histogram-schema",
	  CONFIG_SCALAR },
	{ "endpoint.native_histogram_max_buckets",
	  "native-histogram-max-buckets", CONFIG_SCALAR },
	{ "select", NULL, CONFIG_SECTION },
	{ "select.include", "include", CONFIG_LIST },
	{ "select.exclude", "exclude", CONFIG_LIST },
	{ "services", "service", CONFIG_LIST },
	{ "labels", "label", CONFIG_LIST },
	{ "http", NULL, CONFIG_SECTION },
	{ "http.capture_headers", "capture-header", CONFIG_LIST },
	{ "uprobes", "uprobe", CONFIG_LIST },
	{ "no_tls", "no-tls", CONFIG_BOOL },
	{ "bpf_stats", "bpf-stats", CONFIG_BOOL },
	{ "hooks", "hooks", CONFIG_SCALAR },
	{ "trace_propagation", "trace-propagation", CONFIG_BOOL },
	{ "otlp", NULL, CONFIG_SECTION },
	{ "otlp.endpoint", "otlp-endpoint", CONFIG_SCALAR },
};

#define CONFIG_PATH_MAX 96
/* Longest text one key or list item becomes. */
#define CONFIG_VALUE_MAX 2048

struct config_ctx {
	const char *file;
	yaml_document_t *doc;
	config_setter set;
	void *set_ctx;
	char *err;
	size_t errsz;
};

static int fail(struct config_ctx *c, const yaml_node_t *at, const char *fmt,
		...) __attribute__((format(printf, 3, 4)));

static int fail(struct config_ctx *c, const yaml_node_t *at, const char *fmt,
		...)
{
	char reason[512], shown[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	escape_controls(reason, shown, sizeof(shown));
	snprintf(c->err, c->errsz, "%s:%lu: %s", c->file,
		 (unsigned long)at->start_mark.line + 1, shown);
	return -1;
}

static const struct config_key *key_find(const char *path)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]);
	     i++)
		if (strcmp(config_keys[i].path, path) == 0)
			return &config_keys[i];
	return NULL;
}

static const char *shape_of(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a single value";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* A plain "~", "null" or nothing at all: YAML's null. */
static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = scalar(n);
	return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

/* Hands text to the flag's setter; its "--flag: why" becomes "key: why". */
static int set(struct config_ctx *c, const struct config_key *k,
	       const yaml_node_t *at, const char *text)
{
	char why[512];
	size_t flaglen = strlen(k->flag);

	if (!c->set(c->set_ctx, k->flag, text, why, sizeof(why)))
		return 0;
	if (strncmp(why, "--", 2) == 0 &&
	    strncmp(why + 2, k->flag, flaglen) == 0 && why[2 + flaglen] == ':')
		return fail(c, at, "%s%s", k->path, why + 2 + flaglen);
	return fail(c, at, "%s: %s", k->path, why);
}

static int append(char *buf, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n >= CONFIG_VALUE_MAX)
		return -1;
	memcpy(buf + *len, s, n + 1);
	*len += n;
	return 0;
}

/* {exe: /x, pid: 3} -> "exe=/x,pid=3"; values may not hold a comma. */
static int mapping_text(struct config_ctx *c, const struct config_key *k,
			const yaml_node_t *map, char *buf)
{
	size_t len = 0;

	buf[0] = '\0';
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *key = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *val = yaml_document_get_node(c->doc, p->value);

		if (key->type != YAML_SCALAR_NODE ||
		    val->type != YAML_SCALAR_NODE || is_null(val))
			return fail(c, val,
				    "%s: each entry is key: value, "
				    "with a single value",
				    k->path);
		if (strchr(scalar(val), ',') || strchr(scalar(key), '='))
			return fail(c, val,
				    "%s: '%s' may not contain ',' (or '=' in "
				    "the key)",
				    k->path, scalar(val));
		if ((len && append(buf, &len, ",")) ||
		    append(buf, &len, scalar(key)) || append(buf, &len, "=") ||
		    append(buf, &len, scalar(val)))
			return fail(c, val, "%s: entry too long", k->path);
	}
	return 0;
}

static int apply_list(struct config_ctx *c, const struct config_key *k,
		      const yaml_node_t *seq)
{
	char text[CONFIG_VALUE_MAX];

	for (yaml_node_item_t *i = seq->data.sequence.items.start;
	     i < seq->data.sequence.items.top; i++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *i);

		if (item->type == YAML_MAPPING_NODE) {
			if (mapping_text(c, k, item, text) ||
			    set(c, k, item, text))
				return -1;
		} else if (item->type == YAML_SCALAR_NODE && !is_null(item)) {
			if (set(c, k, item, scalar(item)))
				return -1;
		} else {
			return fail(c, item,
				    "%s: a list item is %s, expected a value "
				    "or a mapping",
				    k->path, shape_of(item));
		}
	}
	return 0;
}

static int apply_joined(struct config_ctx *c, const struct config_key *k,
			const yaml_node_t *seq)
{
	char text[CONFIG_VALUE_MAX];
	size_t len = 0;

	text[0] = '\0';
	for (yaml_node_item_t *i = seq->data.sequence.items.start;
	     i < seq->data.sequence.items.top; i++) {
		yaml_node_t *item = yaml_document_get_node(c->doc, *i);

		if (item->type != YAML_SCALAR_NODE || is_null(item))
			return fail(c, item,
				    "%s: a list item is %s, expected "
				    "a single value",
				    k->path, shape_of(item));
		if ((len && append(text, &len, ",")) ||
		    append(text, &len, scalar(item)))
			return fail(c, item, "%s: list too long", k->path);
	}
	return set(c, k, seq, text);
}

static int apply_bool(struct config_ctx *c, const struct config_key *k,
		      const yaml_node_t *v)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };

	for (int i = 0; i < 3; i++) {
		if (strcasecmp(scalar(v), yes[i]) == 0)
			return set(c, k, v, "true");
		if (strcasecmp(scalar(v), no[i]) == 0)
			return set(c, k, v, "false");
	}
	return fail(c, v, "%s: '%s' is not true or false", k->path, scalar(v));
}

static int walk_mapping(struct config_ctx *c, const yaml_node_t *map,
			const char *prefix);

static int apply_key(struct config_ctx *c, const struct config_key *k,
		     const yaml_node_t *v)
{
	bool list = k->shape == CONFIG_LIST || k->shape == CONFIG_JOINED;

	if (list && is_null(v))
		return 0; /* "include:" with nothing under it */
	if (is_null(v))
		return fail(c, v, "%s: no value given", k->path);
	if (k->shape == CONFIG_SECTION) {
		if (v->type != YAML_MAPPING_NODE)
			return fail(c, v, "%s: expected a mapping, got %s",
				    k->path, shape_of(v));
		return walk_mapping(c, v, k->path);
	}
	if (k->shape == CONFIG_JOINED && v->type == YAML_SEQUENCE_NODE)
		return apply_joined(c, k, v);
	if (k->shape == CONFIG_LIST) {
		if (v->type != YAML_SEQUENCE_NODE)
			return fail(c, v, "%s: expected a list, got %s",
				    k->path, shape_of(v));
		return apply_list(c, k, v);
	}
	if (v->type != YAML_SCALAR_NODE)
		return fail(c, v, "%s: expected a single value, got %s",
			    k->path, shape_of(v));
	if (k->shape == CONFIG_BOOL)
		return apply_bool(c, k, v);
	return set(c, k, v, scalar(v));
}

static int walk_mapping(struct config_ctx *c, const yaml_node_t *map,
			const char *prefix)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *key = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
		const struct config_key *k;
		char path[CONFIG_PATH_MAX];

		if (key->type != YAML_SCALAR_NODE)
			return fail(c, key, "a key is %s, expected a name",
				    shape_of(key));
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p;
		     q++) {
			yaml_node_t *prev =
				yaml_document_get_node(c->doc, q->key);

			if (prev->type == YAML_SCALAR_NODE &&
			    strcmp(scalar(prev), scalar(key)) == 0)
				return fail(
					c, key,
					"duplicate key '%s' (first on line "
					"%lu)",
					scalar(key),
					(unsigned long)prev->start_mark.line +
						1);
		}
		snprintf(path, sizeof(path), "%s%s%s", prefix,
			 *prefix ? "." : "", scalar(key));
		k = key_find(path);
		if (!k) {
			if (*prefix)
				return fail(c, key, "unknown key '%s' in '%s'",
					    scalar(key), prefix);
			return fail(c, key, "unknown key '%s'", scalar(key));
		}
		if (apply_key(c, k, val))
			return -1;
	}
	return 0;
}

/* Past these a file is refused before libyaml builds it: sonde's whole
 * configuration, every section and list written out, is a few KiB and
 * four levels deep; libyaml's time grows with the square of the nesting
 * (100,000 levels took 51 s). */
#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_DEPTH 64

static const char *file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

/* The whole file at path, NUL-terminated, in *text (free() it): a regular
 * file of at most CONFIG_MAX_BYTES. Opened without blocking, so a FIFO
 * is refused, not waited on. */
static int read_file(const char *path, char **text, size_t *len, char *err,
		     size_t errsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	ssize_t n = 0;
	char *buf;

	if (fd < 0) {
		snprintf(err, errsz, "%s: cannot open the config file: %s",
			 path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st)) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s: is %s, expected a YAML file", path,
			 file_kind(st.st_mode));
		close(fd);
		return -1;
	}
	if (st.st_size > CONFIG_MAX_BYTES) {
		snprintf(err, errsz,
			 "%s: %lld bytes, more than the %u KiB a config file "
			 "may have",
			 path, (long long)st.st_size, CONFIG_MAX_BYTES >> 10);
		close(fd);
		return -1;
	}
	/* One byte more than the limit tells a file that grew since. */
	buf = malloc(CONFIG_MAX_BYTES + 2);
	*len = 0;
	while (buf && *len <= CONFIG_MAX_BYTES &&
	       (n = read(fd, buf + *len, CONFIG_MAX_BYTES + 1 - *len)) > 0)
		*len += n;
	close(fd);
	if (!buf || n < 0 || *len > CONFIG_MAX_BYTES) {
		snprintf(err, errsz, "%s: %s", path,
			 !buf  ? "out of memory" :
			 n < 0 ? strerror(errno) :
				 "grew past the size a config file may have");
		free(buf);
		return -1;
	}
	buf[*len] = '\0';
	*text = buf;
	return 0;
}

/* Walks the file's events alone (no document built) and refuses one
 * nested deeper than CONFIG_MAX_DEPTH, at the line where it goes too
 * deep; a syntax error is left for the load to report. */
static int check_depth(const char *path, const char *text, size_t len,
		       char *err, size_t errsz)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, rc = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errsz, "%s: out of memory", path);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && yaml_parser_parse(&parser, &ev)) {
		if (ev.type == YAML_SEQUENCE_START_EVENT ||
		    ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT ||
			 ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		done = ev.type == YAML_STREAM_END_EVENT;
		if (depth > CONFIG_MAX_DEPTH) {
			snprintf(err, errsz,
				 "%s:%lu: nested deeper than %d levels", path,
				 (unsigned long)ev.start_mark.line + 1,
				 CONFIG_MAX_DEPTH);
			rc = -1;
			done = true;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return rc;
}

int config_load(const char *path, config_setter set, void *ctx, char *err,
		size_t errsz)
{
	struct config_ctx c = { path, NULL, set, ctx, err, errsz };
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	char *text;
	size_t len;
	int rc;

	if (read_file(path, &text, &len, err, errsz))
		return -1;
	if (check_depth(path, text, len, err, errsz)) {
		free(text);
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		free(text);
		snprintf(err, errsz, "%s: out of memory", path);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errsz, "%s:%lu: YAML syntax: %s", path,
			 (unsigned long)parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "unreadable");
		yaml_parser_delete(&parser);
		free(text);
		return -1;
	}
	c.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root || is_null(root))
		rc = 0; /* an empty file changes nothing */
	else if (root->type != YAML_MAPPING_NODE)
		rc = fail(&c, root,
			  "the top level is %s, expected a mapping "
			  "of keys",
			  shape_of(root));
	else
		rc = walk_mapping(&c, root, "");
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	free(text);
	return rc;
}
