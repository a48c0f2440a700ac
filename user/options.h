/* Command-line flags. */
#ifndef SONDE_OPTIONS_H
#define SONDE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

/* --uprobe flags accepted at most. */
#define OPTIONS_MAX_UPROBES 64

struct sonde_options {
	char listen_host[64]; /* numeric address, brackets removed */
	char listen_port[8];
	uint32_t pid;  /* 0: every process */
	uint16_t port; /* 0: every port */
	unsigned max_routes;
	unsigned max_peers;
	unsigned max_series;
	unsigned max_connections; /* to the HTTP endpoint */
	const char *tls_cert;	  /* PEM files for TLS on the endpoint */
	const char *tls_key;
	const char *auth_file; /* basic auth users, see auth.h */
	bool check;	       /* --check: report host support, exit */
	bool no_tls;	       /* --no-tls: leave OpenSSL alone */
	const char *uprobes[OPTIONS_MAX_UPROBES]; /* BINARY:SYMBOL */
	unsigned nuprobes;
	struct histogram_bounds buckets;
	bool verbose;
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

/* Splits "127.0.0.1:9464" or "[::1]:9464" into host and port. Returns 0,
 * or -1 with a reason in err. */
int options_parse_listen(const char *text, struct sonde_options *o, char *err,
			 size_t errsz);

#endif
