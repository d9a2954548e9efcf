/*
 * store_fence.h - what the consumer's reaction to a history conflict needs
 * of MongoDB beside store.h: taking back records of its own batch that were
 * inserted after a conflicting record of the same document (their prev_hash
 * names a record that was never stored), before those events are derived
 * again. Blocking; the writer thread's store.
 */
#ifndef CTC_STORE_FENCE_H
#define CTC_STORE_FENCE_H

#include <stddef.h>

#include "changetrail/common.h"
#include "store.h"

/* A record to take back: exactly this _id with this hash (never another writer's). */
typedef struct ctc_record_ref {
	const char *id, *hash;
} ctc_record_ref;

/* Deletes the history records refs[0..n) (one query); CT_EMONGO. *deleted (may be NULL) gets how many. */
int ctc_store_take_back(ctc_store *s, const ctc_record_ref *refs, size_t n, size_t *deleted, ct_error *err);

#endif
