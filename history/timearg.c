/*
 * timearg.c - the time and duration arguments of the CLI: RFC 3339, a date
 * (midnight UTC), or a duration before now ("2h", "3d", "1h30m", "2h ago").
 * Strict: a typo must not turn into "the epoch".
 */
#include "changetrail/event.h"
#include "history_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int ct_history_parse_duration(const char *s, int64_t *out_us, ct_error *err)
{
	/* in the order they must come: "1w2d3h4m5s", each unit once */
	static const struct {
		char unit;
		int64_t us;
	} units[] = {{'w', INT64_C(604800000000)}, {'d', INT64_C(86400000000)}, {'h', INT64_C(3600000000)},
		     {'m', INT64_C(60000000)},     {'s', INT64_C(1000000)}};
	int64_t total = 0;
	size_t i = 0, next_unit = 0;
	if (!s || !out_us)
		return ct_error_set(err, CT_EINVAL, "duration: NULL argument");
	do {
		int64_t n = 0;
		size_t digits = 0;
		for (; s[i] >= '0' && s[i] <= '9'; i++, digits++) {
			if (digits >= 9)
				return ct_error_set(err, CT_EPARSE, "duration '%.40s': number too large", s);
			n = n * 10 + (s[i] - '0');
		}
		if (digits == 0 || !s[i])
			return ct_error_set(err, CT_EPARSE,
					    "duration '%.40s': expected numbers with units w, d, h, m or s "
					    "(e.g. 2h, 30d, 1h30m)", s);
		size_t u = next_unit;
		while (u < CT_ARRAY_LEN(units) && units[u].unit != s[i])
			u++;
		if (u == CT_ARRAY_LEN(units)) {
			for (size_t k = 0; k < next_unit; k++)
				if (units[k].unit == s[i])
					return ct_error_set(err, CT_EPARSE,
							    "duration '%.40s': units go from the largest (w d h m s), each once", s);
			return ct_error_set(err, CT_EPARSE, "duration '%.40s': unknown unit '%c' (w, d, h, m or s)", s,
					    s[i]);
		}
		/* 999999999w would not fit in int64 microseconds, nor may the sum */
		if (n > INT64_MAX / units[u].us || total > INT64_MAX - n * units[u].us)
			return ct_error_set(err, CT_EPARSE, "duration '%.40s': too large", s);
		total += n * units[u].us;
		next_unit = u + 1;
		i++;
	} while (s[i]);
	if (total == 0)
		return ct_error_set(err, CT_EPARSE, "duration '%.40s' must be positive", s);
	*out_us = total;
	return 0;
}

/* "YYYY-MM-DD" alone: that day's midnight UTC, as RFC 3339 text in `buf`. */
static bool date_only(const char *s, char *buf, size_t size)
{
	for (int k = 0; k < 10; k++)
		if (k == 4 || k == 7 ? s[k] != '-' : !(s[k] >= '0' && s[k] <= '9'))
			return false;
	if (s[10])
		return false;
	snprintf(buf, size, "%.10sT00:00:00Z", s);
	return true;
}

int ct_history_parse_time(const char *s, int64_t now_us, int64_t *out_us, ct_error *err)
{
	char buf[64];
	int64_t d;
	if (!s || !out_us)
		return ct_error_set(err, CT_EINVAL, "time: NULL argument");
	if (strlen(s) < sizeof(buf) && strchr(s, '-') && ct_time_parse_rfc3339(s, out_us) == 0)
		return 0;
	if (strlen(s) == 10 && date_only(s, buf, sizeof(buf))) {
		if (ct_time_parse_rfc3339(buf, out_us) == 0)
			return 0;
		return ct_error_set(err, CT_EPARSE, "time '%.40s': no such date", s);
	}
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
			    "time '%.40s': expected RFC 3339 (2024-05-01T10:00:00Z), a date (2024-05-01, midnight UTC) "
			    "or a duration ago (2h, 3d, 1h30m)", s);
}
