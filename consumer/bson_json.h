/*
 * bson_json.h - the v1 names of the JSON <-> BSON conversions, which moved to
 * the storage module (storage/cts_codec.h). Kept as thin wrappers for the
 * code that still uses them; new code calls cts_* directly.
 */
#ifndef CTC_BSON_JSON_H
#define CTC_BSON_JSON_H

#include "cts_codec.h"

#define CTC_BSON_MAX_DEPTH CTS_MAX_DEPTH

static inline int ctc_json_to_bson(const json_t *obj, bson_t *doc, ct_error *err)
{
	return cts_json_to_bson(obj, doc, err);
}

static inline int ctc_bson_append_json(bson_t *doc, const char *key, const json_t *value, ct_error *err)
{
	return cts_bson_append_json(doc, key, value, err);
}

static inline int ctc_bson_to_json(const bson_t *doc, json_t **out, ct_error *err)
{
	return cts_bson_to_json(doc, out, err);
}

static inline int ctc_history_to_bson(const json_t *record, bson_t *out, ct_error *err)
{
	return cts_history_to_bson(record, out, err);
}

static inline int ctc_history_from_bson(const bson_t *doc, json_t **out, ct_error *err)
{
	return cts_history_from_bson(doc, out, err);
}

#endif
