/*
 * test_producer_mock.c - the producer against librdkafka's in-process mock
 * cluster: every event arrives keyed "<collection>/<document_id>" with the
 * schema header and a body the consumer's parser accepts; contexts nest and
 * cross threads, and continue by id elsewhere (ct_context_join); tracked fields and empty updates; and the faults: brokers
 * down then back (nothing lost, per-key order kept), the spool taking over a
 * full queue and replaying in order, the spool surviving a restart.
 */
#include "testutil.h"
#include "changetrail/producer.h"

#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static rd_kafka_t *mock_owner;
static rd_kafka_mock_cluster_t *mc;
static char bootstraps[512];

static int setup(void **state)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	mock_owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(mock_owner);
	mc = rd_kafka_mock_cluster_new(mock_owner, 3);
	assert_non_null(mc);
	snprintf(bootstraps, sizeof(bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(mc));
	return 0;
}

static int teardown(void **state)
{
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(mock_owner);
	return 0;
}

static ct_producer *new_producer(const char *topic, const char *const *extra)
{
	ct_error err;
	ct_producer *p = NULL;
	ct_producer_config *c = ct_producer_config_new();
	assert_non_null(c);
	assert_int_equal(ct_producer_config_set(c, "source", "inventory", &err), CT_OK);
	assert_int_equal(ct_producer_config_set(c, "topic", topic, &err), CT_OK);
	assert_int_equal(ct_producer_config_set(c, "kafka.bootstrap.servers", bootstraps, &err), CT_OK);
	assert_int_equal(ct_producer_config_set(c, "kafka.linger.ms", "5", &err), CT_OK);
	for (; extra && *extra; extra += 2)
		if (ct_producer_config_set(c, extra[0], extra[1], &err))
			fail_msg("%s: %s", extra[0], err.message);
	if (ct_producer_new(c, &p, &err))
		fail_msg("ct_producer_new: %s", err.message);
	ct_producer_config_destroy(c);
	return p;
}

static void new_topic(char *topic, size_t size)
{
	ct_test_unique_name(topic, size, "ct-prod");
	assert_int_equal(rd_kafka_mock_topic_create(mc, topic, 4, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* assert_string_equal() crashes on NULL; this names the message instead. */
#define ASSERT_STR(actual, expected, msg)                                                  \
	do {                                                                               \
		const char *a_ = (actual);                                                 \
		if (!a_ || strcmp(a_, (expected)))                                         \
			fail_msg("%s: got %s, want %s in\n%s", #actual, a_ ? a_ : "NULL",   \
				 (expected), (msg));                                       \
	} while (0)

/* Parses every message as an event (the consumer's parser) or fails. */
static ct_event **parse_all(ct_test_msg *m, size_t n)
{
	ct_event **ev = calloc(n, sizeof(*ev));
	for (size_t i = 0; i < n; i++) {
		ct_error err;
		if (ct_event_parse(m[i].value, m[i].value_len, NULL, &ev[i], &err))
			fail_msg("message %zu rejected by the parser: %s\n%s", i, err.message, m[i].value);
		char key[2048];
		snprintf(key, sizeof(key), "%s/%s", ct_event_collection(ev[i]), ct_event_document_id(ev[i]));
		assert_string_equal(m[i].key, key);
		assert_non_null(m[i].schema_header);
		assert_string_equal(m[i].schema_header, "changetrail.event.v1");
		assert_string_equal(ct_event_source(ev[i]), "inventory");
	}
	return ev;
}

static void free_events(ct_event **ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ct_event_free(ev[i]);
	free(ev);
}

static void test_every_op_arrives_valid(void **state)
{
	char topic[128], id[37];
	ct_error err;
	new_topic(topic, sizeof(topic));
	ct_producer *p = new_producer(topic, NULL);

	assert_int_equal(ct_emit_insert(p, "products", "p1", "{\"sku\":\"A\",\"qty\":1}", &err), CT_OK);
	assert_int_equal(ct_emit_update(p, "products", "p1", "{\"sku\":\"A\",\"qty\":2}", NULL, &err), CT_OK);
	ct_change c = {0};
	c.op = CT_OP_SNAPSHOT;
	c.collection = "products";
	c.document_id = "p1";
	json_t *doc = json_pack("{s:s,s:i,s:{s:i}}", "sku", "A", "qty", 2, "", "$x", 1);
	c.after = doc;
	c.seq = 7;
	assert_int_equal(ct_emit(p, &c, id, &err), CT_OK);
	json_decref(doc);
	assert_int_equal(strlen(id), 36);
	ct_change e = {0};
	e.op = CT_OP_EVENT;
	e.collection = "products";
	e.document_id = "p1";
	e.label = "price-checked";
	e.actor = "job:nightly";
	assert_int_equal(ct_emit(p, &e, NULL, &err), CT_OK);
	ct_change r = {0};
	r.op = CT_OP_RELATION_ADD;
	r.collection = "products";
	r.document_id = "p1";
	r.relation_name = "tags";
	r.relation_collection = "tags";
	r.relation_document_id = "t9";
	assert_int_equal(ct_emit(p, &r, NULL, &err), CT_OK);
	ct_change ch = {0};
	ch.op = CT_OP_INSERT;
	ch.collection = "lines";
	ch.document_id = "l1";
	ch.after_json = "{\"n\":1}";
	ch.parent_collection = "orders";
	ch.parent_document_id = "o1";
	assert_int_equal(ct_emit(p, &ch, NULL, &err), CT_OK);
	assert_int_equal(ct_emit_delete(p, "products", "p1", NULL, &err), CT_OK);
	assert_int_equal(ct_producer_flush(p, 20000, &err), CT_OK);
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	assert_int_equal(st.emitted, 7);
	assert_int_equal(st.delivered, 7);
	assert_int_equal(ct_producer_destroy(p, 5000), 0);

	ct_test_msg *m;
	size_t n = ct_test_consume(bootstraps, topic, 7, 30000, &m);
	assert_int_equal(n, 7);
	ct_event **ev = parse_all(m, n);
	int seen_snapshot = 0, seen_rel = 0, seen_parent = 0, seen_label = 0;
	for (size_t i = 0; i < n; i++) {
		if (ct_event_op(ev[i]) == CT_OP_SNAPSHOT) {
			seen_snapshot = 1;
			assert_string_equal(ct_event_id(ev[i]), id);
			assert_int_equal(ct_event_seq(ev[i]), 7);
			assert_int_equal(json_integer_value(json_object_get(
				json_object_get(ct_event_after(ev[i]), ""), "$x")), 1);
		}
		if (ct_event_op(ev[i]) == CT_OP_RELATION_ADD) {
			seen_rel = 1;
			assert_string_equal(json_string_value(json_object_get(ct_event_relation(ev[i]), "name")),
					    "tags");
		}
		if (ct_event_parent_collection(ev[i])) {
			seen_parent = 1;
			assert_string_equal(ct_event_parent_collection(ev[i]), "orders");
			assert_string_equal(ct_event_parent_document_id(ev[i]), "o1");
		}
		if (ct_event_op(ev[i]) == CT_OP_EVENT) {
			seen_label = 1;
			assert_string_equal(ct_event_label(ev[i]), "price-checked");
			assert_string_equal(ct_event_actor(ev[i]), "job:nightly");
		}
	}
	assert_true(seen_snapshot && seen_rel && seen_parent && seen_label);
	free_events(ev, n);
	ct_test_msgs_free(m, n);
}

static void test_bad_changes_are_refused_with_the_field_named(void **state)
{
	char topic[128];
	ct_error err;
	new_topic(topic, sizeof(topic));
	ct_producer *p = new_producer(topic, NULL);
	struct {
		const char *coll, *id, *after, *needle;
		int code;
	} cases[] = {
		{NULL, "1", "{}", "collection", CT_EINVAL},
		{"a/b", "1", "{}", "'/'", CT_EINVAL},
		{"c", "", "{}", "document_id", CT_EINVAL},
		{"c", "1", NULL, "after", CT_EINVAL},
		{"c", "1", "[1]", "object", CT_EPARSE},
		{"c", "1", "{\"a\":", "end of document", CT_EPARSE},
		{"c", "1", "{\"a\":\"\xff\"}", "UTF-8", CT_EPARSE},
		{"c", "1", "{\"a\":99999999999999999999}", "int64", CT_EPARSE},
		{"c", "\xc3", "{}", "UTF-8", CT_EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = ct_emit_insert(p, cases[i].coll, cases[i].id, cases[i].after, &err);
		if (rc != cases[i].code || !strstr(err.message, cases[i].needle))
			fail_msg("case %zu: rc=%d msg=%s", i, rc, err.message);
	}
	ct_change e = {0};
	e.op = CT_OP_EVENT;
	e.collection = "c";
	e.document_id = "1";
	assert_int_equal(ct_emit(p, &e, NULL, &err), CT_EINVAL);
	assert_non_null(strstr(err.message, "label"));
	ct_change d = {0};
	d.op = CT_OP_DELETE;
	d.collection = "c";
	d.document_id = "1";
	d.after_json = "{}";
	assert_int_equal(ct_emit(p, &d, NULL, &err), CT_EINVAL);
	char big[2100];
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"a\":1}", 7);
	big[sizeof(big) - 1] = '\0';
	ct_producer_destroy(p, 1000);
	const char *small[] = {"max.document.bytes", "2048", NULL};
	p = new_producer(topic, small);
	assert_int_equal(ct_emit_insert(p, "c", "1", big, &err), CT_ELIMIT);
	assert_non_null(strstr(err.message, "max.document.bytes"));
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.emitted, 0);
	ct_producer_destroy(p, 1000);
}

static void test_config_errors(void **state)
{
	ct_error err;
	ct_producer_config *c = ct_producer_config_new();
	ct_producer *p = NULL;
	assert_int_equal(ct_producer_config_set(c, "bogus", "1", &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "bogus"));
	assert_int_equal(ct_producer_config_set(c, "queue.full", "drop", &err), CT_ECONFIG);
	assert_int_equal(ct_producer_config_set(c, "topic", "bad topic", &err), CT_ECONFIG);
	assert_int_equal(ct_producer_config_set(c, "track.users.include", "a,,b", &err), CT_ECONFIG);
	assert_int_equal(ct_producer_config_set(c, "track.users", "a", &err), CT_ECONFIG);
	/* no source */
	assert_int_equal(ct_producer_new(c, &p, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "source"));
	assert_int_equal(ct_producer_config_set(c, "source", "app", &err), CT_OK);
	assert_int_equal(ct_producer_config_set(c, "kafka.sasl.password", "s3cret-value", &err), CT_OK);
	assert_int_equal(ct_producer_config_set(c, "kafka.no.such.property", "s3cret-value", &err), CT_OK);
	assert_int_equal(ct_producer_new(c, &p, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "no.such.property"));
	/* A rejected value is never echoed: it may be a secret. */
	assert_null(strstr(err.message, "s3cret"));
	ct_producer_config_destroy(c);
}

static void test_tracked_fields_and_empty_updates(void **state)
{
	char topic[128];
	ct_error err;
	new_topic(topic, sizeof(topic));
	const char *rules[] = {"track.users.exclude", "password, profile.ssn",
			       "track.orders.include", "status,total", NULL};
	ct_producer *p = new_producer(topic, rules);
	assert_int_equal(ct_emit_insert(p, "users", "u1",
		"{\"name\":\"Ann\",\"password\":\"hunter2\",\"profile\":{\"ssn\":\"123\",\"city\":\"Oslo\"}}",
		&err), CT_OK);
	/* only the password changed: nothing tracked changed, nothing sent */
	assert_int_equal(ct_emit_update(p, "users", "u1",
		"{\"name\":\"Ann\",\"password\":\"new\",\"profile\":{\"ssn\":\"123\",\"city\":\"Oslo\"}}",
		"{\"name\":\"Ann\",\"password\":\"hunter2\",\"profile\":{\"ssn\":\"123\",\"city\":\"Oslo\"}}",
		&err), CT_OK);
	/* identical documents, no rule */
	assert_int_equal(ct_emit_update(p, "misc", "m1", "{\"a\":1}", "{\"a\":1}", &err), CT_OK);
	assert_int_equal(ct_emit_update(p, "orders", "o1", "{\"status\":\"paid\",\"total\":5,\"note\":\"x\"}",
					"{\"status\":\"new\",\"total\":5,\"note\":\"y\"}", &err), CT_OK);
	assert_int_equal(ct_emit_update(p, "orders", "o1", "{\"status\":\"paid\",\"total\":5,\"note\":\"z\"}",
					"{\"status\":\"paid\",\"total\":5,\"note\":\"x\"}", &err), CT_OK);
	assert_int_equal(ct_producer_flush(p, 20000, &err), CT_OK);
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	assert_int_equal(st.emitted, 2);
	assert_int_equal(st.unchanged, 3);
	ct_producer_destroy(p, 5000);

	ct_test_msg *m;
	size_t n = ct_test_consume(bootstraps, topic, 2, 30000, &m);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		/* Excluded values never reach the topic, not even as text. */
		assert_null(strstr(m[i].value, "hunter2"));
		assert_null(strstr(m[i].value, "password"));
		assert_null(strstr(m[i].value, "ssn"));
		assert_null(strstr(m[i].value, "note"));
	}
	ct_event **ev = parse_all(m, n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ct_event_collection(ev[i]), "users"))
			assert_string_equal(json_string_value(json_object_get(
				json_object_get(ct_event_after(ev[i]), "profile"), "city")), "Oslo");
	free_events(ev, n);
	ct_test_msgs_free(m, n);
}

struct worker_arg {
	ct_producer *p;
	ct_context *ctx;
	int n;
	char failure[600]; /* cmocka asserts may not run off the main thread */
};

static void *worker(void *a)
{
	struct worker_arg *w = a;
	ct_error err;
	int step = 0;
	if (ct_context_attach(w->ctx, &err) || (++step, ct_context_enter(w->p, "{\"worker\":\"w1\"}", &err)))
		goto fail;
	for (int i = 0; i < w->n; i++) {
		char id[16];
		snprintf(id, sizeof(id), "w%d", i);
		step = 10 + i;
		if (ct_emit_insert(w->p, "items", id, "{\"x\":1}", &err))
			goto fail;
	}
	step = 100;
	if (ct_context_exit(w->p, &err) || (++step, ct_context_exit(w->p, &err)))
		goto fail;
	return NULL;
fail:
	snprintf(w->failure, sizeof(w->failure), "worker step %d: %s", step, err.message);
	return NULL;
}

static void test_contexts_nest_and_cross_threads(void **state)
{
	char topic[128];
	ct_error err;
	new_topic(topic, sizeof(topic));
	ct_producer *p = new_producer(topic, NULL);

	assert_int_equal(ct_emit_insert(p, "items", "before", "{}", &err), CT_OK); /* no context */
	assert_int_equal(ct_context_enter(p, "{\"user\":\"alice\",\"url\":\"/orders/1\"}", &err), CT_OK);
	ct_context *root = ct_context_current();
	assert_non_null(root);
	char root_id[37];
	snprintf(root_id, sizeof(root_id), "%s", ct_context_id(root));
	assert_int_equal(ct_emit_insert(p, "orders", "1", "{\"total\":5}", &err), CT_OK);
	assert_int_equal(ct_context_enter(p, "{\"import\":\"file.csv\"}", &err), CT_OK);
	assert_int_equal(ct_emit_insert(p, "lines", "1", "{\"n\":1}", &err), CT_OK);
	pthread_t t;
	struct worker_arg w = {p, root, 3, ""};
	assert_int_equal(pthread_create(&t, NULL, worker, &w), 0);
	assert_int_equal(ct_context_exit(p, &err), CT_OK);
	assert_int_equal(ct_context_exit(p, &err), CT_OK);
	pthread_join(t, NULL);
	if (w.failure[0])
		fail_msg("%s", w.failure);
	ct_context_unref(root);
	assert_int_equal(ct_context_exit(p, &err), CT_EINVAL); /* nothing open */
	assert_int_equal(ct_context_enter(p, "[1]", &err), CT_EPARSE);
	assert_int_equal(ct_producer_flush(p, 20000, &err), CT_OK);
	ct_producer_destroy(p, 5000);

	ct_test_msg *m;
	/* before + begin + 2 + 3 worker + end */
	size_t n = ct_test_consume(bootstraps, topic, 8, 30000, &m);
	assert_int_equal(n, 8);
	ct_event **ev = parse_all(m, n);
	int begins = 0, ends = 0, in_ctx = 0;
	for (size_t i = 0; i < n; i++) {
		const char *cid = ct_event_context_id(ev[i]);
		if (!strcmp(ct_event_document_id(ev[i]), "before")) {
			assert_null(cid);
			continue;
		}
		assert_non_null(cid);
		ASSERT_STR(cid, root_id, m[i].value);
		const json_t *md = ct_event_context_metadata(ev[i]);
		ASSERT_STR(json_string_value(json_object_get(md, "user")), "alice", m[i].value);
		if (ct_event_op(ev[i]) == CT_OP_CONTEXT_BEGIN) {
			begins++;
			ASSERT_STR(ct_event_collection(ev[i]), CT_CONTEXT_COLLECTION, m[i].value);
		} else if (ct_event_op(ev[i]) == CT_OP_CONTEXT_END) {
			ends++;
			/* The end marker carries everything accumulated. */
			ASSERT_STR(json_string_value(json_object_get(md, "import")), "file.csv", m[i].value);
			ASSERT_STR(json_string_value(json_object_get(md, "worker")), "w1", m[i].value);
		} else {
			in_ctx++;
			/* the actor comes from the context's "user" */
			ASSERT_STR(ct_event_actor(ev[i]), "alice", m[i].value);
		}
		if (!strcmp(ct_event_collection(ev[i]), "lines"))
			ASSERT_STR(json_string_value(json_object_get(md, "import")), "file.csv", m[i].value);
	}
	assert_int_equal(begins, 1);
	assert_int_equal(ends, 1);
	assert_int_equal(in_ctx, 5);
	free_events(ev, n);
	ct_test_msgs_free(m, n);
}

/* A context continued by id elsewhere (ct_context_join): its id and
 * metadata on the events, nested metadata merged, no markers of its own. */
static void test_context_join_keeps_the_id_without_markers(void **state)
{
	char topic[128];
	ct_error err;
	const char *id = "0190c6a4-0000-7000-8000-00000000c0de";
	new_topic(topic, sizeof(topic));
	ct_producer *p = new_producer(topic, NULL);

	assert_int_equal(ct_context_join(p, "0190C6A4-0000-7000-8000-00000000C0DE", NULL, &err), CT_EINVAL);
	assert_int_equal(ct_context_join(p, "0190c6a4-0000-7000-8000-00000000c0d", NULL, &err), CT_EINVAL);
	assert_int_equal(ct_context_join(p, NULL, NULL, &err), CT_EINVAL);
	assert_int_equal(ct_context_join(p, id, "[1]", &err), CT_EPARSE);
	assert_int_equal(ct_context_join(p, id, "{\"user\":\"alice\"}", &err), CT_OK);
	assert_int_equal(ct_context_enter(p, "{\"task\":\"reindex\"}", &err), CT_OK);
	assert_int_equal(ct_emit_insert(p, "tasks", "1", "{\"done\":true}", &err), CT_OK);
	assert_int_equal(ct_context_exit(p, &err), CT_OK);
	assert_int_equal(ct_context_exit(p, &err), CT_OK);
	assert_int_equal(ct_context_exit(p, &err), CT_EINVAL); /* nothing open */
	assert_int_equal(ct_emit_insert(p, "tasks", "2", "{}", &err), CT_OK);
	assert_int_equal(ct_producer_flush(p, 20000, &err), CT_OK);
	ct_producer_destroy(p, 5000);

	ct_test_msg *m;
	size_t n = ct_test_consume(bootstraps, topic, 2, 30000, &m);
	assert_int_equal(n, 2); /* the two events, no begin or end marker */
	ct_event **ev = parse_all(m, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ct_event_op(ev[i]), CT_OP_INSERT);
		if (!strcmp(ct_event_document_id(ev[i]), "1")) {
			ASSERT_STR(ct_event_context_id(ev[i]), id, m[i].value);
			const json_t *md = ct_event_context_metadata(ev[i]);
			ASSERT_STR(json_string_value(json_object_get(md, "user")), "alice", m[i].value);
			ASSERT_STR(json_string_value(json_object_get(md, "task")), "reindex", m[i].value);
			ASSERT_STR(ct_event_actor(ev[i]), "alice", m[i].value);
		} else {
			assert_null(ct_event_context_id(ev[i]));
		}
	}
	free_events(ev, n);
	ct_test_msgs_free(m, n);
}

/* Checks that per document, seq values arrive strictly increasing and all. */
static void assert_all_in_order(ct_test_msg *m, size_t n, int docs, int per_doc)
{
	int *last = calloc((size_t)docs, sizeof(int));
	int *count = calloc((size_t)docs, sizeof(int));
	for (size_t i = 0; i < n; i++) {
		ct_event *ev;
		assert_int_equal(ct_event_parse(m[i].value, m[i].value_len, NULL, &ev, NULL), CT_OK);
		int d = atoi(ct_event_document_id(ev));
		int s = (int)ct_event_seq(ev);
		if (s <= last[d])
			fail_msg("doc %d: seq %d after %d (order broken)", d, s, last[d]);
		last[d] = s;
		count[d]++;
		ct_event_free(ev);
	}
	for (int d = 0; d < docs; d++)
		assert_int_equal(count[d], per_doc);
	free(last);
	free(count);
}

static void emit_seq(ct_producer *p, int doc, int seq)
{
	ct_error err;
	char id[16], body[64];
	snprintf(id, sizeof(id), "%d", doc);
	snprintf(body, sizeof(body), "{\"v\":%d}", seq);
	ct_change c = {0};
	c.op = seq == 1 ? CT_OP_INSERT : CT_OP_UPDATE;
	c.collection = "docs";
	c.document_id = id;
	c.after_json = body;
	c.seq = seq;
	if (ct_emit(p, &c, NULL, &err))
		fail_msg("emit doc %d seq %d: %s", doc, seq, err.message);
}

static void test_brokers_down_then_back_nothing_lost(void **state)
{
	char topic[128];
	ct_error err;
	new_topic(topic, sizeof(topic));
	ct_producer *p = new_producer(topic, NULL);
	const int docs = 10, per_doc = 30;
	for (int s = 1; s <= per_doc; s++) {
		if (s == per_doc / 3)
			for (int b = 1; b <= 3; b++)
				rd_kafka_mock_broker_set_down(mc, b);
		for (int d = 0; d < docs; d++)
			emit_seq(p, d, s);
	}
	assert_int_equal(ct_producer_flush(p, 1500, &err), CT_ETIMEDOUT);
	for (int b = 1; b <= 3; b++)
		rd_kafka_mock_broker_set_up(mc, b);
	assert_int_equal(ct_producer_flush(p, 60000, &err), CT_OK);
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	assert_int_equal(st.delivered, docs * per_doc);
	assert_int_equal(st.failed, 0);
	ct_producer_destroy(p, 5000);

	ct_test_msg *m;
	size_t n = ct_test_consume(bootstraps, topic, docs * per_doc, 30000, &m);
	assert_int_equal(n, (size_t)(docs * per_doc));
	assert_all_in_order(m, n, docs, per_doc);
	ct_test_msgs_free(m, n);
}

static void test_spool_takes_over_a_full_queue_and_survives_restart(void **state)
{
	char topic[128], spool[256];
	ct_error err;
	new_topic(topic, sizeof(topic));
	snprintf(spool, sizeof(spool), "/tmp/ct-spool-%d.bin", (int)getpid());
	unlink(spool);
	const char *opts[] = {"spool.path", spool, "kafka.queue.buffering.max.messages", "20", NULL};
	const int docs = 5, per_doc = 40;

	for (int b = 1; b <= 3; b++)
		rd_kafka_mock_broker_set_down(mc, b);
	ct_producer *p = new_producer(topic, opts);
	for (int s = 1; s <= per_doc / 2; s++)
		for (int d = 0; d < docs; d++)
			emit_seq(p, d, s);
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	assert_true(st.spooled > 0);
	assert_true(st.queue_full > 0);
	assert_true(st.spool_bytes > 0);
	/* The application stops while the brokers are away: the queue goes
	 * to the spool too, nothing is lost. */
	assert_int_equal(ct_producer_destroy(p, 200), 0);

	/* Next run: older events first, then new ones, all in order. */
	p = new_producer(topic, opts);
	for (int s = per_doc / 2 + 1; s <= per_doc; s++)
		for (int d = 0; d < docs; d++)
			emit_seq(p, d, s);
	for (int b = 1; b <= 3; b++)
		rd_kafka_mock_broker_set_up(mc, b);
	assert_int_equal(ct_producer_flush(p, 60000, &err), CT_OK);
	ct_producer_stats_get(p, &st);
	assert_true(st.spool_replayed > 0);
	assert_int_equal(st.spool_bytes, 0);
	assert_int_equal(ct_producer_destroy(p, 5000), 0);

	ct_test_msg *m;
	size_t n = ct_test_consume(bootstraps, topic, docs * per_doc, 30000, &m);
	assert_int_equal(n, (size_t)(docs * per_doc));
	assert_all_in_order(m, n, docs, per_doc);
	ct_test_msgs_free(m, n);
	unlink(spool);
}

static void test_queue_full_policies(void **state)
{
	char topic[128];
	ct_error err;
	new_topic(topic, sizeof(topic));
	for (int b = 1; b <= 3; b++)
		rd_kafka_mock_broker_set_down(mc, b);
	const char *fail_opts[] = {"queue.full", "fail", "kafka.queue.buffering.max.messages", "5", NULL};
	ct_producer *p = new_producer(topic, fail_opts);
	int rc = CT_OK, i;
	for (i = 0; i < 50 && rc == CT_OK; i++)
		rc = ct_emit_insert(p, "c", "1", "{}", &err);
	assert_int_equal(rc, CT_EQUEUEFULL);
	assert_true(i <= 7);
	ct_producer_destroy(p, 100);

	const char *block_opts[] = {"queue.block.ms", "50", "kafka.queue.buffering.max.messages", "5", NULL};
	p = new_producer(topic, block_opts);
	for (i = 0; i < 5; i++)
		assert_int_equal(ct_emit_insert(p, "c", "1", "{}", &err), CT_OK);
	int64_t t0 = ct_test_now_us();
	assert_int_equal(ct_emit_insert(p, "c", "1", "{}", &err), CT_EQUEUEFULL);
	int64_t waited = ct_test_now_us() - t0;
	assert_true(waited >= 45000 && waited < 1000000);
	assert_non_null(strstr(err.message, "queue.block.ms"));
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	assert_true(st.queue_full >= 1);
	/* no spool: what is still queued at destroy is reported lost */
	assert_int_equal(ct_producer_destroy(p, 100), 5);
	for (int b = 1; b <= 3; b++)
		rd_kafka_mock_broker_set_up(mc, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_every_op_arrives_valid),
		cmocka_unit_test(test_bad_changes_are_refused_with_the_field_named),
		cmocka_unit_test(test_tracked_fields_and_empty_updates),
		cmocka_unit_test(test_contexts_nest_and_cross_threads),
		cmocka_unit_test(test_context_join_keeps_the_id_without_markers),
		cmocka_unit_test(test_brokers_down_then_back_nothing_lost),
		cmocka_unit_test(test_spool_takes_over_a_full_queue_and_survives_restart),
		cmocka_unit_test(test_queue_full_policies),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
