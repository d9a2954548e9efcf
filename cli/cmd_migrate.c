/*
 * cmd_migrate.c - `changetrail migrate --from-db OLD --into NEW`: the
 * upgrade of a database written in stored form v1 to stored form v2
 * (ct_history_migrate()), with progress on stderr and an optional verify
 * of the result.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
	"usage: changetrail migrate --from-db OLD --into NEW [--batch N] [--max-records N] [--verify]\n"
	"                           [--quiet] [--json] [--config FILE] [--uri URI]\n"
	"\n"
	"Copies database OLD, written by a changetrail before stored form v2 (user\n"
	"JSON and times as text), into database NEW in stored form v2 (native BSON\n"
	"documents, BSON dates; docs/storage.md) on the same server: history records\n"
	"and checkpoints (hashes kept, nothing re-hashed), states (and the state\n"
	"journal), contexts with their parts merged. Stop the consumer first; point it\n"
	"at NEW afterwards. Idempotent and resumable: each batch's progress is kept in\n"
	"NEW, so an interrupted run, run again, continues where it stopped, and a\n"
	"finished one does nothing.\n"
	"  --batch N        documents per write (1..10000, default 1000)\n"
	"  --max-records N  stop after N source documents (rerun to continue)\n"
	"  --verify         then verify every hash chain of NEW (exit 1 on a problem)\n"
	"  --quiet          no progress on stderr\n"
	"  --uri URI, --config FILE, --json as in `changetrail log`\n"
	"exit status: 0 ok, 1 verify found a problem, 2 bad usage, 3 failure\n";

typedef struct progress {
	struct timespec phase_start, last;
	const char *phase;
} progress;

static double secs_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* "migrate: history 12000/50000 (24%) 2400/s", at most once a second and at the end of a phase. */
static void on_progress(void *arg, const char *phase, int64_t done, int64_t total)
{
	progress *p = arg;
	if (p->phase != phase) {
		p->phase = phase;
		clock_gettime(CLOCK_MONOTONIC, &p->phase_start);
		p->last = p->phase_start;
		if (total == 0)
			return;
	} else if (done < total && secs_since(&p->last) < 1.0) {
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &p->last);
	double el = secs_since(&p->phase_start);
	fprintf(stderr, "changetrail migrate: %s %lld/%lld (%d%%) %.0f/s\n", phase, (long long)done, (long long)total,
		total ? (int)(done * 100 / total) : 100, el > 0 ? (double)done / el : 0.0);
}

static long long num_arg(const char *s, long long lo, long long hi)
{
	char *end;
	if (!s || !*s || *s == '+' || *s == '-')
		return -1;
	long long v = strtoll(s, &end, 10);
	return *end || v < lo || v > hi ? -1 : v;
}

int cmd_migrate(int argc, char **argv)
{
	cli_common c = {.cmd = "migrate"};
	const char *from_db = NULL, *into_db = NULL, *batch = NULL, *max = NULL;
	bool verify = false, quiet = false;
	int rc = CLI_USAGE;
	ct_history *from = NULL, *into = NULL;
	json_t *res = NULL, *ver = NULL;
	ct_error err;
	progress pr = {0};
	ct_history_migrate_opts o = {0};

	for (int i = 1; i < argc; i++) {
		int r;
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		if ((r = cli_common_arg(&c, argc, argv, &i)) || (r = cli_opt("migrate", argc, argv, &i, "--from-db", &from_db)) ||
		    (r = cli_opt("migrate", argc, argv, &i, "--into", &into_db)) ||
		    (r = cli_opt("migrate", argc, argv, &i, "--batch", &batch)) ||
		    (r = cli_opt("migrate", argc, argv, &i, "--max-records", &max))) {
			if (r < 0)
				goto usage;
			continue;
		}
		if (!strcmp(argv[i], "--verify"))
			verify = true;
		else if (!strcmp(argv[i], "--quiet"))
			quiet = true;
		else {
			fprintf(stderr, "changetrail migrate: unexpected argument '%s'\n", argv[i]);
			goto usage;
		}
	}
	if (!from_db || !into_db) {
		fprintf(stderr, "changetrail migrate: --from-db OLD and --into NEW are required\n");
		goto usage;
	}
	if (c.db) {
		fprintf(stderr, "changetrail migrate: --db does not apply; name the databases with --from-db and --into\n");
		goto usage;
	}
	if (batch && (o.batch = (int)num_arg(batch, 1, 10000)) < 0) {
		fprintf(stderr, "changetrail migrate: --batch must be 1..10000\n");
		goto usage;
	}
	if (max && (o.max_records = num_arg(max, 1, 1LL << 62)) < 0) {
		fprintf(stderr, "changetrail migrate: --max-records must be a positive integer\n");
		goto usage;
	}
	if (!quiet) {
		o.progress = on_progress;
		o.progress_arg = &pr;
	}
	if ((rc = cli_load_config(&c)))
		goto out;
	if (ct_history_open(c.cfg.mongodb_uri, from_db, &from, &err) ||
	    ct_history_open(c.cfg.mongodb_uri, into_db, &into, &err) || ct_history_migrate(from, into, &o, &res, &err)) {
		rc = cli_fail("migrate", &err);
		goto out;
	}
	bool complete = json_is_true(json_object_get(res, "complete"));
	if (verify && complete) {
		if (ct_history_verify(into, NULL, NULL, &ver, &err)) {
			rc = cli_fail("migrate", &err);
			goto out;
		}
		json_object_set(res, "verify", ver);
	}
	size_t problems = json_array_size(json_object_get(ver, "problems"));
	if (c.json) {
		rc = cli_print_json("migrate", res);
	} else {
		const json_t *h = json_object_get(res, "history"), *s = json_object_get(res, "state"),
			     *j = json_object_get(res, "state_journal"), *x = json_object_get(res, "contexts");
#define N(o, k) ((long long)json_integer_value(json_object_get((o), (k))))
		printf("%s -> %s: %s\n", from_db, into_db,
		       complete ? "complete" : "stopped at --max-records; run again to continue");
		printf("  history:  %lld read, %lld written, %lld already there, %lld hash mismatch(es)\n", N(h, "read"),
		       N(h, "written"), N(h, "present"), N(h, "hash_mismatches"));
		printf("  states:   %lld read, %lld written, %lld not newer; %lld journal record(s) applied\n",
		       N(s, "read"), N(s, "written"), N(s, "not_newer"), N(j, "read"));
		printf("  contexts: %lld read (%lld part(s) merged), %lld written\n", N(x, "read"), N(x, "parts_merged"),
		       N(x, "written"));
		if (ver)
			printf("  verify:   %lld document(s), %lld record(s), %zu problem(s)\n", N(ver, "documents"),
			       N(ver, "records"), problems);
#undef N
		rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
	}
	if (!rc && problems)
		rc = CLI_NOT_FOUND;
	goto out;
usage:
	fprintf(stderr, "%.*s", (int)(strchr(usage, '\n') - usage + 1), usage);
	rc = CLI_USAGE;
out:
	json_decref(res);
	json_decref(ver);
	ct_history_close(from);
	ct_history_close(into);
	cli_common_free(&c);
	return rc;
}
