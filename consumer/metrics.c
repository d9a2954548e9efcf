/*
 * metrics.c - Prometheus text rendering of the consumer's metrics, with
 * changetrail_build_info and the process_* metrics of Prometheus' client
 * libraries (CPU, memory, file descriptors, start time) read from /proc.
 */
#include "metrics.h"

#include "changetrail/common.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <uv.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const double size_le[CTC_SIZE_BUCKETS] = {1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 7500, 10000};
static const double dur_le[CTC_DURATION_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

void ctc_metrics_init(ctc_metrics *m)
{
	memset(m, 0, sizeof(*m));
	atomic_store(&m->lag, -1);
	pthread_mutex_init(&m->lag_lock, NULL);
}

void ctc_metrics_set_partition_lags(ctc_metrics *m, const char *topic, const int32_t *partitions,
				    const int64_t *lags, size_t n)
{
	pthread_mutex_lock(&m->lag_lock);
	snprintf(m->lag_topic, sizeof(m->lag_topic), "%s", topic ? topic : "");
	m->nlags = n < CTC_METRICS_MAX_PARTITIONS ? n : CTC_METRICS_MAX_PARTITIONS;
	for (size_t i = 0; i < m->nlags; i++) {
		m->lag_partition[i] = partitions[i];
		m->lag_of[i] = lags[i];
	}
	pthread_mutex_unlock(&m->lag_lock);
}

int64_t ctc_metrics_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ctc_metrics_store_write(ctc_metrics *m, bool start)
{
	atomic_store(&m->store_write_start_us, start ? ctc_metrics_now_us() : 0);
}

int64_t ctc_metrics_store_write_age_us(ctc_metrics *m, int64_t now_us)
{
	int64_t start = atomic_load(&m->store_write_start_us);
	return start && now_us > start ? now_us - start : 0;
}

void ctc_metrics_batch(ctc_metrics *m, uint64_t events, uint64_t duration_us)
{
	size_t i = 0;
	while (i < CTC_SIZE_BUCKETS && (double)events > size_le[i])
		i++;
	atomic_fetch_add(&m->size_bucket[i], 1);
	atomic_fetch_add(&m->size_sum, events);
	i = 0;
	while (i < CTC_DURATION_BUCKETS && (double)duration_us / 1e6 > dur_le[i])
		i++;
	atomic_fetch_add(&m->dur_bucket[i], 1);
	atomic_fetch_add(&m->dur_sum_us, duration_us);
	atomic_fetch_add(&m->batches, 1);
}

static void put(ct_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(ct_buf *out, const char *fmt, ...)
{
	char line[1024]; /* the longest: a partition's lag with a 249-character topic, escaped */
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		ct_buf_put(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void histogram(ct_buf *out, const char *name, const char *help, const double *le, size_t n,
		      atomic_uint_fast64_t *buckets, double sum)
{
	uint64_t cum = 0;
	put(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < n; i++) {
		cum += atomic_load(&buckets[i]);
		put(out, "%s_bucket{le=\"%g\"} %llu\n", name, le[i], (unsigned long long)cum);
	}
	cum += atomic_load(&buckets[n]);
	put(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
	    (unsigned long long)cum, name, sum, name, (unsigned long long)cum);
}

/* One counter or gauge: HELP, TYPE and its value. */
static void scalar(ct_buf *out, const char *name, const char *type, const char *help, long long v)
{
	put(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, v);
}

int ctc_metrics_kafka_stats(ctc_metrics *m, const char *json, size_t len)
{
	json_error_t e;
	json_t *st = json_loadb(json, len, 0, &e), *v;
	const char *key;
	if (!json_is_object(st)) {
		json_decref(st);
		return -1;
	}
	int64_t rebalances = json_integer_value(json_object_get(json_object_get(st, "cgrp"), "rebalance_cnt"));
	int64_t qmsgs = 0, qbytes = 0;
	json_object_foreach(json_object_get(st, "topics"), key, v) {
		const char *pkey;
		json_t *part;
		json_object_foreach(json_object_get(v, "partitions"), pkey, part) {
			if (json_integer_value(json_object_get(part, "partition")) < 0)
				continue; /* the internal UA partition */
			qmsgs += json_integer_value(json_object_get(part, "fetchq_cnt"));
			qbytes += json_integer_value(json_object_get(part, "fetchq_size"));
		}
	}
	pthread_mutex_lock(&m->lag_lock);
	m->have_kafka_stats = true;
	m->kafka_rebalances = rebalances;
	m->kafka_fetchq_msgs = qmsgs;
	m->kafka_fetchq_bytes = qbytes;
	m->nbrokers = 0;
	json_object_foreach(json_object_get(st, "brokers"), key, v) {
		const char *source = json_string_value(json_object_get(v, "source"));
		if (json_integer_value(json_object_get(v, "nodeid")) < 0 || (source && (!strcmp(source, "logical") ||
		    !strcmp(source, "internal"))) || m->nbrokers >= CTC_METRICS_MAX_BROKERS)
			continue; /* bootstrap, coordinator and internal handles are no brokers of the cluster */
		snprintf(m->broker_name[m->nbrokers], sizeof(m->broker_name[0]), "%s", key);
		m->broker_rtt_us[m->nbrokers++] = json_integer_value(json_object_get(json_object_get(v, "rtt"), "avg"));
	}
	pthread_mutex_unlock(&m->lag_lock);
	json_decref(st);
	return 0;
}

/* A label value as the exposition format wants it: \\, \" and \n escaped. */
static void label_value(char *out, size_t size, const char *v)
{
	size_t n = 0;
	for (; v && *v && n + 3 < size; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n')
			out[n++] = '\\';
		out[n++] = *v == '\n' ? 'n' : *v;
	}
	out[n] = '\0';
}

static void build_info(ct_buf *out)
{
	char version[64], rdkafka[64], mongoc[64], jansson[64], libuv[64];
	label_value(version, sizeof(version), ct_version());
	label_value(rdkafka, sizeof(rdkafka), rd_kafka_version_str());
	label_value(mongoc, sizeof(mongoc), mongoc_get_version());
	label_value(jansson, sizeof(jansson), jansson_version_str());
	label_value(libuv, sizeof(libuv), uv_version_string());
	put(out, "# HELP changetrail_build_info The consumer's version and the libraries it runs with (always 1).\n"
		 "# TYPE changetrail_build_info gauge\n");
	put(out, "changetrail_build_info{version=\"%s\",librdkafka=\"%s\",libmongoc=\"%s\",jansson=\"%s\",libuv=\"%s\"} 1\n",
	    version, rdkafka, mongoc, jansson, libuv);
}

/*
 * Fields 14 (utime), 15 (stime), 22 (starttime, clock ticks after boot) of
 * /proc/self/stat; the command name (field 2) may hold spaces and ')', so
 * the fields are counted from the last ')'.
 */
static int proc_stat(double *cpu_s, double *start_ticks)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long utime = 0, stime = 0, start = 0;
	p++;
	for (int field = 3; field <= 22; field++) {
		char *end;
		while (*p == ' ')
			p++;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p && field > 3)
			return -1;
		if (field == 14)
			utime = v;
		else if (field == 15)
			stime = v;
		else if (field == 22)
			start = v;
		p = end == p ? p + 1 : end;
	}
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		return -1;
	*cpu_s = (double)(utime + stime) / (double)hz;
	*start_ticks = (double)start / (double)hz;
	return 0;
}

/* Boot time (Unix seconds) from /proc/stat's btime. */
static long long boot_time(void)
{
	char line[256];
	long long bt = -1;
	FILE *f = fopen("/proc/stat", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "btime ", 6)) {
			bt = strtoll(line + 6, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return bt;
}

static void process_metrics(ct_buf *out)
{
	double cpu, start;
	if (proc_stat(&cpu, &start) == 0) {
		put(out, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
			 "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n", cpu);
		long long bt = boot_time();
		if (bt > 0)
			put(out, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
				 "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
			    (double)bt + start);
	}
	unsigned long long pages_virt = 0, pages_res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	int got = f ? fscanf(f, "%llu %llu", &pages_virt, &pages_res) : 0;
	if (f)
		fclose(f);
	long page = sysconf(_SC_PAGESIZE);
	if (got == 2 && page > 0) {
		put(out, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
			 "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
		    pages_res * (unsigned long long)page);
		put(out, "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
			 "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n",
		    pages_virt * (unsigned long long)page);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		long long fds = 0;
		struct dirent *e;
		while ((e = readdir(d)))
			fds += e->d_name[0] != '.';
		closedir(d);
		put(out, "# HELP process_open_fds Number of open file descriptors.\n"
			 "# TYPE process_open_fds gauge\nprocess_open_fds %lld\n", fds - 1 /* the directory's own */);
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		put(out, "# HELP process_max_fds Maximum number of open file descriptors.\n"
			 "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
}

void ctc_metrics_render(ctc_metrics *m, ct_buf *out)
{
	build_info(out);
	process_metrics(out);
	/* dead letters are events_total{result="dlq"}: no changetrail_dlq_total beside it */
	put(out, "# HELP changetrail_events_total Events consumed, by outcome.\n"
		 "# TYPE changetrail_events_total counter\n");
	put(out, "changetrail_events_total{result=\"persisted\"} %llu\n", (unsigned long long)atomic_load(&m->persisted));
	put(out, "changetrail_events_total{result=\"duplicate\"} %llu\n", (unsigned long long)atomic_load(&m->duplicate));
	put(out, "changetrail_events_total{result=\"empty\"} %llu\n", (unsigned long long)atomic_load(&m->empty));
	put(out, "changetrail_events_total{result=\"dlq\"} %llu\n", (unsigned long long)atomic_load(&m->dlq));
	put(out, "changetrail_events_total{result=\"context\"} %llu\n", (unsigned long long)atomic_load(&m->markers));
	scalar(out, "changetrail_batches_total", "counter", "Batches written and committed.", (long long)atomic_load(&m->batches));
	histogram(out, "changetrail_batch_size", "Messages per batch.", size_le, CTC_SIZE_BUCKETS,
		  m->size_bucket, (double)atomic_load(&m->size_sum));
	histogram(out, "changetrail_batch_duration_seconds", "From batch start to offsets committed.",
		  dur_le, CTC_DURATION_BUCKETS, m->dur_bucket, (double)atomic_load(&m->dur_sum_us) / 1e6);
	scalar(out, "changetrail_state_writes_total", "counter", "Writes of the changed document states.", (long long)atomic_load(&m->state_writes));
	scalar(out, "changetrail_states_written_total", "counter", "Document states written.", (long long)atomic_load(&m->states_written));
	scalar(out, "changetrail_fetch_wakeups_total", "counter", "Requests sent to wake librdkafka's fetcher (librdkafka < 2.2).", (long long)atomic_load(&m->fetch_wakeups));
	scalar(out, "changetrail_offsets_went_back_total", "counter", "Partitions whose offsets were proven to have gone back (topic re-created, new cluster).", (long long)atomic_load(&m->offsets_went_back));
	scalar(out, "changetrail_fenced_total", "counter", "Times the consumer discarded its unwritten work: assignment lost, stalled, or rewound after a history conflict.", (long long)atomic_load(&m->fenced));
	scalar(out, "changetrail_history_conflicts_total", "counter", "Batches whose history insert collided (reused event id, version taken).", (long long)atomic_load(&m->conflicts));
	scalar(out, "changetrail_store_errors_total", "counter", "Failed MongoDB batch writes (retried).", (long long)atomic_load(&m->store_errors));
	scalar(out, "changetrail_commit_errors_total", "counter", "Failed offset commits.", (long long)atomic_load(&m->commit_errors));
	scalar(out, "changetrail_cache_documents", "gauge", "Document states held in memory.", (long long)atomic_load(&m->cache_documents));
	scalar(out, "changetrail_cache_bytes", "gauge", "Approximate bytes of the document states held (bound: cache_max_mb).", (long long)atomic_load(&m->cache_bytes));
	scalar(out, "changetrail_consumer_lag", "gauge", "Messages behind the high watermark, owned partitions.", (long long)atomic_load(&m->lag));
	put(out, "# HELP changetrail_consumer_partition_lag Messages behind the high watermark, per owned partition.\n"
		 "# TYPE changetrail_consumer_partition_lag gauge\n");
	pthread_mutex_lock(&m->lag_lock);
	char topic[600];
	label_value(topic, sizeof(topic), m->lag_topic);
	for (size_t i = 0; i < m->nlags; i++)
		put(out, "changetrail_consumer_partition_lag{topic=\"%s\",partition=\"%d\"} %lld\n", topic,
		    (int)m->lag_partition[i], (long long)m->lag_of[i]);
	if (m->have_kafka_stats) {
		put(out, "# HELP changetrail_kafka_rebalances_total Rebalances of the consumer group seen by this worker (librdkafka's statistics).\n"
			 "# TYPE changetrail_kafka_rebalances_total counter\nchangetrail_kafka_rebalances_total %lld\n",
		    (long long)m->kafka_rebalances);
		put(out, "# HELP changetrail_kafka_fetch_queue_messages Messages fetched and waiting in librdkafka's queue.\n"
			 "# TYPE changetrail_kafka_fetch_queue_messages gauge\nchangetrail_kafka_fetch_queue_messages %lld\n",
		    (long long)m->kafka_fetchq_msgs);
		put(out, "# HELP changetrail_kafka_fetch_queue_bytes Bytes fetched and waiting in librdkafka's queue.\n"
			 "# TYPE changetrail_kafka_fetch_queue_bytes gauge\nchangetrail_kafka_fetch_queue_bytes %lld\n",
		    (long long)m->kafka_fetchq_bytes);
		put(out, "# HELP changetrail_kafka_broker_rtt_seconds Average round-trip time to each broker (librdkafka's statistics).\n"
			 "# TYPE changetrail_kafka_broker_rtt_seconds gauge\n");
		for (size_t i = 0; i < m->nbrokers; i++) {
			char broker[300];
			label_value(broker, sizeof(broker), m->broker_name[i]);
			put(out, "changetrail_kafka_broker_rtt_seconds{broker=\"%s\"} %.6f\n", broker,
			    (double)m->broker_rtt_us[i] / 1e6);
		}
	}
	pthread_mutex_unlock(&m->lag_lock);
	scalar(out, "changetrail_assigned_partitions", "gauge", "Partitions owned.", (long long)atomic_load(&m->assigned));
	put(out, "# HELP changetrail_store_oldest_write_age_seconds Age of the MongoDB write under way (0: none).\n"
		 "# TYPE changetrail_store_oldest_write_age_seconds gauge\n"
		 "changetrail_store_oldest_write_age_seconds %.3f\n",
	    (double)ctc_metrics_store_write_age_us(m, ctc_metrics_now_us()) / 1e6);
	scalar(out, "changetrail_store_stalls_total", "counter", "MongoDB writes outstanding longer than store_stall_ms.", (long long)atomic_load(&m->store_stalls));
	scalar(out, "changetrail_anchors_published_total", "counter", "Anchor records published (consumer/anchor.h).", (long long)atomic_load(&m->anchors_published));
	scalar(out, "changetrail_anchor_errors_total", "counter", "Anchor records not built, written or delivered (retried on Kafka).", (long long)atomic_load(&m->anchor_errors));
	put(out, "# HELP changetrail_last_anchor_timestamp_seconds Unix time of the last anchor published (0: none).\n"
		 "# TYPE changetrail_last_anchor_timestamp_seconds gauge\n"
		 "changetrail_last_anchor_timestamp_seconds %.3f\n", (double)atomic_load(&m->last_anchor_unix_ms) / 1e3);
	scalar(out, "changetrail_paused", "gauge", "1 while consumption is paused for MongoDB.", (long long)atomic_load(&m->paused));
}
