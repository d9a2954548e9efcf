/*
 * state.c - per-document state of the consumer and its stored form.
 */
#include "state.h"

#include "cts_codec.h"
#include "changetrail/canonical.h"
#include "ct_internal.h"

#include <bson/bson.h>
#include <stdlib.h>
#include <string.h>

char *ctc_state_key(const char *collection, const char *document_id)
{
	size_t a = strlen(collection), b = strlen(document_id);
	char *k = malloc(a + b + 2);
	if (!k)
		return NULL;
	memcpy(k, collection, a);
	k[a] = '/';
	memcpy(k + a + 1, document_id, b + 1);
	return k;
}

ctc_doc_state *ctc_state_new(const char *collection, const char *document_id, ct_error *err)
{
	ctc_doc_state *st = calloc(1, sizeof(*st));
	if (!st || !(st->collection = strdup(collection)) || !(st->document_id = strdup(document_id)) ||
	    !(st->key = ctc_state_key(collection, document_id))) {
		ctc_state_free(st);
		ct_error_set(err, CT_ENOMEM, "out of memory");
		return NULL;
	}
	st->last_partition = -1;
	st->last_offset = -1;
	st->stored = CTC_STORED_UNKNOWN;
	return st;
}

void ctc_state_free(ctc_doc_state *st)
{
	if (!st)
		return;
	free(st->key);
	free(st->collection);
	free(st->document_id);
	json_decref(st->doc);
	free(st->last_topic);
	for (unsigned i = 0; i < CTC_RECENT_IDS; i++) {
		free(st->recent_ids[i]);
		free(st->recent_sha256[i]);
	}
	free(st);
}

bool ctc_state_seen_id(const ctc_doc_state *st, const char *event_id)
{
	for (unsigned i = 0; i < CTC_RECENT_IDS; i++)
		if (st->recent_ids[i] && !strcmp(st->recent_ids[i], event_id))
			return true;
	return false;
}

int ctc_state_find_id(const ctc_doc_state *st, const char *event_id, const char **sha256)
{
	for (unsigned i = 0; i < CTC_RECENT_IDS; i++)
		if (st->recent_ids[i] && !strcmp(st->recent_ids[i], event_id)) {
			if (sha256)
				*sha256 = st->recent_sha256[i];
			return (int)i;
		}
	return -1;
}

bool ctc_state_last_event(const ctc_doc_state *st, const char **event_id, const char **sha256)
{
	if (!st->nrecent)
		return false;
	unsigned slot = (st->recent_head + st->nrecent - 1) % CTC_RECENT_IDS;
	*event_id = st->recent_ids[slot];
	if (sha256)
		*sha256 = st->recent_sha256[slot];
	return true;
}

int ctc_state_remember_id(ctc_doc_state *st, const char *event_id, ct_error *err)
{
	return ctc_state_remember_event(st, event_id, NULL, err);
}

int ctc_state_remember_event(ctc_doc_state *st, const char *event_id, const char *sha256, ct_error *err)
{
	char *copy = strdup(event_id), *sha = sha256 ? strdup(sha256) : NULL;
	if (!copy || (sha256 && !sha)) {
		free(copy);
		free(sha);
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	}
	unsigned slot = (st->recent_head + st->nrecent) % CTC_RECENT_IDS;
	if (st->nrecent == CTC_RECENT_IDS) {
		/* full: overwrite the oldest, which is at the head */
		slot = st->recent_head;
		st->recent_head = (st->recent_head + 1) % CTC_RECENT_IDS;
	} else {
		st->nrecent++;
	}
	free(st->recent_ids[slot]);
	st->recent_ids[slot] = copy;
	free(st->recent_sha256[slot]);
	st->recent_sha256[slot] = sha;
	return 0;
}

bool ctc_state_seen_offset(const ctc_doc_state *st, const char *topic, int32_t partition,
			   int64_t offset)
{
	return st->last_topic && topic && !strcmp(st->last_topic, topic) &&
	       st->last_partition == partition && offset <= st->last_offset;
}

int ctc_state_set_offset(ctc_doc_state *st, const char *topic, int32_t partition, int64_t offset,
			 ct_error *err)
{
	if (!topic)
		return 0;
	if (!st->last_topic || strcmp(st->last_topic, topic)) {
		char *copy = strdup(topic);
		if (!copy)
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		free(st->last_topic);
		st->last_topic = copy;
	}
	st->last_partition = partition;
	st->last_offset = offset;
	return 0;
}

/* BSON_APPEND_UTF8, or null when `v` is NULL or empty (no hash before version 1). */
static bool utf8_or_null(bson_t *b, const char *key, const char *v)
{
	return v && *v ? BSON_APPEND_UTF8(b, key, v) : BSON_APPEND_NULL(b, key);
}

/* {id, sha256} of ring slot `slot` under `key`. */
static bool append_event(bson_t *b, const char *key, const ctc_doc_state *st, unsigned slot)
{
	bson_t e;
	return BSON_APPEND_DOCUMENT_BEGIN(b, key, &e) && BSON_APPEND_UTF8(&e, "id", st->recent_ids[slot]) &&
	       utf8_or_null(&e, "sha256", st->recent_sha256[slot]) && bson_append_document_end(b, &e);
}

int ctc_state_append_bson(const ctc_doc_state *st, ct_buf *out, ct_error *err)
{
	bson_t b = BSON_INITIALIZER, lo, ring;
	int rc = 0;
	bool ok;

	ok = BSON_APPEND_UTF8(&b, "_id", st->key) && BSON_APPEND_UTF8(&b, "collection", st->collection) &&
	     BSON_APPEND_UTF8(&b, "document_id", st->document_id) && BSON_APPEND_INT64(&b, "version", st->version) &&
	     BSON_APPEND_BOOL(&b, "deleted", st->deleted) && utf8_or_null(&b, "hash", st->hash);
	if (ok && st->doc) {
		if ((rc = cts_bson_append_json(&b, "doc", st->doc, err)))
			goto out;
	} else if (ok) {
		ok = BSON_APPEND_NULL(&b, "doc");
	}
	if (ok && st->last_ts[0]) {
		if ((rc = cts_append_time(&b, "ts", "ts_us", st->last_ts, err)))
			goto out;
	} else if (ok) {
		ok = BSON_APPEND_NULL(&b, "ts");
	}
	if (ok && st->last_topic) {
		ok = BSON_APPEND_DOCUMENT_BEGIN(&b, "last_offset", &lo) && BSON_APPEND_UTF8(&lo, "topic", st->last_topic) &&
		     BSON_APPEND_INT64(&lo, "partition", st->last_partition) &&
		     BSON_APPEND_INT64(&lo, "offset", st->last_offset) && bson_append_document_end(&b, &lo);
	} else if (ok) {
		ok = BSON_APPEND_NULL(&b, "last_offset");
	}
	if (ok && st->nrecent)
		ok = append_event(&b, "last_event", st, (st->recent_head + st->nrecent - 1) % CTC_RECENT_IDS);
	else if (ok)
		ok = BSON_APPEND_NULL(&b, "last_event");
	if (ok)
		ok = BSON_APPEND_ARRAY_BEGIN(&b, "recent_events", &ring);
	for (unsigned i = 0; ok && i < st->nrecent; i++) {
		char buf[16];
		const char *k;
		bson_uint32_to_string(i, &k, buf, sizeof(buf));
		ok = append_event(&ring, k, st, (st->recent_head + i) % CTC_RECENT_IDS);
	}
	ok = ok && bson_append_array_end(&b, &ring) && ct_buf_put(out, bson_get_data(&b), b.len) == 0;
	if (!ok)
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
out:
	bson_destroy(&b);
	return rc;
}

/* The stored form has one definition, ctc_state_append_bson(); the JSON one is read from it. */
int ctc_state_to_json(const ctc_doc_state *st, json_t **out, ct_error *err)
{
	ct_buf buf = {0};
	bson_t doc;
	*out = NULL;
	int rc = ctc_state_append_bson(st, &buf, err);
	if (!rc && !bson_init_static(&doc, (const uint8_t *)buf.data, buf.len))
		rc = ct_error_set(err, CT_EINTERNAL, "state BSON malformed");
	if (!rc)
		rc = cts_state_from_bson(&doc, out, err);
	ct_buf_free(&buf);
	return rc;
}

static const char *get_str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int ctc_state_from_json(const json_t *stored, ctc_doc_state **out, ct_error *err)
{
	ctc_doc_state *st = NULL;
	const char *coll = get_str(stored, "collection"), *id = get_str(stored, "document_id");
	json_t *v;
	int rc;

	*out = NULL;
	if (!coll || !id)
		return ct_error_set(err, CT_EINVAL, "state: collection/document_id missing");
	if (!(st = ctc_state_new(coll, id, err)))
		return CT_ENOMEM;
	v = json_object_get(stored, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		rc = ct_error_set(err, CT_EINVAL, "state %s: bad version", st->key);
		goto out;
	}
	st->version = json_integer_value(v);
	/* set by ctc_store_load_states() beside a state it read (or found none
	 * of): the version `state` holds, before any roll forward */
	json_t *sv = json_object_get(stored, "stored_version");
	st->stored = json_is_integer(sv) && json_integer_value(sv) >= -1 ? json_integer_value(sv) : CTC_STORED_UNKNOWN;
	st->deleted = json_is_true(json_object_get(stored, "deleted"));
	const char *h = get_str(stored, "hash");
	if (h && strlen(h) == 64)
		memcpy(st->hash, h, 65);
	const char *ts = get_str(stored, "ts");
	if (ts && strlen(ts) < sizeof(st->last_ts))
		strcpy(st->last_ts, ts);
	json_t *doc = json_object_get(stored, "doc");
	if (json_is_string(doc)) { /* v1: canonical text */
		json_error_t jerr;
		st->doc = json_loadb(json_string_value(doc), json_string_length(doc),
				     JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (!st->doc) {
			rc = ct_error_set(err, CT_EINVAL, "state %s: doc is not JSON: %s", st->key, jerr.text);
			goto out;
		}
	} else if (doc && !json_is_null(doc)) {
		st->doc = json_incref(doc);
	}
	json_t *lo = json_object_get(stored, "last_offset");
	if (json_is_object(lo) && get_str(lo, "topic") &&
	    (rc = ctc_state_set_offset(st, get_str(lo, "topic"),
				       (int32_t)json_integer_value(json_object_get(lo, "partition")),
				       json_integer_value(json_object_get(lo, "offset")), err)))
		goto out;
	json_t *ids = json_object_get(stored, "recent_event_ids"); /* v1 */
	for (size_t i = 0; i < json_array_size(ids); i++) {
		const char *e = json_string_value(json_array_get(ids, i));
		if (e && (rc = ctc_state_remember_id(st, e, err)))
			goto out;
	}
	json_t *ring = json_object_get(stored, "recent_events");
	for (size_t i = 0; i < json_array_size(ring); i++) {
		const json_t *e = json_array_get(ring, i);
		const char *eid = get_str(e, "id"), *sha = get_str(e, "sha256");
		if (!eid)
			continue;
		if ((rc = ctc_state_remember_event(st, eid, sha, err)))
			goto out;
	}
	*out = st;
	st = NULL;
	rc = 0;
out:
	ctc_state_free(st);
	return rc;
}

/* Per jansson node, per object (its hashtable's buckets) and per object
 * member (hashtable pair): set so that the estimate of a state is within
 * 5% of what jemalloc allocates for it with documents of the benchmarks'
 * shape (tests/bench/bench_cache_size.c: 1810 bytes allocated for 111
 * bytes of text, 2694 for 925, 5893 for 4001). */
#define NODE_BYTES 56
#define OBJECT_BYTES 128
#define MEMBER_BYTES 72

size_t ctc_json_node_approx_bytes(const json_t *j)
{
	size_t n = NODE_BYTES;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		n += OBJECT_BYTES;
		json_object_foreach((json_t *)j, k, v)
			n += MEMBER_BYTES + json_object_iter_key_len(json_object_key_to_iter(k));
		break;
	}
	case JSON_ARRAY:
		n += json_array_size(j) * sizeof(void *);
		break;
	case JSON_STRING:
		n += json_string_length(j) + 1;
		break;
	default:
		break;
	}
	return n;
}

static size_t json_approx_bytes(const json_t *j, int depth)
{
	size_t n = ctc_json_node_approx_bytes(j);
	if (depth > 256) /* parsed documents are bounded deeper than this by max_depth */
		return n;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)j, k, v)
			n += json_approx_bytes(v, depth + 1);
	} else if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++)
			n += json_approx_bytes(json_array_get(j, i), depth + 1);
	}
	return n;
}

void ctc_state_set_doc(ctc_doc_state *st, json_t *doc, size_t bytes)
{
	if (doc != st->doc) {
		json_decref(st->doc);
		st->doc = doc;
		st->sized_doc = NULL;
	} else {
		json_decref(doc); /* the same tree: one reference is enough */
	}
	if (bytes && doc) {
		st->sized_doc = doc;
		st->doc_bytes = bytes;
	}
}

size_t ctc_state_approx_bytes(const ctc_doc_state *st)
{
	size_t n = sizeof(*st) + 3 * strlen(st->key) + 16;
	if (st->last_topic)
		n += strlen(st->last_topic) + 1;
	for (unsigned i = 0; i < CTC_RECENT_IDS; i++)
		if (st->recent_ids[i])
			n += strlen(st->recent_ids[i]) + 16 + (st->recent_sha256[i] ? 80 : 0); /* allocator rounding */
	if (st->doc) {
		/* measured once per document, not at every look of the cache */
		if (st->sized_doc != st->doc) {
			((ctc_doc_state *)st)->doc_bytes = json_approx_bytes(st->doc, 0);
			((ctc_doc_state *)st)->sized_doc = st->doc;
		}
		n += st->doc_bytes;
	}
	return n;
}
