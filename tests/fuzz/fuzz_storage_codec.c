/*
 * fuzz_storage_codec.c - the stored form v2 codec (storage/cts_codec.h):
 *  - first byte even: the rest is two JSON documents, one per line; their
 *    ct_diff() converted to native changes, through BSON, and back to
 *    dictdiffer form gives the same canonical text (what keeps every stored
 *    record's hash);
 *  - first byte odd: the rest taken as a stored history document (BSON).
 *    Reading it either fails cleanly or gives a JSON form that, written
 *    again and read again, is the same canonical text; so does the state
 *    reader.
 * abort() on any violation.
 */
#include "cts_codec.h"

#include "changetrail/canonical.h"
#include "changetrail/diff.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *canon(const json_t *v)
{
	char *t = NULL;
	if (ct_canonical_dump(v, &t, NULL, NULL))
		abort();
	return t;
}

static void diff_roundtrip(const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len);
	if (!nl)
		return;
	json_t *a = json_loadb(text, (size_t)(nl - text), JSON_REJECT_DUPLICATES, NULL);
	json_t *b = json_loadb(nl + 1, len - (size_t)(nl + 1 - text), JSON_REJECT_DUPLICATES, NULL);
	json_t *d = NULL, *native = NULL, *native_back = NULL, *back = NULL;
	bson_t doc = BSON_INITIALIZER;
	bson_iter_t it;
	if (!json_is_object(a) || !json_is_object(b) || ct_diff(a, b, &d, NULL))
		goto out;
	if (cts_changes_to_native("update", d, &native, NULL))
		abort(); /* everything ct_diff makes must be storable */
	int rc = cts_bson_append_json(&doc, "changes", native, NULL);
	if (rc == CT_ELIMIT)
		goto out; /* too deep or too big for BSON: refused cleanly */
	if (rc || !bson_iter_init_find(&it, &doc, "changes") || cts_bson_iter_to_json(&it, &native_back, NULL) ||
	    cts_changes_from_native("update", native_back, &back, NULL))
		abort();
	char *x = canon(d), *y = canon(back);
	if (strcmp(x, y))
		abort();
	free(x);
	free(y);
out:
	bson_destroy(&doc);
	json_decref(a);
	json_decref(b);
	json_decref(d);
	json_decref(native);
	json_decref(native_back);
	json_decref(back);
}

typedef int (*from_fn)(const bson_t *, json_t **, ct_error *);
typedef int (*to_fn)(const json_t *, bson_t *, ct_error *);

static void stored_roundtrip(const uint8_t *data, size_t size, from_fn from, to_fn to)
{
	bson_t in, again = BSON_INITIALIZER;
	json_t *j = NULL, *k = NULL;
	if (!bson_init_static(&in, data, size) || !bson_validate(&in, BSON_VALIDATE_NONE, NULL))
		goto out;
	if (from(&in, &j, NULL))
		goto out; /* refused cleanly */
	if (to(j, &again, NULL))
		goto out; /* e.g. a v1 ts that is not canonical: refused cleanly */
	if (from(&again, &k, NULL))
		abort(); /* what we wrote we must read */
	char *x = canon(j), *y = canon(k);
	if (strcmp(x, y))
		abort();
	free(x);
	free(y);
out:
	bson_destroy(&again);
	json_decref(j);
	json_decref(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		diff_roundtrip((const char *)data + 1, size - 1);
		return 0;
	}
	/* bson_init_static needs an aligned-enough copy of its own */
	uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	stored_roundtrip(copy, size - 1, cts_history_from_bson, cts_history_to_bson);
	stored_roundtrip(copy, size - 1, cts_state_from_bson, cts_state_to_bson);
	free(copy);
	return 0;
}
