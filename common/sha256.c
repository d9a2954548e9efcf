/*
 * sha256.c - SHA-256 for the per-document hash chain, the anchors and the
 * messages' identity, from OpenSSL's libcrypto (EVP). librdkafka and
 * libmongoc load libcrypto already, and OpenSSL uses the CPU's SHA
 * extensions as the hand-written code it replaces did, only faster
 * (tests/bench/bench_sha256.c, docs/performance.md "SHA-256": 1343 against
 * 1079 MB/s on 1 KB records, 404 against 288 on 64 B anchor leaves).
 *
 * The digest is fetched once (EVP_MD_fetch); one-shot hashes reuse one
 * EVP_MD_CTX per thread (freed when the thread exits), which is what makes
 * small inputs fast: a context made per call costs more than hashing 1 KB.
 */
#include "changetrail/canonical.h"
#include "ct_internal.h"

#include <openssl/evp.h>

#include <pthread.h>
#include <string.h>

static EVP_MD *fetched;
static pthread_key_t thread_ctx;
static bool have_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void free_thread_ctx(void *c)
{
	EVP_MD_CTX_free(c);
}

static void setup(void)
{
	fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
	have_key = pthread_key_create(&thread_ctx, free_thread_ctx) == 0;
}

/* The SHA-256 implementation: fetched once, else looked up per use by EVP. */
static const EVP_MD *sha256_md(void)
{
	pthread_once(&once, setup);
	return fetched ? fetched : EVP_sha256();
}

int ct_sha256_init(ct_sha256_ctx *ctx)
{
	ctx->impl = EVP_MD_CTX_new();
	ctx->failed = 0;
	if (!ctx->impl || !EVP_DigestInit_ex2(ctx->impl, sha256_md(), NULL)) {
		ctx->failed = CT_ENOMEM;
		EVP_MD_CTX_free(ctx->impl);
		ctx->impl = NULL;
		return CT_ENOMEM;
	}
	return 0;
}

void ct_sha256_update(ct_sha256_ctx *ctx, const void *data, size_t len)
{
	if (!ctx->failed && len && !EVP_DigestUpdate(ctx->impl, data, len))
		ctx->failed = CT_EINTERNAL;
}

int ct_sha256_final(ct_sha256_ctx *ctx, uint8_t out[32])
{
	unsigned n = 0;
	int rc = ctx->failed;
	if (!rc && (!EVP_DigestFinal_ex(ctx->impl, out, &n) || n != 32))
		rc = CT_EINTERNAL;
	if (rc)
		memset(out, 0, 32);
	EVP_MD_CTX_free(ctx->impl);
	ctx->impl = NULL;
	ctx->failed = rc ? rc : CT_EINVAL; /* finished: a second final is an error */
	return rc;
}

int ct_sha256(const void *data, size_t len, uint8_t out[32])
{
	const EVP_MD *md = sha256_md();
	EVP_MD_CTX *c = have_key ? pthread_getspecific(thread_ctx) : NULL;
	unsigned n = 0;
	int rc = 0;

	if (!c) {
		if (!(c = EVP_MD_CTX_new())) {
			memset(out, 0, 32);
			return CT_ENOMEM;
		}
		if (have_key && pthread_setspecific(thread_ctx, c)) {
			EVP_MD_CTX_free(c);
			memset(out, 0, 32);
			return CT_ENOMEM;
		}
	}
	if (!EVP_DigestInit_ex2(c, md, NULL) || (len && !EVP_DigestUpdate(c, data, len)) ||
	    !EVP_DigestFinal_ex(c, out, &n) || n != 32) {
		memset(out, 0, 32);
		rc = CT_EINTERNAL;
	}
	if (!have_key)
		EVP_MD_CTX_free(c);
	return rc;
}

void ct_hex(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}
