/*
 * tracking.c - tracked fields: a collection's include list keeps only the
 * listed fields, its exclude list removes fields (passwords, tokens) before
 * anything is serialised, so excluded values never leave the process.
 * Paths are field names, or dotted paths into nested objects ("profile.ssn").
 */
#include "producer_internal.h"

#include <string.h>

#define PATH_MAX_PARTS 16

/* Splits "a.b.c" into parts (pointers into buf). Returns the count or -1. */
static int split_path(const char *path, char *buf, size_t size, char **parts)
{
	int n = 0;
	if (strlen(path) >= size)
		return -1;
	strcpy(buf, path);
	for (char *p = buf;; ) {
		if (n == PATH_MAX_PARTS)
			return -1;
		parts[n++] = p;
		char *dot = strchr(p, '.');
		if (!dot)
			break;
		*dot = '\0';
		p = dot + 1;
	}
	return n;
}

static void exclude_path(json_t *doc, const char *path)
{
	char buf[1024], *parts[PATH_MAX_PARTS];
	int n = split_path(path, buf, sizeof(buf), parts);
	json_t *cur = doc;
	if (n < 0)
		return;
	for (int i = 0; i < n - 1 && cur; i++)
		cur = json_object_get(cur, parts[i]);
	if (json_is_object(cur))
		json_object_del(cur, parts[n - 1]);
}

static int include_path(const json_t *src, json_t *dst, const char *path)
{
	char buf[1024], *parts[PATH_MAX_PARTS];
	int n = split_path(path, buf, sizeof(buf), parts);
	const json_t *cur = src;
	if (n < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		cur = json_object_get(cur, parts[i]);
		if (!cur)
			return 0; /* absent: nothing to keep */
	}
	json_t *d = dst;
	for (int i = 0; i < n - 1; i++) {
		json_t *next = json_object_get(d, parts[i]);
		if (!json_is_object(next)) {
			next = json_object();
			if (!next || json_object_set_new(d, parts[i], next))
				return -1;
		}
		d = next;
	}
	return json_object_set(d, parts[n - 1], (json_t *)cur);
}

int ct_track_apply(const ct_track_rule *r, json_t *doc, ct_error *err)
{
	int rc = CT_OK;
	json_t *kept = NULL;
	if (!r)
		return CT_OK;
	if (!json_is_object(doc))
		return ct_error_set(err, CT_EINVAL, "tracking: document is not an object");
	if (r->include) {
		kept = json_object();
		if (!kept) {
			rc = ct_error_set(err, CT_ENOMEM, "tracking: out of memory");
			goto out;
		}
		for (char **p = r->include; *p; p++)
			if (include_path(doc, kept, *p)) {
				rc = ct_error_set(err, CT_ENOMEM, "tracking: out of memory");
				goto out;
			}
		/* kept shares children with doc; clear doc only after copying. */
		if (json_object_clear(doc) || json_object_update(doc, kept)) {
			rc = ct_error_set(err, CT_ENOMEM, "tracking: out of memory");
			goto out;
		}
	}
	if (r->exclude)
		for (char **p = r->exclude; *p; p++)
			exclude_path(doc, *p);
out:
	json_decref(kept);
	return rc;
}
