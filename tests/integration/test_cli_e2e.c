/*
 * test_cli_e2e.c - the history commands of the changetrail CLI end to end
 * on the real local Kafka and FerretDB: a scripted document's events are
 * produced to a unique topic, the consumer daemon persists them into a
 * unique database (as test_consumer_e2e does), then the CLI binary is run
 * as a user runs it: show --at/--version reproduce every intermediate
 * state, log/context/actor/blame read them, revert --emit goes through
 * the pipeline and shows in log, replay into a new database is identical
 * (and replay --no-write consumes everything and writes nothing;
 * replay --metrics-listen serves the replaying consumer's /metrics),
 * prune leaves verifiable chains, scan backfills and detects deletions,
 * and verify catches a record edited in MongoDB by hand.
 */
#include "testutil.h"

#include "changetrail/history.h"
#include "store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static mongoc_client_t *client;
static char topic[128], db[96], config[256];

/* The scripted life of docs/d1: version i+1 has ts ts_of[i], document docs_of[i]. */
static const char *const ts_of[] = {"2024-05-01T10:00:01.000000Z", "2024-05-01T10:00:02.000000Z",
				    "2024-05-01T10:00:03.000000Z", "2024-05-01T10:00:04.000000Z",
				    "2024-05-01T10:00:05.000000Z"};
static const char *const ops_of[] = {"insert", "update", "update", "delete", "insert"};
static const char *const docs_of[] = {"{\"a\":1}", "{\"a\":2,\"b\":[1]}",
				      "{\"a\":2,\"b\":[1,2],\"c\":{\"x.y\":true,\"$k\":\"\"}}",
				      "{\"a\":2,\"b\":[1,2],\"c\":{\"x.y\":true,\"$k\":\"\"}}", "{\"a\":9}"};
static const char *const ctx_id = "0190c6a4-0000-7000-8000-00000000cafe";

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
	ct_test_unique_name(outfile, sizeof(outfile), "/tmp/ct-cli-out");
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

static json_t *cli_json(int want_rc, const char *args)
{
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

static void assert_doc(const json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);
	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
		fail_msg("document %s, want %s", g, want_text);
	}
	json_decref(want);
}

static int setup(void **state)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ct_history_global_init(); /* mongoc_init with the endSessions noise dropped */
	client = mongoc_client_new(mongo_uri);
	ct_test_unique_name(topic, sizeof(topic), "ctcli");
	ct_test_unique_name(db, sizeof(db), "ctcli");
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

	/* the script: 5 versions of docs/d1, the first three in a context by bob */
	const char *keys[8];
	char *values[8];
	size_t n = 0;
	for (size_t i = 0; i < 5; i++) {
		char extra[512] = "";
		if (i < 3)
			snprintf(extra, sizeof(extra), ",\"actor\":\"bob\",\"context\":{\"id\":\"%s\",\"metadata\":{\"req\":\"r1\"}}", ctx_id);
		else
			snprintf(extra, sizeof(extra), ",\"actor\":\"carol\"");
		values[n] = malloc(1024);
		snprintf(values[n], 1024,
			 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"0190c6a4-0000-7000-8000-%012zx\","
			 "\"ts\":\"%s\",\"source\":\"cli-e2e\",\"collection\":\"docs\",\"document_id\":\"d1\","
			 "\"op\":\"%s\"%s%s%s}",
			 i + 1, ts_of[i], ops_of[i], extra, strcmp(ops_of[i], "delete") ? ",\"after\":" : "",
			 strcmp(ops_of[i], "delete") ? docs_of[i] : "");
		keys[n++] = "docs/d1";
	}
	produce(keys, values, n);
	for (size_t i = 0; i < n; i++)
		free(values[i]);
	consume();
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
	mongoc_client_destroy(client);
	ct_history_global_cleanup();
	return 0;
}

static void test_show_reproduces_every_state(void **state)
{
	char args[512];
	for (int v = 1; v <= 5; v++) {
		snprintf(args, sizeof(args), "show docs d1 --version %d", v);
		json_t *a = cli_json(0, args);
		snprintf(args, sizeof(args), "show docs d1 --at %s", ts_of[v - 1]);
		json_t *b = cli_json(0, args);
		assert_int_equal(json_integer_value(json_object_get(a, "version")), v);
		assert_int_equal(json_integer_value(json_object_get(b, "version")), v);
		assert_doc(json_object_get(a, "doc"), docs_of[v - 1]);
		assert_doc(json_object_get(b, "doc"), docs_of[v - 1]);
		assert_int_equal(json_is_true(json_object_get(a, "deleted")), v == 4);
		json_decref(a);
		json_decref(b);
	}
	/* between two versions: the earlier one; before the first: not found */
	json_t *m = cli_json(0, "show docs d1 --at 2024-05-01T10:00:02.500000Z");
	assert_int_equal(json_integer_value(json_object_get(m, "version")), 2);
	json_decref(m);
	assert_int_equal(cli(NULL, "show docs d1 --at 2024-05-01T10:00:00Z"), 1);
	assert_int_equal(cli(NULL, "show docs d1 --version 6"), 1);
	assert_int_equal(cli(NULL, "show docs nosuch"), 1);
	char *out = NULL;
	assert_int_equal(cli(&out, "show docs d1 --version 4"), 0);
	assert_non_null(strstr(out, "deleted"));
	free(out);
}

static void test_log_context_actor_blame(void **state)
{
	json_t *log = cli_json(0, "log docs d1");
	assert_int_equal(json_array_size(log), 5);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(log, 0), "version")), 5);
	json_decref(log);
	log = cli_json(0, "log docs d1 --since 2024-05-01T10:00:02Z --until 2024-05-01T10:00:03Z --format jsonpatch");
	assert_int_equal(json_array_size(log), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(log, 1), "changes"), 0), "op")), "replace");
	json_decref(log);

	char args[256];
	snprintf(args, sizeof(args), "context %s", ctx_id);
	json_t *c = cli_json(0, args);
	assert_string_equal(json_string_value(json_object_get(c, "actor")), "bob");
	assert_int_equal(json_array_size(json_object_get(c, "records")), 3);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "metadata"), "req")), "r1");
	json_decref(c);
	assert_int_equal(cli(NULL, "context 0190c6a4-0000-7000-8000-000000000bad"), 1);

	json_t *a = cli_json(0, "actor carol");
	assert_int_equal(json_array_size(a), 2);
	json_decref(a);

	json_t *b = cli_json(0, "blame docs d1");
	assert_int_equal(json_array_size(b), 1); /* {"a": 9} */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(b, 0), "version")), 5);
	json_decref(b);
	assert_int_equal(cli(NULL, "verify docs d1"), 0);
}

/* Issue #21: --limit N prints the N newest records; --jsonl one JSON record per line. */
static void test_log_limit_and_jsonl(void **state)
{
	json_t *log = cli_json(0, "log docs d1 --limit 2");
	assert_int_equal(json_array_size(log), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(log, 0), "version")), 5);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(log, 1), "version")), 4);
	json_decref(log);
	char *out = NULL;
	assert_int_equal(cli(&out, "log docs d1 --jsonl --limit 3"), 0);
	int lines = 0;
	for (char *l = out, *e; (e = strchr(l, '\n')); l = e + 1, lines++) {
		*e = '\0';
		json_t *r = json_loads(l, 0, NULL);
		if (!json_is_object(r))
			fail_msg("line %d is not one JSON record: %s", lines + 1, l);
		assert_int_equal(json_integer_value(json_object_get(r, "version")), 5 - lines);
		json_decref(r);
	}
	assert_int_equal(lines, 3);
	free(out);
	assert_int_equal(cli(&out, "actor carol --jsonl"), 0);
	lines = 0;
	for (char *l = out; (l = strchr(l, '\n')); l++)
		lines++;
	assert_int_equal(lines, 2);
	free(out);
	/* a date alone and a compound duration are times too */
	log = cli_json(0, "log docs d1 --since 2024-05-01 --until 2024-05-02");
	assert_int_equal(json_array_size(log), 5);
	json_decref(log);
	log = cli_json(0, "log docs d1 --since 1h30m");
	assert_int_equal(json_array_size(log), 0); /* the history is of 2024 */
	json_decref(log);
}

static void test_revert_emit_shows_in_log(void **state)
{
	json_t *r = cli_json(0, "revert docs d1 --version 2 --emit --actor tester");
	assert_doc(json_object_get(r, "state"), docs_of[1]);
	assert_true(json_is_string(json_object_get(r, "event_id")));
	json_decref(r);
	consume();
	json_t *log = cli_json(0, "log docs d1");
	assert_int_equal(json_array_size(log), 6);
	json_t *top = json_array_get(log, 0);
	assert_string_equal(json_string_value(json_object_get(top, "label")), "revert");
	assert_string_equal(json_string_value(json_object_get(top, "actor")), "tester");
	char args[256];
	snprintf(args, sizeof(args), "context %s", json_string_value(json_object_get(top, "context_id")));
	json_t *c = cli_json(0, args);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "metadata"), "command")),
			    "changetrail revert");
	json_decref(c);
	json_decref(log);
	json_t *now = cli_json(0, "show docs d1");
	assert_doc(json_object_get(now, "doc"), docs_of[1]);
	json_decref(now);
	assert_int_equal(cli(NULL, "verify"), 0);
}

static void test_replay_is_identical(void **state)
{
	char into[128], args[256];
	snprintf(into, sizeof(into), "%s_replay", db);
	snprintf(args, sizeof(args), "replay --from earliest --into %s --verify --idle-ms 1200", into);
	json_t *res = cli_json(0, args);
	assert_int_equal(json_array_size(json_object_get(res, "differences")), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "history")), 6);
	json_decref(res);
	drop(into);
}

/* --no-write: every event goes through the consumer and is committed, nothing reaches MongoDB. */
static void test_replay_no_write(void **state)
{
	json_t *res = cli_json(0, "replay --from earliest --no-write --idle-ms 1200");
	assert_true(json_is_null(json_object_get(res, "into")));
	assert_true(json_is_true(json_object_get(res, "no_write")));
	assert_true(json_integer_value(json_object_get(res, "events")) > 0);
	assert_int_equal(json_integer_value(json_object_get(res, "done")),
			 json_integer_value(json_object_get(res, "events")));
	json_decref(res);
	bson_error_t e;
	char **names = mongoc_client_get_database_names_with_opts(client, NULL, &e);
	assert_non_null(names);
	for (char **n = names; *n; n++)
		assert_string_not_equal(*n, "changetrail_replay_null");
	bson_strfreev(names);
}

/* A port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* The sum of the changetrail_events_total{result=...} lines of a /metrics response, -1 when none. */
static long long events_total(const char *text)
{
	static const char name[] = "\nchangetrail_events_total{result=\"";
	long long sum = -1;
	for (const char *at = strstr(text, name); at; at = strstr(at + 1, name)) {
		const char *sp = strchr(at + 1, ' ');
		if (sp)
			sum = (sum < 0 ? 0 : sum) + strtoll(sp + 1, NULL, 10);
	}
	return sum;
}

/*
 * --metrics-listen: the consumer that replay runs (whose configuration says
 * no HTTP otherwise, and which gets no CHANGETRAIL_* variables) serves
 * /metrics and /healthz there while it runs; --idle-ms keeps it up for 4 s
 * once caught up, so the last sample sees every event the replay did.
 */
static void test_replay_metrics_listen(void **state)
{
	char bin[1024], listen[64], outpath[256], errpath[300];
	const char *dir = getenv("CT_BINARY_DIR");
	int port = free_port();
	snprintf(bin, sizeof(bin), "%s/cli/changetrail", dir ? dir : ".");
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	ct_test_unique_name(outpath, sizeof(outpath), "/tmp/ct-cli-replay");
	snprintf(errpath, sizeof(errpath), "%s.err", outpath);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int out = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600), err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		execl(bin, bin, "replay", "--from", "earliest", "--no-write", "--idle-ms", "4000", "--metrics-listen", listen,
		      "--json", "--config", config, (char *)NULL);
		_exit(127);
	}
	bool metrics = false, healthz = false;
	long long last = -1;
	int status = 0;
	int64_t deadline = ct_test_now_us() + 60 * 1000000LL;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (ct_test_now_us() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("replay --metrics-listen %s did not finish in 60 s", listen);
		}
		char *body = ct_test_http_get(port, "/metrics");
		if (body && strstr(body, "HTTP/1.1 200") && events_total(body) >= 0) {
			metrics = true;
			last = events_total(body);
		}
		free(body);
		if (!healthz && (body = ct_test_http_get(port, "/healthz"))) {
			healthz = strstr(body, "HTTP/1.1 200") != NULL;
			free(body);
		}
		usleep(100000);
	}
	char *out = ct_test_read_file(outpath, NULL), *err = ct_test_read_file(errpath, NULL);
	remove(outpath);
	remove(errpath);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("replay --metrics-listen %s: status %d; stderr: %s", listen, status, err ? err : "");
	if (!metrics || !healthz)
		fail_msg("replay --metrics-listen %s: /metrics %s, /healthz %s; stderr: %s", listen,
			 metrics ? "answered" : "never answered with changetrail_events_total",
			 healthz ? "answered" : "never answered 200", err ? err : "");
	json_t *res = json_loads(out ? out : "", 0, NULL);
	assert_non_null(res);
	long long done = (long long)json_integer_value(json_object_get(res, "done"));
	assert_true(done > 0);
	if (last != done)
		fail_msg("the replay did %lld events, its consumer's /metrics said %lld at the end", done, last);
	json_decref(res);
	free(out);
	free(err);

	/* values the consumer's [http] listen would refuse (or that say nothing): a usage error, nothing run */
	static const char *const bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":9464", "localhost:9464",
					  "127.0.0.1:80x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char args[512];
		snprintf(args, sizeof(args), "replay --from earliest --no-write --metrics-listen '%s' 2>%s", bad[i], errpath);
		assert_int_equal(cli(NULL, "%s", args), 2);
		err = ct_test_read_file(errpath, NULL);
		remove(errpath);
		if (!err || !strstr(err, "--metrics-listen") || !strstr(err, "expected HOST:PORT"))
			fail_msg("--metrics-listen '%s': %s", bad[i], err ? err : "(no message)");
		free(err);
	}
}

static void test_scan_backfill_and_deletions(void **state)
{
	char path[256];
	snprintf(path, sizeof(path), "/tmp/%s.jsonl", topic);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"_id\":\"s1\",\"n\":1}\n{\"_id\":\"s2\",\"n\":2}\n", f);
	fclose(f);
	char args[1024], errpath[300];
	/* issue #21: progress on stderr as replay shows it, the last line at the end */
	snprintf(errpath, sizeof(errpath), "%s.err", path);
	snprintf(args, sizeof(args), "scan --from-file %s --collection scanned --actor scanner 2>%s", path, errpath);
	json_t *r = cli_json(0, args);
	assert_int_equal(json_integer_value(json_object_get(r, "emitted")), 2);
	json_decref(r);
	char *err = ct_test_read_file(errpath, NULL);
	remove(errpath);
	if (!err || !strstr(err, "scan: 2 documents read, 2 events emitted, 0 bad, "))
		fail_msg("scan's progress on stderr: %s", err ? err : "(none)");
	free(err);
	f = fopen(path, "w");
	fputs("{\"_id\":\"s1\",\"n\":1}\n", f);
	fclose(f);
	consume();
	snprintf(args, sizeof(args), "scan --from-file %s --collection scanned --delete-only", path);
	r = cli_json(0, args);
	assert_int_equal(json_integer_value(json_object_get(r, "emitted")), 1);
	json_decref(r);
	consume();
	remove(path);
	json_t *s2 = cli_json(0, "show scanned s2");
	assert_true(json_is_true(json_object_get(s2, "deleted")));
	assert_doc(json_object_get(s2, "doc"), "{\"_id\":\"s2\",\"n\":2}");
	json_decref(s2);
	json_t *s1 = cli_json(0, "log scanned s1");
	assert_int_equal(json_array_size(s1), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(s1, 0), "op")), "snapshot");
	json_decref(s1);
}

static void test_prune_keeps_chain_verifiable(void **state)
{
	/* everything but the revert (ts now) is from 2024 */
	json_t *p = cli_json(0, "prune --older-than 1d --collection docs --dry-run");
	assert_int_equal(json_integer_value(json_object_get(p, "records_deleted")), 4);
	json_decref(p);
	assert_int_equal(cli(NULL, "verify docs d1"), 0);
	p = cli_json(0, "prune --older-than 1d --collection docs");
	assert_int_equal(json_integer_value(json_object_get(p, "records_deleted")), 4);
	json_decref(p);
	json_t *log = cli_json(0, "log docs d1");
	assert_int_equal(json_array_size(log), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "op")), "checkpoint");
	json_decref(log);
	assert_int_equal(cli(NULL, "verify"), 0);
	json_t *v5 = cli_json(0, "show docs d1 --version 5");
	assert_doc(json_object_get(v5, "doc"), docs_of[4]);
	json_decref(v5);
	json_t *v6 = cli_json(0, "show docs d1 --version 6");
	assert_doc(json_object_get(v6, "doc"), docs_of[1]);
	json_decref(v6);
	assert_int_equal(cli(NULL, "show docs d1 --version 2"), 1);
	/* a second prune has nothing left to do */
	p = cli_json(0, "prune --older-than 1d");
	assert_int_equal(json_integer_value(json_object_get(p, "records_deleted")), 0);
	json_decref(p);
}

static void test_verify_catches_hand_edit(void **state)
{
	mongoc_collection_t *h = mongoc_client_get_collection(client, db, "history");
	bson_t *sel = BCON_NEW("collection", BCON_UTF8("scanned"), "document_id", BCON_UTF8("s1"));
	bson_t *upd = BCON_NEW("$set", "{", "changes", BCON_UTF8("[[\"add\",\"\",[[\"n\",5]]]]"), "}");
	bson_error_t e;
	assert_true(mongoc_collection_update_one(h, sel, upd, NULL, NULL, &e));
	bson_destroy(sel);
	bson_destroy(upd);
	mongoc_collection_destroy(h);
	char *out = NULL;
	assert_int_equal(cli(&out, "verify"), 1);
	assert_non_null(strstr(out, "scanned/s1 v1: modified"));
	free(out);
	json_t *v = cli_json(1, "verify scanned");
	assert_true(json_array_size(json_object_get(v, "problems")) >= 1);
	json_decref(v);
	assert_int_equal(cli(NULL, "verify docs"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_show_reproduces_every_state),
		cmocka_unit_test(test_log_context_actor_blame),
		cmocka_unit_test(test_log_limit_and_jsonl),
		cmocka_unit_test(test_revert_emit_shows_in_log),
		cmocka_unit_test(test_replay_is_identical),
		cmocka_unit_test(test_replay_no_write),
		cmocka_unit_test(test_replay_metrics_listen),
		cmocka_unit_test(test_scan_backfill_and_deletions),
		cmocka_unit_test(test_prune_keeps_chain_verifiable),
		cmocka_unit_test(test_verify_catches_hand_edit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
