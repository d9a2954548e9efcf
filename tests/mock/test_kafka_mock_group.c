/*
 * test_kafka_mock_group.c - librdkafka's in-process mock cluster runs a
 * consumer group end to end and survives an injected broker outage: the
 * basis of the fault-injection tests (broker down, request errors).
 */
#include "testutil.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>

#define N_MSGS 100

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char errstr[256];
	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		fail_msg("%s=%s: %s", k, v, errstr);
}

static int consume_all(const char *bootstraps, const char *topic, const char *group, int want)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", bootstraps);
	set(conf, "group.id", group);
	set(conf, "auto.offset.reset", "earliest");
	set(conf, "enable.auto.commit", "false");
	rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(c);
	rd_kafka_poll_set_consumer(c);
	rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
	assert_int_equal(rd_kafka_subscribe(c, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(subs);
	int got = 0;
	/* want == 0: poll a while and expect nothing (offsets were committed). */
	int64_t deadline = ct_test_now_us() + (want ? 30 : 6) * 1000000LL;
	while ((want == 0 || got < want) && ct_test_now_us() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
		if (!m)
			continue;
		if (!m->err)
			got++;
		rd_kafka_message_destroy(m);
	}
	if (got)
		assert_int_equal(rd_kafka_commit(c, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return got;
}

static void test_group_consumes_and_resumes_after_outage(void **state)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "test.mock.num.brokers", "3");
	set(conf, "enable.idempotence", "true");
	set(conf, "acks", "all");
	set(conf, "message.timeout.ms", "60000");
	rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(p);
	rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(p);
	assert_non_null(mc);
	assert_int_equal(rd_kafka_mock_topic_create(mc, "events", 4, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
	char bootstraps[512];
	snprintf(bootstraps, sizeof(bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(mc));

	for (int i = 0; i < N_MSGS; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i % 10);
		if (i == N_MSGS / 2) {
			/* Leader of every partition goes away mid-stream, then returns:
			 * the idempotent producer must retry without loss. */
			for (int b = 1; b <= 3; b++)
				rd_kafka_mock_broker_set_down(mc, b);
		}
		assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("events"), RD_KAFKA_V_KEY(key, strlen(key)),
			RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
			RD_KAFKA_RESP_ERR_NO_ERROR);
	}
	rd_kafka_flush(p, 1000); /* cannot complete: brokers down */
	assert_true(rd_kafka_outq_len(p) > 0);
	for (int b = 1; b <= 3; b++)
		rd_kafka_mock_broker_set_up(mc, b);
	assert_int_equal(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(rd_kafka_outq_len(p), 0);

	assert_int_equal(consume_all(bootstraps, "events", "g1", N_MSGS), N_MSGS);
	/* A second member of the same group resumes from the committed offsets. */
	assert_int_equal(consume_all(bootstraps, "events", "g1", 0), 0);
	rd_kafka_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_consumes_and_resumes_after_outage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
