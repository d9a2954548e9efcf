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

/*
 * Prints `v` as compact JSON and a newline on stdout: exact JSON (it parses
 * to `v`), with the characters that drive terminals or split lines (DEL, C1,
 * bidi controls, U+2028/9) written as \u escapes, so one value is one line.
 * Returns 0 or CLI_FAILURE.
 */
int cli_print_json(const char *cmd, const json_t *v);

/*
 * Every text the CLI prints that comes from the database, the input or an
 * error goes through one of these (they use ct_text_escape()): control
 * characters as \x1b \n \t, backslash as \\, C1 and bidi controls as
 * \u202e, invalid UTF-8 as \xNN; plain text is returned as it is.
 * The result lives until 16 later calls (a ring; the CLI is single-threaded):
 * use it in the printf it is made for. NULL gives "?"; out of memory gives
 * "(unprintable)".
 */
const char *cli_esc(const char *s);
/* `v` as compact JSON, escaped (JSON stays JSON); "?" when it cannot be printed. */
const char *cli_esc_json(const json_t *v);

/* true when argv[i] is -h or --help. */
int cli_is_help(const char *arg);

int cmd_diff(int argc, char **argv);
int cmd_patch(int argc, char **argv);
int cmd_revert_diff(int argc, char **argv);

/* ---- the history commands (common.c) ---- */
#include "changetrail/history.h"
#include "config.h"

#include <stdbool.h>

/* Default configuration file, read when it exists and no --config is given. */
#define CLI_DEFAULT_CONFIG "/etc/changetrail/consumer.ini"

/* What every history command accepts: --config, --uri, --db, --json. */
typedef struct cli_common {
	const char *cmd;       /* "log", "show", ... for messages */
	const char *config_path, *uri, *db;
	bool json;
	ctc_config cfg;        /* after cli_load_config() */
	bool cfg_loaded;
} cli_common;

/*
 * Consumes argv[*i] (and its value) when it is a common option: returns 1,
 * 0 when it is not one, -1 (message printed) when its value is missing.
 */
int cli_common_arg(cli_common *c, int argc, char **argv, int *i);

/*
 * Matches option `name` at argv[*i], as "--name VALUE" or "--name=VALUE":
 * 1 and *value set, 0 when it is another argument, -1 when the value is
 * missing (message printed).
 */
int cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, const char **value);

/* Loads the configuration: file, environment, then --uri/--db. CLI_USAGE on error (printed). */
int cli_load_config(cli_common *c);
void cli_common_free(cli_common *c);

/* Loads the configuration and opens the history database. Exit code on failure (printed). */
int cli_open(cli_common *c, ct_history **h);

/* Exit code for a ct_error_code, after printing "changetrail <cmd>: <message>". */
int cli_fail(const char *cmd, const ct_error *err);

/* Human output helpers (format.c). */
void cli_print_changes(FILE *out, const json_t *changes, const char *indent);
void cli_print_record(FILE *out, const json_t *rec, bool with_doc_key, bool jsonpatch);
void cli_print_doc(FILE *out, const json_t *doc);
/* `changes` as the requested format: a new reference (dictdiffer: same array). */
json_t *cli_changes_in(const json_t *changes, bool jsonpatch);

/* A producer configured from the [kafka] section and [consumer] topic. */
struct ct_producer;
int cli_producer(cli_common *c, struct ct_producer **out, ct_error *err);

int cmd_log(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_context(int argc, char **argv);
int cmd_actor(int argc, char **argv);
int cmd_blame(int argc, char **argv);
int cmd_revert(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
