/*
 * worker.h - processing of one batch of Kafka messages, run off the loop
 * thread: parse and validate, bad ones to the DLQ, previous states loaded
 * with one query, records built, everything written to MongoDB with retries
 * (consumption paused while MongoDB fails). Blocking by design.
 */
#ifndef CTC_WORKER_H
#define CTC_WORKER_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "metrics.h"
#include "store.h"

typedef struct ctc_batch {
	rd_kafka_message_t **msgs; /* owned; destroyed with the batch */
	size_t n, cap;
	uint64_t seq;              /* batch number, from 1 */
	int64_t start_us;          /* monotonic, when handed to the worker */
	/* results, set by the worker */
	bool ok;                   /* written (or nothing to write): offsets may be committed */
	bool committed;            /* the loop committed its offsets already (rebalance) */
	uint64_t persisted, duplicate, empty, dlq, markers;
} ctc_batch;

typedef struct ctc_worker {
	const ctc_config *cfg;
	rd_kafka_t *consumer;     /* for pause/resume of owned partitions (thread-safe calls) */
	rd_kafka_t *dlq;          /* producer of the dead-letter topic */
	ctc_store *store;         /* NULL with no_write */
	ctc_cache *cache;
	ctc_metrics *metrics;
	atomic_int *abort;        /* set when the shutdown deadline passed: stop retrying */
	atomic_int dlq_failed;    /* delivery reports that failed */
	bool indexes_done;
	bool paused;
} ctc_worker;

/* Processes `b` completely (see above); sets b->ok. Call from one thread at a time. */
void ctc_worker_process(ctc_worker *w, ctc_batch *b);

void ctc_batch_free(ctc_batch *b);

#endif
