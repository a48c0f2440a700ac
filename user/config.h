/* The YAML config file (--config FILE), parsed with libyaml. Each key maps
 * to a flag and is applied with the flag's own setter (options_set), so
 * the file accepts exactly what the command line does:
 *
 *   listen, pid, port, buckets, max_routes, max_peers, max_series,
 *   series_ttl, verbose                      -> --listen, --pid, ...
 *   endpoint: tls_cert, tls_key, basic_auth_file, max_connections
 *   select: include, exclude                 -> --include, --exclude
 *   services                                 -> --service
 *   labels                                   -> --label
 *   http: capture_headers                    -> --capture-header
 *
 * A list item that is a mapping ({exe: /usr/sbin/nginx}) becomes the
 * flag's "key=value,key=value" text. */
#ifndef SONDE_CONFIG_H
#define SONDE_CONFIG_H

#include <stddef.h>

#include "options.h"

/* Applies the file at path to o. Returns 0, or -1 with one line in err:
 * "PATH:LINE: reason" (unknown key, wrong type, bad value, YAML syntax),
 * or "PATH: reason" when it cannot be read. */
int config_load(const char *path, struct sonde_options *o, char *err,
		size_t errsz);

#endif
