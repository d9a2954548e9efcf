/*
 * anchor.h - anchored chains: the consumer publishes the heads (collection,
 * document_id, version, hash) of the states it wrote, under a Merkle root
 * and chained to the previous anchor, optionally with an HMAC, to a Kafka
 * topic and/or an append-only file outside MongoDB. `changetrail verify
 * --anchors` reads them back and checks MongoDB against them
 * (docs/reliability.md, "Threat model").
 *
 * Record (one canonical JSON text, one line in the file, one Kafka message):
 * {"schema": "changetrail.anchor.v1", "worker", "group", "host", "time"
 * (RFC 3339 µs), "seq" (per worker, from 1), "part", "parts" (one anchor
 * split past max_leaves), "count", "leaves": [{"collection",
 * "document_id", "version", "hash"}...] (sorted), "merkle_root" (hex),
 * "prev_anchor" (hex SHA-256 of the previous record's text of this worker,
 * null for its first), "hmac" (hex, only with a key)}.
 *
 * Leaf hash: SHA-256(0x00 || canonical JSON of the leaf object); internal
 * node: SHA-256(0x01 || left || right); the tree of RFC 6962 (split at the
 * largest power of two below n); no leaf: SHA-256 of nothing. The HMAC is
 * HMAC-SHA256(key, canonical text of the record without "hmac").
 *
 * The pure part (heads, Merkle root, building and checking a record) is
 * thread-safe on distinct data. The publisher (ctc_anchor) takes heads from
 * the writer thread (ctc_anchor_add, locked) and publishes from the loop
 * thread (ctc_anchor_tick).
 */
#ifndef CTC_ANCHOR_H
#define CTC_ANCHOR_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "changetrail/common.h"
#include "config.h"
#include "metrics.h"

#define CTC_ANCHOR_SCHEMA "changetrail.anchor.v1"
/* Bounds on what verify accepts from outside: one record's text and the HMAC key. */
#define CTC_ANCHOR_MAX_RECORD_BYTES (64 * 1024 * 1024)
#define CTC_ANCHOR_MAX_KEY_BYTES 1024
#define CTC_ANCHOR_MIN_KEY_BYTES 16

typedef struct ctc_anchor_head {
	char *collection;
	char *document_id;
	int64_t version;
	char hash[65];
} ctc_anchor_head;

typedef struct ctc_anchor_heads {
	ctc_anchor_head *v;
	size_t n, cap;
} ctc_anchor_heads;

/* Appends a copy of one head. CT_ENOMEM, CT_EINVAL (hash not 64 hex characters). */
int ctc_anchor_heads_add(ctc_anchor_heads *hs, const char *collection, const char *document_id,
			 int64_t version, const char *hash, ct_error *err);
/* Moves every head of `from` to the end of `to` (from is left empty). CT_ENOMEM. */
int ctc_anchor_heads_move(ctc_anchor_heads *to, ctc_anchor_heads *from);
void ctc_anchor_heads_free(ctc_anchor_heads *hs);
/* Sorts by (collection, document_id, version), bytewise, and keeps only the
 * highest version of each document: the chain from it fixes the older ones. */
void ctc_anchor_heads_compact(ctc_anchor_heads *hs);

/* SHA-256(0x00 || canonical leaf object). CT_ENOMEM, CT_EINTERNAL. */
int ctc_anchor_leaf_hash(const ctc_anchor_head *h, uint8_t out[32], ct_error *err);
/* RFC 6962 Merkle tree hash of `n` leaves in the given order, as hex. CT_ENOMEM, CT_EINTERNAL. */
int ctc_anchor_merkle_root(const ctc_anchor_head *leaves, size_t n, char out[65], ct_error *err);
/* HMAC-SHA256 (RFC 2104). CT_ENOMEM, CT_EINTERNAL (libcrypto failed; `out` then all zero). */
int ctc_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t len, uint8_t out[32]);

typedef struct ctc_anchor_meta {
	const char *worker, *group, *host;
	int64_t time_us; /* wall clock */
	int64_t seq;
	int64_t part, parts;
} ctc_anchor_meta;

/*
 * Builds one record over `leaves` (sorted as ctc_anchor_heads_compact()
 * leaves them) chained to `prev` (hex, NULL for the first) and keyed with
 * `key` when key_len > 0. *line: its canonical text, no newline (free());
 * hash: hex SHA-256 of that text, the next record's prev_anchor.
 */
int ctc_anchor_build(const ctc_anchor_meta *meta, const ctc_anchor_head *leaves, size_t n,
		     const char *prev, const uint8_t *key, size_t key_len, char **line, char hash[65],
		     ct_error *err);

/*
 * Parses and checks one record's text (len bytes, at most
 * CTC_ANCHOR_MAX_RECORD_BYTES): schema, fields, leaves sorted and well
 * formed, count, merkle_root recomputed, and the HMAC when key_len > 0 (a
 * record without one fails then). *rec: the parsed record (json_decref());
 * hash: hex SHA-256 of the text as given. CT_EINVAL with the reason; *rec
 * is set whenever the text parsed as an object (so the caller can still
 * name the worker and seq), NULL otherwise.
 */
int ctc_anchor_check(const char *text, size_t len, const uint8_t *key, size_t key_len, json_t **rec,
		     char hash[65], ct_error *err);

/*
 * Reads an HMAC key file: its bytes, one trailing newline dropped,
 * CTC_ANCHOR_MIN_KEY_BYTES..CTC_ANCHOR_MAX_KEY_BYTES. The key is never in
 * an error message. CT_EIO, CT_ECONFIG.
 */
int ctc_anchor_read_key(const char *path, uint8_t key[CTC_ANCHOR_MAX_KEY_BYTES], size_t *key_len,
			ct_error *err);

/* ---- publisher ---- */

typedef struct ctc_anchor ctc_anchor;

/*
 * NULL in *out (and 0) when no target is configured ([anchor] topic and
 * file empty). Reads the key file, opens the file target (append). The
 * Kafka target needs ctc_anchor_set_producer() before the first tick.
 */
int ctc_anchor_new(const ctc_config *cfg, ctc_metrics *m, ctc_anchor **out, ct_error *err);
/* The producer it publishes with (owned by the caller; its dr_msg_cb must be
 * ctc_anchor_dr_cb with the anchor as opaque). */
void ctc_anchor_set_producer(ctc_anchor *a, rd_kafka_t *producer);
void ctc_anchor_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/* Takes the heads of one successful state write (hs is left empty). Any thread. */
void ctc_anchor_add(ctc_anchor *a, ctc_anchor_heads *hs);
/* Loop thread: serves delivery reports; publishes when interval_ms passed
 * since the last anchor (or `force`) and heads wait. now_us monotonic. */
void ctc_anchor_tick(ctc_anchor *a, int64_t now_us, bool force);
/* Publishes what waits and waits up to timeout_ms for Kafka deliveries. */
void ctc_anchor_close(ctc_anchor *a, int timeout_ms);
void ctc_anchor_free(ctc_anchor *a);

#endif
