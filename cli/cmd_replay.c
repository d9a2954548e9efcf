/*
 * cmd_replay.c - `changetrail replay`: rebuilds history into another
 * database by running the consumer itself (the changetrail-consumer binary,
 * so the records come from exactly the same code) as a fresh consumer group
 * from a start position, until it is caught up; shows progress from the
 * group's committed offsets; --verify then compares the two databases;
 * --no-write rebuilds into a null sink (the consumer's no_write mode:
 * everything but the MongoDB reads and writes), to time the rebuild itself;
 * --metrics-listen lets that consumer serve its /metrics, /healthz and
 * /readyz, since its configuration is ours and the CHANGETRAIL_* variables
 * (CHANGETRAIL_HTTP_LISTEN among them) do not reach it.
 */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char usage[] =
	"usage: changetrail replay --from earliest|TIME|OFFSETS (--into DB [--verify] | --no-write)\n"
	"                          [--topic T] [--idle-ms N] [--metrics-listen HOST:PORT] [--json]\n"
	"                          [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"Runs changetrail-consumer as a new consumer group on the topic (default: the\n"
	"configuration's), from the earliest offsets, from a time (RFC 3339 or a\n"
	"duration ago: the first offsets at or after it) or from OFFSETS\n"
	"(PARTITION:OFFSET,...; other partitions from the earliest), writing into\n"
	"database DB, and stops once caught up (no message for --idle-ms, default\n"
	"3000). Progress (events, rate, ETA) on stderr. With --verify, compares every\n"
	"history record (all fields but kafka) and state with the configured database\n"
	"and reports differences. With --no-write, nothing is read from or written to\n"
	"MongoDB: the events are parsed, diffed and turned into records, then dropped\n"
	"(a null sink, to measure the rebuild). Bad events go to <topic>.replay.dlq.\n"
	"With --metrics-listen HOST:PORT (a numeric address, port 1..65535), the\n"
	"replaying consumer serves /metrics, /healthz and /readyz there (default: no\n"
	"HTTP server).\n"
	"exit status: 0 ok (identical), 1 differences found, 2 bad usage, 3 failure\n";

/*
 * The environment of the replaying consumer: ours without the CHANGETRAIL_*
 * variables. The generated configuration already holds what they set (for
 * the CLI), and in the consumer they would override it: a
 * CHANGETRAIL_MONGODB_DATABASE would send the replay into the live database
 * instead of --into, and CHANGETRAIL_CONSUMER (where the consumer binary is)
 * is not a setting the consumer knows. A new array of borrowed strings
 * (free() only the array), NULL when out of memory.
 */
static char **replay_environ(void)
{
	size_t n = 0, k = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "CHANGETRAIL_", 12))
			env[k++] = environ[i];
	return env;
}

/*
 * --metrics-listen: "HOST:PORT" as the consumer's [http] listen takes it (the
 * last ':' separates the port, so "::1:9464" is IPv6), checked here so that a
 * bad value is a usage error rather than a consumer failing to start: HOST a
 * numeric IPv4 or IPv6 address (the consumer resolves no names), PORT
 * 1..65535 (0 would pick a port nobody is told about).
 */
static bool valid_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN], *end;
	unsigned char addr[sizeof(struct in6_addr)];
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host) || colon[1] < '0' || colon[1] > '9')
		return false;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Path of changetrail-consumer: $CHANGETRAIL_CONSUMER (as taken by take_consumer_env()), beside us, in
 * the build tree, else $PATH. */
static void consumer_path(const char *env, char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n;
	if (env && *env) {
		snprintf(out, size, "%s", env);
		return;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			static const char *const rel[] = {"/changetrail-consumer", "/../consumer/changetrail-consumer"};
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				if (strlen(self) + strlen(rel[i]) >= size)
					continue;
				memcpy(out, self, strlen(self));
				memcpy(out + strlen(self), rel[i], strlen(rel[i]) + 1);
				if (access(out, X_OK) == 0)
					return;
			}
		}
	}
	snprintf(out, size, "changetrail-consumer");
}

static rd_kafka_t *kafka_client(const ctc_config *cfg, const char *group, char *errstr, size_t size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (size_t i = 0; i < cfg->nkafka; i++)
		if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, errstr, size)) {
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	if (rd_kafka_conf_set(conf, "group.id", group, errstr, size) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, size) ||
	    rd_kafka_conf_set(conf, "log_level", "3", errstr, size)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, size);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

/*
 * Start offsets of every partition of `topic` per --from, in *start (offsets
 * set), and high watermarks in *high. CLI exit code on failure (printed).
 */
static int start_offsets(rd_kafka_t *rk, const char *topic, const char *from,
			 rd_kafka_topic_partition_list_t **start, rd_kafka_topic_partition_list_t **high)
{
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	int rc = CLI_FAILURE;
	ct_error err;
	int64_t at_us = 0;
	bool by_time = false, by_offsets = strcmp(from, "earliest") && strchr(from, ':') && !strchr(from, 'T');

	*start = *high = NULL;
	if (strcmp(from, "earliest") && !by_offsets) {
		if (ct_history_parse_time(from, real_us(), &at_us, &err)) {
			fprintf(stderr, "changetrail replay: --from: %s (or earliest, or PARTITION:OFFSET,...)\n", cli_esc(err.message));
			rc = CLI_USAGE;
			goto out;
		}
		by_time = true;
	}
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 || md->topics[0].err ||
	    md->topics[0].partition_cnt == 0) {
		fprintf(stderr, "changetrail replay: topic '%s' not found or brokers unreachable\n", cli_esc(topic));
		goto out;
	}
	*start = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	*high = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t lo, hi;
		if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000)) {
			fprintf(stderr, "changetrail replay: watermarks of partition %d: unavailable\n", (int)p);
			goto out;
		}
		rd_kafka_topic_partition_list_add(*start, topic, p)->offset = by_time ? at_us / 1000 : lo;
		rd_kafka_topic_partition_list_add(*high, topic, p)->offset = hi;
	}
	if (by_time && rd_kafka_offsets_for_times(rk, *start, 10000)) {
		fprintf(stderr, "changetrail replay: offsets for the time: unavailable\n");
		goto out;
	}
	for (int i = 0; i < (*start)->cnt; i++) /* past the end: nothing to replay there */
		if ((*start)->elems[i].offset < 0)
			(*start)->elems[i].offset = (*high)->elems[i].offset;
	if (by_offsets) {
		char *copy = strdup(from), *save = NULL;
		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *end1, *end2;
			long p = strtol(tok, &end1, 10);
			long long off = *end1 == ':' ? strtoll(end1 + 1, &end2, 10) : -1;
			rd_kafka_topic_partition_t *tp =
				*end1 == ':' && !*end2 && off >= 0 ? rd_kafka_topic_partition_list_find(*start, topic, (int32_t)p) : NULL;
			if (!tp) {
				fprintf(stderr, "changetrail replay: --from: '%s' is not PARTITION:OFFSET of an existing partition\n", cli_esc(tok));
				free(copy);
				rc = CLI_USAGE;
				goto out;
			}
			tp->offset = off;
		}
		free(copy);
	}
	rc = CLI_OK;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return rc;
}

/* Writes the consumer's configuration (0600: it holds the URI). CLI exit code. */
static int write_config(const cli_common *c, const char *path_tmpl, char *path, const char *topic,
			const char *db, const char *group, long idle_ms, bool no_write, const char *listen)
{
	snprintf(path, PATH_MAX, "%s", path_tmpl);
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "changetrail replay: temporary configuration: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return CLI_FAILURE;
	}
	/* values written so that the consumer reads them back as they are (quotes, comments) */
	bool same = true;
	fprintf(f, "[kafka]\n");
	for (size_t i = 0; i < c->cfg.nkafka; i++)
		if (strcmp(c->cfg.kafka[i].key, "auto.offset.reset")) {
			fprintf(f, "%s = ", c->cfg.kafka[i].key);
			same &= ctc_config_fprint_value(f, c->cfg.kafka[i].value);
			fputc('\n', f);
		}
	fprintf(f, "auto.offset.reset = earliest\n[mongodb]\nuri = ");
	same &= ctc_config_fprint_value(f, c->cfg.mongodb_uri);
	fprintf(f, "\ndatabase = ");
	same &= ctc_config_fprint_value(f, db);
	fprintf(f, "\n[consumer]\ntopic = ");
	same &= ctc_config_fprint_value(f, topic);
	fprintf(f, "\ndlq_topic = %s.replay.dlq\ngroup_id = %s\nbatch_size = %lld\n"
		   "batch_ms = %lld\nexit_on_idle_ms = %ld\nno_write = %s\nlog_level = warn\n[http]\nlisten =",
		topic, group, (long long)c->cfg.batch_size, (long long)c->cfg.batch_ms, idle_ms,
		no_write ? "true" : "false");
	/* only what --metrics-listen asked for: the configuration's own [http] listen is the live daemon's */
	if (listen) {
		fputc(' ', f);
		same &= ctc_config_fprint_value(f, listen);
	}
	fputc('\n', f);
	if (fclose(f))
		return CLI_FAILURE;
	if (!same) {
		fprintf(stderr, "changetrail replay: a configuration value holds both quote characters and a comment character "
				"or edge space: it cannot be passed to the consumer\n");
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* Events done so far: committed - start, summed. */
static int64_t progress(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *start)
{
	rd_kafka_topic_partition_list_t *now = rd_kafka_topic_partition_list_copy(start);
	int64_t done = 0;
	if (rd_kafka_committed(rk, now, 2000) == 0)
		for (int i = 0; i < now->cnt; i++)
			if (now->elems[i].offset > start->elems[i].offset)
				done += now->elems[i].offset - start->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(now);
	return done;
}

static void show_progress(int64_t done, int64_t total, int64_t t0, bool tty, bool final)
{
	double secs = (double)(mono_us() - t0) / 1e6, rate = secs > 0 ? (double)done / secs : 0;
	char eta[32] = "?";
	if (rate > 0 && total >= done)
		snprintf(eta, sizeof(eta), "%.0fs", (double)(total - done) / rate);
	fprintf(stderr, "%sreplay: %lld/%lld events (%.0f%%), %.0f events/s, ETA %s%s", tty ? "\r" : "",
		(long long)done, (long long)total, total ? 100.0 * (double)done / (double)total : 100.0, rate,
		final ? "0s" : eta, tty && !final ? "   " : "\n");
}

int cmd_replay(int argc, char **argv)
{
	cli_common c = {.cmd = "replay"};
	const char *from = NULL, *into = NULL, *topic = NULL, *idle = "3000", *listen = NULL;
	bool verify = false, no_write = false;
	int rc = CLI_USAGE;
	char group[128], errstr[512], cfgpath[PATH_MAX] = "", bin[PATH_MAX];
	rd_kafka_t *rk = NULL;
	rd_kafka_topic_partition_list_t *start = NULL, *high = NULL;
	ct_history *live = NULL, *rebuilt = NULL;
	json_t *cmp = NULL;
	ct_error err;
	/*
	 * CHANGETRAIL_CONSUMER names the consumer binary; it is not a setting,
	 * and the configuration's CHANGETRAIL_<SECTION>_<KEY> reader refuses it:
	 * taken out of the environment before the configuration is read.
	 */
	char consumer_env[PATH_MAX] = "";
	const char *ce = getenv("CHANGETRAIL_CONSUMER");
	if (ce) {
		snprintf(consumer_env, sizeof(consumer_env), "%s", ce);
		unsetenv("CHANGETRAIL_CONSUMER");
	}

	for (int i = 1; i < argc; i++) {
		int r;
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		if ((r = cli_common_arg(&c, argc, argv, &i)) || (r = cli_opt("replay", argc, argv, &i, "--from", &from)) ||
		    (r = cli_opt("replay", argc, argv, &i, "--into", &into)) ||
		    (r = cli_opt("replay", argc, argv, &i, "--topic", &topic)) ||
		    (r = cli_opt("replay", argc, argv, &i, "--idle-ms", &idle)) ||
		    (r = cli_opt("replay", argc, argv, &i, "--metrics-listen", &listen))) {
			if (r < 0)
				goto usage;
			continue;
		}
		if (!strcmp(argv[i], "--verify")) {
			verify = true;
			continue;
		}
		if (!strcmp(argv[i], "--no-write")) {
			no_write = true;
			continue;
		}
		fprintf(stderr, "changetrail replay: unexpected argument '%s'\n", cli_esc(argv[i]));
		goto usage;
	}
	char *end;
	long idle_ms = strtol(idle, &end, 10);
	if (!from || (!into && !no_write)) {
		fprintf(stderr, "changetrail replay: --from and --into (or --no-write) are required\n");
		goto usage;
	}
	if (no_write && (into || verify)) {
		fprintf(stderr, "changetrail replay: --no-write writes nothing: no --into, no --verify\n");
		goto usage;
	}
	if (*end || idle_ms < 100 || idle_ms > 600000) {
		fprintf(stderr, "changetrail replay: --idle-ms must be 100..600000\n");
		goto usage;
	}
	if (listen && !valid_listen(listen)) {
		fprintf(stderr, "changetrail replay: --metrics-listen '%s': expected HOST:PORT (numeric address, port 1..65535)\n",
			cli_esc(listen));
		goto usage;
	}
	if ((rc = cli_load_config(&c)))
		goto out;
	if (no_write)
		into = "changetrail_replay_null"; /* the consumer's config needs a name; nothing is written */
	else if (!strcmp(into, c.cfg.mongodb_database)) {
		fprintf(stderr, "changetrail replay: --into must not be the live database '%s'\n", cli_esc(into));
		rc = CLI_USAGE;
		goto out;
	}
	if (!no_write && ct_history_open(c.cfg.mongodb_uri, into, &rebuilt, &err)) { /* validates the name */
		rc = cli_fail("replay", &err);
		goto out;
	}
	if (!topic)
		topic = c.cfg.topic;
	snprintf(group, sizeof(group), "changetrail-replay-%lld-%ld", (long long)(real_us() / 1000), (long)getpid());
	if (!(rk = kafka_client(&c.cfg, group, errstr, sizeof(errstr)))) {
		fprintf(stderr, "changetrail replay: kafka: %s\n", cli_esc(errstr));
		rc = CLI_USAGE;
		goto out;
	}
	if ((rc = start_offsets(rk, topic, from, &start, &high)))
		goto out;
	/* a fresh group starts from auto.offset.reset=earliest; anything else is committed first */
	if (strcmp(from, "earliest") && rd_kafka_commit(rk, start, 0)) {
		fprintf(stderr, "changetrail replay: cannot set the start offsets of group %s\n", group);
		rc = CLI_FAILURE;
		goto out;
	}
	int64_t total = 0;
	for (int i = 0; i < start->cnt; i++)
		total += high->elems[i].offset > start->elems[i].offset ? high->elems[i].offset - start->elems[i].offset : 0;
	if ((rc = write_config(&c, "/tmp/changetrail-replay-XXXXXX", cfgpath, topic, into, group, idle_ms, no_write, listen)))
		goto out;
	consumer_path(consumer_env, bin, sizeof(bin));
	if (no_write)
		fprintf(stderr, "replay: %s from %s into a null sink (group %s), %lld events\n", cli_esc(topic),
			cli_esc(from), group, (long long)total);
	else
		fprintf(stderr, "replay: %s from %s into database %s (group %s), %lld events\n", cli_esc(topic),
			cli_esc(from), cli_esc(into), group, (long long)total);
	if (listen)
		fprintf(stderr, "replay: the consumer serves /metrics on %s\n", cli_esc(listen));
	int64_t t0 = mono_us(), last = 0;
	bool tty = isatty(2);
	char **child_env = replay_environ();
	if (!child_env) {
		rc = CLI_FAILURE;
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		free(child_env);
		rc = CLI_FAILURE;
		goto out;
	}
	if (pid == 0) {
		environ = child_env; /* execlp passes environ on */
		execlp(bin, bin, "--config", cfgpath, (char *)NULL);
		fprintf(stderr, "changetrail replay: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	free(child_env);
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (mono_us() - last >= (tty ? 500000 : 2000000)) {
			show_progress(progress(rk, start), total, t0, tty, false);
			last = mono_us();
		}
		usleep(100000);
	}
	int64_t done = progress(rk, start);
	double secs = (double)(mono_us() - t0) / 1e6;
	show_progress(done, total, t0, tty, true);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "changetrail replay: the consumer failed (status %d)\n",
			WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		rc = CLI_FAILURE;
		goto out;
	}
	if (!verify) {
		rc = CLI_OK;
		if (c.json) {
			json_t *o = json_pack("{s:s?, s:b, s:s, s:I, s:I, s:f}", "into", no_write ? NULL : into, "no_write",
					      no_write, "group", group, "events", (json_int_t)total, "done",
					      (json_int_t)done, "seconds", secs);
			rc = cli_print_json("replay", o);
			json_decref(o);
		}
		goto out;
	}
	if (ct_history_open(c.cfg.mongodb_uri, c.cfg.mongodb_database, &live, &err) ||
	    ct_history_compare(live, rebuilt, &cmp, &err)) {
		rc = cli_fail("replay", &err);
		goto out;
	}
	json_t *diffs = json_object_get(cmp, "differences");
	if (c.json) {
		rc = cli_print_json("replay", cmp);
	} else {
		size_t i;
		json_t *d;
		json_array_foreach(diffs, i, d)
			printf("%s %s: %s %s\n", cli_esc(json_string_value(json_object_get(d, "collection"))),
			       cli_esc(json_string_value(json_object_get(d, "_id"))),
			       cli_esc(json_string_value(json_object_get(d, "problem"))),
			       cli_esc(json_string_value(json_object_get(d, "detail"))));
		printf("verify: %lld history record(s), %lld state(s): %s\n",
		       (long long)json_integer_value(json_object_get(cmp, "history")),
		       (long long)json_integer_value(json_object_get(cmp, "states")),
		       json_array_size(diffs) ? "DIFFERENCES (first = live, second = replay)" : "identical");
		rc = CLI_OK;
	}
	if (!rc && json_array_size(diffs))
		rc = CLI_NOT_FOUND;
	goto out;
usage:
	fprintf(stderr, "%.*s", (int)(strchr(usage, '\n') - usage + 1), usage);
	rc = CLI_USAGE;
out:
	if (*cfgpath)
		unlink(cfgpath);
	json_decref(cmp);
	ct_history_close(live);
	ct_history_close(rebuilt);
	if (start)
		rd_kafka_topic_partition_list_destroy(start);
	if (high)
		rd_kafka_topic_partition_list_destroy(high);
	if (rk)
		rd_kafka_destroy(rk);
	cli_common_free(&c);
	return rc;
}
