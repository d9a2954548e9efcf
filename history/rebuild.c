/*
 * rebuild.c - a document's state at a version or a time, rebuilt from the
 * stored changes: forward from version 1 (or a checkpoint) with ct_patch,
 * or backward from the stored state with ct_revert, whichever touches fewer
 * records. The consumer diffs against {} after a delete, so the "diff
 * document" after a delete is {} while what people want to see is the
 * document that was deleted: the delete's own changes, reverted on {}, give
 * it back.
 */
#include "history_internal.h"

#include "changetrail/diff.h"

#include <stdio.h>
#include <string.h>

/* A record applied to a rebuild must be the one that was written. */
static int check_hash(const json_t *rec, ct_error *err)
{
	if (!strcmp(cth_str(rec, "op"), "checkpoint"))
		return 0;
	int ok = cth_hash_ok(rec, err);
	if (ok < 0)
		return ok;
	return ok ? 0 : ct_error_set(err, CT_ECONFLICT, "record version %lld (%s) does not match its hash",
				     (long long)cth_int(rec, "version"), cth_str(rec, "_id"));
}

static int step(const json_t *rec, json_t **cur, bool forward, ct_error *err)
{
	json_t *next = NULL;
	int rc;
	if ((rc = check_hash(rec, err)))
		return rc;
	if (cth_op_keeps_doc(cth_str(rec, "op")))
		return 0;
	const json_t *changes = json_object_get(rec, "changes");
	/* a delete of a document the history never held (received before any
	 * insert) removes what its event's `before` held: nothing left either way */
	if (forward && !strcmp(cth_str(rec, "op"), "delete") && json_object_size(*cur) == 0)
		return 0;
	rc = forward ? ct_patch(changes, *cur, &next, err) : ct_revert(changes, *cur, &next, err);
	if (rc) {
		char why[sizeof(err->message)];
		snprintf(why, sizeof(why), "%s", err ? err->message : "changes do not apply");
		return ct_error_set(err, rc, "version %lld: %s", (long long)cth_int(rec, "version"), why);
	}
	json_decref(*cur);
	*cur = next;
	return 0;
}

int cth_rebuild(const json_t *records, const json_t *state, int64_t version, json_t **out,
		ct_error *err)
{
	size_t n = json_array_size(records), base_i = 0, target_i = 0;
	json_t *cur = NULL, *shown = NULL, *empty = NULL;
	int rc = 0;
	bool found = false;

	*out = NULL;
	if (n == 0)
		return ct_error_set(err, CT_ENOTFOUND, "no history");
	const json_t *first = json_array_get(records, 0);
	bool from_checkpoint = !strcmp(cth_str(first, "op"), "checkpoint");
	if (!from_checkpoint && cth_int(first, "version") != 1)
		return ct_error_set(err, CT_ECONFLICT, "history starts at version %lld without a checkpoint",
				    (long long)cth_int(first, "version"));
	for (size_t i = 0; i < n; i++) {
		const json_t *r = json_array_get(records, i);
		if (!strcmp(cth_str(r, "op"), "checkpoint") && cth_int(r, "version") <= version)
			base_i = i; /* an interrupted prune can leave one past the first record */
		if (cth_int(r, "version") == version) {
			target_i = i;
			found = true;
		}
	}
	if (!found || version < cth_int(first, "version"))
		return ct_error_set(err, CT_ENOTFOUND, "version %lld is not in the history (%s)", (long long)version,
				    version < cth_int(first, "version") ? "pruned" : "no such version");
	if (!(empty = json_object()))
		return ct_error_set(err, CT_ENOMEM, "out of memory");

	const json_t *last = json_array_get(records, n - 1);
	bool backward = state && cth_int(state, "version") == cth_int(last, "version") &&
			!strcmp(cth_str(state, "hash"), cth_str(last, "hash")) &&
			json_is_object(json_object_get(state, "doc")) && n - 1 - target_i < target_i - base_i;
	if (backward) {
		cur = json_is_true(json_object_get(state, "deleted")) ? json_object()
								      : json_deep_copy(json_object_get(state, "doc"));
		for (size_t i = n - 1; !rc && i > target_i; i--)
			rc = step(json_array_get(records, i), &cur, false, err);
	} else {
		const json_t *b = json_array_get(records, base_i);
		bool ck = !strcmp(cth_str(b, "op"), "checkpoint");
		if (ck && !json_is_object(json_object_get(b, "doc"))) {
			rc = ct_error_set(err, CT_ECONFLICT, "checkpoint %s has no document", cth_str(b, "_id"));
			goto out;
		}
		cur = !ck || json_is_true(json_object_get(b, "deleted")) ? json_object()
									: json_deep_copy(json_object_get(b, "doc"));
		for (size_t i = ck ? base_i + 1 : base_i; !rc && i <= target_i; i++)
			rc = step(json_array_get(records, i), &cur, true, err);
	}
	if (rc)
		goto out;
	if (!cur) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	/* Deleted at `version`: the last document-changing record up to it is a delete. */
	bool deleted = false;
	for (size_t i = target_i + 1; i-- > 0;) {
		const json_t *r = json_array_get(records, i);
		const char *op = cth_str(r, "op");
		if (cth_op_keeps_doc(op))
			continue;
		if (!strcmp(op, "checkpoint")) {
			deleted = json_is_true(json_object_get(r, "deleted"));
			if (deleted)
				shown = json_deep_copy(json_object_get(r, "doc"));
		} else if (!strcmp(op, "delete")) {
			deleted = true;
			if ((rc = check_hash(r, err)) ||
			    (rc = ct_revert(json_object_get(r, "changes"), empty, &shown, err)))
				goto out;
		}
		break;
	}
	const json_t *t = json_array_get(records, target_i);
	*out = json_pack("{s:s, s:s, s:I, s:s, s:b, s:s, s:O}", "collection", cth_str(t, "collection"),
			 "document_id", cth_str(t, "document_id"), "version", (json_int_t)version, "ts",
			 cth_str(t, "ts"), "deleted", deleted, "hash", cth_str(t, "hash"), "doc",
			 shown ? shown : cur);
	if (!*out)
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	json_decref(cur);
	json_decref(shown);
	json_decref(empty);
	return rc;
}

int ct_history_state(ct_history *h, const char *collection, const char *document_id, int64_t version,
		     int64_t at_us, json_t **out, ct_error *err)
{
	json_t *records = NULL, *state = NULL;
	char at[32];
	int rc;

	if (!h || !collection || !document_id || !out || version < 0)
		return ct_error_set(err, CT_EINVAL, "ct_history_state: bad argument");
	*out = NULL;
	if ((rc = cth_doc_records(h, collection, document_id, &records, err)))
		goto out;
	rc = ct_history_stored_state(h, collection, document_id, &state, err);
	if (rc && rc != CT_ENOTFOUND)
		goto out;
	rc = 0;
	if (json_array_size(records) == 0) {
		rc = ct_error_set(err, CT_ENOTFOUND, "%s/%s has no history", collection, document_id);
		goto out;
	}
	if (version == 0 && at_us != CT_HISTORY_NO_TIME && at_us != 0) {
		if ((rc = cth_ts_text(at_us, at, err)))
			goto out;
		/* the newest version written at or before `at` */
		for (size_t i = 0; i < json_array_size(records); i++) {
			const json_t *r = json_array_get(records, i);
			if (strcmp(cth_str(r, "ts"), at) <= 0 && cth_int(r, "version") > version)
				version = cth_int(r, "version");
		}
		if (version == 0) {
			rc = ct_error_set(err, CT_ENOTFOUND, "%s/%s has no version at or before %s%s", collection,
					  document_id, at,
					  strcmp(cth_str(json_array_get(records, 0), "op"), "checkpoint")
						  ? ""
						  : " (older history was pruned)");
			goto out;
		}
	} else if (version == 0) {
		version = cth_int(json_array_get(records, json_array_size(records) - 1), "version");
	}
	rc = cth_rebuild(records, state, version, out, err);
out:
	json_decref(records);
	json_decref(state);
	return rc;
}
