/*
 * store.c - MongoDB writes and reads of the consumer (see store.h and
 * docs/storage.md). FerretDB shapes the choices: no transactions (writes are
 * idempotent and ordered history -> contexts -> state instead), no '$'/'.'
 * keys and no nested arrays (changes, documents and metadata are stored as
 * canonical JSON text), `ordered` ignored on updates (every update statement
 * here is an upsert that cannot fail on content).
 */
#include "store.h"

#include "bson_json.h"
#include "changetrail/canonical.h"
#include "ct_internal.h"
#include "log.h"

#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

struct ctc_store {
	mongoc_client_t *client;
	mongoc_database_t *db;
	mongoc_collection_t *history, *state, *contexts;
};

static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
	char q[512];
	/* FerretDB has no endSessions; libmongoc warns on every client destroy. */
	if (strstr(message, "endSessions"))
		return;
	if (level > MONGOC_LOG_LEVEL_WARNING)
		return;
	ctc_log(level <= MONGOC_LOG_LEVEL_CRITICAL ? CTC_ERROR : CTC_WARN, "mongoc", "domain=%s detail=%s",
		domain, ctc_log_q(message, q, sizeof(q)));
}

void ctc_store_global_init(void)
{
	mongoc_init();
	mongoc_log_set_handler(log_handler, NULL);
}

void ctc_store_global_cleanup(void)
{
	mongoc_cleanup();
}

ctc_store *ctc_store_open(const char *uri_str, const char *database, ct_error *err)
{
	bson_error_t berr;
	ctc_store *s = calloc(1, sizeof(*s));
	mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_str, &berr);
	if (!s || !uri) {
		/* berr.message may quote the URI: say which rule failed without it */
		ct_error_set(err, s ? CT_ECONFIG : CT_ENOMEM, "[mongodb] uri is not a valid MongoDB URI");
		goto fail;
	}
	/* A down server must fail a batch fast so the consumer pauses and retries. */
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 3000);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 30000);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
		mongoc_uri_set_appname(uri, "changetrail-consumer");
	if (!(s->client = mongoc_client_new_from_uri_with_error(uri, &berr))) {
		ct_error_set(err, CT_ECONFIG, "[mongodb] uri: cannot make a client");
		goto fail;
	}
	mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);
	s->db = mongoc_client_get_database(s->client, database);
	s->history = mongoc_database_get_collection(s->db, "history");
	s->state = mongoc_database_get_collection(s->db, "state");
	s->contexts = mongoc_database_get_collection(s->db, "contexts");
	mongoc_uri_destroy(uri);
	return s;
fail:
	mongoc_uri_destroy(uri);
	ctc_store_close(s);
	return NULL;
}

void ctc_store_close(ctc_store *s)
{
	if (!s)
		return;
	mongoc_collection_destroy(s->history);
	mongoc_collection_destroy(s->state);
	mongoc_collection_destroy(s->contexts);
	mongoc_database_destroy(s->db);
	mongoc_client_destroy(s->client);
	free(s);
}

static int mongo_error(ct_error *err, const char *what, const bson_error_t *e)
{
	return ct_error_set(err, CT_EMONGO, "%s: %s (code %u)", what, e->message, e->code);
}

int ctc_store_ping(ctc_store *s, ct_error *err)
{
	bson_error_t e;
	bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
	bool ok = mongoc_client_command_simple(s->client, "admin", cmd, NULL, NULL, &e);
	bson_destroy(cmd);
	return ok ? 0 : mongo_error(err, "ping", &e);
}

/* Names of the indexes `coll` has (an array of strings, owned by the caller). */
static int index_names(mongoc_collection_t *coll, json_t **out, ct_error *err)
{
	bson_error_t e;
	const bson_t *d;
	json_t *names = json_array();
	mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
	while (mongoc_cursor_next(cur, &d)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, d, "name") && BSON_ITER_HOLDS_UTF8(&it))
			json_array_append_new(names, json_string(bson_iter_utf8(&it, NULL)));
	}
	bool failed = mongoc_cursor_error(cur, &e);
	mongoc_cursor_destroy(cur);
	/* a collection that does not exist yet has no indexes (code 26) */
	if (failed && e.code != 26) {
		json_decref(names);
		return mongo_error(err, "listIndexes", &e);
	}
	*out = names;
	return 0;
}

static bool has_name(const json_t *names, const char *name)
{
	for (size_t i = 0; i < json_array_size(names); i++)
		if (!strcmp(json_string_value(json_array_get(names, i)), name))
			return true;
	return false;
}

/*
 * Creates each missing index with its own createIndexes. Asking for indexes
 * that exist is avoided on purpose: FerretDB 1.24 can panic on it
 * ("slice bounds out of range") once the collection holds data.
 */
int ctc_store_ensure_indexes(ctc_store *s, ct_error *err)
{
	static const struct {
		const char *coll, *name, *keys[3];
		bool unique;
	} wanted[] = {
		{"history", "doc_version", {"collection", "document_id", "version"}, true},
		{"history", "context", {"context_id"}, false},
		{"history", "actor_ts", {"actor", "ts"}, false},
		{"history", "ts", {"ts"}, false},
		{"history", "parent", {"parent.collection", "parent.document_id"}, false},
		{"contexts", "first_ts", {"first_ts"}, false},
	};
	json_t *hist = NULL, *ctxs = NULL;
	int rc;
	if ((rc = index_names(s->history, &hist, err)) || (rc = index_names(s->contexts, &ctxs, err)))
		goto out;
	for (size_t i = 0; i < CT_ARRAY_LEN(wanted); i++) {
		bool is_hist = !strcmp(wanted[i].coll, "history");
		if (has_name(is_hist ? hist : ctxs, wanted[i].name))
			continue;
		bson_t cmd = BSON_INITIALIZER, arr, idx, key;
		bson_error_t e;
		BSON_APPEND_UTF8(&cmd, "createIndexes", wanted[i].coll);
		BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
		BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
		BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
		for (size_t k = 0; k < 3 && wanted[i].keys[k]; k++)
			BSON_APPEND_INT32(&key, wanted[i].keys[k], 1);
		bson_append_document_end(&idx, &key);
		BSON_APPEND_UTF8(&idx, "name", wanted[i].name);
		if (wanted[i].unique)
			BSON_APPEND_BOOL(&idx, "unique", true);
		bson_append_document_end(&arr, &idx);
		bson_append_array_end(&cmd, &arr);
		bool ok = mongoc_database_write_command_with_opts(s->db, &cmd, NULL, NULL, &e);
		bson_destroy(&cmd);
		if (!ok) {
			rc = mongo_error(err, "createIndexes", &e);
			goto out;
		}
	}
out:
	json_decref(hist);
	json_decref(ctxs);
	return rc;
}

int ctc_store_load_states(ctc_store *s, const char *const *keys, size_t n, json_t **out,
			  ct_error *err)
{
	bson_t filter = BSON_INITIALIZER, idq, in;
	bson_error_t e;
	const bson_t *doc;
	json_t *arr = json_array();
	mongoc_cursor_t *cur = NULL;
	int rc = 0;

	*out = NULL;
	if (!arr)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &idq);
	BSON_APPEND_ARRAY_BEGIN(&idq, "$in", &in);
	for (size_t i = 0; i < n; i++) {
		char buf[16];
		const char *k;
		bson_uint32_to_string((uint32_t)i, &k, buf, sizeof(buf));
		BSON_APPEND_UTF8(&in, k, keys[i]);
	}
	bson_append_array_end(&idq, &in);
	bson_append_document_end(&filter, &idq);
	if (n == 0)
		goto out;
	cur = mongoc_collection_find_with_opts(s->state, &filter, NULL, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		json_t *j;
		if ((rc = ctc_bson_to_json(doc, &j, err)))
			goto out;
		if (json_array_append_new(arr, j)) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (mongoc_cursor_error(cur, &e))
		rc = mongo_error(err, "load state", &e);
out:
	mongoc_cursor_destroy(cur);
	bson_destroy(&filter);
	if (rc)
		json_decref(arr);
	else
		*out = arr;
	return rc;
}

int ctc_history_to_bson(const json_t *record, bson_t *out, ct_error *err)
{
	const char *k;
	json_t *v;
	int rc;
	json_object_foreach((json_t *)record, k, v) {
		if (!strcmp(k, "changes")) {
			char *text;
			size_t len;
			if ((rc = ct_canonical_dump(v, &text, &len, err)))
				return rc;
			bool ok = bson_append_utf8(out, "changes", 7, text, (int)len);
			free(text);
			if (!ok)
				return ct_error_set(err, CT_ELIMIT, "history record over the BSON size limit");
		} else if ((rc = ctc_bson_append_json(out, k, v, err))) {
			return rc;
		}
	}
	return 0;
}

int ctc_history_from_bson(const bson_t *doc, json_t **out, ct_error *err)
{
	json_t *j;
	int rc = ctc_bson_to_json(doc, &j, err);
	if (rc)
		return rc;
	const char *text = json_string_value(json_object_get(j, "changes"));
	if (text) {
		json_error_t jerr;
		json_t *changes = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
		if (!changes) {
			json_decref(j);
			return ct_error_set(err, CT_EINVAL, "history changes are not JSON: %s", jerr.text);
		}
		json_object_set_new(j, "changes", changes);
	}
	*out = j;
	return 0;
}

/* true when every write error in a bulk reply is a duplicate key (11000). */
static bool only_duplicates(const bson_t *reply, size_t *n_dup)
{
	bson_iter_t it, arr;
	size_t n = 0;
	if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it)) {
		bson_iter_t w;
		if (bson_iter_recurse(&it, &w) && bson_iter_next(&w))
			return false;
	}
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &arr))
		return false;
	while (bson_iter_next(&arr)) {
		bson_iter_t e;
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &e) ||
		    !bson_iter_find(&e, "code") || bson_iter_as_int64(&e) != 11000)
			return false;
		n++;
	}
	if (n_dup)
		*n_dup = n;
	return n > 0;
}

static int write_history(ctc_store *s, const json_t *history, size_t *n_dup, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply;
	bson_error_t e;
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(s->history, opts);
	int rc = 0;
	bool ran = false;

	for (size_t i = 0; i < json_array_size(history); i++) {
		bson_t doc = BSON_INITIALIZER;
		if ((rc = ctc_history_to_bson(json_array_get(history, i), &doc, err))) {
			bson_destroy(&doc);
			goto out;
		}
		bool ok = mongoc_bulk_operation_insert_with_opts(bulk, &doc, NULL, &e);
		bson_destroy(&doc);
		if (!ok) {
			rc = mongo_error(err, "history insert", &e);
			goto out;
		}
	}
	ran = true;
	if (!mongoc_bulk_operation_execute(bulk, &reply, &e) && !only_duplicates(&reply, n_dup))
		rc = mongo_error(err, "history insert", &e);
out:
	if (ran)
		bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	return rc;
}

static int append_text(bson_t *b, const char *key, const json_t *v, ct_error *err)
{
	char *text;
	size_t len;
	int rc = ct_canonical_dump(v, &text, &len, err);
	if (rc)
		return rc;
	bool ok = bson_append_utf8(b, key, -1, text, (int)len);
	free(text);
	return ok ? 0 : ct_error_set(err, CT_ELIMIT, "context metadata too large");
}

/* One upsert of a context (see docs/storage.md for the fields). */
static int context_update(const ctc_context_agg *a, bson_t *u, ct_error *err)
{
	bson_t set, child;
	int rc = 0;
	BSON_APPEND_DOCUMENT_BEGIN(u, "$set", &set);
	if (a->actor)
		BSON_APPEND_UTF8(&set, "actor", a->actor);
	if (a->parent_id)
		BSON_APPEND_UTF8(&set, "parent_id", a->parent_id);
	if (a->metadata_seen && (rc = append_text(&set, "metadata_seen", a->metadata_seen, err)))
		goto out;
	if (a->complete) {
		BSON_APPEND_BOOL(&set, "complete", true);
		if (a->metadata_final && (rc = append_text(&set, "metadata", a->metadata_final, err)))
			goto out;
	}
	if (a->began)
		BSON_APPEND_BOOL(&set, "began", true);
out:
	bson_append_document_end(u, &set);
	if (rc)
		return rc;
	if (!a->complete) {
		BSON_APPEND_DOCUMENT_BEGIN(u, "$setOnInsert", &child);
		BSON_APPEND_BOOL(&child, "complete", false);
		bson_append_document_end(u, &child);
	}
	BSON_APPEND_DOCUMENT_BEGIN(u, "$min", &child);
	BSON_APPEND_UTF8(&child, "first_ts", a->first_ts);
	bson_append_document_end(u, &child);
	BSON_APPEND_DOCUMENT_BEGIN(u, "$max", &child);
	BSON_APPEND_UTF8(&child, "last_ts", a->last_ts);
	bson_append_document_end(u, &child);
	BSON_APPEND_DOCUMENT_BEGIN(u, "$inc", &child);
	BSON_APPEND_INT64(&child, "event_count", a->event_count);
	bson_append_document_end(u, &child);
	if (json_array_size(a->collections)) {
		bson_t each, arr;
		BSON_APPEND_DOCUMENT_BEGIN(u, "$addToSet", &child);
		BSON_APPEND_DOCUMENT_BEGIN(&child, "collections", &each);
		rc = ctc_bson_append_json(&each, "$each", a->collections, err);
		bson_append_document_end(&child, &each);
		bson_append_document_end(u, &child);
		(void)arr;
	}
	return rc;
}

/*
 * Update statements go out in commands of at most UPDATE_CHUNK: FerretDB
 * 1.24 (SQLite) runs them one at a time and stalls for minutes on a single
 * update command of a few hundred statements (measured: 20 replaces in
 * 0.14 s, 200 in one command did not finish in 100 s). MongoDB does not
 * care either way.
 */
#define UPDATE_CHUNK 16

static int run_bulk(mongoc_bulk_operation_t *bulk, const char *what, ct_error *err)
{
	bson_error_t e;
	bson_t reply;
	bool ok = mongoc_bulk_operation_execute(bulk, &reply, &e);
	bson_destroy(&reply);
	return ok ? 0 : mongo_error(err, what, &e);
}

static int write_contexts(ctc_store *s, const ctc_contexts *c, ct_error *err)
{
	bson_error_t e;
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), *uopts = BCON_NEW("upsert", BCON_BOOL(true));
	mongoc_bulk_operation_t *bulk = NULL;
	int rc = 0;
	for (size_t i = 0; i < c->n && !rc; i++) {
		bson_t sel = BSON_INITIALIZER, u = BSON_INITIALIZER;
		if (!bulk)
			bulk = mongoc_collection_create_bulk_operation_with_opts(s->contexts, opts);
		BSON_APPEND_UTF8(&sel, "_id", c->items[i].id);
		rc = context_update(&c->items[i], &u, err);
		if (!rc && !mongoc_bulk_operation_update_one_with_opts(bulk, &sel, &u, uopts, &e))
			rc = mongo_error(err, "contexts update", &e);
		bson_destroy(&sel);
		bson_destroy(&u);
		if (!rc && ((i + 1) % UPDATE_CHUNK == 0 || i + 1 == c->n)) {
			rc = run_bulk(bulk, "contexts update", err);
			mongoc_bulk_operation_destroy(bulk);
			bulk = NULL;
		}
	}
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	bson_destroy(uopts);
	return rc;
}

static int write_states(ctc_store *s, const json_t *states, ct_error *err)
{
	bson_error_t e;
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), *uopts = BCON_NEW("upsert", BCON_BOOL(true));
	mongoc_bulk_operation_t *bulk = NULL;
	size_t n = json_array_size(states);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const json_t *st = json_array_get(states, i);
		bson_t sel = BSON_INITIALIZER, doc = BSON_INITIALIZER;
		if (!bulk)
			bulk = mongoc_collection_create_bulk_operation_with_opts(s->state, opts);
		BSON_APPEND_UTF8(&sel, "_id", json_string_value(json_object_get(st, "_id")));
		rc = ctc_json_to_bson(st, &doc, err);
		if (!rc && !mongoc_bulk_operation_replace_one_with_opts(bulk, &sel, &doc, uopts, &e))
			rc = mongo_error(err, "state replace", &e);
		bson_destroy(&sel);
		bson_destroy(&doc);
		if (!rc && ((i + 1) % UPDATE_CHUNK == 0 || i + 1 == n)) {
			rc = run_bulk(bulk, "state replace", err);
			mongoc_bulk_operation_destroy(bulk);
			bulk = NULL;
		}
	}
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	bson_destroy(uopts);
	return rc;
}

int ctc_store_write(ctc_store *s, const ctc_write_set *ws, size_t *n_dup, ct_error *err)
{
	int rc;
	if (n_dup)
		*n_dup = 0;
	if (json_array_size(ws->history) && (rc = write_history(s, ws->history, n_dup, err)))
		return rc;
	if (ws->contexts && ws->contexts->n && (rc = write_contexts(s, ws->contexts, err)))
		return rc;
	if (json_array_size(ws->states) && (rc = write_states(s, ws->states, err)))
		return rc;
	return 0;
}
