/*
 * test_consumer_store.c - the consumer's store on a real server, stored form
 * v2, checked the way a MongoDB user sees it (raw documents and queries):
 * history.changes items are documents with an array path and
 * {"changes.path.0": "qty"} finds the records that touched qty; ts is a BSON
 * date (+ ts_us); state.doc is a document ({"doc.qty": {$lt: 5}} works);
 * a guarded state upsert never moves a state back; a redelivered batch is a
 * no-op counted as redelivery; an event id reused for another record and a
 * version taken by another record are conflicts, not redeliveries; a state
 * behind its history is rolled forward on load; a context over several
 * writes (one retried) is one document counted once; the TTL option makes
 * the ts index a TTL index and back.
 */
#include "testutil.h"
#include "changetrail/event.h"
#include "contexts.h"
#include "cts_codec.h"
#include "record.h"
#include "store.h"

#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

static const char *uri;

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void drop_database(const char *db)
{
	mongoc_client_t *c = mongoc_client_new(uri);
	mongoc_database_t *d = mongoc_client_get_database(c, db);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
	mongoc_client_destroy(c);
}

/* A store on a new database (its name in db), indexes made. */
static ctc_store *open_fresh(char *db, size_t cap)
{
	ct_error err;
	ct_test_unique_name(db, cap, "ctstore");
	for (char *p = db; *p; p++)
		if (*p == '-')
			*p = '_';
	ctc_store *s = ctc_store_open(uri, db, &err);
	assert_non_null(s);
	if (ctc_store_ensure_indexes(s, 0, &err))
		fail_msg("indexes: %s", err.message);
	return s;
}

static int64_t count(const char *db, const char *coll, const bson_t *filter)
{
	mongoc_client_t *c = mongoc_client_new(uri);
	mongoc_collection_t *col = mongoc_client_get_collection(c, db, coll);
	bson_error_t e;
	int64_t n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &e);
	if (n < 0)
		fail_msg("count: %s", e.message);
	mongoc_collection_destroy(col);
	mongoc_client_destroy(c);
	return n;
}

/* The one document of `coll` matching `filter` (a copy), or NULL. */
static bson_t *find_one(const char *db, const char *coll, const bson_t *filter)
{
	mongoc_client_t *c = mongoc_client_new(uri);
	mongoc_collection_t *col = mongoc_client_get_collection(c, db, coll);
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, NULL, NULL);
	const bson_t *d;
	bson_t *out = mongoc_cursor_next(cur, &d) ? bson_copy(d) : NULL;
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(col);
	mongoc_client_destroy(c);
	return out;
}

static ctc_event_in event(const char *doc_id, const char *id, const char *op, json_t *after, int64_t offset)
{
	ctc_event_in e = {0};
	e.event_id = id;
	e.ts = "2024-05-01T10:00:00.000000Z";
	e.source = "test";
	e.collection = "orders";
	e.document_id = doc_id;
	e.op = op;
	e.after = after;
	e.seq = -1;
	e.topic = "t";
	e.partition = 0;
	e.offset = offset;
	return e;
}

/* Applies the event to st, appends its record to `recs`. */
static void apply(ctc_doc_state *st, json_t *recs, const char *id, const char *op, const char *after, int64_t offset)
{
	json_t *a = after ? J(after) : NULL, *rec = NULL;
	ctc_event_in e = event(st->document_id, id, op, a, offset);
	ctc_record_result res;
	ct_error err;
	if (ctc_record_apply(st, &e, &rec, &res, &err))
		fail_msg("apply: %s", err.message);
	assert_int_equal(res, CTC_RECORD_PERSISTED);
	json_array_append_new(recs, rec);
	json_decref(a);
}

static json_t *stored_state(const ctc_doc_state *st)
{
	json_t *j = NULL;
	assert_int_equal(ctc_state_to_json(st, &j, NULL), 0);
	return j;
}

static int write_set(ctc_store *s, json_t *history, json_t *states, size_t *n_dup, ctc_write_set *keep, ct_error *err)
{
	ctc_write_set ws = {.history = history, .states = states};
	int rc = ctc_store_write(s, &ws, n_dup, err);
	if (keep)
		*keep = ws;
	else
		ctc_conflicts_free(&ws.conflicts);
	return rc;
}

static json_t *load_ev(ctc_store *s, const char *collection, const char *const *ids, const char *const *events,
		       size_t n)
{
	ctc_doc_ref refs[8];
	char keys[8][64];
	json_t *got = NULL;
	ct_error err;
	for (size_t i = 0; i < n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%s/%s", collection, ids[i]);
		refs[i] = (ctc_doc_ref){keys[i], collection, ids[i], events ? events[i] : NULL};
	}
	if (ctc_store_load_states(s, refs, n, &got, &err))
		fail_msg("load: %s", err.message);
	return got;
}

static json_t *load(ctc_store *s, const char *collection, const char *const *ids, size_t n)
{
	ctc_doc_ref refs[8];
	char keys[8][64];
	json_t *got = NULL;
	ct_error err;
	for (size_t i = 0; i < n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%s/%s", collection, ids[i]);
		refs[i] = (ctc_doc_ref){keys[i], collection, ids[i], NULL};
	}
	if (ctc_store_load_states(s, refs, n, &got, &err))
		fail_msg("load: %s", err.message);
	return got;
}

static const json_t *state_of(const json_t *states, const char *key)
{
	for (size_t i = 0; i < json_array_size(states); i++)
		if (!strcmp(json_string_value(json_object_get(json_array_get(states, i), "_id")), key))
			return json_array_get(states, i);
	return NULL;
}

static void test_native_form_is_queryable(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	ctc_doc_state *o1 = ctc_state_new("orders", "o1", NULL), *o2 = ctc_state_new("orders", "o2", NULL);
	json_t *recs = json_array(), *states = json_array();
	apply(o1, recs, "e1", "insert", "{\"sku\": \"sku-1\", \"qty\": 5, \"tags\": [\"a\"]}", 0);
	apply(o1, recs, "e2", "update", "{\"sku\": \"sku-1\", \"qty\": 3, \"tags\": [\"a\"]}", 1);
	apply(o1, recs, "e3", "update", "{\"sku\": \"sku-1\", \"qty\": 3, \"tags\": [\"a\", \"sale\"]}", 2);
	apply(o2, recs, "e4", "insert", "{\"sku\": \"sku-2\", \"qty\": 9, \"a.b\": {\"$x\": 1}}", 3);
	json_array_append_new(states, stored_state(o1));
	json_array_append_new(states, stored_state(o2));
	if (write_set(s, recs, states, NULL, NULL, &err))
		fail_msg("write: %s", err.message);

	/* the records that touched qty: the insert and the first update */
	bson_t *f = BCON_NEW("collection", "orders", "document_id", "o1", "changes.path.0", "qty");
	assert_int_equal(count(db, "history", f), 2);
	bson_destroy(f);
	/* dictdiffer's ["add", "tags", [[1, "sale"]]] is {op: add, path: ["tags", 1], value: "sale"} */
	f = BCON_NEW("changes", "{", "$elemMatch", "{", "op", "add", "path", "[", "tags", BCON_INT64(1), "]", "value",
		     "sale", "}", "}");
	assert_int_equal(count(db, "history", f), 1);
	bson_destroy(f);
	f = BCON_NEW("_id", "e2");
	bson_t *h = find_one(db, "history", f);
	bson_destroy(f);
	assert_non_null(h);
	bson_iter_t it, item, p;
	assert_true(bson_iter_init_find(&it, h, "ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_int_equal(bson_iter_date_time(&it), 1714557600000);
	assert_true(bson_iter_init_find(&it, h, "ts_us") && BSON_ITER_HOLDS_INT64(&it));
	assert_true(bson_iter_init_find(&it, h, "changes") && BSON_ITER_HOLDS_ARRAY(&it));
	assert_true(bson_iter_recurse(&it, &item) && bson_iter_next(&item) && BSON_ITER_HOLDS_DOCUMENT(&item));
	assert_true(bson_iter_recurse(&item, &p) && bson_iter_find(&p, "path") && BSON_ITER_HOLDS_ARRAY(&p));
	bson_destroy(h);

	/* states: the document is a document, queried by its fields */
	f = BCON_NEW("doc.qty", "{", "$lt", BCON_INT64(5), "}");
	assert_int_equal(count(db, "state", f), 1);
	bson_t *st = find_one(db, "state", f);
	bson_destroy(f);
	assert_true(bson_iter_init_find(&it, st, "_id"));
	assert_string_equal(bson_iter_utf8(&it, NULL), "orders/o1");
	assert_true(bson_iter_init_find(&it, st, "doc") && BSON_ITER_HOLDS_DOCUMENT(&it));
	assert_true(bson_iter_init_find(&it, st, "ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
	bson_destroy(st);
	/* keys with '.' and '$' are stored as they are */
	f = BCON_NEW("_id", "orders/o2");
	st = find_one(db, "state", f);
	bson_destroy(f);
	assert_true(bson_iter_init_find(&it, st, "doc") && bson_iter_recurse(&it, &item) &&
		    bson_iter_find(&item, "a.b") && BSON_ITER_HOLDS_DOCUMENT(&item));
	bson_destroy(st);

	drop_database(db);
	json_decref(recs);
	json_decref(states);
	ctc_state_free(o1);
	ctc_state_free(o2);
	ctc_store_close(s);
}

static json_t *state_json(const char *id, int64_t version, int qty)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:b, s:n, s:{s:i}, s:s, s:n, s:n, s:[]}", "_id", id, "collection",
			 "orders", "document_id", strchr(id, '/') + 1, "version", (json_int_t)version, "deleted", 0,
			 "hash", "doc", "qty", qty, "ts", "2024-05-01T10:00:00.000000Z", "last_offset", "last_event",
			 "recent_events");
}

static void test_guarded_upsert_never_moves_back(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	const char *ids[] = {"a", "b"};
	json_t *states = json_pack("[o]", state_json("orders/a", 3, 3));
	assert_int_equal(write_set(s, NULL, states, NULL, NULL, &err), 0);
	json_decref(states);
	/* an older state (a late writer): the stored one stays */
	states = json_pack("[o, o]", state_json("orders/a", 2, 2), state_json("orders/b", 1, 1));
	if (write_set(s, NULL, states, NULL, NULL, &err))
		fail_msg("write: %s", err.message);
	json_decref(states);
	json_t *got = load(s, "orders", ids, 2);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/a"), "version")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(state_of(got, "orders/a"), "doc"), "qty")), 3);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/b"), "version")), 1);
	json_decref(got);
	/* the same version again: a no-op; a newer one moves on */
	states = json_pack("[o, o]", state_json("orders/a", 3, 99), state_json("orders/b", 2, 2));
	assert_int_equal(write_set(s, NULL, states, NULL, NULL, &err), 0);
	json_decref(states);
	got = load(s, "orders", ids, 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(state_of(got, "orders/a"), "doc"), "qty")), 3);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/b"), "version")), 2);
	json_decref(got);
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(count(db, "state", &empty), 2);
	drop_database(db);
	ctc_store_close(s);
}

/*
 * The consumer hands its state writes a guess of what `state` holds (the
 * version it loaded or last wrote) to spare a read. Guesses go wrong when
 * another writer was there in between or a write failed: every wrong guess
 * must end as the guard says (the newer state stored, none moved back).
 */
static void test_wrong_guesses_never_move_a_state_back(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	const char *ids[] = {"a", "b", "c", "d"};
	json_t *states = json_pack("[o, o]", state_json("orders/a", 5, 5), state_json("orders/b", 2, 2));
	assert_int_equal(write_set(s, NULL, states, NULL, NULL, &err), 0);
	json_decref(states);
	/* a@4 guessed at 3 (stored: 5, a newer writer), b@3 guessed absent
	 * (stored: 2), c@1 guessed at 0 and d@2 at 1 (neither stored) */
	json_t *js = json_pack("[o, o, o, o]", state_json("orders/a", 4, 4), state_json("orders/b", 3, 3),
			       state_json("orders/c", 1, 1), state_json("orders/d", 2, 2));
	int64_t guess[] = {3, -1, 0, 1};
	ct_buf buf = {0};
	for (size_t i = 0; i < json_array_size(js); i++) {
		bson_t d = BSON_INITIALIZER;
		assert_int_equal(cts_state_to_bson(json_array_get(js, i), &d, &err), 0);
		assert_int_equal(ct_buf_put(&buf, bson_get_data(&d), d.len), 0);
		bson_destroy(&d);
	}
	ctc_write_set ws = {.states_bson = (const uint8_t *)buf.data, .states_bson_len = buf.len, .states_expected = guess};
	if (ctc_store_write(s, &ws, NULL, &err))
		fail_msg("write: %s", err.message);
	ctc_conflicts_free(&ws.conflicts);
	json_t *got = load(s, "orders", ids, 4);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/a"), "version")), 5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(state_of(got, "orders/a"), "doc"), "qty")), 5);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/b"), "version")), 3);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/c"), "version")), 1);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/d"), "version")), 2);
	/* what the load says `state` holds: the next write's guesses */
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/a"), "stored_version")), 5);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/d"), "stored_version")), 2);
	json_decref(got);
	/* right guesses: one write, no read, and the states move on */
	ct_buf_free(&buf);
	json_decref(js);
	js = json_pack("[o, o]", state_json("orders/a", 6, 6), state_json("orders/b", 4, 4));
	int64_t right[] = {5, 3};
	for (size_t i = 0; i < json_array_size(js); i++) {
		bson_t d = BSON_INITIALIZER;
		assert_int_equal(cts_state_to_bson(json_array_get(js, i), &d, &err), 0);
		assert_int_equal(ct_buf_put(&buf, bson_get_data(&d), d.len), 0);
		bson_destroy(&d);
	}
	ws = (ctc_write_set){.states_bson = (const uint8_t *)buf.data, .states_bson_len = buf.len, .states_expected = right};
	if (ctc_store_write(s, &ws, NULL, &err))
		fail_msg("write: %s", err.message);
	ctc_conflicts_free(&ws.conflicts);
	got = load(s, "orders", ids, 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(state_of(got, "orders/a"), "doc"), "qty")), 6);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/b"), "version")), 4);
	json_decref(got);
	ct_buf_free(&buf);
	json_decref(js);
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(count(db, "state", &empty), 4);
	drop_database(db);
	ctc_store_close(s);
}

/* Sets the record's kafka.sha256: the digest of the message value it was made of. */
static void set_sha(json_t *rec, const char *sha)
{
	assert_int_equal(json_object_set_new(json_object_get(rec, "kafka"), "sha256", json_string(sha)), 0);
}

/*
 * The same event (same id, document and message value) recorded by another
 * worker at another version (events of one document on two partitions, as
 * after partitions are added): its own conflict kind, which the consumer
 * skips as recorded — not an event id reused with other content, which
 * goes to the DLQ. A different value under the same id stays a reuse.
 */
static void test_same_event_at_another_version_is_not_a_reuse(void **state)
{
	char db[64];
	ct_error err;
	size_t dup = 99;
	ctc_store *s = open_fresh(db, sizeof(db));
	ctc_doc_state *w1 = ctc_state_new("orders", "o1", NULL), *w2 = ctc_state_new("orders", "o1", NULL);
	json_t *first = json_array(), *second = json_array();
	/* worker 1 recorded e21 as version 1 (it saw it first) */
	apply(w1, first, "e21", "insert", "{\"qty\": 21}", 21);
	set_sha(json_array_get(first, 0), "aaaa");
	assert_int_equal(write_set(s, first, NULL, &dup, NULL, &err), 0);
	/* worker 2 has e1 as version 1 and e21 as version 2 */
	apply(w2, second, "e1", "insert", "{\"qty\": 1}", 1);
	apply(w2, second, "e21", "update", "{\"qty\": 21}", 21);
	set_sha(json_array_get(second, 1), "aaaa");
	json_t *only21 = json_pack("[O]", json_array_get(second, 1));
	ctc_write_set ws;
	assert_int_equal(write_set(s, only21, NULL, &dup, &ws, &err), CT_ECONFLICT);
	assert_int_equal(dup, 0);
	assert_int_equal(ws.conflicts.n, 1);
	assert_int_equal(ws.conflicts.items[0].kind, CTS_CONFLICT_SAME_EVENT);
	assert_string_equal(cts_conflict_kind_name(ws.conflicts.items[0].kind), "same_event");
	assert_int_equal(json_integer_value(json_object_get(ws.conflicts.items[0].stored, "version")), 1);
	ctc_conflicts_free(&ws.conflicts);
	/* the same id with another message value: a reuse */
	set_sha(json_array_get(second, 1), "bbbb");
	assert_int_equal(write_set(s, only21, NULL, &dup, &ws, &err), CT_ECONFLICT);
	assert_int_equal(ws.conflicts.n, 1);
	assert_int_equal(ws.conflicts.items[0].kind, CTS_CONFLICT_ID_REUSED);
	ctc_conflicts_free(&ws.conflicts);
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(count(db, "history", &empty), 1);
	drop_database(db);
	json_decref(only21);
	json_decref(first);
	json_decref(second);
	ctc_state_free(w1);
	ctc_state_free(w2);
	ctc_store_close(s);
}

static void test_redelivered_batch_is_a_noop(void **state)
{
	char db[64];
	ct_error err;
	size_t dup = 99;
	ctc_store *s = open_fresh(db, sizeof(db));
	ctc_doc_state *o1 = ctc_state_new("orders", "o1", NULL);
	json_t *recs = json_array();
	apply(o1, recs, "e1", "insert", "{\"qty\": 5}", 0);
	apply(o1, recs, "e2", "update", "{\"qty\": 4}", 1);
	apply(o1, recs, "e3", "update", "{\"qty\": 3}", 2);
	assert_int_equal(write_set(s, recs, NULL, &dup, NULL, &err), 0);
	assert_int_equal(dup, 0);
	if (write_set(s, recs, NULL, &dup, NULL, &err))
		fail_msg("redelivery: %s", err.message);
	assert_int_equal(dup, 3);
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(count(db, "history", &empty), 3);
	drop_database(db);
	json_decref(recs);
	ctc_state_free(o1);
	ctc_store_close(s);
}

/* An event id reused for another document's record: a conflict, not a redelivery. */
static void test_reused_id_and_taken_version_are_conflicts(void **state)
{
	char db[64];
	ct_error err;
	size_t dup = 99;
	ctc_store *s = open_fresh(db, sizeof(db));
	ctc_doc_state *o1 = ctc_state_new("orders", "o1", NULL), *o2 = ctc_state_new("orders", "o2", NULL),
		      *o1b = ctc_state_new("orders", "o1", NULL);
	json_t *recs = json_array(), *other = json_array();
	apply(o1, recs, "e1", "insert", "{\"qty\": 5}", 0);
	assert_int_equal(write_set(s, recs, NULL, &dup, NULL, &err), 0);
	/* the redelivery of e1, then e1 again for o2 */
	apply(o2, other, "e1", "insert", "{\"qty\": 7}", 5);
	json_t *batch = json_pack("[O, O]", json_array_get(recs, 0), json_array_get(other, 0));
	ctc_write_set ws;
	assert_int_equal(write_set(s, batch, NULL, &dup, &ws, &err), CT_ECONFLICT);
	assert_int_equal(dup, 1);
	assert_int_equal(ws.conflicts.n, 1);
	assert_int_equal(ws.conflicts.items[0].index, 1);
	assert_int_equal(ws.conflicts.items[0].kind, CTS_CONFLICT_ID_REUSED);
	assert_string_equal(ws.conflicts.items[0].id, "e1");
	assert_string_equal(json_string_value(json_object_get(ws.conflicts.items[0].stored, "document_id")), "o1");
	ctc_conflicts_free(&ws.conflicts);
	json_decref(batch);

	/* another record (another event id) for o1's version 1 */
	json_t *taken = json_array();
	apply(o1b, taken, "e9", "insert", "{\"qty\": 1}", 9);
	assert_int_equal(write_set(s, taken, NULL, &dup, &ws, &err), CT_ECONFLICT);
	assert_int_equal(dup, 0);
	assert_int_equal(ws.conflicts.n, 1);
	assert_int_equal(ws.conflicts.items[0].kind, CTS_CONFLICT_VERSION_TAKEN);
	assert_string_equal(json_string_value(json_object_get(ws.conflicts.items[0].stored, "_id")), "e1");
	assert_int_equal(json_integer_value(json_object_get(ws.conflicts.items[0].stored, "version")), 1);
	ctc_conflicts_free(&ws.conflicts);

	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(count(db, "history", &empty), 1);
	drop_database(db);
	json_decref(recs);
	json_decref(other);
	json_decref(taken);
	ctc_state_free(o1);
	ctc_state_free(o1b);
	ctc_state_free(o2);
	ctc_store_close(s);
}

/* A state behind its history (not flushed yet at a crash) is rolled forward on load. */
static void test_state_behind_history_is_rolled_forward(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	ctc_doc_state *o1 = ctc_state_new("orders", "o1", NULL), *o2 = ctc_state_new("orders", "o2", NULL);
	json_t *recs = json_array(), *states = json_array();
	apply(o1, recs, "e1", "insert", "{\"qty\": 5, \"tags\": [\"a\"]}", 0);
	json_array_append_new(states, stored_state(o1)); /* the last state written: version 1 */
	apply(o1, recs, "e2", "update", "{\"qty\": 4, \"tags\": [\"a\", \"b\"], \"n\": {\"x\": 1.0}}", 1);
	apply(o1, recs, "e3", "update", "{\"qty\": 3, \"tags\": [\"b\"], \"n\": {\"x\": 1.0}}", 2);
	/* o2: history only (no state written), inserted then deleted */
	apply(o2, recs, "e4", "insert", "{\"qty\": 9}", 3);
	apply(o2, recs, "e5", "delete", NULL, 4);
	assert_int_equal(write_set(s, recs, states, NULL, NULL, &err), 0);

	const char *ids[] = {"o1", "o2", "o3"};
	json_t *got = load(s, "orders", ids, 3);
	assert_int_equal(json_array_size(got), 2); /* o3 is new */
	ctc_doc_state *l1 = NULL, *l2 = NULL;
	assert_int_equal(ctc_state_from_json(state_of(got, "orders/o1"), &l1, NULL), 0);
	assert_int_equal(ctc_state_from_json(state_of(got, "orders/o2"), &l2, NULL), 0);
	assert_int_equal(l1->version, 3);
	assert_string_equal(l1->hash, o1->hash);
	assert_true(json_equal(l1->doc, o1->doc));
	assert_false(l1->deleted);
	assert_true(ctc_state_seen_id(l1, "e3"));
	assert_true(ctc_state_seen_offset(l1, "t", 0, 2));
	assert_int_equal(l2->version, 2);
	assert_true(l2->deleted);
	assert_string_equal(l2->hash, o2->hash);
	assert_true(json_equal(l2->doc, o2->doc)); /* the document as it was deleted */
	/* the next event derives from the rolled state: the same record as from the live one */
	/* (n was added after qty and tags by a patch: only in canonical key order does the diff list
	 * n.x before qty, as it does on the live state) */
	json_t *a = J("{\"qty\": 2, \"tags\": [\"b\"], \"n\": {\"x\": 2.0}}"), *r1 = NULL, *r2 = NULL;
	ctc_event_in e = event("o1", "e6", "update", a, 5);
	ctc_record_result res;
	assert_int_equal(ctc_record_apply(o1, &e, &r1, &res, NULL), 0);
	assert_int_equal(ctc_record_apply(l1, &e, &r2, &res, NULL), 0);
	assert_true(json_equal(json_object_get(r1, "changes"), json_object_get(r2, "changes")));
	assert_true(json_equal(r1, r2));
	json_decref(r1);
	json_decref(r2);
	json_decref(a);
	json_decref(got);
	/* asked for by a redelivered event (found by _id): rolled forward too */
	const char *evs[] = {"e2", "e4"};
	got = load_ev(s, "orders", ids, evs, 2);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/o1"), "version")), 3);
	assert_int_equal(json_integer_value(json_object_get(state_of(got, "orders/o2"), "version")), 2);
	assert_true(json_is_true(json_object_get(state_of(got, "orders/o1"), "rolled_forward")));
	json_decref(got);
	ctc_state_free(l1);
	ctc_state_free(l2);
	drop_database(db);
	json_decref(recs);
	json_decref(states);
	ctc_state_free(o1);
	ctc_state_free(o2);
	ctc_store_close(s);
}

/* A context whose events span three writes, one retried: one document, counted once. */
static void test_context_over_writes_is_one_document(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	const char *id = "0190c6a4-0000-7000-8000-00000000c0de";
	json_t *md1 = json_pack("{s:s}", "url", "/a"), *md2 = json_pack("{s:s}", "url", "/b"),
	       *fin = json_pack("{s:s, s:{s:i}}", "comment", "done", "$meta", "a.b", 1);
	ctc_contexts c;
	ctc_write_set ws = {.contexts = &c};
	ctc_contexts_init(&c);
	assert_int_equal(ctc_contexts_add_event(&c, id, NULL, "2024-05-01T10:00:01.000000Z", "ann", "orders", md1, &err), 0);
	assert_int_equal(ctc_contexts_add_event(&c, id, NULL, "2024-05-01T10:00:02.000000Z", "ann", "orders", md1, &err), 0);
	assert_int_equal(ctc_store_write(s, &ws, NULL, &err), CT_OK);
	ctc_contexts_free(&c);
	ctc_contexts_init(&c);
	assert_int_equal(ctc_contexts_add_event(&c, id, NULL, "2024-05-01T10:00:03.000000Z", "bob", "lines", md2, &err), 0);
	assert_int_equal(ctc_store_write(s, &ws, NULL, &err), CT_OK);
	assert_int_equal(ctc_store_write(s, &ws, NULL, &err), CT_OK); /* a retry */
	ctc_contexts_free(&c);
	ctc_contexts_init(&c);
	assert_int_equal(ctc_contexts_add_event(&c, id, NULL, "2024-05-01T10:00:00.500000Z", "bob", "items", md2, &err), 0);
	assert_int_equal(ctc_contexts_add_marker(&c, true, id, NULL, "2024-05-01T10:00:04.000000Z", "bob", fin, &err), 0);
	if (ctc_store_write(s, &ws, NULL, &err))
		fail_msg("write: %s", err.message);
	ctc_contexts_free(&c);

	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(count(db, "contexts", &empty), 1);
	bson_t *doc = find_one(db, "contexts", &empty);
	json_t *got = NULL;
	assert_int_equal(cts_context_from_bson(doc, &got, NULL), 0);
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, doc, "first_ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(bson_iter_init_find(&it, doc, "metadata") && BSON_ITER_HOLDS_DOCUMENT(&it));
	assert_string_equal(json_string_value(json_object_get(got, "first_ts")), "2024-05-01T10:00:00.500000Z");
	assert_string_equal(json_string_value(json_object_get(got, "last_ts")), "2024-05-01T10:00:04.000000Z");
	assert_int_equal(json_integer_value(json_object_get(got, "event_count")), 4);
	assert_true(json_is_true(json_object_get(got, "complete")));
	assert_true(json_equal(json_object_get(got, "metadata"), fin));
	assert_int_equal(json_array_size(json_object_get(got, "collections")), 3);
	json_decref(got);
	bson_destroy(doc);
	drop_database(db);
	json_decref(md1);
	json_decref(md2);
	json_decref(fin);
	ctc_store_close(s);
}

/* expireAfterSeconds of history's index named `name`, -1 when it has none, -2 when no such index. */
static int64_t index_ttl(const char *db, const char *name)
{
	mongoc_client_t *c = mongoc_client_new(uri);
	mongoc_collection_t *col = mongoc_client_get_collection(c, db, "history");
	mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(col, NULL);
	const bson_t *d;
	int64_t out = -2;
	while (mongoc_cursor_next(cur, &d)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, d, "name") && !strcmp(bson_iter_utf8(&it, NULL), name))
			out = bson_iter_init_find(&it, d, "expireAfterSeconds") ? bson_iter_as_int64(&it) : -1;
	}
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(col);
	mongoc_client_destroy(c);
	return out;
}

static void test_ttl_option(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	assert_int_equal(index_ttl(db, "ts"), -1);
	assert_int_equal(index_ttl(db, "doc_version"), -1);
	if (ctc_store_ensure_indexes(s, 30, &err))
		fail_msg("ttl: %s", err.message);
	assert_int_equal(index_ttl(db, "ts_ttl"), 30 * 86400);
	assert_int_equal(index_ttl(db, "ts"), -2);
	assert_int_equal(ctc_store_ensure_indexes(s, 30, &err), 0); /* idempotent */
	assert_int_equal(ctc_store_ensure_indexes(s, 7, &err), 0);
	assert_int_equal(index_ttl(db, "ts_ttl"), 7 * 86400);
	assert_int_equal(ctc_store_ensure_indexes(s, 0, &err), 0);
	assert_int_equal(index_ttl(db, "ts_ttl"), -2);
	assert_int_equal(index_ttl(db, "ts"), -1);
	drop_database(db);
	ctc_store_close(s);
}

int main(void)
{
	uri = ct_test_server_env("CT_MONGODB_URI");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_native_form_is_queryable),
		cmocka_unit_test(test_guarded_upsert_never_moves_back),
		cmocka_unit_test(test_wrong_guesses_never_move_a_state_back),
		cmocka_unit_test(test_redelivered_batch_is_a_noop),
		cmocka_unit_test(test_reused_id_and_taken_version_are_conflicts),
		cmocka_unit_test(test_same_event_at_another_version_is_not_a_reuse),
		cmocka_unit_test(test_state_behind_history_is_rolled_forward),
		cmocka_unit_test(test_context_over_writes_is_one_document),
		cmocka_unit_test(test_ttl_option),
	};
	/* libmongoc is initialised once per process: a second mongoc_init()
	 * after mongoc_cleanup() leaves its handshake data freed. */
	ctc_store_global_init();
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ctc_store_global_cleanup();
	return rc;
}
