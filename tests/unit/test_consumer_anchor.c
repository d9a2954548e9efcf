/*
 * test_consumer_anchor.c - the pure part of anchored chains (consumer/anchor.h):
 * HMAC-SHA256 against RFC 4231, the Merkle root of RFC 6962 recomputed by
 * hand from the leaves' canonical texts, heads compacted to the latest
 * version per document, and records built, checked, and refused once
 * tampered with (a leaf, the root, the HMAC, the order).
 */
#include "testutil.h"

#include "anchor.h"
#include "changetrail/canonical.h"

#include <string.h>

static const char H1[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char H2[] = "2222222222222222222222222222222222222222222222222222222222222222";

static void hex_of(const uint8_t d[32], char out[65])
{
	ct_hex(d, 32, out);
}

static void test_hmac_rfc4231(void **state)
{
	uint8_t mac[32], key[131];
	char hex[65];
	memset(key, 0x0b, 20);
	ctc_hmac_sha256(key, 20, "Hi There", 8, mac);
	hex_of(mac, hex);
	assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	ctc_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, mac);
	hex_of(mac, hex);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(key, 0xaa, sizeof(key)); /* longer than a block: hashed first */
	const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
	ctc_hmac_sha256(key, sizeof(key), m, strlen(m), mac);
	hex_of(mac, hex);
	assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* SHA-256(0x00 || text) */
static void leaf(const char *text, uint8_t out[32])
{
	ct_sha256_ctx c;
	ct_sha256_init(&c);
	ct_sha256_update(&c, "\0", 1);
	ct_sha256_update(&c, text, strlen(text));
	ct_sha256_final(&c, out);
}

static void node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	ct_sha256_ctx c;
	ct_sha256_init(&c);
	ct_sha256_update(&c, "\1", 1);
	ct_sha256_update(&c, l, 32);
	ct_sha256_update(&c, r, 32);
	ct_sha256_final(&c, out);
}

static void heads5(ctc_anchor_heads *hs)
{
	ct_error err;
	const char *ids[] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 5; i++)
		assert_int_equal(ctc_anchor_heads_add(hs, "c", ids[i], i + 1, i % 2 ? H2 : H1, &err), 0);
}

static void test_merkle_root_is_rfc6962(void **state)
{
	ctc_anchor_heads hs = {0};
	ct_error err;
	char root[65], want[65], text[256];
	uint8_t l[5][32], n01[32], n23[32], n0123[32], r[32];

	assert_int_equal(ctc_anchor_merkle_root(NULL, 0, root, &err), 0);
	assert_string_equal(root, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	heads5(&hs);
	for (int i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "{\"collection\":\"c\",\"document_id\":\"%c\",\"hash\":\"%s\",\"version\":%d}",
			 'a' + i, i % 2 ? H2 : H1, i + 1);
		leaf(text, l[i]);
	}
	/* one leaf: its leaf hash */
	assert_int_equal(ctc_anchor_merkle_root(hs.v, 1, root, &err), 0);
	hex_of(l[0], want);
	assert_string_equal(root, want);
	/* three: H(1 || H(1||l0||l1) || l2) */
	node(l[0], l[1], n01);
	node(n01, l[2], r);
	assert_int_equal(ctc_anchor_merkle_root(hs.v, 3, root, &err), 0);
	hex_of(r, want);
	assert_string_equal(root, want);
	/* five: split at 4 */
	node(l[2], l[3], n23);
	node(n01, n23, n0123);
	node(n0123, l[4], r);
	assert_int_equal(ctc_anchor_merkle_root(hs.v, 5, root, &err), 0);
	hex_of(r, want);
	assert_string_equal(root, want);
	ctc_anchor_heads_free(&hs);
}

static void test_compact_keeps_latest_per_document(void **state)
{
	ctc_anchor_heads hs = {0};
	ct_error err;
	assert_int_equal(ctc_anchor_heads_add(&hs, "z", "1", 3, H1, &err), 0);
	assert_int_equal(ctc_anchor_heads_add(&hs, "a", "2", 1, H1, &err), 0);
	assert_int_equal(ctc_anchor_heads_add(&hs, "z", "1", 7, H2, &err), 0);
	assert_int_equal(ctc_anchor_heads_add(&hs, "a", "10", 2, H2, &err), 0);
	assert_int_equal(ctc_anchor_heads_add(&hs, "z", "1", 5, H1, &err), 0);
	assert_int_not_equal(ctc_anchor_heads_add(&hs, "z", "1", 5, "xyz", &err), 0);
	ctc_anchor_heads_compact(&hs);
	assert_int_equal(hs.n, 3);
	assert_string_equal(hs.v[0].document_id, "10"); /* bytewise: "10" < "2" */
	assert_string_equal(hs.v[1].document_id, "2");
	assert_string_equal(hs.v[2].collection, "z");
	assert_int_equal(hs.v[2].version, 7);
	assert_string_equal(hs.v[2].hash, H2);
	ctc_anchor_heads_free(&hs);
}

/* `line` with its first `from` replaced by `to` */
static char *replaced(const char *line, const char *from, const char *to)
{
	const char *at = strstr(line, from);
	assert_non_null(at);
	char *out = malloc(strlen(line) + strlen(to) + 1);
	sprintf(out, "%.*s%s%s", (int)(at - line), line, to, at + strlen(from));
	return out;
}

static void test_build_and_check(void **state)
{
	ctc_anchor_heads hs = {0};
	ct_error err;
	const uint8_t key[] = "0123456789abcdef-secret";
	ctc_anchor_meta meta = {.worker = "w1", .group = "g", .host = "h", .time_us = 1700000000000000,
				.seq = 2, .part = 1, .parts = 1};
	char *line = NULL, hash[65], hash2[65], root[65];
	json_t *rec = NULL;

	heads5(&hs);
	assert_int_equal(ctc_anchor_build(&meta, hs.v, hs.n, H1, key, sizeof(key) - 1, &line, hash, &err), 0);
	assert_null(strchr(line, '\n'));
	/* checks with and without the key; the hash is the text's */
	assert_int_equal(ctc_anchor_check(line, strlen(line), key, sizeof(key) - 1, &rec, hash2, &err), 0);
	assert_string_equal(hash, hash2);
	assert_string_equal(json_string_value(json_object_get(rec, "prev_anchor")), H1);
	assert_int_equal(json_integer_value(json_object_get(rec, "count")), 5);
	assert_string_equal(json_string_value(json_object_get(rec, "schema")), CTC_ANCHOR_SCHEMA);
	assert_int_equal(ctc_anchor_merkle_root(hs.v, hs.n, root, &err), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "merkle_root")), root);
	json_decref(rec);
	assert_int_equal(ctc_anchor_check(line, strlen(line), NULL, 0, &rec, hash2, &err), 0);
	json_decref(rec);

	/* a leaf changed: the root no longer matches */
	char *bad = replaced(line, "\"version\":3", "\"version\":4");
	assert_int_equal(ctc_anchor_check(bad, strlen(bad), NULL, 0, &rec, hash2, &err), CT_EINVAL);
	assert_non_null(strstr(err.message, "merkle_root"));
	json_decref(rec);
	free(bad);

	/* re-rooted by someone without the key: only the HMAC catches it */
	char *line2 = NULL;
	ctc_anchor_heads hs2 = {0};
	assert_int_equal(ctc_anchor_heads_add(&hs2, "c", "a", 1, H2, &err), 0);
	assert_int_equal(ctc_anchor_build(&meta, hs2.v, hs2.n, H1, (const uint8_t *)"another key of 16+", 18,
					  &line2, hash2, &err), 0);
	assert_int_equal(ctc_anchor_check(line2, strlen(line2), NULL, 0, &rec, hash2, &err), 0);
	json_decref(rec);
	assert_int_equal(ctc_anchor_check(line2, strlen(line2), key, sizeof(key) - 1, &rec, hash2, &err), CT_EINVAL);
	assert_non_null(strstr(err.message, "hmac"));
	json_decref(rec);
	free(line2);
	/* no HMAC while a key is given */
	assert_int_equal(ctc_anchor_build(&meta, hs2.v, hs2.n, NULL, NULL, 0, &line2, hash2, &err), 0);
	assert_null(strstr(line2, "hmac"));
	assert_true(strstr(line2, "\"prev_anchor\":null") != NULL);
	assert_int_equal(ctc_anchor_check(line2, strlen(line2), key, sizeof(key) - 1, &rec, hash2, &err), CT_EINVAL);
	json_decref(rec);
	free(line2);
	ctc_anchor_heads_free(&hs2);

	/* leaves out of order (even with a matching root) are refused */
	ctc_anchor_head swapped[2] = {hs.v[1], hs.v[0]};
	assert_int_equal(ctc_anchor_build(&meta, swapped, 2, NULL, NULL, 0, &line2, hash2, &err), 0);
	assert_int_equal(ctc_anchor_check(line2, strlen(line2), NULL, 0, &rec, hash2, &err), CT_EINVAL);
	assert_non_null(strstr(err.message, "sorted"));
	json_decref(rec);
	free(line2);

	/* not JSON */
	assert_int_equal(ctc_anchor_check("{x", 2, NULL, 0, &rec, hash2, &err), CT_EINVAL);
	assert_null(rec);
	free(line);
	ctc_anchor_heads_free(&hs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_merkle_root_is_rfc6962),
		cmocka_unit_test(test_compact_keeps_latest_per_document),
		cmocka_unit_test(test_build_and_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
