/*
 * fuzz_config.c - changetrail-consumer's INI parser (consumer/config.c) on
 * any file content. Properties: an error is one line that starts with
 * "<path>:<line>" (line within the file) or names the path; an accepted file
 * prints (--check-config) to text that parses again to the same printout,
 * with every secret [kafka] key shown as ***; the MongoDB URI's user:password
 * never survives redaction. abort() on any violation.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64], path2[64];

static int write_file(const char *p, const void *buf, size_t n)
{
	FILE *f = fopen(p, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(buf, 1, n, f);
	return fclose(f) == 0 && w == n ? 0 : -1;
}

static char *print(const ctc_config *cfg, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		abort();
	ctc_config_print(cfg, f);
	fclose(f);
	return buf;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The userinfo of a mongodb URI never comes out of the redaction. */
static void check_redaction(const char *uri)
{
	char out[1024];
	/* the schemes libmongoc takes; the redaction keeps the scheme as it is */
	const char *start = !strncmp(uri, "mongodb://", 10) ? uri + 10
			    : !strncmp(uri, "mongodb+srv://", 14) ? uri + 14 : NULL;
	if (!start || strlen(uri) >= 900)
		return;
	const char *slash = strchr(start, '/'), *at = NULL;
	for (const char *p = start; *p && (!slash || p < slash); p++)
		if (*p == '@')
			at = p;
	ctc_config_redact_uri(uri, out, sizeof(out));
	if (!at || at == start)
		return;
	/* "user:password@" occurs in the output no more often than in what
	 * follows it in the URI (the host and path are kept) */
	char userinfo[1024];
	snprintf(userinfo, sizeof(userinfo), "%.*s", (int)(at - start + 1), start);
	if (count(out, userinfo) > count(at + 1, userinfo))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ctc_config cfg, again;
	ct_error err;
	char *p1 = NULL, *p2 = NULL;
	size_t n1, n2;
	int cfg_ok = 0, again_ok = 0;

	if (!*path) {
		snprintf(path, sizeof(path), "/tmp/fuzz-config-%ld.ini", (long)getpid());
		snprintf(path2, sizeof(path2), "/tmp/fuzz-config-%ld-2.ini", (long)getpid());
	}
	if (size > CTC_CONFIG_MAX_FILE_BYTES + 10 || write_file(path, data, size))
		return 0;
	if (ctc_config_init(&cfg, &err))
		abort();
	cfg_ok = 1;
	int rc = ctc_config_load_file(&cfg, path, &err);
	if (rc != CT_OK) {
		size_t pl = strlen(path);
		if (err.code != rc || strchr(err.message, '\n') || strncmp(err.message, path, pl) ||
		    err.message[pl] != ':')
			abort();
		if (err.message[pl + 1] >= '0' && err.message[pl + 1] <= '9') {
			unsigned long line = strtoul(err.message + pl + 1, NULL, 10), lines = 1;
			for (size_t i = 0; i < size; i++)
				lines += data[i] == '\n';
			if (line < 1 || line > lines)
				abort();
		}
		goto out;
	}
	check_redaction(cfg.mongodb_uri);
	p1 = print(&cfg, &n1);
	for (size_t i = 0; i < cfg.nkafka; i++) {
		if (!ctc_config_is_secret_key(cfg.kafka[i].key))
			continue;
		char want[CTC_CONFIG_MAX_LINE + 16];
		snprintf(want, sizeof(want), "\n%s = ***\n", cfg.kafka[i].key);
		if (!strstr(p1, want))
			abort();
	}
	/* the printout is a config file that says the same thing (unless
	 * " = " pushed a line past the bound, which the input's lines were not) */
	for (char *l = p1, *e; *l; l = e + 1) {
		if (!(e = strchr(l, '\n')))
			break;
		if ((size_t)(e - l) + 1 > CTC_CONFIG_MAX_LINE)
			goto out;
	}
	if (write_file(path2, p1, n1) || ctc_config_init(&again, &err))
		abort();
	again_ok = 1;
	if (ctc_config_load_file(&again, path2, &err) != CT_OK)
		abort();
	p2 = print(&again, &n2);
	/* secrets print as *** and so re-read as "***": compare only when there are none */
	int secrets = 0;
	for (size_t i = 0; i < cfg.nkafka; i++)
		secrets |= ctc_config_is_secret_key(cfg.kafka[i].key);
	if (!secrets && !strchr(cfg.mongodb_uri, '@') && (n1 != n2 || memcmp(p1, p2, n1)))
		abort();
out:
	free(p1);
	free(p2);
	if (cfg_ok)
		ctc_config_free(&cfg);
	if (again_ok)
		ctc_config_free(&again);
	return 0;
}
