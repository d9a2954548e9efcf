/*
 * contexts.c - per-batch aggregation of context (changeset) updates.
 * Batches are small (<= 10000 events), so a linear search over the
 * contexts of one batch is cheaper than a hash table's bookkeeping.
 */
#include "contexts.h"

#include "ct_internal.h"

#include <stdlib.h>
#include <string.h>

void ctc_contexts_init(ctc_contexts *c)
{
	memset(c, 0, sizeof(*c));
}

void ctc_contexts_free(ctc_contexts *c)
{
	for (size_t i = 0; i < c->n; i++) {
		ctc_context_agg *a = &c->items[i];
		free(a->id);
		free(a->parent_id);
		free(a->actor);
		json_decref(a->collections);
		json_decref(a->metadata_seen);
		json_decref(a->metadata_final);
	}
	free(c->items);
	memset(c, 0, sizeof(*c));
}

static int find(ctc_contexts *c, const char *id, const char *ts, ctc_context_agg **out,
		ct_error *err)
{
	for (size_t i = c->n; i-- > 0;)
		if (!strcmp(c->items[i].id, id)) {
			*out = &c->items[i];
			return 0;
		}
	if (c->n >= CTC_CONTEXTS_MAX)
		return ct_error_set(err, CT_ELIMIT, "more than %d contexts in one batch", CTC_CONTEXTS_MAX);
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		ctc_context_agg *items = realloc(c->items, cap * sizeof(*items));
		if (!items)
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		c->items = items;
		c->cap = cap;
	}
	ctc_context_agg *a = &c->items[c->n];
	memset(a, 0, sizeof(*a));
	if (!(a->id = strdup(id)) || !(a->collections = json_array())) {
		free(a->id);
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	}
	snprintf(a->first_ts, sizeof(a->first_ts), "%s", ts);
	snprintf(a->last_ts, sizeof(a->last_ts), "%s", ts);
	c->n++;
	*out = a;
	return 0;
}

/* Common part: ts range, actor, parent. RFC 3339 UTC strings of one form sort as text. */
static int touch(ctc_context_agg *a, const char *parent_id, const char *ts, const char *actor,
		 ct_error *err)
{
	if (strcmp(ts, a->first_ts) < 0)
		snprintf(a->first_ts, sizeof(a->first_ts), "%s", ts);
	bool latest = strcmp(ts, a->last_ts) >= 0;
	if (latest)
		snprintf(a->last_ts, sizeof(a->last_ts), "%s", ts);
	if (actor && (!a->actor || latest)) {
		char *copy = strdup(actor);
		if (!copy)
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		free(a->actor);
		a->actor = copy;
	}
	if (parent_id && !a->parent_id && !(a->parent_id = strdup(parent_id)))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	return 0;
}

static void set_json(json_t **slot, const json_t *v)
{
	json_decref(*slot);
	*slot = v ? json_deep_copy(v) : NULL;
}

int ctc_contexts_add_event(ctc_contexts *c, const char *id, const char *parent_id, const char *ts,
			   const char *actor, const char *collection, const json_t *metadata,
			   ct_error *err)
{
	ctc_context_agg *a;
	int rc;
	bool latest;
	if ((rc = find(c, id, ts, &a, err)))
		return rc;
	latest = strcmp(ts, a->last_ts) >= 0;
	if ((rc = touch(a, parent_id, ts, actor, err)))
		return rc;
	a->event_count++;
	if (collection) {
		bool have = false;
		for (size_t i = 0; i < json_array_size(a->collections) && !have; i++)
			have = !strcmp(json_string_value(json_array_get(a->collections, i)), collection);
		if (!have && json_array_append_new(a->collections, json_string(collection)))
			return ct_error_set(err, CT_ENOMEM, "out of memory");
	}
	if (metadata && (latest || !a->metadata_seen))
		set_json(&a->metadata_seen, metadata);
	return 0;
}

int ctc_contexts_add_marker(ctc_contexts *c, bool end, const char *id, const char *parent_id,
			    const char *ts, const char *actor, const json_t *metadata, ct_error *err)
{
	ctc_context_agg *a;
	int rc;
	if ((rc = find(c, id, ts, &a, err)) || (rc = touch(a, parent_id, ts, actor, err)))
		return rc;
	if (end) {
		a->complete = true;
		set_json(&a->metadata_final, metadata);
	} else {
		a->began = true;
		if (metadata && !a->metadata_seen)
			set_json(&a->metadata_seen, metadata);
	}
	return 0;
}
