/*
 * test_consumer_flush.c - the interval between two state writes: the
 * configured one while writes are quick, stretched to four times a slow
 * write (so they take at most a fifth of the writer's time), capped so a
 * crash replays a bounded stretch, and 0 ("with every batch") kept.
 */
#include "testutil.h"

#include "worker.h"

static void test_quick_writes_keep_the_configured_interval(void **state)
{
	assert_int_equal(ctc_state_flush_interval_ms(2000, 0), 2000);
	assert_int_equal(ctc_state_flush_interval_ms(2000, 120.5), 2000);
	assert_int_equal(ctc_state_flush_interval_ms(2000, 500), 2000); /* exactly a fifth */
}

static void test_slow_writes_stretch_it(void **state)
{
	assert_int_equal(ctc_state_flush_interval_ms(2000, 600), 2400);
	assert_int_equal(ctc_state_flush_interval_ms(2000, 4711), 18844);
	/* and it comes back once a write is quick again */
	assert_int_equal(ctc_state_flush_interval_ms(2000, 40), 2000);
}

static void test_stretch_is_capped(void **state)
{
	assert_int_equal(ctc_state_flush_interval_ms(2000, 60000), CTC_STATE_FLUSH_GAP_MAX_MS);
	assert_int_equal(ctc_state_flush_interval_ms(2000, 1e12), CTC_STATE_FLUSH_GAP_MAX_MS);
	/* a configured interval over the cap is kept, never shortened */
	assert_int_equal(ctc_state_flush_interval_ms(600000, 1e9), 600000);
	assert_int_equal(ctc_state_flush_interval_ms(600000, 1000), 600000);
}

static void test_zero_means_every_batch(void **state)
{
	assert_int_equal(ctc_state_flush_interval_ms(0, 0), 0);
	assert_int_equal(ctc_state_flush_interval_ms(0, 5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quick_writes_keep_the_configured_interval),
		cmocka_unit_test(test_slow_writes_stretch_it),
		cmocka_unit_test(test_stretch_is_capped),
		cmocka_unit_test(test_zero_means_every_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
