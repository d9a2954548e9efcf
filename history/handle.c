/*
 * handle.c - the ct_history handle and the bounded reads every query is
 * built on. FerretDB on SQLite indexes only _id, so filters stay simple and
 * sorting happens here, in C.
 */
#include "history_internal.h"

#include "bson_json.h"
#include "state.h"
#include "store.h"

#include "changetrail/canonical.h"
#include "changetrail/event.h"
#include "ct_textsafe.h"

#include <stdlib.h>
#include <string.h>

static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
	char safe[1024];
	/* FerretDB has no endSessions: libmongoc warns on every client destroy. */
	if (strstr(message, "endSessions") || level > MONGOC_LOG_LEVEL_WARNING)
		return;
	/* a message may quote a URI or a host string cut from one */
	mongoc_log_default_handler(level, domain, ct_redact_text(message, safe, sizeof(safe)), data);
}

void ct_history_global_init(void)
{
	mongoc_init();
	mongoc_log_set_handler(log_handler, NULL);
}

void ct_history_global_cleanup(void)
{
	mongoc_cleanup();
}

int cth_mongo_error(ct_error *err, const char *what, const bson_error_t *e)
{
	char safe[sizeof(e->message)];
	return ct_error_set(err, CT_EMONGO, "%s: %s (code %u)", what, ct_redact_text(e->message, safe, sizeof(safe)),
			    e->code);
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
	if (!(h->client = ctc_mongo_client_new(uri_str, "changetrail", 0, err))) {
		rc = err ? err->code : CT_ECONFIG;
		goto out;
	}
	h->db = mongoc_client_get_database(h->client, database);
	h->history = mongoc_database_get_collection(h->db, "history");
	h->state = mongoc_database_get_collection(h->db, "state");
	h->contexts = mongoc_database_get_collection(h->db, "contexts");
	h->context_parts = mongoc_database_get_collection(h->db, "context_parts");
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

/* Replaces obj[key], a canonical JSON text, by its parsed value. */
static int parse_text_field(json_t *obj, const char *key, ct_error *err)
{
	json_t *v = json_object_get(obj, key);
	json_error_t jerr;
	if (!json_is_string(v))
		return 0;
	json_t *p = json_loadb(json_string_value(v), json_string_length(v),
			       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!p)
		return ct_error_set(err, CT_ECONFLICT, "stored field '%s' of '%s' is not JSON: %s", key,
				    cth_str(obj, "_id"), jerr.text);
	return json_object_set_new(obj, key, p) ? ct_error_set(err, CT_ENOMEM, "out of memory") : 0;
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
	cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		json_t *j = NULL;
		if (json_array_size(arr) >= CT_HISTORY_MAX_RECORDS) {
			rc = ct_error_set(err, CT_ELIMIT, "more than %d documents match", CT_HISTORY_MAX_RECORDS);
			goto out;
		}
		rc = as_history ? ctc_history_from_bson(doc, &j, err) : ctc_bson_to_json(doc, &j, err);
		if (!rc && as_history)
			rc = parse_text_field(j, "doc", err);
		if (!rc && !as_history && !(rc = parse_text_field(j, "doc", err)) &&
		    !(rc = parse_text_field(j, "metadata", err)))
			rc = parse_text_field(j, "metadata_seen", err);
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

int cth_sort(json_t *arr, bool by_version, ct_error *err)
{
	size_t n = json_array_size(arr);
	json_t **v;
	if (n < 2)
		return 0;
	if (!(v = malloc(n * sizeof(*v))))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), by_version ? cmp_version : cmp_newest);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]); /* cannot fail: the array had room */
	free(v);
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
	if (!(key = ctc_state_key(collection, document_id)))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
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
