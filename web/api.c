/*
 * api.c - the JSON API of `changetrail serve` under /api/v1 (docs/web.md):
 * each route checks its arguments (bounded, typed) and answers from one
 * call of the history library (include/changetrail/history.h), never by
 * reading MongoDB itself. Records keep their JSON form ("changes" in
 * dictdiffer form) and gain "fields": the same changes one per leaf, as
 * {op, path: [keys and indices], old?, new?}, which is what the UI shows.
 */
#include "web.h"

#include "changetrail/diff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *ctw_get(const ctw_args *a, const char *name)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->v[i].name, name))
			return a->v[i].value;
	return NULL;
}

/* An answer under construction: the body or the error. */
typedef struct answer {
	json_t *body;
	int status;
} answer;

static void fail(answer *a, int status, const char *code, const char *message)
{
	json_decref(a->body);
	a->body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
	a->status = status;
}

/* The answer for a history library error. */
static void fail_err(answer *a, int rc, const ct_error *err)
{
	switch (rc) {
	case CT_ENOTFOUND:
		fail(a, 404, "not_found", err->message);
		break;
	case CT_EINVAL:
	case CT_EPARSE:
		fail(a, 400, "bad_request", err->message);
		break;
	case CT_ELIMIT:
		fail(a, 413, "too_large", err->message);
		break;
	case CT_ECONFLICT:
		fail(a, 409, "inconsistent_history", err->message);
		break;
	case CT_EMONGO:
		fail(a, 503, "database_unavailable", err->message);
		break;
	default:
		fail(a, 500, "internal", err->message);
	}
}

/* A required, non-empty text argument; NULL (answer set) when missing. */
static const char *need(answer *a, const ctw_args *args, const char *name)
{
	const char *v = ctw_get(args, name);
	if (!v || !*v) {
		char m[96];
		snprintf(m, sizeof(m), "argument '%s' is required", name);
		fail(a, 400, "bad_request", m);
		return NULL;
	}
	return v;
}

/* An optional integer argument in [lo, hi] (absent or "": dflt). false (answer set) when malformed. */
static bool int_arg(answer *a, const ctw_args *args, const char *name, int64_t lo, int64_t hi, int64_t dflt,
		    int64_t *out)
{
	const char *v = ctw_get(args, name);
	char *end;
	*out = dflt;
	if (!v || !*v)
		return true;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || *end || end == v || x < lo || x > hi) {
		char m[128];
		snprintf(m, sizeof(m), "argument '%s' must be an integer in %lld..%lld", name, (long long)lo,
			 (long long)hi);
		fail(a, 400, "bad_request", m);
		return false;
	}
	*out = x;
	return true;
}

/* An optional time argument (RFC 3339 or a duration ago, as the CLI takes them). */
static bool time_arg(answer *a, const ctw_args *args, const char *name, int64_t *out)
{
	const char *v = ctw_get(args, name);
	struct timespec ts;
	ct_error err;
	*out = CT_HISTORY_NO_TIME;
	if (!v || !*v)
		return true;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ct_history_parse_time(v, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, out, &err)) {
		char m[sizeof(err.message) + 32];
		snprintf(m, sizeof(m), "argument '%s': %s", name, err.message);
		fail(a, 400, "bad_request", m);
		return false;
	}
	return true;
}

/* ---- changes, one per leaf ------------------------------------------------------------------------- */

/* A dictdiffer path ("a.b", "" or an array) as an array of components (new reference). */
static json_t *path_array(const json_t *p)
{
	if (json_is_array(p))
		return json_deep_copy(p);
	json_t *arr = json_array();
	const char *s = json_string_value(p);
	if (!arr || !s || !*s)
		return arr;
	/* dotted only when every component is a non-empty key without '.' (docs/storage.md) */
	for (const char *q = s;;) {
		const char *dot = strchr(q, '.');
		size_t n = dot ? (size_t)(dot - q) : strlen(q);
		if (json_array_append_new(arr, json_stringn(q, n))) {
			json_decref(arr);
			return NULL;
		}
		if (!dot)
			break;
		q = dot + 1;
	}
	return arr;
}

/*
 * Sets obj[key] to `v` as JSON text (compact, or indented; keys sorted): how the UI shows
 * a value, since JavaScript cannot tell 8.0 from 8. -1 when out of memory.
 */
static int set_text(json_t *obj, const char *key, const json_t *v, bool indent)
{
	/* keys sorted: a document rebuilt forward or backward shows the same */
	char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS | (indent ? JSON_INDENT(2) : JSON_COMPACT));
	int rc = t ? json_object_set_new(obj, key, json_string(t)) : -1;
	free(t);
	return rc;
}

/* Adds old_text / new_text to each field. */
static int field_texts(json_t *fields)
{
	size_t i;
	json_t *f;
	json_array_foreach(fields, i, f) {
		if (json_object_get(f, "old") && set_text(f, "old_text", json_object_get(f, "old"), false))
			return -1;
		if (json_object_get(f, "new") && set_text(f, "new_text", json_object_get(f, "new"), false))
			return -1;
	}
	return 0;
}

/* Appends the leaf view of dictdiffer `changes` to `fields`; -1 on a malformed entry or no memory. */
static int flatten(const json_t *changes, json_t *fields)
{
	size_t i;
	const json_t *c;
	json_array_foreach(changes, i, c) {
		const char *op = json_string_value(json_array_get(c, 0));
		json_t *path = path_array(json_array_get(c, 1));
		const json_t *data = json_array_get(c, 2);
		int bad = !op || !path;
		if (!bad && !strcmp(op, "change")) {
			bad = json_array_size(data) != 2 ||
			      json_array_append_new(fields, json_pack("{s:s, s:O, s:O, s:O}", "op", "change", "path",
								      path, "old", json_array_get(data, 0), "new",
								      json_array_get(data, 1)));
		} else if (!bad && (!strcmp(op, "add") || !strcmp(op, "remove"))) {
			size_t k;
			const json_t *kv;
			json_array_foreach(data, k, kv) {
				json_t *p = json_deep_copy(path);
				bad |= !p || json_array_append(p, json_array_get(kv, 0));
				if (!bad)
					bad |= json_array_append_new(
						fields, json_pack("{s:s, s:o, s:O}", "op", op, "path", p,
								  !strcmp(op, "add") ? "new" : "old", json_array_get(kv, 1)));
				else
					json_decref(p);
			}
		} else {
			bad = 1;
		}
		json_decref(path);
		if (bad)
			return -1;
	}
	return 0;
}

/* A record as the API gives it: without kafka, with "fields". */
static int decorate(json_t *rec)
{
	json_t *fields = json_array();
	json_object_del(rec, "kafka");
	if (!fields || flatten(json_object_get(rec, "changes"), fields) || field_texts(fields)) {
		json_decref(fields);
		return -1;
	}
	return json_object_set_new(rec, "fields", fields);
}

static bool decorate_all(answer *a, json_t *recs)
{
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r)
		if (decorate(r)) {
			fail(a, 500, "internal", "a record's changes could not be shown");
			return false;
		}
	return true;
}

/* ---- routes ------------------------------------------------------------------------------------------ */

static void r_health(ct_history *h, const ctw_args *args, answer *a)
{
	ct_error err;
	int rc = ct_history_ping(h, &err);
	(void)args;
	if (rc)
		fail_err(a, rc, &err);
	else
		a->body = json_pack("{s:b}", "ok", 1);
}

static void r_documents(ct_history *h, const ctw_args *args, answer *a)
{
	ct_error err;
	int64_t limit;
	const char *coll = ctw_get(args, "collection"), *prefix = ctw_get(args, "prefix");
	if (!int_arg(a, args, "limit", 1, CT_HISTORY_PAGE_MAX, CTW_PAGE_DEFAULT, &limit))
		return;
	if (coll && !*coll)
		coll = NULL;
	if (prefix && *prefix && !coll)
		return fail(a, 400, "bad_request", "an id prefix needs a collection");
	int rc = ct_history_documents(h, coll, prefix, ctw_get(args, "after"), (int)limit, &a->body, &err);
	if (rc)
		fail_err(a, rc, &err);
}

static void r_timeline(ct_history *h, const ctw_args *args, answer *a)
{
	ct_error err;
	int64_t before, limit;
	const char *coll = need(a, args, "collection"), *id = coll ? need(a, args, "id") : NULL;
	if (!id || !int_arg(a, args, "before", 0, INT64_MAX, 0, &before) ||
	    !int_arg(a, args, "limit", 1, CT_HISTORY_PAGE_MAX, CTW_PAGE_DEFAULT, &limit))
		return;
	int rc = ct_history_timeline(h, coll, id, before, (int)limit, &a->body, &err);
	if (rc)
		return fail_err(a, rc, &err);
	decorate_all(a, json_object_get(a->body, "records"));
}

static void r_version(ct_history *h, const ctw_args *args, answer *a)
{
	ct_error err;
	int64_t version, at;
	json_t *st = NULL, *cur = NULL, *diff = NULL, *fields = NULL;
	const char *coll = need(a, args, "collection"), *id = coll ? need(a, args, "id") : NULL;
	if (!id || !int_arg(a, args, "version", 1, INT64_MAX, 0, &version) || !time_arg(a, args, "at", &at))
		return;
	if (version && at != CT_HISTORY_NO_TIME)
		return fail(a, 400, "bad_request", "give a version or an instant ('at'), not both");
	int rc = ct_history_state_and_current(h, coll, id, version, at, &st, &cur, &err);
	if (rc) {
		fail_err(a, rc, &err);
		goto out;
	}
	/* what changed from this version to the current state */
	if ((rc = ct_diff(json_object_get(st, "doc"), json_object_get(cur, "doc"), &diff, &err))) {
		fail_err(a, rc, &err);
		goto out;
	}
	if (!(fields = json_array()) || flatten(diff, fields) || field_texts(fields) ||
	    set_text(st, "doc_text", json_object_get(st, "doc"), true) ||
	    set_text(cur, "doc_text", json_object_get(cur, "doc"), true)) {
		fail(a, 500, "internal", "the difference could not be shown");
		goto out;
	}
	a->body = json_pack("{s:O, s:O, s:O, s:O}", "state", st, "current", cur, "diff_to_current", diff,
			    "diff_fields", fields);
	if (!a->body)
		fail(a, 500, "internal", "out of memory");
out:
	json_decref(st);
	json_decref(cur);
	json_decref(diff);
	json_decref(fields);
}

static void r_context(ct_history *h, const ctw_args *args, answer *a)
{
	ct_error err;
	int64_t offset, limit;
	json_t *ctx = NULL, *page = NULL;
	const char *id = need(a, args, "id");
	if (!id || !int_arg(a, args, "offset", 0, CT_HISTORY_MAX_RECORDS, 0, &offset) ||
	    !int_arg(a, args, "limit", 1, CT_HISTORY_PAGE_MAX, CTW_PAGE_DEFAULT, &limit))
		return;
	int rc = ct_history_context(h, id, &ctx, &err);
	if (rc)
		return fail_err(a, rc, &err);
	/* the records (oldest first) one page at a time */
	json_t *recs = json_object_get(ctx, "records");
	size_t n = json_array_size(recs);
	if (!(page = json_array()))
		goto oom;
	for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++)
		if (json_array_append(page, json_array_get(recs, i)))
			goto oom;
	if (!decorate_all(a, page))
		goto out;
	if (json_object_set(ctx, "records", page) || json_object_set_new(ctx, "total_records", json_integer((json_int_t)n)) ||
	    json_object_set_new(ctx, "next_offset",
				(size_t)(offset + limit) < n ? json_integer(offset + limit) : json_null()))
		goto oom;
	a->body = ctx;
	ctx = NULL;
	goto out;
oom:
	fail(a, 500, "internal", "out of memory");
out:
	json_decref(ctx);
	json_decref(page);
}

static void r_records(ct_history *h, const ctw_args *args, answer *a)
{
	ct_error err;
	int64_t limit;
	ct_history_records_query q = {.cursor_ms = CT_HISTORY_NO_TIME};
	const char *actor = ctw_get(args, "actor"), *cursor = ctw_get(args, "cursor");
	if (!time_arg(a, args, "since", &q.since_us) || !time_arg(a, args, "until", &q.until_us) ||
	    !int_arg(a, args, "limit", 1, CT_HISTORY_PAGE_MAX, CTW_PAGE_DEFAULT, &limit))
		return;
	q.actor = actor && *actor ? actor : NULL;
	q.limit = (int)limit;
	if (cursor && *cursor) {
		/* "MS.SKIP", as the previous page's next_cursor */
		char *end, *end2 = NULL;
		errno = 0;
		long long ms = strtoll(cursor, &end, 10);
		long long skip = *end == '.' ? strtoll(end + 1, &end2, 10) : -1;
		if (errno || *end != '.' || *end2 || skip < 0 || skip > CT_HISTORY_MAX_RECORDS)
			return fail(a, 400, "bad_request", "argument 'cursor' is not a cursor this API gave");
		q.cursor_ms = ms;
		q.cursor_skip = skip;
	}
	if (!q.actor && q.since_us == CT_HISTORY_NO_TIME && q.until_us == CT_HISTORY_NO_TIME && !(cursor && *cursor))
		return fail(a, 400, "bad_request", "give an actor, a time range (since, until) or both");
	int rc = ct_history_records(h, &q, &a->body, &err);
	if (rc)
		return fail_err(a, rc, &err);
	if (!decorate_all(a, json_object_get(a->body, "records")))
		return;
	json_t *next = json_object_get(a->body, "next");
	char c[64] = "";
	if (json_is_object(next))
		snprintf(c, sizeof(c), "%lld.%lld", (long long)json_integer_value(json_object_get(next, "ms")),
			 (long long)json_integer_value(json_object_get(next, "skip")));
	json_object_set_new(a->body, "next_cursor", c[0] ? json_string(c) : json_null());
	json_object_del(a->body, "next");
}

static void r_verify(ct_history *h, const ctw_args *args, answer *a)
{
	ct_error err;
	const char *coll = need(a, args, "collection"), *id = coll ? need(a, args, "id") : NULL;
	if (!id)
		return;
	int rc = ct_history_verify(h, coll, id, &a->body, &err);
	if (rc)
		return fail_err(a, rc, &err);
	json_object_set_new(a->body, "ok", json_boolean(json_array_size(json_object_get(a->body, "problems")) == 0));
}

static const struct route {
	const char *path;
	void (*fn)(ct_history *h, const ctw_args *args, answer *a);
} routes[] = {
	{"/health", r_health},     {"/documents", r_documents}, {"/timeline", r_timeline}, {"/version", r_version},
	{"/context", r_context},   {"/records", r_records},     {"/verify", r_verify},
};

void ctw_api(ct_history *h, const char *path, const ctw_args *args, json_t **body, int *status)
{
	answer a = {NULL, 200};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(path, routes[i].path)) {
			routes[i].fn(h, args, &a);
			if (!a.body)
				fail(&a, 500, "internal", "out of memory");
			*body = a.body;
			*status = a.status;
			return;
		}
	fail(&a, 404, "not_found", "no such API route");
	*body = a.body;
	*status = a.status;
}
