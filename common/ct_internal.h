/*
 * ct_internal.h - helpers shared by the library's own files; not installed.
 */
#ifndef CT_INTERNAL_H
#define CT_INTERNAL_H

#include "changetrail/common.h"

#ifndef CT_VERSION_STRING
#define CT_VERSION_STRING "0.0.0"
#endif

/*
 * Fills `err` (if not NULL) with `code` and a printf-style message, and
 * returns `code`, so that failures read `return ct_error_set(err, ...)`.
 */
int ct_error_set(ct_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define CT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* CT_INTERNAL_H */
