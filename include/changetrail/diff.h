/*
 * changetrail/diff.h - structural diff of two JSON documents in the format of
 * the Python library dictdiffer, patch and revert with such a diff, and its
 * conversion to an RFC 6902 JSON Patch.
 *
 * A diff is a JSON array of entries [action, path, data] (docs/diff.md):
 *   ["change", path, [old, new]]            the value at `path` was replaced
 *   ["add",    path, [[key, value], ...]]   members/items added to the
 *                                           object/array at `path`
 *   ["remove", path, [[key, value], ...]]   members/items removed from it
 * `path` names a node from the document root: "" is the root itself; a string
 * "a.b" is the dotted form (used when every component is a non-empty string
 * without '.'); otherwise an array of components, strings for object keys and
 * integers for array indices, e.g. ["a", 0, "x.y"] or ["", "a"]. Array items
 * are (index, value) pairs; removals from an array come in decreasing index
 * order, so every entry applies to the document left by the previous one.
 * ct_diff() gives, entry for entry, what dictdiffer.diff(a, b) gives with its
 * default arguments (Python tuples written as arrays), except for the
 * deviations listed in docs/diff.md: booleans never equal numbers, two
 * integers are compared exactly, and a path with an empty-string key is
 * always in array form.
 *
 * Values are compared as dictdiffer does: numbers by value, so 1 and 1.0 are
 * equal and two numbers of which one is a real are equal when within a
 * relative tolerance of DBL_EPSILON (math.isclose); strings by bytes; objects
 * regardless of member order.
 *
 * Ownership: no function takes or keeps a reference to its arguments; every
 * value in a result is a fresh copy, so inputs and results can be changed or
 * freed independently. `*out` is a new reference owned by the caller
 * (json_decref()); it is set to NULL on failure.
 *
 * Thread-safety: all functions are reentrant and touch no global state; they
 * only read their inputs (no reference-count changes), so several threads may
 * diff or patch the same unmodified documents at once.
 *
 * Errors (return value, and `err` when not NULL):
 *   CT_EINVAL    a NULL argument, or a `diff` that is not a well-formed diff
 *                (message names the entry)
 *   CT_ELIMIT    a document or value nested deeper than CT_DIFF_MAX_DEPTH
 *   CT_ECONFLICT the diff does not apply to the document (message names the
 *                entry and its path)
 *   CT_ENOMEM    out of memory
 */
#ifndef CHANGETRAIL_DIFF_H
#define CHANGETRAIL_DIFF_H

#include <jansson.h>
#include <stddef.h>

#include "changetrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Bound on nesting: a document (or a value in a diff) with more than this many
 * nested objects/arrays gives CT_ELIMIT, so recursion stays bounded.
 */
#define CT_DIFF_MAX_DEPTH ((size_t)512)

/**
 * Diff of a -> b in dictdiffer form: a new JSON array of [action, path, data]
 * (empty when a and b are equal). `a` and `b` may be any JSON values. *out
 * owned by caller (json_decref). Errors: CT_EINVAL, CT_ELIMIT, CT_ENOMEM.
 */
CT_EXTERN int ct_diff(const json_t *a, const json_t *b, json_t **out, ct_error *err);

/**
 * Applies diff to doc, returns a NEW document (doc untouched). Stricter than
 * dictdiffer.patch(): the document must be in the state the diff was made
 * from, i.e. a "change" finds its old value, an "add" finds no such key (an
 * array index at most the array's size), a "remove" finds the same value.
 * CT_ECONFLICT if it does not apply; also CT_EINVAL, CT_ELIMIT, CT_ENOMEM.
 * Members added to an object go after the existing ones.
 */
CT_EXTERN int ct_patch(const json_t *diff, const json_t *doc, json_t **out, ct_error *err);

/**
 * Undoes diff on doc (the "b" side), returns a NEW document: the inverse
 * entries applied in reverse order, with the same checks and errors as
 * ct_patch(), so that ct_revert(ct_diff(a, b), b) equals a.
 */
CT_EXTERN int ct_revert(const json_t *diff, const json_t *doc, json_t **out, ct_error *err);

/**
 * Same change as an RFC 6902 JSON Patch array (ops add/remove/replace with
 * JSON Pointer paths, RFC 6901 escaping ~0 ~1): "change" -> one replace, "add"
 * and "remove" -> one op per item, in the diff's order. Needs no document.
 * *out owned by caller (json_decref). Errors: CT_EINVAL, CT_ELIMIT, CT_ENOMEM.
 */
CT_EXTERN int ct_diff_to_jsonpatch(const json_t *diff, json_t **out, ct_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CHANGETRAIL_DIFF_H */
