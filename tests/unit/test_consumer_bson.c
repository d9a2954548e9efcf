/*
 * test_consumer_bson.c - jansson <-> BSON conversion built by hand: awkward
 * keys ("", ".", "$x", "~", unicode), int64 extremes, reals, nesting, and
 * and the stored form of history records ("changes" native; the codec's
 * own tests are in test_storage_codec.c).
 */
#include "testutil.h"

#include "bson_json.h"
#include "changetrail/canonical.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void roundtrip(const char *text)
{
	json_t *in = load(text), *out = NULL;
	bson_t b = BSON_INITIALIZER;
	assert_int_equal(ctc_json_to_bson(in, &b, NULL), 0);
	assert_int_equal(ctc_bson_to_json(&b, &out, NULL), 0);
	char *a, *c;
	assert_int_equal(ct_canonical_dump(in, &a, NULL, NULL), 0);
	assert_int_equal(ct_canonical_dump(out, &c, NULL, NULL), 0);
	assert_string_equal(a, c);
	/* and the member order is kept */
	const char *k1 = json_object_iter_key(json_object_iter(in));
	const char *k2 = json_object_iter_key(json_object_iter(out));
	if (k1)
		assert_string_equal(k1, k2);
	free(a);
	free(c);
	bson_destroy(&b);
	json_decref(in);
	json_decref(out);
}

static void test_awkward_keys(void **state)
{
	roundtrip("{\"\": 1, \".\": 2, \"$x\": 3, \"~\": 4, \"a.b\": {\"$date\": 5}, \"\\u00e9\\u4e2d\\ud83d\\ude00\": \"v\"}");
	roundtrip("{\"$oid\": \"0123456789abcdef01234567\", \"$numberLong\": \"1\"}");
}

static void test_values(void **state)
{
	roundtrip("{\"i\": 9223372036854775807, \"n\": -9223372036854775808, \"r\": 0.1, \"e\": 1e300,"
		  " \"t\": true, \"f\": false, \"z\": null, \"s\": \"a\\u0000b\", \"a\": [[1, [2]], {}, []]}");
	roundtrip("{}");
	json_t *in = load("{\"r\": 1.0, \"i\": 1}"), *out;
	bson_t b = BSON_INITIALIZER;
	assert_int_equal(ctc_json_to_bson(in, &b, NULL), 0);
	assert_int_equal(ctc_bson_to_json(&b, &out, NULL), 0);
	assert_true(json_is_real(json_object_get(out, "r")));
	assert_true(json_is_integer(json_object_get(out, "i")));
	bson_destroy(&b);
	json_decref(in);
	json_decref(out);
}

static void test_depth_bound(void **state)
{
	json_t *root = json_object(), *cur = root;
	for (int i = 0; i < CTC_BSON_MAX_DEPTH + 5; i++) {
		json_t *n = json_object();
		json_object_set_new(cur, "a", n);
		cur = n;
	}
	bson_t b = BSON_INITIALIZER;
	ct_error err;
	assert_int_equal(ctc_json_to_bson(root, &b, &err), CT_ELIMIT);
	bson_destroy(&b);
	json_decref(root);
}

static void test_unsupported_bson_type(void **state)
{
	bson_t b = BSON_INITIALIZER;
	bson_oid_t oid;
	bson_oid_init(&oid, NULL);
	BSON_APPEND_OID(&b, "_id", &oid);
	json_t *out;
	ct_error err;
	assert_int_equal(ctc_bson_to_json(&b, &out, &err), CT_EINVAL);
	assert_null(out);
	bson_destroy(&b);
}

/* Stored form v2: "changes" native (documents with an array path), not text. */
static void test_history_changes_native(void **state)
{
	json_t *rec = load("{\"_id\": \"e1\", \"changes\": [[\"add\", \"\", [[\"$x\", {\"a.b\": [1]}]]]], \"version\": 1}");
	bson_t b = BSON_INITIALIZER;
	assert_int_equal(ctc_history_to_bson(rec, &b, NULL), 0);
	bson_iter_t it, item, f;
	assert_true(bson_iter_init_find(&it, &b, "changes"));
	assert_true(BSON_ITER_HOLDS_ARRAY(&it));
	assert_true(bson_iter_recurse(&it, &item) && bson_iter_next(&item) && BSON_ITER_HOLDS_DOCUMENT(&item));
	assert_true(bson_iter_recurse(&item, &f) && bson_iter_find(&f, "path") && BSON_ITER_HOLDS_ARRAY(&f));
	json_t *back;
	assert_int_equal(ctc_history_from_bson(&b, &back, NULL), 0);
	assert_true(json_equal(back, rec));
	json_decref(back);
	json_decref(rec);
	bson_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_awkward_keys),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_unsupported_bson_type),
		cmocka_unit_test(test_history_changes_native),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
