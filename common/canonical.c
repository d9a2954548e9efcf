/*
 * canonical.c - canonical JSON text (rules in changetrail/canonical.h) and
 * the record hash built on it.
 */
#include "changetrail/canonical.h"
#include "ct_buf.h"
#include "ct_canon.h"
#include "ct_internal.h"
#include "ct_jsonscan.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_string(ct_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0; /* start of the pending run of bytes that need no escape */
	ct_buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		/* skip 16 bytes at a time while none needs an escape (UTF-8 is copied) */
		if ((i = ct_json_plain_run((const unsigned char *)s, n, i, false)) >= n)
			break;
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[7];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
			u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = '\0';
			esc = u;
		}
		ct_buf_put(b, s + run, i - run);
		ct_buf_puts(b, esc);
		run = i + 1;
	}
	ct_buf_put(b, s + run, n - run);
	ct_buf_putc(b, '"');
}

/*
 * %.<p>g of v for the shortest p that reads back, without printf, for the
 * common case: v = m / 10^d exactly as IEEE division rounds it, with m an
 * integer below 2^53 and d <= 15 (then "m e-d" reads back to v: strtod
 * rounds correctly too), at most 15 significant digits (then that decimal
 * is the only one of its length that reads back, so it is the one %g
 * prints). Returns the length written to out, 0 when v is not such a case.
 */
static size_t shortest_fast(double v, char out[40])
{
	static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
				       1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
	double a = fabs(v);
	int d;
	uint64_t m = 0;
	if (!(a >= DBL_MIN) || a >= 9007199254740992.0) /* zero, subnormal, NaN, or >= 2^53 */
		return 0;
	for (d = 0; d <= 15; d++) {
		double x = a * pow10[d];
		if (x >= 9007199254740992.0)
			return 0;
		m = (uint64_t)(x + 0.5); /* a candidate: the check below decides */
		if ((double)m / pow10[d] == a)
			break;
	}
	if (d > 15 || m == 0)
		return 0;
	/* digits of m, trailing zeros dropped into the exponent */
	char dig[20];
	int nd = 0, exp10;
	while (m % 10 == 0) {
		m /= 10;
		d--;
	}
	for (uint64_t t = m; t; t /= 10)
		dig[nd++] = (char)('0' + t % 10);
	if (nd > 15)
		return 0;
	for (int i = 0; i < nd / 2; i++) { /* most significant first */
		char c = dig[i];
		dig[i] = dig[nd - 1 - i];
		dig[nd - 1 - i] = c;
	}
	exp10 = nd - 1 - d; /* of the first digit */
	size_t o = 0;
	if (v < 0)
		out[o++] = '-';
	if (exp10 < -4 || exp10 >= nd) { /* %g's scientific form: d.ddde+XX */
		out[o++] = dig[0];
		if (nd > 1) {
			out[o++] = '.';
			memcpy(out + o, dig + 1, (size_t)nd - 1);
			o += (size_t)nd - 1;
		}
		out[o++] = 'e';
		out[o++] = exp10 < 0 ? '-' : '+';
		int e = exp10 < 0 ? -exp10 : exp10;
		if (e >= 100)
			out[o++] = (char)('0' + e / 100);
		out[o++] = (char)('0' + e / 10 % 10);
		out[o++] = (char)('0' + e % 10);
	} else if (exp10 >= 0) { /* ddd.ddd: the point after exp10 + 1 digits */
		memcpy(out + o, dig, (size_t)exp10 + 1);
		o += (size_t)exp10 + 1;
		if (nd > exp10 + 1) {
			out[o++] = '.';
			memcpy(out + o, dig + exp10 + 1, (size_t)(nd - exp10 - 1));
			o += (size_t)(nd - exp10 - 1);
		}
	} else { /* 0.000ddd */
		out[o++] = '0';
		out[o++] = '.';
		for (int i = -1; i > exp10; i--)
			out[o++] = '0';
		memcpy(out + o, dig, (size_t)nd);
		o += (size_t)nd;
	}
	out[o] = '\0';
	return o;
}

static void put_real(ct_buf *b, double v)
{
	/* %g never writes more than ~25 bytes at precision <= 17, but gcc -O0 cannot
	 * see that bound and would fail the build on -Wformat-truncation. */
	char tmp[320];
	/* The shortest precision p that reads back to the same double, printed
	 * with %.<p>g (the rule of changetrail/canonical.h). Searching p costs
	 * a format and a parse per try; instead, when 15 digits read back (most
	 * values), p is the number of significant digits of the 15-digit
	 * rounding with its trailing zeros dropped: that rounding is the
	 * shortest decimal padded with zeros, as the double lies within half
	 * an ulp (~1.1e-16 relative) of it, far inside half a step of the
	 * 15-digit grid; and the shortest decimal ends in a non-zero digit, or
	 * one digit fewer would read back too. Otherwise p is 16 or 17.
	 * Subnormals have fewer bits, so a wider ulp: they take the search. */
	int prec;
	size_t n = shortest_fast(v, tmp);
	if (n) {
		ct_buf_put(b, tmp, n);
		if (!strpbrk(tmp, ".en"))
			ct_buf_puts(b, ".0");
		return;
	}
	if (v != 0 && fabs(v) < DBL_MIN) {
		for (prec = 1; prec < 17; prec++) {
			snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
	} else if (snprintf(tmp, sizeof(tmp), "%.14e", v), strtod(tmp, NULL) == v) {
		const char *m = tmp + (tmp[0] == '-'), *e = strchr(m, 'e');
		prec = 0;
		for (const char *q = m; q < e; q++) /* digits up to the last non-zero one */
			if (*q >= '1' && *q <= '9')
				prec = (int)(q - m) + (q > m + 1 ? 0 : 1);
		if (prec < 1)
			prec = 1;
	} else {
		snprintf(tmp, sizeof(tmp), "%.16g", v);
		prec = strtod(tmp, NULL) == v ? 16 : 17;
	}
	snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
	ct_buf_puts(b, tmp);
	if (!strpbrk(tmp, ".en"))
		ct_buf_puts(b, ".0");
}

/* An object's member, gathered for sorting. */
typedef struct member {
	const char *key;
	size_t len;
	json_t *value;
} member;

static int member_cmp(const member *a, const member *b)
{
	/* memcmp compares as unsigned char: UTF-8 byte order = code point
	 * order; a key that is a prefix of another sorts first. */
	int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int member_qsort_cmp(const void *a, const void *b)
{
	return member_cmp(a, b);
}

static void sort_members(member *m, size_t n)
{
	if (n > 16) {
		qsort(m, n, sizeof(*m), member_qsort_cmp);
		return;
	}
	/* documents' objects are small: insertion sort, no calls through a pointer */
	for (size_t i = 1; i < n; i++) {
		member x = m[i];
		size_t j = i;
		for (; j > 0 && member_cmp(&m[j - 1], &x) > 0; j--)
			m[j] = m[j - 1];
		m[j] = x;
	}
}

static int dump(ct_buf *b, const json_t *v, int sort, int depth, ct_error *err);

/* An object; top-level members named skip1/skip2 (if not NULL) left out. */
static int dump_object(ct_buf *b, const json_t *v, int sort, int depth, const char *skip1, const char *skip2,
		       ct_error *err)
{
	member small[32], *m = small;
	size_t n = json_object_size(v), i = 0, k;
	void *it;
	int rc = CT_OK;

	if (n > sizeof(small) / sizeof(small[0]) && !(m = malloc(n * sizeof(*m))))
		return ct_error_set(err, CT_ENOMEM, "canonical: out of memory");
	for (it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it)) {
		const char *key = json_object_iter_key(it);
		if ((skip1 && !strcmp(key, skip1)) || (skip2 && !strcmp(key, skip2)))
			continue;
		m[i++] = (member){key, json_object_iter_key_len(it), json_object_iter_value(it)};
	}
	n = i;
	if (sort)
		sort_members(m, n);
	ct_buf_putc(b, '{');
	for (k = 0; k < n; k++) {
		if (k)
			ct_buf_putc(b, ',');
		put_string(b, m[k].key, m[k].len);
		ct_buf_putc(b, ':');
		if ((rc = dump(b, m[k].value, sort, depth + 1, err)))
			goto out;
	}
	ct_buf_putc(b, '}');
out:
	if (m != small)
		free(m);
	return rc;
}

static int dump(ct_buf *b, const json_t *v, int sort, int depth, ct_error *err)
{
	char num[32];
	int rc = CT_OK;

	if (depth > CT_CANONICAL_MAX_DEPTH)
		return ct_error_set(err, CT_ELIMIT, "canonical: nesting deeper than %d", CT_CANONICAL_MAX_DEPTH);

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if ((rc = dump_object(b, v, sort, depth, NULL, NULL, err)))
			goto out;
		break;
	case JSON_ARRAY:
		ct_buf_putc(b, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				ct_buf_putc(b, ',');
			rc = dump(b, json_array_get(v, i), sort, depth + 1, err);
			if (rc)
				goto out;
		}
		ct_buf_putc(b, ']');
		break;
	case JSON_STRING:
		put_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		ct_buf_puts(b, num);
		break;
	case JSON_REAL:
		put_real(b, json_real_value(v));
		break;
	case JSON_TRUE: ct_buf_puts(b, "true"); break;
	case JSON_FALSE: ct_buf_puts(b, "false"); break;
	case JSON_NULL: ct_buf_puts(b, "null"); break;
	}
	if (b->failed)
		rc = ct_error_set(err, CT_ENOMEM, "canonical: out of memory");
out:
	return rc;
}

void ct_canon_string(ct_buf *b, const char *s, size_t n)
{
	put_string(b, s, n);
}

void ct_canon_int(ct_buf *b, int64_t v)
{
	char num[32];
	snprintf(num, sizeof(num), "%" PRId64, v);
	ct_buf_puts(b, num);
}

int ct_canon_value(ct_buf *b, const json_t *v, ct_error *err)
{
	return dump(b, v, 1, 0, err);
}

int ct_canon_hash_hex(ct_buf *b, char out_hex[65], ct_error *err)
{
	uint8_t digest[32];
	int rc = CT_OK;
	if (b->failed) {
		rc = ct_error_set(err, CT_ENOMEM, "record hash: out of memory");
	} else if ((rc = ct_sha256(b->data, b->len, digest))) {
		rc = ct_error_set(err, rc, "record hash: SHA-256 failed (%s)", ct_strerror(rc));
	} else {
		ct_hex(digest, sizeof(digest), out_hex);
	}
	ct_buf_free(b);
	return rc;
}

static int dump_to(const json_t *value, int sort, char **out, size_t *len, ct_error *err)
{
	ct_buf b = CT_BUF_INIT;
	int rc;
	if (!value || !out)
		return ct_error_set(err, CT_EINVAL, "canonical: NULL argument");
	rc = dump(&b, value, sort, 0, err);
	if (rc) {
		ct_buf_free(&b);
		return rc;
	}
	*out = ct_buf_detach(&b, len);
	if (!*out)
		return ct_error_set(err, CT_ENOMEM, "canonical: out of memory");
	return CT_OK;
}

int ct_canonical_dump(const json_t *value, char **out, size_t *len, ct_error *err)
{
	return dump_to(value, 1, out, len, err);
}

int ct_json_dump_compact(const json_t *value, char **out, size_t *len, ct_error *err)
{
	return dump_to(value, 0, out, len, err);
}

int ct_record_hash(const json_t *record, char out_hex[65], ct_error *err)
{
	ct_buf b = CT_BUF_INIT;
	int rc;

	if (!json_is_object(record) || !out_hex)
		return ct_error_set(err, CT_EINVAL, "record hash: record must be a JSON object");
	/* the record's canonical text without its own hash and Kafka position */
	if ((rc = dump_object(&b, record, 1, 0, "hash", "kafka", err))) {
		ct_buf_free(&b);
		return rc;
	}
	return ct_canon_hash_hex(&b, out_hex, err);
}
