/*
 * test_jsonscan.c - the producer's tree-less JSON check accepts and rejects
 * the same documents as the consumer's strict jansson parse (duplicate keys
 * aside), so a document the producer lets through never lands in the DLQ
 * for its syntax.
 */
#include "testutil.h"
#include "ct_jsonscan.h"

#include <jansson.h>

#include <string.h>

static int jansson_ok(const char *s)
{
	json_t *v = json_loadb(s, strlen(s), 0, NULL);
	int ok = v && json_is_object(v);
	json_decref(v);
	return ok;
}

static void test_agrees_with_jansson(void **state)
{
	const char *cases[] = {
		"{}", " {\"a\":1} ", "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}",
		"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}",
		"{\"n\":-0,\"r\":1.5e-3,\"R\":-2E+10,\"z\":0.0}",
		"{\"big\":9223372036854775807,\"small\":-9223372036854775808}",
		"{\"u\":\"caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80\"}",
		"{\"\":\"\",\"$x\":{\".\":[]}}",
		"{\"tiny\":1e-400}",
		/* rejected */
		"", "[]", "\"str\"", "1", "null", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}",
		"{\"a\":1 \"b\":2}", "{\"a\":[1,2}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
		"{\"a\":+1}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"x}",
		"{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\udc00\"}",
		"{\"a\":\"\\ud800\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\t\"}",
		"{\"a\":9223372036854775808}", "{\"a\":-9223372036854775809}", "{\"a\":1e400}",
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x98\"}", "{} {}", "{}x", "{'a':1}",
		"{\"a\":1}}", "{\"a\":[1]]",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ct_error err;
		int mine = ct_json_scan_object(cases[i], strlen(cases[i]), 64, &err) == CT_OK;
		if (mine != jansson_ok(cases[i]))
			fail_msg("case %zu <%s>: scan says %d, jansson says %d (%s)", i, cases[i], mine, !mine,
				 mine ? "" : err.message);
	}
}

static void test_depth_limit_and_messages(void **state)
{
	char deep[2 * 100 + 16];
	size_t n = 0;
	deep[n++] = '{';
	memcpy(deep + n, "\"a\":", 4);
	n += 4;
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	for (int i = 0; i < 100; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	ct_error err;
	assert_int_equal(ct_json_scan_object(deep, n, 64, &err), CT_ELIMIT);
	assert_non_null(strstr(err.message, "deeper than 64"));
	assert_int_equal(ct_json_scan_object(deep, n, 128, &err), CT_OK);

	assert_int_equal(ct_json_scan_object("{\"a\":tru}", 9, 64, &err), CT_EPARSE);
	assert_non_null(strstr(err.message, "byte"));
	assert_int_equal(ct_json_scan_object("[1]", 3, 64, &err), CT_EPARSE);
	assert_non_null(strstr(err.message, "must be a JSON object"));
	/* Length is honoured: no read past n, even without a NUL. */
	assert_int_equal(ct_json_scan_object("{\"a\":1}garbage", 7, 64, &err), CT_OK);
	assert_int_equal(ct_json_scan_object(NULL, 0, 64, &err), CT_EINVAL);
}

static void test_utf8_valid(void **state)
{
	assert_true(ct_utf8_valid("plain", 5));
	assert_true(ct_utf8_valid("caf\xc3\xa9", 5));
	assert_false(ct_utf8_valid("\xff", 1));
	assert_false(ct_utf8_valid("a\0b", 3));
	assert_false(ct_utf8_valid("\xe2\x98", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agrees_with_jansson),
		cmocka_unit_test(test_depth_limit_and_messages),
		cmocka_unit_test(test_utf8_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
