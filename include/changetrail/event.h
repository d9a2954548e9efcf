/*
 * changetrail/event.h - the change event (docs/event-contract.md): parsing,
 * validation against the contract of schemas/change-event.v1.schema.json,
 * read-only access to its fields; UUIDv7 ids and RFC 3339 timestamps.
 *
 * Ownership: a ct_event owns what it points to. Every pointer an accessor
 * returns (strings, json_t) is borrowed: valid until ct_event_free(), never to
 * be freed, json_decref'd or modified by the caller (json_incref it to keep a
 * value longer).
 *
 * Thread-safety: a ct_event is immutable once made, so any number of threads
 * may call the accessors on the same event at once; ct_event_free() must not
 * run concurrently with them. Parsing functions are reentrant. jansson's
 * reference counts are atomic, so events may be freed on any thread.
 * ct_uuid7_new() is thread-safe (one process-wide, lock-protected clock).
 *
 * Errors (return value, and `err` when not NULL; the message is one line,
 * names the field and the rule, and echoes at most ~64 bytes of input):
 *   CT_EINVAL   a NULL argument
 *   CT_ELIMIT   input over a bound of ct_limits, or nested deeper than the
 *               JSON parser's own limit (2048 levels)
 *   CT_EPARSE   not well-formed: JSON syntax, invalid UTF-8, a duplicate
 *               object key, a NUL byte, a number out of int64/double range
 *   CT_ESCHEMA  well-formed JSON that breaks the event contract
 *   CT_ENOMEM   out of memory
 */
#ifndef CHANGETRAIL_EVENT_H
#define CHANGETRAIL_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "changetrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Value of the "schema" member of every v1 event. */
#define CT_EVENT_SCHEMA_V1 "changetrail.event.v1"

/** Contract bounds on identifier strings, in bytes of UTF-8. */
#define CT_EVENT_MAX_NAME_BYTES ((size_t)255)   /**< source, collection, label, relation.name */
#define CT_EVENT_MAX_ID_BYTES ((size_t)1024)    /**< document_id, actor */
/** Largest "seq": 2^53 - 1, so that every JSON reader holds it exactly. */
#define CT_EVENT_MAX_SEQ INT64_C(9007199254740991)

/** What happened to the document. Values are stable. */
typedef enum ct_op {
	CT_OP_INSERT,          /**< created; "after" required */
	CT_OP_UPDATE,          /**< changed; "after" required */
	CT_OP_DELETE,          /**< deleted; "after" forbidden */
	CT_OP_SNAPSHOT,        /**< state observed (backfill, scan); "after" required */
	CT_OP_EVENT,           /**< manual/custom event; "label" required */
	CT_OP_RELATION_ADD,    /**< many-to-many link added; "relation" required */
	CT_OP_RELATION_REMOVE, /**< many-to-many link removed; "relation" required */
	CT_OP_CONTEXT_BEGIN,   /**< a context starts; "context" required */
	CT_OP_CONTEXT_END,     /**< a context ends; "context" required */
} ct_op;

/** Name of `op` as in the JSON ("insert", ...); NULL for an unknown value. */
CT_EXTERN const char *ct_op_name(ct_op op);

/** Parses an op name (exact, lowercase). CT_EINVAL when `s` is NULL or unknown. */
CT_EXTERN int ct_op_from_name(const char *s, ct_op *out);

/**
 * Bounds on an event, all checked before any field is looked at. A member of
 * 0 takes its default, so `ct_limits l = {.max_bytes = 4096};` is valid.
 */
typedef struct ct_limits {
	size_t max_bytes;        /**< size of the JSON text (ct_event_parse only); default 1 MiB */
	size_t max_depth;        /**< nesting of objects/arrays, the event itself is 1; default 64 */
	size_t max_keys;         /**< object members in the whole event, all levels; default 100000 */
	size_t max_string_bytes; /**< any string value or object key; default 256 KiB */
	size_t max_array_items;  /**< items of any one array; default 100000 */
} ct_limits;

/** Fills `l` with the defaults above. */
CT_EXTERN void ct_limits_default(ct_limits *l);

/** A validated event. Opaque, immutable. */
typedef struct ct_event ct_event;

/**
 * Parses and validates the JSON text buf[0..len) (need not be NUL-terminated).
 * `limits` NULL means the defaults. Depth beyond 2048 is refused by the JSON
 * parser itself whatever max_depth says (CT_ELIMIT). On success *out is a new
 * event owned by the caller (ct_event_free); on failure *out is NULL.
 */
CT_EXTERN int ct_event_parse(const char *buf, size_t len, const ct_limits *limits, ct_event **out,
			     ct_error *err);

/**
 * Validates an already-built tree (the producer's path) with the same rules
 * as ct_event_parse, plus what the parser would have guaranteed: every string
 * and key valid UTF-8 without NUL, every real finite. max_bytes is not
 * applied (there is no text).
 *
 * Borrows `root`: the caller keeps its reference. On success the event takes
 * a reference of its own (json_incref), and from then on neither the caller
 * nor anyone else may modify the tree while the event lives, since the event
 * points into it. On failure nothing is kept. *out as for ct_event_parse.
 */
CT_EXTERN int ct_event_from_json(json_t *root, const ct_limits *limits, ct_event **out,
				 ct_error *err);

/** Frees the event and drops its reference on the tree. NULL is a no-op. */
CT_EXTERN void ct_event_free(ct_event *ev);

/*
 * Accessors. Strings are NUL-terminated UTF-8; optional fields that are
 * absent give NULL. Every accessor accepts NULL `ev` and then returns NULL
 * (ct_event_ts_us: INT64_MIN, ct_event_seq: -1, ct_event_op: CT_OP_INSERT).
 */
CT_EXTERN const char *ct_event_id(const ct_event *ev);          /**< "event_id", a UUIDv7 */
CT_EXTERN const char *ct_event_ts(const ct_event *ev);          /**< "ts", canonical text */
CT_EXTERN int64_t ct_event_ts_us(const ct_event *ev);           /**< "ts" as µs since the Unix epoch */
CT_EXTERN const char *ct_event_source(const ct_event *ev);      /**< "source" */
CT_EXTERN const char *ct_event_collection(const ct_event *ev);  /**< "collection" */
CT_EXTERN const char *ct_event_document_id(const ct_event *ev); /**< "document_id" */
CT_EXTERN ct_op ct_event_op(const ct_event *ev);                /**< "op" */
CT_EXTERN const char *ct_event_label(const ct_event *ev);       /**< "label" or NULL */
CT_EXTERN const char *ct_event_actor(const ct_event *ev);       /**< "actor" or NULL */
CT_EXTERN const char *ct_event_context_id(const ct_event *ev);  /**< "context.id" or NULL */
CT_EXTERN const char *ct_event_context_parent_id(const ct_event *ev); /**< "context.parent_id" or NULL */
CT_EXTERN const json_t *ct_event_context_metadata(const ct_event *ev); /**< object or NULL */
CT_EXTERN const json_t *ct_event_after(const ct_event *ev);     /**< object or NULL */
CT_EXTERN const json_t *ct_event_before(const ct_event *ev);    /**< object or NULL */
CT_EXTERN const char *ct_event_parent_collection(const ct_event *ev);  /**< "parent.collection" or NULL */
CT_EXTERN const char *ct_event_parent_document_id(const ct_event *ev); /**< "parent.document_id" or NULL */
/** "relation": object {"name","collection","document_id"} (all strings), or NULL. */
CT_EXTERN const json_t *ct_event_relation(const ct_event *ev);
CT_EXTERN int64_t ct_event_seq(const ct_event *ev);             /**< "seq", or -1 when absent */
CT_EXTERN const json_t *ct_event_json(const ct_event *ev);      /**< the whole event */

/*
 * UUIDs (RFC 9562), always in the canonical lowercase 8-4-4-4-12 form.
 */

/**
 * Writes a new UUIDv7 and its NUL into out[37]: 48-bit Unix time in ms, then
 * a 42-bit counter (RFC 9562 §6.2 method 1: seeded at random each new ms,
 * incremented within one), then 32 random bits. Ids of one process are
 * strictly increasing, also as strings, even if the clock steps back (the
 * last time is kept until the clock passes it). Randomness from getrandom().
 * Thread-safe. Errors: CT_EINVAL (NULL out), CT_EIO (no randomness).
 */
CT_EXTERN int ct_uuid7_new(char out[37], ct_error *err);

/**
 * true when `s` is a canonical lowercase UUID with the RFC 9562 variant
 * (10xx) and version `required_version` (1..8), or any version 1..8 when
 * `required_version` is 0. Nil and max UUIDs are not valid. NULL gives false.
 */
CT_EXTERN bool ct_uuid_valid(const char *s, int required_version);

/*
 * Timestamps. The canonical form, the one events carry, is RFC 3339 UTC with
 * exactly six fractional digits: "2026-11-22T20:56:52.123456Z", years
 * 0000-9999 of the proleptic Gregorian calendar, no leap seconds.
 */

/** Smallest and largest µs values that have a canonical form (0000-01-01 .. 9999-12-31). */
#define CT_TIME_MIN_US INT64_C(-62167219200000000)
#define CT_TIME_MAX_US INT64_C(253402300799999999)

/**
 * Writes the canonical form of `us` (µs since the Unix epoch) into out[32]
 * (27 characters and NUL). CT_EINVAL when `us` is outside CT_TIME_MIN_US ..
 * CT_TIME_MAX_US or `out` is NULL. Reentrant (no gmtime, no TZ).
 */
CT_EXTERN int ct_time_format_rfc3339_us(int64_t us, char out[32]);

/**
 * Parses an RFC 3339 date-time into µs since the Unix epoch: "T" or "t" as
 * separator; 0 to 9 fractional digits (digits past the sixth are dropped,
 * i.e. rounded toward the past); "Z", "z" or a +hh:mm/-hh:mm offset. Dates are checked (2025-02-29 is refused); second 60
 * is refused, so is an instant outside CT_TIME_MIN_US .. CT_TIME_MAX_US
 * (e.g. 0000-01-01T00:00:00+01:00). Whether `s` is canonical: format the
 * result and compare.
 * Returns 0, CT_EINVAL (NULL argument) or CT_EPARSE. Reentrant.
 */
CT_EXTERN int ct_time_parse_rfc3339(const char *s, int64_t *us_out);

#ifdef __cplusplus
}
#endif
#endif /* CHANGETRAIL_EVENT_H */
