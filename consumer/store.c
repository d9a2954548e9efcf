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
#include "changetrail/event.h"
#include "ct_buf.h"
#include "ct_internal.h"
#include "ct_textsafe.h"
#include "log.h"

#include <mongoc/mongoc.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ctc_store {
	mongoc_client_t *client;
	mongoc_database_t *db;
	mongoc_collection_t *history, *state, *contexts, *context_parts, *journal;
	bson_t *insert_opts; /* see ctc_store_open() */
};

static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
	char q[1100], safe[1024];
	/* FerretDB has no endSessions; libmongoc warns on every client destroy. */
	if (strstr(message, "endSessions"))
		return;
	if (level > MONGOC_LOG_LEVEL_WARNING)
		return;
	ctc_log(level <= MONGOC_LOG_LEVEL_CRITICAL ? CTC_ERROR : CTC_WARN, "mongoc", "domain=%s detail=%s",
		domain, ctc_log_q(ct_redact_text(message, safe, sizeof(safe)), q, sizeof(q)));
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

mongoc_client_t *ctc_mongo_client_new(const char *uri_str, const char *appname, int socket_timeout_ms,
				      ct_error *err)
{
	bson_error_t berr;
	mongoc_client_t *client = NULL;
	mongoc_uri_t *uri = NULL;
	/* before libmongoc: it cuts a password at its first '@' and quotes the rest as a host */
	if (ct_uri_check_userinfo(uri_str, "[mongodb] uri", err))
		return NULL;
	if (!(uri = mongoc_uri_new_with_error(uri_str, &berr))) {
		/* berr.message may quote the URI: say which rule failed without it */
		ct_error_set(err, CT_ECONFIG, "[mongodb] uri is not a valid MongoDB URI");
		return NULL;
	}
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 3000);
	if (socket_timeout_ms > 0 && !mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, socket_timeout_ms);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
		mongoc_uri_set_appname(uri, appname);
	if (!(client = mongoc_client_new_from_uri_with_error(uri, &berr)))
		ct_error_set(err, CT_ECONFIG, "[mongodb] uri: cannot make a client");
	else
		mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	mongoc_uri_destroy(uri);
	return client;
}

ctc_store *ctc_store_open(const char *uri_str, const char *database, ct_error *err)
{
	ctc_store *s = calloc(1, sizeof(*s));
	if (!s) {
		ct_error_set(err, CT_ENOMEM, "out of memory");
		return NULL;
	}
	/* A down server must fail a batch fast so the consumer pauses and retries. */
	if (!(s->client = ctc_mongo_client_new(uri_str, "changetrail-consumer", 30000, err)))
		goto fail;
	s->db = mongoc_client_get_database(s->client, database);
	s->history = mongoc_database_get_collection(s->db, "history");
	s->state = mongoc_database_get_collection(s->db, "state");
	s->journal = mongoc_database_get_collection(s->db, "state_journal");
	s->contexts = mongoc_database_get_collection(s->db, "contexts");
	s->context_parts = mongoc_database_get_collection(s->db, "context_parts");
	/* Every inserted document is built here from jansson values (valid
	 * UTF-8) under keys of ours: user data travels as JSON text (`changes`,
	 * `doc`, `metadata`), never as BSON keys. libmongoc's client-side check
	 * of each document (UTF-8, `$` and `.` in keys) took ~2% of the
	 * consumer's CPU; the server checks what it stores anyway. */
	if (!(s->insert_opts = BCON_NEW("validate", BCON_BOOL(false)))) {
		ct_error_set(err, CT_ENOMEM, "out of memory");
		goto fail;
	}
	return s;
fail:
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
	mongoc_collection_destroy(s->context_parts);
	mongoc_collection_destroy(s->journal);
	mongoc_database_destroy(s->db);
	mongoc_client_destroy(s->client);
	if (s->insert_opts)
		bson_destroy(s->insert_opts);
	free(s);
}

static int mongo_error(ct_error *err, const char *what, const bson_error_t *e)
{
	char safe[sizeof(e->message)];
	return ct_error_set(err, CT_EMONGO, "%s: %s (code %u)", what, ct_redact_text(e->message, safe, sizeof(safe)),
			    e->code);
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
		{"context_parts", "context", {"context_id"}, false},
	};
	json_t *hist = NULL, *ctxs = NULL, *parts = NULL;
	int rc;
	if ((rc = index_names(s->history, &hist, err)) || (rc = index_names(s->contexts, &ctxs, err)) ||
	    (rc = index_names(s->context_parts, &parts, err)))
		goto out;
	for (size_t i = 0; i < CT_ARRAY_LEN(wanted); i++) {
		const json_t *names = !strcmp(wanted[i].coll, "history")    ? hist
				      : !strcmp(wanted[i].coll, "contexts") ? ctxs
									    : parts;
		if (has_name(names, wanted[i].name))
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
	json_decref(parts);
	return rc;
}

static int journal_recover(ctc_store *s, const char *const *keys, size_t n_keys, const json_t *found, size_t *applied,
			   ct_error *err);

static int load_states_once(ctc_store *s, const char *const *keys, size_t n, json_t **out,
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

int ctc_store_load_states(ctc_store *s, const char *const *keys, size_t n, json_t **out,
			  ct_error *err)
{
	size_t applied = 0;
	int rc = load_states_once(s, keys, n, out, err);
	/* A key without state is a new document, or one whose state swap was
	 * cut short or is in progress (see write_states): take it from the
	 * journal, finish any swap cut short, then look again. */
	if (rc || json_array_size(*out) == n)
		return rc;
	if (!(rc = journal_recover(s, keys, n, *out, &applied, err)) && applied) {
		json_decref(*out);
		rc = load_states_once(s, keys, n, out, err);
	}
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/*
 * A duplicate-key error on a unique index other than _id: MongoDB names the
 * index in errmsg ("... index: doc_version dup key: ..."); FerretDB 1.24
 * names none, and its errors pass for _id duplicates.
 */
static bool on_other_index(bson_iter_t err)
{
	const char *msg = NULL, *ix;
	if (bson_iter_find(&err, "errmsg") && BSON_ITER_HOLDS_UTF8(&err))
		msg = bson_iter_utf8(&err, NULL);
	ix = msg ? strstr(msg, " index: ") : NULL;
	return ix && strncmp(ix + 8, "_id_", 4) != 0;
}

bool ctc_store_reply_only_duplicates(const bson_t *reply, size_t *n_dup)
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
		bson_iter_t e, start;
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &e))
			return false;
		start = e;
		if (!bson_iter_find(&e, "code") || bson_iter_as_int64(&e) != 11000 || on_other_index(start))
			return false;
		n++;
	}
	if (n_dup)
		*n_dup = n;
	return n > 0;
}

/* Queues one record's BSON on the bulk. */
static int queue_history(mongoc_bulk_operation_t *bulk, const bson_t *doc, const bson_t *opts, ct_error *err)
{
	bson_error_t e;
	if (!mongoc_bulk_operation_insert_with_opts(bulk, doc, opts, &e))
		return mongo_error(err, "history insert", &e);
	return 0;
}

/* The length of the BSON document at data[off..len), or 0 when it does not fit there. */
static size_t doc_len_at(const uint8_t *data, size_t len, size_t off)
{
	int32_t dl;
	if (len - off < 5)
		return 0;
	memcpy(&dl, data + off, 4);
	dl = (int32_t)BSON_UINT32_FROM_LE((uint32_t)dl);
	return dl >= 5 && (size_t)dl <= len - off ? (size_t)dl : 0;
}

static int write_history(ctc_store *s, const ctc_write_set *ws, size_t *n_dup, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply;
	bson_error_t e;
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(s->history, opts);
	int rc = 0;
	bool ran = false;

	for (size_t i = 0; i < json_array_size(ws->history); i++) {
		bson_t doc = BSON_INITIALIZER;
		if (!(rc = ctc_history_to_bson(json_array_get(ws->history, i), &doc, err)))
			rc = queue_history(bulk, &doc, s->insert_opts, err);
		bson_destroy(&doc);
		if (rc)
			goto out;
	}
	for (size_t off = 0, len; off < ws->history_bson_len; off += len) {
		bson_t doc;
		if (!(len = doc_len_at(ws->history_bson, ws->history_bson_len, off)) ||
		    !bson_init_static(&doc, ws->history_bson + off, len)) {
			rc = ct_error_set(err, CT_EINVAL, "history: malformed BSON at offset %zu", off);
			goto out;
		}
		if ((rc = queue_history(bulk, &doc, s->insert_opts, err)))
			goto out;
	}
	ran = true;
	if (!mongoc_bulk_operation_execute(bulk, &reply, &e) && !ctc_store_reply_only_duplicates(&reply, n_dup))
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

/* The fields of a context document (or of a part), without its _id. */
static int context_fields(const ctc_context_agg *a, bson_t *d, ct_error *err)
{
	int rc = 0;
	if (a->actor)
		BSON_APPEND_UTF8(d, "actor", a->actor);
	if (a->parent_id)
		BSON_APPEND_UTF8(d, "parent_id", a->parent_id);
	if (a->metadata_seen && (rc = append_text(d, "metadata_seen", a->metadata_seen, err)))
		return rc;
	BSON_APPEND_BOOL(d, "complete", a->complete);
	if (a->complete && a->metadata_final && (rc = append_text(d, "metadata", a->metadata_final, err)))
		return rc;
	if (a->began)
		BSON_APPEND_BOOL(d, "began", true);
	BSON_APPEND_UTF8(d, "first_ts", a->first_ts);
	BSON_APPEND_UTF8(d, "last_ts", a->last_ts);
	BSON_APPEND_INT64(d, "event_count", a->event_count);
	if (json_array_size(a->collections))
		rc = ctc_bson_append_json(d, "collections", a->collections, err);
	return rc;
}

/* A new context: its document, _id = the context id. */
static int context_new_doc(const ctc_context_agg *a, bson_t *d, ct_error *err)
{
	BSON_APPEND_UTF8(d, "_id", a->id);
	return context_fields(a, d, err);
}

/*
 * What a context that exists already gets from this state write: a part,
 * `{_id, context_id, ...the same fields}`, merged by the readers
 * (ct_history_context()). Its _id is the context id and a hash of its
 * fields, so a write retried after a partial success inserts it once.
 */
static int context_part_doc(const ctc_context_agg *a, bson_t *d, ct_error *err)
{
	static const char hex[] = "0123456789abcdef";
	bson_t body = BSON_INITIALIZER;
	ct_sha256_ctx h;
	uint8_t sum[32];
	char id[512];
	int rc = context_fields(a, &body, err);
	if (rc)
		goto out;
	ct_sha256_init(&h);
	ct_sha256_update(&h, a->id, strlen(a->id));
	ct_sha256_update(&h, bson_get_data(&body), body.len);
	ct_sha256_final(&h, sum);
	int n = snprintf(id, sizeof(id), "%s~", a->id);
	if (n < 0 || (size_t)n + 17 > sizeof(id)) {
		rc = ct_error_set(err, CT_ELIMIT, "context id too long for a part id");
		goto out;
	}
	for (int i = 0; i < 8; i++) {
		id[n++] = hex[sum[i] >> 4];
		id[n++] = hex[sum[i] & 15];
	}
	id[n] = '\0';
	BSON_APPEND_UTF8(d, "_id", id);
	BSON_APPEND_UTF8(d, "context_id", a->id);
	if (!bson_concat(d, &body))
		rc = ct_error_set(err, CT_ELIMIT, "context part over the BSON size limit");
out:
	bson_destroy(&body);
	return rc;
}

static int duplicate_indexes(const bson_t *reply, size_t **idx, size_t *n);

/* Parts for the contexts in `which` (indexes into c): one unordered insert. */
static int insert_context_parts(ctc_store *s, const ctc_contexts *c, const size_t *which, size_t n, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply;
	bson_error_t e;
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(s->context_parts, opts);
	bool ran = false;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		bson_t d = BSON_INITIALIZER;
		if (!(rc = context_part_doc(&c->items[which[i]], &d, err)) &&
		    !mongoc_bulk_operation_insert_with_opts(bulk, &d, s->insert_opts, &e))
			rc = mongo_error(err, "context parts insert", &e);
		bson_destroy(&d);
	}
	if (rc || !n)
		goto out;
	ran = true;
	/* a duplicate is this very part, inserted by an earlier try */
	if (!mongoc_bulk_operation_execute(bulk, &reply, &e) && !ctc_store_reply_only_duplicates(&reply, NULL))
		rc = mongo_error(err, "context parts insert", &e);
out:
	if (ran)
		bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	return rc;
}

/*
 * Contexts are written with inserts only: the new ones as their document,
 * the ones that exist already (duplicate key: their events spanned two
 * state writes) as a part in `context_parts`. An upsert with $inc/$min/$max
 * would do on MongoDB, but FerretDB 1.24 scans the collection for each
 * (tests/bench/ferretdb_ops.py): with 5 events per context, 20000 events
 * spent 15 s in them at the last state write. A merge done here (read,
 * merge, replace) would lose updates: two consumers can hold events of one
 * context.
 */
static int write_contexts(ctc_store *s, const ctc_contexts *c, ct_error *err)
{
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply;
	bson_error_t e;
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(s->contexts, opts);
	size_t *dups = NULL, n_dups = 0;
	bool ran = false;
	int rc = 0;
	for (size_t i = 0; i < c->n && !rc; i++) {
		bson_t d = BSON_INITIALIZER;
		if (!(rc = context_new_doc(&c->items[i], &d, err)) &&
		    !mongoc_bulk_operation_insert_with_opts(bulk, &d, s->insert_opts, &e))
			rc = mongo_error(err, "contexts insert", &e);
		bson_destroy(&d);
	}
	if (rc)
		goto out;
	ran = true;
	if (!mongoc_bulk_operation_execute(bulk, &reply, &e)) {
		if (duplicate_indexes(&reply, &dups, &n_dups)) {
			rc = mongo_error(err, "contexts insert", &e);
			goto out;
		}
		for (size_t i = 0; i < n_dups; i++)
			if (dups[i] >= c->n) {
				rc = ct_error_set(err, CT_EMONGO, "contexts insert: bad index in reply");
				goto out;
			}
		rc = insert_context_parts(s, c, dups, n_dups, err);
	}
out:
	if (ran)
		bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	free(dups);
	return rc;
}

/*
 * `state` is rewritten as delete-by-$in plus one insert instead of one
 * replace per document: FerretDB 1.24 (SQLite) scans the collection for
 * every update statement (~5 ms each at 2000 documents), while a delete and
 * an insert are one statement each (0.1 s for 500 documents). The swap is
 * made crash-safe by a journal record holding the new states, written
 * first and removed last; whoever finds a journal record (the next batch
 * that misses a state, or start-up) applies it with "only if newer"
 * replaces, so a state is never lost nor moved back to an older version.
 */
#define JOURNAL_MAX_BYTES (12u << 20)

/* {_id: {$in: [the _id of each docs[i]]}} */
static int ids_filter(const bson_t *docs, size_t n, bson_t *filter, ct_error *err)
{
	bson_t idq, in;
	bson_iter_t it;
	BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &idq);
	BSON_APPEND_ARRAY_BEGIN(&idq, "$in", &in);
	for (size_t i = 0; i < n; i++) {
		char buf[16];
		const char *k;
		if (!bson_iter_init_find(&it, &docs[i], "_id") || !BSON_ITER_HOLDS_UTF8(&it))
			return ct_error_set(err, CT_EINTERNAL, "state without _id");
		bson_uint32_to_string((uint32_t)i, &k, buf, sizeof(buf));
		BSON_APPEND_UTF8(&in, k, bson_iter_utf8(&it, NULL));
	}
	bson_append_array_end(&idq, &in);
	bson_append_document_end(filter, &idq);
	return 0;
}

/* Replaces the state `doc` unless a version >= its own is stored. */
static int replace_if_newer(ctc_store *s, const bson_t *doc, bool upsert, ct_error *err)
{
	bson_iter_t it;
	bson_error_t e;
	bson_t sel = BSON_INITIALIZER, lt;
	int rc = 0;
	if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
		return ct_error_set(err, CT_EINTERNAL, "state without _id");
	BSON_APPEND_UTF8(&sel, "_id", bson_iter_utf8(&it, NULL));
	if (!bson_iter_init_find(&it, doc, "version"))
		return ct_error_set(err, CT_EINTERNAL, "state without version");
	BSON_APPEND_DOCUMENT_BEGIN(&sel, "version", &lt);
	BSON_APPEND_INT64(&lt, "$lt", bson_iter_as_int64(&it));
	bson_append_document_end(&sel, &lt);
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(upsert));
	/* With upsert, a newer stored version makes the insert collide (11000):
	 * that is the "not newer" outcome, not an error. */
	if (!mongoc_collection_replace_one(s->state, &sel, doc, opts, NULL, &e) && e.code != 11000)
		rc = mongo_error(err, "state replace", &e);
	bson_destroy(opts);
	bson_destroy(&sel);
	return rc;
}

/*
 * A journal record holds its states as one binary field (a BSON document
 * "0", "1", ... of states) or, as earlier builds wrote it, as an array.
 */
/*
 * A journal record younger than this may be a swap still in progress (by
 * any consumer of the group): only the states a load is missing are taken
 * from it, and it is left for its writer to remove. Older ones are swaps
 * cut short: applied whole, then removed. A swap takes seconds (10000
 * states: ~5 s on FerretDB); this is far longer.
 */
#define JOURNAL_LIVE_MS (10 * 60 * 1000)

/* true when `key` is one of keys[0..n). */
static bool among(const char *key, const char *const *keys, size_t n)
{
	for (size_t i = 0; key && i < n; i++)
		if (!strcmp(keys[i], key))
			return true;
	return false;
}

#define NOT_UUID7 INT64_MIN

/* Milliseconds since the journal record `jdoc` was made (from its UUIDv7
 * _id; negative when another host's clock is ahead of ours), or NOT_UUID7
 * when its _id is not one (treated as old). */
static int64_t journal_age_ms(const bson_t *jdoc)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, jdoc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
		return NOT_UUID7;
	const char *id = bson_iter_utf8(&it, NULL);
	uint64_t ms = 0;
	if (strlen(id) != 36 || id[14] != '7')
		return NOT_UUID7;
	for (int i = 0, n = 0; id[i] && n < 12; i++) {
		char c = id[i];
		if (c == '-')
			continue;
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return NOT_UUID7;
		ms = ms << 4 | (uint64_t)v;
		n++;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (int64_t)ms;
}

/*
 * Applies the states of journal record `jdoc` ("only if newer") and
 * removes it; with `only` (n_only keys), a record that may belong to a swap
 * still in progress gives just those states and stays.
 */
static int apply_journal(ctc_store *s, const bson_t *jdoc, const char *const *only, size_t n_only, size_t *applied,
			 ct_error *err)
{
	bson_iter_t it, arr;
	bson_error_t e;
	bson_t packed;
	bool have = false;
	int64_t age = journal_age_ms(jdoc);
	bool live = only && age != NOT_UUID7 && age < JOURNAL_LIVE_MS;
	int rc = 0;
	if (!bson_iter_init_find(&it, jdoc, "states"))
		; /* nothing to apply, the record is only removed */
	else if (BSON_ITER_HOLDS_ARRAY(&it))
		have = bson_iter_recurse(&it, &arr);
	else if (BSON_ITER_HOLDS_BINARY(&it)) {
		const uint8_t *bin;
		uint32_t len;
		bson_subtype_t sub;
		bson_iter_binary(&it, &sub, &len, &bin);
		have = bson_init_static(&packed, bin, len) && bson_validate(&packed, BSON_VALIDATE_NONE, NULL) &&
		       bson_iter_init(&arr, &packed);
		if (!have) {
			bson_iter_t id;
			return ct_error_set(err, CT_EMONGO,
					    "state journal record %s is not valid BSON: left in place, see docs/storage.md",
					    bson_iter_init_find(&id, jdoc, "_id") && BSON_ITER_HOLDS_UTF8(&id)
						    ? bson_iter_utf8(&id, NULL)
						    : "(without string _id)");
		}
	}
	if (have) {
		while (!rc && bson_iter_next(&arr)) {
			const uint8_t *data;
			uint32_t len;
			bson_t st;
			if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
				continue;
			bson_iter_document(&arr, &len, &data);
			if (!bson_init_static(&st, data, len))
				continue;
			if (live) {
				bson_iter_t id;
				if (!bson_iter_init_find(&id, &st, "_id") || !BSON_ITER_HOLDS_UTF8(&id) ||
				    !among(bson_iter_utf8(&id, NULL), only, n_only))
					continue;
			}
			rc = replace_if_newer(s, &st, true, err);
			(*applied)++;
		}
	}
	if (!rc && !live && bson_iter_init_find(&it, jdoc, "_id")) {
		bson_t sel = BSON_INITIALIZER;
		bson_append_value(&sel, "_id", 3, bson_iter_value(&it));
		if (!mongoc_collection_delete_one(s->journal, &sel, NULL, NULL, &e))
			rc = mongo_error(err, "state journal delete", &e);
		bson_destroy(&sel);
	}
	return rc;
}

/*
 * Applies the journal records found (see apply_journal()) for a load of
 * keys[0..n) that found only `found`: the keys missing are the ones a
 * record that may be live gives states for. Reads the journal only.
 */
static int journal_recover(ctc_store *s, const char *const *keys, size_t n_keys, const json_t *found, size_t *applied,
			   ct_error *err)
{
	bson_t empty = BSON_INITIALIZER;
	bson_error_t e;
	const bson_t *jdoc;
	bson_t *docs[16];
	const char **miss = NULL;
	size_t n = 0, n_miss = 0;
	int rc = 0;
	/* Read first, write after the cursor is gone: FerretDB (SQLite) makes a
	 * write wait for its busy timeout while a cursor on the database is
	 * open. Leftover records are one per crashed swap: 16 a round is many. */
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->journal, &empty, NULL, NULL);
	while (n < CT_ARRAY_LEN(docs) && mongoc_cursor_next(cur, &jdoc))
		docs[n++] = bson_copy(jdoc);
	if (mongoc_cursor_error(cur, &e))
		rc = mongo_error(err, "state journal read", &e);
	mongoc_cursor_destroy(cur);
	bson_destroy(&empty);
	if (!rc && n && n_keys && !(miss = malloc(n_keys * sizeof(*miss))))
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && n && i < n_keys; i++) {
		size_t k;
		for (k = 0; k < json_array_size(found); k++) {
			const char *id = json_string_value(json_object_get(json_array_get(found, k), "_id"));
			if (id && !strcmp(id, keys[i]))
				break;
		}
		if (k == json_array_size(found))
			miss[n_miss++] = keys[i];
	}
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = apply_journal(s, docs[i], miss, n_miss, applied, err);
		bson_destroy(docs[i]);
	}
	free(miss);
	return rc;
}

/* Indexes (in the bulk) of the inserts that collided with an existing _id. */
static int duplicate_indexes(const bson_t *reply, size_t **idx, size_t *n)
{
	bson_iter_t it, arr;
	*idx = NULL;
	*n = 0;
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
		size_t *grown = realloc(*idx, (*n + 1) * sizeof(**idx));
		if (!grown)
			goto bad;
		*idx = grown;
		(*idx)[(*n)++] = (size_t)index;
	}
	return 0;
bad:
	free(*idx);
	*idx = NULL;
	*n = 0;
	return -1;
}

/* Bytes of "<i>" as a key with its document docs[i] in a BSON document. */
static size_t element_bytes(size_t i, const bson_t *doc)
{
	char buf[16];
	const char *k;
	return 1 + bson_uint32_to_string((uint32_t)i, &k, buf, sizeof(buf)) + 1 + doc->len;
}

static uint8_t *put_le32(uint8_t *p, size_t v)
{
	uint32_t le = BSON_UINT32_TO_LE((uint32_t)v);
	memcpy(p, &le, 4);
	return p + 4;
}

/* {_id: "<uuid>", states: BinData(0, {"0": docs[0], "1": ...})}: its size. */
static size_t journal_bytes(const bson_t *docs, size_t n, size_t *packed)
{
	size_t p = 4 + 1;
	for (size_t i = 0; i < n; i++)
		p += element_bytes(i, &docs[i]);
	*packed = p;
	/* len | 0x02 "_id" int32 uuid\0 | 0x05 "states" int32 subtype packed | 0x00 */
	return 4 + (1 + 4 + 4 + 37) + (1 + 7 + 4 + 1 + p) + 1;
}

/*
 * Writes that journal record into `out` (journal_bytes() of them). Made by
 * hand rather than with libbson because libbson copies a binary value in:
 * the record is up to JOURNAL_MAX_BYTES, and the states it packs would be
 * held twice at the peak of a state write (docs/performance.md).
 */
static void journal_write(const bson_t *docs, size_t n, const char jid[37], size_t total, size_t packed,
			  uint8_t *out)
{
	uint8_t *p = put_le32(out, total);
	*p++ = BSON_TYPE_UTF8;
	memcpy(p, "_id", 4);
	p = put_le32(p + 4, 37);
	memcpy(p, jid, 37);
	p += 37;
	*p++ = BSON_TYPE_BINARY;
	memcpy(p, "states", 7);
	p = put_le32(p + 7, packed);
	*p++ = BSON_SUBTYPE_BINARY;
	p = put_le32(p, packed);
	for (size_t i = 0; i < n; i++) {
		char buf[16];
		const char *k;
		size_t kl = bson_uint32_to_string((uint32_t)i, &k, buf, sizeof(buf));
		*p++ = BSON_TYPE_DOCUMENT;
		memcpy(p, k, kl + 1);
		p += kl + 1;
		memcpy(p, bson_get_data(&docs[i]), docs[i].len);
		p += docs[i].len;
	}
	*p++ = 0; /* end of the packed document */
	*p = 0;   /* end of the record */
}

/* One journalled swap of the states docs[0..n) (see JOURNAL_MAX_BYTES). */
static int write_states_chunk(ctc_store *s, const bson_t *docs, size_t n, ct_error *err)
{
	size_t *dups = NULL, n_dups = 0, packed;
	bson_t journal, filter = BSON_INITIALIZER, reply;
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	bson_error_t e;
	mongoc_bulk_operation_t *bulk = NULL;
	uint8_t *jbuf = NULL;
	char jid[37];
	bool have_reply = false;
	int rc = 0;

	size_t total = journal_bytes(docs, n, &packed);
	if (total > JOURNAL_MAX_BYTES) {
		/* one state too big for a record of its own (write_states() gives
		 * no other kind of chunk past the bound): a guarded replace */
		rc = replace_if_newer(s, &docs[0], true, err);
		goto out;
	}
	if ((rc = ct_uuid7_new(jid, err)))
		goto out;

	/* 1. journal: the new states, before anything is removed. Packed into
	 * one binary field: FerretDB converts every nested field of a record
	 * it stores or deletes, and as 2000 nested states the record cost as
	 * much as the swap's delete and insert together. */
	if (!(jbuf = malloc(total))) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	journal_write(docs, n, jid, total, packed, jbuf);
	if (!bson_init_static(&journal, jbuf, total)) {
		rc = ct_error_set(err, CT_EINTERNAL, "state journal record malformed");
		goto out;
	}
	if (!mongoc_collection_insert_one(s->journal, &journal, s->insert_opts, NULL, &e)) {
		rc = mongo_error(err, "state journal insert", &e);
		goto out;
	}
	free(jbuf); /* before the bulk copies the states once more */
	jbuf = NULL;
	/* 2. swap: delete the old states, insert the new ones */
	if ((rc = ids_filter(docs, n, &filter, err)))
		goto out;
	if (!mongoc_collection_delete_many(s->state, &filter, NULL, NULL, &e)) {
		rc = mongo_error(err, "state delete", &e);
		goto out;
	}
	bulk = mongoc_collection_create_bulk_operation_with_opts(s->state, opts);
	for (size_t i = 0; i < n && !rc; i++)
		if (!mongoc_bulk_operation_insert_with_opts(bulk, &docs[i], s->insert_opts, &e))
			rc = mongo_error(err, "state insert", &e);
	if (rc)
		goto out;
	have_reply = true;
	if (!mongoc_bulk_operation_execute(bulk, &reply, &e)) {
		/* Someone finishing an old journal put a state back in between:
		 * ours is at least as new, replace it unless it is newer. */
		if (duplicate_indexes(&reply, &dups, &n_dups)) {
			rc = mongo_error(err, "state insert", &e);
			goto out;
		}
		for (size_t i = 0; i < n_dups && !rc; i++)
			if (dups[i] < n)
				rc = replace_if_newer(s, &docs[dups[i]], false, err);
		if (rc)
			goto out;
	}
	/* 3. done: the journal record is no longer needed */
	bson_t sel = BSON_INITIALIZER;
	BSON_APPEND_UTF8(&sel, "_id", jid);
	if (!mongoc_collection_delete_one(s->journal, &sel, NULL, NULL, &e))
		rc = mongo_error(err, "state journal delete", &e);
	bson_destroy(&sel);
out:
	if (have_reply)
		bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	free(jbuf);
	free(dups);
	bson_destroy(&filter);
	bson_destroy(opts);
	return rc;
}


/* The BSON documents end to end in `data` as an array of static bson_t (*docs, free()). */
static int split_docs(const uint8_t *data, size_t len, bson_t **docs, size_t *n, ct_error *err)
{
	size_t count = 0, dl, off;
	/* counted first: a bson_t made by bson_init_static() points into
	 * itself, so the array cannot be moved (realloc) once they are in it */
	for (off = 0; off < len; off += dl, count++)
		if (!(dl = doc_len_at(data, len, off)))
			return ct_error_set(err, CT_EINVAL, "state: malformed BSON at offset %zu", off);
	/* bson_t asks for 128-byte alignment (BSON_ALIGNED_BEGIN), more than malloc gives */
	size_t bytes = (count ? count : 1) * sizeof(**docs);
	bytes = (bytes + alignof(bson_t) - 1) / alignof(bson_t) * alignof(bson_t);
	if (!(*docs = aligned_alloc(alignof(bson_t), bytes)))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	memset(*docs, 0, bytes);
	off = 0;
	for (size_t i = 0; i < count; i++, off += dl)
		if (!bson_init_static(&(*docs)[i], data + off, (dl = doc_len_at(data, len, off)))) {
			free(*docs);
			*docs = NULL;
			return ct_error_set(err, CT_EINVAL, "state: malformed BSON at offset %zu", off);
		}
	*n = count;
	return 0;
}

int ctc_store_journal_record(const uint8_t *data, size_t len, const char jid[37], uint8_t **out, size_t *out_len,
			     ct_error *err)
{
	bson_t *docs;
	size_t n, packed;
	int rc = split_docs(data, len, &docs, &n, err);
	*out = NULL;
	if (rc)
		return rc;
	*out_len = journal_bytes(docs, n, &packed);
	if (!(*out = malloc(*out_len)))
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
	else
		journal_write(docs, n, jid, *out_len, packed, *out);
	free(docs);
	return rc;
}

/*
 * The stored states `data` (BSON documents end to end) in as few
 * journalled swaps as fit: each swap costs FerretDB a scan of the
 * collection, so a swap takes states in order until the next one would
 * take its journal record past JOURNAL_MAX_BYTES (a flush of 10000 1 KB
 * states is two swaps). Before, an oversized set fell back to one replace
 * per state, each a scan: a 10000-state flush took longer than
 * max.poll.interval.ms.
 */
static int write_states(ctc_store *s, const uint8_t *data, size_t len, ct_error *err)
{
	size_t n = 0;
	bson_t *docs = NULL;
	int rc = split_docs(data, len, &docs, &n, err);
	for (size_t i = 0; i < n && !rc;) {
		size_t j = i + 1, packed;
		size_t total = journal_bytes(&docs[i], 1, &packed);
		/* element_bytes(j - i, ...): the next state's key in this chunk */
		while (j < n && total + element_bytes(j - i, &docs[j]) <= JOURNAL_MAX_BYTES)
			total += element_bytes(j - i, &docs[j]), j++;
		rc = write_states_chunk(s, &docs[i], j - i, err);
		i = j;
	}
	free(docs);
	return rc;
}

/* ctc_write_set.states as BSON documents end to end in `out` (tests and other callers hand JSON). */
static int states_from_json(const json_t *states, ct_buf *out, ct_error *err)
{
	for (size_t i = 0; i < json_array_size(states); i++) {
		bson_t doc = BSON_INITIALIZER;
		int rc = ctc_json_to_bson(json_array_get(states, i), &doc, err);
		if (!rc && ct_buf_put(out, bson_get_data(&doc), doc.len))
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		bson_destroy(&doc);
		if (rc)
			return rc;
	}
	return 0;
}

static double ms_since(int64_t t0)
{
	return (double)(bson_get_monotonic_time() - t0) / 1000.0;
}

int ctc_store_write(ctc_store *s, ctc_write_set *ws, size_t *n_dup, ct_error *err)
{
	int64_t t0 = bson_get_monotonic_time();
	int rc;
	if (n_dup)
		*n_dup = 0;
	ws->history_ms = ws->contexts_ms = ws->state_ms = 0;
	if ((json_array_size(ws->history) || ws->history_bson_len) && (rc = write_history(s, ws, n_dup, err)))
		return rc;
	ws->history_ms = ms_since(t0);
	t0 = bson_get_monotonic_time();
	if (ws->contexts && ws->contexts->n && (rc = write_contexts(s, ws->contexts, err)))
		return rc;
	ws->contexts_ms = ms_since(t0);
	t0 = bson_get_monotonic_time();
	if (ws->states_bson_len && (rc = write_states(s, ws->states_bson, ws->states_bson_len, err)))
		return rc;
	if (json_array_size(ws->states)) {
		ct_buf buf = {0};
		if (!(rc = states_from_json(ws->states, &buf, err)))
			rc = write_states(s, (const uint8_t *)buf.data, buf.len, err);
		ct_buf_free(&buf);
		if (rc)
			return rc;
	}
	ws->state_ms = ms_since(t0);
	return 0;
}
