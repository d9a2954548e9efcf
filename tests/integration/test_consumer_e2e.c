/*
 * test_consumer_e2e.c - changetrail-consumer end to end against the real
 * local Kafka and FerretDB: raw event JSON produced to a unique topic, the
 * daemon binary run with a config naming a unique database, MongoDB read
 * back. Covers the scripted life of documents (insert, updates, empty
 * update, delete, re-create, m2m, child with parent), contexts across
 * collections completed by the end marker, a poison message in the DLQ
 * with its reason while the rest is persisted, kill -9 and restart without
 * loss or duplicates (also with every state still unwritten), SIGTERM
 * writing the states and committing before exit, /metrics /healthz
 * /readyz, the shutdown deadline with MongoDB unreachable (exit 1, nothing
 * committed), a 1 MB prefetch queue that keeps up, and two consumer
 * processes in one group.
 */
#include "testutil.h"

#include "bson_json.h"
#include "changetrail/history.h"
#include "store.h"

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

/* `extra`: more [consumer] lines ("" for none). */
static void write_config_x(const run *r, int batch_size, int idle_ms, const char *extra)
{
	FILE *f = fopen(r->config, "w");
	assert_non_null(f);
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
		   "topic.metadata.refresh.interval.ms = 1000\n"
		   "[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = %s\nbatch_size = %d\nbatch_ms = 50\n"
		   "exit_on_idle_ms = %d\nshutdown_timeout_ms = 10000\n%s[http]\nlisten = 127.0.0.1:0\n",
		bootstrap, mongo_uri, r->db, r->topic, r->topic, r->group, batch_size, idle_ms, extra);
	fclose(f);
}

static void write_config(const run *r, int batch_size, int idle_ms)
{
	write_config_x(r, batch_size, idle_ms, "");
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

static const char *op_at(const json_t *h, size_t i)
{
	return json_string_value(json_object_get(json_array_get(h, i), "op"));
}

/* ---- tests ---- */

static void test_scripted_sequence_contexts_dlq(void **state)
{
	run r;
	kmsg m[32];
	size_t n = 0;
	new_run(&r, "cte2e-script");
	create_topic(r.topic, 2);
	add(m, &n, "orders", "o1", event("orders", "o1", "insert", "\"actor\":\"alice\",\"after\":{\"qty\":1,\"$x\":{\"a.b\":[1]}}"));
	add(m, &n, "orders", "o1", event("orders", "o1", "update", "\"after\":{\"qty\":2,\"$x\":{\"a.b\":[1]}}"));
	add(m, &n, "orders", "o1", event("orders", "o1", "update", "\"after\":{\"qty\":2,\"$x\":{\"a.b\":[1]}}"));
	add(m, &n, "orders", "o2", strdup("{\"this is\": not an event"));
	add(m, &n, "orders", "o1", event("orders", "o1", "delete", ""));
	add(m, &n, "orders", "o1", event("orders", "o1", "insert", "\"after\":{\"qty\":9}"));
	add(m, &n, "orders", "o1", event("orders", "o1", "relation_add",
				       "\"relation\":{\"name\":\"tags\",\"collection\":\"tags\",\"document_id\":\"t1\"}"));
	add(m, &n, "lines", "l1", event("lines", "l1", "insert",
				      "\"after\":{\"sku\":\"A\"},\"parent\":{\"collection\":\"orders\",\"document_id\":\"o1\"}"));
	const char *ctx = "0190c6a4-0000-7000-8000-00000000c0de";
	char extra[512];
	snprintf(extra, sizeof(extra), "\"context\":{\"id\":\"%s\",\"metadata\":{\"req\":\"r1\"}}", ctx);
	add(m, &n, "_changetrail.context", ctx, event("_changetrail.context", ctx, "context_begin", extra));
	snprintf(extra, sizeof(extra),
		 "\"actor\":\"bob\",\"context\":{\"id\":\"%s\",\"metadata\":{\"req\":\"r1\"}},\"after\":{\"n\":1}", ctx);
	add(m, &n, "customers", "c1", event("customers", "c1", "insert", extra));
	snprintf(extra, sizeof(extra),
		 "\"actor\":\"bob\",\"context\":{\"id\":\"%s\",\"metadata\":{\"req\":\"r1\",\"x.y\":2}},\"after\":{\"n\":1}", ctx);
	add(m, &n, "invoices", "i1", event("invoices", "i1", "insert", extra));
	snprintf(extra, sizeof(extra), "\"context\":{\"id\":\"%s\",\"metadata\":{\"req\":\"r1\",\"x.y\":2,\"done\":true}}", ctx);
	add(m, &n, "_changetrail.context", ctx, event("_changetrail.context", ctx, "context_end", extra));
	produce(r.topic, m, n);
	write_config(&r, 500, 1500);
	assert_int_equal(wait_daemon(start_daemon(&r), 60000), 0);

	json_t *h = history_of(&r, "orders", "o1");
	assert_int_equal(json_array_size(h), 5); /* the empty update left nothing */
	assert_chain(h);
	assert_string_equal(op_at(h, 0), "insert");
	assert_string_equal(op_at(h, 1), "update");
	assert_string_equal(op_at(h, 2), "delete");
	assert_string_equal(op_at(h, 3), "insert");
	assert_string_equal(op_at(h, 4), "relation_add");
	json_t *want = json_loads("[[\"add\",\"\",[[\"qty\",9]]]]", 0, NULL);
	assert_true(json_equal(json_object_get(json_array_get(h, 3), "changes"), want));
	json_decref(want);
	/* a key with '$' and '.' round-tripped through changes */
	want = json_loads("[[\"add\",\"\",[[\"qty\",1],[\"$x\",{\"a.b\":[1]}]]]]", 0, NULL);
	assert_true(json_equal(json_object_get(json_array_get(h, 0), "changes"), want));
	json_decref(want);
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "actor")), "alice");
	json_decref(h);

	json_t *st = find_one(&r, "state", "orders/o1");
	assert_non_null(st);
	assert_int_equal(json_integer_value(json_object_get(st, "version")), 5);
	assert_false(json_is_true(json_object_get(st, "deleted")));
	json_t *want_doc = json_pack("{s:i}", "qty", 9);
	assert_true(json_equal(json_object_get(st, "doc"), want_doc)); /* a document, not text */
	json_decref(want_doc);
	json_decref(st);

	h = history_of(&r, "lines", "l1");
	assert_int_equal(json_array_size(h), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(h, 0), "parent"), "document_id")), "o1");
	json_decref(h);
	/* children are found by the parent index */
	assert_int_equal(count(&r, "history", BCON_NEW("parent.collection", BCON_UTF8("orders"),
							"parent.document_id", BCON_UTF8("o1"))), 1);

	/* the context groups both collections and is complete */
	assert_int_equal(count(&r, "history", BCON_NEW("context_id", BCON_UTF8(ctx))), 2);
	/* read as users do: the context's document and any parts, merged */
	ct_history *hh = NULL;
	ct_error herr;
	json_t *c = NULL;
	assert_int_equal(ct_history_open(mongo_uri, r.db, &hh, &herr), CT_OK);
	assert_int_equal(ct_history_context(hh, ctx, &c, &herr), CT_OK);
	ct_history_close(hh);
	assert_true(json_is_true(json_object_get(c, "complete")));
	assert_int_equal(json_integer_value(json_object_get(c, "event_count")), 2);
	assert_string_equal(json_string_value(json_object_get(c, "actor")), "bob");
	json_t *want_md = json_pack("{s:b, s:s, s:i}", "done", 1, "req", "r1", "x.y", 2);
	assert_true(json_equal(json_object_get(c, "metadata"), want_md));
	json_decref(want_md);
	json_t *colls = json_object_get(c, "collections");
	assert_int_equal(json_array_size(colls), 2);
	json_decref(c);

	/* the poison message is in the DLQ with its reason; nothing else is */
	char dlq[160];
	snprintf(dlq, sizeof(dlq), "%s.dlq", r.topic);
	ct_test_msg *got;
	size_t ng = ct_test_consume(bootstrap, dlq, 1, 15000, &got);
	assert_int_equal(ng, 1);
	assert_string_equal(got[0].value, "{\"this is\": not an event");
	assert_string_equal(got[0].key, "orders/o2");
	/* Operators find why and where from: the reason and the original place. */
	const char *hdr[][2] = {{"ct-dlq-code", NULL}, {"ct-dlq-reason", NULL}, {"ct-original-topic", r.topic},
				 {"ct-original-partition", NULL}, {"ct-original-offset", NULL}};
	for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
		char *v = ct_test_msg_header(&got[0], hdr[i][0]);
		if (!v || !*v || (hdr[i][1] && strcmp(v, hdr[i][1])))
			fail_msg("DLQ header %s: %s (all: %s)", hdr[i][0], v ? v : "missing", got[0].headers);
		free(v);
	}
	char *reason = ct_test_msg_header(&got[0], "ct-dlq-reason");
	assert_non_null(strstr(reason, "json"));
	free(reason);
	ct_test_msgs_free(got, ng);
	free_msgs(m, n);
	drop_db(&r);
}

/* Events for `docs` documents, `per_doc` updates each, interleaved. */
static size_t bulk_events(kmsg **out, int docs, int per_doc)
{
	size_t n = 0;
	kmsg *m = calloc((size_t)docs * (size_t)per_doc, sizeof(*m));
	for (int v = 0; v < per_doc; v++)
		for (int d = 0; d < docs; d++) {
			char id[32], extra[128];
			snprintf(id, sizeof(id), "d%d", d);
			snprintf(extra, sizeof(extra), "\"after\":{\"v\":%d,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}", v);
			add(m, &n, "items", id, event("items", id, v ? "update" : "insert", extra));
		}
	*out = m;
	return n;
}

static void assert_all_versions(const run *r, int docs, int per_doc)
{
	assert_int_equal(count(r, "history", NULL), (int64_t)docs * per_doc);
	assert_int_equal(count(r, "state", NULL), docs);
	for (int d = 0; d < docs; d += docs / 5) {
		char id[32];
		snprintf(id, sizeof(id), "d%d", d);
		json_t *h = history_of(r, "items", id);
		assert_int_equal(json_array_size(h), per_doc);
		assert_chain(h);
		json_decref(h);
	}
}

static void test_kill_and_restart_resumes(void **state)
{
	run r;
	kmsg *m;
	const int docs = 100, per_doc = 20;
	new_run(&r, "cte2e-kill");
	create_topic(r.topic, 2);
	size_t n = bulk_events(&m, docs, per_doc);
	produce(r.topic, m, n);
	write_config(&r, 50, 1500);
	pid_t pid = start_daemon(&r);
	/* kill -9 part way: something written, not everything */
	int64_t end = ct_test_now_us() + 30000000;
	while (count(&r, "history", NULL) < 300 && ct_test_now_us() < end)
		usleep(5000);
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	int64_t before = count(&r, "history", NULL);
	assert_true(before >= 300);
	assert_true(before < (int64_t)n);
	/* Generous: a client killed in the middle of a write can leave FerretDB
	 * (SQLite) holding a lock that makes the next writes wait out its busy
	 * timeout and our socket timeout (30 s) before the retry succeeds. */
	assert_int_equal(wait_daemon(start_daemon(&r), 150000), 0);
	assert_all_versions(&r, docs, per_doc);
	free_msgs(m, n);
	free(m);
	drop_db(&r);
}

static void test_two_consumers_one_group(void **state)
{
	run r;
	kmsg *m;
	const int docs = 200, per_doc = 8;
	new_run(&r, "cte2e-group");
	create_topic(r.topic, 4);
	size_t n = bulk_events(&m, docs, per_doc);
	produce(r.topic, m, n);
	write_config(&r, 100, 2500);
	pid_t a = start_daemon(&r), b = start_daemon(&r);
	assert_int_equal(wait_daemon(a, 90000), 0);
	assert_int_equal(wait_daemon(b, 90000), 0);
	assert_all_versions(&r, docs, per_doc);
	free_msgs(m, n);
	free(m);
	drop_db(&r);
}

/* Waits until `coll` holds `n` documents (fails after `ms`). */
static void wait_count(const run *r, const char *coll, int64_t n, int ms)
{
	int64_t end = ct_test_now_us() + (int64_t)ms * 1000, c = -1;
	while (ct_test_now_us() < end && (c = count(r, coll, NULL)) < n)
		usleep(20000);
	if (c != n)
		fail_msg("%s holds %lld documents, expected %lld", coll, (long long)c, (long long)n);
}

/* Sum of the group's committed offsets over `partitions` (an unset one counts -1). */
static int64_t committed_sum(const run *r, int partitions)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "group.id", r->group, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
	for (int i = 0; i < partitions; i++)
		rd_kafka_topic_partition_list_add(parts, r->topic, i);
	/* OffsetFetch only: the group is not joined, the daemon's assignment is untouched */
	assert_int_equal(rd_kafka_committed(rk, parts, 15000), 0);
	int64_t sum = 0;
	for (int i = 0; i < parts->cnt; i++)
		sum += parts->elems[i].offset >= 0 ? parts->elems[i].offset : -1;
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	return sum;
}

/* The daemon's HTTP port, from its "consumer started" log line. */
static int http_port_of(const char *log)
{
	int64_t end = ct_test_now_us() + 20000000;
	while (ct_test_now_us() < end) {
		char *text = ct_test_read_file(log, NULL);
		const char *p = text ? strstr(text, "http_port=") : NULL;
		int port = p ? atoi(p + 10) : 0;
		free(text);
		if (port > 0)
			return port;
		usleep(50000);
	}
	fail_msg("no http_port in %s", log);
	return 0;
}

/* GET `path`; returns the whole response (status line, headers, body), malloc'd. */
static char *http_get(int port, const char *path)
{
	char *resp = ct_test_http_get(port, path);
	assert_non_null(resp); /* the daemon listens */
	return resp;
}

static void assert_metric(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("metrics lack \"%s\":\n%s", line, text);
}

/*
 * States are written every state_flush_ms (here: never before the stop), so
 * nothing may be committed before that. SIGTERM writes them, commits
 * everything and exits 0; /metrics, /healthz and /readyz answer meanwhile.
 */
static void test_sigterm_writes_states_and_commits(void **state)
{
	run r;
	kmsg *m;
	char log[300];
	const int docs = 50, per_doc = 10;
	new_run(&r, "cte2e-term");
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 2);
	size_t n = bulk_events(&m, docs, per_doc);
	produce(r.topic, m, n);
	write_config_x(&r, 100, 0, "state_flush_ms = 600000\n");
	pid_t pid = start_daemon_log(&r, log);
	int port = http_port_of(log);
	wait_count(&r, "history", (int64_t)n, 60000);

	/* history is in, states wait: nothing stored, nothing committed */
	assert_int_equal(count(&r, "state", NULL), 0);
	assert_int_equal(committed_sum(&r, 2), -2);
	char *body = http_get(port, "/metrics");
	assert_non_null(strstr(body, "HTTP/1.1 200"));
	assert_non_null(strstr(body, "text/plain; version=0.0.4"));
	char want[300];
	snprintf(want, sizeof(want), "changetrail_events_total{result=\"persisted\"} %zu\n", n);
	assert_metric(body, want);
	assert_metric(body, "changetrail_events_total{result=\"dlq\"} 0\n");
	assert_metric(body, "changetrail_state_writes_total 0\n");
	assert_metric(body, "changetrail_assigned_partitions 2\n");
	assert_metric(body, "changetrail_paused 0\n");
	assert_metric(body, "changetrail_batch_size_bucket{le=\"+Inf\"} ");
	/* issue #21: lag per partition with its labels (measured every second), build_info, process_* */
	for (int part = 0; part < 2; part++) {
		snprintf(want, sizeof(want), "changetrail_consumer_partition_lag{topic=\"%s\",partition=\"%d\"} ", r.topic,
			 part);
		for (int tries = 0; !strstr(body, want) && tries < 50; tries++) {
			usleep(100000);
			free(body);
			body = http_get(port, "/metrics");
		}
		assert_metric(body, want);
	}
	assert_metric(body, "changetrail_build_info{version=\"");
	assert_metric(body, "\nprocess_resident_memory_bytes ");
	assert_metric(body, "\nprocess_open_fds ");
	assert_null(strstr(body, "changetrail_dlq_total"));
	free(body);
	body = http_get(port, "/healthz");
	assert_non_null(strstr(body, "HTTP/1.1 200"));
	free(body);
	body = http_get(port, "/readyz");
	if (!strstr(body, "HTTP/1.1 200") || !strstr(body, "assigned=yes mongodb=ok"))
		fail_msg("/readyz: %s", body);
	free(body);
	body = http_get(port, "/nothing-here");
	assert_non_null(strstr(body, "HTTP/1.1 404"));
	free(body);

	/* SIGTERM: states written, offsets committed, exit 0 */
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(wait_daemon(pid, 30000), 0);
	assert_all_versions(&r, docs, per_doc);
	assert_int_equal(committed_sum(&r, 2), (int64_t)n);
	char *text = ct_test_read_file(log, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "msg=\"states written\""));
	assert_non_null(strstr(text, "reason=SIGTERM"));
	free(text);
	unlink(log);
	free_msgs(m, n);
	free(m);
	drop_db(&r);
}

/*
 * kill -9 with all history written and no state: the restart rebuilds the
 * same records from the older (empty) states, finds them in `history`
 * (duplicates), writes the states, and nothing is lost or doubled.
 */
static void test_kill_before_states_written(void **state)
{
	run r;
	kmsg *m;
	char log[300];
	const int docs = 40, per_doc = 5;
	new_run(&r, "cte2e-kill-state");
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 2);
	size_t n = bulk_events(&m, docs, per_doc);
	produce(r.topic, m, n);
	write_config_x(&r, 50, 0, "state_flush_ms = 600000\n");
	pid_t pid = start_daemon(&r);
	wait_count(&r, "history", (int64_t)n, 60000);
	assert_int_equal(count(&r, "state", NULL), 0);
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);

	write_config(&r, 50, 1500);
	assert_int_equal(wait_daemon(start_daemon_log(&r, log), 150000), 0);
	assert_all_versions(&r, docs, per_doc);
	char *text = ct_test_read_file(log, NULL), want[96];
	assert_non_null(text);
	snprintf(want, sizeof(want), "persisted=0 duplicate=%zu", n);
	if (!strstr(text, want))
		fail_msg("restart log lacks \"%s\":\n%s", want, text);
	free(text);
	unlink(log);
	free_msgs(m, n);
	free(m);
	drop_db(&r);
}

/*
 * cache_max_mb bounds the state cache: 200 documents of ~20 KB (~5 MB of
 * trees) through a 1 MB cache, with no timed state write. The changed
 * states passing the bound force state writes mid-run, the written ones
 * are evicted, and the next event of such a document reads its state back
 * from MongoDB; a state whose write is still in flight stays cached (read
 * back, it would be the older one). Every history is whole, its chain
 * intact, and each update records only what changed.
 */
static void test_cache_bound_evicts_and_reads_back(void **state)
{
	run r;
	char log[300];
	const int docs = 200, per_doc = 3;
	enum { PAD = 20000 };
	new_run(&r, "cte2e-cache-bound");
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 1); /* batches in the order produced */
	char *pad = malloc(PAD + 1), *extra = malloc(PAD + 128);
	assert_non_null(pad);
	assert_non_null(extra);
	memset(pad, 'p', PAD);
	pad[PAD] = '\0';
	kmsg *m = calloc((size_t)docs * per_doc, sizeof(*m));
	size_t n = 0;
	/* blocks of one batch of documents, each changed in 3 batches in a row:
	 * the batch after a state write changes the very documents whose
	 * states that write holds, while it is still being written */
	for (int b = 0; b < docs; b += 50)
		for (int v = 0; v < per_doc; v++)
			for (int d = b; d < b + 50 && d < docs; d++) {
				char id[32];
				snprintf(id, sizeof(id), "d%d", d);
				snprintf(extra, PAD + 128, "\"after\":{\"v\":%d,\"pad\":\"%s\"}", v, pad);
				add(m, &n, "items", id, event("items", id, v ? "update" : "insert", extra));
			}
	produce(r.topic, m, n);
	write_config_x(&r, 50, 1500, "state_flush_ms = 600000\ncache_max_mb = 1\n");
	assert_int_equal(wait_daemon(start_daemon_log(&r, log), 150000), 0);

	assert_int_equal(count(&r, "history", NULL), (int64_t)n);
	assert_int_equal(count(&r, "state", NULL), docs);
	for (int d = 0; d < docs; d += 7) {
		char id[32];
		snprintf(id, sizeof(id), "d%d", d);
		json_t *h = history_of(&r, "items", id);
		assert_int_equal(json_array_size(h), per_doc);
		assert_chain(h);
		for (int v = 1; v < per_doc; v++) {
			json_t *ch = json_object_get(json_array_get(h, (size_t)v), "changes");
			if (json_array_size(ch) != 1 || strcmp(json_string_value(json_array_get(json_array_get(ch, 0), 0)), "change"))
				fail_msg("%s version %d: changes %s", id, v + 1, json_dumps(ch, JSON_COMPACT));
		}
		json_decref(h);
	}
	/* the bound, not the timer (10 minutes) nor the stop, wrote states */
	char *text = ct_test_read_file(log, NULL);
	assert_non_null(text);
	int written = 0;
	for (const char *q = strstr(text, "committed=yes"); q; q = strstr(q + 1, "committed=yes"))
		written++;
	if (written < 3)
		fail_msg("%d state writes, want several forced by cache_max_mb:\n%s", written, text);
	free(text);
	unlink(log);
	free_msgs(m, n);
	free(m);
	free(pad);
	free(extra);
	drop_db(&r);
}

/*
 * A prefetch queue far smaller than what the consumer drains per second
 * (1 MB against ~35 MB of events, no_write): librdkafka 2.0 looks at the
 * full queue again only when something wakes its broker thread, at the
 * latest a second later: 7-9 s from the first event to the last batch
 * here. Woken as the queue empties (fetchwake.h), or with librdkafka's own
 * fetch.queue.backoff.ms where it has it: 0.07 s, 0.44 s under ASan.
 */
static void test_small_prefetch_keeps_fetching(void **state)
{
	run r;
	char log[300];
	enum { EVENTS = 16000, PAD = 2000 };
	new_run(&r, "cte2e-prefetch");
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 1);
	char *pad = malloc(PAD + 1), *extra = malloc(PAD + 128);
	assert_non_null(pad);
	assert_non_null(extra);
	memset(pad, 'p', PAD);
	pad[PAD] = '\0';
	kmsg *m = calloc(EVENTS, sizeof(*m));
	size_t n = 0;
	for (int i = 0; i < EVENTS; i++) {
		char id[32];
		snprintf(id, sizeof(id), "d%d", i % 500);
		snprintf(extra, PAD + 128, "\"after\":{\"v\":%d,\"pad\":\"%s\"}", i, pad);
		add(m, &n, "items", id, event("items", id, i < 500 ? "insert" : "update", extra));
	}
	produce(r.topic, m, n);
	FILE *f = fopen(r.config, "w");
	assert_non_null(f);
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\nqueued.max.messages.kbytes = 1024\n"
		   "[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = %s\nbatch_size = 500\nbatch_ms = 50\n"
		   "exit_on_idle_ms = 1000\nno_write = true\n[http]\nlisten =\n",
		bootstrap, mongo_uri, r.db, r.topic, r.topic, r.group);
	fclose(f);
	assert_int_equal(wait_daemon(start_daemon_log(&r, log), 120000), 0);

	char *text = ct_test_read_file(log, NULL);
	assert_non_null(text);
	const char *stopped = strstr(text, "msg=\"consumer stopped\"");
	const char *started = strstr(text, "msg=\"consumer started\"");
	assert_non_null(started);
	assert_non_null(stopped);
	char events[32];
	snprintf(events, sizeof(events), " events=%d ", EVENTS);
	if (!strstr(stopped, events))
		fail_msg("not all %d events consumed:\n%s", EVENTS, text);
	double active_ms = strtod(strstr(stopped, "history_active_ms=") + 18, NULL);
	long wakeups = strtol(strstr(stopped, "fetch_wakeups=") + 14, NULL, 10);
	/* woken by our requests (librdkafka < 2.2): each quarter of 1 MB drained sends one round */
	if (strstr(started, "fetch_wakeup=thread") && wakeups < 8)
		fail_msg("%ld fetch wake-ups for ~16 MB through a 1 MB queue:\n%s", wakeups, text);
	if (active_ms > 4000)
		fail_msg("%.0f ms from the first event to the last batch, %d events of ~2 KB through a 1 MB "
			 "prefetch queue: the fetcher waited\n%s",
			 active_ms, EVENTS, text);
	free(text);
	unlink(log);
	free_msgs(m, n);
	free(m);
	free(pad);
	free(extra);
	drop_db(&r);
}

/*
 * MongoDB unreachable and SIGTERM: the consumer gives up at
 * shutdown_timeout_ms, commits nothing and exits 1 (a clean exit would tell
 * an orchestrator that the stop lost nothing).
 */
static void test_deadline_exits_1_uncommitted(void **state)
{
	run r;
	kmsg *m;
	char log[300];
	new_run(&r, "cte2e-deadline");
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 1);
	size_t n = bulk_events(&m, 5, 2);
	produce(r.topic, m, n);
	/* port 9 (discard) on loopback: nothing listens, connections are refused */
	FILE *f = fopen(r.config, "w");
	assert_non_null(f);
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
		   "[mongodb]\nuri = mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300&connectTimeoutMS=300\n"
		   "database = %s\n[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = %s\nbatch_size = 10\n"
		   "batch_ms = 50\nshutdown_timeout_ms = 2000\n[http]\nlisten = 127.0.0.1:0\n",
		bootstrap, r.db, r.topic, r.topic, r.group);
	fclose(f);
	pid_t pid = start_daemon_log(&r, log);
	/* wait until it holds the events and fails to write them */
	int64_t end = ct_test_now_us() + 60000000;
	char *text = NULL;
	while (ct_test_now_us() < end) {
		free(text);
		text = ct_test_read_file(log, NULL);
		if (text && strstr(text, "mongodb failed, will retry"))
			break;
		usleep(100000);
	}
	if (!text || !strstr(text, "mongodb failed, will retry"))
		fail_msg("no \"mongodb failed, will retry\" in the log:\n%s", text ? text : "");
	free(text);
	int64_t t0 = ct_test_now_us();
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(wait_daemon(pid, 20000), 1);
	int64_t ms = (ct_test_now_us() - t0) / 1000;
	if (ms < 1500 || ms > 12000)
		fail_msg("stopped %lld ms after SIGTERM with shutdown_timeout_ms = 2000", (long long)ms);
	assert_int_equal(committed_sum(&r, 1), -1);
	text = ct_test_read_file(log, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "msg=\"shutdown deadline passed\""));
	free(text);
	unlink(log);
	unlink(r.config);
	free_msgs(m, n);
	free(m);
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
		cmocka_unit_test(test_scripted_sequence_contexts_dlq),
		cmocka_unit_test(test_kill_and_restart_resumes),
		cmocka_unit_test(test_sigterm_writes_states_and_commits),
		cmocka_unit_test(test_kill_before_states_written),
		cmocka_unit_test(test_cache_bound_evicts_and_reads_back),
		cmocka_unit_test(test_small_prefetch_keeps_fetching),
		cmocka_unit_test(test_deadline_exits_1_uncommitted),
		cmocka_unit_test(test_two_consumers_one_group),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
