/*
 * timearg.c - the time and duration arguments of the CLI: RFC 3339, or a
 * duration before now ("2h", "3d", "2h ago"). Strict: a typo must not turn
 * into "the epoch".
 */
#include "changetrail/event.h"
#include "history_internal.h"

#include <stdint.h>
#include <string.h>

int ct_history_parse_duration(const char *s, int64_t *out_us, ct_error *err)
{
	static const struct {
		char unit;
		int64_t us;
	} units[] = {{'s', INT64_C(1000000)},        {'m', INT64_C(60000000)},
		     {'h', INT64_C(3600000000)},     {'d', INT64_C(86400000000)},
		     {'w', INT64_C(604800000000)}};
	int64_t n = 0;
	size_t i = 0;
	if (!s || !out_us)
		return ct_error_set(err, CT_EINVAL, "duration: NULL argument");
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (i >= 9)
			return ct_error_set(err, CT_EPARSE, "duration '%.40s': number too large", s);
		n = n * 10 + (s[i] - '0');
	}
	if (i == 0 || !s[i] || s[i + 1])
		return ct_error_set(err, CT_EPARSE,
				    "duration '%.40s': expected a number and a unit s, m, h, d or w (e.g. 2h, 30d)", s);
	for (size_t u = 0; u < CT_ARRAY_LEN(units); u++)
		if (s[i] == units[u].unit) {
			if (n == 0)
				return ct_error_set(err, CT_EPARSE, "duration '%.40s' must be positive", s);
			/* 999999999w would not fit in int64 microseconds */
			if (n > INT64_MAX / units[u].us)
				return ct_error_set(err, CT_EPARSE, "duration '%.40s': too large", s);
			*out_us = n * units[u].us;
			return 0;
		}
	return ct_error_set(err, CT_EPARSE, "duration '%.40s': unknown unit '%c' (s, m, h, d or w)", s, s[i]);
}

int ct_history_parse_time(const char *s, int64_t now_us, int64_t *out_us, ct_error *err)
{
	char buf[64];
	int64_t d;
	if (!s || !out_us)
		return ct_error_set(err, CT_EINVAL, "time: NULL argument");
	if (strlen(s) < sizeof(buf) && strchr(s, '-') && ct_time_parse_rfc3339(s, out_us) == 0)
		return 0;
	if (strlen(s) >= sizeof(buf))
		return ct_error_set(err, CT_EPARSE, "time: too long");
	snprintf(buf, sizeof(buf), "%s", s);
	size_t n = strlen(buf);
	if (n > 4 && !strcmp(buf + n - 4, " ago"))
		buf[n - 4] = '\0';
	if (ct_history_parse_duration(buf, &d, NULL) == 0) {
		if (now_us - CT_TIME_MIN_US < d)
			return ct_error_set(err, CT_EPARSE, "time '%.40s' is before year 0", s);
		*out_us = now_us - d;
		return 0;
	}
	return ct_error_set(err, CT_EPARSE,
			    "time '%.40s': expected RFC 3339 (2024-05-01T10:00:00Z) or a duration ago (2h, 3d)", s);
}
