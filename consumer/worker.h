/*
 * worker.h - processing of one batch of Kafka messages, run off the loop
 * thread in two stages so the CPU work of one batch overlaps the MongoDB
 * writes of the previous one: (1) parse and validate, bad ones to the DLQ,
 * previous states loaded with one query, records built; (2) history written
 * to MongoDB with retries (consumption paused while MongoDB fails). Blocking
 * by design.
 *
 * Changed states stay dirty in the cache, and context (changeset) updates
 * are gathered in the worker; both are written together when the
 * loop asks for it (flush_state: every state_flush_ms, on revoke and stop)
 * or when state_flush_max_documents are dirty. Offsets may be committed only
 * up to a batch WRITTEN with state_flushed set: until then a crash must make
 * Kafka redeliver the events, which rebuild the same records (duplicates of
 * what is in `history`) on top of the older stored states.
 */
#ifndef CTC_WORKER_H
#define CTC_WORKER_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "anchor.h"
#include "cache.h"
#include "ct_buf.h"
#include "contexts.h"
#include "config.h"
#include "metrics.h"
#include "store.h"

/*
 * Where a batch is in its life. One field, so that a reader of pipeline.c
 * tells from it alone where a batch is, and so that what cannot happen
 * (written and fenced, a state write due on a batch not written) cannot be
 * said.
 *
 *   NEW --stage 1--> PREPARED --stage 2--> WRITTEN
 *                             --stage 2--> STATES_DUE --stage 3--> WRITTEN
 *                             --stage 2--> FENCED | CONFLICT
 *                                          STATES_DUE --stage 3--> FENCED
 *   any --the loop--> HANDLED
 *
 * Stage 1 is ctc_worker_prepare(). Stage 2 is ctc_worker_write_history()
 * (STATES_DUE only for a batch that took_states, with a state writer), or
 * ctc_worker_write() (history and states at once: never STATES_DUE). Stage
 * 3 is ctc_worker_write_states(). ctc_worker_flush_states() makes a batch
 * PREPARED itself (it only carries states) and writes it as stage 2.
 *
 * A stage that fails (MongoDB down past the shutdown deadline, out of
 * memory, the DLQ refusing) leaves the batch where it was: NEW after stage
 * 1, PREPARED after stage 2, STATES_DUE after stage 3. The loop looks only
 * once the stage is done and reads "not moved on" as the failure (what
 * `prepared` or `ok` false said before).
 *
 * Threads: the field is not atomic, and needs not be. A pool thread writes
 * it only while it runs a stage of the batch. The loop reads or writes it
 * only when no stage runs on the batch: in the stage's after-work callback
 * (libuv orders it after the work), after wait_stages() saw the stage's
 * done flag (prep_done, write_done, state_done) under pipeline.c's `mu`
 * (the worker sets the stage before it takes `mu` to set that flag), for
 * the batches no stage holds (pending, prepared), or when it runs the
 * writes itself (settle_inflight). HANDLED is set by the loop only
 * (discard_generation, settle_inflight) and is final: whatever it says of
 * the batch was read before, and the stage callback still to come only
 * frees it.
 */
enum ctc_batch_stage {
	CTC_BATCH_NEW = 0,    /* filling up (a zeroed batch), or in stage 1 */
	CTC_BATCH_PREPARED,   /* stage 1 built its records (and took the states, if took_states) */
	CTC_BATCH_STATES_DUE, /* stage 2 wrote its history; the states it took wait for stage 3 */
	CTC_BATCH_WRITTEN,    /* everything it carries is in MongoDB: its offsets may be taken */
	CTC_BATCH_FENCED,     /* a write found it fenced (ctc_worker_fenced): what remained is not written */
	CTC_BATCH_CONFLICT,   /* its history collided (reused id, version taken): derive again */
	CTC_BATCH_HANDLED,    /* the loop settled it itself (revoke) or discarded it (fencing) */
};

typedef struct ctc_batch {
	rd_kafka_message_t **msgs; /* owned; destroyed with the batch */
	size_t n, cap;
	uint64_t seq;              /* batch number, from 1 */
	int64_t start_us;          /* monotonic, when handed to the worker */
	enum ctc_batch_stage stage; /* see above */
	/*
	 * Not stages. flush_state is the loop's request, set before the batch
	 * is handed to stage 1 and never after: the loop reads it while a
	 * stage runs (flush_in_flight), which it could not do with a field the
	 * worker writes. took_states is stage 1's decision (the request, or
	 * too much waiting): what the batch carries, which picks its path
	 * (through STATES_DUE or not), not a place on it. state_flushed is a
	 * fact stage 1 found: nothing unwritten is left outside the batch.
	 */
	bool flush_state;          /* set by the loop: write every dirty state after this batch */
	bool took_states;          /* stage 1 took the states and contexts: they go with this batch */
	bool state_flushed;        /* once WRITTEN, every state changed so far is in MongoDB */
	ct_buf history;            /* records to insert, BSON documents end to end (stage 1 -> 2) */
	ct_buf states;             /* when took_states: the stored states to write, BSON documents end to end */
	size_t nstates;            /* how many documents `states` holds */
	ct_buf expected;           /* beside each of `states` (int64_t): the version `state` holds as far
	                              as the cache knows (state.h `stored`), the first compare-and-swap's guess */
	uint64_t take;             /* when took_states: its number among the worker's state writes */
	ctc_contexts ctxs;         /* context updates to write, when took_states */
	ctc_anchor_heads heads;    /* when took_states and anchoring: the heads of `states`, anchored once written */
	uint64_t persisted, duplicate, empty, dlq, markers;
	double history_ms, contexts_ms, state_ms; /* MongoDB time by collection */
	/* fencing (issue 16) */
	uint64_t generation;       /* the worker's generation when the batch was made */
	size_t *rec_msg;           /* history record i came from message rec_msg[i] */
	size_t nrec, rec_cap;
} ctc_batch;

/*
 * Messages sent to the DLQ (or found recorded already at another version),
 * remembered by where they came from and their content, so that a batch
 * derived again (a conflict's rewind, a fenced batch consumed again) does
 * not send them twice. Kafka topic names are at most 249 bytes.
 */
#define CTC_REFUSED_MAX 512
#define CTC_REDERIVE_MAX 64
typedef struct ctc_refused {
	char topic[250];
	int32_t partition;
	int64_t offset;
	char sha256[65];
} ctc_refused;

typedef struct ctc_worker {
	const ctc_config *cfg;
	rd_kafka_t *consumer;     /* for pause/resume of owned partitions (thread-safe calls) */
	rd_kafka_t *dlq;          /* producer of the dead-letter topic */
	ctc_store *store;         /* writes (stage 2); NULL with no_write */
	ctc_store *read_store;    /* state loads (stage 1), its own client; NULL with no_write */
	ctc_store *state_store;   /* state writes (stage 3), its own client; NULL: stage 2 writes them */
	atomic_int_fast64_t state_write_start_us; /* stage 3's write outstanding since (monotonic µs), 0 = none */
	atomic_int history_writing; /* stage 2 is writing history: stage 3 lets it go first (see ctc_worker_write_states) */
	atomic_uint_fast64_t history_writes; /* stage 2's history writes so far: stage 3 paces itself while they flow */
	ctc_cache *cache;
	ctc_metrics *metrics;
	atomic_int *abort;        /* set when the shutdown deadline passed: stop retrying */
	atomic_int dlq_failed;    /* delivery reports that failed */
	pthread_mutex_t dlq_mu;   /* guards dlq_retry: delivery reports run on any thread that polls */
	struct ctc_dlq_retry *dlq_retry; /* dead letters to send again (stub or whole), see worker.c */
	bool indexes_done;
	bool paused;              /* guarded by pause_mu (both stages may pause) */
	pthread_mutex_t pause_mu;
	size_t ndirty;            /* dirty states in the cache */
	uint64_t takes;           /* state writes taken so far (stage 1) */
	atomic_uint_fast64_t written_take; /* the last of them written (stage 2, read by stage 1) */
	ctc_contexts ctxs;        /* context updates gathered since the last state write */
	/*
	 * Fencing: the generation is bumped by the loop on every assign and
	 * revoke and when it fences itself (a stall, a conflict); a batch of an
	 * older generation is never written. alive_us is the loop's last tick
	 * (monotonic µs): older than stall_limit_us means every thread stood
	 * still (SIGSTOP, a VM pause) long enough for the group to have moved
	 * on, so nothing is written until the loop has looked.
	 */
	atomic_uint_fast64_t generation;
	atomic_int_fast64_t alive_us;
	int64_t stall_limit_us;   /* 0 = no stall check */
	/*
	 * A process stopped and continued (SIGSTOP/SIGTSTP, then SIGCONT) may
	 * have been stopped for less than stall_limit_us and still have missed
	 * anything: a topic deleted and re-created under librdkafka's fetch
	 * positions, which it keeps. `continued` counts SIGCONTs (NULL: not
	 * watched); while it differs from continued_seen nothing is written,
	 * until the loop has discarded the generation and read again from the
	 * committed offsets (none after the topic was deleted: its beginning).
	 */
	const atomic_uint_fast64_t *continued;
	atomic_uint_fast64_t continued_seen;
	struct ctc_offsets_prover *prover; /* offsets.h; NULL = none: unproven offsets are applied as new */
	uint64_t prover_generation;        /* stage 1: its answers are of this generation */
	pthread_mutex_t refused_mu;        /* stage 2 adds, stage 1 reads */
	ctc_refused refused[CTC_REFUSED_MAX];
	unsigned nrefused, refused_next;
	/* Documents whose next version another writer took (stage 2 adds,
	 * under refused_mu): their next load rolls forward from the version
	 * after the stored state, not from the batch's event id, which is not
	 * in history. Full: every load of the next batch does so. */
	char *rederive[CTC_REDERIVE_MAX];
	unsigned nrederive;
	bool rederive_all;
	ctc_anchor *anchor;       /* NULL: no anchors */
	bool ready;               /* ctc_worker_init() set up the locks */
} ctc_worker;

/*
 * Sets up a zeroed `w` for a consumer: its locks, the state cache bounded by
 * cfg, the stall limit (half of [kafka] session.timeout.ms: stood still that
 * long, the group may have moved our partitions to another member) and,
 * unless cfg->no_write, a MongoDB client per stage that uses one (libmongoc
 * clients are not thread-safe). `consumer` (pause/resume, assignment
 * checks), `dlq` (its producer), `anchor` (may be NULL), `metrics` and
 * `abort` are borrowed and must outlive `w`; `prover` (offsets.h, may be
 * NULL) is owned from the call on. 0 or an error (CT_ENOMEM, CT_ECONFIG for
 * a MongoDB URI); call ctc_worker_fini() in both cases.
 */
int ctc_worker_init(ctc_worker *w, const ctc_config *cfg, rd_kafka_t *consumer, rd_kafka_t *dlq,
		    struct ctc_offsets_prover *prover, ctc_anchor *anchor, ctc_metrics *metrics, atomic_int *abort,
		    ct_error *err);

/*
 * Frees what ctc_worker_init() set up (also after it failed, or on a zeroed
 * `w` it never saw): clients, prover, cache, gathered contexts, dead letters
 * still to send, locks. Every stage must be idle, and the DLQ producer's
 * delivery reports served no more (destroy it first).
 */
void ctc_worker_fini(ctc_worker *w);

/*
 * Stage 1: parse, validate (bad messages to the DLQ), load the missing
 * states (one query), build the records into b->history; the cache moves
 * ahead. Events whose states are cached are recorded as they are parsed;
 * from the first that is not, the rest of the batch is parsed first and
 * its missing states loaded at once. When b->flush_state is set (or too much is waiting) the dirty
 * states and the gathered contexts are taken into `b` too (b->took_states).
 * NEW -> PREPARED; on failure it stays NEW and the cache is dropped. One thread at a time; may run beside
 * stage 2 of the previous batch (they share nothing but the DLQ producer,
 * the metrics and the pause flag).
 */
void ctc_worker_prepare(ctc_worker *w, ctc_batch *b);

/*
 * Writes what stage 1 put in `b`: history, then contexts, then states
 * (retrying while MongoDB fails), then waits for the DLQ deliveries.
 * PREPARED -> WRITTEN (or FENCED, CONFLICT; PREPARED still when it failed);
 * only WRITTEN may offsets up to `b` be committed (and only with
 * b->state_flushed). One thread at a time, batches in stage 1 order. A
 * failed batch stops the consumer: later prepared batches must be dropped.
 * The loop uses it when it writes a batch itself (a revoke).
 */
void ctc_worker_write(ctc_worker *w, ctc_batch *b);

/*
 * Stage 2 (issue 18): the same, except that with a state writer
 * (w->state_store) a batch that took the states (b->took_states) writes only
 * its history and becomes STATES_DUE, not WRITTEN: nothing a reader needs
 * waits for the state write. Offsets up to `b` wait for
 * ctc_worker_write_states() then.
 */
void ctc_worker_write_history(ctc_worker *w, ctc_batch *b);

/*
 * Stage 3: the contexts and states `b` took, after its history was written
 * (STATES_DUE), through w->state_store, retrying while MongoDB fails and
 * refusing to write once fenced (FENCED). STATES_DUE -> WRITTEN: the
 * offsets up to `b` may then be committed; STATES_DUE still when it failed
 * (a batch in any other stage is left alone). One state write at a time, in
 * the order they were taken; it may run beside stage 2 of later batches
 * (history is never behind the states written).
 */
void ctc_worker_write_states(ctc_worker *w, ctc_batch *b);

/* States per write of stage 3 (see ctc_worker_write_states). */
#define CTC_STATE_WRITE_CHUNK 25

/*
 * Milliseconds from one state write to the next: state_flush_ms, stretched
 * to CTC_STATE_FLUSH_BACKOFF times the last write's duration (contexts and
 * states, last_write_ms) when that is longer, so state writes take at most
 * a fifth of the writer's time however slowly the database does them (a
 * server whose state write grows with the collection, as FerretDB 1.24's
 * did, would otherwise take more and more of it). Never stretched past CTC_STATE_FLUSH_GAP_MAX_MS (a crash
 * replays at most that much); state_flush_ms 0 stays "with every batch".
 * state_flush_max_documents still forces a write sooner. Pure function.
 */
#define CTC_STATE_FLUSH_BACKOFF 4
#define CTC_STATE_FLUSH_GAP_MAX_MS 60000
int64_t ctc_state_flush_interval_ms(int64_t state_flush_ms, double last_write_ms);

/* true when context updates or changed states wait to be written. */
bool ctc_worker_has_unwritten(const ctc_worker *w);

/*
 * Writes the gathered context updates, then every dirty state (retrying like
 * a batch), then marks them clean. Both stages must be idle.
 * 0, or CT_ETIMEDOUT when the shutdown deadline stopped the retries; on
 * failure the whole cache is dropped (it is ahead of MongoDB). Same thread
 * rule as the stages.
 */
int ctc_worker_flush_states(ctc_worker *w, double *contexts_ms, double *states_ms);

/*
 * The DLQ producer's delivery report: a dead letter the broker refused for
 * its size is queued to go again as a stub (or whole, alone, when it may
 * only have shared a refused request); any other failure queues it whole.
 * Stage 2 sends them again before the batch's offsets may be committed
 * (consumption paused while the DLQ keeps failing). Any thread.
 */
void ctc_worker_dlq_report(ctc_worker *w, const rd_kafka_message_t *m);

/* Frees the dead letters still queued to go again (at teardown). */
void ctc_worker_dlq_free(ctc_worker *w);

/* Forgets every cached state, dirty ones included, and the gathered context updates (after a failure). */
void ctc_worker_drop_cache(ctc_worker *w);

void ctc_batch_free(ctc_batch *b);

/*
 * The consumer's reaction to history conflicts (store.h, ctc_write_set's
 * conflicts) of batch `b`, on the writer thread: a reused event id sends
 * its message to the DLQ (reason code EREUSED) and remembers it; records of
 * the batch inserted after a conflicting record of the same document are
 * taken back (store_fence.h). Then `b` is CONFLICT: the loop rewinds to
 * the committed offsets and the documents are derived again from what
 * MongoDB holds (states rolled forward from history); FENCED instead when
 * fenced before the take-back. 0, or an error when the take-back failed
 * (the consumer must stop; `b` is left as it was).
 */
int ctc_worker_on_conflicts(ctc_worker *w, ctc_batch *b, const ctc_conflicts *c, ct_error *err);

/* true when `b` must not be written: its generation is gone, the assignment is lost, or the loop stalled. */
bool ctc_worker_fenced(ctc_worker *w, const ctc_batch *b);

#endif
