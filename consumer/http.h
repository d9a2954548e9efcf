/*
 * http.h - a tiny HTTP/1.x server on the libuv loop for /metrics, /healthz
 * and /readyz. Requests are parsed by Debian's http-parser; one request per
 * connection, bounded in size, answered and closed.
 */
#ifndef CTC_HTTP_H
#define CTC_HTTP_H

#include <uv.h>

#include "changetrail/common.h"
#include "ct_buf.h"

/* Largest request (line + headers + body) accepted; larger gets 431/413 and closed. */
#define CTC_HTTP_MAX_REQUEST 8192
/* Connections served at once; more are refused (closed at accept). */
#define CTC_HTTP_MAX_CONNECTIONS 64

/* Fills `body` for GET `path`, sets *content_type, returns the status code. */
typedef int (*ctc_http_handler)(void *ud, const char *path, ct_buf *body, const char **content_type);

typedef struct ctc_http ctc_http;

/* Listens on "host:port" (port 0 = any; see ctc_http_port()). */
ctc_http *ctc_http_start(uv_loop_t *loop, const char *listen, ctc_http_handler h, void *ud, ct_error *err);
int ctc_http_port(const ctc_http *s);
/* Closes the listener and open connections; the memory goes once the loop ran their close callbacks. */
void ctc_http_stop(ctc_http *s);

#endif
