/*
 * record.h - turns one change event and the document's previous state into
 * a history record (or nothing) and the next state. Pure: no I/O, no clock,
 * no Kafka offsets in what is hashed, so the same events in the same order
 * always give byte-identical records (replays, redeliveries).
 *
 * What each op records (docs/storage.md):
 *   insert    diff(previous document, after); previous = {} when the
 *             document is unknown or deleted (re-create after delete)
 *   update    diff(previous or {}, after); an empty diff gives no record
 *   snapshot  like update; on an unknown document it initialises history
 *   delete    diff(previous, {}) (full removal); the state keeps the last
 *             document, marked deleted; deleting a deleted document: nothing
 *   event     a manual event: label, empty changes, document unchanged
 *   relation_add / relation_remove
 *             [["add"|"remove", ["__relations__", name],
 *               [["<collection>/<document_id>", {"collection", "document_id"}]]]]
 *             i.e. the member of a virtual "__relations__" object that the
 *             relation adds or removes; the document itself is unchanged
 */
#ifndef CTC_RECORD_H
#define CTC_RECORD_H

#include <jansson.h>

#include "state.h"

/*
 * What is known of the log an event comes from against the log the state's
 * last_offset was taken in (see ctc_record_apply()).
 */
typedef enum ctc_offsets {
	CTC_OFFSETS_UNPROVEN = 0, /* nothing: an offset at or before last_offset must be proven */
	CTC_OFFSETS_SAME_LOG,     /* the message at the state's last_offset is its last_event */
	CTC_OFFSETS_WENT_BACK,    /* it is not (topic re-created, another cluster): offsets compare nothing */
} ctc_offsets;

/* What the record builder needs of an event (borrowed pointers). */
typedef struct ctc_event_in {
	const char *event_id, *ts, *source, *collection, *document_id;
	const char *op;          /* ct_op_name(): "insert", "update", ... */
	const char *label, *actor, *context_id; /* NULL when absent */
	const json_t *after, *before, *relation; /* NULL when absent */
	const char *parent_collection, *parent_document_id; /* NULL when absent */
	int64_t seq;             /* -1 when absent */
	/* provenance: stored in "kafka", never hashed; topic NULL = none */
	const char *topic;
	int32_t partition;
	int64_t offset;
	/* identity of the content: lowercase hex SHA-256 of the raw message
	 * value; NULL = unknown (then a remembered id proves nothing: the event
	 * is derived as new and its history insert meets the stored record) */
	const char *sha256;
	ctc_offsets offsets; /* for this event's (topic, partition) against the state */
} ctc_event_in;

typedef enum ctc_record_result {
	CTC_RECORD_PERSISTED, /* a record was made; the state moved on */
	CTC_RECORD_DUPLICATE, /* a redelivery: its id remembered with the same content, or
	                         an offset at or before last_offset in the same log (proven) */
	CTC_RECORD_EMPTY,     /* nothing changed: no record; the event is remembered (the state
	                         moved on: ring, last_offset) */
	CTC_RECORD_REUSED,    /* its id is remembered with other content: refused, state unchanged
	                         (an id remembered without content is no verdict: derived as new) */
	CTC_RECORD_UNPROVEN,  /* offset at or before last_offset, id not remembered, ev->offsets
	                         UNPROVEN: state unchanged; prove and call again */
} ctc_record_result;

/*
 * Identity, not offsets: the only silent skip is the same event id with the
 * same content (sha256) among the state's remembered events. The same id
 * with other content is CTC_RECORD_REUSED. An offset at or before the
 * state's last_offset (same topic and partition) with an id not remembered
 * is not a verdict: CTC_RECORD_UNPROVEN until the caller says which log it
 * is (ev->offsets): SAME_LOG makes it a duplicate (applied before, its id
 * since forgotten), WENT_BACK applies it as new.
 *
 * Applies `ev` to `st`. On CTC_RECORD_PERSISTED *record is the new history
 * record (owned by the caller) and `st` was updated; otherwise *record is
 * NULL and `st` is unchanged. `record` may be NULL: the state moves on the
 * same (its hash made from the record's fields) but no record is built. Errors: CT_ESCHEMA (an op that needs "after"
 * has none, unknown op), CT_ELIMIT (too deep to diff), CT_ENOMEM; `st` is
 * unchanged on error.
 */
int ctc_record_apply(ctc_doc_state *st, const ctc_event_in *ev, json_t **record,
		     ctc_record_result *result, ct_error *err);

/* Last path component of "changes" entries of relations. */
#define CTC_RELATIONS_KEY "__relations__"

#endif
