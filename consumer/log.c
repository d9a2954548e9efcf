/*
 * log.c - key=value log lines, or the same as JSON objects (see log.h). One
 * fputs of a whole line keeps lines from different threads (loop, writer,
 * librdkafka callbacks) whole.
 */
#include "log.h"

#include "ct_textsafe.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static ctc_log_level min_level = CTC_INFO;
static ctc_log_format line_format = CTC_LOG_LOGFMT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ctc_log_set_level(ctc_log_level level)
{
	min_level = level;
}

void ctc_log_set_format(ctc_log_format format)
{
	line_format = format;
}

int ctc_log_format_parse(const char *s)
{
	return !strcmp(s, "logfmt") ? CTC_LOG_LOGFMT : !strcmp(s, "json") ? CTC_LOG_JSON : -1;
}

/* A bare logfmt value that is a JSON number (or true/false) as it is written. */
static bool json_literal(const char *v, size_t n)
{
	size_t i = 0;
	if ((n == 4 && !memcmp(v, "true", 4)) || (n == 5 && !memcmp(v, "false", 5)))
		return true;
	if (i < n && v[i] == '-')
		i++;
	if (i >= n || !isdigit((unsigned char)v[i]) || (v[i] == '0' && i + 1 < n && isdigit((unsigned char)v[i + 1])))
		return false;
	while (i < n && isdigit((unsigned char)v[i]))
		i++;
	if (i < n && v[i] == '.') {
		if (++i >= n || !isdigit((unsigned char)v[i]))
			return false;
		while (i < n && isdigit((unsigned char)v[i]))
			i++;
	}
	if (i < n && (v[i] == 'e' || v[i] == 'E')) {
		if (++i < n && (v[i] == '+' || v[i] == '-'))
			i++;
		if (i >= n || !isdigit((unsigned char)v[i]))
			return false;
		while (i < n && isdigit((unsigned char)v[i]))
			i++;
	}
	return i == n;
}

/* Appends to out[*o] if it all fits (keeping room for "}" and NUL). */
static bool append(char *out, size_t size, size_t *o, const char *p, size_t n)
{
	if (*o + n + 2 > size)
		return false;
	memcpy(out + *o, p, n);
	*o += n;
	return true;
}

const char *ctc_log_logfmt_to_json(const char *line, char *out, size_t size)
{
	char pair[2200];
	size_t o = 0;
	bool first = true;
	if (size < 3) {
		if (size)
			out[0] = '\0';
		return out;
	}
	out[o++] = '{';
	for (const char *p = line; *p;) {
		while (*p == ' ' || *p == '\n')
			p++;
		const char *key = p;
		while (*p && *p != '=' && *p != ' ' && *p != '\n')
			p++;
		size_t klen = (size_t)(p - key), n = 0;
		if (!klen || *p != '=') { /* not key=value: skip the word */
			while (*p && *p != ' ')
				p++;
			continue;
		}
		p++;
		n += (size_t)snprintf(pair, sizeof(pair), "%s\"", first ? "" : ",");
		for (size_t k = 0; k < klen && n + 8 < sizeof(pair); k++) /* keys are plain words */
			pair[n++] = key[k] == '"' || key[k] == '\\' || (unsigned char)key[k] < 0x20 ? '_' : key[k];
		n += (size_t)snprintf(pair + n, sizeof(pair) - n, "\":");
		if (*p == '"') {
			/* ctc_log_q() form: \" \\ \n \t \uXXXX are JSON already; \xHH becomes \u00HH */
			pair[n++] = '"';
			for (p++; *p && *p != '"' && n + 8 < sizeof(pair); p++) {
				if (*p == '\\' && p[1] == 'x' && isxdigit((unsigned char)p[2]) && isxdigit((unsigned char)p[3])) {
					n += (size_t)snprintf(pair + n, sizeof(pair) - n, "\\u00%c%c", p[2], p[3]);
					p += 3;
				} else if (*p == '\\' && p[1]) {
					pair[n++] = *p++;
					pair[n++] = *p;
				} else {
					pair[n++] = *p;
				}
			}
			while (*p && *p != '"') /* cut short: the rest of the value goes too */
				p += *p == '\\' && p[1] ? 2 : 1;
			if (*p == '"')
				p++;
			pair[n++] = '"';
		} else {
			const char *v = p;
			while (*p && *p != ' ' && *p != '\n')
				p++;
			size_t vlen = (size_t)(p - v);
			bool lit = json_literal(v, vlen);
			if (!lit)
				pair[n++] = '"';
			for (size_t k = 0; k < vlen && n + 8 < sizeof(pair); k++) {
				unsigned char c = (unsigned char)v[k];
				if (c == '"' || c == '\\') {
					pair[n++] = '\\';
					pair[n++] = (char)c;
				} else if (c < 0x20) {
					n += (size_t)snprintf(pair + n, sizeof(pair) - n, "\\u%04x", c);
				} else {
					pair[n++] = (char)c;
				}
			}
			if (!lit)
				pair[n++] = '"';
		}
		if (!append(out, size, &o, pair, n))
			break;
		first = false;
	}
	out[o++] = '}';
	out[o] = '\0';
	return out;
}

int ctc_log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -1;
}

const char *ctc_log_q(const char *s, char *out, size_t size)
{
	size_t o = 0;
	if (size < 8) {
		if (size)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		char tmp[8];
		size_t n;
		if (*p == '"' || *p == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)*p;
			n = 2;
		} else if (*p == '\n') {
			memcpy(tmp, "\\n", 2);
			n = 2;
		} else if (*p == '\t') {
			memcpy(tmp, "\\t", 2);
			n = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
			n = 4;
		} else if (*p >= 0x80) {
			/* C1 and bidi controls, U+2028/9 as \uXXXX, invalid UTF-8 as \xHH */
			char esc[16];
			size_t used, avail = 1;
			while (avail < 4 && p[avail])
				avail++;
			n = ct_text_escape_char((const char *)p, avail, 0, esc, &used);
			if (!n) {
				n = used;
				memcpy(esc, p, n);
			}
			if (o + n + 5 > size) {
				memcpy(out + o, "...", 3);
				o += 3;
				break;
			}
			memcpy(out + o, esc, n);
			o += n;
			p += used - 1;
			continue;
		} else {
			tmp[0] = (char)*p;
			n = 1;
		}
		/* room for this piece, "..." and the closing quote + NUL */
		if (o + n + 5 > size) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

void ctc_log(ctc_log_level level, const char *msg, const char *fmt, ...)
{
	char line[2048], qmsg[256], ts[40];
	struct timespec now;
	struct tm tm;
	int n;

	if (level < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s msg=%s", ts, now.tv_nsec / 1000000,
		     level_names[level], ctc_log_q(msg, qmsg, sizeof(qmsg)));
	if (n < 0)
		return;
	if (fmt && (size_t)n + 1 < sizeof(line)) {
		va_list ap;
		line[n++] = ' ';
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		if (m < 0)
			m = 0;
		n += m;
	}
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	line[n] = '\0';
	if (line_format == CTC_LOG_JSON) {
		char json[4096];
		size_t jl = strlen(ctc_log_logfmt_to_json(line, json, sizeof(json) - 1));
		json[jl++] = '\n';
		json[jl] = '\0';
		fputs(json, stderr);
		return;
	}
	fputs(line, stderr);
}
