/*
 * pipeline.c - the loop side of changetrail-consumer (see pipeline.h).
 *
 * Threads: the libuv loop thread owns the Kafka consumer (polling,
 * rebalances, commits), the pending batch and the HTTP server. A batch goes
 * through stages on the libuv thread pool (worker.h): `preparing` (CPU:
 * parse, diff, records), `writing` (history to MongoDB) and, for a batch that
 * took the changed states, `flushing` (contexts and states, on a client of
 * their own), so one batch is prepared while the previous one is written and
 * no history waits for a state write. At most one batch per stage, one
 * prepared batch waiting for the writer, and one filling up to batch_size;
 * beyond that nothing is read, so librdkafka's own bounded prefetch is the
 * only queue. The cache is touched by the preparing stage, and by the loop
 * only while no batch is being prepared.
 *
 * Batching is a group commit (issue 18): with the writer idle, what has
 * arrived goes at once; batches grow only while a history write is in
 * flight, up to batch_size, and batch_ms bounds the wait.
 *
 * Offsets of written batches wait in `uncommitted` until the states they
 * changed are written too (worker.h): every state_flush_ms, on revoke and at
 * stop. When a batch's states go to the `flushing` stage, the offsets up to
 * it move to `committing` and are committed once the states are written;
 * later batches gather in `uncommitted` meanwhile. A failed batch discards
 * them, so Kafka redelivers from the last commit that had everything behind
 * it in MongoDB.
 */
#include "pipeline.h"

#include "ct_internal.h"
#include "fetchwake.h"
#include "anchor.h"
#include "http.h"
#include "log.h"
#include "offsets.h"
#include "worker.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

struct ctc_pipeline {
	const ctc_config *cfg;
	uv_loop_t loop;
	int pipefd[2];
	uv_poll_t kpoll;
	uv_timer_t batch_timer, tick_timer, deadline_timer;
	unsigned ticks; /* of tick_timer (100 ms): lag every 10, ping every 50 */
	uv_signal_t sigterm, sigint;
	uv_async_t stop_async;
	uv_work_t prep_work, write_work, state_work, ping_work;
	bool ping_inflight;
	rd_kafka_t *rk, *dlq;
	rd_kafka_t *anchor_rk;    /* producer of the anchor topic; NULL without one */
	ctc_anchor *anchor;       /* NULL: anchors off */
	int64_t stall_counted;    /* store_write_start_us of the last write counted as a stall */
	int64_t ping_start_us;    /* monotonic, when the ping under way started */
	rd_kafka_queue_t *queue;
	ctc_fetchwake *fetchwake; /* NULL when librdkafka has fetch.queue.backoff.ms */
	long long prefetch_kb;
	ctc_http *http;
	ctc_store *ping_store;
	ctc_worker worker;
	ctc_metrics metrics;
	atomic_int abort;
	/* batches */
	ctc_batch *pending, *preparing, *prepared, *writing;
	ctc_batch *flushing; /* its history written, its states being written (stage 3) */
	uint64_t next_seq;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool prep_done, write_done, state_done; /* guarded by mu */
	/* lifecycle */
	bool stopping, closed, handles_open, deadline_passed;
	int result;
	char kafka_failure[300]; /* why Kafka refused us for good (authentication) */
	int64_t last_msg_us, started_us, first_msg_us, last_commit_us, assigned_us, last_flush_us;
	double last_state_write_ms; /* contexts + states of the last state write: see flush_gap_us() */
	int64_t last_history_us; /* the last batch with events written */
	rd_kafka_topic_partition_list_t *uncommitted; /* next offsets of written batches */
	rd_kafka_topic_partition_list_t *committing;  /* those up to `flushing`: committed once it is written */
	bool states_lost; /* a state write failed: no later batch may be committed (it would commit past it) */
	uint64_t events_seen;
	unsigned conflict_rewinds; /* in a row, without a batch written in between */
	bool stalled; /* the heartbeat found a stall: fence and rewind at the next tick */
	/* test-only fault hook: batches still to commit before a SIGKILL between
	 * the MongoDB write and the commit (CT_TEST_CRASH_AFTER_WRITE); 0 = off */
	long crash_after_write;
};

/* Which malloc this process really runs on (linked or LD_PRELOADed):
 * jemalloc exports mallctl, glibc does not. Logged because it halves the
 * CPU per event (docs/performance.md). */
static const char *allocator_name(void)
{
	void *self = dlopen(NULL, RTLD_LAZY); /* the program and what it was started with */
	const char *name = self && dlsym(self, "mallctl") ? "jemalloc" : "libc";
	if (self)
		dlclose(self);
	return name;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void drain(ctc_pipeline *p);
static void batch_timer_cb(uv_timer_t *t);
static void begin_stop(ctc_pipeline *p, const char *why);
static void maybe_finish_stop(ctc_pipeline *p);
static void fence_and_rewind(ctc_pipeline *p, const char *why);

/* ---- commits ---- */

/* Adds the offsets of written batch `b` to the ones waiting for their states. */
static void take_offsets(ctc_pipeline *p, ctc_batch *b)
{
	rd_kafka_topic_partition_list_t *offs = p->uncommitted;
	for (size_t i = 0; i < b->n; i++) {
		const rd_kafka_message_t *m = b->msgs[i];
		rd_kafka_topic_partition_t *tp =
			rd_kafka_topic_partition_list_find(offs, rd_kafka_topic_name(m->rkt), m->partition);
		if (!tp)
			tp = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(m->rkt), m->partition);
		if (m->offset + 1 > tp->offset)
			tp->offset = m->offset + 1; /* the next offset to read */
	}
}

/* Commits what take_offsets() gathered: call only when the states are written. */
static void commit_uncommitted(ctc_pipeline *p)
{
	rd_kafka_topic_partition_list_t *offs = p->uncommitted;
	if (offs->cnt && !p->states_lost) {
		rd_kafka_resp_err_t e = rd_kafka_commit(p->rk, offs, 0);
		if (e) {
			/* Not fatal: the next commit covers it, redelivery is harmless. */
			atomic_fetch_add(&p->metrics.commit_errors, 1);
			ctc_log(CTC_WARN, "commit failed", "partitions=%d error=\"%s\"", offs->cnt,
				rd_kafka_err2str(e));
		}
		p->last_commit_us = now_us();
	}
	p->uncommitted = rd_kafka_topic_partition_list_new(8);
	rd_kafka_topic_partition_list_destroy(offs);
}

/* After a failure: these offsets must never be committed (Kafka redelivers). */
static void discard_uncommitted(ctc_pipeline *p)
{
	rd_kafka_topic_partition_list_destroy(p->uncommitted);
	p->uncommitted = rd_kafka_topic_partition_list_new(8);
	rd_kafka_topic_partition_list_destroy(p->committing);
	p->committing = rd_kafka_topic_partition_list_new(8);
}

/* The offsets gathered so far wait for the state write of the batch that took the states. */
static void hold_for_states(ctc_pipeline *p)
{
	rd_kafka_topic_partition_list_t *held = p->committing;
	p->committing = p->uncommitted;
	p->uncommitted = held; /* empty: one state write at a time */
}

/* Those offsets back with the others (older ones: the highest per partition stays). */
static void release_held(ctc_pipeline *p)
{
	for (int i = 0; i < p->committing->cnt; i++) {
		const rd_kafka_topic_partition_t *h = &p->committing->elems[i];
		rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(p->uncommitted, h->topic, h->partition);
		if (!tp)
			tp = rd_kafka_topic_partition_list_add(p->uncommitted, h->topic, h->partition);
		if (h->offset > tp->offset)
			tp->offset = h->offset;
	}
	rd_kafka_topic_partition_list_destroy(p->committing);
	p->committing = rd_kafka_topic_partition_list_new(8);
}

/* Commits the offsets held for the state write just acknowledged. */
static void commit_held(ctc_pipeline *p)
{
	rd_kafka_topic_partition_list_t *later = p->uncommitted;
	p->uncommitted = p->committing;
	p->committing = rd_kafka_topic_partition_list_new(8);
	commit_uncommitted(p);
	rd_kafka_topic_partition_list_destroy(p->uncommitted);
	p->uncommitted = later;
}

/* See ctc_state_flush_interval_ms(). */
static int64_t flush_gap_us(const ctc_pipeline *p)
{
	return ctc_state_flush_interval_ms(p->cfg->state_flush_ms, p->last_state_write_ms) * 1000;
}

/* A batch in a stage that carries a state write restarts the interval when
 * written: the batch after it is not due (two swaps back to back, the
 * second for one batch's states, cost a whole scan more). */
static bool flush_in_flight(const ctc_pipeline *p)
{
	return p->flushing || (p->writing && p->writing->flush_state) || (p->prepared && p->prepared->flush_state);
}

static bool flush_due(const ctc_pipeline *p)
{
	if (p->stopping)
		return true;
	return !flush_in_flight(p) && now_us() - p->last_flush_us >= flush_gap_us(p);
}

/* ---- the two stages ---- */

static bool busy(const ctc_pipeline *p)
{
	return p->preparing || p->prepared || p->writing || p->flushing;
}

/*
 * Group commit (issue 18): with no history write in flight or waiting for
 * the writer, what has arrived goes to the stages at once; while one is, the
 * pending batch grows (up to batch_size, for at most batch_ms), so a light
 * load is written within one write's time and a heavy one in big batches.
 */
static bool writer_idle(const ctc_pipeline *p)
{
	return !p->preparing && !p->prepared && !p->writing;
}

static void prep_cb(uv_work_t *req)
{
	ctc_pipeline *p = req->data;
	ctc_worker_prepare(&p->worker, p->preparing);
	pthread_mutex_lock(&p->mu);
	p->prep_done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void write_cb(uv_work_t *req)
{
	ctc_pipeline *p = req->data;
	ctc_worker_write_history(&p->worker, p->writing);
	pthread_mutex_lock(&p->mu);
	p->write_done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void state_cb(uv_work_t *req)
{
	ctc_pipeline *p = req->data;
	ctc_worker_write_states(&p->worker, p->flushing);
	pthread_mutex_lock(&p->mu);
	p->state_done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void dispatch(ctc_pipeline *p);
static void after_prep_cb(uv_work_t *req, int status);
static void after_write_cb(uv_work_t *req, int status);
static void after_state_cb(uv_work_t *req, int status);

/* Never commit past unwritten data: stop; the group redelivers from the last commit. */
static void fail_pipeline(ctc_pipeline *p, const char *why)
{
	discard_uncommitted(p);
	if (p->prepared) { /* built on what failed: never written */
		ctc_batch_free(p->prepared);
		p->prepared = NULL;
	}
	if (p->result == 0)
		p->result = CT_ETIMEDOUT;
	if (!p->stopping)
		begin_stop(p, why);
}

static void start_write(ctc_pipeline *p)
{
	if (p->writing || !p->prepared || p->result)
		return;
	if (p->prepared->took_states && p->flushing)
		return; /* one state write at a time: a batch that took states waits for the one under way */
	p->writing = p->prepared;
	p->prepared = NULL;
	p->write_done = false;
	p->write_work.data = p;
	if (uv_queue_work(&p->loop, &p->write_work, write_cb, after_write_cb)) {
		/* only fails when the loop is closing: dropped uncommitted, it is redelivered */
		ctc_log(CTC_ERROR, "cannot queue work", NULL);
		ctc_batch_free(p->writing);
		p->writing = NULL;
		fail_pipeline(p, "internal error");
	}
}

/* Hands the states written batch `b` took to stage 3; the offsets so far wait for them. */
static void start_states(ctc_pipeline *p, ctc_batch *b)
{
	hold_for_states(p);
	p->flushing = b;
	p->state_done = false;
	p->state_work.data = p;
	if (uv_queue_work(&p->loop, &p->state_work, state_cb, after_state_cb)) {
		ctc_log(CTC_ERROR, "cannot queue work", NULL);
		p->flushing = NULL;
		ctc_batch_free(b);
		fail_pipeline(p, "internal error");
	}
}

static void start_prepare(ctc_pipeline *p, ctc_batch *b)
{
	uv_timer_stop(&p->batch_timer);
	p->preparing = b;
	b->flush_state = b->flush_state || flush_due(p);
	b->start_us = now_us();
	p->prep_done = false;
	p->prep_work.data = p;
	if (uv_queue_work(&p->loop, &p->prep_work, prep_cb, after_prep_cb)) {
		ctc_log(CTC_ERROR, "cannot queue work", NULL);
		ctc_batch_free(p->preparing);
		p->preparing = NULL;
		fail_pipeline(p, "internal error");
	}
}

/* What may move once a stage is free: the prepared batch, the pending one, the stop. */
static void advance(ctc_pipeline *p)
{
	start_write(p);
	if (p->result == 0 && p->pending &&
	    (p->pending->n >= (size_t)p->cfg->batch_size || p->stopping || writer_idle(p) ||
	     now_us() - p->pending->start_us >= p->cfg->batch_ms * 1000 ||
	     (p->uncommitted->cnt && flush_due(p))))
		dispatch(p);
	if (p->stopping)
		maybe_finish_stop(p);
	else
		drain(p);
}

static void after_prep_cb(uv_work_t *req, int status)
{
	ctc_pipeline *p = req->data;
	ctc_batch *b = p->preparing;
	p->preparing = NULL;
	if (b->stage == CTC_BATCH_HANDLED || p->result) {
		ctc_batch_free(b); /* written by the revoke already, or the consumer is failing */
	} else if (b->stage != CTC_BATCH_PREPARED) {
		ctc_log(CTC_ERROR, "batch not prepared, not committed", "batch=%llu events=%zu",
			(unsigned long long)b->seq, b->n);
		ctc_batch_free(b);
		fail_pipeline(p, "batch failed");
	} else {
		p->prepared = b;
	}
	advance(p);
}

/* After a state write (of `b`) was acknowledged and its offsets committed. */
static void states_done(ctc_pipeline *p, const ctc_batch *b)
{
	p->last_flush_us = now_us();
	int64_t gap_before = flush_gap_us(p);
	p->last_state_write_ms = b->contexts_ms + b->state_ms;
	if (flush_gap_us(p) != gap_before)
		ctc_log(CTC_INFO, "state write interval", "interval_ms=%lld state_write_ms=%.1f state_flush_ms=%lld",
			(long long)(flush_gap_us(p) / 1000), p->last_state_write_ms, (long long)p->cfg->state_flush_ms);
}

static void after_state_cb(uv_work_t *req, int status)
{
	ctc_pipeline *p = req->data;
	ctc_batch *b = p->flushing;
	p->flushing = NULL;
	if (b->stage == CTC_BATCH_HANDLED) {
		/* settled by a revoke, or discarded with its generation (its offsets with it) */
	} else if (b->stage == CTC_BATCH_FENCED && b->nstates == 0 && b->ctxs.n == 0) {
		/* nothing was to be written, nothing lost: the offsets wait for the next state write */
		release_held(p);
	} else if (b->stage == CTC_BATCH_FENCED) {
		p->flushing = b; /* discard_generation() makes it HANDLED; freed below */
		fence_and_rewind(p, "state write fenced");
		p->flushing = NULL;
	} else if (b->stage == CTC_BATCH_WRITTEN) {
		commit_held(p);
		states_done(p, b);
		ctc_log(CTC_INFO, "states written", "batch=%llu states=%zu contexts=%zu contexts_ms=%.1f state_ms=%.1f committed=yes",
			(unsigned long long)b->seq, b->nstates, b->ctxs.n, b->contexts_ms, b->state_ms);
	} else { /* still STATES_DUE */
		ctc_log(CTC_ERROR, "states not written, not committed", "batch=%llu states=%zu",
			(unsigned long long)b->seq, b->nstates);
		/* a later batch's history may still be written: its offsets must not be committed either */
		p->states_lost = true;
		fail_pipeline(p, "state write failed");
	}
	ctc_batch_free(b);
	advance(p);
}

static void after_write_cb(uv_work_t *req, int status)
{
	ctc_pipeline *p = req->data;
	ctc_batch *b = p->writing;
	int64_t us = now_us() - b->start_us;
	p->writing = NULL;
	if (b->stage == CTC_BATCH_HANDLED) {
		/* its offsets were taken by the revoke */
	} else if (b->stage == CTC_BATCH_FENCED && b->n == 0 && b->nstates == 0 && b->ctxs.n == 0) {
		/* a state write with nothing in it, made just before a rebalance: nothing lost */
	} else if (b->stage == CTC_BATCH_FENCED) {
		p->writing = b; /* discard_generation() makes it HANDLED; freed below */
		fence_and_rewind(p, "batch fenced");
		p->writing = NULL;
	} else if (b->stage == CTC_BATCH_CONFLICT) {
		atomic_fetch_add(&p->metrics.conflicts, 1);
		if (++p->conflict_rewinds > 5) {
			ctc_log(CTC_ERROR, "history conflicts persist: stopping", "batch=%llu rewinds=%u",
				(unsigned long long)b->seq, p->conflict_rewinds);
			fail_pipeline(p, "history conflicts");
		} else {
			p->writing = b;
			fence_and_rewind(p, "history conflict: derive again from MongoDB");
			p->writing = NULL;
		}
	} else if (b->stage == CTC_BATCH_WRITTEN || b->stage == CTC_BATCH_STATES_DUE) {
		/* its history is written; STATES_DUE: the states it took go on in stage 3 */
		bool states_due = b->stage == CTC_BATCH_STATES_DUE;
		if (b->n)
			p->conflict_rewinds = 0;
		if (p->crash_after_write > 0 && --p->crash_after_write == 0) {
			/* Test-only: die like kill -9 with the batch written, its offsets
			 * (and any older ones waiting for a state write) uncommitted. */
			ctc_log(CTC_WARN, "test crash after write", "batch=%llu events=%zu history=%llu states=%s",
				(unsigned long long)b->seq, b->n, (unsigned long long)b->persisted,
				b->state_flushed ? "yes" : "no");
			raise(SIGKILL);
		}
		take_offsets(p, b);
		/* with a state write under way, committing these would commit past its states */
		bool commit = b->state_flushed && !states_due && !p->flushing;
		if (commit) {
			commit_uncommitted(p);
			states_done(p, b);
		}
		if (b->n) {
			p->last_history_us = now_us();
			ctc_metrics_batch(&p->metrics, b->n, (uint64_t)us);
			ctc_log(CTC_INFO, "batch written",
				"batch=%llu events=%zu history=%llu duplicate=%llu empty=%llu context=%llu dlq=%llu "
				"ms=%.1f history_ms=%.1f contexts_ms=%.1f state_ms=%.1f committed=%s",
				(unsigned long long)b->seq, b->n, (unsigned long long)b->persisted,
				(unsigned long long)b->duplicate, (unsigned long long)b->empty,
				(unsigned long long)b->markers, (unsigned long long)b->dlq, (double)us / 1000.0,
				b->history_ms, b->contexts_ms, b->state_ms, commit ? "yes" : "no");
		} else if (!states_due) {
			ctc_log(CTC_INFO, "states written", "batch=%llu contexts_ms=%.1f state_ms=%.1f committed=%s",
				(unsigned long long)b->seq, b->contexts_ms, b->state_ms, commit ? "yes" : "no");
		}
		if (states_due) { /* its states go on in stage 3; nothing waits for them */
			start_states(p, b);
			b = NULL;
		}
	} else { /* still PREPARED */
		ctc_log(CTC_ERROR, "batch not written, not committed", "batch=%llu events=%zu",
			(unsigned long long)b->seq, b->n);
		fail_pipeline(p, "batch failed");
	}
	ctc_batch_free(b);
	advance(p);
}

static ctc_batch *batch_new(ctc_pipeline *p, size_t cap)
{
	ctc_batch *b = calloc(1, sizeof(*b));
	if (!b || (cap && !(b->msgs = calloc(cap, sizeof(*b->msgs))))) {
		free(b);
		return NULL;
	}
	b->cap = cap;
	b->seq = ++p->next_seq;
	b->generation = atomic_load(&p->worker.generation);
	b->start_us = now_us();
	return b;
}

static void dispatch(ctc_pipeline *p)
{
	if (p->preparing || p->prepared || !p->pending || p->pending->n == 0 || p->result)
		return;
	ctc_batch *b = p->pending;
	p->pending = NULL;
	start_prepare(p, b);
}

/* With both stages idle and nothing waiting: a batch of no messages that writes the states. */
static void dispatch_flush(ctc_pipeline *p)
{
	if (busy(p) || (p->pending && p->pending->n) || p->result)
		return;
	ctc_batch *b = p->pending ? p->pending : batch_new(p, 0);
	if (!b) {
		ctc_log(CTC_ERROR, "out of memory", NULL);
		return;
	}
	p->pending = NULL;
	b->flush_state = true;
	start_prepare(p, b);
}

/* Waits (blocking the loop) until neither stage runs; the loop's heartbeat goes on meanwhile. */
static void heartbeat(ctc_pipeline *p);
static void wait_stages(ctc_pipeline *p)
{
	pthread_mutex_lock(&p->mu);
	while ((p->preparing && !p->prep_done) || (p->writing && !p->write_done) || (p->flushing && !p->state_done)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		pthread_mutex_unlock(&p->mu);
		heartbeat(p);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
}

/*
 * Fencing (issue 16): everything not written of the current generation is
 * dropped, never written: the batches in both stages (their writes refuse
 * an old generation), the waiting and the pending ones, the cache (dirty
 * states included) and the uncommitted offsets. The generation moves on
 * first, so a stage that runs still sees it. Blocks until the stages are idle.
 */
static void discard_generation(ctc_pipeline *p, const char *why)
{
	atomic_fetch_add(&p->worker.generation, 1);
	atomic_fetch_add(&p->metrics.fenced, 1);
	ctc_log(CTC_WARN, "fenced: unwritten work discarded", "reason=%s generation=%llu", why,
		(unsigned long long)atomic_load(&p->worker.generation));
	wait_stages(p);
	/* the stages are done with them (wait_stages): the loop may set their stage */
	if (p->preparing)
		p->preparing->stage = CTC_BATCH_HANDLED; /* after_prep_cb frees it */
	if (p->writing)
		p->writing->stage = CTC_BATCH_HANDLED; /* after_write_cb frees it */
	if (p->flushing)
		p->flushing->stage = CTC_BATCH_HANDLED; /* after_state_cb frees it */
	if (p->prepared) {
		ctc_batch_free(p->prepared);
		p->prepared = NULL;
	}
	if (p->pending) {
		ctc_batch_free(p->pending);
		p->pending = NULL;
		uv_timer_stop(&p->batch_timer);
	}
	discard_uncommitted(p);
	ctc_worker_drop_cache(&p->worker);
}

/*
 * Discards the generation and reads again from the committed offsets of
 * what is still assigned: after a stall (the group may not have noticed)
 * or a history conflict (the documents are derived again from MongoDB).
 * A lost assignment is then revoked by librdkafka as usual.
 */
static void fence_and_rewind(ctc_pipeline *p, const char *why)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	discard_generation(p, why);
	if (rd_kafka_assignment(p->rk, &parts) || !parts)
		return;
	if (parts->cnt && !rd_kafka_assignment_lost(p->rk)) {
		rd_kafka_resp_err_t e = rd_kafka_committed(p->rk, parts, 10000);
		for (int i = 0; i < parts->cnt; i++)
			if (e || parts->elems[i].offset < 0)
				parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING; /* never committed: from the start */
		rd_kafka_error_t *err = rd_kafka_seek_partitions(p->rk, parts, 10000);
		if (err) {
			ctc_log(CTC_ERROR, "rewind failed", "error=\"%s\"", rd_kafka_error_string(err));
			rd_kafka_error_destroy(err);
			if (p->result == 0)
				p->result = CT_EKAFKA; /* what was discarded must be read again: stop, restart reads it */
		} else {
			p->last_msg_us = now_us(); /* what is read again is not idleness */
			ctc_log(CTC_INFO, "rewound to the committed offsets", "partitions=%d", parts->cnt);
		}
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

/* SIGCONTs received by the process (worker.h: continued): every pipeline looks. */
static atomic_uint_fast64_t continued_count;

static void on_sigcont(int signum)
{
	(void)signum;
	atomic_fetch_add(&continued_count, 1); /* lock-free: async-signal-safe */
}

/*
 * The loop's heartbeat, also the worker's stall check (worker.h alive_us):
 * a gap longer than the limit means the whole process stood still; the
 * generation is discarded before the heartbeat is renewed, so a stage that
 * resumed sees either the old heartbeat or the new generation.
 */
static void heartbeat(ctc_pipeline *p)
{
	int64_t now = now_us(), alive = atomic_load(&p->worker.alive_us);
	if (p->worker.stall_limit_us > 0 && alive && now - alive > p->worker.stall_limit_us) {
		atomic_fetch_add(&p->worker.generation, 1);
		p->stalled = true;
		ctc_log(CTC_WARN, "process stalled", "ms=%lld limit_ms=%lld", (long long)((now - alive) / 1000),
			(long long)(p->worker.stall_limit_us / 1000));
	}
	atomic_store(&p->worker.alive_us, now);
}

/*
 * Before a revoke (blocking the loop): waits for both stages, writes on
 * this thread what was prepared but not written, then the changed states,
 * and commits everything written. Batches it settled are HANDLED for
 * their stage callbacks, which run later.
 */
static void settle_inflight(ctc_pipeline *p)
{
	uint64_t fenced_before = atomic_load(&p->metrics.fenced);
	wait_stages(p);
	if (p->result)
		goto fail;
	/* the state write under way is the oldest: its offsets first */
	if (p->flushing && p->flushing->stage != CTC_BATCH_HANDLED) {
		if (p->flushing->stage == CTC_BATCH_FENCED)
			goto fenced;
		if (p->flushing->stage != CTC_BATCH_WRITTEN)
			goto fail; /* still STATES_DUE: after_state_cb stops the consumer */
		p->flushing->stage = CTC_BATCH_HANDLED;
		release_held(p);
	}
	if (p->writing && p->writing->stage != CTC_BATCH_HANDLED) {
		ctc_batch *b = p->writing;
		if (b->stage == CTC_BATCH_FENCED || b->stage == CTC_BATCH_CONFLICT)
			goto fenced;
		if (b->stage != CTC_BATCH_WRITTEN && b->stage != CTC_BATCH_STATES_DUE)
			goto fail; /* still PREPARED: after_write_cb stops the consumer */
		take_offsets(p, b);
		/* its history is written, the states it took maybe not yet: here, before any newer ones */
		if (b->stage == CTC_BATCH_STATES_DUE)
			ctc_worker_write_states(&p->worker, b);
		/* settled here, whatever came of it: after_write_cb only frees it */
		enum ctc_batch_stage stage = b->stage;
		b->stage = CTC_BATCH_HANDLED;
		if (stage == CTC_BATCH_FENCED)
			goto fenced;
		if (stage != CTC_BATCH_WRITTEN) {
			ctc_log(CTC_ERROR, "states not written, not committed", "batch=%llu states=%zu",
				(unsigned long long)b->seq, b->nstates);
			p->states_lost = true;
			goto fail;
		}
	}
	/* the waiting batch is older than the one in preparation */
	ctc_batch *order[2] = {p->prepared, p->preparing};
	for (int i = 0; i < 2; i++) {
		ctc_batch *b = order[i];
		if (!b || b->stage == CTC_BATCH_HANDLED)
			continue;
		if (b->stage != CTC_BATCH_PREPARED)
			goto fail; /* still NEW: after_prep_cb stops the consumer */
		ctc_worker_write(&p->worker, b);
		/* settled here, whatever came of it: after_prep_cb (or the free below) only frees it */
		enum ctc_batch_stage stage = b->stage;
		b->stage = CTC_BATCH_HANDLED;
		if (stage == CTC_BATCH_FENCED || stage == CTC_BATCH_CONFLICT)
			goto fenced;
		if (stage != CTC_BATCH_WRITTEN) {
			ctc_log(CTC_ERROR, "batch not written, not committed", "batch=%llu events=%zu",
				(unsigned long long)b->seq, b->n);
			goto fail;
		}
		take_offsets(p, b);
	}
	if (p->prepared) { /* no stage callback will come for it */
		ctc_batch_free(p->prepared);
		p->prepared = NULL;
	}
	if (ctc_worker_flush_states(&p->worker, NULL, NULL) == 0) {
		commit_uncommitted(p);
		p->last_flush_us = now_us();
		return;
	}
	if (!p->result && atomic_load(&p->metrics.fenced) != fenced_before)
		goto fenced;
fail:
	discard_uncommitted(p);
	ctc_worker_drop_cache(&p->worker);
	if (p->result == 0)
		p->result = CT_ETIMEDOUT;
	return;
fenced:
	/* not written, never committed: the next owner (or we, rewound) reads it again */
	discard_generation(p, "fenced during revoke");
}

/* ---- Kafka ---- */

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts,
			 void *opaque)
{
	ctc_pipeline *p = opaque;
	if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		/* a new generation: nothing of an older one is written from now on */
		atomic_fetch_add(&p->worker.generation, 1);
		rd_kafka_assign(rk, parts);
		atomic_store(&p->metrics.assigned, parts->cnt);
		p->assigned_us = now_us();
		if (p->worker.paused)
			rd_kafka_pause_partitions(rk, parts);
		ctc_log(CTC_INFO, "partitions assigned", "count=%d", parts->cnt);
		return;
	}
	if (rd_kafka_assignment_lost(rk)) {
		/* Lost (our session expired, a stall, a partition from the
		 * coordinator): another member may own these partitions and have
		 * written newer states already. Nothing of them is written or
		 * committed by us any more. */
		ctc_log(CTC_WARN, "assignment lost: unwritten work discarded", "count=%d", parts->cnt);
		discard_generation(p, "assignment lost");
	} else {
		/* revoke: finish and commit what is prepared or written; drop what is not */
		settle_inflight(p);
		atomic_fetch_add(&p->worker.generation, 1);
	}
	if (p->pending) {
		ctc_batch_free(p->pending);
		p->pending = NULL;
		uv_timer_stop(&p->batch_timer);
	}
	for (int i = 0; i < parts->cnt; i++)
		ctc_cache_drop_partition(p->worker.cache, parts->elems[i].partition);
	rd_kafka_assign(rk, NULL);
	atomic_store(&p->metrics.assigned, 0);
	ctc_log(CTC_INFO, "partitions revoked", "count=%d", parts->cnt);
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	char q[600];
	ctc_log(level <= 3 ? CTC_ERROR : level <= 4 ? CTC_WARN : CTC_DEBUG, "librdkafka", "facility=%s detail=%s",
		fac, ctc_log_q(buf, q, sizeof(q)));
}

/* librdkafka's statistics into /metrics (metrics.h); 0: librdkafka frees the text. */
static int kafka_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	ctc_metrics_kafka_stats(&((ctc_pipeline *)opaque)->metrics, json, len);
	return 0;
}

/* Failed dead letters go again, whole or as stubs, before the batch is committed (worker.c). */
static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	if (m->err)
		ctc_worker_dlq_report(opaque, m);
}

static bool pending_full(const ctc_pipeline *p)
{
	return p->pending && p->pending->n >= (size_t)p->cfg->batch_size;
}

static int pending_add(ctc_pipeline *p, rd_kafka_message_t *m)
{
	if (!p->pending) {
		if (!(p->pending = batch_new(p, (size_t)p->cfg->batch_size)))
			return CT_ENOMEM;
		uv_timer_start(&p->batch_timer, batch_timer_cb, (uint64_t)p->cfg->batch_ms, 0);
	}
	p->pending->msgs[p->pending->n++] = m;
	return 0;
}

/*
 * A failed SASL authentication (wrong password, unknown user or mechanism)
 * or a fatal client error will not heal by retrying, which librdkafka would
 * do forever. error_cb (served inside rd_kafka_consumer_poll on the loop
 * thread) notes it; drain() then logs it once and stops with a failure.
 * The text is librdkafka's, which never holds sasl.password.
 */
static void kafka_error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
	ctc_pipeline *p = opaque;
	if (code != RD_KAFKA_RESP_ERR__AUTHENTICATION && code != RD_KAFKA_RESP_ERR__FATAL) {
		char q[400];
		ctc_log(CTC_WARN, "kafka error", "code=%s error=%s", rd_kafka_err2name((rd_kafka_resp_err_t)code),
			ctc_log_q(reason, q, sizeof(q)));
		return;
	}
	if (!*p->kafka_failure)
		snprintf(p->kafka_failure, sizeof(p->kafka_failure), "%s: %s",
			 rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
}

/* true (and the stop begun) once Kafka refused us for good. */
static bool kafka_refused(ctc_pipeline *p)
{
	char q[400];
	if (!*p->kafka_failure)
		return false;
	if (!p->stopping) {
		ctc_log(CTC_ERROR, "kafka refused the consumer", "error=%s",
			ctc_log_q(p->kafka_failure, q, sizeof(q)));
		if (!p->result)
			p->result = CT_EKAFKA;
		begin_stop(p, "kafka authentication failed");
	}
	return true;
}

/* Reads what librdkafka has, up to a full pending batch (no other queue grows). */
static void drain(ctc_pipeline *p)
{
	while (!p->stopping) {
		if (pending_full(p)) {
			dispatch(p);
			if (pending_full(p))
				return; /* writer busy: backpressure */
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(p->rk, 0);
		if (kafka_refused(p)) {
			if (m)
				rd_kafka_message_destroy(m);
			return;
		}
		if (!m) {
			/* all there is for now: written at once when the writer is idle */
			if (writer_idle(p))
				dispatch(p);
			return;
		}
		if (m->err) {
			if (m->err == RD_KAFKA_RESP_ERR__AUTHENTICATION || m->err == RD_KAFKA_RESP_ERR__FATAL)
				kafka_error_cb(p->rk, m->err, rd_kafka_message_errstr(m), p);
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				ctc_log(CTC_WARN, "kafka consumer error", "error=\"%s\"", rd_kafka_err2str(m->err));
			rd_kafka_message_destroy(m);
			continue;
		}
		p->last_msg_us = now_us();
		if (!p->first_msg_us)
			p->first_msg_us = p->last_msg_us;
		p->events_seen++;
		ctc_fetchwake_took(p->fetchwake, m->len + m->key_len);
		if (pending_add(p, m)) {
			rd_kafka_message_destroy(m);
			ctc_log(CTC_ERROR, "out of memory", NULL);
			begin_stop(p, "out of memory");
			return;
		}
	}
}

static void kpoll_cb(uv_poll_t *h, int status, int events)
{
	ctc_pipeline *p = h->data;
	char buf[256];
	while (read(p->pipefd[0], buf, sizeof(buf)) > 0)
		;
	drain(p);
}

static void batch_timer_cb(uv_timer_t *t)
{
	ctc_pipeline *p = t->data;
	dispatch(p);
}

/* ---- lag, health, idle exit ---- */

static void update_lag(ctc_pipeline *p)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	int64_t lag = 0;
	/* per partition too (changetrail_consumer_partition_lag) */
	int32_t part_no[CTC_METRICS_MAX_PARTITIONS]; /* 12 KB on the loop thread's stack */
	int64_t part_lag[CTC_METRICS_MAX_PARTITIONS];
	size_t nparts = 0;
	if (rd_kafka_assignment(p->rk, &parts) || !parts)
		return;
	if (!parts->cnt)
		ctc_metrics_set_partition_lags(&p->metrics, p->cfg->topic, NULL, NULL, 0);
	if (parts->cnt && rd_kafka_position(p->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < parts->cnt; i++) {
			int64_t lo, hi;
			if (rd_kafka_get_watermark_offsets(p->rk, parts->elems[i].topic, parts->elems[i].partition,
							   &lo, &hi))
				continue;
			int64_t pos = parts->elems[i].offset >= 0 ? parts->elems[i].offset : lo;
			if (hi > pos)
				lag += hi - pos;
			if (nparts < CTC_METRICS_MAX_PARTITIONS) {
				part_no[nparts] = parts->elems[i].partition;
				part_lag[nparts++] = hi > pos ? hi - pos : 0;
			}
		}
		atomic_store(&p->metrics.lag, lag);
		ctc_metrics_set_partition_lags(&p->metrics, parts->elems[0].topic, part_no, part_lag, nparts);
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

static void ping_work_cb(uv_work_t *req)
{
	ctc_pipeline *p = req->data;
	atomic_store(&p->metrics.store_ok, ctc_store_ping(p->ping_store, NULL) == 0);
}

static void ping_after_cb(uv_work_t *req, int status)
{
	ctc_pipeline *p = req->data;
	p->ping_inflight = false;
	if (p->stopping)
		maybe_finish_stop(p);
}

/*
 * A MongoDB write, state load (or ping) outstanding past store_stall_ms: the database is
 * frozen or cut off while the connection stays open, which no error shows
 * (a write only fails at the socket timeout). Counted once per write.
 */
static int64_t stall_age_us(ctc_pipeline *p, int64_t now)
{
	int64_t age = ctc_metrics_store_write_age_us(&p->metrics, now);
	int64_t read = atomic_load(&p->metrics.store_read_start_us);
	int64_t states = atomic_load(&p->worker.state_write_start_us);
	if (read && now - read > age)
		age = now - read;
	if (states && now - states > age)
		age = now - states;
	if (p->ping_inflight && p->ping_start_us && now - p->ping_start_us > age)
		age = now - p->ping_start_us;
	return age;
}

static void check_stall(ctc_pipeline *p, int64_t now)
{
	int64_t start = atomic_load(&p->metrics.store_write_start_us);
	int64_t read = atomic_load(&p->metrics.store_read_start_us);
	int64_t states = atomic_load(&p->worker.state_write_start_us);
	int64_t age = ctc_metrics_store_write_age_us(&p->metrics, now);
	if (read && (!start || read < start)) { /* the oldest of the operations under way */
		start = read;
		age = now - read;
	}
	if (states && (!start || states < start)) {
		start = states;
		age = now - states;
	}
	if (start && age > p->cfg->store_stall_ms * 1000 && p->stall_counted != start) {
		p->stall_counted = start;
		atomic_fetch_add(&p->metrics.store_stalls, 1);
		ctc_log(CTC_WARN, "mongodb write stalled", "age_ms=%lld store_stall_ms=%lld", (long long)(age / 1000),
			(long long)p->cfg->store_stall_ms);
	}
}

static void tick_cb(uv_timer_t *t)
{
	ctc_pipeline *p = t->data;
	int64_t now = now_us();
	p->ticks++;
	heartbeat(p);
	uint64_t continued = atomic_load(&continued_count);
	bool resumed = continued != atomic_load(&p->worker.continued_seen);
	if ((p->stalled || resumed) && !p->stopping) {
		if (resumed)
			ctc_log(CTC_WARN, "process continued after a stop (SIGCONT)", "sigconts=%llu",
				(unsigned long long)continued);
		p->stalled = false;
		fence_and_rewind(p, resumed ? "process continued after a stop" : "process stalled");
		/* after the generation moved on: what was prepared before is fenced by it */
		atomic_store(&p->worker.continued_seen, continued);
	}
	if (p->stopping)
		return;
	if (p->result) { /* a batch failed inside a revoke, where stopping must wait */
		begin_stop(p, "batch failed");
		return;
	}
	drain(p); /* backup for a missed io event; also serves rebalances */
	if (!busy(p) && p->uncommitted->cnt && flush_due(p)) {
		if (p->pending && p->pending->n)
			dispatch(p);
		else
			dispatch_flush(p);
	}
	if (p->ticks % 10 == 0)
		update_lag(p);
	check_stall(p, now);
	ctc_anchor_tick(p->anchor, now, false);
	if (p->ping_store && !p->ping_inflight && (p->ticks % 50 == 1)) {
		p->ping_inflight = true;
		p->ping_start_us = now;
		p->ping_work.data = p;
		uv_queue_work(&p->loop, &p->ping_work, ping_work_cb, ping_after_cb);
	}
	if (p->cfg->exit_on_idle_ms > 0 && !busy(p) && !p->pending) {
		/* idle = owning partitions and nothing new for so long; a consumer
		 * still waiting for the group (a dead member's session to expire)
		 * is not idle, but gives up after a minute without partitions */
		int64_t since = p->last_msg_us > p->assigned_us ? p->last_msg_us : p->assigned_us;
		if (atomic_load(&p->metrics.assigned) > 0 && now - since >= p->cfg->exit_on_idle_ms * 1000)
			begin_stop(p, "idle");
		else if (atomic_load(&p->metrics.assigned) == 0 && now - p->started_us >= 60000000 &&
			 now - p->assigned_us >= 60000000)
			begin_stop(p, "idle without partitions");
	}
}

static int http_handler(void *ud, const char *path, ct_buf *body, const char **ctype)
{
	ctc_pipeline *p = ud;
	if (!strcmp(path, "/metrics")) {
		*ctype = "text/plain; version=0.0.4; charset=utf-8";
		ctc_metrics_render(&p->metrics, body);
		return 200;
	}
	if (!strcmp(path, "/healthz")) {
		ct_buf_puts(body, "ok\n"); /* answered by the loop, so the loop is alive */
		return 200;
	}
	if (!strcmp(path, "/readyz")) {
		bool assigned = atomic_load(&p->metrics.assigned) > 0;
		bool store = p->cfg->no_write || atomic_load(&p->metrics.store_ok);
		int64_t age = p->cfg->no_write ? 0 : stall_age_us(p, now_us());
		bool stalled = age > p->cfg->store_stall_ms * 1000;
		char line[96];
		ct_buf_puts(body, assigned ? "assigned=yes" : "assigned=no");
		if (stalled) {
			snprintf(line, sizeof(line), " mongodb=stalled write_age_ms=%lld\n", (long long)(age / 1000));
			ct_buf_puts(body, line);
		} else {
			ct_buf_puts(body, store ? " mongodb=ok\n" : " mongodb=unreachable\n");
		}
		return assigned && store && !stalled && !p->stopping ? 200 : 503;
	}
	ct_buf_puts(body, "not found\n");
	return 404;
}

/* ---- stop ---- */

static void deadline_cb(uv_timer_t *t)
{
	ctc_pipeline *p = t->data;
	ctc_log(CTC_ERROR, "shutdown deadline passed", "shutdown_timeout_ms=%lld",
		(long long)p->cfg->shutdown_timeout_ms);
	atomic_store(&p->abort, 1); /* the writer gives up retrying; nothing more is written */
	/* What was not finished by now stays uncommitted and is redelivered; the
	 * exit status says so even if the last write then happens to succeed. */
	if (p->result == 0)
		p->result = CT_ETIMEDOUT;
	p->deadline_passed = true;
	maybe_finish_stop(p); /* nothing may be left to wait for but a prepared batch */
}

static void close_cb(uv_handle_t *h)
{
}

/* The loop's own handles, closed the same way on every exit path. */
static void close_handles(ctc_pipeline *p)
{
	uv_close((uv_handle_t *)&p->kpoll, close_cb);
	uv_close((uv_handle_t *)&p->batch_timer, close_cb);
	uv_close((uv_handle_t *)&p->tick_timer, close_cb);
	uv_close((uv_handle_t *)&p->deadline_timer, close_cb);
	uv_close((uv_handle_t *)&p->sigterm, close_cb);
	uv_close((uv_handle_t *)&p->sigint, close_cb);
	uv_close((uv_handle_t *)&p->stop_async, close_cb);
}

static void maybe_finish_stop(ctc_pipeline *p)
{
	/* A prepared batch that start_write() will never take (a failure, or
	 * the deadline passed while the batch before it was being written):
	 * dropped uncommitted, it is redelivered. Kept, it held the stop
	 * forever (busy), the process never exiting after SIGTERM. */
	if (p->prepared && !p->writing && (p->result || atomic_load(&p->abort))) {
		ctc_batch_free(p->prepared);
		p->prepared = NULL;
	}
	if (p->closed || busy(p) || p->ping_inflight)
		return;
	if (p->pending && p->pending->n && p->result == 0 && !atomic_load(&p->abort)) {
		dispatch(p); /* the last, partly filled batch */
		return;
	}
	if ((p->uncommitted->cnt || ctc_worker_has_unwritten(&p->worker)) && p->result == 0 && !atomic_load(&p->abort)) {
		dispatch_flush(p); /* the states of what was written, then its commit */
		if (busy(p))
			return;
	}
	p->closed = true;
	if (p->pending) {
		ctc_batch_free(p->pending);
		p->pending = NULL;
	}
	ctc_fetchwake_free(p->fetchwake); /* no requests of ours while leaving */
	p->fetchwake = NULL;
	/* leaves the group; its revoke callback finds nothing in flight */
	rd_kafka_consumer_close(p->rk);
	while (rd_kafka_outq_len(p->dlq) > 0 && !atomic_load(&p->abort))
		rd_kafka_flush(p->dlq, 100);
	/* the heads of the last state write, published before leaving */
	ctc_anchor_close(p->anchor, atomic_load(&p->abort) ? 0 : 5000);
	uv_timer_stop(&p->deadline_timer);
	ctc_http_stop(p->http);
	p->http = NULL;
	close_handles(p);
	p->handles_open = false;
	/* active: first message to last commit; history_active: to the last history write */
	int64_t active = p->first_msg_us && p->last_commit_us > p->first_msg_us ? p->last_commit_us - p->first_msg_us : 0;
	int64_t hactive = p->first_msg_us && p->last_history_us > p->first_msg_us ? p->last_history_us - p->first_msg_us : 0;
	ctc_log(CTC_INFO, "consumer stopped",
		"events=%llu persisted=%llu duplicate=%llu empty=%llu dlq=%llu active_ms=%.1f history_active_ms=%.1f "
		"fetch_wakeups=%llu result=%d",
		(unsigned long long)p->events_seen, (unsigned long long)atomic_load(&p->metrics.persisted),
		(unsigned long long)atomic_load(&p->metrics.duplicate),
		(unsigned long long)atomic_load(&p->metrics.empty),
		(unsigned long long)atomic_load(&p->metrics.dlq), (double)active / 1000.0, (double)hactive / 1000.0,
		(unsigned long long)atomic_load(&p->metrics.fetch_wakeups), p->result);
}

static void begin_stop(ctc_pipeline *p, const char *why)
{
	if (p->stopping)
		return;
	p->stopping = true;
	ctc_log(CTC_INFO, "stopping", "reason=%s", why);
	uv_poll_stop(&p->kpoll);
	uv_timer_start(&p->deadline_timer, deadline_cb, (uint64_t)p->cfg->shutdown_timeout_ms, 0);
	maybe_finish_stop(p);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	begin_stop(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void stop_async_cb(uv_async_t *h)
{
	begin_stop(h->data, "requested");
}

void ctc_pipeline_stop(ctc_pipeline *p)
{
	uv_async_send(&p->stop_async);
}

/* ---- construction ---- */

static rd_kafka_conf_t *kafka_conf(const ctc_config *cfg, bool consumer, ct_error *err)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (size_t i = 0; i < cfg->nkafka; i++) {
		const char *k = cfg->kafka[i].key;
		/* a consumer-only key on the DLQ producer (or the reverse) is not an error of the user */
		if (!consumer && (!strncmp(k, "auto.offset", 11) || strstr(k, "session.timeout") ||
				  strstr(k, "max.poll") || strstr(k, "fetch.") || strstr(k, "partition.assignment") ||
				  strstr(k, "heartbeat") || strstr(k, "isolation.level") || strstr(k, "group.")))
			continue;
		if (rd_kafka_conf_set(conf, k, cfg->kafka[i].value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
			/* errstr names the property, never its value */
			ct_error_set(err, CT_ECONFIG, "[kafka] %s: %s", k, errstr);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	return conf;
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, ct_error *err)
{
	char errstr[512];
	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		return ct_error_set(err, CT_ECONFIG, "kafka %s: %s", k, errstr);
	return 0;
}

/*
 * The DLQ producer's message.max.bytes: room for the largest message the
 * consumer may be handed and refuse (an event over max_event_bytes, up to
 * the fetch sizes) plus our headers. librdkafka's default (1,000,000) is
 * below the 1 MiB event limit: a refused 1 MiB event could never be written.
 * What the broker or the topic still refuses goes as a stub (worker.c).
 */
static int dlq_message_max_bytes(const ctc_config *cfg, rd_kafka_conf_t *pconf, ct_error *err)
{
	static const char *const sizes[] = {"message.max.bytes", "max.partition.fetch.bytes",
					    "fetch.message.max.bytes"};
	/* what is refused is what is over max_event_bytes: the broker's default
	 * (1,048,588) and librdkafka's max.partition.fetch.bytes (1 MiB) still
	 * let it through, whatever max_event_bytes says */
	long long want = cfg->max_event_bytes > (1 << 20) ? cfg->max_event_bytes : 1 << 20;
	char v[32];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const char *x = ctc_config_kafka_get(cfg, sizes[i]);
		if (x && atoll(x) > want)
			want = atoll(x);
	}
	want += 64 * 1024; /* our ct-dlq-* headers with a reason, the key, the record overhead */
	if (want > 1000000000LL) /* librdkafka's bound */
		want = 1000000000LL;
	snprintf(v, sizeof(v), "%lld", want);
	return set(pconf, "message.max.bytes", v, err);
}

/* The code of the failure `err` describes, or `fallback` when it holds none: never 0. */
static int failed(const ct_error *err, int fallback)
{
	return err && err->code ? err->code : fallback;
}

/* The group's consumer (and the fetcher's waker when librdkafka needs one). */
static int setup_consumer(ctc_pipeline *p, ct_error *err)
{
	const ctc_config *cfg = p->cfg;
	char errstr[512];
	rd_kafka_conf_t *cconf = kafka_conf(cfg, true, err);
	if (!cconf)
		return failed(err, CT_ECONFIG);
	if (!ctc_config_kafka_get(cfg, "auto.offset.reset") && set(cconf, "auto.offset.reset", "earliest", err))
		goto fail;
	/* The prefetch only has to cover the time to the next fetch once the
	 * fetcher is told the queue has room (fetchwake.h): 16 MB kept the
	 * no-write daemon at 155-170k events/s of 1 KB, as fast as 128 MB, for
	 * 130 MB less memory than that and 48 MB less than librdkafka's 64 MB. */
	if (!ctc_config_kafka_get(cfg, "queued.max.messages.kbytes") &&
	    set(cconf, "queued.max.messages.kbytes", "16384", err))
		goto fail;
	/* librdkafka >= 2.2 looks at a full queue again after this; before, only
	 * after a second unless woken, which is the waker's job. */
	bool need_waker = false;
	if (!ctc_config_kafka_get(cfg, "fetch.queue.backoff.ms") &&
	    rd_kafka_conf_set(cconf, "fetch.queue.backoff.ms", "20", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		need_waker = true;
	char qkb[32] = "", qmsgs[32] = "";
	size_t qsz = sizeof(qkb);
	rd_kafka_conf_get(cconf, "queued.max.messages.kbytes", qkb, &qsz);
	qsz = sizeof(qmsgs);
	rd_kafka_conf_get(cconf, "queued.min.messages", qmsgs, &qsz);
	p->prefetch_kb = atoll(qkb);
	if (set(cconf, "group.id", cfg->group_id, err) || set(cconf, "enable.auto.commit", "false", err) ||
	    set(cconf, "enable.auto.offset.store", "false", err) ||
	    set(cconf, "enable.partition.eof", "false", err))
		goto fail;
	rd_kafka_conf_set_rebalance_cb(cconf, rebalance_cb);
	rd_kafka_conf_set_error_cb(cconf, kafka_error_cb);
	/* librdkafka's statistics that /metrics shows (rebalances, broker RTT, fetch queue) */
	if (!ctc_config_kafka_get(cfg, "statistics.interval.ms") && set(cconf, "statistics.interval.ms", "15000", err))
		goto fail;
	rd_kafka_conf_set_stats_cb(cconf, kafka_stats_cb);
	rd_kafka_conf_set_opaque(cconf, p);
	if (!(p->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, sizeof(errstr)))) {
		rd_kafka_conf_destroy(cconf); /* still ours when rd_kafka_new() fails */
		return ct_error_set(err, CT_EKAFKA, "kafka consumer: %s", errstr);
	}
	if (need_waker &&
	    !(p->fetchwake = ctc_fetchwake_new(p->rk, p->prefetch_kb, atoll(qmsgs), &p->metrics.fetch_wakeups, err)))
		return failed(err, CT_ENOMEM);
	return 0;
fail:
	rd_kafka_conf_destroy(cconf);
	return failed(err, CT_ECONFIG);
}

/* The DLQ producer, and the anchor topic's when anchors go to Kafka. */
static int setup_producers(ctc_pipeline *p, ct_error *err)
{
	const ctc_config *cfg = p->cfg;
	char errstr[512];
	rd_kafka_conf_t *pconf = kafka_conf(cfg, false, err);
	if (!pconf)
		return failed(err, CT_ECONFIG);
	/* a DLQ message must not be dropped: retry until delivered (the batch waits) */
	if (set(pconf, "enable.idempotence", "true", err) || set(pconf, "acks", "all", err) ||
	    set(pconf, "message.timeout.ms", "0", err) || set(pconf, "linger.ms", "5", err) ||
	    dlq_message_max_bytes(cfg, pconf, err))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(pconf, dlq_dr_cb);
	rd_kafka_conf_set_opaque(pconf, &p->worker);
	if (!(p->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof(errstr)))) {
		rd_kafka_conf_destroy(pconf);
		return ct_error_set(err, CT_EKAFKA, "kafka producer: %s", errstr);
	}

	if (ctc_anchor_new(cfg, &p->metrics, &p->anchor, err))
		return failed(err, CT_ECONFIG);
	if (!p->anchor || !*cfg->anchor_topic)
		return 0;
	if (!(pconf = kafka_conf(cfg, false, err)))
		return failed(err, CT_ECONFIG);
	/* its own producer: an anchor that cannot be delivered must never hold up
	 * the DLQ deliveries a batch waits for (failed ones are produced again) */
	if (set(pconf, "enable.idempotence", "true", err) || set(pconf, "acks", "all", err) ||
	    set(pconf, "message.timeout.ms", "60000", err) || set(pconf, "linger.ms", "5", err))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(pconf, ctc_anchor_dr_cb);
	rd_kafka_conf_set_opaque(pconf, p->anchor);
	if (!(p->anchor_rk = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof(errstr)))) {
		rd_kafka_conf_destroy(pconf);
		return ct_error_set(err, CT_EKAFKA, "kafka anchor producer: %s", errstr);
	}
	ctc_anchor_set_producer(p->anchor, p->anchor_rk);
	return 0;
fail:
	rd_kafka_conf_destroy(pconf);
	return failed(err, CT_ECONFIG);
}

/*
 * The worker (worker.h) with the side consumer that proves offsets going
 * back (offsets.h: no group membership, assign only, no commits, an end or
 * a missing offset reported, never reset), and the health check's client.
 */
static int setup_worker(ctc_pipeline *p, ct_error *err)
{
	const ctc_config *cfg = p->cfg;
	char errstr[512], gid[300];
	ctc_offsets_prover *prover;
	rd_kafka_conf_t *oconf = kafka_conf(cfg, true, err);
	rd_kafka_t *ork;
	snprintf(gid, sizeof(gid), "%s.offsets-proof", cfg->group_id);
	if (!oconf)
		return failed(err, CT_ECONFIG);
	if (set(oconf, "group.id", gid, err) || set(oconf, "enable.auto.commit", "false", err) ||
	    set(oconf, "enable.auto.offset.store", "false", err) ||
	    set(oconf, "enable.partition.eof", "true", err) || set(oconf, "auto.offset.reset", "error", err) ||
	    set(oconf, "queued.max.messages.kbytes", "2048", err)) {
		rd_kafka_conf_destroy(oconf);
		return failed(err, CT_ECONFIG);
	}
	if (!(ork = rd_kafka_new(RD_KAFKA_CONSUMER, oconf, errstr, sizeof(errstr)))) {
		rd_kafka_conf_destroy(oconf);
		return ct_error_set(err, CT_EKAFKA, "kafka consumer (offsets proof): %s", errstr);
	}
	rd_kafka_poll_set_consumer(ork);
	if (!(prover = ctc_offsets_new(ork, &p->metrics.offsets_went_back)))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	if (ctc_worker_init(&p->worker, cfg, p->rk, p->dlq, prover, p->anchor, &p->metrics, &p->abort, err))
		return failed(err, CT_ENOMEM);
	/* the health check's own client (libmongoc clients are not thread-safe) */
	if (!cfg->no_write && !(p->ping_store = ctc_store_open(cfg->mongodb_uri, cfg->mongodb_database, err)))
		return failed(err, CT_ECONFIG);
	return 0;
}

/* The loop's handles: librdkafka's queue wake-up pipe, timers, signals, the HTTP server. */
static int setup_loop(ctc_pipeline *p, ct_error *err)
{
	/* librdkafka writes to the pipe when its consumer queue turns non-empty */
	if (pipe(p->pipefd) || fcntl(p->pipefd[0], F_SETFL, O_NONBLOCK) ||
	    fcntl(p->pipefd[1], F_SETFL, O_NONBLOCK))
		return ct_error_set(err, CT_EIO, "pipe: %s", strerror(errno));
	rd_kafka_poll_set_consumer(p->rk);
	p->queue = rd_kafka_queue_get_consumer(p->rk);
	rd_kafka_queue_io_event_enable(p->queue, p->pipefd[1], "1", 1);

	uv_poll_init(&p->loop, &p->kpoll, p->pipefd[0]);
	uv_timer_init(&p->loop, &p->batch_timer);
	uv_timer_init(&p->loop, &p->tick_timer);
	uv_timer_init(&p->loop, &p->deadline_timer);
	uv_signal_init(&p->loop, &p->sigterm);
	uv_signal_init(&p->loop, &p->sigint);
	uv_async_init(&p->loop, &p->stop_async, stop_async_cb);
	p->kpoll.data = p->batch_timer.data = p->tick_timer.data = p->deadline_timer.data = p;
	p->sigterm.data = p->sigint.data = p->stop_async.data = p;
	p->handles_open = true;
	if (*p->cfg->http_listen &&
	    !(p->http = ctc_http_start(&p->loop, p->cfg->http_listen, http_handler, p, err)))
		return failed(err, CT_EIO);
	return 0;
}

ctc_pipeline *ctc_pipeline_new(const ctc_config *cfg, ct_error *err)
{
	ctc_pipeline *p = calloc(1, sizeof(*p));
	if (!p) {
		ct_error_set(err, CT_ENOMEM, "out of memory");
		return NULL;
	}
	p->cfg = cfg;
	p->pipefd[0] = p->pipefd[1] = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	ctc_metrics_init(&p->metrics);
	p->last_flush_us = now_us();
	if (!(p->uncommitted = rd_kafka_topic_partition_list_new(8)) ||
	    !(p->committing = rd_kafka_topic_partition_list_new(8))) {
		ct_error_set(err, CT_ENOMEM, "out of memory");
		if (p->uncommitted)
			rd_kafka_topic_partition_list_destroy(p->uncommitted);
		free(p);
		return NULL;
	}
	ctc_log_set_level((ctc_log_level)ctc_log_level_parse(cfg->log_level));
	/* Test-only fault injection (the reliability suite, docs/reliability.md):
	 * CT_TEST_CRASH_AFTER_WRITE=N kills the process with SIGKILL after the
	 * N-th batch's MongoDB write was acknowledged, before its offsets are
	 * committed. Not a CHANGETRAIL_ setting on purpose: never in a config. */
	const char *crash = getenv("CT_TEST_CRASH_AFTER_WRITE");
	if (crash && *crash) {
		p->crash_after_write = strtol(crash, NULL, 10);
		ctc_log(CTC_WARN, "test fault hook armed", "crash_after_write=%ld", p->crash_after_write);
	}
	if (uv_loop_init(&p->loop)) {
		ct_error_set(err, CT_EINTERNAL, "uv_loop_init failed");
		rd_kafka_topic_partition_list_destroy(p->uncommitted);
		rd_kafka_topic_partition_list_destroy(p->committing);
		free(p);
		return NULL;
	}

	if (setup_consumer(p, err) || setup_producers(p, err) || setup_worker(p, err) || setup_loop(p, err)) {
		ctc_pipeline_free(p);
		return NULL;
	}
	return p;
}

int ctc_pipeline_http_port(const ctc_pipeline *p)
{
	return p->http ? ctc_http_port(p->http) : 0;
}

int ctc_pipeline_run(ctc_pipeline *p, ct_error *err)
{
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, p->cfg->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(p->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (e)
		return ct_error_set(err, CT_EKAFKA, "subscribe %s: %s", p->cfg->topic, rd_kafka_err2str(e));
	p->started_us = now_us();
	uv_poll_start(&p->kpoll, UV_READABLE, kpoll_cb);
	uv_timer_start(&p->tick_timer, tick_cb, 100, 100);
	/* not a uv_signal: its callback runs in the loop, after the stages may have written */
	struct sigaction sa = {.sa_handler = on_sigcont, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	atomic_store(&p->worker.continued_seen, atomic_load(&continued_count));
	if (!sigaction(SIGCONT, &sa, NULL))
		p->worker.continued = &continued_count;
	uv_signal_start(&p->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&p->sigint, signal_cb, SIGINT);
	ctc_log(CTC_INFO, "consumer started",
		"topic=%s group=%s database=%s batch_size=%lld batch_ms=%lld state_flush_ms=%lld "
		"cache_max_documents=%lld cache_max_mb=%lld prefetch_kb=%lld fetch_wakeup=%s http_port=%d allocator=%s%s",
		p->cfg->topic, p->cfg->group_id, p->cfg->mongodb_database, (long long)p->cfg->batch_size,
		(long long)p->cfg->batch_ms, (long long)p->cfg->state_flush_ms, (long long)p->cfg->cache_max_documents,
		(long long)p->cfg->cache_max_mb, p->prefetch_kb, p->fetchwake ? "thread" : "backoff",
		ctc_pipeline_http_port(p),
		allocator_name(), p->cfg->no_write ? " no_write=true" : "");
	drain(p);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	if (p->result && *p->kafka_failure)
		ct_error_set(err, p->result, "%s", p->kafka_failure);
	else if (p->result && p->deadline_passed)
		ct_error_set(err, p->result, "shutdown_timeout_ms (%lld) passed before the last batches and states "
			     "were written; what is uncommitted will be redelivered", (long long)p->cfg->shutdown_timeout_ms);
	else if (p->result)
		ct_error_set(err, p->result, "stopped with a batch not written (it will be redelivered)");
	return p->result;
}

void ctc_pipeline_free(ctc_pipeline *p)
{
	if (!p)
		return;
	if (p->handles_open) {
		/* built but never run (or failed half way): close what the loop holds */
		if (p->http)
			ctc_http_stop(p->http);
		close_handles(p);
		uv_run(&p->loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&p->loop);
	ctc_batch_free(p->pending);
	ctc_batch_free(p->prepared);
	if (p->queue) {
		rd_kafka_queue_io_event_enable(p->queue, -1, NULL, 0);
		rd_kafka_queue_destroy(p->queue);
	}
	ctc_fetchwake_free(p->fetchwake);
	if (p->rk) {
		if (!p->closed)
			rd_kafka_consumer_close(p->rk);
		rd_kafka_destroy(p->rk);
	}
	if (p->dlq)
		rd_kafka_destroy(p->dlq);
	if (p->anchor_rk)
		rd_kafka_destroy(p->anchor_rk);
	ctc_anchor_free(p->anchor);
	rd_kafka_topic_partition_list_destroy(p->uncommitted);
	rd_kafka_topic_partition_list_destroy(p->committing);
	ctc_store_close(p->ping_store);
	ctc_worker_fini(&p->worker);
	if (p->pipefd[0] >= 0)
		close(p->pipefd[0]);
	if (p->pipefd[1] >= 0)
		close(p->pipefd[1]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
