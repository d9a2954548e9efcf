/*
 * ct_jsonscan.h - checks that JSON text is well-formed without building a
 * tree, for the producer's hot path. Internal; not installed.
 */
#ifndef CT_JSONSCAN_H
#define CT_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/*
 * The plain run of a JSON string's bytes, 16 at a time: from s[i], skips
 * whole blocks of 16 with no '"', no '\\', no byte below 0x20 and, with
 * `stop_high`, none from 0x80 (for a caller that checks UTF-8 itself).
 * Returns the index of the first such byte, or where fewer than 16 bytes
 * are left; the caller's byte-at-a-time code goes on from there. Without
 * SSE2 (every x86-64 has it) it returns i. Shared by the consumer's parser
 * and the canonical writer, whose strings are most of what they read.
 */
static inline size_t ct_json_plain_run(const unsigned char *s, size_t n, size_t i, bool stop_high)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	const __m128i space = _mm_set1_epi8(0x20), ctl = _mm_set1_epi8(0x1f);
	while (i + 16 <= n) {
		__m128i x = _mm_loadu_si128((const __m128i *)(s + i));
		__m128i m = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash));
		/* signed compare: bytes from 0x80 are negative, so below 0x20 too;
		 * unsigned: x <= 0x1f is max(x, 0x1f) == 0x1f */
		m = _mm_or_si128(m, stop_high ? _mm_cmplt_epi8(x, space)
					       : _mm_cmpeq_epi8(_mm_max_epu8(x, ctl), ctl));
		int bits = _mm_movemask_epi8(m);
		if (bits)
			return i + (size_t)__builtin_ctz((unsigned)bits);
		i += 16;
	}
#else
	(void)s;
	(void)n;
	(void)stop_high;
#endif
	return i;
}

#endif
