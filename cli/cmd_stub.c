/* cmd_stub.c - placeholders replaced by their own files. */
#include "cli.h"
int cmd_scan(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "changetrail scan: not built yet\n"); return CLI_FAILURE; }
int cmd_replay(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "changetrail replay: not built yet\n"); return CLI_FAILURE; }
