/*
 * web.h - `changetrail serve` (docs/web.md): a read-only HTTP server with a
 * JSON API under /api/v1 over the history library (include/changetrail/
 * history.h) and a browser UI built into the binary (web/assets, turned
 * into a C array at build time). Internal to the CLI: prefix ctw_.
 */
#ifndef CTW_WEB_H
#define CTW_WEB_H

#include "changetrail/history.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Bounds on what a client may send. */
#define CTW_MAX_URL 2048           /* path and query, bytes */
#define CTW_MAX_ARGS 16            /* query arguments */
#define CTW_MAX_ARG_BYTES 1024     /* one argument's value */
#define CTW_CONN_MEMORY (32 * 1024) /* per connection: request line and headers must fit */
#define CTW_CONN_LIMIT 64
#define CTW_CONN_PER_IP 32
#define CTW_TIMEOUT_S 15           /* an idle or slow connection is closed after this */
#define CTW_HANDLES 4              /* MongoDB handles = request threads */
#define CTW_PAGE_DEFAULT 50

/* Who may read: nobody asked (none), a bearer token, or HTTP basic auth. */
typedef enum { CTW_AUTH_NONE, CTW_AUTH_BEARER, CTW_AUTH_BASIC } ctw_auth_kind;

typedef struct ctw_options {
	const char *host;   /* numeric IPv4 or IPv6 address */
	int port;           /* 0: any free port (printed) */
	const char *uri;    /* MongoDB URI (never printed) */
	const char *database;
	ctw_auth_kind auth;
	char *expected;     /* the whole Authorization header value that is accepted ("Bearer T", "Basic B64") */
	bool quiet;         /* no access log */
} ctw_options;

/*
 * Reads an auth file (docs/web.md): one line "bearer TOKEN" or "basic
 * USER:PASSWORD"; the file must not be readable by group or others. Sets
 * o->auth and o->expected (malloc'd). CT_ECONFIG / CT_EIO with a message
 * that never holds the secret.
 */
int ctw_load_auth(const char *path, ctw_options *o, ct_error *err);

/* Serves until SIGINT or SIGTERM. Returns 0, or an error code (message in err). */
int ctw_serve(const ctw_options *o, ct_error *err);

/* ---- the JSON API (api.c) ---- */

typedef struct ctw_arg {
	const char *name, *value;
} ctw_arg;

typedef struct ctw_args {
	ctw_arg v[CTW_MAX_ARGS];
	int n;
} ctw_args;

/* The value of argument `name`, or NULL. */
const char *ctw_get(const ctw_args *a, const char *name);

/*
 * Answers GET `path` (below /api/v1, e.g. "/timeline") with `args`:
 * *body a JSON value (the answer or {"error": {"code", "message"}}),
 * *status the HTTP status.
 */
void ctw_api(ct_history *h, const char *path, const ctw_args *args, json_t **body, int *status);

/* ---- the built-in files (generated web_assets.c) ---- */

typedef struct ctw_asset {
	const char *path; /* "/", "/app.js", ... */
	const char *content_type;
	const unsigned char *data;
	size_t size;
} ctw_asset;

extern const ctw_asset ctw_assets[];
extern const size_t ctw_assets_count;

#endif
