/*
 * producer_internal.h - the producer's structures, shared by the files of
 * producer/. Not installed.
 */
#ifndef CT_PRODUCER_INTERNAL_H
#define CT_PRODUCER_INTERNAL_H

#include "changetrail/producer.h"
#include "ct_buf.h"
#include "ct_internal.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define CT_MAX_COLLECTION_BYTES 255
#define CT_MAX_DOCUMENT_ID_BYTES 1024
#define CT_MAX_NAME_BYTES 255     /* source, label, actor, relation name */
#define CT_DOC_MAX_DEPTH 64
#define CT_CONTEXT_MAX_NESTING 32
#define CT_TRACK_MAX_PATHS 256
#define CT_TRACK_MAX_RULES 1024

/* Fields kept or dropped for one collection. Paths are split on '.'. */
typedef struct ct_track_rule {
	char *collection;
	char **include;   /* NULL-terminated, or NULL for "every field" */
	char **exclude;   /* NULL-terminated, or NULL */
} ct_track_rule;

typedef struct ct_kv {
	char *key, *value;
} ct_kv;

struct ct_producer_config {
	char *source;
	char *topic;
	int queue_fail;          /* 1: "fail", 0: "block" */
	int queue_block_ms;
	char *spool_path;
	uint64_t spool_max_bytes;
	int spool_fsync;
	size_t max_document_bytes;
	ct_kv *kafka;            /* librdkafka properties in the order set */
	size_t n_kafka;
	ct_track_rule *rules;
	size_t n_rules;
	ct_delivery_cb dr_cb;
	void *dr_opaque;
	ct_log_cb log_cb;        /* NULL: ct_producer_default_log() */
	void *log_opaque;
};

/* The spool: length-prefixed records appended to a file, replayed in order. */
typedef struct ct_spool {
	char *path;
	FILE *f;
	uint64_t max_bytes;
	int fsync;
	uint64_t write_off;   /* end of the file */
	uint64_t read_off;    /* next record to replay */
	uint64_t records;     /* not yet replayed */
	uint64_t peek_next;   /* offset after the record last peeked */
} ct_spool;

struct ct_producer {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	ct_producer_config *conf;  /* own deep copy */
	char *source_json;         /* source as an escaped JSON string */
	pthread_t thread;
	atomic_int stop;
	/* Spool state: while spooling is true, every new event goes to the
	 * spool so that per-key order holds until the spool is drained. */
	pthread_mutex_t spool_lock;
	ct_spool *spool;
	atomic_bool spooling;
	/* counters */
	/* destroy: events purged from librdkafka's queue, in spool format */
	ct_buf purged;
	uint64_t n_purged;
	int destroying;
	atomic_uint_fast64_t emitted, delivered, failed, unchanged, queue_full, rejected,
		spooled, spool_replayed, in_flight;
	/* Last client-level error librdkafka reported (error_cb), e.g. a failed
	 * SASL authentication; named by ct_producer_flush() when it times out. */
	pthread_mutex_t err_lock;
	char last_error[256];
};

struct ct_context {
	/* Every holder has a reference: each open level on each thread, each
	 * handle from ct_context_current(). The last release emits the
	 * context_end marker: nobody can add to the changeset any more. */
	atomic_int refs;
	int begun;                 /* its context_begin marker went out */
	char id[37];
	ct_producer *producer;     /* the one that emits its markers */
	pthread_mutex_t lock;      /* guards metadata, metadata_json, actor */
	json_t *metadata;          /* accumulated, always an object */
	char *metadata_json;       /* compact text cache of metadata */
	char *actor;               /* metadata "user" or "actor" when a string */
};

/* config.c */
ct_producer_config *ct_producer_config_dup(const ct_producer_config *c);
const ct_track_rule *ct_track_rule_find(const ct_producer_config *c, const char *collection);

/* tracking.c: applies a rule to a document tree in place. */
int ct_track_apply(const ct_track_rule *r, json_t *doc, ct_error *err);

/* encode.c: appends a JSON string literal (escaped) to b. */
void ct_encode_string(ct_buf *b, const char *s, size_t n);
/* Builds the event text for one change; docs already validated text. */
typedef struct ct_encoded_docs {
	const char *after, *before; /* JSON text or NULL */
	size_t after_len, before_len;
} ct_encoded_docs;
int ct_encode_event(ct_buf *b, const ct_producer *p, const ct_change *c, const char *event_id,
		    const char *ts, ct_context *ctx, const ct_encoded_docs *docs);

/* context.c: this thread's innermost context (borrowed) or NULL. */
ct_context *ct_context_top(void);
/* context.c: snapshot of a context's metadata text and actor for one event. */
void ct_context_snapshot(ct_context *ctx, ct_buf *b_metadata, char *actor, size_t actor_size);
int ct_context_emit_marker(ct_context *ctx, ct_op op, ct_error *err);

/* spool.c */
int ct_spool_open(ct_spool **out, const char *path, uint64_t max_bytes, int do_fsync, ct_error *err);
int ct_spool_append(ct_spool *s, const char *key, size_t klen, const char *val, size_t vlen,
		    ct_error *err);
/* Reads the next record into key and val (malloc'd). 1: got one, 0: empty, <0: error. */
int ct_spool_peek(ct_spool *s, char **key, size_t *klen, char **val, size_t *vlen, ct_error *err);
void ct_spool_consume(ct_spool *s);  /* the peeked record is handed over */
int ct_spool_reset_if_empty(ct_spool *s);
void ct_spool_close(ct_spool *s);
/* Appends one record in spool format to b (for ct_spool_prepend). */
void ct_spool_encode(ct_buf *b, const char *key, size_t klen, const char *val, size_t vlen);
/* Rewrites the spool as `records` (n of them) followed by the records not
 * yet replayed: events that were older than the spool's go first. */
int ct_spool_prepend(ct_spool *s, const ct_buf *records, uint64_t n, ct_error *err);

/* producer.c: hands a finished message to Kafka or the spool. */
int ct_producer_send(ct_producer *p, const char *key, size_t klen, const char *val, size_t vlen,
		     ct_error *err);

#endif
