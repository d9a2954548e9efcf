/*
 * handle.c - the ct_history handle and the bounded reads every query is
 * built on: stored documents (v2 native or v1 text form) become their JSON
 * form through the storage codec (storage/cts_codec.h); sorting happens
 * here, in C, because one document's records order by version and
 * different documents' by time.
 */
#include "history_internal.h"

#include "cts_codec.h"
#include "cts_mongo.h"
#include "cts_names.h"

#include "changetrail/canonical.h"
#include "changetrail/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The storage module's log handler (it drops the endSessions noise), printing as libmongoc does. */
static void log_sink(bool error, const char *domain, const char *message)
{
	mongoc_log_default_handler(error ? MONGOC_LOG_LEVEL_ERROR : MONGOC_LOG_LEVEL_WARNING, domain, message, NULL);
}

void ct_history_global_init(void)
{
	cts_global_init(log_sink);
}

void ct_history_global_cleanup(void)
{
	cts_global_cleanup();
}

/* The one error mapper: credentials in a message are redacted. */
int cth_mongo_error(ct_error *err, const char *what, const bson_error_t *e)
{
	return cts_mongo_error(err, what, e);
}

int ct_history_open(const char *uri_str, const char *database, ct_history **out, ct_error *err)
{
	ct_history *h = NULL;
	int rc = 0;

	if (!uri_str || !database || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_open: NULL argument");
	*out = NULL;
	if (!*database || strlen(database) > 63 || strpbrk(database, "/\\. \"$"))
		return ct_error_set(err, CT_EINVAL, "database name '%s' is not valid", database);
	if (!(h = calloc(1, sizeof(*h))) || !(h->dbname = strdup(database))) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	if (!(h->client = cts_client_new(uri_str, "changetrail", 0, err))) {
		rc = err ? err->code : CT_ECONFIG;
		goto out;
	}
	h->db = mongoc_client_get_database(h->client, database);
	h->history = mongoc_database_get_collection(h->db, CTS_COLL_HISTORY);
	h->state = mongoc_database_get_collection(h->db, CTS_COLL_STATE);
	h->contexts = mongoc_database_get_collection(h->db, CTS_COLL_CONTEXTS);
	/* v1 databases only: contexts written in parts (read until migrated) */
	h->context_parts = mongoc_database_get_collection(h->db, CTS_COLL_V1_CONTEXT_PARTS);
out:
	if (rc)
		ct_history_close(h);
	else
		*out = h;
	return rc;
}

void ct_history_close(ct_history *h)
{
	if (!h)
		return;
	mongoc_collection_destroy(h->history);
	mongoc_collection_destroy(h->state);
	mongoc_collection_destroy(h->contexts);
	mongoc_collection_destroy(h->context_parts);
	mongoc_database_destroy(h->db);
	mongoc_client_destroy(h->client);
	free(h->dbname);
	free(h);
}

int ct_history_ping(ct_history *h, ct_error *err)
{
	bson_error_t e;
	bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
	bool ok = mongoc_client_command_simple(h->client, "admin", cmd, NULL, NULL, &e);
	bson_destroy(cmd);
	return ok ? 0 : cth_mongo_error(err, "ping", &e);
}

int cth_find(ct_history *h, mongoc_collection_t *coll, const bson_t *filter, bool as_history,
	     json_t **out, ct_error *err)
{
	bson_error_t e;
	const bson_t *doc;
	json_t *arr = json_array();
	mongoc_cursor_t *cur = NULL;
	int rc = 0;

	*out = NULL;
	if (!arr)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	/* replies of a bounded size: a server that would otherwise answer a
	 * whole collection at once (mongo-java-server does) overruns the wire's
	 * 48 MB message limit; MongoDB's own default batches are smaller */
	bson_t *opts = BCON_NEW("batchSize", BCON_INT32(CTH_FIND_BATCH));
	cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	bson_destroy(opts);
	while (mongoc_cursor_next(cur, &doc)) {
		json_t *j = NULL;
		if (json_array_size(arr) >= CT_HISTORY_MAX_RECORDS) {
			rc = ct_error_set(err, CT_ELIMIT, "more than %d documents match", CT_HISTORY_MAX_RECORDS);
			goto out;
		}
		bson_iter_t ctx_it;
		/* the JSON form through the storage codec (v2 native or v1 text alike) */
		rc = as_history ? cts_history_from_bson(doc, &j, err)
		     : bson_iter_init_find(&ctx_it, doc, "first_ts") ? cts_context_from_bson(doc, &j, err)
								     : cts_state_from_bson(doc, &j, err);
		if (rc) {
			json_decref(j);
			goto out;
		}
		if (json_array_append_new(arr, j)) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (mongoc_cursor_error(cur, &e))
		rc = cth_mongo_error(err, "find", &e);
out:
	mongoc_cursor_destroy(cur);
	if (rc)
		json_decref(arr);
	else
		*out = arr;
	return rc;
}

int cth_doc_records(ct_history *h, const char *collection, const char *document_id, json_t **out,
		    ct_error *err)
{
	bson_t *f = BCON_NEW("collection", BCON_UTF8(collection), "document_id", BCON_UTF8(document_id));
	int rc = cth_find(h, h->history, f, true, out, err);
	bson_destroy(f);
	if (!rc && (rc = cth_sort(*out, true, err))) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

const char *cth_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

int64_t cth_int(const json_t *obj, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(obj, key));
}

bool cth_op_keeps_doc(const char *op)
{
	return !strcmp(op, "event") || !strcmp(op, "relation_add") || !strcmp(op, "relation_remove");
}

int cth_hash_ok(const json_t *rec, ct_error *err)
{
	char hex[65];
	int rc = ct_record_hash(rec, hex, err);
	if (rc)
		return rc;
	return !strcmp(hex, cth_str(rec, "hash"));
}

static int cmp_version(const void *a, const void *b)
{
	int64_t va = cth_int(*(json_t *const *)a, "version"), vb = cth_int(*(json_t *const *)b, "version");
	return va < vb ? -1 : va > vb;
}

/* newest first: ts descending, then version descending, then _id */
static int cmp_newest(const void *a, const void *b)
{
	const json_t *ra = *(json_t *const *)a, *rb = *(json_t *const *)b;
	int c = strcmp(cth_str(rb, "ts"), cth_str(ra, "ts"));
	if (c)
		return c;
	if ((c = -cmp_version(a, b)))
		return c;
	return strcmp(cth_str(ra, "_id"), cth_str(rb, "_id"));
}

/* Group key of a record: its document. */
static int cmp_doc(const json_t *a, const json_t *b)
{
	int c = strcmp(cth_str(a, "collection"), cth_str(b, "collection"));
	return c ? c : strcmp(cth_str(a, "document_id"), cth_str(b, "document_id"));
}

/* A slot of the time-ordered list: the record there and its position. */
typedef struct slot {
	const json_t *rec;
	size_t pos;
} slot;

/* Slots grouped by document, each group in list order. */
static int cmp_slot(const void *a, const void *b)
{
	const slot *x = a, *y = b;
	int c = cmp_doc(x->rec, y->rec);
	return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Records grouped by document, each group newest version first. */
static int cmp_doc_version_desc(const void *a, const void *b)
{
	int c = cmp_doc(*(json_t *const *)a, *(json_t *const *)b);
	return c ? c : -cmp_version(a, b);
}

int cth_sort(json_t *arr, bool by_version, ct_error *err)
{
	size_t n = json_array_size(arr);
	json_t **v = NULL, **byv = NULL;
	slot *slots = NULL;
	if (n < 2)
		return 0;
	if (!(v = malloc(n * sizeof(*v))) || (!by_version && (!(byv = malloc(n * sizeof(*byv))) ||
							     !(slots = malloc(n * sizeof(*slots)))))) {
		free(v);
		free(byv);
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), by_version ? cmp_version : cmp_newest);
	if (!by_version) {
		/*
		 * Producers' clocks disagree: a document's v2 can carry an earlier ts
		 * than its v1. Documents interleave by time, but the records of one
		 * document are always listed in version order: the slots a document
		 * holds in the time order are refilled with its records, newest
		 * version first.
		 */
		for (size_t i = 0; i < n; i++) {
			slots[i] = (slot){v[i], i};
			byv[i] = v[i];
		}
		qsort(slots, n, sizeof(*slots), cmp_slot);
		qsort(byv, n, sizeof(*byv), cmp_doc_version_desc);
		for (size_t k = 0; k < n; k++)
			v[slots[k].pos] = byv[k];
	}
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]); /* cannot fail: the array had room */
	free(v);
	free(byv);
	free(slots);
	return 0;
}

int cth_ts_text(int64_t us, char out[32], ct_error *err)
{
	return ct_time_format_rfc3339_us(us, out) ? ct_error_set(err, CT_EINVAL, "time out of range") : 0;
}

int ct_history_stored_state(ct_history *h, const char *collection, const char *document_id,
			    json_t **out, ct_error *err)
{
	char *key = NULL;
	json_t *arr = NULL;
	int rc;
	*out = NULL;
	if (!h || !collection || !document_id)
		return ct_error_set(err, CT_EINVAL, "ct_history_stored_state: NULL argument");
	size_t lc = strlen(collection), ld = strlen(document_id);
	if (!(key = malloc(lc + ld + 2)))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	snprintf(key, lc + ld + 2, "%s/%s", collection, document_id); /* the state's _id */
	bson_t *f = BCON_NEW("_id", BCON_UTF8(key));
	rc = cth_find(h, h->state, f, false, &arr, err);
	bson_destroy(f);
	if (!rc && json_array_size(arr) == 0)
		rc = ct_error_set(err, CT_ENOTFOUND, "no state for %s", key);
	if (!rc)
		*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	free(key);
	return rc;
}

int ct_history_collection_states(ct_history *h, const char *collection, bool live_only, json_t **out,
				 ct_error *err)
{
	bson_t f = BSON_INITIALIZER;
	int rc;
	if (!h || !out)
		return ct_error_set(err, CT_EINVAL, "ct_history_collection_states: NULL argument");
	if (collection)
		BSON_APPEND_UTF8(&f, "collection", collection);
	if (live_only)
		BSON_APPEND_BOOL(&f, "deleted", false);
	rc = cth_find(h, h->state, &f, false, out, err);
	bson_destroy(&f);
	return rc;
}
