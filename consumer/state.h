/*
 * state.h - the consumer's view of one document: what the `state`
 * collection holds and the cache keeps (version, hash of the last history
 * record, the document, deletion, what was applied last), and its
 * conversion to and from the stored form (docs/storage.md).
 */
#ifndef CTC_STATE_H
#define CTC_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "changetrail/common.h"
#include "ct_buf.h"

/* How many event ids of a document the state remembers for redelivery checks. */
#define CTC_RECENT_IDS 32
#define CTC_STORED_UNKNOWN (-2)

typedef struct ctc_doc_state {
	char *key;          /* "<collection>/<document_id>" (the `state` _id) */
	char *collection;
	char *document_id;
	int64_t version;    /* of the last history record; 0 = none yet */
	bool deleted;
	char hash[65];      /* of the last history record; "" when version is 0 */
	json_t *doc;        /* the document as of `version` (kept after a delete); NULL = none */
	char *last_topic;   /* where the last applied event came from; NULL = never */
	int32_t last_partition;
	int64_t last_offset;
	char *recent_ids[CTC_RECENT_IDS]; /* ring, oldest first from recent_head */
	char *recent_sha256[CTC_RECENT_IDS]; /* beside each id: lowercase hex SHA-256 of its raw
	                       Kafka message value; NULL = unknown (stored as null) */
	unsigned nrecent, recent_head;
	char last_ts[40];   /* ts of the last history record */
	bool dirty;         /* changed since it was last taken for a write to `state` (not stored) */
	int64_t stored;     /* the version `state` holds as far as this worker knows: read at the load,
	                       then the version of its last write taken; -1 none stored, CTC_STORED_UNKNOWN.
	                       Only a guess for the state write's first compare-and-swap: a wrong one costs
	                       a read of the stored versions, never a write (store_state.c) */
	uint64_t taken;     /* the worker's state write (take number) that holds it; it stays cached
	                       until that write is done (read back, it would be the older state) */
	const json_t *sized_doc; /* the `doc` that doc_bytes was measured for */
	size_t doc_bytes;
} ctc_doc_state;

/*
 * Approximate heap bytes of `st` and its document tree: jansson's node
 * sizes estimated, not measured (a cache bound, not an accounting).
 */
size_t ctc_state_approx_bytes(const ctc_doc_state *st);

/*
 * The estimate for one JSON node alone: the node, an object's table and its
 * members' slots and keys, an array's slots, a string's bytes; not the
 * children. A tree's estimate is the sum over its nodes.
 */
size_t ctc_json_node_approx_bytes(const json_t *j);

/* Sets `doc` (a reference it takes) as st->doc, with its size estimate
 * `bytes` when the caller measured it on the way (0: measured when asked). */
void ctc_state_set_doc(ctc_doc_state *st, json_t *doc, size_t bytes);

/* New empty state for (collection, document_id): version 0, no document. */
ctc_doc_state *ctc_state_new(const char *collection, const char *document_id, ct_error *err);
void ctc_state_free(ctc_doc_state *st);

/* Writes "<collection>/<document_id>" into a new string (free()). */
char *ctc_state_key(const char *collection, const char *document_id);

/* true when `event_id` is among the remembered ones. */
bool ctc_state_seen_id(const ctc_doc_state *st, const char *event_id);
/*
 * The ring slot of `event_id` (see recent_ids), -1 when it is not
 * remembered; *sha256 (may be NULL) gets the SHA-256 remembered beside it
 * (NULL when unknown: a v1 state).
 */
int ctc_state_find_id(const ctc_doc_state *st, const char *event_id, const char **sha256);
/* Remembers `event_id` (the oldest one is forgotten past CTC_RECENT_IDS). */
int ctc_state_remember_id(ctc_doc_state *st, const char *event_id, ct_error *err);
/* The same with the SHA-256 (lowercase hex, NULL = unknown) of its message value. */
int ctc_state_remember_event(ctc_doc_state *st, const char *event_id, const char *sha256, ct_error *err);
/* The last remembered event (the one at last_offset): false when none; *sha256 may be NULL. */
bool ctc_state_last_event(const ctc_doc_state *st, const char **event_id, const char **sha256);
/* true when (topic, partition, offset) is at or before the last applied one. */
bool ctc_state_seen_offset(const ctc_doc_state *st, const char *topic, int32_t partition,
			   int64_t offset);
int ctc_state_set_offset(ctc_doc_state *st, const char *topic, int32_t partition, int64_t offset,
			 ct_error *err);

/*
 * Stored form v2 (cts_codec.h), appended to `out` as one BSON document
 * (after what is there): {_id, collection, document_id, version, deleted,
 * hash, doc (BSON document or null), ts (date) + ts_us, last_offset
 * {topic, partition, offset}, last_event {id, sha256}, recent_events
 * [{id, sha256}]}. What the writer sends to `state`. CT_ENOMEM, CT_ELIMIT,
 * CT_EINVAL (a key with a NUL byte, a ts that is not canonical).
 */
int ctc_state_append_bson(const ctc_doc_state *st, ct_buf *out, ct_error *err);
/* The same stored form in its JSON form (cts_state_from_bson()), *out owned by the caller. */
int ctc_state_to_json(const ctc_doc_state *st, json_t **out, ct_error *err);
/* Inverse of ctc_state_to_json(); also takes v1's recent_event_ids. CT_EINVAL naming the field when malformed. */
int ctc_state_from_json(const json_t *stored, ctc_doc_state **out, ct_error *err);

#endif
