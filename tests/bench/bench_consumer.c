/*
 * bench_consumer.c - changetrail-consumer throughput on the real local Kafka
 * and FerretDB. Fills a topic with N update events (documents of ~1 KB or
 * ~4 KB), then reports key=value figures:
 *   cpu_us_per_event   consumer process CPU (user+sys, all threads) with
 *                      --no-write: parse, diff, records, no MongoDB
 *   e2e_events_per_s   events persisted per second into FerretDB (first
 *                      message to last commit, from the daemon's own log;
 *                      includes the idle second before it stops and its
 *                      last state write, see state_flush_ms)
 *   e2e_history_events_per_s  first message to the last history write
 *   e2e_work_events_per_s     the same plus the final state write (the
 *                      idle wait left out): what a continuous stream gets
 *   calib_events_per_s FerretDB's own insert rate for the same history
 *                      records at the same batch size (read back, inserted
 *                      into another database with an unordered bulk)
 *   calib_indexed_events_per_s  the same into a collection with the
 *                      indexes the consumer keeps on `history` (and the
 *                      *_over_calib_indexed ratios against it)
 *   peak_rss_mb        the daemon's peak resident set (nowrite_: of the
 *                      --no-write run)
 *   history_ms, contexts_ms, state_ms: MongoDB time by collection (summed)
 * usage: bench_consumer [N] [doc_bytes] [state_flush_ms] [events_per_context]
 *        (defaults 20000 1024, the daemon's, 0 = no contexts; with k > 0
 *        every k consecutive events share a context, like a request's)
 * CT_BENCH_KEEP_LOGS=1 keeps the daemon's logs (their paths go to stderr).
 * Targets: cpu_us_per_event <= 50 at 1 KB; e2e >= 80% of calibration.
 */
#include "testutil.h"

#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static int state_flush_ms = -1; /* -1: the daemon's default */
static int per_context;          /* 0: events without context */

/* The event's "context" member (with its comma), or "" without contexts. */
static const char *context_json(int i)
{
	static char buf[160];
	if (per_context <= 0)
		return "";
	snprintf(buf, sizeof(buf), "\"context\":{\"id\":\"0190c6a4-0000-7000-8000-%012x\",\"metadata\":{\"url\":\"/items/%d\"}},",
		 (unsigned)(i / per_context), i / per_context);
	return buf;
}

static void produce(const char *topic, int n, int doc_bytes)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	char *pad = malloc((size_t)doc_bytes + 1), *buf = malloc((size_t)doc_bytes + 1024);
	int docs = n / 10 > 0 ? n / 10 : 1;
	for (int i = 0; i < doc_bytes; i++)
		pad[i] = (char)('a' + i % 26);
	pad[doc_bytes > 200 ? doc_bytes - 200 : 0] = '\0';
	for (int i = 0; i < n; i++) {
		char key[64];
		int d = i % docs, v = i / docs;
		snprintf(key, sizeof(key), "items/d%d", d);
		int len = snprintf(buf, (size_t)doc_bytes + 1024,
				   "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"0190c6a4-%04x-7%03x-8%03x-%012x\","
				   "\"ts\":\"2024-05-01T10:00:00.%06dZ\",\"source\":\"bench\",\"collection\":\"items\","
				   "\"document_id\":\"d%d\",\"op\":\"%s\",\"actor\":\"bench\",%s\"after\":{\"sku\":\"S-%d\","
				   "\"qty\":%d,\"price\":{\"amount\":%d.5,\"currency\":\"EUR\"},\"tags\":[\"a\",\"b\"],"
				   "\"notes\":\"%s\"}}",
				   (unsigned)(getpid() & 0xffff), (unsigned)((i >> 12) & 0xfff), (unsigned)(i & 0xfff),
				   (unsigned)i, i % 1000000, d, v ? "update" : "insert", context_json(i), d, v, v, pad);
		while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
					 RD_KAFKA_V_VALUE(buf, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
	}
	rd_kafka_flush(rk, 60000);
	rd_kafka_destroy(rk);
	free(pad);
	free(buf);
}

/* MongoDB milliseconds by collection, summed over the daemon's batch log lines. */
static double phase_ms[3];

static void sum_phases(const char *text)
{
	static const char *const names[3] = {"history_ms=", "contexts_ms=", "state_ms="};
	for (int k = 0; k < 3; k++) {
		phase_ms[k] = 0;
		for (const char *q = text ? strstr(text, names[k]) : NULL; q; q = strstr(q + 1, names[k]))
			phase_ms[k] += atof(q + strlen(names[k]));
	}
}

/* From the daemon's stop line; final_flush_ms: MongoDB time of a state
 * write logged after the last batch (the one at the stop). */
static double history_active_ms, final_flush_ms;

static void final_figures(const char *text)
{
	history_active_ms = final_flush_ms = 0;
	const char *h = text ? strstr(text, "history_active_ms=") : NULL;
	if (h)
		history_active_ms = atof(h + 18);
	const char *last_batch = NULL, *last_states = NULL;
	for (const char *q = text ? strstr(text, "msg=\"batch written\"") : NULL; q; q = strstr(q + 1, "msg=\"batch written\""))
		last_batch = q;
	for (const char *q = text ? strstr(text, "msg=\"states written\"") : NULL; q; q = strstr(q + 1, "msg=\"states written\""))
		last_states = q;
	if (last_states && (!last_batch || last_states > last_batch)) {
		const char *c = strstr(last_states, "contexts_ms="), *st = strstr(last_states, "state_ms=");
		final_flush_ms = (c ? atof(c + 12) : 0) + (st ? atof(st + 9) : 0);
	}
}

/* The last daemon's peak resident set (MB). */
static double peak_rss_mb;

/* Runs the daemon until idle; returns CPU µs (user+sys) and the active_ms it logged. */
static int64_t run_daemon(const char *topic, const char *db, bool no_write, double *active_ms)
{
	char cfg[256], group[256], bin[1024], log[256];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(cfg, sizeof(cfg), "/tmp/%s-%d.ini", topic, no_write);
	snprintf(log, sizeof(log), "/tmp/%s-%d.log", topic, no_write);
	snprintf(group, sizeof(group), "g-%s-%d", topic, no_write);
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	FILE *f = fopen(cfg, "w");
	fprintf(f, "[kafka]\nbootstrap.servers = %s\n[mongodb]\nuri = %s\ndatabase = %s\n[consumer]\ntopic = %s\n"
		   "dlq_topic = %s.dlq\ngroup_id = %s\nbatch_size = 500\nbatch_ms = 200\nexit_on_idle_ms = 1000\n"
		   "no_write = %s\n",
		bootstrap, mongo_uri, db, topic, topic, group, no_write ? "true" : "false");
	if (state_flush_ms >= 0)
		fprintf(f, "state_flush_ms = %d\n", state_flush_ms);
	fprintf(f, "[http]\nlisten =\n");
	fclose(f);
	pid_t pid = fork();
	if (pid == 0) {
		freopen(log, "w", stderr);
		execl(bin, bin, "--config", cfg, (char *)NULL);
		_exit(127);
	}
	int status;
	struct rusage ru;
	wait4(pid, &status, 0, &ru);
	peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
	*active_ms = 0;
	char *text = ct_test_read_file(log, NULL);
	const char *a = text ? strstr(text, "active_ms=") : NULL;
	if (a)
		*active_ms = atof(a + 10);
	sum_phases(text);
	final_figures(text);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "bench: consumer failed, log %s\n", log);
	else if (!getenv("CT_BENCH_KEEP_LOGS"))
		unlink(log);
	else
		fprintf(stderr, "bench: consumer log kept: %s\n", log);
	free(text);
	unlink(cfg);
	return (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + (int64_t)ru.ru_stime.tv_sec * 1000000 +
	       ru.ru_stime.tv_usec;
}

/* Gives `dst` the secondary indexes of `src` (key, name, unique). */
static void copy_indexes(mongoc_collection_t *src, mongoc_collection_t *dst)
{
	mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(src, NULL);
	const bson_t *spec;
	while (mongoc_cursor_next(cur, &spec)) {
		bson_iter_t it;
		if (!bson_iter_init_find(&it, spec, "name") || !strcmp(bson_iter_utf8(&it, NULL), "_id_"))
			continue;
		bson_t cmd = BSON_INITIALIZER, arr, idx;
		bson_error_t e;
		BSON_APPEND_UTF8(&cmd, "createIndexes", mongoc_collection_get_name(dst));
		BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
		BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
		static const char *const keep[] = {"key", "name", "unique"};
		for (size_t k = 0; k < 3; k++)
			if (bson_iter_init_find(&it, spec, keep[k]))
				bson_append_iter(&idx, keep[k], -1, &it);
		bson_append_document_end(&arr, &idx);
		bson_append_array_end(&cmd, &arr);
		if (!mongoc_collection_write_command_with_opts(dst, &cmd, NULL, NULL, &e))
			fprintf(stderr, "bench: calibration createIndexes: %s\n", e.message);
		bson_destroy(&cmd);
	}
	mongoc_cursor_destroy(cur);
}

/*
 * Inserts the run's history records into another database, batch 500;
 * returns events/s. With `indexed`, the target first gets the indexes the
 * consumer made on `history` (FerretDB maintains each on every insert).
 */
static double calibrate(mongoc_client_t *client, const char *src_db, const char *dst_db, bool indexed,
			int64_t *n_out)
{
	mongoc_collection_t *src = mongoc_client_get_collection(client, src_db, "history");
	mongoc_collection_t *dst = mongoc_client_get_collection(client, dst_db, "history");
	bson_t empty = BSON_INITIALIZER;
	if (indexed)
		copy_indexes(src, dst);
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(src, &empty, NULL, NULL);
	const bson_t *doc;
	bson_t **docs = NULL;
	size_t n = 0, cap = 0;
	while (mongoc_cursor_next(cur, &doc)) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			docs = realloc(docs, cap * sizeof(*docs));
		}
		docs[n++] = bson_copy(doc);
	}
	mongoc_cursor_destroy(cur);
	int64_t t0 = ct_test_now_us();
	for (size_t i = 0; i < n; i += 500) {
		bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false)), reply;
		bson_error_t e;
		mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(dst, opts);
		for (size_t j = i; j < n && j < i + 500; j++)
			mongoc_bulk_operation_insert_with_opts(bulk, docs[j], NULL, NULL);
		if (!mongoc_bulk_operation_execute(bulk, &reply, &e))
			fprintf(stderr, "bench: calibration insert: %s\n", e.message);
		bson_destroy(&reply);
		bson_destroy(opts);
		mongoc_bulk_operation_destroy(bulk);
	}
	int64_t us = ct_test_now_us() - t0;
	for (size_t i = 0; i < n; i++)
		bson_destroy(docs[i]);
	free(docs);
	mongoc_collection_destroy(src);
	mongoc_collection_destroy(dst);
	*n_out = (int64_t)n;
	return us > 0 ? (double)n * 1e6 / (double)us : 0;
}

static void drop(mongoc_client_t *c, const char *name)
{
	mongoc_database_t *db = mongoc_client_get_database(c, name);
	mongoc_database_drop(db, NULL);
	mongoc_database_destroy(db);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000, doc_bytes = argc > 2 ? atoi(argv[2]) : 1024;
	char topic[128], db[128], calib[140];
	double active_ms;
	if (argc > 3)
		state_flush_ms = atoi(argv[3]);
	if (argc > 4)
		per_context = atoi(argv[4]);
	if (n < 10 || n > 10000000 || doc_bytes < 256 || doc_bytes > 1024 * 1024 || state_flush_ms > 600000) {
		fprintf(stderr, "usage: bench_consumer [N 10..10000000] [doc_bytes 256..1048576] [state_flush_ms 0..600000]\n");
		return 2;
	}
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ct_test_unique_name(topic, sizeof(topic), "ctbench");
	snprintf(db, sizeof(db), "%s", topic);
	for (char *p = db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(calib, sizeof(calib), "%s_calib", db);
	produce(topic, n, doc_bytes);

	int64_t cpu = run_daemon(topic, db, true, &active_ms);
	printf("bench=consumer events=%d doc_bytes=%d cpu_us_per_event=%.1f nowrite_events_per_s=%.0f "
	       "nowrite_peak_rss_mb=%.0f\n",
	       n, doc_bytes, (double)cpu / n, active_ms > 0 ? n / (active_ms / 1000.0) : 0, peak_rss_mb);
	fflush(stdout);

	int64_t cpu_w = run_daemon(topic, db, false, &active_ms);
	double rss_w = peak_rss_mb;
	double e2e = active_ms > 0 ? n / (active_ms / 1000.0) : 0;
	mongoc_init();
	mongoc_client_t *client = mongoc_client_new(mongo_uri);
	int64_t nrec;
	double cal = calibrate(client, db, calib, false, &nrec);
	drop(client, calib);
	double cal_ix = calibrate(client, db, calib, true, &nrec);
	double e2e_h = history_active_ms > 0 ? n / (history_active_ms / 1000.0) : 0;
	double e2e_w = history_active_ms > 0 ? n / ((history_active_ms + final_flush_ms) / 1000.0) : 0;
	printf("bench=consumer events=%d doc_bytes=%d e2e_events_per_s=%.0f calib_events_per_s=%.0f "
	       "calib_records=%lld e2e_over_calib=%.2f e2e_history_events_per_s=%.0f history_over_calib=%.2f "
	       "e2e_work_events_per_s=%.0f work_over_calib=%.2f cpu_us_per_event_with_writes=%.1f "
	       "history_ms=%.0f contexts_ms=%.0f state_ms=%.0f active_ms=%.0f history_active_ms=%.0f "
	       "final_flush_ms=%.0f state_flush_ms=%d events_per_context=%d calib_indexed_events_per_s=%.0f "
	       "e2e_over_calib_indexed=%.2f history_over_calib_indexed=%.2f work_over_calib_indexed=%.2f "
	       "peak_rss_mb=%.0f\n",
	       n, doc_bytes, e2e, cal, (long long)nrec, cal > 0 ? e2e / cal : 0, e2e_h, cal > 0 ? e2e_h / cal : 0,
	       e2e_w, cal > 0 ? e2e_w / cal : 0, (double)cpu_w / n, phase_ms[0], phase_ms[1], phase_ms[2],
	       active_ms, history_active_ms, final_flush_ms, state_flush_ms, per_context, cal_ix,
	       cal_ix > 0 ? e2e / cal_ix : 0, cal_ix > 0 ? e2e_h / cal_ix : 0, cal_ix > 0 ? e2e_w / cal_ix : 0,
	       rss_w);
	drop(client, db);
	drop(client, calib);
	mongoc_client_destroy(client);
	mongoc_cleanup();
	return 0;
}
