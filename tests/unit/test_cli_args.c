/*
 * test_cli_args.c - the time and duration arguments of the history
 * commands, and bad usage of the CLI: exit 2 with a message that says
 * what is wrong (no server needed: usage is checked before connecting).
 */
#include "testutil.h"

#include "changetrail/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void test_durations(void **state)
{
	int64_t us;
	assert_int_equal(ct_history_parse_duration("90s", &us, NULL), 0);
	assert_int_equal(us, INT64_C(90000000));
	assert_int_equal(ct_history_parse_duration("2h", &us, NULL), 0);
	assert_int_equal(us, INT64_C(7200000000));
	assert_int_equal(ct_history_parse_duration("3d", &us, NULL), 0);
	assert_int_equal(us, INT64_C(259200000000));
	assert_int_equal(ct_history_parse_duration("1w", &us, NULL), 0);
	assert_int_equal(us, INT64_C(604800000000));
	/* the largest that fit in int64 microseconds, then the smallest that do not */
	assert_int_equal(ct_history_parse_duration("15250284w", &us, NULL), 0);
	assert_int_equal(us, INT64_C(15250284) * INT64_C(604800000000));
	assert_int_equal(ct_history_parse_duration("106751991d", &us, NULL), 0);
	assert_int_equal(us, INT64_C(106751991) * INT64_C(86400000000));
	const char *bad[] = {"", "h", "2", "2x", "0d", "-1d", "2hh", "1234567890d", "2 h", "1.5h",
			     "15250285w", "999999999w", "106751992d", "999999999d"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ct_error err;
		assert_int_equal(ct_history_parse_duration(bad[i], &us, &err), CT_EPARSE);
		assert_non_null(strstr(err.message, "duration"));
	}
}

static void test_times(void **state)
{
	int64_t us, now = INT64_C(1700000000000000);
	assert_int_equal(ct_history_parse_time("2024-05-01T10:00:00Z", now, &us, NULL), 0);
	assert_int_equal(us, INT64_C(1714557600000000));
	assert_int_equal(ct_history_parse_time("2024-05-01T12:00:00.5+02:00", now, &us, NULL), 0);
	assert_int_equal(us, INT64_C(1714557600500000));
	assert_int_equal(ct_history_parse_time("2h", now, &us, NULL), 0);
	assert_int_equal(us, now - INT64_C(7200000000));
	assert_int_equal(ct_history_parse_time("3d ago", now, &us, NULL), 0);
	assert_int_equal(us, now - INT64_C(259200000000));
	/* issue #21: a date alone is its midnight UTC; compound durations */
	assert_int_equal(ct_history_parse_time("2024-05-01", now, &us, NULL), 0);
	assert_int_equal(us, INT64_C(1714521600000000));
	assert_int_equal(ct_history_parse_time("1h30m", now, &us, NULL), 0);
	assert_int_equal(us, now - INT64_C(5400000000));
	assert_int_equal(ct_history_parse_time("1d12h ago", now, &us, NULL), 0);
	assert_int_equal(us, now - INT64_C(129600000000));
	const char *bad[] = {"yesterday", "2024-02-30T00:00:00Z", "", "now", "5", "2024-5-01", "2024-05-01 ",
			     "20240501", "2024-05-01T"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ct_error err;
		assert_int_equal(ct_history_parse_time(bad[i], now, &us, &err), CT_EPARSE);
		if (!strstr(err.message, "RFC 3339"))
			fail_msg("'%s': %s", bad[i], err.message);
	}
	ct_error err;
	assert_int_equal(ct_history_parse_time("2024-02-30", now, &us, &err), CT_EPARSE);
	assert_non_null(strstr(err.message, "no such date"));
}

/* issue #21: several units from the largest down, each once */
static void test_compound_durations(void **state)
{
	int64_t us;
	static const struct {
		const char *s;
		int64_t us;
	} good[] = {
		{"1h30m", INT64_C(5400000000)},
		{"2m30s", INT64_C(150000000)},
		{"1w2d", INT64_C(777600000000)},
		{"1w2d3h4m5s", INT64_C(604800000000) + INT64_C(172800000000) + INT64_C(10800000000) +
				       INT64_C(240000000) + INT64_C(5000000)},
		{"1h0m", INT64_C(3600000000)},
		{"0h1s", INT64_C(1000000)},
		{"15250284w", INT64_C(15250284) * INT64_C(604800000000)},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ct_error err;
		if (ct_history_parse_duration(good[i].s, &us, &err))
			fail_msg("'%s': %s", good[i].s, err.message);
		assert_int_equal(us, good[i].us);
	}
	static const struct {
		const char *s, *message;
	} bad[] = {
		{"30m1h", "from the largest"}, {"1h1h", "from the largest"}, {"1h30", "expected numbers"},
		{"h30m", "expected numbers"},  {"0h0m", "positive"},          {"1h 30m", "expected numbers"},
		{"15250284w4d", "too large"},  {"1h30x", "unknown unit 'x'"}, {"1h-30m", "expected numbers"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ct_error err;
		assert_int_equal(ct_history_parse_duration(bad[i].s, &us, &err), CT_EPARSE);
		if (!strstr(err.message, bad[i].message))
			fail_msg("'%s': %s (want '%s')", bad[i].s, err.message, bad[i].message);
	}
}

/* Runs the CLI with `args` (shell words), returns its exit status; stderr in *errout. */
static int run(const char *args, char **errout)
{
	char cmd[2048], errfile[256];
	const char *dir = getenv("CT_BINARY_DIR");
	ct_test_unique_name(errfile, sizeof(errfile), "/tmp/ct-cli-args");
	/* an unreachable server: usage errors must come before any connection */
	snprintf(cmd, sizeof(cmd), "CHANGETRAIL_MONGODB_URI=mongodb://127.0.0.1:1/ %s/cli/changetrail %s >/dev/null 2>%s",
		 dir ? dir : ".", args, errfile);
	int st = system(cmd);
	*errout = ct_test_read_file(errfile, NULL);
	remove(errfile);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_usage_errors(void **state)
{
	static const struct {
		const char *args, *message;
	} cases[] = {
		{"log", "missing argument"},
		{"log a", "missing argument"},
		{"log a b c", "too many arguments"},
		{"log a b --since", "--since needs a value"},
		{"log a b --since yesterday", "RFC 3339"},
		{"log a b --format xml", "--format must be dictdiffer or jsonpatch"},
		{"log a b --bogus", "unknown option '--bogus'"},
		{"show a b --at 2h --version 3", "exclude each other"},
		{"show a b --version zero", "--version must be a positive integer"},
		{"show a b --version -1", "positive integer"},
		{"context", "missing argument"},
		{"actor bob --since 5", "RFC 3339"},
		{"revert a", "COLLECTION and ID are needed"},
		{"revert a b --to 2h --version 1", "exclude each other"},
		{"revert a b --to soon", "RFC 3339"},
		{"verify a b c", "too many arguments"},
		{"prune", "--older-than DURATION is required"},
		{"prune --older-than 30", "unit"},
		{"prune --older-than 0d", "positive"},
		{"scan --collection c", "one of --from-collection or --from-file"},
		{"scan --from-file x.jsonl", "--collection C"},
		{"replay --into x", "--from and --into (or --no-write) are required"},
		{"replay --from earliest", "--from and --into (or --no-write) are required"},
		{"replay --from earliest --no-write --into x", "no --into, no --verify"},
		{"replay --from earliest --no-write --verify", "no --into, no --verify"},
		{"replay --from earliest --into x --idle-ms 5", "--idle-ms"},
		{"replay --from earliest --no-write --metrics-listen 127.0.0.1", "--metrics-listen '127.0.0.1': expected HOST:PORT"},
		{"replay --from earliest --no-write --metrics-listen 127.0.0.1:0", "port 1..65535"},
		{"replay --from earliest --no-write --metrics-listen 127.0.0.1:65536", "port 1..65535"},
		{"replay --from earliest --no-write --metrics-listen localhost:9464", "numeric address"},
		{"replay --from earliest --no-write --metrics-listen", "--metrics-listen needs a value"},
		{"nosuchcommand", "unknown command"},
		/* issue #21: "--" ends the options; help CMD */
		{"log products --", "missing argument"},
		{"log -- -1 -2 -3", "too many arguments"},
		{"log a b -- --since", "too many arguments"},
		{"show -- -a", "missing argument"},
		{"revert -- -a -b -c", "too many arguments"},
		{"verify -- -a -b -c", "too many arguments"},
		{"help nosuchcommand", "unknown command 'nosuchcommand'"},
		{"help log show", "one command at a time"},
		{"log a b --limit 0", "--limit must be an integer in 1.."},
		{"log a b --limit ten", "--limit must be an integer"},
		{"log a b --limit", "--limit needs a value"},
		{"show a b --limit 3", "unknown option '--limit'"},
		{"show a b --jsonl", "unknown option '--jsonl'"},
		{"--config", "unknown command"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;
		int rc = run(cases[i].args, &err);
		if (rc != 2 || !err || !strstr(err, cases[i].message))
			fail_msg("changetrail %s: exit %d, stderr: %s (want 2 and '%s')", cases[i].args, rc,
				 err ? err : "(none)", cases[i].message);
		free(err);
	}
	/* what follows "--" is an argument: parsing passes, the unreachable server fails (3) */
	char *out = NULL;
	assert_int_equal(run("log products -- -1", &out), 3);
	assert_null(strstr(out, "unknown option"));
	free(out);
	/* `help CMD` is `CMD --help` */
	assert_int_equal(run("help log", &out), 0);
	free(out);
	/* --help is not an error, for every command */
	const char *cmds[] = {"log", "show", "context", "actor", "blame", "revert", "verify", "prune", "scan", "replay"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char args[64], *err = NULL;
		snprintf(args, sizeof(args), "%s --help", cmds[i]);
		assert_int_equal(run(args, &err), 0);
		free(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_compound_durations),
		cmocka_unit_test(test_usage_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
