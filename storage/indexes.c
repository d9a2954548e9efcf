/*
 * indexes.c - the indexes of changetrail's collections (cts_mongo.h,
 * docs/storage.md "Indexes"), created when missing. With
 * [mongodb] history_ttl_days > 0 the index on history.ts is a TTL index
 * ("ts_ttl" in place of "ts": MongoDB refuses two indexes on one key that
 * differ in options).
 */
#include "ct_internal.h"
#include "cts_mongo.h"
#include "cts_names.h"

#include <string.h>

typedef struct have_ix {
	char name[64];
	int64_t expire; /* expireAfterSeconds, -1 when none */
} have_ix;

#define MAX_HAVE 64

/* The indexes `coll` has (up to MAX_HAVE). */
static int list_indexes(mongoc_database_t *db, const char *coll, have_ix *have, size_t *n, ct_error *err)
{
	bson_error_t e;
	const bson_t *d;
	mongoc_collection_t *c = mongoc_database_get_collection(db, coll);
	mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(c, NULL);
	*n = 0;
	while (mongoc_cursor_next(cur, &d)) {
		bson_iter_t it;
		if (*n == MAX_HAVE || !bson_iter_init_find(&it, d, "name") || !BSON_ITER_HOLDS_UTF8(&it))
			continue;
		have_ix *h = &have[(*n)++];
		snprintf(h->name, sizeof(h->name), "%s", bson_iter_utf8(&it, NULL));
		h->expire = bson_iter_init_find(&it, d, "expireAfterSeconds") && BSON_ITER_HOLDS_NUMBER(&it)
				    ? bson_iter_as_int64(&it)
				    : -1;
	}
	bool failed = mongoc_cursor_error(cur, &e);
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(c);
	/* a collection that does not exist yet has no indexes (code 26) */
	if (failed && e.code != 26)
		return cts_mongo_error(err, "listIndexes", &e);
	return 0;
}

static const have_ix *find(const have_ix *have, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(have[i].name, name))
			return &have[i];
	return NULL;
}

static int drop_index(mongoc_database_t *db, const char *coll, const char *name, ct_error *err)
{
	bson_error_t e;
	bson_t *cmd = BCON_NEW("dropIndexes", BCON_UTF8(coll), "index", BCON_UTF8(name));
	bool ok = mongoc_database_write_command_with_opts(db, cmd, NULL, NULL, &e);
	bson_destroy(cmd);
	return ok ? 0 : cts_mongo_error(err, "dropIndexes", &e);
}

typedef struct want_ix {
	const char *coll, *name, *keys[3];
	bool unique;
	int64_t expire; /* -1: not a TTL index */
} want_ix;

static int create_index(mongoc_database_t *db, const want_ix *w, ct_error *err)
{
	bson_t cmd = BSON_INITIALIZER, arr, idx, key;
	bson_error_t e;
	BSON_APPEND_UTF8(&cmd, "createIndexes", w->coll);
	BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
	BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
	BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
	for (size_t k = 0; k < 3 && w->keys[k]; k++)
		BSON_APPEND_INT32(&key, w->keys[k], 1);
	bson_append_document_end(&idx, &key);
	BSON_APPEND_UTF8(&idx, "name", w->name);
	if (w->unique)
		BSON_APPEND_BOOL(&idx, "unique", true);
	if (w->expire >= 0)
		BSON_APPEND_INT64(&idx, "expireAfterSeconds", w->expire);
	bson_append_document_end(&arr, &idx);
	bson_append_array_end(&cmd, &arr);
	bool ok = mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL, &e);
	bson_destroy(&cmd);
	return ok ? 0 : cts_mongo_error(err, "createIndexes", &e);
}

int cts_ensure_indexes(mongoc_database_t *db, const cts_index_opts *opts, ct_error *err)
{
	int64_t ttl = opts && opts->history_ttl_days > 0 ? (int64_t)opts->history_ttl_days * 86400 : -1;
	const want_ix wanted[] = {
		{CTS_COLL_HISTORY, CTS_IX_DOC_VERSION, {"collection", "document_id", "version"}, true, -1},
		{CTS_COLL_HISTORY, CTS_IX_CONTEXT, {"context_id"}, false, -1},
		{CTS_COLL_HISTORY, CTS_IX_ACTOR_TS, {"actor", "ts"}, false, -1},
		{CTS_COLL_HISTORY, ttl >= 0 ? CTS_IX_TS_TTL : CTS_IX_TS, {"ts"}, false, ttl},
		{CTS_COLL_HISTORY, CTS_IX_PARENT, {"parent.collection", "parent.document_id"}, false, -1},
		{CTS_COLL_CONTEXTS, CTS_IX_FIRST_TS, {"first_ts"}, false, -1},
		/* the state writer's compare-and-swap filter {_id, version}: some
		 * servers use an index only for an equality on all its keys */
		{CTS_COLL_STATE, CTS_IX_ID_VERSION, {"_id", "version"}, true, -1},
	};
	have_ix hist[MAX_HAVE], ctxs[MAX_HAVE], states[MAX_HAVE];
	size_t n_hist, n_ctxs, n_states;
	int rc;
	if ((rc = list_indexes(db, CTS_COLL_HISTORY, hist, &n_hist, err)) ||
	    (rc = list_indexes(db, CTS_COLL_CONTEXTS, ctxs, &n_ctxs, err)) ||
	    (rc = list_indexes(db, CTS_COLL_STATE, states, &n_states, err)))
		return rc;
	/* the other index on ts goes first: one key, one set of options */
	const char *other_ts = ttl >= 0 ? CTS_IX_TS : CTS_IX_TS_TTL;
	if (find(hist, n_hist, other_ts) && (rc = drop_index(db, CTS_COLL_HISTORY, other_ts, err)))
		return rc;
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		const want_ix *w = &wanted[i];
		const have_ix *h = !strcmp(w->coll, CTS_COLL_HISTORY)	 ? find(hist, n_hist, w->name)
				   : !strcmp(w->coll, CTS_COLL_CONTEXTS) ? find(ctxs, n_ctxs, w->name)
									 : find(states, n_states, w->name);
		if (h && h->expire == w->expire)
			continue;
		/* a TTL changed: dropped and made again (collMod is not on every server) */
		if (h && (rc = drop_index(db, w->coll, w->name, err)))
			return rc;
		if ((rc = create_index(db, w, err)))
			return rc;
	}
	return 0;
}
