/*
 * codec.c - the stored form v2 of history records, states and contexts and
 * its lossless conversion to and from the JSON forms (cts_codec.h, rules in
 * docs/storage.md). The dictdiffer <-> native conversion refuses what it
 * could not give back byte for byte, so a record it accepts keeps its hash.
 */
#include "ct_internal.h"
#include "cts_codec.h"

#include "changetrail/event.h"

#include <stdlib.h>
#include <string.h>

#define RELATIONS_KEY "__relations__"

static bool is_relation_op(const char *op)
{
	return op && (!strcmp(op, "relation_add") || !strcmp(op, "relation_remove"));
}

/* ---- timestamps ------------------------------------------------------- */

static int64_t floor_div_1000(int64_t us)
{
	return us >= 0 ? us / 1000 : -((-(us + 1)) / 1000) - 1;
}

int cts_append_time(bson_t *doc, const char *key, const char *key_us, const char *text, ct_error *err)
{
	int64_t us;
	char canon[32];
	if (!text || ct_time_parse_rfc3339(text, &us) != CT_OK || ct_time_format_rfc3339_us(us, canon) != CT_OK ||
	    strcmp(canon, text) != 0)
		return ct_error_set(err, CT_EINVAL, "%s: not a canonical RFC 3339 µs time", key);
	if (!bson_append_date_time(doc, key, -1, floor_div_1000(us)) || !bson_append_int64(doc, key_us, -1, us))
		return ct_error_set(err, CT_ELIMIT, "BSON document over its size limit");
	return 0;
}

/* The time at `it` (a date, with `us_it` the exact µs when consistent, or
 * v1's text) as canonical text. */
static int time_text(const bson_iter_t *it, const bson_iter_t *us_it, const char *key, char out[32], ct_error *err)
{
	if (BSON_ITER_HOLDS_UTF8(it)) {
		uint32_t len;
		const char *s = bson_iter_utf8(it, &len);
		if (len >= 32 || memchr(s, '\0', len))
			return ct_error_set(err, CT_EINVAL, "%s: malformed time text", key);
		memcpy(out, s, len + 1);
		return 0;
	}
	if (!BSON_ITER_HOLDS_DATE_TIME(it))
		return ct_error_set(err, CT_EINVAL, "%s: neither a date nor RFC 3339 text", key);
	int64_t ms = bson_iter_date_time(it), us;
	if (us_it && BSON_ITER_HOLDS_INT64(us_it) && floor_div_1000(bson_iter_int64(us_it)) == ms)
		us = bson_iter_int64(us_it);
	else if (ms > CT_TIME_MAX_US / 1000 || ms < CT_TIME_MIN_US / 1000)
		return ct_error_set(err, CT_EINVAL, "%s: date out of range", key);
	else
		us = ms * 1000;
	if (ct_time_format_rfc3339_us(us, out) != CT_OK)
		return ct_error_set(err, CT_EINVAL, "%s: date out of range", key);
	return 0;
}

int cts_get_time(const bson_t *doc, const char *key, const char *key_us, char out[32], ct_error *err)
{
	bson_iter_t it, us_it;
	bool have_us = key_us && bson_iter_init_find(&us_it, doc, key_us);
	if (!bson_iter_init_find(&it, doc, key))
		return ct_error_set(err, CT_EINVAL, "%s: missing", key);
	return time_text(&it, have_us ? &us_it : NULL, key, out, err);
}

/* ---- paths ----------------------------------------------------------------- */

/* dictdiffer would write these components joined with '.' (common/diff.c). */
static bool dotted_ok(const json_t *comps)
{
	for (size_t i = 0; i < json_array_size(comps); i++) {
		const json_t *c = json_array_get(comps, i);
		if (!json_is_string(c) || json_string_length(c) == 0 ||
		    memchr(json_string_value(c), '.', json_string_length(c)))
			return false;
	}
	return true;
}

static bool valid_components(const json_t *comps)
{
	for (size_t i = 0; i < json_array_size(comps); i++) {
		const json_t *c = json_array_get(comps, i);
		if (!json_is_string(c) && !json_is_integer(c))
			return false;
	}
	return true;
}

/* components -> dictdiffer path (new reference) */
static json_t *path_render(const char *op, json_t *comps)
{
	if (is_relation_op(op) || !dotted_ok(comps))
		return json_copy(comps);
	size_t len = 0;
	for (size_t i = 0; i < json_array_size(comps); i++)
		len += json_string_length(json_array_get(comps, i)) + 1;
	char *buf = malloc(len ? len : 1), *p = buf;
	if (!buf)
		return NULL;
	for (size_t i = 0; i < json_array_size(comps); i++) {
		const json_t *c = json_array_get(comps, i);
		if (i)
			*p++ = '.';
		memcpy(p, json_string_value(c), json_string_length(c));
		p += json_string_length(c);
	}
	json_t *s = json_stringn(buf, (size_t)(p - buf));
	free(buf);
	return s;
}

/*
 * dictdiffer path -> components (new array). Refuses a form that would not
 * be rendered back the same (path_render()): that is what makes the
 * conversion lossless for whatever it accepts.
 */
static int path_split(const char *op, const json_t *path, json_t **out, ct_error *err)
{
	json_t *comps = NULL;
	*out = NULL;
	if (json_is_array(path)) {
		if (!valid_components(path))
			return ct_error_set(err, CT_EINVAL, "changes: path components must be strings or integers");
		if (!is_relation_op(op) && dotted_ok(path))
			return ct_error_set(err, CT_EINVAL, "changes: array path that dictdiffer writes dotted");
		if (!(comps = json_copy((json_t *)path)))
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		*out = comps;
		return 0;
	}
	if (!json_is_string(path) || is_relation_op(op))
		return ct_error_set(err, CT_EINVAL, "changes: path must be %s", is_relation_op(op) ? "an array" : "a string or an array");
	if (!(comps = json_array()))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	const char *s = json_string_value(path), *end = s + json_string_length(path);
	while (s < end) {
		const char *dot = memchr(s, '.', (size_t)(end - s));
		const char *stop = dot ? dot : end;
		if (stop == s || (dot && dot + 1 == end) || json_array_append_new(comps, json_stringn(s, (size_t)(stop - s)))) {
			json_decref(comps);
			return ct_error_set(err, CT_EINVAL, "changes: dotted path with an empty component");
		}
		s = dot ? dot + 1 : end;
	}
	*out = comps;
	return 0;
}

/* ---- changes ------------------------------------------------------------- */

static json_t *native_item(const char *op, json_t *comps, json_t *key, json_t *value)
{
	json_t *path = json_copy(comps);
	if (!path || json_array_append(path, key)) {
		json_decref(path);
		return NULL;
	}
	return json_pack("{s:s, s:o, s:O}", "op", op, "path", path, "value", value);
}

int cts_changes_to_native(const char *op, const json_t *changes, json_t **native, ct_error *err)
{
	json_t *out = json_array(), *prev_parent = NULL, *comps = NULL;
	const char *prev_op = NULL;
	int rc = 0;
	*native = NULL;
	if (!out)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	if (!json_is_array(changes)) {
		rc = ct_error_set(err, CT_EINVAL, "changes: not an array");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(changes); i++) {
		const json_t *e = json_array_get(changes, i);
		const char *kind = json_string_value(json_array_get(e, 0));
		json_t *third = json_array_get(e, 2);
		if (!json_is_array(e) || json_array_size(e) != 3 || !kind || !json_is_array(third)) {
			rc = ct_error_set(err, CT_EINVAL, "changes[%zu]: not [op, path, values]", i);
			goto out;
		}
		json_decref(comps);
		if ((rc = path_split(op, json_array_get(e, 1), &comps, err)))
			goto out;
		if (!strcmp(kind, "change")) {
			json_t *item;
			if (json_array_size(third) != 2) {
				rc = ct_error_set(err, CT_EINVAL, "changes[%zu]: change without [from, to]", i);
				goto out;
			}
			item = json_pack("{s:s, s:O, s:O, s:O}", "op", "change", "path", comps, "from",
					 json_array_get(third, 0), "to", json_array_get(third, 1));
			if (!item || json_array_append_new(out, item)) {
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
				goto out;
			}
			prev_op = NULL;
			continue;
		}
		if (strcmp(kind, "add") && strcmp(kind, "remove")) {
			rc = ct_error_set(err, CT_EINVAL, "changes[%zu]: unknown op", i);
			goto out;
		}
		/* an empty list, or a list that follows one of the same op and
		 * parent, would not come back as it was (regrouped, or gone) */
		if (!json_array_size(third) || (prev_op && !strcmp(prev_op, kind) && json_equal(prev_parent, comps))) {
			rc = ct_error_set(err, CT_EINVAL, "changes[%zu]: %s list that native form cannot keep apart", i,
					  kind);
			goto out;
		}
		for (size_t k = 0; k < json_array_size(third); k++) {
			json_t *pair = json_array_get(third, k), *key = json_array_get(pair, 0), *item;
			if (!json_is_array(pair) || json_array_size(pair) != 2 || (!json_is_string(key) && !json_is_integer(key))) {
				rc = ct_error_set(err, CT_EINVAL, "changes[%zu]: item %zu is not [key, value]", i, k);
				goto out;
			}
			if (!(item = native_item(kind, comps, key, json_array_get(pair, 1))) || json_array_append_new(out, item)) {
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
				goto out;
			}
		}
		prev_op = kind;
		json_decref(prev_parent);
		prev_parent = json_incref(comps);
	}
out:
	json_decref(comps);
	json_decref(prev_parent);
	if (rc)
		json_decref(out);
	else
		*native = out;
	return rc;
}

/* true when object `o` has exactly the members named (NULL-terminated). */
static bool has_exactly(const json_t *o, const char *const *names)
{
	size_t n = 0;
	for (; names[n]; n++)
		if (!json_object_get(o, names[n]))
			return false;
	return json_object_size(o) == n;
}

int cts_changes_from_native(const char *op, const json_t *native, json_t **changes, ct_error *err)
{
	static const char *const change_keys[] = {"op", "path", "from", "to", NULL};
	static const char *const item_keys[] = {"op", "path", "value", NULL};
	json_t *out = json_array(), *group = NULL, *group_parent = NULL, *parent = NULL;
	const char *group_op = NULL;
	int rc = 0;
	*changes = NULL;
	if (!out)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	if (!json_is_array(native)) {
		rc = ct_error_set(err, CT_EINVAL, "changes: not an array");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(native); i++) {
		const json_t *e = json_array_get(native, i), *path = json_object_get(e, "path");
		const char *kind = json_string_value(json_object_get(e, "op"));
		if (!json_is_object(e) || !kind || !json_is_array(path) || !valid_components(path)) {
			rc = ct_error_set(err, CT_EINVAL, "changes[%zu]: not {op, path: [key | index, ...], ...}", i);
			goto out;
		}
		if (!strcmp(kind, "change")) {
			json_t *p = NULL;
			if (!has_exactly(e, change_keys)) {
				rc = ct_error_set(err, CT_EINVAL, "changes[%zu]: change is {op, path, from, to}", i);
				goto out;
			}
			if (!(p = path_render(op, (json_t *)path)) ||
			    json_array_append_new(out, json_pack("[s, o, [O, O]]", "change", p, json_object_get(e, "from"),
								 json_object_get(e, "to")))) {
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
				goto out;
			}
			group_op = NULL;
			continue;
		}
		if ((strcmp(kind, "add") && strcmp(kind, "remove")) || !has_exactly(e, item_keys) ||
		    !json_array_size(path)) {
			rc = ct_error_set(err, CT_EINVAL, "changes[%zu]: add/remove is {op, path (not empty), value}", i);
			goto out;
		}
		size_t n = json_array_size(path);
		json_decref(parent);
		if (!(parent = json_array()) || json_array_extend(parent, (json_t *)path) || json_array_remove(parent, n - 1)) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		json_t *pair = json_pack("[O, O]", json_array_get(path, n - 1), json_object_get(e, "value"));
		if (!pair) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		if (group_op && !strcmp(group_op, kind) && json_equal(group_parent, parent)) {
			if (json_array_append_new(group, pair))
				rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			if (rc)
				goto out;
			continue;
		}
		json_t *p = path_render(op, parent), *entry = NULL;
		group = json_array();
		if (p && group)
			entry = json_pack("[s, o, o]", kind, p, group); /* takes p and group, even on failure */
		else {
			json_decref(p);
			json_decref(group);
		}
		if (!entry || json_array_append_new(out, entry) || json_array_append(group, pair)) {
			json_decref(pair);
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		json_decref(pair);
		group_op = kind;
		json_decref(group_parent);
		group_parent = json_incref(parent);
	}
out:
	json_decref(parent);
	json_decref(group_parent);
	if (rc)
		json_decref(out);
	else
		*changes = out;
	return rc;
}

/* ---- history records ------------------------------------------------------ */

int cts_history_to_bson(const json_t *record, bson_t *out, ct_error *err)
{
	const char *k, *op;
	json_t *v;
	int rc;
	if (!json_is_object(record) || !out)
		return ct_error_set(err, CT_EINVAL, "history record: an object is needed");
	op = json_string_value(json_object_get(record, "op"));
	json_object_foreach((json_t *)record, k, v) {
		if (!strcmp(k, "changes")) {
			json_t *native;
			if ((rc = cts_changes_to_native(op, v, &native, err)))
				return rc;
			rc = cts_bson_append_json(out, "changes", native, err);
			json_decref(native);
		} else if (!strcmp(k, "ts")) {
			rc = cts_append_time(out, "ts", "ts_us", json_string_value(v), err);
		} else if (!strcmp(k, "ts_us")) {
			continue; /* ours, from "ts" */
		} else {
			rc = cts_bson_append_json(out, k, v, err);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * v1 stored user JSON as canonical text, parsed back. What v1 stored as text
 * is an object or null (documents, metadata) or an array (changes): any
 * other value is refused, so that text read once is never read again as
 * text (a v2 string member would be).
 */
static int parse_text(const bson_iter_t *it, const char *what, bool array, json_t **out, ct_error *err)
{
	uint32_t len;
	const char *text = bson_iter_utf8(it, &len);
	json_error_t jerr;
	if (!(*out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)))
		return ct_error_set(err, CT_EINVAL, "%s is not JSON: %s", what, jerr.text);
	if (array ? !json_is_array(*out) : !json_is_object(*out) && !json_is_null(*out)) {
		json_decref(*out);
		*out = NULL;
		return ct_error_set(err, CT_EINVAL, "%s: v1 text of an unexpected type", what);
	}
	return 0;
}

/*
 * The members of `doc` into a new object: times (`tkeys`, each with its
 * "<key>_us") as text, members named in `texts` parsed when they are v1
 * text, "changes" converted (history), the rest as they are.
 */
static int doc_to_json(const bson_t *doc, const char *const *tkeys, const char *const *texts, bool history,
		       json_t **out, ct_error *err)
{
	bson_iter_t it;
	const char *op = NULL;
	json_t *obj = NULL;
	int rc = 0;
	*out = NULL;
	if (!doc || !bson_iter_init(&it, doc))
		return ct_error_set(err, CT_EINVAL, "stored document: corrupt");
	if (history && bson_iter_init_find(&it, doc, "op") && BSON_ITER_HOLDS_UTF8(&it))
		op = bson_iter_utf8(&it, NULL);
	if (!(obj = json_object()))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	bson_iter_init(&it, doc);
	while (bson_iter_next(&it)) {
		const char *key = bson_iter_key(&it);
		json_t *v = NULL;
		bool done = false;
		for (size_t i = 0; tkeys[i] && !done; i++) {
			size_t kl = strlen(tkeys[i]);
			if (!strncmp(key, tkeys[i], kl) && !strcmp(key + kl, "_us")) {
				done = true; /* folded into its time */
			} else if (!strcmp(key, tkeys[i])) {
				char us_key[64], text[32];
				bson_iter_t us_it;
				snprintf(us_key, sizeof(us_key), "%s_us", key);
				bool have_us = bson_iter_init_find(&us_it, doc, us_key);
				if (BSON_ITER_HOLDS_NULL(&it))
					v = json_null();
				else if ((rc = time_text(&it, have_us ? &us_it : NULL, key, text, err)))
					goto out;
				else
					v = json_string(text);
				done = true;
				if (!v) {
					rc = ct_error_set(err, CT_ENOMEM, "out of memory");
					goto out;
				}
			}
		}
		if (done && !v)
			continue;
		for (size_t i = 0; texts[i] && !v; i++)
			if (!strcmp(key, texts[i]) && BSON_ITER_HOLDS_UTF8(&it) &&
			    (rc = parse_text(&it, key, false, &v, err)))
				goto out;
		if (!v && history && !strcmp(key, "changes")) {
			if (BSON_ITER_HOLDS_UTF8(&it)) {
				if ((rc = parse_text(&it, "changes", true, &v, err)))
					goto out;
			} else {
				json_t *native;
				if ((rc = cts_bson_iter_to_json(&it, &native, err)))
					goto out;
				rc = cts_changes_from_native(op, native, &v, err);
				json_decref(native);
				if (rc)
					goto out;
			}
		}
		if (!v && (rc = cts_bson_iter_to_json(&it, &v, err)))
			goto out;
		if (json_object_get(obj, key)) {
			json_decref(v);
			rc = ct_error_set(err, CT_EINVAL, "stored document holds key '%s' twice", key);
			goto out;
		}
		if (json_object_set_new(obj, key, v)) {
			rc = ct_error_set(err, CT_EINVAL, "stored key is not valid UTF-8");
			goto out;
		}
	}
out:
	if (rc)
		json_decref(obj);
	else
		*out = obj;
	return rc;
}

int cts_history_from_bson(const bson_t *doc, json_t **record, ct_error *err)
{
	static const char *const tkeys[] = {"ts", NULL};
	static const char *const texts[] = {"doc", NULL}; /* a v1 checkpoint's state */
	return doc_to_json(doc, tkeys, texts, true, record, err);
}

/* ---- states ------------------------------------------------------------------ */

int cts_state_to_bson(const json_t *state, bson_t *out, ct_error *err)
{
	const char *k;
	json_t *v;
	int rc;
	if (!json_is_object(state) || !out)
		return ct_error_set(err, CT_EINVAL, "state: an object is needed");
	json_object_foreach((json_t *)state, k, v) {
		if (!strcmp(k, "ts") && json_is_string(v))
			rc = cts_append_time(out, "ts", "ts_us", json_string_value(v), err);
		else if (!strcmp(k, "ts_us"))
			continue;
		else
			rc = cts_bson_append_json(out, k, v, err);
		if (rc)
			return rc;
	}
	return 0;
}

int cts_state_from_bson(const bson_t *doc, json_t **state, ct_error *err)
{
	static const char *const tkeys[] = {"ts", NULL};
	static const char *const texts[] = {"doc", NULL};
	json_t *st, *ids;
	int rc = doc_to_json(doc, tkeys, texts, false, &st, err);
	if (rc)
		return rc;
	/* v1: the ring was ids only */
	if ((ids = json_object_get(st, "recent_event_ids")) && !json_object_get(st, "recent_events")) {
		json_t *ev = json_array();
		for (size_t i = 0; ev && i < json_array_size(ids); i++)
			if (json_array_append_new(ev, json_pack("{s:O, s:n}", "id", json_array_get(ids, i), "sha256"))) {
				json_decref(ev);
				ev = NULL;
			}
		if (!ev || json_object_set_new(st, "recent_events", ev)) {
			json_decref(st);
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		}
		json_object_del(st, "recent_event_ids");
	}
	*state = st;
	return 0;
}

/* ---- contexts ------------------------------------------------------------------ */

int cts_context_from_bson(const bson_t *doc, json_t **context, ct_error *err)
{
	static const char *const tkeys[] = {"first_ts", "last_ts", NULL};
	static const char *const texts[] = {"metadata_seen", "metadata", NULL};
	return doc_to_json(doc, tkeys, texts, false, context, err);
}
