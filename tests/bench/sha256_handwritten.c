/*
 * sha256_handwritten.c - the SHA-256 (FIPS 180-4) that common/sha256.c was
 * until libcrypto's replaced it (issue #21), kept only so that bench_sha256
 * can show the comparison that decided it (docs/performance.md, SHA-256).
 * Functions renamed hw_*; not part of any library.
 *
 * On x86-64 CPUs with the SHA extensions (most since 2017-2019) the blocks
 * go through them: the consumer hashes every record it makes, and the
 * portable rounds were 4-8% of its CPU per event. Checked against the
 * portable code by tests/unit/test_canonical.c.
 */
#include "sha256_handwritten.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CT_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress(uint32_t h[8], const uint8_t blk[64])
{
	uint32_t w[64], a, b, c, d, e, f, g, hh;
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
		       (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void blocks_portable(uint32_t h[8], const uint8_t *p, size_t n)
{
	for (; n; n--, p += 64)
		compress(h, p);
}

#ifdef CT_SHA_NI
/* The SHA-NI rounds: state held as ABEF / CDGH, four rounds per group of
 * message words, the schedule computed two groups ahead (Intel's
 * "New Instructions Supporting the Secure Hash Algorithm on Intel
 * Architecture Processors", 2013). */
__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_ni(uint32_t h[8], const uint8_t *p, size_t n)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
	__m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);
	tmp = _mm_shuffle_epi32(tmp, 0xB1);          /* CDAB */
	st1 = _mm_shuffle_epi32(st1, 0x1B);          /* EFGH */
	__m128i st0 = _mm_alignr_epi8(tmp, st1, 8);  /* ABEF */
	st1 = _mm_blend_epi16(st1, tmp, 0xF0);       /* CDGH */

	for (; n; n--, p += 64) {
		__m128i save0 = st0, save1 = st1, msg[4], m;
		for (int g = 0; g < 16; g++) {
			if (g < 4)
				msg[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
			m = _mm_add_epi32(msg[g & 3], _mm_loadu_si128((const __m128i *)&K[4 * g]));
			st1 = _mm_sha256rnds2_epu32(st1, st0, m);
			if (g >= 3 && g <= 14) { /* the words of group g + 1 */
				__m128i t = _mm_alignr_epi8(msg[g & 3], msg[(g + 3) & 3], 4);
				msg[(g + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(msg[(g + 1) & 3], t), msg[g & 3]);
			}
			m = _mm_shuffle_epi32(m, 0x0E);
			st0 = _mm_sha256rnds2_epu32(st0, st1, m);
			if (g >= 1 && g <= 12) /* first half of the words of group g + 3 */
				msg[(g - 1) & 3] = _mm_sha256msg1_epu32(msg[(g - 1) & 3], msg[g & 3]);
		}
		st0 = _mm_add_epi32(st0, save0);
		st1 = _mm_add_epi32(st1, save1);
	}

	tmp = _mm_shuffle_epi32(st0, 0x1B);          /* FEBA */
	st1 = _mm_shuffle_epi32(st1, 0xB1);          /* DCHG */
	st0 = _mm_blend_epi16(tmp, st1, 0xF0);       /* DCBA */
	st1 = _mm_alignr_epi8(st1, tmp, 8);          /* HGFE */
	_mm_storeu_si128((__m128i *)&h[0], st0);
	_mm_storeu_si128((__m128i *)&h[4], st1);
}
#endif

static void (*blocks)(uint32_t h[8], const uint8_t *p, size_t n) = blocks_portable;
static pthread_once_t pick_once = PTHREAD_ONCE_INIT;

static void pick(void)
{
#ifdef CT_SHA_NI
	unsigned a, b, c, d;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_1) && (c & bit_SSSE3) &&
	    __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29) /* SHA */))
		blocks = blocks_ni;
#endif
}

bool hw_sha256_accelerated(bool use)
{
	pthread_once(&pick_once, pick);
	if (!use)
		blocks = blocks_portable;
#ifdef CT_SHA_NI
	else
		pick();
	return blocks == blocks_ni;
#else
	return false;
#endif
}

static void hw_sha256_init(hw_sha256_ctx *ctx)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(ctx->h, iv, sizeof(iv));
	ctx->total = 0;
	ctx->used = 0;
}

static void hw_sha256_update(hw_sha256_ctx *ctx, const void *data, size_t len)
{
	const uint8_t *p = data;
	pthread_once(&pick_once, pick);
	ctx->total += len;
	if (ctx->used) {
		size_t take = 64 - ctx->used < len ? 64 - ctx->used : len;
		memcpy(ctx->buf + ctx->used, p, take);
		ctx->used += take;
		p += take;
		len -= take;
		if (ctx->used < 64)
			return;
		blocks(ctx->h, ctx->buf, 1);
		ctx->used = 0;
	}
	if (len >= 64) {
		blocks(ctx->h, p, len / 64);
		p += len / 64 * 64;
		len %= 64;
	}
	memcpy(ctx->buf, p, len);
	ctx->used = len;
}

static void hw_sha256_final(hw_sha256_ctx *ctx, uint8_t out[32])
{
	uint64_t bits = ctx->total * 8;
	pthread_once(&pick_once, pick);
	/* 0x80, zeros up to 8 bytes short of a block end, the length in bits */
	ctx->buf[ctx->used++] = 0x80;
	if (ctx->used > 56) {
		memset(ctx->buf + ctx->used, 0, 64 - ctx->used);
		blocks(ctx->h, ctx->buf, 1);
		ctx->used = 0;
	}
	memset(ctx->buf + ctx->used, 0, 56 - ctx->used);
	for (int i = 0; i < 8; i++)
		ctx->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	blocks(ctx->h, ctx->buf, 1);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(ctx->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)ctx->h[i];
	}
}

void hw_sha256(const void *data, size_t len, uint8_t out[32])
{
	hw_sha256_ctx ctx;
	hw_sha256_init(&ctx);
	hw_sha256_update(&ctx, data, len);
	hw_sha256_final(&ctx, out);
}
