/*
 * changetrail/producer.h - emit document change events with their context
 * to Kafka.
 *
 * An application creates one ct_producer at start-up, calls ct_emit() (or the
 * ct_emit_* shorthands) after each change it makes to a document, wraps
 * requests, tasks and commands in contexts (ct_context_enter/exit) so that
 * their changes form one changeset, and flushes and destroys the producer at
 * exit. Every event is a changetrail.event.v1 JSON message (see
 * schemas/change-event.v1.schema.json) keyed "<collection>/<document_id>", so
 * Kafka keeps the order of the changes of one document.
 *
 * Durability: the producer is idempotent with acks=all by default; events
 * wait in librdkafka's queue while the brokers are unreachable and, once that
 * queue is full, in an optional append-only spool file, bounded in bytes,
 * that is replayed in order when the brokers are back. Nothing is dropped
 * silently: a failure is returned by ct_emit(), or reported to the delivery
 * callback and counted in ct_producer_stats.
 *
 * Thread-safety: a ct_producer is safe to use from any number of threads at
 * once, except ct_producer_destroy(). Configuration objects are not
 * thread-safe. The context stack is per thread.
 */
#ifndef CHANGETRAIL_PRODUCER_H
#define CHANGETRAIL_PRODUCER_H

#include <jansson.h>
#include <stdint.h>

#include "changetrail/common.h"
#include "changetrail/event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_producer ct_producer;
typedef struct ct_producer_config ct_producer_config;
typedef struct ct_context ct_context;

/* ---------------------------------------------------------------- config */

/** A new configuration with defaults; NULL when out of memory. */
CT_EXTERN ct_producer_config *ct_producer_config_new(void);

/** Frees a configuration (NULL is allowed). */
CT_EXTERN void ct_producer_config_destroy(ct_producer_config *conf);

/**
 * Sets one property. Keys (values are strings):
 *  - "source"              name of the application (required), <= 255 bytes
 *  - "topic"               default "changetrail.events"
 *  - "kafka.<property>"    passed to librdkafka as <property>, e.g.
 *                          "kafka.bootstrap.servers", "kafka.security.protocol",
 *                          "kafka.sasl.password". Defaults set by changetrail:
 *                          enable.idempotence=true, acks=all, linger.ms=10,
 *                          socket.nagle.disable=true, compression.type=lz4,
 *                          message.timeout.ms=0 (never give up while the
 *                          broker is away); docs/producer.md says why
 *  - "queue.full"          "block" (default) or "fail": what ct_emit() does
 *                          when librdkafka's queue is full and no spool is set
 *  - "queue.block.ms"      longest time ct_emit() blocks, default 100
 *  - "spool.path"          file for events that do not fit the queue; unset:
 *                          no spool. Created if missing; events found in it
 *                          at start (a previous run's) are sent first.
 *  - "spool.max.bytes"     bound of the spool file, default 1 GiB; past it
 *                          ct_emit() fails with CT_EQUEUEFULL
 *  - "spool.fsync"         "false" (default) or "true": fdatasync() after
 *                          every spooled event (survives a machine crash)
 *  - "track.<collection>.include"  comma-separated top-level fields or
 *                          dotted paths: only these are sent for that collection
 *  - "track.<collection>.exclude"  comma-separated fields or dotted paths
 *                          that never leave the process (e.g. "password")
 *  - "max.document.bytes"  largest serialised document, default 1 MiB
 * Errors: CT_EINVAL (NULL), CT_ECONFIG (unknown key or bad value; the
 * message names the key). The value is copied.
 */
CT_EXTERN int ct_producer_config_set(ct_producer_config *conf, const char *key, const char *value,
				     ct_error *err);

/** Outcome of one event, reported once per event that reached librdkafka. */
typedef struct ct_delivery {
	const char *event_id;   /**< borrowed for the duration of the call */
	const char *collection; /**< borrowed */
	const char *document_id;/**< borrowed */
	int code;               /**< CT_OK, or CT_EKAFKA when it was not delivered */
	const char *message;    /**< reason when code != CT_OK, else "" */
	int32_t partition;      /**< -1 when not delivered */
	int64_t offset;         /**< -1 when not delivered */
} ct_delivery;

/**
 * Called from the producer's own background thread for every delivered or
 * failed event. It must not block for long and must not call
 * ct_producer_destroy(). `opaque` is passed through.
 */
typedef void (*ct_delivery_cb)(const ct_delivery *d, void *opaque);

CT_EXTERN void ct_producer_config_set_delivery_cb(ct_producer_config *conf, ct_delivery_cb cb,
						  void *opaque);

/**
 * A log line of the producer's Kafka client (librdkafka): a broker that
 * cannot be reached, a failed authentication, debug lines when "kafka.debug"
 * is set. `level` is syslog's (3 error, 4 warning, 5 notice, 6 info,
 * 7 debug; "kafka.log_level" bounds it, default 6), `facility` librdkafka's
 * short tag ("FAIL", "REQTMOUT"), `message` one line of librdkafka's text
 * (it never holds sasl.password); both are borrowed for the call.
 *
 * Called from librdkafka's own threads: it must be thread-safe, must not
 * block for long and must not call ct_producer_destroy().
 *
 * Without a callback the producer writes each line to stderr itself, as one
 * logfmt line with its control characters escaped:
 *   ts=2026-12-07T19:20:00.123Z level=error component=changetrail-producer facility=FAIL msg="..."
 * never librdkafka's raw "%3|...|FAIL|..." form. A callback that does
 * nothing silences them.
 */
typedef void (*ct_log_cb)(int level, const char *facility, const char *message, void *opaque);

/** Sets the log callback (NULL: the default line on stderr). `opaque` is passed through. */
CT_EXTERN void ct_producer_config_set_log_cb(ct_producer_config *conf, ct_log_cb cb, void *opaque);

/* -------------------------------------------------------------- producer */

/**
 * Creates a producer from `conf` (which the caller still owns and may
 * destroy afterwards). Starts a background thread that serves delivery
 * reports and replays the spool. Does not wait for the brokers.
 * Errors: CT_EINVAL, CT_ECONFIG (missing source, rejected librdkafka
 * property), CT_EIO (spool file), CT_EKAFKA, CT_ENOMEM.
 */
CT_EXTERN int ct_producer_new(const ct_producer_config *conf, ct_producer **out, ct_error *err);

/**
 * Waits until every event emitted so far (spool included) is delivered or
 * failed, at most `timeout_ms`. Errors: CT_ETIMEDOUT (events still pending;
 * they are kept; the message ends with the last client-level Kafka error,
 * e.g. "_AUTHENTICATION: ..." for a wrong sasl.password), CT_EINVAL.
 */
CT_EXTERN int ct_producer_flush(ct_producer *p, int timeout_ms, ct_error *err);

/**
 * Flushes for at most `timeout_ms`, then frees everything. Events still in
 * librdkafka's memory queue after that are lost unless a spool is configured
 * (they are written to it and sent by the next run); the number lost is
 * returned (>= 0). NULL is allowed (returns 0). Not thread-safe with other
 * calls on `p`.
 */
CT_EXTERN int ct_producer_destroy(ct_producer *p, int timeout_ms);

/** Counters since ct_producer_new(). Monotonic; read without locking. */
typedef struct ct_producer_stats {
	uint64_t emitted;         /**< accepted by ct_emit() (queued or spooled) */
	uint64_t delivered;       /**< acknowledged by the brokers */
	uint64_t failed;          /**< delivery failed for good (callback told) */
	uint64_t unchanged;       /**< updates skipped: no tracked field changed */
	uint64_t queue_full;      /**< times the librdkafka queue was full */
	uint64_t rejected;        /**< ct_emit() calls that returned an error */
	uint64_t spooled;         /**< events written to the spool */
	uint64_t spool_replayed;  /**< spooled events handed back to librdkafka */
	uint64_t spool_bytes;     /**< current size of the spool file */
	uint64_t in_flight;       /**< emitted, not yet delivered or failed */
} ct_producer_stats;

CT_EXTERN void ct_producer_stats_get(ct_producer *p, ct_producer_stats *out);

/* ----------------------------------------------------------------- emit */

/**
 * One change. Zero-initialise it (`ct_change c = {0};`), then fill what
 * applies; every pointer is borrowed for the duration of ct_emit() only.
 * The document may be given as JSON text (`after_json`, with its length or
 * -1 for NUL-terminated) or as a jansson object (`after`); the same for
 * `before`. Text is checked to be a well-formed JSON object (syntax, UTF-8,
 * number ranges, nesting <= 64) without being parsed into a tree, unless a
 * tracking rule or `before` needs the tree.
 */
typedef struct ct_change {
	ct_op op;                    /**< required */
	const char *collection;      /**< required, 1..255 bytes, no '/' */
	const char *document_id;     /**< required, 1..1024 bytes */
	const char *after_json;      /**< full document after the change */
	long after_len;              /**< bytes of after_json; 0 or -1 = strlen */
	const json_t *after;         /**< or the document as a tree */
	const char *before_json;     /**< optional previous document */
	long before_len;
	const json_t *before;
	const char *label;           /**< required for CT_OP_EVENT (a manual event) */
	const char *actor;           /**< who; overrides the context's "user" */
	const char *parent_collection;  /**< child changes roll up into this parent */
	const char *parent_document_id;
	const char *relation_name;   /**< for CT_OP_RELATION_ADD/REMOVE: e.g. "tags" */
	const char *relation_collection;
	const char *relation_document_id;
	int64_t seq;                 /**< application version number; 0 = none */
	ct_context *context;         /**< explicit context; NULL = this thread's */
} ct_change;

/**
 * Emits one change event. Returns once the event is in librdkafka's queue
 * or in the spool (it is delivered in the background), or when the update
 * changed no tracked field (CT_OK, counted as `unchanged`, nothing sent).
 * Never blocks longer than "queue.block.ms".
 * Errors: CT_EINVAL (missing or bad field; the message names it),
 * CT_EPARSE (document text not a well-formed JSON object), CT_ELIMIT
 * (document over max.document.bytes or nested deeper than 64),
 * CT_EQUEUEFULL (queue full and the policy is "fail", the block time passed,
 * or the spool is full), CT_EIO (spool write), CT_EKAFKA.
 * If `event_id_out` is not NULL it receives the event's UUIDv7.
 * Thread-safe.
 */
CT_EXTERN int ct_emit(ct_producer *p, const ct_change *c, char event_id_out[37], ct_error *err);

/** Shorthands for ct_emit() with a NUL-terminated JSON document. */
CT_EXTERN int ct_emit_insert(ct_producer *p, const char *collection, const char *document_id,
			     const char *after_json, ct_error *err);
CT_EXTERN int ct_emit_update(ct_producer *p, const char *collection, const char *document_id,
			     const char *after_json, const char *before_json /* NULL: unknown */,
			     ct_error *err);
CT_EXTERN int ct_emit_delete(ct_producer *p, const char *collection, const char *document_id,
			     const char *before_json /* NULL: unknown */, ct_error *err);

/* -------------------------------------------------------------- context */

/**
 * Enters a context on the calling thread. With no context open on this
 * thread it starts a root context: a new UUIDv7, `metadata_json` (a JSON
 * object, or NULL for {}) as its metadata, and a context_begin marker event.
 * Inside an open context it nests: the metadata is merged (shallow, later
 * keys win) into the root's, and events keep carrying the root's id.
 * Must be paired with ct_context_exit() on the same thread.
 * Errors: CT_EINVAL, CT_EPARSE (metadata not a JSON object), CT_ELIMIT
 * (nesting deeper than 32 on this thread), CT_ENOMEM, and those of ct_emit()
 * for the marker.
 */
CT_EXTERN int ct_context_enter(ct_producer *p, const char *metadata_json, ct_error *err);

/**
 * Leaves the innermost context of this thread. When that releases the last
 * hold on a root context (every level on every thread it was attached to,
 * and every handle from ct_context_current()), a context_end marker with the
 * accumulated metadata is emitted, which tells the consumer that the
 * changeset is complete. Errors: CT_EINVAL (no open context), and those of
 * ct_emit() for the marker.
 */
CT_EXTERN int ct_context_exit(ct_producer *p, ct_error *err);

/**
 * The innermost context of this thread with a new reference, or NULL. Give it
 * to another thread or task, which calls ct_context_attach() (and later
 * ct_context_exit()), or put it in ct_change.context. The reference holds
 * the changeset open until ct_context_unref(), so a task that attaches late
 * still belongs to it. Release every context before destroying the producer.
 */
CT_EXTERN ct_context *ct_context_current(void);

/**
 * Opens `ctx` (from another thread) on the calling thread, as if entered
 * there: events emitted on this thread carry its id, and its context_end
 * waits for this thread's matching ct_context_exit(). Adds no metadata.
 * Errors: CT_EINVAL, CT_ELIMIT.
 */
CT_EXTERN int ct_context_attach(ct_context *ctx, ct_error *err);

/**
 * Continues on this thread a context that began elsewhere (another process:
 * a task queue's worker, a service called with the id): opens a root context
 * with the given id (a lowercase UUID, 36 characters) and `metadata_json` (a
 * JSON object or NULL), without context_begin or context_end markers, so
 * the changeset keeps the begin and end of the place that opened it. Nested
 * enters merge into it as usual; pair with ct_context_exit(). Errors:
 * CT_EINVAL (not a lowercase UUID), CT_EPARSE, CT_ELIMIT, CT_ENOMEM.
 */
CT_EXTERN int ct_context_join(ct_producer *p, const char *context_id, const char *metadata_json,
			      ct_error *err);

/**
 * Reference counting of a context; both accept NULL. Thread-safe. The last
 * unref of a context emits its context_end marker (see ct_context_exit()).
 */
CT_EXTERN ct_context *ct_context_ref(ct_context *ctx);
CT_EXTERN void ct_context_unref(ct_context *ctx);

/** The context's UUID (borrowed, lives as long as `ctx`). */
CT_EXTERN const char *ct_context_id(const ct_context *ctx);

/** Collection of context_begin/context_end marker events; their document_id is the context id. */
#define CT_CONTEXT_COLLECTION "_changetrail.context"

#ifdef __cplusplus
}
#endif
#endif /* CHANGETRAIL_PRODUCER_H */
