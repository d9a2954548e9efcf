/*
 * anchors.c - MongoDB checked against anchored chain heads (the consumer's
 * anchor records, consumer/anchor.h, read and authenticated by the caller):
 * every anchored (document, version, hash) must still be in `history` with
 * that hash, the document's chain must verify from it back to version 1 or
 * a checkpoint, and the stored state must not be behind the newest anchored
 * version (the consumer anchors a head only once its state is written, and
 * a state never moves back). What a rewrite of MongoDB alone cannot hide:
 * a recomputed chain (other hashes), a cut tail with the state rolled back
 * (an anchored version gone), a deleted document.
 */
#include "history_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int problem(json_t *problems, const char *collection, const char *document_id, int64_t version,
		   const char *what, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int problem(json_t *problems, const char *collection, const char *document_id, int64_t version,
		   const char *what, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return json_array_append_new(problems, json_pack("{s:s, s:s, s:o, s:s, s:s}", "collection", collection,
							 "document_id", document_id,
							 "version", version ? json_integer(version) : json_null(),
							 "problem", what, "detail", detail))
		       ? CT_ENOMEM
		       : 0;
}

static int by_doc(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	int c = strcmp(cth_str(x, "collection"), cth_str(y, "collection"));
	if (!c)
		c = strcmp(cth_str(x, "document_id"), cth_str(y, "document_id"));
	if (!c)
		c = cth_int(x, "version") < cth_int(y, "version") ? -1 : cth_int(x, "version") > cth_int(y, "version");
	return c;
}

/* One document: heads[0..n) its anchored heads, version order. */
static int check_doc(ct_history *h, const json_t *const *heads, size_t n, json_t *problems, int64_t *pruned,
		     ct_error *err)
{
	const char *c = cth_str(heads[0], "collection"), *id = cth_str(heads[0], "document_id");
	ct_history_query q = {.since_us = CT_HISTORY_NO_TIME, .until_us = CT_HISTORY_NO_TIME};
	json_t *recs = NULL, *state = NULL, *ver = NULL;
	int64_t top = cth_int(heads[n - 1], "version"), first = INT64_MAX;
	int rc = ct_history_log(h, c, id, &q, &recs, err);

	if (rc == CT_ENOTFOUND) {
		rc = problem(problems, c, id, top, "anchored_document_gone",
			     "anchored at version %lld, but MongoDB has neither history nor state", (long long)top);
		goto out;
	}
	if (rc)
		goto out;
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r) {
		int64_t v = cth_int(r, "version");
		if (v < first)
			first = v;
	}
	for (size_t k = 0; k < n && !rc; k++) {
		int64_t v = cth_int(heads[k], "version");
		const char *want = cth_str(heads[k], "hash");
		const json_t *found = NULL;
		json_array_foreach(recs, i, r)
			if (cth_int(r, "version") == v) {
				found = r;
				break;
			}
		if (!found && json_array_size(recs) && v < first &&
		    !strcmp(cth_str(json_array_get(recs, json_array_size(recs) - 1), "op"), "checkpoint")) {
			(*pruned)++; /* pruned before the checkpoint: the chain from it still starts there */
			continue;
		}
		if (!found)
			rc = problem(problems, c, id, v, "anchored_missing",
				     "anchored record (hash %.12s...) is not in history", want);
		else if (strcmp(cth_str(found, "hash"), want))
			rc = problem(problems, c, id, v, "anchored_mismatch",
				     "history hash %.12s... differs from the anchored %.12s...", cth_str(found, "hash"), want);
	}
	if (rc)
		goto out;
	rc = ct_history_stored_state(h, c, id, &state, err);
	if (rc == CT_ENOTFOUND) {
		rc = problem(problems, c, id, top, "anchored_state_missing",
			     "anchored at version %lld, but the document has no state", (long long)top);
	} else if (!rc && cth_int(state, "version") < top) {
		rc = problem(problems, c, id, top, "anchored_state_behind",
			     "state at version %lld, anchored at %lld (a state never moves back)",
			     (long long)cth_int(state, "version"), (long long)top);
	}
	if (rc)
		goto out;
	/* the chain from the anchored records back to version 1 or a checkpoint */
	if ((rc = ct_history_verify(h, c, id, &ver, err)))
		goto out;
	json_array_foreach(json_object_get(ver, "problems"), i, r)
		if (json_array_append(problems, r)) {
			rc = CT_ENOMEM;
			goto out;
		}
out:
	if (rc == CT_ENOMEM)
		ct_error_set(err, CT_ENOMEM, "out of memory");
	json_decref(recs);
	json_decref(state);
	json_decref(ver);
	return rc;
}

int ct_history_check_anchored(ct_history *h, const json_t *heads, json_t **out, ct_error *err)
{
	size_t n = json_array_size(heads), docs = 0;
	const json_t **v = NULL;
	json_t *problems = json_array();
	int64_t pruned = 0;
	int rc = 0;

	*out = NULL;
	if (!json_is_array(heads))
		return ct_error_set(err, CT_EINVAL, "anchored heads must be an array");
	if (!problems || (n && !(v = malloc(n * sizeof(*v))))) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		v[i] = json_array_get(heads, i);
		if (!*cth_str(v[i], "collection") || !*cth_str(v[i], "document_id") || cth_int(v[i], "version") < 1 ||
		    strlen(cth_str(v[i], "hash")) != 64) {
			rc = ct_error_set(err, CT_EINVAL, "anchored head %zu malformed", i);
			goto out;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), by_doc);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && !strcmp(cth_str(v[i], "collection"), cth_str(v[j], "collection")) &&
		       !strcmp(cth_str(v[i], "document_id"), cth_str(v[j], "document_id")))
			j++;
		docs++;
		if ((rc = check_doc(h, (const json_t *const *)v + i, j - i, problems, &pruned, err)))
			goto out;
		i = j;
	}
	if (!(*out = json_pack("{s:I, s:I, s:I, s:O}", "documents", (json_int_t)docs, "anchored", (json_int_t)n,
			       "pruned", (json_int_t)pruned, "problems", problems)))
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	free(v);
	json_decref(problems);
	return rc;
}
