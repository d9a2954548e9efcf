/*
 * cmd_read.c - the read-only history commands: log, show, context, actor,
 * blame. Human output by default, the stored data as JSON with --json.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMMON_HELP                                                                           \
	"  --config FILE   consumer configuration (default " CLI_DEFAULT_CONFIG " if present);\n" \
	"                  CHANGETRAIL_MONGODB_URI / CHANGETRAIL_MONGODB_DATABASE override it\n"  \
	"  --uri URI       MongoDB URI (overrides the configuration)\n"                            \
	"  --db NAME       database (overrides the configuration)\n"                               \
	"  --json          print JSON instead of text\n"                                          \
	"exit status: 0 ok, 1 not found, 2 bad usage, 3 server failure\n"

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Parses a time argument; CLI_USAGE (printed) when it is not one. */
static int time_arg(const char *cmd, const char *opt, const char *s, int64_t *out)
{
	ct_error err;
	if (!s) {
		*out = CT_HISTORY_NO_TIME;
		return 0;
	}
	if (ct_history_parse_time(s, now_us(), out, &err)) {
		fprintf(stderr, "changetrail %s: %s: %s\n", cmd, opt, cli_esc(err.message));
		return CLI_USAGE;
	}
	return 0;
}

/* Parsed command line of a read command. */
typedef struct read_args {
	cli_common c;
	const char *pos[3];
	int npos;
	const char *since, *until, *at, *version, *format, *limit_arg;
	bool children, jsonl;
	size_t limit; /* records printed at most; 0 = all */
} read_args;

/*
 * Parses argv for command `cmd`: `want` positional arguments; `opts` lists
 * the options it takes (O_* bits). Returns -1 to go on, else the exit code.
 */
enum { O_SINCE = 1, O_UNTIL = 2, O_AT = 4, O_VERSION = 8, O_FORMAT = 16, O_CHILDREN = 32, O_LIST = 64 };

static int parse(read_args *a, int argc, char **argv, int want, unsigned opts, const char *usage)
{
	bool rest = false; /* after "--": arguments only */
	for (int i = 1; i < argc; i++) {
		int r;
		const char *arg = argv[i];
		if (!rest && !strcmp(arg, "--")) {
			rest = true;
			continue;
		}
		if (!rest && cli_is_help(arg)) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		if (!rest && ((r = cli_common_arg(&a->c, argc, argv, &i)) ||
		    ((opts & O_SINCE) && (r = cli_opt(a->c.cmd, argc, argv, &i, "--since", &a->since))) ||
		    ((opts & O_UNTIL) && (r = cli_opt(a->c.cmd, argc, argv, &i, "--until", &a->until))) ||
		    ((opts & O_AT) && (r = cli_opt(a->c.cmd, argc, argv, &i, "--at", &a->at))) ||
		    ((opts & O_VERSION) && (r = cli_opt(a->c.cmd, argc, argv, &i, "--version", &a->version))) ||
		    ((opts & O_FORMAT) && (r = cli_opt(a->c.cmd, argc, argv, &i, "--format", &a->format))) ||
		    ((opts & O_LIST) && (r = cli_opt(a->c.cmd, argc, argv, &i, "--limit", &a->limit_arg))))) {
			if (r < 0)
				goto usage;
			continue;
		}
		if (!rest && (opts & O_CHILDREN) && !strcmp(arg, "--include-children")) {
			a->children = true;
		} else if (!rest && (opts & O_LIST) && !strcmp(arg, "--jsonl")) {
			a->jsonl = a->c.json = true;
		} else if (!rest && arg[0] == '-' && arg[1]) {
			fprintf(stderr, "changetrail %s: unknown option '%s'\n", a->c.cmd, cli_esc(arg));
			goto usage;
		} else if (a->npos < want) {
			if (!*arg || strlen(arg) > 1024) {
				fprintf(stderr, "changetrail %s: argument %d must be 1..1024 bytes\n", a->c.cmd, a->npos + 1);
				goto usage;
			}
			a->pos[a->npos++] = arg;
		} else {
			fprintf(stderr, "changetrail %s: too many arguments\n", a->c.cmd);
			goto usage;
		}
	}
	if (a->npos < want) {
		fprintf(stderr, "changetrail %s: missing argument\n", a->c.cmd);
		goto usage;
	}
	if (a->limit_arg) {
		char *end;
		errno = 0;
		long long n = strtoll(a->limit_arg, &end, 10);
		if (errno || end == a->limit_arg || *end || n < 1 || n > CT_HISTORY_MAX_RECORDS) {
			fprintf(stderr, "changetrail %s: --limit must be an integer in 1..%d, not '%s'\n", a->c.cmd,
				CT_HISTORY_MAX_RECORDS, cli_esc(a->limit_arg));
			goto usage;
		}
		a->limit = (size_t)n;
	}
	if (a->format && strcmp(a->format, "dictdiffer") && strcmp(a->format, "jsonpatch")) {
		fprintf(stderr, "changetrail %s: --format must be dictdiffer or jsonpatch, not '%s'\n", a->c.cmd,
			cli_esc(a->format));
		goto usage;
	}
	return -1;
usage:
	fprintf(stderr, "%.*s", (int)(strchr(usage, '\n') - usage + 1), usage);
	return CLI_USAGE;
}

/* true for the ops whose changes are a relation's, not the document's. */
static bool is_relation_op(const json_t *rec)
{
	const char *op = json_string_value(json_object_get(rec, "op"));
	return op && (!strcmp(op, "relation_add") || !strcmp(op, "relation_remove"));
}

/*
 * Prints records (JSON or text); changes converted when jsonpatch. The
 * JSON Patch of a record applies to the document `show` returns for the
 * version before it. A relation is not part of that document (its
 * dictdiffer changes use a virtual "__relations__" member), so a relation
 * record's patch is empty and the link is in its "relation" member.
 */
static int print_records(const read_args *a, const json_t *recs, bool with_key)
{
	bool jp = a->format && !strcmp(a->format, "jsonpatch");
	json_t *copy = json_deep_copy(recs);
	size_t i;
	json_t *r;
	int rc = CLI_OK;
	if (!copy)
		return CLI_FAILURE;
	/* --limit: the first N (the newest: records come newest first) */
	while (a->limit && json_array_size(copy) > a->limit)
		json_array_remove(copy, json_array_size(copy) - 1);
	json_array_foreach(copy, i, r) {
		if (jp && is_relation_op(r) && json_object_set_new(r, "changes", json_array()))
			rc = CLI_FAILURE;
		if (!a->c.json)
			continue;
		json_object_del(r, "kafka");
		if (jp)
			json_object_set_new(r, "changes", cli_changes_in(json_object_get(r, "changes"), true));
	}
	if (rc)
		goto out;
	if (a->jsonl) { /* JSON Lines: one record per line */
		json_array_foreach(copy, i, r)
			if ((rc = cli_print_json(a->c.cmd, r)))
				goto out;
		goto out;
	}
	if (a->c.json) {
		rc = cli_print_json(a->c.cmd, copy);
		goto out;
	}
	json_array_foreach(copy, i, r) {
		cli_print_record(stdout, r, with_key, jp);
		if (jp && is_relation_op(r)) {
			const json_t *rel = json_object_get(r, "relation");
			const char *name = json_string_value(json_object_get(rel, "name")),
				   *coll = json_string_value(json_object_get(rel, "collection")),
				   *id = json_string_value(json_object_get(rel, "document_id"));
			printf("      relation %s %s %s/%s (not a change of the document)\n", cli_esc(name),
			       strcmp(json_string_value(json_object_get(r, "op")), "relation_add") ? "-" : "+",
			       cli_esc(coll), cli_esc(id));
		}
	}
	rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
out:
	json_decref(copy);
	return rc;
}

static const char log_usage[] =
	"usage: changetrail log COLLECTION ID [--since T] [--until T] [--include-children] [--limit N]\n"
	"                       [--format dictdiffer|jsonpatch] [--json | --jsonl] [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"The history records of a document, newest version first: version, time,\n"
	"operation, label, actor, context and the changes. T is RFC 3339\n"
	"(2024-05-01T10:00:00Z) or a duration ago (90s, 15m, 2h, 3d, 1w).\n"
	"--include-children adds the records of documents whose parent is this one\n"
	"(interleaved by time, each document's in version order). With --format\n"
	"jsonpatch, each record's patch applies to `show` of the version before it;\n"
	"a relation record's patch is empty (relations are not in the document).\n"
	"--limit N prints the N newest records; --jsonl prints one JSON record per\n"
	"line (JSON Lines) instead of one JSON array.\n\n" COMMON_HELP;

int cmd_log(int argc, char **argv)
{
	read_args a = {.c = {.cmd = "log"}};
	ct_history *h = NULL;
	json_t *recs = NULL;
	ct_error err;
	int rc = parse(&a, argc, argv, 2, O_SINCE | O_UNTIL | O_FORMAT | O_CHILDREN | O_LIST, log_usage);
	if (rc >= 0)
		return rc;
	ct_history_query q = {.include_children = a.children};
	if ((rc = time_arg("log", "--since", a.since, &q.since_us)) ||
	    (rc = time_arg("log", "--until", a.until, &q.until_us)) || (rc = cli_open(&a.c, &h)))
		goto out;
	if (ct_history_log(h, a.pos[0], a.pos[1], &q, &recs, &err)) {
		rc = cli_fail("log", &err);
		goto out;
	}
	rc = print_records(&a, recs, a.children);
out:
	json_decref(recs);
	ct_history_close(h);
	cli_common_free(&a.c);
	return rc;
}

static const char show_usage[] =
	"usage: changetrail show COLLECTION ID [--at T | --version N] [--json] [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"The document as it was at time T (the last version written at or before it),\n"
	"at version N, or now. A deleted document is shown as it was before the delete\n"
	"and marked deleted. T is RFC 3339 or a duration ago (2h, 3d).\n\n" COMMON_HELP;

/* A version number 1..2^62; 0 when not one. */
static int64_t version_arg(const char *s)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return 0;
	long long v = strtoll(s, &end, 10);
	return (*end || v <= 0 || v > (1LL << 62)) ? 0 : (int64_t)v;
}

int cmd_show(int argc, char **argv)
{
	read_args a = {.c = {.cmd = "show"}};
	ct_history *h = NULL;
	json_t *st = NULL;
	ct_error err;
	int64_t at = CT_HISTORY_NO_TIME, version = 0;
	int rc = parse(&a, argc, argv, 2, O_AT | O_VERSION, show_usage);
	if (rc >= 0)
		return rc;
	if (a.at && a.version) {
		fprintf(stderr, "changetrail show: --at and --version exclude each other\n");
		rc = CLI_USAGE;
		goto out;
	}
	if (a.version && !(version = version_arg(a.version))) {
		fprintf(stderr, "changetrail show: --version must be a positive integer, not '%s'\n", cli_esc(a.version));
		rc = CLI_USAGE;
		goto out;
	}
	if ((rc = time_arg("show", "--at", a.at, &at)) || (rc = cli_open(&a.c, &h)))
		goto out;
	if (ct_history_state(h, a.pos[0], a.pos[1], version, at, &st, &err)) {
		rc = cli_fail("show", &err);
		goto out;
	}
	if (a.c.json) {
		rc = cli_print_json("show", st);
		goto out;
	}
	printf("%s/%s version %lld at %s%s\n", cli_esc(a.pos[0]), cli_esc(a.pos[1]),
	       (long long)json_integer_value(json_object_get(st, "version")),
	       cli_esc(json_string_value(json_object_get(st, "ts"))),
	       json_is_true(json_object_get(st, "deleted")) ? " (deleted; the document as it was before)" : "");
	cli_print_doc(stdout, json_object_get(st, "doc"));
	rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
out:
	json_decref(st);
	ct_history_close(h);
	cli_common_free(&a.c);
	return rc;
}

static const char context_usage[] =
	"usage: changetrail context ID [--json] [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"A changeset: its metadata, actor, whether it is complete (the application\n"
	"closed it) or still open, and every change made in it, across collections,\n"
	"oldest first.\n\n" COMMON_HELP;

int cmd_context(int argc, char **argv)
{
	read_args a = {.c = {.cmd = "context"}};
	ct_history *h = NULL;
	json_t *ctx = NULL;
	ct_error err;
	int rc = parse(&a, argc, argv, 1, 0, context_usage);
	if (rc >= 0)
		return rc;
	if ((rc = cli_open(&a.c, &h)))
		goto out;
	if (ct_history_context(h, a.pos[0], &ctx, &err)) {
		rc = cli_fail("context", &err);
		goto out;
	}
	if (a.c.json) {
		json_t *recs = json_object_get(ctx, "records");
		size_t i;
		json_t *r;
		json_array_foreach(recs, i, r)
			json_object_del(r, "kafka");
		rc = cli_print_json("context", ctx);
		goto out;
	}
	const char *actor = json_string_value(json_object_get(ctx, "actor"));
	printf("context %s  %s  by %s\n", cli_esc(a.pos[0]),
	       json_is_true(json_object_get(ctx, "complete")) ? "complete" : "open", actor ? cli_esc(actor) : "-");
	printf("  from %s to %s\n", cli_esc(json_string_value(json_object_get(ctx, "first_ts"))),
	       cli_esc(json_string_value(json_object_get(ctx, "last_ts"))));
	printf("  metadata ");
	cli_print_json("context", json_object_get(ctx, "metadata"));
	printf("  %zu change(s):\n", json_array_size(json_object_get(ctx, "records")));
	rc = print_records(&a, json_object_get(ctx, "records"), true);
out:
	json_decref(ctx);
	ct_history_close(h);
	cli_common_free(&a.c);
	return rc;
}

static const char actor_usage[] =
	"usage: changetrail actor NAME [--since T] [--limit N] [--json | --jsonl] [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"Every change made by NAME (the actor of the event, e.g. the user of the\n"
	"request), newest first. T is RFC 3339, a date or a duration ago (2h, 3d).\n"
	"--limit N prints the N newest; --jsonl one JSON record per line.\n\n" COMMON_HELP;

int cmd_actor(int argc, char **argv)
{
	read_args a = {.c = {.cmd = "actor"}};
	ct_history *h = NULL;
	json_t *recs = NULL;
	ct_error err;
	int64_t since;
	int rc = parse(&a, argc, argv, 1, O_SINCE | O_LIST, actor_usage);
	if (rc >= 0)
		return rc;
	if ((rc = time_arg("actor", "--since", a.since, &since)) || (rc = cli_open(&a.c, &h)))
		goto out;
	if (ct_history_actor(h, a.pos[0], since, &recs, &err)) {
		rc = cli_fail("actor", &err);
		goto out;
	}
	if (json_array_size(recs) == 0 && !a.c.json)
		printf("no changes by %s\n", cli_esc(a.pos[0]));
	rc = print_records(&a, recs, true);
	if (!rc && json_array_size(recs) == 0)
		rc = CLI_NOT_FOUND;
out:
	json_decref(recs);
	ct_history_close(h);
	cli_common_free(&a.c);
	return rc;
}

static const char blame_usage[] =
	"usage: changetrail blame COLLECTION ID [--json] [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"For every field (leaf) of the current document: the version, time, actor\n"
	"and context of the last change that touched it.\n\n" COMMON_HELP;

int cmd_blame(int argc, char **argv)
{
	read_args a = {.c = {.cmd = "blame"}};
	ct_history *h = NULL;
	json_t *b = NULL;
	ct_error err;
	int rc = parse(&a, argc, argv, 2, 0, blame_usage);
	if (rc >= 0)
		return rc;
	if ((rc = cli_open(&a.c, &h)))
		goto out;
	if (ct_history_blame(h, a.pos[0], a.pos[1], &b, &err)) {
		rc = cli_fail("blame", &err);
		goto out;
	}
	if (a.c.json) {
		rc = cli_print_json("blame", b);
		goto out;
	}
	size_t i;
	json_t *l;
	json_array_foreach(b, i, l) {
		const json_t *v = json_object_get(l, "version");
		const char *actor = json_string_value(json_object_get(l, "actor"));
		const char *path = cli_esc_json(json_object_get(l, "path")), *val = cli_esc_json(json_object_get(l, "value"));
		if (json_is_integer(v))
			printf("v%-4lld %s  %-10s %-30s %s = %s\n", (long long)json_integer_value(v),
			       cli_esc(json_string_value(json_object_get(l, "ts"))), actor ? cli_esc(actor) : "-",
			       cli_esc(json_string_value(json_object_get(l, "op"))), path, val);
		else
			printf("?     %-27s  %-10s %-30s %s = %s\n", "", "-", "", path, val);
	}
	rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
out:
	json_decref(b);
	ct_history_close(h);
	cli_common_free(&a.c);
	return rc;
}
