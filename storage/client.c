/*
 * client.c - the one MongoDB client constructor of changetrail, the one
 * libmongoc log handler and the one libmongoc error mapper (cts_mongo.h).
 * Nothing here quotes a URI: it may hold a password.
 */
#include "ct_internal.h"
#include "cts_mongo.h"

#include <stdio.h>
#include <string.h>

static cts_log_sink g_sink;

static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
	/* servers without sessions (FerretDB, mongo-java-server) refuse the
	 * endSessions libmongoc sends at every client destroy */
	if (strstr(message, "endSessions") || level > MONGOC_LOG_LEVEL_WARNING || !g_sink)
		return;
	g_sink(level <= MONGOC_LOG_LEVEL_CRITICAL, domain, message);
}

void cts_global_init(cts_log_sink sink)
{
	g_sink = sink;
	mongoc_init();
	mongoc_log_set_handler(log_handler, NULL);
}

void cts_global_cleanup(void)
{
	mongoc_cleanup();
}

mongoc_client_t *cts_client_new(const char *uri_str, const char *appname, int socket_timeout_ms, ct_error *err)
{
	bson_error_t berr;
	mongoc_client_t *client = NULL;
	mongoc_uri_t *uri = uri_str ? mongoc_uri_new_with_error(uri_str, &berr) : NULL;
	if (!uri) {
		/* berr.message may quote the URI: say which rule failed without it */
		ct_error_set(err, CT_ECONFIG, "[mongodb] uri is not a valid MongoDB URI");
		return NULL;
	}
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 3000);
	if (socket_timeout_ms > 0 && !mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, socket_timeout_ms);
	if (appname && !mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
		mongoc_uri_set_appname(uri, appname);
	if (!(client = mongoc_client_new_from_uri_with_error(uri, &berr)))
		ct_error_set(err, CT_ECONFIG, "[mongodb] uri: cannot make a client");
	else
		mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	mongoc_uri_destroy(uri);
	return client;
}

/*
 * `msg` into out[size] with the user information of any "scheme://user:pw@"
 * replaced by "***@": a server or libmongoc may echo a URI or a host string
 * with credentials.
 */
static void redact(const char *msg, char *out, size_t size)
{
	size_t o = 0;
	for (const char *p = msg; *p && o + 1 < size;) {
		const char *scheme = strstr(p, "://");
		if (!scheme) {
			size_t n = strlen(p);
			if (n > size - 1 - o)
				n = size - 1 - o;
			memcpy(out + o, p, n);
			o += n;
			break;
		}
		size_t head = (size_t)(scheme + 3 - p);
		if (head > size - 1 - o)
			head = size - 1 - o;
		memcpy(out + o, p, head);
		o += head;
		p = scheme + 3;
		/* the authority ends at '/', '?', '#' or a space; an '@' in it ends the user part */
		size_t auth = strcspn(p, "/?# \t\n");
		const char *at = NULL;
		for (size_t i = 0; i < auth; i++)
			if (p[i] == '@')
				at = p + i;
		if (at) {
			const char *mask = "***";
			for (; *mask && o + 1 < size; mask++)
				out[o++] = *mask;
			p = at;
		}
	}
	out[o] = '\0';
}

int cts_mongo_error(ct_error *err, const char *what, const bson_error_t *e)
{
	char safe[sizeof(e->message)];
	redact(e->message, safe, sizeof(safe));
	return ct_error_set(err, CT_EMONGO, "%s: %s (code %u)", what, safe, e->code);
}
