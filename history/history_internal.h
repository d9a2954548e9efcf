/*
 * history_internal.h - what the files of ct_history share: the handle,
 * bounded reads of records and states, sorting, record predicates.
 */
#ifndef CTH_INTERNAL_H
#define CTH_INTERNAL_H

#include "changetrail/history.h"
#include "ct_internal.h"

#include <mongoc/mongoc.h>

struct ct_history {
	mongoc_client_t *client;
	mongoc_database_t *db;
	mongoc_collection_t *history, *state, *contexts, *context_parts;
	char *dbname;
};

int cth_mongo_error(ct_error *err, const char *what, const bson_error_t *e);

/* Documents per reply of the readers' queries (bounds each reply's size). */
#define CTH_FIND_BATCH 1000

/*
 * Reads every document of `coll` matching `filter` into a new array (at most
 * CT_HISTORY_MAX_RECORDS). With `as_history`, documents are history records:
 * "changes" (and a checkpoint's "doc") parsed back to JSON; otherwise states
 * or contexts with "doc"/"metadata"/"metadata_seen" parsed.
 */
int cth_find(ct_history *h, mongoc_collection_t *coll, const bson_t *filter, bool as_history,
	     json_t **out, ct_error *err);

/* Every record of one document, version order (oldest first). */
int cth_doc_records(ct_history *h, const char *collection, const char *document_id, json_t **out,
		    ct_error *err);

/* Sorts an array of records in place: oldest first by version (by_version) or newest first by ts. */
int cth_sort(json_t *arr, bool by_version, ct_error *err);

/* Accessors on records (json objects); "" / 0 when absent. */
const char *cth_str(const json_t *obj, const char *key);
int64_t cth_int(const json_t *obj, const char *key);

/* true for ops that do not change the document (event, relation_add/remove). */
bool cth_op_keeps_doc(const char *op);

/* Recomputes a record's hash; 1 when it matches the stored one, 0 when not, <0 error. */
int cth_hash_ok(const json_t *rec, ct_error *err);

/*
 * The state of a document at `version`, rebuilt from `records` (version
 * order, as cth_doc_records gives) and the stored `state` (may be NULL):
 * {collection, document_id, version, ts, deleted, hash, doc}. See
 * ct_history_state().
 */
int cth_rebuild(const json_t *records, const json_t *state, int64_t version, json_t **out,
		ct_error *err);

/*
 * A context as one object: its document (ctxs: an array of 0 or 1) with its
 * v1 parts (context_parts documents of it) folded in, in last_ts order
 * (docs/storage.md). *merged is NULL when there is neither.
 */
int cth_merge_context(const json_t *ctxs, const json_t *parts, json_t **merged, ct_error *err);

/* Canonical RFC 3339 text of µs into out[32]; CT_EINVAL out of range. */
int cth_ts_text(int64_t us, char out[32], ct_error *err);

#endif
