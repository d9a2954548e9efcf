/*
 * test_jsonparse.c - the consumer's fast JSON parser (common/jsonparse.c)
 * builds exactly jansson's tree for what it accepts, never accepts what
 * jansson (strict, duplicate keys refused) or the bounds of ct_limits refuse,
 * and does accept the events users send, or the fast path would be no path.
 */
#include "testutil.h"
#include "json_same.h"
#include "ct_jsonparse.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses s[0..n) both ways; fails the test if the fast path accepted what
 * jansson would not, or built another tree. Returns whether it accepted. */
static int fast_ok(const char *s, size_t n, const ct_limits *l)
{
	json_t *fast = ct_json_parse_fast(s, n, l);
	json_t *slow = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	size_t keys = 0;
	int slow_ok = slow && json_is_object(slow) && ct_json_within(slow, l, 0, &keys);
	if (fast && !slow_ok)
		fail_msg("fast path accepted <%.*s>, jansson or the bounds refuse it", (int)n, s);
	if (fast && !ct_json_identical(fast, slow))
		fail_msg("fast path built another tree for <%.*s>", (int)n, s);
	int ok = fast != NULL;
	json_decref(fast);
	json_decref(slow);
	return ok;
}

static void defaults(ct_limits *l)
{
	ct_limits_default(l);
}

static void test_accepts_what_jansson_accepts(void **state)
{
	(void)state;
	const char *cases[] = {
		"{}", " {\"a\":1} ", "\t\r\n{\"a\" : [ 1 , 2 , { \"b\" : null } ] , \"c\":true,\"d\":false}\n",
		"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0041\"}",
		"{\"n\":-0,\"r\":1.5e-3,\"R\":-2E+10,\"z\":0.0,\"nz\":-0.0,\"p\":1e+2}",
		"{\"big\":9223372036854775807,\"small\":-9223372036854775808}",
		"{\"u\":\"caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf\"}",
		"{\"\":\"\",\"$x\":{\".\":[]},\"a.b\":[[]],\"e\":{}}",
		"{\"tiny\":1e-400,\"huge\":1.7976931348623157e308,\"pi\":3.141592653589793238462643383279}",
		"{\"k\\u00e9y\\n\":\"v\\u00e9\",\"k2\\t\":{\"in\\\"ner\":\"x\\\\y\"}}",
		"{\"long\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789\"}",
		"{\"a\":1,\"b\":{\"a\":2},\"c\":[{\"a\":3},{\"a\":4}]}",
		"{\"i\":12345678901234567,\"r\":123456789012345678901234567890.5}",
	};
	ct_limits l;
	defaults(&l);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!fast_ok(cases[i], strlen(cases[i]), &l))
			fail_msg("case %zu refused by the fast path: <%s>", i, cases[i]);
	/* the length is honoured: no read past n, no NUL needed */
	assert_true(fast_ok("{\"a\":1}garbage", 7, &l));
	assert_true(fast_ok("{\"a\":\"xy\"}", 10, &l));
	assert_false(fast_ok("{\"a\":\"xy\"}", 9, &l));
	/* -0 is jansson's integer 0, -0.0 a real */
	json_t *v = ct_json_parse_fast("{\"a\":-0,\"b\":-0.0}", 17, &l);
	assert_non_null(v);
	assert_true(json_is_integer(json_object_get(v, "a")));
	assert_true(json_is_real(json_object_get(v, "b")));
	json_decref(v);
}

static void test_refuses_what_jansson_refuses(void **state)
{
	(void)state;
	const char *cases[] = {
		"", " ", "[]", "\"str\"", "1", "null", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}",
		"{\"a\":1 \"b\":2}", "{\"a\":[1,2}", "{\"a\":01}", "{\"a\":-01}", "{\"a\":1.}", "{\"a\":.5}",
		"{\"a\":+1}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":-}", "{\"a\":tru}", "{\"a\":nul}",
		"{\"a\":truex}", "{\"a\":\"x}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12\"}\"",
		"{\"a\":\"\\u0000\"}", "{\"a\\u0000\":1}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\"}",
		"{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\ud800\\\\\"}", "{\"a\":\"\t\"}", "{\"a\":\"\x01\"}",
		"{\"a\":9223372036854775808}", "{\"a\":-9223372036854775809}", "{\"a\":99999999999999999999}",
		"{\"a\":1e400}", "{\"a\":-1e400}", "{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}",
		"{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x98\"}",
		"{\"a\":\"\xe0\x80\x80\"}", "{\"a\":\"\x80\"}", "{} {}", "{}x", "{'a':1}", "{\"a\":1}}",
		"{\"a\":[1]]", "{\"a\":1,\"a\":2}", "{\"x\":{\"b\":1,\"b\":1}}", "{\"a\\u0041\":1,\"aA\":2}",
		"\xef\xbb\xbf{}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":[,1]}", "{\"a\":[1,]}",
	};
	ct_limits l;
	defaults(&l);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (fast_ok(cases[i], strlen(cases[i]), &l))
			fail_msg("case %zu accepted by the fast path: <%s>", i, cases[i]);
	/* raw NUL bytes anywhere */
	assert_false(fast_ok("{\"a\":1\0}", 8, &l));
	assert_false(fast_ok("{\"a\":\"\0\"}", 9, &l));
	assert_false(fast_ok("{}\0", 3, &l));
	assert_null(ct_json_parse_fast(NULL, 0, &l));
}

/* Strings long enough for the 16-byte scan, with every kind of byte at
 * every position: accepted into jansson's tree, or refused like jansson. */
static void test_string_bytes_every_position(void **state)
{
	(void)state;
	static const char *const specials[] = {"\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00",
					       "\xc3\xa9", "\xe2\x98\x83", "\x7f", "~", "\x01", "\x1f", "\xff", "\\x",
					       "\xc3"};
	static const int ok[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
	ct_limits l;
	defaults(&l);
	for (size_t len = 0; len <= 40; len++) {
		for (size_t pos = 0; pos <= len; pos++) {
			for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
				char text[256];
				int n = snprintf(text, sizeof(text), "{\"k\":\"%.*s%s%.*s\"}", (int)pos,
						 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", specials[k], (int)(len - pos),
						 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
				if (fast_ok(text, (size_t)n, &l) != ok[k])
					fail_msg("<%s>: fast path says %d", text, !ok[k]);
			}
		}
	}
}

static void test_bounds_at_and_over(void **state)
{
	(void)state;
	ct_limits l;
	defaults(&l);
	l.max_depth = 3;
	assert_true(fast_ok("{\"a\":{\"b\":[1]}}", 15, &l));
	assert_false(fast_ok("{\"a\":{\"b\":[[1]]}}", 17, &l));
	defaults(&l);
	l.max_keys = 3;
	assert_true(fast_ok("{\"a\":1,\"b\":{\"c\":2}}", 19, &l));
	assert_false(fast_ok("{\"a\":1,\"b\":{\"c\":2,\"d\":3}}", 25, &l));
	defaults(&l);
	l.max_array_items = 2;
	assert_true(fast_ok("{\"a\":[1,2],\"b\":[3,4]}", 21, &l));
	assert_false(fast_ok("{\"a\":[1,2,3]}", 13, &l));
	defaults(&l);
	l.max_string_bytes = 3;
	assert_true(fast_ok("{\"abc\":\"abc\"}", 13, &l));
	assert_false(fast_ok("{\"a\":\"abcd\"}", 12, &l));
	assert_false(fast_ok("{\"abcd\":1}", 10, &l));
	/* decoded bytes count, not escaped text */
	assert_true(fast_ok("{\"a\":\"\\u00e9a\"}", 15, &l));
	assert_false(fast_ok("{\"a\":\"\\u00e9\\u00e9\"}", 20, &l));
	/* depth the fast path leaves to jansson, whatever max_depth says */
	defaults(&l);
	l.max_depth = 2048;
	char deep[2 * 300 + 16];
	size_t n = 0;
	memcpy(deep, "{\"a\":", 5);
	n = 5;
	for (int i = 0; i < 300; i++)
		deep[n++] = '[';
	for (int i = 0; i < 300; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	assert_false(fast_ok(deep, n, &l));
	n = 5;
	for (int i = 0; i < 200; i++)
		deep[n++] = '[';
	for (int i = 0; i < 200; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	assert_true(fast_ok(deep, n, &l));
}

/* Every valid example event takes the fast path, and so does the
 * benchmarks' shape: otherwise the fast path would be dead code. */
static void test_example_events_take_the_fast_path(void **state)
{
	(void)state;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", ct_test_source_path("schemas/examples/valid"));
	DIR *dh = opendir(dir);
	assert_non_null(dh);
	struct dirent *de;
	int count = 0;
	ct_limits l;
	defaults(&l);
	while ((de = readdir(dh))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		size_t len;
		char *text = ct_test_read_file(path, &len);
		assert_non_null(text);
		if (!fast_ok(text, len, &l))
			fail_msg("%s: refused by the fast path", de->d_name);
		free(text);
		count++;
	}
	closedir(dh);
	assert_true(count >= 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_what_jansson_accepts),
		cmocka_unit_test(test_refuses_what_jansson_refuses),
		cmocka_unit_test(test_string_bytes_every_position),
		cmocka_unit_test(test_bounds_at_and_over),
		cmocka_unit_test(test_example_events_take_the_fast_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
