/*
 * event.c - parsing and validation of change events against the v1 contract
 * (schemas/change-event.v1.schema.json, docs/event-contract.md), and the
 * accessors of the resulting immutable ct_event.
 *
 * Order of checks: size and NUL bytes on the raw text, jansson (syntax,
 * UTF-8, duplicate keys, number ranges), the bounds of ct_limits over the
 * whole tree, then the contract field by field. Bounds come before the
 * contract so that no later step ever sees an unbounded tree.
 *
 * Text first goes through the fast parser (jsonparse.c), which builds the
 * same tree and checks the same bounds in one pass when the text is
 * well-formed and within them; whatever it refuses takes the order above,
 * so every error and its message comes from the path above.
 */
#include "changetrail/event.h"
#include "ct_internal.h"
#include "ct_jsonparse.h"
#include "ct_jsonscan.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most bytes of input ever copied into an error message. */
#define ECHO_MAX 64
/* Room for ECHO_MAX bytes escaped as \xNN, "..." and the NUL. */
#define ECHO_BUF (ECHO_MAX * 4 + 4)

struct ct_event {
	json_t *root;
	const char *event_id, *ts, *source, *collection, *document_id, *label, *actor;
	const char *context_id, *context_parent_id, *parent_collection, *parent_document_id;
	const json_t *context_metadata, *after, *before, *relation;
	ct_op op;
	int64_t ts_us, seq;
};

static const char *const op_names[] = {
	[CT_OP_INSERT] = "insert",
	[CT_OP_UPDATE] = "update",
	[CT_OP_DELETE] = "delete",
	[CT_OP_SNAPSHOT] = "snapshot",
	[CT_OP_EVENT] = "event",
	[CT_OP_RELATION_ADD] = "relation_add",
	[CT_OP_RELATION_REMOVE] = "relation_remove",
	[CT_OP_CONTEXT_BEGIN] = "context_begin",
	[CT_OP_CONTEXT_END] = "context_end",
};

#define OP_LIST "insert, update, delete, snapshot, event, relation_add, relation_remove, " \
	"context_begin, context_end"

const char *ct_op_name(ct_op op)
{
	if ((unsigned)op >= CT_ARRAY_LEN(op_names))
		return NULL;
	return op_names[op];
}

int ct_op_from_name(const char *s, ct_op *out)
{
	if (!s || !out)
		return CT_EINVAL;
	for (size_t i = 0; i < CT_ARRAY_LEN(op_names); i++) {
		if (strcmp(s, op_names[i]) == 0) {
			*out = (ct_op)i;
			return CT_OK;
		}
	}
	return CT_EINVAL;
}

void ct_limits_default(ct_limits *l)
{
	if (!l)
		return;
	l->max_bytes = (size_t)1 << 20;
	l->max_depth = 64;
	l->max_keys = 100000;
	l->max_string_bytes = (size_t)256 << 10;
	l->max_array_items = 100000;
}

static void resolve_limits(const ct_limits *in, ct_limits *l)
{
	ct_limits_default(l);
	if (!in)
		return;
	if (in->max_bytes)
		l->max_bytes = in->max_bytes;
	if (in->max_depth)
		l->max_depth = in->max_depth;
	if (in->max_keys)
		l->max_keys = in->max_keys;
	if (in->max_string_bytes)
		l->max_string_bytes = in->max_string_bytes;
	if (in->max_array_items)
		l->max_array_items = in->max_array_items;
}

/*
 * Copies at most ECHO_MAX bytes of untrusted input for an error message:
 * printable ASCII as is, any other byte as \xNN, so that the message stays
 * one line of ASCII whatever the input (it ends up in a Kafka header).
 */
static const char *echo(char buf[ECHO_BUF], const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n && i < ECHO_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (n > ECHO_MAX) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- jansson's errors ---- */

static int map_json_error(const json_error_t *je, ct_error *err)
{
	char near[ECHO_BUF], what[ECHO_BUF];
	const char *text = je->text;
	const char *np = strstr(text, " near '");
	size_t what_len = np ? (size_t)(np - text) : strlen(text);

	near[0] = '\0';
	if (np) {
		/* jansson quotes the offending token, which is input; its own
		 * words before " near '" are not. */
		const char *tok = np + 7;
		const char *end = strrchr(tok, '\'');
		echo(near, tok, end ? (size_t)(end - tok) : strlen(tok));
	}
	echo(what, text, what_len);

	switch (json_error_code(je)) {
	case json_error_out_of_memory:
		return ct_error_set(err, CT_ENOMEM, "json: out of memory while parsing");
	case json_error_stack_overflow:
		return ct_error_set(err, CT_ELIMIT,
				    "json: nesting deeper than the parser's limit of 2048 levels (line %d, column %d)",
				    je->line, je->column);
	case json_error_numeric_overflow:
		return ct_error_set(err, CT_EPARSE,
				    "json: number out of range (integers must fit in int64, reals in a double) "
				    "near '%s' (line %d, column %d)", near, je->line, je->column);
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return ct_error_set(err, CT_EPARSE, "json: \\u0000 is not allowed in strings or keys (line %d, column %d)",
				    je->line, je->column);
	case json_error_invalid_utf8:
		return ct_error_set(err, CT_EPARSE, "json: invalid UTF-8: %s (line %d, column %d)", what,
				    je->line, je->column);
	default:
		if (np)
			return ct_error_set(err, CT_EPARSE, "json: %s near '%s' (line %d, column %d)", what, near,
					    je->line, je->column);
		return ct_error_set(err, CT_EPARSE, "json: %s (line %d, column %d)", what, je->line, je->column);
	}
}

/* ---- bounds over the whole tree ---- */

typedef struct frame {
	json_t *v;
	void *iter;  /* objects: next member, NULL at the end */
	size_t idx;  /* arrays: next index */
} frame;

typedef struct walk {
	const ct_limits *l;
	int from_tree;
	frame *stack;
	size_t depth, cap;
	size_t keys;
	const char *field; /* the top-level member being walked, for messages */
	size_t field_len;
} walk;

/* " (in field 'x')" or "" when the problem is at the top level itself. */
static const char *where(const walk *w, char buf[ECHO_BUF + 32])
{
	char e[ECHO_BUF];
	if (!w->field) {
		buf[0] = '\0';
		return buf;
	}
	snprintf(buf, ECHO_BUF + 32, " (in field '%s')", echo(e, w->field, w->field_len));
	return buf;
}

static int push(walk *w, json_t *v, ct_error *err)
{
	char at[ECHO_BUF + 32];
	/* depth counts containers from the root (1): the bound is checked before
	 * the frame exists, so the stack never outgrows max_depth. */
	if (w->depth + 1 > w->l->max_depth)
		return ct_error_set(err, CT_ELIMIT, "limit: nesting deeper than %zu levels%s", w->l->max_depth,
				    where(w, at));
	if (w->depth == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 16;
		frame *ns = realloc(w->stack, ncap * sizeof(*ns));
		if (!ns)
			return ct_error_set(err, CT_ENOMEM, "limit: out of memory");
		w->stack = ns;
		w->cap = ncap;
	}
	frame *f = &w->stack[w->depth++];
	f->v = v;
	f->iter = json_is_object(v) ? json_object_iter(v) : NULL;
	f->idx = 0;
	return CT_OK;
}

static int visit(walk *w, json_t *v, ct_error *err)
{
	char at[ECHO_BUF + 32];
	size_t n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		n = json_object_size(v);
		if (n > w->l->max_keys - w->keys)
			return ct_error_set(err, CT_ELIMIT, "limit: more than %zu object members in the event%s",
					    w->l->max_keys, where(w, at));
		w->keys += n;
		return push(w, v, err);
	case JSON_ARRAY:
		n = json_array_size(v);
		if (n > w->l->max_array_items)
			return ct_error_set(err, CT_ELIMIT, "limit: array of %zu items exceeds limit %zu%s", n,
					    w->l->max_array_items, where(w, at));
		return push(w, v, err);
	case JSON_STRING:
		n = json_string_length(v);
		if (n > w->l->max_string_bytes)
			return ct_error_set(err, CT_ELIMIT, "limit: string of %zu bytes exceeds limit %zu%s", n,
					    w->l->max_string_bytes, where(w, at));
		/* jansson's parser guarantees these; a built tree may break them
		 * (json_stringn_nocheck, embedded NUL), and then the consumer's
		 * parse of the produced text would fail. */
		if (w->from_tree && !ct_utf8_valid(json_string_value(v), n))
			return ct_error_set(err, CT_EPARSE, "json: string is not valid UTF-8 or contains NUL%s",
					    where(w, at));
		return CT_OK;
	case JSON_REAL:
		if (w->from_tree && !isfinite(json_real_value(v)))
			return ct_error_set(err, CT_EPARSE, "json: real is not finite%s", where(w, at));
		return CT_OK;
	default:
		return CT_OK;
	}
}

/* Next child of the innermost container into *child, popping finished ones;
 * *child NULL once the whole tree is done. */
static int next_child(walk *w, json_t **child, ct_error *err)
{
	char at[ECHO_BUF + 32];
	*child = NULL;
	while (w->depth) {
		frame *f = &w->stack[w->depth - 1];
		if (json_is_object(f->v)) {
			if (!f->iter) {
				w->depth--;
				continue;
			}
			const char *key = json_object_iter_key(f->iter);
			size_t klen = json_object_iter_key_len(f->iter);
			*child = json_object_iter_value(f->iter);
			f->iter = json_object_iter_next(f->v, f->iter);
			if (w->depth == 1) {
				w->field = key;
				w->field_len = klen;
			}
			if (klen > w->l->max_string_bytes)
				return ct_error_set(err, CT_ELIMIT, "limit: object key of %zu bytes exceeds limit %zu%s",
						    klen, w->l->max_string_bytes, where(w, at));
			if (w->from_tree && !ct_utf8_valid(key, klen))
				return ct_error_set(err, CT_EPARSE,
						    "json: object key is not valid UTF-8 or contains NUL%s", where(w, at));
			return CT_OK;
		}
		if (f->idx >= json_array_size(f->v)) {
			w->depth--;
			continue;
		}
		*child = json_array_get(f->v, f->idx++);
		return CT_OK;
	}
	return CT_OK;
}

/* Iterative, so that a tree of any depth (a built one is not bounded by the
 * parser) costs heap, not stack. */
static int check_limits(json_t *root, const ct_limits *l, int from_tree, ct_error *err)
{
	walk w = {.l = l, .from_tree = from_tree};
	json_t *v = root;
	int rc;

	do {
		rc = visit(&w, v, err);
		if (rc)
			goto out;
		rc = next_child(&w, &v, err);
		if (rc)
			goto out;
	} while (v);
out:
	free(w.stack);
	return rc;
}

/* ---- the contract ---- */

enum {
	STR_NO_SLASH = 1, /* the Kafka key is "<collection>/<document_id>" */
};

/* Optional or required string member `key` of `obj`, 1..max_bytes bytes. */
static int get_string(const json_t *obj, const char *key, const char *path, int required, size_t max_bytes,
		      int flags, const char **out, ct_error *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v) {
		if (required)
			return ct_error_set(err, CT_ESCHEMA, "field '%s': required", path);
		return CT_OK;
	}
	if (!json_is_string(v))
		return ct_error_set(err, CT_ESCHEMA, "field '%s': must be a string", path);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n > max_bytes)
		return ct_error_set(err, CT_ESCHEMA, "field '%s': must be 1 to %zu bytes long (is %zu)", path,
				    max_bytes, n);
	if (memchr(s, '\0', n))
		return ct_error_set(err, CT_ESCHEMA, "field '%s': must not contain NUL", path);
	if ((flags & STR_NO_SLASH) && memchr(s, '/', n))
		return ct_error_set(err, CT_ESCHEMA,
				    "field '%s': must not contain '/' (it ends the collection in the Kafka key)",
				    path);
	*out = s;
	return CT_OK;
}

/* A UUID member: canonical lowercase; version 7 when v7, else any 1..8. */
static int get_uuid(const json_t *obj, const char *key, const char *path, int required, int v7,
		    const char **out, ct_error *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v) {
		if (required)
			return ct_error_set(err, CT_ESCHEMA, "field '%s': required", path);
		return CT_OK;
	}
	if (!json_is_string(v))
		return ct_error_set(err, CT_ESCHEMA, "field '%s': must be a string", path);
	const char *s = json_string_value(v);
	if (json_string_length(v) != 36 || !ct_uuid_valid(s, v7 ? 7 : 0))
		return ct_error_set(err, CT_ESCHEMA, "field '%s': not a %s (lowercase 8-4-4-4-12 hex%s, variant 10xx)",
				    path, v7 ? "UUIDv7" : "UUID", v7 ? ", version 7" : ", version 1-8");
	*out = s;
	return CT_OK;
}

static int get_object(const json_t *obj, const char *key, const char *path, const json_t **out,
		      ct_error *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v)
		return CT_OK;
	if (!json_is_object(v))
		return ct_error_set(err, CT_ESCHEMA, "field '%s': must be an object", path);
	*out = v;
	return CT_OK;
}

/* Refuses members of `obj` not in `known` (NULL-terminated). */
static int only_known(const json_t *obj, const char *prefix, const char *const *known, ct_error *err)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		size_t i;
		for (i = 0; known[i]; i++) /* the first byte rules most out without a call */
			if (key[0] == known[i][0] && strcmp(key, known[i]) == 0)
				break;
		if (!known[i]) {
			char e[ECHO_BUF];
			return ct_error_set(err, CT_ESCHEMA, "field '%s%s': not allowed (unknown property)", prefix,
					    echo(e, key, strlen(key)));
		}
	}
	return CT_OK;
}

static int check_context(const json_t *root, ct_event *ev, ct_error *err)
{
	static const char *const known[] = {"id", "parent_id", "metadata", NULL};
	const json_t *ctx;
	int rc = get_object(root, "context", "context", &ctx, err);
	if (rc || !ctx)
		goto out;
	rc = only_known(ctx, "context.", known, err);
	if (rc)
		goto out;
	rc = get_uuid(ctx, "id", "context.id", 1, 0, &ev->context_id, err);
	if (rc)
		goto out;
	rc = get_uuid(ctx, "parent_id", "context.parent_id", 0, 0, &ev->context_parent_id, err);
	if (rc)
		goto out;
	rc = get_object(ctx, "metadata", "context.metadata", &ev->context_metadata, err);
out:
	return rc;
}

static int check_parent(const json_t *root, ct_event *ev, ct_error *err)
{
	static const char *const known[] = {"collection", "document_id", NULL};
	const json_t *p;
	int rc = get_object(root, "parent", "parent", &p, err);
	if (rc || !p)
		goto out;
	rc = only_known(p, "parent.", known, err);
	if (rc)
		goto out;
	rc = get_string(p, "collection", "parent.collection", 1, CT_EVENT_MAX_NAME_BYTES, STR_NO_SLASH,
			&ev->parent_collection, err);
	if (rc)
		goto out;
	rc = get_string(p, "document_id", "parent.document_id", 1, CT_EVENT_MAX_ID_BYTES, 0,
			&ev->parent_document_id, err);
out:
	return rc;
}

static int check_relation(const json_t *root, ct_event *ev, ct_error *err)
{
	static const char *const known[] = {"name", "collection", "document_id", NULL};
	const json_t *r;
	const char *s;
	int rc = get_object(root, "relation", "relation", &r, err);
	if (rc || !r)
		goto out;
	rc = only_known(r, "relation.", known, err);
	if (rc)
		goto out;
	rc = get_string(r, "name", "relation.name", 1, CT_EVENT_MAX_NAME_BYTES, 0, &s, err);
	if (rc)
		goto out;
	rc = get_string(r, "collection", "relation.collection", 1, CT_EVENT_MAX_NAME_BYTES, STR_NO_SLASH, &s,
			err);
	if (rc)
		goto out;
	rc = get_string(r, "document_id", "relation.document_id", 1, CT_EVENT_MAX_ID_BYTES, 0, &s, err);
	if (rc)
		goto out;
	ev->relation = r;
out:
	return rc;
}

static int check_seq(const json_t *root, ct_event *ev, ct_error *err)
{
	json_t *v = json_object_get(root, "seq");
	ev->seq = -1;
	if (!v)
		return CT_OK;
	/* JSON Schema's "integer" is any number with a zero fraction, 3.0
	 * included; accepting the same keeps the C and schema checks equal. */
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= CT_EVENT_MAX_SEQ) {
		ev->seq = json_integer_value(v);
		return CT_OK;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		/* The range check comes first so the cast is defined; it avoids
		 * floor() and with it a libm dependency. */
		if (d >= 0 && d <= (double)CT_EVENT_MAX_SEQ && (double)(int64_t)d == d) {
			ev->seq = (int64_t)d;
			return CT_OK;
		}
	}
	return ct_error_set(err, CT_ESCHEMA, "field 'seq': must be an integer from 0 to %" PRId64,
			    CT_EVENT_MAX_SEQ);
}

static int check_conditions(const ct_event *ev, ct_error *err)
{
	const char *op = op_names[ev->op];
	switch (ev->op) {
	case CT_OP_INSERT:
	case CT_OP_UPDATE:
	case CT_OP_SNAPSHOT:
		if (!ev->after)
			return ct_error_set(err, CT_ESCHEMA, "field 'after': required when op is '%s'", op);
		break;
	case CT_OP_DELETE:
		if (ev->after)
			return ct_error_set(err, CT_ESCHEMA, "field 'after': not allowed when op is '%s'", op);
		break;
	case CT_OP_EVENT:
		if (!ev->label)
			return ct_error_set(err, CT_ESCHEMA, "field 'label': required when op is '%s'", op);
		break;
	case CT_OP_RELATION_ADD:
	case CT_OP_RELATION_REMOVE:
		if (!ev->relation)
			return ct_error_set(err, CT_ESCHEMA, "field 'relation': required when op is '%s'", op);
		break;
	case CT_OP_CONTEXT_BEGIN:
	case CT_OP_CONTEXT_END:
		if (!ev->context_id)
			return ct_error_set(err, CT_ESCHEMA, "field 'context': required when op is '%s'", op);
		break;
	}
	return CT_OK;
}

static int check_contract(const json_t *root, ct_event *ev, ct_error *err)
{
	static const char *const known[] = {"schema", "event_id", "ts", "source", "collection", "document_id",
					    "op", "label", "actor", "context", "after", "before", "parent",
					    "relation", "seq", NULL};
	char canon[32];
	json_t *v;
	int rc = only_known(root, "", known, err);
	if (rc)
		goto out;

	v = json_object_get(root, "schema");
	if (!v) {
		rc = ct_error_set(err, CT_ESCHEMA, "field 'schema': required");
		goto out;
	}
	if (!json_is_string(v) || strcmp(json_string_value(v), CT_EVENT_SCHEMA_V1) != 0 ||
	    json_string_length(v) != strlen(CT_EVENT_SCHEMA_V1)) {
		rc = ct_error_set(err, CT_ESCHEMA, "field 'schema': must be \"" CT_EVENT_SCHEMA_V1 "\"");
		goto out;
	}
	rc = get_uuid(root, "event_id", "event_id", 1, 1, &ev->event_id, err);
	if (rc)
		goto out;

	v = json_object_get(root, "ts");
	if (!v) {
		rc = ct_error_set(err, CT_ESCHEMA, "field 'ts': required");
		goto out;
	}
	/* Canonical means formatting the parsed value gives the same text:
	 * one spelling per instant keeps records byte-for-byte deterministic. */
	if (!json_is_string(v) || json_string_length(v) != 27 ||
	    ct_time_parse_rfc3339(json_string_value(v), &ev->ts_us) != CT_OK ||
	    ct_time_format_rfc3339_us(ev->ts_us, canon) != CT_OK || strcmp(canon, json_string_value(v)) != 0) {
		rc = ct_error_set(err, CT_ESCHEMA,
				  "field 'ts': not a canonical RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SS.ffffffZ, a real date)");
		goto out;
	}
	ev->ts = json_string_value(v);

	rc = get_string(root, "source", "source", 1, CT_EVENT_MAX_NAME_BYTES, 0, &ev->source, err);
	if (rc)
		goto out;
	rc = get_string(root, "collection", "collection", 1, CT_EVENT_MAX_NAME_BYTES, STR_NO_SLASH,
			&ev->collection, err);
	if (rc)
		goto out;
	rc = get_string(root, "document_id", "document_id", 1, CT_EVENT_MAX_ID_BYTES, 0, &ev->document_id, err);
	if (rc)
		goto out;

	v = json_object_get(root, "op");
	if (!v) {
		rc = ct_error_set(err, CT_ESCHEMA, "field 'op': required");
		goto out;
	}
	if (!json_is_string(v) || ct_op_from_name(json_string_value(v), &ev->op) != CT_OK ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		rc = ct_error_set(err, CT_ESCHEMA, "field 'op': must be one of " OP_LIST);
		goto out;
	}

	rc = get_string(root, "label", "label", 0, CT_EVENT_MAX_NAME_BYTES, 0, &ev->label, err);
	if (rc)
		goto out;
	rc = get_string(root, "actor", "actor", 0, CT_EVENT_MAX_ID_BYTES, 0, &ev->actor, err);
	if (rc)
		goto out;
	rc = check_context(root, ev, err);
	if (rc)
		goto out;
	rc = get_object(root, "after", "after", &ev->after, err);
	if (rc)
		goto out;
	rc = get_object(root, "before", "before", &ev->before, err);
	if (rc)
		goto out;
	rc = check_parent(root, ev, err);
	if (rc)
		goto out;
	rc = check_relation(root, ev, err);
	if (rc)
		goto out;
	rc = check_seq(root, ev, err);
	if (rc)
		goto out;
	rc = check_conditions(ev, err);
out:
	return rc;
}

/* How make_event gets its tree. */
enum { FROM_JANSSON, FROM_TREE, FROM_FAST };

/* Shared tail of both entry points; takes a reference to root on success. */
static int make_event(json_t *root, const ct_limits *l, int from, ct_event **out, ct_error *err)
{
	ct_event *ev = NULL;
	int rc = CT_OK;

	if (!json_is_object(root)) {
		rc = ct_error_set(err, CT_ESCHEMA, "event: must be a JSON object");
		goto out;
	}
	/* the fast parser checked the bounds as it built the tree */
	if (from != FROM_FAST)
		rc = check_limits(root, l, from == FROM_TREE, err);
	if (rc)
		goto out;
	ev = calloc(1, sizeof(*ev));
	if (!ev) {
		rc = ct_error_set(err, CT_ENOMEM, "event: out of memory");
		goto out;
	}
	rc = check_contract(root, ev, err);
	if (rc)
		goto out;
	ev->root = json_incref(root);
	*out = ev;
	ev = NULL;
out:
	free(ev);
	return rc;
}

int ct_event_parse(const char *buf, size_t len, const ct_limits *limits, ct_event **out, ct_error *err)
{
	ct_limits l;
	json_error_t je;
	json_t *root = NULL;
	const char *nul;
	int rc;

	if (out)
		*out = NULL;
	if (!out || (!buf && len)) {
		rc = ct_error_set(err, CT_EINVAL, "event: NULL argument");
		goto out;
	}
	if (!buf)
		buf = "";
	resolve_limits(limits, &l);
	if (len > l.max_bytes) {
		rc = ct_error_set(err, CT_ELIMIT, "input: %zu bytes exceeds limit %zu", len, l.max_bytes);
		goto out;
	}
	/* Well-formed events within bounds take the fast path; anything it
	 * refuses goes through jansson below, whose verdict and words stand. */
	root = ct_json_parse_fast(buf, len, &l);
	if (root) {
		rc = make_event(root, &l, FROM_FAST, out, err);
		goto out;
	}
	/* JSON text never holds a raw NUL, but jansson 2.14 skips one after a
	 * number or literal instead of failing. */
	nul = memchr(buf, '\0', len);
	if (nul) {
		rc = ct_error_set(err, CT_EPARSE, "json: NUL byte at offset %zu", (size_t)(nul - buf));
		goto out;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		rc = map_json_error(&je, err);
		goto out;
	}
	rc = make_event(root, &l, FROM_JANSSON, out, err);
out:
	json_decref(root);
	return rc;
}

int ct_event_from_json(json_t *root, const ct_limits *limits, ct_event **out, ct_error *err)
{
	ct_limits l;
	int rc;

	if (out)
		*out = NULL;
	if (!root || !out) {
		rc = ct_error_set(err, CT_EINVAL, "event: NULL argument");
		goto out;
	}
	resolve_limits(limits, &l);
	rc = make_event(root, &l, FROM_TREE, out, err);
out:
	return rc;
}

void ct_event_free(ct_event *ev)
{
	if (!ev)
		return;
	json_decref(ev->root);
	free(ev);
}

#define ACCESSOR(type, name, field, none) \
	type name(const ct_event *ev) { return ev ? ev->field : (none); }

ACCESSOR(const char *, ct_event_id, event_id, NULL)
ACCESSOR(const char *, ct_event_ts, ts, NULL)
ACCESSOR(int64_t, ct_event_ts_us, ts_us, INT64_MIN)
ACCESSOR(const char *, ct_event_source, source, NULL)
ACCESSOR(const char *, ct_event_collection, collection, NULL)
ACCESSOR(const char *, ct_event_document_id, document_id, NULL)
ACCESSOR(ct_op, ct_event_op, op, CT_OP_INSERT)
ACCESSOR(const char *, ct_event_label, label, NULL)
ACCESSOR(const char *, ct_event_actor, actor, NULL)
ACCESSOR(const char *, ct_event_context_id, context_id, NULL)
ACCESSOR(const char *, ct_event_context_parent_id, context_parent_id, NULL)
ACCESSOR(const json_t *, ct_event_context_metadata, context_metadata, NULL)
ACCESSOR(const json_t *, ct_event_after, after, NULL)
ACCESSOR(const json_t *, ct_event_before, before, NULL)
ACCESSOR(const char *, ct_event_parent_collection, parent_collection, NULL)
ACCESSOR(const char *, ct_event_parent_document_id, parent_document_id, NULL)
ACCESSOR(const json_t *, ct_event_relation, relation, NULL)
ACCESSOR(int64_t, ct_event_seq, seq, -1)
ACCESSOR(const json_t *, ct_event_json, root, NULL)
