/*
 * test_consumer_record.c - history records from events: versions, diffs,
 * the hash chain (deterministic, Kafka provenance not hashed), empty updates
 * dropped, delete then re-create, snapshot initialisation, manual events,
 * relations, parent references, redelivery, and the state's stored form
 * (as JSON, and as the BSON the writer sends: the same bytes).
 * Also the document cache (LRU bound, per-partition drop).
 */
#include "testutil.h"

#include "bson_json.h"
#include "cache.h"
#include "changetrail/canonical.h"
#include "record.h"

#include <stdlib.h>
#include <string.h>

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static ctc_event_in ev(const char *id, const char *op, json_t *after, int64_t offset)
{
	ctc_event_in e = {0};
	e.event_id = id;
	e.ts = "2024-05-01T10:00:00.000000Z";
	e.source = "test";
	e.collection = "orders";
	e.document_id = "o1";
	e.op = op;
	e.after = after;
	e.seq = -1;
	e.topic = "t";
	e.partition = 0;
	e.offset = offset;
	/* the worker always has the message's content identity */
	e.sha256 = "5555555555555555555555555555555555555555555555555555555555555555";
	return e;
}

/* What the writer sends for `st` is what its JSON stored form converts to, byte for byte. */
static void assert_bson_is_stored_form(const ctc_doc_state *st)
{
	json_t *stored;
	bson_t want = BSON_INITIALIZER;
	ct_buf got = {0};
	assert_int_equal(ctc_state_to_json(st, &stored, NULL), 0);
	assert_int_equal(cts_state_to_bson(stored, &want, NULL), 0);
	assert_int_equal(ct_buf_put(&got, "x", 1), 0); /* appended after what is there */
	assert_int_equal(ctc_state_append_bson(st, &got, NULL), 0);
	assert_int_equal(got.len, 1 + want.len);
	assert_memory_equal(got.data + 1, bson_get_data(&want), want.len);
	bson_destroy(&want);
	ct_buf_free(&got);
	json_decref(stored);
}

/*
 * Applies and returns the record (or NULL), checking the result kind; and
 * that the hash made from the fields (what the consumer does without
 * writes, and what goes into the record) is ct_record_hash() of the
 * record, and the same when no record is asked for.
 */
static json_t *apply(ctc_doc_state *st, const ctc_event_in *e, ctc_record_result want)
{
	json_t *rec, *stored;
	ctc_record_result res, twin_res;
	ctc_doc_state *twin;
	ct_error err;
	assert_bson_is_stored_form(st);
	assert_int_equal(ctc_state_to_json(st, &stored, &err), CT_OK);
	assert_int_equal(ctc_state_from_json(stored, &twin, &err), CT_OK);
	json_decref(stored);
	if (ctc_record_apply(st, e, &rec, &res, &err))
		fail_msg("apply: %s", err.message);
	assert_int_equal(res, want);
	if (want != CTC_RECORD_PERSISTED)
		assert_null(rec);
	if (ctc_record_apply(twin, e, NULL, &twin_res, &err))
		fail_msg("apply without a record: %s", err.message);
	assert_int_equal(twin_res, res);
	assert_string_equal(twin->hash, st->hash);
	assert_int_equal(twin->version, st->version);
	ctc_state_free(twin);
	if (rec) {
		char hex[65];
		assert_int_equal(ct_record_hash(rec, hex, &err), CT_OK);
		assert_string_equal(json_string_value(json_object_get(rec, "hash")), hex);
		assert_string_equal(st->hash, hex);
	}
	/* the size the record measured on the way is the size of the tree */
	size_t kept = ctc_state_approx_bytes(st);
	st->sized_doc = NULL;
	assert_int_equal(ctc_state_approx_bytes(st), kept);
	return rec;
}

static void assert_changes(const json_t *rec, const char *want)
{
	json_t *w = J(want);
	if (!json_equal(json_object_get(rec, "changes"), w)) {
		char *got = json_dumps(json_object_get(rec, "changes"), 0);
		fail_msg("changes %s, want %s", got, want);
	}
	json_decref(w);
}

/* The scripted life of one document; returns its records in an array. */
static json_t *life(const char *topic, int64_t base_offset)
{
	json_t *recs = json_array();
	ctc_doc_state *st = ctc_state_new("orders", "o1", NULL);
	json_t *a1 = J("{\"qty\": 1, \"tags\": [\"a\"]}"), *a2 = J("{\"qty\": 2, \"tags\": [\"a\"]}");
	json_t *a3 = J("{\"fresh\": true}");
	ctc_event_in e;

	e = ev("e1", "insert", a1, base_offset + 0);
	e.topic = topic;
	e.actor = "alice";
	e.context_id = "ctx1";
	e.seq = 1;
	json_t *r = apply(st, &e, CTC_RECORD_PERSISTED);
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
	assert_true(json_is_null(json_object_get(r, "prev_hash")));
	assert_changes(r, "[[\"add\", \"\", [[\"qty\", 1], [\"tags\", [\"a\"]]]]]");
	json_array_append_new(recs, r);

	e = ev("e2", "update", a2, base_offset + 1);
	e.topic = topic;
	e.seq = 0; /* the first value of a sequence, not "none" */
	r = apply(st, &e, CTC_RECORD_PERSISTED);
	assert_int_equal(json_integer_value(json_object_get(r, "seq")), 0);
	assert_changes(r, "[[\"change\", \"qty\", [1, 2]]]");
	assert_string_equal(json_string_value(json_object_get(r, "prev_hash")),
			    json_string_value(json_object_get(json_array_get(recs, 0), "hash")));
	json_array_append_new(recs, r);

	/* an update that changes nothing: no record, state unchanged */
	e = ev("e3", "update", a2, base_offset + 2);
	e.topic = topic;
	apply(st, &e, CTC_RECORD_EMPTY);
	assert_int_equal(st->version, 2);

	e = ev("e4", "delete", NULL, base_offset + 3);
	e.topic = topic;
	r = apply(st, &e, CTC_RECORD_PERSISTED);
	assert_changes(r, "[[\"remove\", \"\", [[\"qty\", 2], [\"tags\", [\"a\"]]]]]");
	assert_true(st->deleted);
	assert_non_null(st->doc); /* kept for references to deleted documents */
	json_array_append_new(recs, r);

	/* deleting again changes nothing */
	e = ev("e5", "delete", NULL, base_offset + 4);
	e.topic = topic;
	apply(st, &e, CTC_RECORD_EMPTY);

	/* re-create: diff from {} and versions go on */
	e = ev("e6", "insert", a3, base_offset + 5);
	e.topic = topic;
	r = apply(st, &e, CTC_RECORD_PERSISTED);
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 4);
	assert_changes(r, "[[\"add\", \"\", [[\"fresh\", true]]]]");
	assert_false(st->deleted);
	json_array_append_new(recs, r);

	ctc_state_free(st);
	json_decref(a1);
	json_decref(a2);
	json_decref(a3);
	return recs;
}

static void test_life_and_chain(void **state)
{
	json_t *recs = life("t", 100);
	assert_int_equal(json_array_size(recs), 4);
	for (size_t i = 0; i < json_array_size(recs); i++) {
		json_t *r = json_array_get(recs, i);
		char h[65];
		assert_int_equal(ct_record_hash(r, h, NULL), 0);
		assert_string_equal(h, json_string_value(json_object_get(r, "hash")));
		assert_int_equal(json_integer_value(json_object_get(r, "version")), (json_int_t)i + 1);
		json_t *k = json_object_get(r, "kafka");
		assert_int_equal(json_integer_value(json_object_get(k, "offset")), 100 + (i < 2 ? i : i + 1 + (i == 3)));
	}
	json_t *first = json_array_get(recs, 0);
	assert_string_equal(json_string_value(json_object_get(first, "actor")), "alice");
	assert_string_equal(json_string_value(json_object_get(first, "context_id")), "ctx1");
	assert_int_equal(json_integer_value(json_object_get(first, "seq")), 1);
	assert_string_equal(json_string_value(json_object_get(first, "_id")), "e1");
	json_decref(recs);
}

static void test_replay_is_byte_identical(void **state)
{
	/* another topic and other offsets: same records but for "kafka" */
	json_t *a = life("t", 100), *b = life("replay", 7);
	assert_int_equal(json_array_size(a), json_array_size(b));
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *x = json_deep_copy(json_array_get(a, i)), *y = json_deep_copy(json_array_get(b, i));
		json_object_del(x, "kafka");
		json_object_del(y, "kafka");
		char *cx, *cy;
		assert_int_equal(ct_canonical_dump(x, &cx, NULL, NULL), 0);
		assert_int_equal(ct_canonical_dump(y, &cy, NULL, NULL), 0);
		assert_string_equal(cx, cy);
		free(cx);
		free(cy);
		json_decref(x);
		json_decref(y);
	}
	json_decref(a);
	json_decref(b);
}

static void test_snapshot_manual_event_relation_parent(void **state)
{
	ctc_doc_state *st = ctc_state_new("orders", "o1", NULL);
	json_t *doc = J("{\"x\": 1}");
	ctc_event_in e = ev("s1", "snapshot", doc, 0);
	json_t *r = apply(st, &e, CTC_RECORD_PERSISTED);
	assert_changes(r, "[[\"add\", \"\", [[\"x\", 1]]]]");
	json_decref(r);
	/* a snapshot equal to what is known records nothing */
	e = ev("s2", "snapshot", doc, 1);
	apply(st, &e, CTC_RECORD_EMPTY);

	e = ev("m1", "event", NULL, 2);
	e.label = "exported";
	r = apply(st, &e, CTC_RECORD_PERSISTED);
	assert_changes(r, "[]");
	assert_string_equal(json_string_value(json_object_get(r, "label")), "exported");
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 2);
	json_decref(r);

	json_t *rel = J("{\"name\": \"tags\", \"collection\": \"tags\", \"document_id\": \"t9\"}");
	e = ev("r1", "relation_add", NULL, 3);
	e.relation = rel;
	r = apply(st, &e, CTC_RECORD_PERSISTED);
	assert_changes(r, "[[\"add\", [\"__relations__\", \"tags\"], [[\"tags/t9\", {\"collection\": \"tags\", \"document_id\": \"t9\"}]]]]");
	assert_true(json_equal(json_object_get(r, "relation"), rel));
	json_decref(r);
	e = ev("r2", "relation_remove", NULL, 4);
	e.relation = rel;
	r = apply(st, &e, CTC_RECORD_PERSISTED);
	assert_changes(r, "[[\"remove\", [\"__relations__\", \"tags\"], [[\"tags/t9\", {\"collection\": \"tags\", \"document_id\": \"t9\"}]]]]");
	json_decref(r);
	assert_true(json_equal(st->doc, doc)); /* relations leave the document alone */

	json_t *d2 = J("{\"x\": 2}");
	e = ev("c1", "update", d2, 5);
	e.parent_collection = "customers";
	e.parent_document_id = "c7";
	r = apply(st, &e, CTC_RECORD_PERSISTED);
	json_t *want = J("{\"collection\": \"customers\", \"document_id\": \"c7\"}");
	assert_true(json_equal(json_object_get(r, "parent"), want));
	json_decref(want);
	json_decref(r);

	json_decref(rel);
	json_decref(doc);
	json_decref(d2);
	ctc_state_free(st);
}

static void test_redelivery_and_stored_state(void **state)
{
	ctc_doc_state *st = ctc_state_new("orders", "o1", NULL), *back;
	json_t *d1 = J("{\"$x\": {\"a.b\": \"\"}}"), *d2 = J("{\"$x\": 2}");
	ctc_event_in e = ev("e1", "insert", d1, 10);
	json_decref(apply(st, &e, CTC_RECORD_PERSISTED));
	e = ev("e2", "update", d2, 11);
	json_decref(apply(st, &e, CTC_RECORD_PERSISTED));
	/* same event id again (another offset): duplicate */
	e = ev("e1", "update", d1, 50);
	apply(st, &e, CTC_RECORD_DUPLICATE);
	/* an older offset of the same partition with an unknown id is no
	 * verdict (issue 16: offsets go back when a topic is re-created) */
	e = ev("zz", "update", d1, 11);
	apply(st, &e, CTC_RECORD_UNPROVEN);
	/* proven the same log: applied before, its id forgotten since */
	e.offsets = CTC_OFFSETS_SAME_LOG;
	apply(st, &e, CTC_RECORD_DUPLICATE);
	/* the same offset number on another partition is new */
	e = ev("e3", "update", d1, 11);
	e.partition = 1;
	json_decref(apply(st, &e, CTC_RECORD_PERSISTED));

	json_t *stored;
	assert_int_equal(ctc_state_to_json(st, &stored, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(stored, "_id")), "orders/o1");
	/* stored form v2: the document as a document, keys as they are */
	json_t *want_doc = J("{\"$x\": {\"a.b\": \"\"}}");
	assert_true(json_equal(json_object_get(stored, "doc"), want_doc));
	json_decref(want_doc);
	assert_int_equal(ctc_state_from_json(stored, &back, NULL), 0);
	assert_int_equal(back->version, 3);
	assert_string_equal(back->hash, st->hash);
	assert_true(json_equal(back->doc, st->doc));
	assert_string_equal(json_string_value(json_object_get(stored, "ts")), "2024-05-01T10:00:00.000000Z");
	assert_string_equal(back->last_ts, st->last_ts);
	assert_true(ctc_state_seen_id(back, "e2"));
	assert_true(ctc_state_seen_offset(back, "t", 1, 11));
	assert_false(ctc_state_seen_offset(back, "t", 0, 12));
	ctc_state_free(back);
	json_decref(stored);

	/* only the last 32 ids are remembered */
	for (int i = 0; i < 40; i++) {
		char id[16];
		snprintf(id, sizeof(id), "x%d", i);
		ctc_state_remember_id(st, id, NULL);
	}
	assert_false(ctc_state_seen_id(st, "x7"));
	assert_true(ctc_state_seen_id(st, "x8"));
	assert_true(ctc_state_seen_id(st, "x39"));
	assert_bson_is_stored_form(st); /* the ring of ids wrapped */
	json_decref(d1);
	json_decref(d2);
	ctc_state_free(st);
}

/* Identity, not offsets (issue 16): (id, sha256) decides; offsets only trigger a proof. */
static void test_identity_not_offsets(void **state)
{
	ctc_doc_state *st = ctc_state_new("orders", "o1", NULL), *back;
	json_t *d1 = J("{\"a\": 1}"), *d2 = J("{\"a\": 2}"), *d3 = J("{\"a\": 3}"), *stored;
	const char *sha_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	const char *sha_b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	const char *sha_c = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
	const char *id, *sha;
	ctc_event_in e = ev("e1", "insert", d1, 100);
	e.sha256 = sha_a;
	json_decref(apply(st, &e, CTC_RECORD_PERSISTED));
	/* the same id and content again: the one silent skip */
	apply(st, &e, CTC_RECORD_DUPLICATE);
	/* the same id with other content: refused, the state unchanged */
	e = ev("e1", "update", d2, 101);
	e.sha256 = sha_b;
	apply(st, &e, CTC_RECORD_REUSED);
	assert_int_equal(st->version, 1);
	assert_int_equal(st->last_offset, 100);
	/* an empty update is remembered too (ring, last_offset, last_event) */
	e = ev("e2", "update", d1, 102);
	e.sha256 = sha_c;
	apply(st, &e, CTC_RECORD_EMPTY);
	assert_int_equal(st->version, 1);
	assert_int_equal(st->last_offset, 102);
	assert_true(ctc_state_last_event(st, &id, &sha));
	assert_string_equal(id, "e2");
	assert_string_equal(sha, sha_c);
	e = ev("e2", "update", d3, 103);
	e.sha256 = sha_a;
	apply(st, &e, CTC_RECORD_REUSED);
	/* the ring and last_event are stored with their sha256 and read back */
	assert_int_equal(ctc_state_to_json(st, &stored, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(stored, "last_event"), "sha256")), sha_c);
	assert_int_equal(json_array_size(json_object_get(stored, "recent_events")), 2);
	assert_int_equal(ctc_state_from_json(stored, &back, NULL), 0);
	assert_int_equal(ctc_state_find_id(back, "e1", &sha), 0);
	assert_string_equal(sha, sha_a);
	json_decref(stored);
	/* offsets that went back (a re-created topic): new events at old
	 * offsets are unproven, then applied as new once proven */
	e = ev("n1", "update", d2, 0);
	e.sha256 = sha_b;
	apply(back, &e, CTC_RECORD_UNPROVEN);
	assert_int_equal(back->version, 1);
	e.offsets = CTC_OFFSETS_WENT_BACK;
	json_decref(apply(back, &e, CTC_RECORD_PERSISTED));
	assert_int_equal(back->version, 2);
	assert_int_equal(back->last_offset, 0);
	/* after the new log's offset moved on: no proof needed */
	e = ev("n2", "update", d3, 1);
	json_decref(apply(back, &e, CTC_RECORD_PERSISTED));
	/* an id remembered without its content (a v1 state) proves nothing:
	 * the event is derived and the history insert (same _id) decides */
	assert_int_equal(ctc_state_remember_event(back, "old", NULL, NULL), 0);
	e = ev("old", "update", d1, 2);
	e.sha256 = sha_a;
	json_decref(apply(back, &e, CTC_RECORD_PERSISTED));
	assert_int_equal(back->version, 4);
	/* nor does an event without one */
	e = ev("n2", "update", d2, 3);
	e.sha256 = NULL;
	json_decref(apply(back, &e, CTC_RECORD_PERSISTED));
	ctc_state_free(back);
	ctc_state_free(st);
	json_decref(d1);
	json_decref(d2);
	json_decref(d3);
}

/*
 * Regression (found by the reliability suite): the diff follows the key
 * order of the previous document, and a state read back from MongoDB has its
 * keys sorted (canonical text) while a cached one had the event's order, so
 * the same event gave a different record and hash after a restart or a
 * rebalance, and a record written before a crash was not rebuilt
 * identically (its successor's prev_hash then broke the chain).
 */
static void test_record_same_from_cache_or_store(void **state)
{
	ctc_doc_state *cached = ctc_state_new("orders", "o1", NULL), *loaded = NULL;
	json_t *d1 = J("{\"z\": 1, \"b\": {\"y\": 1, \"x\": 1}, \"a\": 1}");
	json_t *d2 = J("{\"z\": 2, \"b\": {\"y\": 2, \"x\": 2}, \"a\": 2}");
	json_t *stored = NULL;
	ctc_event_in e = ev("e1", "insert", d1, 1);
	json_decref(apply(cached, &e, CTC_RECORD_PERSISTED));
	assert_int_equal(ctc_state_to_json(cached, &stored, NULL), 0);
	assert_int_equal(ctc_state_from_json(stored, &loaded, NULL), 0);

	e = ev("e2", "update", d2, 2);
	json_t *from_cache = apply(cached, &e, CTC_RECORD_PERSISTED);
	json_t *from_store = apply(loaded, &e, CTC_RECORD_PERSISTED);
	assert_true(json_equal(json_object_get(from_cache, "changes"), json_object_get(from_store, "changes")));
	assert_string_equal(json_string_value(json_object_get(from_cache, "hash")),
			    json_string_value(json_object_get(from_store, "hash")));
	ctc_state_free(loaded);
	json_decref(from_cache);
	json_decref(from_store);
	json_decref(stored);
	json_decref(d1);
	json_decref(d2);
	ctc_state_free(cached);
}

static void test_delete_same_from_cache_or_store(void **state)
{
	ctc_doc_state *cached = ctc_state_new("orders", "o1", NULL), *loaded = NULL;
	json_t *d1 = J("{\"z\": 1, \"b\": {\"y\": 1, \"x\": 1}, \"a\": 1}");
	json_t *stored = NULL;
	ctc_event_in e = ev("e1", "insert", d1, 1);
	json_decref(apply(cached, &e, CTC_RECORD_PERSISTED));
	assert_int_equal(ctc_state_to_json(cached, &stored, NULL), 0);
	assert_int_equal(ctc_state_from_json(stored, &loaded, NULL), 0);
	e = ev("e2", "delete", NULL, 2);
	json_t *from_cache = apply(cached, &e, CTC_RECORD_PERSISTED);
	json_t *from_store = apply(loaded, &e, CTC_RECORD_PERSISTED);
	assert_string_equal(json_string_value(json_object_get(from_cache, "hash")),
			    json_string_value(json_object_get(from_store, "hash")));
	json_decref(from_cache);
	json_decref(from_store);
	json_decref(stored);
	json_decref(d1);
	ctc_state_free(loaded);
	ctc_state_free(cached);
}

static void test_cache(void **state)
{
	ctc_cache *c = ctc_cache_new(3, 0);
	char coll[8], id[8];
	for (int i = 0; i < 5000; i++) {
		snprintf(coll, sizeof(coll), "c");
		snprintf(id, sizeof(id), "%d", i);
		assert_int_equal(ctc_cache_put(c, ctc_state_new(coll, id, NULL), i % 2, NULL), 0);
	}
	assert_int_equal(ctc_cache_count(c), 5000); /* no eviction before trim */
	assert_non_null(ctc_cache_get(c, "c/10"));
	ctc_cache_trim(c, 0);
	assert_int_equal(ctc_cache_count(c), 3);
	assert_non_null(ctc_cache_get(c, "c/10")); /* most recently used survives */
	assert_non_null(ctc_cache_get(c, "c/4999"));
	assert_null(ctc_cache_get(c, "c/0"));
	ctc_cache_drop_partition(c, 0);
	assert_int_equal(ctc_cache_count(c), 1);
	assert_non_null(ctc_cache_get(c, "c/4999"));
	ctc_cache_free(c);
}

/* The size bound: the least recently used clean states go first, a state
 * whose document grew is measured again, dirty states and states whose
 * write is not done yet are kept (and the cache says it is over its bounds
 * until they are written). */
static void test_cache_bytes(void **state)
{
	char big[10001], id[16];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ctc_cache *c = ctc_cache_new(1000, 50000);
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "%d", i);
		ctc_doc_state *st = ctc_state_new("c", id, NULL);
		st->doc = json_pack("{s:s, s:i}", "notes", big, "qty", i);
		assert_int_equal(ctc_cache_put(c, st, 0, NULL), 0);
	}
	assert_true(ctc_cache_bytes(c) > 20 * 10000);
	ctc_cache_trim(c, 0);
	assert_true(ctc_cache_bytes(c) <= 50000);
	assert_true(ctc_cache_count(c) >= 3 && ctc_cache_count(c) <= 4);
	assert_false(ctc_cache_over_bounds(c));
	assert_non_null(ctc_cache_get(c, "c/19"));
	assert_null(ctc_cache_get(c, "c/0"));

	/* c/19 grows to ~40 KB: measured again at the next trim, others go */
	ctc_doc_state *st = ctc_cache_get(c, "c/19");
	json_t *grown = json_pack("{s:s, s:s, s:s, s:s}", "a", big, "b", big, "c", big, "d", big);
	json_decref(st->doc);
	st->doc = grown;
	ctc_cache_trim(c, 0);
	assert_true(ctc_cache_bytes(c) <= 50000);
	assert_int_equal(ctc_cache_count(c), 1);
	assert_non_null(ctc_cache_get(c, "c/19"));

	/* dirty states stay, over the bound, until written */
	for (int i = 100; i < 110; i++) {
		snprintf(id, sizeof(id), "%d", i);
		ctc_doc_state *d = ctc_state_new("c", id, NULL);
		d->doc = json_pack("{s:s}", "notes", big);
		d->dirty = true;
		assert_int_equal(ctc_cache_put(c, d, 0, NULL), 0);
	}
	ctc_cache_trim(c, 0);
	assert_int_equal(ctc_cache_count(c), 10); /* c/19 (clean) evicted, the dirty ones kept */
	assert_true(ctc_cache_over_bounds(c));

	/* taken by state write 7: clean, but kept until that write is done */
	for (int i = 100; i < 110; i++) {
		snprintf(id, sizeof(id), "c/%d", i);
		ctc_doc_state *d = ctc_cache_get(c, id);
		d->dirty = false;
		d->taken = 7;
	}
	ctc_cache_trim(c, 6);
	assert_int_equal(ctc_cache_count(c), 10);
	assert_true(ctc_cache_over_bounds(c));
	ctc_cache_trim(c, 7);
	assert_true(ctc_cache_count(c) <= 4);
	assert_false(ctc_cache_over_bounds(c));
	ctc_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_life_and_chain),
		cmocka_unit_test(test_replay_is_byte_identical),
		cmocka_unit_test(test_snapshot_manual_event_relation_parent),
		cmocka_unit_test(test_redelivery_and_stored_state),
		cmocka_unit_test(test_identity_not_offsets),
		cmocka_unit_test(test_record_same_from_cache_or_store),
		cmocka_unit_test(test_delete_same_from_cache_or_store),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
