/*
 * test_storage_codec.c - the stored form v2 codec (storage/cts_codec.h):
 * dictdiffer <-> native changes lossless on every diff vector (ct_diff's
 * output and dictdiffer's own), records whose hash still verifies after
 * native BSON and back (relations, deletes, awkward keys, times before
 * 1970), v1 documents (text changes, text ts, text doc) read into the same
 * JSON form, the refusals that keep the conversion lossless, states and
 * contexts with dates.
 */
#include "testutil.h"

#include "changetrail/canonical.h"
#include "changetrail/diff.h"
#include "cts_codec.h"
#include "record.h"

#include <stdlib.h>
#include <string.h>

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, LOAD_FLAGS, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static char *canon(const json_t *v)
{
	char *t = NULL;
	assert_int_equal(ct_canonical_dump(v, &t, NULL, NULL), 0);
	return t;
}

/* dictdiffer -> native -> BSON -> native -> dictdiffer: the same canonical text. */
static void assert_changes_roundtrip(const char *op, const json_t *changes)
{
	json_t *native = NULL, *native_back = NULL, *back = NULL;
	bson_t b = BSON_INITIALIZER;
	bson_iter_t it;
	ct_error err;
	if (cts_changes_to_native(op, changes, &native, &err) != 0) {
		char *t = canon(changes);
		fail_msg("to native refused %s: %s", t, err.message);
	}
	assert_int_equal(cts_bson_append_json(&b, "changes", native, NULL), 0);
	assert_true(bson_iter_init_find(&it, &b, "changes"));
	assert_int_equal(cts_bson_iter_to_json(&it, &native_back, NULL), 0);
	assert_int_equal(cts_changes_from_native(op, native_back, &back, &err), 0);
	char *want = canon(changes), *got = canon(back);
	if (strcmp(want, got))
		fail_msg("changes differ after native and back:\n want %s\n got  %s", want, got);
	free(want);
	free(got);
	json_decref(native);
	json_decref(native_back);
	json_decref(back);
	bson_destroy(&b);
}

static json_t *load_vectors(void)
{
	const char *path = ct_test_source_path("tests/vectors/diff/vectors.json");
	size_t len;
	char *text = ct_test_read_file(path, &len);
	json_error_t jerr;
	if (!text)
		fail_msg("cannot read %s (set CT_SOURCE_DIR)", path);
	json_t *v = json_loadb(text, len, LOAD_FLAGS, &jerr);
	free(text);
	if (!v)
		fail_msg("%s: %s", path, jerr.text);
	assert_true(json_array_size(v) >= 300);
	return v;
}

static void test_every_diff_vector_roundtrips(void **state)
{
	json_t *vecs = load_vectors();
	for (size_t i = 0; i < json_array_size(vecs); i++) {
		const json_t *v = json_array_get(vecs, i);
		json_t *d = NULL;
		/* what the consumer stores: ct_diff's output, forward and back */
		assert_int_equal(ct_diff(json_object_get(v, "a"), json_object_get(v, "b"), &d, NULL), 0);
		assert_changes_roundtrip("update", d);
		json_decref(d);
		assert_int_equal(ct_diff(json_object_get(v, "b"), json_object_get(v, "a"), &d, NULL), 0);
		assert_changes_roundtrip("update", d);
		json_decref(d);
		/* and dictdiffer's own output */
		assert_changes_roundtrip("update", json_object_get(v, "diff"));
	}
	json_decref(vecs);
}

/* The native shape users query: one item per added element, paths as arrays. */
static void test_native_shape(void **state)
{
	json_t *changes = J("[[\"add\", \"tags\", [[1, \"sale\"], [2, \"new\"]]], [\"change\", \"qty\", [5, 3]],"
			    " [\"remove\", [\"a.b\", \"\"], [[\"$x\", null]]]]");
	json_t *native = NULL;
	assert_int_equal(cts_changes_to_native("update", changes, &native, NULL), 0);
	json_t *want = J("[{\"op\": \"add\", \"path\": [\"tags\", 1], \"value\": \"sale\"},"
			 " {\"op\": \"add\", \"path\": [\"tags\", 2], \"value\": \"new\"},"
			 " {\"op\": \"change\", \"path\": [\"qty\"], \"from\": 5, \"to\": 3},"
			 " {\"op\": \"remove\", \"path\": [\"a.b\", \"\", \"$x\"], \"value\": null}]");
	assert_true(json_equal(native, want));
	assert_changes_roundtrip("update", changes);
	json_decref(changes);
	json_decref(native);
	json_decref(want);
}

/* What could not come back the same is refused, never stored to break a hash. */
static void test_lossy_forms_are_refused(void **state)
{
	static const char *bad[] = {
		"[[\"change\", [\"a\", \"b\"], [1, 2]]]",            /* dictdiffer writes it \"a.b\" */
		"[[\"change\", [], [1, 2]]]",                        /* the root is \"\" */
		"[[\"add\", \"a\", []]]",                            /* nothing added */
		"[[\"add\", \"a\", [[\"x\", 1]]], [\"add\", \"a\", [[\"y\", 2]]]]", /* would be regrouped */
		"[[\"change\", \"a..b\", [1, 2]]]",                  /* empty component */
		"[[\"move\", \"a\", [1, 2]]]",
		"[[\"add\", \"a\", [[1.5, 1]]]]",
		"{}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *c = J(bad[i]), *n = NULL;
		ct_error err;
		assert_int_equal(cts_changes_to_native("update", c, &n, &err), CT_EINVAL);
		assert_null(n);
		json_decref(c);
	}
	/* a relation's path is the array ["__relations__", NAME] */
	json_t *rel = J("[[\"add\", [\"__relations__\", \"tags\"], [[\"tags/red\", {\"collection\": \"tags\","
			" \"document_id\": \"red\"}]]]]");
	assert_changes_roundtrip("relation_add", rel);
	json_t *n = NULL;
	assert_int_equal(cts_changes_to_native("update", rel, &n, NULL), CT_EINVAL);
	json_decref(rel);
	/* malformed native */
	static const char *bad_native[] = {
		"[{\"op\": \"add\", \"path\": [], \"value\": 1}]",
		"[{\"op\": \"add\", \"path\": [\"a\"]}]",
		"[{\"op\": \"change\", \"path\": \"a\", \"from\": 1, \"to\": 2}]",
		"[{\"op\": \"change\", \"path\": [\"a\"], \"from\": 1, \"to\": 2, \"x\": 0}]",
		"[{\"op\": \"add\", \"path\": [true], \"value\": 1}]",
		"[1]",
	};
	for (size_t i = 0; i < sizeof(bad_native) / sizeof(bad_native[0]); i++) {
		json_t *c = J(bad_native[i]), *d = NULL;
		assert_int_equal(cts_changes_from_native("update", c, &d, NULL), CT_EINVAL);
		json_decref(c);
	}
}

static ctc_event_in event(const char *id, const char *op, const char *ts, json_t *after, int64_t offset)
{
	ctc_event_in e = {0};
	e.event_id = id;
	e.ts = ts;
	e.source = "test";
	e.collection = "orders";
	e.document_id = "o1";
	e.op = op;
	e.after = after;
	e.seq = -1;
	e.topic = "t";
	e.partition = 0;
	e.offset = offset;
	return e;
}

/* to native BSON and back: the same canonical record, whose hash is its stored hash */
static void assert_record_roundtrip(const json_t *rec)
{
	bson_t b = BSON_INITIALIZER;
	json_t *back = NULL;
	bson_iter_t it;
	char hash[65];
	assert_int_equal(cts_history_to_bson(rec, &b, NULL), 0);
	assert_true(bson_iter_init_find(&it, &b, "ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(bson_iter_init_find(&it, &b, "ts_us") && BSON_ITER_HOLDS_INT64(&it));
	assert_true(bson_iter_init_find(&it, &b, "changes") && BSON_ITER_HOLDS_ARRAY(&it));
	assert_int_equal(cts_history_from_bson(&b, &back, NULL), 0);
	char *want = canon(rec), *got = canon(back);
	assert_string_equal(got, want);
	assert_int_equal(ct_record_hash(back, hash, NULL), 0);
	assert_string_equal(hash, json_string_value(json_object_get(rec, "hash")));
	free(want);
	free(got);
	json_decref(back);
	bson_destroy(&b);
}

static void test_records_keep_their_hash(void **state)
{
	ctc_doc_state *st = ctc_state_new("orders", "o1", NULL);
	json_t *docs[] = {
		J("{\"qty\": 5, \"tags\": [\"a\"], \"\": {\"a.b\": 1, \"$x\": [[1, 2.0], {}]}, \"n\": 8}"),
		J("{\"qty\": 3, \"tags\": [\"a\", \"sale\"], \"\": {\"a.b\": 2}, \"n\": 8.0, \"é\": \"\\u0000\"}"),
	};
	const char *ts[] = {"1969-07-20T20:17:40.123456Z", "2024-05-01T10:00:00.000001Z", "9999-12-31T23:59:59.999999Z"};
	ctc_record_result res;
	json_t *rec;
	for (int i = 0; i < 2; i++) {
		ctc_event_in e = event(i ? "e2" : "e1", i ? "update" : "insert", ts[i], docs[i], i);
		assert_int_equal(ctc_record_apply(st, &e, &rec, &res, NULL), 0);
		assert_int_equal(res, CTC_RECORD_PERSISTED);
		assert_record_roundtrip(rec);
		json_decref(rec);
	}
	json_t *relation = J("{\"name\": \"tags\", \"collection\": \"tags\", \"document_id\": \"red\"}");
	ctc_event_in e = event("e3", "relation_add", ts[2], NULL, 2);
	e.relation = relation;
	assert_int_equal(ctc_record_apply(st, &e, &rec, &res, NULL), 0);
	assert_int_equal(res, CTC_RECORD_PERSISTED);
	assert_record_roundtrip(rec);
	json_decref(rec);
	e = event("e4", "delete", ts[1], NULL, 3);
	assert_int_equal(ctc_record_apply(st, &e, &rec, &res, NULL), 0);
	assert_record_roundtrip(rec);
	json_decref(rec);
	json_decref(relation);
	json_decref(docs[0]);
	json_decref(docs[1]);
	ctc_state_free(st);
}

/* A v1 document (changes, ts and a checkpoint's doc as text) reads as the same JSON form. */
static void test_v1_documents_read(void **state)
{
	json_t *rec = J("{\"_id\": \"e1\", \"op\": \"update\", \"version\": 2, \"ts\": \"2024-05-01T10:00:00.000000Z\","
			" \"changes\": [[\"change\", \"a\", [1, 2]]], \"hash\": \"h\"}");
	bson_t v1 = BSON_INITIALIZER;
	BSON_APPEND_UTF8(&v1, "_id", "e1");
	BSON_APPEND_UTF8(&v1, "op", "update");
	BSON_APPEND_INT64(&v1, "version", 2);
	BSON_APPEND_UTF8(&v1, "ts", "2024-05-01T10:00:00.000000Z");
	BSON_APPEND_UTF8(&v1, "changes", "[[\"change\",\"a\",[1,2]]]");
	BSON_APPEND_UTF8(&v1, "hash", "h");
	json_t *got = NULL;
	assert_int_equal(cts_history_from_bson(&v1, &got, NULL), 0);
	assert_true(json_equal(got, rec));
	json_decref(got);
	bson_destroy(&v1);
	json_decref(rec);

	bson_t ck = BSON_INITIALIZER;
	BSON_APPEND_UTF8(&ck, "op", "checkpoint");
	BSON_APPEND_UTF8(&ck, "doc", "{\"a\":1}");
	BSON_APPEND_UTF8(&ck, "changes", "[]");
	assert_int_equal(cts_history_from_bson(&ck, &got, NULL), 0);
	json_t *want = J("{\"op\": \"checkpoint\", \"doc\": {\"a\": 1}, \"changes\": []}");
	assert_true(json_equal(got, want));
	/* v2: the checkpoint's doc is a BSON document */
	bson_t v2 = BSON_INITIALIZER;
	bson_iter_t it;
	assert_int_equal(cts_history_to_bson(got, &v2, NULL), 0);
	assert_true(bson_iter_init_find(&it, &v2, "doc") && BSON_ITER_HOLDS_DOCUMENT(&it));
	json_decref(got);
	json_decref(want);
	bson_destroy(&ck);
	bson_destroy(&v2);

	/* v1 state: doc text, ts text, recent_event_ids */
	bson_t st = BSON_INITIALIZER;
	BSON_APPEND_UTF8(&st, "_id", "orders/o1");
	BSON_APPEND_UTF8(&st, "doc", "{\"qty\":5}");
	BSON_APPEND_UTF8(&st, "ts", "2024-05-01T10:00:00.000000Z");
	bson_t ids;
	BSON_APPEND_ARRAY_BEGIN(&st, "recent_event_ids", &ids);
	BSON_APPEND_UTF8(&ids, "0", "e1");
	bson_append_array_end(&st, &ids);
	assert_int_equal(cts_state_from_bson(&st, &got, NULL), 0);
	want = J("{\"_id\": \"orders/o1\", \"doc\": {\"qty\": 5}, \"ts\": \"2024-05-01T10:00:00.000000Z\","
		 " \"recent_events\": [{\"id\": \"e1\", \"sha256\": null}]}");
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	bson_destroy(&st);
}

static void test_times(void **state)
{
	bson_t b = BSON_INITIALIZER;
	bson_iter_t it;
	char out[32];
	ct_error err;
	assert_int_equal(cts_append_time(&b, "ts", "ts_us", "1969-12-31T23:59:59.999999Z", NULL), 0);
	assert_true(bson_iter_init_find(&it, &b, "ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_int_equal(bson_iter_date_time(&it), -1); /* floor, as MongoDB orders dates */
	assert_int_equal(cts_get_time(&b, "ts", "ts_us", out, NULL), 0);
	assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
	bson_destroy(&b);
	bson_init(&b);
	assert_int_equal(cts_append_time(&b, "ts", "ts_us", "2024-05-01T10:00:00Z", &err), CT_EINVAL);
	bson_destroy(&b);
	/* a date written by someone else, without ts_us: its milliseconds */
	bson_init(&b);
	BSON_APPEND_DATE_TIME(&b, "ts", 1714557600123);
	assert_int_equal(cts_get_time(&b, "ts", "ts_us", out, NULL), 0);
	assert_string_equal(out, "2024-05-01T10:00:00.123000Z");
	bson_destroy(&b);
}

/* A state in JSON form: doc as a document, ts as a date, the rest as is. */
static void test_state_form(void **state)
{
	json_t *st = J("{\"_id\": \"orders/o1\", \"collection\": \"orders\", \"document_id\": \"o1\", \"version\": 3,"
		       " \"deleted\": false, \"hash\": \"h\", \"doc\": {\"qty\": 5, \"$p\": {\"a.b\": 8.0}},"
		       " \"ts\": \"2024-05-01T10:00:00.000000Z\", \"last_offset\": {\"topic\": \"t\", \"partition\": 0,"
		       " \"offset\": 9}, \"last_event\": {\"id\": \"e3\", \"sha256\": null},"
		       " \"recent_events\": [{\"id\": \"e3\", \"sha256\": null}]}");
	bson_t b = BSON_INITIALIZER;
	bson_iter_t it;
	json_t *back = NULL;
	assert_int_equal(cts_state_to_bson(st, &b, NULL), 0);
	assert_true(bson_iter_init_find(&it, &b, "doc") && BSON_ITER_HOLDS_DOCUMENT(&it));
	assert_true(bson_iter_init_find(&it, &b, "ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_int_equal(cts_state_from_bson(&b, &back, NULL), 0);
	assert_true(json_equal(back, st));
	json_decref(back);
	json_decref(st);
	bson_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_diff_vector_roundtrips),
		cmocka_unit_test(test_native_shape),
		cmocka_unit_test(test_lossy_forms_are_refused),
		cmocka_unit_test(test_records_keep_their_hash),
		cmocka_unit_test(test_v1_documents_read),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_state_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
