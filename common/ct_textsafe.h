/*
 * ct_textsafe.h - text that is safe to show and to log: escaping of
 * characters that drive terminals or fake lines (stored ids, actors, keys and
 * values come from applications and may be hostile), and redaction of the
 * user information of MongoDB URIs. Internal; not installed.
 */
#ifndef CT_TEXTSAFE_H
#define CT_TEXTSAFE_H

#include "changetrail/common.h"
#include "ct_buf.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Flags of ct_text_escape().
 * CT_ESC_JSON: `s` is JSON text (jansson or ct_json_dump_compact output).
 *   Backslashes stay as they are and escapes are JSON escapes (\u0085,
 *   \u202e, \u007f), so the result is still JSON and parses to the same
 *   value; raw newlines, CR and tabs (JSON white space: a JSON string cannot
 *   hold them raw) are kept, so indented JSON keeps its lines.
 * Without it (a raw string: id, actor, label, key): backslash -> \\,
 *   \n \r \t, other C0 and DEL -> \xHH, dangerous code points -> \uXXXX.
 * In both modes bytes that are not UTF-8 become \xHH, one per byte.
 */
#define CT_ESC_JSON 1u

/*
 * True for the code points shown escaped in every mode: C1 controls
 * U+0080..U+009F, the bidi controls U+061C, U+200E, U+200F, U+202A..U+202E,
 * U+2066..U+2069, and the line/paragraph separators U+2028, U+2029.
 */
bool ct_text_dangerous_cp(unsigned cp);

/*
 * Appends `s` (`len` bytes, may hold NUL) to `b`, escaped for a terminal as
 * `flags` says. Returns 0, or -1 when `b` failed (no memory, over b->max).
 */
int ct_text_escape(ct_buf *b, const char *s, size_t len, unsigned flags);

/*
 * The character at s (n > 0 bytes left): its escape into esc[16] and the
 * escape's length, or 0 when it is shown as it is; *consumed = its bytes.
 * For writers with their own quoting (the consumer's log).
 */
size_t ct_text_escape_char(const char *s, size_t n, unsigned flags, char esc[16], size_t *consumed);

/* True when ct_text_escape() would copy `s` unchanged. */
bool ct_text_is_plain(const char *s, size_t len, unsigned flags);

/*
 * Writes `uri` into out[size] (always NUL-terminated, truncated) with the
 * user information replaced by "***": everything between "://" (or the
 * start) and the LAST '@' of the URI, so a password holding unescaped '@',
 * ':' or '/' never shows; query options naming a password, secret or token
 * replaced by "?***". Percent-escapes are not decoded. Returns out.
 */
const char *ct_redact_uri(const char *uri, char *out, size_t size);

/*
 * Writes `msg` (a message that may quote a URI or a host string: libmongoc's
 * errors and log lines) into out[size] with every "scheme://userinfo@" and
 * every "word@" (the run of characters before an '@' back to a space, quote,
 * bracket, comma, '=' or the start) replaced by "***@". Returns out.
 */
const char *ct_redact_text(const char *msg, char *out, size_t size);

/*
 * Checks the user information of a mongodb:// or mongodb+srv:// URI before
 * a driver parses it (a driver splitting at the first '@' takes the rest of
 * the password for a host name and quotes it in its errors): more than one
 * '@', an '@' after the first '/' (the path or the options) or a user
 * information with more than one ':' or a '%' not followed by two hex
 * digits is CT_ECONFIG, with a message that never quotes the URI ("<what>: the user
 * information holds ..." after `what`, e.g. "[mongodb] uri").
 */
int ct_uri_check_userinfo(const char *uri, const char *what, ct_error *err);

#endif
