/*
 * test_offsets_proof.c - the proof of offsets going back (consumer/offsets.c)
 * against librdkafka's in-process mock cluster: the message at a state's
 * last_offset that is its last_event proves the same log; another event,
 * another content, an offset past the end of the log, or a state that
 * remembers no event prove nothing but a log that went back; each going back
 * is counted once per partition; a broker that does not answer is an error,
 * never a verdict.
 */
#include "testutil.h"

#include "offsets.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char errstr[256];
	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		fail_msg("%s=%s: %s", k, v, errstr);
}

#define EV "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"0190c6a4-0000-7000-8000-0000000000%02d\"," \
			"\"ts\":\"2024-05-01T10:00:00.000000Z\",\"source\":\"t\",\"collection\":\"c\",\"document_id\":\"d\"," \
			"\"op\":\"update\",\"after\":{\"n\":%d}}"

static ctc_offsets_prover *prover(const char *bootstraps)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", bootstraps);
	set(conf, "group.id", "proof");
	set(conf, "enable.auto.commit", "false");
	set(conf, "enable.partition.eof", "true");
	set(conf, "auto.offset.reset", "error");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	rd_kafka_poll_set_consumer(rk);
	static atomic_uint_fast64_t went_back;
	atomic_store(&went_back, 0);
	return ctc_offsets_new(rk, &went_back);
}

static void test_proof(void **state)
{
	char errstr[256], value[512], sha[65], id[64];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "test.mock.num.brokers", "1");
	rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(p);
	rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(p);
	assert_int_equal(rd_kafka_mock_topic_create(mc, "events", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
	for (int i = 0; i < 10; i++) {
		snprintf(value, sizeof(value), EV, i, i);
		assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("events"), RD_KAFKA_V_PARTITION(0),
						   RD_KAFKA_V_VALUE(value, strlen(value)),
						   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
				 0);
	}
	assert_int_equal(rd_kafka_flush(p, 10000), 0);
	ctc_offsets_prover *pr = prover(rd_kafka_mock_cluster_bootstraps(mc));
	ctc_offsets v;

	/* offset 4 holds event 04 with this content: the same log */
	snprintf(value, sizeof(value), EV, 4, 4);
	ctc_sha256_hex(value, strlen(value), sha);
	snprintf(id, sizeof(id), "0190c6a4-0000-7000-8000-000000000004");
	assert_int_equal(ctc_offsets_prove(pr, "events", 0, 4, id, sha, 10000, &v, NULL), 0);
	assert_int_equal(v, CTC_OFFSETS_SAME_LOG);
	/* content unknown (a state rolled forward): the id decides */
	assert_int_equal(ctc_offsets_prove(pr, "events", 0, 4, id, NULL, 10000, &v, NULL), 0);
	assert_int_equal(v, CTC_OFFSETS_SAME_LOG);
	/* the same id with other content there: another log */
	assert_int_equal(ctc_offsets_prove(pr, "events", 0, 4, id, "00", 10000, &v, NULL), 0);
	assert_int_equal(v, CTC_OFFSETS_WENT_BACK);
	/* another event at that offset */
	assert_int_equal(ctc_offsets_prove(pr, "events", 0, 5, id, sha, 10000, &v, NULL), 0);
	assert_int_equal(v, CTC_OFFSETS_WENT_BACK);
	/* past the end of the log (a re-created topic is shorter) */
	assert_int_equal(ctc_offsets_prove(pr, "events", 0, 500, id, sha, 10000, &v, NULL), 0);
	assert_int_equal(v, CTC_OFFSETS_WENT_BACK);
	/* a state that remembers no event proves nothing */
	assert_int_equal(ctc_offsets_prove(pr, "events", 0, 4, NULL, NULL, 10000, &v, NULL), 0);
	assert_int_equal(v, CTC_OFFSETS_WENT_BACK);
	ctc_offsets_free(pr);

	/* no answer from Kafka: an error, not a verdict */
	pr = prover(rd_kafka_mock_cluster_bootstraps(mc));
	rd_kafka_mock_broker_set_down(mc, 1);
	ct_error err;
	assert_int_not_equal(ctc_offsets_prove(pr, "events", 0, 4, id, sha, 1500, &v, &err), 0);
	rd_kafka_mock_broker_set_up(mc, 1);
	ctc_offsets_free(pr);
	rd_kafka_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proof),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
