/*
 * bench_producer.c - cost of ct_emit() on the caller's thread and the
 * delivered rate, with a pre-serialised document, idempotent acks=all, to
 * the broker in $CT_KAFKA_BOOTSTRAP (deploy/local/services.sh up).
 *
 * usage: bench_producer [events] [doc_bytes]     (defaults 200000, 1024)
 */
#include "changetrail/producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *bootstrap = getenv("CT_KAFKA_BOOTSTRAP");
	int n = argc > 1 ? atoi(argv[1]) : 200000;
	int size = argc > 2 ? atoi(argv[2]) : 1024;
	ct_error err;
	ct_producer *p = NULL;
	char topic[128], docid[32];

	if (!bootstrap || n <= 0 || size < 64) {
		fprintf(stderr, "usage: CT_KAFKA_BOOTSTRAP=host:port bench_producer [events] [doc_bytes>=64]\n");
		return 2;
	}
	snprintf(topic, sizeof(topic), "ct-bench-producer-%d-%ld", (int)getpid(), (long)time(NULL));
	ct_producer_config *c = ct_producer_config_new();
	if (ct_producer_config_set(c, "source", "bench", &err) ||
	    ct_producer_config_set(c, "topic", topic, &err) ||
	    ct_producer_config_set(c, "kafka.bootstrap.servers", bootstrap, &err) ||
	    ct_producer_config_set(c, "queue.block.ms", "10000", &err) ||
	    ct_producer_new(c, &p, &err)) {
		fprintf(stderr, "bench_producer: %s\n", err.message);
		return 1;
	}
	ct_producer_config_destroy(c);

	/* {"sku":"...","pad":"xxxx..."} of exactly `size` bytes */
	char *doc = malloc((size_t)size + 1);
	int head = snprintf(doc, (size_t)size + 1, "{\"sku\":\"SKU-1\",\"qty\":1,\"pad\":\"");
	memset(doc + head, 'x', (size_t)(size - head - 2));
	memcpy(doc + size - 2, "\"}", 3);

	/* warm up: metadata, connection, producer id */
	ct_emit_insert(p, "products", "warmup", doc, &err);
	ct_producer_flush(p, 30000, &err);

	int64_t *lat = malloc(sizeof(*lat) * (size_t)n);
	int64_t t0 = now_ns();
	for (int i = 0; i < n; i++) {
		snprintf(docid, sizeof(docid), "p%d", i % 1000);
		int64_t a = now_ns();
		if (ct_emit_insert(p, "products", docid, doc, &err)) {
			fprintf(stderr, "bench_producer: emit %d: %s\n", i, err.message);
			return 1;
		}
		lat[i] = now_ns() - a;
	}
	int64_t t_emit = now_ns() - t0;
	if (ct_producer_flush(p, 300000, &err)) {
		fprintf(stderr, "bench_producer: %s\n", err.message);
		return 1;
	}
	int64_t t_all = now_ns() - t0;
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
	printf("bench_producer: events=%d doc_bytes=%d acks=all idempotent=true "
	       "emit_p50_us=%.2f emit_p99_us=%.2f emit_max_us=%.1f emit_rate_per_s=%.0f "
	       "delivered=%llu delivered_per_s=%.0f failed=%llu\n",
	       n, size, lat[n / 2] / 1e3, lat[(size_t)(n * 0.99)] / 1e3, lat[n - 1] / 1e3,
	       n / (t_emit / 1e9), (unsigned long long)st.delivered - 1, n / (t_all / 1e9),
	       (unsigned long long)st.failed);
	free(lat);
	free(doc);
	return ct_producer_destroy(p, 10000) ? 1 : 0;
}
