/*
 * fuzz_jsonparse.c - differential fuzzing of the consumer's fast JSON parser
 * against jansson. The first byte picks the bounds (small ones half the
 * time, so they are crossed often); the rest is the text. Whatever the fast
 * path accepts, jansson (duplicate keys refused) must accept, within the
 * bounds, into an identical tree: the fast path may only ever hand an event
 * to the consumer that the slow path would have handed over the same.
 */
#include "ct_jsonparse.h"
#include "json_same.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	ct_limits l;
	ct_limits_default(&l);
	uint8_t b = data[0];
	if (b & 0x80) {
		l.max_depth = 1 + (b & 3) * 2;
		l.max_keys = 1 + ((b >> 2) & 3) * 3;
		l.max_string_bytes = 1 + ((b >> 4) & 3) * 4;
		l.max_array_items = 1 + ((b >> 6) & 1) * 4;
	}
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	json_t *fast = ct_json_parse_fast(s, n, &l);
	if (!fast)
		return 0;
	json_t *slow = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	size_t keys = 0;
	if (!slow || !json_is_object(slow) || !ct_json_within(slow, &l, 0, &keys) || !ct_json_identical(fast, slow))
		abort();
	json_decref(fast);
	json_decref(slow);
	return 0;
}
