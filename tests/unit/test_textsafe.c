/*
 * test_textsafe.c - what people see stays one honest line: ct_text_escape()
 * turns every control character, C1 and bidi control and invalid UTF-8 into
 * a visible escape (JSON text stays JSON with the same value); a MongoDB
 * URI password never shows, whatever it holds (unescaped '@', ':', '/',
 * percent-escapes, several hosts, mongodb+srv), in a redacted URI, in a
 * redacted libmongoc message, and a URI whose user information a driver
 * would cut wrongly is refused before any driver sees it, by the CLI and
 * the consumer alike.
 */
#include "testutil.h"

#include "config.h"
#include "log.h"
#include "ct_textsafe.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define RLO_ "\xe2\x80\xae"

static char *esc(const char *s, size_t len, unsigned flags)
{
	ct_buf b = CT_BUF_INIT;
	assert_int_equal(ct_text_escape(&b, s, len, flags), 0);
	assert_int_equal(ct_text_is_plain(s, len, flags), b.len == len && (!len || !memcmp(b.data, s, len)));
	return ct_buf_detach(&b, NULL) ?: strdup("");
}

/* No byte a terminal acts on: C0 (but newline when `lines`), DEL, C1 and bidi/separator code points. */
static void assert_inert(const char *s, bool lines)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; p[i]; i++) {
		if ((p[i] < 0x20 && !(lines && p[i] == '\n')) || p[i] == 0x7f)
			fail_msg("raw control byte 0x%02x at %zu in: %s", p[i], i, s);
		if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
			fail_msg("raw C1 control at %zu in: %s", i, s);
		if (p[i] == 0xe2 && p[i + 1] == 0x80 && p[i + 2] >= 0xa8 && p[i + 2] <= 0xae)
			fail_msg("raw U+20%02X at %zu in: %s", p[i + 2] - 0x80, i, s);
		if (p[i] == 0xe2 && p[i + 1] == 0x81 && p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9)
			fail_msg("raw bidi isolate at %zu in: %s", i, s);
	}
}

static void test_escape_raw(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain text, ünïcode ✓", "plain text, ünïcode ✓"},
		{"\x1b[2J", "\\x1b[2J"},
		{"a\nb\rc\td", "a\\nb\\rc\\td"},
		{"\n2026-01-01 forged line", "\\n2026-01-01 forged line"},
		{"back\\slash", "back\\\\slash"},
		{"del\x7f", "del\\x7f"},
		{"bell\a", "bell\\x07"},
		{"rtl \xe2\x80\xae gnp.exe", "rtl \\u202e gnp.exe"},
		{"\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", "\\u202a\\u202b\\u202c\\u202d"},
		{"\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069"},
		{"\xe2\x80\xa8\xe2\x80\xa9", "\\u2028\\u2029"},
		{"c1 \xc2\x9b" "31m \xc2\x85", "c1 \\u009b31m \\u0085"},
		{"lrm\xe2\x80\x8e", "lrm\\u200e"},
		{"bad \xff\xfe utf8 \xc3", "bad \\xff\\xfe utf8 \\xc3"},
		{"overlong \xc0\xaf", "overlong \\xc0\\xaf"},
		{"surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80"},
		{"\xc2\xa0nbsp stays", "\xc2\xa0nbsp stays"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = esc(cases[i].in, strlen(cases[i].in), 0);
		if (strcmp(got, cases[i].out))
			fail_msg("case %zu: got '%s', want '%s'", i, got, cases[i].out);
		assert_inert(got, false);
		free(got);
	}
	/* a NUL inside the bytes */
	char *got = esc("a\0b", 3, 0);
	assert_string_equal(got, "a\\x00b");
	free(got);
}

static void test_escape_json_stays_json(void **state)
{
	const char *hostile = "\x1b[2J\n2026-01-01 forged line\xe2\x80\xae\xc2\x85\x7f\\\"\t\xe2\x80\xa8";
	json_t *v = json_pack("{s:s, s:[s]}", hostile, hostile, "k\xe2\x81\xa7", hostile);
	assert_non_null(v);
	char *text = json_dumps(v, JSON_COMPACT);
	char *e = esc(text, strlen(text), CT_ESC_JSON);
	assert_inert(e, false);
	json_error_t jerr;
	json_t *back = json_loads(e, 0, &jerr);
	if (!back)
		fail_msg("escaped JSON does not parse: %s: %s", jerr.text, e);
	assert_true(json_equal(v, back));
	/* indented JSON keeps its lines (white space outside strings) */
	char *ind = json_dumps(v, JSON_INDENT(2));
	char *ei = esc(ind, strlen(ind), CT_ESC_JSON);
	assert_inert(ei, true);
	assert_non_null(strchr(ei, '\n'));
	json_decref(back);
	back = json_loads(ei, 0, NULL);
	assert_true(json_equal(v, back));
	json_decref(back);
	json_decref(v);
	free(text);
	free(e);
	free(ind);
	free(ei);
}

static void test_redact_uri(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"mongodb://127.0.0.1:1/", "mongodb://127.0.0.1:1/"},
		{"mongodb://u:p@h/db", "mongodb://***@h/db"},
		{"mongodb://u:p@ss@h/db", "mongodb://***@h/db"},
		{"mongodb://u:p@ss@word@h1,h2:27018/db?replicaSet=r", "mongodb://***@h1,h2:27018/db?replicaSet=r"},
		{"mongodb://u:p/ss@h/db", "mongodb://***@h/db"},
		{"mongodb://u:p?ss@h/", "mongodb://***@h/"},
		{"mongodb://u:p%40ss@h/", "mongodb://***@h/"},
		{"mongodb://u:p:ss@h/", "mongodb://***@h/"},
		{"mongodb+srv://u:p@ss@cluster0.example.net/", "mongodb+srv://***@cluster0.example.net/"},
		{"mongodb+srv://only@h", "mongodb+srv://***@h"},
		{"mongodb://u:pw@h/?authMechanismProperties=AWS_SESSION_TOKEN:tok", "mongodb://***@h/?***"},
		{"u:p@ss@h", "***@h"},
	};
	char out[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ct_redact_uri(cases[i].in, out, sizeof(out));
		if (strcmp(out, cases[i].out))
			fail_msg("case %zu: got '%s', want '%s'", i, out, cases[i].out);
		assert_string_equal(ctc_config_redact_uri(cases[i].in, out, sizeof(out)), cases[i].out);
	}
	/* truncated, still NUL-terminated and without the password */
	char small[12];
	ct_redact_uri("mongodb://u:secret@h/", small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_null(strstr(small, "secret"));
}

static void test_redact_text(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"No suitable servers found: [Failed to resolve 'ss@127.0.0.1']",
		 "No suitable servers found: [Failed to resolve '***@127.0.0.1']"},
		{"bad uri mongodb://u:p@ss@h:1/db here", "bad uri mongodb://***@h:1/db here"},
		{"host=tail@h, other=x", "host=***@h, other=x"},
		{"connection refused calling hello on '127.0.0.1:1'", "connection refused calling hello on '127.0.0.1:1'"},
		{"two mongodb://a:b@h1/ and mongodb+srv://c:d@e@h2/", "two mongodb://***@h1/ and mongodb+srv://***@h2/"},
		{"", ""},
	};
	char out[512];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ct_redact_text(cases[i].in, out, sizeof(out));
		if (strcmp(out, cases[i].out))
			fail_msg("case %zu: got '%s', want '%s'", i, out, cases[i].out);
	}
}

static void test_userinfo_check(void **state)
{
	const char *good[] = {"mongodb://127.0.0.1:27017/", "mongodb://u:p@h/db", "mongodb://u:p%40ss@h1,h2/db?w=1",
			      "mongodb+srv://u:p@cluster0.example.net/?retryWrites=true", "mongodb://u@h",
			      "mongodb://u:p?ss@h/", "mongodb://h/?appname=me@example", "mongodb://u:p%2Fq@h"};
	const char *bad[] = {"mongodb://u:Pw1xQ@Tail9zK@h/", "mongodb+srv://u:Pw1xQ@Tail9zK@h/",
			     "mongodb://u:Pw1xQ@Tail9zK@h1,h2/db", "mongodb://u:Pw1xQ/Tail9zK@h/",
			     "mongodb://u:1234/?Tail9zK@h/", "mongodb://u:Pw1xQ:Tail9zK@h/",
			     "mongodb://u:Pw1xQ%zzTail9zK@h/", "mongodb://u:Pw1xQ%4@h/"};
	ct_error err;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (ct_uri_check_userinfo(good[i], "[mongodb] uri", &err))
			fail_msg("refused %s: %s", good[i], err.message);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ct_uri_check_userinfo(bad[i], "[mongodb] uri", &err) != CT_ECONFIG)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(strstr(err.message, "[mongodb] uri: "));
		assert_non_null(strstr(err.message, "percent-encode"));
		if (strstr(err.message, "Pw1xQ") || strstr(err.message, "Tail9zK") || strstr(err.message, "1234"))
			fail_msg("message quotes the password: %s", err.message);
	}
	/* the consumer's configuration check refuses it too, without quoting it */
	ctc_config cfg;
	assert_int_equal(ctc_config_init(&cfg, &err), 0);
	char *env[] = {"CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1",
		       "CHANGETRAIL_MONGODB_URI=mongodb://ctuser:Pw1xQ@Tail9zK@127.0.0.1:1/", NULL};
	assert_int_equal(ctc_config_apply_env(&cfg, env, &err), 0);
	assert_int_equal(ctc_config_validate(&cfg, &err), CT_ECONFIG);
	assert_null(strstr(err.message, "Pw1xQ"));
	assert_null(strstr(err.message, "Tail9zK"));
	ctc_config_free(&cfg);
}

/* The consumer's log values: one quoted, inert value. */
static void test_log_values(void **state)
{
	char out[256];
	ctc_log_q("a\x1b[2J\nb" RLO_ "\xc2\x9b\xff\"\\ é", out, sizeof(out));
	assert_string_equal(out, "\"a\\x1b[2J\\nb\\u202e\\u009b\\xff\\\"\\\\ é\"");
	/* truncated at a character boundary */
	char small[12];
	ctc_log_q("ééééééééé", small, sizeof(small));
	assert_string_equal(small, "\"ééé...\"");
}

/* Runs `prog args` (a shell line) with stdout+stderr captured; returns the exit status. */
static int run(const char *env, const char *prog, const char *args, char **output)
{
	char cmd[2048], outfile[256];
	const char *dir = getenv("CT_BINARY_DIR");
	ct_test_unique_name(outfile, sizeof(outfile), "/tmp/ct-textsafe");
	snprintf(cmd, sizeof(cmd), "%s timeout 20 %s/%s %s >%s 2>&1", env, dir ? dir : ".", prog, args, outfile);
	int st = system(cmd);
	*output = ct_test_read_file(outfile, NULL);
	remove(outfile);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* No server needed: the URI is refused before anything connects (libmongoc
 * would take "tailzq9@127.0.0.1" for a host and quote it). */
static void test_programs_refuse_without_quoting(void **state)
{
	static const char *const uris[] = {"mongodb://u:HeadXq7@tailzq9@127.0.0.1:1/",
					   "mongodb://u:HeadXq7@tailzq9@127.0.0.1:1,127.0.0.1:2/?replicaSet=r",
					   "mongodb+srv://u:HeadXq7@tailzq9@example.invalid/"};
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		char args[512], env[600], *out = NULL;
		snprintf(args, sizeof(args), "log things x --uri '%s'", uris[i]);
		int rc = run("", "cli/changetrail", args, &out);
		assert_non_null(out);
		if (rc == 0 || strstr(out, "HeadXq7") || strstr(out, "tailzq9") || !strstr(out, "%40"))
			fail_msg("changetrail %s: exit %d:\n%s", args, rc, out);
		free(out);
		snprintf(env, sizeof(env),
			 "CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 CHANGETRAIL_MONGODB_URI='%s'", uris[i]);
		rc = run(env, "consumer/changetrail-consumer", "", &out);
		assert_non_null(out);
		if (rc == 0 || rc == 124 || strstr(out, "HeadXq7") || strstr(out, "tailzq9") || !strstr(out, "%40"))
			fail_msg("changetrail-consumer with %s: exit %d:\n%s", uris[i], rc, out);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_raw),
		cmocka_unit_test(test_escape_json_stays_json),
		cmocka_unit_test(test_redact_uri),
		cmocka_unit_test(test_redact_text),
		cmocka_unit_test(test_userinfo_check),
		cmocka_unit_test(test_programs_refuse_without_quoting),
		cmocka_unit_test(test_log_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
