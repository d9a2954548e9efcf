/*
 * log.h - the consumer's structured log: one line per event on stderr,
 * "ts=... level=... msg=\"...\" key=value ...". Values that come from outside
 * (event ids, error messages) go through ctc_log_q() so a line stays one line
 * and parseable. Never pass secrets: nothing here redacts.
 */
#ifndef CTC_LOG_H
#define CTC_LOG_H

#include <stddef.h>

typedef enum ctc_log_level { CTC_DEBUG, CTC_INFO, CTC_WARN, CTC_ERROR } ctc_log_level;

/* Lines below `level` are dropped (default CTC_INFO). Not thread-safe: set at start. */
void ctc_log_set_level(ctc_log_level level);
/* Parses "debug|info|warn|error"; returns -1 when unknown. */
int ctc_log_level_parse(const char *s);

/*
 * Writes one line: ts, level, msg (quoted), then `fmt` (printf-style
 * key=value pairs, may be NULL). Thread-safe (one write per line).
 */
void ctc_log(ctc_log_level level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Quotes `s` for a log value: "..." with \" \\ \n \t and \xHH for other
 * control bytes and invalid UTF-8, \uXXXX for C1 and bidi controls and
 * U+2028/9 (ct_text_escape_char()), truncated to fit `out` (size >= 8) at
 * a character boundary. Returns out.
 */
const char *ctc_log_q(const char *s, char *out, size_t size);

#endif
