/*
 * cli.h - what the changetrail subcommands share: exit codes, JSON input
 * with bounds, JSON output.
 */
#ifndef CT_CLI_H
#define CT_CLI_H

#include <jansson.h>
#include <stdio.h>

/* Exit codes of every subcommand. */
enum {
	CLI_OK = 0,
	CLI_NOT_FOUND = 1, /* also: "verify found a break" */
	CLI_USAGE = 2,     /* bad usage or bad input */
	CLI_FAILURE = 3,   /* a server or the system failed */
};

/* Largest JSON input file the CLI reads. */
#define CLI_MAX_INPUT_BYTES (256u * 1024 * 1024)

/*
 * Reads and parses a JSON file ("-" = stdin) strictly: duplicate keys and
 * invalid UTF-8 rejected, any JSON value accepted at the top. On failure
 * prints "changetrail <cmd>: <path>: <reason>" to stderr and returns NULL.
 */
json_t *cli_load_json(const char *cmd, const char *path);

/* Prints `v` as compact JSON and a newline on stdout. Returns 0 or CLI_FAILURE. */
int cli_print_json(const char *cmd, const json_t *v);

/* true when argv[i] is -h or --help. */
int cli_is_help(const char *arg);

int cmd_diff(int argc, char **argv);
int cmd_patch(int argc, char **argv);
int cmd_revert(int argc, char **argv);

#endif
