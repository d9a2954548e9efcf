/*
 * main.c - the changetrail command-line tool: dispatch to subcommands.
 */
#include "changetrail/common.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: changetrail <command> [options]\n"
		"       changetrail --help | --version\n"
		"\n"
		"Reads and manages the change history that changetrail-consumer writes.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("changetrail %s\n", ct_version());
		return 0;
	}
	fprintf(stderr, "changetrail: unknown command '%s' (see changetrail --help)\n", argv[1]);
	return 2;
}
