/*
 * json_same.h - what "the same tree" means when the fast JSON parser is held
 * against jansson (tests/unit/test_jsonparse.c, tests/fuzz/fuzz_jsonparse.c):
 * same members in the same order, same types (an integer is not a real),
 * same values bit for bit; and the bounds of ct_limits measured the way
 * common/event.c measures them. Header-only: the fuzz targets do not link
 * the test utilities.
 */
#ifndef CT_TEST_JSON_SAME_H
#define CT_TEST_JSON_SAME_H

#include <jansson.h>
#include <string.h>

#include "changetrail/event.h"

static inline int ct_json_identical(const json_t *a, const json_t *b)
{
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return 0;
		void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
		for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia), ib = json_object_iter_next((json_t *)b, ib)) {
			size_t ka = json_object_iter_key_len(ia), kb = json_object_iter_key_len(ib);
			if (ka != kb || memcmp(json_object_iter_key(ia), json_object_iter_key(ib), ka) ||
			    !ct_json_identical(json_object_iter_value(ia), json_object_iter_value(ib)))
				return 0;
		}
		return !ia && !ib;
	}
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!ct_json_identical(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
	case JSON_INTEGER:
		return json_integer_value(a) == json_integer_value(b);
	case JSON_REAL: {
		double x = json_real_value(a), y = json_real_value(b);
		return !memcmp(&x, &y, sizeof(x));
	}
	default:
		return 1;
	}
}

/* Within `l` (resolved: no zero fields)? `keys` sums members over the tree. */
static inline int ct_json_within(const json_t *v, const ct_limits *l, size_t depth, size_t *keys)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		if (depth + 1 > l->max_depth || json_object_size(v) > l->max_keys - *keys)
			return 0;
		*keys += json_object_size(v);
		json_object_foreach((json_t *)v, k, x)
			if (json_object_iter_key_len(json_object_key_to_iter(k)) > l->max_string_bytes ||
			    !ct_json_within(x, l, depth + 1, keys))
				return 0;
		return 1;
	}
	case JSON_ARRAY:
		if (depth + 1 > l->max_depth || json_array_size(v) > l->max_array_items)
			return 0;
		for (size_t i = 0; i < json_array_size(v); i++)
			if (!ct_json_within(json_array_get(v, i), l, depth + 1, keys))
				return 0;
		return 1;
	case JSON_STRING:
		return json_string_length(v) <= l->max_string_bytes;
	default:
		return 1;
	}
}

#endif
