/*
 * user.c - what an application does with an installed libchangetrail: builds
 * documents with jansson's own functions (the headers expose json_t, so the
 * program links jansson through the library's package) and calls the
 * library on them. Prints the version and the diff; exit 0 when all agrees.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <changetrail/canonical.h>
#include <changetrail/common.h>
#include <changetrail/diff.h>
#include <changetrail/event.h>
#include <changetrail/producer.h>
#include <changetrail/version.h>

int main(void)
{
	ct_error err;
	json_t *a = json_object(), *b = json_object(), *d = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc = 1;

	if (strcmp(ct_version(), CT_VERSION_STRING)) {
		fprintf(stderr, "library %s, headers %s\n", ct_version(), CT_VERSION_STRING);
		goto out;
	}
	json_object_set_new(a, "qty", json_integer(10));
	json_object_set_new(b, "qty", json_integer(7));
	if (ct_diff(a, b, &d, &err) || ct_json_dump_compact(d, &text, &len, &err)) {
		fprintf(stderr, "changetrail: %s\n", err.message);
		goto out;
	}
	printf("changetrail %s: %s\n", ct_version(), text);
	rc = strcmp(text, "[[\"change\",\"qty\",[10,7]]]") != 0;
out:
	free(text);
	json_decref(d);
	json_decref(a);
	json_decref(b);
	return rc;
}
