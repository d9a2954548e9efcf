/*
 * test_storage_client.c - the storage module's MongoDB plumbing without a
 * server: the error mapper never passes credentials on (a URI echoed by
 * libmongoc or a server), and the client constructor's errors never quote
 * the URI.
 */
#include "testutil.h"

#include "cts_mongo.h"

#include <string.h>

static void test_error_mapper_redacts_credentials(void **state)
{
	bson_error_t e = {.domain = 1, .code = 13053};
	ct_error err;
	snprintf(e.message, sizeof(e.message), "No suitable servers found: mongodb://ann:s3cr%%40t@db1:27017,db2/x?"
		 "authSource=admin and mongodb+srv://bob:pw@c.example.net/ (tried)");
	assert_int_equal(cts_mongo_error(&err, "ping", &e), CT_EMONGO);
	assert_null(strstr(err.message, "s3cr"));
	assert_null(strstr(err.message, "ann"));
	assert_null(strstr(err.message, "bob:pw"));
	assert_non_null(strstr(err.message, "mongodb://***@db1:27017,db2/x"));
	assert_non_null(strstr(err.message, "mongodb+srv://***@c.example.net/"));
	assert_non_null(strstr(err.message, "(code 13053)"));
	/* no URI: the message as it is */
	snprintf(e.message, sizeof(e.message), "E11000 duplicate key error");
	cts_mongo_error(&err, "insert", &e);
	assert_string_equal(err.message, "insert: E11000 duplicate key error (code 13053)");
}

static void test_client_errors_do_not_quote_the_uri(void **state)
{
	ct_error err;
	assert_null(cts_client_new("mongodb://ann:s3cret@h/?appname=x&unknownOption=&w=-7", "t", 0, &err));
	assert_int_equal(err.code, CT_ECONFIG);
	assert_null(strstr(err.message, "s3cret"));
	mongoc_client_t *c = cts_client_new("mongodb://127.0.0.1:1/", "t", 100, &err);
	assert_non_null(c); /* lazy: no I/O */
	mongoc_client_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_mapper_redacts_credentials),
		cmocka_unit_test(test_client_errors_do_not_quote_the_uri),
	};
	cts_global_init(NULL);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	cts_global_cleanup();
	return rc;
}
