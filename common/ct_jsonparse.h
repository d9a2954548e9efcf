/*
 * ct_jsonparse.h - the fast path of event parsing: JSON text straight to a
 * jansson tree, with the bounds of ct_limits checked on the way. Internal;
 * not installed.
 */
#ifndef CT_JSONPARSE_H
#define CT_JSONPARSE_H

#include <jansson.h>
#include <stddef.h>

#include "changetrail/event.h"

/*
 * Parses s[0..n) (need not be NUL-terminated) whose top level is an object.
 * `l` holds resolved limits (no zero fields).
 *
 * Returns a new reference to a tree equal to what
 * json_loadb(s, n, JSON_REJECT_DUPLICATES) builds (same members in the same
 * order, same types and values), and only when that tree is also within `l`
 * the way event.c's bounds walk measures it (depth from the root as 1,
 * object members summed over the whole tree, items of each array, bytes of
 * each decoded string and key).
 *
 * Returns NULL for anything else: malformed text, a bound crossed, out of
 * memory, and a few well-formed corner cases it leaves to jansson (numbers
 * of 64 characters or more, nesting deeper than 256). NULL says nothing
 * about the text: the caller runs jansson, which accepts or says why not.
 * The fast path must never accept what jansson refuses; fuzz_jsonparse
 * checks both parsers against each other.
 *
 * Thread-safe (no shared state but a C locale made once).
 */
json_t *ct_json_parse_fast(const char *s, size_t n, const ct_limits *l);

#endif
