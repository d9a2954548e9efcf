/*
 * cache.h - the previous state of documents of owned partitions, in memory:
 * a hash table with an LRU list, bounded by a number of documents and by an
 * approximate size in bytes (ctc_state_approx_bytes()), each entry
 * tagged with the partition it came from so a revoke can drop exactly those.
 * Not thread-safe: one thread at a time (the batch worker, or the loop while
 * no batch is in flight).
 */
#ifndef CTC_CACHE_H
#define CTC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

typedef struct ctc_cache ctc_cache;

/*
 * `max_docs` >= 1 and `max_bytes` (0 = no bound on the size): the bounds
 * ctc_cache_trim() evicts down to. NULL when out of memory.
 */
ctc_cache *ctc_cache_new(size_t max_docs, size_t max_bytes);
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
 * Measures again the entries used since the last trim (their documents may
 * have changed), then evicts least recently used entries until at most
 * max_docs remain and they hold at most max_bytes. Never evicted: dirty
 * states (changed, not yet taken for a write: the only copy), and states
 * taken by a write later than `written` (the last state write done): read
 * back from MongoDB before that write is done, they would be older.
 */
void ctc_cache_trim(ctc_cache *c, uint64_t written);
/*
 * true when the last trim could not get under the bounds because the rest
 * is dirty: the states must be written before anything more is cached.
 */
bool ctc_cache_over_bounds(const ctc_cache *c);
/* Approximate bytes held (as of the last trim, plus the entries put since). */
size_t ctc_cache_bytes(const ctc_cache *c);
/*
 * Calls fn on every dirty state, most recently used first, and stops at the
 * first non-zero return, which it returns.
 */
int ctc_cache_foreach_dirty(ctc_cache *c, int (*fn)(ctc_doc_state *st, void *ud), void *ud);
/* Drops every entry of `partition` (-1: every entry). */
void ctc_cache_drop_partition(ctc_cache *c, int32_t partition);
size_t ctc_cache_count(const ctc_cache *c);

#endif
