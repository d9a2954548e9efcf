/*
 * diffutil.c - what diff.c, patch.c and jsonpatch.c share: the value
 * comparison that decides what is a change (dictdiffer's, with the deviations
 * of docs/diff.md), bounded deep copies, and reading diff entries and paths.
 */
#include "ct_diffutil.h"
#include "ct_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * math.isclose(a, b, rel_tol=sys.float_info.epsilon, abs_tol=0), which is
 * what dictdiffer falls back to for two numbers that are not ==. Written out
 * so the result is bit-for-bit Python's (same operations, same order).
 */
static int isclose_eps(double a, double b)
{
	if (a == b)
		return 1;
	if (isinf(a) || isinf(b))
		return 0;
	double diff = fabs(b - a);
	return diff <= fabs(DBL_EPSILON * b) || diff <= fabs(DBL_EPSILON * a);
}

int ctd_leaf_different(const json_t *x, const json_t *y)
{
	json_type tx = json_typeof(x), ty = json_typeof(y);

	/* Exact for two integers: through doubles, as dictdiffer does, distinct
	 * int64 values above 2^53 would compare equal and a change be lost. */
	if (tx == JSON_INTEGER && ty == JSON_INTEGER)
		return json_integer_value(x) != json_integer_value(y);
	if (json_is_number(x) && json_is_number(y)) {
		double a = json_number_value(x), b = json_number_value(y);
		/* dictdiffer: two NaN are "not different" (its issue #114). */
		if (isnan(a) || isnan(b))
			return !(isnan(a) && isnan(b));
		return !isclose_eps(a, b);
	}
	/* jansson gives true and false types of their own, so booleans never
	 * equal numbers here, unlike Python's True == 1. */
	if (tx != ty)
		return 1;
	switch (tx) {
	case JSON_STRING:
		return json_string_length(x) != json_string_length(y) ||
		       memcmp(json_string_value(x), json_string_value(y), json_string_length(x)) != 0;
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL:
		return 0;
	default:
		/* Containers are compared by the caller, member by member. */
		return 1;
	}
}

int ctd_equivalent(const json_t *x, const json_t *y, size_t depth)
{
	if (json_is_object(x) && json_is_object(y)) {
		const char *k;
		json_t *xv;
		if (depth >= CT_DIFF_MAX_DEPTH)
			return CT_ELIMIT;
		if (json_object_size(x) != json_object_size(y))
			return 0;
		json_object_foreach((json_t *)x, k, xv) {
			const json_t *yv = CTD_OBJ_GET(y, k, CTD_KEY_LEN(k));
			if (!yv)
				return 0;
			int r = ctd_equivalent(xv, yv, depth + 1);
			if (r != 1)
				return r;
		}
		return 1;
	}
	if (json_is_array(x) && json_is_array(y)) {
		size_t n = json_array_size(x);
		if (depth >= CT_DIFF_MAX_DEPTH)
			return CT_ELIMIT;
		if (n != json_array_size(y))
			return 0;
		for (size_t i = 0; i < n; i++) {
			int r = ctd_equivalent(json_array_get(x, i), json_array_get(y, i), depth + 1);
			if (r != 1)
				return r;
		}
		return 1;
	}
	return !ctd_leaf_different(x, y);
}

int ctd_copy(const json_t *v, size_t depth, json_t **out)
{
	json_t *c = NULL;
	int rc = CT_OK;

	*out = NULL;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *child;
		if (depth >= CT_DIFF_MAX_DEPTH)
			return CT_ELIMIT;
		if (!(c = json_object()))
			return CT_ENOMEM;
		json_object_foreach((json_t *)v, k, child) {
			json_t *cc;
			if ((rc = ctd_copy(child, depth + 1, &cc)) != CT_OK)
				goto out;
			if (CTD_OBJ_SET_NEW(c, k, CTD_KEY_LEN(k), cc)) {
				rc = CT_ENOMEM;
				goto out;
			}
		}
		break;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		if (depth >= CT_DIFF_MAX_DEPTH)
			return CT_ELIMIT;
		if (!(c = json_array()))
			return CT_ENOMEM;
		for (size_t i = 0; i < n; i++) {
			json_t *cc;
			if ((rc = ctd_copy(json_array_get(v, i), depth + 1, &cc)) != CT_OK)
				goto out;
			if (json_array_append_new(c, cc)) {
				rc = CT_ENOMEM;
				goto out;
			}
		}
		break;
	}
	case JSON_STRING:
		c = json_stringn_nocheck(json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		c = json_integer(json_integer_value(v));
		break;
	case JSON_REAL:
		c = json_real(json_real_value(v));
		break;
	case JSON_TRUE:
		c = json_true();
		break;
	case JSON_FALSE:
		c = json_false();
		break;
	case JSON_NULL:
		c = json_null();
		break;
	}
	if (!c)
		rc = CT_ENOMEM;
out:
	if (rc != CT_OK)
		json_decref(c);
	else
		*out = c;
	return rc;
}

void ctd_path_begin(ctd_path_iter *it, const json_t *path)
{
	it->path = path;
	it->i = 0;
	it->s = NULL;
	it->s_left = 0;
	/* "" is the root: no components, not one empty key. */
	if (json_is_string(path) && json_string_length(path) > 0) {
		it->s = json_string_value(path);
		it->s_left = json_string_length(path);
	}
}

int ctd_path_next(ctd_path_iter *it, ctd_comp *c)
{
	if (json_is_string(it->path)) {
		if (!it->s)
			return 0;
		const char *dot = memchr(it->s, '.', it->s_left);
		size_t n = dot ? (size_t)(dot - it->s) : it->s_left;
		c->key = it->s;
		c->len = n;
		c->index = 0;
		c->from_dotted = 1;
		if (dot) {
			it->s = dot + 1;
			it->s_left -= n + 1;
		} else {
			it->s = NULL;
		}
		return 1;
	}
	if (it->i >= json_array_size(it->path))
		return 0;
	const json_t *e = json_array_get(it->path, it->i++);
	c->from_dotted = 0;
	if (json_is_string(e)) {
		c->key = json_string_value(e);
		c->len = json_string_length(e);
		c->index = 0;
	} else {
		c->key = NULL;
		c->len = 0;
		c->index = (size_t)json_integer_value(e);
	}
	return 1;
}

size_t ctd_path_count(const json_t *path)
{
	if (json_is_array(path))
		return json_array_size(path);
	size_t n = json_string_length(path);
	if (n == 0)
		return 0;
	const char *s = json_string_value(path), *end = s + n, *p;
	size_t count = 1;
	while ((p = memchr(s, '.', (size_t)(end - s))) != NULL) {
		count++;
		s = p + 1;
	}
	return count;
}

static int is_key_or_index(const json_t *v)
{
	return json_is_string(v) || (json_is_integer(v) && json_integer_value(v) >= 0);
}

static int check_entry(const json_t *e, size_t i, const char *who, ct_error *err)
{
	if (!json_is_array(e) || json_array_size(e) != 3)
		return ct_error_set(err, CT_EINVAL, "%s: diff entry %zu is not an array [action, path, data]",
				    who, i);
	const json_t *act = json_array_get(e, 0), *path = json_array_get(e, 1),
		     *data = json_array_get(e, 2);
	const char *a = json_string_value(act);
	if (!a || (strcmp(a, "add") && strcmp(a, "remove") && strcmp(a, "change")))
		return ct_error_set(err, CT_EINVAL, "%s: diff entry %zu: action is not \"add\", \"remove\" or \"change\"",
				    who, i);
	if (json_is_array(path)) {
		for (size_t j = 0; j < json_array_size(path); j++)
			if (!is_key_or_index(json_array_get(path, j)))
				return ct_error_set(err, CT_EINVAL,
						    "%s: diff entry %zu: path component %zu is not a string or an integer >= 0",
						    who, i, j);
	} else if (!json_is_string(path)) {
		return ct_error_set(err, CT_EINVAL, "%s: diff entry %zu: path is not a string or an array", who, i);
	}
	if (!json_is_array(data))
		return ct_error_set(err, CT_EINVAL, "%s: diff entry %zu: data is not an array", who, i);
	if (a[0] == 'c') {
		if (json_array_size(data) != 2)
			return ct_error_set(err, CT_EINVAL, "%s: diff entry %zu: change data is not [old, new]", who, i);
		return CT_OK;
	}
	for (size_t j = 0; j < json_array_size(data); j++) {
		const json_t *item = json_array_get(data, j);
		if (!json_is_array(item) || json_array_size(item) != 2 ||
		    !is_key_or_index(json_array_get(item, 0)))
			return ct_error_set(err, CT_EINVAL,
					    "%s: diff entry %zu: %s item %zu is not [key or index >= 0, value]",
					    who, i, a, j);
	}
	return CT_OK;
}

int ctd_check_diff(const json_t *diff, const char *who, ct_error *err)
{
	if (!json_is_array(diff))
		return ct_error_set(err, CT_EINVAL, "%s: diff is not a JSON array", who);
	for (size_t i = 0; i < json_array_size(diff); i++) {
		int rc = check_entry(json_array_get(diff, i), i, who, err);
		if (rc != CT_OK)
			return rc;
	}
	return CT_OK;
}

void ctd_entry_get(const json_t *diff, size_t i, ctd_entry *e)
{
	const json_t *entry = json_array_get(diff, i);
	const char *a = json_string_value(json_array_get(entry, 0));
	e->action = a[0] == 'a' ? CTD_ADD : a[0] == 'r' ? CTD_REMOVE : CTD_CHANGE;
	e->action_name = a;
	e->path = json_array_get(entry, 1);
	e->data = json_array_get(entry, 2);
}

void ctd_path_text(const json_t *path, char *buf, size_t size)
{
	char *s = json_dumps(path, JSON_ENCODE_ANY | JSON_COMPACT);
	if (size == 0)
		return;
	if (!s) {
		buf[0] = '\0';
		return;
	}
	size_t n = strlen(s);
	if (n >= size) {
		/* Long paths are cut with an ellipsis rather than silently. */
		n = size - 1;
		if (size > 4)
			memcpy(s + size - 4, "...", 3);
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	free(s);
}
