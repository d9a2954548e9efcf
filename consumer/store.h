/*
 * store.h - the consumer's MongoDB side: indexes, the one-query load of the
 * states a batch misses, and the batch write (history, contexts, state).
 * Blocking (libmongoc): call it from the writer thread, never from the loop.
 * One ctc_store is used by one thread at a time.
 */
#ifndef CTC_STORE_H
#define CTC_STORE_H

#include <jansson.h>
#include <stdbool.h>

#include "changetrail/common.h"
#include "contexts.h"

#include <bson/bson.h>

typedef struct ctc_store ctc_store;

/* What one batch writes. Arrays of json_t objects (records / stored states). */
typedef struct ctc_write_set {
	json_t *history; /* history records (record.h form, "changes" as an array) */
	/* and/or history records already converted (ctc_history_to_bson),
	 * concatenated BSON documents: how the consumer hands them over */
	const uint8_t *history_bson;
	size_t history_bson_len;
	json_t *states;  /* stored states (ctc_state_to_json form), one per document */
	/* and/or stored states already in BSON (ctc_state_append_bson),
	 * concatenated: how the consumer hands them over */
	const uint8_t *states_bson;
	size_t states_bson_len;
	ctc_contexts *contexts;
	/* set by ctc_store_write: time spent on each part of the last attempt */
	double history_ms, contexts_ms, state_ms;
} ctc_write_set;

/*
 * The state journal record {_id: jid, states: BinData(0, {"0": state,
 * "1": ...})} of the stored states in data[0..len) (BSON documents end to
 * end; `jid` a UUID of 36 characters), into a new buffer (*out, free()) of
 * *out_len bytes: what a state write inserts before its swap, made by hand
 * (store.c says why). Exposed for tests. CT_EINVAL when `data` is not
 * whole BSON documents, CT_ENOMEM.
 */
int ctc_store_journal_record(const uint8_t *data, size_t len, const char jid[37], uint8_t **out, size_t *out_len,
			     ct_error *err);

/*
 * true when every write error in a bulk insert's `reply` is a duplicate of
 * an existing _id (code 11000): a redelivered record, already stored. A
 * duplicate on another unique index (history's doc_version: a version
 * given twice, which must never pass for a redelivery) makes it false
 * where the server says which index it was (MongoDB; FerretDB 1.24 does
 * not). `n_dup` (may be NULL) gets their number. Pure function.
 */
bool ctc_store_reply_only_duplicates(const bson_t *reply, size_t *n_dup);

/* Global libmongoc set-up (log handler that drops FerretDB's endSessions noise). */
void ctc_store_global_init(void);
void ctc_store_global_cleanup(void);

/* Connects lazily: no I/O here. CT_ECONFIG on a malformed URI (message without credentials). */
ctc_store *ctc_store_open(const char *uri, const char *database, ct_error *err);

/*
 * A MongoDB client for `uri` with changetrail's defaults where the URI sets
 * none: 3 s server selection and connect timeouts (a down server fails fast),
 * `socket_timeout_ms` when > 0, and `appname`; error API version 2. NULL with
 * `err` set (never quoting the URI, which may hold a password) on failure.
 */
struct _mongoc_client_t *ctc_mongo_client_new(const char *uri, const char *appname, int socket_timeout_ms,
					      ct_error *err);
void ctc_store_close(ctc_store *s);

/* Creates the collections' indexes (idempotent). */
int ctc_store_ensure_indexes(ctc_store *s, ct_error *err);
/* ping: CT_EMONGO when the server does not answer. */
int ctc_store_ping(ctc_store *s, ct_error *err);

/*
 * Loads the stored states whose _id is in keys[0..n) with ONE query; *out is
 * a new array of stored-state objects (only the ones that exist).
 */
int ctc_store_load_states(ctc_store *s, const char *const *keys, size_t n, json_t **out,
			  ct_error *err);

/*
 * Writes a batch: history (unordered insert; duplicate keys, code 11000, are
 * redeliveries and not errors), then contexts upserts, then state
 * replace-with-upsert. Idempotent, so a failed call is simply retried.
 * *n_dup (may be NULL) receives the number of history duplicates.
 */
int ctc_store_write(ctc_store *s, ctc_write_set *ws, size_t *n_dup, ct_error *err);

/* The stored form of a history record: "changes" as canonical JSON text. *out owned by caller. */
int ctc_history_to_bson(const json_t *record, bson_t *out, ct_error *err);

/* Inverse for readers: a stored history document with "changes" parsed back to JSON. */
int ctc_history_from_bson(const bson_t *doc, json_t **out, ct_error *err);

#endif
