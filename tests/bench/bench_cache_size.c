/*
 * bench_cache_size.c - how close ctc_state_approx_bytes() (the estimate the
 * state cache is bounded with, cache_max_mb) comes to what the allocator
 * really holds for a cached state. For documents of the benchmarks' shape
 * (a few small fields and one string padding them to ~110 B, ~1 KB, ~4 KB),
 * builds 20000 states the way the consumer does (document tree parsed by
 * jansson) and prints key=value figures:
 *   text_bytes          the document's JSON text
 *   allocated_per_state jemalloc's stats.allocated growth per state
 *   estimate_per_state  ctc_state_approx_bytes() per state
 *   estimate_over_allocated
 * Needs the program linked with jemalloc (CT_ALLOCATOR auto/jemalloc);
 * with another allocator it says so and exits 77.
 * usage: bench_cache_size
 */
#include "testutil.h"

#include "state.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static size_t allocated(mallctl_fn mallctl)
{
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch), a = 0;
	mallctl("epoch", &epoch, &sz, &epoch, sz); /* refresh the statistics */
	sz = sizeof(a);
	mallctl("stats.allocated", &a, &sz, NULL, 0);
	return a;
}

int main(void)
{
	enum { N = 20000 };
	static const int pads[] = {10, 824, 3900};
	mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
	if (!mallctl) {
		fprintf(stderr, "bench_cache_size: not linked with jemalloc (no mallctl): nothing to compare with\n");
		return 77;
	}
	static ctc_doc_state *states[N];
	char *buf = malloc(8192), *pad = malloc(4096);
	for (size_t k = 0; k < sizeof(pads) / sizeof(pads[0]); k++) {
		memset(pad, 'p', (size_t)pads[k]);
		pad[pads[k]] = '\0';
		size_t est = 0, text = 0, a0 = allocated(mallctl);
		for (int i = 0; i < N; i++) {
			char id[16];
			snprintf(id, sizeof(id), "d%d", i);
			int len = snprintf(buf, 8192,
					   "{\"sku\":\"S-%d\",\"qty\":%d,\"price\":{\"amount\":%d.5,\"currency\":\"EUR\"},"
					   "\"tags\":[\"a\",\"b\"],\"notes\":\"%s\"}",
					   i, i, i, pad);
			ctc_doc_state *st = ctc_state_new("items", id, NULL);
			st->doc = json_loadb(buf, (size_t)len, 0, NULL);
			states[i] = st;
			text = (size_t)len;
		}
		size_t a1 = allocated(mallctl);
		for (int i = 0; i < N; i++)
			est += ctc_state_approx_bytes(states[i]);
		printf("bench=cache_size text_bytes=%zu allocated_per_state=%.0f estimate_per_state=%.0f "
		       "estimate_over_allocated=%.2f\n",
		       text, (double)(a1 - a0) / N, (double)est / N, (double)est / (double)(a1 - a0));
		for (int i = 0; i < N; i++)
			ctc_state_free(states[i]);
	}
	free(buf);
	free(pad);
	return 0;
}
