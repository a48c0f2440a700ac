/* Command-line flags and the config file (config.h) behind them: every
 * flag has a key in the file, set through the same setter; flags given on
 * the command line override the file. */
#ifndef SONDE_OPTIONS_H
#define SONDE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "metrics/histogram.h"

/* Which tracepoints see reads and writes (bpf/capture.bpf.c). */
enum capture_hooks {
	CAPTURE_HOOKS_AUTO = 0, /* socket ones when the kernel has them */
	CAPTURE_HOOKS_SOCKET,	/* sock:sock_{recv,send}_length (6.3 on) */
	CAPTURE_HOOKS_SYSCALL,	/* syscalls:sys_exit_read and the like */
};

/* A repeatable flag's values (--include, --exclude, ...), owned. */
struct options_list {
	char **items;
	unsigned n;
	bool from_flags; /* the command line replaced the file's list */
};

struct sonde_options {
	char listen_host[64]; /* numeric address, brackets removed */
	char listen_port[8];
	uint32_t pid;  /* 0: every process */
	uint16_t port; /* 0: every port */
	unsigned max_routes;
	unsigned max_peers;
	unsigned max_series;
	unsigned max_connections; /* to the HTTP endpoint */
	unsigned max_tracked;	  /* size of the BPF connection maps */
	const char *tls_cert;	  /* PEM files for TLS on the endpoint */
	const char *tls_key;
	const char *auth_file;	     /* basic auth users, see auth.h */
	const char *otlp_endpoint;   /* --otlp-endpoint, or NULL */
	bool check;		     /* --check: report host support, exit */
	bool no_tls;		     /* --no-tls: leave OpenSSL alone */
	bool bpf_stats;		     /* --bpf-stats: count program runs */
	bool trace_propagation;	     /* --trace-propagation */
	bool native_histograms;	     /* --native-histograms */
	int native_schema;	     /* --native-histogram-schema */
	unsigned native_max_buckets; /* --native-histogram-max-buckets */
	enum capture_hooks hooks;    /* --hooks */
	struct histogram_bounds buckets;
	/* --buckets or the file's buckets was given: its bounds are every
	 * histogram family's, the database ones' finer defaults included. */
	bool buckets_given;
	bool verbose;
	const char *config_path; /* --config FILE */
	bool print_config;	 /* --print-config: print, exit */
	bool from_flags;	 /* setting flags now, not the file */
	struct options_list include, exclude; /* selection.h rules */
	struct options_list services;	      /* selection.h service rules */
	struct options_list capture_headers;  /* labels.h header specs */
	struct options_list labels;	      /* optional labels on /metrics */
	struct options_list uprobes;	      /* --uprobe BINARY:SYMBOL */
	uint64_t series_ttl_ms;		      /* 0: series never expire */
	struct options_list owned;	      /* strings the file set */
};

enum options_result {
	OPTIONS_RUN = 0,   /* start the agent */
	OPTIONS_EXIT = 1,  /* --help or --version was printed: exit 0 */
	OPTIONS_ERROR = 2, /* err holds a one-line reason: exit 2 */
};

/* Fills o from argv (defaults first). On OPTIONS_ERROR, err[0..errsz)
 * says which flag and what is wrong with it. Does not exit. */
enum options_result options_parse(int argc, char **argv,
				  struct sonde_options *o, char *err,
				  size_t errsz);

/* Sets one option by its long flag name ("max-routes", "include"), from
 * text, exactly as the flag would: the config file's entry point. A flag
 * without argument takes "true" or "false". Returns 0, or -1 with a reason
 * in err that starts with "--NAME: ". The value is copied. */
int options_set(struct sonde_options *o, const char *flag, const char *value,
		char *err, size_t errsz);

/* Writes the effective options as a YAML config file that --config
 * accepts again. */
void options_print_yaml(const struct sonde_options *o, FILE *out);

/* Frees what options_parse and options_set allocated. */
void options_free(struct sonde_options *o);

/* Splits "127.0.0.1:9464" or "[::1]:9464" into host and port. Returns 0,
 * or -1 with a reason in err. */
int options_parse_listen(const char *text, struct sonde_options *o, char *err,
			 size_t errsz);

/* "300", "500ms", "30s", "5m", "1h": a duration into *ms (a bare number
 * is seconds; "0" is 0). At most a week. Returns 0, or -1 when text is
 * none of these. */
int options_parse_duration_ms(const char *text, uint64_t *ms);

#endif
