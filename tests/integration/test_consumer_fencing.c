/*
 * test_consumer_fencing.c - issue 16, the loss cases of fencing and identity,
 * through the real consumer binary against the local Kafka and MongoDB
 * server: (a) a stalled worker (kill -STOP past the session timeout while a
 * spare takes over, then kill -CONT) writes nothing of what it lost; (b) a
 * topic deleted and re-created with new events for the same documents (its
 * offsets start again below the stored last_offset): every new event is
 * recorded; (c) an event id re-used with other content (same document within
 * its last 32 events, same document after more than 32, another document)
 * goes to the DLQ with code EREUSED, without holes in the versions and
 * without losing anything else; (d) a version already taken by another
 * writer is taken back and the event derived again on top of it, never
 * counted as a duplicate. Each asserts the only silent skip is a
 * redelivery: every event produced is a history record or a DLQ message.
 */
#include "testutil.h"

#include "changetrail/history.h"
#include "bson_json.h"
#include "cts_codec.h"
#include "store.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static mongoc_client_t *client;

/* ---- events ---- */

static unsigned long long ev_counter;

/* A UUIDv7-shaped id, unique per run. */
static void uuid7(char out[37])
{
	unsigned long long ms = (unsigned long long)(ct_test_now_us() / 1000) & 0xffffffffffffull;
	unsigned long long c = ++ev_counter, pid = (unsigned long long)getpid() & 0xffff;
	snprintf(out, 37, "%08llx-%04llx-7%03llx-8%03llx-%04llx%08llx", ms >> 16, ms & 0xffff, (c >> 12) & 0xfff,
		 c & 0xfff, pid, (unsigned long long)(ct_test_now_us() & 0xffffffff));
}

/* Builds an event; `extra` is JSON members appended (may be ""). Returns malloc'd text. */
static char *event(const char *coll, const char *id, const char *op, const char *extra)
{
	char uid[37];
	static int seq;
	uuid7(uid);
	seq++;
	size_t cap = strlen(extra) + strlen(coll) + strlen(id) + 512;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	if (snprintf(out, cap,
		     "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"2024-05-01T10:%02d:%02d.%06dZ\","
		     "\"source\":\"e2e\",\"collection\":\"%s\",\"document_id\":\"%s\",\"op\":\"%s\"%s%s}",
		     uid, (seq / 60) % 60, seq % 60, seq % 1000000, coll, id, op, *extra ? "," : "", extra) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

typedef struct kmsg {
	char key[128];
	char *value;
} kmsg;

static void create_topic(const char *topic, int partitions)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
	assert_non_null(ev);
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	size_t n;
	const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
	assert_int_equal(n, 1);
	if (rd_kafka_topic_result_error(tr[0]))
		fail_msg("create topic %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
	rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

static void produce(const char *topic, kmsg *msgs, size_t n)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	for (size_t i = 0; i < n; i++) {
		rd_kafka_resp_err_t e;
		while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(msgs[i].key, strlen(msgs[i].key)),
					      RD_KAFKA_V_VALUE(msgs[i].value, strlen(msgs[i].value)),
					      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
		       RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 50);
		assert_int_equal(e, 0);
	}
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
}

static void add(kmsg *msgs, size_t *n, const char *coll, const char *id, char *value)
{
	assert_non_null(value);
	snprintf(msgs[*n].key, sizeof(msgs[*n].key), "%s/%s", coll, id);
	msgs[(*n)++].value = value;
}

static void free_msgs(kmsg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(msgs[i].value);
}

/* ---- the daemon ---- */

typedef struct run {
	char topic[128], db[96], group[160], config[256];
} run;

static void new_run(run *r, const char *name)
{
	ct_test_unique_name(r->topic, sizeof(r->topic), name);
	snprintf(r->group, sizeof(r->group), "g-%s", r->topic);
	ct_test_unique_name(r->db, sizeof(r->db), "cte2e");
	for (char *p = r->db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(r->config, sizeof(r->config), "/tmp/%s.ini", r->topic);
}

/* Starts the daemon; with `log` its stderr (level info) goes to that file. */
static pid_t start_daemon_log(const run *r, const char *log)
{
	char bin[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* quiet unless something is wrong */
		setenv("CHANGETRAIL_CONSUMER_LOG_LEVEL", getenv("CT_E2E_VERBOSE") || log ? "info" : "warn", 1);
		if (log && !freopen(log, "w", stderr))
			_exit(126);
		execl(bin, bin, "--config", r->config, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static pid_t start_daemon(const run *r)
{
	return start_daemon_log(r, NULL);
}

static int wait_daemon(pid_t pid, int timeout_ms)
{
	int64_t end = ct_test_now_us() + (int64_t)timeout_ms * 1000;
	int status;
	while (ct_test_now_us() < end) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("consumer did not stop within %d ms", timeout_ms);
	return -1;
}

/* ---- MongoDB reads ---- */

static int64_t count(const run *r, const char *coll, bson_t *filter)
{
	bson_error_t e;
	mongoc_collection_t *c = mongoc_client_get_collection(client, r->db, coll);
	bson_t empty = BSON_INITIALIZER;
	int64_t n = mongoc_collection_count_documents(c, filter ? filter : &empty, NULL, NULL, NULL, &e);
	if (n < 0)
		fail_msg("count %s: %s", coll, e.message);
	if (filter)
		bson_destroy(filter);
	mongoc_collection_destroy(c);
	return n;
}

/* History of one document, version order, "changes" parsed. */
static json_t *history_of(const run *r, const char *coll, const char *id)
{
	mongoc_collection_t *c = mongoc_client_get_collection(client, r->db, "history");
	bson_t *filter = BCON_NEW("collection", BCON_UTF8(coll), "document_id", BCON_UTF8(id));
	bson_t *opts = BCON_NEW("sort", "{", "version", BCON_INT32(1), "}");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, opts, NULL);
	const bson_t *doc;
	json_t *arr = json_array();
	while (mongoc_cursor_next(cur, &doc)) {
		json_t *j;
		assert_int_equal(ctc_history_from_bson(doc, &j, NULL), 0);
		json_array_append_new(arr, j);
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	bson_destroy(opts);
	mongoc_collection_destroy(c);
	return arr;
}

static json_t *find_one(const run *r, const char *coll, const char *id)
{
	mongoc_collection_t *c = mongoc_client_get_collection(client, r->db, coll);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
	const bson_t *doc;
	json_t *j = NULL;
	/* stored form v2: dates and user documents through the storage codec */
	if (mongoc_cursor_next(cur, &doc))
		assert_int_equal(!strcmp(coll, "state")      ? cts_state_from_bson(doc, &j, NULL)
				 : !strcmp(coll, "contexts") ? cts_context_from_bson(doc, &j, NULL)
							     : cts_bson_to_json(doc, &j, NULL),
				 0);
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	mongoc_collection_destroy(c);
	return j;
}

static void drop_db(const run *r)
{
	mongoc_database_t *db = mongoc_client_get_database(client, r->db);
	mongoc_database_drop(db, NULL);
	mongoc_database_destroy(db);
	unlink(r->config);
}

/* Versions 1..n, each prev_hash the previous hash: the chain holds. */
static void assert_chain(const json_t *h)
{
	const char *prev = NULL;
	for (size_t i = 0; i < json_array_size(h); i++) {
		json_t *rec = json_array_get(h, i);
		assert_int_equal(json_integer_value(json_object_get(rec, "version")), (json_int_t)i + 1);
		json_t *ph = json_object_get(rec, "prev_hash");
		if (!prev)
			assert_true(json_is_null(ph));
		else
			assert_string_equal(json_string_value(ph), prev);
		prev = json_string_value(json_object_get(rec, "hash"));
	}
}


/* ---- fencing tests ---- */

/* Config with more [kafka] lines (`kafka_extra`) and [consumer] lines (`extra`). */
static void write_config_k(const run *r, int batch_size, int idle_ms, const char *kafka_extra, const char *extra)
{
	FILE *f = fopen(r->config, "w");
	assert_non_null(f);
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\nheartbeat.interval.ms = 1000\n"
		   "topic.metadata.refresh.interval.ms = 1000\n%s"
		   "[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = %s\nbatch_size = %d\nbatch_ms = 50\n"
		   "exit_on_idle_ms = %d\nshutdown_timeout_ms = 10000\n%s[http]\nlisten = 127.0.0.1:0\n",
		bootstrap, kafka_extra, mongo_uri, r->db, r->topic, r->topic, r->group, batch_size, idle_ms, extra);
	fclose(f);
}

static void delete_topic(const char *topic)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
	assert_non_null(ev);
	size_t n;
	const rd_kafka_topic_result_t **tr = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
	assert_int_equal(n, 1);
	if (rd_kafka_topic_result_error(tr[0]))
		fail_msg("delete topic %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
	rd_kafka_event_destroy(ev);
	rd_kafka_DeleteTopic_destroy(dt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

/* create_topic(), retried while the deleted one is still being removed. */
static void recreate_topic(const char *topic)
{
	char errstr[512];
	int64_t end = ct_test_now_us() + 60000000;
	for (;;) {
		rd_kafka_conf_t *conf = rd_kafka_conf_new();
		rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
		rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
		rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, 1, errstr, sizeof(errstr));
		rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
		rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
		assert_non_null(ev);
		size_t n;
		const rd_kafka_topic_result_t **tr =
			rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[0]);
		rd_kafka_event_destroy(ev);
		rd_kafka_NewTopic_destroy(nt);
		rd_kafka_queue_destroy(q);
		rd_kafka_destroy(rk);
		if (!e)
			return;
		if (ct_test_now_us() > end)
			fail_msg("re-create topic %s: %s", topic, rd_kafka_err2str(e));
		usleep(500000);
	}
}

static int cli_verify(const run *r)
{
	char cmd[2048];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(cmd, sizeof(cmd), "%s/cli/changetrail verify --config %s >/dev/null", dir ? dir : ".", r->config);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Versions 1..n without holes, the chain holding, and the state at its history's head. */
static size_t assert_doc(const run *r, const char *coll, const char *id)
{
	json_t *h = history_of(r, coll, id);
	size_t n = json_array_size(h);
	assert_chain(h);
	char key[256];
	snprintf(key, sizeof(key), "%s/%s", coll, id);
	json_t *st = find_one(r, "state", key);
	if (n) {
		assert_non_null(st);
		/* no state behind its history */
		assert_int_equal(json_integer_value(json_object_get(st, "version")), (json_int_t)n);
		assert_string_equal(json_string_value(json_object_get(st, "hash")),
				    json_string_value(json_object_get(json_array_get(h, n - 1), "hash")));
	}
	json_decref(st);
	json_decref(h);
	return n;
}

/* Messages of the DLQ with code `code`. */
static size_t dlq_with_code(const run *r, size_t want, const char *code)
{
	char dlq[160];
	ct_test_msg *got = NULL;
	size_t k = 0;
	snprintf(dlq, sizeof(dlq), "%s.dlq", r->topic);
	size_t ng = ct_test_consume(bootstrap, dlq, want, 15000, &got);
	for (size_t i = 0; i < ng; i++) {
		char *c = ct_test_msg_header(&got[i], "ct-dlq-code");
		if (c && !strcmp(c, code))
			k++;
		free(c);
	}
	ct_test_msgs_free(got, ng);
	return k;
}

/*
 * `rounds` versions of documents d0..d(docs-1) of "items", round by round:
 * the first an insert unless `updates_only`, "again" marking a second
 * incarnation's events.
 */
static void add_rounds(kmsg *m, size_t *n, int docs, int rounds, bool updates_only, bool again)
{
	for (int v = 0; v < rounds; v++)
		for (int d = 0; d < docs; d++) {
			char id[16], extra[64];
			snprintf(id, sizeof(id), "d%d", d);
			snprintf(extra, sizeof(extra), "\"after\":{\"v\":%d%s}", v, again ? ",\"again\":true" : "");
			add(m, n, "items", id, event("items", id, v || updates_only ? "update" : "insert", extra));
		}
}

/*
 * Both incarnations recorded whole: `versions` records per document d0..,
 * each chain intact and its state at its head, the path under test named in
 * the daemon's log, `changetrail verify` clean.
 */
static void assert_all_recorded(const run *r, int docs, int versions, const char *log, const char *logged)
{
	assert_int_equal(count(r, "history", NULL), docs * versions);
	for (int d = 0; d < docs; d++) {
		char id[16];
		snprintf(id, sizeof(id), "d%d", d);
		assert_int_equal(assert_doc(r, "items", id), versions);
	}
	size_t len;
	char *text = ct_test_read_file(log, &len);
	assert_non_null(text);
	assert_true(ct_test_contains(text, len, logged));
	free(text);
	assert_int_equal(cli_verify(r), 0);
}

/* (b) issue 16 case 2: new events at offsets at or below the stored last_offset are new. */
static void test_topic_recreated(void **state)
{
	run r;
	kmsg m[400];
	size_t n = 0;
	const int docs = 5, first = 30, second = 20;
	char log[256];
	new_run(&r, "ctfence-recreate");
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 1);
	add_rounds(m, &n, docs, first, false, false);
	produce(r.topic, m, n);
	write_config_k(&r, 100, 1500, "", "");
	assert_int_equal(wait_daemon(start_daemon(&r), 60000), 0);
	assert_int_equal(count(&r, "history", NULL), docs * first);
	free_msgs(m, n);
	n = 0;

	delete_topic(r.topic);
	recreate_topic(r.topic);
	add_rounds(m, &n, docs, second, true, true);
	produce(r.topic, m, n);
	assert_int_equal(wait_daemon(start_daemon_log(&r, log), 90000), 0);
	/* every new event recorded: none taken for one seen before */
	assert_all_recorded(&r, docs, first + second, log, "offsets went back");
	unlink(log);
	free_msgs(m, n);
	drop_db(&r);
}

/*
 * The same, with the consumer stopped (SIGSTOP) for less than its session
 * timeout while the topic is deleted, re-created and filled past the
 * positions librdkafka keeps for it: continued (SIGCONT), it must not fetch
 * on from those positions, which would skip the new incarnation's first
 * events silently (found by the reliability suite, topic-recreated-stalled).
 */
static void test_topic_recreated_while_stopped(void **state)
{
	run r;
	kmsg m[600];
	size_t n = 0;
	const int docs = 5, first = 30, second = 50;
	char log[256];
	new_run(&r, "ctfence-recreate-stop");
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 1);
	add_rounds(m, &n, docs, first, false, false);
	produce(r.topic, m, n);
	/* a session long enough that the stop does not end it: the group keeps the partition */
	write_config_k(&r, 100, 60000, "session.timeout.ms = 45000\n", "");
	pid_t pid = start_daemon_log(&r, log);
	int64_t end = ct_test_now_us() + 60000000;
	while (count(&r, "history", NULL) < docs * first && ct_test_now_us() < end)
		usleep(100000);
	assert_int_equal(count(&r, "history", NULL), docs * first);
	sleep(2); /* its offsets committed: the position is the end of the first incarnation */
	free_msgs(m, n);
	n = 0;

	assert_int_equal(kill(pid, SIGSTOP), 0);
	delete_topic(r.topic);
	recreate_topic(r.topic);
	add_rounds(m, &n, docs, second, true, true);
	produce(r.topic, m, n); /* 250 events: past the old position, 150 */
	assert_int_equal(kill(pid, SIGCONT), 0);
	end = ct_test_now_us() + 60000000;
	while (count(&r, "history", NULL) < docs * (first + second) && ct_test_now_us() < end)
		usleep(200000);
	sleep(1);
	kill(pid, SIGTERM);
	assert_int_equal(wait_daemon(pid, 30000), 0);
	/* every event of the new incarnation recorded, the first ones too */
	assert_all_recorded(&r, docs, first + second, log, "process continued after a stop");
	if (!getenv("CT_E2E_KEEP_LOGS"))
		unlink(log);
	free_msgs(m, n);
	drop_db(&r);
}

/* Same as event() with a given event id. */
static char *event_with_id(const char *uid, const char *coll, const char *id, const char *op, const char *extra)
{
	char *e = event(coll, id, op, extra);
	char *p = strstr(e, "\"event_id\":\"");
	assert_non_null(p);
	memcpy(p + 12, uid, 36);
	return e;
}

static void id_of(const char *ev, char out[37])
{
	const char *p = strstr(ev, "\"event_id\":\"");
	memcpy(out, p + 12, 36);
	out[36] = '\0';
}

/* (c) issue 16 case 4: a re-used event id goes to the DLQ with its reason; nothing else is lost. */
static void test_event_id_reuse(void **state)
{
	run r;
	kmsg m[128];
	size_t n = 0;
	char a1[37], a2[37], a3[37], extra[64];
	new_run(&r, "ctfence-reuse");
	create_topic(r.topic, 1);
	add(m, &n, "items", "A", event("items", "A", "insert", "\"after\":{\"v\":0}"));
	id_of(m[n - 1].value, a1);
	add(m, &n, "items", "A", event("items", "A", "update", "\"after\":{\"v\":1}"));
	id_of(m[n - 1].value, a2);
	add(m, &n, "items", "A", event("items", "A", "update", "\"after\":{\"v\":2}"));
	id_of(m[n - 1].value, a3);
	/* 1. the same document, within its last 32 events, other content */
	add(m, &n, "items", "A", event_with_id(a2, "items", "A", "update", "\"after\":{\"v\":\"reused\"}"));
	for (int v = 3; v < 43; v++) {
		snprintf(extra, sizeof(extra), "\"after\":{\"v\":%d}", v);
		add(m, &n, "items", "A", event("items", "A", "update", extra));
	}
	/* 2. the same document, more than 32 events later */
	add(m, &n, "items", "A", event_with_id(a1, "items", "A", "update", "\"after\":{\"v\":\"late\"}"));
	add(m, &n, "items", "A", event("items", "A", "update", "\"after\":{\"v\":43}"));
	/* 3. another document */
	add(m, &n, "items", "B", event_with_id(a3, "items", "B", "insert", "\"after\":{\"w\":0}"));
	add(m, &n, "items", "B", event("items", "B", "insert", "\"after\":{\"w\":1}"));
	add(m, &n, "items", "B", event("items", "B", "update", "\"after\":{\"w\":2}"));
	add(m, &n, "items", "A", event("items", "A", "update", "\"after\":{\"v\":44}"));
	/* and a plain redelivery (same id, same content): the one silent skip */
	add(m, &n, "items", "A", strdup(m[n - 1].value));
	produce(r.topic, m, n);
	write_config_k(&r, 500, 1500, "", "");
	assert_int_equal(wait_daemon(start_daemon(&r), 60000), 0);
	/* A: insert + 2 + 40 + 1 + 1 updates, versions 1..45 without a hole */
	assert_int_equal(assert_doc(&r, "items", "A"), 45);
	assert_int_equal(assert_doc(&r, "items", "B"), 2);
	assert_int_equal(count(&r, "history", NULL), 47);
	assert_int_equal(dlq_with_code(&r, 3, "EREUSED"), 3);
	assert_int_equal(cli_verify(&r), 0);
	free_msgs(m, n);
	drop_db(&r);
}

/*
 * A version already taken by another writer (issue 16: another worker, a
 * mis-keyed event, a stale cache) is never a duplicate: the consumer, its
 * state of the document cached at version 1, meets a version 2 written by
 * someone else; its record for the next update collides, is taken back, and
 * the update is derived again on top of what MongoDB holds: version 3.
 */
static void test_version_taken_derived_again(void **state)
{
	run r;
	kmsg m[4];
	size_t n = 0;
	char log[256];
	new_run(&r, "ctfence-vtaken");
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 1);
	add(m, &n, "items", "X", event("items", "X", "insert", "\"after\":{\"v\":1}"));
	produce(r.topic, m, n);
	write_config_k(&r, 100, 30000, "", "state_flush_ms = 200\n");
	pid_t pid = start_daemon_log(&r, log);
	int64_t end = ct_test_now_us() + 30000000;
	while (count(&r, "history", NULL) < 1 && ct_test_now_us() < end)
		usleep(100000);
	assert_int_equal(count(&r, "history", NULL), 1);
	/* another writer's version 2: a copy of version 1 made a manual event */
	mongoc_collection_t *c = mongoc_client_get_collection(client, r.db, "history");
	bson_t *filter = BCON_NEW("collection", BCON_UTF8("items"), "document_id", BCON_UTF8("X"));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
	const bson_t *v1;
	assert_true(mongoc_cursor_next(cur, &v1));
	bson_t v2 = BSON_INITIALIZER, empty;
	bson_iter_t it;
	const char *h1 = NULL;
	assert_true(bson_iter_init_find(&it, v1, "hash"));
	h1 = bson_iter_utf8(&it, NULL);
	char foreign_hash[65];
	memset(foreign_hash, 'f', 64);
	foreign_hash[64] = '\0';
	assert_true(bson_iter_init(&it, v1));
	while (bson_iter_next(&it)) {
		const char *k = bson_iter_key(&it);
		if (!strcmp(k, "_id"))
			BSON_APPEND_UTF8(&v2, "_id", "0190c6a4-0000-7000-8000-0000000f0e16");
		else if (!strcmp(k, "version"))
			BSON_APPEND_INT64(&v2, "version", 2);
		else if (!strcmp(k, "op"))
			BSON_APPEND_UTF8(&v2, "op", "event");
		else if (!strcmp(k, "label"))
			BSON_APPEND_UTF8(&v2, "label", "by another writer");
		else if (!strcmp(k, "changes")) {
			BSON_APPEND_ARRAY_BEGIN(&v2, "changes", &empty);
			bson_append_array_end(&v2, &empty);
		} else if (!strcmp(k, "prev_hash"))
			BSON_APPEND_UTF8(&v2, "prev_hash", h1);
		else if (!strcmp(k, "hash"))
			BSON_APPEND_UTF8(&v2, "hash", foreign_hash);
		else if (strcmp(k, "kafka"))
			bson_append_iter(&v2, k, -1, &it);
	}
	bson_error_t be;
	if (!mongoc_collection_insert_one(c, &v2, NULL, NULL, &be))
		fail_msg("insert: %s", be.message);
	bson_destroy(&v2);
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	mongoc_collection_destroy(c);
	/* the next update, derived by the consumer from its cached version 1 */
	free_msgs(m, n);
	n = 0;
	add(m, &n, "items", "X", event("items", "X", "update", "\"after\":{\"v\":2}"));
	produce(r.topic, m, n);
	end = ct_test_now_us() + 30000000;
	while (count(&r, "history", NULL) < 3 && ct_test_now_us() < end)
		usleep(100000);
	sleep(1);
	kill(pid, SIGTERM);
	assert_int_equal(wait_daemon(pid, 30000), 0);
	json_t *h = history_of(&r, "items", "X");
	assert_int_equal(json_array_size(h), 3);
	assert_chain(h); /* versions 1, 2, 3, each prev_hash the previous hash */
	json_t *last = json_array_get(h, 2);
	assert_string_equal(json_string_value(json_object_get(last, "op")), "update");
	assert_string_equal(json_string_value(json_object_get(last, "prev_hash")), foreign_hash);
	json_decref(h);
	size_t len;
	char *text = ct_test_read_file(log, &len);
	assert_non_null(text);
	assert_true(ct_test_contains(text, len, "version taken: deriving the document again"));
	free(text);
	if (!getenv("CT_E2E_KEEP_LOGS"))
		unlink(log);
	free_msgs(m, n);
	drop_db(&r);
}

/* ---- (a) issue 16 case 1: a stalled worker ---- */

typedef struct loadgen {
	const char *topic;
	long first, count; /* event numbers first..first+count-1 (0 = stop when told) */
	atomic_int stop;
	atomic_long produced;
	pthread_t th;
} loadgen;

/* 20 events a second over 5 documents, until stopped or `count` were produced. */
static void *loadgen_run(void *arg)
{
	loadgen *g = arg;
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	for (long i = g->first; !atomic_load(&g->stop) && (!g->count || i < g->first + g->count); i++) {
		char id[16], key[64], extra[64];
		snprintf(id, sizeof(id), "d%ld", i % 5);
		snprintf(key, sizeof(key), "items/%s", id);
		snprintf(extra, sizeof(extra), "\"after\":{\"n\":%ld}", i);
		char *v = event("items", id, i < 5 ? "insert" : "update", extra);
		rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(g->topic), RD_KAFKA_V_KEY(key, strlen(key)),
				  RD_KAFKA_V_VALUE(v, strlen(v)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		free(v);
		atomic_fetch_add(&g->produced, 1);
		rd_kafka_poll(rk, 0);
		usleep(50000);
	}
	rd_kafka_flush(rk, 30000);
	rd_kafka_destroy(rk);
	return NULL;
}

/*
 * The run: A owns the only partition; A is stopped (kill -STOP)
 * for 23 s while the spare B takes over and finishes (states written); A
 * resumes holding states, batches and offsets of a partition it lost; then
 * more updates come for the same documents. On the code before fencing A
 * wrote its old states over B's newer ones and the next updates were
 * taken for redeliveries: 5 lost, `verify` found states behind history.
 */
static void test_stalled_worker(void **state)
{
	run r;
	char loga[256], logb[256];
	loadgen g = {0}, g2 = {0};
	new_run(&r, "ctfence-stall");
	snprintf(loga, sizeof(loga), "/tmp/%s.a.log", r.topic);
	snprintf(logb, sizeof(logb), "/tmp/%s.b.log", r.topic);
	create_topic(r.topic, 1);
	write_config_k(&r, 100, 120000, "max.poll.interval.ms = 10000\n", "state_flush_ms = 2000\n");
	g.topic = g2.topic = r.topic;
	pthread_create(&g.th, NULL, loadgen_run, &g);
	pid_t a = start_daemon_log(&r, loga);
	/* A owns the only partition and writes; then the spare B joins */
	int64_t end = ct_test_now_us() + 30000000;
	while (count(&r, "history", NULL) < 20 && ct_test_now_us() < end)
		usleep(100000);
	assert_true(count(&r, "history", NULL) >= 20);
	pid_t b = start_daemon_log(&r, logb);
	sleep(3);
	kill(a, SIGSTOP);
	sleep(12); /* past the session timeout: B takes over */
	atomic_store(&g.stop, 1);
	pthread_join(g.th, NULL);
	sleep(11); /* B finishes: everything written, states included */
	kill(a, SIGCONT);
	sleep(4);
	/* the next updates of the same documents */
	g2.first = atomic_load(&g.produced);
	g2.count = 40;
	pthread_create(&g2.th, NULL, loadgen_run, &g2);
	pthread_join(g2.th, NULL);
	long produced = atomic_load(&g.produced) + atomic_load(&g2.produced);
	end = ct_test_now_us() + 30000000;
	while (count(&r, "history", NULL) < produced && ct_test_now_us() < end)
		usleep(200000);
	sleep(3); /* a state write after the last batch */
	kill(a, SIGTERM);
	kill(b, SIGTERM);
	int ra = wait_daemon(a, 30000), rb = wait_daemon(b, 30000);
	/* every event a record, exactly once */
	assert_int_equal(count(&r, "history", NULL), produced);
	size_t total = 0;
	for (int d = 0; d < 5; d++) {
		char id[16];
		snprintf(id, sizeof(id), "d%d", d);
		total += assert_doc(&r, "items", id);
	}
	assert_int_equal(total, (size_t)produced);
	assert_int_equal(cli_verify(&r), 0);
	assert_int_equal(ra, 0);
	assert_int_equal(rb, 0);
	if (!getenv("CT_E2E_KEEP_LOGS")) {
		unlink(loga);
		unlink(logb);
	}
	drop_db(&r);
}

static int setup(void **state)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ctc_store_global_init();
	client = mongoc_client_new(mongo_uri);
	return client ? 0 : -1;
}

static int teardown(void **state)
{
	mongoc_client_destroy(client);
	ctc_store_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_id_reuse),
		cmocka_unit_test(test_topic_recreated),
		cmocka_unit_test(test_topic_recreated_while_stopped),
		cmocka_unit_test(test_version_taken_derived_again),
		cmocka_unit_test(test_stalled_worker),
	};
	if (getenv("CT_TEST_FILTER")) /* one test by name, e.g. when debugging */
		cmocka_set_test_filter(getenv("CT_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
