/*
 * emit.c - ct_emit(): checks one change, prepares its documents (tracking
 * rules, skipping updates that changed no tracked field), writes the event
 * and hands it to ct_producer_send().
 *
 * Fast path (no rule for the collection, no `before`, document as text):
 * the document is only scanned for well-formedness and copied, no tree.
 */
#include "producer_internal.h"
#include "ct_jsonscan.h"

#include "changetrail/canonical.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check_name(const char *field, const char *v, size_t max, int required, int no_slash,
		      ct_error *err)
{
	if (!v) {
		if (required)
			return ct_error_set(err, CT_EINVAL, "change '%s': required", field);
		return CT_OK;
	}
	size_t n = strlen(v);
	if (!n || n > max)
		return ct_error_set(err, CT_EINVAL, "change '%s': must be 1..%zu bytes", field, max);
	if (!ct_utf8_valid(v, n))
		return ct_error_set(err, CT_EINVAL, "change '%s': not valid UTF-8", field);
	if (no_slash && memchr(v, '/', n))
		return ct_error_set(err, CT_EINVAL, "change '%s': must not contain '/'", field);
	return CT_OK;
}

static int validate(const ct_change *c, ct_error *err)
{
	int rc;
	if ((unsigned)c->op > CT_OP_CONTEXT_END)
		return ct_error_set(err, CT_EINVAL, "change 'op': unknown value %d", (int)c->op);
	if ((rc = check_name("collection", c->collection, CT_MAX_COLLECTION_BYTES, 1, 1, err)) ||
	    (rc = check_name("document_id", c->document_id, CT_MAX_DOCUMENT_ID_BYTES, 1, 0, err)) ||
	    (rc = check_name("label", c->label, CT_MAX_NAME_BYTES, c->op == CT_OP_EVENT, 0, err)) ||
	    (rc = check_name("actor", c->actor, CT_MAX_NAME_BYTES, 0, 0, err)))
		return rc;
	int has_after = c->after || c->after_json;
	switch (c->op) {
	case CT_OP_INSERT:
	case CT_OP_UPDATE:
	case CT_OP_SNAPSHOT:
		if (!has_after)
			return ct_error_set(err, CT_EINVAL, "change 'after': required when op is '%s'",
					    ct_op_name(c->op));
		break;
	case CT_OP_DELETE:
		if (has_after)
			return ct_error_set(err, CT_EINVAL, "change 'after': not allowed when op is 'delete'");
		break;
	case CT_OP_RELATION_ADD:
	case CT_OP_RELATION_REMOVE:
		if ((rc = check_name("relation_name", c->relation_name, CT_MAX_NAME_BYTES, 1, 0, err)) ||
		    (rc = check_name("relation_collection", c->relation_collection, CT_MAX_COLLECTION_BYTES,
				     1, 1, err)) ||
		    (rc = check_name("relation_document_id", c->relation_document_id,
				     CT_MAX_DOCUMENT_ID_BYTES, 1, 0, err)))
			return rc;
		break;
	default:
		break;
	}
	if (!!c->parent_collection != !!c->parent_document_id)
		return ct_error_set(err, CT_EINVAL, "change 'parent': give both collection and document_id");
	if ((rc = check_name("parent_collection", c->parent_collection, CT_MAX_COLLECTION_BYTES, 0, 1, err)) ||
	    (rc = check_name("parent_document_id", c->parent_document_id, CT_MAX_DOCUMENT_ID_BYTES, 0, 0, err)))
		return rc;
	if (c->seq < 0)
		return ct_error_set(err, CT_EINVAL, "change 'seq': must not be negative");
	return CT_OK;
}

static size_t text_len(const char *s, long len)
{
	return len > 0 ? (size_t)len : strlen(s);
}

/* A tree for `which` document: a private copy (rules edit it) or a parse. */
static int tree_of(const char *which, const json_t *tree, const char *text, long len, size_t max,
		   json_t **out, ct_error *err)
{
	json_error_t jerr;
	if (tree) {
		if (!json_is_object(tree))
			return ct_error_set(err, CT_EINVAL, "change '%s': must be a JSON object", which);
		if (!(*out = json_deep_copy(tree)))
			return ct_error_set(err, CT_ENOMEM, "change '%s': out of memory", which);
		return CT_OK;
	}
	size_t n = text_len(text, len);
	if (n > max)
		return ct_error_set(err, CT_ELIMIT, "change '%s': %zu bytes exceeds max.document.bytes %zu",
				    which, n, max);
	/* The scan gives the same verdict as the consumer, depth included. */
	int rc = ct_json_scan_object(text, n, CT_DOC_MAX_DEPTH, err);
	if (rc)
		return rc;
	*out = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return ct_error_set(err, CT_EPARSE, "change '%s': %s", which, jerr.text);
	return CT_OK;
}

int ct_emit(ct_producer *p, const ct_change *c, char event_id_out[37], ct_error *err)
{
	json_t *after_t = NULL, *before_t = NULL;
	char *after_s = NULL, *before_s = NULL;
	char event_id[37], ts[32], *key = NULL;
	ct_encoded_docs docs = {0};
	ct_buf b = CT_BUF_INIT;
	int rc;

	if (!p || !c)
		return ct_error_set(err, CT_EINVAL, "emit: NULL argument");
	if ((rc = validate(c, err)))
		goto out;

	size_t max = p->conf->max_document_bytes;
	const ct_track_rule *rule = strcmp(c->collection, CT_CONTEXT_COLLECTION)
					    ? ct_track_rule_find(p->conf, c->collection) : NULL;
	int has_before = c->before || c->before_json;
	if (rule || has_before || c->after) {
		if (c->after || c->after_json) {
			if ((rc = tree_of("after", c->after, c->after_json, c->after_len, max, &after_t, err)) ||
			    (rc = ct_track_apply(rule, after_t, err)))
				goto out;
		}
		if (has_before) {
			if ((rc = tree_of("before", c->before, c->before_json, c->before_len, max, &before_t, err)) ||
			    (rc = ct_track_apply(rule, before_t, err)))
				goto out;
		}
		/* No event for an update that changed nothing we track. */
		if (c->op == CT_OP_UPDATE && after_t && before_t && json_equal(after_t, before_t)) {
			atomic_fetch_add(&p->unchanged, 1);
			goto out;
		}
		if ((after_t && (rc = ct_json_dump_compact(after_t, &after_s, &docs.after_len, err))) ||
		    (before_t && (rc = ct_json_dump_compact(before_t, &before_s, &docs.before_len, err))))
			goto out;
		if (docs.after_len > max || docs.before_len > max) {
			rc = ct_error_set(err, CT_ELIMIT, "change: document exceeds max.document.bytes %zu", max);
			goto out;
		}
		docs.after = after_s;
		docs.before = before_s;
	} else if (c->after_json) {
		docs.after = c->after_json;
		docs.after_len = text_len(c->after_json, c->after_len);
		if (docs.after_len > max) {
			rc = ct_error_set(err, CT_ELIMIT, "change 'after': %zu bytes exceeds max.document.bytes %zu",
					  docs.after_len, max);
			goto out;
		}
		if ((rc = ct_json_scan_object(docs.after, docs.after_len, CT_DOC_MAX_DEPTH, err)))
			goto out;
	}

	if ((rc = ct_uuid7_new(event_id, err)))
		goto out;
	int64_t now_us;
	if (!ct_test_ident_now_us(&now_us)) { /* the real clock unless a test fixed it */
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	}
	if ((rc = ct_time_format_rfc3339_us(now_us, ts)))
		goto out;
	ct_context *ctx = c->context ? c->context : ct_context_top();
	if ((rc = ct_encode_event(&b, p, c, event_id, ts, ctx, &docs))) {
		rc = ct_error_set(err, rc, "emit: out of memory");
		goto out;
	}

	size_t cl = strlen(c->collection), dl = strlen(c->document_id);
	if (!(key = malloc(cl + dl + 2))) {
		rc = ct_error_set(err, CT_ENOMEM, "emit: out of memory");
		goto out;
	}
	memcpy(key, c->collection, cl);
	key[cl] = '/';
	memcpy(key + cl + 1, c->document_id, dl + 1);

	size_t vlen;
	char *val = ct_buf_detach(&b, &vlen);
	if ((rc = ct_producer_send(p, key, cl + dl + 1, val, vlen, err)))
		goto out;
	atomic_fetch_add(&p->emitted, 1);
	if (event_id_out)
		memcpy(event_id_out, event_id, 37);
out:
	if (rc)
		atomic_fetch_add(&p->rejected, 1);
	free(key);
	ct_buf_free(&b);
	free(after_s);
	free(before_s);
	json_decref(after_t);
	json_decref(before_t);
	return rc;
}

int ct_emit_insert(ct_producer *p, const char *collection, const char *document_id,
		   const char *after_json, ct_error *err)
{
	ct_change c = {0};
	c.op = CT_OP_INSERT;
	c.collection = collection;
	c.document_id = document_id;
	c.after_json = after_json;
	return ct_emit(p, &c, NULL, err);
}

int ct_emit_update(ct_producer *p, const char *collection, const char *document_id,
		   const char *after_json, const char *before_json, ct_error *err)
{
	ct_change c = {0};
	c.op = CT_OP_UPDATE;
	c.collection = collection;
	c.document_id = document_id;
	c.after_json = after_json;
	c.before_json = before_json;
	return ct_emit(p, &c, NULL, err);
}

int ct_emit_delete(ct_producer *p, const char *collection, const char *document_id,
		   const char *before_json, ct_error *err)
{
	ct_change c = {0};
	c.op = CT_OP_DELETE;
	c.collection = collection;
	c.document_id = document_id;
	c.before_json = before_json;
	return ct_emit(p, &c, NULL, err);
}
