/*
 * fuzz_diff.c - round-trip fuzzing of ct_diff/ct_patch/ct_revert: the input
 * is two JSON documents separated by the first NUL byte; when both parse,
 * patch(diff(a,b), a) must equal b and revert(diff(a,b), b) must equal a
 * (numbers up to dictdiffer's equality). The first document is also fed to
 * patch/revert/jsonpatch as a (usually malformed) diff, which must fail
 * cleanly. abort() on any violation.
 */
#include "changetrail/diff.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "json_equiv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Past this, inputs are not even parsed (keeps jansson's recursion short);
 * between it and CT_DIFF_MAX_DEPTH the CT_ELIMIT path gets exercised. */
#define PARSE_MAX_DEPTH 600

/* Deepest bracket nesting of JSON text, strings skipped. */
static size_t text_depth(const char *s, size_t n)
{
	size_t depth = 0, max = 0;
	int in_str = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
		} else if ((c == ']' || c == '}') && depth) {
			depth--;
		}
	}
	return max;
}

static json_t *parse(const char *s, size_t n, size_t *depth)
{
	*depth = text_depth(s, n);
	if (*depth > PARSE_MAX_DEPTH)
		return NULL;
	return json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
}


static void as_diff(const json_t *d, const json_t *doc)
{
	json_t *out = NULL;
	int rc = ct_patch(d, doc, &out, NULL);
	if (rc != CT_OK && rc != CT_EINVAL && rc != CT_ECONFLICT && rc != CT_ELIMIT)
		abort();
	if ((rc == CT_OK) != (out != NULL))
		abort();
	json_decref(out);
	out = NULL;
	rc = ct_revert(d, doc, &out, NULL);
	if (rc != CT_OK && rc != CT_EINVAL && rc != CT_ECONFLICT && rc != CT_ELIMIT)
		abort();
	json_decref(out);
	out = NULL;
	rc = ct_diff_to_jsonpatch(d, &out, NULL);
	if (rc != CT_OK && rc != CT_EINVAL && rc != CT_ELIMIT)
		abort();
	json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *nul = memchr(s, '\0', size);
	json_t *a = NULL, *b = NULL, *d = NULL, *p = NULL, *r = NULL, *ops = NULL;
	size_t da, db;
	ct_error err;

	if (!nul)
		return 0;
	a = parse(s, (size_t)(nul - s), &da);
	b = parse(nul + 1, size - (size_t)(nul - s) - 1, &db);
	if (!a || !b)
		goto out;

	as_diff(a, b);

	int rc = ct_diff(a, b, &d, &err);
	/* The diff visits every node of both documents, so the bound trips
	 * exactly when one of them nests deeper than it. */
	if (rc == CT_ELIMIT && (da > CT_DIFF_MAX_DEPTH || db > CT_DIFF_MAX_DEPTH))
		goto out;
	if (rc != CT_OK)
		abort();
	if (da > CT_DIFF_MAX_DEPTH || db > CT_DIFF_MAX_DEPTH)
		abort();
	if (ct_patch(d, a, &p, &err) != CT_OK || !equiv(p, b))
		abort();
	if (ct_revert(d, b, &r, &err) != CT_OK || !equiv(r, a))
		abort();
	if (ct_diff_to_jsonpatch(d, &ops, &err) != CT_OK)
		abort();
out:
	json_decref(a);
	json_decref(b);
	json_decref(d);
	json_decref(p);
	json_decref(r);
	json_decref(ops);
	return 0;
}
