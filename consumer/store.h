/*
 * store.h - the consumer's MongoDB side, on the storage module (storage/):
 * indexes, the load of the states a batch misses (rolled forward from
 * history when the stored state is behind it), and the batch write
 * (history, contexts, states) with MongoDB's own write patterns.
 * Blocking (libmongoc): call it from the writer thread, never from the loop.
 * One ctc_store is used by one thread at a time.
 *
 * Split by role: store.c (open, indexes, the write in order), store_history.c
 * (history insert, duplicates classified), store_contexts.c (context
 * upserts), store_state.c (state load, roll-forward, compare-and-swap writes).
 */
#ifndef CTC_STORE_H
#define CTC_STORE_H

#include <jansson.h>
#include <stdbool.h>

#include "changetrail/common.h"
#include "contexts.h"
#include "cts_codec.h"

#include <bson/bson.h>

typedef struct ctc_store ctc_store;

/* How a history record collided with a stored one that is not its redelivery. */
typedef enum cts_conflict_kind {
	CTS_CONFLICT_ID_REUSED = 1,     /* its _id (event id) is stored for another record */
	CTS_CONFLICT_VERSION_TAKEN = 2, /* (collection, document_id, version) is stored under another _id */
	/* the same event (same _id, same document, same sha256 of the message
	 * value in kafka.sha256) is stored at another version: it was recorded
	 * already, by a worker that saw it in another order (events of one
	 * document on two partitions, e.g. after partitions were added) */
	CTS_CONFLICT_SAME_EVENT = 3
} cts_conflict_kind;

/* "id_reused", "version_taken", "same_event": the name logs and errors use. */
const char *cts_conflict_kind_name(cts_conflict_kind k);

typedef struct ctc_conflict {
	size_t index;           /* the record's position in the write set's history (JSON ones first) */
	cts_conflict_kind kind;
	char *id;               /* the _id we tried to insert */
	json_t *stored;         /* the stored record: {_id, collection, document_id, version, hash};
	                           NULL when it could not be read back */
} ctc_conflict;

typedef struct ctc_conflicts {
	ctc_conflict *items;
	size_t n;
} ctc_conflicts;

void ctc_conflicts_free(ctc_conflicts *c);

/* What one batch writes. */
typedef struct ctc_write_set {
	json_t *history; /* history records (record.h JSON form) */
	/* and/or history records already converted (cts_history_to_bson),
	 * concatenated BSON documents: how the consumer hands them over */
	const uint8_t *history_bson;
	size_t history_bson_len;
	json_t *states;  /* stored states (cts_state_from_bson JSON form), one per document */
	/* and/or stored states already in BSON (ctc_state_append_bson),
	 * concatenated: how the consumer hands them over */
	const uint8_t *states_bson;
	size_t states_bson_len;
	/* NULL, or beside each of states_bson: the version `state` is thought
	 * to hold (-1 none, CTC_STORED_UNKNOWN), tried first by the
	 * compare-and-swap instead of reading them (a wrong guess costs that
	 * read, never a state moved back) */
	const int64_t *states_expected;
	ctc_contexts *contexts;
	/* set by ctc_store_write: time spent on each part of the last attempt */
	double history_ms, contexts_ms, state_ms;
	/* set by ctc_store_write: history records that collided with stored
	 * records that are not their redelivery (freed by the next call and by
	 * ctc_conflicts_free) */
	ctc_conflicts conflicts;
} ctc_write_set;

/* Global libmongoc set-up: the storage module's log handler, into log.h. */
void ctc_store_global_init(void);
void ctc_store_global_cleanup(void);

/* Connects lazily: no I/O here. CT_ECONFIG on a malformed URI (message without credentials). */
ctc_store *ctc_store_open(const char *uri, const char *database, ct_error *err);
void ctc_store_close(ctc_store *s);

/* Same as cts_client_new() (kept for the callers of the v1 name). */
struct _mongoc_client_t *ctc_mongo_client_new(const char *uri, const char *appname, int socket_timeout_ms,
					      ct_error *err);

/* Creates the collections' indexes (idempotent); history_ttl_days > 0: TTL on history.ts. */
int ctc_store_ensure_indexes(ctc_store *s, int history_ttl_days, ct_error *err);
/* ping: CT_EMONGO when the server does not answer. */
int ctc_store_ping(ctc_store *s, ct_error *err);

/* A document the consumer asks the state of. */
typedef struct ctc_doc_ref {
	const char *key, *collection, *document_id;
	/* the first event of the batch for it, NULL when none: with it, the
	 * check for a state behind its history is one _id lookup */
	const char *event_id;
} ctc_doc_ref;

/*
 * Loads the stored states of refs[0..n); *out is a new array of states in
 * the JSON form of cts_state_from_bson() (only the documents that have a
 * state or history). A state behind its history (states are written every
 * state_flush_ms, history every batch) is rolled forward with the history
 * records of versions above its own, so the consumer never derives a record
 * from a stale state; such a state has "rolled_forward": true (not part of
 * the stored form: the caller writes it back). CT_EMONGO, CT_EINVAL (a stored record that does not
 * apply), CT_ENOMEM.
 */
int ctc_store_load_states(ctc_store *s, const ctc_doc_ref *refs, size_t n, json_t **out, ct_error *err);

/*
 * Writes a batch: history (unordered insert; a duplicate that is the same
 * record, (collection, document_id, version, hash) equal, is a redelivery and
 * counted in *n_dup), then contexts upserts, then states by compare-and-swap
 * on their stored version (never moved back to an older version). Idempotent, so a failed call is
 * simply retried. History records that collide with other stored records
 * stop the write before contexts and states: CT_ECONFLICT, the collisions in
 * ws->conflicts. *n_dup (may be NULL) receives the number of redeliveries.
 */
int ctc_store_write(ctc_store *s, ctc_write_set *ws, size_t *n_dup, ct_error *err);

#endif
