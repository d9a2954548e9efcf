/*
 * test_verify_delete_first.c - a delete received before any insert of its
 * document (the application tracked it before changetrail ran, or the
 * insert went elsewhere) verifies clean: through the real Kafka, consumer
 * and MongoDB, a delete carrying `before` as the first event, the same
 * followed by an insert and an update, and a delete without `before`; then
 * `changetrail verify` (text and --json) reports no problem and the
 * deleted state keeps the document the delete removed.
 */
#include "testutil.h"

#include <jansson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static char topic[128], db[96], config[256], outfile[256];

static void produce(char *const *keys, char *const *values, size_t n)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(keys[i], strlen(keys[i])),
						   RD_KAFKA_V_VALUE(values[i], strlen(values[i])),
						   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
				 0);
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
}

/* Runs a shell command line; returns the exit status, stdout in *out (may be NULL). */
static int sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...)
{
	char args[2048], cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(cmd, sizeof(cmd), "cd %s && %s --config %s >%s", dir ? dir : ".", args, config, outfile);
	int st = system(cmd);
	char *text = ct_test_read_file(outfile, NULL);
	if (out)
		*out = text;
	else
		free(text);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ct_test_unique_name(topic, sizeof(topic), "ctdelfirst");
	ct_test_unique_name(db, sizeof(db), "ctdelfirst");
	for (char *p = db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(config, sizeof(config), "/tmp/%s.ini", topic);
	snprintf(outfile, sizeof(outfile), "/tmp/%s.out", topic);
	FILE *f = fopen(config, "w");
	if (!f)
		return -1;
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
		   "topic.metadata.refresh.interval.ms = 1000\n[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s\nbatch_ms = 50\n"
		   "exit_on_idle_ms = 1200\nshutdown_timeout_ms = 10000\nlog_level = warn\n[http]\nlisten =\n",
		bootstrap, mongo_uri, db, topic, topic, topic);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	mongoc_client_t *client = mongoc_client_new(mongo_uri);
	mongoc_database_t *d = mongoc_client_get_database(client, db);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
	mongoc_client_destroy(client);
	unlink(config);
	unlink(outfile);
	return 0;
}

static void test_delete_before_insert_verifies(void **state)
{
	static const struct {
		const char *doc, *op, *extra;
	} script[] = {
		/* delete first, with the document it removed */
		{"ghost", "delete", ",\"before\":{\"a\":1,\"b\":{\"c\":[1,2]},\"x.y\":\"z\",\"\":null}"},
		/* delete first, then the document comes back and changes */
		{"phoenix", "delete", ",\"before\":{\"k\":[{\"n\":1}]}"},
		{"phoenix", "insert", ",\"after\":{\"k\":[{\"n\":2}],\"m\":true}"},
		{"phoenix", "update", ",\"after\":{\"k\":[],\"m\":false}"},
		/* delete first, without `before` */
		{"bare", "delete", ""},
		/* an ordinary life, for comparison */
		{"plain", "insert", ",\"after\":{\"a\":1}"},
		{"plain", "delete", ""},
	};
	size_t n = sizeof(script) / sizeof(script[0]);
	char *keys[16], *values[16];
	for (size_t i = 0; i < n; i++) {
		keys[i] = malloc(64);
		values[i] = malloc(1024);
		snprintf(keys[i], 64, "things/%s", script[i].doc);
		snprintf(values[i], 1024,
			 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"0190c6a4-0000-7000-8000-%012zx\","
			 "\"ts\":\"2024-05-01T10:00:%02zu.000000Z\",\"source\":\"delfirst\",\"collection\":\"things\","
			 "\"document_id\":\"%s\",\"op\":\"%s\"%s}",
			 i + 1, i + 1, script[i].doc, script[i].op, script[i].extra);
	}
	produce(keys, values, n);
	for (size_t i = 0; i < n; i++) {
		free(keys[i]);
		free(values[i]);
	}
	char *out = NULL;
	assert_int_equal(sh(NULL, "consumer/changetrail-consumer"), 0);

	/* the records are there: ghost v1 is a delete that removed its keys */
	assert_int_equal(sh(&out, "cli/changetrail log things ghost --json"), 0);
	json_t *log = json_loads(out, 0, NULL);
	free(out);
	assert_int_equal(json_array_size(log), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "op")), "delete");
	json_decref(log);

	int rc = sh(&out, "cli/changetrail verify things");
	if (rc != 0)
		fail_msg("verify: exit %d:\n%s", rc, out);
	assert_non_null(strstr(out, "4 document(s), 7 record(s): all chains intact"));
	free(out);
	assert_int_equal(sh(&out, "cli/changetrail verify things ghost --json"), 0);
	json_t *v = json_loads(out, 0, NULL);
	free(out);
	assert_int_equal(json_array_size(json_object_get(v, "problems")), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "records")), 1);
	json_decref(v);

	/* the deleted state keeps the document the delete removed */
	assert_int_equal(sh(&out, "cli/changetrail show things ghost --json"), 0);
	json_t *st = json_loads(out, 0, NULL);
	free(out);
	assert_true(json_is_true(json_object_get(st, "deleted")));
	json_t *want = json_loads("{\"a\":1,\"b\":{\"c\":[1,2]},\"x.y\":\"z\",\"\":null}", 0, NULL);
	assert_true(json_equal(json_object_get(st, "doc"), want));
	json_decref(want);
	json_decref(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delete_before_insert_verifies),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
