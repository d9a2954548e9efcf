/*
 * cache.h - the previous state of documents of owned partitions, in memory:
 * a hash table with an LRU list, bounded by a number of documents, each entry
 * tagged with the partition it came from so a revoke can drop exactly those.
 * Not thread-safe: one thread at a time (the batch worker, or the loop while
 * no batch is in flight).
 */
#ifndef CTC_CACHE_H
#define CTC_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

typedef struct ctc_cache ctc_cache;

/* `max_docs` >= 1: ctc_cache_trim() evicts down to it. */
ctc_cache *ctc_cache_new(size_t max_docs);
void ctc_cache_free(ctc_cache *c);

/* The state of `key` or NULL; a hit becomes the most recently used. */
ctc_doc_state *ctc_cache_get(ctc_cache *c, const char *key);

/*
 * Adds `st` (keyed by st->key, which must not be cached yet) for partition
 * `partition`; the cache owns it. Does not evict: states handed out for the
 * batch being built stay valid until ctc_cache_trim().
 */
int ctc_cache_put(ctc_cache *c, ctc_doc_state *st, int32_t partition, ct_error *err);

/*
 * Evicts least recently used entries until at most max_docs remain. Dirty
 * states (changed, not yet written to MongoDB) are never evicted: they are
 * the only copy until the next state write.
 */
void ctc_cache_trim(ctc_cache *c);
/*
 * Calls fn on every dirty state, most recently used first, and stops at the
 * first non-zero return, which it returns.
 */
int ctc_cache_foreach_dirty(ctc_cache *c, int (*fn)(ctc_doc_state *st, void *ud), void *ud);
/* Drops every entry of `partition` (-1: every entry). */
void ctc_cache_drop_partition(ctc_cache *c, int32_t partition);
size_t ctc_cache_count(const ctc_cache *c);

#endif
