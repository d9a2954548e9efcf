/*
 * test_cli_readers.c - the read side of the changetrail CLI on histories that
 * exposed bugs (issue 17, item 8), end to end on the real local Kafka and
 * MongoDB server: raw events are produced to a unique topic, the consumer
 * daemon persists them into a unique database, then the CLI runs as a user
 * runs it.
 *   - `revert --emit` of a child document keeps its parent, so the revert
 *     shows in the parent's `log --include-children`;
 *   - `log` lists a document's records in version order even when the
 *     producers' clocks disagree;
 *   - `log --format jsonpatch`: every record's patch, applied in order,
 *     gives the document `show` returns for its version (relations too);
 *   - `blame` of a deleted document credits each field to who set it;
 *   - `replay --into` is not redirected by the CLI's CHANGETRAIL_* variables.
 */
#include "testutil.h"

#include "changetrail/history.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static mongoc_client_t *client;
static char topic[128], db[96], config[256];

/* One raw event. */
typedef struct ev {
	const char *coll, *id, *op, *ts, *actor, *after, *extra;
} ev;

/*
 * The script. skew/s1: the producers' clocks disagree (v2 carries the
 * earliest ts). gone/g1: two actors set its fields, a third deletes it.
 */
static const ev script[] = {
	{"orders", "o1", "insert", "2024-05-01T10:00:01.000000Z", "alice", "{\"n\":1}", ""},
	{"lines", "l1", "insert", "2024-05-01T10:00:02.000000Z", "alice", "{\"qty\":1}",
	 ",\"parent\":{\"collection\":\"orders\",\"document_id\":\"o1\"}"},
	{"lines", "l1", "update", "2024-05-01T10:00:03.000000Z", "alice", "{\"qty\":2}",
	 ",\"parent\":{\"collection\":\"orders\",\"document_id\":\"o1\"}"},
	{"skew", "s1", "insert", "2024-05-01T10:00:05.000000Z", "p1", "{\"v\":1}", ""},
	{"skew", "s1", "update", "2024-05-01T10:00:01.000000Z", "p2", "{\"v\":2}", ""},
	{"skew", "s1", "update", "2024-05-01T10:00:09.000000Z", "p1", "{\"v\":3}", ""},
	{"rel", "r1", "insert", "2024-05-01T10:00:01.000000Z", "alice", "{\"name\":\"x\",\"a/b\":{\"~k\":[1]}}", ""},
	{"rel", "r1", "relation_add", "2024-05-01T10:00:02.000000Z", "alice", NULL,
	 ",\"relation\":{\"name\":\"tags\",\"collection\":\"tags\",\"document_id\":\"red\"}"},
	{"rel", "r1", "update", "2024-05-01T10:00:03.000000Z", "alice", "{\"name\":\"y\",\"a/b\":{\"~k\":[1,2]}}", ""},
	{"rel", "r1", "relation_remove", "2024-05-01T10:00:04.000000Z", "alice", NULL,
	 ",\"relation\":{\"name\":\"tags\",\"collection\":\"tags\",\"document_id\":\"red\"}"},
	{"gone", "g1", "insert", "2024-05-01T10:00:01.000000Z", "alice", "{\"a\":1,\"b\":2}", ""},
	{"gone", "g1", "update", "2024-05-01T10:00:02.000000Z", "bob", "{\"a\":1,\"b\":3}", ""},
	{"gone", "g1", "delete", "2024-05-01T10:00:03.000000Z", "carol", NULL, ""},
};

static void produce_script(void)
{
	char errstr[512], key[256], value[2048];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
		const ev *e = &script[i];
		snprintf(key, sizeof(key), "%s/%s", e->coll, e->id);
		snprintf(value, sizeof(value),
			 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"0190c6a4-0000-7000-8000-%012zx\","
			 "\"ts\":\"%s\",\"source\":\"readers\",\"collection\":\"%s\",\"document_id\":\"%s\","
			 "\"op\":\"%s\",\"actor\":\"%s\"%s%s%s}",
			 i + 1, e->ts, e->coll, e->id, e->op, e->actor, e->after ? ",\"after\":" : "",
			 e->after ? e->after : "", e->extra);
		assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
						   RD_KAFKA_V_VALUE(value, strlen(value)),
						   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
				 0);
	}
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
}

/* Runs the consumer daemon until it is idle; it resumes from the group's offsets. */
static void consume(void)
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
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Runs `changetrail ARGS --config <ours>`; returns the exit status, stdout in *out (may be NULL). */
static int cli(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cli(char **out, const char *fmt, ...)
{
	char args[2048], cmd[4096], outfile[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	const char *dir = getenv("CT_BINARY_DIR");
	ct_test_unique_name(outfile, sizeof(outfile), "/tmp/ct-readers-out");
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

static json_t *cli_json(int want_rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *cli_json(int want_rc, const char *fmt, ...)
{
	char args[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	char *out = NULL;
	int rc = cli(&out, "%s --json", args);
	if (rc != want_rc)
		fail_msg("changetrail %s: exit %d, want %d; output: %s", args, rc, want_rc, out ? out : "");
	json_t *j = json_loads(out ? out : "", JSON_DECODE_ANY, NULL);
	if (!j)
		fail_msg("changetrail %s: not JSON: %s", args, out ? out : "");
	free(out);
	return j;
}

static int setup(void **state)
{
	(void)state;
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ct_history_global_init();
	client = mongoc_client_new(mongo_uri);
	ct_test_unique_name(topic, sizeof(topic), "ctrd");
	ct_test_unique_name(db, sizeof(db), "ctrd");
	for (char *p = db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(config, sizeof(config), "/tmp/%s.ini", topic);
	FILE *f = fopen(config, "w");
	if (!f)
		return -1;
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
		   "topic.metadata.refresh.interval.ms = 1000\n[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s\nbatch_ms = 50\n"
		   "exit_on_idle_ms = 1200\nshutdown_timeout_ms = 10000\nlog_level = warn\n[http]\nlisten =\n",
		bootstrap, mongo_uri, db, topic, topic, topic);
	fclose(f);
	produce_script();
	consume();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mongoc_database_t *d = mongoc_client_get_database(client, db);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
	unlink(config);
	mongoc_client_destroy(client);
	ct_history_global_cleanup();
	return 0;
}

static int64_t ival(const json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static const char *sval(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void test_revert_of_child_keeps_parent(void **state)
{
	(void)state;
	json_t *r = cli_json(0, "revert lines l1 --version 1 --emit --actor tester");
	assert_true(json_is_string(json_object_get(r, "event_id")));
	char eid[64];
	snprintf(eid, sizeof(eid), "%s", sval(r, "event_id"));
	json_decref(r);
	consume();
	json_t *log = cli_json(0, "log lines l1");
	assert_int_equal(json_array_size(log), 3);
	const json_t *top = json_array_get(log, 0);
	assert_string_equal(sval(top, "_id"), eid);
	assert_string_equal(sval(json_object_get(top, "parent"), "collection"), "orders");
	assert_string_equal(sval(json_object_get(top, "parent"), "document_id"), "o1");
	json_decref(log);
	/* the parent's log with its children: o1 v1 and the three records of l1 */
	log = cli_json(0, "log orders o1 --include-children");
	assert_int_equal(json_array_size(log), 4);
	bool found = false;
	for (size_t i = 0; i < json_array_size(log); i++)
		found |= !strcmp(sval(json_array_get(log, i), "_id"), eid);
	assert_true(found);
	json_decref(log);
	assert_int_equal(cli(NULL, "verify lines l1"), 0);
}

static void test_log_orders_by_version(void **state)
{
	(void)state;
	json_t *log = cli_json(0, "log skew s1");
	assert_int_equal(json_array_size(log), 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(ival(json_array_get(log, i), "version"), 3 - (int64_t)i);
	json_decref(log);
	char *out = NULL;
	assert_int_equal(cli(&out, "log skew s1"), 0);
	char *v3 = strstr(out, "v3 "), *v2 = strstr(out, "v2 "), *v1 = strstr(out, "v1 ");
	assert_true(v3 && v2 && v1 && v3 < v2 && v2 < v1);
	free(out);
	/* an actor's records (two documents interleaved by time), each document in version order */
	json_t *a = cli_json(0, "actor p1");
	assert_int_equal(json_array_size(a), 2);
	assert_int_equal(ival(json_array_get(a, 0), "version"), 3);
	assert_int_equal(ival(json_array_get(a, 1), "version"), 1);
	json_decref(a);
}

/* RFC 6901 token i of `ptr` ("/a~1b/0") into out; false at the end. */
static bool token(const char **ptr, char *out, size_t size)
{
	if (**ptr != '/')
		return false;
	size_t n = 0;
	for ((*ptr)++; **ptr && **ptr != '/'; (*ptr)++) {
		char c = **ptr;
		if (c == '~') {
			(*ptr)++;
			c = **ptr == '1' ? '/' : '~';
		}
		assert_true(n + 1 < size);
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

/* Applies one RFC 6902 add/remove/replace op to *doc (a minimal applier: what ct_diff_to_jsonpatch writes). */
static void apply_op(json_t **doc, const json_t *op)
{
	const char *kind = sval(op, "op"), *path = sval(op, "path");
	json_t *value = json_object_get(op, "value");
	char tok[512];
	if (!*path) { /* the root */
		assert_string_not_equal(kind, "remove");
		json_decref(*doc);
		*doc = json_deep_copy(value);
		return;
	}
	json_t *cur = *doc;
	const char *p = path;
	assert_true(token(&p, tok, sizeof(tok)));
	while (*p) {
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10)) : json_object_get(cur, tok);
		if (!cur)
			fail_msg("patch path %s does not exist in the document", path);
		assert_true(token(&p, tok, sizeof(tok)));
	}
	if (json_is_object(cur)) {
		if (strcmp(kind, "add") && !json_object_get(cur, tok))
			fail_msg("patch %s %s: no such member", kind, path);
		if (!strcmp(kind, "remove"))
			json_object_del(cur, tok);
		else
			json_object_set(cur, tok, value);
	} else if (json_is_array(cur)) {
		size_t i = !strcmp(tok, "-") ? json_array_size(cur) : strtoul(tok, NULL, 10);
		if (!strcmp(kind, "add")) {
			assert_true(i <= json_array_size(cur));
			json_array_insert(cur, i, value);
		} else {
			assert_true(i < json_array_size(cur));
			if (!strcmp(kind, "remove"))
				json_array_remove(cur, i);
			else
				json_array_set(cur, i, value);
		}
	} else {
		fail_msg("patch path %s goes through a scalar", path);
	}
}

static void test_jsonpatch_applies_to_show(void **state)
{
	(void)state;
	json_t *log = cli_json(0, "log rel r1 --format jsonpatch");
	assert_int_equal(json_array_size(log), 4);
	json_t *doc = json_object();
	for (size_t i = json_array_size(log); i-- > 0;) { /* oldest first */
		const json_t *rec = json_array_get(log, i), *patch = json_object_get(rec, "changes");
		size_t k;
		json_t *op;
		json_array_foreach(patch, k, op)
			apply_op(&doc, op);
		json_t *shown = cli_json(0, "show rel r1 --version %lld", (long long)ival(rec, "version"));
		if (!json_equal(doc, json_object_get(shown, "doc")))
			fail_msg("v%lld: the patches give %s, show gives %s", (long long)ival(rec, "version"),
				 json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS),
				 json_dumps(json_object_get(shown, "doc"), JSON_COMPACT | JSON_SORT_KEYS));
		json_decref(shown);
		if (!strncmp(sval(rec, "op"), "relation_", 9)) {
			assert_int_equal(json_array_size(patch), 0);
			assert_string_equal(sval(json_object_get(rec, "relation"), "name"), "tags");
		}
	}
	json_decref(doc);
	json_decref(log);
	/* text: the relation is said, not written as a path into the document */
	char *out = NULL;
	assert_int_equal(cli(&out, "log rel r1 --format jsonpatch"), 0);
	assert_null(strstr(out, "__relations__"));
	assert_non_null(strstr(out, "relation tags + tags/red"));
	assert_non_null(strstr(out, "relation tags - tags/red"));
	free(out);
}

static void test_blame_of_deleted_document(void **state)
{
	(void)state;
	json_t *b = cli_json(0, "blame gone g1");
	assert_int_equal(json_array_size(b), 2);
	for (size_t i = 0; i < 2; i++) {
		const json_t *l = json_array_get(b, i);
		const char *field = json_string_value(json_array_get(json_object_get(l, "path"), 0));
		assert_non_null(field);
		if (!strcmp(field, "a")) {
			assert_int_equal(ival(l, "version"), 1);
			assert_string_equal(sval(l, "actor"), "alice");
		} else {
			assert_string_equal(field, "b");
			assert_int_equal(ival(l, "version"), 2);
			assert_string_equal(sval(l, "actor"), "bob");
			assert_int_equal(ival(l, "value"), 3);
		}
	}
	json_decref(b);
}

/*
 * replay --into NEW with the CLI's CHANGETRAIL_* overrides in the
 * environment: they are for the CLI, not the consumer it runs. Inherited,
 * CHANGETRAIL_MONGODB_DATABASE sent the replay into the configured (live)
 * database and CHANGETRAIL_CONSUMER made the consumer refuse to start.
 */
static void test_replay_ignores_cli_environment(void **state)
{
	(void)state;
	char into[128], bin[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(into, sizeof(into), "%s_replay", db);
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	setenv("CHANGETRAIL_MONGODB_DATABASE", db, 1);
	setenv("CHANGETRAIL_CONSUMER", bin, 1);
	json_t *res = cli_json(0, "replay --from earliest --into %s --verify --idle-ms 1200", into);
	unsetenv("CHANGETRAIL_MONGODB_DATABASE");
	unsetenv("CHANGETRAIL_CONSUMER");
	assert_int_equal(json_array_size(json_object_get(res, "differences")), 0);
	assert_true(json_integer_value(json_object_get(res, "history")) >= (json_int_t)(sizeof(script) / sizeof(script[0])));
	json_decref(res);
	mongoc_database_t *d = mongoc_client_get_database(client, into);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_orders_by_version),
		cmocka_unit_test(test_jsonpatch_applies_to_show),
		cmocka_unit_test(test_blame_of_deleted_document),
		cmocka_unit_test(test_revert_of_child_keeps_parent),
		cmocka_unit_test(test_replay_ignores_cli_environment),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
