/*
 * test_producer_log.c - librdkafka's log lines from the producer library
 * (issue #21) reach the application's callback, or, without one, stderr as
 * one structured line each; never librdkafka's raw "%3|...|FAIL|..." lines.
 * No server: the broker is a closed port, which librdkafka logs about.
 */
#include "testutil.h"

#include "changetrail/producer.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int lines, worst = 99, bad_opaque;
static char facility[64], message[512];
static int saved_stderr = -1;
static char errpath[256];

static void collect(int level, const char *fac, const char *msg, void *opaque)
{
	pthread_mutex_lock(&lock);
	lines++;
	bad_opaque |= opaque != &lines; /* checked on the test's thread */
	if (level < worst) {
		worst = level;
		snprintf(facility, sizeof(facility), "%s", fac);
		snprintf(message, sizeof(message), "%s", msg);
	}
	pthread_mutex_unlock(&lock);
}

/* stderr into a file for the test's duration */
static void capture_stderr(void)
{
	ct_test_unique_name(errpath, sizeof(errpath), "/tmp/ct-producer-log");
	int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	assert_true(dup2(fd, 2) == 2);
	close(fd);
}

static char *release_stderr(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	char *text = ct_test_read_file(errpath, NULL);
	remove(errpath);
	return text ? text : strdup("");
}

static ct_producer *unreachable_producer(ct_log_cb cb)
{
	ct_error err;
	ct_producer *p = NULL;
	ct_producer_config *conf = ct_producer_config_new();
	assert_non_null(conf);
	assert_int_equal(ct_producer_config_set(conf, "source", "log-test", &err), 0);
	assert_int_equal(ct_producer_config_set(conf, "kafka.bootstrap.servers", "127.0.0.1:1", &err), 0);
	assert_int_equal(ct_producer_config_set(conf, "kafka.reconnect.backoff.ms", "50", &err), 0);
	if (cb)
		ct_producer_config_set_log_cb(conf, cb, &lines);
	if (ct_producer_new(conf, &p, &err))
		fail_msg("%s", err.message);
	ct_producer_config_destroy(conf);
	return p;
}

static void wait_for(int (*done)(void), int ms)
{
	for (int i = 0; i < ms / 20 && !done(); i++) {
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}
}

static int got_lines(void)
{
	pthread_mutex_lock(&lock);
	int n = lines;
	pthread_mutex_unlock(&lock);
	return n > 0;
}

static void test_callback_gets_librdkafka_lines(void **state)
{
	capture_stderr();
	ct_producer *p = unreachable_producer(collect);
	wait_for(got_lines, 10000);
	ct_producer_destroy(p, 0);
	char *err = release_stderr();
	pthread_mutex_lock(&lock);
	if (lines == 0)
		fail_msg("no log line reached the callback in 10 s; stderr: %s", err);
	assert_false(bad_opaque);
	assert_true(worst <= 4); /* a broker that cannot be reached is an error or a warning */
	print_message("log callback: %d lines, worst level %d: %s %s\n", lines, worst, facility, message);
	assert_true(*facility);
	assert_non_null(strstr(message, "127.0.0.1:1"));
	pthread_mutex_unlock(&lock);
	/* nothing of librdkafka's on stderr when the application takes the lines */
	if (*err)
		fail_msg("stderr with a log callback set: %s", err);
	free(err);
}

static char *stderr_text;

static int stderr_has_line(void)
{
	fflush(stderr);
	char *t = ct_test_read_file(errpath, NULL);
	int yes = t && strchr(t, '\n');
	free(t);
	return yes;
}

static void test_default_is_one_structured_line(void **state)
{
	capture_stderr();
	ct_producer *p = unreachable_producer(NULL);
	wait_for(stderr_has_line, 10000);
	ct_producer_destroy(p, 0);
	stderr_text = release_stderr();
	if (!strchr(stderr_text, '\n'))
		fail_msg("no log line on stderr in 10 s");
	int n = 0;
	for (char *l = stderr_text, *e; (e = strchr(l, '\n')); l = e + 1, n++) {
		*e = '\0';
		if (*l == '%')
			fail_msg("librdkafka's raw line on stderr: %s", l);
		if (strncmp(l, "ts=", 3) || !strstr(l, " component=changetrail-producer facility=") ||
		    !strstr(l, " level=") || !strstr(l, " msg=\"") || l[strlen(l) - 1] != '"')
			fail_msg("not the producer's structured line: %s", l);
	}
	print_message("default log: %d lines on stderr\n", n);
	free(stderr_text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_callback_gets_librdkafka_lines),
		cmocka_unit_test(test_default_is_one_structured_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
