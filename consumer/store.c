/*
 * store.c - the consumer's store: open/close, indexes, ping, and the batch
 * write in its order (history -> contexts -> states, store.h). No
 * transactions: each part is idempotent, and the order makes a crash at any
 * point leave what a retry or a redelivery completes (docs/storage.md,
 * "Write order").
 */
#include "store_internal.h"

#include "ct_internal.h"

#include "ct_buf.h"
#include "cts_mongo.h"
#include "cts_names.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static void log_sink(bool error, const char *domain, const char *message)
{
	char q[512];
	ctc_log(error ? CTC_ERROR : CTC_WARN, "mongoc", "domain=%s detail=%s", domain,
		ctc_log_q(message, q, sizeof(q)));
}

void ctc_store_global_init(void)
{
	cts_global_init(log_sink);
}

void ctc_store_global_cleanup(void)
{
	cts_global_cleanup();
}

mongoc_client_t *ctc_mongo_client_new(const char *uri, const char *appname, int socket_timeout_ms, ct_error *err)
{
	return cts_client_new(uri, appname, socket_timeout_ms, err);
}

ctc_store *ctc_store_open(const char *uri_str, const char *database, ct_error *err)
{
	ctc_store *s = calloc(1, sizeof(*s));
	if (!s) {
		ct_error_set(err, CT_ENOMEM, "out of memory");
		return NULL;
	}
	/* A down server must fail a batch fast so the consumer pauses and retries. */
	if (!(s->client = cts_client_new(uri_str, "changetrail-consumer", 30000, err)))
		goto fail;
	s->db = mongoc_client_get_database(s->client, database);
	s->history = mongoc_database_get_collection(s->db, CTS_COLL_HISTORY);
	s->state = mongoc_database_get_collection(s->db, CTS_COLL_STATE);
	s->contexts = mongoc_database_get_collection(s->db, CTS_COLL_CONTEXTS);
	/* Every document is built by the codec from jansson values (valid
	 * UTF-8). User keys with '$' or '.' are stored as they are (MongoDB 5+
	 * takes them); libmongoc's client-side check would refuse them, and it
	 * took ~2% of the consumer's CPU. */
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
	mongoc_database_destroy(s->db);
	mongoc_client_destroy(s->client);
	if (s->insert_opts)
		bson_destroy(s->insert_opts);
	free(s);
}

int ctc_store_ping(ctc_store *s, ct_error *err)
{
	bson_error_t e;
	bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
	bool ok = mongoc_client_command_simple(s->client, "admin", cmd, NULL, NULL, &e);
	bson_destroy(cmd);
	return ok ? 0 : cts_mongo_error(err, "ping", &e);
}

int ctc_store_ensure_indexes(ctc_store *s, int history_ttl_days, ct_error *err)
{
	cts_index_opts o = {.history_ttl_days = history_ttl_days};
	return cts_ensure_indexes(s->db, &o, err);
}

int ctc_store_next_doc(const uint8_t *data, size_t len, size_t *off, bson_t *doc)
{
	int32_t dl;
	if (*off >= len)
		return 0;
	if (len - *off < 5)
		return -1;
	memcpy(&dl, data + *off, 4);
	dl = (int32_t)BSON_UINT32_FROM_LE((uint32_t)dl);
	if (dl < 5 || (size_t)dl > len - *off || !bson_init_static(doc, data + *off, (size_t)dl))
		return -1;
	*off += (size_t)dl;
	return 1;
}

void ctc_conflicts_free(ctc_conflicts *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->items[i].id);
		json_decref(c->items[i].stored);
	}
	free(c->items);
	c->items = NULL;
	c->n = 0;
}

static double ms_since(int64_t t0)
{
	return (double)(bson_get_monotonic_time() - t0) / 1000.0;
}

/* ctc_write_set.states as BSON documents end to end in `out` (tests and tools hand JSON). */
static int states_from_json(const json_t *states, ct_buf *out, ct_error *err)
{
	for (size_t i = 0; i < json_array_size(states); i++) {
		bson_t doc = BSON_INITIALIZER;
		int rc = cts_state_to_bson(json_array_get(states, i), &doc, err);
		if (!rc && ct_buf_put(out, bson_get_data(&doc), doc.len))
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		bson_destroy(&doc);
		if (rc)
			return rc;
	}
	return 0;
}

int ctc_store_write(ctc_store *s, ctc_write_set *ws, size_t *n_dup, ct_error *err)
{
	int64_t t0 = bson_get_monotonic_time();
	int rc;
	if (n_dup)
		*n_dup = 0;
	ctc_conflicts_free(&ws->conflicts);
	ws->history_ms = ws->contexts_ms = ws->state_ms = 0;
	if ((json_array_size(ws->history) || ws->history_bson_len) &&
	    (rc = ctc_store_write_history(s, ws, n_dup, err)))
		return rc;
	ws->history_ms = ms_since(t0);
	t0 = bson_get_monotonic_time();
	if (ws->contexts && ws->contexts->n && !ws->contexts->written &&
	    (rc = ctc_store_write_contexts(s, ws->contexts, err)))
		return rc;
	ws->contexts_ms = ms_since(t0);
	t0 = bson_get_monotonic_time();
	if (ws->states_bson_len && (rc = ctc_store_write_states(s, ws->states_bson, ws->states_bson_len, ws->states_expected, err)))
		return rc;
	if (json_array_size(ws->states)) {
		ct_buf buf = {0};
		if (!(rc = states_from_json(ws->states, &buf, err)))
			rc = ctc_store_write_states(s, (const uint8_t *)buf.data, buf.len, NULL, err);
		ct_buf_free(&buf);
		if (rc)
			return rc;
	}
	ws->state_ms = ms_since(t0);
	return 0;
}
