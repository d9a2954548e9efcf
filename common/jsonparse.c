/*
 * jsonparse.c - JSON text to a jansson tree in one pass, for the consumer's
 * hot path (see ct_jsonparse.h).
 *
 * Why: jansson's own parser reads the text a byte at a time through a
 * stream, scans every string twice and copies it twice; it was most of the
 * consumer's CPU per event (docs/performance.md). This parser scans each
 * string once with a table, hands jansson the bytes to copy once, and
 * checks the bounds of ct_limits as it goes, so the separate bounds walk is
 * not needed either.
 *
 * It is deliberately partial: whatever it is unsure of, it refuses, and the
 * caller runs jansson, which either accepts the text or gives the error
 * message users see. Only its acceptances matter for correctness.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtod_l */
#endif
#include "ct_jsonparse.h"
#include "ct_jsonscan.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Nesting the fast path handles; deeper goes to jansson (2048). */
#define FAST_MAX_DEPTH 256
/* Number tokens this long or longer go to jansson. */
#define NUM_MAX 64

/* Byte classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control
 * (refused), 4 lead of a multi-byte sequence. */
static const uint8_t str_class[256] = {
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void make_c_locale(void)
{
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

typedef struct frame {
	json_t *v;          /* the open container, not yet in its parent */
	int is_obj;
	const char *key;    /* objects: the member's key, once read */
	size_t klen;
	char *kheap;        /* the key when it had escapes (decoded copy) */
} frame;

typedef struct parser {
	const unsigned char *s;
	size_t n, i;
	const ct_limits *l;
	char *scratch; /* decoded strings with escapes */
	size_t scratch_cap;
} parser;

static inline void skip_ws(parser *p)
{
	while (p->i < p->n) {
		unsigned char c = p->s[p->i];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		p->i++;
	}
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * The string whose opening quote is at p->i. On success *out and *len are its
 * decoded text: the input bytes themselves when it has no escape (the
 * common case), else p->scratch. -1 for anything jansson would refuse, or
 * may refuse.
 */
static int string(parser *p, const char **out, size_t *len)
{
	const unsigned char *s = p->s;
	size_t i = p->i + 1, start = i, n = p->n;
	int escaped = 0;

	for (;;) {
		/* the plain run: 16 bytes a step, then four (UTF-8 is checked below) */
		i = ct_json_plain_run(s, n, i, true);
		while (i + 4 <= n && !(str_class[s[i]] | str_class[s[i + 1]] | str_class[s[i + 2]] |
				       str_class[s[i + 3]]))
			i += 4;
		if (i >= n)
			return -1;
		switch (str_class[s[i]]) {
		case 0:
			i++;
			continue;
		case 1:
			goto closed;
		case 2:
			escaped = 1;
			if (i + 1 >= n)
				return -1;
			if (s[i + 1] == 'u') {
				if (n - i < 6)
					return -1;
				i += 6; /* checked when decoding */
			} else {
				i += 2;
			}
			continue;
		case 3:
			return -1;
		default: {
			size_t k = ct_utf8_seq_len(s + i, n - i);
			if (!k)
				return -1;
			i += k;
			continue;
		}
		}
	}
closed:
	p->i = i + 1;
	if (!escaped) {
		*out = (const char *)s + start;
		*len = i - start;
		return 0;
	}
	/* decode: never longer than the raw text */
	size_t raw = i - start;
	if (raw + 1 > p->scratch_cap) {
		size_t cap = raw + 1 < 256 ? 256 : raw + 1;
		char *b = realloc(p->scratch, cap);
		if (!b)
			return -1;
		p->scratch = b;
		p->scratch_cap = cap;
	}
	char *o = p->scratch;
	size_t w = 0;
	for (size_t j = start; j < i;) {
		unsigned char c = s[j];
		if (c != '\\') {
			o[w++] = (char)c;
			j++;
			continue;
		}
		c = s[j + 1];
		j += 2;
		switch (c) {
		case '"': o[w++] = '"'; break;
		case '\\': o[w++] = '\\'; break;
		case '/': o[w++] = '/'; break;
		case 'b': o[w++] = '\b'; break;
		case 'f': o[w++] = '\f'; break;
		case 'n': o[w++] = '\n'; break;
		case 'r': o[w++] = '\r'; break;
		case 't': o[w++] = '\t'; break;
		case 'u': {
			unsigned u, lo;
			if (ct_hex4(s + j, &u))
				return -1;
			j += 4;
			if (u == 0 || (u >= 0xdc00 && u <= 0xdfff))
				return -1;
			if (u >= 0xd800 && u <= 0xdbff) {
				/* the low half must follow as another \u escape */
				if (i - j < 6 || s[j] != '\\' || s[j + 1] != 'u' || ct_hex4(s + j + 2, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -1;
				j += 6;
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			}
			w += put_utf8(o + w, u);
			break;
		}
		default:
			return -1;
		}
	}
	*out = o;
	*len = w;
	return 0;
}

static json_t *number(parser *p)
{
	const unsigned char *s = p->s;
	size_t n = p->n, i = p->i, start = i;
	int neg = 0, is_real = 0;
	uint64_t u = 0;
	int over = 0;

	if (s[i] == '-') {
		neg = 1;
		i++;
	}
	if (i >= n)
		return NULL;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			unsigned d = s[i] - '0';
			if (u > (UINT64_MAX - d) / 10)
				over = 1;
			else
				u = u * 10 + d;
			i++;
		}
	} else {
		return NULL;
	}
	if (i < n && s[i] == '.') {
		is_real = 1;
		if (++i >= n || s[i] < '0' || s[i] > '9')
			return NULL;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		is_real = 1;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return NULL;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	size_t len = i - start;
	if (len >= NUM_MAX)
		return NULL;
	p->i = i;
	if (!is_real) {
		/* jansson refuses integers outside int64 */
		if (over || u > (uint64_t)INT64_MAX + (uint64_t)neg)
			return NULL;
		if (neg)
			return json_integer(u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)u);
		return json_integer((json_int_t)u);
	}
	char tmp[NUM_MAX];
	memcpy(tmp, s + start, len);
	tmp[len] = '\0';
	pthread_once(&c_locale_once, make_c_locale);
	if (!c_locale)
		return NULL;
	double v = strtod_l(tmp, NULL, c_locale);
	if (isinf(v)) /* jansson: real number overflow */
		return NULL;
	return json_real(v);
}

static json_t *literal(parser *p)
{
	size_t left = p->n - p->i;
	const unsigned char *q = p->s + p->i;
	if (left >= 4 && !memcmp(q, "true", 4)) {
		p->i += 4;
		return json_true();
	}
	if (left >= 5 && !memcmp(q, "false", 5)) {
		p->i += 5;
		return json_false();
	}
	if (left >= 4 && !memcmp(q, "null", 4)) {
		p->i += 4;
		return json_null();
	}
	return NULL;
}

/* Puts v (a reference it takes) into the container of f. */
static int attach(parser *p, frame *f, json_t *v, size_t *keys)
{
	if (f->is_obj) {
		size_t before = json_object_size(f->v);
		int rc;
		if (++*keys > p->l->max_keys) {
			json_decref(v);
			return -1;
		}
		rc = json_object_setn_new_nocheck(f->v, f->key, f->klen, v);
		free(f->kheap);
		f->kheap = NULL;
		f->key = NULL;
		/* a member that did not add one replaced a duplicate key */
		return rc || json_object_size(f->v) == before ? -1 : 0;
	}
	if (json_array_size(f->v) >= p->l->max_array_items) {
		json_decref(v);
		return -1;
	}
	return json_array_append_new(f->v, v);
}

json_t *ct_json_parse_fast(const char *text, size_t n, const ct_limits *l)
{
	frame stack[FAST_MAX_DEPTH];
	size_t depth = 0, keys = 0;
	size_t max_depth = l->max_depth < FAST_MAX_DEPTH ? l->max_depth : FAST_MAX_DEPTH;
	parser p = {(const unsigned char *)text, n, 0, l, NULL, 0};
	json_t *v = NULL;
	const char *str;
	size_t slen;
	unsigned char c;

	if (!text)
		return NULL;
	skip_ws(&p);
	if (p.i >= p.n || p.s[p.i] != '{')
		return NULL;
	for (;;) {
		/* a value is expected */
		skip_ws(&p);
		if (p.i >= p.n)
			goto fail;
		c = p.s[p.i];
		if (c == '{' || c == '[') {
			if (depth >= max_depth)
				goto fail;
			json_t *cont = c == '{' ? json_object() : json_array();
			if (!cont)
				goto fail;
			stack[depth++] = (frame){.v = cont, .is_obj = c == '{'};
			p.i++;
			skip_ws(&p);
			if (p.i >= p.n)
				goto fail;
			if (p.s[p.i] == (c == '{' ? '}' : ']')) {
				p.i++;
				v = stack[--depth].v;
				goto have_value;
			}
			if (c == '{')
				goto member_key;
			continue;
		}
		if (c == '"') {
			if (string(&p, &str, &slen) || slen > l->max_string_bytes)
				goto fail;
			v = json_stringn_nocheck(str, slen);
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			v = number(&p);
		} else {
			v = literal(&p);
		}
		if (!v)
			goto fail;
	have_value:
		if (depth == 0) {
			skip_ws(&p);
			if (p.i != p.n)
				goto fail;
			free(p.scratch);
			return v;
		}
		{
			frame *f = &stack[depth - 1];
			int rc = attach(&p, f, v, &keys);
			v = NULL;
			if (rc)
				goto fail;
			skip_ws(&p);
			if (p.i >= p.n)
				goto fail;
			c = p.s[p.i++];
			if (c == ',') {
				if (!f->is_obj)
					continue;
				skip_ws(&p);
				goto member_key;
			}
			if (c != (f->is_obj ? '}' : ']'))
				goto fail;
			v = f->v;
			depth--;
			goto have_value;
		}
	member_key:
		if (p.i >= p.n || p.s[p.i] != '"')
			goto fail;
		if (string(&p, &str, &slen) || slen > l->max_string_bytes)
			goto fail;
		{
			frame *f = &stack[depth - 1];
			if (str == p.scratch) { /* the scratch is reused by the value */
				if (!(f->kheap = malloc(slen ? slen : 1)))
					goto fail;
				memcpy(f->kheap, str, slen);
				str = f->kheap;
			}
			f->key = str;
			f->klen = slen;
		}
		skip_ws(&p);
		if (p.i >= p.n || p.s[p.i] != ':')
			goto fail;
		p.i++;
	}
fail:
	json_decref(v);
	while (depth) {
		depth--;
		free(stack[depth].kheap);
		json_decref(stack[depth].v);
	}
	free(p.scratch);
	return NULL;
}
