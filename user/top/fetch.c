#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top/fetch.h"

/* A read of /metrics gives up after this long: sonde answers a scrape of
 * 10k series well within it. */
#define FETCH_TIMEOUT_MS 5000
/* Bodies beyond this are refused: not sonde's, or not a sane one. */
#define FETCH_MAX_BYTES (512u << 20)

/* "user:password" from the first line of path, like the lines of the
 * server's --basic-auth-file but with the password itself. */
static int read_credentials(const char *path, char **userpwd, char *err,
			    size_t errsz)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t n;

	if (!f) {
		snprintf(err, errsz, "--basic-auth-file %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (!strchr(line, ':') || line[0] == ':') {
		snprintf(err, errsz,
			 "--basic-auth-file %s:1: expected user:password",
			 path);
		return -1;
	}
	*userpwd = strdup(line);
	return *userpwd ? 0 : -1;
}

int top_source_open(struct top_source *src, const char *url, char *err,
		    size_t errsz)
{
	const char *scheme = strstr(url, "://");
	const char *path = scheme ? strchr(scheme + 3, '/') : NULL;
	int n;

	if (!scheme ||
	    (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
		snprintf(err, errsz,
			 "--url %s: expected http://HOST:PORT or "
			 "https://HOST:PORT",
			 url);
		return -1;
	}
	if (!path || strcmp(path, "/") == 0)
		n = asprintf(&src->url, "%.*s/metrics",
			     (int)((path ? path : url + strlen(url)) - url),
			     url);
	else
		n = asprintf(&src->url, "%s", url);
	if (n < 0)
		return -1;
	if (src->auth_file &&
	    read_credentials(src->auth_file, &src->userpwd, err, errsz))
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	src->curl = curl_easy_init();
	if (!src->curl) {
		snprintf(err, errsz, "cannot start libcurl");
		return -1;
	}
	return 0;
}

static size_t take_body(char *data, size_t size, size_t n, void *arg)
{
	struct strbuf *body = arg;

	if (body->len + size * n > FETCH_MAX_BYTES)
		return 0;
	strbuf_append(body, data, size * n);
	return body->failed ? 0 : size * n;
}

static bool tls_failure(CURLcode rc)
{
	return rc == CURLE_SSL_CONNECT_ERROR ||
	       rc == CURLE_PEER_FAILED_VERIFICATION ||
	       rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
	       rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_USE_SSL_FAILED;
}

/* The one line for a read that libcurl could not make. */
static void describe_failure(const struct top_source *src, CURLcode rc,
			     const char *detail, char *err, size_t errsz)
{
	const char *what = *detail ? detail : curl_easy_strerror(rc);

	if (rc == CURLE_COULDNT_CONNECT)
		snprintf(err, errsz,
			 "no sonde at %s: %s (is sonde running? --url names "
			 "where it listens)",
			 src->url, what);
	else if (tls_failure(rc))
		snprintf(err, errsz,
			 "TLS with %s failed: %s (--tls-ca FILE names the CA "
			 "that signed sonde's certificate)",
			 src->url, what);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(err, errsz, "%s did not answer within %d s", src->url,
			 FETCH_TIMEOUT_MS / 1000);
	else
		snprintf(err, errsz, "%s: %s", src->url, what);
}

int top_fetch(struct top_source *src, struct strbuf *body, char *err,
	      size_t errsz)
{
	char detail[CURL_ERROR_SIZE] = "";
	CURL *c = src->curl;
	long status = 0;
	CURLcode rc;

	body->len = 0;
	body->failed = false;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, src->url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)FETCH_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (src->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, src->ca_file);
	if (src->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (src->userpwd) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, src->userpwd);
	}
	rc = curl_easy_perform(c);
	/* detail lives on this stack frame: libcurl must not keep it. */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	if (rc != CURLE_OK) {
		describe_failure(src, rc, detail, err, errsz);
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status == 401) {
		snprintf(err, errsz,
			 src->userpwd ?
				 "%s: 401 Unauthorized: the credentials in "
				 "--basic-auth-file were refused" :
				 "%s: 401 Unauthorized: sonde asks for a user "
				 "and password (--basic-auth-file FILE)",
			 src->url);
		return -1;
	}
	if (status != 200) {
		snprintf(err, errsz,
			 "%s: HTTP %ld: not a sonde /metrics endpoint",
			 src->url, status);
		return -1;
	}
	return 0;
}

void top_source_close(struct top_source *src)
{
	if (src->curl)
		curl_easy_cleanup(src->curl);
	free(src->url);
	free(src->userpwd);
	src->curl = NULL;
	src->url = src->userpwd = NULL;
}
