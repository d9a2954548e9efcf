/*
 * timefmt.c - RFC 3339 timestamps <-> microseconds since the Unix epoch
 * (see changetrail/event.h). Pure arithmetic on the proleptic Gregorian
 * calendar: gmtime/timegm would drag in TZ state and a time_t range that
 * differs between platforms.
 */
#include "changetrail/event.h"
#include "ct_internal.h"

#include <string.h>

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)

/* Days from 1970-01-01 to y-m-d (H. Hinnant's days_from_civil, exact for
 * all years; floor divisions keep it right before 0000). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static void put_digits(char *p, int64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

int ct_time_format_rfc3339_us(int64_t us, char out[32])
{
	if (!out || us < CT_TIME_MIN_US || us > CT_TIME_MAX_US)
		return CT_EINVAL;
	/* Floor division: -1 µs is 1969-12-31T23:59:59.999999Z, not 1970-... */
	int64_t days = us / US_PER_DAY, rem = us % US_PER_DAY;
	if (rem < 0) {
		rem += US_PER_DAY;
		days--;
	}
	int64_t y;
	int m, d;
	civil_from_days(days, &y, &m, &d);
	int64_t secs = rem / US_PER_SEC, frac = rem % US_PER_SEC;
	/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" */
	memcpy(out, "0000-00-00T00:00:00.000000Z", 28);
	put_digits(out, y, 4);
	put_digits(out + 5, m, 2);
	put_digits(out + 8, d, 2);
	put_digits(out + 11, secs / 3600, 2);
	put_digits(out + 14, secs / 60 % 60, 2);
	put_digits(out + 17, secs % 60, 2);
	put_digits(out + 20, frac, 6);
	return CT_OK;
}

/* Reads exactly n digits at *p (advancing it); -1 if any is not a digit. */
static int64_t take_digits(const char **p, int n)
{
	int64_t v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	return v;
}

int ct_time_parse_rfc3339(const char *s, int64_t *us_out)
{
	if (!s || !us_out)
		return CT_EINVAL;
	const char *p = s;
	/* take_digits stops at the first non-digit, NUL included, so it never
	 * reads past the end of s. */
	int64_t y = take_digits(&p, 4);
	if (y < 0 || *p++ != '-')
		return CT_EPARSE;
	int64_t mo = take_digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return CT_EPARSE;
	int64_t d = take_digits(&p, 2);
	if (d < 1 || d > days_in_month(y, (int)mo))
		return CT_EPARSE;
	if (*p != 'T' && *p != 't')
		return CT_EPARSE;
	p++;
	int64_t h = take_digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return CT_EPARSE;
	int64_t mi = take_digits(&p, 2);
	if (mi < 0 || mi > 59 || *p++ != ':')
		return CT_EPARSE;
	int64_t sec = take_digits(&p, 2);
	if (sec < 0 || sec > 59) /* no leap seconds: µs since epoch cannot hold them */
		return CT_EPARSE;
	int64_t frac = 0;
	if (*p == '.') {
		int n = 0;
		p++;
		while (*p >= '0' && *p <= '9') {
			if (n >= 9)
				return CT_EPARSE;
			if (n < 6)
				frac = frac * 10 + (*p - '0');
			n++;
			p++;
		}
		if (n == 0)
			return CT_EPARSE;
		for (; n < 6; n++)
			frac *= 10;
	}
	int64_t offset_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		int64_t oh = take_digits(&p, 2);
		if (oh < 0 || oh > 23 || *p++ != ':')
			return CT_EPARSE;
		int64_t om = take_digits(&p, 2);
		if (om < 0 || om > 59)
			return CT_EPARSE;
		offset_min = sign * (oh * 60 + om);
	} else {
		return CT_EPARSE;
	}
	if (*p != '\0')
		return CT_EPARSE;
	/* Every term is bounded (year <= 9999), so no overflow is possible. */
	int64_t days = days_from_civil(y, (int)mo, (int)d);
	int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
	int64_t us = secs * US_PER_SEC + frac;
	/* an offset can move year 0000 or 9999 out of the range that has a canonical form */
	if (us < CT_TIME_MIN_US || us > CT_TIME_MAX_US)
		return CT_EPARSE;
	*us_out = us;
	return CT_OK;
}
