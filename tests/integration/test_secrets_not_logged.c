/*
 * test_secrets_not_logged.c - passwords in configurations never reach
 * output: changetrail-consumer's --check-config, its logs at debug level
 * (librdkafka's debug included) while it runs against the real Kafka and
 * FerretDB with a MongoDB URI holding user:password, its start-up error for
 * a malformed URI, and the changetrail CLI's errors for such URIs. Each
 * password is a unique marker searched in every byte written.
 */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bootstrap, *mongo_uri;
static char kafka_pw[96], mongo_pw[96], pw_tail[96], config[200], out_path[256];

/* "127.0.0.1:port" of CT_MONGODB_URI. */
static const char *mongo_hostport(void)
{
	static char hp[128];
	const char *s = strstr(mongo_uri, "://");
	snprintf(hp, sizeof(hp), "%s", s ? s + 3 : mongo_uri);
	hp[strcspn(hp, "/?")] = '\0';
	return hp;
}

static void write_config(const char *uri, const char *topic, const char *extra_kafka)
{
	FILE *f = fopen(config, "w");
	assert_non_null(f);
	fprintf(f, "[kafka]\nbootstrap.servers = %s\nsasl.username = ct\nsasl.password = %s\n"
		   "ssl.key.password = %s\n%s"
		   "[mongodb]\nuri = %s\ndatabase = ctsecrets\n"
		   "[consumer]\ntopic = %s\ngroup_id = g-%s\nlog_level = debug\nexit_on_idle_ms = 1500\n"
		   "shutdown_timeout_ms = 2000\n[http]\nlisten =\n",
		bootstrap, kafka_pw, kafka_pw, extra_kafka, uri, topic, topic);
	fclose(f);
}

/* Runs argv with stdout+stderr into out_path; SIGTERM after term_ms (then
 * SIGKILL 5 s later). Returns the exit status. */
static int run(char *const argv[], int term_ms)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int64_t t0 = ct_test_now_us();
	int status, termed = 0;
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		int64_t ms = (ct_test_now_us() - t0) / 1000;
		if (!termed && ms > term_ms) {
			kill(pid, SIGTERM);
			termed = 1;
		} else if (ms > term_ms + 5000) {
			kill(pid, SIGKILL);
		}
		usleep(50000);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *bin(const char *rel)
{
	static char path[2][1024];
	static int i;
	const char *dir = getenv("CT_BINARY_DIR");
	i ^= 1;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir ? dir : ".", rel);
	return path[i];
}

/* The output holds neither password; returns it (malloc'd) for more checks. */
static char *assert_output_clean(const char *what)
{
	size_t len;
	char *text = ct_test_read_file(out_path, &len);
	assert_non_null(text);
	if (ct_test_contains(text, len, kafka_pw) || ct_test_contains(text, len, mongo_pw) ||
	    ct_test_contains(text, len, pw_tail))
		fail_msg("%s printed a password:\n%s", what, text);
	return text;
}

static void test_check_config_redacts(void **state)
{
	char uri[512];
	snprintf(uri, sizeof(uri), "mongodb://ctuser:%s@%s/?authSource=admin", mongo_pw, mongo_hostport());
	write_config(uri, "t", "");
	char *argv[] = {(char *)bin("consumer/changetrail-consumer"), "--config", config, "--check-config", NULL};
	assert_int_equal(run(argv, 20000), 0);
	char *out = assert_output_clean("--check-config");
	/* and it did print the settings, redacted */
	assert_non_null(strstr(out, "sasl.password = ***"));
	assert_non_null(strstr(out, "ssl.key.password = ***"));
	assert_non_null(strstr(out, "uri = mongodb://***@"));
	assert_non_null(strstr(out, "sasl.username = ct"));
	free(out);

	/* the same through the environment */
	setenv("CHANGETRAIL_KAFKA_SASL_PASSWORD", kafka_pw, 1);
	setenv("CHANGETRAIL_MONGODB_URI", uri, 1);
	write_config("mongodb://127.0.0.1/", "t", "");
	assert_int_equal(run(argv, 20000), 0);
	free(assert_output_clean("--check-config (environment)"));
	unsetenv("CHANGETRAIL_KAFKA_SASL_PASSWORD");
	unsetenv("CHANGETRAIL_MONGODB_URI");
}

static void test_running_consumer_logs_no_password(void **state)
{
	char uri[512], topic[128];
	ct_test_unique_name(topic, sizeof(topic), "ct-secrets");
	/* FerretDB (embedded) has no users: the authentication fails and the
	 * consumer keeps retrying, logging the failure, until SIGTERM. */
	snprintf(uri, sizeof(uri), "mongodb://ctuser:%s@%s/?authSource=admin&serverSelectionTimeoutMS=1000",
		 mongo_pw, mongo_hostport());
	/* librdkafka's own debug output too (its config dump included) */
	write_config(uri, topic, "debug = generic,broker,security,conf\n");
	char *argv[] = {(char *)bin("consumer/changetrail-consumer"), "--config", config, NULL};
	run(argv, 6000);
	char *out = assert_output_clean("changetrail-consumer");
	/* it did run and log (librdkafka debug and MongoDB trouble included) */
	assert_non_null(strstr(out, "consumer started"));
	assert_non_null(strstr(out, "facility="));
	free(out);

	/* a URI libmongoc cannot parse: the start-up error */
	snprintf(uri, sizeof(uri), "mongodb://ctuser:%s@127.0.0.1:notaport/", mongo_pw);
	write_config(uri, topic, "");
	int rc = run(argv, 20000);
	out = assert_output_clean("changetrail-consumer (bad URI)");
	if (rc == 0)
		fail_msg("a malformed URI was accepted:\n%s", out);
	free(out);
}

static void test_cli_errors_show_no_password(void **state)
{
	char uri[512];
	/* nothing listens on port 1: a connection error after server selection */
	snprintf(uri, sizeof(uri), "mongodb://ctuser:%s@127.0.0.1:1/?serverSelectionTimeoutMS=500&connectTimeoutMS=500",
		 mongo_pw);
	char *argv[] = {(char *)bin("cli/changetrail"), "log", "things", "x", "--uri", uri, NULL};
	int rc = run(argv, 20000);
	char *out = assert_output_clean("changetrail log");
	if (rc == 0 || !*out)
		fail_msg("expected an error, got exit %d:\n%s", rc, out);
	free(out);

	snprintf(uri, sizeof(uri), "mongodb://ctuser:%s@127.0.0.1:notaport/", mongo_pw);
	rc = run(argv, 20000);
	out = assert_output_clean("changetrail log (bad URI)");
	if (rc == 0 || !*out)
		fail_msg("expected an error, got exit %d:\n%s", rc, out);
	free(out);

	/* against the real server, which does not know the user */
	snprintf(uri, sizeof(uri), "mongodb://ctuser:%s@%s/?authSource=admin&serverSelectionTimeoutMS=1000",
		 mongo_pw, mongo_hostport());
	run(argv, 20000);
	free(assert_output_clean("changetrail log (FerretDB)"));
}

/*
 * A password with an unescaped '@' (libmongoc cuts it at the first '@' and
 * takes the rest for a host name it then quotes), ':' or '/': neither part
 * shows, at start-up, in --check-config or in the CLI; the URI is refused.
 */
static void test_malformed_userinfo_never_shows(void **state)
{
	char uris[5][512];
	const char *hp = mongo_hostport();
	snprintf(uris[0], sizeof(uris[0]), "mongodb://ctuser:%s@%s@%s/?serverSelectionTimeoutMS=1000", mongo_pw, pw_tail, hp);
	snprintf(uris[1], sizeof(uris[1]), "mongodb://ctuser:%s@%s@%s,127.0.0.1:1/?serverSelectionTimeoutMS=1000",
		 mongo_pw, pw_tail, hp);
	snprintf(uris[2], sizeof(uris[2]), "mongodb://ctuser:%s:%s@%s/", mongo_pw, pw_tail, hp);
	snprintf(uris[3], sizeof(uris[3]), "mongodb://ctuser:%s/%s@%s/", mongo_pw, pw_tail, hp);
	snprintf(uris[4], sizeof(uris[4]), "mongodb+srv://ctuser:%s@%s@cluster0.invalid/", mongo_pw, pw_tail);
	for (size_t i = 0; i < 5; i++) {
		char what[64];
		char *cli[] = {(char *)bin("cli/changetrail"), "log", "things", "x", "--uri", uris[i], NULL};
		snprintf(what, sizeof(what), "changetrail log (URI %zu)", i);
		int rc = run(cli, 20000);
		char *out = assert_output_clean(what);
		if (rc == 0 || !*out)
			fail_msg("%s: expected an error, got exit %d:\n%s", what, rc, out);
		free(out);

		write_config(uris[i], "t", "");
		char *check[] = {(char *)bin("consumer/changetrail-consumer"), "--config", config, "--check-config", NULL};
		snprintf(what, sizeof(what), "--check-config (URI %zu)", i);
		rc = run(check, 20000);
		free(assert_output_clean(what));
	}
	/* the consumer refuses to start (on today's main it ran and logged the tail as a host) */
	char topic[128];
	ct_test_unique_name(topic, sizeof(topic), "ct-secrets-at");
	write_config(uris[0], topic, "");
	char *argv[] = {(char *)bin("consumer/changetrail-consumer"), "--config", config, NULL};
	int rc = run(argv, 6000);
	char *out = assert_output_clean("changetrail-consumer (password with '@')");
	if (rc == 0 || rc >= 128)
		fail_msg("a URI with an unescaped '@' in the password was not refused (exit %d):\n%s", rc, out);
	assert_non_null(strstr(out, "%40"));
	free(out);
}

int main(void)
{
	bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	mongo_uri = ct_test_server_env("CT_MONGODB_URI");
	ct_test_unique_name(kafka_pw, sizeof(kafka_pw), "kpw-Zq9");
	ct_test_unique_name(mongo_pw, sizeof(mongo_pw), "mpw-Xv7");
	/* lowercase: libmongoc lowercases what it takes for a host name */
	ct_test_unique_name(pw_tail, sizeof(pw_tail), "tail-jq4");
	ct_test_unique_name(config, sizeof(config), "/tmp/ct-secrets");
	snprintf(out_path, sizeof(out_path), "%s.out", config);
	strcat(config, ".ini");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_config_redacts),
		cmocka_unit_test(test_running_consumer_logs_no_password),
		cmocka_unit_test(test_cli_errors_show_no_password),
		cmocka_unit_test(test_malformed_userinfo_never_shows),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (rc == 0) {
		unlink(config);
		unlink(out_path);
	}
	return rc;
}
