/*
 * store_history.c - the consumer's history insert: one unordered bulk, and
 * every duplicate-key error classified by reading back what is stored. The
 * same record (collection, document_id, version, hash equal) is a
 * redelivery, counted and done; anything else is a conflict the caller gets
 * as a list (store.h): an event id reused for another record, or a version
 * already taken by another record. Error messages and counts of the reply
 * are not trusted (servers differ: docs/storage.md), only the stored records.
 */
#include "store_internal.h"

#include "ct_internal.h"

#include "ct_buf.h"
#include "cts_mongo.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* What identifies a record: its _id and (collection, document_id, version,
 * hash); sha256 (kafka.sha256) identifies the event it was made of. */
typedef struct rec_key {
	const char *id, *collection, *document_id, *hash, *sha256;
	int64_t version;
} rec_key;

static const char *utf8_of(const bson_t *d, const char *k)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, d, k) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

static int64_t int_of(const bson_t *d, const char *k)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, d, k) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : -1;
}

static void key_of(const bson_t *d, rec_key *k)
{
	k->id = utf8_of(d, "_id");
	k->collection = utf8_of(d, "collection");
	k->document_id = utf8_of(d, "document_id");
	k->hash = utf8_of(d, "hash");
	k->version = int_of(d, "version");
	bson_iter_t it, sha;
	k->sha256 = bson_iter_init(&it, d) && bson_iter_find_descendant(&it, "kafka.sha256", &sha) &&
			    BSON_ITER_HOLDS_UTF8(&sha)
		? bson_iter_utf8(&sha, NULL)
		: NULL;
}

static bool same_str(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* The positions (in the bulk) of its duplicate-key errors; -1 when any other error is there. */
static int duplicate_positions(const bson_t *reply, size_t **pos, size_t *n)
{
	bson_iter_t it, arr;
	*pos = NULL;
	*n = 0;
	if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it)) {
		bson_iter_t w;
		if (bson_iter_recurse(&it, &w) && bson_iter_next(&w))
			return -1;
	}
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &arr))
		return -1;
	while (bson_iter_next(&arr)) {
		bson_iter_t e;
		int64_t code = -1, index = -1;
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &e))
			goto bad;
		while (bson_iter_next(&e)) {
			if (!strcmp(bson_iter_key(&e), "code"))
				code = bson_iter_as_int64(&e);
			else if (!strcmp(bson_iter_key(&e), "index"))
				index = bson_iter_as_int64(&e);
		}
		if (code != 11000 || index < 0)
			goto bad;
		size_t *grown = realloc(*pos, (*n + 1) * sizeof(**pos));
		if (!grown)
			goto bad;
		*pos = grown;
		(*pos)[(*n)++] = (size_t)index;
	}
	return *n ? 0 : -1;
bad:
	free(*pos);
	*pos = NULL;
	*n = 0;
	return -1;
}

/* {_id, collection, document_id, version, hash} of a stored record (JSON). */
static json_t *summary(const bson_t *d)
{
	rec_key k;
	key_of(d, &k);
	return json_pack("{s:s?, s:s?, s:s?, s:I, s:s?}", "_id", k.id, "collection", k.collection, "document_id",
			 k.document_id, "version", (json_int_t)k.version, "hash", k.hash);
}

/* The fields classify() compares (a new document). */
static bson_t *projection(void)
{
	return BCON_NEW("projection", "{", "collection", BCON_INT32(1), "document_id", BCON_INT32(1), "version",
			BCON_INT32(1), "hash", BCON_INT32(1), "kafka.sha256", BCON_INT32(1), "}");
}

static int add_conflict(ctc_conflicts *c, size_t index, cts_conflict_kind kind, const char *id, json_t *stored,
			ct_error *err)
{
	ctc_conflict *grown = realloc(c->items, (c->n + 1) * sizeof(*grown));
	if (!grown) {
		json_decref(stored);
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	}
	c->items = grown;
	c->items[c->n++] = (ctc_conflict){.index = index, .kind = kind, .id = strdup(id ? id : ""), .stored = stored};
	return 0;
}

/*
 * Classifies the duplicates at positions pos[0..n) of the records `recs`:
 * one read of the stored records by _id, one more per record whose _id is
 * not stored (its version is taken by another record).
 */
static int classify(ctc_store *s, const bson_t *recs, size_t n_recs, const size_t *pos, size_t n, size_t *n_dup,
		    ctc_conflicts *conflicts, ct_error *err)
{
	bson_t filter = BSON_INITIALIZER, idq, in;
	bson_error_t e;
	const bson_t *d;
	bson_t **stored = calloc(n, sizeof(*stored));
	mongoc_cursor_t *cur = NULL;
	size_t redelivered = 0;
	int rc = 0;

	if (!stored)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &idq);
	BSON_APPEND_ARRAY_BEGIN(&idq, "$in", &in);
	for (size_t i = 0; i < n; i++) {
		char buf[16];
		const char *k, *id;
		if (pos[i] >= n_recs || !(id = utf8_of(&recs[pos[i]], "_id"))) {
			rc = ct_error_set(err, CT_EMONGO, "history insert: duplicate-key error at a bad position");
			goto out;
		}
		bson_uint32_to_string((uint32_t)i, &k, buf, sizeof(buf));
		BSON_APPEND_UTF8(&in, k, id);
	}
	bson_append_array_end(&idq, &in);
	bson_append_document_end(&filter, &idq);
	bson_t *opts = projection();
	cur = mongoc_collection_find_with_opts(s->history, &filter, opts, NULL);
	bson_destroy(opts);
	while (mongoc_cursor_next(cur, &d)) {
		const char *id = utf8_of(d, "_id");
		for (size_t i = 0; id && i < n; i++)
			if (!stored[i] && same_str(utf8_of(&recs[pos[i]], "_id"), id))
				stored[i] = bson_copy(d);
	}
	if (mongoc_cursor_error(cur, &e)) {
		rc = cts_mongo_error(err, "history read-back", &e);
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		rec_key ours, theirs;
		key_of(&recs[pos[i]], &ours);
		if (stored[i]) {
			key_of(stored[i], &theirs);
			if (same_str(ours.collection, theirs.collection) &&
			    same_str(ours.document_id, theirs.document_id) && ours.version == theirs.version &&
			    same_str(ours.hash, theirs.hash))
				redelivered++;
			else if (same_str(ours.collection, theirs.collection) &&
				 same_str(ours.document_id, theirs.document_id) && same_str(ours.sha256, theirs.sha256))
				/* the same message's event, recorded at another version: not a reuse */
				rc = add_conflict(conflicts, pos[i], CTS_CONFLICT_SAME_EVENT, ours.id, summary(stored[i]), err);
			else
				rc = add_conflict(conflicts, pos[i], CTS_CONFLICT_ID_REUSED, ours.id, summary(stored[i]), err);
			continue;
		}
		/* not stored under its _id: the collision was on (collection, document_id, version) */
		bson_t *q = BCON_NEW("collection", BCON_UTF8(ours.collection ? ours.collection : ""), "document_id",
				     BCON_UTF8(ours.document_id ? ours.document_id : ""), "version",
				     BCON_INT64(ours.version));
		bson_t *o = projection();
		BSON_APPEND_INT64(o, "limit", 1);
		mongoc_cursor_t *c2 = mongoc_collection_find_with_opts(s->history, q, o, NULL);
		json_t *sum = NULL;
		if (mongoc_cursor_next(c2, &d))
			sum = summary(d);
		if (mongoc_cursor_error(c2, &e))
			rc = cts_mongo_error(err, "history read-back", &e);
		mongoc_cursor_destroy(c2);
		bson_destroy(q);
		bson_destroy(o);
		if (rc)
			json_decref(sum);
		else if (!sum)
			/* gone in between (prune): the insert is simply retried */
			rc = ct_error_set(err, CT_EMONGO, "history insert: duplicate of a record no longer stored");
		else
			rc = add_conflict(conflicts, pos[i], CTS_CONFLICT_VERSION_TAKEN, ours.id, sum, err);
	}
	if (n_dup)
		*n_dup = redelivered;
out:
	mongoc_cursor_destroy(cur);
	for (size_t i = 0; i < n; i++)
		if (stored[i])
			bson_destroy(stored[i]);
	free(stored);
	bson_destroy(&filter);
	return rc;
}

const char *cts_conflict_kind_name(cts_conflict_kind k)
{
	switch (k) {
	case CTS_CONFLICT_ID_REUSED: return "id_reused";
	case CTS_CONFLICT_SAME_EVENT: return "same_event";
	default: return "version_taken";
	}
}

int ctc_store_write_history(ctc_store *s, ctc_write_set *ws, size_t *n_dup, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply, *recs = NULL;
	bson_error_t e;
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(s->history, opts);
	ct_buf from_json = {0};
	size_t n = 0, *pos = NULL, n_pos = 0;
	bool ran = false;
	int rc = 0;

	/* one list of records: the JSON ones converted, then the BSON ones */
	for (size_t i = 0; i < json_array_size(ws->history); i++) {
		bson_t doc = BSON_INITIALIZER;
		if (!(rc = cts_history_to_bson(json_array_get(ws->history, i), &doc, err)) &&
		    ct_buf_put(&from_json, bson_get_data(&doc), doc.len))
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		bson_destroy(&doc);
		if (rc)
			goto out;
	}
	const struct {
		const uint8_t *data;
		size_t len;
	} parts[2] = {{(const uint8_t *)from_json.data, from_json.len}, {ws->history_bson, ws->history_bson_len}};
	size_t cap = 0;
	for (int p = 0; p < 2; p++) {
		bson_t d;
		size_t off = 0;
		int r;
		while ((r = ctc_store_next_doc(parts[p].data, parts[p].len, &off, &d)) > 0)
			cap++;
		if (r < 0) {
			rc = ct_error_set(err, CT_EINVAL, "history: malformed BSON at offset %zu", off);
			goto out;
		}
	}
	/* static views never move once made (a static bson_t points into
	 * itself); bson_t asks for 128-byte alignment, more than malloc gives */
	size_t bytes = (cap ? cap : 1) * sizeof(*recs);
	bytes = (bytes + alignof(bson_t) - 1) / alignof(bson_t) * alignof(bson_t);
	if (!(recs = aligned_alloc(alignof(bson_t), bytes))) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	memset(recs, 0, bytes);
	for (int p = 0; p < 2; p++)
		for (size_t off = 0; n < cap && ctc_store_next_doc(parts[p].data, parts[p].len, &off, &recs[n]) > 0;)
			if (!mongoc_bulk_operation_insert_with_opts(bulk, &recs[n++], s->insert_opts, &e)) {
				rc = cts_mongo_error(err, "history insert", &e);
				goto out;
			}
	ran = true;
	if (mongoc_bulk_operation_execute(bulk, &reply, &e))
		goto out;
	if (duplicate_positions(&reply, &pos, &n_pos)) {
		rc = cts_mongo_error(err, "history insert", &e);
		goto out;
	}
	if ((rc = classify(s, recs, n, pos, n_pos, n_dup, &ws->conflicts, err)))
		goto out;
	if (ws->conflicts.n) {
		const ctc_conflict *c = &ws->conflicts.items[0];
		rc = ct_error_set(err, CT_ECONFLICT,
				  "history: %zu record(s) collide with stored records that are not their redelivery; "
				  "first: _id %s (%s), stored _id %s version %lld",
				  ws->conflicts.n, c->id, cts_conflict_kind_name(c->kind),
				  c->stored && json_string_value(json_object_get(c->stored, "_id"))
					  ? json_string_value(json_object_get(c->stored, "_id"))
					  : "?",
				  c->stored ? (long long)json_integer_value(json_object_get(c->stored, "version")) : -1LL);
	}
out:
	if (ran)
		bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	free(recs);
	free(pos);
	ct_buf_free(&from_json);
	return rc;
}
