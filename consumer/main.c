/*
 * main.c - entry point of changetrail-consumer: command line, then the loop.
 *
 * The pipeline itself (Kafka -> diff -> MongoDB) is built in the files beside
 * this one; today this only answers --help and --version.
 */
#include "changetrail/common.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: changetrail-consumer [--config FILE] [--check-config]\n"
		"       changetrail-consumer --help | --version\n"
		"\n"
		"Consumes change events from Kafka, computes structural diffs, groups\n"
		"them by context and persists history to MongoDB.\n");
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("changetrail-consumer %s\n", ct_version());
			return 0;
		}
		fprintf(stderr, "changetrail-consumer: unknown option '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	fprintf(stderr, "changetrail-consumer: the pipeline is not built yet\n");
	return 1;
}
