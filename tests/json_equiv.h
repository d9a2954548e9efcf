/*
 * json_equiv.h - equality as the diff sees it, written independently of the
 * library, shared by the diff unit test and the diff fuzz target: what
 * patch(diff(a, b), a) must give back is b up to numbers dictdiffer calls
 * equal (1 == 1.0, reals within a relative DBL_EPSILON).
 */
#ifndef CT_TEST_JSON_EQUIV_H
#define CT_TEST_JSON_EQUIV_H

#include <float.h>
#include <jansson.h>
#include <math.h>

static int equiv(const json_t *x, const json_t *y)
{
	if (json_is_integer(x) && json_is_integer(y))
		return json_integer_value(x) == json_integer_value(y);
	if (json_is_number(x) && json_is_number(y)) {
		double a = json_number_value(x), b = json_number_value(y);
		double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
		return a == b || fabs(a - b) <= DBL_EPSILON * m;
	}
	if (json_is_object(x) && json_is_object(y)) {
		const char *k;
		json_t *v;
		if (json_object_size(x) != json_object_size(y))
			return 0;
		json_object_foreach((json_t *)x, k, v) {
			json_t *w = json_object_get(y, k);
			if (!w || !equiv(v, w))
				return 0;
		}
		return 1;
	}
	if (json_is_array(x) && json_is_array(y)) {
		if (json_array_size(x) != json_array_size(y))
			return 0;
		for (size_t i = 0; i < json_array_size(x); i++)
			if (!equiv(json_array_get(x, i), json_array_get(y, i)))
				return 0;
		return 1;
	}
	return json_equal((json_t *)x, (json_t *)y);
}

#endif
