/*
 * test_store_stall.c - health that sees the database: the consumer daemon
 * against the real local Kafka and MongoDB server, the server frozen with
 * SIGSTOP (connections stay open, nothing answers, no error comes) while
 * events arrive. /readyz must turn 503 ("mongodb=stalled") within
 * store_stall_ms + 1 s, /metrics must show the write's age and a stall,
 * /readyz must come back to 200 after SIGCONT, and every event must still
 * be in history afterwards. And a SIGTERM while a write is blocked on the
 * frozen server and the next batch is prepared: the process exits once the
 * shutdown deadline passed and the write ended.
 *
 * The MongoDB server's pid: CT_MONGODB_PID, else the pid file of
 * deploy/local (CT_LOCAL_DIR); only a process whose command line holds
 * "--port <the URI's port>" is ever signalled. Skipped (77) without one.
 */
#include "testutil.h"

#include "changetrail/history.h"

#include <arpa/inet.h>
#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define STALL_MS 1500

static const char *bootstrap, *mongo_uri;
static char topic[128], db[96], config[256], logfile[256];
static pid_t mongo_pid, consumer_pid;
static bool frozen;
static int http_port;
static int produced;

static pid_t find_mongo_pid(void)
{
	char path[512], buf[4096], want[32];
	const char *env = getenv("CT_MONGODB_PID"), *dir = getenv("CT_LOCAL_DIR");
	const char *port = strrchr(mongo_uri, ':');
	long pid = 0;
	if (env && *env) {
		pid = strtol(env, NULL, 10);
	} else {
		snprintf(path, sizeof(path), "%s/mongodb/mongodb.pid", dir && *dir ? dir : "/tmp/changetrail-local");
		char *t = ct_test_read_file(path, NULL);
		if (t)
			pid = strtol(t, NULL, 10);
		free(t);
	}
	if (pid <= 1 || !port)
		return 0;
	snprintf(want, sizeof(want), "--port %d", atoi(port + 1));
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[n] = '\0';
	return strstr(buf, want) ? (pid_t)pid : 0;
}

/* GET path on the consumer's HTTP port: the status, the body in *body (may be NULL). */
static int http_get(const char *path, char **body)
{
	char *resp = ct_test_http_get(http_port, path);
	int status = -1;
	if (resp && sscanf(resp, "HTTP/1.%*d %d", &status) == 1 && body) {
		const char *b = strstr(resp, "\r\n\r\n");
		*body = strdup(b ? b + 4 : "");
	}
	free(resp);
	return status;
}

/* The value of one metric line "name value" in the /metrics text, or -1. */
static double metric(const char *name)
{
	char *body = NULL, key[160];
	double v = -1;
	if (http_get("/metrics", &body) != 200)
		return -1;
	snprintf(key, sizeof(key), "\n%s ", name);
	const char *at = strstr(body, key);
	if (at)
		v = strtod(at + strlen(key), NULL);
	free(body);
	return v;
}

static void produce(int from, int to)
{
	char errstr[512], key[32], value[1024];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	/* event i: version i / 5 + 1 of docs/x<i % 5> */
	for (int i = from; i < to; i++) {
		snprintf(key, sizeof(key), "docs/x%d", i % 5);
		snprintf(value, sizeof(value),
			 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"0190c6a4-0000-7000-8000-%012x\","
			 "\"ts\":\"2024-05-01T10:00:00.%06dZ\",\"source\":\"stall\",\"collection\":\"docs\","
			 "\"document_id\":\"x%d\",\"op\":\"%s\",\"after\":{\"n\":%d}}",
			 i + 1, i, i % 5, i < 5 ? "insert" : "update", i);
		assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
						   RD_KAFKA_V_VALUE(value, strlen(value)),
						   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
				 0);
	}
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
	produced = to;
}

static int64_t history_count(void)
{
	mongoc_client_t *c = mongoc_client_new(mongo_uri);
	mongoc_collection_t *h = mongoc_client_get_collection(c, db, "history");
	bson_t filter = BSON_INITIALIZER;
	int64_t n = mongoc_collection_count_documents(h, &filter, NULL, NULL, NULL, NULL);
	mongoc_collection_destroy(h);
	mongoc_client_destroy(c);
	return n;
}

static int setup(void **state)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	if (!(mongo_pid = find_mongo_pid())) {
		fprintf(stderr, "SKIP: the MongoDB server's pid is unknown (CT_MONGODB_PID or CT_LOCAL_DIR)\n");
		exit(77);
	}
	ct_history_global_init();
	ct_test_unique_name(topic, sizeof(topic), "ctstall");
	ct_test_unique_name(db, sizeof(db), "ctstall");
	for (char *p = db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(config, sizeof(config), "/tmp/%s.ini", topic);
	snprintf(logfile, sizeof(logfile), "/tmp/%s.log", topic);
	FILE *f = fopen(config, "w");
	if (!f)
		return -1;
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\nfetch.wait.max.ms = 100\n"
		   "topic.metadata.refresh.interval.ms = 1000\n[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s\nbatch_ms = 50\nstate_flush_ms = 200\n"
		   "store_stall_ms = %d\nshutdown_timeout_ms = 60000\nlog_level = info\n[http]\nlisten = 127.0.0.1:0\n",
		bootstrap, mongo_uri, db, topic, topic, topic, STALL_MS);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	if (frozen)
		kill(mongo_pid, SIGCONT);
	if (consumer_pid > 0) {
		kill(consumer_pid, SIGKILL);
		waitpid(consumer_pid, NULL, 0);
	}
	mongoc_client_t *c = mongoc_client_new(mongo_uri);
	mongoc_database_t *d = mongoc_client_get_database(c, db);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
	mongoc_client_destroy(c);
	unlink(config);
	unlink(logfile);
	ct_history_global_cleanup();
	return 0;
}

static void start_consumer(void)
{
	char bin[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	consumer_pid = fork();
	assert_true(consumer_pid >= 0);
	if (consumer_pid == 0) {
		if (!freopen(logfile, "w", stderr))
			_exit(127);
		execl(bin, bin, "--config", config, (char *)NULL);
		_exit(127);
	}
	/* its port, from the "consumer started" line */
	for (int i = 0; i < 200 && !http_port; i++) {
		char *log = ct_test_read_file(logfile, NULL);
		const char *at = log ? strstr(log, "http_port=") : NULL;
		if (at)
			http_port = atoi(at + strlen("http_port="));
		free(log);
		if (!http_port)
			usleep(50000);
	}
	assert_true(http_port > 0);
}

static void test_frozen_database_fails_readiness(void **state)
{
	char *body = NULL;
	start_consumer();
	produce(0, 10);
	/* ready and caught up */
	int64_t deadline = ct_test_now_us() + 60000000;
	while ((http_get("/readyz", NULL) != 200 || history_count() < 10) && ct_test_now_us() < deadline)
		usleep(100000);
	assert_int_equal(http_get("/readyz", NULL), 200);
	assert_int_equal(history_count(), 10);
	assert_true(metric("changetrail_store_stalls_total") == 0);

	assert_int_equal(kill(mongo_pid, SIGSTOP), 0);
	frozen = true;
	produce(10, 15);
	int64_t t0 = ct_test_now_us(), t503 = 0;
	int st = 0;
	while (ct_test_now_us() - t0 < (STALL_MS + 4000) * 1000LL) {
		free(body);
		body = NULL;
		if ((st = http_get("/readyz", &body)) == 503) {
			t503 = ct_test_now_us();
			break;
		}
		usleep(50000);
	}
	if (!t503)
		fail_msg("/readyz still %d %s after %d ms frozen", st, body ? body : "", STALL_MS + 4000);
	/* the write starts once the events are fetched (fetch.wait.max.ms 100, batch_ms 50) */
	if (t503 - t0 > (STALL_MS + 1000) * 1000LL)
		fail_msg("/readyz 503 after %lld ms, bound %d + 1000", (long long)((t503 - t0) / 1000), STALL_MS);
	fprintf(stderr, "readyz 503 after %lld ms frozen: %s", (long long)((t503 - t0) / 1000), body);
	assert_non_null(strstr(body, "mongodb=stalled"));
	free(body);
	body = NULL;
	usleep(1000000);
	double age = metric("changetrail_store_oldest_write_age_seconds");
	if (age < STALL_MS / 1000.0)
		fail_msg("write age %.3f s", age);
	assert_true(metric("changetrail_store_stalls_total") >= 1);

	assert_int_equal(kill(mongo_pid, SIGCONT), 0);
	frozen = false;
	deadline = ct_test_now_us() + 30000000;
	while (http_get("/readyz", NULL) != 200 && ct_test_now_us() < deadline)
		usleep(100000);
	assert_int_equal(http_get("/readyz", NULL), 200);
	assert_true(metric("changetrail_store_oldest_write_age_seconds") < STALL_MS / 1000.0);

	/* nothing lost: the frozen batch and the next ones all written */
	produce(15, 20);
	deadline = ct_test_now_us() + 30000000;
	while (history_count() < 20 && ct_test_now_us() < deadline)
		usleep(100000);
	assert_int_equal(history_count(), 20);
	assert_int_equal(kill(consumer_pid, SIGTERM), 0);
	int status;
	assert_int_equal(waitpid(consumer_pid, &status, 0), consumer_pid);
	consumer_pid = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char *log = ct_test_read_file(logfile, NULL);
	assert_non_null(log);
	assert_non_null(strstr(log, "msg=\"mongodb write stalled\""));
	free(log);

	ct_history *h;
	ct_error err;
	json_t *res;
	assert_int_equal(ct_history_open(mongo_uri, db, &h, &err), 0);
	assert_int_equal(ct_history_verify(h, NULL, NULL, &res, &err), 0);
	assert_int_equal(json_array_size(json_object_get(res, "problems")), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "records")), 20);
	json_decref(res);
	ct_history_close(h);
}

/*
 * SIGTERM while a batch is being written to a frozen database and the next
 * one is prepared: the shutdown deadline (2 s) passes, the database comes
 * back, the write ends; the prepared batch will never be written (the
 * deadline) and is dropped, uncommitted, and the process exits 1. Before,
 * the prepared batch held the stop: the process never exited (seen in the
 * reliability suite's mongodb-restart scenario: workers alive minutes after
 * SIGTERM, "Application maximum poll interval exceeded").
 */
static void test_term_during_frozen_write_exits(void **state)
{
	ct_test_unique_name(topic, sizeof(topic), "ctstall-term");
	FILE *f = fopen(config, "w");
	assert_non_null(f);
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\nfetch.wait.max.ms = 100\n"
		   "topic.metadata.refresh.interval.ms = 1000\n[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s\nbatch_size = 5\nbatch_ms = 50\n"
		   "state_flush_ms = 60000\nstore_stall_ms = %d\nshutdown_timeout_ms = 2000\nlog_level = info\n"
		   "[http]\nlisten = 127.0.0.1:0\n",
		bootstrap, mongo_uri, db, topic, topic, topic, STALL_MS);
	fclose(f);
	http_port = 0;
	int64_t before = history_count();
	start_consumer();
	produce(100, 105); /* updates of docs/x0..x4 (the first test's): their states cached */
	int64_t deadline = ct_test_now_us() + 60000000;
	while (history_count() < before + 5 && ct_test_now_us() < deadline)
		usleep(100000);
	assert_int_equal(history_count(), before + 5);

	assert_int_equal(kill(mongo_pid, SIGSTOP), 0);
	frozen = true;
	produce(105, 160); /* 11 batches of cached documents: one written (blocked), the next prepared */
	usleep((STALL_MS + 1000) * 1000);
	assert_int_equal(kill(consumer_pid, SIGTERM), 0);
	usleep(3500000); /* past shutdown_timeout_ms */
	assert_int_equal(kill(mongo_pid, SIGCONT), 0);
	frozen = false;
	int status = 0;
	pid_t got = 0;
	deadline = ct_test_now_us() + 30000000;
	while ((got = waitpid(consumer_pid, &status, WNOHANG)) == 0 && ct_test_now_us() < deadline)
		usleep(100000);
	char *log = ct_test_read_file(logfile, NULL);
	if (got != consumer_pid)
		fail_msg("the consumer did not exit within 30 s of the database's return, after SIGTERM and its "
			 "shutdown deadline; log:\n%s", log ? log : "");
	consumer_pid = 0;
	assert_non_null(log);
	assert_non_null(strstr(log, "msg=\"shutdown deadline passed\""));
	assert_non_null(strstr(log, "msg=\"mongodb write stalled\""));
	free(log);
	/* the deadline passed: uncommitted work is redelivered, the exit status says so */
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frozen_database_fails_readiness),
		cmocka_unit_test(test_term_during_frozen_write_exits),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
