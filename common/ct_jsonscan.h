/*
 * ct_jsonscan.h - checks that JSON text is well-formed without building a
 * tree, for the producer's hot path. Internal; not installed.
 */
#ifndef CT_JSONSCAN_H
#define CT_JSONSCAN_H

#include <stddef.h>

#include "changetrail/common.h"

/*
 * Accepts exactly what the consumer's parser (jansson, strict) accepts for a
 * document, except duplicate keys, which it does not look for: RFC 8259
 * syntax, valid UTF-8 (no overlongs, no surrogates), escapes that decode to
 * valid code points other than U+0000, integers within int64, reals that do
 * not overflow a double, nesting <= max_depth. The top-level value must be an
 * object. Returns CT_OK, CT_EPARSE or CT_ELIMIT with the byte offset in the
 * message.
 */
int ct_json_scan_object(const char *s, size_t n, size_t max_depth, ct_error *err);

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80, `left`
 * bytes readable), 0 when invalid: no overlongs, no surrogates, nothing
 * above U+10FFFF. Shared by the scanner and the consumer's parser. */
size_t ct_utf8_seq_len(const unsigned char *p, size_t left);

/* The 4 hex digits at p (readable) into *out; -1 if one is not hex. */
int ct_hex4(const unsigned char *p, unsigned *out);

/* true when s[0..n) is valid UTF-8 (no overlongs, surrogates or NUL). */
int ct_utf8_valid(const char *s, size_t n);

#endif
