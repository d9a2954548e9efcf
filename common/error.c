/*
 * error.c - error codes to text, and the internal helper that fills a ct_error.
 */
#include "ct_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ct_strerror(int code)
{
	switch (code) {
	case CT_OK: return "success";
	case CT_EINVAL: return "invalid argument";
	case CT_ENOMEM: return "out of memory";
	case CT_ELIMIT: return "limit exceeded";
	case CT_EPARSE: return "malformed input";
	case CT_ESCHEMA: return "schema violation";
	case CT_ENOTFOUND: return "not found";
	case CT_EIO: return "I/O error";
	case CT_EKAFKA: return "Kafka error";
	case CT_EMONGO: return "MongoDB error";
	case CT_EQUEUEFULL: return "queue full";
	case CT_ETIMEDOUT: return "timed out";
	case CT_ECONFLICT: return "conflict";
	case CT_EINTERNAL: return "internal error";
	case CT_ECONFIG: return "invalid configuration";
	default: return "unknown error";
	}
}

void ct_error_clear(ct_error *err)
{
	if (!err)
		return;
	err->code = CT_OK;
	err->message[0] = '\0';
}

int ct_error_set(ct_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
		/* one line, whatever the caller's input quoted in it holds */
		for (char *c = err->message; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
	}
	return code;
}

const char *ct_version(void)
{
	return CT_VERSION_STRING;
}
