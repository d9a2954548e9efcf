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
/*
 * Line format: CTC_LOG_LOGFMT (default) or CTC_LOG_JSON, one JSON object per
 * line with the same keys ({"ts":...,"level":...,"msg":...,...}; bare values
 * that are JSON numbers or true/false stay so, the others are strings). Not
 * thread-safe: set at start.
 */
typedef enum ctc_log_format { CTC_LOG_LOGFMT, CTC_LOG_JSON } ctc_log_format;
void ctc_log_set_format(ctc_log_format format);
/* Parses "logfmt|json"; returns -1 when unknown. */
int ctc_log_format_parse(const char *s);

/*
 * The JSON line (no newline) of one logfmt line as ctc_log() writes it
 * (key=value pairs, values bare or quoted by ctc_log_q()), into out (always
 * NUL-terminated, cut short as a whole pair when it does not fit). Returns out.
 */
const char *ctc_log_logfmt_to_json(const char *line, char *out, size_t size);

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
