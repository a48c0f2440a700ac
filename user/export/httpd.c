#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "export/auth.h"
#include "export/httpd.h"
#include "export/prom.h"
#include "export/promproto.h"
#include "export/scrape.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/privs.h"

/* A scrape holds a connection for milliseconds: one idle (or trickling)
 * for 10 s is closed, so hoarded connections free up. */
#define HTTPD_TIMEOUT_SECONDS 10
/* However it trickles, a scrape's body is cut off after this long. */
#define HTTPD_SCRAPE_SECONDS 30
/* The body is handed to libmicrohttpd this much at a time. */
#define HTTPD_BLOCK_BYTES (64 * 1024)
#define HTTPD_REALM "sonde"

static struct MHD_Daemon *daemon_handle;
static struct httpd_hooks hooks;

static bool coding_matches(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* ";q=0", ";q=0.0", ";q=0.000": the coding is refused. */
static bool q_is_zero(const char *params, size_t n)
{
	const char *q = NULL;

	for (size_t i = 0; i + 1 < n; i++)
		if ((params[i] == 'q' || params[i] == 'Q') &&
		    params[i + 1] == '=')
			q = params + i + 2;
	if (!q)
		return false;
	if (*q != '0')
		return false;
	for (q++; q < params + n && (*q == '.' || *q == '0'); q++)
		;
	return q == params + n || *q == ',' || *q == ' ' || *q == ';';
}

bool httpd_accepts_gzip(const char *value)
{
	const char *p = value;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *semi = memchr(p, ';', len);
		size_t name_len = semi ? (size_t)(semi - p) : len;
		const char *name = p;

		while (name_len && isspace((unsigned char)*name)) {
			name++;
			name_len--;
		}
		while (name_len && isspace((unsigned char)name[name_len - 1]))
			name_len--;
		if ((coding_matches(name, name_len, "gzip") ||
		     coding_matches(name, name_len, "*")) &&
		    !(semi && q_is_zero(semi, len - (semi - p))))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
				 const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; charset=utf-8");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A scrape being sent: its share of a rendering. */
struct sending {
	struct scrape_body *body;
	const char *data;
	size_t len;
	uint64_t deadline_ns;
};

/* libmicrohttpd asks for the body a block at a time, as the socket takes
 * it: a slow reader costs its socket buffer and this block, and the
 * rendering it shares. One that takes longer than HTTPD_SCRAPE_SECONDS
 * is cut off. */
static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sending *s = cls;
	size_t n;

	if (clock_monotonic_ns() > s->deadline_ns)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos >= s->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = s->len - pos < max ? s->len - pos : max;
	memcpy(buf, s->data + pos, n);
	return (ssize_t)n;
}

static void sent(void *cls)
{
	struct sending *s = cls;

	scrape_release(s->body);
	free(s);
}

static enum MHD_Result send_metrics(struct MHD_Connection *conn)
{
	const char *encodings = MHD_lookup_connection_value(
		conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	const char *accept = MHD_lookup_connection_value(
		conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	/* The protobuf format only for a scraper that asks for it (Prometheus
	 * with native histograms on); the text for everyone else. */
	bool protobuf = accept && promproto_accepted(accept);
	struct sending *s = calloc(1, sizeof(*s));
	struct MHD_Response *resp;
	enum MHD_Result ret;
	bool gzip;

	if (s)
		s->body =
			protobuf ?
				scrape_take(SCRAPE_PROTOBUF, promproto_render) :
				scrape_take(SCRAPE_TEXT, hooks.render_metrics);
	if (!s || !s->body) {
		free(s);
		return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				 "out of memory\n");
	}
	s->data = scrape_data(s->body, httpd_accepts_gzip(encodings), &s->len,
			      &gzip);
	s->deadline_ns =
		clock_monotonic_ns() + HTTPD_SCRAPE_SECONDS * 1000000000ULL;
	resp = MHD_create_response_from_callback(s->len, HTTPD_BLOCK_BYTES,
						 read_body, s, sent);
	if (!resp) {
		sent(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				protobuf ? PROMPROTO_CONTENT_TYPE :
					   PROM_CONTENT_TYPE);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY,
				"Accept, Accept-Encoding");
	if (gzip)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
					"gzip");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result ask_for_credentials(struct MHD_Connection *conn)
{
	static const char body[] = "authentication required\n";
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_basic_auth_fail_response(conn, HTTPD_REALM, resp);
	MHD_destroy_response(resp);
	return ret;
}

static bool authorized(struct MHD_Connection *conn)
{
	char *user, *password = NULL;
	bool ok;

	if (!auth_enabled())
		return true;
	user = MHD_basic_auth_get_username_password(conn, &password);
	ok = auth_check(user, password);
	MHD_free(user);
	MHD_free(password);
	return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	const char *why = "not ready";

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)req_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				 "only GET and HEAD\n");
	if (*upload_data_size)
		return send_text(conn, MHD_HTTP_BAD_REQUEST, "no body\n");
	if (strcmp(url, "/metrics") == 0)
		return authorized(conn) ? send_metrics(conn) :
					  ask_for_credentials(conn);
	if (strcmp(url, "/healthz") == 0)
		return send_text(conn, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0) {
		if (hooks.ready(&why))
			return send_text(conn, MHD_HTTP_OK, "ready\n");
		return send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, why);
	}
	if (strcmp(url, "/") == 0)
		return send_text(conn, MHD_HTTP_OK,
				 "sonde: see /metrics, /healthz, /readyz\n");
	return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

struct start {
	unsigned flags;
	struct MHD_OptionItem *opts;
	struct MHD_Daemon *daemon;
	int err; /* from dropping the capabilities */
};

/* Capabilities are per thread and a thread starts with its creator's:
 * this one drops them all before libmicrohttpd creates its own, so the
 * server never holds one, however privileged the caller. */
static void *start_unprivileged(void *arg)
{
	struct start *st = arg;

	st->err = privs_drop_thread();
	if (!st->err)
		st->daemon = MHD_start_daemon(st->flags, 0, NULL, NULL, handle,
					      NULL, MHD_OPTION_ARRAY, st->opts,
					      MHD_OPTION_END);
	return NULL;
}

int httpd_start(const struct httpd_config *cfg, const struct httpd_hooks *h)
{
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;
	struct MHD_OptionItem opts[6];
	struct start st = { 0 };
	pthread_t starter;
	int n = 0, err;

	hooks = *h;
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET,
					     cfg->listen_fd, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
					     cfg->max_connections, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
					     HTTPD_TIMEOUT_SECONDS, NULL };
	if (cfg->tls_cert_pem) {
		flags |= MHD_USE_TLS;
		opts[n++] =
			(struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
						 (void *)cfg->tls_cert_pem };
		opts[n++] =
			(struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
						 (void *)cfg->tls_key_pem };
	}
	opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	st.flags = flags;
	st.opts = opts;
	err = pthread_create(&starter, NULL, start_unprivileged, &st);
	if (err) {
		log_error("cannot start the HTTP server: %s", strerror(err));
		return -1;
	}
	pthread_join(starter, NULL);
	if (st.err) {
		log_error("cannot start the HTTP server without privileges: "
			  "%s",
			  strerror(-st.err));
		return -1;
	}
	daemon_handle = st.daemon;
	if (!daemon_handle) {
		log_error("cannot start the HTTP server (libmicrohttpd)%s",
			  cfg->tls_cert_pem ? ": is --tls-key the private key "
					      "of --tls-cert, both in PEM?" :
					      "");
		return -1;
	}
	return 0;
}

void httpd_stop(void)
{
	if (daemon_handle)
		MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
	scrape_reset();
}
