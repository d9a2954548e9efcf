/*
 * store_contexts.c - the consumer's writes to `contexts`: one upsert per
 * context ($min first_ts, $max last_ts, $inc event_count, $addToSet
 * collections, $set actor/parent/metadata), all in one unordered bulk. Two
 * consumers may hold events of one context: the operators merge on the
 * server, nothing is read here. The filter is the _id alone: an index
 * serves it on every server (a guard such as {writes: {$ne: W}} beside it
 * made mongo-java-server scan the collection for every statement: 4.7 s of
 * a 20000-event run with contexts of 5). A write retried because the
 * states after it failed does not redo the contexts (ctc_contexts.written);
 * one retried after the contexts bulk itself failed half-way may count
 * those events twice in event_count, which is advisory (docs/storage.md).
 */
#include "store_internal.h"

#include "ct_internal.h"
#include "cts_mongo.h"

#include <stdlib.h>
#include <string.h>

static bool append_time(bson_t *d, const char *key, const char *text, ct_error *err, int *rc)
{
	char us_key[32];
	snprintf(us_key, sizeof(us_key), "%s_us", key);
	return !(*rc = cts_append_time(d, key, us_key, text, err));
}

/* The upsert of context `a`, queued on `bulk`. */
static int queue_context(mongoc_bulk_operation_t *bulk, const ctc_context_agg *a, ct_error *err)
{
	bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, op, each, opts = BSON_INITIALIZER;
	bson_error_t e;
	int rc = 0;

	BSON_APPEND_UTF8(&sel, "_id", a->id);

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
	BSON_APPEND_BOOL(&opts, "upsert", true);
	if (!mongoc_bulk_operation_update_one_with_opts(bulk, &sel, &upd, &opts, &e))
		rc = cts_mongo_error(err, "contexts upsert", &e);
out:
	bson_destroy(&sel);
	bson_destroy(&upd);
	bson_destroy(&opts);
	return rc;
}

/*
 * The bulk positions of the reply's duplicate-key errors into idx (n of
 * them): two upserts creating one context at once, the loser to be sent
 * again (it then updates). false when any other error is there.
 */
static bool duplicate_positions(const bson_t *reply, size_t *idx, size_t cap, size_t *n)
{
	bson_iter_t it, arr, e;
	*n = 0;
	if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &arr) && bson_iter_next(&arr))
		return false;
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &arr))
		return false;
	while (bson_iter_next(&arr)) {
		int64_t code = -1, index = -1;
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &e))
			return false;
		while (bson_iter_next(&e)) {
			if (!strcmp(bson_iter_key(&e), "code"))
				code = bson_iter_as_int64(&e);
			else if (!strcmp(bson_iter_key(&e), "index"))
				index = bson_iter_as_int64(&e);
		}
		if (code != 11000 || index < 0 || (size_t)index >= cap || *n == cap)
			return false;
		idx[(*n)++] = (size_t)index;
	}
	return *n > 0;
}

int ctc_store_write_contexts(ctc_store *s, ctc_contexts *c, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	size_t *todo = malloc((c->n ? c->n : 1) * sizeof(*todo)), *dup = malloc((c->n ? c->n : 1) * sizeof(*dup));
	size_t n = c->n, n_dup = 0;
	int rc = 0;
	if (!todo || !dup) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		todo[i] = i;
	/* a lost race to create a context is sent again, as an update; bounded */
	for (int attempt = 0; n && !rc; attempt++) {
		bson_error_t e;
		bson_t reply;
		mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(s->contexts, opts);
		for (size_t i = 0; i < n && !rc; i++)
			rc = queue_context(bulk, &c->items[todo[i]], err);
		if (!rc) {
			if (mongoc_bulk_operation_execute(bulk, &reply, &e))
				n = 0;
			else if (attempt < 3 && duplicate_positions(&reply, dup, n, &n_dup)) {
				for (size_t i = 0; i < n_dup; i++)
					dup[i] = todo[dup[i]];
				memcpy(todo, dup, n_dup * sizeof(*todo));
				n = n_dup;
			} else {
				rc = cts_mongo_error(err, "contexts upsert", &e);
			}
			bson_destroy(&reply);
		}
		mongoc_bulk_operation_destroy(bulk);
	}
	if (!rc)
		c->written = true;
out:
	free(todo);
	free(dup);
	bson_destroy(opts);
	return rc;
}
