/*
 * log.c - key=value log lines (see log.h). One fputs of a whole line keeps
 * lines from different threads (loop, writer, librdkafka callbacks) whole.
 */
#include "log.h"

#include "ct_textsafe.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static ctc_log_level min_level = CTC_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ctc_log_set_level(ctc_log_level level)
{
	min_level = level;
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
	fputs(line, stderr);
}
