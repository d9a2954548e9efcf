/*
 * metrics.h - the consumer's counters and histograms, updated from the
 * loop and the writer thread (atomics), rendered as Prometheus text.
 */
#ifndef CTC_METRICS_H
#define CTC_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ct_buf.h"

#define CTC_SIZE_BUCKETS 11
#define CTC_DURATION_BUCKETS 12
/* Brokers whose round-trip time is shown (librdkafka's statistics) */
#define CTC_METRICS_MAX_BROKERS 64
/* Partitions whose lag is shown one by one (a worker owning more shows the first ones) */
#define CTC_METRICS_MAX_PARTITIONS 1024

typedef struct ctc_metrics {
	atomic_uint_fast64_t persisted, duplicate, empty, dlq, markers;
	atomic_uint_fast64_t batches, store_errors, commit_errors;
	atomic_uint_fast64_t state_writes, states_written;
	atomic_uint_fast64_t fetch_wakeups; /* rounds of fetchwake.h's requests */
	atomic_uint_fast64_t offsets_went_back, fenced, conflicts; /* issue 16: see docs/consumer.md */
	atomic_uint_fast64_t size_bucket[CTC_SIZE_BUCKETS + 1], size_sum;
	atomic_uint_fast64_t dur_bucket[CTC_DURATION_BUCKETS + 1], dur_sum_us;
	atomic_uint_fast64_t cache_documents, cache_bytes; /* after the last batch's trim */
	atomic_int_fast64_t lag;     /* -1 = unknown */
	/* lag per owned partition (ctc_metrics_set_partition_lags), under lag_lock */
	pthread_mutex_t lag_lock;
	char lag_topic[256];
	int32_t lag_partition[CTC_METRICS_MAX_PARTITIONS];
	int64_t lag_of[CTC_METRICS_MAX_PARTITIONS];
	size_t nlags;
	/* from librdkafka's statistics (ctc_metrics_kafka_stats), under lag_lock */
	bool have_kafka_stats;
	int64_t kafka_rebalances, kafka_fetchq_msgs, kafka_fetchq_bytes;
	char broker_name[CTC_METRICS_MAX_BROKERS][128];
	int64_t broker_rtt_us[CTC_METRICS_MAX_BROKERS];
	size_t nbrokers;
	atomic_int assigned;          /* partitions owned */
	atomic_int store_ok;          /* last MongoDB operation succeeded */
	atomic_int paused;            /* consumption paused for MongoDB */
	/* the MongoDB write (batch or state write, retries included) under way:
	 * when it started (monotonic µs, 0 = none); stalls: writes that stayed
	 * outstanding past store_stall_ms, counted once each by the loop */
	atomic_int_fast64_t store_write_start_us;
	atomic_int_fast64_t store_read_start_us; /* the state load (stage 1) under way, the same way */
	atomic_uint_fast64_t store_stalls;
	/* anchors (anchor.h) */
	atomic_uint_fast64_t anchors_published, anchor_errors;
	atomic_int_fast64_t last_anchor_unix_ms; /* 0 = none yet */
} ctc_metrics;

void ctc_metrics_init(ctc_metrics *m);
/* Monotonic µs, the clock of store_write_start_us. */
int64_t ctc_metrics_now_us(void);
/* Marks the start (start = true) or the end of a MongoDB write. */
void ctc_metrics_store_write(ctc_metrics *m, bool start);
/* Age of the outstanding MongoDB write at `now_us` (monotonic), 0 when none. */
int64_t ctc_metrics_store_write_age_us(ctc_metrics *m, int64_t now_us);
void ctc_metrics_batch(ctc_metrics *m, uint64_t events, uint64_t duration_us);
/*
 * Replaces the per-partition lag with `n` partitions of `topic` (the one
 * the consumer reads) and their lag (messages behind the high watermark);
 * n = 0 when the worker owns none. Rendered as
 * changetrail_consumer_partition_lag{topic, partition}. Thread-safe.
 */
void ctc_metrics_set_partition_lags(ctc_metrics *m, const char *topic, const int32_t *partitions,
				    const int64_t *lags, size_t n);
/*
 * Takes what matters from one librdkafka statistics JSON document (the
 * consumer's stats_cb, statistics.interval.ms): the group's rebalance count
 * (cgrp.rebalance_cnt), each broker's average round-trip time (rtt.avg, µs)
 * and the fetch queue (fetchq_cnt, fetchq_size summed over the partitions).
 * Returns -1 when `json` is not such a document (nothing changed). Thread-safe.
 */
int ctc_metrics_kafka_stats(ctc_metrics *m, const char *json, size_t len);
/* Appends the Prometheus text exposition (format 0.0.4) to `out`. */
void ctc_metrics_render(ctc_metrics *m, ct_buf *out);

#endif
