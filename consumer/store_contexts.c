/*
 * store_contexts.c - the consumer's writes to `contexts`: one upsert per
 * context ($min first_ts, $max last_ts, $inc event_count, $addToSet
 * collections, $set actor/parent/metadata), all in one unordered bulk. Two
 * consumers may hold events of one context: the operators merge on the
 * server, nothing is read here. A retried write (the states after it
 * failed) must not count twice: each upsert is guarded by the write's id,
 * kept in the last CTS_CONTEXT_WRITES ids of the context, and an upsert
 * that finds its id there collides (E11000): already applied.
 */
#include "store_internal.h"

#include "ct_internal.h"
#include "cts_mongo.h"

#include <string.h>

/* Write ids a context remembers: a retry comes right after its failure. */
#define CTS_CONTEXT_WRITES 8

static bool append_time(bson_t *d, const char *key, const char *text, ct_error *err, int *rc)
{
	char us_key[32];
	snprintf(us_key, sizeof(us_key), "%s_us", key);
	return !(*rc = cts_append_time(d, key, us_key, text, err));
}

/* The upsert of context `a` under write id `wid`, queued on `bulk`. */
static int queue_context(mongoc_bulk_operation_t *bulk, const ctc_context_agg *a, const char *wid, ct_error *err)
{
	bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, ne, op, each, wr, opts = BSON_INITIALIZER;
	bson_error_t e;
	int rc = 0;

	BSON_APPEND_UTF8(&sel, "_id", a->id);
	BSON_APPEND_DOCUMENT_BEGIN(&sel, "writes", &ne);
	BSON_APPEND_UTF8(&ne, "$ne", wid);
	bson_append_document_end(&sel, &ne);

	BSON_APPEND_DOCUMENT_BEGIN(&upd, "$min", &op);
	if (!append_time(&op, "first_ts", a->first_ts, err, &rc))
		goto out;
	bson_append_document_end(&upd, &op);
	BSON_APPEND_DOCUMENT_BEGIN(&upd, "$max", &op);
	if (!append_time(&op, "last_ts", a->last_ts, err, &rc))
		goto out;
	BSON_APPEND_BOOL(&op, "complete", a->complete);
	BSON_APPEND_BOOL(&op, "began", a->began);
	bson_append_document_end(&upd, &op);
	BSON_APPEND_DOCUMENT_BEGIN(&upd, "$inc", &op);
	BSON_APPEND_INT64(&op, "event_count", a->event_count);
	bson_append_document_end(&upd, &op);
	if (json_array_size(a->collections)) {
		BSON_APPEND_DOCUMENT_BEGIN(&upd, "$addToSet", &op);
		BSON_APPEND_DOCUMENT_BEGIN(&op, "collections", &each);
		if ((rc = cts_bson_append_json(&each, "$each", a->collections, err)))
			goto out;
		bson_append_document_end(&op, &each);
		bson_append_document_end(&upd, &op);
	}
	if (a->actor || a->parent_id || a->metadata_seen || (a->complete && a->metadata_final)) {
		BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &op);
		if (a->actor)
			BSON_APPEND_UTF8(&op, "actor", a->actor);
		if (a->parent_id)
			BSON_APPEND_UTF8(&op, "parent_id", a->parent_id);
		if (a->metadata_seen && (rc = cts_bson_append_json(&op, "metadata_seen", a->metadata_seen, err)))
			goto out;
		if (a->complete && a->metadata_final &&
		    (rc = cts_bson_append_json(&op, "metadata", a->metadata_final, err)))
			goto out;
		bson_append_document_end(&upd, &op);
	}
	BSON_APPEND_DOCUMENT_BEGIN(&upd, "$push", &op);
	BSON_APPEND_DOCUMENT_BEGIN(&op, "writes", &wr);
	BSON_APPEND_ARRAY_BEGIN(&wr, "$each", &each);
	BSON_APPEND_UTF8(&each, "0", wid);
	bson_append_array_end(&wr, &each);
	BSON_APPEND_INT32(&wr, "$slice", -CTS_CONTEXT_WRITES);
	bson_append_document_end(&op, &wr);
	bson_append_document_end(&upd, &op);

	BSON_APPEND_BOOL(&opts, "upsert", true);
	if (!mongoc_bulk_operation_update_one_with_opts(bulk, &sel, &upd, &opts, &e))
		rc = cts_mongo_error(err, "contexts upsert", &e);
out:
	bson_destroy(&sel);
	bson_destroy(&upd);
	bson_destroy(&opts);
	return rc;
}

/* true when every error of the reply is a duplicate key (an upsert already applied). */
static bool only_duplicates(const bson_t *reply)
{
	bson_iter_t it, arr, e;
	if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &arr) && bson_iter_next(&arr))
		return false;
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &arr))
		return false;
	size_t n = 0;
	while (bson_iter_next(&arr)) {
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &e) || !bson_iter_find(&e, "code") ||
		    bson_iter_as_int64(&e) != 11000)
			return false;
		n++;
	}
	return n > 0;
}

int ctc_store_write_contexts(ctc_store *s, const ctc_contexts *c, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply;
	bson_error_t e;
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(s->contexts, opts);
	bool ran = false;
	int rc = 0;
	for (size_t i = 0; i < c->n && !rc; i++)
		rc = queue_context(bulk, &c->items[i], c->write_id, err);
	if (rc)
		goto out;
	ran = true;
	if (!mongoc_bulk_operation_execute(bulk, &reply, &e) && !only_duplicates(&reply))
		rc = cts_mongo_error(err, "contexts upsert", &e);
out:
	if (ran)
		bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	return rc;
}
