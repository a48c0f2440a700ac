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
 * flag's "key=value,key=value" text. The file knows keys and the flags
 * they stand for, not what a flag does: the caller's setter applies each
 * one. */
#ifndef SONDE_CONFIG_H
#define SONDE_CONFIG_H

#include <stddef.h>

/* Sets the flag called flag ("max-routes") from text, as the command line
 * would. Returns 0, or -1 with a reason in err, which may start with
 * "--FLAG: ". */
typedef int (*config_setter)(void *ctx, const char *flag, const char *text,
			     char *err, size_t errsz);

/* Applies the file at path, one set(ctx, ...) per key or list item.
 * Returns 0, or -1 with one line in err: "PATH:LINE: reason" (unknown key,
 * wrong type, bad value, YAML syntax, nested deeper than 64 levels), or
 * "PATH: reason" when it cannot be read, is not a regular file or is
 * larger than 1 MiB. */
int config_load(const char *path, config_setter set, void *ctx, char *err,
		size_t errsz);

#endif
