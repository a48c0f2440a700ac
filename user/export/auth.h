/* HTTP basic authentication for /metrics: users and crypt(3) password
 * hashes from a file, one "user:hash" per line (blank lines and lines
 * starting with '#' are ignored). Make a hash with `openssl passwd -6` or
 * `mkpasswd -m yescrypt`; plain-text passwords are refused. */
#ifndef SONDE_AUTH_H
#define SONDE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* Loads the file, replacing any users loaded before. Returns 0, or -1 with
 * "FILE:LINE: reason" (or "FILE: reason") in err[0..errsz). */
int auth_load(const char *path, char *err, size_t errsz);

/* True once a file with at least one user is loaded. */
bool auth_enabled(void);

/* True when user is known and password matches its hash. Takes as long for
 * an unknown user as for a wrong password. user and password may be NULL
 * (no credentials sent): false. */
bool auth_check(const char *user, const char *password);

void auth_free(void);

#endif
