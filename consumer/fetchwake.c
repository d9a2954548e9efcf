/*
 * fetchwake.c - the thread that wakes librdkafka's fetcher after the
 * consumer drained a quarter of its prefetch queue (why: fetchwake.h).
 *
 * The loop counts what it takes (no lock); crossing a step sets `due` and
 * signals the thread, which sends one round of ListOffsets and sleeps
 * again. Steps that pass while a round is in flight make one more round,
 * not a backlog.
 */
#include "fetchwake.h"

#include "log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct ctc_fetchwake {
	rd_kafka_t *rk;
	atomic_uint_fast64_t *sent;
	/* loop thread only */
	uint64_t step_bytes, step_msgs, bytes, msgs;
	/* guarded by mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool due, stop;
	pthread_t thread;
	rd_kafka_resp_err_t last_err; /* the thread's: logged when it changes */
};

/* One ListOffsets per leader of the assigned partitions: the requests are what wakes the fetchers. */
static void wake(ctc_fetchwake *w)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(w->rk, &parts) || !parts)
		return;
	if (parts->cnt > 0) {
		for (int i = 0; i < parts->cnt; i++)
			parts->elems[i].offset = RD_KAFKA_OFFSET_END; /* the latest offset: any lookup would do */
		rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(w->rk, parts, CTC_FETCHWAKE_TIMEOUT_MS);
		if (w->sent)
			atomic_fetch_add(w->sent, 1);
		if (e != w->last_err) {
			/* a leader down or moving: the fetcher notices it on its own, this only says why rounds fail */
			if (e)
				ctc_log(CTC_WARN, "fetch wake-up failed", "partitions=%d error=\"%s\"", parts->cnt,
					rd_kafka_err2str(e));
			else
				ctc_log(CTC_INFO, "fetch wake-up works again", "partitions=%d", parts->cnt);
			w->last_err = e;
		}
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

static void *wake_main(void *arg)
{
	ctc_fetchwake *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->due && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		w->due = false;
		pthread_mutex_unlock(&w->mu);
		wake(w);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

ctc_fetchwake *ctc_fetchwake_new(rd_kafka_t *rk, int64_t max_kbytes, int64_t max_messages,
				 atomic_uint_fast64_t *sent, ct_error *err)
{
	ctc_fetchwake *w = calloc(1, sizeof(*w));
	if (!w) {
		ct_error_set(err, CT_ENOMEM, "out of memory");
		return NULL;
	}
	w->rk = rk;
	w->sent = sent;
	w->step_bytes = (uint64_t)(max_kbytes > 0 ? max_kbytes : 1) * 1024 / 4;
	w->step_msgs = (uint64_t)(max_messages > 4 ? max_messages / 4 : 1);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, wake_main, w)) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		ct_error_set(err, CT_ENOMEM, "cannot start the fetch wake-up thread");
		return NULL;
	}
	return w;
}

void ctc_fetchwake_took(ctc_fetchwake *w, size_t bytes)
{
	if (!w)
		return;
	w->bytes += bytes;
	w->msgs++;
	if (w->bytes < w->step_bytes && w->msgs < w->step_msgs)
		return;
	w->bytes = w->msgs = 0;
	pthread_mutex_lock(&w->mu);
	w->due = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void ctc_fetchwake_free(ctc_fetchwake *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
