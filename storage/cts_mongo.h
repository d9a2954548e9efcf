/*
 * cts_mongo.h - the MongoDB plumbing shared by the consumer, the history
 * library and the CLI: the one client constructor, the one libmongoc log
 * handler, the one error mapper, the indexes.
 */
#ifndef CTS_MONGO_H
#define CTS_MONGO_H

#include <mongoc/mongoc.h>
#include <stdbool.h>

#include "changetrail/common.h"

/* Where libmongoc's warnings and errors go (error: critical/error level). */
typedef void (*cts_log_sink)(bool error, const char *domain, const char *message);

/*
 * mongoc_init() and the one libmongoc log handler: messages above warning
 * level and the endSessions noise of servers without sessions are dropped,
 * the rest handed to `sink` (NULL: dropped). Call once per process, before
 * any thread uses libmongoc.
 */
void cts_global_init(cts_log_sink sink);
void cts_global_cleanup(void);

/*
 * A client for `uri` with changetrail's defaults where the URI sets none: 3 s
 * server selection and connect timeouts, `socket_timeout_ms` when > 0,
 * `appname`; error API version 2. NULL with `err` set (CT_ECONFIG, never
 * quoting the URI, which may hold a password).
 */
mongoc_client_t *cts_client_new(const char *uri, const char *appname, int socket_timeout_ms, ct_error *err);

/*
 * Maps a libmongoc error to CT_EMONGO with "<what>: <message> (code N)",
 * any "user:password@" in the message redacted. Returns CT_EMONGO.
 */
int cts_mongo_error(ct_error *err, const char *what, const bson_error_t *e);

/* Index options. */
typedef struct cts_index_opts {
	int history_ttl_days; /* > 0: TTL index on history.ts ([mongodb] history_ttl_days) */
} cts_index_opts;

/*
 * Creates the indexes of every collection that are missing (idempotent):
 * history doc_version (collection, document_id, version) unique, context,
 * actor_ts, ts, parent; contexts first_ts; ts_ttl when asked (a changed
 * TTL is applied with collMod; 0 drops it).
 */
int cts_ensure_indexes(mongoc_database_t *db, const cts_index_opts *opts, ct_error *err);

#endif
