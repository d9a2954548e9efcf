/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *ct_test_server_env(const char *name)
{
	const char *v = getenv(name);
	if (v && *v)
		return v;
	const char *req = getenv("CT_TEST_REQUIRE_SERVERS");
	if (req && !strcmp(req, "1")) {
		fprintf(stderr, "FAIL: %s is not set but CT_TEST_REQUIRE_SERVERS=1 "
				"(start them with deploy/local/services.sh up)\n", name);
		exit(1);
	}
	fprintf(stderr, "SKIP: %s is not set (deploy/local/services.sh up; "
			"eval \"$(deploy/local/services.sh env)\")\n", name);
	exit(77);
}

void ct_test_unique_name(char *buf, size_t size, const char *prefix)
{
	static unsigned counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, size, "%s-%ld-%lld%06ld-%u", prefix, (long)getpid(),
		 (long long)ts.tv_sec, ts.tv_nsec / 1000, counter++);
}

char *ct_test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)n + 1);
	if (!buf)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	if (len)
		*len = (size_t)n;
out:
	fclose(f);
	return buf;
}

const char *ct_test_source_path(const char *rel)
{
	static char path[4096];
	const char *root = getenv("CT_SOURCE_DIR");
	snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
	return path;
}

int64_t ct_test_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
