/*
 * test_error.c - error codes have names, ct_error is filled as documented.
 */
#include "testutil.h"
#include "ct_internal.h"

#include <stdio.h>
#include <string.h>

static void test_strerror_names_every_code(void **state)
{
	for (int c = CT_OK; c >= CT_ECONFIG; c--)
		assert_string_not_equal(ct_strerror(c), "unknown error");
	assert_string_equal(ct_strerror(12345), "unknown error");
	assert_string_equal(ct_strerror(CT_ELIMIT), "limit exceeded");
}

static void test_error_set_fills_and_returns_code(void **state)
{
	ct_error err;
	ct_error_clear(&err);
	assert_int_equal(err.code, CT_OK);
	assert_int_equal(ct_error_set(&err, CT_ESCHEMA, "field '%s': %s", "op", "unknown value"),
			 CT_ESCHEMA);
	assert_int_equal(err.code, CT_ESCHEMA);
	assert_string_equal(err.message, "field 'op': unknown value");
	/* NULL is allowed and still returns the code. */
	assert_int_equal(ct_error_set(NULL, CT_EIO, "x"), CT_EIO);
}

static void test_error_message_truncates_safely(void **state)
{
	ct_error err;
	char big[2048];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ct_error_set(&err, CT_ELIMIT, "%s", big);
	assert_int_equal(strlen(err.message), sizeof(err.message) - 1);
}

/* Messages quote user input (a CLI argument, a config value): still one line. */
static void test_error_message_is_one_line(void **state)
{
	ct_error err;
	ct_error_set(&err, CT_EPARSE, "duration '%s': bad", "?\r\n2h\nago");
	assert_string_equal(err.message, "duration '?  2h ago': bad");
}

static void test_version_is_semver(void **state)
{
	int a, b, c;
	assert_int_equal(sscanf(ct_version(), "%d.%d.%d", &a, &b, &c), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror_names_every_code),
		cmocka_unit_test(test_error_set_fills_and_returns_code),
		cmocka_unit_test(test_error_message_truncates_safely),
		cmocka_unit_test(test_error_message_is_one_line),
		cmocka_unit_test(test_version_is_semver),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
