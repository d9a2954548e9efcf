/*
 * config.h - configuration of changetrail-consumer: an INI file, then
 * CHANGETRAIL_<SECTION>_<KEY> environment overrides, then validation.
 * docs/consumer.md is the reference of every key.
 */
#ifndef CTC_CONFIG_H
#define CTC_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "changetrail/common.h"

/* Bounds on what a config file may hold. */
#define CTC_CONFIG_MAX_FILE_BYTES (1024 * 1024)
#define CTC_CONFIG_MAX_LINE 4096
#define CTC_CONFIG_MAX_KAFKA_KEYS 256

typedef struct ctc_kv {
	char *key;
	char *value;
	char *where; /* where the value came from: "file:line" or "environment NAME" */
} ctc_kv;

/* Bound on the warnings one configuration collects (more are counted). */
#define CTC_CONFIG_MAX_WARNINGS 16

typedef struct ctc_config {
	/* [kafka]: passed to librdkafka as they are (consumer and DLQ producer) */
	ctc_kv kafka[CTC_CONFIG_MAX_KAFKA_KEYS];
	size_t nkafka;
	/* [mongodb] */
	char *mongodb_uri;
	char *mongodb_database;
	int64_t history_ttl_days;    /* 0 = off; > 0: TTL index on history.ts (docs/storage.md, Retention) */
	/* [consumer] */
	char *topic;
	char *dlq_topic;
	char *group_id;
	int64_t batch_size;          /* 1..10000 */
	int64_t batch_ms;            /* 1..60000 */
	int64_t cache_max_documents; /* 1..100000000 */
	int64_t cache_max_mb;        /* 1..1048576: bound on the cache's approximate size */
	int64_t state_flush_ms;      /* 0 = with every batch; else at most this long between state writes */
	int64_t state_flush_max_documents; /* changed states that force a state write (capped at cache_max_documents) */
	int64_t shutdown_timeout_ms; /* 100..600000 */
	int64_t exit_on_idle_ms;     /* 0 = never; >0: stop after so long without messages */
	bool no_write;               /* null sink: everything but the MongoDB writes */
	char *log_level;
	char *log_format;            /* [log] format: "logfmt" (default) or "json" */
	char *key_check;             /* "strict" (default): a message keyed other than <collection>/<document_id> goes to the DLQ; "off" */
	/* event limits (0 = the parser's default) */
	int64_t max_event_bytes, max_depth, max_keys, max_string_bytes, max_array_items;
	int64_t store_stall_ms;      /* a MongoDB write outstanding longer is a stall: /readyz fails */
	/* [http] */
	char *http_listen; /* "host:port"; empty = no HTTP server */
	/* [anchor] (consumer/anchor.h): off while topic and file are both empty */
	char *anchor_topic;
	char *anchor_file;
	char *anchor_hmac_key_file; /* its content is the key, never shown */
	int64_t anchor_interval_ms;
	int64_t anchor_max_leaves;  /* leaves per record; more are split into parts */
	/* [serve] (`changetrail serve`, docs/web.md) */
	char *serve_listen;    /* "host:port"; empty = 127.0.0.1:8080 */
	char *serve_auth_file; /* "bearer TOKEN" or "basic USER:PASSWORD"; its content is never shown */
	/* what was ignored with a warning (unknown CHANGETRAIL_* variables); the caller shows them */
	char *warnings[CTC_CONFIG_MAX_WARNINGS];
	size_t nwarnings;
	size_t warnings_dropped;
} ctc_config;

/* Fills `cfg` with the defaults (allocates; ctc_config_free() it). */
int ctc_config_init(ctc_config *cfg, ct_error *err);
void ctc_config_free(ctc_config *cfg);

/*
 * Reads the INI file at `path` into `cfg` (on top of what it holds). Errors
 * (CT_ECONFIG, CT_EIO, CT_ELIMIT) name "path:line" and the rule.
 *
 * Values (docs/consumer.md, Configuration): surrounding whitespace is
 * dropped; a '#' or ';' at the start of the value or after whitespace begins
 * a comment (`listen = 0.0.0.0:9464  # all interfaces`), one right after
 * another character is kept (`password = ab#c;d`); a value in double or
 * single quotes is taken as written between them, comment characters and
 * surrounding spaces included, with nothing but a comment after the closing
 * quote (no escapes: a value holding a " is quoted with ' and the reverse).
 */
int ctc_config_load_file(ctc_config *cfg, const char *path, ct_error *err);

/*
 * Applies CHANGETRAIL_<SECTION>_<KEY>=value from `envp` (NULL-terminated,
 * usually environ). For [kafka] the key is lowercased and '_' becomes '.'
 * (CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers); for the other
 * sections it is lowercased (CHANGETRAIL_CONSUMER_BATCH_SIZE -> batch_size).
 * An unknown key of a known section is an error (CT_ECONFIG naming the
 * variable); a CHANGETRAIL_* variable naming no section is not a setting:
 * it is ignored with a warning in cfg->warnings (none for the project's own
 * CHANGETRAIL_CONSUMER and CHANGETRAIL_LIB).
 */
int ctc_config_apply_env(ctc_config *cfg, char *const *envp, ct_error *err);

/*
 * Checks what must be set and the bounds; CT_ECONFIG naming the key. Every
 * [kafka] property is set on a scratch librdkafka configuration, so an
 * unknown property or a value librdkafka refuses fails here naming where it
 * came from ("file:line" or the variable) and librdkafka's reason (not for
 * secret keys, whose values are never quoted).
 */
int ctc_config_validate(const ctc_config *cfg, ct_error *err);

/* Value of a [kafka] key or NULL. */
const char *ctc_config_kafka_get(const ctc_config *cfg, const char *key);

/* true when the value of this [kafka] key must never be shown. */
bool ctc_config_is_secret_key(const char *key);

/*
 * Writes `uri` with its user information (up to the last '@', so a password
 * holding an unescaped '@' never shows) replaced by *** into out (always
 * NUL-terminated): ct_redact_uri(). Returns out.
 */
const char *ctc_config_redact_uri(const char *uri, char *out, size_t size);

/*
 * Writes `value` as an INI value that ctc_config_load_file() reads back as
 * it is: plain when it can, else in double quotes, else in single quotes.
 * Returns false when no form reads back the same (a value holding both quote
 * characters that also needs quoting); it is then written plain.
 */
bool ctc_config_fprint_value(FILE *out, const char *value);

/* Prints cfg->warnings, one "prefix: warning: ..." line each, to `out`. */
void ctc_config_print_warnings(const ctc_config *cfg, const char *prefix, FILE *out);

/* Prints the effective configuration as INI, secrets shown as ***. */
void ctc_config_print(const ctc_config *cfg, FILE *out);

#endif
