/*
 * context.c - contexts (changesets): a per-thread stack of open contexts, a
 * root context shared by every nested level and by the threads it was
 * attached to, accumulated metadata, and the begin/end marker events.
 */
#include "producer_internal.h"

#include "changetrail/canonical.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Innermost last; every entry holds a reference. */
static _Thread_local ct_context *stack[CT_CONTEXT_MAX_NESTING];
static _Thread_local int depth;

const char *ct_context_id(const ct_context *ctx)
{
	return ctx ? ctx->id : NULL;
}

ct_context *ct_context_ref(ct_context *ctx)
{
	if (ctx)
		atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

static void release(ct_context *ctx, int *marker_rc, ct_error *err)
{
	if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	/* The last holder let go: the changeset is complete. Its reference
	 * count is back to 0, so take one for the marker's duration. */
	if (ctx->begun) {
		atomic_store(&ctx->refs, 1);
		int rc = ct_context_emit_marker(ctx, CT_OP_CONTEXT_END, err);
		if (marker_rc)
			*marker_rc = rc;
		atomic_store(&ctx->refs, 0);
	}
	pthread_mutex_destroy(&ctx->lock);
	json_decref(ctx->metadata);
	free(ctx->metadata_json);
	free(ctx->actor);
	free(ctx);
}

void ct_context_unref(ct_context *ctx)
{
	release(ctx, NULL, NULL);
}

ct_context *ct_context_top(void)
{
	return depth ? stack[depth - 1] : NULL;
}

ct_context *ct_context_current(void)
{
	return depth ? ct_context_ref(stack[depth - 1]) : NULL;
}

/* Re-derives the cached text and actor after metadata changed. Locked. */
static int refresh(ct_context *ctx)
{
	char *text = NULL;
	if (ct_json_dump_compact(ctx->metadata, &text, NULL, NULL))
		return CT_ENOMEM;
	free(ctx->metadata_json);
	ctx->metadata_json = text;
	const char *a = json_string_value(json_object_get(ctx->metadata, "user"));
	if (!a)
		a = json_string_value(json_object_get(ctx->metadata, "actor"));
	free(ctx->actor);
	ctx->actor = a && strlen(a) <= CT_MAX_NAME_BYTES ? strdup(a) : NULL;
	return CT_OK;
}

void ct_context_snapshot(ct_context *ctx, ct_buf *b, char *actor, size_t actor_size)
{
	pthread_mutex_lock(&ctx->lock);
	ct_buf_puts(b, ctx->metadata_json ? ctx->metadata_json : "{}");
	if (ctx->actor && actor_size)
		snprintf(actor, actor_size, "%s", ctx->actor);
	pthread_mutex_unlock(&ctx->lock);
}

int ct_context_emit_marker(ct_context *ctx, ct_op op, ct_error *err)
{
	ct_change c = {0};
	c.op = op;
	c.collection = CT_CONTEXT_COLLECTION;
	c.document_id = ctx->id;
	c.context = ctx;
	return ct_emit(ctx->producer, &c, NULL, err);
}

static json_t *parse_metadata(const char *metadata_json, ct_error *err)
{
	json_error_t jerr;
	json_t *m;
	if (!metadata_json)
		return json_object();
	m = json_loads(metadata_json, JSON_REJECT_DUPLICATES, &jerr);
	if (!m) {
		ct_error_set(err, CT_EPARSE, "context metadata: %s", jerr.text);
		return NULL;
	}
	if (!json_is_object(m)) {
		json_decref(m);
		ct_error_set(err, CT_EPARSE, "context metadata: must be a JSON object");
		return NULL;
	}
	return m;
}

int ct_context_enter(ct_producer *p, const char *metadata_json, ct_error *err)
{
	json_t *m = NULL;
	ct_context *ctx = NULL;
	int rc = CT_OK;

	if (!p)
		return ct_error_set(err, CT_EINVAL, "context: NULL producer");
	if (depth >= CT_CONTEXT_MAX_NESTING)
		return ct_error_set(err, CT_ELIMIT, "context: nested deeper than %d", CT_CONTEXT_MAX_NESTING);
	if (!(m = parse_metadata(metadata_json, err)))
		return err ? err->code : CT_EPARSE;

	if (depth) {
		/* Nested: accumulate into the root everyone shares. */
		ctx = stack[depth - 1];
		pthread_mutex_lock(&ctx->lock);
		rc = json_object_update(ctx->metadata, m) ? CT_ENOMEM : refresh(ctx);
		pthread_mutex_unlock(&ctx->lock);
		if (rc) {
			rc = ct_error_set(err, rc, "context: out of memory");
			goto out;
		}
		stack[depth] = ct_context_ref(ctx);
		depth++;
		goto out;
	}

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		rc = ct_error_set(err, CT_ENOMEM, "context: out of memory");
		goto out;
	}
	atomic_init(&ctx->refs, 1);
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->producer = p;
	ctx->metadata = m;
	m = NULL;
	if ((rc = ct_uuid7_new(ctx->id, err)) || (rc = refresh(ctx))) {
		if (rc == CT_ENOMEM)
			ct_error_set(err, rc, "context: out of memory");
		ct_context_unref(ctx);
		goto out;
	}
	stack[depth] = ctx;
	depth++;
	rc = ct_context_emit_marker(ctx, CT_OP_CONTEXT_BEGIN, err);
	ctx->begun = rc == CT_OK;
	if (rc) {
		/* Not entered: the caller will not call exit. */
		depth--;
		ct_context_unref(ctx);
	}
out:
	json_decref(m);
	return rc;
}

/* A context id as the event contract has it: 8-4-4-4-12 lowercase hex. */
static bool is_uuid_text(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

int ct_context_join(ct_producer *p, const char *context_id, const char *metadata_json, ct_error *err)
{
	json_t *m = NULL;
	ct_context *ctx = NULL;

	if (!p || !is_uuid_text(context_id))
		return ct_error_set(err, CT_EINVAL, "context join: %s", p ? "the id is not a lowercase UUID"
									   : "NULL producer");
	if (depth >= CT_CONTEXT_MAX_NESTING)
		return ct_error_set(err, CT_ELIMIT, "context: nested deeper than %d", CT_CONTEXT_MAX_NESTING);
	if (!(m = parse_metadata(metadata_json, err)))
		return err ? err->code : CT_EPARSE;
	if (!(ctx = calloc(1, sizeof(*ctx)))) {
		json_decref(m);
		return ct_error_set(err, CT_ENOMEM, "context: out of memory");
	}
	atomic_init(&ctx->refs, 1);
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->producer = p;
	ctx->metadata = m;
	memcpy(ctx->id, context_id, sizeof(ctx->id));
	/* begun stays 0: no begin marker now and no end marker at the last
	 * release; the changeset is the one that began elsewhere. */
	if (refresh(ctx)) {
		ct_context_unref(ctx);
		return ct_error_set(err, CT_ENOMEM, "context: out of memory");
	}
	stack[depth] = ctx;
	depth++;
	return CT_OK;
}

int ct_context_attach(ct_context *ctx, ct_error *err)
{
	if (!ctx)
		return ct_error_set(err, CT_EINVAL, "context: NULL context");
	if (depth >= CT_CONTEXT_MAX_NESTING)
		return ct_error_set(err, CT_ELIMIT, "context: nested deeper than %d", CT_CONTEXT_MAX_NESTING);
	stack[depth] = ct_context_ref(ctx);
	depth++;
	return CT_OK;
}

int ct_context_exit(ct_producer *p, ct_error *err)
{
	int rc = CT_OK;
	if (!depth)
		return ct_error_set(err, CT_EINVAL, "context: exit without an open context");
	ct_context *ctx = stack[--depth];
	stack[depth] = NULL;
	release(ctx, &rc, err);
	return rc;
}
