/*
 * migrate.c - ct_history_migrate(): copies a database written in the v1
 * stored form (user JSON as text, times as text, state journal, context
 * parts) into a new database in the v2 native form (storage/cts_codec.h),
 * record for record, without re-hashing: the codec's JSON form of each
 * record is the one its hash was made over.
 *
 * Phases, each in _id order: history, state, state_journal (states of a
 * swap cut short, applied only if newer), contexts (each with its v1 parts
 * merged in). After each batch, the last _id done is kept in a progress
 * document in the target database, so an interrupted run continues where
 * it stopped and a finished one, run again, finds nothing after its last
 * _ids. A batch redone after a crash is harmless: a history record already
 * there is compared by hash (another record there is a conflict), a state
 * is written only over an older one (never moved back), a context is
 * replaced.
 */
#include "history_internal.h"

#include "changetrail/canonical.h"
#include "cts_codec.h"
#include "cts_mongo.h"
#include "cts_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The progress document: collection and _id in the target database. */
#define MIGRATE_COLL "changetrail_migrate"
#define MIGRATE_ID "v1_to_v2"
/* Record ids of hash mismatches listed in the result (all are counted). */
#define MAX_LISTED 20

enum phase { P_HISTORY, P_STATE, P_JOURNAL, P_CONTEXTS, P_COUNT };
static const char *const phase_name[P_COUNT] = {"history", "state", "state_journal", "contexts"};

typedef struct run {
	ct_history *from, *into;
	const ct_history_migrate_opts *o;
	mongoc_collection_t *progress;
	json_t *res;                /* the result being built */
	char *after[P_COUNT];       /* last _id done per phase (NULL: none) */
	int64_t read_total;         /* documents read in this run (max_records) */
	bool stopped;               /* max_records reached */
} run;

/* Prefixes err's message with `what`: "<what>: <message>". */
static int prefixed(ct_error *err, int rc, const char *what)
{
	char why[sizeof(err->message)];
	snprintf(why, sizeof(why), "%s", err ? err->message : "");
	return ct_error_set(err, rc, "%s: %s", what, why);
}

/* res[phase][key] += n */
static void count(run *r, enum phase p, const char *key, int64_t n)
{
	json_t *o = json_object_get(r->res, phase_name[p]);
	json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + n));
}

static int load_progress(run *r, ct_error *err)
{
	bson_t *f = BCON_NEW("_id", BCON_UTF8(MIGRATE_ID));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(r->progress, f, NULL, NULL);
	const bson_t *doc;
	bson_error_t e;
	bson_iter_t it;
	int rc = 0;
	if (mongoc_cursor_next(cur, &doc)) {
		if (bson_iter_init_find(&it, doc, "from_db") && BSON_ITER_HOLDS_UTF8(&it) &&
		    strcmp(bson_iter_utf8(&it, NULL), r->from->dbname)) {
			rc = ct_error_set(err, CT_EINVAL, "database %s was migrated from %s, not from %s",
					  r->into->dbname, bson_iter_utf8(&it, NULL), r->from->dbname);
			goto out;
		}
		for (int p = 0; p < P_COUNT; p++) {
			char key[64];
			snprintf(key, sizeof(key), "%s_after", phase_name[p]);
			if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) &&
			    !(r->after[p] = strdup(bson_iter_utf8(&it, NULL)))) {
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
				goto out;
			}
		}
		json_object_set_new(r->res, "resumed", json_true());
	}
	if (mongoc_cursor_error(cur, &e))
		rc = cth_mongo_error(err, "migrate: progress read", &e);
out:
	mongoc_cursor_destroy(cur);
	bson_destroy(f);
	return rc;
}

/* Keeps `last` as the last _id done of phase `p`, in memory and in the target database. */
static int save_progress(run *r, enum phase p, const char *last, bool complete, ct_error *err)
{
	char key[64];
	bson_error_t e;
	bson_t upd = BSON_INITIALIZER, set;
	int rc = 0;
	if (last) {
		char *dup = strdup(last);
		if (!dup)
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		free(r->after[p]);
		r->after[p] = dup;
	}
	snprintf(key, sizeof(key), "%s_after", phase_name[p]);
	BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
	BSON_APPEND_UTF8(&set, "from_db", r->from->dbname);
	if (r->after[p])
		BSON_APPEND_UTF8(&set, key, r->after[p]);
	if (complete)
		BSON_APPEND_BOOL(&set, "complete", true);
	else
		BSON_APPEND_UTF8(&set, "phase", phase_name[p]);
	bson_append_document_end(&upd, &set);
	bson_t *sel = BCON_NEW("_id", BCON_UTF8(MIGRATE_ID)), *opts = BCON_NEW("upsert", BCON_BOOL(true));
	if (!mongoc_collection_update_one(r->progress, sel, &upd, opts, NULL, &e))
		rc = cth_mongo_error(err, "migrate: progress write", &e);
	bson_destroy(sel);
	bson_destroy(opts);
	bson_destroy(&upd);
	return rc;
}

/* The indexes (in the unordered bulk) of the duplicate-key errors of `reply`; other errors: -1. */
static int dup_indexes(const bson_t *reply, size_t n, bool *dup)
{
	bson_iter_t it, arr, e;
	if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &arr) && bson_iter_next(&arr))
		return -1;
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &arr))
		return -1;
	while (bson_iter_next(&arr)) {
		int64_t code = 0, idx = -1;
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &e))
			return -1;
		while (bson_iter_next(&e))
			if (!strcmp(bson_iter_key(&e), "code"))
				code = bson_iter_as_int64(&e);
			else if (!strcmp(bson_iter_key(&e), "index"))
				idx = bson_iter_as_int64(&e);
		if (code != 11000 || idx < 0 || (size_t)idx >= n)
			return -1;
		dup[idx] = true;
	}
	return 0;
}

/* The record stored under `id` in the target is `want` (same document, version and hash): 1, else 0. */
static int same_record_stored(run *r, const json_t *want, ct_error *err)
{
	json_t *got = NULL;
	bson_t *f = BCON_NEW("_id", BCON_UTF8(cth_str(want, "_id")));
	int rc = cth_find(r->into, r->into->history, f, true, &got, err);
	bson_destroy(f);
	if (rc)
		return rc;
	const json_t *g = json_array_get(got, 0);
	int same = g && !strcmp(cth_str(g, "collection"), cth_str(want, "collection")) &&
		   !strcmp(cth_str(g, "document_id"), cth_str(want, "document_id")) &&
		   cth_int(g, "version") == cth_int(want, "version") &&
		   !strcmp(cth_str(g, "hash"), cth_str(want, "hash"));
	json_decref(got);
	return same;
}

/* Writes one batch of history records (JSON forms in `recs`, native in docs[]). */
static int write_history(run *r, const json_t *recs, bson_t *docs, size_t n, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply;
	bson_error_t e;
	bool *dup = calloc(n, sizeof(*dup));
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(r->into->history, opts);
	int rc = 0;
	size_t ndup = 0;
	if (!dup) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!mongoc_bulk_operation_insert_with_opts(bulk, &docs[i], NULL, &e)) {
			rc = cth_mongo_error(err, "migrate: history insert", &e);
			goto out;
		}
	bool ok = mongoc_bulk_operation_execute(bulk, &reply, &e);
	if (!ok && dup_indexes(&reply, n, dup))
		rc = cth_mongo_error(err, "migrate: history insert", &e);
	bson_destroy(&reply);
	if (rc)
		goto out;
	/* A duplicate is the record a run cut short already wrote, or a conflict. */
	for (size_t i = 0; i < n; i++) {
		if (!dup[i])
			continue;
		const json_t *rec = json_array_get(recs, i);
		int same = same_record_stored(r, rec, err);
		if (same < 0) {
			rc = same;
			goto out;
		}
		if (!same) {
			rc = ct_error_set(err, CT_ECONFLICT,
					  "history record %s (%s/%s v%lld): the target database holds another record "
					  "under its _id or its version",
					  cth_str(rec, "_id"), cth_str(rec, "collection"), cth_str(rec, "document_id"),
					  (long long)cth_int(rec, "version"));
			goto out;
		}
		ndup++;
	}
	count(r, P_HISTORY, "written", (int64_t)(n - ndup));
	count(r, P_HISTORY, "present", (int64_t)ndup);
out:
	free(dup);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	return rc;
}

/* The stored versions of the states ids[0..n) in the target, by _id (-1: none): one $in query. */
static int stored_versions(run *r, size_t n, const char **ids, int64_t *stored, ct_error *err)
{
	bson_t filter = BSON_INITIALIZER, in, arr;
	bson_t *opts = BCON_NEW("projection", "{", "version", BCON_INT32(1), "}");
	bson_error_t e;
	const bson_t *d;
	json_t *seen = json_object();
	int rc = 0;
	BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (size_t i = 0; i < n; i++) {
		char key[16];
		const char *k;
		bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
		BSON_APPEND_UTF8(&arr, k, ids[i]);
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(&filter, &in);
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(r->into->state, &filter, opts, NULL);
	while (seen && mongoc_cursor_next(cur, &d)) {
		bson_iter_t id, v;
		if (bson_iter_init_find(&id, d, "_id") && BSON_ITER_HOLDS_UTF8(&id) && bson_iter_init_find(&v, d, "version"))
			json_object_set_new(seen, bson_iter_utf8(&id, NULL), json_integer(bson_iter_as_int64(&v)));
	}
	if (!seen)
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
	else if (mongoc_cursor_error(cur, &e))
		rc = cth_mongo_error(err, "migrate: state read", &e);
	for (size_t i = 0; !rc && i < n; i++) {
		json_t *v = json_object_get(seen, ids[i]);
		stored[i] = v ? (int64_t)json_integer_value(v) : -1;
	}
	mongoc_cursor_destroy(cur);
	json_decref(seen);
	bson_destroy(&filter);
	bson_destroy(opts);
	return rc;
}

/*
 * Writes states so that none moves back, the way the consumer does
 * (consumer/store_state.c): the stored versions read by _id, then inserts
 * (none stored) and compare-and-swap replaces ({_id, version: the one
 * read}) where the stored one is older; a stored state as new or newer is
 * left (counted not_newer). Equality filters on _id / (_id, version): a
 * `version: {$lt: v}` guard costs some servers a collection scan per
 * statement. A state changed in between is seen by the next round.
 */
static int write_states(run *r, enum phase p, bson_t *docs, size_t n, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	int64_t *ver = calloc(n ? n : 1, sizeof(*ver)), *stored = calloc(n ? n : 1, sizeof(*stored));
	size_t *todo = calloc(n ? n : 1, sizeof(*todo));
	bson_error_t e;
	int rc = 0;
	size_t m = n, written = 0;
	if (!ids || !ver || !stored || !todo) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		bson_iter_t id, v;
		if (!bson_iter_init_find(&id, &docs[i], "_id") || !BSON_ITER_HOLDS_UTF8(&id) ||
		    !bson_iter_init_find(&v, &docs[i], "version")) {
			rc = ct_error_set(err, CT_EINVAL, "stored state without _id or version");
			goto out;
		}
		ids[i] = bson_iter_utf8(&id, NULL);
		ver[i] = bson_iter_as_int64(&v);
		todo[i] = i;
	}
	for (int round = 0; m && !rc; round++) {
		const char **rid = calloc(m, sizeof(*rid));
		int64_t *rst = calloc(m, sizeof(*rst));
		if (!rid || !rst) {
			free(rid);
			free(rst);
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			break;
		}
		for (size_t k = 0; k < m; k++)
			rid[k] = ids[todo[k]];
		rc = stored_versions(r, m, rid, rst, err);
		for (size_t k = 0; !rc && k < m; k++)
			stored[todo[k]] = rst[k];
		free(rid);
		free(rst);
		if (rc)
			break;
		size_t left = 0;
		for (size_t k = 0; k < m; k++)
			if (stored[todo[k]] < ver[todo[k]])
				todo[left++] = todo[k];
		if (round > 0)
			written += m - left; /* the previous round's writes that are stored now */
		m = left;
		if (!m)
			break;
		if (round == 3) {
			rc = ct_error_set(err, CT_ECONFLICT, "migrate: %zu states changed by another writer 3 times in a row "
					  "(stop the consumer writing %s)", m, r->into->dbname);
			break;
		}
		mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(r->into->state, opts);
		for (size_t k = 0; k < m && !rc; k++) {
			size_t i = todo[k];
			bool ok;
			if (stored[i] < 0) {
				ok = mongoc_bulk_operation_insert_with_opts(bulk, &docs[i], NULL, &e);
			} else {
				bson_t *sel = BCON_NEW("_id", BCON_UTF8(ids[i]), "version", BCON_INT64(stored[i]));
				ok = mongoc_bulk_operation_replace_one_with_opts(bulk, sel, &docs[i], NULL, &e);
				bson_destroy(sel);
			}
			if (!ok)
				rc = cth_mongo_error(err, "migrate: state write", &e);
		}
		if (!rc) {
			bson_t reply;
			bool *dup = calloc(m, sizeof(*dup));
			/* a duplicate: inserted meanwhile by someone else, seen by the next round */
			if (!mongoc_bulk_operation_execute(bulk, &reply, &e) && (!dup || dup_indexes(&reply, m, dup)))
				rc = cth_mongo_error(err, "migrate: state write", &e);
			free(dup);
			bson_destroy(&reply);
		}
		mongoc_bulk_operation_destroy(bulk);
	}
	if (!rc) {
		count(r, p, "written", (int64_t)written);
		count(r, p, "not_newer", (int64_t)(n - written));
	}
out:
	free(ids);
	free(ver);
	free(stored);
	free(todo);
	bson_destroy(opts);
	return rc;
}

/* A state (v1 or v2 stored form) in the v2 form, appended to `out`. */
static int state_v2(const bson_t *doc, bson_t *out, ct_error *err)
{
	json_t *st = NULL;
	int rc = cts_state_from_bson(doc, &st, err);
	if (!rc)
		rc = cts_state_to_bson(st, out, err);
	json_decref(st);
	return rc;
}

/* A context merged with its parts (JSON) as a v2 contexts document. */
static int context_v2(const json_t *ctx, bson_t *out, ct_error *err)
{
	const char *key;
	json_t *v;
	int rc = 0;
	json_object_foreach((json_t *)ctx, key, v) {
		if (!strcmp(key, "first_ts") || !strcmp(key, "last_ts")) {
			char us_key[32];
			snprintf(us_key, sizeof(us_key), "%s_us", key);
			if (json_is_string(v))
				rc = cts_append_time(out, key, us_key, json_string_value(v), err);
		} else if (strcmp(key, "context_id") && strcmp(key, "writes")) {
			rc = cts_bson_append_json(out, key, v, err);
		}
		if (rc) {
			char what[1100];
			snprintf(what, sizeof(what), "context %s", cth_str(ctx, "_id"));
			return prefixed(err, rc, what);
		}
	}
	bson_t arr;
	BSON_APPEND_ARRAY_BEGIN(out, "writes", &arr);
	bson_append_array_end(out, &arr);
	return 0;
}

/* The context `id`'s parts in the source (v1; none in a v2 database). */
static int context_parts(run *r, const char *id, json_t **parts, ct_error *err)
{
	bson_t *f = BCON_NEW("context_id", BCON_UTF8(id));
	int rc = cth_find(r->from, r->from->context_parts, f, false, parts, err);
	bson_destroy(f);
	return rc;
}

/* Replaces (upserts) the contexts docs[0..n) by _id. */
static int write_contexts(run *r, bson_t *docs, size_t n, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply, *uopts = BCON_NEW("upsert", BCON_BOOL(true));
	bson_error_t e;
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(r->into->contexts, opts);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		bson_iter_t id;
		if (!bson_iter_init_find(&id, &docs[i], "_id") || !BSON_ITER_HOLDS_UTF8(&id)) {
			rc = ct_error_set(err, CT_EINVAL, "context without a string _id");
			break;
		}
		bson_t *sel = BCON_NEW("_id", BCON_UTF8(bson_iter_utf8(&id, NULL)));
		if (!mongoc_bulk_operation_replace_one_with_opts(bulk, sel, &docs[i], uopts, &e))
			rc = cth_mongo_error(err, "migrate: contexts upsert", &e);
		bson_destroy(sel);
	}
	if (!rc && n) {
		if (!mongoc_bulk_operation_execute(bulk, &reply, &e))
			rc = cth_mongo_error(err, "migrate: contexts upsert", &e);
		bson_destroy(&reply);
		if (!rc)
			count(r, P_CONTEXTS, "written", (int64_t)n);
	}
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	bson_destroy(uopts);
	return rc;
}

/* The states a v1 journal record packs (an array or a binary BSON document of states). */
static int journal_states(const bson_t *jdoc, bson_t **out, size_t *n, ct_error *err)
{
	bson_iter_t it, arr;
	bson_t packed;
	bool have = false;
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	if (!bson_iter_init_find(&it, jdoc, "states"))
		return 0;
	if (BSON_ITER_HOLDS_ARRAY(&it)) {
		have = bson_iter_recurse(&it, &arr);
	} else if (BSON_ITER_HOLDS_BINARY(&it)) {
		const uint8_t *bin;
		uint32_t len;
		bson_subtype_t sub;
		bson_iter_binary(&it, &sub, &len, &bin);
		have = bson_init_static(&packed, bin, len) && bson_validate(&packed, BSON_VALIDATE_NONE, NULL) &&
		       bson_iter_init(&arr, &packed);
	}
	if (!have)
		return ct_error_set(err, CT_EINVAL, "state journal record: states are not a BSON array or document");
	while (bson_iter_next(&arr)) {
		const uint8_t *data;
		uint32_t len;
		bson_t st;
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
			continue;
		bson_iter_document(&arr, &len, &data);
		if (!bson_init_static(&st, data, len))
			continue;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			bson_t *g = realloc(*out, nc * sizeof(*g));
			if (!g)
				return ct_error_set(err, CT_ENOMEM, "out of memory");
			*out = g;
			cap = nc;
		}
		bson_init(&(*out)[*n]);
		int rc = state_v2(&st, &(*out)[*n], err);
		(*n)++;
		if (rc)
			return rc;
	}
	return 0;
}

static void free_docs(bson_t *docs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bson_destroy(&docs[i]);
}

/*
 * One phase: the source collection in _id order after the last _id done,
 * in batches converted and written by `p`'s writer, progress saved after
 * each batch.
 */
static int run_phase(run *r, enum phase p, ct_error *err)
{
	static const struct {
		const char *coll;
	} src[P_COUNT] = {{CTS_COLL_HISTORY}, {CTS_COLL_STATE}, {CTS_COLL_V1_STATE_JOURNAL}, {CTS_COLL_CONTEXTS}};
	mongoc_collection_t *coll = mongoc_database_get_collection(r->from->db, src[p].coll);
	size_t batch = r->o && r->o->batch > 0 ? (size_t)r->o->batch : 1000;
	bson_t filter = BSON_INITIALIZER, gt;
	bson_t *fopts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
	bson_t *docs = calloc(batch, sizeof(*docs));
	json_t *recs = json_array();
	mongoc_cursor_t *cur = NULL;
	bson_error_t e;
	const bson_t *doc;
	size_t n = 0;
	int64_t total = 0, done = 0;
	char last[1100] = "";
	int rc = 0;

	if (!docs || !recs) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	if (r->after[p]) {
		BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &gt);
		BSON_APPEND_UTF8(&gt, "$gt", r->after[p]);
		bson_append_document_end(&filter, &gt);
	}
	int64_t c = mongoc_collection_count_documents(coll, &filter, NULL, NULL, NULL, &e);
	if (c < 0) {
		rc = cth_mongo_error(err, "migrate: count", &e);
		goto out;
	}
	total = c;
	if (r->o && r->o->progress)
		r->o->progress(r->o->progress_arg, phase_name[p], 0, total);
	cur = mongoc_collection_find_with_opts(coll, &filter, fopts, NULL);
	for (;;) {
		bool more = !r->stopped && mongoc_cursor_next(cur, &doc);
		if (more) {
			bson_iter_t id;
			json_t *j = NULL;
			if (!bson_iter_init_find(&id, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&id)) {
				rc = ct_error_set(err, CT_EINVAL, "%s: a document without a string _id", src[p].coll);
				goto out;
			}
			snprintf(last, sizeof(last), "%s", bson_iter_utf8(&id, NULL));
			bson_init(&docs[n]);
			if (p == P_HISTORY) {
				if ((rc = cts_history_from_bson(doc, &j, err)) ||
				    (rc = cts_history_to_bson(j, &docs[n], err))) {
					json_decref(j);
					n++;
					char what[1200];
					snprintf(what, sizeof(what), "history record %s", last);
					rc = prefixed(err, rc, what);
					goto out;
				}
				if (strcmp(cth_str(j, "op"), "checkpoint")) {
					int ok = cth_hash_ok(j, err);
					if (ok < 0) {
						json_decref(j);
						n++;
						rc = ok;
						goto out;
					}
					if (!ok) {
						/* copied as it is: `verify` on the target reports it, as on the source */
						json_t *ids = json_object_get(json_object_get(r->res, "history"), "hash_mismatch_ids");
						count(r, P_HISTORY, "hash_mismatches", 1);
						if (json_array_size(ids) < MAX_LISTED)
							json_array_append_new(ids, json_string(last));
					}
				}
				json_array_append_new(recs, j);
			} else if (p == P_STATE) {
				rc = state_v2(doc, &docs[n], err);
			} else if (p == P_CONTEXTS) {
				json_t *ctxs = NULL, *parts = NULL, *merged = NULL;
				if (!(rc = cts_context_from_bson(doc, &j, err)) && !(rc = context_parts(r, last, &parts, err)) &&
				    !(rc = (ctxs = json_pack("[O]", j)) ? 0 : ct_error_set(err, CT_ENOMEM, "out of memory")) &&
				    !(rc = cth_merge_context(ctxs, parts, &merged, err)))
					rc = context_v2(merged, &docs[n], err);
				if (!rc)
					count(r, P_CONTEXTS, "parts_merged", (int64_t)json_array_size(parts));
				json_decref(j);
				json_decref(ctxs);
				json_decref(parts);
				json_decref(merged);
			} else { /* P_JOURNAL: one record packs many states, written at once */
				bson_t *st = NULL;
				size_t ns = 0;
				rc = journal_states(doc, &st, &ns, err);
				if (!rc)
					rc = write_states(r, p, st, ns, err);
				free_docs(st, ns);
				free(st);
			}
			n++;
			if (rc)
				goto out;
			r->read_total++;
			if (r->o && r->o->max_records > 0 && r->read_total >= r->o->max_records)
				r->stopped = true;
		} else if (mongoc_cursor_error(cur, &e)) {
			rc = cth_mongo_error(err, "migrate: read", &e);
			goto out;
		}
		if (n && (n == batch || !more)) {
			if (p == P_HISTORY)
				rc = write_history(r, recs, docs, n, err);
			else if (p == P_STATE)
				rc = write_states(r, p, docs, n, err);
			else if (p == P_CONTEXTS)
				rc = write_contexts(r, docs, n, err);
			if (rc)
				goto out;
			count(r, p, "read", (int64_t)n);
			done += (int64_t)n;
			free_docs(docs, n);
			n = 0;
			json_array_clear(recs);
			if ((rc = save_progress(r, p, last, false, err)))
				goto out;
			if (r->o && r->o->progress)
				r->o->progress(r->o->progress_arg, phase_name[p], done, total);
		}
		if (!more)
			break;
	}
out:
	free_docs(docs, n);
	free(docs);
	json_decref(recs);
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(&filter);
	bson_destroy(fopts);
	return rc;
}

int ct_history_migrate(ct_history *from, ct_history *into, const ct_history_migrate_opts *o, json_t **out,
		       ct_error *err)
{
	run r = {.from = from, .into = into, .o = o};
	int rc = 0;
	if (!from || !into || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_migrate: NULL argument");
	*out = NULL;
	if (!strcmp(from->dbname, into->dbname))
		return ct_error_set(err, CT_EINVAL, "migrate copies into another database: --into must not be %s",
				    from->dbname);
	if (o && (o->batch < 0 || o->batch > 10000 || o->max_records < 0))
		return ct_error_set(err, CT_EINVAL, "migrate: batch must be 1..10000, max_records >= 0");
	r.res = json_pack("{s:s, s:s, s:b, s:b, s:{s:i, s:i, s:i, s:i, s:[]}, s:{s:i, s:i, s:i},"
			  " s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i}}",
			  "from", from->dbname, "into", into->dbname, "complete", 0, "resumed", 0, "history", "read", 0,
			  "written", 0, "present", 0, "hash_mismatches", 0, "hash_mismatch_ids", "state", "read", 0,
			  "written", 0, "not_newer", 0, "state_journal", "read", 0, "written", 0, "not_newer", 0,
			  "contexts", "read", 0, "written", 0, "parts_merged", 0);
	if (!r.res)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	r.progress = mongoc_database_get_collection(into->db, MIGRATE_COLL);
	cts_index_opts io = {0};
	if ((rc = load_progress(&r, err)) || (rc = cts_ensure_indexes(into->db, &io, err)))
		goto out;
	for (int p = 0; p < P_COUNT && !rc && !r.stopped; p++)
		rc = run_phase(&r, (enum phase)p, err);
	if (rc)
		goto out;
	if (!r.stopped) {
		if ((rc = save_progress(&r, P_CONTEXTS, NULL, true, err)))
			goto out;
		json_object_set_new(r.res, "complete", json_true());
	}
	*out = r.res;
	r.res = NULL;
out:
	json_decref(r.res);
	for (int p = 0; p < P_COUNT; p++)
		free(r.after[p]);
	mongoc_collection_destroy(r.progress);
	return rc;
}
