/*
 * canonical.c - canonical JSON text (rules in changetrail/canonical.h) and
 * the record hash built on it.
 */
#include "changetrail/canonical.h"
#include "ct_buf.h"
#include "ct_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_cmp(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: UTF-8 byte order = code point order. */
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_string(ct_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0; /* start of the pending run of bytes that need no escape */
	ct_buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
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

static void put_real(ct_buf *b, double v)
{
	/* %g never writes more than ~25 bytes at precision <= 17, but gcc -O0 cannot
	 * see that bound and would fail the build on -Wformat-truncation. */
	char tmp[320];
	/* Shortest precision that reads back to the same double; round-tripping
	 * is monotonic in the precision, so a binary search finds it. */
	int lo = 1, hi = 17;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		snprintf(tmp, sizeof(tmp), "%.*g", mid, v);
		if (strtod(tmp, NULL) == v)
			hi = mid;
		else
			lo = mid + 1;
	}
	snprintf(tmp, sizeof(tmp), "%.*g", lo, v);
	ct_buf_puts(b, tmp);
	if (!strpbrk(tmp, ".en"))
		ct_buf_puts(b, ".0");
}

static int dump(ct_buf *b, const json_t *v, int sort, int depth, ct_error *err)
{
	char num[32];
	const char **keys = NULL;
	int rc = CT_OK;

	if (depth > CT_CANONICAL_MAX_DEPTH)
		return ct_error_set(err, CT_ELIMIT, "canonical: nesting deeper than %d", CT_CANONICAL_MAX_DEPTH);

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		const char *k;
		json_t *child;
		if (n) {
			keys = malloc(n * sizeof(*keys));
			if (!keys) {
				rc = ct_error_set(err, CT_ENOMEM, "canonical: out of memory");
				goto out;
			}
		}
		json_object_foreach((json_t *)v, k, child)
			keys[i++] = k;
		if (sort && n) /* qsort(NULL, 0, ...) is undefined (UBSan) */
			qsort(keys, n, sizeof(*keys), key_cmp);
		ct_buf_putc(b, '{');
		for (i = 0; i < n; i++) {
			if (i)
				ct_buf_putc(b, ',');
			put_string(b, keys[i], strlen(keys[i]));
			ct_buf_putc(b, ':');
			rc = dump(b, json_object_get(v, keys[i]), sort, depth + 1, err);
			if (rc)
				goto out;
		}
		ct_buf_putc(b, '}');
		break;
	}
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
	free(keys);
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
	json_t *copy = NULL;
	char *text = NULL;
	size_t len;
	uint8_t digest[32];
	int rc;

	if (!json_is_object(record) || !out_hex)
		return ct_error_set(err, CT_EINVAL, "record hash: record must be a JSON object");
	/* Shallow copy: only the top-level members change. */
	copy = json_copy((json_t *)record);
	if (!copy)
		return ct_error_set(err, CT_ENOMEM, "record hash: out of memory");
	json_object_del(copy, "hash");
	json_object_del(copy, "kafka");
	rc = ct_canonical_dump(copy, &text, &len, err);
	if (rc)
		goto out;
	ct_sha256(text, len, digest);
	ct_hex(digest, sizeof(digest), out_hex);
out:
	free(text);
	json_decref(copy);
	return rc;
}
