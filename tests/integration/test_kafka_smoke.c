/*
 * test_kafka_smoke.c - the real local broker accepts idempotent produce with
 * acks=all and gives the same keyed messages back to a consumer group, in
 * order per partition. Guards the Kafka/librdkafka version pairing.
 */
#include "testutil.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_MSGS 200

static const char *bootstrap;

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *group)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)),
			 RD_KAFKA_CONF_OK);
	if (type == RD_KAFKA_PRODUCER) {
		assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)),
				 RD_KAFKA_CONF_OK);
		assert_int_equal(rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
	} else {
		assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
		assert_int_equal(rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)),
				 RD_KAFKA_CONF_OK);
		assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)),
				 RD_KAFKA_CONF_OK);
	}
	rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
	if (!rk)
		fail_msg("rd_kafka_new: %s", errstr);
	return rk;
}

static void test_produce_then_consume_in_group(void **state)
{
	char topic[128], group[128];
	ct_test_unique_name(topic, sizeof(topic), "ct-smoke");
	ct_test_unique_name(group, sizeof(group), "ct-smoke-g");

	rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER, NULL);
	for (int i = 0; i < N_MSGS; i++) {
		char key[32], val[64];
		snprintf(key, sizeof(key), "docs/%d", i % 7);
		snprintf(val, sizeof(val), "{\"i\":%d}", i);
		rd_kafka_resp_err_t e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
			RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(val, strlen(val)),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
		rd_kafka_poll(p, 0);
	}
	assert_int_equal(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(rd_kafka_outq_len(p), 0);
	rd_kafka_destroy(p);

	rd_kafka_t *c = new_client(RD_KAFKA_CONSUMER, group);
	rd_kafka_poll_set_consumer(c);
	rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
	assert_int_equal(rd_kafka_subscribe(c, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(subs);

	int got = 0, last_per_key[7];
	for (int k = 0; k < 7; k++)
		last_per_key[k] = -1;
	int64_t deadline = ct_test_now_us() + 60 * 1000000LL;
	while (got < N_MSGS && ct_test_now_us() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		int i = -1;
		char buf[64] = {0};
		memcpy(buf, m->payload, m->len < 63 ? m->len : 63);
		assert_int_equal(sscanf(buf, "{\"i\":%d}", &i), 1);
		/* Per-key order is what changetrail's per-document ordering rests on. */
		assert_true(i > last_per_key[i % 7]);
		last_per_key[i % 7] = i;
		got++;
		rd_kafka_message_destroy(m);
	}
	assert_int_equal(got, N_MSGS);
	assert_int_equal(rd_kafka_commit(c, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
}

int main(void)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_produce_then_consume_in_group),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
