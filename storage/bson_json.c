/*
 * bson_json.c - user JSON (jansson) <-> BSON, built by hand (cts_codec.h).
 * libbson's JSON parser is never used on untrusted input: it wraps big
 * integers and turns "$date"-style keys into typed values.
 */
#include "cts_codec.h"

#include "ct_internal.h"

#include <math.h>
#include <string.h>

static int append_value(bson_t *doc, const char *key, size_t klen, const json_t *v, int depth,
			ct_error *err);

static int append_members(bson_t *doc, const json_t *v, int depth, ct_error *err)
{
	if (json_is_object(v)) {
		const char *k;
		json_t *m;
		size_t klen;
		json_object_keylen_foreach((json_t *)v, k, klen, m) {
			if (memchr(k, '\0', klen))
				return ct_error_set(err, CT_EINVAL, "a key holds a NUL byte (not possible in BSON)");
			int rc = append_value(doc, k, klen, m, depth, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	for (size_t i = 0; i < json_array_size(v); i++) {
		char buf[16];
		const char *k;
		size_t klen = bson_uint32_to_string((uint32_t)i, &k, buf, sizeof(buf));
		int rc = append_value(doc, k, klen, json_array_get(v, i), depth, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int append_value(bson_t *doc, const char *key, size_t klen, const json_t *v, int depth,
			ct_error *err)
{
	bool ok = true;
	if (klen > INT32_MAX)
		return ct_error_set(err, CT_ELIMIT, "key too long for BSON");
	switch (json_typeof(v)) {
	case JSON_OBJECT:
	case JSON_ARRAY: {
		bson_t child;
		if (depth >= CTS_MAX_DEPTH)
			return ct_error_set(err, CT_ELIMIT, "value nested deeper than %d", CTS_MAX_DEPTH);
		ok = json_is_object(v) ? bson_append_document_begin(doc, key, (int)klen, &child)
				       : bson_append_array_begin(doc, key, (int)klen, &child);
		if (!ok)
			break;
		int rc = append_members(&child, v, depth + 1, err);
		ok = json_is_object(v) ? bson_append_document_end(doc, &child)
				       : bson_append_array_end(doc, &child);
		if (rc)
			return rc;
		break;
	}
	case JSON_STRING:
		if (json_string_length(v) > INT32_MAX - 1)
			return ct_error_set(err, CT_ELIMIT, "string too long for BSON");
		ok = bson_append_utf8(doc, key, (int)klen, json_string_value(v), (int)json_string_length(v));
		break;
	case JSON_INTEGER:
		ok = bson_append_int64(doc, key, (int)klen, (int64_t)json_integer_value(v));
		break;
	case JSON_REAL:
		ok = bson_append_double(doc, key, (int)klen, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		ok = bson_append_bool(doc, key, (int)klen, json_is_true(v));
		break;
	case JSON_NULL:
		ok = bson_append_null(doc, key, (int)klen);
		break;
	}
	if (!ok)
		return ct_error_set(err, CT_ELIMIT, "BSON document over its size limit");
	return 0;
}

int cts_json_to_bson(const json_t *obj, bson_t *doc, ct_error *err)
{
	if (!json_is_object(obj) || !doc)
		return ct_error_set(err, CT_EINVAL, "cts_json_to_bson: an object is needed");
	return append_members(doc, obj, 0, err);
}

int cts_bson_append_json(bson_t *doc, const char *key, const json_t *value, ct_error *err)
{
	if (!doc || !key || !value)
		return ct_error_set(err, CT_EINVAL, "cts_bson_append_json: NULL argument");
	return append_value(doc, key, strlen(key), value, 0, err);
}

static int members_to_json(bson_iter_t *it, json_t *parent, int depth, ct_error *err);

static int value_to_json(const bson_iter_t *it, int depth, json_t **out, ct_error *err)
{
	const char *key = bson_iter_key(it);
	json_t *v = NULL;
	*out = NULL;
	switch (bson_iter_type(it)) {
	case BSON_TYPE_DOCUMENT:
	case BSON_TYPE_ARRAY: {
		bson_iter_t child;
		if (depth >= CTS_MAX_DEPTH)
			return ct_error_set(err, CT_ELIMIT, "BSON nested deeper than %d", CTS_MAX_DEPTH);
		if (!bson_iter_recurse(it, &child))
			return ct_error_set(err, CT_EINVAL, "corrupt BSON at '%s'", key);
		v = bson_iter_type(it) == BSON_TYPE_DOCUMENT ? json_object() : json_array();
		if (!v)
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		int rc = members_to_json(&child, v, depth + 1, err);
		if (rc) {
			json_decref(v);
			return rc;
		}
		break;
	}
	case BSON_TYPE_UTF8: {
		uint32_t len;
		const char *s = bson_iter_utf8(it, &len);
		/* checked: what a database holds is not ours until proven */
		if (!(v = json_stringn(s, len)))
			return ct_error_set(err, CT_EINVAL, "string at '%s' is not valid UTF-8", key);
		break;
	}
	case BSON_TYPE_INT32:
		v = json_integer(bson_iter_int32(it));
		break;
	case BSON_TYPE_INT64:
		v = json_integer(bson_iter_int64(it));
		break;
	case BSON_TYPE_DOUBLE: {
		/* JSON has no NaN or infinity; a stored one is not ours, so refuse it
		 * rather than report it as out of memory. */
		double d = bson_iter_double(it);
		if (!isfinite(d))
			return ct_error_set(err, CT_EINVAL, "non-finite double at '%s' has no JSON form", key);
		v = json_real(d);
		break;
	}
	case BSON_TYPE_BOOL:
		v = json_boolean(bson_iter_bool(it));
		break;
	case BSON_TYPE_NULL:
		v = json_null();
		break;
	default:
		return ct_error_set(err, CT_EINVAL, "BSON type 0x%02x at '%s' has no JSON form here",
				    (unsigned)bson_iter_type(it), key);
	}
	if (!v)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	*out = v;
	return 0;
}

static int members_to_json(bson_iter_t *it, json_t *parent, int depth, ct_error *err)
{
	while (bson_iter_next(it)) {
		json_t *v;
		int rc = value_to_json(it, depth, &v, err);
		if (rc)
			return rc;
		if (json_is_array(parent)) {
			if (json_array_append_new(parent, v))
				return ct_error_set(err, CT_ENOMEM, "out of memory");
			continue;
		}
		/* a key twice, or not UTF-8: no JSON object holds it as it is */
		const char *key = bson_iter_key(it);
		if (json_object_get(parent, key)) {
			json_decref(v);
			return ct_error_set(err, CT_EINVAL, "BSON document holds key '%s' twice", key);
		}
		if (json_object_set_new(parent, key, v))
			return ct_error_set(err, CT_EINVAL, "BSON key is not valid UTF-8");
	}
	return 0;
}

int cts_bson_iter_to_json(const bson_iter_t *it, json_t **out, ct_error *err)
{
	if (!it || !out)
		return ct_error_set(err, CT_EINVAL, "cts_bson_iter_to_json: NULL argument");
	return value_to_json(it, 0, out, err);
}

int cts_bson_to_json(const bson_t *doc, json_t **out, ct_error *err)
{
	bson_iter_t it;
	json_t *obj = NULL;
	int rc;
	*out = NULL;
	if (!doc || !bson_iter_init(&it, doc))
		return ct_error_set(err, CT_EINVAL, "cts_bson_to_json: corrupt or NULL document");
	if (!(obj = json_object()))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	if ((rc = members_to_json(&it, obj, 0, err))) {
		json_decref(obj);
		return rc;
	}
	*out = obj;
	return 0;
}
