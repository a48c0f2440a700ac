/* The HTTP endpoint (libmicrohttpd, on its own thread): /metrics in the
 * Prometheus text format, gzip-compressed when the scraper accepts it,
 * /healthz (the process answers) and /readyz (programs attached and events
 * being consumed). */
#ifndef SONDE_HTTPD_H
#define SONDE_HTTPD_H

#include <stdbool.h>

#include "strbuf.h"

struct httpd_hooks {
	/* Appends the whole exposition. Called on the HTTP thread. */
	void (*render_metrics)(struct strbuf *sb);
	/* Returns true when ready; otherwise sets *why to a short reason. */
	bool (*ready)(const char **why);
};

/* Serves on listen_fd, a socket already bound and listening (so address
 * errors are reported by the caller). Returns 0, or -1 after logging why. */
int httpd_start(int listen_fd, const struct httpd_hooks *hooks);

void httpd_stop(void);

/* True when an Accept-Encoding value accepts gzip: a "gzip" (or "*")
 * coding whose q-value is not 0. NULL accepts nothing. */
bool httpd_accepts_gzip(const char *accept_encoding);

#endif
