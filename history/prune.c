/*
 * prune.c - retention. The prefix of a document's chain older than the
 * cutoff is replaced by one checkpoint record holding the state and the
 * hash it reached, so the rest of the chain still verifies. Record N is
 * replaced in place before versions < N are deleted: a crash in between
 * leaves a chain that still verifies, and a rerun finishes the job.
 */
#include "history_internal.h"

#include "changetrail/canonical.h"
#include "cts_codec.h"

#include <stdlib.h>
#include <string.h>

/* The stored checkpoint that replaces record `rec` (state `st` at its version). */
static int checkpoint_bson(const json_t *rec, const json_t *st, const char *cutoff, int64_t from,
			   bson_t *out, ct_error *err)
{
	json_t *ck = NULL;
	int rc;
	json_t *doc = json_object_get(st, "doc");
	json_t *parent = json_object_get(rec, "parent"), *ph = json_object_get(rec, "prev_hash");
	ck = json_pack("{s:s, s:s, s:s, s:I, s:s, s:n, s:s, s:n, s:n, s:n, s:n, s:O, s:n, s:[], s:O, s:b,"
		       " s:O, s:s, s:s, s:I}",
		       "_id", cth_str(rec, "_id"), "collection", cth_str(rec, "collection"), "document_id",
		       cth_str(rec, "document_id"), "version", (json_int_t)cth_int(rec, "version"), "op",
		       "checkpoint", "label", "ts", cth_str(rec, "ts"), "actor", "context_id", "source", "seq",
		       "parent", parent ? parent : json_null(), "relation", "changes", "doc", doc ? doc : json_null(), "deleted",
		       json_is_true(json_object_get(st, "deleted")), "prev_hash", ph ? ph : json_null(), "hash",
		       cth_str(rec, "hash"), "pruned_before", cutoff, "pruned_from_version", (json_int_t)from);
	if (!ck)
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
	else
		rc = cts_history_to_bson(ck, out, err);
	json_decref(ck);
	return rc;
}

/* Prunes one document up to version n; appends to `res`. */
static int prune_doc(ct_history *h, const char *coll, const char *id, int64_t n, const char *cutoff,
		     bool dry_run, json_t *res, ct_error *err)
{
	json_t *recs = NULL, *st = NULL;
	bson_t ck = BSON_INITIALIZER;
	bson_error_t e;
	int rc;
	int64_t deleted = 0;

	if ((rc = cth_doc_records(h, coll, id, &recs, err)))
		goto out;
	const json_t *first = json_array_get(recs, 0), *rec = NULL;
	for (size_t i = 0; i < json_array_size(recs); i++)
		if (cth_int(json_array_get(recs, i), "version") == n)
			rec = json_array_get(recs, i);
		else if (cth_int(json_array_get(recs, i), "version") < n)
			deleted++;
	if (!rec)
		goto out;
	if (deleted == 0 && !strcmp(cth_str(rec, "op"), "checkpoint"))
		goto out; /* already pruned to here */
	{
		ct_error rerr;
		/* a chain that does not rebuild is evidence: never prune it */
		if (cth_rebuild(recs, NULL, n, &st, &rerr)) {
			json_array_append_new(json_object_get(res, "skipped"),
					      json_pack("{s:s, s:s, s:s}", "collection", coll, "document_id", id,
							"reason", rerr.message));
			goto out;
		}
	}
	if (!dry_run) {
		if (strcmp(cth_str(rec, "op"), "checkpoint")) {
			bson_t *sel = BCON_NEW("_id", BCON_UTF8(cth_str(rec, "_id")));
			rc = checkpoint_bson(rec, st, cutoff, cth_int(first, "version"), &ck, err);
			if (!rc && !mongoc_collection_replace_one(h->history, sel, &ck, NULL, NULL, &e))
				rc = cth_mongo_error(err, "checkpoint", &e);
			bson_destroy(sel);
			if (rc)
				goto out;
		}
		bson_t *del = BCON_NEW("collection", BCON_UTF8(coll), "document_id", BCON_UTF8(id), "version", "{",
				       "$lt", BCON_INT64(n), "}");
		if (!mongoc_collection_delete_many(h->history, del, NULL, NULL, &e))
			rc = cth_mongo_error(err, "delete pruned records", &e);
		bson_destroy(del);
		if (rc)
			goto out;
	}
	json_object_set_new(res, "records_deleted",
			    json_integer(cth_int(res, "records_deleted") + deleted));
	json_array_append_new(json_object_get(res, "checkpoints"),
			      json_pack("{s:s, s:s, s:I, s:I, s:b}", "collection", coll, "document_id", id,
					"version", (json_int_t)n, "records_deleted", (json_int_t)deleted,
					"deleted", json_is_true(json_object_get(st, "deleted"))));
out:
	bson_destroy(&ck);
	json_decref(recs);
	json_decref(st);
	return rc;
}

int ct_history_prune(ct_history *h, int64_t cutoff_us, const char *collection, bool dry_run,
		     json_t **out, ct_error *err)
{
	json_t *old = NULL, *newest = NULL, *res = NULL;
	char cutoff[32];
	bson_t f = BSON_INITIALIZER, lt;
	int rc;

	if (!h || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_prune: NULL argument");
	*out = NULL;
	if ((rc = cth_ts_text(cutoff_us, cutoff, err)))
		return rc;
	if (collection)
		BSON_APPEND_UTF8(&f, "collection", collection);
	/* stored form v2: exact µs in ts_us; a v1 record: ts as text */
	bson_t or, br;
	BSON_APPEND_ARRAY_BEGIN(&f, "$or", &or);
	BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &br);
	BSON_APPEND_DOCUMENT_BEGIN(&br, "ts_us", &lt);
	BSON_APPEND_INT64(&lt, "$lt", cutoff_us);
	bson_append_document_end(&br, &lt);
	bson_append_document_end(&or, &br);
	BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &br);
	BSON_APPEND_DOCUMENT_BEGIN(&br, "ts", &lt);
	BSON_APPEND_UTF8(&lt, "$lt", cutoff);
	bson_append_document_end(&br, &lt);
	bson_append_document_end(&or, &br);
	bson_append_array_end(&f, &or);
	if ((rc = cth_find(h, h->history, &f, true, &old, err)))
		goto out;
	res = json_pack("{s:I, s:I, s:[], s:[], s:s, s:b}", "documents", (json_int_t)0, "records_deleted",
			(json_int_t)0, "checkpoints", "skipped", "cutoff", cutoff, "dry_run", dry_run);
	if (!res || !(newest = json_object())) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	/* per document: the newest version older than the cutoff */
	for (size_t i = 0; i < json_array_size(old); i++) {
		json_t *r = json_array_get(old, i), *cur;
		char key[2048];
		snprintf(key, sizeof(key), "%s/%s", cth_str(r, "collection"), cth_str(r, "document_id"));
		cur = json_object_get(newest, key);
		if (!cur || cth_int(cur, "version") < cth_int(r, "version"))
			json_object_set(newest, key, r);
	}
	const char *key;
	json_t *r;
	json_object_foreach(newest, key, r) {
		if ((rc = prune_doc(h, cth_str(r, "collection"), cth_str(r, "document_id"), cth_int(r, "version"),
				    cutoff, dry_run, res, err)))
			goto out;
	}
	json_object_set_new(res, "documents", json_integer((json_int_t)json_array_size(json_object_get(res, "checkpoints"))));
	*out = res;
	res = NULL;
out:
	bson_destroy(&f);
	json_decref(old);
	json_decref(newest);
	json_decref(res);
	return rc;
}
