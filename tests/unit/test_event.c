/*
 * test_event.c - the event contract in C: every rule and bound of
 * ct_event_parse / ct_event_from_json with the message it gives, the
 * accessors, UUIDv7 generation and RFC 3339 timestamps.
 */
#include "testutil.h"
#include "changetrail/event.h"

#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EID "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
#define CTX "3f2b8c1e-5d4a-4b6f-8e7d-1c2b3a4f5e6d"
#define TS "2026-11-22T20:56:52.123456Z"
#define BASE "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"" EID "\",\"ts\":\"" TS "\"," \
	"\"source\":\"shop\",\"collection\":\"orders\",\"document_id\":\"42\",\"op\":\"update\"," \
	"\"after\":{\"a\":1}}"

/* Parses s; asserts the code and, when want_msg is set, that the message
 * contains it. Returns the event on success (caller frees). */
static ct_event *parse_expect(const char *s, size_t len, const ct_limits *l, int want_rc, const char *want_msg)
{
	ct_event *ev = (ct_event *)1;
	ct_error err;
	ct_error_clear(&err);
	int rc = ct_event_parse(s, len, l, &ev, &err);
	if (rc != want_rc)
		fail_msg("rc %d (%s), want %d; input %.80s", rc, err.message, want_rc, s);
	if (rc != CT_OK) {
		assert_null(ev);
		assert_int_equal(err.code, rc);
		assert_null(strchr(err.message, '\n'));
		if (want_msg && !strstr(err.message, want_msg))
			fail_msg("message <%s> lacks <%s>", err.message, want_msg);
	} else {
		assert_non_null(ev);
	}
	return ev;
}

static void parse_str(const char *s, int want_rc, const char *want_msg)
{
	ct_event_free(parse_expect(s, strlen(s), NULL, want_rc, want_msg));
}

static void test_op_names(void **state)
{
	for (int i = CT_OP_INSERT; i <= CT_OP_CONTEXT_END; i++) {
		ct_op op;
		const char *n = ct_op_name((ct_op)i);
		assert_non_null(n);
		assert_int_equal(ct_op_from_name(n, &op), CT_OK);
		assert_int_equal(op, i);
	}
	assert_string_equal(ct_op_name(CT_OP_RELATION_REMOVE), "relation_remove");
	assert_null(ct_op_name((ct_op)99));
	ct_op op;
	assert_int_equal(ct_op_from_name("Insert", &op), CT_EINVAL);
	assert_int_equal(ct_op_from_name("", &op), CT_EINVAL);
	assert_int_equal(ct_op_from_name(NULL, &op), CT_EINVAL);
}

static void test_limits_default(void **state)
{
	ct_limits l;
	ct_limits_default(&l);
	assert_int_equal(l.max_bytes, 1048576);
	assert_int_equal(l.max_depth, 64);
	assert_int_equal(l.max_keys, 100000);
	assert_int_equal(l.max_string_bytes, 262144);
	assert_int_equal(l.max_array_items, 100000);
	ct_limits_default(NULL);
}

static void test_accessors(void **state)
{
	const char *s = "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"" EID "\","
		"\"ts\":\"1970-01-01T00:00:01.000002Z\",\"source\":\"shop\",\"collection\":\"orders\","
		"\"document_id\":\"a/b\",\"op\":\"relation_add\",\"label\":\"tagging\",\"actor\":\"ada\","
		"\"context\":{\"id\":\"" CTX "\",\"parent_id\":\"" EID "\",\"metadata\":{\"k\":\"v\"}},"
		"\"after\":{\"x\":1},\"before\":{\"x\":0},\"parent\":{\"collection\":\"p\",\"document_id\":\"9\"},"
		"\"relation\":{\"name\":\"tags\",\"collection\":\"tags\",\"document_id\":\"t1\"},\"seq\":7}";
	ct_event *ev = parse_expect(s, strlen(s), NULL, CT_OK, NULL);
	assert_string_equal(ct_event_id(ev), EID);
	assert_string_equal(ct_event_ts(ev), "1970-01-01T00:00:01.000002Z");
	assert_int_equal(ct_event_ts_us(ev), 1000002);
	assert_string_equal(ct_event_source(ev), "shop");
	assert_string_equal(ct_event_collection(ev), "orders");
	assert_string_equal(ct_event_document_id(ev), "a/b");
	assert_int_equal(ct_event_op(ev), CT_OP_RELATION_ADD);
	assert_string_equal(ct_event_label(ev), "tagging");
	assert_string_equal(ct_event_actor(ev), "ada");
	assert_string_equal(ct_event_context_id(ev), CTX);
	assert_string_equal(ct_event_context_parent_id(ev), EID);
	assert_string_equal(json_string_value(json_object_get(ct_event_context_metadata(ev), "k")), "v");
	assert_int_equal(json_integer_value(json_object_get(ct_event_after(ev), "x")), 1);
	assert_int_equal(json_integer_value(json_object_get(ct_event_before(ev), "x")), 0);
	assert_string_equal(ct_event_parent_collection(ev), "p");
	assert_string_equal(ct_event_parent_document_id(ev), "9");
	assert_string_equal(json_string_value(json_object_get(ct_event_relation(ev), "document_id")), "t1");
	assert_int_equal(ct_event_seq(ev), 7);
	assert_ptr_equal(json_object_get(ct_event_json(ev), "after"), ct_event_after(ev));
	ct_event_free(ev);

	/* Absent optional fields. */
	ev = parse_expect(BASE, strlen(BASE), NULL, CT_OK, NULL);
	assert_int_equal(ct_event_op(ev), CT_OP_UPDATE);
	assert_null(ct_event_label(ev));
	assert_null(ct_event_actor(ev));
	assert_null(ct_event_context_id(ev));
	assert_null(ct_event_context_parent_id(ev));
	assert_null(ct_event_context_metadata(ev));
	assert_null(ct_event_before(ev));
	assert_null(ct_event_parent_collection(ev));
	assert_null(ct_event_parent_document_id(ev));
	assert_null(ct_event_relation(ev));
	assert_int_equal(ct_event_seq(ev), -1);
	int64_t us;
	assert_int_equal(ct_time_parse_rfc3339(TS, &us), CT_OK);
	assert_int_equal(ct_event_ts_us(ev), us);
	ct_event_free(ev);

	/* NULL event. */
	assert_null(ct_event_id(NULL));
	assert_null(ct_event_ts(NULL));
	assert_true(ct_event_ts_us(NULL) == INT64_MIN);
	assert_null(ct_event_after(NULL));
	assert_null(ct_event_json(NULL));
	assert_int_equal(ct_event_seq(NULL), -1);
	ct_event_free(NULL);
}

static void test_bad_arguments(void **state)
{
	ct_event *ev;
	ct_error err;
	assert_int_equal(ct_event_parse(BASE, strlen(BASE), NULL, NULL, &err), CT_EINVAL);
	assert_int_equal(ct_event_parse(NULL, 5, NULL, &ev, &err), CT_EINVAL);
	assert_null(ev);
	assert_int_equal(ct_event_parse(NULL, 0, NULL, &ev, &err), CT_EPARSE);
	assert_int_equal(ct_event_from_json(NULL, NULL, &ev, &err), CT_EINVAL);
	assert_int_equal(ct_event_parse(BASE, strlen(BASE), NULL, &ev, NULL), CT_OK); /* err optional */
	ct_event_free(ev);
	assert_int_equal(ct_event_parse("{", 1, NULL, &ev, NULL), CT_EPARSE);
}

/* One mutation of BASE and what it must give, through both entry points. */
typedef struct rule_case {
	const char *del;     /* member to remove */
	const char *key;     /* member to set ... */
	const char *value;   /* ... to this JSON text */
	const char *key2;    /* a second member to set */
	const char *value2;
	int rc;
	const char *msg;
} rule_case;

static const rule_case rule_cases[] = {
	{NULL, NULL, NULL, NULL, NULL, CT_OK, NULL},
	{"schema", NULL, NULL, NULL, NULL, CT_ESCHEMA, "field 'schema': required"},
	{NULL, "schema", "\"changetrail.event.v2\"", NULL, NULL, CT_ESCHEMA, "field 'schema': must be \"changetrail.event.v1\""},
	{NULL, "schema", "1", NULL, NULL, CT_ESCHEMA, "field 'schema': must be"},
	{"event_id", NULL, NULL, NULL, NULL, CT_ESCHEMA, "field 'event_id': required"},
	{NULL, "event_id", "\"" CTX "\"", NULL, NULL, CT_ESCHEMA, "field 'event_id': not a UUIDv7"},
	{NULL, "event_id", "\"0193A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B\"", NULL, NULL, CT_ESCHEMA, "field 'event_id': not a UUIDv7"},
	{NULL, "event_id", "\"0193a1b2-c3d4-7e5f-ca6b-7c8d9e0f1a2b\"", NULL, NULL, CT_ESCHEMA, "field 'event_id': not a UUIDv7"},
	{NULL, "event_id", "\"" EID "0\"", NULL, NULL, CT_ESCHEMA, "field 'event_id': not a UUIDv7"},
	{NULL, "event_id", "[]", NULL, NULL, CT_ESCHEMA, "field 'event_id': must be a string"},
	{"ts", NULL, NULL, NULL, NULL, CT_ESCHEMA, "field 'ts': required"},
	{NULL, "ts", "\"2026-11-22T20:56:52Z\"", NULL, NULL, CT_ESCHEMA, "field 'ts': not a canonical RFC 3339"},
	{NULL, "ts", "\"2026-11-22T21:56:52.123456+01:00\"", NULL, NULL, CT_ESCHEMA, "field 'ts': not a canonical"},
	{NULL, "ts", "\"2026-02-29T00:00:00.000000Z\"", NULL, NULL, CT_ESCHEMA, "field 'ts': not a canonical"},
	{NULL, "ts", "\"2026-11-22T20:56:60.000000Z\"", NULL, NULL, CT_ESCHEMA, "field 'ts': not a canonical"},
	{NULL, "ts", "\"2026-11-22t20:56:52.123456Z\"", NULL, NULL, CT_ESCHEMA, "field 'ts': not a canonical"},
	{NULL, "ts", "0", NULL, NULL, CT_ESCHEMA, "field 'ts': not a canonical"},
	{"source", NULL, NULL, NULL, NULL, CT_ESCHEMA, "field 'source': required"},
	{NULL, "source", "\"\"", NULL, NULL, CT_ESCHEMA, "field 'source': must be 1 to 255 bytes long (is 0)"},
	{NULL, "source", "null", NULL, NULL, CT_ESCHEMA, "field 'source': must be a string"},
	{"collection", NULL, NULL, NULL, NULL, CT_ESCHEMA, "field 'collection': required"},
	{NULL, "collection", "\"a/b\"", NULL, NULL, CT_ESCHEMA, "field 'collection': must not contain '/'"},
	{NULL, "collection", "true", NULL, NULL, CT_ESCHEMA, "field 'collection': must be a string"},
	{"document_id", NULL, NULL, NULL, NULL, CT_ESCHEMA, "field 'document_id': required"},
	{NULL, "document_id", "\"\"", NULL, NULL, CT_ESCHEMA, "field 'document_id': must be 1 to 1024 bytes"},
	{NULL, "document_id", "42", NULL, NULL, CT_ESCHEMA, "field 'document_id': must be a string"},
	{NULL, "document_id", "\"x/y/z\"", NULL, NULL, CT_OK, NULL},
	{"op", NULL, NULL, NULL, NULL, CT_ESCHEMA, "field 'op': required"},
	{NULL, "op", "\"upsert\"", NULL, NULL, CT_ESCHEMA,
	 "field 'op': must be one of insert, update, delete, snapshot, event, relation_add, relation_remove, context_begin, context_end"},
	{NULL, "op", "\"UPDATE\"", NULL, NULL, CT_ESCHEMA, "field 'op': must be one of"},
	{NULL, "op", "3", NULL, NULL, CT_ESCHEMA, "field 'op': must be one of"},
	{NULL, "extra", "1", NULL, NULL, CT_ESCHEMA, "field 'extra': not allowed"},
	{NULL, "Op", "\"update\"", NULL, NULL, CT_ESCHEMA, "field 'Op': not allowed"},
	{NULL, "label", "\"\"", NULL, NULL, CT_ESCHEMA, "field 'label': must be 1 to 255 bytes"},
	{NULL, "label", "null", NULL, NULL, CT_ESCHEMA, "field 'label': must be a string"},
	{NULL, "actor", "7", NULL, NULL, CT_ESCHEMA, "field 'actor': must be a string"},
	{NULL, "actor", "\"service:billing\"", NULL, NULL, CT_OK, NULL},
	/* conditional rules */
	{"after", NULL, NULL, NULL, NULL, CT_ESCHEMA, "field 'after': required when op is 'update'"},
	{NULL, "op", "\"insert\"", "after", "null", CT_ESCHEMA, "field 'after': must be an object"},
	{"after", "op", "\"insert\"", NULL, NULL, CT_ESCHEMA, "field 'after': required when op is 'insert'"},
	{"after", "op", "\"snapshot\"", NULL, NULL, CT_ESCHEMA, "field 'after': required when op is 'snapshot'"},
	{NULL, "op", "\"delete\"", NULL, NULL, CT_ESCHEMA, "field 'after': not allowed when op is 'delete'"},
	{"after", "op", "\"delete\"", "before", "{\"a\":1}", CT_OK, NULL},
	{NULL, "op", "\"event\"", NULL, NULL, CT_ESCHEMA, "field 'label': required when op is 'event'"},
	{"after", "op", "\"event\"", "label", "\"login\"", CT_OK, NULL},
	{NULL, "op", "\"relation_add\"", NULL, NULL, CT_ESCHEMA, "field 'relation': required when op is 'relation_add'"},
	{NULL, "op", "\"relation_remove\"", NULL, NULL, CT_ESCHEMA, "field 'relation': required when op is 'relation_remove'"},
	{NULL, "op", "\"relation_remove\"", "relation", "{\"name\":\"n\",\"collection\":\"c\",\"document_id\":\"d\"}", CT_OK, NULL},
	{NULL, "op", "\"context_begin\"", NULL, NULL, CT_ESCHEMA, "field 'context': required when op is 'context_begin'"},
	{NULL, "op", "\"context_end\"", NULL, NULL, CT_ESCHEMA, "field 'context': required when op is 'context_end'"},
	{NULL, "op", "\"context_end\"", "context", "{\"id\":\"" CTX "\"}", CT_OK, NULL},
	/* nested objects */
	{NULL, "after", "[]", NULL, NULL, CT_ESCHEMA, "field 'after': must be an object"},
	{NULL, "before", "\"{}\"", NULL, NULL, CT_ESCHEMA, "field 'before': must be an object"},
	{NULL, "context", "{}", NULL, NULL, CT_ESCHEMA, "field 'context.id': required"},
	{NULL, "context", "\"" CTX "\"", NULL, NULL, CT_ESCHEMA, "field 'context': must be an object"},
	{NULL, "context", "{\"id\":\"00000000-0000-0000-0000-000000000000\"}", NULL, NULL, CT_ESCHEMA, "field 'context.id': not a UUID"},
	{NULL, "context", "{\"id\":\"" CTX "\",\"parent_id\":1}", NULL, NULL, CT_ESCHEMA, "field 'context.parent_id': must be a string"},
	{NULL, "context", "{\"id\":\"" CTX "\",\"metadata\":[]}", NULL, NULL, CT_ESCHEMA, "field 'context.metadata': must be an object"},
	{NULL, "context", "{\"id\":\"" CTX "\",\"user\":\"x\"}", NULL, NULL, CT_ESCHEMA, "field 'context.user': not allowed"},
	{NULL, "parent", "{\"collection\":\"c\"}", NULL, NULL, CT_ESCHEMA, "field 'parent.document_id': required"},
	{NULL, "parent", "{\"document_id\":\"1\"}", NULL, NULL, CT_ESCHEMA, "field 'parent.collection': required"},
	{NULL, "parent", "{\"collection\":\"a/b\",\"document_id\":\"1\"}", NULL, NULL, CT_ESCHEMA, "field 'parent.collection': must not contain '/'"},
	{NULL, "parent", "{\"collection\":\"c\",\"document_id\":\"1\",\"x\":0}", NULL, NULL, CT_ESCHEMA, "field 'parent.x': not allowed"},
	{NULL, "relation", "{\"collection\":\"c\",\"document_id\":\"1\"}", NULL, NULL, CT_ESCHEMA, "field 'relation.name': required"},
	{NULL, "relation", "{\"name\":\"n\",\"collection\":\"c/\",\"document_id\":\"1\"}", NULL, NULL, CT_ESCHEMA, "field 'relation.collection': must not contain '/'"},
	{NULL, "relation", "{\"name\":\"n\",\"collection\":\"c\",\"document_id\":\"\"}", NULL, NULL, CT_ESCHEMA, "field 'relation.document_id': must be 1 to 1024"},
	{NULL, "relation", "{\"name\":\"n\",\"collection\":\"c\",\"document_id\":\"1\",\"pos\":1}", NULL, NULL, CT_ESCHEMA, "field 'relation.pos': not allowed"},
	/* seq */
	{NULL, "seq", "0", NULL, NULL, CT_OK, NULL},
	{NULL, "seq", "9007199254740991", NULL, NULL, CT_OK, NULL},
	{NULL, "seq", "4.0", NULL, NULL, CT_OK, NULL},
	{NULL, "seq", "9007199254740992", NULL, NULL, CT_ESCHEMA, "field 'seq': must be an integer from 0 to 9007199254740991"},
	{NULL, "seq", "-1", NULL, NULL, CT_ESCHEMA, "field 'seq': must be an integer"},
	{NULL, "seq", "0.5", NULL, NULL, CT_ESCHEMA, "field 'seq': must be an integer"},
	{NULL, "seq", "1e300", NULL, NULL, CT_ESCHEMA, "field 'seq': must be an integer"},
	{NULL, "seq", "\"1\"", NULL, NULL, CT_ESCHEMA, "field 'seq': must be an integer"},
	/* documents may hold any keys */
	{NULL, "after", "{\"\":1,\".\":2,\"$x\":3,\"~\":4,\"a.b\":{\"$date\":5},\"\\u00e9\":[]}", NULL, NULL, CT_OK, NULL},
};

static void test_rules(void **state)
{
	for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		const rule_case *c = &rule_cases[i];
		json_t *root = json_loads(BASE, 0, NULL);
		assert_non_null(root);
		if (c->del)
			json_object_del(root, c->del);
		const char *keys[2] = {c->key, c->key2}, *vals[2] = {c->value, c->value2};
		for (int k = 0; k < 2; k++) {
			if (!keys[k])
				continue;
			json_t *v = json_loads(vals[k], JSON_DECODE_ANY, NULL);
			if (!v)
				fail_msg("case %zu: bad test value %s", i, vals[k]);
			json_object_set_new(root, keys[k], v);
		}
		char *text = json_dumps(root, JSON_COMPACT);
		ct_event *ev;
		ct_error e1, e2;
		ct_error_clear(&e1);
		ct_error_clear(&e2);
		int rc1 = ct_event_parse(text, strlen(text), NULL, &ev, &e1);
		ct_event_free(ev);
		size_t refs = root->refcount;
		int rc2 = ct_event_from_json(root, NULL, &ev, &e2);
		if (rc1 != c->rc || (c->msg && !strstr(e1.message, c->msg)))
			fail_msg("case %zu (%s): rc %d <%s>, want %d <%s>", i, text, rc1, e1.message, c->rc,
				 c->msg ? c->msg : "");
		/* Both entry points apply the same rules with the same words. */
		assert_int_equal(rc2, rc1);
		assert_string_equal(e2.message, e1.message);
		assert_int_equal(root->refcount, refs + (rc2 == CT_OK));
		ct_event_free(ev);
		assert_int_equal(root->refcount, refs);
		free(text);
		json_decref(root);
	}
}

static void test_examples(void **state)
{
	static const char *const dirs[] = {"schemas/examples/valid", "schemas/examples/invalid"};
	int counts[2] = {0, 0};
	for (int d = 0; d < 2; d++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", ct_test_source_path(dirs[d]));
		DIR *dh = opendir(dir);
		assert_non_null(dh);
		struct dirent *de;
		while ((de = readdir(dh))) {
			size_t n = strlen(de->d_name);
			if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
				continue;
			char path[4400];
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			size_t len;
			char *buf = ct_test_read_file(path, &len);
			assert_non_null(buf);
			ct_event *ev = NULL;
			ct_error err;
			int rc = ct_event_parse(buf, len, NULL, &ev, &err);
			if ((rc == CT_OK) != (d == 0))
				fail_msg("%s: rc %d %s", de->d_name, rc, rc ? err.message : "");
			if (rc == CT_OK) {
				/* The producer's path accepts the same tree. */
				ct_event *ev2;
				json_t *root = (json_t *)ct_event_json(ev);
				assert_int_equal(ct_event_from_json(root, NULL, &ev2, &err), CT_OK);
				ct_event_free(ev2);
			} else {
				assert_true(rc == CT_ESCHEMA || rc == CT_EPARSE);
			}
			ct_event_free(ev);
			free(buf);
			counts[d]++;
		}
		closedir(dh);
	}
	assert_true(counts[0] >= 12);
	assert_true(counts[1] >= 20);
}

/* BASE followed by spaces up to `total` bytes (JSON allows trailing whitespace). */
static char *padded(size_t total)
{
	size_t n = strlen(BASE);
	char *s = malloc(total + 1);
	assert_non_null(s);
	memcpy(s, BASE, n);
	memset(s + n, ' ', total - n);
	s[total] = '\0';
	return s;
}

static void test_size_limit(void **state)
{
	char *s = padded(1048577);
	ct_event_free(parse_expect(s, 1048576, NULL, CT_OK, NULL));
	parse_expect(s, 1048577, NULL, CT_ELIMIT, "input: 1048577 bytes exceeds limit 1048576");
	free(s);

	ct_limits l = {.max_bytes = 100};
	parse_expect(BASE, strlen(BASE), &l, CT_ELIMIT, "bytes exceeds limit 100");
	l.max_bytes = strlen(BASE);
	ct_event_free(parse_expect(BASE, strlen(BASE), &l, CT_OK, NULL));
}

/* BASE with "after" nested `levels` objects deep inside after itself. */
static char *nested_after(size_t levels, char open, char close)
{
	const char *head = "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"" EID "\",\"ts\":\"" TS "\","
		"\"source\":\"shop\",\"collection\":\"orders\",\"document_id\":\"42\",\"op\":\"update\",\"after\":{\"d\":";
	size_t hn = strlen(head), per = open == '{' ? 5 : 1;
	char *s = malloc(hn + levels * (per + 1) + 8);
	assert_non_null(s);
	size_t n = 0;
	memcpy(s, head, hn);
	n = hn;
	for (size_t i = 0; i < levels; i++) {
		if (open == '{') {
			memcpy(s + n, "{\"a\":", 5);
			n += 5;
		} else {
			s[n++] = '[';
		}
	}
	s[n++] = '1';
	for (size_t i = 0; i < levels; i++)
		s[n++] = close;
	memcpy(s + n, "}}", 3);
	return s;
}

static void test_depth_limit(void **state)
{
	/* root 1, after 2, then 62 more: exactly 64 */
	char *s = nested_after(62, '[', ']');
	ct_event_free(parse_expect(s, strlen(s), NULL, CT_OK, NULL));
	free(s);
	s = nested_after(63, '{', '}');
	parse_expect(s, strlen(s), NULL, CT_ELIMIT, "limit: nesting deeper than 64 levels (in field 'after')");
	free(s);

	/* 10k deep: jansson stops at 2048 and we report a bound, not a crash. */
	s = nested_after(10000, '[', ']');
	parse_expect(s, strlen(s), NULL, CT_ELIMIT, "nesting deeper than the parser's limit of 2048 levels");
	ct_limits big = {.max_depth = 100000};
	parse_expect(s, strlen(s), &big, CT_ELIMIT, "parser's limit of 2048");
	free(s);
	s = nested_after(10000, '{', '}');
	parse_expect(s, strlen(s), NULL, CT_ELIMIT, "parser's limit of 2048");
	free(s);

	/* A built tree has no parser to stop it: the walk is iterative. */
	json_t *root = json_loads(BASE, 0, NULL);
	json_t *leaf = json_object();
	json_t *cur = leaf;
	for (int i = 0; i < 10000; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "a", cur);
		cur = o;
	}
	json_object_set_new(root, "after", cur);
	ct_event *ev;
	ct_error err;
	assert_int_equal(ct_event_from_json(root, NULL, &ev, &err), CT_ELIMIT);
	assert_non_null(strstr(err.message, "nesting deeper than 64 levels (in field 'after')"));
	assert_int_equal(ct_event_from_json(root, &big, &ev, &err), CT_OK);
	ct_event_free(ev);
	json_decref(root);
}

static void test_count_limits(void **state)
{
	/* 8 top-level members + 1 in after = 9 */
	ct_limits l = {.max_keys = 9};
	ct_event_free(parse_expect(BASE, strlen(BASE), &l, CT_OK, NULL));
	l.max_keys = 8;
	parse_expect(BASE, strlen(BASE), &l, CT_ELIMIT, "limit: more than 8 object members in the event (in field 'after')");
	l.max_keys = 5;
	parse_expect(BASE, strlen(BASE), &l, CT_ELIMIT, "limit: more than 5 object members in the event");

	const char *arr = "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"" EID "\",\"ts\":\"" TS "\","
		"\"source\":\"shop\",\"collection\":\"orders\",\"document_id\":\"42\",\"op\":\"update\","
		"\"after\":{\"a\":[1,2,3],\"b\":[[1,2,3,4]]}}";
	ct_limits la = {.max_array_items = 4};
	ct_event_free(parse_expect(arr, strlen(arr), &la, CT_OK, NULL));
	la.max_array_items = 3;
	parse_expect(arr, strlen(arr), &la, CT_ELIMIT, "limit: array of 4 items exceeds limit 3 (in field 'after')");

	const char *str = "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"" EID "\",\"ts\":\"" TS "\","
		"\"source\":\"shop\",\"collection\":\"orders\",\"document_id\":\"42\",\"op\":\"update\","
		"\"after\":{\"k\":\"0123456789abcdefghijklmnopqrstuvwxyzABCD\"}}";
	ct_limits ls = {.max_string_bytes = 40};
	ct_event_free(parse_expect(str, strlen(str), &ls, CT_OK, NULL));
	ls.max_string_bytes = 39;
	parse_expect(str, strlen(str), &ls, CT_ELIMIT, "limit: string of 40 bytes exceeds limit 39 (in field 'after')");
	const char *key = "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"" EID "\",\"ts\":\"" TS "\","
		"\"source\":\"shop\",\"collection\":\"orders\",\"document_id\":\"42\",\"op\":\"update\","
		"\"after\":{\"0123456789abcdefghijklmnopqrstuvwxyzABCD\":1}}";
	parse_expect(key, strlen(key), &ls, CT_ELIMIT, "limit: object key of 40 bytes exceeds limit 39 (in field 'after')");
}

static void test_malformed(void **state)
{
	/* invalid UTF-8: bad start byte, overlong, surrogate, above U+10FFFF, truncated, in a key */
	static const char *const utf8[] = {
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x98\"}", "{\"\xc3\":1}",
	};
	for (size_t i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++)
		parse_str(utf8[i], CT_EPARSE, "json: invalid UTF-8");
	parse_str("{\"a\":\"\\ud800\"}", CT_EPARSE, "json: invalid Unicode");

	parse_str("{\"op\":\"insert\",\"op\":\"insert\"}", CT_EPARSE, "json: duplicate object key near '\"op\"' (line 1, column");
	parse_str(BASE "", CT_OK, NULL);
	const char *dup_nested = "{\"schema\":\"changetrail.event.v1\",\"after\":{\"x\":1,\"y\":{\"x\":2,\"x\":3}}}";
	parse_str(dup_nested, CT_EPARSE, "json: duplicate object key near '\"x\"'");

	parse_str("{\"seq\":9223372036854775808}", CT_EPARSE, "json: number out of range");
	parse_str("{\"seq\":-9223372036854775809}", CT_EPARSE, "json: number out of range");
	parse_str("{\"after\":{\"r\":1e400}}", CT_EPARSE, "json: number out of range");
	parse_str("{\"seq\":9223372036854775807}", CT_ESCHEMA, NULL); /* fits: then the contract speaks */

	parse_expect("{\"a\":1\0}", 8, NULL, CT_EPARSE, "json: NUL byte at offset 6");
	parse_str("{\"a\":\"\\u0000\"}", CT_EPARSE, "json: \\u0000 is not allowed");
	parse_str("{\"a\\u0000\":1}", CT_EPARSE, "json: \\u0000 is not allowed");
	parse_str("", CT_EPARSE, "json: ");
	parse_str("{} {}", CT_EPARSE, "json: end of file expected");
	parse_str("{\"a\":NaN}", CT_EPARSE, "json: invalid token");
	parse_str("\"str\"", CT_EPARSE, "json: '[' or '{' expected");
	parse_str("[]", CT_ESCHEMA, "event: must be a JSON object");
}

static void test_messages_are_bounded(void **state)
{
	/* A long unknown key, with a newline and non-ASCII bytes in it. */
	char s[3000];
	size_t n = (size_t)snprintf(s, sizeof(s), "%.*s,\"", (int)strlen(BASE) - 1, BASE);
	memcpy(s + n, "bad\\nkey\xc3\xa9", 10);
	n += 10;
	memset(s + n, 'k', 2000);
	n += 2000;
	memcpy(s + n, "\":1}", 5);
	ct_event *ev;
	ct_error err;
	assert_int_equal(ct_event_parse(s, strlen(s), NULL, &ev, &err), CT_ESCHEMA);
	assert_non_null(strstr(err.message, "field 'bad\\x0akey\\xc3\\xa9kkk"));
	assert_non_null(strstr(err.message, "...': not allowed"));
	assert_null(strchr(err.message, '\n'));
	assert_true(strlen(err.message) < 200);

	/* jansson's "near" text is input too. */
	char big[200];
	n = (size_t)snprintf(big, sizeof(big), "{\"seq\":");
	memset(big + n, '9', 150);
	strcpy(big + n + 150, "}");
	assert_int_equal(ct_event_parse(big, strlen(big), NULL, &ev, &err), CT_EPARSE);
	assert_true(strlen(err.message) < 220);
}

static void test_from_json_tree_checks(void **state)
{
	ct_event *ev;
	ct_error err;
	json_t *root = json_loads(BASE, 0, NULL);
	json_t *after = json_object_get(root, "after");

	json_object_set_new(after, "bad", json_stringn_nocheck("\xff", 1));
	assert_int_equal(ct_event_from_json(root, NULL, &ev, &err), CT_EPARSE);
	assert_non_null(strstr(err.message, "json: string is not valid UTF-8 or contains NUL (in field 'after')"));
	assert_null(ev);
	json_object_set_new(after, "bad", json_stringn("a\0b", 3));
	assert_int_equal(ct_event_from_json(root, NULL, &ev, &err), CT_EPARSE);
	json_object_del(after, "bad");
	json_object_setn_new_nocheck(after, "k\0x", 3, json_true());
	assert_int_equal(ct_event_from_json(root, NULL, &ev, &err), CT_EPARSE);
	assert_non_null(strstr(err.message, "json: object key is not valid UTF-8 or contains NUL"));
	json_decref(root);

	/* The event borrows the tree and holds its own reference. */
	root = json_loads(BASE, 0, NULL);
	assert_int_equal(ct_event_from_json(root, NULL, &ev, &err), CT_OK);
	json_decref(root);
	assert_string_equal(ct_event_source(ev), "shop");
	assert_int_equal(ct_event_json(ev)->refcount, 1);
	ct_event_free(ev);

	json_t *arr = json_array();
	assert_int_equal(ct_event_from_json(arr, NULL, &ev, &err), CT_ESCHEMA);
	assert_string_equal(err.message, "event: must be a JSON object");
	json_decref(arr);
}

static void test_uuid_valid(void **state)
{
	assert_true(ct_uuid_valid(EID, 7));
	assert_true(ct_uuid_valid(EID, 0));
	assert_false(ct_uuid_valid(EID, 4));
	assert_true(ct_uuid_valid(CTX, 4));
	assert_true(ct_uuid_valid(CTX, 0));
	assert_false(ct_uuid_valid(CTX, 7));
	assert_false(ct_uuid_valid("0193A1B2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", 0));
	assert_false(ct_uuid_valid("0193a1b2-c3d4-7e5f-ca6b-7c8d9e0f1a2b", 0)); /* variant 110 */
	assert_false(ct_uuid_valid("0193a1b2-c3d4-7e5f-7a6b-7c8d9e0f1a2b", 0)); /* variant 0 */
	assert_false(ct_uuid_valid("0193a1b2-c3d4-0e5f-8a6b-7c8d9e0f1a2b", 0)); /* version 0 */
	assert_false(ct_uuid_valid("0193a1b2-c3d4-9e5f-8a6b-7c8d9e0f1a2b", 0)); /* version 9 */
	assert_false(ct_uuid_valid("00000000-0000-0000-0000-000000000000", 0));
	assert_false(ct_uuid_valid("ffffffff-ffff-ffff-ffff-ffffffffffff", 0));
	assert_false(ct_uuid_valid("0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2", 0));
	assert_false(ct_uuid_valid("0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2bb", 0));
	assert_false(ct_uuid_valid("0193a1b2c3d4-7e5f-8a6b-7c8d9e0f1a2b-", 0));
	assert_false(ct_uuid_valid("", 0));
	assert_false(ct_uuid_valid(NULL, 0));
	assert_false(ct_uuid_valid(EID, 9));
	assert_false(ct_uuid_valid(EID, -1));
}

static void test_uuid7_monotonic(void **state)
{
	enum { N = 100000 };
	char prev[37] = "", cur[37];
	ct_error err;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t before_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int i = 0; i < N; i++) {
		assert_int_equal(ct_uuid7_new(cur, &err), CT_OK);
		if (!ct_uuid_valid(cur, 7))
			fail_msg("id %d not a UUIDv7: %s", i, cur);
		if (strcmp(prev, cur) >= 0)
			fail_msg("id %d not increasing: %s then %s", i, prev, cur);
		memcpy(prev, cur, sizeof(cur));
	}
	/* The first 48 bits are the time in ms, near now (the counter may run
	 * ahead by a few ms only if >2^41 ids were made in one ms). */
	char hex[13];
	memcpy(hex, prev, 8);
	memcpy(hex + 8, prev + 9, 4);
	hex[12] = '\0';
	uint64_t ms = strtoull(hex, NULL, 16);
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t after_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	assert_true(ms >= before_ms && ms <= after_ms + 1);
	assert_int_equal(ct_uuid7_new(NULL, &err), CT_EINVAL);
}

enum { THREADS = 4, PER_THREAD = 20000 };
static char thread_ids[THREADS * PER_THREAD][37];

static void *gen_thread(void *arg)
{
	char(*ids)[37] = arg;
	for (int i = 0; i < PER_THREAD; i++)
		if (ct_uuid7_new(ids[i], NULL) != CT_OK)
			ids[i][0] = '\0';
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_uuid7_threads(void **state)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, gen_thread, thread_ids[i * PER_THREAD]), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* each thread's own ids increase */
	for (int i = 0; i < THREADS; i++)
		for (int j = 1; j < PER_THREAD; j++)
			assert_true(strcmp(thread_ids[i * PER_THREAD + j - 1], thread_ids[i * PER_THREAD + j]) < 0);
	qsort(thread_ids, THREADS * PER_THREAD, 37, cmp_id);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		if (strcmp(thread_ids[i - 1], thread_ids[i]) == 0)
			fail_msg("duplicate id %s", thread_ids[i]);
}

static void test_time(void **state)
{
	static const struct {
		int64_t us;
		const char *s;
	} known[] = {
		{0, "1970-01-01T00:00:00.000000Z"},
		{-1, "1969-12-31T23:59:59.999999Z"},
		{1000002, "1970-01-01T00:00:01.000002Z"},
		{951782400000000, "2000-02-29T00:00:00.000000Z"},
		{1709251199999999, "2024-02-29T23:59:59.999999Z"},
		{-2203891200000000, "1900-03-01T00:00:00.000000Z"},
		{CT_TIME_MIN_US, "0000-01-01T00:00:00.000000Z"},
		{CT_TIME_MAX_US, "9999-12-31T23:59:59.999999Z"},
	};
	char buf[32];
	int64_t us;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		assert_int_equal(ct_time_format_rfc3339_us(known[i].us, buf), CT_OK);
		assert_string_equal(buf, known[i].s);
		assert_int_equal(ct_time_parse_rfc3339(known[i].s, &us), CT_OK);
		assert_true(us == known[i].us);
	}
	assert_int_equal(ct_time_format_rfc3339_us(CT_TIME_MIN_US - 1, buf), CT_EINVAL);
	assert_int_equal(ct_time_format_rfc3339_us(CT_TIME_MAX_US + 1, buf), CT_EINVAL);
	assert_int_equal(ct_time_format_rfc3339_us(INT64_MIN, buf), CT_EINVAL);
	assert_int_equal(ct_time_format_rfc3339_us(0, NULL), CT_EINVAL);

	/* Round trip over the whole range (xorshift, fixed seed). */
	uint64_t x = 88172645463325252ULL;
	uint64_t span = (uint64_t)(CT_TIME_MAX_US - CT_TIME_MIN_US) + 1;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t v = CT_TIME_MIN_US + (int64_t)(x % span);
		assert_int_equal(ct_time_format_rfc3339_us(v, buf), CT_OK);
		assert_int_equal(ct_time_parse_rfc3339(buf, &us), CT_OK);
		if (us != v)
			fail_msg("%lld -> %s -> %lld", (long long)v, buf, (long long)us);
	}

	/* Other RFC 3339 spellings parse to the same instant. */
	static const char *const same[] = {
		"2026-11-22T21:56:52.123456+01:00", "2026-11-22T20:56:52.123456z", "2026-11-22t20:56:52.123456Z",
		"2026-11-22T20:56:52.123456789Z", "2026-11-22T15:26:52.123456-05:30",
	};
	int64_t ref;
	assert_int_equal(ct_time_parse_rfc3339(TS, &ref), CT_OK);
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_int_equal(ct_time_parse_rfc3339(same[i], &us), CT_OK);
		assert_true(us == ref);
	}
	assert_int_equal(ct_time_parse_rfc3339("2026-11-22T20:56:52Z", &us), CT_OK);
	assert_true(us == ref - 123456);
	assert_int_equal(ct_time_parse_rfc3339("2026-11-22T20:56:52.1Z", &us), CT_OK);
	assert_true(us == ref - 23456);
	assert_int_equal(ct_time_parse_rfc3339("0000-01-01T00:10:56-02:00", &us), CT_OK);
	assert_true(us == CT_TIME_MIN_US + INT64_C(7856000000));

	static const char *const bad[] = {
		"", "2026", "2026-11-22", "2026-11-22T20:56", "2026-11-22T20:56:52", "2026-11-22T20:56:52.Z",
		"2026-11-22T20:56:52.1234567890Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
		"2026-00-10T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z", "2026-04-31T00:00:00Z",
		"2026-11-22T24:00:00Z", "2026-11-22T23:60:00Z", "2026-11-22T23:59:60Z", "2026-11-22 20:56:52Z",
		"2026-11-22T20:56:52+0100", "2026-11-22T20:56:52+24:00", "2026-11-22T20:56:52Z ", "+2026-11-22T20:56:52Z",
		"2026-11-22T20:56:52.123456", "20261122T205652Z", "2026-1-22T20:56:52Z",
		/* an offset that moves the instant out of 0000..9999 (no canonical form) */
		"0000-01-01T00:10:56+02:00", "9999-12-31T23:00:00-01:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ct_time_parse_rfc3339(bad[i], &us) != CT_EPARSE)
			fail_msg("accepted <%s>", bad[i]);
	assert_int_equal(ct_time_parse_rfc3339(NULL, &us), CT_EINVAL);
	assert_int_equal(ct_time_parse_rfc3339(TS, NULL), CT_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_op_names),
		cmocka_unit_test(test_limits_default),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_count_limits),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_messages_are_bounded),
		cmocka_unit_test(test_from_json_tree_checks),
		cmocka_unit_test(test_uuid_valid),
		cmocka_unit_test(test_uuid7_monotonic),
		cmocka_unit_test(test_uuid7_threads),
		cmocka_unit_test(test_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
