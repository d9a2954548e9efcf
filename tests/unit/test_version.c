/*
 * test_version.c - changetrail/version.h, generated from the CMake project
 * version, agrees with the library (ct_version()) and its numbers compare as
 * versions do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "changetrail/common.h"
#include "changetrail/version.h"

static void test_header_matches_library(void **state)
{
	assert_string_equal(ct_version(), CT_VERSION_STRING);
}

static void test_numbers_match_string(void **state)
{
	char s[64];
	snprintf(s, sizeof(s), "%d.%d.%d", CT_VERSION_MAJOR, CT_VERSION_MINOR, CT_VERSION_PATCH);
	assert_string_equal(s, CT_VERSION_STRING);
	assert_int_equal(CT_VERSION, (CT_VERSION_MAJOR << 16) | (CT_VERSION_MINOR << 8) | CT_VERSION_PATCH);
}

static void test_at_least_compares(void **state)
{
	assert_true(CT_VERSION_AT_LEAST(0, 0, 0));
	assert_true(CT_VERSION_AT_LEAST(CT_VERSION_MAJOR, CT_VERSION_MINOR, CT_VERSION_PATCH));
	assert_false(CT_VERSION_AT_LEAST(CT_VERSION_MAJOR, CT_VERSION_MINOR, CT_VERSION_PATCH + 1));
	assert_false(CT_VERSION_AT_LEAST(CT_VERSION_MAJOR + 1, 0, 0));
	/* a minor step outweighs any patch number */
	assert_true(CT_VERSION_ENCODE(0, 2, 0) > CT_VERSION_ENCODE(0, 1, 99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_matches_library),
		cmocka_unit_test(test_numbers_match_string),
		cmocka_unit_test(test_at_least_compares),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
