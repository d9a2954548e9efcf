/*
 * test_producer_kafka.c - the producer against the real local broker: events
 * from several threads, each thread a request with its own nested context,
 * arrive keyed, with the schema header, accepted by the consumer's parser,
 * every event carrying its own request's root context, and excluded fields
 * absent from the topic.
 */
#include "testutil.h"
#include "changetrail/producer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define PER_THREAD 250

static const char *bootstrap;
static ct_producer *prod;

struct req {
	int n;
	char root_id[37];
	char failure[600];
};

static void *request(void *arg)
{
	struct req *r = arg;
	ct_error err;
	char md[128], id[32], body[128];
	snprintf(md, sizeof(md), "{\"user\":\"user%d\",\"url\":\"/r/%d\"}", r->n, r->n);
	if (ct_context_enter(prod, md, &err))
		goto fail;
	ct_context *cur = ct_context_current();
	snprintf(r->root_id, sizeof(r->root_id), "%s", ct_context_id(cur));
	ct_context_unref(cur);
	if (ct_context_enter(prod, "{\"step\":\"inner\"}", &err))
		goto fail;
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(id, sizeof(id), "t%d-%d", r->n, i % 10);
		snprintf(body, sizeof(body), "{\"i\":%d,\"password\":\"secret-%d\"}", i, i);
		if (ct_emit_insert(prod, "accounts", id, body, &err))
			goto fail;
	}
	if (ct_context_exit(prod, &err) || ct_context_exit(prod, &err))
		goto fail;
	return NULL;
fail:
	snprintf(r->failure, sizeof(r->failure), "thread %d: %s", r->n, err.message);
	return NULL;
}

static void test_threads_with_contexts_on_real_broker(void **state)
{
	char topic[128];
	ct_error err;
	ct_test_unique_name(topic, sizeof(topic), "ct-prod-it");
	ct_producer_config *c = ct_producer_config_new();
	assert_int_equal(ct_producer_config_set(c, "source", "it", &err), CT_OK);
	assert_int_equal(ct_producer_config_set(c, "topic", topic, &err), CT_OK);
	assert_int_equal(ct_producer_config_set(c, "kafka.bootstrap.servers", bootstrap, &err), CT_OK);
	assert_int_equal(ct_producer_config_set(c, "track.accounts.exclude", "password", &err), CT_OK);
	if (ct_producer_new(c, &prod, &err))
		fail_msg("%s", err.message);
	ct_producer_config_destroy(c);

	pthread_t t[THREADS];
	struct req r[THREADS];
	for (int i = 0; i < THREADS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].n = i;
		assert_int_equal(pthread_create(&t[i], NULL, request, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (r[i].failure[0])
			fail_msg("%s", r[i].failure);
	}
	assert_int_equal(ct_producer_flush(prod, 30000, &err), CT_OK);
	ct_producer_stats st;
	ct_producer_stats_get(prod, &st);
	const size_t total = THREADS * (PER_THREAD + 2);
	assert_int_equal(st.delivered, total);
	assert_int_equal(ct_producer_destroy(prod, 10000), 0);

	ct_test_msg *m;
	size_t n = ct_test_consume(bootstrap, topic, total, 60000, &m);
	assert_int_equal(n, total);
	int per_thread[THREADS] = {0}, markers = 0;
	for (size_t i = 0; i < n; i++) {
		ct_event *ev;
		if (ct_event_parse(m[i].value, m[i].value_len, NULL, &ev, &err))
			fail_msg("rejected: %s", err.message);
		assert_non_null(m[i].schema_header);
		assert_null(strstr(m[i].value, "secret-"));
		char key[2100];
		snprintf(key, sizeof(key), "%s/%s", ct_event_collection(ev), ct_event_document_id(ev));
		assert_string_equal(key, m[i].key);
		const char *user = json_string_value(json_object_get(ct_event_context_metadata(ev), "user"));
		assert_non_null(user);
		int th = atoi(user + 4);
		assert_true(th >= 0 && th < THREADS);
		assert_string_equal(ct_event_context_id(ev), r[th].root_id);
		if (ct_event_op(ev) == CT_OP_INSERT) {
			per_thread[th]++;
			assert_string_equal(json_string_value(json_object_get(ct_event_context_metadata(ev), "step")),
					    "inner");
		} else {
			markers++;
		}
		ct_event_free(ev);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(per_thread[i], PER_THREAD);
	assert_int_equal(markers, 2 * THREADS);
	ct_test_msgs_free(m, n);
}

int main(void)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_with_contexts_on_real_broker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
