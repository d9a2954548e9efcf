/*
 * fuzz_jsonscan.c - differential fuzzing of the producer's JSON check
 * against jansson: for any input, both must agree on whether it is a
 * well-formed JSON object (duplicate keys and depth > 64 aside).
 */
#include "ct_jsonscan.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc = ct_json_scan_object((const char *)data, size, 64, NULL);
	if (rc == CT_ELIMIT)
		return 0;
	json_t *v = json_loadb((const char *)data, size, 0, NULL);
	int theirs = v && json_is_object(v);
	json_decref(v);
	/* Whatever we accept, the consumer's parser must accept. The converse
	 * has one known exception: jansson 2.14 silently skips a NUL byte that
	 * follows a number or literal (its stream buffer uses NUL as "empty"),
	 * which we reject, being stricter. */
	if (rc == CT_OK && !theirs)
		abort();
	if (rc != CT_OK && theirs && !memchr(data, 0, size))
		abort();
	return 0;
}
