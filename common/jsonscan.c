/*
 * jsonscan.c - validating JSON scanner (see ct_jsonscan.h). A single pass
 * with an explicit stack of open containers, so input depth never turns into
 * C recursion.
 */
#include "ct_jsonscan.h"
#include "ct_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_STACK 256 /* hard cap on max_depth */

typedef struct {
	const unsigned char *s;
	size_t n, i;
} scan;

static void skip_ws(scan *sc)
{
	while (sc->i < sc->n) {
		unsigned char c = sc->s[sc->i];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		sc->i++;
	}
}

int ct_hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		unsigned char c = p[k];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= c - '0';
		else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10u;
		else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10u;
		else return -1;
	}
	*out = v;
	return 0;
}

static int hex4(scan *sc, unsigned *out)
{
	if (sc->n - sc->i < 4)
		return -1;
	if (ct_hex4(sc->s + sc->i, out)) {
		/* errors point just past the first digit that is not hex */
		while (isxdigit(sc->s[sc->i]))
			sc->i++;
		sc->i++;
		return -1;
	}
	sc->i += 4;
	return 0;
}

size_t ct_utf8_seq_len(const unsigned char *p, size_t left)
{
	unsigned c = p[0], cp;
	size_t len;
	if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
	else return 0;
	if (left < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* One UTF-8 sequence starting at sc->i (lead byte >= 0x80). */
static int utf8_seq(scan *sc)
{
	size_t len = ct_utf8_seq_len(sc->s + sc->i, sc->n - sc->i);
	if (!len)
		return -1;
	sc->i += len;
	return 0;
}

static int string(scan *sc, const char **why)
{
	sc->i++; /* opening quote */
	while (sc->i < sc->n) {
		unsigned char c = sc->s[sc->i];
		if (c == '"') {
			sc->i++;
			return 0;
		}
		if (c < 0x20) {
			*why = "control character in string";
			return -1;
		}
		if (c == '\\') {
			unsigned u, lo;
			if (++sc->i >= sc->n)
				break;
			c = sc->s[sc->i++];
			if (strchr("\"\\/bfnrt", c) && c)
				continue;
			if (c != 'u' || hex4(sc, &u)) {
				*why = "invalid escape";
				return -1;
			}
			if (u == 0) {
				*why = "\\u0000 is not allowed";
				return -1;
			}
			if (u >= 0xdc00 && u <= 0xdfff) {
				*why = "invalid \\u surrogate";
				return -1;
			}
			if (u >= 0xd800 && u <= 0xdbff) {
				if (sc->n - sc->i < 6 || sc->s[sc->i] != '\\' || sc->s[sc->i + 1] != 'u') {
					*why = "invalid \\u surrogate";
					return -1;
				}
				sc->i += 2;
				if (hex4(sc, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					*why = "invalid \\u surrogate";
					return -1;
				}
			}
			continue;
		}
		if (c >= 0x80) {
			if (utf8_seq(sc)) {
				*why = "invalid UTF-8";
				return -1;
			}
			continue;
		}
		sc->i++;
	}
	*why = "unterminated string";
	return -1;
}

static int number(scan *sc, const char **why)
{
	size_t start = sc->i;
	int is_real = 0;
	char tmp[64];
	if (sc->s[sc->i] == '-')
		sc->i++;
	if (sc->i >= sc->n)
		goto bad;
	if (sc->s[sc->i] == '0') {
		sc->i++;
	} else if (sc->s[sc->i] >= '1' && sc->s[sc->i] <= '9') {
		while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
			sc->i++;
	} else {
		goto bad;
	}
	if (sc->i < sc->n && sc->s[sc->i] == '.') {
		is_real = 1;
		sc->i++;
		if (sc->i >= sc->n || sc->s[sc->i] < '0' || sc->s[sc->i] > '9')
			goto bad;
		while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
			sc->i++;
	}
	if (sc->i < sc->n && (sc->s[sc->i] == 'e' || sc->s[sc->i] == 'E')) {
		is_real = 1;
		sc->i++;
		if (sc->i < sc->n && (sc->s[sc->i] == '+' || sc->s[sc->i] == '-'))
			sc->i++;
		if (sc->i >= sc->n || sc->s[sc->i] < '0' || sc->s[sc->i] > '9')
			goto bad;
		while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
			sc->i++;
	}
	size_t len = sc->i - start;
	if (is_real) {
		char *heap = NULL, *p = tmp;
		if (len >= sizeof(tmp)) {
			heap = malloc(len + 1);
			if (!heap) {
				*why = "out of memory";
				return -1;
			}
			p = heap;
		}
		memcpy(p, sc->s + start, len);
		p[len] = '\0';
		double v = strtod(p, NULL);
		free(heap);
		if (isinf(v)) {
			*why = "real number overflow";
			return -1;
		}
		return 0;
	}
	/* Integers must fit json_int_t (int64), as jansson requires. */
	if (len >= sizeof(tmp)) {
		*why = "integer out of int64 range";
		return -1;
	}
	memcpy(tmp, sc->s + start, len);
	tmp[len] = '\0';
	errno = 0;
	(void)strtoll(tmp, NULL, 10);
	if (errno == ERANGE) {
		*why = "integer out of int64 range";
		return -1;
	}
	return 0;
bad:
	*why = "invalid number";
	return -1;
}

static int literal(scan *sc, const char *word)
{
	size_t len = strlen(word);
	if (sc->n - sc->i < len || memcmp(sc->s + sc->i, word, len))
		return -1;
	sc->i += len;
	return 0;
}

int ct_json_scan_object(const char *s, size_t n, size_t max_depth, ct_error *err)
{
	char stack[SCAN_STACK]; /* '{' or '[' per open container */
	size_t depth = 0;
	const char *why = "syntax error";
	scan sc = {(const unsigned char *)s, n, 0};

	if (!s)
		return ct_error_set(err, CT_EINVAL, "json: NULL document");
	if (max_depth > SCAN_STACK)
		max_depth = SCAN_STACK;
	skip_ws(&sc);
	if (sc.i >= sc.n || sc.s[sc.i] != '{') {
		why = "document must be a JSON object";
		goto bad;
	}
	/* State machine over: value expected, or after a value. */
	for (;;) {
		/* expecting a value (or, right after an opener, its close) */
		skip_ws(&sc);
		if (sc.i >= sc.n)
			goto truncated;
		unsigned char c = sc.s[sc.i];
		if (c == '{' || c == '[') {
			if (depth >= max_depth)
				return ct_error_set(err, CT_ELIMIT, "json: nesting deeper than %zu at byte %zu",
						    max_depth, sc.i);
			stack[depth++] = (char)c;
			sc.i++;
			skip_ws(&sc);
			if (sc.i >= sc.n)
				goto truncated;
			if ((c == '{' && sc.s[sc.i] == '}') || (c == '[' && sc.s[sc.i] == ']')) {
				sc.i++;
				depth--;
				goto after_value;
			}
			if (c == '{')
				goto member_key;
			continue;
		}
		if (c == '"') {
			if (string(&sc, &why))
				goto bad;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if (number(&sc, &why))
				goto bad;
		} else if (literal(&sc, "true") && literal(&sc, "false") && literal(&sc, "null")) {
			why = "unexpected character";
			goto bad;
		}
	after_value:
		if (depth == 0) {
			skip_ws(&sc);
			if (sc.i != sc.n) {
				why = "data after the document";
				goto bad;
			}
			return CT_OK;
		}
		skip_ws(&sc);
		if (sc.i >= sc.n)
			goto truncated;
		c = sc.s[sc.i++];
		if (c == ',') {
			if (stack[depth - 1] == '[')
				continue;
			skip_ws(&sc);
			goto member_key;
		}
		if ((c == '}' && stack[depth - 1] == '{') || (c == ']' && stack[depth - 1] == '[')) {
			depth--;
			goto after_value;
		}
		sc.i--;
		why = "expected ',' or a closing bracket";
		goto bad;
	member_key:
		if (sc.i >= sc.n)
			goto truncated;
		if (sc.s[sc.i] != '"') {
			why = "expected a string key";
			goto bad;
		}
		if (string(&sc, &why))
			goto bad;
		skip_ws(&sc);
		if (sc.i >= sc.n || sc.s[sc.i] != ':') {
			why = "expected ':'";
			goto bad;
		}
		sc.i++;
	}
truncated:
	return ct_error_set(err, CT_EPARSE, "json: unexpected end of document at byte %zu", sc.i);
bad:
	return ct_error_set(err, CT_EPARSE, "json: %s at byte %zu", why, sc.i);
}

int ct_utf8_valid(const char *s, size_t n)
{
	scan sc = {(const unsigned char *)s, n, 0};
	while (sc.i < sc.n) {
		unsigned char c = sc.s[sc.i];
		if (c == 0)
			return 0;
		if (c < 0x80) {
			sc.i++;
			continue;
		}
		if (utf8_seq(&sc))
			return 0;
	}
	return 1;
}
