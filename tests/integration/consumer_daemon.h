/*
 * consumer_daemon.h - what the consumer's integration tests share: events,
 * topics created and grown with the admin API, a producer, the daemon run
 * as a process with a config of its own, MongoDB read back. Header-only
 * (static functions): include it in one test program each.
 */
#ifndef CT_CONSUMER_DAEMON_H
#define CT_CONSUMER_DAEMON_H

#include "testutil.h"

#include "bson_json.h"
#include "store.h"

#include <jansson.h>
#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static mongoc_client_t *client;

/* ---- events ---- */

static unsigned long long ev_counter;

static inline void uuid7(char out[37])
{
	unsigned long long ms = (unsigned long long)(ct_test_now_us() / 1000) & 0xffffffffffffull;
	unsigned long long c = ++ev_counter, pid = (unsigned long long)getpid() & 0xffff;
	snprintf(out, 37, "%08llx-%04llx-7%03llx-8%03llx-%04llx%08llx", ms >> 16, ms & 0xffff, (c >> 12) & 0xfff,
		 c & 0xfff, pid, (unsigned long long)(ct_test_now_us() & 0xffffffff));
}

/* An event of `coll`/`id` with {"v": v}: insert for v 1, else update. malloc'd. */
static inline char *event_v(const char *coll, const char *id, int v)
{
	char uid[37], *out = malloc(1024);
	uuid7(uid);
	assert_non_null(out);
	snprintf(out, 1024,
		 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"2024-05-01T10:00:00.%06dZ\","
		 "\"source\":\"dlq\",\"collection\":\"%s\",\"document_id\":\"%s\",\"op\":\"%s\","
		 "\"after\":{\"v\":%d}}",
		 uid, v % 1000000, coll, id, v == 1 ? "insert" : "update", v);
	return out;
}

/* `n` bytes that are not an event: an unterminated JSON string. malloc'd. */
static inline char *junk(size_t n)
{
	char *out = malloc(n + 1);
	assert_non_null(out);
	memset(out, 'a', n);
	memcpy(out, "{\"x\":\"", 6);
	out[n] = '\0';
	return out;
}

typedef struct kmsg {
	const char *key; /* NULL: no key */
	char *value;
	size_t len;
} kmsg;

static inline void kmsg_free(kmsg *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].value);
}

static inline rd_kafka_t *admin_client(void)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	return rk;
}

/* Creates `topic`; max_message_bytes 0 keeps the broker's default. */
static inline void create_topic(const char *topic, int partitions, long max_message_bytes)
{
	char errstr[512], v[32];
	rd_kafka_t *rk = admin_client();
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
	assert_non_null(nt);
	if (max_message_bytes) {
		snprintf(v, sizeof(v), "%ld", max_message_bytes);
		assert_int_equal(rd_kafka_NewTopic_set_config(nt, "max.message.bytes", v), 0);
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
	assert_non_null(ev);
	size_t n;
	const rd_kafka_topic_result_t **tr =
		rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
	assert_int_equal(n, 1);
	if (rd_kafka_topic_result_error(tr[0]))
		fail_msg("create topic %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
	rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

/* Grows `topic` to `total` partitions (the admin API, as an operator would). */
static inline void add_partitions(const char *topic, int total)
{
	char errstr[512];
	rd_kafka_t *rk = admin_client();
	rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(topic, (size_t)total, errstr, sizeof(errstr));
	assert_non_null(np);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
	assert_non_null(ev);
	size_t n;
	const rd_kafka_topic_result_t **tr =
		rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
	assert_int_equal(n, 1);
	if (rd_kafka_topic_result_error(tr[0]))
		fail_msg("add partitions %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
	rd_kafka_event_destroy(ev);
	rd_kafka_NewPartitions_destroy(np);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

static inline rd_kafka_t *producer(void)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "message.max.bytes", "4000000", errstr, sizeof(errstr));
	/* sees added partitions soon, as the consumers do */
	rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "500", errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	return rk;
}

static inline void send_one(rd_kafka_t *rk, const char *topic, const kmsg *m)
{
	rd_kafka_resp_err_t e;
	while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key ? strlen(m->key) : 0),
				      RD_KAFKA_V_VALUE(m->value, m->len ? m->len : strlen(m->value)),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
	       RD_KAFKA_RESP_ERR__QUEUE_FULL)
		rd_kafka_poll(rk, 50);
	assert_int_equal(e, 0);
}

/* Produces in order (one partition each key: order per partition holds). */
static inline void produce(const char *topic, const kmsg *m, size_t n)
{
	rd_kafka_t *rk = producer();
	for (size_t i = 0; i < n; i++)
		send_one(rk, topic, &m[i]);
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
}

/* ---- the daemon ---- */

typedef struct run {
	char topic[128], dlq[160], db[96], group[160], config[256];
} run;

/* `extra`: more [consumer] lines ("" for none). */
static inline void new_run_x(run *r, const char *name, int idle_ms, const char *extra)
{
	ct_test_unique_name(r->topic, sizeof(r->topic), name);
	snprintf(r->dlq, sizeof(r->dlq), "%s.dlq", r->topic);
	snprintf(r->group, sizeof(r->group), "g-%s", r->topic);
	ct_test_unique_name(r->db, sizeof(r->db), "ctdlq");
	for (char *p = r->db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(r->config, sizeof(r->config), "/tmp/%s.ini", r->topic);
	FILE *f = fopen(r->config, "w");
	assert_non_null(f);
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
		   "topic.metadata.refresh.interval.ms = 1000\n"
		   "[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s\ngroup_id = %s\nbatch_size = 50\nbatch_ms = 50\n"
		   "exit_on_idle_ms = %d\nshutdown_timeout_ms = 10000\n%s[http]\nlisten = 127.0.0.1:0\n",
		bootstrap, mongo_uri, r->db, r->topic, r->dlq, r->group, idle_ms, extra);
	fclose(f);
}

static inline void new_run(run *r, const char *name, int idle_ms)
{
	new_run_x(r, name, idle_ms, "");
}

/* Starts the daemon with its stderr (level info) in file `log`. */
static inline pid_t start_daemon_log(const run *r, const char *log)
{
	char bin[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("CHANGETRAIL_CONSUMER_LOG_LEVEL", "info", 1);
		if (!freopen(log, "w", stderr))
			_exit(126);
		execl(bin, bin, "--config", r->config, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static inline pid_t start_daemon(const run *r)
{
	char bin[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("CHANGETRAIL_CONSUMER_LOG_LEVEL", getenv("CT_E2E_VERBOSE") ? "info" : "error", 1);
		execl(bin, bin, "--config", r->config, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static inline int wait_daemon(pid_t pid, int timeout_ms)
{
	int64_t end = ct_test_now_us() + (int64_t)timeout_ms * 1000;
	int status;
	while (ct_test_now_us() < end) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("consumer did not stop within %d ms", timeout_ms);
	return -1;
}

static inline int64_t count(const run *r, const char *coll, bson_t *filter)
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

/* History of one document, version order. */
static inline json_t *history_of(const run *r, const char *coll, const char *id)
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

/* Versions 1..n, each prev_hash the previous hash. */
static inline void assert_chain(const json_t *h, size_t n)
{
	const char *prev = NULL;
	assert_int_equal(json_array_size(h), n);
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

static inline void drop_db(const run *r)
{
	mongoc_database_t *db = mongoc_client_get_database(client, r->db);
	mongoc_database_drop(db, NULL);
	mongoc_database_destroy(db);
	unlink(r->config);
}

static inline int setup(void **state)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ctc_store_global_init();
	client = mongoc_client_new(mongo_uri);
	return client ? 0 : -1;
}

static inline int teardown(void **state)
{
	mongoc_client_destroy(client);
	ctc_store_global_cleanup();
	return 0;
}

#endif
