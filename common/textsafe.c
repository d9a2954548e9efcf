/*
 * textsafe.c - escaping of text shown to people (see ct_textsafe.h) and
 * redaction of MongoDB URI passwords in what is printed or logged.
 */
#include "ct_internal.h"
#include "ct_textsafe.h"

#include <stdio.h>
#include <string.h>

bool ct_text_dangerous_cp(unsigned cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF) with its code point, or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n, unsigned *cp)
{
	unsigned c = p[0];
	size_t len;
	unsigned min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
		c &= 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

size_t ct_text_escape_char(const char *s, size_t n, unsigned flags, char esc[16], size_t *consumed)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp;
	bool json = flags & CT_ESC_JSON;
	size_t len = utf8_seq(p, n, &cp);
	if (!len) {
		*consumed = 1;
		return (size_t)snprintf(esc, 16, "\\x%02x", p[0]);
	}
	*consumed = len;
	if (cp < 0x20 || cp == 0x7f) {
		if (cp == '\n' || cp == '\r' || cp == '\t') {
			if (json)
				return 0;
			esc[0] = '\\';
			esc[1] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
			return 2;
		}
		return (size_t)snprintf(esc, 16, json ? "\\u%04x" : "\\x%02x", cp);
	}
	if (cp == '\\' && !json) {
		esc[0] = esc[1] = '\\';
		return 2;
	}
	if (ct_text_dangerous_cp(cp))
		return (size_t)snprintf(esc, 16, "\\u%04x", cp);
	return 0;
}

bool ct_text_is_plain(const char *s, size_t len, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[16];
	for (size_t i = 0; i < len;) {
		size_t used;
		/* printable ASCII but the backslash: the common case, byte by byte */
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			i++;
			continue;
		}
		if (ct_text_escape_char(s + i, len - i, flags, esc, &used))
			return false;
		i += used;
	}
	return true;
}

int ct_text_escape(ct_buf *b, const char *s, size_t len, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* start of the bytes copied as they are */
	char esc[16];
	for (size_t i = 0; i < len;) {
		size_t used, n;
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			i++;
			continue;
		}
		n = ct_text_escape_char(s + i, len - i, flags, esc, &used);
		if (n) {
			if (ct_buf_put(b, s + run, i - run) || ct_buf_put(b, esc, n))
				return -1;
			run = i + used;
		}
		i += used;
	}
	if (ct_buf_put(b, s + run, len - run))
		return -1;
	return 0;
}

/* ---- redaction ---- */

/* Bounded appends into out[size]. */
typedef struct sink {
	char *out;
	size_t size, len;
} sink;

static void put(sink *k, const char *p, size_t n)
{
	if (k->len + 1 >= k->size)
		return;
	if (n > k->size - 1 - k->len)
		n = k->size - 1 - k->len;
	memcpy(k->out + k->len, p, n);
	k->len += n;
	k->out[k->len] = '\0';
}

static bool ci_contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return false;
}

const char *ct_redact_uri(const char *uri, char *out, size_t size)
{
	sink k = {out, size, 0};
	if (!size)
		return out;
	out[0] = '\0';
	if (!uri)
		return out;
	const char *scheme = strstr(uri, "://");
	const char *start = scheme ? scheme + 3 : uri;
	/* The last '@' anywhere: a password may hold unescaped '@', '/', '?'
	 * or ':' and a driver would cut it at any of them. An '@' in the
	 * options (appname=a@b) hides the hosts too, which is the safe side. */
	const char *at = strrchr(start, '@');
	size_t hosts; /* where the hosts begin in out */
	if (!at) {
		put(&k, uri, (size_t)(start - uri));
		hosts = k.len;
		put(&k, start, strlen(start));
	} else {
		put(&k, uri, (size_t)(start - uri));
		put(&k, "***", 3);
		hosts = k.len;
		put(&k, at, strlen(at));
	}
	/* query options may carry secrets too (e.g. authMechanismProperties) */
	char *q = strchr(out + hosts, '?');
	if (q && (ci_contains(q, "password") || ci_contains(q, "secret") || ci_contains(q, "token")))
		snprintf(q, size - (size_t)(q - out), "?***");
	return out;
}

/* The characters that end a "word" before an '@' in a message. */
static bool word_stop(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\'' || c == '"' || c == '`' || c == '[' ||
	       c == '(' || c == '<' || c == ',' || c == '=' || c == ';';
}

const char *ct_redact_text(const char *msg, char *out, size_t size)
{
	sink k = {out, size, 0};
	if (!size)
		return out;
	out[0] = '\0';
	if (!msg)
		return out;
	const char *p = msg, *copied = msg;
	while (*p) {
		const char *scheme = strstr(p, "://");
		const char *at = strchr(p, '@');
		if (scheme && (!at || scheme < at)) {
			/* a URI: its user information is up to the last '@' of the token */
			const char *start = scheme + 3, *end = start + strcspn(start, " \t\r\n");
			const char *last = NULL;
			for (const char *q = start; q < end; q++)
				if (*q == '@')
					last = q;
			if (last) {
				put(&k, copied, (size_t)(start - copied));
				put(&k, "***", 3);
				copied = last;
			}
			p = last ? last + 1 : start;
			continue;
		}
		if (!at)
			break;
		/* "word@": back to the start of the word, never before what is copied */
		const char *w = at;
		while (w > copied && !word_stop(w[-1]))
			w--;
		if (w < at) {
			put(&k, copied, (size_t)(w - copied));
			put(&k, "***", 3);
			copied = at;
		}
		p = at + 1;
	}
	put(&k, copied, strlen(copied));
	return out;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int ct_uri_check_userinfo(const char *uri, const char *what, ct_error *err)
{
	const char *scheme = uri ? strstr(uri, "://") : NULL;
	if (!scheme)
		return 0; /* not a URI of ours: the driver refuses it without quoting it */
	const char *start = scheme + 3;
	/* the hosts end at the first '/' (a driver's rule too); without one, at '?' */
	size_t auth_len = strcspn(start, "/");
	if (!start[auth_len])
		auth_len = strcspn(start, "?");
	const char *auth_end = start + auth_len, *at = NULL;
	int nat = 0;
	for (const char *p = start; p < auth_end; p++)
		if (*p == '@') {
			at = p;
			nat++;
		}
	if (nat > 1)
		return ct_error_set(err, CT_ECONFIG,
				    "%s: the user information holds an unescaped '@' "
				    "(percent-encode it as %%40)", what);
	/* an '@' after the hosts: a password cut at an unescaped '/' (or '?') */
	const char *rest = auth_end;
	const char *query = strchr(rest, '?');
	const char *path_end = query ? query : rest + strlen(rest);
	if (memchr(rest, '@', (size_t)(path_end - rest)))
		goto cut;
	if (query) {
		/* options are key=value; an '@' in a key is a password's tail */
		for (const char *o = query + 1; *o;) {
			size_t n = strcspn(o, "&;");
			const char *eq = memchr(o, '=', n), *a = memchr(o, '@', n);
			if (a && (!eq || a < eq))
				goto cut;
			o += n + (o[n] ? 1 : 0);
		}
	}
	if (at) {
		int ncolon = 0;
		for (const char *p = start; p < at; p++) {
			if (*p == ':')
				ncolon++;
			else if (*p == '%' && !(is_hex(p[1]) && is_hex(p[2]) && p + 2 < at))
				return ct_error_set(err, CT_ECONFIG,
						    "%s: the user information holds a '%%' that is not "
						    "a percent-escape (percent-encode it as %%25)", what);
		}
		if (ncolon > 1)
			return ct_error_set(err, CT_ECONFIG,
					    "%s: the user information holds an unescaped ':' "
					    "(percent-encode it as %%3A)", what);
	}
	return 0;
cut:
	return ct_error_set(err, CT_ECONFIG,
			    "%s: an '@' after the hosts: a password holding an unescaped '/', '?' or '@' "
			    "(percent-encode them as %%2F, %%3F, %%40)", what);
}
