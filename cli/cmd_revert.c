/*
 * cmd_revert.c - `changetrail revert COLLECTION ID [--to T]`: the state to
 * restore and the patch from the current state; with --emit, an update
 * event labelled "revert" through the producer, so the revert itself is
 * history like any other change. `revert DOC.json DIFF.json` (two files)
 * is still the file-based revert of cmd_diff.c.
 */
#include "cli.h"

#include "changetrail/diff.h"
#include "changetrail/producer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char usage[] =
	"usage: changetrail revert COLLECTION ID [--to T | --version N] [--emit [--actor NAME]]\n"
	"                          [--format dictdiffer|jsonpatch] [--json] [--config FILE] [--uri URI] [--db NAME]\n"
	"       changetrail revert DOC.json DIFF.json   (same as revert-diff)\n"
	"\n"
	"Prints the state of the document at time T (RFC 3339 or a duration ago) or\n"
	"version N - the first state when neither is given - and the patch that turns\n"
	"the current state into it. With --emit, sends that state as an update event\n"
	"labelled \"revert\" to the configured topic (settings from [kafka] and\n"
	"[consumer] topic), by --actor (default $USER), in a context with metadata\n"
	"{\"command\":\"changetrail revert\"}.\n"
	"  --config FILE   consumer configuration (default " CLI_DEFAULT_CONFIG " if present)\n"
	"  --uri URI, --db NAME, --json as in `changetrail log`\n"
	"exit status: 0 ok, 1 not found, 2 bad usage, 3 failure\n";

static bool is_file_arg(const char *s)
{
	struct stat st;
	return !strcmp(s, "-") || (stat(s, &st) == 0 && S_ISREG(st.st_mode));
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Emits `target` as the revert of `cur`; prints the event id. */
static int emit(cli_common *c, const char *coll, const char *id, const json_t *cur, bool cur_deleted,
		const json_t *target, const json_t *parent, const char *actor, char event_id[37], ct_error *err)
{
	ct_producer *p = NULL;
	int rc;
	bool entered = false;
	if ((rc = cli_producer(c, &p, err)))
		goto out;
	if ((rc = ct_context_enter(p, "{\"command\":\"changetrail revert\"}", err)))
		goto out;
	entered = true;
	ct_change ch = {0};
	ch.op = cur_deleted ? CT_OP_INSERT : CT_OP_UPDATE;
	ch.collection = coll;
	ch.document_id = id;
	ch.after = target;
	ch.before = cur_deleted ? NULL : cur;
	ch.label = "revert";
	ch.actor = actor;
	ch.parent_collection = json_string_value(json_object_get(parent, "collection"));
	ch.parent_document_id = json_string_value(json_object_get(parent, "document_id"));
	rc = ct_emit(p, &ch, event_id, err);
out:
	if (entered) {
		ct_error e2;
		int rc2 = ct_context_exit(p, &e2);
		if (!rc && rc2) {
			*err = e2;
			rc = rc2;
		}
	}
	if (!rc)
		rc = ct_producer_flush(p, 30000, err);
	ct_producer_destroy(p, 10000);
	return rc;
}

int cmd_revert(int argc, char **argv)
{
	cli_common c = {.cmd = "revert"};
	const char *pos[2] = {NULL, NULL}, *to = NULL, *version = NULL, *actor = getenv("USER"),
		   *format = "dictdiffer";
	int npos = 0, rc = CLI_USAGE;
	bool do_emit = false;
	ct_history *h = NULL;
	json_t *cur = NULL, *target = NULL, *patch = NULL, *shown = NULL, *out = NULL, *log = NULL;
	const json_t *parent = NULL; /* borrowed from log */
	ct_error err;
	int64_t at = CT_HISTORY_NO_TIME, v = 0;

	if (argc == 3 && is_file_arg(argv[1]) && is_file_arg(argv[2]))
		return cmd_revert_diff(argc, argv);
	bool rest = false; /* after "--": arguments only */
	for (int i = 1; i < argc; i++) {
		int r;
		if (!rest && !strcmp(argv[i], "--")) {
			rest = true;
			continue;
		}
		if (rest) {
			if (npos >= 2) {
				fprintf(stderr, "changetrail revert: too many arguments\n");
				goto usage;
			}
			pos[npos++] = argv[i];
			continue;
		}
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		if ((r = cli_common_arg(&c, argc, argv, &i)) || (r = cli_opt("revert", argc, argv, &i, "--to", &to)) ||
		    (r = cli_opt("revert", argc, argv, &i, "--version", &version)) ||
		    (r = cli_opt("revert", argc, argv, &i, "--actor", &actor)) ||
		    (r = cli_opt("revert", argc, argv, &i, "--format", &format))) {
			if (r < 0)
				goto usage;
			continue;
		}
		if (!strcmp(argv[i], "--emit"))
			do_emit = true;
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "changetrail revert: unknown option '%s'\n", cli_esc(argv[i]));
			goto usage;
		} else if (npos < 2)
			pos[npos++] = argv[i];
		else {
			fprintf(stderr, "changetrail revert: too many arguments\n");
			goto usage;
		}
	}
	if (npos != 2) {
		fprintf(stderr, "changetrail revert: COLLECTION and ID are needed\n");
		goto usage;
	}
	if (to && version) {
		fprintf(stderr, "changetrail revert: --to and --version exclude each other\n");
		goto usage;
	}
	if (strcmp(format, "dictdiffer") && strcmp(format, "jsonpatch")) {
		fprintf(stderr, "changetrail revert: --format must be dictdiffer or jsonpatch\n");
		goto usage;
	}
	if (version) {
		char *end;
		long long n = strtoll(version, &end, 10);
		if (*end || n <= 0 || *version == '+') {
			fprintf(stderr, "changetrail revert: --version must be a positive integer\n");
			goto usage;
		}
		v = n;
	}
	if (to && ct_history_parse_time(to, now_us(), &at, &err)) {
		fprintf(stderr, "changetrail revert: --to: %s\n", cli_esc(err.message));
		goto usage;
	}
	if (do_emit && (!actor || !*actor || strlen(actor) > 255)) {
		fprintf(stderr, "changetrail revert: --emit needs --actor NAME (or $USER), 1..255 bytes\n");
		goto usage;
	}
	if ((rc = cli_open(&c, &h)))
		goto out;
	if ((rc = ct_history_log(h, pos[0], pos[1], NULL, &log, &err) ? cli_fail("revert", &err) : 0))
		goto out;
	int64_t parent_v = 0;
	for (size_t i = 0; i < json_array_size(log); i++) {
		const json_t *r = json_array_get(log, i), *p = json_object_get(r, "parent");
		int64_t x = json_integer_value(json_object_get(r, "version"));
		/* the first state: the oldest version still in the history */
		if (!to && !version && (!v || x < v))
			v = x;
		/* a child's revert rolls up into the parent its last change named */
		if (json_is_object(p) && x > parent_v) {
			parent_v = x;
			parent = p;
		}
	}
	if (ct_history_state(h, pos[0], pos[1], 0, CT_HISTORY_NO_TIME, &cur, &err) ||
	    ct_history_state(h, pos[0], pos[1], v, at, &target, &err)) {
		rc = cli_fail("revert", &err);
		goto out;
	}
	bool cur_deleted = json_is_true(json_object_get(cur, "deleted"));
	json_t *empty = json_object();
	const json_t *tdoc = json_object_get(target, "doc");
	if (ct_diff(cur_deleted ? empty : json_object_get(cur, "doc"), tdoc, &patch, &err)) {
		json_decref(empty);
		rc = cli_fail("revert", &err);
		goto out;
	}
	json_decref(empty);
	shown = cli_changes_in(patch, !strcmp(format, "jsonpatch"));
	out = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O, s:n}", "collection", pos[0], "document_id", pos[1],
			"current_version", json_object_get(cur, "version"), "to_version",
			json_object_get(target, "version"), "state", tdoc, "patch", shown ? shown : json_null(),
			"event_id");
	if (!out) {
		rc = CLI_FAILURE;
		goto out;
	}
	if (json_is_true(json_object_get(target, "deleted")))
		fprintf(stderr, "changetrail revert: note: version %lld is a deleted state; restoring re-creates it\n",
			(long long)json_integer_value(json_object_get(target, "version")));
	if (do_emit && json_array_size(patch) == 0 && !cur_deleted) {
		fprintf(stderr, "changetrail revert: the current state is already the target; nothing emitted\n");
	} else if (do_emit) {
		char eid[37] = "";
		if (emit(&c, pos[0], pos[1], json_object_get(cur, "doc"), cur_deleted, tdoc, parent, actor, eid, &err)) {
			rc = cli_fail("revert", &err);
			goto out;
		}
		json_object_set_new(out, "event_id", json_string(eid));
	}
	if (c.json) {
		rc = cli_print_json("revert", out);
		goto out;
	}
	printf("%s/%s: revert from version %lld to version %lld\nstate to restore:\n", cli_esc(pos[0]), cli_esc(pos[1]),
	       (long long)json_integer_value(json_object_get(cur, "version")),
	       (long long)json_integer_value(json_object_get(target, "version")));
	cli_print_doc(stdout, tdoc);
	printf("patch from the current state (%zu change(s)):\n", json_array_size(patch));
	if (!strcmp(format, "jsonpatch"))
		cli_print_json("revert", shown);
	else
		cli_print_changes(stdout, patch, "  ");
	if (json_string_value(json_object_get(out, "event_id")))
		printf("emitted revert event %s by %s\n", cli_esc(json_string_value(json_object_get(out, "event_id"))),
		       cli_esc(actor));
	rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
	goto out;
usage:
	fprintf(stderr, "%.*s", (int)(strchr(usage, '\n') - usage + 1), usage);
	rc = CLI_USAGE;
out:
	json_decref(cur);
	json_decref(target);
	json_decref(patch);
	json_decref(shown);
	json_decref(out);
	json_decref(log);
	ct_history_close(h);
	cli_common_free(&c);
	return rc;
}
