/*
 * verify.c - checks the per-document hash chains: hashes recomputed,
 * versions contiguous, prev_hash links, the changes applying in order to
 * the stored document, and the state agreeing with the record of its
 * version. A state behind the last record is not a problem: the consumer
 * writes states every state_flush_ms, after the history (it is counted).
 * Everything is read with one query per collection and grouped here: one
 * round trip per document would cost more than the checks themselves.
 */
#include "history_internal.h"

#include "changetrail/diff.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct doc_check {
	const char *collection, *document_id;
	json_t *problems;
	int64_t behind; /* documents whose state is behind their history */
} doc_check;

static void problem(doc_check *d, int64_t version, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void problem(doc_check *d, int64_t version, const char *what, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_array_append_new(d->problems,
			      json_pack("{s:s, s:s, s:o, s:s, s:s}", "collection", d->collection, "document_id",
					d->document_id, "version", version ? json_integer(version) : json_null(),
					"problem", what, "detail", detail));
}

/*
 * The document a delete removed when the history before it holds none
 * (`empty`): its changes undone on {}, which they must empty again.
 */
static int delete_unseen(const json_t *changes, const json_t *empty, json_t **before, ct_error *err)
{
	json_t *again = NULL;
	int rc = ct_revert(changes, empty, before, err);
	if (!rc && (rc = ct_patch(changes, *before, &again, err)) == 0 && json_object_size(again))
		rc = ct_error_set(err, CT_EINVAL, "a delete that leaves %zu key(s)", json_object_size(again));
	json_decref(again);
	if (rc) {
		json_decref(*before);
		*before = NULL;
	}
	return rc;
}

/* Checks one document; `recs` in version order, `state` may be NULL. */
static int check_doc(doc_check *d, const json_t *recs, const json_t *state, ct_error *err)
{
	size_t n = json_array_size(recs);
	json_t *cur = NULL, *shown = NULL, *shown_sv = NULL;
	bool deleted = false, rebuilding = true, deleted_sv = false;
	const char *hash_sv = NULL;
	int64_t sv = state ? cth_int(state, "version") : -1;
	int rc = 0;

	if (n == 0) {
		if (state && cth_int(state, "version") > 0)
			problem(d, cth_int(state, "version"), "no_history", "state at version %lld but no record",
				(long long)cth_int(state, "version"));
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *r = json_array_get(recs, i), *prev = i ? json_array_get(recs, i - 1) : NULL;
		int64_t v = cth_int(r, "version");
		const char *op = cth_str(r, "op");
		bool ck = !strcmp(op, "checkpoint");
		if (prev && v == cth_int(prev, "version"))
			problem(d, v, "duplicate", "two records with version %lld", (long long)v);
		else if (prev && v != cth_int(prev, "version") + 1)
			problem(d, v, "missing", "versions %lld..%lld are missing",
				(long long)cth_int(prev, "version") + 1, (long long)v - 1);
		else if (!prev && !ck && v != 1)
			problem(d, v, "missing", "history starts at version %lld without a checkpoint", (long long)v);
		if (!ck) {
			int ok = cth_hash_ok(r, err);
			if (ok < 0) {
				rc = ok;
				goto out;
			}
			if (!ok)
				problem(d, v, "modified", "record %s does not match its hash", cth_str(r, "_id"));
		}
		const json_t *ph = json_object_get(r, "prev_hash");
		if (prev && strcmp(json_string_value(ph) ? json_string_value(ph) : "", cth_str(prev, "hash")))
			problem(d, v, "reordered", "prev_hash does not link to version %lld",
				(long long)cth_int(prev, "version"));
		else if (!prev && !ck && !json_is_null(ph))
			problem(d, v, "reordered", "version 1 has a prev_hash");
		if (v == sv)
			hash_sv = cth_str(r, "hash");
		/* the document, forward */
		if (!rebuilding)
			continue;
		if (ck) {
			json_decref(cur);
			json_decref(shown);
			deleted = json_is_true(json_object_get(r, "deleted"));
			shown = json_deep_copy(json_object_get(r, "doc"));
			cur = deleted ? json_object() : json_incref(shown);
			if (!json_is_object(shown)) {
				problem(d, v, "changes_do_not_apply", "checkpoint without a document");
				rebuilding = false;
			}
			goto next;
		}
		if (!cur && !(cur = json_object())) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		if (!strcmp(op, "delete") && json_object_size(cur) == 0) {
			/* a delete of a document the history never held (received
			 * before any insert): the consumer records diff(before, {}),
			 * so the document before it is those changes undone on {} */
			json_t *before = NULL;
			ct_error perr;
			if (delete_unseen(json_object_get(r, "changes"), cur, &before, &perr)) {
				problem(d, v, "changes_do_not_apply", "%s", perr.message);
				rebuilding = false;
				continue;
			}
			json_decref(shown);
			shown = before;
			deleted = true;
			goto next;
		}
		if (!cth_op_keeps_doc(op)) {
			json_t *next = NULL;
			ct_error perr;
			if (ct_patch(json_object_get(r, "changes"), cur, &next, &perr)) {
				problem(d, v, "changes_do_not_apply", "%s", perr.message);
				rebuilding = false;
				continue;
			}
			json_decref(shown);
			deleted = !strcmp(op, "delete");
			shown = deleted ? cur : json_incref(next);
			if (!deleted)
				json_decref(cur);
			cur = next;
		}
	next:
		if (v == sv) { /* the document the state must hold */
			json_decref(shown_sv);
			shown_sv = json_incref(shown);
			deleted_sv = deleted;
		}
	}
	const json_t *last = json_array_get(recs, n - 1);
	if (!state) {
		d->behind++; /* not written yet (or lost: the consumer would rebuild it from Kafka) */
		goto out;
	}
	if (sv > cth_int(last, "version") || !hash_sv || strcmp(cth_str(state, "hash"), hash_sv))
		problem(d, cth_int(last, "version"), "state_mismatch",
			"state is at version %lld with another hash than the record of that version (last: %lld)",
			(long long)sv, (long long)cth_int(last, "version"));
	else if (rebuilding && shown_sv &&
		 (!json_equal(shown_sv, json_object_get(state, "doc")) ||
		  deleted_sv != json_is_true(json_object_get(state, "deleted"))))
		problem(d, sv, "state_doc_mismatch", "the changes replayed do not give the stored document");
	if (sv < cth_int(last, "version"))
		d->behind++;
out:
	json_decref(cur);
	json_decref(shown);
	json_decref(shown_sv);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ct_history_verify(ct_history *h, const char *collection, const char *document_id, json_t **out,
		      ct_error *err)
{
	json_t *recs = NULL, *states = NULL, *groups = NULL, *problems = NULL;
	const char **keys = NULL;
	int64_t behind = 0;
	bson_t f = BSON_INITIALIZER;
	int rc;

	if (!h || !out || (document_id && !collection))
		return ct_error_set(err, CT_EINVAL, "ct_history_verify: bad argument");
	*out = NULL;
	if (collection)
		BSON_APPEND_UTF8(&f, "collection", collection);
	if (document_id)
		BSON_APPEND_UTF8(&f, "document_id", document_id);
	if ((rc = cth_find(h, h->history, &f, true, &recs, err)) ||
	    (rc = cth_find(h, h->state, &f, false, &states, err)))
		goto out;
	if (!(groups = json_object()) || !(problems = json_array())) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	/* group: "<collection>/<document_id>" -> {records, state} */
	for (int pass = 0; pass < 2; pass++) {
		json_t *arr = pass ? states : recs;
		for (size_t i = 0; i < json_array_size(arr); i++) {
			json_t *x = json_array_get(arr, i);
			char key[2048];
			snprintf(key, sizeof(key), "%s/%s", cth_str(x, "collection"), cth_str(x, "document_id"));
			json_t *g = json_object_get(groups, key);
			if (!g) {
				g = json_pack("{s:[]}", "records");
				if (!g || json_object_set_new(groups, key, g)) {
					rc = ct_error_set(err, CT_ENOMEM, "out of memory");
					goto out;
				}
			}
			if (pass ? json_object_set(g, "state", x) : json_array_append(json_object_get(g, "records"), x)) {
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
				goto out;
			}
		}
	}
	size_t nk = json_object_size(groups), k = 0;
	if (nk && !(keys = malloc(nk * sizeof(*keys)))) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	const char *key;
	json_t *g;
	json_object_foreach(groups, key, g)
		keys[k++] = key;
	if (nk)
		qsort(keys, nk, sizeof(*keys), cmp_str);
	for (k = 0; k < nk; k++) {
		g = json_object_get(groups, keys[k]);
		json_t *rs = json_object_get(g, "records"), *st = json_object_get(g, "state");
		const json_t *any = json_array_size(rs) ? json_array_get(rs, 0) : st;
		doc_check d = {cth_str(any, "collection"), cth_str(any, "document_id"), problems, 0};
		if ((rc = cth_sort(rs, true, err)) || (rc = check_doc(&d, rs, st, err)))
			goto out;
		behind += d.behind;
	}
	if (document_id && nk == 0) {
		rc = ct_error_set(err, CT_ENOTFOUND, "%s/%s has no history and no state", collection, document_id);
		goto out;
	}
	*out = json_pack("{s:I, s:I, s:I, s:O}", "documents", (json_int_t)nk, "records",
			 (json_int_t)json_array_size(recs), "states_behind", (json_int_t)behind, "problems", problems);
	if (!*out)
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	bson_destroy(&f);
	free(keys);
	json_decref(recs);
	json_decref(states);
	json_decref(groups);
	json_decref(problems);
	return rc;
}
