/*
 * metrics.c - Prometheus text rendering of the consumer's metrics.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const double size_le[CTC_SIZE_BUCKETS] = {1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 7500, 10000};
static const double dur_le[CTC_DURATION_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

void ctc_metrics_init(ctc_metrics *m)
{
	memset(m, 0, sizeof(*m));
	atomic_store(&m->lag, -1);
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
	char line[256];
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

void ctc_metrics_render(ctc_metrics *m, ct_buf *out)
{
	put(out, "# HELP changetrail_events_total Events consumed, by outcome.\n"
		 "# TYPE changetrail_events_total counter\n");
	put(out, "changetrail_events_total{result=\"persisted\"} %llu\n", (unsigned long long)atomic_load(&m->persisted));
	put(out, "changetrail_events_total{result=\"duplicate\"} %llu\n", (unsigned long long)atomic_load(&m->duplicate));
	put(out, "changetrail_events_total{result=\"empty\"} %llu\n", (unsigned long long)atomic_load(&m->empty));
	put(out, "changetrail_events_total{result=\"dlq\"} %llu\n", (unsigned long long)atomic_load(&m->dlq));
	put(out, "changetrail_events_total{result=\"context\"} %llu\n", (unsigned long long)atomic_load(&m->markers));
	scalar(out, "changetrail_dlq_total", "counter", "Messages sent to the dead-letter topic.", (long long)atomic_load(&m->dlq));
	scalar(out, "changetrail_batches_total", "counter", "Batches written and committed.", (long long)atomic_load(&m->batches));
	histogram(out, "changetrail_batch_size", "Messages per batch.", size_le, CTC_SIZE_BUCKETS,
		  m->size_bucket, (double)atomic_load(&m->size_sum));
	histogram(out, "changetrail_batch_duration_seconds", "From batch start to offsets committed.",
		  dur_le, CTC_DURATION_BUCKETS, m->dur_bucket, (double)atomic_load(&m->dur_sum_us) / 1e6);
	scalar(out, "changetrail_state_writes_total", "counter", "Writes of the changed document states.", (long long)atomic_load(&m->state_writes));
	scalar(out, "changetrail_states_written_total", "counter", "Document states written.", (long long)atomic_load(&m->states_written));
	scalar(out, "changetrail_fetch_wakeups_total", "counter", "Requests sent to wake librdkafka's fetcher (librdkafka < 2.2).", (long long)atomic_load(&m->fetch_wakeups));
	scalar(out, "changetrail_store_errors_total", "counter", "Failed MongoDB batch writes (retried).", (long long)atomic_load(&m->store_errors));
	scalar(out, "changetrail_commit_errors_total", "counter", "Failed offset commits.", (long long)atomic_load(&m->commit_errors));
	scalar(out, "changetrail_cache_documents", "gauge", "Document states held in memory.", (long long)atomic_load(&m->cache_documents));
	scalar(out, "changetrail_cache_bytes", "gauge", "Approximate bytes of the document states held (bound: cache_max_mb).", (long long)atomic_load(&m->cache_bytes));
	scalar(out, "changetrail_consumer_lag", "gauge", "Messages behind the high watermark, owned partitions.", (long long)atomic_load(&m->lag));
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
