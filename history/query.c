/*
 * query.c - the listing reads: a document's log (with its children), a
 * context (changeset) with every record across collections, an actor's
 * records. Time bounds are compared as canonical RFC 3339 text, which is
 * how records store ts and sorts as time.
 */
#include "history_internal.h"

#include <string.h>

/* Keeps the records of `arr` whose ts is within [since, until] (text bounds, "" = none). */
static int filter_ts(json_t *arr, const char *since, const char *until, ct_error *err)
{
	for (size_t i = json_array_size(arr); i-- > 0;) {
		const char *ts = cth_str(json_array_get(arr, i), "ts");
		if ((*since && strcmp(ts, since) < 0) || (*until && strcmp(ts, until) > 0))
			if (json_array_remove(arr, i))
				return ct_error_set(err, CT_EINTERNAL, "array remove");
	}
	return 0;
}

static int bounds(int64_t since_us, int64_t until_us, char since[32], char until[32], ct_error *err)
{
	int rc = 0;
	since[0] = until[0] = '\0';
	if (since_us != CT_HISTORY_NO_TIME && (rc = cth_ts_text(since_us, since, err)))
		return rc;
	if (until_us != CT_HISTORY_NO_TIME && (rc = cth_ts_text(until_us, until, err)))
		return rc;
	return 0;
}

int ct_history_log(ct_history *h, const char *collection, const char *document_id,
		   const ct_history_query *q, json_t **out, ct_error *err)
{
	json_t *arr = NULL, *kids = NULL, *state = NULL;
	char since[32], until[32];
	int rc;

	if (!h || !collection || !document_id || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_log: NULL argument");
	*out = NULL;
	if ((rc = bounds(q ? q->since_us : CT_HISTORY_NO_TIME, q ? q->until_us : CT_HISTORY_NO_TIME, since,
			 until, err)))
		return rc;
	if ((rc = cth_doc_records(h, collection, document_id, &arr, err)))
		goto out;
	if (json_array_size(arr) == 0) {
		rc = ct_history_stored_state(h, collection, document_id, &state, err);
		if (rc)
			goto out;
	}
	if (q && q->include_children) {
		/* two queries rather than $or: FerretDB plans them better */
		bson_t *f = BCON_NEW("parent.collection", BCON_UTF8(collection), "parent.document_id",
				     BCON_UTF8(document_id));
		rc = cth_find(h, h->history, f, true, &kids, err);
		bson_destroy(f);
		if (rc || (rc = json_array_extend(arr, kids) ? ct_error_set(err, CT_ENOMEM, "out of memory") : 0))
			goto out;
	}
	if ((rc = filter_ts(arr, since, until, err)) || (rc = cth_sort(arr, false, err)))
		goto out;
	*out = arr;
	arr = NULL;
out:
	json_decref(arr);
	json_decref(kids);
	json_decref(state);
	return rc;
}

/* Appends collection name `c` to `colls` unless it is there (or NULL); -1 when out of memory. */
static int add_collection(json_t *colls, const char *c)
{
	if (!c)
		return 0;
	for (size_t k = 0; k < json_array_size(colls); k++)
		if (json_string_value(json_array_get(colls, k)) && !strcmp(json_string_value(json_array_get(colls, k)), c))
			return 0;
	return json_array_append_new(colls, json_string(c));
}

/* Orders context parts by last_ts, then _id. */
static int part_cmp(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(cth_str(x, "last_ts"), cth_str(y, "last_ts"));
	return c ? c : strcmp(cth_str(x, "_id"), cth_str(y, "_id"));
}

/*
 * The context's document with its parts (docs/storage.md) folded in, in
 * last_ts order: first_ts the least, last_ts the greatest, event_count
 * summed, collections united, complete/began if any says so, and actor,
 * parent_id, metadata_seen (and metadata, from a complete part) the latest
 * one given. `*merged` is NULL when there is neither.
 */
int cth_merge_context(const json_t *ctxs, const json_t *parts, json_t **merged, ct_error *err)
{
	size_t n = json_array_size(parts);
	json_t **sorted = n ? calloc(n, sizeof(*sorted)) : NULL;
	json_t *m = json_array_size(ctxs) ? json_deep_copy(json_array_get(ctxs, 0)) : n ? json_object() : NULL;
	int rc = 0;
	*merged = NULL;
	if ((n && !sorted) || ((json_array_size(ctxs) || n) && !m)) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = json_array_get(parts, i);
	if (n)
		qsort(sorted, n, sizeof(*sorted), part_cmp);
	for (size_t i = 0; i < n; i++) {
		const json_t *p = sorted[i];
		const char *f = cth_str(p, "first_ts"), *l = cth_str(p, "last_ts");
		bool fail = false;
		if (*f && (!*cth_str(m, "first_ts") || strcmp(f, cth_str(m, "first_ts")) < 0))
			fail |= json_object_set_new(m, "first_ts", json_string(f)) != 0;
		if (*l && strcmp(l, cth_str(m, "last_ts")) > 0)
			fail |= json_object_set_new(m, "last_ts", json_string(l)) != 0;
		fail |= json_object_set_new(m, "event_count",
					    json_integer(json_integer_value(json_object_get(m, "event_count")) +
							 json_integer_value(json_object_get(p, "event_count")))) != 0;
		static const char *const latest[] = {"actor", "parent_id", "metadata_seen"};
		for (size_t k = 0; k < CT_ARRAY_LEN(latest); k++) {
			json_t *v = json_object_get(p, latest[k]);
			if (v && !json_is_null(v))
				fail |= json_object_set(m, latest[k], v) != 0;
		}
		if (json_is_true(json_object_get(p, "complete"))) {
			fail |= json_object_set_new(m, "complete", json_true()) != 0;
			if (json_object_get(p, "metadata"))
				fail |= json_object_set(m, "metadata", json_object_get(p, "metadata")) != 0;
		}
		if (json_is_true(json_object_get(p, "began")))
			fail |= json_object_set_new(m, "began", json_true()) != 0;
		json_t *colls = json_object_get(m, "collections"), *pc = json_object_get(p, "collections");
		if (!json_is_array(colls) && json_array_size(pc)) {
			fail |= json_object_set_new(m, "collections", json_array()) != 0;
			colls = json_object_get(m, "collections");
		}
		for (size_t j = 0; !fail && j < json_array_size(pc); j++)
			fail |= add_collection(colls, json_string_value(json_array_get(pc, j))) != 0;
		if (fail) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
	}
	*merged = m;
	m = NULL;
out:
	json_decref(m);
	free(sorted);
	return rc;
}

int ct_history_context(ct_history *h, const char *context_id, json_t **out, ct_error *err)
{
	json_t *ctxs = NULL, *parts = NULL, *merged = NULL, *recs = NULL, *res = NULL;
	bson_t *f = NULL;
	int rc;

	if (!h || !context_id || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_context: NULL argument");
	*out = NULL;
	f = BCON_NEW("_id", BCON_UTF8(context_id));
	rc = cth_find(h, h->contexts, f, false, &ctxs, err);
	bson_destroy(f);
	if (rc)
		goto out;
	f = BCON_NEW("context_id", BCON_UTF8(context_id));
	rc = cth_find(h, h->context_parts, f, false, &parts, err);
	bson_destroy(f);
	if (rc || (rc = cth_merge_context(ctxs, parts, &merged, err)))
		goto out;
	f = BCON_NEW("context_id", BCON_UTF8(context_id));
	rc = cth_find(h, h->history, f, true, &recs, err);
	bson_destroy(f);
	if (rc)
		goto out;
	if (json_array_size(ctxs) == 0 && json_array_size(recs) == 0) {
		rc = ct_error_set(err, CT_ENOTFOUND, "no context %s", context_id);
		goto out;
	}
	/* oldest first: a changeset reads in the order it happened */
	if ((rc = cth_sort(recs, false, err)))
		goto out;
	for (size_t i = 0, n = json_array_size(recs); i < n / 2; i++) {
		json_t *a = json_incref(json_array_get(recs, i)), *b = json_incref(json_array_get(recs, n - 1 - i));
		json_array_set_new(recs, i, b);
		json_array_set_new(recs, n - 1 - i, a);
	}
	const json_t *c = merged;
	json_t *md = json_object_get(c, "metadata");
	if (!md)
		md = json_object_get(c, "metadata_seen");
	res = json_object();
	if (!res || json_object_set_new(res, "id", json_string(context_id)) ||
	    json_object_set_new(res, "actor", json_incref(json_object_get(c, "actor") ? json_object_get(c, "actor") : json_null())) ||
	    json_object_set_new(res, "complete", json_boolean(json_is_true(json_object_get(c, "complete")))) ||
	    json_object_set_new(res, "metadata", md ? json_incref(md) : json_object()) ||
	    json_object_set_new(res, "parent_id", json_object_get(c, "parent_id") ? json_incref(json_object_get(c, "parent_id")) : json_null()) ||
	    json_object_set_new(res, "first_ts", c ? json_string(cth_str(c, "first_ts")) : json_null()) ||
	    json_object_set_new(res, "last_ts", c ? json_string(cth_str(c, "last_ts")) : json_null()) ||
	    json_object_set_new(res, "collections", json_object_get(c, "collections") ? json_incref(json_object_get(c, "collections")) : json_array()) ||
	    json_object_set_new(res, "event_count", json_integer(c ? json_integer_value(json_object_get(c, "event_count")) : 0)) ||
	    json_object_set(res, "records", recs)) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	/* A context the consumer has no document for yet (written every
	 * state_flush_ms, after the history): what its records tell. */
	size_t nr = json_array_size(recs);
	if (json_is_null(json_object_get(res, "actor")) && nr)
		json_object_set(res, "actor", json_object_get(json_array_get(recs, 0), "actor"));
	if (!c && nr) {
		json_t *colls = json_object_get(res, "collections");
		json_object_set_new(res, "first_ts", json_string(cth_str(json_array_get(recs, 0), "ts")));
		json_object_set_new(res, "last_ts", json_string(cth_str(json_array_get(recs, nr - 1), "ts")));
		for (size_t i = 0; i < nr; i++)
			if (add_collection(colls, cth_str(json_array_get(recs, i), "collection"))) {
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
				goto out;
			}
	}
	*out = res;
	res = NULL;
out:
	json_decref(ctxs);
	json_decref(parts);
	json_decref(merged);
	json_decref(recs);
	json_decref(res);
	return rc;
}

int ct_history_actor(ct_history *h, const char *actor, int64_t since_us, json_t **out, ct_error *err)
{
	char since[32], until[32];
	int rc;
	if (!h || !actor || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_actor: NULL argument");
	*out = NULL;
	if ((rc = bounds(since_us, CT_HISTORY_NO_TIME, since, until, err)))
		return rc;
	bson_t *f = BCON_NEW("actor", BCON_UTF8(actor));
	rc = cth_find(h, h->history, f, true, out, err);
	bson_destroy(f);
	if (!rc && !(rc = filter_ts(*out, since, until, err)))
		rc = cth_sort(*out, false, err);
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}
