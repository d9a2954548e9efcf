/*
 * diff.c - ct_diff(): the structural diff of two JSON values, entry for entry
 * what Python's dictdiffer.diff(a, b) yields with default arguments (a
 * reimplementation of its traversal; deviations in docs/diff.md).
 *
 * dictdiffer's order, which the output must reproduce exactly:
 *  - two objects: first recurse into the keys present in both, in a's order;
 *    then one "add" with b's new keys in b's order; then one "remove" with
 *    a's vanished keys in a's order;
 *  - two arrays: recurse into indices 0..min-1; then "add" of the extra items
 *    of b in increasing index order; then "remove" of the extra items of a in
 *    decreasing index order;
 *  - anything else: one "change" when the two values differ.
 */
#include "changetrail/diff.h"
#include "ct_diffutil.h"
#include "ct_internal.h"

#include <stdlib.h>
#include <string.h>

/*
 * The node being visited, as a chain through the recursion's stack frames:
 * no allocation per level, and a path is only built when an entry is emitted.
 */
typedef struct seg {
	const struct seg *parent;
	const char *key;  /* NULL for an array index */
	size_t len;
	size_t index;
	size_t depth;     /* number of components, root = 0 */
} seg;

typedef struct dctx {
	json_t *out;
	ct_error *err;
} dctx;

/* dictdiffer joins with '.' only when every component is a string without
 * '.'; we also need each to be non-empty, or the text could not be split
 * back unambiguously ('' would read as the root, ['', 'a'] as '.a'). */
static int dotted_ok(const seg *s, size_t *len)
{
	size_t n = 0;
	for (; s && s->depth > 0; s = s->parent) {
		if (!s->key || s->len == 0 || memchr(s->key, '.', s->len))
			return 0;
		n += s->len + 1;
	}
	*len = n ? n - 1 : 0;
	return 1;
}

static json_t *make_path(const seg *node)
{
	size_t len;
	if (dotted_ok(node, &len)) {
		char small[256];
		char *buf = len < sizeof(small) ? small : malloc(len + 1);
		json_t *s = NULL;
		if (!buf)
			return NULL;
		size_t end = len;
		for (const seg *p = node; p && p->depth > 0; p = p->parent) {
			end -= p->len;
			memcpy(buf + end, p->key, p->len);
			if (end > 0)
				buf[--end] = '.';
		}
		/* Keys are valid UTF-8 already, and so is their '.'-join. */
		s = json_stringn_nocheck(buf, len);
		if (buf != small)
			free(buf);
		return s;
	}
	/* The chain runs leaf to root: size the array first, then fill it
	 * from the back. */
	json_t *arr = json_array();
	int ok = arr != NULL;
	for (size_t i = 0; ok && i < node->depth; i++)
		ok = json_array_append_new(arr, json_null()) == 0;
	for (const seg *p = node; ok && p && p->depth > 0; p = p->parent) {
		json_t *c = p->key ? json_stringn_nocheck(p->key, p->len) : json_integer((json_int_t)p->index);
		ok = json_array_set_new(arr, p->depth - 1, c) == 0;
	}
	if (!ok) {
		json_decref(arr);
		arr = NULL;
	}
	return arr;
}

/* Appends [action, path(node), data] to the output; takes `data`. */
static int emit(dctx *c, const char *action, const seg *node, json_t *data)
{
	json_t *entry = json_array();
	int rc = CT_OK;
	if (!entry || !data || json_array_append_new(entry, json_string_nocheck(action)) ||
	    json_array_append_new(entry, make_path(node)) || json_array_append(entry, data) ||
	    json_array_append(c->out, entry))
		rc = ct_error_set(c->err, CT_ENOMEM, "diff: out of memory");
	json_decref(entry);
	json_decref(data);
	return rc;
}

static int copy_or_fail(dctx *c, const json_t *v, size_t depth, json_t **out)
{
	int rc = ctd_copy(v, depth, out);
	if (rc == CT_ELIMIT)
		return ct_error_set(c->err, rc, "diff: nesting deeper than %zu", CT_DIFF_MAX_DEPTH);
	if (rc != CT_OK)
		return ct_error_set(c->err, rc, "diff: out of memory");
	return CT_OK;
}

/* Appends [key-or-index, copy of v] to *items, creating the list on first use. */
static int add_item(dctx *c, json_t **items, const char *key, size_t len, size_t index,
		    const json_t *v, size_t depth)
{
	json_t *pair = NULL, *copy = NULL;
	int rc;
	if ((rc = copy_or_fail(c, v, depth, &copy)) != CT_OK)
		goto out;
	if ((!*items && !(*items = json_array())) || !(pair = json_array()) ||
	    json_array_append_new(pair, key ? json_stringn_nocheck(key, len) : json_integer((json_int_t)index)) ||
	    json_array_append(pair, copy) || json_array_append(*items, pair))
		rc = ct_error_set(c->err, CT_ENOMEM, "diff: out of memory");
out:
	json_decref(copy);
	json_decref(pair);
	return rc;
}

static int diff_rec(dctx *c, const json_t *x, const json_t *y, const seg *node);

static int diff_objects(dctx *c, const json_t *x, const json_t *y, const seg *node)
{
	json_t *added = NULL, *removed = NULL;
	const char *k;
	json_t *xv, *yv;
	int rc = CT_OK;

	size_t common = 0;

	json_object_foreach((json_t *)x, k, xv) {
		size_t klen = CTD_KEY_LEN(k);
		if ((yv = CTD_OBJ_GET(y, k, klen)) != NULL) {
			seg s = {node, k, klen, 0, node->depth + 1};
			common++;
			if ((rc = diff_rec(c, xv, yv, &s)) != CT_OK)
				goto out;
		}
	}
	/* Usually both have the same keys: then the counts say so and the two
	 * passes of hash lookups below are skipped. */
	if (common < json_object_size(y)) {
		json_object_foreach((json_t *)y, k, yv) {
			size_t klen = CTD_KEY_LEN(k);
			if (!CTD_OBJ_GET(x, k, klen) &&
			    (rc = add_item(c, &added, k, klen, 0, yv, node->depth + 1)) != CT_OK)
				goto out;
		}
	}
	if (common < json_object_size(x)) {
		json_object_foreach((json_t *)x, k, xv) {
			size_t klen = CTD_KEY_LEN(k);
			if (!CTD_OBJ_GET(y, k, klen) &&
			    (rc = add_item(c, &removed, k, klen, 0, xv, node->depth + 1)) != CT_OK)
				goto out;
		}
	}
	if (added) {
		rc = emit(c, "add", node, added);
		added = NULL;
		if (rc != CT_OK)
			goto out;
	}
	if (removed) {
		rc = emit(c, "remove", node, removed);
		removed = NULL;
	}
out:
	json_decref(added);
	json_decref(removed);
	return rc;
}

static int diff_arrays(dctx *c, const json_t *x, const json_t *y, const seg *node)
{
	json_t *added = NULL, *removed = NULL;
	size_t nx = json_array_size(x), ny = json_array_size(y), n = nx < ny ? nx : ny;
	int rc = CT_OK;

	for (size_t i = 0; i < n; i++) {
		seg s = {node, NULL, 0, i, node->depth + 1};
		if ((rc = diff_rec(c, json_array_get(x, i), json_array_get(y, i), &s)) != CT_OK)
			goto out;
	}
	for (size_t i = n; i < ny; i++)
		if ((rc = add_item(c, &added, NULL, 0, i, json_array_get(y, i), node->depth + 1)) != CT_OK)
			goto out;
	/* Decreasing indices, so that each removal leaves the next index valid. */
	for (size_t i = nx; i > n; i--)
		if ((rc = add_item(c, &removed, NULL, 0, i - 1, json_array_get(x, i - 1), node->depth + 1)) != CT_OK)
			goto out;
	if (added) {
		rc = emit(c, "add", node, added);
		added = NULL;
		if (rc != CT_OK)
			goto out;
	}
	if (removed) {
		rc = emit(c, "remove", node, removed);
		removed = NULL;
	}
out:
	json_decref(added);
	json_decref(removed);
	return rc;
}

static int diff_rec(dctx *c, const json_t *x, const json_t *y, const seg *node)
{
	int both_obj = json_is_object(x) && json_is_object(y);
	int both_arr = json_is_array(x) && json_is_array(y);

	if ((both_obj || both_arr) && node->depth >= CT_DIFF_MAX_DEPTH)
		return ct_error_set(c->err, CT_ELIMIT, "diff: nesting deeper than %zu", CT_DIFF_MAX_DEPTH);
	if (both_obj)
		return diff_objects(c, x, y, node);
	if (both_arr)
		return diff_arrays(c, x, y, node);
	if (!ctd_leaf_different(x, y))
		return CT_OK;

	json_t *pair = json_array(), *ox = NULL, *oy = NULL;
	int rc;
	if ((rc = copy_or_fail(c, x, node->depth, &ox)) != CT_OK ||
	    (rc = copy_or_fail(c, y, node->depth, &oy)) != CT_OK)
		goto out;
	if (!pair || json_array_append(pair, ox) || json_array_append(pair, oy)) {
		rc = ct_error_set(c->err, CT_ENOMEM, "diff: out of memory");
		goto out;
	}
	rc = emit(c, "change", node, pair);
	pair = NULL;
out:
	json_decref(pair);
	json_decref(ox);
	json_decref(oy);
	return rc;
}

int ct_diff(const json_t *a, const json_t *b, json_t **out, ct_error *err)
{
	int rc;
	dctx c = {NULL, err};
	seg root = {NULL, NULL, 0, 0, 0};

	if (out)
		*out = NULL;
	if (!a || !b || !out)
		return ct_error_set(err, CT_EINVAL, "diff: NULL argument");
	if (!(c.out = json_array()))
		return ct_error_set(err, CT_ENOMEM, "diff: out of memory");
	rc = diff_rec(&c, a, b, &root);
	if (rc != CT_OK)
		json_decref(c.out);
	else
		*out = c.out;
	return rc;
}
