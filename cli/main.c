/*
 * main.c - the changetrail command-line tool: dispatch to subcommands.
 */
#include "cli.h"

#include "changetrail/common.h"
#include "changetrail/history.h"

#include <string.h>

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"diff", cmd_diff, "structural diff of two JSON documents"},
	{"patch", cmd_patch, "apply a diff to a JSON document"},
	{"revert-diff", cmd_revert_diff, "undo a diff on a JSON document (also: revert DOC.json DIFF.json)"},
	{"log", cmd_log, "history of a document, newest first"},
	{"show", cmd_show, "a document at a time or version"},
	{"context", cmd_context, "a changeset: metadata, actor, every change"},
	{"actor", cmd_actor, "every change made by an actor"},
	{"blame", cmd_blame, "the last change of every field of a document"},
	{"revert", cmd_revert, "the state to restore and the patch; --emit sends it"},
	{"verify", cmd_verify, "check the hash chains; exit 1 on a break"},
	{"prune", cmd_prune, "delete old history, keeping chains verifiable"},
	{"scan", cmd_scan, "backfill snapshots or detect deletions"},
	{"replay", cmd_replay, "rebuild history into another database from Kafka"},
	{"migrate", cmd_migrate, "convert a v1 (text form) database into a new v2 one"},
	{"serve", cmd_serve, "read-only web UI and JSON API over the history"},
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: changetrail <command> [options]\n"
		"       changetrail <command> --help | changetrail help <command>\n"
		"       changetrail --help | --version\n"
		"\n"
		"Reads and manages the change history that changetrail-consumer writes.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nexit status: 0 ok, 1 not found, 2 bad usage or input, 3 failure\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	/* `changetrail --config F log ...`: options before the command move after it */
	int first = 1;
	while (first < argc && (!strcmp(argv[first], "--json") ||
				((!strcmp(argv[first], "--config") || !strcmp(argv[first], "--uri") ||
				  !strcmp(argv[first], "--db")) && first + 1 < argc && (first += 1)) ||
				!strncmp(argv[first], "--config=", 9) || !strncmp(argv[first], "--uri=", 6) ||
				!strncmp(argv[first], "--db=", 5)))
		first++;
	if (first > 1 && first < argc) {
		char *cmd = argv[first];
		memmove(argv + 2, argv + 1, (size_t)(first - 1) * sizeof(*argv));
		argv[1] = cmd;
	}
	/* `changetrail help CMD` is `changetrail CMD --help` */
	if (!strcmp(argv[1], "help") && argc >= 3) {
		if (argc > 3) {
			fprintf(stderr, "changetrail help: one command at a time\n");
			return CLI_USAGE;
		}
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (!strcmp(argv[2], commands[i].name)) {
				char help[] = "--help", *args[] = {argv[2], help, NULL};
				return commands[i].run(2, args);
			}
		fprintf(stderr, "changetrail help: unknown command '%s' (see changetrail --help)\n", cli_esc(argv[2]));
		return CLI_USAGE;
	}
	if (cli_is_help(argv[1]) || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("changetrail %s\n", ct_version());
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name)) {
			ct_history_global_init();
			int rc = commands[i].run(argc - 1, argv + 1);
			ct_history_global_cleanup();
			return rc;
		}
	fprintf(stderr, "changetrail: unknown command '%s' (see changetrail --help)\n", cli_esc(argv[1]));
	return CLI_USAGE;
}
