/*
 * test_producer_exclude.c - excluded fields never leave the process: every
 * document the application hands over (inserts, updates with `before`,
 * deletes, snapshots, text and tree forms, through librdkafka's queue and
 * through the spool) holds secret fields whose values are one unique marker;
 * afterwards every byte of every message on the topic (key, value, header
 * names and values) and of the spool file is searched for it. A second
 * marker in a field that is not excluded must be found, so the search is
 * known to read the right bytes.
 */
#include "testutil.h"
#include "changetrail/producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DOCS 40

static void test_excluded_fields_absent_from_topic(void **state)
{
	const char *bootstrap = ct_test_server_env("CT_KAFKA_BOOTSTRAP");
	char topic[128], secret[96], visible[96], spool[256], id[32], after[1024], before[1024];
	ct_error err;
	ct_test_unique_name(topic, sizeof(topic), "ct-exclude");
	ct_test_unique_name(secret, sizeof(secret), "SECRET-q7Jx");
	ct_test_unique_name(visible, sizeof(visible), "VISIBLE-w2Pk");
	snprintf(spool, sizeof(spool), "/tmp/%s.spool", topic);

	ct_producer_config *c = ct_producer_config_new();
	const char *kv[][2] = {
		{"source", "exclude-it"}, {"topic", topic}, {"kafka.bootstrap.servers", bootstrap},
		{"track.users.exclude", "password,profile.ssn,api.token"},
		{"track.cards.include", "holder,last4"},
		/* a tiny queue: part of the events goes through the spool file */
		{"spool.path", spool}, {"kafka.queue.buffering.max.messages", "8"},
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (ct_producer_config_set(c, kv[i][0], kv[i][1], &err))
			fail_msg("%s: %s", kv[i][0], err.message);
	ct_producer *p;
	if (ct_producer_new(c, &p, &err))
		fail_msg("%s", err.message);
	ct_producer_config_destroy(c);

	size_t expect = 0;
	for (int i = 0; i < DOCS; i++) {
		snprintf(id, sizeof(id), "u%d", i);
		snprintf(before, sizeof(before),
			 "{\"name\":\"n%d\",\"password\":\"%s-old\",\"profile\":{\"ssn\":\"%s\",\"city\":\"Oslo\"},"
			 "\"api\":{\"token\":[\"%s\",{\"k\":\"%s\"}]}}",
			 i, secret, secret, secret, secret);
		snprintf(after, sizeof(after),
			 "{\"name\":\"n%d-2\",\"note\":\"%s\",\"password\":\"%s\",\"profile\":{\"ssn\":\"%s\","
			 "\"city\":\"Bergen\"},\"api\":{\"token\":\"%s\",\"scope\":\"r\"}}",
			 i, visible, secret, secret, secret);
		if (ct_emit_insert(p, "users", id, before, &err) || ct_emit_update(p, "users", id, after, before, &err))
			fail_msg("users: %s", err.message);
		expect += 2;
		/* an update that changed only secrets sends nothing at all */
		char after2[1024];
		snprintf(after2, sizeof(after2),
			 "{\"name\":\"n%d-2\",\"note\":\"%s\",\"password\":\"other-%s\",\"profile\":{\"ssn\":\"x%s\","
			 "\"city\":\"Bergen\"},\"api\":{\"token\":\"y%s\",\"scope\":\"r\"}}",
			 i, visible, secret, secret, secret);
		if (ct_emit_update(p, "users", id, after2, after, &err))
			fail_msg("users (secret-only change): %s", err.message);

		json_t *tree = json_pack("{s:s, s:s, s:s, s:{s:s}}", "holder", "h", "last4", "4242", "pan", secret,
					 "cvv", "x", secret);
		ct_change ch = {.op = CT_OP_SNAPSHOT, .collection = "cards", .document_id = id, .after = tree};
		if (ct_emit(p, &ch, NULL, &err))
			fail_msg("cards: %s", err.message);
		json_decref(tree);
		if (ct_emit_delete(p, "users", id, after, &err))
			fail_msg("delete: %s", err.message);
		expect += 2;
	}
	if (ct_producer_flush(p, 60000, &err))
		fail_msg("%s", err.message);
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	assert_int_equal(st.delivered, expect);
	assert_int_equal(st.unchanged, DOCS);
	assert_true(st.spooled > 0); /* the spool path was exercised */
	assert_int_equal(ct_producer_destroy(p, 10000), 0);

	size_t len;
	char *spooled = ct_test_read_file(spool, &len);
	if (spooled && ct_test_contains(spooled, len, secret))
		fail_msg("the spool file holds an excluded value");
	free(spooled);
	unlink(spool);

	ct_test_msg *m;
	size_t n = ct_test_consume(bootstrap, topic, expect, 60000, &m), seen_visible = 0;
	assert_int_equal(n, expect);
	for (size_t i = 0; i < n; i++) {
		if (ct_test_contains(m[i].value, m[i].value_len, secret) || strstr(m[i].key, secret) ||
		    (m[i].headers && strstr(m[i].headers, secret)))
			fail_msg("message %zu (partition %d offset %lld) holds an excluded value:\n%s", i,
				 m[i].partition, (long long)m[i].offset, m[i].value);
		/* excluded keys are gone, not just emptied */
		if (strstr(m[i].value, "\"password\"") || strstr(m[i].value, "\"ssn\"") ||
		    strstr(m[i].value, "\"token\"") || strstr(m[i].value, "\"pan\"") || strstr(m[i].value, "\"cvv\""))
			fail_msg("message %zu keeps an excluded key:\n%s", i, m[i].value);
		seen_visible += ct_test_contains(m[i].value, m[i].value_len, visible) != 0;
	}
	/* the update and the delete (its `before`) of each user carry the note */
	assert_int_equal(seen_visible, 2 * DOCS);
	ct_test_msgs_free(m, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_excluded_fields_absent_from_topic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
