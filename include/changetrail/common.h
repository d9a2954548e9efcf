/*
 * changetrail/common.h - error codes, error details and version of libchangetrail.
 *
 * Conventions of the whole API (as in libgit2):
 *  - Functions that can fail return an int: 0 (CT_OK) on success, a negative
 *    ct_error_code on failure. Functions that return a pointer return NULL on
 *    failure.
 *  - Functions that can fail for reasons worth explaining take a `ct_error *err`
 *    last. It may be NULL. On failure it is filled with the code and a message
 *    naming what was wrong (the field, the rule, the bound); on success it is
 *    left untouched.
 *  - Library code never calls exit() or abort() and never prints.
 */
#ifndef CHANGETRAIL_COMMON_H
#define CHANGETRAIL_COMMON_H

#include <stddef.h>

#include "changetrail/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CT_BUILDING_LIBRARY)
#define CT_EXTERN __attribute__((visibility("default")))
#else
#define CT_EXTERN
#endif

/** Error codes. Stable: new codes are only ever appended. */
typedef enum ct_error_code {
	CT_OK = 0,
	CT_EINVAL = -1,     /**< invalid argument (a programming error of the caller) */
	CT_ENOMEM = -2,     /**< out of memory */
	CT_ELIMIT = -3,     /**< input over a configured bound (size, depth, count) */
	CT_EPARSE = -4,     /**< input is not well-formed (JSON syntax, UTF-8, duplicate key) */
	CT_ESCHEMA = -5,    /**< well-formed input that breaks the event contract */
	CT_ENOTFOUND = -6,  /**< the thing asked for does not exist */
	CT_EIO = -7,        /**< file or socket I/O failed */
	CT_EKAFKA = -8,     /**< Kafka client error */
	CT_EMONGO = -9,     /**< MongoDB client error */
	CT_EQUEUEFULL = -10,/**< a bounded queue is full */
	CT_ETIMEDOUT = -11, /**< a deadline passed */
	CT_ECONFLICT = -12, /**< state does not match (e.g. a patch does not apply) */
	CT_EINTERNAL = -13, /**< a bug in changetrail */
	CT_ECONFIG = -14,   /**< invalid configuration */
} ct_error_code;

/** Details of a failure. Plain data: callers allocate it (usually on the stack). */
typedef struct ct_error {
	int code;           /**< a ct_error_code */
	char message[512];  /**< NUL-terminated, one line, no secrets */
} ct_error;

/**
 * Static, human-readable name of an error code ("invalid argument", ...).
 * Never returns NULL; unknown codes give "unknown error". Thread-safe.
 */
CT_EXTERN const char *ct_strerror(int code);

/** Resets `err` to CT_OK and an empty message. `err` may be NULL. Thread-safe. */
CT_EXTERN void ct_error_clear(ct_error *err);

/**
 * Version of the library the program runs with, "MAJOR.MINOR.PATCH" (static
 * string); CT_VERSION_STRING (changetrail/version.h) is the version of the
 * headers it was compiled with. Thread-safe.
 */
CT_EXTERN const char *ct_version(void);

#ifdef __cplusplus
}
#endif
#endif /* CHANGETRAIL_COMMON_H */
