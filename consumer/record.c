/*
 * record.c - history records from events and previous state (see record.h).
 */
#include "record.h"

#include "changetrail/canonical.h"
#include "changetrail/diff.h"
#include "ct_canon.h"
#include "ct_internal.h"

#include <stdlib.h>
#include <string.h>

static json_t *str_or_null(const char *s)
{
	return s ? json_string_nocheck(s) : json_null();
}

static int key_cmp(const void *a, const void *b)
{
	/* the canonical form's order (common/canonical.c): bytes, i.e. code points */
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether every object in v has its keys in canonical order already; when
 * so, *bytes gets v's size estimate (ctc_json_node_approx_bytes summed). */
static bool is_sorted(const json_t *v, int depth, size_t *bytes)
{
	size_t n = ctc_json_node_approx_bytes(v);
	if (depth > CT_CANONICAL_MAX_DEPTH) /* deeper than any parsed event: copy */
		return false;
	if (json_is_object(v)) {
		const char *k, *prev = NULL;
		json_t *x;
		json_object_foreach((json_t *)v, k, x) {
			size_t b;
			if ((prev && strcmp(prev, k) >= 0) || !is_sorted(x, depth + 1, &b))
				return false;
			n += b;
			prev = k;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			size_t b;
			if (!is_sorted(json_array_get(v, i), depth + 1, &b))
				return false;
			n += b;
		}
	}
	*bytes = n;
	return true;
}

/*
 * v with every object's keys in canonical (sorted) order: the order a state
 * read back from MongoDB has. The diff follows the previous document's key
 * order, so the cached document must have that order too, or the same event
 * would give another record (and hash) after a restart or a rebalance than
 * before it. NULL when out of memory. *bytes gets the size estimate of the
 * result (the cache's, ctc_state_approx_bytes()), measured on the way.
 *
 * Only the containers out of order (and those above them) are rebuilt; every
 * other value, leaves included, is shared with v by reference. Nothing
 * changes a document tree in place once built (a new event replaces the
 * cached document whole), so sharing is safe, and it saves copying the
 * event's strings for every event.
 */
static json_t *sorted_share(json_t *v, size_t *bytes)
{
	json_t *out = NULL;
	const char **keys = NULL, *small[32];
	size_t b;
	if (is_sorted(v, 0, bytes))
		return json_incref(v);
	*bytes = ctc_json_node_approx_bytes(v);
	if (json_is_object(v)) {
		size_t n = json_object_size(v), i = 0;
		const char *k;
		json_t *x;
		if (!(out = json_object()) ||
		    !(keys = n <= sizeof(small) / sizeof(small[0]) ? small : malloc(n * sizeof(*keys))))
			goto fail;
		json_object_foreach(v, k, x)
			keys[i++] = k;
		if (n)
			qsort(keys, n, sizeof(*keys), key_cmp);
		for (i = 0; i < n; i++) {
			if (json_object_setn_new_nocheck(out, keys[i], json_object_iter_key_len(json_object_key_to_iter(keys[i])),
							 sorted_share(json_object_get(v, keys[i]), &b)))
				goto fail;
			*bytes += b;
		}
	} else {
		/* an array (leaves and sorted containers were shared above) */
		if (!(out = json_array()))
			goto fail;
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (json_array_append_new(out, sorted_share(json_array_get(v, i), &b)))
				goto fail;
			*bytes += b;
		}
	}
	if (keys != small)
		free(keys);
	return out;
fail:
	if (keys != small)
		free(keys);
	json_decref(out);
	return NULL;
}

static void canon_string_or_null(ct_buf *b, const char *s)
{
	if (s)
		ct_canon_string(b, s, strlen(s));
	else
		ct_buf_put(b, "null", 4);
}

/*
 * The record hash (ct_record_hash()) from the record's fields, without
 * building the record: its canonical text written in key order. It must
 * give what ct_record_hash() gives on the record ctc_record_apply() builds
 * (test_consumer_record checks every record it makes).
 */
static int hash_fields(const ctc_event_in *ev, const char *op, int64_t version, const json_t *changes,
		       const char *prev_hash, char out_hex[65], ct_error *err)
{
	ct_buf b = CT_BUF_INIT;
	int rc = CT_OK;
#define PUT(lit) ct_buf_put(&b, lit, sizeof(lit) - 1)
#define STR(s) ct_canon_string(&b, (s), strlen(s))
#define STR_OR_NULL(s) canon_string_or_null(&b, (s))
	PUT("{\"_id\":");
	STR(ev->event_id);
	PUT(",\"actor\":");
	STR_OR_NULL(ev->actor);
	PUT(",\"changes\":");
	if ((rc = ct_canon_value(&b, changes, err)))
		goto out;
	PUT(",\"collection\":");
	STR(ev->collection);
	PUT(",\"context_id\":");
	STR_OR_NULL(ev->context_id);
	PUT(",\"document_id\":");
	STR(ev->document_id);
	PUT(",\"label\":");
	STR_OR_NULL(ev->label);
	PUT(",\"op\":");
	STR(op);
	PUT(",\"parent\":");
	if (ev->parent_collection && ev->parent_document_id) {
		PUT("{\"collection\":");
		STR(ev->parent_collection);
		PUT(",\"document_id\":");
		STR(ev->parent_document_id);
		PUT("}");
	} else {
		PUT("null");
	}
	PUT(",\"prev_hash\":");
	STR_OR_NULL(prev_hash[0] ? prev_hash : NULL);
	PUT(",\"relation\":");
	if (ev->relation) {
		if ((rc = ct_canon_value(&b, ev->relation, err)))
			goto out;
	} else {
		PUT("null");
	}
	PUT(",\"seq\":");
	if (ev->seq >= 0)
		ct_canon_int(&b, ev->seq);
	else
		PUT("null");
	PUT(",\"source\":");
	STR_OR_NULL(ev->source);
	PUT(",\"ts\":");
	STR(ev->ts);
	PUT(",\"version\":");
	ct_canon_int(&b, version);
	PUT("}");
#undef PUT
#undef STR
#undef STR_OR_NULL
	return ct_canon_hash_hex(&b, out_hex, err);
out:
	ct_buf_free(&b);
	return rc;
}

/* changes of a relation_add/remove: see record.h */
static int relation_changes(const ctc_event_in *ev, json_t **out, ct_error *err)
{
	const char *name = json_string_value(json_object_get(ev->relation, "name"));
	const char *coll = json_string_value(json_object_get(ev->relation, "collection"));
	const char *id = json_string_value(json_object_get(ev->relation, "document_id"));
	char *other;
	if (!name || !coll || !id)
		return ct_error_set(err, CT_ESCHEMA, "relation needs string name, collection, document_id");
	if (!(other = ctc_state_key(coll, id)))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	*out = json_pack("[[s, [s, s], [[s, {s:s, s:s}]]]]",
			 strcmp(ev->op, "relation_add") ? "remove" : "add", CTC_RELATIONS_KEY, name, other,
			 "collection", coll, "document_id", id);
	free(other);
	return *out ? 0 : ct_error_set(err, CT_ENOMEM, "out of memory");
}

/* The history record (record.h form) of fields already checked, with its hash. */
static int build_record(const ctc_doc_state *st, const ctc_event_in *ev, const char *op, json_t *changes,
			const char *hash, json_t **out, ct_error *err)
{
	json_t *rec = NULL, *kafka;
	json_t *parent = json_null();
	*out = NULL;
	if (ev->parent_collection && ev->parent_document_id)
		parent = json_pack("{s:s, s:s}", "collection", ev->parent_collection, "document_id",
				   ev->parent_document_id);
	/* The keys are ours and every string value comes from a parsed (or
	 * checked) event, valid UTF-8: no need for jansson to check them again. */
	rec = json_object();
	if (!rec || !parent ||
	    json_object_set_new_nocheck(rec, "_id", json_string_nocheck(ev->event_id)) ||
	    json_object_set_new_nocheck(rec, "collection", json_string_nocheck(ev->collection)) ||
	    json_object_set_new_nocheck(rec, "document_id", json_string_nocheck(ev->document_id)) ||
	    json_object_set_new_nocheck(rec, "version", json_integer(st->version + 1)) ||
	    json_object_set_new_nocheck(rec, "op", json_string_nocheck(op)) ||
	    json_object_set_new_nocheck(rec, "label", str_or_null(ev->label)) ||
	    json_object_set_new_nocheck(rec, "ts", json_string_nocheck(ev->ts)) ||
	    json_object_set_new_nocheck(rec, "actor", str_or_null(ev->actor)) ||
	    json_object_set_new_nocheck(rec, "context_id", str_or_null(ev->context_id)) ||
	    json_object_set_new_nocheck(rec, "source", str_or_null(ev->source)) ||
	    json_object_set_new_nocheck(rec, "seq", ev->seq >= 0 ? json_integer(ev->seq) : json_null()) ||
	    json_object_set_new_nocheck(rec, "parent", parent) ||
	    json_object_set_new_nocheck(rec, "relation", ev->relation ? json_incref((json_t *)ev->relation) : json_null()) ||
	    json_object_set_nocheck(rec, "changes", changes) ||
	    json_object_set_new_nocheck(rec, "prev_hash", st->hash[0] ? json_string_nocheck(st->hash) : json_null()) ||
	    json_object_set_new_nocheck(rec, "hash", json_string_nocheck(hash)))
		goto nomem;
	if (ev->topic) {
		kafka = json_pack("{s:s, s:i, s:I}", "topic", ev->topic, "partition", (int)ev->partition,
				  "offset", (json_int_t)ev->offset);
		/* the content's identity goes with the provenance: a state rolled
		 * forward from history remembers it as the consumer did */
		if (!kafka || (ev->sha256 && json_object_set_new(kafka, "sha256", json_string_nocheck(ev->sha256))) ||
		    json_object_set_new(rec, "kafka", kafka))
			goto nomem;
	}
	*out = rec;
	return CT_OK;
nomem:
	json_decref(rec);
	return ct_error_set(err, CT_ENOMEM, "out of memory");
}

int ctc_record_apply(ctc_doc_state *st, const ctc_event_in *ev, json_t **record,
		     ctc_record_result *result, ct_error *err)
{
	json_t *empty = NULL, *changes = NULL, *rec = NULL, *next_doc = NULL;
	json_t *before_sorted = NULL;
	const json_t *prev;
	size_t next_bytes = 0, before_bytes = 0;
	bool next_deleted = st->deleted;
	char hash[65];
	int rc = 0;

	if (record)
		*record = NULL;
	*result = CTC_RECORD_EMPTY;
	const char *seen_sha = NULL;
	if (ctc_state_find_id(st, ev->event_id, &seen_sha) >= 0 && seen_sha && ev->sha256) {
		*result = !strcmp(seen_sha, ev->sha256) ? CTC_RECORD_DUPLICATE : CTC_RECORD_REUSED;
		return 0;
	}
	/* An id remembered without its content (a v1 state, a record without
	 * kafka.sha256) proves nothing: the event is derived as new and its
	 * history insert, whose _id is the event id, meets the stored record;
	 * the store then tells the same event (skipped) from a reuse (DLQ). */
	if (ctc_state_seen_offset(st, ev->topic, ev->partition, ev->offset) && ev->offsets != CTC_OFFSETS_WENT_BACK) {
		*result = ev->offsets == CTC_OFFSETS_SAME_LOG ? CTC_RECORD_DUPLICATE : CTC_RECORD_UNPROVEN;
		return 0;
	}
	if (!(empty = json_object())) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	/* previous document as far as the diff is concerned */
	prev = (st->doc && !st->deleted) ? st->doc : empty;
	const char *op = ev->op;
	if (!strcmp(op, "insert") || !strcmp(op, "update") || !strcmp(op, "snapshot")) {
		if (!ev->after) {
			rc = ct_error_set(err, CT_ESCHEMA, "op %s without \"after\"", op);
			goto out;
		}
		if ((rc = ct_diff(prev, ev->after, &changes, err)))
			goto out;
		/* an update that changes nothing records nothing; neither does a
		 * snapshot of a known, unchanged document. An insert of an
		 * unknown document always records (its version 1 anchors the chain). */
		bool known = st->version > 0 && !st->deleted;
		if (json_array_size(changes) == 0 && (strcmp(op, "insert") || known))
			goto empty;
		next_doc = sorted_share((json_t *)ev->after, &next_bytes);
		next_deleted = false;
	} else if (!strcmp(op, "delete")) {
		if (st->deleted)
			goto empty;
		if (prev == empty && ev->before) {
			/* the event's `before`, in the order a stored one would have */
			if (!(before_sorted = sorted_share((json_t *)ev->before, &before_bytes))) {
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
				goto out;
			}
			prev = before_sorted;
		}
		if ((rc = ct_diff(prev, empty, &changes, err)))
			goto out;
		next_doc = json_incref((json_t *)prev); /* shared: documents are never changed in place */
		next_bytes = prev == before_sorted ? before_bytes : 0;
		next_deleted = true;
	} else if (!strcmp(op, "event")) {
		changes = json_array();
		next_doc = st->doc ? json_incref(st->doc) : NULL;
	} else if (!strcmp(op, "relation_add") || !strcmp(op, "relation_remove")) {
		if (!ev->relation) {
			rc = ct_error_set(err, CT_ESCHEMA, "op %s without \"relation\"", op);
			goto out;
		}
		if ((rc = relation_changes(ev, &changes, err)))
			goto out;
		next_doc = st->doc ? json_incref(st->doc) : NULL;
	} else {
		rc = ct_error_set(err, CT_ESCHEMA, "op '%s' does not make a history record", op);
		goto out;
	}
	if (!changes || ((!strcmp(op, "insert") || !strcmp(op, "update") || !strcmp(op, "snapshot") ||
			  !strcmp(op, "delete")) && !next_doc)) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}

	if ((rc = hash_fields(ev, op, st->version + 1, changes, st->hash, hash, err)))
		goto out;
	/* The record itself only for a caller that wants it (the consumer
	 * does when it writes, to make its BSON; without writes the hash is
	 * all it needs). */
	if (record && (rc = build_record(st, ev, op, changes, hash, &rec, err)))
		goto out;
	/* Everything that can fail is done: move the state on. */
	if ((rc = ctc_state_remember_event(st, ev->event_id, ev->sha256, err)) ||
	    (rc = ctc_state_set_offset(st, ev->topic, ev->partition, ev->offset, err)))
		goto out;
	st->version++;
	memcpy(st->hash, hash, sizeof(hash));
	ctc_state_set_doc(st, next_doc, next_bytes);
	next_doc = NULL;
	st->deleted = next_deleted;
	snprintf(st->last_ts, sizeof(st->last_ts), "%s", ev->ts);
	if (record)
		*record = rec;
	rec = NULL;
	*result = CTC_RECORD_PERSISTED;
	rc = 0;
	goto out;
empty:
	/* no record, but the event is remembered like any applied one: its id
	 * re-used with other content is caught, and last_offset / last_event
	 * stay the same message (what an offset going back is proven with) */
	if (!(rc = ctc_state_remember_event(st, ev->event_id, ev->sha256, err)))
		rc = ctc_state_set_offset(st, ev->topic, ev->partition, ev->offset, err);
out:
	json_decref(rec);
	json_decref(changes);
	json_decref(next_doc);
	json_decref(before_sorted);
	json_decref(empty);
	return rc;
}
