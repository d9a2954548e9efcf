/*
 * fuzz_bson_json.c - the consumer's hand-written JSON <-> BSON conversion
 * (consumer/bson_json.c), both ways:
 *  - input parsed as a JSON object: json -> bson -> json gives the same
 *    tree back (keys of any spelling: "", ".", "$x", unicode), or a clean
 *    CT_EINVAL (a key with NUL) / CT_ELIMIT (too deep);
 *  - input taken as BSON bytes: when libbson validates it, bson -> json
 *    either fails cleanly or gives a tree that converts back and forth
 *    unchanged.
 * abort() on any violation.
 */
#include "bson_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const json_t *x, const json_t *y)
{
	if (json_typeof(x) != json_typeof(y))
		return 0;
	if (json_is_real(x))
		return json_real_value(x) == json_real_value(y) ||
		       (json_real_value(x) != json_real_value(x) && json_real_value(y) != json_real_value(y));
	if (json_is_object(x)) {
		const char *k;
		json_t *v;
		if (json_object_size(x) != json_object_size(y))
			return 0;
		json_object_foreach((json_t *)x, k, v) {
			json_t *w = json_object_get(y, k);
			if (!w || !same(v, w))
				return 0;
		}
		return 1;
	}
	if (json_is_array(x)) {
		if (json_array_size(x) != json_array_size(y))
			return 0;
		for (size_t i = 0; i < json_array_size(x); i++)
			if (!same(json_array_get(x, i), json_array_get(y, i)))
				return 0;
		return 1;
	}
	return json_equal(x, y);
}

/* json -> bson -> json; returns the result code of the first step. */
static int round_trip(const json_t *obj)
{
	bson_t doc = BSON_INITIALIZER;
	json_t *back = NULL;
	int rc = ctc_json_to_bson(obj, &doc, NULL);
	if (rc == CT_OK) {
		if (ctc_bson_to_json(&doc, &back, NULL) != CT_OK || !same(obj, back))
			abort();
	} else if (rc != CT_EINVAL && rc != CT_ELIMIT) {
		abort();
	}
	json_decref(back);
	bson_destroy(&doc);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (v) {
		round_trip(v);
		json_decref(v);
	}

	bson_t b;
	size_t off;
	json_t *j = NULL;
	if (size >= 5 && bson_init_static(&b, data, size) &&
	    bson_validate(&b, BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL, &off)) {
		int rc = ctc_bson_to_json(&b, &j, NULL);
		if (rc == CT_OK) {
			if (!json_is_object(j) || round_trip(j) != CT_OK)
				abort();
		} else if (rc != CT_EINVAL && rc != CT_ELIMIT) {
			abort();
		}
		json_decref(j);
	}
	return 0;
}
