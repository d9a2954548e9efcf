/*
 * patch.c - ct_patch() and ct_revert(): apply a dictdiffer-form diff to a
 * document, or undo it, on a copy of the document.
 *
 * Unlike dictdiffer.patch(), which overwrites blindly (and clamps list
 * inserts), every step checks that the document is in the state the diff
 * was computed from, so an out-of-band edit or a diff applied to the wrong
 * version is reported as CT_ECONFLICT instead of producing a silently wrong
 * history. Revert applies the inverse entries in reverse order (dictdiffer's
 * swap() keeps the order and relies on list.insert clamping).
 */
#include "changetrail/diff.h"
#include "ct_diffutil.h"
#include "ct_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct pctx {
	json_t *doc;          /* the copy being changed */
	ct_error *err;
	const char *who;      /* "patch" or "revert", for messages */
	size_t index;         /* entry being applied */
	const ctd_entry *e;
} pctx;

static int conflict(pctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int conflict(pctx *p, const char *fmt, ...)
{
	char why[200], path[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ctd_path_text(p->e->path, path, sizeof(path));
	return ct_error_set(p->err, CT_ECONFLICT, "%s: entry %zu (%s at path %s): %s", p->who, p->index,
			    p->e->action_name, path, why);
}

static int limit_or_nomem(pctx *p, int rc)
{
	if (rc == CT_ELIMIT)
		return ct_error_set(p->err, rc, "%s: entry %zu: nesting deeper than %zu", p->who, p->index,
				    CT_DIFF_MAX_DEPTH);
	return ct_error_set(p->err, rc, "%s: out of memory", p->who);
}

/* dictdiffer indexes a list with int(key); we accept plain decimal digits. */
static int parse_index(const char *s, size_t n, size_t *out)
{
	size_t v = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (SIZE_MAX - 9) / 10)
			return -1;
		v = v * 10 + (size_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* The index an array component designates, or -1 when it is not one. */
static int comp_index(const ctd_comp *c, size_t *index)
{
	if (!c->key) {
		*index = c->index;
		return 0;
	}
	return parse_index(c->key, c->len, index);
}

/* Follows the first `n` components of the entry's path from the root. */
static int walk(pctx *p, size_t n, json_t **node)
{
	ctd_path_iter it;
	ctd_comp c;
	json_t *cur = p->doc;

	ctd_path_begin(&it, p->e->path);
	for (size_t i = 0; i < n && ctd_path_next(&it, &c); i++) {
		json_t *next = NULL;
		size_t idx;
		if (json_is_object(cur)) {
			if (!c.key)
				return conflict(p, "component %zu is an index but the node is an object", i);
			next = CTD_OBJ_GET(cur, c.key, c.len);
			if (!next)
				return conflict(p, "component %zu: no such key", i);
		} else if (json_is_array(cur)) {
			if (comp_index(&c, &idx) != 0)
				return conflict(p, "component %zu is not an index but the node is an array", i);
			if (idx >= json_array_size(cur))
				return conflict(p, "component %zu: index %zu past the end of an array of %zu", i,
						idx, json_array_size(cur));
			next = json_array_get(cur, idx);
		} else {
			return conflict(p, "component %zu: the node is not an object or array", i);
		}
		cur = next;
	}
	*node = cur;
	return CT_OK;
}

/* Checks that `have` is what the diff says it is; CT_ECONFLICT otherwise. */
static int expect(pctx *p, const json_t *have, const json_t *want, size_t depth, const char *what)
{
	int r = ctd_equivalent(have, want, depth);
	if (r < 0)
		return limit_or_nomem(p, r);
	if (!r)
		return conflict(p, "%s differs from the document", what);
	return CT_OK;
}

/* Replaces the value at the path, which must be `want` (named `what`). */
static int apply_change(pctx *p, const json_t *want, const json_t *set, const char *what)
{
	size_t n = ctd_path_count(p->e->path);
	json_t *parent, *copy = NULL, *cur;
	ctd_path_iter it;
	ctd_comp c = {NULL, 0, 0, 0};
	size_t idx = 0;
	int rc;

	if (n == 0) {
		if ((rc = expect(p, p->doc, want, 0, what)) != CT_OK)
			return rc;
		if ((rc = ctd_copy(set, 0, &copy)) != CT_OK)
			return limit_or_nomem(p, rc);
		json_decref(p->doc);
		p->doc = copy;
		return CT_OK;
	}
	if ((rc = walk(p, n - 1, &parent)) != CT_OK)
		return rc;
	/* The last component names the value inside `parent`. */
	ctd_path_begin(&it, p->e->path);
	while (ctd_path_next(&it, &c))
		;
	if (json_is_object(parent)) {
		if (!c.key)
			return conflict(p, "last component is an index but the node is an object");
		if (!(cur = CTD_OBJ_GET(parent, c.key, c.len)))
			return conflict(p, "no such key");
	} else if (json_is_array(parent)) {
		if (comp_index(&c, &idx) != 0)
			return conflict(p, "last component is not an index but the node is an array");
		if (idx >= json_array_size(parent))
			return conflict(p, "index %zu past the end of an array of %zu", idx, json_array_size(parent));
		cur = json_array_get(parent, idx);
	} else {
		return conflict(p, "parent is not an object or array");
	}
	if ((rc = expect(p, cur, want, n, what)) != CT_OK)
		return rc;
	if ((rc = ctd_copy(set, n, &copy)) != CT_OK)
		return limit_or_nomem(p, rc);
	if (json_is_object(parent) ? CTD_OBJ_SET_NEW(parent, c.key, c.len, copy)
				   : json_array_set_new(parent, idx, copy))
		return limit_or_nomem(p, CT_ENOMEM);
	return CT_OK;
}

/* Adds (add != 0) or removes the items of the entry, in order or reversed. */
static int apply_items(pctx *p, int add, int reversed)
{
	size_t n = ctd_path_count(p->e->path), count = json_array_size(p->e->data);
	json_t *node;
	int rc;

	if ((rc = walk(p, n, &node)) != CT_OK)
		return rc;
	if (!json_is_object(node) && !json_is_array(node))
		return conflict(p, "the node is not an object or array");
	for (size_t j = 0; j < count; j++) {
		const json_t *item = json_array_get(p->e->data, reversed ? count - 1 - j : j);
		const json_t *key = json_array_get(item, 0), *val = json_array_get(item, 1);
		json_t *copy = NULL, *cur;
		if (json_is_object(node)) {
			const char *k = json_string_value(key);
			size_t klen = json_string_length(key);
			if (!k)
				return conflict(p, "item %zu has an index but the node is an object", j);
			cur = CTD_OBJ_GET(node, k, klen);
			if (add) {
				if (cur)
					return conflict(p, "item %zu: key already present", j);
				if ((rc = ctd_copy(val, n + 1, &copy)) != CT_OK)
					return limit_or_nomem(p, rc);
				if (CTD_OBJ_SET_NEW(node, k, klen, copy))
					return limit_or_nomem(p, CT_ENOMEM);
			} else {
				if (!cur)
					return conflict(p, "item %zu: no such key", j);
				if ((rc = expect(p, cur, val, n + 1, "removed value")) != CT_OK)
					return rc;
				CTD_OBJ_DEL(node, k, klen);
			}
		} else {
			size_t size = json_array_size(node), idx;
			if (!json_is_integer(key))
				return conflict(p, "item %zu has a key but the node is an array", j);
			idx = (size_t)json_integer_value(key);
			if (add) {
				if (idx > size)
					return conflict(p, "item %zu: insert at %zu past the end of an array of %zu", j,
							idx, size);
				if ((rc = ctd_copy(val, n + 1, &copy)) != CT_OK)
					return limit_or_nomem(p, rc);
				if (json_array_insert_new(node, idx, copy))
					return limit_or_nomem(p, CT_ENOMEM);
			} else {
				if (idx >= size)
					return conflict(p, "item %zu: index %zu past the end of an array of %zu", j, idx,
							size);
				if ((rc = expect(p, json_array_get(node, idx), val, n + 1, "removed value")) != CT_OK)
					return rc;
				json_array_remove(node, idx);
			}
		}
	}
	return CT_OK;
}

static int apply(const json_t *diff, const json_t *doc, json_t **out, ct_error *err, int reverse)
{
	const char *who = reverse ? "revert" : "patch";
	pctx p = {NULL, err, who, 0, NULL};
	ctd_entry e;
	int rc;

	if (out)
		*out = NULL;
	if (!diff || !doc || !out)
		return ct_error_set(err, CT_EINVAL, "%s: NULL argument", who);
	/* Validate everything first: a malformed diff is the caller's bug
	 * (CT_EINVAL), not a conflict discovered half-way. */
	if ((rc = ctd_check_diff(diff, who, err)) != CT_OK)
		return rc;
	if ((rc = ctd_copy(doc, 0, &p.doc)) != CT_OK) {
		if (rc == CT_ELIMIT)
			return ct_error_set(err, rc, "%s: document nested deeper than %zu", who, CT_DIFF_MAX_DEPTH);
		return ct_error_set(err, rc, "%s: out of memory", who);
	}
	size_t count = json_array_size(diff);
	for (size_t i = 0; i < count; i++) {
		p.index = reverse ? count - 1 - i : i;
		ctd_entry_get(diff, p.index, &e);
		p.e = &e;
		if (e.action == CTD_CHANGE) {
			const json_t *old = json_array_get(e.data, 0), *new = json_array_get(e.data, 1);
			rc = reverse ? apply_change(&p, new, old, "new value") : apply_change(&p, old, new, "old value");
		} else {
			int add = (e.action == CTD_ADD) != reverse;
			rc = apply_items(&p, add, reverse);
		}
		if (rc != CT_OK)
			goto out;
	}
out:
	if (rc != CT_OK)
		json_decref(p.doc);
	else
		*out = p.doc;
	return rc;
}

int ct_patch(const json_t *diff, const json_t *doc, json_t **out, ct_error *err)
{
	return apply(diff, doc, out, err, 0);
}

int ct_revert(const json_t *diff, const json_t *doc, json_t **out, ct_error *err)
{
	return apply(diff, doc, out, err, 1);
}
