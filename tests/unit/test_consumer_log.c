/*
 * test_consumer_log.c - the consumer's log lines as JSON ([log] format =
 * json, issue #21): every line is one JSON object with the logfmt line's
 * keys; quoted values come back as the text that was logged (quotes,
 * backslashes, newlines, control and bidi characters), bare numbers and
 * booleans stay JSON numbers and booleans.
 */
#include "testutil.h"

#include "config.h"
#include "log.h"

#include <jansson.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *parse_line(const char *line)
{
	char json[4096];
	json_error_t e;
	ctc_log_logfmt_to_json(line, json, sizeof(json));
	json_t *j = json_loads(json, JSON_REJECT_DUPLICATES, &e);
	if (!j)
		fail_msg("not JSON (%s): %s\nfrom: %s", e.text, json, line);
	return j;
}

static void test_logfmt_to_json(void **state)
{
	json_t *j = parse_line("ts=2026-12-07T19:17:39.083Z level=info msg=\"consumer started\" topic=changetrail.events "
			       "batch_size=500 ratio=0.25 big=-1e3 no_write=true zero=0 octal=012 word=abc");
	assert_string_equal(json_string_value(json_object_get(j, "ts")), "2026-12-07T19:17:39.083Z");
	assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "consumer started");
	assert_string_equal(json_string_value(json_object_get(j, "topic")), "changetrail.events");
	assert_int_equal(json_integer_value(json_object_get(j, "batch_size")), 500);
	assert_true(json_real_value(json_object_get(j, "ratio")) == 0.25);
	assert_true(json_number_value(json_object_get(j, "big")) == -1000);
	assert_true(json_is_true(json_object_get(j, "no_write")));
	assert_int_equal(json_integer_value(json_object_get(j, "zero")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "octal")), "012"); /* not a JSON number */
	assert_string_equal(json_string_value(json_object_get(j, "word")), "abc");
	json_decref(j);
}

/* A value logged through ctc_log_q() reads back from the JSON as it was. */
static void test_quoted_values_round_trip(void **state)
{
	static const char *const values[] = {"plain", "", "say \"hi\"", "back\\slash", "two\nlines", "tab\there",
					     "bell\x07", "caf\xc3\xa9", "rtl \xe2\x80\xae mark", "a=b c=d",
					     "\\x41 is not A", "ends with \\"};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char q[512], line[700];
		snprintf(line, sizeof(line), "ts=x level=warn msg=\"m\" error=%s after=1",
			 ctc_log_q(values[i], q, sizeof(q)));
		json_t *j = parse_line(line);
		const char *got = json_string_value(json_object_get(j, "error"));
		if (!got || strcmp(got, values[i]))
			fail_msg("'%s' logged as %s came back as '%s'", values[i], q, got ? got : "(none)");
		assert_int_equal(json_integer_value(json_object_get(j, "after")), 1);
		assert_int_equal(json_object_size(j), 5);
		json_decref(j);
	}
	/* invalid UTF-8 stays escaped: one JSON string, no raw byte */
	char q[64], line[200];
	snprintf(line, sizeof(line), "msg=%s", ctc_log_q("bad \xff byte", q, sizeof(q)));
	json_t *j = parse_line(line);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "bad \xc3\xbf byte");
	json_decref(j);
}

/* Any bytes logged through ctc_log_q() (truncated or not) still make one valid JSON object. */
static void test_any_bytes_stay_json(void **state)
{
	uint32_t x = 2463534242u;
	for (int round = 0; round < 3000; round++) {
		char v[300], q[200], line[600], json[4096];
		size_t n = (size_t)(round % 280);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13; x ^= x >> 17; x ^= x << 5;
			v[i] = (char)(x % 255 + 1); /* any byte but NUL */
		}
		v[n] = '\0';
		snprintf(line, sizeof(line), "ts=x level=info msg=%s k=%s n=%d", ctc_log_q(v, q, sizeof(q)), q, round);
		ctc_log_logfmt_to_json(line, json, sizeof(json));
		json_error_t e;
		json_t *j = json_loads(json, JSON_REJECT_DUPLICATES, &e);
		if (!json_is_object(j) || json_integer_value(json_object_get(j, "n")) != round)
			fail_msg("round %d: not one JSON object (%s): %s", round, e.text, json);
		json_decref(j);
	}
}

/* ctc_log() itself in JSON mode: one object per line on stderr. */
static void test_ctc_log_writes_json(void **state)
{
	char path[256];
	ct_test_unique_name(path, sizeof(path), "/tmp/ct-log-json");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	close(fd);
	char q[64];
	ctc_log_set_format(CTC_LOG_JSON);
	ctc_log(CTC_WARN, "kafka consumer error", "error=%s partition=%d", ctc_log_q("Broker: \"down\"", q, sizeof(q)), 3);
	ctc_log(CTC_INFO, "stopping", "reason=SIGTERM");
	ctc_log_set_format(CTC_LOG_LOGFMT);
	ctc_log(CTC_INFO, "back to logfmt", NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char *text = ct_test_read_file(path, NULL);
	remove(path);
	assert_non_null(text);
	char *l2 = strchr(text, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
	l2[-1] = l3[-1] = '\0';
	json_error_t e;
	json_t *a = json_loads(text, 0, &e), *b = json_loads(l2, 0, &e);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(a, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(a, "msg")), "kafka consumer error");
	assert_string_equal(json_string_value(json_object_get(a, "error")), "Broker: \"down\"");
	assert_int_equal(json_integer_value(json_object_get(a, "partition")), 3);
	assert_string_equal(json_string_value(json_object_get(b, "reason")), "SIGTERM");
	assert_non_null(json_object_get(b, "ts"));
	assert_int_equal(strncmp(l3, "ts=", 3), 0);
	json_decref(a);
	json_decref(b);
	free(text);
}

static void test_config_log_format(void **state)
{
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_string_equal(c.log_format, "logfmt");
	char *env[] = {"CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=h:1", "CHANGETRAIL_LOG_FORMAT=json", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_int_equal(c.nwarnings, 0);
	assert_string_equal(c.log_format, "json");
	assert_int_equal(ctc_config_validate(&c, &err), 0);
	char *bad[] = {"CHANGETRAIL_LOG_FORMAT=xml", NULL};
	assert_int_equal(ctc_config_apply_env(&c, bad, &err), 0);
	assert_int_equal(ctc_config_validate(&c, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "[log] format must be logfmt or json"));
	char *typo[] = {"CHANGETRAIL_LOG_FROMAT=json", NULL};
	assert_int_equal(ctc_config_apply_env(&c, typo, &err), CT_ECONFIG);
	ctc_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logfmt_to_json),
		cmocka_unit_test(test_quoted_values_round_trip),
		cmocka_unit_test(test_any_bytes_stay_json),
		cmocka_unit_test(test_ctc_log_writes_json),
		cmocka_unit_test(test_config_log_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
