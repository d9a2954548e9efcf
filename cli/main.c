/*
 * main.c - the changetrail command-line tool: dispatch to subcommands.
 */
#include "cli.h"

#include "changetrail/common.h"

#include <string.h>

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"diff", cmd_diff, "structural diff of two JSON documents"},
	{"patch", cmd_patch, "apply a diff to a JSON document"},
	{"revert", cmd_revert, "undo a diff on a JSON document"},
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: changetrail <command> [options]\n"
		"       changetrail <command> --help\n"
		"       changetrail --help | --version\n"
		"\n"
		"Reads and manages the change history that changetrail-consumer writes.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nexit status: 0 ok, 1 not found, 2 bad usage or input, 3 failure\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
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
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "changetrail: unknown command '%s' (see changetrail --help)\n", argv[1]);
	return CLI_USAGE;
}
