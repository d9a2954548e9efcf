/*
 * cts_codec.h - the stored form (v2) of changetrail's MongoDB collections and
 * its conversion to and from the JSON forms the code works with
 * (docs/storage.md). One definition, used by the consumer (writes), the
 * history library and the CLI (reads, migrate) and the test tools.
 *
 * Two forms of a history record:
 *   JSON form   what consumer/record.h builds and ct_record_hash() hashes:
 *               "changes" in dictdiffer form ([["add"|"remove", path,
 *               [[key, value], ...]], ["change", path, [from, to]], ...],
 *               path a dotted string or an array), "ts" the canonical RFC
 *               3339 µs string, "kafka" {topic, partition, offset} or absent.
 *   native      what MongoDB holds: "changes" an array of {op: "add" |
 *               "remove", path: [key | index, ...], value} (one per added or
 *               removed item) and {op: "change", path, from, to}; "ts" a BSON
 *               date (ms) plus "ts_us" (int64, exact µs since the epoch);
 *               checkpoint "doc" a BSON document. User JSON is BSON as is:
 *               integer -> int64, real -> double, any key ("", "a.b", "$x").
 * The conversion is lossless both ways for everything ct_diff() makes and
 * every record the consumer and prune write: native -> JSON form gives back
 * the text whose ct_record_hash() is the stored "hash" (add/remove items of
 * one parent path are regrouped into one dictdiffer entry; a path is
 * rendered dotted when every component is a non-empty string without '.',
 * else as an array, "" for the root; relation_add/relation_remove keep
 * ["__relations__", NAME] as an array).
 *
 * Readers also accept the v1 stored form (changes, doc and metadata as
 * canonical JSON text, ts as RFC 3339 text), so the history library and
 * `changetrail migrate` work on old databases.
 *
 * Thread-safety: every function is reentrant (no global state).
 * Errors: CT_EINVAL (malformed input, naming the field), CT_ELIMIT (nesting
 * deeper than CTS_MAX_DEPTH, over BSON's size limit), CT_ENOMEM.
 * On error the outputs are left empty (json: NULL); a bson_t output may hold
 * a partial document: destroy it.
 */
#ifndef CTS_CODEC_H
#define CTS_CODEC_H

#include <bson/bson.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "changetrail/common.h"

/* Nesting bound of every conversion (CT_ELIMIT beyond). */
#define CTS_MAX_DEPTH 128

/* ---- plain JSON <-> BSON (user data) ---------------------------------- */

/*
 * Appends the members of object `obj` to `doc` (initialised by the caller).
 * object -> document, array -> array, string -> UTF-8 (NUL bytes kept),
 * integer -> int64, real -> double, bool, null. Keys are written as they
 * are ("", "a.b", "$x"); a key holding a NUL byte gives CT_EINVAL.
 */
int cts_json_to_bson(const json_t *obj, bson_t *doc, ct_error *err);

/* Appends `value` (any JSON value) under `key` (NUL-terminated) to `doc`. */
int cts_bson_append_json(bson_t *doc, const char *key, const json_t *value, ct_error *err);

/*
 * New JSON object from a BSON document (*out owned by the caller). int32 and
 * int64 -> integer, double -> real (NaN/infinity: CT_EINVAL), other BSON
 * types (dates, ObjectId, binary, ...) CT_EINVAL naming the key: user data
 * never holds them. Use cts_history_from_bson() / cts_state_from_bson() for
 * stored records, which hold dates.
 */
int cts_bson_to_json(const bson_t *doc, json_t **out, ct_error *err);

/* The value at `it` as JSON (*out owned by the caller), same rules. */
int cts_bson_iter_to_json(const bson_iter_t *it, json_t **out, ct_error *err);

/* ---- timestamps --------------------------------------------------------- */

/*
 * Appends `key` as a BSON date (ms, floor) and `key_us` as int64 µs for the
 * canonical RFC 3339 µs text `rfc3339` (ct_time_format_rfc3339_us()); a
 * text that is not canonical gives CT_EINVAL.
 */
int cts_append_time(bson_t *doc, const char *key, const char *key_us, const char *rfc3339, ct_error *err);

/*
 * The canonical RFC 3339 µs text of the time stored in `doc` under `key` /
 * `key_us`: the exact µs when `key_us` is an int64 consistent with the date,
 * the date's ms otherwise, and v1's RFC 3339 string as it is. CT_EINVAL when
 * absent or malformed. `out` holds 32 bytes.
 */
int cts_get_time(const bson_t *doc, const char *key, const char *key_us, char out[32], ct_error *err);

/* ---- history changes: dictdiffer <-> native ---------------------------- */

/*
 * dictdiffer `changes` of a record with op `op` (the record's "op"; it
 * decides the path form of relations) -> native array (*native owned by the
 * caller, a JSON array of {op, path, value} / {op, path, from, to} objects;
 * path components: strings are keys, integers are indices).
 */
int cts_changes_to_native(const char *op, const json_t *changes, json_t **native, ct_error *err);

/* Native array -> dictdiffer changes (*changes owned by the caller). */
int cts_changes_from_native(const char *op, const json_t *native, json_t **changes, ct_error *err);

/* ---- history records (and prune's checkpoints) ------------------------ */

/*
 * Appends the native stored form of history record `record` (JSON form, see
 * above) to `out` (initialised by the caller, normally empty): every member
 * as cts_bson_append_json() but "changes" native, "ts" a date + "ts_us".
 * Checkpoint records (op "checkpoint", written by prune) carry the state as
 * "doc" (a JSON value, or null) and "deleted"; "doc" is stored as BSON.
 */
int cts_history_to_bson(const json_t *record, bson_t *out, ct_error *err);

/*
 * A stored history document (v2 native or v1 text form) -> its JSON form
 * (*record_json_form owned by the caller): ct_record_hash() of it equals the
 * stored "hash" for a record that was stored intact. "ts_us" is folded into
 * "ts"; a checkpoint's "doc" is a JSON value (v1: its text parsed).
 */
int cts_history_from_bson(const bson_t *doc, json_t **record_json_form, ct_error *err);

/* ---- states --------------------------------------------------------------- */

/*
 * The JSON form of a stored state:
 *   {_id: "<collection>/<document_id>", collection, document_id,
 *    version (int), deleted (bool), hash (string|null), doc (JSON value|null),
 *    ts (canonical RFC 3339 string|null), last_offset ({topic, partition,
 *    offset}|null), last_event ({id, sha256}|null),
 *    recent_events [{id, sha256 (string|null)}]}
 * Native: the same with doc as BSON, ts a date + ts_us.
 */
int cts_state_to_bson(const json_t *state, bson_t *out, ct_error *err);

/*
 * A stored state (v2, or v1: doc as text, ts as text, recent_event_ids
 * [id, ...] which become recent_events with sha256 null) -> JSON form.
 */
int cts_state_from_bson(const bson_t *doc, json_t **state, ct_error *err);

/* ---- contexts --------------------------------------------------------------- */

/*
 * A stored contexts document -> JSON: first_ts / last_ts as RFC 3339 text
 * (from the dates + *_us), metadata_seen / metadata_final as JSON values
 * (v1: their text parsed), the rest as cts_bson_to_json().
 */
int cts_context_from_bson(const bson_t *doc, json_t **context, ct_error *err);

#endif
