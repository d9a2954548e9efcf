/*
 * cmd_verify.c - `changetrail verify` (the hash chains; exit 1 on a break)
 * and `changetrail prune` (retention with checkpoints, so verify still
 * passes afterwards).
 */
#include "cli.h"

#include <string.h>
#include <time.h>

static const char verify_usage[] =
	"usage: changetrail verify [COLLECTION [ID]] [--json] [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"Recomputes the hash of every history record (of one document, a collection\n"
	"or everything), checks versions are contiguous (from 1 or a prune checkpoint),\n"
	"that each prev_hash links to the previous record, that the changes replay to\n"
	"the stored document and that the state is the record of its version (a state\n"
	"behind the history is counted, not a problem: the consumer writes states\n"
	"every state_flush_ms). Reports each problem: modified, missing, duplicate,\n"
	"reordered, changes_do_not_apply, state_mismatch, state_doc_mismatch, no_history.\n"
	"exit status: 0 intact, 1 a problem found (or ID not found), 2 bad usage, 3 server failure\n";

static int parse_common(cli_common *c, int argc, char **argv, const char **pos, int maxpos, int *npos,
			const char *usage)
{
	for (int i = 1; i < argc; i++) {
		int r;
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		if ((r = cli_common_arg(c, argc, argv, &i))) {
			if (r < 0)
				return CLI_USAGE;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "changetrail %s: unknown option '%s'\n", c->cmd, cli_esc(argv[i]));
			return CLI_USAGE;
		}
		if (*npos >= maxpos) {
			fprintf(stderr, "changetrail %s: too many arguments\n", c->cmd);
			return CLI_USAGE;
		}
		pos[(*npos)++] = argv[i];
	}
	return -1;
}

int cmd_verify(int argc, char **argv)
{
	cli_common c = {.cmd = "verify"};
	const char *pos[2] = {NULL, NULL};
	int npos = 0, rc;
	ct_history *h = NULL;
	json_t *res = NULL;
	ct_error err;

	if ((rc = parse_common(&c, argc, argv, pos, 2, &npos, verify_usage)) >= 0) {
		if (rc == CLI_USAGE)
			fprintf(stderr, "%.*s", (int)(strchr(verify_usage, '\n') - verify_usage + 1), verify_usage);
		return rc;
	}
	if ((rc = cli_open(&c, &h)))
		goto out;
	if (ct_history_verify(h, pos[0], pos[1], &res, &err)) {
		rc = cli_fail("verify", &err);
		goto out;
	}
	json_t *problems = json_object_get(res, "problems");
	if (c.json) {
		rc = cli_print_json("verify", res);
	} else {
		size_t i;
		json_t *p;
		json_array_foreach(problems, i, p) {
			const json_t *v = json_object_get(p, "version");
			printf("%s/%s", cli_esc(json_string_value(json_object_get(p, "collection"))),
			       cli_esc(json_string_value(json_object_get(p, "document_id"))));
			if (json_is_integer(v))
				printf(" v%lld", (long long)json_integer_value(v));
			printf(": %s: %s\n", cli_esc(json_string_value(json_object_get(p, "problem"))),
			       cli_esc(json_string_value(json_object_get(p, "detail"))));
		}
		printf("%lld document(s), %lld record(s): %s\n", (long long)json_integer_value(json_object_get(res, "documents")),
		       (long long)json_integer_value(json_object_get(res, "records")),
		       json_array_size(problems) ? "PROBLEMS FOUND" : "all chains intact");
		json_int_t behind = json_integer_value(json_object_get(res, "states_behind"));
		if (behind)
			printf("%lld state(s) behind their history (written by the consumer every state_flush_ms)\n",
			       (long long)behind);
		rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
	}
	if (!rc && json_array_size(problems))
		rc = CLI_NOT_FOUND;
out:
	json_decref(res);
	ct_history_close(h);
	cli_common_free(&c);
	return rc;
}

static const char prune_usage[] =
	"usage: changetrail prune --older-than DURATION [--collection C] [--dry-run] [--json]\n"
	"                         [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"Retention: deletes the history records older than DURATION (30d, 12w, 48h)\n"
	"and puts in their place, per document, one checkpoint record with the state\n"
	"and the hash the pruned prefix reached, so `verify` still passes and `show`\n"
	"works from the checkpoint on. The current state is never touched. A chain\n"
	"that does not verify is skipped (and reported), never pruned.\n"
	"exit status: 0 ok, 2 bad usage, 3 server failure\n";

int cmd_prune(int argc, char **argv)
{
	cli_common c = {.cmd = "prune"};
	const char *older = NULL, *coll = NULL;
	bool dry = false;
	int rc = CLI_USAGE;
	ct_history *h = NULL;
	json_t *res = NULL;
	ct_error err;
	int64_t d;

	for (int i = 1; i < argc; i++) {
		int r;
		if (cli_is_help(argv[i])) {
			fputs(prune_usage, stdout);
			return CLI_OK;
		}
		if ((r = cli_common_arg(&c, argc, argv, &i)) ||
		    (r = cli_opt("prune", argc, argv, &i, "--older-than", &older)) ||
		    (r = cli_opt("prune", argc, argv, &i, "--collection", &coll))) {
			if (r < 0)
				goto usage;
			continue;
		}
		if (!strcmp(argv[i], "--dry-run")) {
			dry = true;
			continue;
		}
		fprintf(stderr, "changetrail prune: unexpected argument '%s'\n", cli_esc(argv[i]));
		goto usage;
	}
	if (!older) {
		fprintf(stderr, "changetrail prune: --older-than DURATION is required\n");
		goto usage;
	}
	if (ct_history_parse_duration(older, &d, &err)) {
		fprintf(stderr, "changetrail prune: --older-than: %s\n", cli_esc(err.message));
		goto usage;
	}
	if ((rc = cli_open(&c, &h)))
		goto out;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ct_history_prune(h, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - d, coll, dry, &res, &err)) {
		rc = cli_fail("prune", &err);
		goto out;
	}
	if (c.json) {
		rc = cli_print_json("prune", res);
		goto out;
	}
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(res, "checkpoints"), i, x)
		printf("%s%s/%s: checkpoint at v%lld, %lld record(s) deleted\n", dry ? "(dry run) " : "",
		       cli_esc(json_string_value(json_object_get(x, "collection"))),
		       cli_esc(json_string_value(json_object_get(x, "document_id"))),
		       (long long)json_integer_value(json_object_get(x, "version")),
		       (long long)json_integer_value(json_object_get(x, "records_deleted")));
	json_array_foreach(json_object_get(res, "skipped"), i, x)
		printf("%s/%s: SKIPPED: %s\n", cli_esc(json_string_value(json_object_get(x, "collection"))),
		       cli_esc(json_string_value(json_object_get(x, "document_id"))),
		       cli_esc(json_string_value(json_object_get(x, "reason"))));
	printf("%s%lld document(s) pruned before %s, %lld record(s) deleted\n", dry ? "(dry run) " : "",
	       (long long)json_integer_value(json_object_get(res, "documents")),
	       cli_esc(json_string_value(json_object_get(res, "cutoff"))),
	       (long long)json_integer_value(json_object_get(res, "records_deleted")));
	rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
	goto out;
usage:
	fprintf(stderr, "%.*s", (int)(strchr(prune_usage, '\n') - prune_usage + 1), prune_usage);
	rc = CLI_USAGE;
out:
	json_decref(res);
	ct_history_close(h);
	cli_common_free(&c);
	return rc;
}
