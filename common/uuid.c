/*
 * uuid.c - UUIDv7 generation and canonical UUID checks (RFC 9562; see
 * changetrail/event.h).
 */
#include "changetrail/event.h"
#include "ct_internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define COUNTER_BITS 42
#define COUNTER_MAX ((UINT64_C(1) << COUNTER_BITS) - 1)
#define MS_MAX ((UINT64_C(1) << 48) - 1)

/* Process-wide clock of the generator: the ms and counter of the last id.
 * Two 64-bit values cannot be swapped atomically together, hence the lock. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t gen_last_ms;
static uint64_t gen_counter;

/* Test-only deterministic identities of this thread (ct_internal.h). */
static _Thread_local uint32_t tid_stream;
static _Thread_local uint64_t tid_n;
static _Thread_local int64_t tid_start_ms;

void ct_test_ident_set(uint32_t stream, int64_t start_ms)
{
	tid_stream = stream & 0xfff;
	tid_n = 0;
	tid_start_ms = start_ms;
}

bool ct_test_ident_now_us(int64_t *us)
{
	if (!tid_stream)
		return false;
	*us = (tid_start_ms + (int64_t)tid_n) * 1000;
	return true;
}

static void format_uuid(const unsigned char b[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

static int fill_random(unsigned char *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

int ct_uuid7_new(char out[37], ct_error *err)
{
	unsigned char rnd[12], b[16];
	struct timespec now;
	uint64_t ms, counter;
	int rc = CT_OK;

	if (!out) {
		rc = ct_error_set(err, CT_EINVAL, "uuid: NULL output buffer");
		goto out;
	}
	if (tid_stream) {
		uint64_t n = ++tid_n, tms = (uint64_t)(tid_start_ms + (int64_t)n) & MS_MAX;
		for (int i = 0; i < 6; i++)
			b[i] = (unsigned char)(tms >> (40 - 8 * i));
		b[6] = (unsigned char)(0x70 | ((tid_stream >> 8) & 0x0f));
		b[7] = (unsigned char)tid_stream;
		b[8] = (unsigned char)(0x80 | ((n >> 56) & 0x3f));
		for (int i = 9; i < 16; i++)
			b[i] = (unsigned char)(n >> (8 * (15 - i)));
		format_uuid(b, out);
		goto out;
	}
	/* Fetched before taking the lock so that the syscall does not serialise
	 * threads. rnd[0..4) is the random tail of this id, rnd[4..12) the seed
	 * of the counter should this id start a new millisecond. */
	if (fill_random(rnd, sizeof(rnd)) != 0) {
		/* strerror() is not thread-safe; the number is enough. */
		rc = ct_error_set(err, CT_EIO, "uuid: getrandom failed (errno %d)", errno);
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	ms = now.tv_sec < 0 ? 0 : (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;

	uint64_t seed = 0;
	for (int i = 4; i < 12; i++)
		seed = seed << 8 | rnd[i];
	/* A random start with the top bit clear leaves at least 2^41 increments
	 * before the counter overflows within one ms (RFC 9562 §6.2, guard bits). */
	seed &= COUNTER_MAX >> 1;

	pthread_mutex_lock(&gen_lock);
	if (ms > gen_last_ms) {
		gen_last_ms = ms;
		gen_counter = seed;
	} else if (gen_counter < COUNTER_MAX) {
		/* Same ms, or the clock stepped back: stay on the last ms so ids
		 * keep increasing. */
		gen_counter++;
	} else {
		/* Counter exhausted: borrow the next ms ahead of the clock, as
		 * RFC 9562 §6.2 allows. */
		gen_last_ms++;
		gen_counter = seed;
	}
	ms = gen_last_ms & MS_MAX;
	counter = gen_counter;
	pthread_mutex_unlock(&gen_lock);

	/* unix_ts_ms(48) ver(4) rand_a(12) var(2) rand_b(62); the counter takes
	 * rand_a and the top 30 bits of rand_b, 32 random bits follow. */
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | ((counter >> 38) & 0x0f));
	b[7] = (unsigned char)(counter >> 30);
	b[8] = (unsigned char)(0x80 | ((counter >> 24) & 0x3f));
	b[9] = (unsigned char)(counter >> 16);
	b[10] = (unsigned char)(counter >> 8);
	b[11] = (unsigned char)counter;
	memcpy(b + 12, rnd, 4);
	format_uuid(b, out);
out:
	return rc;
}

bool ct_uuid_valid(const char *s, int required_version)
{
	if (!s || required_version < 0 || required_version > 8)
		return false;
	/* Stops at the first bad byte, a NUL included, so never reads past the
	 * end of a shorter string. */
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	if (s[36] != '\0')
		return false;
	int version = s[14] >= 'a' ? 10 + s[14] - 'a' : s[14] - '0';
	if (version < 1 || version > 8 || (required_version && version != required_version))
		return false;
	return s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b';
}
