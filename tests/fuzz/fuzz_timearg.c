/*
 * fuzz_timearg.c - the CLI's time and duration arguments
 * (history/timearg.c, common/timefmt.c) on any string: an accepted
 * duration is positive (no overflow: UBSan aborts); an accepted time lies
 * between year 0 and "now", or is an RFC 3339 instant whose formatted form
 * parses back to the same microsecond; a rejected one has a one-line
 * message naming the problem. abort() on any violation.
 */
#include "changetrail/event.h"
#include "changetrail/history.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_US INT64_C(1767225600000000) /* 2026-01-01T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[128], out[32];
	int64_t us, again;
	ct_error err;
	if (size >= sizeof(s) || memchr(data, 0, size))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	int rc = ct_history_parse_duration(s, &us, &err);
	if (rc == CT_OK) {
		if (us <= 0)
			abort();
	} else if (rc != CT_EPARSE || err.code != rc || strchr(err.message, '\n') || !*err.message) {
		abort();
	}

	rc = ct_history_parse_time(s, NOW_US, &us, &err);
	if (rc == CT_OK) {
		if (ct_time_format_rfc3339_us(us, out) != CT_OK)
			abort();
		if (ct_time_parse_rfc3339(out, &again) != CT_OK || again != us)
			abort();
		/* after now only when written as an instant: RFC 3339 or a bare date */
		char day[32];
		snprintf(day, sizeof(day), "%.10sT00:00:00Z", s);
		if (us < CT_TIME_MIN_US || (us > NOW_US && ct_time_parse_rfc3339(s, &again) != CT_OK &&
					    (strlen(s) != 10 || ct_time_parse_rfc3339(day, &again) != CT_OK || again != us)))
			abort();
	} else if (rc != CT_EPARSE || err.code != rc || strchr(err.message, '\n') || !*err.message) {
		abort();
	}
	return 0;
}
