/*
 * test_consumer_groupcommit.c - batching is a group commit (issue 18): with
 * the writer idle, what has arrived is written at once; batch_ms only
 * bounds the wait behind a write in flight, and no history waits for the
 * state write (state_flush_ms). With both at 60 s, events must be readable
 * in `history` within seconds, the first ones and one sent later alone;
 * a consumer that waited for either timer fails. Then a clean stop writes
 * the states and commits (exit 0), and the records chain.
 */
#include "consumer_daemon.h"

/* Waits for `want` history records of the run, at most timeout_ms; returns how many there were. */
static int64_t wait_history(const run *r, int64_t want, int timeout_ms)
{
	int64_t end = ct_test_now_us() + (int64_t)timeout_ms * 1000, n = 0;
	while (ct_test_now_us() < end) {
		if ((n = count(r, "history", NULL)) >= want)
			break;
		usleep(50000);
	}
	return n;
}

static void test_written_without_waiting_for_timers(void **state)
{
	run r;
	new_run_x(&r, "ctgroupcommit", 0, "");
	create_topic(r.topic, 1, 0);
	/* the file's batch_ms 50 and the default state_flush_ms both overridden: 60 s */
	setenv("CHANGETRAIL_CONSUMER_BATCH_MS", "60000", 1);
	setenv("CHANGETRAIL_CONSUMER_STATE_FLUSH_MS", "60000", 1);
	pid_t pid = start_daemon(&r);
	unsetenv("CHANGETRAIL_CONSUMER_BATCH_MS");
	unsetenv("CHANGETRAIL_CONSUMER_STATE_FLUSH_MS");

	kmsg first[3] = {{"orders/a", event_v("orders", "a", 1), 0},
			 {"orders/b", event_v("orders", "b", 1), 0},
			 {"orders/a", event_v("orders", "a", 2), 0}};
	for (size_t i = 0; i < 3; i++)
		first[i].len = strlen(first[i].value);
	int64_t t0 = ct_test_now_us();
	produce(r.topic, first, 3);
	/* the group join included: far below the 60 s of either timer */
	int64_t n = wait_history(&r, 3, 30000);
	if (n < 3) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("%lld of 3 history records after 30 s: the batch waited for a timer", (long long)n);
	}
	fprintf(stderr, "first 3 events readable after %lld ms (join included)\n",
		(long long)((ct_test_now_us() - t0) / 1000));

	/* a lone event later, the writer idle: at once */
	kmsg later = {"orders/b", event_v("orders", "b", 2), 0};
	later.len = strlen(later.value);
	t0 = ct_test_now_us();
	produce(r.topic, &later, 1);
	n = wait_history(&r, 4, 15000);
	if (n < 4) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("%lld of 4 history records 15 s after the lone event", (long long)n);
	}
	fprintf(stderr, "lone event readable after %lld ms\n", (long long)((ct_test_now_us() - t0) / 1000));

	/* no state was written yet (60 s), yet history was: the stop writes them and commits */
	kill(pid, SIGTERM);
	assert_int_equal(wait_daemon(pid, 30000), 0);
	assert_int_equal(count(&r, "state", NULL), 2);
	json_t *h = history_of(&r, "orders", "a");
	assert_chain(h, 2);
	json_decref(h);
	h = history_of(&r, "orders", "b");
	assert_chain(h, 2);
	json_decref(h);
	kmsg_free(first, 3);
	kmsg_free(&later, 1);
	drop_db(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_written_without_waiting_for_timers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
