/*
 * pipeline.h - changetrail-consumer's pipeline: Kafka consumer group on a
 * libuv loop, batches handed to a writer thread (parse, previous state,
 * diff, records, MongoDB, DLQ), offsets committed only after the batch is
 * acknowledged. docs/consumer.md describes the behaviour.
 */
#ifndef CTC_PIPELINE_H
#define CTC_PIPELINE_H

#include "changetrail/common.h"
#include "config.h"

typedef struct ctc_pipeline ctc_pipeline;

/* Builds the pipeline (Kafka clients, HTTP listener); no fetching yet. `cfg` must outlive it. */
ctc_pipeline *ctc_pipeline_new(const ctc_config *cfg, ct_error *err);

/*
 * Runs the loop until SIGTERM/SIGINT, ctc_pipeline_stop() or exit_on_idle_ms.
 * Returns 0 after a clean stop (everything consumed was written and
 * committed), CT_ETIMEDOUT when the shutdown deadline left a batch unwritten
 * (not committed: it will be redelivered), another code on a fatal error.
 */
int ctc_pipeline_run(ctc_pipeline *p, ct_error *err);

/* Asks a running pipeline to stop as on SIGTERM. Thread-safe. */
void ctc_pipeline_stop(ctc_pipeline *p);

/* Port the HTTP server listens on (0 when none). */
int ctc_pipeline_http_port(const ctc_pipeline *p);

void ctc_pipeline_free(ctc_pipeline *p);

#endif
