/*
 * main.c - entry point of changetrail-consumer: command line and
 * configuration, then the pipeline until a signal.
 */
#include "changetrail/common.h"
#include "config.h"
#include "log.h"
#include "pipeline.h"
#include "store.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/*
 * The teardown after the pipeline stopped is bounded: librdkafka 2.0.2 was
 * seen (reliability suite, topic-recreated, all three workers at once) to
 * hang in rd_kafka_destroy(), its main thread joining a broker thread that
 * never ended, after a clean stop with everything written, dead letters
 * delivered and offsets committed. Nothing is left to lose then: the
 * process exits with the run's status instead of hanging until killed.
 */
#define TEARDOWN_MAX_S 20
static int teardown_rc;

static void *teardown_watchdog(void *arg)
{
	(void)arg;
	sleep(TEARDOWN_MAX_S);
	ctc_log(CTC_ERROR, "teardown hung, exiting without it", "seconds=%d", TEARDOWN_MAX_S);
	_exit(teardown_rc);
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: changetrail-consumer [--config FILE] [--check-config] [--no-write]\n"
		"       changetrail-consumer --help | --version\n"
		"\n"
		"Consumes change events from Kafka, computes structural diffs, groups\n"
		"them by context and persists history to MongoDB (docs/consumer.md).\n"
		"\n"
		"  --config FILE    INI configuration; CHANGETRAIL_<SECTION>_<KEY> variables\n"
		"                   override it (CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=...)\n"
		"  --check-config   check the configuration ([kafka] through librdkafka), print\n"
		"                   it (secrets redacted) and exit\n"
		"  --no-write       everything but the MongoDB writes (benchmarks, dry runs)\n"
		"\n"
		"exit status: 0 stopped cleanly, 1 failure, 2 bad usage or configuration\n");
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	bool check = false, no_write = false;
	ctc_config cfg;
	ct_error err;
	int rc = 1;

	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},     {"version", no_argument, NULL, 'V'},
		{"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
		{"no-write", no_argument, NULL, 'n'}, {NULL, 0, NULL, 0},
	};
	opterr = 0; /* our own messages */
	for (int o; (o = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
		switch (o) {
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("changetrail-consumer %s\n", ct_version());
			return 0;
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'n':
			no_write = true;
			break;
		case ':':
			fprintf(stderr, "changetrail-consumer: %s needs a value\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		default:
			if (optopt)
				fprintf(stderr, "changetrail-consumer: unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, "changetrail-consumer: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "changetrail-consumer: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (ctc_config_init(&cfg, &err)) {
		fprintf(stderr, "changetrail-consumer: %s\n", err.message);
		return 1;
	}
	if ((path && ctc_config_load_file(&cfg, path, &err)) || ctc_config_apply_env(&cfg, environ, &err) ||
	    ctc_config_validate(&cfg, &err)) {
		fprintf(stderr, "changetrail-consumer: %s\n", err.message);
		ctc_config_free(&cfg);
		return 2;
	}
	if (no_write)
		cfg.no_write = true;
	ctc_log_set_format((ctc_log_format)ctc_log_format_parse(cfg.log_format));
	if (check) {
		ctc_config_print_warnings(&cfg, "changetrail-consumer", stderr);
		ctc_config_print(&cfg, stdout);
		ctc_config_free(&cfg);
		return 0;
	}

	for (size_t i = 0; i < cfg.nwarnings; i++) {
		char q[600];
		ctc_log(CTC_WARN, "configuration", "warning=%s", ctc_log_q(cfg.warnings[i], q, sizeof(q)));
	}
	signal(SIGPIPE, SIG_IGN);
	ctc_store_global_init();
	ctc_pipeline *p = ctc_pipeline_new(&cfg, &err);
	if (!p) {
		ctc_log(CTC_ERROR, "cannot start", "error=\"%s\"", err.message);
		rc = err.code == CT_ECONFIG ? 2 : 1;
		goto out;
	}
	rc = ctc_pipeline_run(p, &err) ? 1 : 0;
	if (rc)
		ctc_log(CTC_ERROR, "consumer failed", "error=\"%s\"", err.message);
	teardown_rc = rc;
	pthread_t watchdog;
	if (!pthread_create(&watchdog, NULL, teardown_watchdog, NULL))
		pthread_detach(watchdog);
	ctc_pipeline_free(p);
out:
	ctc_store_global_cleanup();
	ctc_config_free(&cfg);
	return rc;
}
