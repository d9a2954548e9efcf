/*
 * test_canonical.c - canonical JSON text, SHA-256 and the record hash.
 */
#include "testutil.h"
#include "changetrail/canonical.h"
#include "ct_internal.h"

#include <openssl/evp.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *canon(const char *json)
{
	json_error_t jerr;
	json_t *v = json_loads(json, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!v)
		fail_msg("bad test JSON %s: %s", json, jerr.text);
	char *out = NULL;
	ct_error err;
	assert_int_equal(ct_canonical_dump(v, &out, NULL, &err), CT_OK);
	json_decref(v);
	return out;
}

#define ASSERT_CANON(in, want)                  \
	do {                                    \
		char *got_ = canon(in);         \
		assert_string_equal(got_, want); \
		free(got_);                     \
	} while (0)

static void test_sha256_known_vectors(void **state)
{
	uint8_t d[32];
	char hex[65];
	ct_sha256("", 0, d);
	ct_hex(d, 32, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ct_sha256("abc", 3, d);
	ct_hex(d, 32, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	ct_sha256(m, strlen(m), d);
	ct_hex(d, 32, hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* One million 'a', fed in uneven pieces to exercise the block buffer. */
	ct_sha256_ctx ctx;
	char a[997];
	memset(a, 'a', sizeof(a));
	ct_sha256_init(&ctx);
	size_t left = 1000000;
	while (left) {
		size_t n = left < sizeof(a) ? left : sizeof(a);
		ct_sha256_update(&ctx, a, n);
		left -= n;
	}
	ct_sha256_final(&ctx, d);
	ct_hex(d, 32, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* SHA-256 comes from libcrypto (issue #21): the one-shot and the incremental
 * API agree with OpenSSL's EVP_Digest on every length around the block and
 * padding boundaries, in pieces too, and report success; a context used
 * after its final is an error with a zero digest, not a crash; one-shot
 * hashes from several threads (one libcrypto context each) agree. */
static uint8_t sha_data[1200];

static void *hash_in_thread(void *arg)
{
	uint8_t d[32], want[32];
	unsigned n;
	for (size_t len = 0; len <= sizeof(sha_data); len += 7) {
		if (ct_sha256(sha_data, len, d) || !EVP_Digest(sha_data, len, want, &n, EVP_sha256(), NULL) ||
		    memcmp(d, want, 32))
			return arg;
	}
	return NULL;
}

static void test_sha256_is_libcrypto(void **state)
{
	uint8_t mine[32], pieces[32], theirs[32];
	unsigned n;
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < sizeof(sha_data); i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		sha_data[i] = (uint8_t)x;
	}
	for (size_t len = 0; len <= sizeof(sha_data); len += len < 200 ? 1 : 37) {
		assert_int_equal(ct_sha256(sha_data, len, mine), 0);
		ct_sha256_ctx ctx; /* and fed in pieces */
		assert_int_equal(ct_sha256_init(&ctx), 0);
		for (size_t off = 0; off < len; off += 13)
			ct_sha256_update(&ctx, sha_data + off, len - off < 13 ? len - off : 13);
		assert_int_equal(ct_sha256_final(&ctx, pieces), 0);
		assert_true(EVP_Digest(sha_data, len, theirs, &n, EVP_sha256(), NULL));
		if (memcmp(mine, theirs, 32) || memcmp(pieces, theirs, 32))
			fail_msg("sha256 of %zu bytes differs from OpenSSL's", len);
	}
	/* a finished context stays finished */
	ct_sha256_ctx ctx;
	assert_int_equal(ct_sha256_init(&ctx), 0);
	ct_sha256_update(&ctx, "abc", 3);
	assert_int_equal(ct_sha256_final(&ctx, mine), 0);
	ct_sha256_update(&ctx, "abc", 3);
	assert_int_equal(ct_sha256_final(&ctx, mine), CT_EINVAL);
	static const uint8_t zero[32];
	assert_memory_equal(mine, zero, 32);
	/* threads, each with its own context */
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hash_in_thread, (void *)(intptr_t)(i + 1)), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
}

static void test_keys_sorted_by_code_point(void **state)
{
	ASSERT_CANON("{\"b\":1,\"a\":2,\"\":3,\"A\":4,\"\\u00e9\":5,\"z\":6,\"\\ud83d\\ude00\":7,\"\\uffff\":8}",
		     "{\"\":3,\"A\":4,\"a\":2,\"b\":1,\"z\":6,\"\xc3\xa9\":5,\"\xef\xbf\xbf\":8,\"\xf0\x9f\x98\x80\":7}");
	ASSERT_CANON("{\"$x\":1,\".\":2,\"~\":3,\"a.b\":{\"y\":[],\"x\":{}}}",
		     "{\"$x\":1,\".\":2,\"a.b\":{\"x\":{},\"y\":[]},\"~\":3}");
}

static void test_string_escapes(void **state)
{
	ASSERT_CANON("\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001\\u001f \\u007f\"",
		     "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001\\u001f \x7f\"");
	ASSERT_CANON("\"nul\\u0000in\"", "\"nul\\u0000in\"");
}

/* Every position of a string long enough for the 16-byte scan, with every
 * kind of byte at it: the escapes are exactly the rule's. */
static void test_string_escapes_every_position(void **state)
{
	static const char specials[] = {'"', '\\', '\b', '\f', '\n', '\r', '\t', 0x01, 0x1f, 0x7f, 'a', (char)0xc3};
	for (size_t len = 1; len <= 40; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t k = 0; k < sizeof(specials); k++) {
				char str[64], want[512];
				memset(str, 'x', len);
				str[pos] = specials[k];
				if ((unsigned char)specials[k] == 0xc3) { /* a whole UTF-8 sequence: é */
					if (pos + 1 >= len)
						continue;
					str[pos + 1] = (char)0xa9;
				}
				size_t w = 0;
				want[w++] = '"';
				for (size_t i = 0; i < len; i++) {
					unsigned char c = (unsigned char)str[i];
					const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
						      : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
					if (e) {
						memcpy(want + w, e, 2);
						w += 2;
					} else if (c < 0x20) {
						w += (size_t)sprintf(want + w, "\\u%04x", c);
					} else {
						want[w++] = (char)c;
					}
				}
				want[w++] = '"';
				want[w] = '\0';
				json_t *v = json_stringn(str, len);
				assert_non_null(v);
				char *got = NULL;
				assert_int_equal(ct_canonical_dump(v, &got, NULL, NULL), CT_OK);
				if (strcmp(got, want))
					fail_msg("len %zu pos %zu byte 0x%02x: <%s>, want <%s>", len, pos,
						 (unsigned char)specials[k], got, want);
				free(got);
				json_decref(v);
			}
		}
	}
}

static void test_numbers(void **state)
{
	ASSERT_CANON("[0,-1,9223372036854775807,-9223372036854775808]",
		     "[0,-1,9223372036854775807,-9223372036854775808]");
	ASSERT_CANON("[1.0,0.1,1.5,-0.0,1e300,5e-324,9007199254740993.0,123456.789,1E-7]",
		     "[1.0,0.1,1.5,-0.0,1e+300,5e-324,9007199254740992.0,123456.789,1e-07]");
	ASSERT_CANON("[true,false,null]", "[true,false,null]");
}

/* The rule of canonical.h for a real, the slow way: the shortest %.<p>g
 * that reads back, found by trying every p. */
static void reference_real(double v, char *out, size_t n)
{
	for (int p = 1; p <= 17; p++) {
		snprintf(out, n, "%.*g", p, v);
		if (strtod(out, NULL) == v)
			break;
	}
	if (!strpbrk(out, ".en"))
		strcat(out, ".0");
}

static void test_reals_match_the_rule(void **state)
{
	static const double fixed[] = {0.0, -0.0, 1e5, 1e15, 1e16, 1e17, 123456789012345.0, 1234567890123456.0,
				       0.1, 0.2, 0.30000000000000004, 1.0 / 3, 2.0 / 3, 5e-324, 1.7976931348623157e308,
				       2.2250738585072014e-308, 1e-5, 1e-4, 9.5, 99999.5, 100000.5, 1e21, 1e22, 0.5e-6,
				       1200.0, 1.5e16, 0.00012345, 12345678901234.5, 9007199254740991.0,
				       9007199254740992.0, 5e-5, 100.0, -3.25, -1e-7, 1.0, 10.0, 99.99, 1234567.0,
				       12345678.0, 1e7, 3e100, 2.5e-300, 1.15, 0.3, 123.456e-10, 1e-15, 1e-16};
	char want[64];
	json_t *arr = json_array();
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		json_array_append_new(arr, json_real(fixed[i]));
	/* short decimals of every length and magnitude: the fast path's ground,
	 * and where %g switches between its fixed and scientific forms */
	uint64_t y = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		y ^= y << 13; y ^= y >> 7; y ^= y << 17;
		char text[64];
		int digits = 1 + (int)(y % 17), e = (int)((y >> 8) % 45) - 22;
		uint64_t mant = (y >> 16) % 100000000000000000ull;
		uint64_t p10 = 1;
		for (int k = 0; k < digits; k++)
			p10 *= 10;
		snprintf(text, sizeof(text), "%s0.%0*llue%d", (y >> 60) & 1 ? "-" : "", digits,
			 (unsigned long long)(mant % p10), e);
		json_array_append_new(arr, json_real(strtod(text, NULL)));
	}
	/* and many more: random bit patterns, random short decimals */
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		double d;
		if (i % 2) {
			memcpy(&d, &x, sizeof(d));
			if (!isfinite(d))
				continue;
		} else {
			d = (double)(int64_t)(x % 2000000001) / (double)(1 + (x >> 40) % 100000) * ((x >> 20) % 2 ? 1e-3 : 1e3);
		}
		json_array_append_new(arr, json_real(d));
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *v = json_array_get(arr, i);
		char *got = NULL;
		assert_int_equal(ct_canonical_dump(v, &got, NULL, NULL), CT_OK);
		reference_real(json_real_value(v), want, sizeof(want));
		if (strcmp(got, want))
			fail_msg("%.17g: canonical <%s>, rule <%s>", json_real_value(v), got, want);
		free(got);
	}
	json_decref(arr);
}

static void test_round_trip_is_stable(void **state)
{
	const char *docs[] = {
		"{\"a\":[1,2.5,{\"c\":null,\"b\":\"x\"}],\"\":{\"\":\"\"}}",
		"{\"price\":{\"amount\":0.30000000000000004,\"cur\":\"EUR\"},\"tags\":[\"\\u2603\"]}",
		"[[[[]]],{},\"\",0.001,1e-300,-2.2250738585072014e-308]",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		char *c1 = canon(docs[i]);
		char *c2 = canon(c1);
		assert_string_equal(c1, c2);
		json_t *a = json_loads(docs[i], JSON_DECODE_ANY, NULL);
		json_t *b = json_loads(c1, JSON_DECODE_ANY, NULL);
		assert_true(json_equal(a, b));
		json_decref(a);
		json_decref(b);
		free(c1);
		free(c2);
	}
}

static void test_depth_bound(void **state)
{
	json_t *v = json_array();
	json_t *cur = v;
	for (int i = 0; i < CT_CANONICAL_MAX_DEPTH + 5; i++) {
		json_t *n = json_array();
		json_array_append_new(cur, n);
		cur = n;
	}
	char *out = NULL;
	ct_error err;
	assert_int_equal(ct_canonical_dump(v, &out, NULL, &err), CT_ELIMIT);
	assert_null(out);
	assert_non_null(strstr(err.message, "deeper"));
	json_decref(v);
	assert_int_equal(ct_canonical_dump(NULL, &out, NULL, &err), CT_EINVAL);
}

static void test_record_hash_covers_content_not_provenance(void **state)
{
	const char *rec = "{\"_id\":\"e1\",\"collection\":\"orders\",\"document_id\":\"1\",\"version\":2,"
			  "\"changes\":[[\"change\",\"qty\",[1,2]]],\"prev_hash\":\"aa\","
			  "\"kafka\":{\"topic\":\"t\",\"partition\":0,\"offset\":5},\"hash\":\"zz\"}";
	json_t *r = json_loads(rec, 0, NULL);
	char h1[65], h2[65], h3[65];
	ct_error err;
	assert_int_equal(ct_record_hash(r, h1, &err), CT_OK);
	assert_int_equal(strlen(h1), 64);

	/* Same content, other offset, other key order, other stored hash. */
	json_t *r2 = json_loads("{\"hash\":\"other\",\"kafka\":{\"offset\":99},\"prev_hash\":\"aa\","
				"\"changes\":[[\"change\",\"qty\",[1,2]]],\"version\":2,\"document_id\":\"1\","
				"\"collection\":\"orders\",\"_id\":\"e1\"}", 0, NULL);
	assert_int_equal(ct_record_hash(r2, h2, &err), CT_OK);
	assert_string_equal(h1, h2);

	/* Any content change, the chain link included, changes the hash. */
	json_object_set_new(r2, "prev_hash", json_string("ab"));
	assert_int_equal(ct_record_hash(r2, h3, &err), CT_OK);
	assert_string_not_equal(h1, h3);
	json_object_set_new(r2, "prev_hash", json_string("aa"));
	json_object_set_new(r2, "version", json_integer(3));
	assert_int_equal(ct_record_hash(r2, h3, &err), CT_OK);
	assert_string_not_equal(h1, h3);

	/* The input is not modified. */
	assert_non_null(json_object_get(r, "kafka"));
	assert_string_equal(json_string_value(json_object_get(r, "hash")), "zz");
	json_decref(r);
	json_decref(r2);

	json_t *arr = json_array();
	assert_int_equal(ct_record_hash(arr, h3, &err), CT_EINVAL);
	json_decref(arr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_known_vectors),
		cmocka_unit_test(test_sha256_is_libcrypto),
		cmocka_unit_test(test_keys_sorted_by_code_point),
		cmocka_unit_test(test_string_escapes),
		cmocka_unit_test(test_string_escapes_every_position),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_reals_match_the_rule),
		cmocka_unit_test(test_round_trip_is_stable),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_record_hash_covers_content_not_provenance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
