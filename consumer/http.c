/*
 * http.c - the metrics/health HTTP server (see http.h). Each connection owns
 * its parser; the server counts connections so a flood cannot grow memory.
 */
#include "http.h"

#include "ct_internal.h"
#include "log.h"

#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

struct ctc_http {
	uv_tcp_t tcp;
	ctc_http_handler handler;
	void *ud;
	int nconn;
	int port;
	int stopping;
	struct conn *conns; /* open connections, so stop can close them */
	int listener_closed;
};

typedef struct conn {
	uv_tcp_t tcp;
	ctc_http *srv;
	struct conn *prev, *next;
	http_parser parser;
	size_t received;
	char url[256];
	size_t url_len;
	int url_too_long;
	int answered;
	uv_write_t wreq;
	char *response;
	char rbuf[2048];
} conn;

static http_parser_settings settings;

static void conn_closed(uv_handle_t *h)
{
	conn *c = h->data;
	c->srv->nconn--;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctc_http *srv = c->srv;
	free(c->response);
	free(c);
	/* close callbacks run in no promised order: the last one frees the server */
	if (srv->listener_closed && srv->nconn == 0)
		free(srv);
}

static void listener_closed(uv_handle_t *h)
{
	ctc_http *srv = h->data;
	srv->listener_closed = 1;
	if (srv->nconn == 0)
		free(srv);
}

static void conn_close(conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void written(uv_write_t *req, int status)
{
	conn_close(req->data);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

static void respond(conn *c, int status, const char *ctype, const char *body, size_t len)
{
	char head[256];
	int n;
	if (c->answered)
		return;
	c->answered = 1;
	uv_read_stop((uv_stream_t *)&c->tcp);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		     status, reason(status), ctype, len);
	if (n < 0 || !(c->response = malloc((size_t)n + len))) {
		conn_close(c);
		return;
	}
	memcpy(c->response, head, (size_t)n);
	memcpy(c->response + n, body, len);
	uv_buf_t b = uv_buf_init(c->response, (unsigned)((size_t)n + len));
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, written))
		conn_close(c);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	conn *c = p->data;
	if (c->url_len + len >= sizeof(c->url)) {
		c->url_too_long = 1;
		return 0;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	c->url[c->url_len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *p)
{
	conn *c = p->data;
	ct_buf body = CT_BUF_INIT;
	const char *ctype = "text/plain; charset=utf-8";
	int status;
	if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
		respond(c, 405, ctype, "method not allowed\n", 19);
		return 1;
	}
	if (c->url_too_long) {
		respond(c, 404, ctype, "not found\n", 10);
		return 1;
	}
	char *q = strchr(c->url, '?');
	if (q)
		*q = '\0';
	body.max = 1024 * 1024;
	status = c->srv->handler(c->srv->ud, c->url, &body, &ctype);
	if (body.failed)
		status = 500;
	respond(c, status, ctype, body.data ? body.data : "", p->method == HTTP_HEAD ? 0 : body.len);
	ct_buf_free(&body);
	return 1; /* one request per connection: stop parsing */
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	conn *c = h->data;
	*buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	conn *c = s->data;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (n == 0 || c->answered)
		return;
	c->received += (size_t)n;
	if (c->received > CTC_HTTP_MAX_REQUEST) {
		respond(c, 413, "text/plain", "request too large\n", 18);
		return;
	}
	size_t used = http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
	if (!c->answered && (c->parser.http_errno != HPE_OK && c->parser.http_errno != HPE_PAUSED)) {
		respond(c, 400, "text/plain", "bad request\n", 12);
		return;
	}
	(void)used;
}

static void on_connection(uv_stream_t *server, int status)
{
	ctc_http *srv = server->data;
	conn *c;
	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->srv = srv;
	uv_tcp_init(server->loop, &c->tcp);
	c->tcp.data = c;
	srv->nconn++;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) || srv->nconn > CTC_HTTP_MAX_CONNECTIONS || srv->stopping) {
		conn_close(c);
		return;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb))
		conn_close(c);
}

ctc_http *ctc_http_start(uv_loop_t *loop, const char *listen, ctc_http_handler h, void *ud, ct_error *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	struct sockaddr_storage addr;
	int rc, port;
	ctc_http *s;

	if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
		ct_error_set(err, CT_ECONFIG, "[http] listen must be host:port");
		return NULL;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	port = atoi(colon + 1);
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)) {
		ct_error_set(err, CT_ECONFIG, "[http] listen: '%s' is not an IP address", host);
		return NULL;
	}
	settings.on_url = on_url;
	settings.on_message_complete = on_message_complete;
	if (!(s = calloc(1, sizeof(*s)))) {
		ct_error_set(err, CT_ENOMEM, "out of memory");
		return NULL;
	}
	s->handler = h;
	s->ud = ud;
	uv_tcp_init(loop, &s->tcp);
	s->tcp.data = s;
	if ((rc = uv_tcp_bind(&s->tcp, (struct sockaddr *)&addr, 0)) ||
	    (rc = uv_listen((uv_stream_t *)&s->tcp, 64, on_connection))) {
		ct_error_set(err, CT_EIO, "[http] listen %s: %s", listen, uv_strerror(rc));
		uv_close((uv_handle_t *)&s->tcp, listener_closed);
		return NULL;
	}
	int len = sizeof(addr);
	uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&addr, &len);
	s->port = addr.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&addr)->sin_port)
					   : ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
	return s;
}

int ctc_http_port(const ctc_http *s)
{
	return s->port;
}

void ctc_http_stop(ctc_http *s)
{
	if (!s)
		return;
	s->stopping = 1;
	for (conn *c = s->conns; c; c = c->next)
		conn_close(c);
	uv_close((uv_handle_t *)&s->tcp, listener_closed);
}
