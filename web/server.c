/*
 * server.c - the HTTP side of `changetrail serve` (web.h, docs/web.md) on
 * libmicrohttpd: GET only, bounded requests (URL, headers, arguments, no
 * body), timeouts, a connection limit, a Host check against DNS rebinding
 * while on loopback, optional bearer or basic auth (compared in constant
 * time, never logged), and the security headers on every answer: a strict
 * Content-Security-Policy (scripts and styles from this server's own files,
 * nothing inline), nosniff, no framing, no referrer. Requests run on a
 * small thread pool; each takes one ct_history handle from a pool of the
 * same size (a handle is used by one thread at a time).
 */
#include "web.h"

#include "ct_buf.h"
#include "ct_internal.h"
#include "ct_textsafe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CSP                                                                                                  \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "     \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

typedef struct server {
	const ctw_options *o;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ct_history *handles[CTW_HANDLES];
	bool busy[CTW_HANDLES];
	bool loopback;
	char hosts[3][96]; /* Host header values accepted on loopback */
} server;

/* ---- auth ---------------------------------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* "Basic " + base64(s) into a new string. */
static char *basic_value(const char *s)
{
	size_t n = strlen(s), k = 6;
	char *out = malloc(6 + 4 * ((n + 2) / 3) + 1);
	if (!out)
		return NULL;
	memcpy(out, "Basic ", 6);
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16 | (i + 1 < n ? (unsigned char)s[i + 1] << 8 : 0) |
			     (i + 2 < n ? (unsigned char)s[i + 2] : 0);
		out[k++] = b64[v >> 18 & 63];
		out[k++] = b64[v >> 12 & 63];
		out[k++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		out[k++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[k] = '\0';
	return out;
}

int ctw_load_auth(const char *path, ctw_options *o, ct_error *err)
{
	char line[1024];
	FILE *f = NULL;
	struct stat st;
	int rc = 0;
	if (!(f = fopen(path, "r")))
		return ct_error_set(err, CT_EIO, "auth file %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) || (st.st_mode & 077)) {
		rc = ct_error_set(err, CT_ECONFIG, "auth file %s: readable by others (chmod 600 it)", path);
		goto out;
	}
	if (!fgets(line, sizeof(line), f)) {
		rc = ct_error_set(err, CT_ECONFIG, "auth file %s: empty", path);
		goto out;
	}
	line[strcspn(line, "\r\n")] = '\0';
	const char *sep = strchr(line, ' ');
	const char *secret = sep ? sep + 1 : "";
	bool printable = true;
	for (const char *p = secret; *p; p++)
		printable &= (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
	if (!sep || !*secret || !printable) {
		rc = ct_error_set(err, CT_ECONFIG,
				  "auth file %s: expected one line 'bearer TOKEN' or 'basic USER:PASSWORD' "
				  "(printable ASCII, no spaces in the secret)", path);
		goto out;
	}
	if (!strncmp(line, "bearer ", 7)) {
		size_t n = strlen(secret);
		if (n < 16) {
			rc = ct_error_set(err, CT_ECONFIG, "auth file %s: a bearer token needs 16 characters or more", path);
			goto out;
		}
		o->auth = CTW_AUTH_BEARER;
		if ((o->expected = malloc(n + 8)))
			snprintf(o->expected, n + 8, "Bearer %s", secret);
	} else if (!strncmp(line, "basic ", 6) && strchr(secret, ':') && strchr(secret, ':') != secret) {
		o->auth = CTW_AUTH_BASIC;
		o->expected = basic_value(secret);
	} else {
		rc = ct_error_set(err, CT_ECONFIG, "auth file %s: expected 'bearer TOKEN' or 'basic USER:PASSWORD'",
				  path);
		goto out;
	}
	if (!o->expected)
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	explicit_bzero(line, sizeof(line));
	if (f)
		fclose(f);
	return rc;
}

/* Constant-time comparison of the Authorization header with the expected value. */
static bool auth_ok(const server *s, const char *given)
{
	if (s->o->auth == CTW_AUTH_NONE)
		return true;
	if (!given)
		return false;
	size_t n = strlen(s->o->expected), m = strlen(given);
	unsigned char d = (unsigned char)(n != m);
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(s->o->expected[i] ^ (i < m ? given[i] : 0));
	return d == 0;
}

/* ---- answers ------------------------------------------------------------------------------------- */

static void add_headers(struct MHD_Response *r, const char *type, bool no_store)
{
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy", CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(r, "Cache-Control", no_store ? "no-store" : "no-cache");
}

/* Queues `body` (JSON, consumed) with `status`. */
static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *body, const char *auth_challenge)
{
	/* ASCII only: U+2028 and every other non-ASCII character as \u escapes */
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(body);
	if (!text) {
		text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		if (!text)
			return MHD_NO;
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	add_headers(r, "application/json; charset=utf-8", true);
	if (auth_challenge)
		MHD_add_response_header(r, "WWW-Authenticate", auth_challenge);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static json_t *error_body(const char *code, const char *message)
{
	return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

/* ---- requests ------------------------------------------------------------------------------------ */

typedef struct collect {
	ctw_args *args;
	const char *bad; /* why the arguments are refused */
} collect;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				   const char *value, size_t value_size)
{
	collect *k = cls;
	(void)kind;
	if (!value)
		value = "", value_size = 0;
	if (strlen(key) != key_size || strlen(value) != value_size)
		k->bad = "an argument holds a NUL byte";
	else if (value_size > CTW_MAX_ARG_BYTES)
		k->bad = "an argument is too long";
	else if (k->args->n == CTW_MAX_ARGS)
		k->bad = "too many arguments";
	else if (ctw_get(k->args, key))
		k->bad = "an argument is given twice";
	if (k->bad)
		return MHD_NO;
	k->args->v[k->args->n++] = (ctw_arg){key, value};
	return MHD_YES;
}

static ct_history *take_handle(server *s, int *slot)
{
	pthread_mutex_lock(&s->mu);
	for (;;) {
		for (int i = 0; i < CTW_HANDLES; i++)
			if (!s->busy[i]) {
				s->busy[i] = true;
				*slot = i;
				pthread_mutex_unlock(&s->mu);
				return s->handles[i];
			}
		pthread_cond_wait(&s->cv, &s->mu);
	}
}

static void give_handle(server *s, int slot)
{
	pthread_mutex_lock(&s->mu);
	s->busy[slot] = false;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static bool host_ok(const server *s, const char *host)
{
	if (!s->loopback)
		return true;
	if (!host)
		return false;
	for (size_t i = 0; i < CT_ARRAY_LEN(s->hosts); i++)
		if (s->hosts[i][0] && !strcmp(host, s->hosts[i]))
			return true;
	return false;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* One line per request on stderr: method, path (escaped), status, time. Never headers or arguments. */
static void access_log(const server *s, const char *method, const char *url, int status, double ms)
{
	if (s->o->quiet)
		return;
	ct_buf m = {0}, u = {0};
	size_t ul = strlen(url);
	if (!ct_text_escape(&m, method, strlen(method) > 16 ? 16 : strlen(method), 0) &&
	    !ct_text_escape(&u, url, ul > 200 ? 200 : ul, 0))
		fprintf(stderr, "changetrail serve: %s %s%s %d %.1f ms\n", m.data ? m.data : "", u.data ? u.data : "",
			ul > 200 ? "..." : "", status, ms);
	ct_buf_free(&m);
	ct_buf_free(&u);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	server *s = cls;
	struct timespec t0;
	int status = MHD_HTTP_OK;
	enum MHD_Result ret;
	(void)version;
	(void)upload_data;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (*con_cls) { /* a body arrives: GET takes none (the answer was queued already) */
		*upload_data_size = 0;
		return MHD_YES;
	}
	*con_cls = s;
	if (strcmp(method, MHD_HTTP_METHOD_GET)) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		ret = send_json(c, status, error_body("method_not_allowed", "read-only: GET only"), NULL);
		goto out;
	}
	const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	if ((clen && strcmp(clen, "0")) || MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding")) {
		status = MHD_HTTP_CONTENT_TOO_LARGE;
		ret = send_json(c, status, error_body("body_not_allowed", "a GET request has no body"), NULL);
		goto out;
	}
	if (!host_ok(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"))) {
		status = MHD_HTTP_MISDIRECTED_REQUEST;
		ret = send_json(c, status, error_body("bad_host", "this server answers to its loopback address only"),
				NULL);
		goto out;
	}
	if (strlen(url) > CTW_MAX_URL) {
		status = MHD_HTTP_URI_TOO_LONG;
		ret = send_json(c, status, error_body("too_long", "URL too long"), NULL);
		goto out;
	}
	/* the built-in files hold no data: served without auth, so the UI can ask for a token */
	for (size_t i = 0; i < ctw_assets_count; i++) {
		if (strcmp(url, ctw_assets[i].path))
			continue;
		struct MHD_Response *r = MHD_create_response_from_buffer(
			ctw_assets[i].size, (void *)ctw_assets[i].data, MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		add_headers(r, ctw_assets[i].content_type, false);
		ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		goto out;
	}
	if (strncmp(url, "/api/v1/", 8)) {
		status = MHD_HTTP_NOT_FOUND;
		ret = send_json(c, status, error_body("not_found", "no such page"), NULL);
		goto out;
	}
	if (!auth_ok(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))) {
		status = MHD_HTTP_UNAUTHORIZED;
		/* basic: the browser asks; bearer: the UI asks (no challenge it would act on) */
		ret = send_json(c, status, error_body("unauthorized", "authentication required"),
				s->o->auth == CTW_AUTH_BASIC ? "Basic realm=\"changetrail\", charset=\"UTF-8\""
							      : "Bearer realm=\"changetrail\"");
		goto out;
	}
	ctw_args args = {.n = 0};
	collect k = {&args, NULL};
	MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, collect_arg, &k);
	if (k.bad) {
		status = MHD_HTTP_BAD_REQUEST;
		ret = send_json(c, status, error_body("bad_request", k.bad), NULL);
		goto out;
	}
	json_t *body = NULL;
	int slot;
	ct_history *h = take_handle(s, &slot);
	ctw_api(h, url + 7, &args, &body, &status);
	give_handle(s, slot);
	ret = send_json(c, status, body, NULL);
out:
	access_log(s, method, url, status, ms_since(&t0));
	return ret;
}

/* ---- the server ---------------------------------------------------------------------------------- */

int ctw_serve(const ctw_options *o, ct_error *err)
{
	server s = {.o = o};
	struct MHD_Daemon *d = NULL;
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	sigset_t sigs;
	int rc = 0, sig;

	/* SIGINT/SIGTERM are waited for below: blocked before any thread (libmongoc's, libmicrohttpd's) starts,
	 * so every thread inherits the mask and none is killed by them */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	for (int i = 0; i < CTW_HANDLES; i++)
		if ((rc = ct_history_open(o->uri, o->database, &s.handles[i], err)))
			goto out;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	bool v6 = strchr(o->host, ':') != NULL;
	if (v6 ? inet_pton(AF_INET6, o->host, &a6->sin6_addr) != 1 : inet_pton(AF_INET, o->host, &a4->sin_addr) != 1) {
		rc = ct_error_set(err, CT_EINVAL, "listen address '%s' is not a numeric IPv4 or IPv6 address", o->host);
		goto out;
	}
	if (v6) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)o->port);
		s.loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
	} else {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)o->port);
		s.loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
	}
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0), 0, NULL,
			     NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			     MHD_OPTION_THREAD_POOL_SIZE, (unsigned)CTW_HANDLES, MHD_OPTION_CONNECTION_LIMIT,
			     (unsigned)CTW_CONN_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CTW_CONN_PER_IP,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CTW_TIMEOUT_S,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CTW_CONN_MEMORY, MHD_OPTION_STRICT_FOR_CLIENT,
			     1, MHD_OPTION_END);
	if (!d) {
		rc = ct_error_set(err, CT_EIO, "cannot listen on %s port %d (in use, or not an address of this host)",
				  o->host, o->port);
		goto out;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	int port = info ? info->port : o->port;
	sl = v6 ? sizeof(*a6) : sizeof(*a4);
	(void)sl;
	if (v6) {
		snprintf(s.hosts[0], sizeof(s.hosts[0]), "[%s]:%d", o->host, port);
		snprintf(s.hosts[1], sizeof(s.hosts[1]), "localhost:%d", port);
	} else {
		snprintf(s.hosts[0], sizeof(s.hosts[0]), "%s:%d", o->host, port);
		snprintf(s.hosts[1], sizeof(s.hosts[1]), "localhost:%d", port);
	}
	fprintf(stdout, "changetrail serve: http://%s%s%s:%d/ (auth: %s)\n", v6 ? "[" : "", o->host, v6 ? "]" : "",
		port, o->auth == CTW_AUTH_NONE ? "none" : o->auth == CTW_AUTH_BEARER ? "bearer" : "basic");
	fflush(stdout);
	sigwait(&sigs, &sig);
	fprintf(stderr, "changetrail serve: stopping (signal %d)\n", sig);
out:
	if (d)
		MHD_stop_daemon(d);
	for (int i = 0; i < CTW_HANDLES; i++)
		ct_history_close(s.handles[i]);
	pthread_mutex_destroy(&s.mu);
	pthread_cond_destroy(&s.cv);
	return rc;
}
