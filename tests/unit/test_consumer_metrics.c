/*
 * test_consumer_metrics.c - /metrics as Prometheus reads it: every sample
 * has one HELP and one TYPE, names and labels well-formed; the consumer's
 * changetrail_build_info and the process_* metrics of Prometheus' client
 * libraries (issue #21) are there and agree with what the process is.
 */
#include "testutil.h"

#include "changetrail/version.h"
#include "ct_buf.h"
#include "metrics.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *render(void)
{
	ctc_metrics m;
	ct_buf b = CT_BUF_INIT;
	ctc_metrics_init(&m);
	ctc_metrics_render(&m, &b);
	assert_false(b.failed);
	return ct_buf_detach(&b, NULL);
}

/* The value of the sample line that starts with `prefix` (name, or name{labels}), or fails. */
static double sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
		if (!strncmp(l, prefix, n) && (l[n] == ' ' || l[n] == '{'))
			return strtod(strchr(l + n, ' ') + 1, NULL);
		if (!strchr(l, '\n'))
			break;
	}
	fail_msg("no sample %s in:\n%s", prefix, text);
	return 0;
}

static void test_exposition_is_well_formed(void **state)
{
	char *text = render();
	char helped[256][96], typed[256][96];
	size_t nh = 0, nt = 0;
	for (char *l = text, *e; *l; l = e + 1) {
		assert_non_null(e = strchr(l, '\n'));
		*e = '\0';
		char name[96];
		if (!strncmp(l, "# HELP ", 7) || !strncmp(l, "# TYPE ", 7)) {
			assert_int_equal(sscanf(l + 7, "%95s", name), 1);
			char (*seen)[96] = l[2] == 'H' ? helped : typed;
			size_t *ns = l[2] == 'H' ? &nh : &nt;
			for (size_t i = 0; i < *ns; i++)
				if (!strcmp(seen[i], name))
					fail_msg("%s twice for %s", l[2] == 'H' ? "HELP" : "TYPE", name);
			assert_true(*ns < 256);
			strcpy(seen[(*ns)++], name);
			continue;
		}
		/* a sample: name[{labels}] value, the name's family TYPEd before */
		size_t k = 0;
		while (isalnum((unsigned char)l[k]) || l[k] == '_' || l[k] == ':')
			k++;
		assert_true(k > 0 && k < sizeof(name));
		memcpy(name, l, k);
		name[k] = '\0';
		if (l[k] == '{') {
			char *close = strchr(l + k, '}');
			if (!close)
				fail_msg("labels not closed: %s", l);
			k = (size_t)(close - l) + 1;
		}
		if (l[k] != ' ' || !l[k + 1])
			fail_msg("no value: %s", l);
		char *end;
		strtod(l + k + 1, &end);
		if (*end)
			fail_msg("bad value: %s", l);
		bool found = false;
		for (size_t i = 0; i < nt && !found; i++) {
			size_t tl = strlen(typed[i]);
			found = !strncmp(name, typed[i], tl) &&
				(!name[tl] || !strcmp(name + tl, "_bucket") || !strcmp(name + tl, "_sum") ||
				 !strcmp(name + tl, "_count"));
		}
		if (!found)
			fail_msg("sample without TYPE: %s", l);
	}
	assert_int_equal(nh, nt);
	free(text);
	/* one series per fact: dead letters are events_total{result="dlq"} only */
	text = render();
	assert_non_null(strstr(text, "changetrail_events_total{result=\"dlq\"} "));
	assert_null(strstr(text, "changetrail_dlq_total"));
	free(text);
}

/* Issue #21: lag per partition, with topic and partition labels (escaped). */
static void test_partition_lag(void **state)
{
	ctc_metrics m;
	ct_buf b = CT_BUF_INIT;
	ctc_metrics_init(&m);
	const int32_t parts[] = {0, 5, 11};
	const int64_t lags[] = {0, 42, 7};
	ctc_metrics_set_partition_lags(&m, "change\"trail\\events", parts, lags, 3);
	ctc_metrics_render(&m, &b);
	char *text = ct_buf_detach(&b, NULL);
	assert_non_null(strstr(text, "# TYPE changetrail_consumer_partition_lag gauge\n"));
	assert_non_null(strstr(text, "changetrail_consumer_partition_lag{topic=\"change\\\"trail\\\\events\",partition=\"5\"} 42\n"));
	assert_non_null(strstr(text, "partition=\"0\"} 0\n"));
	assert_non_null(strstr(text, "partition=\"11\"} 7\n"));
	free(text);
	/* partitions given up: their series go */
	ctc_metrics_set_partition_lags(&m, "t", NULL, NULL, 0);
	ctc_metrics_render(&m, &b);
	text = ct_buf_detach(&b, NULL);
	assert_null(strstr(text, "changetrail_consumer_partition_lag{"));
	free(text);
}

/* Issue #21: what matters of librdkafka's statistics: rebalances, broker RTT, fetch queue. */
static void test_kafka_statistics(void **state)
{
	static const char stats[] =
		"{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"ts\":1,"
		"\"brokers\":{\"127.0.0.1:9092/1\":{\"nodeid\":1,\"rtt\":{\"avg\":1500,\"p99\":9000}},"
		"\"GroupCoordinator\":{\"nodeid\":1,\"source\":\"logical\",\"rtt\":{\"avg\":7}},"
		"\"127.0.0.1:9092/bootstrap\":{\"nodeid\":-1,\"source\":\"configured\",\"rtt\":{\"avg\":7}},"
		"\"10.0.0.2:9092/2\":{\"nodeid\":2,\"rtt\":{\"avg\":250000}}},"
		"\"topics\":{\"changetrail.events\":{\"partitions\":{"
		"\"0\":{\"partition\":0,\"fetchq_cnt\":10,\"fetchq_size\":1000},"
		"\"1\":{\"partition\":1,\"fetchq_cnt\":5,\"fetchq_size\":500},"
		"\"-1\":{\"partition\":-1,\"fetchq_cnt\":99,\"fetchq_size\":99}}}},"
		"\"cgrp\":{\"state\":\"up\",\"rebalance_cnt\":3}}";
	ctc_metrics m;
	ct_buf b = CT_BUF_INIT;
	ctc_metrics_init(&m);
	/* none before the first statistics */
	ctc_metrics_render(&m, &b);
	char *text = ct_buf_detach(&b, NULL);
	assert_null(strstr(text, "changetrail_kafka_"));
	free(text);
	assert_int_equal(ctc_metrics_kafka_stats(&m, "not json", 8), -1);
	assert_int_equal(ctc_metrics_kafka_stats(&m, stats, strlen(stats)), 0);
	ctc_metrics_render(&m, &b);
	text = ct_buf_detach(&b, NULL);
	assert_true(sample(text, "changetrail_kafka_rebalances_total") == 3);
	assert_true(sample(text, "changetrail_kafka_fetch_queue_messages") == 15);
	assert_true(sample(text, "changetrail_kafka_fetch_queue_bytes") == 1500);
	assert_true(sample(text, "changetrail_kafka_broker_rtt_seconds{broker=\"127.0.0.1:9092/1\"}") == 0.0015);
	assert_true(sample(text, "changetrail_kafka_broker_rtt_seconds{broker=\"10.0.0.2:9092/2\"}") == 0.25);
	assert_null(strstr(text, "GroupCoordinator"));
	assert_null(strstr(text, "bootstrap"));
	free(text);
}

static void test_build_info(void **state)
{
	char *text = render();
	char want[128];
	snprintf(want, sizeof(want), "changetrail_build_info{version=\"%s\",librdkafka=\"", CT_VERSION_STRING);
	if (!strstr(text, want))
		fail_msg("no %s in:\n%s", want, text);
	assert_non_null(strstr(text, "# TYPE changetrail_build_info gauge\n"));
	assert_true(sample(text, "changetrail_build_info") == 1);
	free(text);
}

static void test_process_metrics(void **state)
{
	/* some CPU time, some more open descriptors, some resident memory */
	volatile double x = 0;
	for (long i = 0; i < 30000000; i++)
		x += (double)i * 1e-9;
	char *text = render();
	double cpu = sample(text, "process_cpu_seconds_total");
	double fds = sample(text, "process_open_fds");
	int extra[5];
	for (int i = 0; i < 5; i++)
		assert_true((extra[i] = open("/dev/null", O_RDONLY)) >= 0);
	free(text);
	text = render();
	assert_true(sample(text, "process_open_fds") == fds + 5);
	for (int i = 0; i < 5; i++)
		close(extra[i]);
	assert_true(cpu > 0.005);
	assert_true(sample(text, "process_cpu_seconds_total") >= cpu);
	/* resident memory as /proc/self/status says, within 10 MB */
	static char status[8192];
	FILE *f = fopen("/proc/self/status", "r"); /* its size is 0 for stat(): read what comes */
	assert_non_null(f);
	status[fread(status, 1, sizeof(status) - 1, f)] = '\0';
	fclose(f);
	const char *vm = strstr(status, "VmRSS:");
	assert_non_null(vm);
	double rss = strtod(vm + 6, NULL) * 1024;
	double got = sample(text, "process_resident_memory_bytes");
	if (got < rss - 10e6 || got > rss + 10e6)
		fail_msg("process_resident_memory_bytes %.0f, VmRSS %.0f", got, rss);
	assert_true(sample(text, "process_virtual_memory_bytes") >= got);
	assert_true(sample(text, "process_max_fds") >= 5);
	/* started before now, and not before the test's build */
	double start = sample(text, "process_start_time_seconds");
	double now = (double)time(NULL);
	if (start > now + 1 || start < now - 600)
		fail_msg("process_start_time_seconds %.2f, now %.0f", start, now);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposition_is_well_formed),
		cmocka_unit_test(test_build_info),
		cmocka_unit_test(test_partition_lag),
		cmocka_unit_test(test_kafka_statistics),
		cmocka_unit_test(test_process_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
