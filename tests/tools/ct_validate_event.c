/*
 * ct_validate_event.c - runs the C event validator (ct_event_parse with
 * default limits) over files, for tests/schema_examples_test.py to compare
 * with jsonschema. Prints one line per file:
 *   <path>\tok
 *   <path>\terror\t<code>\t<message>
 * Exit status: 0 when every file could be read (whatever the verdicts),
 * 2 on usage or I/O errors.
 */
#include "changetrail/event.h"

#include <stdio.h>
#include <stdlib.h>

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				buf = NULL;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	}
	*len = n;
out:
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	int status = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		size_t len = 0;
		char *buf = read_all(argv[i], &len);
		if (!buf) {
			fprintf(stderr, "%s: cannot read\n", argv[i]);
			status = 2;
			continue;
		}
		ct_event *ev = NULL;
		ct_error err;
		int rc = ct_event_parse(buf, len, NULL, &ev, &err);
		if (rc == CT_OK)
			printf("%s\tok\n", argv[i]);
		else
			printf("%s\terror\t%s\t%s\n", argv[i], ct_strerror(rc), err.message);
		ct_event_free(ev);
		free(buf);
	}
	return status;
}
