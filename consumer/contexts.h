/*
 * contexts.h - what one batch contributes to the `contexts` collection
 * (changesets): per context id, first/last ts, actor, collections touched,
 * event count, the metadata seen on events and the final metadata of the
 * end marker. Turned into one upsert per context by the store.
 */
#ifndef CTC_CONTEXTS_H
#define CTC_CONTEXTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "changetrail/common.h"

/* Bound on distinct contexts in one batch (a batch is at most 10000 events). */
#define CTC_CONTEXTS_MAX 20000

typedef struct ctc_context_agg {
	char *id;
	char *parent_id;       /* NULL when unknown */
	char first_ts[40], last_ts[40];
	char *actor;           /* NULL when none seen */
	json_t *collections;   /* array of distinct strings */
	int64_t event_count;   /* history records made in this batch */
	json_t *metadata_seen; /* metadata of the latest event (by ts) or begin marker */
	json_t *metadata_final;/* metadata of the end marker, NULL until seen */
	bool began, complete;
} ctc_context_agg;

typedef struct ctc_contexts {
	ctc_context_agg *items;
	size_t n, cap;
	/* set by the store once these are written: a write retried for its
	 * states does not apply the upserts ($inc) twice */
	bool written;
} ctc_contexts;

void ctc_contexts_init(ctc_contexts *c);
void ctc_contexts_free(ctc_contexts *c);

/* A history record made inside context `id` (collection may be NULL for markers). */
int ctc_contexts_add_event(ctc_contexts *c, const char *id, const char *parent_id, const char *ts,
			   const char *actor, const char *collection, const json_t *metadata,
			   ct_error *err);
/* A context_begin (end = false) or context_end (end = true) marker. */
int ctc_contexts_add_marker(ctc_contexts *c, bool end, const char *id, const char *parent_id,
			    const char *ts, const char *actor, const json_t *metadata, ct_error *err);

#endif
