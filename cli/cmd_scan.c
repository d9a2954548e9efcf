/*
 * cmd_scan.c - `changetrail scan`: backfill. Emits a snapshot event for
 * every document of a source (a MongoDB collection or a JSON Lines file),
 * which initialises history for unknown documents and records what changed
 * out of band for known ones; with --delete-only, emits a delete event for
 * every live document of `state` that the source no longer has.
 */
#include "cli.h"

#include "bson_json.h"
#include "changetrail/canonical.h"
#include "changetrail/producer.h"
#include "ct_textsafe.h"

#include <errno.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Longest line of a JSON Lines input. */
#define SCAN_MAX_LINE (16u * 1024 * 1024)

static const char usage[] =
	"usage: changetrail scan (--from-collection URI/DB/COLL | --from-file FILE.jsonl) --collection C\n"
	"                        [--id-field _id] [--delete-only] [--actor NAME] [--quiet] [--json] [--config FILE]\n"
	"\n"
	"Emits a snapshot event for every document of the source to the configured\n"
	"topic ([kafka], [consumer] topic), in one context {\"command\":\"changetrail scan\"}:\n"
	"unknown documents get their first version, changed ones a version with what\n"
	"changed, unchanged ones nothing. --id-field names the member holding the\n"
	"document id (default _id; an ObjectId gives its hex). With --delete-only,\n"
	"emits instead a delete event for every document that `state` knows as live\n"
	"in collection C and the source no longer holds (uses [mongodb]).\n"
	"Progress (documents read, percent, rate) on stderr unless --quiet: every\n"
	"second on a terminal, every 10 s otherwise, and a last line at the end.\n"
	"exit status: 0 ok, 2 bad usage or bad input, 3 failure\n";

typedef struct scan {
	cli_common c;
	const char *collection, *id_field, *actor;
	bool delete_only;
	ct_producer *p;
	json_t *seen; /* ids of the source (delete-only) */
	long emitted, bad;
	/* progress on stderr, as replay shows it: documents read, of `total` when known
	 * (a file's bytes, a collection's estimated count) */
	long read;
	int64_t done, total, t0_us, shown_us;
	bool tty, quiet;
} scan;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A progress line: every second on a terminal (rewritten in place), every 10 s otherwise, and at the end. */
static void show_progress(scan *s, bool final)
{
	int64_t now = mono_us();
	if (s->quiet || (!final && now - s->shown_us < (s->tty ? 1000000 : 10000000)))
		return;
	s->shown_us = now;
	double secs = (double)(now - s->t0_us) / 1e6, rate = secs > 0 ? (double)s->read / secs : 0;
	char pct[32] = "";
	if (s->total > 0)
		snprintf(pct, sizeof(pct), " (%.0f%%)", 100.0 * (double)(s->done < s->total ? s->done : s->total) /
							 (double)s->total);
	fprintf(stderr, "%sscan: %ld documents read%s, %ld events emitted, %ld bad, %.0f documents/s%s",
		s->tty ? "\r" : "", s->read, final ? "" : pct, s->emitted, s->bad, rate,
		s->tty && !final ? "   " : "\n");
}

/* The document id as text: strings as they are, integers in decimal, {"$oid": x} as x. */
static char *doc_id(const json_t *v)
{
	char buf[32], *t = NULL;
	if (json_is_string(v))
		return json_string_length(v) ? strdup(json_string_value(v)) : NULL;
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		return strdup(buf);
	}
	if (json_is_object(v) && json_is_string(json_object_get(v, "$oid")))
		return strdup(json_string_value(json_object_get(v, "$oid")));
	if (v && ct_canonical_dump(v, &t, NULL, NULL) == 0)
		return t;
	return NULL;
}

static int one_doc(scan *s, const json_t *doc, const char *where)
{
	ct_error err;
	char *id = json_is_object(doc) ? doc_id(json_object_get(doc, s->id_field)) : NULL;
	int rc = 0;
	if (!id || strlen(id) > 1024) {
		fprintf(stderr, "changetrail scan: %s: no usable '%s' (a non-empty id up to 1024 bytes)\n", cli_esc(where),
			cli_esc(s->id_field));
		s->bad++;
		goto out;
	}
	if (s->delete_only) {
		if (json_object_set_new(s->seen, id, json_true()))
			rc = CLI_FAILURE;
		goto out;
	}
	ct_change ch = {0};
	ch.op = CT_OP_SNAPSHOT;
	ch.collection = s->collection;
	ch.document_id = id;
	ch.after = doc;
	ch.actor = s->actor;
	if (ct_emit(s->p, &ch, NULL, &err)) {
		fprintf(stderr, "changetrail scan: %s: %s\n", cli_esc(where), cli_esc(err.message));
		rc = err.code == CT_EINVAL || err.code == CT_ELIMIT || err.code == CT_EPARSE ? (s->bad++, 0) : CLI_FAILURE;
		goto out;
	}
	s->emitted++;
out:
	free(id);
	return rc;
}

static int from_file(scan *s, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL, where[600];
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int rc = 0;
	if (!f) {
		fprintf(stderr, "changetrail scan: %s: %s\n", cli_esc(path), strerror(errno));
		return CLI_USAGE;
	}
	struct stat st;
	if (f != stdin && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode))
		s->total = st.st_size;
	while (!rc && (n = getline(&line, &cap, f)) >= 0) {
		json_error_t jerr;
		lineno++;
		snprintf(where, sizeof(where), "%.500s:%ld", path, lineno);
		if ((size_t)n > SCAN_MAX_LINE) {
			fprintf(stderr, "changetrail scan: %s: line longer than %u bytes\n", cli_esc(where), SCAN_MAX_LINE);
			s->bad++;
			continue;
		}
		s->done += n;
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		json_t *doc = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
		if (!doc) {
			fprintf(stderr, "changetrail scan: %s: invalid JSON: %s\n", cli_esc(where), cli_esc(jerr.text));
			s->bad++;
			continue;
		}
		s->read++;
		rc = one_doc(s, doc, where);
		json_decref(doc);
		show_progress(s, false);
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

/* JSON of a source document; types without a JSON form here through relaxed extended JSON. */
static json_t *bson_doc_json(const bson_t *b)
{
	json_t *j = NULL;
	if (ctc_bson_to_json(b, &j, NULL) == 0)
		return j;
	size_t len;
	char *text = bson_as_relaxed_extended_json(b, &len);
	if (text)
		j = json_loadb(text, len, 0, NULL);
	bson_free(text);
	return j;
}

static int from_collection(scan *s, const char *spec)
{
	char *copy = strdup(spec), *coll, *db;
	mongoc_client_t *client = NULL;
	mongoc_collection_t *c = NULL;
	mongoc_cursor_t *cur = NULL;
	bson_t filter = BSON_INITIALIZER;
	bson_error_t e;
	const bson_t *b;
	int rc = CLI_USAGE;
	long n = 0;
	if (!copy || !(coll = strrchr(copy, '/')) || coll == copy) {
		fprintf(stderr, "changetrail scan: --from-collection must be URI/DB/COLL\n");
		goto out;
	}
	*coll++ = '\0';
	if (!(db = strrchr(copy, '/')) || !*coll || !db[1]) {
		fprintf(stderr, "changetrail scan: --from-collection must be URI/DB/COLL\n");
		goto out;
	}
	*db++ = '\0';
	ct_error uerr;
	if (ct_uri_check_userinfo(copy, "the source URI", &uerr)) {
		fprintf(stderr, "changetrail scan: %s\n", cli_esc(uerr.message));
		goto out;
	}
	if (!(client = mongoc_client_new(copy))) {
		fprintf(stderr, "changetrail scan: the source URI is not valid\n");
		goto out;
	}
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	c = mongoc_client_get_collection(client, db, coll);
	int64_t estimate = mongoc_collection_estimated_document_count(c, NULL, NULL, NULL, NULL);
	s->total = estimate > 0 ? estimate : 0;
	cur = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);
	rc = 0;
	while (!rc && mongoc_cursor_next(cur, &b)) {
		char where[128];
		snprintf(where, sizeof(where), "source document %ld", ++n);
		json_t *doc = bson_doc_json(b);
		if (!doc) {
			fprintf(stderr, "changetrail scan: %s: cannot convert to JSON\n", cli_esc(where));
			s->bad++;
			continue;
		}
		s->read++;
		s->done++;
		rc = one_doc(s, doc, where);
		json_decref(doc);
		show_progress(s, false);
	}
	if (!rc && mongoc_cursor_error(cur, &e)) {
		char safe[sizeof(e.message)];
		fprintf(stderr, "changetrail scan: reading the source: %s\n",
			cli_esc(ct_redact_text(e.message, safe, sizeof(safe))));
		rc = CLI_FAILURE;
	}
out:
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(c);
	mongoc_client_destroy(client);
	bson_destroy(&filter);
	free(copy);
	return rc;
}

/* Delete events for the live documents of `state` that the source does not hold. */
static int deletions(scan *s)
{
	ct_history *h = NULL;
	json_t *states = NULL;
	ct_error err;
	int rc;
	if ((rc = cli_open(&s->c, &h)))
		return rc;
	if (ct_history_collection_states(h, s->collection, true, &states, &err)) {
		rc = cli_fail("scan", &err);
		goto out;
	}
	size_t i;
	json_t *st;
	json_array_foreach(states, i, st) {
		const char *id = json_string_value(json_object_get(st, "document_id"));
		if (!id || json_object_get(s->seen, id) || json_is_true(json_object_get(st, "deleted")))
			continue;
		ct_change ch = {0};
		ch.op = CT_OP_DELETE;
		ch.collection = s->collection;
		ch.document_id = id;
		ch.before = json_is_object(json_object_get(st, "doc")) ? json_object_get(st, "doc") : NULL;
		ch.actor = s->actor;
		if (ct_emit(s->p, &ch, NULL, &err)) {
			rc = cli_fail("scan", &err);
			goto out;
		}
		s->emitted++;
	}
out:
	json_decref(states);
	ct_history_close(h);
	return rc;
}

int cmd_scan(int argc, char **argv)
{
	scan s = {.c = {.cmd = "scan"}, .id_field = "_id", .actor = getenv("USER")};
	const char *file = NULL, *coll_spec = NULL;
	ct_error err;
	int rc = CLI_USAGE;
	bool entered = false;

	for (int i = 1; i < argc; i++) {
		int r;
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		if ((r = cli_common_arg(&s.c, argc, argv, &i)) ||
		    (r = cli_opt("scan", argc, argv, &i, "--from-file", &file)) ||
		    (r = cli_opt("scan", argc, argv, &i, "--from-collection", &coll_spec)) ||
		    (r = cli_opt("scan", argc, argv, &i, "--collection", &s.collection)) ||
		    (r = cli_opt("scan", argc, argv, &i, "--id-field", &s.id_field)) ||
		    (r = cli_opt("scan", argc, argv, &i, "--actor", &s.actor))) {
			if (r < 0)
				goto usage;
			continue;
		}
		if (!strcmp(argv[i], "--delete-only")) {
			s.delete_only = true;
			continue;
		}
		if (!strcmp(argv[i], "--quiet")) {
			s.quiet = true;
			continue;
		}
		fprintf(stderr, "changetrail scan: unexpected argument '%s'\n", cli_esc(argv[i]));
		goto usage;
	}
	if (!file == !coll_spec) {
		fprintf(stderr, "changetrail scan: give one of --from-collection or --from-file\n");
		goto usage;
	}
	if (!s.collection || !*s.collection || strchr(s.collection, '/') || !*s.id_field) {
		fprintf(stderr, "changetrail scan: --collection C (no '/') is required\n");
		goto usage;
	}
	if (s.actor && !*s.actor)
		s.actor = NULL;
	if ((rc = cli_load_config(&s.c)))
		goto out;
	if (!(s.seen = json_object())) {
		rc = CLI_FAILURE;
		goto out;
	}
	if (cli_producer(&s.c, &s.p, &err) ||
	    ct_context_enter(s.p, s.delete_only ? "{\"command\":\"changetrail scan --delete-only\"}"
						 : "{\"command\":\"changetrail scan\"}", &err)) {
		rc = cli_fail("scan", &err);
		goto out;
	}
	entered = true;
	s.tty = isatty(STDERR_FILENO);
	s.t0_us = s.shown_us = mono_us();
	rc = file ? from_file(&s, file) : from_collection(&s, coll_spec);
	if (!rc && s.delete_only)
		rc = deletions(&s);
	show_progress(&s, true);
	if (ct_context_exit(s.p, &err) || ct_producer_flush(s.p, 60000, &err)) {
		entered = false;
		rc = rc ? rc : cli_fail("scan", &err);
		goto out;
	}
	entered = false;
	if (s.c.json) {
		json_t *o = json_pack("{s:s, s:i, s:i}", "op", s.delete_only ? "delete" : "snapshot", "emitted",
				      (int)s.emitted, "bad", (int)s.bad);
		cli_print_json("scan", o);
		json_decref(o);
	} else {
		printf("%ld %s event(s) emitted to %s; %ld bad input(s)\n", s.emitted,
		       s.delete_only ? "delete" : "snapshot", cli_esc(s.c.cfg.topic), s.bad);
	}
	if (!rc && s.bad)
		rc = CLI_USAGE;
	goto out;
usage:
	fprintf(stderr, "%.*s", (int)(strchr(usage, '\n') - usage + 1), usage);
	rc = CLI_USAGE;
out:
	if (entered)
		ct_context_exit(s.p, NULL);
	ct_producer_destroy(s.p, 10000);
	json_decref(s.seen);
	cli_common_free(&s.c);
	return rc;
}
