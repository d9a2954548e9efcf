/*
 * changetrail/canonical.h - canonical JSON text and the hashes of the
 * per-document hash chain.
 *
 * The canonical form is what changetrail hashes and what it stores as a
 * document snapshot, so that any JSON key (including "", ".", "$x", "~" and
 * any unicode) survives MongoDB unchanged and a replay of the same events
 * rebuilds byte-identical records. Rules:
 *  - no insignificant white space;
 *  - object members sorted by key, comparing the keys' UTF-8 bytes (this is
 *    Unicode code point order); keys are unique (the parser rejects
 *    duplicates);
 *  - strings: UTF-8 as given (no normalisation); '"' and '\\' escaped with a
 *    backslash; control characters as \b \f \n \r \t or \u00xx (lowercase
 *    hex); everything else, including '/' and non-ASCII, written as is;
 *  - integers (jansson's json_int_t, 64-bit) in plain decimal;
 *  - reals in the shortest form that reads back to the same double
 *    (%.{1..17}g), with ".0" appended when that form has no '.', 'e' or 'n'
 *    so that a real stays a real (1.0 -> "1.0", 1e300 -> "1e+300");
 *  - true, false, null.
 * This is close to RFC 8785 (JCS) but not equal: JCS sorts keys by UTF-16
 * code units and formats numbers as ECMAScript does.
 */
#ifndef CHANGETRAIL_CANONICAL_H
#define CHANGETRAIL_CANONICAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "changetrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Nesting bound of ct_canonical_dump(); deeper values give CT_ELIMIT. */
#define CT_CANONICAL_MAX_DEPTH 512

/**
 * Writes the canonical text of `value` into a new NUL-terminated buffer.
 * `*out` is owned by the caller (free()); `len` (may be NULL) receives its
 * length without the NUL. Errors: CT_EINVAL (NULL argument), CT_ELIMIT
 * (nesting over CT_CANONICAL_MAX_DEPTH), CT_ENOMEM. Thread-safe for distinct
 * or unmodified values.
 */
CT_EXTERN int ct_canonical_dump(const json_t *value, char **out, size_t *len, ct_error *err);

/**
 * Like ct_canonical_dump() but object members stay in their insertion order:
 * compact JSON for output meant for people and other tools (reals in their
 * shortest exact form, which jansson's own dumper does not give).
 */
CT_EXTERN int ct_json_dump_compact(const json_t *value, char **out, size_t *len, ct_error *err);

/**
 * Incremental SHA-256 (OpenSSL's libcrypto underneath). Opaque: one per
 * hash in progress, used by one thread at a time. ct_sha256_init() allocates
 * what ct_sha256_final() frees, so every init is followed by one final, even
 * when init failed.
 */
typedef struct ct_sha256_ctx {
	void *impl;  /**< private */
	int failed;  /**< private */
} ct_sha256_ctx;

/** Starts a hash. Errors: CT_ENOMEM (ct_sha256_final() still to be called; it reports it again). */
CT_EXTERN int ct_sha256_init(ct_sha256_ctx *ctx);
/** Adds `len` bytes. A failure is kept for ct_sha256_final() to report. */
CT_EXTERN void ct_sha256_update(ct_sha256_ctx *ctx, const void *data, size_t len);
/**
 * Writes the digest to `out` and frees the context. Errors (then `out` is
 * all zero): CT_ENOMEM, CT_EINTERNAL (libcrypto failed), CT_EINVAL (already
 * finished).
 */
CT_EXTERN int ct_sha256_final(ct_sha256_ctx *ctx, uint8_t out[32]);
/**
 * One-shot SHA-256 of `len` bytes. Thread-safe (one libcrypto context per
 * thread, freed when the thread exits). Errors (then `out` is all zero):
 * CT_ENOMEM, CT_EINTERNAL.
 */
CT_EXTERN int ct_sha256(const void *data, size_t len, uint8_t out[32]);
/** Lowercase hex of `n` bytes into `out`, which must hold 2n+1 bytes. */
CT_EXTERN void ct_hex(const uint8_t *bytes, size_t n, char *out);

/**
 * Hash of a history record, as stored in its "hash" member: the lowercase
 * hex SHA-256 of the canonical text of `record` with its "hash" and "kafka"
 * members left out. Everything else is covered, "prev_hash" included (the
 * previous record's hash, or null for version 1), which makes the chain.
 * "kafka" (topic/partition/offset) is provenance, not content: a replay from
 * another topic or offset must give the same hash. `record` must be an
 * object and is not modified. Errors as ct_canonical_dump(), plus CT_EINVAL
 * when `record` is not an object. Thread-safe.
 */
CT_EXTERN int ct_record_hash(const json_t *record, char out_hex[65], ct_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CHANGETRAIL_CANONICAL_H */
