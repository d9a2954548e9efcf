/*
 * ct_internal.h - helpers shared by the library's own files; not installed.
 */
#ifndef CT_INTERNAL_H
#define CT_INTERNAL_H

#include "changetrail/common.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Fills `err` (if not NULL) with `code` and a printf-style message, and
 * returns `code`, so that failures read `return ct_error_set(err, ...)`.
 */
int ct_error_set(ct_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define CT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Test-only deterministic identities, for the reliability suite
 * (tests/reliability/ct_loadgen.c), which must produce the same event
 * stream in every run. Not exported by the shared library (hidden
 * visibility); only programs linking the static library can call it.
 *
 * ct_test_ident_set(stream, start_ms) on a thread makes every later
 * ct_uuid7_new() on that thread return a UUIDv7 built from a counter:
 * unix_ts_ms = start_ms + n (n = 1, 2, ...), rand_a = stream (12 bits),
 * rand_b = n; and ct_test_ident_now_us() returns the time of the last such
 * id, which the producer uses as the event's "ts". stream 0 switches it
 * off (the default: real clock, random ids).
 */
void ct_test_ident_set(uint32_t stream, int64_t start_ms);

/* True (with *us set) when deterministic identities are on for this thread. */
bool ct_test_ident_now_us(int64_t *us);


#endif /* CT_INTERNAL_H */
