/*
 * test_consumer_netsplit.c - issue 16, the stalled worker by a simulated
 * network partition (beside test_consumer_fencing.c's kill -STOP): worker
 * A stays alive and running while it is cut off from the group coordinator
 * and from MongoDB; the group gives its partition to worker B, which
 * records on; then A's network heals. A must write nothing of what it lost,
 * and no valid event may be lost or doubled.
 *
 * Kafka is librdkafka's mock cluster, run in this process (its bootstrap
 * address is a real TCP listener the two changetrail-consumer processes
 * use): group coordinator on broker 1, the partition's leader on broker 2,
 * so A keeps fetching while its heartbeats fail. MongoDB is the real local
 * server; A reaches it through a TCP proxy of this test that can cut A off
 * (connections reset, new ones refused) and that counts the write commands
 * A sends (OP_MSG insert/update/delete/...).
 *
 * Why both cuts: librdkafka (2.0.2 here) times a session out on the client
 * too (rd_kafka_cgrp_session_timeout_check: session.timeout.ms without a
 * successful Heartbeat response), on the same clock as the coordinator's
 * eviction, and the mock coordinator then takes session.timeout.ms - 1000
 * ms (a rebalance from Up) before it assigns the partition again. So an A
 * that is only cut from the coordinator learns of its loss seconds before B
 * owns anything, and what it writes meanwhile is still its own. Work that
 * outlives the loss is work that could not be written then: A's MongoDB is
 * cut too, its writer retries the batch it holds, and the retries (and
 * A's unwritten states and offsets) are what fencing must drop.
 *
 * The run: events flow (20/s over 5 documents) on a 1-partition topic and
 * A, alone in the group, records them. Then the partition: A's MongoDB cut,
 * Heartbeats answered NOT_COORDINATOR (only A heartbeats then); B starts
 * and its JoinGroup is taken; from then on JoinGroup is answered
 * COORDINATOR_LOAD_IN_PROGRESS, so A, once its session is lost, cannot
 * join again and B keeps the partition to the end. B takes over and
 * records; A's network heals (MongoDB reachable again). A must send no
 * write to MongoDB from then on (it owns nothing), its log must show the
 * work it discarded, every event must be recorded exactly once with
 * continuous versions and the state at each history's head, the DLQ empty
 * and `changetrail verify` clean. Fails when ctc_worker_fenced() checks
 * neither the generation nor rd_kafka_assignment_lost(): A's retried batch
 * then reaches MongoDB after the heal.
 *
 * The same run with A's MongoDB traffic held instead of refused during the
 * cut: the write A had in flight lands at the heal, after B recorded the
 * same events. Nothing can take a sent write back; it must change nothing,
 * and A's next batch must be fenced. (A's loop polls Kafka only when its
 * writer can take more, so here it learns of the loss after the held write:
 * rd_kafka_assignment_lost() fences the next batch before the generation
 * moves.)
 */
#include "consumer_daemon.h"

#include "cts_codec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* Kafka protocol ApiKeys (not in librdkafka's public headers) */
#define API_JOINGROUP 11
#define API_HEARTBEAT 12

/* ---- a TCP proxy to MongoDB that can cut its client off ---- */

#define PROXY_MAX_CONNS 64

typedef struct pconn {
	int c, s;         /* client and server sockets; -1: unused */
	uint8_t *buf;     /* client -> server bytes not yet a whole message (for counting) */
	size_t len, cap;
} pconn;

typedef struct proxy {
	int lfd, port, up_port;
	pconn conns[PROXY_MAX_CONNS];
	atomic_int cut, stop;
	bool hold;           /* cut: hold A's bytes (what it sent lands at the heal); else reset and refuse */
	atomic_int writes;   /* write commands seen since counting began */
	atomic_int counting; /* count write commands from now on */
	atomic_int refused;  /* connections refused while cut */
	atomic_long held;    /* bytes A had sent and the cut held, found at the heal */
	pthread_t th;
} proxy;

static void pconn_close(pconn *k)
{
	if (k->c >= 0)
		close(k->c);
	if (k->s >= 0)
		close(k->s);
	free(k->buf);
	*k = (pconn){-1, -1, NULL, 0, 0};
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Whether the OP_MSG at `m` (whole, `n` bytes) is a write command. */
static bool is_write_command(const uint8_t *m, size_t n)
{
	static const char *writes[] = {"insert", "update", "delete", "findAndModify", "bulkWrite", "createIndexes"};
	uint32_t op;
	memcpy(&op, m + 12, 4);
	/* header (16), flagBits (4), section kind 0, BSON: length (4), type (1), key */
	if (op != 2013 || n < 27 || m[20] != 0)
		return false;
	const char *key = (const char *)m + 26;
	size_t room = n - 26;
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
		if (strlen(writes[i]) < room && !strcmp(key, writes[i]))
			return true;
	return false;
}

/* Counts the write commands among the whole messages of k's client stream. */
static void count_writes(proxy *px, pconn *k, const uint8_t *p, size_t n)
{
	if (k->len + n > k->cap) {
		size_t cap = (k->len + n) * 2;
		uint8_t *g = realloc(k->buf, cap);
		assert_non_null(g);
		k->buf = g;
		k->cap = cap;
	}
	memcpy(k->buf + k->len, p, n);
	k->len += n;
	size_t off = 0;
	while (k->len - off >= 16) {
		uint32_t mlen;
		memcpy(&mlen, k->buf + off, 4);
		if (mlen < 16 || k->len - off < mlen)
			break;
		if (is_write_command(k->buf + off, mlen) && atomic_load(&px->counting))
			atomic_fetch_add(&px->writes, 1);
		off += mlen;
	}
	memmove(k->buf, k->buf + off, k->len - off);
	k->len -= off;
}

static int connect_up(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void *proxy_run(void *arg)
{
	proxy *px = arg;
	struct pollfd fds[1 + 2 * PROXY_MAX_CONNS];
	int who[1 + 2 * PROXY_MAX_CONNS];
	uint8_t buf[65536];
	bool was_cut = false;
	while (!atomic_load(&px->stop)) {
		bool cut = atomic_load(&px->cut);
		size_t n = 0;
		if (was_cut && !cut && px->hold) /* the heal: what A sent meanwhile goes now */
			for (int i = 0; i < PROXY_MAX_CONNS; i++) {
				int pending = 0;
				if (px->conns[i].c >= 0 && !ioctl(px->conns[i].c, FIONREAD, &pending))
					atomic_fetch_add(&px->held, pending);
			}
		was_cut = cut;
		fds[n] = (struct pollfd){px->lfd, cut && px->hold ? 0 : POLLIN, 0};
		who[n++] = -1;
		for (int i = 0; i < PROXY_MAX_CONNS; i++) {
			if (px->conns[i].c < 0)
				continue;
			if (cut && !px->hold) { /* the partition: what A had open is reset */
				pconn_close(&px->conns[i]);
				continue;
			}
			/* held: what A sends waits in its socket until the heal */
			fds[n] = (struct pollfd){px->conns[i].c, cut ? 0 : POLLIN, 0};
			who[n++] = i;
			fds[n] = (struct pollfd){px->conns[i].s, POLLIN, 0};
			who[n++] = i;
		}
		if (poll(fds, n, 50) <= 0)
			continue;
		if (fds[0].revents & POLLIN) {
			int c = accept(px->lfd, NULL, NULL);
			int slot = -1;
			for (int i = 0; i < PROXY_MAX_CONNS && slot < 0; i++)
				if (px->conns[i].c < 0)
					slot = i;
			int s = c >= 0 && !atomic_load(&px->cut) && slot >= 0 ? connect_up(px->up_port) : -1;
			if (s < 0) {
				if (c >= 0) {
					atomic_fetch_add(&px->refused, 1);
					close(c);
				}
			} else {
				px->conns[slot] = (pconn){c, s, NULL, 0, 0};
			}
		}
		for (size_t j = 1; j < n; j++) {
			pconn *k = &px->conns[who[j]];
			if (!(fds[j].revents & (POLLIN | POLLHUP | POLLERR)) || k->c < 0)
				continue;
			bool from_client = fds[j].fd == k->c;
			ssize_t r = recv(fds[j].fd, buf, sizeof(buf), 0);
			if (r <= 0) {
				pconn_close(k);
				continue;
			}
			if (from_client)
				count_writes(px, k, buf, (size_t)r);
			if (send_all(from_client ? k->s : k->c, buf, (size_t)r))
				pconn_close(k);
		}
	}
	for (int i = 0; i < PROXY_MAX_CONNS; i++)
		pconn_close(&px->conns[i]);
	return NULL;
}

static void proxy_start(proxy *px, int up_port, bool hold)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t al = sizeof(a);
	memset(px, 0, sizeof(*px));
	for (int i = 0; i < PROXY_MAX_CONNS; i++)
		px->conns[i] = (pconn){-1, -1, NULL, 0, 0};
	px->up_port = up_port;
	px->hold = hold;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	px->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(px->lfd >= 0);
	assert_int_equal(bind(px->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(px->lfd, 64), 0);
	assert_int_equal(getsockname(px->lfd, (struct sockaddr *)&a, &al), 0);
	px->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&px->th, NULL, proxy_run, px), 0);
}

static void proxy_stop(proxy *px)
{
	atomic_store(&px->stop, 1);
	pthread_join(px->th, NULL);
	close(px->lfd);
}

/*
 * `uri` with its host:port replaced by 127.0.0.1:`port`; *up_port: the
 * port it named. Only single-host URIs (the local server's).
 */
static void uri_via(const char *uri, int port, char *out, size_t size, int *up_port)
{
	const char *h = strstr(uri, "://");
	assert_non_null(h);
	h += 3;
	const char *at = strchr(h, '@'), *end = h + strcspn(h, "/?");
	if (at && at < end)
		h = at + 1; /* credentials stay */
	const char *colon = memchr(h, ':', (size_t)(end - h));
	assert_non_null(colon);
	assert_null(memchr(h, ',', (size_t)(end - h)));
	*up_port = atoi(colon + 1);
	snprintf(out, size, "%.*s127.0.0.1:%d%s", (int)(h - uri), uri, port, end);
}

/* ---- the events ---- */

typedef struct loadgen {
	const char *topic;
	long first, count; /* event numbers first..first+count-1 (count 0: until stopped) */
	char (*ids)[40];   /* the event id of event i */
	long max;
	atomic_int stop;
	atomic_long produced;
	pthread_t th;
} loadgen;

/* 20 events a second over 5 documents (d<i % 5>, {"n": i}), ids kept. */
static void *loadgen_run(void *arg)
{
	loadgen *g = arg;
	rd_kafka_t *rk = producer();
	for (long i = g->first; !atomic_load(&g->stop) && (!g->count || i < g->first + g->count) && i < g->max; i++) {
		char id[16], key[32];
		snprintf(id, sizeof(id), "d%ld", i % 5);
		snprintf(key, sizeof(key), "items/%s", id);
		kmsg m = {key, event_v("items", id, (int)i + 1), 0};
		/* event_v: insert for v 1 only; the first event of each document must be its insert */
		if (i > 0 && i < 5) {
			char *p = strstr(m.value, "\"op\":\"update\"");
			assert_non_null(p);
			memcpy(p, "\"op\":\"insert\"", 13);
		}
		const char *e = strstr(m.value, "\"event_id\":\"");
		assert_non_null(e);
		snprintf(g->ids[i], 40, "%.36s", e + 12);
		send_one(rk, g->topic, &m);
		free(m.value);
		atomic_fetch_add(&g->produced, 1);
		rd_kafka_poll(rk, 0);
		usleep(50000);
	}
	assert_int_equal(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
	return NULL;
}

/* ---- the daemons ---- */

/*
 * No short topic.metadata.refresh.interval.ms: a periodic metadata refresh
 * that lands while librdkafka's (2.0.2) group leader waits for its
 * assignor's metadata makes it JoinGroup again, and B would meet the
 * refused JoinGroups meant for A.
 */
static void write_config(const char *path, const run *r, const char *uri)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 8000\nheartbeat.interval.ms = 500\n"
		   "debug = cgrp\n"
		   "[mongodb]\nuri = %s\ndatabase = %s\n"
		   "[consumer]\ntopic = %s\ndlq_topic = %s\ngroup_id = %s\nbatch_size = 50\nbatch_ms = 50\n"
		   "state_flush_ms = 2000\nexit_on_idle_ms = 120000\nshutdown_timeout_ms = 10000\n"
		   "[http]\nlisten = 127.0.0.1:0\n",
		bootstrap, uri, r->db, r->topic, r->dlq, r->group);
	fclose(f);
}

/* The daemons of the test running, killed by teardown when it failed half way. */
static pid_t live[2];

/* Starts a daemon with its stderr in `log`: our lines and librdkafka's group debug lines. */
static pid_t start_with(const char *config, const char *log)
{
	char bin[1024];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(bin, sizeof(bin), "%s/consumer/changetrail-consumer", dir ? dir : ".");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("CHANGETRAIL_CONSUMER_LOG_LEVEL", "debug", 1);
		if (!freopen(log, "w", stderr))
			_exit(126);
		execl(bin, bin, "--config", config, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 2; i++)
		if (!live[i]) {
			live[i] = pid;
			break;
		}
	return pid;
}

/* Waits for a daemon told to stop (one SIGTERM: a second one may kill it). */
static int stopped(pid_t pid)
{
	int rc = wait_daemon(pid, 30000);
	for (int i = 0; i < 2; i++)
		if (live[i] == pid)
			live[i] = 0;
	return rc;
}

/* Times `needle` occurs in file `log`. */
static int log_count(const char *log, const char *needle)
{
	size_t len;
	char *text = ct_test_read_file(log, &len);
	int n = 0;
	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(text);
	return n;
}

/* Waits up to `ms` for `needle` in `log`; whether it came. */
static bool wait_log(const char *log, const char *needle, int ms)
{
	int64_t end = ct_test_now_us() + (int64_t)ms * 1000;
	while (ct_test_now_us() < end) {
		if (log_count(log, needle))
			return true;
		usleep(50000);
	}
	return false;
}

static json_t *state_of(const run *r, const char *key)
{
	mongoc_collection_t *c = mongoc_client_get_collection(client, r->db, "state");
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(key));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
	const bson_t *doc;
	json_t *j = NULL;
	if (mongoc_cursor_next(cur, &doc))
		assert_int_equal(cts_state_from_bson(doc, &j, NULL), 0);
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	mongoc_collection_destroy(c);
	return j;
}

/* What a run has going: file scope, so that a test failing half way can stop it (kill_live). */
static loadgen g, g2;
static bool g_running, px_running;
static proxy px;
static rd_kafka_t *mk; /* the mock cluster's handle */

#define LOST "msg=\"assignment lost: unwritten work discarded\""

static double secs(int64_t since_us)
{
	return (double)(ct_test_now_us() - since_us) / 1e6;
}

/*
 * The run (see the top comment). hold: during the cut A's MongoDB traffic
 * is held, not refused: the write A has in flight when the partition
 * starts reaches MongoDB at the heal, after B recorded the same events.
 * No fencing can take back a write already sent: it must change nothing
 * (history identity is the event id and content; a state never moves back),
 * and what A did not send yet must be fenced.
 */
static void partitioned_worker(bool hold)
{
	char errstr[512], cfga[300], cfgb[300], loga[300], logb[300], uria[1024];
	run r;
	int up_port;
	const long max_events = 2000;
	memset(&g, 0, sizeof(g));
	memset(&g2, 0, sizeof(g2));
	int64_t t0 = ct_test_now_us();

	/* the mock cluster: coordinator on broker 1, the partition's leader on broker 2 */
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	assert_int_equal(rd_kafka_conf_set(conf, "test.mock.num.brokers", "3", errstr, sizeof(errstr)), 0);
	mk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(mk);
	rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(mk);
	assert_non_null(mc);
	bootstrap = rd_kafka_mock_cluster_bootstraps(mc);

	ct_test_unique_name(r.topic, sizeof(r.topic), "ctpart");
	snprintf(r.dlq, sizeof(r.dlq), "%s.dlq", r.topic);
	snprintf(r.group, sizeof(r.group), "g-%s", r.topic);
	ct_test_unique_name(r.db, sizeof(r.db), "ctpart");
	for (char *p = r.db; *p; p++)
		if (*p == '-')
			*p = '_';
	snprintf(r.config, sizeof(r.config), "/tmp/%s.b.ini", r.topic);
	snprintf(cfga, sizeof(cfga), "/tmp/%s.a.ini", r.topic);
	snprintf(cfgb, sizeof(cfgb), "%s", r.config);
	snprintf(loga, sizeof(loga), "/tmp/%s.a.log", r.topic);
	snprintf(logb, sizeof(logb), "/tmp/%s.b.log", r.topic);
	assert_int_equal(rd_kafka_mock_topic_create(mc, r.topic, 1, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(mc, r.dlq, 1, 1), 0);
	assert_int_equal(rd_kafka_mock_partition_set_leader(mc, r.topic, 0, 2), 0);
	assert_int_equal(rd_kafka_mock_coordinator_set(mc, "group", r.group, 1), 0);

	/* A reaches MongoDB through the proxy, B directly */
	proxy_start(&px, 0, hold);
	px_running = true;
	uri_via(mongo_uri, px.port, uria, sizeof(uria), &up_port);
	px.up_port = up_port;
	write_config(cfga, &r, uria);
	write_config(cfgb, &r, mongo_uri);

	g.topic = g2.topic = r.topic;
	g.ids = g2.ids = calloc((size_t)max_events, 40);
	g.max = g2.max = max_events;
	assert_non_null(g.ids);
	assert_int_equal(pthread_create(&g.th, NULL, loadgen_run, &g), 0);
	g_running = true;
	pid_t a = start_with(cfga, loga);

	/* 1. A, alone in the group, owns the partition and records */
	int64_t end = ct_test_now_us() + 30000000;
	while (count(&r, "history", NULL) < 20 && ct_test_now_us() < end)
		usleep(100000);
	assert_true(count(&r, "history", NULL) >= 20);
	assert_int_equal(log_count(loga, "msg=\"partitions assigned\" count=1"), 1);

	/* 2. the partition: A loses MongoDB and the coordinator, and runs on */
	int64_t t1 = ct_test_now_us();
	int64_t before_cut = count(&r, "history", NULL);
	atomic_store(&px.cut, 1);
	rd_kafka_resp_err_t hb[400];
	for (size_t i = 0; i < 400; i++)
		hb[i] = RD_KAFKA_RESP_ERR_NOT_COORDINATOR;
	rd_kafka_mock_push_request_errors_array(mc, API_HEARTBEAT, 400, hb);
	print_message("partition at %.1f s: %lld records, %ld events produced\n", secs(t0), (long long)before_cut,
		      atomic_load(&g.produced));

	/* 3. B joins (its JoinGroup waits for the rebalance); after it, no one else may */
	usleep(3500000);
	pid_t b = start_with(cfgb, logb);
	assert_true(wait_log(logb, "Joining group", 10000));
	usleep(300000);
	if (log_count(loga, LOST))
		print_message("A lost its assignment before B joined: A may win the partition back\n");
	rd_kafka_resp_err_t jg[400];
	for (size_t i = 0; i < 400; i++)
		jg[i] = RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
	rd_kafka_mock_push_request_errors_array(mc, API_JOINGROUP, 400, jg);

	/* 4. A's session ends (on both sides); B's heartbeats must pass. A's
	 * loop learns it at its next poll of Kafka: at once while its writer
	 * retries, after the write when one is held (backpressure) */
	assert_true(wait_log(loga, "SESSTMOUT", 20000));
	rd_kafka_mock_clear_request_errors(mc, API_HEARTBEAT);
	print_message("A's session timed out at %.1f s (%.1f s into the partition)\n", secs(t0), secs(t1));

	/* 5. B owns the partition and records */
	assert_true(wait_log(logb, "msg=\"partitions assigned\" count=1", 30000));
	print_message("B assigned at %.1f s\n", secs(t0));
	end = ct_test_now_us() + 30000000;
	while (!log_count(logb, "msg=\"batch written\"") && ct_test_now_us() < end)
		usleep(100000);
	assert_true(log_count(logb, "msg=\"batch written\"") > 0);
	sleep(2);

	/* 6. A's network heals: from now on A may write nothing */
	atomic_store(&px.counting, 1);
	atomic_store(&px.cut, 0);
	print_message("healed at %.1f s: %lld records\n", secs(t0), (long long)count(&r, "history", NULL));
	sleep(2);
	atomic_store(&g.stop, 1);
	pthread_join(g.th, NULL);
	g_running = false;
	/* the next updates of the same documents: a state moved back would show */
	g2.first = atomic_load(&g.produced);
	g2.count = 40;
	assert_int_equal(pthread_create(&g2.th, NULL, loadgen_run, &g2), 0);
	pthread_join(g2.th, NULL);
	long produced = atomic_load(&g.produced) + atomic_load(&g2.produced);

	/* A gave up what it held: its revoke waits for its writer, so a batch
	 * retried (or held) across the loss has been written or fenced by now */
	assert_true(wait_log(loga, "msg=\"partitions revoked\"", 30000));
	end = ct_test_now_us() + 30000000;
	while (count(&r, "history", NULL) < produced && ct_test_now_us() < end)
		usleep(200000);
	sleep(2); /* the states of the last batch */
	int a_writes = atomic_load(&px.writes);
	kill(a, SIGTERM);
	kill(b, SIGTERM);
	int rb = stopped(b), ra = stopped(a);
	rd_kafka_mock_clear_request_errors(mc, API_JOINGROUP); /* the DLQ is read by a group below */
	int lost = log_count(loga, LOST), discarded = log_count(loga, "msg=\"fenced: unwritten work discarded\""),
	    fenced = log_count(loga, "msg=\"batch fenced, not written\"");
	print_message("%ld events, %lld records; A: %d write commands after healing, %d connections refused "
		      "and %ld bytes held while cut, log: assignment lost %d, work discarded %d, batch fenced %d; "
		      "%.1f s\n",
		      produced, (long long)count(&r, "history", NULL), a_writes, atomic_load(&px.refused),
		      atomic_load(&px.held), lost, discarded, fenced, secs(t0));

	/* refused: A wrote nothing once it had lost the partition (held: the write
	 * in flight lands, and whatever the same store call sends after it) */
	if (a_writes && !hold)
		fail_msg("A sent %d write commands to MongoDB after it lost the partition", a_writes);
	/* A held work when it lost the partition and its log says it dropped it */
	assert_true(lost > 0);
	assert_true(discarded > 0);
	assert_true(fenced > 0);
	if (hold)
		assert_true(atomic_load(&px.held) > 0); /* A's request in flight landed after B's writes */
	else
		assert_true(atomic_load(&px.refused) > 0); /* A tried to write during the partition */
	/* B did take over: A never owned the partition again */
	assert_int_equal(log_count(loga, "msg=\"partitions assigned\" count=1"), 1);

	/* every event recorded once, versions continuous, states at the heads */
	assert_int_equal(count(&r, "history", NULL), produced);
	for (int d = 0; d < 5; d++) {
		char id[16], key[32];
		snprintf(id, sizeof(id), "d%d", d);
		snprintf(key, sizeof(key), "items/%s", id);
		json_t *h = history_of(&r, "items", id);
		size_t n = json_array_size(h);
		assert_chain(h, n);
		for (long i = d; i < produced; i += 5) {
			int seen = 0;
			for (size_t k = 0; k < n; k++) {
				const char *got = json_string_value(json_object_get(json_array_get(h, k), "_id"));
				seen += got && !strcmp(got, g.ids[i]);
			}
			if (seen != 1)
				fail_msg("event %s (%s, event %ld) recorded %d times", g.ids[i], id, i, seen);
		}
		json_t *st = state_of(&r, key);
		assert_non_null(st);
		assert_int_equal(json_integer_value(json_object_get(st, "version")), (json_int_t)n);
		assert_string_equal(json_string_value(json_object_get(st, "hash")),
				    json_string_value(json_object_get(json_array_get(h, n - 1), "hash")));
		json_decref(st);
		json_decref(h);
	}
	/* no valid event refused */
	ct_test_msg *got;
	size_t ng = ct_test_consume(bootstrap, r.dlq, 0, 3000, &got);
	if (ng)
		fail_msg("%zu valid events in the DLQ, e.g. %s", ng, got[0].headers);
	ct_test_msgs_free(got, ng);
	char cmd[2048];
	const char *dir = getenv("CT_BINARY_DIR");
	snprintf(cmd, sizeof(cmd), "%s/cli/changetrail verify --uri '%s' --db '%s' >/dev/null", dir ? dir : ".",
		 mongo_uri, r.db);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ra, 0);
	assert_int_equal(rb, 0);

	proxy_stop(&px);
	px_running = false;
	free(g.ids);
	g.ids = NULL;
	if (!getenv("CT_E2E_KEEP_LOGS")) {
		unlink(loga);
		unlink(logb);
		unlink(cfga);
	}
	drop_db(&r);
	rd_kafka_destroy(mk);
	mk = NULL;
}

/* Writes refused during the cut: A's writer retries its batch until fenced; A writes nothing after the heal. */
static void test_partition_writes_refused(void **state)
{
	partitioned_worker(false);
}

/* A write in flight when the partition starts lands after B recorded the same events: it changes nothing. */
static void test_partition_write_held(void **state)
{
	partitioned_worker(true);
}

static int setup_mongo(void **state)
{
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ctc_store_global_init();
	client = mongoc_client_new(mongo_uri);
	return client ? 0 : -1;
}

/* After each test: what a test that failed half way left running is stopped. */
static int kill_live(void **state)
{
	for (int i = 0; i < 2; i++)
		if (live[i]) {
			kill(live[i], SIGKILL);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	if (g_running) {
		atomic_store(&g.stop, 1);
		pthread_join(g.th, NULL);
		g_running = false;
	}
	if (px_running) {
		proxy_stop(&px);
		px_running = false;
	}
	free(g.ids);
	g.ids = NULL;
	if (mk) {
		rd_kafka_destroy(mk);
		mk = NULL;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_partition_writes_refused, kill_live),
		cmocka_unit_test_teardown(test_partition_write_held, kill_live),
	};
	if (getenv("CT_TEST_FILTER")) /* one test by name, e.g. when debugging */
		cmocka_set_test_filter(getenv("CT_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup_mongo, teardown);
}
