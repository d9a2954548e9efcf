/*
 * test_diff.c - ct_diff() against the real dictdiffer (vectors made by
 * scripts/gen-diff-vectors.py), patch/revert/JSON Patch round trips on those
 * vectors and on pseudo-random documents, and hand-written edge cases.
 */
#include "testutil.h"
#include "changetrail/diff.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json_equiv.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

static json_t *J(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, LOAD_FLAGS, &jerr);
	if (!v)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	return v;
}

static char *dump(const json_t *v)
{
	return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}


/* ---- a small RFC 6902 applier (add/remove/replace) for the tests ---- */

/* Splits a JSON Pointer into unescaped tokens; returns their count or -1. */
static int pointer_tokens(const char *p, char tokens[][256], int max)
{
	int n = 0;
	if (!*p)
		return 0;
	if (*p != '/')
		return -1;
	while (*p == '/') {
		size_t len = 0;
		p++;
		if (n == max)
			return -1;
		while (*p && *p != '/') {
			char c = *p++;
			if (c == '~') {
				c = *p == '0' ? '~' : *p == '1' ? '/' : 0;
				if (!c)
					return -1;
				p++;
			}
			if (len + 1 >= 256)
				return -1;
			tokens[n][len++] = c;
		}
		tokens[n++][len] = '\0';
	}
	return n;
}

static int token_index(const char *t, size_t *i)
{
	char *end;
	if (!*t || (t[0] == '0' && t[1]) || t[0] < '0' || t[0] > '9')
		return -1;
	*i = strtoull(t, &end, 10);
	return *end ? -1 : 0;
}

/* Applies the ops to *doc in place (may replace *doc); 0 on success. */
static int apply_jsonpatch(json_t **doc, const json_t *ops)
{
	static char tokens[600][256];
	for (size_t i = 0; i < json_array_size(ops); i++) {
		const json_t *op = json_array_get(ops, i);
		const char *kind = json_string_value(json_object_get(op, "op"));
		const char *path = json_string_value(json_object_get(op, "path"));
		json_t *value = json_object_get(op, "value");
		int n = pointer_tokens(path, tokens, 600);
		if (!kind || n < 0)
			return -1;
		if (n == 0) {
			if (strcmp(kind, "replace") || !value)
				return -1;
			json_decref(*doc);
			*doc = json_deep_copy(value);
			continue;
		}
		json_t *parent = *doc;
		for (int t = 0; t < n - 1; t++) {
			size_t idx;
			if (json_is_object(parent))
				parent = json_object_get(parent, tokens[t]);
			else if (json_is_array(parent) && token_index(tokens[t], &idx) == 0)
				parent = json_array_get(parent, idx);
			else
				return -1;
			if (!parent)
				return -1;
		}
		const char *last = tokens[n - 1];
		if (json_is_object(parent)) {
			int exists = json_object_get(parent, last) != NULL;
			if (!strcmp(kind, "remove")) {
				if (!exists || json_object_del(parent, last))
					return -1;
			} else if (!value || (!strcmp(kind, "replace") && !exists) ||
				   json_object_set_new(parent, last, json_deep_copy(value))) {
				return -1;
			}
		} else if (json_is_array(parent)) {
			size_t idx, size = json_array_size(parent);
			if (!strcmp(kind, "add") && !strcmp(last, "-"))
				idx = size;
			else if (token_index(last, &idx))
				return -1;
			if (!strcmp(kind, "add")) {
				if (idx > size || !value || json_array_insert_new(parent, idx, json_deep_copy(value)))
					return -1;
			} else if (idx >= size) {
				return -1;
			} else if (!strcmp(kind, "remove")) {
				json_array_remove(parent, idx);
			} else if (!value || json_array_set_new(parent, idx, json_deep_copy(value))) {
				return -1;
			}
		} else {
			return -1;
		}
	}
	return 0;
}

/*
 * Every property of one pair: patch(diff(a,b), a) ~ b, revert(diff(a,b), b)
 * ~ a, the JSON Patch applied to a ~ b, diff(a, a) empty, and the inputs
 * untouched. `label` says which pair failed.
 */
static void check_roundtrip(const json_t *a, const json_t *b, const char *label)
{
	ct_error err;
	json_t *d = NULL, *p = NULL, *r = NULL, *ops = NULL, *self = NULL;
	char *da = dump(a), *db = dump(b);

	int rc = ct_diff(a, b, &d, &err);
	if (rc != CT_OK)
		fail_msg("%s: ct_diff: %s", label, err.message);
	if ((rc = ct_patch(d, a, &p, &err)) != CT_OK)
		fail_msg("%s: ct_patch: %s\n a=%s\n b=%s", label, err.message, da, db);
	if (!equiv(p, b)) {
		char *dd = dump(d), *dp = dump(p);
		fail_msg("%s: patch(diff(a,b),a) != b\n a=%s\n b=%s\n diff=%s\n got=%s", label, da, db, dd, dp);
	}
	if ((rc = ct_revert(d, b, &r, &err)) != CT_OK)
		fail_msg("%s: ct_revert: %s\n a=%s\n b=%s", label, err.message, da, db);
	if (!equiv(r, a)) {
		char *dd = dump(d), *dr = dump(r);
		fail_msg("%s: revert(diff(a,b),b) != a\n a=%s\n b=%s\n diff=%s\n got=%s", label, da, db, dd, dr);
	}
	if ((rc = ct_diff_to_jsonpatch(d, &ops, &err)) != CT_OK)
		fail_msg("%s: ct_diff_to_jsonpatch: %s", label, err.message);
	json_t *j = json_deep_copy(a);
	if (apply_jsonpatch(&j, ops) != 0 || !equiv(j, b)) {
		char *dops = dump(ops), *dj = dump(j);
		fail_msg("%s: JSON Patch of diff(a,b) on a != b\n a=%s\n b=%s\n ops=%s\n got=%s", label, da, db,
			 dops, dj);
	}
	json_decref(j);
	assert_int_equal(ct_diff(a, a, &self, &err), CT_OK);
	assert_int_equal(json_array_size(self), 0);
	/* Inputs are const: nothing may have changed them. */
	char *da2 = dump(a), *db2 = dump(b);
	assert_string_equal(da, da2);
	assert_string_equal(db, db2);
	free(da2);
	free(db2);
	free(da);
	free(db);
	json_decref(d);
	json_decref(p);
	json_decref(r);
	json_decref(ops);
	json_decref(self);
}

/* ---- vectors from the real dictdiffer ---- */

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
		fail_msg("%s: line %d: %s", path, jerr.line, jerr.text);
	assert_true(json_array_size(v) >= 300);
	return v;
}

static void test_vectors_match_dictdiffer(void **state)
{
	json_t *vecs = load_vectors();
	size_t deviations = 0;
	for (size_t i = 0; i < json_array_size(vecs); i++) {
		const json_t *v = json_array_get(vecs, i);
		const json_t *a = json_object_get(v, "a"), *b = json_object_get(v, "b");
		const json_t *want = json_object_get(v, "diff");
		json_t *got = NULL;
		ct_error err;
		assert_non_null(a);
		assert_non_null(b);
		assert_non_null(want);
		if (ct_diff(a, b, &got, &err) != CT_OK)
			fail_msg("vector %zu: ct_diff: %s", i, err.message);
		if (!json_equal(got, (json_t *)want)) {
			char *sa = dump(a), *sb = dump(b), *sw = dump(want), *sg = dump(got);
			fail_msg("vector %zu:\n a=%s\n b=%s\n dictdiffer=%s\n ct_diff   =%s", i, sa, sb, sw, sg);
		}
		/* A marked vector shows the deviation is in effect: unmodified
		 * dictdiffer gave something else. */
		const json_t *raw = json_object_get(v, "dictdiffer_diff");
		if (raw) {
			assert_non_null(json_object_get(v, "deviation"));
			assert_false(json_equal(got, (json_t *)raw));
			deviations++;
		}
		json_decref(got);
	}
	assert_true(deviations >= 10);
	json_decref(vecs);
}

static void test_vectors_roundtrip(void **state)
{
	json_t *vecs = load_vectors();
	char label[64];
	for (size_t i = 0; i < json_array_size(vecs); i++) {
		const json_t *v = json_array_get(vecs, i);
		snprintf(label, sizeof(label), "vector %zu", i);
		check_roundtrip(json_object_get(v, "a"), json_object_get(v, "b"), label);
	}
	json_decref(vecs);
}

/* ---- pseudo-random documents ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64: deterministic, good enough to pick shapes. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t rn(size_t n)
{
	return (size_t)(rnd() % n);
}

static const char *const KEYS[] = {"a", "b", "c", "id", "x", "0", "1", "", ".", "a.b", "..", "$set",
				   "$", "~", "/", "~1", "a/b", "ключ", "键", "😀", "e\xcc\x81", " "};
static const char *const STRS[] = {"", "a", "b", "hello", "日本語", "😀", "e\xcc\x81", "line\nbreak", "1"};

static json_t *rand_scalar(void)
{
	static const json_int_t ints[] = {0, 1, -1, 42, 9007199254740992LL, 9007199254740993LL,
					  INT64_MAX, INT64_MIN, INT64_MAX - 1, 1000000000000000000LL};
	static const double reals[] = {0.0, -0.0, 1.0, 0.1, 0.30000000000000004, 1e-300, 5e-324,
				       1.7976931348623157e308, 9007199254740992.0, -2.5};
	switch (rn(9)) {
	case 0: return json_null();
	case 1: return json_boolean(rn(2));
	case 2: return json_integer(ints[rn(ARRAY_LEN(ints))]);
	case 3: return json_integer((json_int_t)rn(2001) - 1000);
	case 4: return json_real(reals[rn(ARRAY_LEN(reals))]);
	case 5: return json_real((double)(int64_t)(rnd() >> 11) / 1024.0);
	default: return json_string(STRS[rn(ARRAY_LEN(STRS))]);
	}
}

static json_t *rand_value(int depth);

static json_t *rand_object(int depth, size_t min)
{
	json_t *o = json_object();
	size_t n = min + rn(6);
	for (size_t i = 0; i < n; i++) {
		/* Separate statements: argument evaluation order differs between
		 * compilers, and the sequence of documents should not. */
		const char *k = KEYS[rn(ARRAY_LEN(KEYS))];
		json_object_set_new(o, k, rand_value(depth));
	}
	return o;
}

static json_t *rand_value(int depth)
{
	size_t k = rn(10);
	if (depth <= 0 || k < 5)
		return rand_scalar();
	if (k < 8)
		return rand_object(depth - 1, 0);
	json_t *a = json_array();
	for (size_t i = rn(5); i > 0; i--)
		json_array_append_new(a, rand_value(depth - 1));
	return a;
}

/* The next double away from zero (nextafter() without libm, which the
 * test target does not link). */
static double next_up(double x)
{
	uint64_t u;
	memcpy(&u, &x, sizeof(u));
	u++;
	memcpy(&x, &u, sizeof(x));
	return x;
}

/* A number near v that the diff may or may not call equal. */
static json_t *near(const json_t *v)
{
	if (json_is_real(v)) {
		double x = json_real_value(v);
		switch (rn(3)) {
		case 0: return json_real(isfinite(next_up(x)) ? next_up(x) : x);
		case 1: return json_real(isfinite(x * (1 + 4 * DBL_EPSILON)) ? x * (1 + 4 * DBL_EPSILON) : -x);
		default: return fabs(x) < 1e18 ? json_integer((json_int_t)x) : json_real(-x);
		}
	}
	json_int_t i = json_integer_value(v);
	switch (rn(3)) {
	case 0: return json_real((double)i);
	case 1: return json_integer(i == INT64_MAX ? i - 1 : i + 1);
	default: return json_true();
	}
}

static json_t *mutate(const json_t *v, int depth)
{
	double p = (double)rn(1000) / 1000.0;
	if (p < 0.08)
		return rand_value(depth);
	if (json_is_object(v)) {
		json_t *out = json_object();
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x) {
			size_t q = rn(100);
			if (q < 12)
				continue;
			json_object_set_new(out, k, q < 55 ? mutate(x, depth - 1) : json_deep_copy(x));
		}
		for (size_t n = rn(5); n >= 3; n--) {
			const char *nk = KEYS[rn(ARRAY_LEN(KEYS))];
			json_object_set_new(out, nk, rand_value(depth));
		}
		return out;
	}
	if (json_is_array(v)) {
		json_t *out = json_array();
		for (size_t i = 0; i < json_array_size(v); i++) {
			const json_t *x = json_array_get(v, i);
			json_array_append_new(out, rn(10) < 4 ? mutate(x, depth - 1) : json_deep_copy(x));
		}
		size_t q = rn(4);
		if (q == 0)
			for (size_t n = 1 + rn(3); n > 0; n--)
				json_array_append_new(out, rand_value(depth));
		else if (q == 1 && json_array_size(out))
			for (size_t n = rn(json_array_size(out)) + 1; n > 0; n--)
				json_array_remove(out, json_array_size(out) - 1);
		return out;
	}
	if (json_is_number(v) && rn(2))
		return near(v);
	if (rn(10) < 6)
		return rand_scalar();
	return json_deep_copy(v);
}

static void test_random_roundtrip(void **state)
{
	char label[64];
	rng_state = 20240617;
	for (int i = 0; i < 3000; i++) {
		json_t *a = i % 7 == 0 ? rand_value(4) : rand_object(1 + (int)rn(5), 1);
		json_t *b = i % 50 == 0 ? json_deep_copy(a) : mutate(a, 4);
		assert_non_null(a);
		assert_non_null(b);
		snprintf(label, sizeof(label), "random pair %d", i);
		check_roundtrip(a, b, label);
		json_decref(a);
		json_decref(b);
	}
}

/* ---- hand-written cases ---- */

static void assert_diff(const char *a, const char *b, const char *want)
{
	json_t *ja = J(a), *jb = J(b), *jw = J(want), *got = NULL;
	ct_error err;
	assert_int_equal(ct_diff(ja, jb, &got, &err), CT_OK);
	if (!json_equal(got, jw)) {
		char *s = dump(got);
		fail_msg("diff(%s, %s)\n want %s\n got  %s", a, b, want, s);
	}
	check_roundtrip(ja, jb, a);
	json_decref(ja);
	json_decref(jb);
	json_decref(jw);
	json_decref(got);
}

static void test_paths(void **state)
{
	/* Empty-string keys: array paths, never the ambiguous dotted text. */
	assert_diff("{\"\":1}", "{\"\":2}", "[[\"change\",[\"\"],[1,2]]]");
	assert_diff("{\"\":{\"a\":1}}", "{\"\":{\"a\":2}}", "[[\"change\",[\"\",\"a\"],[1,2]]]");
	assert_diff("{\"a\":{\"\":1}}", "{\"a\":{\"\":2}}", "[[\"change\",[\"a\",\"\"],[1,2]]]");
	assert_diff("{\"\":{}}", "{\"\":{\"x\":1}}", "[[\"add\",[\"\"],[[\"x\",1]]]]");
	/* Keys containing '.': array paths (dictdiffer does the same). */
	assert_diff("{\"a.b\":1}", "{\"a.b\":2}", "[[\"change\",[\"a.b\"],[1,2]]]");
	assert_diff("{\"x\":{\"a.b\":{\"c\":1}}}", "{\"x\":{\"a.b\":{\"c\":2}}}",
		    "[[\"change\",[\"x\",\"a.b\",\"c\"],[1,2]]]");
	assert_diff("{\".\":{}}", "{\".\":{\"k\":0}}", "[[\"add\",[\".\"],[[\"k\",0]]]]");
	/* Plain keys, digits and '$' are dotted; indices force array form. */
	assert_diff("{\"a\":{\"$set\":{\"0\":1}}}", "{\"a\":{\"$set\":{\"0\":2}}}",
		    "[[\"change\",\"a.$set.0\",[1,2]]]");
	assert_diff("{\"l\":[{\"x\":1}]}", "{\"l\":[{\"x\":2}]}", "[[\"change\",[\"l\",0,\"x\"],[1,2]]]");
	/* Root. */
	assert_diff("1", "\"x\"", "[[\"change\",\"\",[1,\"x\"]]]");
	assert_diff("{\"a\":1}", "[1]", "[[\"change\",\"\",[{\"a\":1},[1]]]]");
	assert_diff("{}", "{\"a\":{\"b\":\"c\"}}", "[[\"add\",\"\",[[\"a\",{\"b\":\"c\"}]]]]");
}

static void test_order_and_lists(void **state)
{
	/* Intersection first (a's order), then adds (b's order), then removes. */
	assert_diff("{\"z\":1,\"a\":{\"k\":1},\"m\":2,\"q\":0}", "{\"n\":5,\"a\":{\"k\":2},\"z\":3,\"b\":6}",
		    "[[\"change\",\"z\",[1,3]],[\"change\",\"a.k\",[1,2]],"
		    "[\"add\",\"\",[[\"n\",5],[\"b\",6]]],[\"remove\",\"\",[[\"m\",2],[\"q\",0]]]]");
	assert_diff("{\"l\":[0,1,2,3,4]}", "{\"l\":[0,9]}",
		    "[[\"change\",[\"l\",1],[1,9]],[\"remove\",\"l\",[[4,4],[3,3],[2,2]]]]");
	assert_diff("{\"l\":[]}", "{\"l\":[\"x\",\"y\"]}", "[[\"add\",\"l\",[[0,\"x\"],[1,\"y\"]]]]");
}

static void test_values(void **state)
{
	/* Deviation: booleans are not numbers (dictdiffer: True == 1). */
	assert_diff("{\"n\":true}", "{\"n\":1}", "[[\"change\",\"n\",[true,1]]]");
	assert_diff("{\"n\":0.0}", "{\"n\":false}", "[[\"change\",\"n\",[0.0,false]]]");
	/* Deviation: integers compare exactly, even past 2^53. */
	assert_diff("{\"n\":9007199254740993}", "{\"n\":9007199254740992}",
		    "[[\"change\",\"n\",[9007199254740993,9007199254740992]]]");
	assert_diff("{\"n\":9223372036854775807}", "{\"n\":9223372036854775806}",
		    "[[\"change\",\"n\",[9223372036854775807,9223372036854775806]]]");
	/* As dictdiffer: 1 == 1.0, reals within DBL_EPSILON relative are equal,
	 * and a real next to an int compares through doubles. */
	assert_diff("{\"n\":1}", "{\"n\":1.0}", "[]");
	assert_diff("{\"n\":0}", "{\"n\":-0.0}", "[]");
	assert_diff("{\"n\":1.0}", "{\"n\":1.0000000000000002}", "[]");
	assert_diff("{\"n\":1.0}", "{\"n\":1.000000000000001}", "[[\"change\",\"n\",[1.0,1.000000000000001]]]");
	assert_diff("{\"n\":9007199254740993}", "{\"n\":9007199254740992.0}", "[]");
	assert_diff("{\"n\":0.30000000000000004}", "{\"n\":0.3}", "[]");
	assert_diff("{\"n\":null}", "{\"n\":0}", "[[\"change\",\"n\",[null,0]]]");
	assert_diff("{\"s\":\"a\\u0000b\"}", "{\"s\":\"a\\u0000c\"}",
		    "[[\"change\",\"s\",[\"a\\u0000b\",\"a\\u0000c\"]]]");
	assert_diff("{\"t\":{}}", "{\"t\":[]}", "[[\"change\",\"t\",[{},[]]]]");
}

static void expect_conflict(const char *diff, const char *doc, int revert, const char *needle)
{
	json_t *d = J(diff), *x = J(doc), *out = (json_t *)1;
	ct_error err;
	ct_error_clear(&err);
	int rc = revert ? ct_revert(d, x, &out, &err) : ct_patch(d, x, &out, &err);
	if (rc != CT_ECONFLICT)
		fail_msg("%s on %s: rc %d, want CT_ECONFLICT (%s)", diff, doc, rc, err.message);
	assert_int_equal(err.code, CT_ECONFLICT);
	assert_null(out);
	if (!strstr(err.message, needle))
		fail_msg("message \"%s\" does not name %s", err.message, needle);
	json_decref(d);
	json_decref(x);
}

static void test_conflicts(void **state)
{
	const char *chg = "[[\"change\",\"a.x\",[1,2]]]";
	expect_conflict(chg, "{\"a\":{\"x\":5}}", 0, "\"a.x\"");   /* old value differs */
	expect_conflict(chg, "{\"a\":{\"y\":1}}", 0, "\"a.x\"");   /* no such key */
	expect_conflict(chg, "{\"b\":1}", 0, "\"a.x\"");           /* no parent */
	expect_conflict(chg, "{\"a\":[1]}", 0, "\"a.x\"");         /* parent is an array */
	expect_conflict(chg, "{\"a\":{\"x\":1}}", 1, "\"a.x\"");   /* revert needs the new value */
	expect_conflict("[[\"add\",\"\",[[\"k\",1]]]]", "{\"k\":1}", 0, "already present");
	expect_conflict("[[\"remove\",[\"\",\"q\"],[[\"k\",1]]]]", "{\"\":{\"q\":{\"k\":2}}}", 0,
			"[\"\",\"q\"]");
	expect_conflict("[[\"add\",\"l\",[[3,1]]]]", "{\"l\":[0,1]}", 0, "past the end");
	expect_conflict("[[\"remove\",\"l\",[[2,1]]]]", "{\"l\":[0,1]}", 0, "past the end");
	expect_conflict("[[\"change\",[\"l\",\"x\"],[1,2]]]", "{\"l\":[1]}", 0, "not an index");
	expect_conflict("[[\"change\",\"\",[1,2]]]", "3", 0, "old value");
	/* The message carries the entry number too. */
	expect_conflict("[[\"change\",\"a\",[1,2]],[\"change\",\"b\",[1,2]]]", "{\"a\":1,\"b\":9}", 0, "entry 1");

	/* What does apply, including dictdiffer-written dotted paths into lists. */
	json_t *d = J("[[\"change\",\"l.1\",[1,5]],[\"change\",[\"m\",\"0\"],[0,7]]]");
	json_t *x = J("{\"l\":[0,1],\"m\":[0]}"), *out = NULL;
	ct_error err;
	assert_int_equal(ct_patch(d, x, &out, &err), CT_OK);
	json_t *want = J("{\"l\":[0,5],\"m\":[7]}");
	assert_true(json_equal(out, want));
	json_decref(want);
	json_decref(out);
	json_decref(d);
	json_decref(x);
}

static void test_invalid(void **state)
{
	json_t *a = J("{\"a\":1}"), *d = J("[]"), *out = (json_t *)1;
	ct_error err;
	assert_int_equal(ct_diff(NULL, a, &out, &err), CT_EINVAL);
	assert_null(out);
	assert_int_equal(err.code, CT_EINVAL);
	assert_int_equal(ct_diff(a, NULL, &out, NULL), CT_EINVAL);
	assert_int_equal(ct_diff(a, a, NULL, &err), CT_EINVAL);
	out = (json_t *)1;
	assert_int_equal(ct_patch(NULL, a, &out, &err), CT_EINVAL);
	assert_null(out);
	assert_int_equal(ct_patch(d, NULL, &out, &err), CT_EINVAL);
	assert_int_equal(ct_patch(d, a, NULL, &err), CT_EINVAL);
	assert_int_equal(ct_revert(NULL, a, &out, &err), CT_EINVAL);
	assert_int_equal(ct_revert(d, NULL, &out, &err), CT_EINVAL);
	assert_int_equal(ct_revert(d, a, NULL, &err), CT_EINVAL);
	assert_int_equal(ct_diff_to_jsonpatch(NULL, &out, &err), CT_EINVAL);
	assert_int_equal(ct_diff_to_jsonpatch(d, NULL, &err), CT_EINVAL);

	/* Not a diff: CT_EINVAL naming the entry, from all three readers. */
	static const char *const bad[] = {
		"{}", "[1]", "[[\"add\",\"\"]]", "[[\"move\",\"\",[]]]", "[[\"change\",\"a\",[1]]]",
		"[[\"change\",1,[1,2]]]", "[[\"change\",[\"a\",-1],[1,2]]]", "[[\"change\",[true],[1,2]]]",
		"[[\"add\",\"\",[[\"k\"]]]]", "[[\"remove\",\"\",[[null,1]]]]", "[[\"add\",\"\",{}]]",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_t *bd = J(bad[i]);
		out = (json_t *)1;
		if (ct_patch(bd, a, &out, &err) != CT_EINVAL)
			fail_msg("patch accepted %s", bad[i]);
		assert_null(out);
		assert_int_equal(ct_revert(bd, a, &out, &err), CT_EINVAL);
		assert_int_equal(ct_diff_to_jsonpatch(bd, &out, &err), CT_EINVAL);
		assert_non_null(strstr(err.message, "diff"));
		json_decref(bd);
	}
	json_decref(a);
	json_decref(d);
}

static json_t *nest(size_t depth, json_t *leaf)
{
	json_t *v = leaf;
	for (size_t i = 0; i < depth; i++) {
		json_t *arr = json_array();
		json_array_append_new(arr, v);
		v = arr;
	}
	return v;
}

static void test_depth_limit(void **state)
{
	json_t *ok_a = nest(CT_DIFF_MAX_DEPTH, json_integer(1)), *ok_b = nest(CT_DIFF_MAX_DEPTH, json_integer(2));
	json_t *deep_a = nest(CT_DIFF_MAX_DEPTH + 1, json_integer(1));
	json_t *deep_b = nest(CT_DIFF_MAX_DEPTH + 1, json_integer(2));
	json_t *empty = json_object(), *holder = json_object(), *out = NULL, *p = NULL;
	ct_error err;

	assert_int_equal(ct_diff(ok_a, ok_b, &out, &err), CT_OK);
	assert_int_equal(json_array_size(out), 1);
	assert_int_equal(ct_patch(out, ok_a, &p, &err), CT_OK);
	assert_true(json_equal(p, ok_b));
	json_decref(p);
	json_decref(out);
	assert_int_equal(ct_diff(deep_a, deep_b, &out, &err), CT_ELIMIT);
	assert_null(out);
	assert_non_null(strstr(err.message, "512"));
	assert_int_equal(ct_diff(deep_a, empty, &out, &err), CT_ELIMIT);  /* in a "change" */
	json_object_set(holder, "x", deep_a);
	assert_int_equal(ct_diff(empty, holder, &out, &err), CT_ELIMIT);  /* in an "add" */
	assert_int_equal(ct_diff(holder, empty, &out, &err), CT_ELIMIT);  /* in a "remove" */
	json_t *d = J("[]");
	assert_int_equal(ct_patch(d, deep_a, &out, &err), CT_ELIMIT);
	json_decref(d);
	d = json_pack("[[s,s,[[s,O]]]]", "add", "", "y", deep_a);
	assert_int_equal(ct_patch(d, empty, &out, &err), CT_ELIMIT);
	assert_int_equal(ct_diff_to_jsonpatch(d, &out, &err), CT_ELIMIT);
	json_decref(d);
	json_decref(ok_a);
	json_decref(ok_b);
	json_decref(deep_a);
	json_decref(deep_b);
	json_decref(empty);
	json_decref(holder);
}

static void test_jsonpatch(void **state)
{
	json_t *a = J("{\"a/b~c\":{\"\":[1,2,3]},\"k\":1,\"d\":{\"x.y\":0}}");
	json_t *b = J("{\"a/b~c\":{\"\":[1]},\"k\":2,\"n\":null,\"d\":{}}");
	json_t *d = NULL, *ops = NULL;
	ct_error err;
	assert_int_equal(ct_diff(a, b, &d, &err), CT_OK);
	assert_int_equal(ct_diff_to_jsonpatch(d, &ops, &err), CT_OK);
	json_t *want = J("[{\"op\":\"remove\",\"path\":\"/a~1b~0c//2\"},{\"op\":\"remove\",\"path\":\"/a~1b~0c//1\"},"
			 "{\"op\":\"replace\",\"path\":\"/k\",\"value\":2},"
			 "{\"op\":\"remove\",\"path\":\"/d/x.y\"},"
			 "{\"op\":\"add\",\"path\":\"/n\",\"value\":null}]");
	if (!json_equal(ops, want)) {
		char *s = dump(ops), *sd = dump(d);
		fail_msg("jsonpatch: %s\n(diff %s)", s, sd);
	}
	json_decref(want);
	json_decref(ops);
	json_decref(d);
	/* Root change: replace at "". */
	d = J("[[\"change\",\"\",[1,[2]]]]");
	assert_int_equal(ct_diff_to_jsonpatch(d, &ops, &err), CT_OK);
	want = J("[{\"op\":\"replace\",\"path\":\"\",\"value\":[2]}]");
	assert_true(json_equal(ops, want));
	json_decref(want);
	json_decref(ops);
	json_decref(d);
	json_decref(a);
	json_decref(b);
}

/* Not a pass/fail bound (machines and valgrind differ): prints the figure
 * the consumer's budget is about, parse + diff of a ~1 KB document. */
static void test_speed_report(void **state)
{
	char a[2048], b[2048];
	size_t n = 0;
	n += (size_t)snprintf(a + n, sizeof(a) - n, "{\"_id\":\"doc-1\",\"user\":{\"name\":\"Ada\",\"email\":\"ada@example.org\"},\"items\":[");
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(a + n, sizeof(a) - n, "%s{\"sku\":\"SKU-%04d\",\"qty\":%d,\"price\":%d.5}",
				      i ? "," : "", i, i + 1, i * 3);
	snprintf(a + n, sizeof(a) - n, "],\"status\":\"open\",\"total\":1234.5,\"tags\":[\"x\",\"y\"],\"v\":1}");
	memcpy(b, a, sizeof(a));
	char *s = strstr(b, "\"open\"");
	memcpy(s, "\"shut\"", 6);
	s = strstr(b, "\"qty\":5");
	s[6] = '9';
	size_t la = strlen(a), lb = strlen(b);
	int iters = 2000;
	int64_t t0 = ct_test_now_us();
	for (int i = 0; i < iters; i++) {
		json_t *ja = json_loadb(a, la, JSON_REJECT_DUPLICATES, NULL);
		json_t *jb = json_loadb(b, lb, JSON_REJECT_DUPLICATES, NULL);
		json_t *d = NULL;
		assert_int_equal(ct_diff(ja, jb, &d, NULL), CT_OK);
		assert_int_equal(json_array_size(d), 2);
		json_decref(d);
		json_decref(ja);
		json_decref(jb);
	}
	int64_t t1 = ct_test_now_us();
	json_t *ja = json_loadb(a, la, 0, NULL), *jb = json_loadb(b, lb, 0, NULL);
	int64_t t2 = ct_test_now_us();
	for (int i = 0; i < iters; i++) {
		json_t *d = NULL;
		ct_diff(ja, jb, &d, NULL);
		json_decref(d);
	}
	int64_t t3 = ct_test_now_us();
	for (int i = 0; i < iters; i++)
		json_decref(json_loadb(b, lb, JSON_REJECT_DUPLICATES, NULL));
	int64_t t4 = ct_test_now_us();
	json_decref(ja);
	json_decref(jb);
	print_message("speed: %zu-byte docs: parse both + diff %.2f us; parse one %.2f us; diff alone %.2f us\n",
		      la, (double)(t1 - t0) / iters, (double)(t4 - t3) / iters, (double)(t3 - t2) / iters);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_match_dictdiffer),
		cmocka_unit_test(test_vectors_roundtrip),
		cmocka_unit_test(test_random_roundtrip),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_order_and_lists),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_jsonpatch),
		cmocka_unit_test(test_speed_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
