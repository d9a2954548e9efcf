/*
 * offsets.h - proves whether offsets went back (issue 16: a topic deleted
 * and re-created, a move to another cluster). An event at or before the
 * offset a document's state was last moved by, with an id the state does not
 * remember, is either an old event (the same log: applied before, its id
 * forgotten since) or a new one in a new log whose offsets started again.
 * Offsets alone cannot tell; the log can: the message at the state's
 * last_offset is the state's last_event in the same log and anything else
 * (another id or content, or no message at all) in a new one.
 *
 * A small side consumer of its own (assign, seek, one message, bounded
 * time; no group, no commits) reads that message. Answers are cached per
 * (topic, partition, offset) - what the current log holds at an offset does
 * not change - and per (topic, partition) the first "went back" is logged
 * once and counted. Not thread-safe: one thread (the worker's stage 1).
 */
#ifndef CTC_OFFSETS_H
#define CTC_OFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "changetrail/common.h"
#include "record.h"

typedef struct ctc_offsets_prover ctc_offsets_prover;

/*
 * `rk`: a consumer made for this (no subscription; enable.partition.eof,
 * auto.offset.reset=error); taken over (destroyed by ctc_offsets_free).
 * `went_back` is bumped once per (topic, partition) found to have gone
 * back. NULL when out of memory (rk destroyed).
 */
ctc_offsets_prover *ctc_offsets_new(rd_kafka_t *rk, atomic_uint_fast64_t *went_back);
void ctc_offsets_free(ctc_offsets_prover *p);

/* Forgets every answer (a new assignment: the log may have changed meanwhile). */
void ctc_offsets_reset(ctc_offsets_prover *p);

/*
 * The verdict for a state whose last applied event (`last_id`, `last_sha`:
 * hex SHA-256 or NULL = unknown) was taken at (topic, partition,
 * last_offset): CTC_OFFSETS_SAME_LOG when the log holds that event there,
 * CTC_OFFSETS_WENT_BACK when it holds another one or none (offset out of
 * range, past the end). `last_id` NULL (a state that remembers no event):
 * WENT_BACK, nothing proves the same log. CT_EKAFKA / CT_ETIMEDOUT when
 * Kafka gave no answer within `timeout_ms` (nothing is decided then: the
 * caller must not skip the event).
 */
int ctc_offsets_prove(ctc_offsets_prover *p, const char *topic, int32_t partition, int64_t last_offset,
		      const char *last_id, const char *last_sha, int timeout_ms, ctc_offsets *verdict,
		      ct_error *err);

/*
 * Lowercase hex SHA-256 of data[0..len) into out (65 bytes with the NUL).
 * 0, or ct_sha256()'s error with out set to "" (never a digest to compare).
 */
int ctc_sha256_hex(const void *data, size_t len, char out[65]);

#endif
