/*
 * bson_json.h - jansson trees <-> BSON, built by hand. libbson's JSON parser
 * is never used on untrusted input: it wraps big integers and turns
 * "$date"-style keys into typed values.
 *
 * json -> bson: object -> document, array -> array, string -> UTF-8,
 * integer -> int64, real -> double, true/false -> bool, null -> null.
 * bson -> json: the inverse, plus int32 -> integer. Other BSON types (ObjectId,
 * dates, binary, ...) give CT_EINVAL: changetrail never writes them.
 * Keys are written as given; what MongoDB servers refuse ('$' prefix, '.')
 * is the caller's business (changetrail stores such content as canonical
 * text, see docs/storage.md). A key with a NUL byte cannot be a BSON key and
 * gives CT_EINVAL.
 */
#ifndef CTC_BSON_JSON_H
#define CTC_BSON_JSON_H

#include <bson/bson.h>
#include <jansson.h>

#include "changetrail/common.h"

/* Nesting bound of both conversions (CT_ELIMIT beyond). */
#define CTC_BSON_MAX_DEPTH 128

/* Appends the members of object `obj` to `doc` (an initialised bson_t). */
int ctc_json_to_bson(const json_t *obj, bson_t *doc, ct_error *err);

/* Appends `value` under `key` to `doc`. */
int ctc_bson_append_json(bson_t *doc, const char *key, const json_t *value, ct_error *err);

/* New json object from a BSON document; *out owned by the caller. */
int ctc_bson_to_json(const bson_t *doc, json_t **out, ct_error *err);

#endif
