/*
 * testutil.h - helpers shared by the tests: server addresses from the
 * environment, unique names, files.
 */
#ifndef CT_TESTUTIL_H
#define CT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/*
 * Returns the value of environment variable `name` (a server address).
 * When it is unset the whole test program exits: 77 (ctest: skipped) for a
 * developer without servers, 1 (failed) when CT_TEST_REQUIRE_SERVERS=1, as in
 * the project's test command and CI, so that a missing server never hides as
 * a pass.
 */
const char *ct_test_server_env(const char *name);

/* Writes "<prefix>-<pid>-<time>-<counter>" into buf: names (topics, groups,
 * databases) that no other run or test uses. */
void ct_test_unique_name(char *buf, size_t size, const char *prefix);

/* Reads a whole file into a NUL-terminated malloc'd buffer (NULL on error). */
char *ct_test_read_file(const char *path, size_t *len);

/* Path of a file under the source tree: $CT_SOURCE_DIR/<rel>. Static buffer. */
const char *ct_test_source_path(const char *rel);

/* Monotonic time in microseconds. */
int64_t ct_test_now_us(void);

/* GET `path` from 127.0.0.1:`port` (HTTP/1.1, Connection: close): the whole
 * response (status line, headers, body; at most 64 KiB), malloc'd and
 * NUL-terminated, or NULL when nothing listens there. */
char *ct_test_http_get(int port, const char *path);

/* true when the NUL-free string `needle` occurs in the `len` bytes at `hay`
 * (which may hold NULs). */
int ct_test_contains(const void *hay, size_t len, const char *needle);



/* ---- Kafka helpers for tests that read what was produced ---- */
#include <librdkafka/rdkafka.h>

typedef struct ct_test_msg {
	char *key;
	char *value;
	size_t value_len;
	int32_t partition;
	int64_t offset;
	char *schema_header; /* value of header "ct-schema" or NULL */
	char *headers;       /* every header as "name=value\n", in order */
} ct_test_msg;

/* Value of header `name` of m (malloc'd copy), or NULL when absent. */
char *ct_test_msg_header(const ct_test_msg *m, const char *name);

/*
 * Reads every partition of `topic` from the beginning (explicit assignment,
 * no consumer group) until `want`
 * messages arrived or `timeout_ms` passed (want = 0: read for the whole
 * timeout). Returns the count; *out receives a malloc'd array.
 */
size_t ct_test_consume(const char *bootstrap, const char *topic, size_t want, int timeout_ms,
		       ct_test_msg **out);
void ct_test_msgs_free(ct_test_msg *msgs, size_t n);
#endif
