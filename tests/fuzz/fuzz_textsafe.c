/*
 * fuzz_textsafe.c - the one escaping of shown text and the URI redaction
 * (common/textsafe.c) on any bytes. Properties: escaped raw text holds no
 * C0, DEL, C1, bidi control or U+2028/9 and is valid UTF-8, and
 * ct_text_is_plain() agrees with it; escaped JSON text (jansson's dump of
 * the input as a string) parses back to the same string; a redacted URI
 * holds nothing of what precedes its last '@' (unless it is also in what
 * follows); a redacted message is NUL-terminated within its buffer; a URI
 * refused by ct_uri_check_userinfo() is not quoted in the message.
 * abort() on any violation.
 */
#include "ct_textsafe.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid UTF-8 with nothing a terminal acts on. */
static void check_inert(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = p[i], cp;
		size_t len;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				abort();
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			abort();
		}
		if (i + len > n)
			abort();
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				abort();
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (ct_text_dangerous_cp(cp))
			abort();
		i += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ct_buf b = CT_BUF_INIT;
	const char *s = (const char *)data;
	if (size > 4096)
		return 0;

	if (ct_text_escape(&b, s, size, 0))
		abort();
	check_inert((const unsigned char *)(b.data ? b.data : ""), b.len);
	if (ct_text_is_plain(s, size, 0) != (b.len == size && (!size || !memcmp(b.data, s, size))))
		abort();
	ct_buf_free(&b);

	/* JSON mode over a JSON string of the (valid UTF-8 part of the) input */
	json_t *str = json_stringn_nocheck(s, size);
	char *text = str && json_string_length(str) && !memchr(s, 0, size) ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
	if (text) {
		json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
		if (v) { /* the input was valid UTF-8 */
			ct_buf j = CT_BUF_INIT;
			if (ct_text_escape(&j, text, strlen(text), CT_ESC_JSON))
				abort();
			check_inert((const unsigned char *)j.data, j.len);
			json_t *back = json_loads(j.data, JSON_DECODE_ANY, NULL);
			if (!back || !json_equal(back, v))
				abort();
			json_decref(back);
			ct_buf_free(&j);
			json_decref(v);
		}
		free(text);
	}
	json_decref(str);

	/* redaction and the user-information check on the input as a NUL-terminated string */
	char *z = malloc(size + 1), out[512], msg[300];
	if (!z)
		return 0;
	memcpy(z, data, size);
	z[size] = '\0';
	ct_redact_uri(z, out, sizeof(out));
	if (strlen(out) >= sizeof(out))
		abort();
	const char *scheme = strstr(z, "://"), *start = scheme ? scheme + 3 : z, *at = strrchr(start, '@');
	if (at && strlen(z) < 400) {
		/* the scheme, "***", then the URI from its last '@' on (its query maybe "?***") */
		size_t pre = (size_t)(start - z);
		if (strncmp(out, z, pre) || strncmp(out + pre, "***", 3))
			abort();
		const char *rest = out + pre + 3, *q = strchr(rest, '?');
		if (strcmp(rest, at) && (!q || strcmp(q, "?***") || strncmp(rest, at, (size_t)(q - rest))))
			abort();
	}
	ct_redact_text(z, msg, sizeof(msg));
	if (strlen(msg) >= sizeof(msg))
		abort();
	ct_error err;
	if (ct_uri_check_userinfo(z, "uri", &err) && size > 8 && strstr(err.message, z))
		abort();
	free(z);
	return 0;
}
