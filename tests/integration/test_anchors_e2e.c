/*
 * test_anchors_e2e.c - anchored chains end to end on the real local Kafka
 * and MongoDB server: the consumer daemon persists four documents and
 * publishes anchors (an HMAC-keyed file and a topic); then MongoDB is
 * tampered with as someone with write access to it only could: (a) docs/a's
 * v2 rewritten and the whole chain's hashes (and the state's) recomputed,
 * which plain `verify` calls intact; (b) docs/b's last records deleted and
 * its state rolled back; (c) docs/c's records and state deleted. `verify
 * --anchors` (from the file and from the topic) catches each one, leaves
 * the untouched docs/d alone, and refuses anchors under another key or
 * with a record cut out of the file.
 */
#include "testutil.h"

#include "changetrail/canonical.h"
#include "changetrail/history.h"

#include <mongoc/mongoc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static mongoc_client_t *client;
static char topic[128], db[96], config[256], anchors[256], keyfile[256], anchor_topic[160];

static void produce(const char *const *keys, char *const *values, size_t n)
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

static pid_t start_consumer(void)
{
	char bin[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(bin, bin, "--config", config, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void wait_consumer(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Runs `changetrail ARGS --config <ours>`: exit status, stdout in *out (may be NULL). */
static int cli(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cli(char **out, const char *fmt, ...)
{
	char args[2048], cmd[4096], outfile[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	const char *dir = getenv("CT_BINARY_DIR");
	ct_test_unique_name(outfile, sizeof(outfile), "/tmp/ct-anchors-out");
	snprintf(cmd, sizeof(cmd), "%s/cli/changetrail %s --config %s >%s", dir ? dir : ".", args, config, outfile);
	int st = system(cmd);
	char *text = ct_test_read_file(outfile, NULL);
	remove(outfile);
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
	ct_history_global_init();
	client = mongoc_client_new(mongo_uri);
	ct_test_unique_name(topic, sizeof(topic), "ctanchor");
	ct_test_unique_name(db, sizeof(db), "ctanchor");
	for (char *p = db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(config, sizeof(config), "/tmp/%s.ini", topic);
	snprintf(anchors, sizeof(anchors), "/tmp/%s.anchors", topic);
	snprintf(keyfile, sizeof(keyfile), "/tmp/%s.key", topic);
	snprintf(anchor_topic, sizeof(anchor_topic), "%s.anchors", topic);
	FILE *k = fopen(keyfile, "w");
	if (!k)
		return -1;
	fputs("a key of the auditors, 32 bytes\n", k);
	fclose(k);
	FILE *f = fopen(config, "w");
	if (!f)
		return -1;
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
		   "topic.metadata.refresh.interval.ms = 1000\n[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s\nbatch_ms = 50\nstate_flush_ms = 100\n"
		   "exit_on_idle_ms = 1500\nshutdown_timeout_ms = 15000\nlog_level = warn\n[http]\nlisten =\n"
		   "[anchor]\nfile = %s\ntopic = %s\nhmac_key_file = %s\ninterval_ms = 300\n",
		bootstrap, mongo_uri, db, topic, topic, topic, anchors, anchor_topic, keyfile);
	fclose(f);

	/* docs/a: 5 versions, b: 4, c: 3, d: 2; a and b first, c and d once
	 * the first anchor is out (two anchors of one consumer, chained) */
	const char *ids[] = {"a", "b", "c", "d"};
	const char *keys[16];
	char *values[16], key[4][16];
	size_t n = 0;
	pid_t pid = 0;
	for (int d = 0; d < 4; d++) {
		snprintf(key[d], sizeof(key[d]), "docs/%s", ids[d]);
		for (int v = 1; v <= 5 - d; v++) {
			values[n] = malloc(1024);
			snprintf(values[n], 1024,
				 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"0190c6a4-0000-7000-8000-%012x\","
				 "\"ts\":\"2024-05-01T10:00:0%d.000000Z\",\"source\":\"anchors-e2e\",\"collection\":\"docs\","
				 "\"document_id\":\"%s\",\"op\":\"%s\",\"actor\":\"bob\",\"after\":{\"n\":%d,\"who\":\"%s\"}}",
				 d * 16 + v, v, ids[d], v == 1 ? "insert" : "update", v, ids[d]);
			keys[n++] = key[d];
		}
		if (d == 1) {
			produce(keys, values, n);
			pid = start_consumer();
			for (int i = 0; i < 400; i++) {
				char *text = ct_test_read_file(anchors, NULL);
				bool some = text && strchr(text, '\n');
				free(text);
				if (some)
					break;
				usleep(50000);
			}
		}
	}
	produce(keys + 9, values + 9, n - 9);
	for (size_t i = 0; i < n; i++)
		free(values[i]);
	wait_consumer(pid);
	return 0;
}

static void drop(const char *name)
{
	mongoc_database_t *d = mongoc_client_get_database(client, name);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
}

static int teardown(void **state)
{
	drop(db);
	unlink(config);
	unlink(anchors);
	unlink(keyfile);
	mongoc_client_destroy(client);
	ct_history_global_cleanup();
	return 0;
}

static mongoc_collection_t *coll(const char *name)
{
	return mongoc_client_get_collection(client, db, name);
}

/* 1. the anchors are there, keyed, and agree with an untouched database */
static void test_anchors_published_and_clean(void **state)
{
	char *text = ct_test_read_file(anchors, NULL), *out = NULL;
	assert_non_null(text);
	assert_non_null(strstr(text, "\"schema\":\"changetrail.anchor.v1\""));
	assert_non_null(strstr(text, "\"hmac\":"));
	assert_non_null(strstr(text, "\"document_id\":\"a\""));
	free(text);
	assert_int_equal(cli(&out, "verify --anchors %s", anchors), 0);
	assert_non_null(strstr(out, "(HMAC checked)"));
	assert_non_null(strstr(out, "of 4 document(s): all anchored chains intact"));
	free(out);
	assert_int_equal(cli(&out, "verify --anchors kafka --anchor-topic %s", anchor_topic), 0);
	assert_non_null(strstr(out, "of 4 document(s): all anchored chains intact"));
	free(out);
}

/* (a) v2 of docs/a rewritten, every later hash, prev_hash and the state's recomputed */
static void recompute_chain_of_a(void)
{
	ct_history *h;
	ct_error err;
	json_t *recs;
	ct_history_query q = {.since_us = CT_HISTORY_NO_TIME, .until_us = CT_HISTORY_NO_TIME};
	mongoc_collection_t *hist = coll("history"), *st = coll("state");
	bson_error_t berr;
	char prev[65] = "";

	assert_int_equal(ct_history_open(mongo_uri, db, &h, &err), 0);
	assert_int_equal(ct_history_log(h, "docs", "a", &q, &recs, &err), 0);
	assert_int_equal(json_array_size(recs), 5);
	for (int v = 1; v <= 5; v++) {
		json_t *r = NULL, *x;
		size_t i;
		json_array_foreach(recs, i, x)
			if (json_integer_value(json_object_get(x, "version")) == v)
				r = x;
		assert_non_null(r);
		if (v == 1) {
			snprintf(prev, sizeof(prev), "%s", json_string_value(json_object_get(r, "hash")));
			continue;
		}
		if (v == 2)
			json_object_set_new(r, "actor", json_string("mallory"));
		json_object_set_new(r, "prev_hash", json_string(prev));
		assert_int_equal(ct_record_hash(r, prev, &err), 0);
		bson_t *sel = BCON_NEW("_id", BCON_UTF8(json_string_value(json_object_get(r, "_id"))));
		bson_t *upd = BCON_NEW("$set", "{", "actor", BCON_UTF8(json_string_value(json_object_get(r, "actor"))),
				       "prev_hash", BCON_UTF8(json_string_value(json_object_get(r, "prev_hash"))), "hash",
				       BCON_UTF8(prev), "}");
		assert_true(mongoc_collection_update_one(hist, sel, upd, NULL, NULL, &berr));
		bson_destroy(sel);
		bson_destroy(upd);
	}
	bson_t *sel = BCON_NEW("_id", BCON_UTF8("docs/a"));
	bson_t *upd = BCON_NEW("$set", "{", "hash", BCON_UTF8(prev), "}");
	assert_true(mongoc_collection_update_one(st, sel, upd, NULL, NULL, &berr));
	bson_destroy(sel);
	bson_destroy(upd);
	json_decref(recs);
	ct_history_close(h);
	mongoc_collection_destroy(hist);
	mongoc_collection_destroy(st);
}

/* (b) docs/b: v3 and v4 deleted, the state set back to v2 */
static void cut_tail_of_b(void)
{
	mongoc_collection_t *hist = coll("history"), *st = coll("state");
	bson_error_t berr;
	ct_history *h;
	ct_error err;
	json_t *s2;
	assert_int_equal(ct_history_open(mongo_uri, db, &h, &err), 0);
	assert_int_equal(ct_history_state(h, "docs", "b", 2, 0, &s2, &err), 0);
	bson_t *sel = BCON_NEW("collection", BCON_UTF8("docs"), "document_id", BCON_UTF8("b"), "version", "{",
			       "$gt", BCON_INT64(2), "}");
	assert_true(mongoc_collection_delete_many(hist, sel, NULL, NULL, &berr));
	bson_destroy(sel);
	sel = BCON_NEW("_id", BCON_UTF8("docs/b"));
	bson_t *upd = BCON_NEW("$set", "{", "version", BCON_INT64(2), "hash",
			       BCON_UTF8(json_string_value(json_object_get(s2, "hash"))), "}");
	assert_true(mongoc_collection_update_one(st, sel, upd, NULL, NULL, &berr));
	bson_destroy(sel);
	bson_destroy(upd);
	json_decref(s2);
	ct_history_close(h);
	mongoc_collection_destroy(hist);
	mongoc_collection_destroy(st);
}

/* (c) docs/c: every record and the state deleted */
static void delete_c(void)
{
	mongoc_collection_t *hist = coll("history"), *st = coll("state");
	bson_error_t berr;
	bson_t *sel = BCON_NEW("collection", BCON_UTF8("docs"), "document_id", BCON_UTF8("c"));
	assert_true(mongoc_collection_delete_many(hist, sel, NULL, NULL, &berr));
	bson_destroy(sel);
	sel = BCON_NEW("_id", BCON_UTF8("docs/c"));
	assert_true(mongoc_collection_delete_many(st, sel, NULL, NULL, &berr));
	bson_destroy(sel);
	mongoc_collection_destroy(hist);
	mongoc_collection_destroy(st);
}

static void assert_caught(const char *out)
{
	if (!strstr(out, "docs/a v") || !strstr(out, ": anchored_mismatch: ") ||
	    !strstr(out, "docs/b v") || !strstr(out, ": anchored_missing: ") ||
	    !strstr(out, "docs/c v") || !strstr(out, ": anchored_document_gone: ") ||
	    !strstr(out, "PROBLEMS FOUND") || strstr(out, "docs/d"))
		fail_msg("verify --anchors output:\n%s", out);
}

static void test_tampering_caught_by_anchors_only(void **state)
{
	char *out = NULL;

	recompute_chain_of_a();
	/* a consistent rewrite: the chain alone cannot tell */
	assert_int_equal(cli(&out, "verify docs a"), 0);
	assert_non_null(strstr(out, "all chains intact"));
	free(out);
	assert_int_equal(cli(&out, "verify --anchors %s docs a", anchors), 1);
	assert_non_null(strstr(out, "docs/a v"));
	assert_non_null(strstr(out, "anchored_mismatch"));
	free(out);

	cut_tail_of_b();
	delete_c();
	assert_int_equal(cli(&out, "verify --anchors %s", anchors), 1);
	assert_caught(out);
	free(out);
	assert_int_equal(cli(&out, "verify --anchors kafka --anchor-topic %s", anchor_topic), 1);
	assert_caught(out);
	free(out);
	/* JSON: the problems by name */
	assert_int_equal(cli(&out, "verify --anchors %s --json", anchors), 1);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_true(json_array_size(json_object_get(j, "problems")) >= 3);
	assert_int_equal(json_array_size(json_object_get(j, "anchor_problems")), 0);
	json_decref(j);
	free(out);
}

/* the anchors themselves: another key, or a record cut out of the file */
static void test_forged_or_cut_anchors_refused(void **state)
{
	char other[300], cut[300], *out = NULL;
	snprintf(other, sizeof(other), "%s.other", keyfile);
	FILE *k = fopen(other, "w");
	assert_non_null(k);
	fputs("not the auditors' key at all!!!!\n", k);
	fclose(k);
	assert_int_equal(cli(&out, "verify --anchors %s --anchor-key-file %s", anchors, other), 1);
	assert_non_null(strstr(out, "anchor_invalid: hmac does not match"));
	free(out);
	unlink(other);

	/* without its first record, the second one links to nothing read */
	size_t len;
	char *text = ct_test_read_file(anchors, &len);
	assert_non_null(text);
	char *nl = strchr(text, '\n');
	assert_non_null(nl);
	if (!strchr(nl + 1, '\n')) { /* one record only: cut nothing to test */
		free(text);
		skip();
	}
	snprintf(cut, sizeof(cut), "%s.cut", anchors);
	FILE *f = fopen(cut, "w");
	assert_non_null(f);
	fputs(nl + 1, f);
	fclose(f);
	free(text);
	assert_int_equal(cli(&out, "verify --anchors %s", cut), 1);
	assert_non_null(strstr(out, "anchor_chain_broken"));
	free(out);
	unlink(cut);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anchors_published_and_clean),
		cmocka_unit_test(test_tampering_caught_by_anchors_only),
		cmocka_unit_test(test_forged_or_cut_anchors_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
