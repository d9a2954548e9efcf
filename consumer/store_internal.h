/*
 * store_internal.h - what the parts of the consumer's store share (store.h
 * lists them): the handle and the per-collection writers.
 */
#ifndef CTC_STORE_INTERNAL_H
#define CTC_STORE_INTERNAL_H

#include "store.h"

#include <mongoc/mongoc.h>

struct ctc_store {
	mongoc_client_t *client;
	mongoc_database_t *db;
	mongoc_collection_t *history, *state, *contexts;
	bson_t *insert_opts; /* see ctc_store_open() */
};

/* The BSON documents end to end in data[0..len) one at a time: *doc a static
 * view of the one at *off, *off moved past it. 0 at the end, 1 for a
 * document, -1 when malformed. */
int ctc_store_next_doc(const uint8_t *data, size_t len, size_t *off, bson_t *doc);

int ctc_store_write_history(ctc_store *s, ctc_write_set *ws, size_t *n_dup, ct_error *err);
int ctc_store_write_contexts(ctc_store *s, ctc_contexts *c, ct_error *err);
int ctc_store_write_states(ctc_store *s, const uint8_t *data, size_t len, const int64_t *expected, ct_error *err);

#endif
