/*
 * bench_sha256.c - SHA-256 throughput of the hand-written code that
 * common/sha256.c was (tests/bench/sha256_handwritten.c: the CPU's SHA
 * extensions when it has them, else the portable rounds) against OpenSSL's
 * libcrypto (EVP), on the sizes changetrail hashes: canonical records and
 * states (~0.3-4 KB), messages (up to 1 MB), and anchors' leaves (64 B).
 * Issue #21 asked whether the hand-written code should give way to
 * libcrypto; it did (docs/performance.md, SHA-256).
 *
 * Ways measured, each digest checked against the others first:
 *   hand       the hand-written code (SHA-NI when present)
 *   portable   the hand-written code forced to the portable rounds
 *   evp_ctx    EVP_DigestInit_ex2/Update/Final_ex on a reused EVP_MD_CTX and
 *              an EVP_MD fetched once (the best a libcrypto version can do)
 *   evp_digest EVP_Digest(..., EVP_sha256(), NULL) per call (the simple one)
 *   ct         ct_sha256() as libchangetrail runs it now (libcrypto, one
 *              context per thread)
 *
 * usage: bench_sha256 [megabytes per figure]  (default 64)
 * Prints one line per size: MB/s (10^6 bytes per second of this thread's CPU
 * time, so other processes on a shared machine count little), the best of
 * 7 rounds in which the ways take turns.
 */
#include "changetrail/canonical.h"
#include "sha256_handwritten.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static EVP_MD *md;
static const uint8_t *buf_for_measure;
static EVP_MD_CTX *mdctx;

/* CPU time of this thread: other processes on the machine do not count */
static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void h_hand(const uint8_t *p, size_t n, uint8_t out[32])
{
	hw_sha256(p, n, out);
}

static void h_ct(const uint8_t *p, size_t n, uint8_t out[32])
{
	if (ct_sha256(p, n, out)) {
		fprintf(stderr, "bench_sha256: ct_sha256 failed\n");
		exit(1);
	}
}

static void h_evp_ctx(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned len;
	if (!EVP_DigestInit_ex2(mdctx, md, NULL) || !EVP_DigestUpdate(mdctx, p, n) ||
	    !EVP_DigestFinal_ex(mdctx, out, &len) || len != 32) {
		fprintf(stderr, "bench_sha256: EVP failed\n");
		exit(1);
	}
}

static void h_evp_digest(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned len;
	if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) || len != 32) {
		fprintf(stderr, "bench_sha256: EVP_Digest failed\n");
		exit(1);
	}
}

typedef void (*hash_fn)(const uint8_t *, size_t, uint8_t[32]);

#define WAYS 5
#define ROUNDS 7

/* MB/s of one round hashing `total` bytes in pieces of `size`. */
static double round_mbps(hash_fn fn, const uint8_t *buf, size_t size, size_t total)
{
	uint8_t out[32];
	size_t iters = total / size ? total / size : 1;
	double t0 = now_s();
	for (size_t i = 0; i < iters; i++)
		fn(buf + (i & 7), size, out); /* other alignments, as the data comes */
	return (double)(iters * size) / (now_s() - t0) / 1e6;
}

/* The ways take turns, ROUNDS times, so that a slower moment of the machine
 * falls on all of them; each keeps its best round. */
static void measure(size_t size, size_t total, double best[WAYS])
{
	static const hash_fn fns[WAYS] = {h_hand, h_hand, h_evp_ctx, h_evp_digest, h_ct};
	for (int w = 0; w < WAYS; w++)
		best[w] = 0;
	for (int k = 0; k < ROUNDS; k++)
		for (int w = 0; w < WAYS; w++) {
			hw_sha256_accelerated(w != 1); /* way 1: the portable rounds */
			double r = round_mbps(fns[w], buf_for_measure, size, w == 1 ? total / 4 : total);
			if (r > best[w])
				best[w] = r;
		}
	hw_sha256_accelerated(true);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {64, 256, 1024, 4096, 65536, 1048576};
	size_t total = (size_t)(argc > 1 ? atof(argv[1]) : 64) * 1000000;
	uint8_t *buf = malloc(1048576 + 8);
	int rc = 1;

	md = EVP_MD_fetch(NULL, "SHA256", NULL);
	mdctx = EVP_MD_CTX_new();
	if (!buf || !md || !mdctx) {
		fprintf(stderr, "bench_sha256: setup failed\n");
		goto out;
	}
	for (size_t i = 0; i < 1048576 + 8; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	/* same digests every way, every size (and some odd ones) */
	for (size_t n = 0; n <= 1048576; n = n < 300 ? n + 1 : n * 3 + 1) {
		uint8_t a[32], b[32], c[32], d[32], e[32];
		hw_sha256_accelerated(true);
		h_hand(buf, n, a);
		hw_sha256_accelerated(false);
		h_hand(buf, n, b);
		hw_sha256_accelerated(true);
		h_evp_ctx(buf, n, c);
		h_evp_digest(buf, n, d);
		h_ct(buf, n, e);
		if (memcmp(a, b, 32) || memcmp(a, c, 32) || memcmp(a, d, 32) || memcmp(a, e, 32)) {
			fprintf(stderr, "bench_sha256: digests differ at %zu bytes\n", n);
			goto out;
		}
	}
	printf("sha256 cpu_sha_extensions=%s openssl=\"%s\" mb_per_figure=%zu\n",
	       hw_sha256_accelerated(true) ? "yes" : "no", OpenSSL_version(OPENSSL_VERSION), total / 1000000);
	buf_for_measure = buf;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double b[WAYS];
		measure(sizes[i], total / ROUNDS, b);
		printf("size=%zu hand_mbps=%.0f portable_mbps=%.0f evp_ctx_mbps=%.0f evp_digest_mbps=%.0f ct_mbps=%.0f\n",
		       sizes[i], b[0], b[1], b[2], b[3], b[4]);
	}
	rc = 0;
out:
	EVP_MD_CTX_free(mdctx);
	EVP_MD_free(md);
	free(buf);
	return rc;
}
