/*
 * cache.c - bounded LRU of document states (see cache.h). Chained hash
 * table (FNV-1a, power-of-two buckets, doubled at load 1) and an intrusive
 * doubly linked list in use order. Sizes are measured when an entry is put
 * and again at the trim after it was used (once per batch, not per change).
 */
#include "cache.h"

#include "ct_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
	ctc_doc_state *st;
	int32_t partition;
	uint64_t hash;
	size_t bytes;     /* ctc_state_approx_bytes() when last measured */
	uint64_t used;    /* the trim generation it was last used in */
	struct entry *next_in_bucket;
	struct entry *prev, *next; /* LRU: head = most recent */
} entry;

struct ctc_cache {
	entry **buckets;
	size_t nbuckets, count, max_docs;
	size_t bytes, max_bytes; /* approximate; max_bytes 0 = no bound */
	uint64_t gen;            /* trims so far */
	bool over;               /* the last trim left it over a bound (all dirty) */
	entry *head, *tail;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

ctc_cache *ctc_cache_new(size_t max_docs, size_t max_bytes)
{
	ctc_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->nbuckets = 1024;
	c->max_docs = max_docs ? max_docs : 1;
	c->max_bytes = max_bytes;
	if (!(c->buckets = calloc(c->nbuckets, sizeof(*c->buckets)))) {
		free(c);
		return NULL;
	}
	return c;
}

static void lru_unlink(ctc_cache *c, entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(ctc_cache *c, entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void remove_entry(ctc_cache *c, entry *e)
{
	entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->next_in_bucket;
	*pp = e->next_in_bucket;
	lru_unlink(c, e);
	ctc_state_free(e->st);
	c->bytes -= e->bytes;
	free(e);
	c->count--;
}

void ctc_cache_free(ctc_cache *c)
{
	if (!c)
		return;
	ctc_cache_drop_partition(c, -1);
	free(c->buckets);
	free(c);
}

ctc_doc_state *ctc_cache_get(ctc_cache *c, const char *key)
{
	uint64_t h = fnv1a(key);
	for (entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->next_in_bucket)
		if (e->hash == h && !strcmp(e->st->key, key)) {
			e->used = c->gen;
			lru_unlink(c, e);
			lru_push_front(c, e);
			return e->st;
		}
	return NULL;
}

static void grow(ctc_cache *c)
{
	size_t n = c->nbuckets * 2;
	entry **b = calloc(n, sizeof(*b));
	if (!b)
		return; /* keep the longer chains; still correct */
	for (size_t i = 0; i < c->nbuckets; i++)
		for (entry *e = c->buckets[i], *next; e; e = next) {
			next = e->next_in_bucket;
			e->next_in_bucket = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

int ctc_cache_put(ctc_cache *c, ctc_doc_state *st, int32_t partition, ct_error *err)
{
	entry *e = calloc(1, sizeof(*e));
	if (!e)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	if (c->count >= c->nbuckets && c->nbuckets < ((size_t)1 << 28))
		grow(c);
	e->st = st;
	e->partition = partition;
	e->hash = fnv1a(st->key);
	e->used = c->gen;
	e->bytes = ctc_state_approx_bytes(st);
	c->bytes += e->bytes;
	e->next_in_bucket = c->buckets[e->hash & (c->nbuckets - 1)];
	c->buckets[e->hash & (c->nbuckets - 1)] = e;
	lru_push_front(c, e);
	c->count++;
	return 0;
}

static bool over(const ctc_cache *c)
{
	return c->count > c->max_docs || (c->max_bytes && c->bytes > c->max_bytes);
}

void ctc_cache_trim(ctc_cache *c, uint64_t written)
{
	/* Entries used since the last trim are the front of the LRU list: a
	 * get or put moves an entry there. */
	for (entry *e = c->head; e && e->used == c->gen; e = e->next) {
		size_t now = ctc_state_approx_bytes(e->st);
		c->bytes = c->bytes - e->bytes + now;
		e->bytes = now;
	}
	c->gen++;
	for (entry *e = c->tail, *prev; e && over(c); e = prev) {
		prev = e->prev;
		if (!e->st->dirty && e->st->taken <= written)
			remove_entry(c, e);
	}
	c->over = over(c);
}

bool ctc_cache_over_bounds(const ctc_cache *c)
{
	return c->over;
}

size_t ctc_cache_bytes(const ctc_cache *c)
{
	return c->bytes;
}

int ctc_cache_foreach_dirty(ctc_cache *c, int (*fn)(ctc_doc_state *st, void *ud), void *ud)
{
	int rc;
	for (entry *e = c->head; e; e = e->next)
		if (e->st->dirty && (rc = fn(e->st, ud)))
			return rc;
	return 0;
}

void ctc_cache_drop_partition(ctc_cache *c, int32_t partition)
{
	for (entry *e = c->head, *next; e; e = next) {
		next = e->next;
		if (partition < 0 || e->partition == partition)
			remove_entry(c, e);
	}
}

size_t ctc_cache_count(const ctc_cache *c)
{
	return c->count;
}
