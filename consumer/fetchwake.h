/*
 * fetchwake.h - wakes librdkafka's fetcher once the consumer has drained
 * part of the prefetch queue, for librdkafka versions before 2.2.
 *
 * librdkafka stops fetching while the consumer queue is over
 * queued.max.messages.kbytes (or holds queued.min.messages) and looks
 * again only when its broker thread wakes up: for a request to send, a
 * response, or after a second. A consumer that empties the queue in less
 * than a second waits for the rest of it, and its rate swings with that
 * cycle: no-write daemon, 1M events, 16 MB of prefetch, 20k events/s
 * without this and 155-170k with it; 128 MB, 24-36% swings between tenths
 * of the run without, 5-7% with (docs/performance.md). librdkafka 2.2 made
 * the interval a setting (fetch.queue.backoff.ms); the pipeline sets that
 * when it exists and starts a waker only when it does not.
 *
 * Each time the loop has taken a quarter of either bound out of
 * librdkafka, the waker's thread asks the leaders of the assigned
 * partitions for their end offsets, one ListOffsets request per leader
 * (rd_kafka_offsets_for_times() groups them so): the request wakes the
 * broker thread, which finds the queue under its bound and fetches.
 * Nothing is sent while the consumer is idle.
 */
#ifndef CTC_FETCHWAKE_H
#define CTC_FETCHWAKE_H

#include "ct_internal.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ctc_fetchwake ctc_fetchwake;

/*
 * Starts the waker's thread for consumer `rk` (borrowed: it must outlive
 * the waker) whose queue is bounded by `max_kbytes` and `max_messages`
 * (the values of queued.max.messages.kbytes and queued.min.messages the
 * consumer was made with; both >= 1). Each request sent adds one to
 * `*sent` (may be NULL). Returns NULL with `err` set to CT_ENOMEM when
 * memory or a thread cannot be had.
 */
ctc_fetchwake *ctc_fetchwake_new(rd_kafka_t *rk, int64_t max_kbytes, int64_t max_messages,
				 atomic_uint_fast64_t *sent, ct_error *err);

/*
 * The consumer took a message of `bytes` (key and value) out of
 * librdkafka. Call from one thread only (the loop's); `w` may be NULL.
 */
void ctc_fetchwake_took(ctc_fetchwake *w, size_t bytes);

/*
 * Stops and joins the thread (waiting for a request in flight, at most
 * CTC_FETCHWAKE_TIMEOUT_MS) and frees `w`. Call before
 * rd_kafka_consumer_close(). NULL is a no-op.
 */
void ctc_fetchwake_free(ctc_fetchwake *w);

/* How long one round of requests may wait for the leaders. */
#define CTC_FETCHWAKE_TIMEOUT_MS 500

#endif
