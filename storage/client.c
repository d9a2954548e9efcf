/*
 * client.c - the one MongoDB client constructor of changetrail, the one
 * libmongoc log handler and the one libmongoc error mapper (cts_mongo.h).
 * Nothing here quotes a URI: it may hold a password.
 */
#include "ct_internal.h"
#include "ct_textsafe.h"
#include "cts_mongo.h"

#include <stdio.h>
#include <string.h>

static cts_log_sink g_sink;

static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
	/* servers without sessions (FerretDB, mongo-java-server) refuse the
	 * endSessions libmongoc sends at every client destroy */
	char safe[1024];
	if (strstr(message, "endSessions") || level > MONGOC_LOG_LEVEL_WARNING || !g_sink)
		return;
	/* a message may quote a URI or a host string cut from one */
	g_sink(level <= MONGOC_LOG_LEVEL_CRITICAL, domain, ct_redact_text(message, safe, sizeof(safe)));
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
	mongoc_uri_t *uri = NULL;
	/* before libmongoc: it cuts a password at its first '@' and quotes the rest as a host */
	if (uri_str && ct_uri_check_userinfo(uri_str, "[mongodb] uri", err))
		return NULL;
	if (!(uri = uri_str ? mongoc_uri_new_with_error(uri_str, &berr) : NULL)) {
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

int cts_mongo_error(ct_error *err, const char *what, const bson_error_t *e)
{
	char safe[sizeof(e->message)];
	ct_redact_text(e->message, safe, sizeof(safe));
	return ct_error_set(err, CT_EMONGO, "%s: %s (code %u)", what, safe, e->code);
}
