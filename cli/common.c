/*
 * common.c - what the history commands share: the common options, the
 * configuration (the consumer's INI file, then CHANGETRAIL_* variables,
 * then --uri/--db), opening the database, exit codes from error codes.
 * The URI is never printed: it may hold a password.
 */
#include "cli.h"

#include "changetrail/producer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, const char **value)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n))
		return 0;
	if (a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (a[n])
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "changetrail %s: %s needs a value\n", cmd, name);
		return -1;
	}
	*value = argv[++*i];
	return 1;
}

int cli_common_arg(cli_common *c, int argc, char **argv, int *i)
{
	int r;
	if (!strcmp(argv[*i], "--json")) {
		c->json = true;
		return 1;
	}
	if ((r = cli_opt(c->cmd, argc, argv, i, "--config", &c->config_path)) ||
	    (r = cli_opt(c->cmd, argc, argv, i, "--uri", &c->uri)) ||
	    (r = cli_opt(c->cmd, argc, argv, i, "--db", &c->db)))
		return r;
	return 0;
}

int cli_load_config(cli_common *c)
{
	ct_error err;
	const char *path = c->config_path;
	if (c->cfg_loaded)
		return CLI_OK;
	if (ctc_config_init(&c->cfg, &err)) {
		fprintf(stderr, "changetrail %s: %s\n", c->cmd, cli_esc(err.message));
		return CLI_FAILURE;
	}
	c->cfg_loaded = true;
	if (!path && access(CLI_DEFAULT_CONFIG, R_OK) == 0)
		path = CLI_DEFAULT_CONFIG;
	if ((path && ctc_config_load_file(&c->cfg, path, &err)) || ctc_config_apply_env(&c->cfg, environ, &err)) {
		fprintf(stderr, "changetrail %s: %s\n", c->cmd, cli_esc(err.message));
		return CLI_USAGE;
	}
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "changetrail %s", c->cmd);
	ctc_config_print_warnings(&c->cfg, prefix, stderr);
	if (c->uri) {
		free(c->cfg.mongodb_uri);
		c->cfg.mongodb_uri = strdup(c->uri);
	}
	if (c->db) {
		free(c->cfg.mongodb_database);
		c->cfg.mongodb_database = strdup(c->db);
	}
	if (!c->cfg.mongodb_uri || !c->cfg.mongodb_database) {
		fprintf(stderr, "changetrail %s: out of memory\n", c->cmd);
		return CLI_FAILURE;
	}
	return CLI_OK;
}

void cli_common_free(cli_common *c)
{
	if (c->cfg_loaded)
		ctc_config_free(&c->cfg);
	c->cfg_loaded = false;
}

int cli_fail(const char *cmd, const ct_error *err)
{
	/* messages may quote stored values or arguments */
	fprintf(stderr, "changetrail %s: %s\n", cmd, cli_esc(err->message));
	switch (err->code) {
	case CT_ENOTFOUND:
		return CLI_NOT_FOUND;
	case CT_EINVAL:
	case CT_EPARSE:
	case CT_ECONFIG:
		return CLI_USAGE;
	default:
		return CLI_FAILURE;
	}
}

int cli_open(cli_common *c, ct_history **h)
{
	ct_error err;
	int rc = cli_load_config(c);
	if (rc)
		return rc;
	if (ct_history_open(c->cfg.mongodb_uri, c->cfg.mongodb_database, h, &err))
		return cli_fail(c->cmd, &err);
	return CLI_OK;
}

/* Consumer-only librdkafka properties: a producer would warn about each. */
static bool consumer_only(const char *key)
{
	static const char *const keys[] = {"session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
					   "auto.offset.reset", "enable.partition.eof", "isolation.level",
					   "partition.assignment.strategy", "group.instance.id",
					   "fetch.wait.max.ms", "fetch.min.bytes", "fetch.max.bytes",
					   "max.partition.fetch.bytes", "auto.commit.interval.ms",
					   "queued.min.messages", "queued.max.messages.kbytes", "check.crcs"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key, keys[i]))
			return true;
	return false;
}

int cli_producer(cli_common *c, ct_producer **out, ct_error *err)
{
	ct_producer_config *conf = ct_producer_config_new();
	char key[600];
	int rc = 0;
	*out = NULL;
	if (!conf) {
		err->code = CT_ENOMEM;
		snprintf(err->message, sizeof(err->message), "out of memory");
		return CT_ENOMEM;
	}
	if ((rc = ct_producer_config_set(conf, "source", "changetrail-cli", err)) ||
	    (rc = ct_producer_config_set(conf, "topic", c->cfg.topic, err)))
		goto out;
	for (size_t i = 0; i < c->cfg.nkafka; i++) {
		if (consumer_only(c->cfg.kafka[i].key))
			continue;
		snprintf(key, sizeof(key), "kafka.%s", c->cfg.kafka[i].key);
		if ((rc = ct_producer_config_set(conf, key, c->cfg.kafka[i].value, err)))
			goto out;
	}
	rc = ct_producer_new(conf, out, err);
out:
	ct_producer_config_destroy(conf);
	return rc;
}
