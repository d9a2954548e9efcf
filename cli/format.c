/*
 * format.c - human output of records, changes and documents. --json output
 * does not come through here: it is the stored data as compact JSON. Every
 * stored string printed here goes through cli_esc()/cli_esc_json(): one
 * record is one header line and one line per change, whatever it holds.
 */
#include "cli.h"

#include "changetrail/canonical.h"
#include "changetrail/diff.h"
#include "ct_buf.h"
#include "ct_textsafe.h"

#include <stdlib.h>
#include <string.h>

/* Compact JSON of any value, or "?" when it cannot be printed. */
static void put_json(FILE *out, const json_t *v)
{
	fputs(cli_esc_json(v), out);
}

/* "a.b" / "" / ["a", 0] as a display path, with `key` appended when not NULL. */
static void put_path(FILE *out, const json_t *path, const json_t *key)
{
	bool any = false;
	if (json_is_string(path) && json_string_length(path)) {
		fputs(cli_esc(json_string_value(path)), out);
		any = true;
	} else if (json_is_array(path)) {
		size_t i;
		json_t *c;
		json_array_foreach(path, i, c) {
			if (json_is_integer(c))
				fprintf(out, "[%lld]", (long long)json_integer_value(c));
			else if (json_string_length(c) && !strchr(json_string_value(c), '.'))
				fprintf(out, "%s%s", any ? "." : "", cli_esc(json_string_value(c)));
			else {
				fprintf(out, "%s", any ? "." : "");
				put_json(out, c);
			}
			any = true;
		}
	}
	if (key) {
		if (json_is_integer(key))
			fprintf(out, "[%lld]", (long long)json_integer_value(key));
		else
			fprintf(out, "%s%s", any ? "." : "", cli_esc(json_string_value(key)));
		any = true;
	}
	if (!any)
		fputs("(root)", out);
}

void cli_print_changes(FILE *out, const json_t *changes, const char *indent)
{
	size_t i;
	json_t *e;
	json_array_foreach(changes, i, e) {
		const char *action = json_string_value(json_array_get(e, 0));
		const json_t *path = json_array_get(e, 1), *data = json_array_get(e, 2);
		if (!action)
			continue;
		if (!strcmp(action, "change")) {
			fprintf(out, "%s~ ", indent);
			put_path(out, path, NULL);
			fputs(": ", out);
			put_json(out, json_array_get(data, 0));
			fputs(" -> ", out);
			put_json(out, json_array_get(data, 1));
			fputc('\n', out);
			continue;
		}
		size_t k;
		json_t *item;
		json_array_foreach(data, k, item) {
			fprintf(out, "%s%c ", indent, strcmp(action, "add") ? '-' : '+');
			put_path(out, path, json_array_get(item, 0));
			fputs(": ", out);
			put_json(out, json_array_get(item, 1));
			fputc('\n', out);
		}
	}
}

json_t *cli_changes_in(const json_t *changes, bool jsonpatch)
{
	json_t *p = NULL;
	if (!jsonpatch)
		return json_incref((json_t *)changes);
	return ct_diff_to_jsonpatch(changes, &p, NULL) ? NULL : p;
}

/* The string member `key` escaped for printing, or `dflt`. */
static const char *s_or(const json_t *rec, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(rec, key));
	return s ? cli_esc(s) : dflt;
}

void cli_print_record(FILE *out, const json_t *rec, bool with_doc_key, bool jsonpatch)
{
	const char *op = s_or(rec, "op", "?"); /* escaped, compared only with plain words */
	fprintf(out, "v%-4lld %s  %-14s", (long long)json_integer_value(json_object_get(rec, "version")),
		s_or(rec, "ts", "?"), op);
	if (with_doc_key)
		fprintf(out, " %s/%s", s_or(rec, "collection", "?"), s_or(rec, "document_id", "?"));
	if (json_string_value(json_object_get(rec, "label")))
		fprintf(out, " [%s]", s_or(rec, "label", ""));
	fprintf(out, "  by %s", s_or(rec, "actor", "-"));
	if (json_string_value(json_object_get(rec, "context_id")))
		fprintf(out, "  context %s", s_or(rec, "context_id", ""));
	fputc('\n', out);
	if (!strcmp(op, "checkpoint")) {
		fprintf(out, "      history before this version was pruned (before %s)\n",
			s_or(rec, "pruned_before", "?"));
		return;
	}
	if (jsonpatch) {
		json_t *p = cli_changes_in(json_object_get(rec, "changes"), true);
		size_t i;
		json_t *o;
		json_array_foreach(p, i, o) {
			fputs("      ", out);
			put_json(out, o);
			fputc('\n', out);
		}
		json_decref(p);
	} else {
		cli_print_changes(out, json_object_get(rec, "changes"), "      ");
	}
}

void cli_print_doc(FILE *out, const json_t *doc)
{
	/* indented for people; reals may print with more digits than stored */
	ct_buf b = CT_BUF_INIT;
	char *t = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
	if (t && !ct_text_escape(&b, t, strlen(t), CT_ESC_JSON) && b.data) {
		fputs(b.data, out);
		fputc('\n', out);
	}
	ct_buf_free(&b);
	free(t);
}
