/*
 * cmd_diff.c - `changetrail diff`, `patch` and `revert-diff` (also `revert DOC DIFF`): the structural diff
 * of common/ on JSON files, for scripts and for checking what the consumer
 * will record.
 */
#include "cli.h"

#include "changetrail/diff.h"

#include <string.h>

static void diff_usage(FILE *out)
{
	fprintf(out,
		"usage: changetrail diff [--format dictdiffer|jsonpatch] A.json B.json\n"
		"\n"
		"Prints the changes that turn A into B as JSON: by default a list of\n"
		"[action, path, data] (the form of Python's dictdiffer, the form stored in\n"
		"history), or an RFC 6902 JSON Patch with --format jsonpatch.\n"
		"A file name of - reads standard input.\n");
}

int cmd_diff(int argc, char **argv)
{
	const char *format = "dictdiffer", *files[2] = {NULL, NULL};
	int nfiles = 0, rc = CLI_USAGE;
	json_t *a = NULL, *b = NULL, *d = NULL, *out = NULL;
	ct_error err;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			diff_usage(stdout);
			return CLI_OK;
		} else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
			format = argv[++i];
		} else if (!strncmp(argv[i], "--format=", 9)) {
			format = argv[i] + 9;
		} else if (argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "-")) {
			fprintf(stderr, "changetrail diff: unknown option '%s'\n", cli_esc(argv[i]));
			goto usage;
		} else if (nfiles < 2) {
			files[nfiles++] = argv[i];
		} else {
			fprintf(stderr, "changetrail diff: too many arguments\n");
			goto usage;
		}
	}
	if (nfiles != 2) {
		fprintf(stderr, "changetrail diff: two files are needed\n");
		goto usage;
	}
	if (strcmp(format, "dictdiffer") && strcmp(format, "jsonpatch")) {
		fprintf(stderr, "changetrail diff: --format must be dictdiffer or jsonpatch, not '%s'\n", cli_esc(format));
		goto usage;
	}
	if (!(a = cli_load_json("diff", files[0])) || !(b = cli_load_json("diff", files[1])))
		goto out;
	if (ct_diff(a, b, &d, &err)) {
		fprintf(stderr, "changetrail diff: %s\n", cli_esc(err.message));
		goto out;
	}
	if (!strcmp(format, "jsonpatch")) {
		if (ct_diff_to_jsonpatch(d, &out, &err)) {
			fprintf(stderr, "changetrail diff: %s\n", cli_esc(err.message));
			goto out;
		}
		rc = cli_print_json("diff", out);
	} else {
		rc = cli_print_json("diff", d);
	}
	goto out;
usage:
	diff_usage(stderr);
out:
	json_decref(a);
	json_decref(b);
	json_decref(d);
	json_decref(out);
	return rc;
}

/* patch and revert share everything but the direction. */
static int apply(int argc, char **argv, const char *cmd, int reverse)
{
	const char *files[2] = {NULL, NULL};
	int nfiles = 0, rc = CLI_USAGE;
	json_t *doc = NULL, *d = NULL, *out = NULL;
	ct_error err;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			printf("usage: changetrail %s DOC.json DIFF.json\n\n%s\n"
			       "DIFF is a list of [action, path, data] as printed by `changetrail diff`.\n"
			       "A file name of - reads standard input. Exit 2 when the diff does not apply.\n",
			       cmd, reverse ? "Undoes DIFF on DOC (the newer document) and prints the older one."
					    : "Applies DIFF to DOC and prints the new document.");
			return CLI_OK;
		}
		if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "changetrail %s: unknown option '%s'\n", cmd, cli_esc(argv[i]));
			return CLI_USAGE;
		}
		if (nfiles == 2) {
			fprintf(stderr, "changetrail %s: too many arguments\n", cmd);
			return CLI_USAGE;
		}
		files[nfiles++] = argv[i];
	}
	if (nfiles != 2) {
		fprintf(stderr, "usage: changetrail %s DOC.json DIFF.json\n", cmd);
		return CLI_USAGE;
	}
	if (!(doc = cli_load_json(cmd, files[0])) || !(d = cli_load_json(cmd, files[1])))
		goto out;
	if ((reverse ? ct_revert(d, doc, &out, &err) : ct_patch(d, doc, &out, &err))) {
		fprintf(stderr, "changetrail %s: %s\n", cmd, cli_esc(err.message));
		goto out;
	}
	rc = cli_print_json(cmd, out);
out:
	json_decref(doc);
	json_decref(d);
	json_decref(out);
	return rc;
}

int cmd_patch(int argc, char **argv)
{
	return apply(argc, argv, "patch", 0);
}

int cmd_revert_diff(int argc, char **argv)
{
	return apply(argc, argv, "revert", 1);
}
