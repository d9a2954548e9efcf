/*
 * bench_latency.c - emit-to-readable latency of the whole path (issue #18):
 * ct_emit() (libchangetrail, its default settings) -> the local Kafka ->
 * changetrail-consumer (a child process, its default settings) -> the local
 * MongoDB server, at a fixed rate. tests/bench/latency.sh builds it, starts
 * the servers and runs it; docs/performance.md has the figures.
 *
 * What is measured, in one run:
 *   e2e    from the event's emit time (its `ts`, stamped by ct_emit(), kept
 *          in the history record as `ts_us`) to the first moment a reader
 *          polling MongoDB can see the record. A poller thread asks the
 *          history collection for its document count every poll_us (a count
 *          is O(1) on the server and the run's database is its own); when it
 *          grew to c, it reads the record of the c-th emitted event by its
 *          `_id` (the event id ct_emit() returned) and only if it is there
 *          takes events 0..c-1 as readable at that moment. That holds because
 *          the topic has one partition and the consumer writes its batches one
 *          after the other, in offset order (so the c records are the first c
 *          events); the run checks that order at the end (kafka.offset of each
 *          record against its event id) and fails when it does not hold. The
 *          figure is an upper bound, late by at most the poll period plus one
 *          count round trip.
 *   floor  the broker's own produce-to-consume time in the same run: a plain
 *          librdkafka consumer (no group, librdkafka's default fetch settings)
 *          reads the same topic; receipt time minus the message's `ts`.
 * Both use the wall clock of this machine (the producer's `ts` and ours).
 * Before the measured events, `warmup` events at the same rate are sent and
 * left out (group join, index creation, the first connections), and the run
 * waits for the daemon's first commit (its first state write, which makes the
 * `state` collection, is slow once).
 *
 * usage: bench_latency [events] [doc_bytes] [rate_per_s] [warmup]
 *        (defaults 5000 1024 1000 200); needs CT_KAFKA_BOOTSTRAP,
 *        CT_MONGODB_URI and CT_BINARY_DIR (its consumer/changetrail-consumer
 *        is run). CT_LATENCY_CONSUMER_EXTRA: more [consumer] lines for the
 *        daemon's config ("\n" between them), CT_LATENCY_KAFKA_EXTRA: more
 *        [kafka] lines, CT_LATENCY_PRODUCER_KAFKA: librdkafka settings of the
 *        producer ("linger.ms=5,socket.nagle.disable=true"),
 *        CT_LATENCY_POLL_US: the poll period (default 1000),
 *        CT_LATENCY_LOG_LEVEL: the daemon's (default info; above info the
 *        run waits 10 s for the group and 3 s for the first state write
 *        instead of their log lines),
 *        CT_LATENCY_KEEP_LOG=1: keep the daemon's log, CT_LATENCY_KEEP_DB=1:
 *        keep the run's database, CT_LATENCY_DUMP=file: every event's
 *        "index emit_us e2e_us floor_us" to that file.
 * Prints one key=value line with every figure, then last
 *   latency p50_ms=.. p99_ms=.. floor_p99_ms=..
 */
#include "testutil.h"

#include "changetrail/producer.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static char topic[128], db[128], group[160], cfg_path[256], log_path[256];

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static pid_t daemon_pid; /* the consumer we started, stopped on every exit */

static void die(const char *what)
{
	fprintf(stderr, "bench_latency: %s\n", what);
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
	}
	exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted v[0..n), nearest rank. */
static double quantile_ms(const int64_t *v, size_t n, double q)
{
	if (!n)
		return -1;
	size_t k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

static void create_topic(void)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk)
		die(errstr);
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, 1, errstr, sizeof(errstr));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	if (!ev)
		die("create topic: no answer");
	size_t n;
	const rd_kafka_topic_result_t **tr =
		rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
	if (n != 1 || rd_kafka_topic_result_error(tr[0]))
		die("create topic failed");
	rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

/* ---- the daemon ---- */

static void put_lines(FILE *f, const char *env)
{
	const char *x = getenv(env);
	if (!x)
		return;
	for (const char *p = x; *p; p++) {
		if (p[0] == '\\' && p[1] == 'n') {
			fputc('\n', f);
			p++;
		} else {
			fputc(*p, f);
		}
	}
	fputc('\n', f);
}

static pid_t start_daemon(void)
{
	char bin[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	FILE *f = fopen(cfg_path, "w");
	if (!f)
		die("cannot write the daemon's config");
	fprintf(f, "[kafka]\nbootstrap.servers = %s\n", bootstrap);
	put_lines(f, "CT_LATENCY_KAFKA_EXTRA");
	fprintf(f, "[mongodb]\nuri = %s\ndatabase = %s\n[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = %s\n",
		mongo_uri, db, topic, topic, group);
	put_lines(f, "CT_LATENCY_CONSUMER_EXTRA");
	fprintf(f, "[http]\nlisten =\n");
	fclose(f);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		const char *lvl = getenv("CT_LATENCY_LOG_LEVEL");
		setenv("CHANGETRAIL_CONSUMER_LOG_LEVEL", lvl && *lvl ? lvl : "info", 1);
		if (!freopen(log_path, "w", stderr) || !freopen("/dev/null", "w", stdout))
			_exit(126);
		execl(bin, bin, "--config", cfg_path, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* true when the daemon logs at info or debug (its start-up and commit lines). */
static bool daemon_logs_info(void)
{
	const char *lvl = getenv("CT_LATENCY_LOG_LEVEL");
	return !lvl || !*lvl || !strcmp(lvl, "info") || !strcmp(lvl, "debug");
}

/* Waits until the daemon's log says it owns the partition (without that line: 10 s). */
static void wait_assigned(pid_t pid)
{
	if (!daemon_logs_info()) {
		sleep(10);
		return;
	}
	for (int i = 0; i < 600; i++) {
		char *text = ct_test_read_file(log_path, NULL);
		bool ok = text && strstr(text, "partitions assigned");
		free(text);
		if (ok)
			return;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			die("the consumer exited during start-up (see its log)");
		usleep(100000);
	}
	die("the consumer was not assigned the partition within 60 s");
}

/* utime + stime of process `pid` (all its threads), in clock ticks; -1 when unknown. */
static long long proc_cpu_ticks(pid_t pid)
{
	char path[64], line[1024];
	unsigned long ut, st;
	long long rc = -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f)) {
		const char *r = strrchr(line, ')');
		if (r && sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
			rc = (long long)(ut + st);
	}
	fclose(f);
	return rc;
}

/* true once the daemon's log shows a commit (its first state write is behind it). */
static bool daemon_committed(void)
{
	char *text = ct_test_read_file(log_path, NULL);
	bool ok = text && strstr(text, "committed=yes");
	free(text);
	return ok;
}

/* ---- state shared by the threads ---- */

static int total;             /* warmup + events */
static char (*ids)[37];       /* event ids in emit order */
static atomic_int emitted;    /* ids[0..emitted) are set */
static int64_t *seen_us;      /* when the poller first saw event k readable */
static atomic_int seen;       /* events 0..seen are readable */
static int64_t *floor_us;     /* broker: receipt - emit, by offset */
static atomic_int floor_n;
static atomic_int stop_threads;
static atomic_llong polls;

/* ---- the floor: a plain consumer of the same topic ---- */

static int64_t ts_of(const char *v, size_t len)
{
	static const char key[] = "\"ts\":\"";
	char buf[40];
	const char *p = NULL;
	int64_t us;
	for (size_t i = 0; !p && i + sizeof(key) - 1 <= len; i++)
		if (!memcmp(v + i, key, sizeof(key) - 1))
			p = v + i;
	if (!p)
		return -1;
	p += sizeof(key) - 1;
	const char *e = memchr(p, '"', len - (size_t)(p - v));
	if (!e || (size_t)(e - p) >= sizeof(buf))
		return -1;
	memcpy(buf, p, (size_t)(e - p));
	buf[e - p] = '\0';
	return ct_time_parse_rfc3339(buf, &us) ? -1 : us;
}

static atomic_int floor_ready;

static void *floor_main(void *arg)
{
	(void)arg;
	char errstr[512], gid[200];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	snprintf(gid, sizeof(gid), "%s-floor", group);
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "group.id", gid, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk)
		die(errstr);
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	atomic_store(&floor_ready, 1);
	while (!atomic_load(&stop_threads)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		int64_t now = wall_us();
		if (!m->err && m->offset >= 0 && m->offset < total) {
			int64_t ts = ts_of(m->payload, m->len);
			if (ts > 0)
				floor_us[m->offset] = now - ts;
			atomic_fetch_add(&floor_n, 1);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return NULL;
}

/* ---- the reader: polls MongoDB ---- */

static int poll_us = 1000;

static void *poll_main(void *arg)
{
	(void)arg;
	bson_error_t e;
	mongoc_client_t *c = mongoc_client_new(mongo_uri);
	if (!c)
		die("bad CT_MONGODB_URI");
	mongoc_collection_t *h = mongoc_client_get_collection(c, db, "history");
	while (!atomic_load(&stop_threads) && atomic_load(&seen) < total) {
		int64_t n = mongoc_collection_estimated_document_count(h, NULL, NULL, NULL, &e);
		atomic_fetch_add(&polls, 1);
		int have = atomic_load(&seen);
		if (n > have && n <= atomic_load(&emitted)) {
			/* the last of them must be there: a count is no proof of which records */
			bson_t *q = BCON_NEW("_id", BCON_UTF8(ids[n - 1]));
			bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(1));
			mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h, q, opts, NULL);
			const bson_t *doc;
			bool found = mongoc_cursor_next(cur, &doc);
			mongoc_cursor_destroy(cur);
			bson_destroy(q);
			bson_destroy(opts);
			if (found) {
				int64_t now = wall_us();
				for (int k = have; k < n; k++)
					seen_us[k] = now;
				atomic_store(&seen, (int)n);
			}
		}
		usleep((useconds_t)poll_us);
	}
	mongoc_collection_destroy(h);
	mongoc_client_destroy(c);
	return NULL;
}

/* ---- the application: emits at a fixed rate ---- */

static void emit_range(ct_producer *p, int from, int to, int rate, int docs, const char *pad)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *doc = malloc(strlen(pad) + 256);
	for (int i = from; i < to; i++) {
		int64_t due_ns = (int64_t)(i - from) * 1000000000LL / rate;
		struct timespec due = {t0.tv_sec + (time_t)((t0.tv_nsec + due_ns) / 1000000000LL),
				       (long)((t0.tv_nsec + due_ns) % 1000000000LL)};
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
		int d = i % docs, v = i / docs;
		char id[32];
		ct_error err;
		snprintf(id, sizeof(id), "d%d", d);
		sprintf(doc, "{\"sku\":\"S-%d\",\"qty\":%d,\"price\":{\"amount\":%d.5,\"currency\":\"EUR\"},"
			     "\"tags\":[\"a\",\"b\"],\"notes\":\"%s\"}", d, v, v, pad);
		ct_change ch = {.op = v ? CT_OP_UPDATE : CT_OP_INSERT, .collection = "items", .document_id = id,
				.after_json = doc, .actor = "bench"};
		if (ct_emit(p, &ch, ids[i], &err)) {
			fprintf(stderr, "bench_latency: emit %d: %s\n", i, err.message);
			die("emit failed");
		}
		atomic_store(&emitted, i + 1);
	}
	free(doc);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 5000, doc_bytes = argc > 2 ? atoi(argv[2]) : 1024;
	int rate = argc > 3 ? atoi(argv[3]) : 1000, warmup = argc > 4 ? atoi(argv[4]) : 200;
	if (n < 10 || n > 10000000 || doc_bytes < 200 || doc_bytes > 1000000 || rate < 1 || rate > 1000000 ||
	    warmup < 1 || warmup > 100000) {
		fprintf(stderr, "usage: bench_latency [events 10..] [doc_bytes 200..] [rate_per_s] [warmup >= 1]\n");
		return 2;
	}
	if (getenv("CT_LATENCY_POLL_US"))
		poll_us = atoi(getenv("CT_LATENCY_POLL_US"));
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ct_test_unique_name(topic, sizeof(topic), "ctlatency");
	snprintf(db, sizeof(db), "%s", topic);
	for (char *p = db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(group, sizeof(group), "g-%s", topic);
	snprintf(cfg_path, sizeof(cfg_path), "/tmp/%s.ini", topic);
	snprintf(log_path, sizeof(log_path), "/tmp/%s.log", topic);
	total = warmup + n;
	ids = calloc((size_t)total, sizeof(*ids));
	seen_us = calloc((size_t)total, sizeof(*seen_us));
	floor_us = calloc((size_t)total, sizeof(*floor_us));
	if (!ids || !seen_us || !floor_us)
		die("out of memory");
	mongoc_init();
	create_topic();

	/* the application's producer, as an application would have it */
	ct_error err;
	ct_producer *prod = NULL;
	ct_producer_config *pc = ct_producer_config_new();
	char kbs[300];
	snprintf(kbs, sizeof(kbs), "%s", bootstrap);
	if (ct_producer_config_set(pc, "source", "bench", &err) || ct_producer_config_set(pc, "topic", topic, &err) ||
	    ct_producer_config_set(pc, "kafka.bootstrap.servers", kbs, &err))
		die(err.message);
	/* CT_LATENCY_PRODUCER_KAFKA="linger.ms=5,socket.nagle.disable=true": librdkafka settings to try */
	const char *pk = getenv("CT_LATENCY_PRODUCER_KAFKA");
	char *pks = pk ? strdup(pk) : NULL, *save = NULL;
	for (char *kv = pks ? strtok_r(pks, ",", &save) : NULL; kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '='), key[200];
		if (!eq)
			die("CT_LATENCY_PRODUCER_KAFKA: key=value,...");
		*eq = '\0';
		snprintf(key, sizeof(key), "kafka.%s", kv);
		if (ct_producer_config_set(pc, key, eq + 1, &err))
			die(err.message);
	}
	free(pks);
	if (ct_producer_new(pc, &prod, &err))
		die(err.message);
	ct_producer_config_destroy(pc);

	pid_t pid = daemon_pid = start_daemon();
	wait_assigned(pid);
	pthread_t th_floor, th_poll;
	pthread_create(&th_floor, NULL, floor_main, NULL);
	pthread_create(&th_poll, NULL, poll_main, NULL);
	while (!atomic_load(&floor_ready))
		usleep(1000);

	/* ~1 KB documents like the other benchmarks' (side_by_side.py's Filler) */
	size_t base = strlen("{\"sku\":\"S-99999\",\"qty\":99999,\"price\":{\"amount\":99999.5,\"currency\":\"EUR\"},"
			     "\"tags\":[\"a\",\"b\"],\"notes\":\"\"}");
	size_t np = (size_t)doc_bytes > base ? (size_t)doc_bytes - base : 0;
	char *pad = malloc(np + 1);
	for (size_t i = 0; i < np; i++)
		pad[i] = (char)('a' + i % 26);
	pad[np] = '\0';
	int docs = n / 10 > 0 ? n / 10 : 1;

	emit_range(prod, 0, warmup, rate, docs, pad);
	for (int i = 0; i < 300 && atomic_load(&seen) < warmup; i++)
		usleep(100000);
	if (atomic_load(&seen) < warmup)
		die("the warm-up events did not reach MongoDB within 30 s (see the daemon's log)");
	/* and the first state write (it makes the `state` collection and its
	 * indexes, slow once) is behind us: what is measured is the steady state */
	if (!daemon_logs_info())
		sleep(3); /* no commit line in the log: past the first state write by time */
	for (int i = 0; i < 300 && daemon_logs_info() && !daemon_committed(); i++)
		usleep(100000);
	/* the daemon's CPU (utime + stime, ticks) over the measured part */
	long long cpu0 = -1, cpu1 = -1;
	cpu0 = proc_cpu_ticks(pid);
	int64_t t_start = wall_us();
	emit_range(prod, warmup, total, rate, docs, pad);
	int64_t t_emitted = wall_us();
	for (int i = 0; i < 600 && atomic_load(&seen) < total; i++)
		usleep(50000);
	cpu1 = proc_cpu_ticks(pid);
	int64_t t_done = wall_us();
	for (int i = 0; i < 100 && atomic_load(&floor_n) < total; i++)
		usleep(50000);
	atomic_store(&stop_threads, 1);
	pthread_join(th_poll, NULL);
	pthread_join(th_floor, NULL);
	kill(pid, SIGTERM);
	int status;
	waitpid(pid, &status, 0);
	daemon_pid = 0;
	ct_producer_destroy(prod, 10000);
	int got = atomic_load(&seen);

	/* the order the poller relied on: record of offset k is event k */
	mongoc_client_t *c = mongoc_client_new(mongo_uri);
	mongoc_collection_t *h = mongoc_client_get_collection(c, db, "history");
	bson_t empty = BSON_INITIALIZER;
	bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "ts_us", BCON_INT32(1), "kafka", BCON_INT32(1), "}");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h, &empty, opts, NULL);
	const bson_t *doc;
	int64_t *emit_us = calloc((size_t)total, sizeof(*emit_us));
	int records = 0, misordered = 0;
	while (mongoc_cursor_next(cur, &doc)) {
		bson_iter_t it;
		int64_t off = -1, ts = 0;
		const char *id = NULL;
		if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it))
			id = bson_iter_utf8(&it, NULL);
		if (bson_iter_init_find(&it, doc, "ts_us") && BSON_ITER_HOLDS_INT64(&it))
			ts = bson_iter_int64(&it);
		if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "kafka.offset", &it) &&
		    BSON_ITER_HOLDS_NUMBER(&it))
			off = bson_iter_as_int64(&it);
		records++;
		if (off < 0 || off >= total || !id || strcmp(id, ids[off]))
			misordered++;
		else
			emit_us[off] = ts;
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	mongoc_collection_destroy(h);
	if (!getenv("CT_LATENCY_KEEP_DB")) {
		mongoc_database_t *d = mongoc_client_get_database(c, db);
		mongoc_database_drop(d, NULL);
		mongoc_database_destroy(d);
	}
	mongoc_client_destroy(c);

	size_t m = 0, fm = 0;
	int64_t *lat = calloc((size_t)n, sizeof(*lat)), *flat = calloc((size_t)n, sizeof(*flat));
	for (int k = warmup; k < total && k < got; k++)
		if (emit_us[k] > 0)
			lat[m++] = seen_us[k] - emit_us[k];
	for (int k = warmup; k < total; k++)
		if (floor_us[k] > 0)
			flat[fm++] = floor_us[k];
	const char *dump = getenv("CT_LATENCY_DUMP");
	FILE *df = dump ? fopen(dump, "w") : NULL;
	for (int k = warmup; df && k < total && k < got; k++)
		fprintf(df, "%d %lld %lld %lld\n", k, (long long)emit_us[k], (long long)(seen_us[k] - emit_us[k]),
			(long long)floor_us[k]);
	if (df)
		fclose(df);
	qsort(lat, m, sizeof(*lat), cmp_i64);
	qsort(flat, fm, sizeof(*flat), cmp_i64);
	double tick = (double)sysconf(_SC_CLK_TCK);
	double cpu_us = cpu0 >= 0 && cpu1 >= cpu0 ? (double)(cpu1 - cpu0) / tick * 1e6 / n : -1;
	long long np_ = atomic_load(&polls);
	printf("bench=latency events=%d doc_bytes=%d rate_per_s=%d warmup=%d measured=%zu records=%d misordered=%d "
	       "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f floor_p50_ms=%.2f floor_p99_ms=%.2f floor_max_ms=%.2f "
	       "floor_measured=%zu emit_s=%.2f drain_after_emit_ms=%.0f poll_us=%d polls=%lld "
	       "consumer_cpu_us_per_event=%.1f consumer_exit=%d\n",
	       n, doc_bytes, rate, warmup, m, records, misordered, quantile_ms(lat, m, 0.5), quantile_ms(lat, m, 0.9),
	       quantile_ms(lat, m, 0.99), m ? (double)lat[m - 1] / 1000.0 : -1, quantile_ms(flat, fm, 0.5),
	       quantile_ms(flat, fm, 0.99), fm ? (double)flat[fm - 1] / 1000.0 : -1, fm,
	       (double)(t_emitted - t_start) / 1e6, (double)(t_done - t_emitted) / 1000.0, poll_us, np_, cpu_us,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	printf("latency p50_ms=%.2f p99_ms=%.2f floor_p99_ms=%.2f\n", quantile_ms(lat, m, 0.5),
	       quantile_ms(lat, m, 0.99), quantile_ms(flat, fm, 0.99));
	int rc = 0;
	if ((int)m != n || misordered || fm != (size_t)n) {
		fprintf(stderr, "bench_latency: incomplete run: %zu of %d events seen readable, %d records out of order, "
				"%zu of %d seen by the floor consumer; daemon log %s\n",
			m, n, misordered, fm, n, log_path);
		rc = 1;
	}
	if (rc || getenv("CT_LATENCY_KEEP_LOG"))
		fprintf(stderr, "bench_latency: daemon log kept: %s\n", log_path);
	else
		unlink(log_path);
	unlink(cfg_path);
	free(lat);
	free(flat);
	free(emit_us);
	free(pad);
	free(ids);
	free(seen_us);
	free(floor_us);
	mongoc_cleanup();
	return rc;
}
