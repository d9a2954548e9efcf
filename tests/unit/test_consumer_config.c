/*
 * test_consumer_config.c - the consumer's INI file, environment overrides,
 * bounds with file:line errors, and redaction of every secret when printed.
 */
#include "testutil.h"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];

static void write_file(const char *text)
{
	snprintf(path, sizeof(path), "/tmp/ctc-config-%ld.ini", (long)getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_defaults(void **state)
{
	ctc_config c;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_string_equal(c.topic, "changetrail.events");
	assert_string_equal(c.dlq_topic, "changetrail.events.dlq");
	assert_string_equal(c.group_id, "changetrail-consumer");
	assert_string_equal(c.mongodb_database, "changetrail");
	assert_string_equal(c.http_listen, "127.0.0.1:9464");
	assert_int_equal(c.batch_size, 500);
	assert_int_equal(c.batch_ms, 200);
	assert_int_equal(c.cache_max_documents, 100000);
	assert_int_equal(c.cache_max_mb, 512);
	assert_int_equal(c.state_flush_ms, 2000);
	assert_int_equal(c.state_flush_max_documents, 20000);
	assert_int_equal(c.shutdown_timeout_ms, 30000);
	assert_int_equal(c.history_ttl_days, 0); /* no TTL unless asked */
	ct_error err;
	/* bootstrap.servers is required */
	assert_int_equal(ctc_config_validate(&c, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "bootstrap.servers"));
	ctc_config_free(&c);
}

static void test_file_and_env(void **state)
{
	ctc_config c;
	ct_error err;
	write_file("# comment\n[kafka]\nbootstrap.servers = 127.0.0.1:1\nsasl.password = hunter2\n"
		   "\n[mongodb]\nuri = mongodb://u:p%40ss@h:1/?authSource=x\ndatabase=hist\nhistory_ttl_days = 365\n"
		   "[consumer]\nbatch_size = 10\n ; another\n[http]\nlisten = 0.0.0.0:0\n");
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_int_equal(ctc_config_load_file(&c, path, &err), 0);
	char *env[] = {"CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=10.0.0.1:9092", "CHANGETRAIL_CONSUMER_BATCH_MS=5",
		       "CHANGETRAIL_MONGODB_DATABASE=other", "PATH=/bin", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_string_equal(ctc_config_kafka_get(&c, "bootstrap.servers"), "10.0.0.1:9092");
	assert_int_equal(c.batch_size, 10);
	assert_int_equal(c.batch_ms, 5);
	assert_string_equal(c.mongodb_database, "other");
	assert_int_equal(c.history_ttl_days, 365);
	assert_string_equal(c.http_listen, "0.0.0.0:0");
	assert_int_equal(ctc_config_validate(&c, &err), 0);

	/* printing never shows a secret */
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	ctc_config_print(&c, out);
	fclose(out);
	assert_null(strstr(buf, "hunter2"));
	assert_null(strstr(buf, "p%40ss"));
	assert_non_null(strstr(buf, "sasl.password = ***"));
	assert_non_null(strstr(buf, "uri = mongodb://***@h:1/?authSource=x"));
	free(buf);
	ctc_config_free(&c);
	unlink(path);
}

static void expect_error(const char *text, const char *needle)
{
	ctc_config c;
	ct_error err;
	write_file(text);
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	int rc = ctc_config_load_file(&c, path, &err);
	if (rc == 0)
		rc = ctc_config_validate(&c, &err);
	assert_int_not_equal(rc, 0);
	if (!strstr(err.message, needle))
		fail_msg("'%s' does not contain '%s'", err.message, needle);
	ctc_config_free(&c);
	unlink(path);
}

/* [anchor] and store_stall_ms: defaults (anchors off), file, environment, checks */
static void test_anchor_and_stall_keys(void **state)
{
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_string_equal(c.anchor_topic, "");
	assert_string_equal(c.anchor_file, "");
	assert_int_equal(c.anchor_interval_ms, 10000);
	assert_int_equal(c.store_stall_ms, 10000);
	ctc_config_free(&c);
	write_file("[kafka]\nbootstrap.servers = h:1\n[consumer]\nstore_stall_ms = 2500\n"
		   "[anchor]\ntopic = changetrail.anchors\nfile = /var/lib/a.jsonl\nhmac_key_file = /etc/k\n");
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_int_equal(ctc_config_load_file(&c, path, &err), 0);
	char *env[] = {"CHANGETRAIL_ANCHOR_INTERVAL_MS=500", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_int_equal(ctc_config_validate(&c, &err), 0);
	assert_int_equal(c.store_stall_ms, 2500);
	assert_int_equal(c.anchor_interval_ms, 500);
	assert_string_equal(c.anchor_topic, "changetrail.anchors");
	assert_string_equal(c.anchor_file, "/var/lib/a.jsonl");
	assert_string_equal(c.anchor_hmac_key_file, "/etc/k");
	ctc_config_free(&c);
	unlink(path);
	expect_error("[kafka]\nbootstrap.servers = h:1\n[anchor]\ntopic = changetrail.events\n",
		     "[anchor] topic must differ");
	expect_error("[kafka]\nbootstrap.servers = h:1\n[anchor]\nhmac_key_file = /k\n", "needs [anchor] topic or file");
	expect_error("[consumer]\nstore_stall_ms = 5\n", "store_stall_ms must be an integer in 100..");
}

static void test_errors_name_file_and_line(void **state)
{
	char where[300];
	expect_error("[consumer]\nbatch_size = 0\n", ":2: [consumer] batch_size must be an integer in 1..10000");
	expect_error("[consumer]\n\nbatch_size = 10001\n", ":3:");
	expect_error("[consumer]\nbatch_size = 12abc\n", "batch_size");
	expect_error("[consumer]\nstate_flush_ms = -1\n", ":2: [consumer] state_flush_ms must be an integer in 0..600000");
	expect_error("[consumer]\nstate_flush_max_documents = 0\n", "state_flush_max_documents");
	expect_error("[consumer]\ncache_max_mb = 0\n", ":2: [consumer] cache_max_mb must be an integer in 1..1048576");
	expect_error("[mongodb]\nhistory_ttl_days = -1\n", ":2: [mongodb] history_ttl_days must be an integer in 0..36500");
	expect_error("[nope]\n", ":1: unknown section [nope]");
	expect_error("[consumer]\ncolour = blue\n", ":2: unknown key 'colour' in [consumer]");
	expect_error("x = 1\n", ":1: key outside of any [section]");
	expect_error("[consumer]\njust words\n", ":2: expected 'key = value'");
	expect_error("[kafka\n", ":1: malformed section header");
	expect_error("[kafka]\nbootstrap.servers=a:1\nenable.auto.commit=true\n", "enable.auto.commit is set by the consumer");
	expect_error("[kafka]\nbootstrap.servers=a:1\n[http]\nlisten=nocolon\n", "[http] listen");
	expect_error("[kafka]\nbootstrap.servers=a:1\n[mongodb]\ndatabase=a.b\n", "[mongodb] database");
	snprintf(where, sizeof(where), "%s", path);
	(void)where;
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_int_equal(ctc_config_load_file(&c, "/nonexistent/x.ini", &err), CT_EIO);
	assert_non_null(strstr(err.message, "/nonexistent/x.ini"));
	char *env[] = {"CHANGETRAIL_CONSUMER_BATCH_SIZE=0", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "environment CHANGETRAIL_CONSUMER_BATCH_SIZE"));
	ctc_config_free(&c);
}

/* [consumer] key_check: strict by default, off allowed, anything else refused naming the key. */
static void test_key_check(void **state)
{
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_string_equal(c.key_check, "strict");
	char *env[] = {"CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1", "CHANGETRAIL_CONSUMER_KEY_CHECK=off", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_string_equal(c.key_check, "off");
	assert_int_equal(ctc_config_validate(&c, &err), 0);
	char *bad[] = {"CHANGETRAIL_CONSUMER_KEY_CHECK=loose", NULL};
	assert_int_equal(ctc_config_apply_env(&c, bad, &err), 0);
	assert_int_equal(ctc_config_validate(&c, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "key_check"));
	ctc_config_free(&c);
}

static void test_redaction(void **state)
{
	char out[256];
	assert_string_equal(ctc_config_redact_uri("mongodb://127.0.0.1:1/", out, sizeof(out)), "mongodb://127.0.0.1:1/");
	assert_string_equal(ctc_config_redact_uri("mongodb://u:p@h/db", out, sizeof(out)), "mongodb://***@h/db");
	assert_string_equal(ctc_config_redact_uri("mongodb://u:p@@x@h,h2/db", out, sizeof(out)), "mongodb://***@h,h2/db");
	assert_string_equal(ctc_config_redact_uri("mongodb+srv://only@h", out, sizeof(out)), "mongodb+srv://***@h");
	assert_true(ctc_config_is_secret_key("sasl.password"));
	assert_true(ctc_config_is_secret_key("ssl.key.password"));
	assert_true(ctc_config_is_secret_key("sasl.oauthbearer.client.secret"));
	assert_false(ctc_config_is_secret_key("bootstrap.servers"));
	assert_false(ctc_config_is_secret_key("sasl.username"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file_and_env),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_redaction),
		cmocka_unit_test(test_key_check),
		cmocka_unit_test(test_anchor_and_stall_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
