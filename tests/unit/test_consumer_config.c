/*
 * test_consumer_config.c - the consumer's INI file, environment overrides,
 * bounds with file:line errors, and redaction of every secret when printed.
 */
#include "testutil.h"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[256];

static void write_file(const char *text)
{
	snprintf(path, sizeof(path), "/tmp/ctc-config-%ld.ini", (long)getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_defaults(void **state)
{
	ctc_config c;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_string_equal(c.topic, "changetrail.events");
	assert_string_equal(c.dlq_topic, "changetrail.events.dlq");
	assert_string_equal(c.group_id, "changetrail-consumer");
	assert_string_equal(c.mongodb_database, "changetrail");
	assert_string_equal(c.http_listen, "127.0.0.1:9464");
	assert_int_equal(c.batch_size, 500);
	assert_int_equal(c.batch_ms, 200);
	assert_int_equal(c.cache_max_documents, 100000);
	assert_int_equal(c.cache_max_mb, 512);
	assert_int_equal(c.state_flush_ms, 2000);
	assert_int_equal(c.state_flush_max_documents, 20000);
	assert_int_equal(c.shutdown_timeout_ms, 30000);
	assert_int_equal(c.history_ttl_days, 0); /* no TTL unless asked */
	ct_error err;
	/* bootstrap.servers is required */
	assert_int_equal(ctc_config_validate(&c, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "bootstrap.servers"));
	ctc_config_free(&c);
}

static void test_file_and_env(void **state)
{
	ctc_config c;
	ct_error err;
	write_file("# comment\n[kafka]\nbootstrap.servers = 127.0.0.1:1\nsasl.password = hunter2\n"
		   "\n[mongodb]\nuri = mongodb://u:p%40ss@h:1/?authSource=x\ndatabase=hist\nhistory_ttl_days = 365\n"
		   "[consumer]\nbatch_size = 10\n ; another\n[http]\nlisten = 0.0.0.0:0\n");
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_int_equal(ctc_config_load_file(&c, path, &err), 0);
	char *env[] = {"CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=10.0.0.1:9092", "CHANGETRAIL_CONSUMER_BATCH_MS=5",
		       "CHANGETRAIL_MONGODB_DATABASE=other", "PATH=/bin", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_string_equal(ctc_config_kafka_get(&c, "bootstrap.servers"), "10.0.0.1:9092");
	assert_int_equal(c.batch_size, 10);
	assert_int_equal(c.batch_ms, 5);
	assert_string_equal(c.mongodb_database, "other");
	assert_int_equal(c.history_ttl_days, 365);
	assert_string_equal(c.http_listen, "0.0.0.0:0");
	assert_int_equal(ctc_config_validate(&c, &err), 0);

	/* printing never shows a secret */
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	ctc_config_print(&c, out);
	fclose(out);
	assert_null(strstr(buf, "hunter2"));
	assert_null(strstr(buf, "p%40ss"));
	assert_non_null(strstr(buf, "sasl.password = ***"));
	assert_non_null(strstr(buf, "uri = mongodb://***@h:1/?authSource=x"));
	free(buf);
	ctc_config_free(&c);
	unlink(path);
}

static void expect_error(const char *text, const char *needle)
{
	ctc_config c;
	ct_error err;
	write_file(text);
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	int rc = ctc_config_load_file(&c, path, &err);
	if (rc == 0)
		rc = ctc_config_validate(&c, &err);
	assert_int_not_equal(rc, 0);
	if (!strstr(err.message, needle))
		fail_msg("'%s' does not contain '%s'", err.message, needle);
	ctc_config_free(&c);
	unlink(path);
}

/* [anchor] and store_stall_ms: defaults (anchors off), file, environment, checks */
static void test_anchor_and_stall_keys(void **state)
{
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_string_equal(c.anchor_topic, "");
	assert_string_equal(c.anchor_file, "");
	assert_int_equal(c.anchor_interval_ms, 10000);
	assert_int_equal(c.store_stall_ms, 10000);
	ctc_config_free(&c);
	write_file("[kafka]\nbootstrap.servers = h:1\n[consumer]\nstore_stall_ms = 2500\n"
		   "[anchor]\ntopic = changetrail.anchors\nfile = /var/lib/a.jsonl\nhmac_key_file = /etc/k\n");
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_int_equal(ctc_config_load_file(&c, path, &err), 0);
	char *env[] = {"CHANGETRAIL_ANCHOR_INTERVAL_MS=500", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_int_equal(ctc_config_validate(&c, &err), 0);
	assert_int_equal(c.store_stall_ms, 2500);
	assert_int_equal(c.anchor_interval_ms, 500);
	assert_string_equal(c.anchor_topic, "changetrail.anchors");
	assert_string_equal(c.anchor_file, "/var/lib/a.jsonl");
	assert_string_equal(c.anchor_hmac_key_file, "/etc/k");
	ctc_config_free(&c);
	unlink(path);
	expect_error("[kafka]\nbootstrap.servers = h:1\n[anchor]\ntopic = changetrail.events\n",
		     "[anchor] topic must differ");
	expect_error("[kafka]\nbootstrap.servers = h:1\n[anchor]\nhmac_key_file = /k\n", "needs [anchor] topic or file");
	expect_error("[consumer]\nstore_stall_ms = 5\n", "store_stall_ms must be an integer in 100..");
}

static void test_errors_name_file_and_line(void **state)
{
	char where[300];
	expect_error("[consumer]\nbatch_size = 0\n", ":2: [consumer] batch_size must be an integer in 1..10000");
	expect_error("[consumer]\n\nbatch_size = 10001\n", ":3:");
	expect_error("[consumer]\nbatch_size = 12abc\n", "batch_size");
	expect_error("[consumer]\nstate_flush_ms = -1\n", ":2: [consumer] state_flush_ms must be an integer in 0..600000");
	expect_error("[consumer]\nstate_flush_max_documents = 0\n", "state_flush_max_documents");
	expect_error("[consumer]\ncache_max_mb = 0\n", ":2: [consumer] cache_max_mb must be an integer in 1..1048576");
	expect_error("[mongodb]\nhistory_ttl_days = -1\n", ":2: [mongodb] history_ttl_days must be an integer in 0..36500");
	expect_error("[nope]\n", ":1: unknown section [nope]");
	expect_error("[consumer]\ncolour = blue\n", ":2: unknown key 'colour' in [consumer]");
	expect_error("x = 1\n", ":1: key outside of any [section]");
	expect_error("[consumer]\njust words\n", ":2: expected 'key = value'");
	expect_error("[kafka\n", ":1: malformed section header");
	expect_error("[kafka]\nbootstrap.servers=a:1\nenable.auto.commit=true\n", "enable.auto.commit is set by the consumer");
	expect_error("[kafka]\nbootstrap.servers=a:1\n[http]\nlisten=nocolon\n", "[http] listen");
	expect_error("[kafka]\nbootstrap.servers=a:1\n[mongodb]\ndatabase=a.b\n", "[mongodb] database");
	snprintf(where, sizeof(where), "%s", path);
	(void)where;
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_int_equal(ctc_config_load_file(&c, "/nonexistent/x.ini", &err), CT_EIO);
	assert_non_null(strstr(err.message, "/nonexistent/x.ini"));
	char *env[] = {"CHANGETRAIL_CONSUMER_BATCH_SIZE=0", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "environment CHANGETRAIL_CONSUMER_BATCH_SIZE"));
	ctc_config_free(&c);
}

/* [consumer] key_check: strict by default, off allowed, anything else refused naming the key. */
static void test_key_check(void **state)
{
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_string_equal(c.key_check, "strict");
	char *env[] = {"CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1", "CHANGETRAIL_CONSUMER_KEY_CHECK=off", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_string_equal(c.key_check, "off");
	assert_int_equal(ctc_config_validate(&c, &err), 0);
	char *bad[] = {"CHANGETRAIL_CONSUMER_KEY_CHECK=loose", NULL};
	assert_int_equal(ctc_config_apply_env(&c, bad, &err), 0);
	assert_int_equal(ctc_config_validate(&c, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "key_check"));
	ctc_config_free(&c);
}

static void test_redaction(void **state)
{
	char out[256];
	assert_string_equal(ctc_config_redact_uri("mongodb://127.0.0.1:1/", out, sizeof(out)), "mongodb://127.0.0.1:1/");
	assert_string_equal(ctc_config_redact_uri("mongodb://u:p@h/db", out, sizeof(out)), "mongodb://***@h/db");
	assert_string_equal(ctc_config_redact_uri("mongodb://u:p@@x@h,h2/db", out, sizeof(out)), "mongodb://***@h,h2/db");
	assert_string_equal(ctc_config_redact_uri("mongodb+srv://only@h", out, sizeof(out)), "mongodb+srv://***@h");
	assert_true(ctc_config_is_secret_key("sasl.password"));
	assert_true(ctc_config_is_secret_key("ssl.key.password"));
	assert_true(ctc_config_is_secret_key("sasl.oauthbearer.client.secret"));
	assert_false(ctc_config_is_secret_key("bootstrap.servers"));
	assert_false(ctc_config_is_secret_key("sasl.username"));
}


/* Issue #21: [kafka] typos and refused values fail --check-config's validation, naming file:line. */
static void test_kafka_properties_through_librdkafka(void **state)
{
	char want[400];
	/* unknown property: the bootstrap.server (bootstrap.servers is there too) */
	write_file("[kafka]\nbootstrap.servers = h:1\nbootstrap.server = h:2\n");
	snprintf(want, sizeof(want), "%s:3: [kafka] bootstrap.server: unknown librdkafka property", path);
	expect_error("[kafka]\nbootstrap.servers = h:1\nbootstrap.server = h:2\n", want);
	/* a value out of the property's set */
	write_file("");
	snprintf(want, sizeof(want), "%s:4: [kafka] security.protocol: invalid value", path);
	expect_error("[kafka]\nbootstrap.servers = h:1\n\nsecurity.protocol = SASL_SSSL\n", want);
	expect_error("[kafka]\nbootstrap.servers = h:1\nsecurity.protocol = SASL_SSSL\n", "SASL_SSSL");
	/* a value out of range */
	expect_error("[kafka]\nbootstrap.servers = h:1\nsession.timeout.ms = -5\n", ":3: [kafka] session.timeout.ms: invalid value");
	/* from the environment: the variable is named */
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	char *env[] = {"CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=h:1", "CHANGETRAIL_KAFKA_LINGER_MSS=5", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_int_equal(ctc_config_validate(&c, &err), CT_ECONFIG);
	if (!strstr(err.message, "environment CHANGETRAIL_KAFKA_LINGER_MSS: [kafka] linger.mss: unknown librdkafka property"))
		fail_msg("%s", err.message);
	ctc_config_free(&c);
	/* what librdkafka takes passes: consumer, producer and topic properties, secrets */
	write_file("[kafka]\nbootstrap.servers = h:1\nsecurity.protocol = SASL_SSL\nsasl.mechanisms = SCRAM-SHA-512\n"
		   "sasl.username = u\nsasl.password = p\"w'#x\nauto.offset.reset = earliest\nlinger.ms = 5\n"
		   "session.timeout.ms = 45000\nqueued.max.messages.kbytes = 16384\n");
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	assert_int_equal(ctc_config_load_file(&c, path, &err), 0);
	if (ctc_config_validate(&c, &err))
		fail_msg("%s", err.message);
	ctc_config_free(&c);
	unlink(path);
}

static void load_ok(const char *text, ctc_config *c)
{
	ct_error err;
	write_file(text);
	assert_int_equal(ctc_config_init(c, NULL), 0);
	if (ctc_config_load_file(c, path, &err))
		fail_msg("%s", err.message);
	unlink(path);
}

/* Issue #21: quotes around a value are dropped, a trailing comment is not part of it. */
static void test_values_quotes_and_comments(void **state)
{
	ctc_config c;
	load_ok("[kafka]\nbootstrap.servers = \"k:9092\"  # comment\nclient.id = 'a b ' ; c\n"
		"sasl.password = ab#c;d\nsasl.username = \"#not; a comment\"\nssl.key.password = 'say \"hi\"'\n"
		"client.rack = r1 # rack\nssl.endpoint.identification.algorithm = # none\n"
		"[consumer]\nbatch_size = 10 ; small\nlog_level = \"debug\"\n"
		"[http]\nlisten = 0.0.0.0:9464\t# all interfaces\n", &c);
	assert_string_equal(ctc_config_kafka_get(&c, "bootstrap.servers"), "k:9092");
	assert_string_equal(ctc_config_kafka_get(&c, "client.id"), "a b ");
	assert_string_equal(ctc_config_kafka_get(&c, "sasl.password"), "ab#c;d");
	assert_string_equal(ctc_config_kafka_get(&c, "sasl.username"), "#not; a comment");
	assert_string_equal(ctc_config_kafka_get(&c, "ssl.key.password"), "say \"hi\"");
	assert_string_equal(ctc_config_kafka_get(&c, "client.rack"), "r1");
	assert_string_equal(ctc_config_kafka_get(&c, "ssl.endpoint.identification.algorithm"), "");
	assert_int_equal(c.batch_size, 10);
	assert_string_equal(c.log_level, "debug");
	assert_string_equal(c.http_listen, "0.0.0.0:9464");
	ctc_config_free(&c);
	/* an empty pair of quotes is an empty value */
	load_ok("[anchor]\nfile = \"\"\n", &c);
	assert_string_equal(c.anchor_file, "");
	ctc_config_free(&c);
	expect_error("[kafka]\nbootstrap.servers = \"k:9092\n", ":2: no closing \" quote");
	expect_error("[kafka]\nbootstrap.servers = 'k:9092\" # x\n", ":2: no closing ' quote");
	expect_error("[kafka]\nbootstrap.servers = \"k\":9092\n", ":2: text after the closing \" quote");
}

/* What ctc_config_fprint_value() writes reads back as it was (replay writes the consumer's file so). */
static void test_values_written_read_back(void **state)
{
	static const char *const values[] = {"plain", "", "a#b;c", "a #b", "#x", ";x", " lead", "trail ",
					     "\"q", "'q", "say \"hi\" #1", "it's ;", "k:9092", "x = y"};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&buf, &len);
		fputs("[kafka]\nclient.id = ", out);
		assert_true(ctc_config_fprint_value(out, values[i]));
		fputs("\n", out);
		fclose(out);
		ctc_config c;
		load_ok(buf, &c);
		if (strcmp(ctc_config_kafka_get(&c, "client.id"), values[i]))
			fail_msg("'%s' written as '%s' reads back as '%s'", values[i], buf, ctc_config_kafka_get(&c, "client.id"));
		ctc_config_free(&c);
		free(buf);
	}
	/* both quote characters and a comment: no form reads back the same */
	FILE *null = fopen("/dev/null", "w");
	assert_false(ctc_config_fprint_value(null, "a\"b' #c"));
	fclose(null);
}

/* Issue #21: CHANGETRAIL_* variables that name no section are warned about, not fatal. */
static void test_env_unknown_variables_warned(void **state)
{
	ctc_config c;
	ct_error err;
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	char *env[] = {"CHANGETRAIL_CONSUMER=/opt/bin/changetrail-consumer", "CHANGETRAIL_LIB=/opt/lib/libchangetrail.so",
		       "CHANGETRAIL_TOKEN=x", "CHANGETRAIL_CONSUMERS_BATCH_SIZE=3", "CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=h:1",
		       "CHANGETRAIL_\x1b[31m=1", NULL};
	assert_int_equal(ctc_config_apply_env(&c, env, &err), 0);
	assert_int_equal(c.nwarnings, 3);
	assert_non_null(strstr(c.warnings[0], "environment CHANGETRAIL_TOKEN ignored"));
	assert_non_null(strstr(c.warnings[1], "environment CHANGETRAIL_CONSUMERS_BATCH_SIZE ignored"));
	assert_non_null(strstr(c.warnings[2], "CHANGETRAIL_?[31m ignored")); /* one printable line */
	assert_int_equal(c.batch_size, 500);
	assert_int_equal(ctc_config_validate(&c, &err), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	ctc_config_print_warnings(&c, "changetrail-consumer", out);
	fclose(out);
	assert_non_null(strstr(buf, "changetrail-consumer: warning: environment CHANGETRAIL_TOKEN ignored"));
	assert_null(strstr(buf, "CHANGETRAIL_CONSUMER="));
	assert_null(strstr(buf, "CHANGETRAIL_LIB"));
	free(buf);
	/* a typo inside a known section still fails */
	char *typo[] = {"CHANGETRAIL_CONSUMER_BATCH_SIZ=3", NULL};
	assert_int_equal(ctc_config_apply_env(&c, typo, &err), CT_ECONFIG);
	assert_non_null(strstr(err.message, "environment CHANGETRAIL_CONSUMER_BATCH_SIZ: unknown key 'batch_siz' in [consumer]"));
	ctc_config_free(&c);
	/* warnings are bounded */
	assert_int_equal(ctc_config_init(&c, NULL), 0);
	char names[40][32], *many[41];
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "CHANGETRAIL_X%d=1", i);
		many[i] = names[i];
	}
	many[40] = NULL;
	assert_int_equal(ctc_config_apply_env(&c, many, &err), 0);
	assert_int_equal(c.nwarnings, CTC_CONFIG_MAX_WARNINGS);
	assert_int_equal(c.warnings_dropped, 40 - CTC_CONFIG_MAX_WARNINGS);
	ctc_config_free(&c);
}

/* The daemon as a user runs it: --check-config exits 2 naming file:line, warnings on stderr. */
static int run_consumer(const char *envs, const char *config, char **errout)
{
	char cmd[2048], errfile[256];
	const char *dir = getenv("CT_BINARY_DIR");
	ct_test_unique_name(errfile, sizeof(errfile), "/tmp/ct-config-check");
	snprintf(cmd, sizeof(cmd), "env %s %s/consumer/changetrail-consumer --check-config --config %s >/dev/null 2>%s",
		 envs, dir ? dir : ".", config, errfile);
	int st = system(cmd);
	*errout = ct_test_read_file(errfile, NULL);
	remove(errfile);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_consumer_args(const char *args, char **errout)
{
	char cmd[2048], errfile[256];
	const char *dir = getenv("CT_BINARY_DIR");
	ct_test_unique_name(errfile, sizeof(errfile), "/tmp/ct-config-args");
	snprintf(cmd, sizeof(cmd), "%s/consumer/changetrail-consumer %s >/dev/null 2>%s", dir ? dir : ".", args, errfile);
	int st = system(cmd);
	*errout = ct_test_read_file(errfile, NULL);
	remove(errfile);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Issue #21: the daemon's options, parsed as getopt_long does, with messages that say what is wrong. */
static void test_command_line(void **state)
{
	static const struct {
		const char *args, *message;
		int rc;
	} cases[] = {
		{"--config", "--config needs a value", 2},
		{"--check-config --config", "--config needs a value", 2},
		{"--bogus", "unknown option '--bogus'", 2},
		{"-x", "unknown option '-x'", 2},
		{"--check-config extra", "unexpected argument 'extra'", 2},
		{"--config=/nonexistent/c.ini --check-config", "/nonexistent/c.ini: cannot open", 2},
		{"--version", "", 0},
		{"-h", "", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;
		int rc = run_consumer_args(cases[i].args, &err);
		if (rc != cases[i].rc || !err || !strstr(err, cases[i].message))
			fail_msg("changetrail-consumer %s: exit %d, stderr: %s (want %d and '%s')", cases[i].args, rc,
				 err ? err : "(none)", cases[i].rc, cases[i].message);
		free(err);
	}
	/* --config=FILE and --config FILE alike */
	char *err = NULL, args[600];
	write_file("[kafka]\nbootstrap.servers = h:1\n");
	snprintf(args, sizeof(args), "--check-config --config=%s", path);
	assert_int_equal(run_consumer_args(args, &err), 0);
	free(err);
	snprintf(args, sizeof(args), "--config %s --check-config --no-write", path);
	assert_int_equal(run_consumer_args(args, &err), 0);
	free(err);
	unlink(path);
}

static void test_check_config_command(void **state)
{
	char *err = NULL, want[400];
	write_file("[kafka]\nbootstrap.servers = h:1\nsecurity.protocol = SASL_SSSL\n");
	assert_int_equal(run_consumer("", path, &err), 2);
	snprintf(want, sizeof(want), "%s:3: [kafka] security.protocol: invalid value", path);
	if (!err || !strstr(err, want))
		fail_msg("stderr: %s", err ? err : "(none)");
	free(err);
	write_file("[kafka]\nbootstrap.servers = \"h:1\"  # the broker\n");
	assert_int_equal(run_consumer("CHANGETRAIL_CONSUMER=/x CHANGETRAIL_NOPE=1", path, &err), 0);
	if (!err || !strstr(err, "changetrail-consumer: warning: environment CHANGETRAIL_NOPE ignored") ||
	    strstr(err, "CHANGETRAIL_CONSUMER"))
		fail_msg("stderr: %s", err ? err : "(none)");
	free(err);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file_and_env),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_redaction),
		cmocka_unit_test(test_key_check),
		cmocka_unit_test(test_anchor_and_stall_keys),
		cmocka_unit_test(test_kafka_properties_through_librdkafka),
		cmocka_unit_test(test_values_quotes_and_comments),
		cmocka_unit_test(test_values_written_read_back),
		cmocka_unit_test(test_env_unknown_variables_warned),
		cmocka_unit_test(test_check_config_command),
		cmocka_unit_test(test_command_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
