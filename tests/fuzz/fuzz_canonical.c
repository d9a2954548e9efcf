/*
 * fuzz_canonical.c - the canonical form (what history hashes are computed
 * over) on any JSON value: canonical text parses back to a value equal to
 * the input, and is a fixed point (canonical(parse(canonical(x))) is the
 * same bytes); the compact dump parses back equal too. abort() on any
 * violation.
 */
#include "changetrail/canonical.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Exact equality, except that reals compare by value (jansson's own
 * json_equal would do, but integer vs real must stay distinct). */
static int same(const json_t *x, const json_t *y)
{
	if (json_typeof(x) != json_typeof(y))
		return 0;
	if (json_is_real(x))
		return json_real_value(x) == json_real_value(y);
	return json_equal(x, y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	json_t *back = NULL, *cback = NULL;
	char *c1 = NULL, *c2 = NULL, *compact = NULL;
	size_t n1, n2, nc;
	if (!v)
		return 0;
	int rc = ct_canonical_dump(v, &c1, &n1, NULL);
	if (rc == CT_ELIMIT)
		goto out;
	if (rc != CT_OK || strlen(c1) != n1)
		abort();
	back = json_loadb(c1, n1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (!back || !same(v, back))
		abort();
	if (ct_canonical_dump(back, &c2, &n2, NULL) != CT_OK || n1 != n2 || memcmp(c1, c2, n1))
		abort();
	if (ct_json_dump_compact(v, &compact, &nc, NULL) != CT_OK)
		abort();
	cback = json_loadb(compact, nc, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (!cback || !same(v, cback))
		abort();
out:
	free(c1);
	free(c2);
	free(compact);
	json_decref(v);
	json_decref(back);
	json_decref(cback);
	return 0;
}
