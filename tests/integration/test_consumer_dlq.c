/*
 * test_consumer_dlq.c - changetrail-consumer against the real local Kafka
 * and MongoDB server: dead letters that always fit and keys checked.
 * Refused events between 1,000,000 bytes and 1 MiB and over 1 MiB, with a
 * DLQ topic of the broker's defaults and one with a small max.message.bytes:
 * each ends in the DLQ (whole, or as a stub naming its size and SHA-256), the
 * worker goes on and the events behind them are written. Wrong and missing
 * keys with two workers go to the DLQ (code EKEY) while the correctly keyed
 * events of the same document are all recorded with continuous versions.
 */
#include "consumer_daemon.h"

#include "changetrail/canonical.h"

static void sha_hex(const void *p, size_t n, char out[65])
{
	uint8_t d[32];
	ct_sha256(p, n, d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void assert_header(const ct_test_msg *m, const char *name, const char *want)
{
	char *v = ct_test_msg_header(m, name);
	if (!v || (want && strcmp(v, want)) || (!want && !*v))
		fail_msg("DLQ header %s: %s, want %s (all: %s)", name, v ? v : "missing", want ? want : "any",
			 m->headers);
	free(v);
}

/* m is the stub of `orig` (produced at `offset` of partition 0 of r->topic). */
static void assert_stub(const run *r, const ct_test_msg *m, const kmsg *orig, int64_t offset, const char *code)
{
	char off[24], sha[65];
	assert_header(m, "ct-dlq-stub", "1");
	assert_header(m, "ct-dlq-code", code);
	assert_header(m, "ct-dlq-reason", NULL);
	assert_header(m, "ct-original-topic", r->topic);
	snprintf(off, sizeof(off), "%lld", (long long)offset);
	assert_header(m, "ct-original-offset", off);
	assert_true(m->value_len < 4096); /* bounded */
	json_error_t je;
	json_t *v = json_loadb(m->value, m->value_len, 0, &je);
	if (!v)
		fail_msg("stub value is not JSON: %s", je.text);
	sha_hex(orig->value, orig->len, sha);
	assert_string_equal(json_string_value(json_object_get(v, "sha256")), sha);
	assert_int_equal(json_integer_value(json_object_get(v, "size")), (json_int_t)orig->len);
	assert_string_equal(json_string_value(json_object_get(v, "key")), orig->key);
	assert_string_equal(json_string_value(json_object_get(v, "topic")), r->topic);
	assert_string_equal(json_string_value(json_object_get(v, "code")), code);
	assert_true(json_string_length(json_object_get(v, "reason")) > 0);
	assert_int_equal(json_integer_value(json_object_get(v, "partition")), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "offset")), offset);
	json_decref(v);
	assert_string_equal(m->key, orig->key);
}

/* The dead letters by their original offset (a stub may come after later ones). */
static void by_offset(const ct_test_msg *got, size_t ng, const ct_test_msg **out, size_t nout)
{
	for (size_t i = 0; i < nout; i++)
		out[i] = NULL;
	for (size_t i = 0; i < ng; i++) {
		char *o = ct_test_msg_header(&got[i], "ct-original-offset");
		assert_non_null(o);
		long k = atol(o);
		free(o);
		assert_true(k >= 0 && (size_t)k < nout);
		assert_null(out[k]);
		out[k] = &got[i];
	}
}

/* ---- tests ---- */

/*
 * DLQ topic of the broker's defaults (max.message.bytes 1,048,588): a refused
 * 1,000,500-byte message fits whole (librdkafka's own default producer limit
 * of 1,000,000 refused it: exit 1 on every restart), 1,100,000 bytes are
 * refused by the broker (delivery report) and 1,500,000 by our producer
 * itself: both stubs. Everything behind them is written.
 */
static void test_large_refused_events_default_dlq(void **state)
{
	run r;
	new_run(&r, "ctdlq-big", 4000);
	create_topic(r.topic, 1, 4000000); /* the source takes them; the DLQ keeps the defaults */
	create_topic(r.dlq, 1, 0);
	kmsg m[7] = {{"big/d", event_v("big", "d", 1), 0}, {"big/d", junk(1000500), 1000500},
		     {"big/d", event_v("big", "d", 2), 0}, {"big/d", junk(1100000), 1100000},
		     {"big/d", event_v("big", "d", 3), 0}, {"big/d", junk(1500000), 1500000},
		     {"big/d", event_v("big", "d", 4), 0}};
	produce(r.topic, m, 7);
	assert_int_equal(wait_daemon(start_daemon(&r), 120000), 0);

	json_t *h = history_of(&r, "big", "d");
	assert_chain(h, 4);
	json_decref(h);

	ct_test_msg *got;
	size_t ng = ct_test_consume(bootstrap, r.dlq, 3, 20000, &got);
	assert_int_equal(ng, 3);
	const ct_test_msg *d[7];
	by_offset(got, ng, d, 7);
	/* whole: same bytes, the usual headers, no stub mark */
	assert_non_null(d[1]);
	assert_int_equal(d[1]->value_len, 1000500);
	assert_memory_equal(d[1]->value, m[1].value, 1000500);
	assert_header(d[1], "ct-dlq-code", "EPARSE");
	assert_null(ct_test_msg_header(d[1], "ct-dlq-stub"));
	assert_non_null(d[3]);
	assert_stub(&r, d[3], &m[3], 3, "ELIMIT");
	assert_non_null(d[5]);
	assert_stub(&r, d[5], &m[5], 5, "ELIMIT");
	ct_test_msgs_free(got, ng);
	kmsg_free(m, 7);
	drop_db(&r);
}

/*
 * A small max_event_bytes (64 KiB) refuses more, not less: a refused
 * 500,000-byte event still fits whole in a DLQ topic of the defaults.
 */
static void test_small_event_limit_refused_whole(void **state)
{
	run r;
	new_run_x(&r, "ctdlq-limit", 4000, "max_event_bytes = 65536\n");
	create_topic(r.topic, 1, 0);
	create_topic(r.dlq, 1, 0);
	kmsg m[3] = {{"l/d", event_v("l", "d", 1), 0}, {"l/d", junk(500000), 500000}, {"l/d", event_v("l", "d", 2), 0}};
	produce(r.topic, m, 3);
	assert_int_equal(wait_daemon(start_daemon(&r), 120000), 0);
	json_t *h = history_of(&r, "l", "d");
	assert_chain(h, 2);
	json_decref(h);
	ct_test_msg *got;
	size_t ng = ct_test_consume(bootstrap, r.dlq, 1, 20000, &got);
	assert_int_equal(ng, 1);
	assert_null(ct_test_msg_header(&got[0], "ct-dlq-stub"));
	assert_int_equal(got[0].value_len, 500000);
	assert_header(&got[0], "ct-dlq-code", "ELIMIT");
	ct_test_msgs_free(got, ng);
	kmsg_free(m, 3);
	drop_db(&r);
}

/* A DLQ topic with a small max.message.bytes: what does not fit is a stub, the rest whole. */
static void test_small_dlq_topic_stubs(void **state)
{
	run r;
	new_run(&r, "ctdlq-small", 4000);
	create_topic(r.topic, 1, 0);
	create_topic(r.dlq, 1, 60000);
	kmsg m[5] = {{"s/d", event_v("s", "d", 1), 0}, {"s/d", junk(200000), 200000},
		     {"s/d", junk(100), 100}, {"s/d", junk(70000), 70000}, {"s/d", event_v("s", "d", 2), 0}};
	produce(r.topic, m, 5);
	assert_int_equal(wait_daemon(start_daemon(&r), 120000), 0);
	json_t *h = history_of(&r, "s", "d");
	assert_chain(h, 2);
	json_decref(h);
	ct_test_msg *got;
	size_t ng = ct_test_consume(bootstrap, r.dlq, 3, 20000, &got);
	assert_int_equal(ng, 3);
	const ct_test_msg *d[5];
	by_offset(got, ng, d, 5);
	assert_non_null(d[1]);
	assert_stub(&r, d[1], &m[1], 1, "EPARSE");
	assert_non_null(d[2]);
	assert_null(ct_test_msg_header(d[2], "ct-dlq-stub"));
	assert_int_equal(d[2]->value_len, 100);
	assert_non_null(d[3]);
	assert_stub(&r, d[3], &m[3], 3, "EPARSE");
	ct_test_msgs_free(got, ng);
	kmsg_free(m, 5);
	drop_db(&r);
}

/* Sets one config of `topic` (AlterConfigs: what is not named goes back to its default). */
static void alter_topic(const char *topic, const char *name, const char *value)
{
	rd_kafka_t *rk = admin_client();
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	assert_int_equal(rd_kafka_ConfigResource_set_config(cr, name, value), 0);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AlterConfigs(rk, &cr, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
	assert_non_null(ev);
	assert_int_equal(rd_kafka_event_error(ev), 0);
	size_t n;
	const rd_kafka_ConfigResource_t **res =
		rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
	assert_int_equal(n, 1);
	assert_int_equal(rd_kafka_ConfigResource_error(res[0]), 0);
	rd_kafka_event_destroy(ev);
	rd_kafka_ConfigResource_destroy(cr);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

/*
 * A DLQ that refuses a dead letter for a while, for another reason than its
 * size (a compacted DLQ topic takes no message without a key: INVALID_RECORD,
 * the stub too): the worker neither exits nor commits, it pauses consumption
 * (reason=dlq) and retries; once the topic takes it (cleanup.policy back to
 * delete) it goes on: the dead letter is there and the events behind it are
 * written. Before, the failed delivery report made the worker exit 1.
 */
static void test_dlq_outage_pauses_then_recovers(void **state)
{
	run r;
	char log[300];
	new_run(&r, "ctdlq-outage", 12000);
	snprintf(log, sizeof(log), "/tmp/%s.log", r.topic);
	create_topic(r.topic, 1, 0);
	char errstr[512];
	{
		rd_kafka_t *rk = admin_client();
		rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(r.dlq, 1, 1, errstr, sizeof(errstr));
		assert_int_equal(rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact"), 0);
		rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
		rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
		assert_non_null(ev);
		size_t n;
		const rd_kafka_topic_result_t **tr =
			rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		assert_int_equal(n, 1);
		assert_int_equal(rd_kafka_topic_result_error(tr[0]), 0);
		rd_kafka_event_destroy(ev);
		rd_kafka_NewTopic_destroy(nt);
		rd_kafka_queue_destroy(q);
		rd_kafka_destroy(rk);
	}
	kmsg m[3] = {{"o/d", event_v("o", "d", 1), 0}, {NULL, junk(100), 100}, {"o/d", event_v("o", "d", 2), 0}};
	produce(r.topic, m, 3);
	pid_t pid = start_daemon_log(&r, log);
	/* the outage: paused, still running */
	int64_t end = ct_test_now_us() + 30000000;
	bool paused = false;
	while (!paused && ct_test_now_us() < end) {
		size_t len;
		char *text = ct_test_read_file(log, &len);
		paused = text && strstr(text, "msg=\"consumption paused\" reason=dlq");
		free(text);
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			fail_msg("the consumer exited while the DLQ failed (log %s)", log);
		usleep(200000);
	}
	if (!paused)
		fail_msg("consumption not paused while the DLQ fails (log %s)", log);
	sleep(2); /* still running, retrying */
	int status;
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
	alter_topic(r.dlq, "cleanup.policy", "delete");
	assert_int_equal(wait_daemon(pid, 120000), 0);
	json_t *h = history_of(&r, "o", "d");
	assert_chain(h, 2);
	json_decref(h);
	ct_test_msg *got;
	size_t ng = ct_test_consume(bootstrap, r.dlq, 1, 20000, &got);
	assert_int_equal(ng, 1); /* once: the attempts the topic refused left nothing */
	assert_header(&got[0], "ct-dlq-code", "EPARSE");
	assert_header(&got[0], "ct-original-offset", "1");
	ct_test_msgs_free(got, ng);
	kmsg_free(m, 3);
	unlink(log);
	drop_db(&r);
}

/*
 * Two workers, two partitions: a message keyed other than its event
 * (`other/a` for km/X: another partition, another worker) and one with no key
 * go to the DLQ with code EKEY; the correctly keyed events of km/X are all
 * recorded, versions 1..n. A document id holding '/' is keyed as it is.
 */
static void test_wrong_and_missing_keys_two_workers(void **state)
{
	enum { PER = 12, OTHERS = 40 };
	run r;
	new_run(&r, "ctdlq-keys", 4000);
	create_topic(r.topic, 2, 0);
	create_topic(r.dlq, 1, 0);
	kmsg m[PER + 2 + PER + OTHERS];
	size_t n = 0;
	int v = 1;
	for (int i = 0; i < PER / 2; i++)
		m[n++] = (kmsg){"km/X", event_v("km", "X", v++), 0};
	m[n++] = (kmsg){"other/a", event_v("km", "X", v), 0};
	m[n++] = (kmsg){NULL, event_v("km", "X", v), 0};
	for (int i = 0; i < PER / 2; i++)
		m[n++] = (kmsg){"km/X", event_v("km", "X", v++), 0};
	for (int i = 1; i <= PER; i++)
		m[n++] = (kmsg){"km/a/b", event_v("km", "a/b", i), 0};
	static char keys[OTHERS][32];
	for (int i = 0; i < OTHERS; i++) {
		char id[16];
		snprintf(id, sizeof(id), "o%d", i);
		snprintf(keys[i], sizeof(keys[i]), "km/%s", id);
		m[n++] = (kmsg){keys[i], event_v("km", id, 1), 0};
	}
	produce(r.topic, m, n);
	pid_t a = start_daemon(&r), b = start_daemon(&r);
	assert_int_equal(wait_daemon(a, 120000), 0);
	assert_int_equal(wait_daemon(b, 120000), 0);

	json_t *h = history_of(&r, "km", "X");
	assert_chain(h, PER);
	/* the last correctly keyed update is the state of the document */
	json_t *last = json_array_get(h, PER - 1);
	assert_non_null(last);
	json_decref(h);
	h = history_of(&r, "km", "a/b");
	assert_chain(h, PER);
	json_decref(h);
	assert_int_equal(count(&r, "history", NULL), PER + PER + OTHERS);

	ct_test_msg *got;
	size_t ng = ct_test_consume(bootstrap, r.dlq, 2, 20000, &got);
	assert_int_equal(ng, 2);
	bool wrong = false, missing = false;
	for (size_t i = 0; i < ng; i++) {
		assert_header(&got[i], "ct-dlq-code", "EKEY");
		char *reason = ct_test_msg_header(&got[i], "ct-dlq-reason");
		if (!strcmp(reason, "key 'other/a' does not match event km/X"))
			wrong = true;
		else if (!strcmp(reason, "message has no key (event km/X)"))
			missing = true;
		else
			fail_msg("unexpected reason: %s", reason);
		free(reason);
	}
	assert_true(wrong && missing);
	ct_test_msgs_free(got, ng);
	kmsg_free(m, n);
	drop_db(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_refused_events_default_dlq),
		cmocka_unit_test(test_small_dlq_topic_stubs),
		cmocka_unit_test(test_small_event_limit_refused_whole),
		cmocka_unit_test(test_wrong_and_missing_keys_two_workers),
		cmocka_unit_test(test_dlq_outage_pauses_then_recovers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
