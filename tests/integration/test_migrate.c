/*
 * test_migrate.c - `changetrail migrate` on the real local MongoDB server: a
 * small database in the v1 stored form (changes, documents and metadata as
 * canonical JSON text, ts as RFC 3339 text, a state journal, context parts)
 * is written by hand with libmongoc, from records the consumer's own record
 * builder made; then the CLI migrates it as a user would:
 *   - the result is stored form v2 (changes documents with array paths, ts
 *     BSON dates, documents as BSON) and `changetrail verify` is clean,
 *     every hash unchanged;
 *   - `{"changes.path.0": "qty"}` finds exactly the records that touched qty;
 *   - the journal's newer state wins, context parts are merged, a prune
 *     checkpoint keeps working (show, verify);
 *   - migrate again changes nothing; a run cut short by --max-records and
 *     run again gives the same database; without its progress document a
 *     rerun finds every record already there and writes nothing;
 *   - progress (records done / total, rate) is on stderr.
 */
#include "testutil.h"

#include "changetrail/canonical.h"
#include "changetrail/history.h"
#include "cts_codec.h"
#include "record.h"
#include "state.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *mongo_uri;
static mongoc_client_t *client;
static char old_db[48], new_db[96], new2_db[96], config[256];
static json_t *old_hashes; /* _id -> hash of every v1 history record */

/* ---- the v1 database, by hand ------------------------------------------------ */

/* Appends `v` as canonical JSON text (v1 stored user JSON as text). */
static void append_text(bson_t *b, const char *key, const json_t *v)
{
	char *text = NULL;
	size_t len;
	assert_int_equal(ct_canonical_dump(v, &text, &len, NULL), 0);
	assert_true(bson_append_utf8(b, key, -1, text, (int)len));
	free(text);
}

/* A history record (JSON form) in the v1 stored form. */
static void v1_history(const json_t *rec, bson_t *out)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)rec, k, v) {
		if (!strcmp(k, "changes") || (!strcmp(k, "doc") && !json_is_null(v)))
			append_text(out, k, v);
		else
			assert_int_equal(cts_bson_append_json(out, k, v, NULL), 0);
	}
}

/* A state in the v1 stored form (what ctc_state_append_bson() wrote before v2). */
static void v1_state(const ctc_doc_state *st, bson_t *out)
{
	bson_t lo, ids;
	BSON_APPEND_UTF8(out, "_id", st->key);
	BSON_APPEND_UTF8(out, "collection", st->collection);
	BSON_APPEND_UTF8(out, "document_id", st->document_id);
	BSON_APPEND_INT64(out, "version", st->version);
	BSON_APPEND_BOOL(out, "deleted", st->deleted);
	BSON_APPEND_UTF8(out, "hash", st->hash);
	if (st->doc)
		append_text(out, "doc", st->doc);
	else
		BSON_APPEND_NULL(out, "doc");
	BSON_APPEND_DOCUMENT_BEGIN(out, "last_offset", &lo);
	BSON_APPEND_UTF8(&lo, "topic", st->last_topic);
	BSON_APPEND_INT64(&lo, "partition", st->last_partition);
	BSON_APPEND_INT64(&lo, "offset", st->last_offset);
	bson_append_document_end(out, &lo);
	BSON_APPEND_ARRAY_BEGIN(out, "recent_event_ids", &ids);
	for (unsigned i = 0; i < st->nrecent; i++) {
		char buf[16];
		const char *k;
		bson_uint32_to_string(i, &k, buf, sizeof(buf));
		BSON_APPEND_UTF8(&ids, k, st->recent_ids[(st->recent_head + i) % CTC_RECENT_IDS]);
	}
	bson_append_array_end(out, &ids);
	BSON_APPEND_UTF8(out, "ts", st->last_ts);
}

static void insert(const char *coll, const bson_t *doc)
{
	bson_error_t e;
	mongoc_collection_t *c = mongoc_client_get_collection(client, old_db, coll);
	if (!mongoc_collection_insert_one(c, doc, NULL, NULL, &e))
		fail_msg("insert into %s: %s", coll, e.message);
	mongoc_collection_destroy(c);
}

static int offset_seq;

/* Applies one event to `st` with the consumer's record builder; returns the record (JSON form). */
static json_t *apply(ctc_doc_state *st, const char *op, const char *ts, const char *after, const char *actor,
		     const char *ctx, const char *rel_name)
{
	char eid[40];
	snprintf(eid, sizeof(eid), "0190c6a4-0000-7000-8000-%012x", ++offset_seq);
	json_t *a = after ? json_loads(after, 0, NULL) : NULL, *rel = NULL, *rec = NULL;
	if (rel_name)
		rel = json_pack("{s:s, s:s, s:s}", "name", rel_name, "collection", "tags", "document_id", "red");
	ctc_event_in ev = {.event_id = eid, .ts = ts, .source = "v1", .collection = st->collection,
			   .document_id = st->document_id, .op = op, .actor = actor, .context_id = ctx,
			   .after = a, .relation = rel, .seq = -1, .topic = "t", .partition = 0,
			   .offset = offset_seq};
	ctc_record_result res;
	ct_error err;
	if (ctc_record_apply(st, &ev, &rec, &res, &err))
		fail_msg("record: %s", err.message);
	assert_int_equal(res, CTC_RECORD_PERSISTED);
	json_decref(a);
	json_decref(rel);
	json_object_set_new(old_hashes, json_string_value(json_object_get(rec, "_id")),
			    json_incref(json_object_get(rec, "hash")));
	return rec;
}

/* Stores `rec` (and drops it) as a v1 history record. */
static void store_record(json_t *rec)
{
	bson_t b = BSON_INITIALIZER;
	v1_history(rec, &b);
	insert("history", &b);
	bson_destroy(&b);
	json_decref(rec);
}

static void store_state(const ctc_doc_state *st)
{
	bson_t b = BSON_INITIALIZER;
	v1_state(st, &b);
	insert("state", &b);
	bson_destroy(&b);
}

static void build_v1(void)
{
	static const char c1[] = "0190c6a4-0000-7000-8000-0000000c0001";
	/* products/p1: keys with '.' and '$', int and real, a relation, delete, re-create */
	ctc_doc_state *p1 = ctc_state_new("products", "p1", NULL);
	store_record(apply(p1, "insert", "2024-05-01T10:00:01.000001Z",
			   "{\"qty\":10,\"price\":8.0,\"a.b\":{\"$x\":1},\"tags\":[\"a\"]}", "alice", c1, NULL));
	store_record(apply(p1, "update", "2024-05-01T10:00:02.000002Z",
			   "{\"qty\":4,\"price\":8.0,\"a.b\":{\"$x\":1},\"tags\":[\"a\",\"b\"]}", "bob", c1, NULL));
	store_record(apply(p1, "relation_add", "2024-05-01T10:00:03.000003Z", NULL, "bob", NULL, "tags"));
	store_record(apply(p1, "delete", "2024-05-01T10:00:04.000004Z", NULL, "carol", NULL, NULL));
	store_record(apply(p1, "insert", "2024-05-01T10:00:05.000005Z", "{\"qty\":1}", "carol", NULL, NULL));
	store_state(p1);
	ctc_state_free(p1);

	/* products/p2: pruned by v1: version 2 replaced by a checkpoint (doc as text), version 1 gone */
	ctc_doc_state *p2 = ctc_state_new("products", "p2", NULL);
	json_t *r1 = apply(p2, "insert", "2024-05-01T10:00:01.000000Z", "{\"n\":1}", "alice", NULL, NULL);
	json_t *r2 = apply(p2, "update", "2024-05-01T10:00:02.000000Z", "{\"n\":2}", "alice", NULL, NULL);
	store_record(apply(p2, "update", "2024-05-01T10:00:03.000000Z", "{\"n\":3}", "alice", NULL, NULL));
	json_t *ck = json_pack("{s:O, s:s, s:s, s:i, s:s, s:n, s:O, s:n, s:n, s:n, s:n, s:n, s:n, s:[], s:{s:i},"
			       " s:b, s:O, s:O, s:s, s:i}",
			       "_id", json_object_get(r2, "_id"), "collection", "products", "document_id", "p2",
			       "version", 2, "op", "checkpoint", "label", "ts", json_object_get(r2, "ts"), "actor",
			       "context_id", "source", "seq", "parent", "relation", "changes", "doc", "n", 2,
			       "deleted", 0, "prev_hash", json_object_get(r2, "prev_hash"), "hash",
			       json_object_get(r2, "hash"), "pruned_before", "2024-05-01T10:00:02.500000Z",
			       "pruned_from_version", 1);
	assert_non_null(ck);
	json_object_del(old_hashes, json_string_value(json_object_get(r1, "_id")));
	store_record(ck);
	json_decref(r1);
	json_decref(r2);
	store_state(p2);
	ctc_state_free(p2);

	/* products/p3: `state` is behind at v1; the v1 state journal holds v2 (a swap cut short) */
	ctc_doc_state *p3 = ctc_state_new("products", "p3", NULL);
	store_record(apply(p3, "insert", "2024-05-01T10:00:01.000000Z", "{\"qty\":3}", "dave", NULL, NULL));
	store_state(p3);
	store_record(apply(p3, "update", "2024-05-01T10:00:02.000000Z", "{\"qty\":2}", "dave", NULL, NULL));
	bson_t st = BSON_INITIALIZER, packed = BSON_INITIALIZER, j = BSON_INITIALIZER;
	v1_state(p3, &st);
	BSON_APPEND_DOCUMENT(&packed, "0", &st);
	BSON_APPEND_UTF8(&j, "_id", "0190c6a4-0000-7000-8000-00000000f001");
	BSON_APPEND_BINARY(&j, "states", BSON_SUBTYPE_BINARY, bson_get_data(&packed), packed.len);
	insert("state_journal", &j);
	bson_destroy(&st);
	bson_destroy(&packed);
	bson_destroy(&j);
	ctc_state_free(p3);

	/* context c1: its document and one part (its events spanned two state writes) */
	bson_t c = BSON_INITIALIZER, part = BSON_INITIALIZER, colls;
	json_t *seen = json_pack("{s:s}", "req", "r0"), *final = json_pack("{s:s, s:s}", "req", "r1", "a.b", "$v");
	BSON_APPEND_UTF8(&c, "_id", c1);
	BSON_APPEND_UTF8(&c, "actor", "alice");
	append_text(&c, "metadata_seen", seen);
	BSON_APPEND_BOOL(&c, "complete", false);
	BSON_APPEND_UTF8(&c, "first_ts", "2024-05-01T10:00:01.000001Z");
	BSON_APPEND_UTF8(&c, "last_ts", "2024-05-01T10:00:01.000001Z");
	BSON_APPEND_INT64(&c, "event_count", 1);
	BSON_APPEND_ARRAY_BEGIN(&c, "collections", &colls);
	BSON_APPEND_UTF8(&colls, "0", "products");
	bson_append_array_end(&c, &colls);
	insert("contexts", &c);
	BSON_APPEND_UTF8(&part, "_id", "0190c6a4-0000-7000-8000-0000000c0001~0123456789abcdef");
	BSON_APPEND_UTF8(&part, "context_id", c1);
	BSON_APPEND_UTF8(&part, "actor", "bob");
	append_text(&part, "metadata_seen", seen);
	BSON_APPEND_BOOL(&part, "complete", true);
	append_text(&part, "metadata", final);
	BSON_APPEND_UTF8(&part, "first_ts", "2024-05-01T10:00:02.000002Z");
	BSON_APPEND_UTF8(&part, "last_ts", "2024-05-01T10:00:02.000002Z");
	BSON_APPEND_INT64(&part, "event_count", 1);
	BSON_APPEND_ARRAY_BEGIN(&part, "collections", &colls);
	BSON_APPEND_UTF8(&colls, "0", "products");
	bson_append_array_end(&part, &colls);
	insert("context_parts", &part);
	bson_destroy(&c);
	bson_destroy(&part);
	json_decref(seen);
	json_decref(final);
}

/* ---- running the CLI ------------------------------------------------------------ */

/* Runs `changetrail ARGS --config <ours>`: exit status, stdout in *out, stderr in *errout (may be NULL). */
static int cli(char **out, char **errout, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cli(char **out, char **errout, const char *fmt, ...)
{
	char args[2048], cmd[4096], outfile[256], errfile[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	const char *dir = getenv("CT_BINARY_DIR");
	ct_test_unique_name(outfile, sizeof(outfile), "/tmp/ct-migrate-out");
	ct_test_unique_name(errfile, sizeof(errfile), "/tmp/ct-migrate-err");
	snprintf(cmd, sizeof(cmd), "%s/cli/changetrail %s --config %s >%s 2>%s", dir ? dir : ".", args, config,
		 outfile, errfile);
	int st = system(cmd);
	char *text = ct_test_read_file(outfile, NULL), *etext = ct_test_read_file(errfile, NULL);
	remove(outfile);
	remove(errfile);
	if (out)
		*out = text;
	else
		free(text);
	if (errout)
		*errout = etext;
	else
		free(etext);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *migrate(const char *into, const char *extra, char **errout)
{
	char *out = NULL;
	int rc = cli(&out, errout, "migrate --from-db %s --into %s %s --json", old_db, into, extra);
	if (rc != 0)
		fail_msg("migrate: exit %d: %s", rc, out ? out : "");
	json_t *j = json_loads(out ? out : "", 0, NULL);
	if (!j)
		fail_msg("migrate: not JSON: %s", out ? out : "");
	free(out);
	return j;
}

static int64_t num(const json_t *res, const char *phase, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(json_object_get(res, phase), key));
}

/* Every document of history, state and contexts of `db`, _id order, as canonical extended JSON. */
static char *snapshot(const char *db)
{
	static const char *const colls[] = {"history", "state", "contexts"};
	size_t cap = 1 << 16, len = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	s[0] = '\0';
	for (size_t i = 0; i < 3; i++) {
		mongoc_collection_t *c = mongoc_client_get_collection(client, db, colls[i]);
		bson_t f = BSON_INITIALIZER;
		bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
		mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &f, opts, NULL);
		const bson_t *d;
		while (mongoc_cursor_next(cur, &d)) {
			size_t l;
			char *t = bson_as_canonical_extended_json(d, &l);
			while (len + l + 2 > cap)
				assert_non_null(s = realloc(s, cap *= 2));
			memcpy(s + len, t, l);
			len += l;
			s[len++] = '\n';
			s[len] = '\0';
			bson_free(t);
		}
		mongoc_cursor_destroy(cur);
		bson_destroy(opts);
		bson_destroy(&f);
		mongoc_collection_destroy(c);
	}
	return s;
}

static void drop(const char *name)
{
	mongoc_database_t *d = mongoc_client_get_database(client, name);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
}

static int setup(void **state)
{
	(void)state;
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ct_history_global_init();
	client = mongoc_client_new(mongo_uri);
	ct_test_unique_name(old_db, sizeof(old_db), "ctmig");
	for (char *p = old_db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(new_db, sizeof(new_db), "%s_v2", old_db);
	snprintf(new2_db, sizeof(new2_db), "%s_v2b", old_db);
	snprintf(config, sizeof(config), "/tmp/%s.ini", old_db);
	FILE *f = fopen(config, "w");
	if (!f)
		return -1;
	fprintf(f, "[mongodb]\nuri = %s\ndatabase = %s\n", mongo_uri, new_db);
	fclose(f);
	old_hashes = json_object();
	build_v1();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	drop(old_db);
	drop(new_db);
	drop(new2_db);
	unlink(config);
	json_decref(old_hashes);
	mongoc_client_destroy(client);
	ct_history_global_cleanup();
	return 0;
}

/* ---- the tests ------------------------------------------------------------------- */

static void test_migrate_to_native_verify_clean(void **state)
{
	(void)state;
	char *err = NULL;
	json_t *res = migrate(new_db, "--verify --batch 2", &err);
	assert_true(json_is_true(json_object_get(res, "complete")));
	assert_int_equal(num(res, "history", "read"), 9); /* p1: 5, p2: checkpoint + v3, p3: 2 */
	assert_int_equal(num(res, "history", "written"), 9);
	assert_int_equal(num(res, "history", "hash_mismatches"), 0);
	assert_int_equal(num(res, "state", "read"), 3);
	assert_int_equal(num(res, "state_journal", "read"), 1);
	assert_int_equal(num(res, "state_journal", "written"), 1);
	assert_int_equal(num(res, "contexts", "parts_merged"), 1);
	assert_int_equal(json_array_size(json_object_get(json_object_get(res, "verify"), "problems")), 0);
	json_decref(res);
	/* progress on stderr: done / total and a rate */
	assert_non_null(strstr(err, "history 9/9 (100%)"));
	assert_non_null(strstr(err, "/s"));
	free(err);
	assert_int_equal(cli(NULL, NULL, "verify --db %s", new_db), 0);

	/* every hash is the v1 one */
	mongoc_collection_t *h = mongoc_client_get_collection(client, new_db, "history");
	bson_t all = BSON_INITIALIZER;
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h, &all, NULL, NULL);
	const bson_t *d;
	size_t n = 0;
	while (mongoc_cursor_next(cur, &d)) {
		bson_iter_t id, hash, ts, tsus, ch;
		assert_true(bson_iter_init_find(&id, d, "_id") && bson_iter_init_find(&hash, d, "hash"));
		const char *want = json_string_value(json_object_get(old_hashes, bson_iter_utf8(&id, NULL)));
		assert_non_null(want);
		assert_string_equal(bson_iter_utf8(&hash, NULL), want);
		/* native: ts a date with its µs, changes an array of documents */
		assert_true(bson_iter_init_find(&ts, d, "ts") && BSON_ITER_HOLDS_DATE_TIME(&ts));
		assert_true(bson_iter_init_find(&tsus, d, "ts_us") && BSON_ITER_HOLDS_INT64(&tsus));
		assert_int_equal(bson_iter_date_time(&ts), bson_iter_int64(&tsus) / 1000);
		assert_true(bson_iter_init_find(&ch, d, "changes") && BSON_ITER_HOLDS_ARRAY(&ch));
		n++;
	}
	mongoc_cursor_destroy(cur);
	assert_int_equal(n, 9);

	/* the records that touched qty of p1, by a plain MongoDB query */
	bson_t *q = BCON_NEW("collection", BCON_UTF8("products"), "document_id", BCON_UTF8("p1"), "changes.path.0",
			     BCON_UTF8("qty"));
	bson_t *opts = BCON_NEW("sort", "{", "version", BCON_INT32(1), "}");
	cur = mongoc_collection_find_with_opts(h, q, opts, NULL);
	int64_t got[8];
	n = 0;
	while (mongoc_cursor_next(cur, &d) && n < 8) {
		bson_iter_t v;
		assert_true(bson_iter_init_find(&v, d, "version"));
		got[n++] = bson_iter_as_int64(&v);
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(q);
	bson_destroy(opts);
	assert_int_equal(n, 4);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 2);
	assert_int_equal(got[2], 4);
	assert_int_equal(got[3], 5);
	mongoc_collection_destroy(h);

	/* states: documents as BSON; p3 from the journal; query on doc fields */
	mongoc_collection_t *s = mongoc_client_get_collection(client, new_db, "state");
	q = BCON_NEW("doc.qty", "{", "$lt", BCON_INT64(3), "}");
	cur = mongoc_collection_find_with_opts(s, q, NULL, NULL);
	n = 0;
	while (mongoc_cursor_next(cur, &d)) {
		bson_iter_t id, v;
		assert_true(bson_iter_init_find(&id, d, "_id"));
		assert_true(!strcmp(bson_iter_utf8(&id, NULL), "products/p1") ||
			    !strcmp(bson_iter_utf8(&id, NULL), "products/p3"));
		if (!strcmp(bson_iter_utf8(&id, NULL), "products/p3")) {
			assert_true(bson_iter_init_find(&v, d, "version"));
			assert_int_equal(bson_iter_as_int64(&v), 2);
		}
		n++;
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(q);
	assert_int_equal(n, 2);
	mongoc_collection_destroy(s);

	/* the context: document and part merged, metadata a document, times dates */
	mongoc_collection_t *c = mongoc_client_get_collection(client, new_db, "contexts");
	q = BCON_NEW("metadata.req", BCON_UTF8("r1"));
	cur = mongoc_collection_find_with_opts(c, q, NULL, NULL);
	assert_true(mongoc_cursor_next(cur, &d));
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, d, "event_count"));
	assert_int_equal(bson_iter_as_int64(&it), 2);
	assert_true(bson_iter_init_find(&it, d, "complete") && bson_iter_as_bool(&it));
	assert_true(bson_iter_init_find(&it, d, "first_ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(bson_iter_init_find(&it, d, "last_ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(bson_iter_init_find(&it, d, "actor"));
	assert_string_equal(bson_iter_utf8(&it, NULL), "bob");
	assert_false(mongoc_cursor_next(cur, &d));
	mongoc_cursor_destroy(cur);
	bson_destroy(q);
	mongoc_collection_destroy(c);

	/* the readers on the new database */
	char *out = NULL;
	assert_int_equal(cli(&out, NULL, "show products p1 --version 2 --db %s --json", new_db), 0);
	json_t *shown = json_loads(out, 0, NULL);
	free(out);
	json_t *want = json_loads("{\"qty\":4,\"price\":8.0,\"a.b\":{\"$x\":1},\"tags\":[\"a\",\"b\"]}", 0, NULL);
	assert_true(json_equal(json_object_get(shown, "doc"), want));
	assert_true(json_is_real(json_object_get(json_object_get(shown, "doc"), "price")));
	json_decref(shown);
	json_decref(want);
	assert_int_equal(cli(&out, NULL, "show products p2 --version 2 --db %s --json", new_db), 0);
	shown = json_loads(out, 0, NULL);
	free(out);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(shown, "doc"), "n")), 2);
	json_decref(shown);
}

static void test_migrate_again_changes_nothing(void **state)
{
	(void)state;
	char *before = snapshot(new_db);
	json_t *res = migrate(new_db, "--quiet", NULL);
	assert_true(json_is_true(json_object_get(res, "resumed")));
	assert_int_equal(num(res, "history", "written"), 0);
	assert_int_equal(num(res, "state", "written"), 0);
	assert_int_equal(num(res, "contexts", "written"), 0);
	json_decref(res);
	char *after = snapshot(new_db);
	assert_string_equal(before, after);
	free(after);

	/* without its progress document: every record is found there, nothing is written */
	mongoc_collection_t *p = mongoc_client_get_collection(client, new_db, "changetrail_migrate");
	assert_true(mongoc_collection_drop(p, NULL));
	mongoc_collection_destroy(p);
	res = migrate(new_db, "--quiet", NULL);
	assert_int_equal(num(res, "history", "written"), 0);
	assert_int_equal(num(res, "history", "present"), 9);
	assert_int_equal(num(res, "state", "written"), 0);
	json_decref(res);
	after = snapshot(new_db);
	assert_string_equal(before, after);
	free(after);
	free(before);
}

static void test_migrate_resumes(void **state)
{
	(void)state;
	json_t *res = migrate(new2_db, "--batch 2 --max-records 3 --quiet", NULL);
	assert_false(json_is_true(json_object_get(res, "complete")));
	assert_int_equal(num(res, "history", "read"), 3);
	json_decref(res);
	res = migrate(new2_db, "--batch 2 --max-records 4 --quiet", NULL);
	assert_false(json_is_true(json_object_get(res, "complete")));
	assert_true(json_is_true(json_object_get(res, "resumed")));
	assert_int_equal(num(res, "history", "read"), 4);
	json_decref(res);
	res = migrate(new2_db, "--verify --quiet", NULL);
	assert_true(json_is_true(json_object_get(res, "complete")));
	assert_int_equal(num(res, "history", "read"), 2);
	assert_int_equal(json_array_size(json_object_get(json_object_get(res, "verify"), "problems")), 0);
	json_decref(res);
	char *a = snapshot(new_db), *b = snapshot(new2_db);
	assert_string_equal(a, b);
	free(a);
	free(b);
	/* the same database twice is refused */
	assert_int_equal(cli(NULL, NULL, "migrate --from-db %s --into %s", old_db, old_db), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_to_native_verify_clean),
		cmocka_unit_test(test_migrate_again_changes_nothing),
		cmocka_unit_test(test_migrate_resumes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
