/*
 * ct_canon.h - the pieces of the canonical form (changetrail/canonical.h)
 * for code that writes canonical text without building a tree first (the
 * consumer's record hash). Internal; not installed.
 */
#ifndef CT_CANON_H
#define CT_CANON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "changetrail/common.h"
#include "ct_buf.h"

/* A string, quoted and escaped. */
void ct_canon_string(ct_buf *b, const char *s, size_t n);

/* An integer. */
void ct_canon_int(ct_buf *b, int64_t v);

/* Any value (objects' keys sorted). CT_ELIMIT too deep, CT_ENOMEM. */
int ct_canon_value(ct_buf *b, const json_t *v, ct_error *err);

/* The SHA-256 of the text in `b`, as 64 hex digits; frees `b` either way.
 * CT_ENOMEM when an append to `b` had failed. */
int ct_canon_hash_hex(ct_buf *b, char out_hex[65], ct_error *err);

#endif
