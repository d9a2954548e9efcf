/*
 * ct_diffutil.h - pieces shared by diff.c, patch.c and jsonpatch.c: the value
 * comparison that decides what counts as a change, bounded copies, and the
 * reading of diff entries and their paths. Internal; not installed.
 */
#ifndef CT_DIFFUTIL_H
#define CT_DIFFUTIL_H

#include <jansson.h>
#include <stddef.h>

#include "changetrail/common.h"
#include "changetrail/diff.h"

/*
 * Length-aware key access where jansson has it (2.14), so a key with a NUL
 * byte (possible in documents built through the API) is not truncated.
 */
#if JANSSON_VERSION_HEX >= 0x020e00
#define CTD_KEY_LEN(key) json_object_iter_key_len(json_object_key_to_iter(key))
#define CTD_OBJ_GET(o, k, n) json_object_getn((o), (k), (n))
#define CTD_OBJ_SET_NEW(o, k, n, v) json_object_setn_new_nocheck((o), (k), (n), (v))
#define CTD_OBJ_DEL(o, k, n) json_object_deln((o), (k), (n))
#else
#define CTD_KEY_LEN(key) strlen(key)
#define CTD_OBJ_GET(o, k, n) ((void)(n), json_object_get((o), (k)))
#define CTD_OBJ_SET_NEW(o, k, n, v) ((void)(n), json_object_set_new_nocheck((o), (k), (v)))
#define CTD_OBJ_DEL(o, k, n) ((void)(n), json_object_del((o), (k)))
#endif

/* 1 when two non-container values (or an object and an array) differ. */
int ctd_leaf_different(const json_t *x, const json_t *y);

/*
 * 1 when x and y are equal as ct_diff() sees them (their diff would be empty),
 * 0 when not, CT_ELIMIT when nesting goes past CT_DIFF_MAX_DEPTH; `depth` is
 * the number of containers enclosing x and y.
 */
int ctd_equivalent(const json_t *x, const json_t *y, size_t depth);

/*
 * A fresh deep copy of v in *out; CT_ELIMIT when v nests containers beyond
 * CT_DIFF_MAX_DEPTH counting from `depth`, CT_ENOMEM. Unlike
 * json_deep_copy() it is bounded and needs no cycle bookkeeping.
 */
int ctd_copy(const json_t *v, size_t depth, json_t **out);

/* One component of a path: an object key or an array index. */
typedef struct ctd_comp {
	const char *key;   /* NULL for an index */
	size_t len;
	size_t index;
	int from_dotted;   /* key came from splitting a dotted string */
} ctd_comp;

/* Walks the components of a path (dotted string or array). */
typedef struct ctd_path_iter {
	const json_t *path;
	const char *s;     /* dotted: rest of the string; NULL when done */
	size_t s_left;
	size_t i;          /* array form: next element */
} ctd_path_iter;

void ctd_path_begin(ctd_path_iter *it, const json_t *path);
/* 1 and *c filled, or 0 when there are no more components. */
int ctd_path_next(ctd_path_iter *it, ctd_comp *c);
size_t ctd_path_count(const json_t *path);

/* A validated diff entry. Borrowed pointers into the diff. */
typedef enum { CTD_ADD, CTD_REMOVE, CTD_CHANGE } ctd_action;
typedef struct ctd_entry {
	ctd_action action;
	const char *action_name;
	const json_t *path;   /* string or array of strings / integers >= 0 */
	const json_t *data;   /* change: [old, new]; add/remove: [[key, value], ...] */
} ctd_entry;

/*
 * Checks that `diff` is an array of well-formed entries; CT_EINVAL naming
 * the entry otherwise. `who` prefixes messages ("patch", ...).
 */
int ctd_check_diff(const json_t *diff, const char *who, ct_error *err);
/* Reads entry i of a diff that passed ctd_check_diff(). */
void ctd_entry_get(const json_t *diff, size_t i, ctd_entry *e);

/* The path as short text for messages ("a.b" or ["", 0]), always NUL-terminated. */
void ctd_path_text(const json_t *path, char *buf, size_t size);

#endif /* CT_DIFFUTIL_H */
