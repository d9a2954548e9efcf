/*
 * test_cli_hostile.c - hostile stored data cannot drive the terminal of
 * someone reading history nor forge history lines: events whose collection,
 * document_id, actor, label, context metadata, keys and values hold an ESC
 * sequence (clear screen, set title), a newline followed by a fake dated
 * line, a carriage return, a tab, DEL, a C1 CSI and bidi overrides go
 * through the real Kafka, the consumer and MongoDB; then `log` (both
 * formats), `actor`, `context`, `blame`, `show` and `verify` print no raw
 * control byte, C1 or bidi control, and exactly one header line per record
 * (every other line indented), while --json gives back the exact strings.
 */
#include "testutil.h"

#include "changetrail/history.h"

#include <fcntl.h>
#include <jansson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static char topic[128], db[96], config[256], outfile[256], errfile[256];

/* The hostile strings. */
#define CLEAR "\x1b[2J\x1b[H"
#define FORGE "\n2026-01-01T00:00:00.000000Z v1    insert  by admin"
#define RLO "\xe2\x80\xae"
static const char *const coll = "c" CLEAR "ol";
static const char *const doc_id = "d" CLEAR FORGE RLO "gpj.exe";
static const char *const actor = "\x1b]0;owned\x07mallory" FORGE "\r\t\x7f";
static const char *const label = "l" RLO "\xe2\x81\xa6" "abc\xe2\x81\xa9\xc2\x9b" "31m";
static const char *const key1 = "k" CLEAR "\n";
static const char *const val1 = "v\x1b[0m" FORGE RLO;
static const char *const ctx_id = "0190c6a4-0000-7000-8000-00000000beef";

static void produce(const char *key, char *const *values, size_t n)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
						   RD_KAFKA_V_VALUE(values[i], strlen(values[i])),
						   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
				 0);
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
}

static const char *bin(const char *rel)
{
	static char path[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", rel);
	return path;
}

/* Runs argv (NULL-terminated) with stdout/stderr into files; returns the exit status. */
static int run(const char *const *argv, char **out, char **err)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0)
			_exit(126);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (out)
		*out = ct_test_read_file(outfile, NULL);
	if (err)
		*err = ct_test_read_file(errfile, NULL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `changetrail CMD ARGS... [--json] --config <ours>`: up to 4 arguments. */
static int cli(char **out, char **err, bool json, const char *a0, const char *a1, const char *a2, const char *a3)
{
	const char *argv[12];
	int n = 0;
	argv[n++] = bin("cli/changetrail");
	for (const char *a[] = {a0, a1, a2, a3}, **p = a; p < a + 4 && *p; p++)
		argv[n++] = *p;
	if (json)
		argv[n++] = "--json";
	argv[n++] = "--config";
	argv[n++] = config;
	argv[n] = NULL;
	return run(argv, out, err);
}

/* No byte a terminal acts on but the newlines ending lines; no C1, bidi or U+2028/9. */
static void assert_inert(const char *what, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	for (size_t i = 0; p[i]; i++) {
		if ((p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f || (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) ||
		    (p[i] == 0xe2 && p[i + 1] == 0x80 && p[i + 2] >= 0xa8 && p[i + 2] <= 0xae) ||
		    (p[i] == 0xe2 && p[i + 1] == 0x81 && p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9))
			fail_msg("%s: raw control at byte %zu (0x%02x) in:\n%s", what, i, p[i], s);
	}
}

/* Number of lines of `s` starting with "v<digit>"; fails on a line that is neither that nor indented. */
static size_t record_lines(const char *what, const char *s, const char *allowed_prefix)
{
	size_t headers = 0;
	for (const char *l = s; *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (len >= 2 && l[0] == 'v' && l[1] >= '0' && l[1] <= '9')
			headers++;
		else if (!(len == 0 || l[0] == ' ' || (allowed_prefix && !strncmp(l, allowed_prefix, strlen(allowed_prefix)))))
			fail_msg("%s: a line that is neither a record nor a change: '%.*s' in:\n%s", what, (int)len, l, s);
		l += len + (nl ? 1 : 0);
	}
	return headers;
}

static json_t *parse(const char *what, const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text ? text : "", JSON_DECODE_ANY, &jerr);
	if (!j)
		fail_msg("%s: not JSON (%s): %s", what, jerr.text, text ? text : "");
	/* JSON output is JSON Lines: one line */
	assert_non_null(strchr(text, '\n'));
	assert_int_equal(strchr(text, '\n')[1], '\0');
	return j;
}

static int setup(void **state)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ct_test_unique_name(topic, sizeof(topic), "cthostile");
	ct_test_unique_name(db, sizeof(db), "cthostile");
	for (char *p = db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(config, sizeof(config), "/tmp/%s.ini", topic);
	snprintf(outfile, sizeof(outfile), "/tmp/%s.out", topic);
	snprintf(errfile, sizeof(errfile), "/tmp/%s.err", topic);
	FILE *f = fopen(config, "w");
	if (!f)
		return -1;
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
		   "topic.metadata.refresh.interval.ms = 1000\n[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s\nbatch_ms = 50\n"
		   "exit_on_idle_ms = 1200\nshutdown_timeout_ms = 10000\nlog_level = warn\n[http]\nlisten =\n",
		bootstrap, mongo_uri, db, topic, topic, topic);
	fclose(f);

	/* v1 insert in a context, v2 update: every string field hostile */
	char *values[2];
	for (int i = 0; i < 2; i++) {
		json_t *after = json_pack("{s:s, s:i, s:[s]}", key1, val1, "n", i + 1, "arr", i ? label : "x");
		json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "schema",
				       "changetrail.event.v1", "event_id",
				       i ? "0190c6a4-0000-7000-8000-00000000b002" : "0190c6a4-0000-7000-8000-00000000b001",
				       "ts", i ? "2024-05-01T10:00:02.000000Z" : "2024-05-01T10:00:01.000000Z", "source",
				       "hostile", "collection", coll, "document_id", doc_id, "op", i ? "update" : "insert",
				       "actor", actor, "label", label, "after", after);
		assert_non_null(ev);
		if (!i)
			json_object_set_new(ev, "context",
					    json_pack("{s:s, s:{s:s}}", "id", ctx_id, "metadata", key1, val1));
		values[i] = json_dumps(ev, JSON_COMPACT);
		json_decref(ev);
	}
	char key[512];
	snprintf(key, sizeof(key), "%s/%s", coll, doc_id);
	produce(key, values, 2);
	free(values[0]);
	free(values[1]);

	const char *argv[] = {bin("consumer/changetrail-consumer"), "--config", config, NULL};
	char *err = NULL;
	int rc = run(argv, NULL, &err);
	if (rc != 0)
		fail_msg("consumer exit %d:\n%s", rc, err ? err : "");
	free(err);
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
	unlink(errfile);
	return 0;
}

static void test_log_text_and_json(void **state)
{
	char *out = NULL;
	assert_int_equal(cli(&out, NULL, false, "log", coll, doc_id, NULL), 0);
	assert_inert("log", out);
	assert_int_equal(record_lines("log", out, NULL), 2);
	/* escaped, not dropped: what is there can still be read */
	assert_non_null(strstr(out, "\\x1b[2J"));
	assert_non_null(strstr(out, "\\n2026-01-01"));
	assert_non_null(strstr(out, "\\u202e"));
	free(out);

	assert_int_equal(cli(&out, NULL, false, "log", coll, doc_id, "--format=jsonpatch"), 0);
	assert_inert("log --format jsonpatch", out);
	assert_int_equal(record_lines("log --format jsonpatch", out, NULL), 2);
	free(out);

	assert_int_equal(cli(&out, NULL, true, "log", coll, doc_id, NULL), 0);
	assert_inert("log --json", out);
	json_t *log = parse("log --json", out);
	free(out);
	assert_int_equal(json_array_size(log), 2);
	json_t *r;
	size_t i;
	json_array_foreach(log, i, r) {
		assert_string_equal(json_string_value(json_object_get(r, "collection")), coll);
		assert_string_equal(json_string_value(json_object_get(r, "document_id")), doc_id);
		assert_string_equal(json_string_value(json_object_get(r, "actor")), actor);
		assert_string_equal(json_string_value(json_object_get(r, "label")), label);
	}
	/* v1 (last, newest first) adds the hostile key with the hostile value */
	json_t *v1 = json_object_get(json_array_get(log, 1), "changes"), *want = json_pack("[s, s]", key1, val1), *e;
	bool found = false;
	json_array_foreach(v1, i, e) {
		size_t k;
		json_t *item;
		json_array_foreach(json_array_get(e, 2), k, item)
			found |= json_equal(item, want);
	}
	if (!found) {
		char *changes = json_dumps(v1, JSON_COMPACT);
		fail_msg("the hostile key/value did not round-trip: %s", changes);
	}
	json_decref(want);
	json_decref(log);
}

static void test_actor_context_blame_show_verify(void **state)
{
	char *out = NULL;
	assert_int_equal(cli(&out, NULL, false, "actor", actor, NULL, NULL), 0);
	assert_inert("actor", out);
	assert_int_equal(record_lines("actor", out, NULL), 2);
	free(out);
	assert_int_equal(cli(&out, NULL, true, "actor", actor, NULL, NULL), 0);
	json_t *a = parse("actor --json", out);
	free(out);
	assert_int_equal(json_array_size(a), 2);
	json_decref(a);

	assert_int_equal(cli(&out, NULL, false, "context", ctx_id, NULL, NULL), 0);
	assert_inert("context", out);
	assert_int_equal(record_lines("context", out, "context "), 1);
	free(out);
	assert_int_equal(cli(&out, NULL, true, "context", ctx_id, NULL, NULL), 0);
	assert_inert("context --json", out);
	json_t *c = parse("context --json", out);
	free(out);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "metadata"), key1)), val1);
	assert_string_equal(json_string_value(json_object_get(c, "actor")), actor);
	json_decref(c);

	/* blame: one line per leaf ("arr".0, the hostile key, "n") */
	assert_int_equal(cli(&out, NULL, false, "blame", coll, doc_id, NULL), 0);
	assert_inert("blame", out);
	assert_int_equal(record_lines("blame", out, NULL), 3);
	free(out);
	assert_int_equal(cli(&out, NULL, true, "blame", coll, doc_id, NULL), 0);
	json_t *b = parse("blame --json", out);
	free(out);
	assert_int_equal(json_array_size(b), 3);
	json_decref(b);

	/* show: the document, indented JSON lines, every string escaped */
	assert_int_equal(cli(&out, NULL, false, "show", coll, doc_id, NULL), 0);
	assert_inert("show", out);
	char *body = strchr(out, '\n');
	assert_non_null(body);
	json_t *shown = json_loads(body + 1, 0, NULL);
	assert_non_null(shown); /* still JSON */
	assert_string_equal(json_string_value(json_object_get(shown, key1)), val1);
	json_decref(shown);
	free(out);
	assert_int_equal(cli(&out, NULL, true, "show", coll, doc_id, NULL), 0);
	json_t *s = parse("show --json", out);
	free(out);
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "doc"), key1)), val1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(s, "doc"), "arr"), 0)), label);
	json_decref(s);

	assert_int_equal(cli(&out, NULL, false, "verify", coll, doc_id, NULL), 0);
	assert_inert("verify", out);
	assert_non_null(strstr(out, "all chains intact"));
	free(out);

	/* errors quoting an argument: not found, bad option */
	char *err = NULL;
	assert_int_equal(cli(&out, &err, false, "log", coll, "nosuch" CLEAR FORGE, NULL), 1);
	assert_inert("log (no records) stdout", out);
	assert_inert("log (no records) stderr", err);
	free(out);
	free(err);
	assert_int_equal(cli(&out, &err, false, "show", coll, "nosuch" CLEAR FORGE, NULL), 1);
	assert_inert("show (not found) stderr", err);
	free(out);
	free(err);
	assert_int_equal(cli(&out, &err, false, "log", "--bogus" CLEAR FORGE, "a", "b"), 2);
	assert_inert("log (bad option) stderr", err);
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_text_and_json),
		cmocka_unit_test(test_actor_context_blame_show_verify),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
