/*
 * ct_export.c - the reliability suite's canonical export of a changetrail
 * database (scripts/reliability.sh, docs/reliability.md).
 *
 *   ct_export --uri URI --db DB --out FILE [--exclude-collection C | --only-collection C]
 *             [--expect-docs FILE]
 *
 * Writes one line per history record, "H " + canonical JSON of the record
 * (docs/storage.md) without `kafka` (the provenance, which differs between
 * runs of the same stream and is not hashed), sorted by (collection,
 * document_id, version); then one line per state, "S " + canonical JSON
 * without `last_offset`, sorted by _id. Two runs of the same event stream
 * must give byte-identical files: same records, same hashes, same states.
 * --expect-docs (JSON lines {collection, document_id, doc, version?} from
 * ct_loadgen) checks that each of those documents was persisted exactly:
 * state `doc` canonically equal to `doc` at `version` (1 when absent),
 * version 1 an insert.
 * Prints one JSON line of figures; exit 1 when an expected document is
 * wrong or missing, 3 on a server error.
 */
#include "cts_codec.h"
#include "store.h"

#include "changetrail/canonical.h"

#include <getopt.h>
#include <jansson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct line {
	char *coll, *id;
	int64_t version;
	char *text;
} line;

typedef struct lines {
	line *v;
	size_t n, cap;
} lines;

static int push(lines *l, const char *coll, const char *id, int64_t version, char *text)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		line *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].coll = strdup(coll);
	l->v[l->n].id = strdup(id);
	l->v[l->n].version = version;
	l->v[l->n].text = text;
	l->n++;
	return 0;
}

static int cmp_line(const void *a, const void *b)
{
	const line *x = a, *y = b;
	int c = strcmp(x->coll, y->coll);
	if (c)
		return c;
	if ((c = strcmp(x->id, y->id)))
		return c;
	return x->version < y->version ? -1 : x->version > y->version;
}

static void free_lines(lines *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].coll);
		free(l->v[i].id);
		free(l->v[i].text);
	}
	free(l->v);
}

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* Reads every document of db.coll into `out` as canonical text (minus `drop`). */
static int read_all(mongoc_client_t *client, const char *db, const char *coll, bool history, const char *drop,
		    const char *only, const char *exclude, lines *out)
{
	mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
	bson_t filter = BSON_INITIALIZER;
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);
	const bson_t *doc;
	bson_error_t be;
	ct_error err;
	int rc = 0;
	while (mongoc_cursor_next(cur, &doc)) {
		json_t *j = NULL;
		char *text = NULL;
		/* the JSON form of the storage codec: v1 and v2 databases export alike */
		if ((history ? cts_history_from_bson(doc, &j, &err) : cts_state_from_bson(doc, &j, &err))) {
			fprintf(stderr, "ct_export: %s: %s\n", coll, err.message);
			rc = 3;
			break;
		}
		json_object_del(j, drop);
		const char *cn = str_of(j, "collection");
		if ((only && strcmp(cn, only)) || (exclude && !strcmp(cn, exclude))) {
			json_decref(j);
			continue;
		}
		if (ct_canonical_dump(j, &text, NULL, &err) ||
		    push(out, cn, history ? str_of(j, "document_id") : str_of(j, "_id"),
			 history ? json_integer_value(json_object_get(j, "version")) : 0, text)) {
			fprintf(stderr, "ct_export: %s: cannot dump a record\n", coll);
			free(text);
			json_decref(j);
			rc = 3;
			break;
		}
		json_decref(j);
	}
	if (!rc && mongoc_cursor_error(cur, &be)) {
		fprintf(stderr, "ct_export: reading %s.%s: %s\n", db, coll, be.message);
		rc = 3;
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(&filter);
	mongoc_collection_destroy(c);
	return rc;
}

/* Each expected document: its state doc equals the canonical text of `doc`. */
static int check_expected(const char *path, const lines *states, const lines *hist, long *ok, long *bad)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	if (!f) {
		perror("ct_export: --expect-docs");
		return 3;
	}
	while (getline(&buf, &cap, f) > 0) {
		json_t *e = json_loads(buf, JSON_REJECT_DUPLICATES, NULL);
		char *want = NULL, key[512];
		bool good = false;
		/* its version: 1 (one insert) unless the line names another */
		json_int_t want_version = e && json_is_integer(json_object_get(e, "version"))
						  ? json_integer_value(json_object_get(e, "version"))
						  : 1;
		if (e && !ct_canonical_dump(json_object_get(e, "doc"), &want, NULL, NULL)) {
			snprintf(key, sizeof(key), "%s/%s", str_of(e, "collection"), str_of(e, "document_id"));
			for (size_t i = 0; i < states->n && !good; i++) {
				if (strcmp(states->v[i].id, key))
					continue;
				json_t *st = json_loads(states->v[i].text, JSON_DECODE_ANY, NULL);
				char *have = NULL;
				/* the stored document (a document since stored form v2), canonically */
				good = st && !ct_canonical_dump(json_object_get(st, "doc"), &have, NULL, NULL) &&
				       !strcmp(have, want) && json_integer_value(json_object_get(st, "version")) == want_version;
				free(have);
				json_decref(st);
			}
			bool has_insert = false;
			for (size_t i = 0; i < hist->n && !has_insert; i++)
				has_insert = hist->v[i].version == 1 && !strcmp(hist->v[i].coll, str_of(e, "collection")) &&
					     !strcmp(hist->v[i].id, str_of(e, "document_id")) &&
					     strstr(hist->v[i].text, "\"op\":\"insert\"");
			good = good && has_insert;
		}
		if (good)
			(*ok)++;
		else {
			(*bad)++;
			fprintf(stderr, "ct_export: expected document not persisted exactly: %s", buf);
		}
		free(want);
		json_decref(e);
	}
	free(buf);
	fclose(f);
	return *bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *uri = NULL, *db = NULL, *outp = NULL, *only = NULL, *exclude = NULL, *expect = NULL;
	static const struct option lo[] = {{"uri", required_argument, NULL, 'u'},
					   {"db", required_argument, NULL, 'd'},
					   {"out", required_argument, NULL, 'o'},
					   {"only-collection", required_argument, NULL, 'O'},
					   {"exclude-collection", required_argument, NULL, 'X'},
					   {"expect-docs", required_argument, NULL, 'e'},
					   {NULL, 0, NULL, 0}};
	int ch, rc = 3;
	lines hist = {0}, states = {0};
	mongoc_client_t *client = NULL;
	FILE *out = NULL;
	long ok = 0, bad = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'u': uri = optarg; break;
		case 'd': db = optarg; break;
		case 'o': outp = optarg; break;
		case 'O': only = optarg; break;
		case 'X': exclude = optarg; break;
		case 'e': expect = optarg; break;
		default: goto usage;
		}
	}
	if (!uri || !db || !outp)
		goto usage;
	ctc_store_global_init();
	if (!(client = mongoc_client_new(uri))) {
		fprintf(stderr, "ct_export: bad URI\n");
		goto out;
	}
	if ((rc = read_all(client, db, "history", true, "kafka", only, exclude, &hist)) ||
	    (rc = read_all(client, db, "state", false, "last_offset", only, exclude, &states)))
		goto out;
	qsort(hist.v, hist.n, sizeof(*hist.v), cmp_line);
	qsort(states.v, states.n, sizeof(*states.v), cmp_line);
	if (!(out = fopen(outp, "w"))) {
		perror("ct_export: --out");
		rc = 3;
		goto out;
	}
	for (size_t i = 0; i < hist.n; i++)
		fprintf(out, "H %s\n", hist.v[i].text);
	for (size_t i = 0; i < states.n; i++)
		fprintf(out, "S %s\n", states.v[i].text);
	if (fclose(out)) {
		out = NULL;
		perror("ct_export: --out");
		rc = 3;
		goto out;
	}
	out = NULL;
	if (expect)
		rc = check_expected(expect, &states, &hist, &ok, &bad);
	printf("{\"records\":%zu,\"states\":%zu,\"expected_docs_ok\":%ld,\"expected_docs_bad\":%ld}\n", hist.n,
	       states.n, ok, bad);
out:
	if (out)
		fclose(out);
	free_lines(&hist);
	free_lines(&states);
	if (client)
		mongoc_client_destroy(client);
	ctc_store_global_cleanup();
	return rc;
usage:
	fprintf(stderr, "usage: ct_export --uri URI --db DB --out FILE [--only-collection C | "
			"--exclude-collection C] [--expect-docs FILE]\n");
	return 2;
}
