/*
 * cmd_serve.c - `changetrail serve`: the history browser and its JSON API
 * (docs/web.md). Reads the configuration as every history command does
 * ([mongodb]), plus [serve] listen and auth_file; --listen overrides the
 * file. The server itself is web/ (web.h).
 */
#include "cli.h"

#include "web.h"

#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: changetrail serve [--listen HOST:PORT] [--config FILE] [--uri URI] [--db NAME] [--auth-file F]\n"
	"                         [--quiet]\n"
	"A read-only web UI and JSON API (/api/v1) over the history.\n"
	"  --listen HOST:PORT  numeric address and port (default [serve] listen, else 127.0.0.1:8080;\n"
	"                      port 0 picks a free one); [::1]:PORT for IPv6\n"
	"  --auth-file F       one line 'bearer TOKEN' or 'basic USER:PASSWORD', mode 0600\n"
	"                      (default [serve] auth_file; none: no authentication)\n"
	"  --quiet             no access log on stderr\n"
	"  --config, --uri, --db as for the other history commands\n"
	"exit status: 0 stopped by SIGINT/SIGTERM, 2 bad usage, 3 failure\n";

/* Splits "host:port" / "[v6]:port" into host[64] and *port. */
static int split_listen(const char *s, char host[64], int *port)
{
	const char *colon;
	size_t hl;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		hl = (size_t)(close - s - 1);
		s++;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= 64)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 0 || p > 65535)
		return -1;
	*port = (int)p;
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	cli_common c = {.cmd = "serve"};
	ctw_options o = {0};
	const char *listen = NULL, *auth_file = NULL;
	char host[64];
	ct_error err;
	int rc = CLI_OK;

	for (int i = 1; i < argc; i++) {
		int r;
		if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			return CLI_OK;
		}
		if ((r = cli_common_arg(&c, argc, argv, &i)) || (r = cli_opt("serve", argc, argv, &i, "--listen", &listen)) ||
		    (r = cli_opt("serve", argc, argv, &i, "--auth-file", &auth_file))) {
			if (r < 0)
				goto usage;
			continue;
		}
		if (!strcmp(argv[i], "--quiet")) {
			o.quiet = true;
			continue;
		}
		fprintf(stderr, "changetrail serve: unknown argument '%s'\n", cli_esc(argv[i]));
		goto usage;
	}
	if ((rc = cli_load_config(&c)))
		goto out;
	if (!listen)
		listen = c.cfg.serve_listen && *c.cfg.serve_listen ? c.cfg.serve_listen : "127.0.0.1:8080";
	if (!auth_file && c.cfg.serve_auth_file && *c.cfg.serve_auth_file)
		auth_file = c.cfg.serve_auth_file;
	if (split_listen(listen, host, &o.port)) {
		fprintf(stderr, "changetrail serve: --listen '%s': expected HOST:PORT (numeric address)\n", cli_esc(listen));
		rc = CLI_USAGE;
		goto out;
	}
	o.host = host;
	if (auth_file && ctw_load_auth(auth_file, &o, &err)) {
		fprintf(stderr, "changetrail serve: %s\n", cli_esc(err.message));
		rc = err.code == CT_ENOMEM ? CLI_FAILURE : CLI_USAGE;
		goto out;
	}
	o.uri = c.cfg.mongodb_uri;
	o.database = c.cfg.mongodb_database;
	if (!o.uri || !o.database) {
		fprintf(stderr, "changetrail serve: no MongoDB configured ([mongodb] uri and database, or --uri/--db)\n");
		rc = CLI_USAGE;
		goto out;
	}
	if (ctw_serve(&o, &err))
		rc = cli_fail("serve", &err);
	goto out;
usage:
	fputs(usage_text, stderr);
	rc = CLI_USAGE;
out:
	if (o.expected) {
		explicit_bzero(o.expected, strlen(o.expected));
		free(o.expected);
	}
	cli_common_free(&c);
	return rc;
}
