/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

int ct_test_contains(const void *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	const char *h = hay;
	for (size_t i = 0; n && i + n <= len; i++)
		if (h[i] == needle[0] && !memcmp(h + i, needle, n))
			return 1;
	return 0;
}

/* Partitions of `topic`, waiting for its metadata; NULL when it never shows. */
static rd_kafka_topic_partition_list_t *topic_partitions(rd_kafka_t *rk, const char *topic,
							 int64_t deadline)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_topic_partition_list_t *parts = NULL;
	while (!parts && ct_test_now_us() < deadline) {
		const rd_kafka_metadata_t *md = NULL;
		if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
			parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
			for (int i = 0; i < md->topics[0].partition_cnt; i++)
				rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)
					->offset = RD_KAFKA_OFFSET_BEGINNING;
		}
		if (md)
			rd_kafka_metadata_destroy(md);
		if (!parts)
			usleep(100000);
	}
	rd_kafka_topic_destroy(rkt);
	return parts;
}

size_t ct_test_consume(const char *bootstrap, const char *topic, size_t want, int timeout_ms,
		       ct_test_msg **out)
{
	char errstr[512], group[128];
	size_t n = 0, cap = want ? want : 64;
	ct_test_msg *msgs = calloc(cap, sizeof(*msgs));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* Explicit assignment, no group membership: a reader that needs no
	 * JoinGroup (the mock cluster's coordinator is slow under sanitizers).
	 * group.id is still required by rd_kafka_consumer_poll(). */
	ct_test_unique_name(group, sizeof(group), "ct-test-reader");
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, sizeof(errstr))) {
		fprintf(stderr, "ct_test_consume: %s\n", errstr);
		abort();
	}
	rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!c) {
		fprintf(stderr, "ct_test_consume: %s\n", errstr);
		abort();
	}
	int64_t deadline = ct_test_now_us() + (int64_t)timeout_ms * 1000;
	rd_kafka_topic_partition_list_t *parts = topic_partitions(c, topic, deadline);
	if (parts) {
		rd_kafka_assign(c, parts);
		rd_kafka_topic_partition_list_destroy(parts);
	}
	while (parts && (want == 0 || n < want) && ct_test_now_us() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
		if (!m)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (n == cap) {
			cap *= 2;
			msgs = realloc(msgs, cap * sizeof(*msgs));
		}
		ct_test_msg *t = &msgs[n++];
		memset(t, 0, sizeof(*t));
		t->key = strndup(m->key ? (const char *)m->key : "", m->key_len);
		t->value = malloc(m->len + 1);
		memcpy(t->value, m->payload, m->len);
		t->value[m->len] = '\0';
		t->value_len = m->len;
		t->partition = m->partition;
		t->offset = m->offset;
		rd_kafka_headers_t *hdrs;
		const void *hv;
		size_t hl;
		if (!rd_kafka_message_headers(m, &hdrs)) {
			if (!rd_kafka_header_get_last(hdrs, "ct-schema", &hv, &hl))
				t->schema_header = strndup(hv, hl);
			const char *hn;
			size_t len = 1;
			for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &hn, &hv, &hl); i++)
				len += strlen(hn) + hl + 2;
			t->headers = calloc(1, len);
			for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &hn, &hv, &hl); i++) {
				strcat(t->headers, hn);
				strcat(t->headers, "=");
				strncat(t->headers, hv ? hv : "", hl);
				strcat(t->headers, "\n");
			}
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	*out = msgs;
	return n;
}

void ct_test_msgs_free(ct_test_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(msgs[i].key);
		free(msgs[i].value);
		free(msgs[i].schema_header);
		free(msgs[i].headers);
	}
	free(msgs);
}

char *ct_test_msg_header(const ct_test_msg *m, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = m->headers; p && *p; ) {
		const char *end = strchr(p, '\n');
		if (!end)
			break;
		if (!strncmp(p, name, nl) && p[nl] == '=')
			return strndup(p + nl + 1, (size_t)(end - p - nl - 1));
		p = end + 1;
	}
	return NULL;
}

char *ct_test_http_get(int port, const char *path)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	char req[512];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	if (!buf || n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
		free(buf);
		close(fd);
		return NULL;
	}
	for (ssize_t got; len + 1 < cap && (got = read(fd, buf + len, cap - 1 - len)) > 0;)
		len += (size_t)got;
	buf[len] = '\0';
	close(fd);
	return buf;
}
