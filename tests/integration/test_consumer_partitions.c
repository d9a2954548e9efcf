/*
 * test_consumer_partitions.c - partitions added to the events topic while
 * events flow, consumed by a group of two changetrail-consumer processes
 * (real local Kafka and MongoDB server): the key -> partition mapping
 * changes under the documents' feet, so one document's events sit on two
 * partitions, read by two workers at once. Every event must still be
 * recorded, versions continuous, and `changetrail verify` clean
 * (docs/operations.md, "Adding partitions").
 */
#include "consumer_daemon.h"

#include <pthread.h>

typedef struct flow {
	const char *topic;
	int docs, per_doc;
	int grow_after; /* events sent before the partitions are added */
	int grow_to;
	char (*ids)[40]; /* the event id of update v of document d: ids[(v - 1) * docs + d] */
	const run *r;    /* the partitions are added once the workers have recorded events */
} flow;

/* The event_id member of an event made by event_v(). */
static void id_of(const char *ev, char out[40])
{
	const char *p = strstr(ev, "\"event_id\":\"");
	assert_non_null(p);
	snprintf(out, 40, "%.36s", p + 12);
}

/* Emits per_doc updates of each document, a few ms apart, adding partitions part way. */
static void *emit_flow(void *arg)
{
	flow *f = arg;
	rd_kafka_t *rk = producer();
	int sent = 0;
	for (int v = 1; v <= f->per_doc; v++)
		for (int d = 0; d < f->docs; d++) {
			char id[16], key[32];
			snprintf(id, sizeof(id), "p%d", d);
			snprintf(key, sizeof(key), "grow/%s", id);
			kmsg m = {key, event_v("grow", id, v), 0};
			id_of(m.value, f->ids[sent]);
			send_one(rk, f->topic, &m);
			free(m.value);
			rd_kafka_poll(rk, 0);
			if (++sent == f->grow_after) {
				/* mid-stream: the group has joined and is recording (the main
				 * thread only waits: the MongoDB client is ours meanwhile) */
				int64_t end = ct_test_now_us() + 60000000;
				while (count(f->r, "history", NULL) < f->grow_after / 2 && ct_test_now_us() < end)
					usleep(50000);
				assert_true(count(f->r, "history", NULL) >= f->grow_after / 2);
				add_partitions(f->topic, f->grow_to);
			}
			usleep(3000);
		}
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
	return NULL;
}

/* Every event recorded once, versions continuous, no valid event in the DLQ, `changetrail verify` clean. */
static void assert_all_recorded(const run *rp, const flow *fp)
{
	const run r = *rp;
	const flow f = *fp;
	assert_int_equal(count(&r, "history", NULL), (int64_t)f.docs * f.per_doc);
	for (int d = 0; d < f.docs; d++) {
		char id[16];
		snprintf(id, sizeof(id), "p%d", d);
		json_t *h = history_of(&r, "grow", id);
		assert_chain(h, (size_t)f.per_doc);
		/* each of its events recorded once, whatever the version it got */
		for (int v = 1; v <= f.per_doc; v++) {
			const char *want = f.ids[(v - 1) * f.docs + d];
			int seen = 0;
			for (size_t i = 0; i < json_array_size(h); i++) {
				const char *got = json_string_value(json_object_get(json_array_get(h, i), "_id"));
				seen += got && !strcmp(got, want);
			}
			if (seen != 1)
				fail_msg("event %s (%s v%d) recorded %d times", want, id, v, seen);
		}
		json_decref(h);
	}
	/* no valid event refused */
	ct_test_msg *got;
	size_t ng = ct_test_consume(bootstrap, r.dlq, 0, 3000, &got);
	if (ng)
		fail_msg("%zu valid events in the DLQ, e.g. %s", ng, got[0].headers);
	ct_test_msgs_free(got, ng);
	char cmd[2048];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(cmd, sizeof(cmd), "%s/cli/changetrail verify --uri '%s' --db '%s' >/dev/null", dir ? dir : ".",
		 mongo_uri, r.db);
	assert_int_equal(system(cmd), 0);
}

/*
 * Partitions added while events flow (2 -> 4, two workers): the key ->
 * partition mapping changes under a document's feet; every event is still
 * recorded, versions continuous, and `changetrail verify` finds the
 * database intact.
 */
static void test_partitions_added_while_flowing(void **state)
{
	run r;
	new_run(&r, "ctdlq-grow", 10000);
	create_topic(r.topic, 2, 0);
	flow f = {r.topic, 20, 40, 300, 4, calloc(20 * 40, 40), &r};
	assert_non_null(f.ids);
	pid_t a = start_daemon(&r), b = start_daemon(&r);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, emit_flow, &f), 0);
	pthread_join(t, NULL);
	assert_int_equal(wait_daemon(a, 180000), 0);
	assert_int_equal(wait_daemon(b, 180000), 0);
	assert_all_recorded(&r, &f);
	free(f.ids);
	drop_db(&r);
}

/*
 * The same with a backlog: the first 15 updates of every document wait on
 * the 2 old partitions when the partitions are added and the last 25 are
 * produced; then the two workers start. A document's older events (old
 * partition) and newer ones (maybe a new partition) are then read by two
 * workers at once: the version conflicts happen for sure.
 */
static void test_partitions_added_with_backlog(void **state)
{
	run r;
	new_run(&r, "ctdlq-growb", 6000);
	create_topic(r.topic, 2, 0);
	flow f = {r.topic, 20, 40, 0, 4, calloc(20 * 40, 40), &r};
	assert_non_null(f.ids);
	rd_kafka_t *rk = producer();
	int sent = 0;
	for (int v = 1; v <= f.per_doc; v++) {
		if (v == 16) {
			assert_int_equal(rd_kafka_flush(rk, 30000), 0);
			rd_kafka_destroy(rk);
			add_partitions(r.topic, f.grow_to);
			rk = producer(); /* sees the 4 partitions at once */
		}
		for (int d = 0; d < f.docs; d++) {
			char id[16], key[32];
			snprintf(id, sizeof(id), "p%d", d);
			snprintf(key, sizeof(key), "grow/%s", id);
			kmsg m = {key, event_v("grow", id, v), 0};
			id_of(m.value, f.ids[sent++]);
			send_one(rk, r.topic, &m);
			free(m.value);
		}
	}
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
	pid_t a = start_daemon(&r), b = start_daemon(&r);
	assert_int_equal(wait_daemon(a, 180000), 0);
	assert_int_equal(wait_daemon(b, 180000), 0);
	assert_all_recorded(&r, &f);
	free(f.ids);
	drop_db(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partitions_added_while_flowing),
		cmocka_unit_test(test_partitions_added_with_backlog),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

