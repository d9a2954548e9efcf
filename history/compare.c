/*
 * compare.c - two databases record for record: what a replay must
 * reproduce. History records are compared on every field but "kafka"
 * (provenance), states on every field but "last_offset".
 */
#include "history_internal.h"

#include "cts_codec.h"

#include <stdio.h>
#include <string.h>

/* Every document of `coll` as stored (no text field parsed), keyed by _id. */
static int read_all(mongoc_collection_t *coll, const char *skip, json_t **out, ct_error *err)
{
	bson_t f = BSON_INITIALIZER;
	bson_error_t e;
	const bson_t *doc;
	json_t *byid = json_object();
	bson_t *opts = BCON_NEW("batchSize", BCON_INT32(CTH_FIND_BATCH)); /* handle.c: cth_find */
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &f, opts, NULL);
	int rc = 0;
	bson_destroy(opts);
	*out = NULL;
	while (!rc && mongoc_cursor_next(cur, &doc)) {
		json_t *j = NULL;
		if (json_object_size(byid) >= CT_HISTORY_MAX_RECORDS)
			rc = ct_error_set(err, CT_ELIMIT, "more than %d documents", CT_HISTORY_MAX_RECORDS);
		/* through the storage codec: the JSON form, dates as text */
		else if (!(rc = !strcmp(skip, "kafka") ? cts_history_from_bson(doc, &j, err)
							: cts_state_from_bson(doc, &j, err))) {
			json_object_del(j, skip);
			if (json_object_set_new(byid, cth_str(j, "_id"), j))
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		}
	}
	if (!rc && mongoc_cursor_error(cur, &e))
		rc = cth_mongo_error(err, "find", &e);
	mongoc_cursor_destroy(cur);
	bson_destroy(&f);
	if (rc)
		json_decref(byid);
	else
		*out = byid;
	return rc;
}

static void diff_docs(const char *what, const json_t *a, const json_t *b, json_t *diffs)
{
	const char *id, *k;
	json_t *x, *v;
	json_object_foreach((json_t *)a, id, x) {
		json_t *y = json_object_get(b, id);
		char fields[400] = "";
		size_t used = 0;
		if (!y) {
			json_array_append_new(diffs, json_pack("{s:s, s:s, s:s, s:s}", "collection", what, "_id", id,
							       "problem", "only_in_first", "detail", ""));
			continue;
		}
		if (json_equal(x, y))
			continue;
		json_object_foreach(x, k, v) {
			if (!json_equal(v, json_object_get(y, k)) && used < sizeof(fields) - 1)
				used += (size_t)snprintf(fields + used, sizeof(fields) - used, "%s%s", used ? "," : "", k);
		}
		json_object_foreach(y, k, v) {
			if (!json_object_get(x, k) && used < sizeof(fields) - 1)
				used += (size_t)snprintf(fields + used, sizeof(fields) - used, "%s%s", used ? "," : "", k);
		}
		json_array_append_new(diffs, json_pack("{s:s, s:s, s:s, s:s}", "collection", what, "_id", id,
						       "problem", "differs", "detail", fields));
	}
	json_object_foreach((json_t *)b, id, x) {
		if (!json_object_get(a, id))
			json_array_append_new(diffs, json_pack("{s:s, s:s, s:s, s:s}", "collection", what, "_id", id,
							       "problem", "only_in_second", "detail", ""));
	}
}

int ct_history_compare(ct_history *a, ct_history *b, json_t **out, ct_error *err)
{
	json_t *ha = NULL, *hb = NULL, *sa = NULL, *sb = NULL, *diffs = NULL;
	int rc;
	if (!a || !b || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_compare: NULL argument");
	*out = NULL;
	if ((rc = read_all(a->history, "kafka", &ha, err)) || (rc = read_all(b->history, "kafka", &hb, err)) ||
	    (rc = read_all(a->state, "last_offset", &sa, err)) || (rc = read_all(b->state, "last_offset", &sb, err)))
		goto out;
	if (!(diffs = json_array())) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	diff_docs("history", ha, hb, diffs);
	diff_docs("state", sa, sb, diffs);
	*out = json_pack("{s:I, s:I, s:O}", "history", (json_int_t)json_object_size(ha), "states",
			 (json_int_t)json_object_size(sa), "differences", diffs);
	if (!*out)
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	json_decref(ha);
	json_decref(hb);
	json_decref(sa);
	json_decref(sb);
	json_decref(diffs);
	return rc;
}
