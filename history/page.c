/*
 * page.c - the paginated reads behind `changetrail serve` (docs/web.md):
 * a document's timeline one page at a time, the states of a collection by
 * id prefix, the records of an actor or of a time range, and a document at
 * a version together with its current state. Every query is shaped for an
 * index: a timeline reads each version with an equality on all the keys of
 * `doc_version` (the only form every server, mongo-java-server included,
 * serves from an index), so a page costs the same for a document with 10
 * versions or 100000; the states go by `_id` prefix, the record listings by
 * `actor_ts` or `ts`, newest first.
 */
#include "history_internal.h"

#include "cts_codec.h"

#include "changetrail/diff.h"
#include "changetrail/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How far below the newest version a version is rebuilt from the state by indexed lookups. */
#define CTH_NEAR_NEWEST 100

/* Reads the history record of one version (*out NULL when there is none). */
static int record_at(ct_history *h, const char *collection, const char *document_id, int64_t version,
		     json_t **out, ct_error *err)
{
	bson_error_t e;
	const bson_t *doc;
	int rc = 0;
	*out = NULL;
	bson_t *f = BCON_NEW("collection", BCON_UTF8(collection), "document_id", BCON_UTF8(document_id),
			     "version", BCON_INT64(version));
	bson_t *o = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h->history, f, o, NULL);
	if (mongoc_cursor_next(cur, &doc))
		rc = cts_history_from_bson(doc, out, err);
	else if (mongoc_cursor_error(cur, &e))
		rc = cth_mongo_error(err, "find", &e);
	mongoc_cursor_destroy(cur);
	bson_destroy(f);
	bson_destroy(o);
	return rc;
}

/* The newest version: the stored state's, or past it while the state is behind its history. */
static int newest_version(ct_history *h, const char *collection, const char *document_id, const json_t *state,
			  int64_t *top, ct_error *err)
{
	json_t *r = NULL;
	int rc = 0;
	*top = state ? cth_int(state, "version") : 0;
	for (int64_t probes = 0; probes < CT_HISTORY_MAX_RECORDS; probes++) {
		if ((rc = record_at(h, collection, document_id, *top + 1, &r, err)))
			return rc;
		if (!r)
			return 0;
		json_decref(r);
		(*top)++;
	}
	return ct_error_set(err, CT_ELIMIT, "more than %d versions past the state", CT_HISTORY_MAX_RECORDS);
}

int ct_history_timeline(ct_history *h, const char *collection, const char *document_id, int64_t before_version,
			int limit, json_t **out, ct_error *err)
{
	json_t *state = NULL, *recs = NULL, *res = NULL, *r = NULL;
	int64_t top = 0, lowest = 0;
	bool reached_base = false;
	int rc;

	if (!h || !collection || !document_id || !out || before_version < 0 || limit < 1 ||
	    limit > CT_HISTORY_PAGE_MAX)
		return ct_error_set(err, CT_EINVAL, "ct_history_timeline: bad argument");
	*out = NULL;
	rc = ct_history_stored_state(h, collection, document_id, &state, err);
	if (rc && rc != CT_ENOTFOUND)
		goto out;
	if ((rc = newest_version(h, collection, document_id, state, &top, err)))
		goto out;
	if (top == 0) {
		rc = ct_error_set(err, CT_ENOTFOUND, "%s/%s has no history", collection, document_id);
		goto out;
	}
	if (!(recs = json_array())) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	int64_t v = before_version > 0 && before_version - 1 < top ? before_version - 1 : top;
	/* a gap (pruned or missing versions) costs at most `limit` probes in a row */
	for (int misses = 0; v >= 1 && (int)json_array_size(recs) < limit && misses < limit; v--) {
		if ((rc = record_at(h, collection, document_id, v, &r, err)))
			goto out;
		if (!r) {
			misses++;
			continue;
		}
		misses = 0;
		lowest = v;
		bool checkpoint = !strcmp(cth_str(r, "op"), "checkpoint");
		json_object_del(r, "kafka");
		if (json_array_append_new(recs, r)) {
			r = NULL;
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		r = NULL;
		if (checkpoint) {
			reached_base = true;
			break;
		}
	}
	if (v < 1)
		reached_base = true;
	bool deleted = state && json_is_true(json_object_get(state, "deleted")) &&
		       cth_int(state, "version") == top;
	res = json_pack("{s:s, s:s, s:I, s:I, s:b, s:O}", "collection", collection, "document_id", document_id,
			"current_version", (json_int_t)top, "state_version",
			(json_int_t)(state ? cth_int(state, "version") : 0), "deleted", deleted, "records", recs);
	if (!res || json_object_set_new(res, "next_before",
					 reached_base || !lowest ? json_null() : json_integer(lowest))) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	if (!deleted && top > cth_int(state, "version")) {
		/* the state is behind: the newest record tells whether it is a delete */
		json_t *last = cth_int(json_array_get(recs, 0), "version") == top ? json_array_get(recs, 0) : NULL;
		if (last && !strcmp(cth_str(last, "op"), "delete"))
			json_object_set_new(res, "deleted", json_true());
	}
	*out = res;
	res = NULL;
out:
	json_decref(state);
	json_decref(recs);
	json_decref(res);
	json_decref(r);
	return rc;
}

/* The document a record shows: its state's "doc" or, deleted, the document before the delete. */
static int shown_doc(const json_t *rec, const json_t *doc, bool *deleted, json_t **out, ct_error *err)
{
	*deleted = !strcmp(cth_str(rec, "op"), "delete");
	if (!*deleted) {
		*out = json_deep_copy(doc);
		return *out ? 0 : ct_error_set(err, CT_ENOMEM, "out of memory");
	}
	json_t *empty = json_object();
	int rc = empty ? ct_revert(json_object_get(rec, "changes"), empty, out, err)
		       : ct_error_set(err, CT_ENOMEM, "out of memory");
	json_decref(empty);
	return rc;
}

/*
 * A version close to the newest: the records above it are read one by one
 * on the doc_version index and reverted from the stored state, each hash
 * checked. 1 (nothing set) when this does not apply and the whole history
 * must be read: the state behind or not matching its record, the version
 * too far back, or a version whose own record does not tell the document
 * (event, relation, checkpoint, or a delete far from it).
 */
static int near_newest(ct_history *h, const char *collection, const char *document_id, int64_t version,
		       json_t **at, json_t **current, ct_error *err)
{
	json_t *state = NULL, *recs = NULL, *r = NULL, *cur = NULL, *next = NULL, *shown = NULL;
	int64_t top;
	int rc = ct_history_stored_state(h, collection, document_id, &state, err);
	if (rc == CT_ENOTFOUND) {
		rc = 1;
		goto out;
	}
	if (rc || (rc = newest_version(h, collection, document_id, state, &top, err)))
		goto out;
	rc = 1;
	if (version == 0)
		version = top;
	if (version < 1 || version > top || top - version > CTH_NEAR_NEWEST || cth_int(state, "version") != top ||
	    !json_is_object(json_object_get(state, "doc")) || !(recs = json_array()))
		goto out;
	for (int64_t v = top; v >= version; v--) { /* recs[i] is version top - i */
		if ((rc = record_at(h, collection, document_id, v, &r, err)))
			goto out;
		const char *op = r ? cth_str(r, "op") : "checkpoint";
		if (!r || !strcmp(op, "checkpoint") || (v == version && cth_op_keeps_doc(op)) ||
		    (v == top && strcmp(cth_str(r, "hash"), cth_str(state, "hash")))) {
			rc = 1;
			goto out;
		}
		int ok = cth_hash_ok(r, err);
		if (ok <= 0) {
			rc = ok < 0 ? ok : ct_error_set(err, CT_ECONFLICT, "record version %lld (%s) does not match its hash",
						       (long long)v, cth_str(r, "_id"));
			goto out;
		}
		if (json_array_append_new(recs, r)) {
			r = NULL;
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		r = NULL;
	}
	/* backward from the state: {} after a delete, as the consumer diffs */
	bool state_deleted = json_is_true(json_object_get(state, "deleted"));
	if (!(cur = state_deleted ? json_object() : json_deep_copy(json_object_get(state, "doc")))) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	size_t n = json_array_size(recs);
	for (size_t i = 0; i + 1 < n; i++) {
		const json_t *rec = json_array_get(recs, i);
		if (cth_op_keeps_doc(cth_str(rec, "op")))
			continue;
		if ((rc = ct_revert(json_object_get(rec, "changes"), cur, &next, err)))
			goto out;
		json_decref(cur);
		cur = next;
		next = NULL;
	}
	const json_t *t = json_array_get(recs, n - 1), *newest = json_array_get(recs, 0);
	bool del_at, del_cur;
	if ((rc = shown_doc(t, cur, &del_at, &shown, err)))
		goto out;
	*at = json_pack("{s:s, s:s, s:I, s:s, s:b, s:s, s:o}", "collection", collection, "document_id", document_id,
			"version", (json_int_t)version, "ts", cth_str(t, "ts"), "deleted", del_at, "hash",
			cth_str(t, "hash"), "doc", shown);
	shown = NULL;
	json_decref(cur);
	cur = NULL;
	/* the newest: after a delete (an event or relation may follow it) the state keeps the document
	 * as it was before the delete, which is what is shown */
	if (state_deleted && strcmp(cth_str(newest, "op"), "delete"))
		shown = json_deep_copy(json_object_get(state, "doc"));
	else if ((rc = shown_doc(newest, json_object_get(state, "doc"), &del_cur, &shown, err)))
		goto out;
	*current = shown ? json_pack("{s:s, s:s, s:I, s:s, s:b, s:s, s:o}", "collection", collection, "document_id",
				     document_id, "version", (json_int_t)top, "ts", cth_str(newest, "ts"), "deleted",
				     state_deleted, "hash", cth_str(newest, "hash"), "doc", shown)
			 : NULL;
	shown = NULL;
	rc = *at && *current ? 0 : ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	if (rc) {
		json_decref(*at);
		json_decref(*current);
		*at = *current = NULL;
	}
	json_decref(state);
	json_decref(recs);
	json_decref(r);
	json_decref(cur);
	json_decref(next);
	json_decref(shown);
	return rc;
}

int ct_history_state_and_current(ct_history *h, const char *collection, const char *document_id, int64_t version,
				 int64_t at_us, json_t **at, json_t **current, ct_error *err)
{
	json_t *records = NULL, *state = NULL;
	char attext[32];
	int rc;

	if (!h || !collection || !document_id || !at || !current || version < 0)
		return ct_error_set(err, CT_EINVAL, "ct_history_state_and_current: bad argument");
	*at = *current = NULL;
	if (at_us == CT_HISTORY_NO_TIME || at_us == 0 || version) {
		rc = near_newest(h, collection, document_id, version, at, current, err);
		if (rc <= 0)
			return rc;
	}
	if ((rc = cth_doc_records(h, collection, document_id, &records, err)))
		goto out;
	rc = ct_history_stored_state(h, collection, document_id, &state, err);
	if (rc && rc != CT_ENOTFOUND)
		goto out;
	rc = 0;
	size_t n = json_array_size(records);
	if (n == 0) {
		rc = ct_error_set(err, CT_ENOTFOUND, "%s/%s has no history", collection, document_id);
		goto out;
	}
	int64_t newest = cth_int(json_array_get(records, n - 1), "version");
	if (version == 0 && at_us != CT_HISTORY_NO_TIME && at_us != 0) {
		if ((rc = cth_ts_text(at_us, attext, err)))
			goto out;
		/* the newest version written at or before `at` (clocks may disagree: all are looked at) */
		for (size_t i = 0; i < n; i++) {
			const json_t *r = json_array_get(records, i);
			if (strcmp(cth_str(r, "ts"), attext) <= 0 && cth_int(r, "version") > version)
				version = cth_int(r, "version");
		}
		if (version == 0) {
			rc = ct_error_set(err, CT_ENOTFOUND, "%s/%s has no version at or before %s", collection,
					  document_id, attext);
			goto out;
		}
	} else if (version == 0) {
		version = newest;
	}
	if ((rc = cth_rebuild(records, state, version, at, err)) ||
	    (rc = cth_rebuild(records, state, newest, current, err)))
		goto out;
out:
	if (rc) {
		json_decref(*at);
		json_decref(*current);
		*at = *current = NULL;
	}
	json_decref(records);
	json_decref(state);
	return rc;
}

/* Appends `s` to the regular expression in b[size] at *len with its metacharacters escaped. */
static int regex_literal(char *b, size_t size, size_t *len, const char *s, ct_error *err)
{
	for (; *s; s++) {
		bool meta = strchr("\\^$.|?*+()[]{}", *s) != NULL;
		if (*len + 3 > size)
			return ct_error_set(err, CT_ELIMIT, "search text too long");
		if (meta)
			b[(*len)++] = '\\';
		b[(*len)++] = *s;
	}
	b[*len] = '\0';
	return 0;
}

/* A state's summary: {collection, document_id, version, deleted, ts}, from the stored document. */
static int state_summary(const bson_t *doc, json_t **out, ct_error *err)
{
	bson_iter_t it;
	char ts[32] = "";
	const char *c = bson_iter_init_find(&it, doc, "collection") && BSON_ITER_HOLDS_UTF8(&it)
				? bson_iter_utf8(&it, NULL) : "";
	json_t *cj = json_string(c);
	const char *d = bson_iter_init_find(&it, doc, "document_id") && BSON_ITER_HOLDS_UTF8(&it)
				? bson_iter_utf8(&it, NULL) : "";
	json_t *dj = json_string(d);
	int64_t version = bson_iter_init_find(&it, doc, "version") && BSON_ITER_HOLDS_NUMBER(&it)
				  ? bson_iter_as_int64(&it) : 0;
	bool deleted = bson_iter_init_find(&it, doc, "deleted") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
	if (bson_iter_init_find(&it, doc, "ts") && cts_get_time(doc, "ts", "ts_us", ts, NULL))
		ts[0] = '\0';
	*out = cj && dj ? json_pack("{s:O, s:O, s:I, s:b, s:s?}", "collection", cj, "document_id", dj,
				    "version", (json_int_t)version, "deleted", deleted, "ts", ts[0] ? ts : NULL)
			: NULL;
	json_decref(cj);
	json_decref(dj);
	return *out ? 0 : ct_error_set(err, CT_EINVAL, "a state with a collection or id that is not UTF-8");
}

int ct_history_documents(ct_history *h, const char *collection, const char *id_prefix, const char *after,
			 int limit, json_t **out, ct_error *err)
{
	bson_error_t e;
	const bson_t *doc;
	bson_t f = BSON_INITIALIZER, idf, *o = NULL;
	mongoc_cursor_t *cur = NULL;
	json_t *docs = NULL, *s = NULL;
	char re[1200];
	size_t len = 0;
	int rc = 0;

	if (!h || !out || limit < 1 || limit > CT_HISTORY_PAGE_MAX || (id_prefix && *id_prefix && !collection))
		return ct_error_set(err, CT_EINVAL, "ct_history_documents: bad argument");
	*out = NULL;
	re[0] = '^';
	len = 1;
	re[1] = '\0';
	/* the states' _id is "<collection>/<document_id>": a prefix of it is a range of the _id index */
	if (collection && (rc = regex_literal(re, sizeof(re), &len, collection, err)))
		goto out;
	if (collection && (rc = regex_literal(re, sizeof(re), &len, "/", err)))
		goto out;
	if (id_prefix && (rc = regex_literal(re, sizeof(re), &len, id_prefix, err)))
		goto out;
	/* {$and: [{_id: {$regex}}, {_id: {$gt: after}}]}: mongo-java-server drops a $gt beside a $regex */
	bson_t and, one;
	BSON_APPEND_ARRAY_BEGIN(&f, "$and", &and);
	BSON_APPEND_DOCUMENT_BEGIN(&and, "0", &one);
	BSON_APPEND_DOCUMENT_BEGIN(&one, "_id", &idf);
	if (len > 1)
		BSON_APPEND_UTF8(&idf, "$regex", re); /* a string: what every server takes */
	else
		BSON_APPEND_BOOL(&idf, "$exists", true);
	bson_append_document_end(&one, &idf);
	bson_append_document_end(&and, &one);
	if (after && *after) {
		BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &one);
		BSON_APPEND_DOCUMENT_BEGIN(&one, "_id", &idf);
		BSON_APPEND_UTF8(&idf, "$gt", after);
		bson_append_document_end(&one, &idf);
		bson_append_document_end(&and, &one);
	}
	bson_append_array_end(&f, &and);
	o = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(limit + 1), "projection", "{",
		     "collection", BCON_INT32(1), "document_id", BCON_INT32(1), "version", BCON_INT32(1), "deleted",
		     BCON_INT32(1), "ts", BCON_INT32(1), "ts_us", BCON_INT32(1), "}");
	if (!(docs = json_array())) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	cur = mongoc_collection_find_with_opts(h->state, &f, o, NULL);
	const char *next = NULL;
	bson_iter_t it;
	while (mongoc_cursor_next(cur, &doc)) {
		if ((int)json_array_size(docs) == limit) {
			next = "";
			break;
		}
		if ((rc = state_summary(doc, &s, err)))
			goto out;
		if (json_array_append_new(docs, s)) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it))
			json_object_set_new(s, "_id", json_string(bson_iter_utf8(&it, NULL)));
	}
	if (!next && mongoc_cursor_error(cur, &e)) {
		rc = cth_mongo_error(err, "find", &e);
		goto out;
	}
	json_t *lastdoc = json_array_get(docs, json_array_size(docs) - 1);
	json_t *nx = next && lastdoc ? json_string(cth_str(lastdoc, "_id")) : json_null();
	for (size_t i = 0; i < json_array_size(docs); i++)
		json_object_del(json_array_get(docs, i), "_id");
	if (!(*out = json_pack("{s:O, s:o}", "documents", docs, "next_after", nx)))
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	mongoc_cursor_destroy(cur);
	bson_destroy(&f);
	if (o)
		bson_destroy(o);
	json_decref(docs);
	return rc;
}

/* Floor of µs to ms (toward -infinity, as the stored BSON date is). */
static int64_t floor_ms(int64_t us)
{
	return us >= 0 ? us / 1000 : -((-us + 999) / 1000);
}

int ct_history_records(ct_history *h, const ct_history_records_query *q, json_t **out, ct_error *err)
{
	bson_error_t e;
	const bson_t *doc;
	bson_t f = BSON_INITIALIZER, tsf, *o = NULL;
	mongoc_cursor_t *cur = NULL;
	json_t *recs = NULL, *r = NULL;
	char since[32] = "", until[32] = "";
	int rc = 0;

	if (!h || !q || !out || q->limit < 1 || q->limit > CT_HISTORY_PAGE_MAX || q->cursor_skip < 0)
		return ct_error_set(err, CT_EINVAL, "ct_history_records: bad argument");
	*out = NULL;
	if ((q->since_us != CT_HISTORY_NO_TIME && (rc = cth_ts_text(q->since_us, since, err))) ||
	    (q->until_us != CT_HISTORY_NO_TIME && (rc = cth_ts_text(q->until_us, until, err))))
		return rc;
	if (q->actor)
		BSON_APPEND_UTF8(&f, "actor", q->actor);
	int64_t hi_ms = q->until_us != CT_HISTORY_NO_TIME ? floor_ms(q->until_us) : INT64_MAX;
	if (q->cursor_ms != CT_HISTORY_NO_TIME && q->cursor_ms < hi_ms)
		hi_ms = q->cursor_ms;
	if (q->since_us != CT_HISTORY_NO_TIME || hi_ms != INT64_MAX) {
		BSON_APPEND_DOCUMENT_BEGIN(&f, "ts", &tsf);
		if (q->since_us != CT_HISTORY_NO_TIME)
			BSON_APPEND_DATE_TIME(&tsf, "$gte", floor_ms(q->since_us));
		if (hi_ms != INT64_MAX)
			BSON_APPEND_DATE_TIME(&tsf, "$lte", hi_ms);
		bson_append_document_end(&f, &tsf);
	}
	/* sorted on the index's own key: (actor, ts) or (ts); ties keep index order */
	o = BCON_NEW("sort", "{", "ts", BCON_INT32(-1), "}");
	if (!(recs = json_array())) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	cur = mongoc_collection_find_with_opts(h->history, &f, o, NULL);
	int64_t skip = q->cursor_ms != CT_HISTORY_NO_TIME ? q->cursor_skip : 0;
	int64_t last_ms = INT64_MIN, same = 0;
	bool more = false;
	bson_iter_t it;
	while (mongoc_cursor_next(cur, &doc)) {
		int64_t ms = bson_iter_init_find(&it, doc, "ts") && BSON_ITER_HOLDS_DATE_TIME(&it)
				     ? bson_iter_date_time(&it) : INT64_MIN;
		if ((rc = cts_history_from_bson(doc, &r, err)))
			goto out;
		const char *ts = cth_str(r, "ts");
		bool outside = (*since && strcmp(ts, since) < 0) || (*until && strcmp(ts, until) > 0);
		if (outside || (q->cursor_ms != CT_HISTORY_NO_TIME && ms == q->cursor_ms && skip > 0)) {
			/* within the bounds' millisecond but outside their µs, or shown on the previous page */
			skip -= !outside;
			json_decref(r);
			r = NULL;
			continue;
		}
		if ((int)json_array_size(recs) == q->limit) {
			more = true;
			break;
		}
		json_object_del(r, "kafka");
		if (json_array_append_new(recs, r)) {
			r = NULL;
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		r = NULL;
		same = ms == last_ms ? same + 1 : 1;
		last_ms = ms;
	}
	if (!more && mongoc_cursor_error(cur, &e)) {
		rc = cth_mongo_error(err, "find", &e);
		goto out;
	}
	/* the next page starts at the last millisecond shown, past the records of it already shown */
	if (more && q->cursor_ms != CT_HISTORY_NO_TIME && last_ms == q->cursor_ms)
		same += q->cursor_skip;
	*out = more ? json_pack("{s:O, s:{s:I, s:I}}", "records", recs, "next", "ms", (json_int_t)last_ms, "skip",
				(json_int_t)same)
		    : json_pack("{s:O, s:n}", "records", recs, "next");
	if (!*out)
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	json_decref(r);
	mongoc_cursor_destroy(cur);
	bson_destroy(&f);
	if (o)
		bson_destroy(o);
	json_decref(recs);
	return rc;
}
