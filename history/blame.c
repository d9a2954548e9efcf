/*
 * blame.c - for every leaf of the current document, the last record that
 * changed it. A change entry at path P touches everything under P; an
 * add/remove at P touches everything under P + key. Array items shifted by
 * an earlier insertion or removal are not followed: blame reports the
 * record that last wrote at that index.
 */
#include "history_internal.h"

#include <string.h>

/* Path of a change entry as an array of components ("" = root, "a.b" = dotted). */
static json_t *entry_path(const json_t *p)
{
	if (json_is_array(p))
		return json_incref((json_t *)p);
	json_t *arr = json_array();
	const char *s = json_string_value(p);
	if (!arr || !s || !*s)
		return arr;
	const char *start = s;
	for (const char *c = s;; c++) {
		if (*c == '.' || !*c) {
			json_array_append_new(arr, json_stringn(start, (size_t)(c - start)));
			if (!*c)
				break;
			start = c + 1;
		}
	}
	return arr;
}

static bool is_under(const json_t *leaf, const json_t *prefix, const json_t *extra)
{
	size_t n = json_array_size(prefix), m = json_array_size(leaf);
	if (n + (extra ? 1 : 0) > m)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!json_equal(json_array_get(prefix, i), json_array_get(leaf, i)))
			return false;
	return !extra || json_equal(extra, json_array_get(leaf, n));
}

/* true when one of the record's change entries touches `leaf`. */
static bool touches(const json_t *rec, const json_t *leaf)
{
	const json_t *changes = json_object_get(rec, "changes");
	bool hit = false;
	for (size_t i = 0; !hit && i < json_array_size(changes); i++) {
		const json_t *e = json_array_get(changes, i);
		const char *action = json_string_value(json_array_get(e, 0));
		json_t *path = entry_path(json_array_get(e, 1));
		if (!action || !path) {
			json_decref(path);
			continue;
		}
		if (!strcmp(action, "change")) {
			hit = is_under(leaf, path, NULL);
		} else {
			const json_t *items = json_array_get(e, 2);
			for (size_t k = 0; !hit && k < json_array_size(items); k++)
				hit = is_under(leaf, path, json_array_get(json_array_get(items, k), 0));
		}
		json_decref(path);
	}
	return hit;
}

static int leaves(const json_t *v, json_t *path, json_t *out, int depth)
{
	if (depth > 512)
		return CT_ELIMIT;
	if ((json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v))) {
		const char *k;
		json_t *m;
		size_t i;
		int rc = 0;
		if (json_is_object(v)) {
			json_object_foreach((json_t *)v, k, m) {
				json_t *p = json_copy(path);
				if (!p || json_array_append_new(p, json_string(k)))
					rc = CT_ENOMEM;
				if (!rc)
					rc = leaves(m, p, out, depth + 1);
				json_decref(p);
				if (rc)
					return rc;
			}
		} else {
			json_array_foreach(v, i, m) {
				json_t *p = json_copy(path);
				if (!p || json_array_append_new(p, json_integer((json_int_t)i)))
					rc = CT_ENOMEM;
				if (!rc)
					rc = leaves(m, p, out, depth + 1);
				json_decref(p);
				if (rc)
					return rc;
			}
		}
		return 0;
	}
	json_t *l = json_pack("{s:O, s:O}", "path", path, "value", v);
	return !l || json_array_append_new(out, l) ? CT_ENOMEM : 0;
}

int ct_history_blame(ct_history *h, const char *collection, const char *document_id, json_t **out,
		     ct_error *err)
{
	json_t *records = NULL, *state = NULL, *res = NULL, *root = NULL;
	int rc;

	if (!h || !collection || !document_id || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_blame: NULL argument");
	*out = NULL;
	if ((rc = cth_doc_records(h, collection, document_id, &records, err)))
		goto out;
	size_t nrec = json_array_size(records);
	rc = ct_history_stored_state(h, collection, document_id, &state, err);
	if (rc == CT_ENOTFOUND && nrec)
		rc = 0; /* history written, state not yet */
	if (rc)
		goto out;
	/* The consumer writes states after the history: a state behind it is rolled forward. */
	int64_t last_v = nrec ? cth_int(json_array_get(records, nrec - 1), "version") : 0;
	if (nrec && (!state || cth_int(state, "version") != last_v)) {
		json_t *cur;
		if ((rc = cth_rebuild(records, state, last_v, &cur, err)))
			goto out;
		json_decref(state);
		state = cur;
	}
	if (!(res = json_array()) || !(root = json_array())) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	const json_t *doc = json_object_get(state, "doc");
	if (json_is_object(doc) && (rc = leaves(doc, root, res, 0))) {
		rc = ct_error_set(err, rc, "document too deep or out of memory");
		goto out;
	}
	/*
	 * A deleted document is shown as it was before the delete, and the
	 * delete removed every field: its fields are credited to who set them,
	 * so the search starts below the delete (and what follows it only
	 * touches relations or nothing).
	 */
	size_t below = nrec;
	if (json_is_true(json_object_get(state, "deleted")))
		for (size_t r = nrec; r-- > 0;) {
			const char *op = cth_str(json_array_get(records, r), "op");
			if (!strcmp(op, "delete")) {
				below = r;
				break;
			}
			if (!cth_op_keeps_doc(op))
				break; /* a checkpoint of the deleted state: it holds the credit */
		}
	for (size_t i = 0; i < json_array_size(res); i++) {
		json_t *l = json_array_get(res, i);
		const json_t *path = json_object_get(l, "path"), *by = NULL;
		for (size_t r = below; !by && r-- > 0;) {
			const json_t *rec = json_array_get(records, r);
			if (!strcmp(cth_str(rec, "op"), "checkpoint") || touches(rec, path))
				by = rec;
		}
		static const char *const copy[] = {"ts", "actor", "op", "context_id"};
		json_object_set_new(l, "version", by ? json_integer(cth_int(by, "version")) : json_null());
		for (size_t k = 0; k < CT_ARRAY_LEN(copy); k++) {
			json_t *v = by ? json_object_get(by, copy[k]) : NULL;
			json_object_set(l, copy[k], v ? v : json_null());
		}
		json_object_set_new(l, "record_id", by ? json_string(cth_str(by, "_id")) : json_null());
	}
	*out = res;
	res = NULL;
out:
	json_decref(records);
	json_decref(state);
	json_decref(res);
	json_decref(root);
	return rc;
}
