/*
 * util.c - JSON input and output shared by the subcommands.
 */
#include "cli.h"

#include "changetrail/canonical.h"
#include "ct_buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

static char *read_all(FILE *f, size_t *len, int *too_big)
{
	ct_buf b = CT_BUF_INIT;
	char chunk[65536];
	size_t n;
	b.max = CLI_MAX_INPUT_BYTES;
	*too_big = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (ct_buf_put(&b, chunk, n)) {
			*too_big = b.len + n > CLI_MAX_INPUT_BYTES;
			ct_buf_free(&b);
			return NULL;
		}
	}
	if (ferror(f)) {
		ct_buf_free(&b);
		return NULL;
	}
	return ct_buf_detach(&b, len);
}

json_t *cli_load_json(const char *cmd, const char *path)
{
	FILE *f = NULL;
	char *text = NULL;
	size_t len = 0;
	int too_big = 0;
	json_t *v = NULL;
	json_error_t jerr;

	f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "changetrail %s: %s: %s\n", cmd, path, strerror(errno));
		goto out;
	}
	text = read_all(f, &len, &too_big);
	if (!text) {
		if (too_big)
			fprintf(stderr, "changetrail %s: %s: larger than %u bytes\n", cmd, path,
				CLI_MAX_INPUT_BYTES);
		else
			fprintf(stderr, "changetrail %s: %s: read error\n", cmd, path);
		goto out;
	}
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v)
		fprintf(stderr, "changetrail %s: %s: invalid JSON at line %d, column %d: %s\n", cmd, path,
			jerr.line, jerr.column, jerr.text);
out:
	if (f && f != stdin)
		fclose(f);
	free(text);
	return v;
}

int cli_print_json(const char *cmd, const json_t *v)
{
	char *text = NULL;
	ct_error err;
	if (ct_json_dump_compact(v, &text, NULL, &err)) {
		fprintf(stderr, "changetrail %s: %s\n", cmd, err.message);
		return CLI_FAILURE;
	}
	puts(text);
	free(text);
	return fflush(stdout) ? CLI_FAILURE : CLI_OK;
}
