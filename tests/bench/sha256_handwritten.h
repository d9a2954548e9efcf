/*
 * sha256_handwritten.h - the former common/sha256.c, for bench_sha256 only.
 */
#ifndef CT_SHA256_HANDWRITTEN_H
#define CT_SHA256_HANDWRITTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hw_sha256_ctx {
	uint32_t h[8];
	uint64_t total;
	uint8_t buf[64];
	size_t used;
} hw_sha256_ctx;

/* SHA-NI when the CPU has it (use = true, the default), else the portable rounds; returns whether SHA-NI is on. */
bool hw_sha256_accelerated(bool use);
void hw_sha256(const void *data, size_t len, uint8_t out[32]);

#endif
