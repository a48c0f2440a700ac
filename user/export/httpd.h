/* The HTTP endpoint (libmicrohttpd, on its own thread): /metrics in the
 * Prometheus text format, gzip-compressed when the scraper accepts it,
 * /healthz (the process answers) and /readyz (programs attached and events
 * being consumed). Optional TLS and basic auth; connection limits and
 * timeouts so a slow or abusive client cannot hold the endpoint. */
#ifndef SONDE_HTTPD_H
#define SONDE_HTTPD_H

#include <stdbool.h>

#include "util/strbuf.h"

struct httpd_hooks {
	/* Appends the whole exposition. Called on the HTTP thread. */
	void (*render_metrics)(struct strbuf *sb);
	/* Returns true when ready; otherwise sets *why to a short reason. */
	bool (*ready)(const char **why);
};

struct httpd_config {
	int listen_fd; /* bound and listening, so the caller reports address
			* errors */
	unsigned max_connections;
	const char *tls_cert_pem; /* NULL: plain HTTP */
	const char *tls_key_pem;
};

/* Serves until httpd_stop(). /metrics asks for basic auth when auth.h has
 * users; /healthz and /readyz never do (probes). The server is started
 * from a short-lived thread that has dropped every capability, so its own
 * thread never holds one, whenever it is started: before the BPF programs
 * load, /healthz and /metrics answer while they do. Returns 0, or -1
 * after logging why. */
int httpd_start(const struct httpd_config *cfg,
		const struct httpd_hooks *hooks);

void httpd_stop(void);

/* True when an Accept-Encoding value accepts gzip: a "gzip" (or "*")
 * coding whose q-value is not 0. NULL accepts nothing. */
bool httpd_accepts_gzip(const char *accept_encoding);

#endif
