/*
 * test_consumer_store.c - the state swap's journal: a swap cut short (the
 * journal record written, the old states deleted, the new ones not yet
 * inserted) is finished by the next state load, and never moves a state
 * back to an older version (journal records of this build, made by libbson
 * and by the store's own writer, and of earlier ones; a corrupt one is an error, not applied; one that may belong to a
 * swap in progress gives only the missing states and stays); a state write bigger than one journal record
 * is made in several journalled swaps, every state stored, no record left;
 * a context written over several state writes reads back as one.
 */
#include "testutil.h"
#include "changetrail/event.h"
#include "changetrail/history.h"
#include "contexts.h"
#include "store.h"

#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

static const char *uri;

static bson_t *state_doc(const char *id, int64_t version)
{
	return BCON_NEW("_id", BCON_UTF8(id), "version", BCON_INT64(version), "deleted", BCON_BOOL(false),
			"doc", BCON_UTF8("{\"v\":1}"));
}

static int64_t version_of(const json_t *states, const char *id)
{
	for (size_t i = 0; i < json_array_size(states); i++) {
		const json_t *st = json_array_get(states, i);
		if (!strcmp(json_string_value(json_object_get(st, "_id")), id))
			return json_integer_value(json_object_get(st, "version"));
	}
	return -1;
}

static void drop_database(mongoc_client_t *c, const char *db)
{
	mongoc_database_t *d = mongoc_client_get_database(c, db);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
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
	assert_int_equal(ctc_store_ensure_indexes(s, &err), CT_OK);
	return s;
}

typedef enum { JOURNAL_ARRAY, JOURNAL_PACKED, JOURNAL_BY_STORE } journal_kind;

/*
 * The journal record of a swap cut short, holding a at version 3 and b at
 * version 4: packed into one binary field (made with libbson, or by the
 * store's own writer, byte by byte), or as the array earlier builds wrote
 * (a record left behind by one of them must still be finished after an
 * upgrade).
 */
static bson_t *journal_record(const bson_t *a3, const bson_t *b4, journal_kind kind)
{
	if (kind == JOURNAL_ARRAY)
		return BCON_NEW("_id", BCON_UTF8("j1"), "states", "[", BCON_DOCUMENT(a3), BCON_DOCUMENT(b4), "]");
	if (kind == JOURNAL_BY_STORE) {
		/* a UUIDv7 of time 0: an old record, applied whole */
		static const char jid[37] = "00000000-0000-7000-8000-000000000001";
		uint8_t *both = malloc(a3->len + b4->len), *rec;
		size_t len;
		bson_error_t e;
		assert_non_null(both);
		memcpy(both, bson_get_data(a3), a3->len);
		memcpy(both + a3->len, bson_get_data(b4), b4->len);
		assert_int_equal(ctc_store_journal_record(both, a3->len + b4->len, jid, &rec, &len, NULL), 0);
		free(both);
		bson_t *j = bson_new_from_data(rec, len);
		free(rec);
		assert_non_null(j);
		if (!bson_validate_with_error(j, BSON_VALIDATE_NONE, &e))
			fail_msg("journal record: %s", e.message);
		bson_iter_t it;
		const uint8_t *bin;
		uint32_t binlen;
		bson_subtype_t sub;
		assert_true(bson_iter_init_find(&it, j, "_id"));
		assert_string_equal(bson_iter_utf8(&it, NULL), jid);
		assert_true(bson_iter_init_find(&it, j, "states") && BSON_ITER_HOLDS_BINARY(&it));
		bson_iter_binary(&it, &sub, &binlen, &bin);
		assert_int_equal(sub, BSON_SUBTYPE_BINARY);
		bson_t *inner = BCON_NEW("0", BCON_DOCUMENT(a3), "1", BCON_DOCUMENT(b4));
		assert_int_equal(binlen, inner->len); /* the same bytes libbson makes */
		assert_memory_equal(bin, bson_get_data(inner), binlen);
		bson_destroy(inner);
		/* malformed input is refused */
		assert_int_equal(ctc_store_journal_record(bson_get_data(a3), a3->len - 1, jid, &rec, &len, NULL),
				 CT_EINVAL);
		return j;
	}
	bson_t *inner = BCON_NEW("0", BCON_DOCUMENT(a3), "1", BCON_DOCUMENT(b4));
	bson_t *j = BCON_NEW("_id", BCON_UTF8("j1"));
	BSON_APPEND_BINARY(j, "states", BSON_SUBTYPE_BINARY, bson_get_data(inner), inner->len);
	bson_destroy(inner);
	return j;
}

static void interrupted_swap_is_finished_by_the_next_load(journal_kind kind)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));

	mongoc_client_t *c = mongoc_client_new(uri);
	mongoc_collection_t *st = mongoc_client_get_collection(c, db, "state");
	mongoc_collection_t *jr = mongoc_client_get_collection(c, db, "state_journal");
	/* stored: b at version 5 (newer than the journal's), a missing (deleted
	 * by the interrupted swap) */
	bson_t *b5 = state_doc("orders/b", 5);
	assert_true(mongoc_collection_insert_one(st, b5, NULL, NULL, NULL));
	bson_t *a3 = state_doc("orders/a", 3), *b4 = state_doc("orders/b", 4);
	bson_t *j = journal_record(a3, b4, kind);
	assert_true(mongoc_collection_insert_one(jr, j, NULL, NULL, NULL));

	const char *keys[] = {"orders/a", "orders/b", "orders/new"};
	json_t *got = NULL;
	assert_int_equal(ctc_store_load_states(s, keys, 3, &got, &err), CT_OK);
	assert_int_equal(version_of(got, "orders/a"), 3);  /* recovered from the journal */
	assert_int_equal(version_of(got, "orders/b"), 5);  /* not moved back to 4 */
	assert_int_equal(version_of(got, "orders/new"), -1);
	json_decref(got);
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(mongoc_collection_count_documents(jr, &empty, NULL, NULL, NULL, NULL), 0);

	bson_destroy(&empty);
	bson_destroy(j);
	bson_destroy(a3);
	bson_destroy(b4);
	bson_destroy(b5);
	drop_database(c, db);
	mongoc_collection_destroy(st);
	mongoc_collection_destroy(jr);
	mongoc_client_destroy(c);
	ctc_store_close(s);
}

static void test_interrupted_swap_is_finished_by_the_next_load(void **state)
{
	interrupted_swap_is_finished_by_the_next_load(JOURNAL_PACKED);
}

/* The record the store writes itself (by hand, without libbson) is one it can finish. */
static void test_interrupted_swap_of_the_stores_own_journal_record(void **state)
{
	interrupted_swap_is_finished_by_the_next_load(JOURNAL_BY_STORE);
}

static void test_interrupted_swap_of_an_array_journal_record(void **state)
{
	interrupted_swap_is_finished_by_the_next_load(JOURNAL_ARRAY);
}

/*
 * A journal record made just now may be another consumer's swap in
 * progress: a load takes from it only the state it misses, and leaves the
 * record (and every other state in it) to its writer.
 */
static void test_live_journal_record_gives_only_missing_states(void **state)
{
	char db[64], jid[37];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	mongoc_client_t *c = mongoc_client_new(uri);
	mongoc_collection_t *st = mongoc_client_get_collection(c, db, "state");
	mongoc_collection_t *jr = mongoc_client_get_collection(c, db, "state_journal");
	bson_t *a3 = state_doc("orders/a", 3), *c7 = state_doc("orders/c", 7);
	bson_t *j = journal_record(a3, c7, JOURNAL_PACKED);
	assert_int_equal(ct_uuid7_new(jid, &err), CT_OK);
	bson_t *live = BCON_NEW("_id", BCON_UTF8(jid));
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, j, "states"));
	bson_append_iter(live, "states", -1, &it);
	assert_true(mongoc_collection_insert_one(jr, live, NULL, NULL, NULL));

	const char *keys[] = {"orders/a"};
	json_t *got = NULL;
	assert_int_equal(ctc_store_load_states(s, keys, 1, &got, &err), CT_OK);
	assert_int_equal(version_of(got, "orders/a"), 3);
	json_decref(got);
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(mongoc_collection_count_documents(jr, &empty, NULL, NULL, NULL, NULL), 1); /* kept */
	assert_int_equal(mongoc_collection_count_documents(st, &empty, NULL, NULL, NULL, NULL), 1); /* c untouched */

	bson_destroy(live);
	bson_destroy(j);
	bson_destroy(a3);
	bson_destroy(c7);
	drop_database(c, db);
	mongoc_collection_destroy(st);
	mongoc_collection_destroy(jr);
	mongoc_client_destroy(c);
	ctc_store_close(s);
}

/* A journal record whose states are not BSON is reported, never applied. */
static void test_corrupt_journal_record_is_an_error(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	mongoc_client_t *c = mongoc_client_new(uri);
	mongoc_collection_t *jr = mongoc_client_get_collection(c, db, "state_journal");
	static const uint8_t junk[] = {40, 0, 0, 0, 3, 'x', 0, 1, 2, 3};
	bson_t *j = BCON_NEW("_id", BCON_UTF8("j1"));
	BSON_APPEND_BINARY(j, "states", BSON_SUBTYPE_BINARY, junk, sizeof(junk));
	assert_true(mongoc_collection_insert_one(jr, j, NULL, NULL, NULL));

	const char *keys[] = {"orders/a"};
	json_t *got = NULL;
	assert_int_equal(ctc_store_load_states(s, keys, 1, &got, &err), CT_EMONGO);
	assert_non_null(strstr(err.message, "record j1 is not valid BSON"));
	assert_null(got);
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(mongoc_collection_count_documents(jr, &empty, NULL, NULL, NULL, NULL), 1); /* kept */

	bson_destroy(j);
	drop_database(c, db);
	mongoc_collection_destroy(jr);
	mongoc_client_destroy(c);
	ctc_store_close(s);
}

/*
 * A context whose events span three state writes (and a write retried):
 * one document, then parts; the changeset reads as one context, with the
 * retried part counted once.
 */
static void test_context_over_state_writes_reads_as_one(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));
	const char *id = "0190c6a4-0000-7000-8000-00000000c0de";
	json_t *md1 = json_pack("{s:s}", "url", "/a"), *md2 = json_pack("{s:s}", "url", "/b"),
	       *fin = json_pack("{s:s}", "comment", "done");

	ctc_contexts c;
	ctc_write_set ws = {.history = json_array(), .contexts = &c};
	/* 1: two events, then the state write inserts the context */
	ctc_contexts_init(&c);
	assert_int_equal(ctc_contexts_add_event(&c, id, NULL, "2024-05-01T10:00:01.000000Z", "ann", "orders", md1, &err), 0);
	assert_int_equal(ctc_contexts_add_event(&c, id, NULL, "2024-05-01T10:00:02.000000Z", "ann", "orders", md1, &err), 0);
	assert_int_equal(ctc_store_write(s, &ws, NULL, &err), CT_OK);
	ctc_contexts_free(&c);
	/* 2: one more event in another collection, written twice (a retry) */
	ctc_contexts_init(&c);
	assert_int_equal(ctc_contexts_add_event(&c, id, NULL, "2024-05-01T10:00:03.000000Z", "bob", "lines", md2, &err), 0);
	assert_int_equal(ctc_store_write(s, &ws, NULL, &err), CT_OK);
	assert_int_equal(ctc_store_write(s, &ws, NULL, &err), CT_OK);
	ctc_contexts_free(&c);
	/* 3: the end marker, with an earlier event that arrived late */
	ctc_contexts_init(&c);
	assert_int_equal(ctc_contexts_add_event(&c, id, NULL, "2024-05-01T10:00:00.500000Z", "bob", "items", md2, &err), 0);
	assert_int_equal(ctc_contexts_add_marker(&c, true, id, NULL, "2024-05-01T10:00:04.000000Z", "bob", fin, &err), 0);
	assert_int_equal(ctc_store_write(s, &ws, NULL, &err), CT_OK);
	ctc_contexts_free(&c);

	ct_history *h = NULL;
	assert_int_equal(ct_history_open(uri, db, &h, &err), CT_OK);
	json_t *got = NULL;
	assert_int_equal(ct_history_context(h, id, &got, &err), CT_OK);
	assert_string_equal(json_string_value(json_object_get(got, "first_ts")), "2024-05-01T10:00:00.500000Z");
	assert_string_equal(json_string_value(json_object_get(got, "last_ts")), "2024-05-01T10:00:04.000000Z");
	assert_string_equal(json_string_value(json_object_get(got, "actor")), "bob");
	assert_true(json_is_true(json_object_get(got, "complete")));
	assert_true(json_equal(json_object_get(got, "metadata"), fin));
	json_t *want = json_pack("[s,s,s]", "orders", "lines", "items");
	assert_true(json_equal(json_object_get(got, "collections"), want));
	json_decref(want);
	json_decref(got);
	ct_history_close(h);

	/* one document and two parts (the retried write made no third) */
	mongoc_client_t *mc = mongoc_client_new(uri);
	mongoc_collection_t *ctxs = mongoc_client_get_collection(mc, db, "contexts"),
			    *parts = mongoc_client_get_collection(mc, db, "context_parts");
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(mongoc_collection_count_documents(ctxs, &empty, NULL, NULL, NULL, NULL), 1);
	assert_int_equal(mongoc_collection_count_documents(parts, &empty, NULL, NULL, NULL, NULL), 2);
	drop_database(mc, db);
	mongoc_collection_destroy(ctxs);
	mongoc_collection_destroy(parts);
	mongoc_client_destroy(mc);
	json_decref(ws.history);
	json_decref(md1);
	json_decref(md2);
	json_decref(fin);
	ctc_store_close(s);
}

static void test_states_over_one_journal_record(void **state)
{
	char db[64];
	ct_error err;
	ctc_store *s = open_fresh(db, sizeof(db));

	/* 301 states of ~50 KB: ~15 MB, over the 12 MB of one journal record */
	enum { N = 301, BYTES = 50000 };
	char *big = malloc(BYTES + 1);
	assert_non_null(big);
	memset(big, 'x', BYTES);
	big[BYTES] = '\0';
	json_t *states = json_array();
	const char *keys[N];
	char names[N][32];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "orders/o%d", i);
		keys[i] = names[i];
		json_array_append_new(states, json_pack("{s:s, s:I, s:b, s:s}", "_id", names[i], "version",
							(json_int_t)(i + 1), "deleted", 0, "doc", big));
	}
	ctc_write_set ws = {.history = json_array(), .states = states};
	assert_int_equal(ctc_store_write(s, &ws, NULL, &err), CT_OK);

	json_t *got = NULL;
	assert_int_equal(ctc_store_load_states(s, keys, N, &got, &err), CT_OK);
	assert_int_equal(json_array_size(got), N);
	for (int i = 0; i < N; i++)
		assert_int_equal(version_of(got, names[i]), i + 1);
	json_decref(got);
	mongoc_client_t *c = mongoc_client_new(uri);
	mongoc_collection_t *jr = mongoc_client_get_collection(c, db, "state_journal");
	bson_t empty = BSON_INITIALIZER;
	assert_int_equal(mongoc_collection_count_documents(jr, &empty, NULL, NULL, NULL, NULL), 0);

	drop_database(c, db);
	mongoc_collection_destroy(jr);
	mongoc_client_destroy(c);
	json_decref(ws.history);
	json_decref(states);
	free(big);
	ctc_store_close(s);
}

int main(void)
{
	uri = ct_test_server_env("CT_MONGODB_URI");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interrupted_swap_is_finished_by_the_next_load),
		cmocka_unit_test(test_interrupted_swap_of_an_array_journal_record),
		cmocka_unit_test(test_interrupted_swap_of_the_stores_own_journal_record),
		cmocka_unit_test(test_corrupt_journal_record_is_an_error),
		cmocka_unit_test(test_live_journal_record_gives_only_missing_states),
		cmocka_unit_test(test_states_over_one_journal_record),
		cmocka_unit_test(test_context_over_state_writes_reads_as_one),
	};
	/* libmongoc is initialised once per process: a second mongoc_init()
	 * after mongoc_cleanup() leaves its handshake data freed. */
	ctc_store_global_init();
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ctc_store_global_cleanup();
	return rc;
}
