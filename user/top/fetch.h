/* `sonde top`'s reads of a running sonde's /metrics, over HTTP or HTTPS
 * with libcurl, with basic auth when asked. */
#ifndef SONDE_TOP_FETCH_H
#define SONDE_TOP_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

struct top_source {
	char *url;	       /* .../metrics */
	const char *ca_file;   /* --tls-ca: verify sonde's certificate */
	bool insecure;	       /* --tls-insecure: do not */
	const char *auth_file; /* --basic-auth-file */
	char *userpwd;	       /* "user:password" from it */
	void *curl;	       /* kept between reads: one connection */
};

/* Sets up src from url (a base URL gets /metrics appended) and the
 * credentials file. Returns 0, or -1 with a one-line message in err. */
int top_source_open(struct top_source *src, const char *url, char *err,
		    size_t errsz);

/* Reads the body of one 200 answer into body (emptied first). Returns
 * 0, or -1 with a one-line message in err saying what failed: no sonde
 * there, credentials refused, TLS, another HTTP status. */
int top_fetch(struct top_source *src, struct strbuf *body, char *err,
	      size_t errsz);

void top_source_close(struct top_source *src);

#endif
