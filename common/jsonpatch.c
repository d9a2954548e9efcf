/*
 * jsonpatch.c - ct_diff_to_jsonpatch(): the same change as a dictdiffer-form
 * diff, written as an RFC 6902 JSON Patch for consumers that speak that
 * standard rather than dictdiffer's format.
 *
 * Each diff entry maps onto ops that apply to the document left by the
 * previous ones, because the diff's own order already guarantees that
 * (array removals come in decreasing index order, inserts in increasing).
 */
#include "changetrail/diff.h"
#include "ct_buf.h"
#include "ct_diffutil.h"
#include "ct_internal.h"

#include <stdio.h>
#include <string.h>

/* Appends "/" and one RFC 6901 reference token (~ -> ~0, / -> ~1). */
static void put_token(ct_buf *b, const char *key, size_t len, size_t index)
{
	char num[32];
	ct_buf_putc(b, '/');
	if (!key) {
		snprintf(num, sizeof(num), "%zu", index);
		ct_buf_puts(b, num);
		return;
	}
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (key[i] != '~' && key[i] != '/')
			continue;
		ct_buf_put(b, key + start, i - start);
		ct_buf_puts(b, key[i] == '~' ? "~0" : "~1");
		start = i + 1;
	}
	ct_buf_put(b, key + start, len - start);
}

/* Appends one op {"op", "path", "value"?} to `out`; `value` may be NULL. */
static int put_op(json_t *out, const char *op, const ct_buf *ptr, const json_t *value, size_t depth)
{
	json_t *o = json_object(), *copy = NULL;
	int rc = CT_OK;

	if (!o || ptr->failed) {
		rc = CT_ENOMEM;
		goto out;
	}
	if (value && (rc = ctd_copy(value, depth, &copy)) != CT_OK)
		goto out;
	/* Pointer text is '/'-joined keys, which were valid UTF-8. */
	if (json_object_set_new_nocheck(o, "op", json_string_nocheck(op)) ||
	    json_object_set_new_nocheck(o, "path", json_stringn_nocheck(ptr->len ? ptr->data : "", ptr->len)) ||
	    (copy && json_object_set_nocheck(o, "value", copy)) || json_array_append(out, o))
		rc = CT_ENOMEM;
out:
	json_decref(copy);
	json_decref(o);
	return rc;
}

static int convert_entry(json_t *out, const ctd_entry *e)
{
	ct_buf ptr = CT_BUF_INIT;
	ctd_path_iter it;
	ctd_comp c;
	size_t depth = 0;
	int rc = CT_OK;

	ctd_path_begin(&it, e->path);
	while (ctd_path_next(&it, &c)) {
		put_token(&ptr, c.key, c.len, c.index);
		depth++;
	}
	if (e->action == CTD_CHANGE) {
		rc = put_op(out, "replace", &ptr, json_array_get(e->data, 1), depth);
		goto out;
	}
	size_t base = ptr.len;
	for (size_t j = 0; j < json_array_size(e->data); j++) {
		const json_t *item = json_array_get(e->data, j), *key = json_array_get(item, 0);
		ptr.len = base;
		if (json_is_string(key))
			put_token(&ptr, json_string_value(key), json_string_length(key), 0);
		else
			put_token(&ptr, NULL, 0, (size_t)json_integer_value(key));
		if (e->action == CTD_ADD)
			rc = put_op(out, "add", &ptr, json_array_get(item, 1), depth + 1);
		else
			rc = put_op(out, "remove", &ptr, NULL, depth + 1);
		if (rc != CT_OK)
			goto out;
	}
out:
	ct_buf_free(&ptr);
	return rc;
}

int ct_diff_to_jsonpatch(const json_t *diff, json_t **out, ct_error *err)
{
	json_t *ops = NULL;
	ctd_entry e;
	int rc;

	if (out)
		*out = NULL;
	if (!diff || !out)
		return ct_error_set(err, CT_EINVAL, "jsonpatch: NULL argument");
	if ((rc = ctd_check_diff(diff, "jsonpatch", err)) != CT_OK)
		return rc;
	if (!(ops = json_array()))
		return ct_error_set(err, CT_ENOMEM, "jsonpatch: out of memory");
	for (size_t i = 0; i < json_array_size(diff); i++) {
		ctd_entry_get(diff, i, &e);
		if ((rc = convert_entry(ops, &e)) != CT_OK) {
			if (rc == CT_ELIMIT)
				ct_error_set(err, rc, "jsonpatch: entry %zu: value nested deeper than %zu", i,
					     CT_DIFF_MAX_DEPTH);
			else
				ct_error_set(err, rc, "jsonpatch: out of memory");
			goto out;
		}
	}
out:
	if (rc != CT_OK)
		json_decref(ops);
	else
		*out = ops;
	return rc;
}
