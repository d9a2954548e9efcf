/*
 * util.c - JSON input and output shared by the subcommands, and the one
 * escaping of everything they print (stored values may be hostile: an ESC
 * sequence in an actor, a newline and a forged history line in an id).
 */
#include "cli.h"

#include "changetrail/canonical.h"
#include "ct_buf.h"
#include "ct_textsafe.h"

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
		fprintf(stderr, "changetrail %s: %s: %s\n", cmd, cli_esc(path), strerror(errno));
		goto out;
	}
	text = read_all(f, &len, &too_big);
	if (!text) {
		if (too_big)
			fprintf(stderr, "changetrail %s: %s: larger than %u bytes\n", cmd, cli_esc(path),
				CLI_MAX_INPUT_BYTES);
		else
			fprintf(stderr, "changetrail %s: %s: read error\n", cmd, cli_esc(path));
		goto out;
	}
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v) /* jansson quotes the offending input */
		fprintf(stderr, "changetrail %s: %s: invalid JSON at line %d, column %d: %s\n", cmd, cli_esc(path),
			jerr.line, jerr.column, cli_esc(jerr.text));
out:
	if (f && f != stdin)
		fclose(f);
	free(text);
	return v;
}

/* The ring of cli_esc() results. */
#define ESC_RING 16
static char *esc_ring[ESC_RING];
static unsigned esc_next;

static const char *ring_keep(char *text)
{
	unsigned i = esc_next++ % ESC_RING;
	free(esc_ring[i]);
	esc_ring[i] = text;
	return text;
}

static const char *esc_with(const char *s, size_t len, unsigned flags)
{
	ct_buf b = CT_BUF_INIT;
	if (ct_text_is_plain(s, len, flags))
		return s;
	if (ct_text_escape(&b, s, len, flags) || !b.data) {
		ct_buf_free(&b);
		return "(unprintable)";
	}
	return ring_keep(ct_buf_detach(&b, NULL));
}

const char *cli_esc(const char *s)
{
	return s ? esc_with(s, strlen(s), 0) : "?";
}

const char *cli_esc_json(const json_t *v)
{
	char *t = NULL;
	size_t len = 0;
	if (!v || ct_json_dump_compact(v, &t, &len, NULL)) {
		free(t);
		return "?";
	}
	const char *e = esc_with(t, len, CT_ESC_JSON);
	if (e == t)
		return ring_keep(t);
	free(t);
	return e;
}

int cli_print_json(const char *cmd, const json_t *v)
{
	char *text = NULL;
	size_t len = 0;
	ct_buf b = CT_BUF_INIT;
	ct_error err;
	int rc = CLI_OK;
	if (ct_json_dump_compact(v, &text, &len, &err)) {
		fprintf(stderr, "changetrail %s: %s\n", cmd, cli_esc(err.message));
		return CLI_FAILURE;
	}
	if (!ct_text_is_plain(text, len, CT_ESC_JSON)) {
		if (ct_text_escape(&b, text, len, CT_ESC_JSON)) {
			fprintf(stderr, "changetrail %s: out of memory\n", cmd);
			rc = CLI_FAILURE;
			goto out;
		}
		free(text);
		text = ct_buf_detach(&b, &len);
	}
	fwrite(text, 1, len, stdout);
	putchar('\n');
	rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
out:
	ct_buf_free(&b);
	free(text);
	return rc;
}
