#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/auth.h"

#define AUTH_MAX_USERS 64
#define AUTH_LINE_MAX 512

struct user {
	char *name;
	char *hash;
};

static struct user users[AUTH_MAX_USERS];
static size_t nusers;

/* Hashes password with the algorithm and salt in setting; returns a copy
 * of the result, or NULL when setting is not a hash crypt(3) supports. */
static char *hash_with(const char *password, const char *setting)
{
	struct crypt_data *data = calloc(1, sizeof(*data));
	char *out = NULL, *h;

	if (!data)
		return NULL;
	h = crypt_r(password, setting, data);
	if (h && h[0] != '*')
		out = strdup(h);
	free(data);
	return out;
}

/* Compares in time that depends only on the lengths. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* "user:$6$salt$hash" -> user and hash, validated. */
static int parse_line(char *line, struct user *u, const char **why)
{
	char *colon = strchr(line, ':'), *check;

	if (!colon || colon == line) {
		*why = "expected user:hash";
		return -1;
	}
	*colon = '\0';
	if (colon[1] != '$') {
		*why = "password is not a crypt(3) hash (make one with: "
		       "openssl passwd -6)";
		return -1;
	}
	check = hash_with("sonde-check", colon + 1);
	if (!check) {
		*why = "hash algorithm not supported by crypt(3)";
		return -1;
	}
	free(check);
	u->name = strdup(line);
	u->hash = strdup(colon + 1);
	if (!u->name || !u->hash) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

static void strip_newline(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

int auth_load(const char *path, char *err, size_t errsz)
{
	char line[AUTH_LINE_MAX];
	const char *why;
	unsigned lineno = 0;
	FILE *f;

	auth_free();
	f = fopen(path, "re");
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		strip_newline(line);
		if (!line[0] || line[0] == '#')
			continue;
		if (nusers == AUTH_MAX_USERS) {
			why = "too many users (at most 64)";
			goto bad;
		}
		if (parse_line(line, &users[nusers], &why)) {
			free(users[nusers].name);
			free(users[nusers].hash);
			goto bad;
		}
		nusers++;
	}
	fclose(f);
	if (!nusers) {
		snprintf(err, errsz, "%s: no users", path);
		return -1;
	}
	return 0;
bad:
	fclose(f);
	snprintf(err, errsz, "%s:%u: %s", path, lineno, why);
	auth_free();
	return -1;
}

bool auth_enabled(void)
{
	return nusers > 0;
}

bool auth_check(const char *user, const char *password)
{
	const struct user *u = NULL;
	char *h;
	bool ok;

	if (!user || !password || !nusers)
		return false;
	for (size_t i = 0; i < nusers; i++)
		if (strcmp(users[i].name, user) == 0)
			u = &users[i];
	/* An unknown user is hashed against a known hash all the same, so
	 * the answer takes as long either way. */
	h = hash_with(password, u ? u->hash : users[0].hash);
	ok = u && h && same_secret(h, u->hash);
	free(h);
	return ok;
}

void auth_free(void)
{
	for (size_t i = 0; i < nusers; i++) {
		free(users[i].name);
		free(users[i].hash);
	}
	memset(users, 0, sizeof(users));
	nusers = 0;
}
