/*
 * changetrail/history.h - read (and prune) the history that
 * changetrail-consumer writes to MongoDB (docs/storage.md): a document's
 * log, its state at a time or version, blame, changesets (contexts), what
 * an actor did, verification of the hash chains, and retention.
 *
 * This is not part of libchangetrail (applications do not need libmongoc):
 * it is the static library `ct_history`, used by the changetrail CLI and the
 * tests. Neither it nor this header is installed.
 *
 * Records are returned as JSON objects in the "JSON form" of
 * docs/storage.md, the one their hash is made over, whatever the stored form
 * (v2 native BSON or v1 text; storage/cts_codec.h converts): "changes" in
 * dictdiffer form (an array of [action, path, data]), "ts" the canonical RFC
 * 3339 µs text; a checkpoint record (op "checkpoint", written by
 * ct_history_prune) has "changes": [] and "doc" the document. States are objects
 * {"collection", "document_id", "version", "ts", "deleted", "hash", "doc"}
 * where "doc" is the document (the last one before the delete when
 * "deleted" is true).
 *
 * Time: µs since the Unix epoch. Record timestamps are compared in their
 * canonical RFC 3339 text (what events carry), which sorts as time.
 *
 * Ownership: every json_t returned through `out` is a new reference owned by
 * the caller (json_decref); it is NULL on failure. String arguments are
 * borrowed for the duration of the call.
 *
 * Thread-safety: a ct_history handle is used by one thread at a time (it
 * holds one libmongoc client); distinct handles may be used from distinct
 * threads. mongoc_init() must have been called once by the program
 * (ct_history_global_init() does it).
 *
 * Errors (return value, `err` filled when not NULL; messages never contain
 * the URI's credentials):
 *   CT_EINVAL    NULL or malformed argument
 *   CT_ECONFIG   the URI is not a valid MongoDB URI
 *   CT_ENOTFOUND no such document / version / context / records
 *   CT_EMONGO    the server failed or did not answer
 *   CT_ECONFLICT stored history is inconsistent (a change does not apply,
 *                a hash does not match) where a state is rebuilt
 *   CT_ELIMIT    a bound below was reached
 *   CT_ENOMEM    out of memory
 */
#ifndef CHANGETRAIL_HISTORY_H
#define CHANGETRAIL_HISTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "changetrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_history ct_history;

/** Most records one call reads into memory (CT_ELIMIT beyond). */
#define CT_HISTORY_MAX_RECORDS 5000000

/** "No bound" for since/until. */
#define CT_HISTORY_NO_TIME INT64_MIN

/** mongoc_init()/mongoc_cleanup() once per program, with a quiet log handler. */
void ct_history_global_init(void);
void ct_history_global_cleanup(void);

/**
 * Opens a handle on `database` at `uri`. Connects lazily: the first query
 * fails with CT_EMONGO when the server is away (3 s server selection
 * timeout unless the URI sets one). Errors: CT_EINVAL, CT_ECONFIG, CT_ENOMEM.
 */
int ct_history_open(const char *uri, const char *database, ct_history **out, ct_error *err);
void ct_history_close(ct_history *h);

/** CT_EMONGO when the server does not answer a ping. */
int ct_history_ping(ct_history *h, ct_error *err);

/** Filter of ct_history_log(). Zero-initialise, then set since/until to CT_HISTORY_NO_TIME or µs. */
typedef struct ct_history_query {
	int64_t since_us;       /**< records with ts >= since (CT_HISTORY_NO_TIME: no bound) */
	int64_t until_us;       /**< records with ts <= until (CT_HISTORY_NO_TIME: no bound) */
	bool include_children;  /**< also records whose parent is this document */
} ct_history_query;

/**
 * The records of one document, newest first: by version (producers' clocks
 * may disagree, so ts does not order one document's records). With
 * include_children, the records of several documents interleave by ts,
 * each document's in version order. *out is an array, empty when nothing
 * matches the filter; CT_ENOTFOUND when the document has no record and no
 * state at all.
 */
int ct_history_log(ct_history *h, const char *collection, const char *document_id,
		   const ct_history_query *q, json_t **out, ct_error *err);

/**
 * The document as of `version` (1..current), or, when version is 0, as of
 * time `at_us` (the last record with ts <= at), or when both are 0/NO_TIME
 * the current state. Rebuilt from the stored changes: forward from version
 * 1 (or the nearest checkpoint) with ct_patch(), or backward from the
 * current state with ct_revert(), whichever applies fewer records; every
 * record applied has its hash recomputed and checked (CT_ECONFLICT
 * otherwise). CT_ENOTFOUND: unknown document, a version out of range or
 * pruned (before the checkpoint), or a time before the first record.
 */
int ct_history_state(ct_history *h, const char *collection, const char *document_id, int64_t version,
		     int64_t at_us, json_t **out, ct_error *err);

/**
 * For every leaf of the current document (scalars, empty objects and
 * arrays), the last record whose changes touched it or one of its
 * ancestors: an array of {"path": [components], "value", "version", "ts",
 * "actor", "op", "context_id", "record_id"} in document order. A leaf last
 * changed before a checkpoint is attributed to the checkpoint. A deleted
 * document is blamed as it was before the delete (what ct_history_state()
 * shows): each leaf is credited to the record that set it, not the delete.
 */
int ct_history_blame(ct_history *h, const char *collection, const char *document_id, json_t **out,
		     ct_error *err);

/**
 * A changeset: {"id", "actor", "complete", "metadata", "parent_id",
 * "first_ts", "last_ts", "collections", "event_count", "records": [...oldest
 * first]}: the context's document with its parts merged in (a context whose
 * events spanned several state writes has parts, docs/storage.md);
 * event_count is advisory (redelivery can count an event twice) and 0 while
 * the consumer has written no document for it yet. CT_ENOTFOUND when
 * neither the context nor any record exists.
 */
int ct_history_context(ct_history *h, const char *context_id, json_t **out, ct_error *err);

/** Records made by `actor` with ts >= since (NO_TIME: all), newest first (ordered as ct_history_log()). */
int ct_history_actor(ct_history *h, const char *actor, int64_t since_us, json_t **out, ct_error *err);

/**
 * Verifies the hash chains of one document (collection and document_id
 * set), of a collection (document_id NULL) or of everything (both NULL):
 * per document, in version order, each record's hash is recomputed
 * ("modified"), versions are contiguous from 1 or from a checkpoint
 * ("missing", "duplicate"), each prev_hash is the previous hash
 * ("reordered"), the changes apply in order and give the stored document
 * ("changes_do_not_apply", "state_doc_mismatch"), and the state is the
 * record of its version, hash and document ("state_mismatch",
 * "no_history"). A state behind the last record, or none yet, is normal
 * while a consumer runs (it writes states every state_flush_ms, after the
 * history) and is counted in "states_behind", not reported as a problem.
 * *out: {"documents": N, "records": N, "states_behind": N, "problems":
 * [{"collection", "document_id", "version", "problem", "detail"}...]}.
 * Problems are data, not errors: the call returns 0 when it could read
 * everything.
 */
int ct_history_verify(ct_history *h, const char *collection, const char *document_id, json_t **out,
		      ct_error *err);

/**
 * Checks MongoDB against anchored chain heads (`changetrail verify
 * --anchors`; the caller reads and authenticates the anchor records):
 * `heads` is an array of {"collection", "document_id", "version", "hash"}
 * (any order, repeats allowed). Per document: each anchored version is in
 * history ("anchored_missing", unless pruned before a checkpoint) with the
 * anchored hash ("anchored_mismatch"); the document still exists
 * ("anchored_document_gone": no history and no state); its state is not
 * behind the newest anchored version ("anchored_state_behind",
 * "anchored_state_missing"); and its chain verifies as ct_history_verify()
 * checks it (those problems included). *out: {"documents": N, "anchored":
 * N, "pruned": N, "problems": [{"collection", "document_id", "version",
 * "problem", "detail"}...]}. Problems are data: 0 when everything was
 * read. CT_EINVAL for a malformed head. Three queries per document.
 */
int ct_history_check_anchored(ct_history *h, const json_t *heads, json_t **out, ct_error *err);

/**
 * Retention: for every document (of `collection` when not NULL) whose
 * records have ts < cutoff, the prefix 1..N of its chain, N being the
 * newest such version, is replaced by one checkpoint record: record N is
 * replaced in place (same _id) by {op "checkpoint", version N, ts, doc (the
 * state at N as canonical text), deleted, prev_hash and hash of record N,
 * pruned_before}, then versions < N are deleted. Crash-safe in that order
 * (a rerun finishes the job) and never touches `state`. With dry_run,
 * nothing is written. *out: {"documents": N, "records_deleted": N,
 * "checkpoints": [{"collection", "document_id", "version", "deleted"}...]}.
 */
int ct_history_prune(ct_history *h, int64_t cutoff_us, const char *collection, bool dry_run,
		     json_t **out, ct_error *err);

/**
 * Compares two databases of the same server: every history record by _id
 * (all fields but "kafka") and every state by _id (all fields but
 * "last_offset"). *out: {"history": N, "states": N, "differences":
 * [{"collection": "history"|"state", "_id", "problem", "detail"}...]}.
 */
int ct_history_compare(ct_history *a, ct_history *b, json_t **out, ct_error *err);

/** Progress of ct_history_migrate(): `done` of `total` documents of `phase` ("history", "state",
 * "state_journal", "contexts"), called at the start of each phase and after each batch. */
typedef void (*ct_history_progress_fn)(void *arg, const char *phase, int64_t done, int64_t total);

/** Options of ct_history_migrate(). Zero-initialise. */
typedef struct ct_history_migrate_opts {
	int batch;                       /**< documents per write, 1..10000 (0: 1000) */
	int64_t max_records;             /**< stop after reading this many source documents (0: no limit); a
					      rerun continues */
	ct_history_progress_fn progress; /**< NULL: none */
	void *progress_arg;
} ct_history_migrate_opts;

/**
 * Upgrade: copies database `from` (stored form v1: user JSON as text, times
 * as text, state_journal, context_parts; a v2 database is copied the same)
 * into database `into` in stored form v2 (docs/storage.md), without
 * re-hashing: history records, checkpoints, states (plus the states of a
 * state-journal swap cut short, only where newer), contexts with their v1
 * parts merged in. The indexes of `into` are created first. Each phase goes
 * in _id order and keeps its last _id done in `into`.changetrail_migrate
 * after every batch: an interrupted run, run again, continues; a finished
 * one finds nothing new (a record already in `into` is compared by hash; a
 * different one there is CT_ECONFLICT). Migrate a database no consumer
 * writes to. A record whose hash does not match is copied as it is, counted
 * and listed (verify reports it on both). *out: {"from", "into", "complete"
 * (false when max_records stopped it), "resumed", "history": {"read",
 * "written", "present", "hash_mismatches", "hash_mismatch_ids"}, "state":
 * {"read", "written", "not_newer"}, "state_journal": {...the same},
 * "contexts": {"read", "written", "parts_merged"}}.
 * Errors: CT_EINVAL (same database, bad options, a malformed stored
 * document, naming it), CT_ECONFLICT, CT_EMONGO, CT_ENOMEM.
 */
int ct_history_migrate(ct_history *from, ct_history *into, const ct_history_migrate_opts *opts, json_t **out,
		       ct_error *err);

/**
 * The stored state of a document (docs/storage.md form, "doc" parsed), or
 * CT_ENOTFOUND. And the states of a collection (not deleted only when
 * `live_only`), as an array.
 */
int ct_history_stored_state(ct_history *h, const char *collection, const char *document_id,
			    json_t **out, ct_error *err);
int ct_history_collection_states(ct_history *h, const char *collection, bool live_only, json_t **out,
				 ct_error *err);

/**
 * Time arguments of the CLI: an RFC 3339 date-time, a date "2024-05-01"
 * (its midnight UTC), or a duration before `now_us` ("90s", "15m", "2h",
 * "3d", "1w", "1h30m"; also "2h ago"). CT_EPARSE with a message saying what
 * is accepted.
 */
int ct_history_parse_time(const char *s, int64_t now_us, int64_t *out_us, ct_error *err);

/**
 * A positive duration "N<unit>", or several from the largest unit down
 * ("1h30m", "1w2d", "2m30s"), units w, d, h, m, s each at most once (each N
 * an integer below 10^9, no overflow) into µs. CT_EPARSE otherwise.
 */
int ct_history_parse_duration(const char *s, int64_t *out_us, ct_error *err);

/* ---- paginated reads (`changetrail serve`, docs/web.md) ---------------- */

/** Most items one page of the paginated reads below holds. */
#define CT_HISTORY_PAGE_MAX 500

/**
 * One page of a document's timeline, newest version first: the records of
 * versions below `before_version` (0: from the newest), at most `limit`
 * (1..CT_HISTORY_PAGE_MAX), each read with an equality on all the keys of
 * the unique index (collection, document_id, version), so a page costs
 * `limit` indexed lookups whatever the length of the history. Stops after a
 * checkpoint (pruned history) and after `limit` missing versions in a row.
 * *out: {"collection", "document_id", "current_version" (the newest
 * record's, past a state behind its history), "state_version", "deleted",
 * "records": [...] (JSON form, without "kafka"), "next_before": the
 * before_version of the next page, or null on the last one}. CT_ENOTFOUND
 * when the document has no history.
 */
int ct_history_timeline(ct_history *h, const char *collection, const char *document_id, int64_t before_version,
			int limit, json_t **out, ct_error *err);

/**
 * The document at `version` (or, when 0, at `at_us`, or when both are
 * 0/NO_TIME the newest) as ct_history_state() gives it, and the newest
 * state of the document, from one read of its records. Both as
 * ct_history_state() (a deleted document shown as it was before the delete);
 * the same errors.
 */
int ct_history_state_and_current(ct_history *h, const char *collection, const char *document_id, int64_t version,
				 int64_t at_us, json_t **at, json_t **current, ct_error *err);

/**
 * One page of the documents of `collection` (NULL: of every collection)
 * whose id starts with `id_prefix` (NULL or "": any; needs a collection),
 * deleted ones included, in `_id` order ("<collection>/<document_id>", a
 * range of the state's _id index) after `after` (NULL or "": from the
 * first). *out: {"documents": [{"collection", "document_id", "version",
 * "deleted", "ts"}...], "next_after": the `after` of the next page or null}.
 */
int ct_history_documents(ct_history *h, const char *collection, const char *id_prefix, const char *after,
			 int limit, json_t **out, ct_error *err);

/** Filter and page of ct_history_records(). Zero-initialise, then set the times to CT_HISTORY_NO_TIME or µs. */
typedef struct ct_history_records_query {
	const char *actor;   /**< NULL: every actor (the `ts` index), else the `actor_ts` index */
	int64_t since_us;    /**< ts >= since (CT_HISTORY_NO_TIME: no bound) */
	int64_t until_us;    /**< ts <= until (CT_HISTORY_NO_TIME: no bound) */
	int64_t cursor_ms;   /**< the page after: "next" of the previous page (CT_HISTORY_NO_TIME: first page) */
	int64_t cursor_skip; /**< ... and its "skip" */
	int limit;           /**< 1..CT_HISTORY_PAGE_MAX */
} ct_history_records_query;

/**
 * One page of the records made by an actor, or by anyone, within a time
 * range, newest first by the stored ts (ms; records of one millisecond in the
 * index's order). *out: {"records": [...] (JSON form, without "kafka"),
 * "next": {"ms", "skip"} for the next page (cursor_ms, cursor_skip), or null
 * on the last one}.
 */
int ct_history_records(ct_history *h, const ct_history_records_query *q, json_t **out, ct_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CHANGETRAIL_HISTORY_H */
