/*
 * bench_common.c - cost per event of the consumer's CPU work in common/:
 * parsing + validating an event, diffing its document against the previous
 * state, and the canonical hash of a history record, for 1 KB and 4 KB
 * documents with 1-3 changed fields.
 *
 * usage: bench_common [iterations]      (default 20000 per figure)
 * Prints one line per figure (key=value) and the median of 5 rounds.
 */
#include "changetrail/canonical.h"
#include "changetrail/diff.h"
#include "changetrail/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* A document of about `bytes` bytes: nested object, list, numbers, strings. */
static json_t *make_doc(size_t bytes, int variant)
{
	json_t *d = json_object();
	json_object_set_new(d, "sku", json_string("SKU-0001"));
	json_object_set_new(d, "qty", json_integer(10 + variant));
	json_object_set_new(d, "price", json_pack("{s:f,s:s}", "amount", 9.5 + variant, "currency", "EUR"));
	json_object_set_new(d, "tags", json_pack("[s,s]", "new", variant ? "sale" : "hot"));
	char key[32], val[64];
	for (int i = 0; ; i++) {
		char *t = json_dumps(d, JSON_COMPACT);
		size_t n = strlen(t);
		free(t);
		if (n >= bytes)
			break;
		snprintf(key, sizeof(key), "attr_%03d", i);
		snprintf(val, sizeof(val), "value of attribute %d, unchanged", i);
		json_object_set_new(d, key, json_string(val));
	}
	return d;
}

static char *make_event(const json_t *after)
{
	json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:{s:s,s:s}},s:O}",
		"schema", "changetrail.event.v1",
		"event_id", "01890a5d-ac96-774b-bcce-b302099a8057",
		"ts", "2026-11-22T20:56:52.123456Z",
		"source", "inventory", "collection", "products", "document_id", "SKU-0001",
		"op", "update", "actor", "alice",
		"context", "id", "01890a5d-ac96-774b-bcce-b302099a8058", "metadata", "user", "alice",
		"url", "/products/SKU-0001",
		"after", after);
	char *s = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

typedef double (*round_fn)(void *ctx, int iters);

static double median_us(round_fn fn, void *ctx, int iters)
{
	double r[5];
	for (int i = 0; i < 5; i++)
		r[i] = fn(ctx, iters) / iters;
	qsort(r, 5, sizeof(r[0]), cmp_double);
	return r[2];
}

struct ctx {
	char *event_text;
	size_t event_len;
	json_t *prev, *next;
	json_t *record;
};

static double round_parse(void *p, int iters)
{
	struct ctx *c = p;
	double t0 = now_us();
	for (int i = 0; i < iters; i++) {
		ct_event *ev = NULL;
		if (ct_event_parse(c->event_text, c->event_len, NULL, &ev, NULL)) {
			fprintf(stderr, "bench: parse failed\n");
			exit(1);
		}
		ct_event_free(ev);
	}
	return now_us() - t0;
}

static double round_diff(void *p, int iters)
{
	struct ctx *c = p;
	double t0 = now_us();
	for (int i = 0; i < iters; i++) {
		json_t *d = NULL;
		if (ct_diff(c->prev, c->next, &d, NULL)) {
			fprintf(stderr, "bench: diff failed\n");
			exit(1);
		}
		json_decref(d);
	}
	return now_us() - t0;
}

static double round_parse_diff(void *p, int iters)
{
	struct ctx *c = p;
	double t0 = now_us();
	for (int i = 0; i < iters; i++) {
		ct_event *ev = NULL;
		json_t *d = NULL;
		if (ct_event_parse(c->event_text, c->event_len, NULL, &ev, NULL) ||
		    ct_diff(c->prev, ct_event_after(ev), &d, NULL)) {
			fprintf(stderr, "bench: parse+diff failed\n");
			exit(1);
		}
		json_decref(d);
		ct_event_free(ev);
	}
	return now_us() - t0;
}

static double round_hash(void *p, int iters)
{
	struct ctx *c = p;
	char hex[65];
	double t0 = now_us();
	for (int i = 0; i < iters; i++)
		if (ct_record_hash(c->record, hex, NULL)) {
			fprintf(stderr, "bench: hash failed\n");
			exit(1);
		}
	return now_us() - t0;
}

static double round_state_hash(void *p, int iters)
{
	struct ctx *c = p;
	double t0 = now_us();
	for (int i = 0; i < iters; i++) {
		char *text;
		size_t len;
		uint8_t dig[32];
		if (ct_canonical_dump(c->next, &text, &len, NULL)) {
			fprintf(stderr, "bench: canonical failed\n");
			exit(1);
		}
		ct_sha256(text, len, dig);
		free(text);
	}
	return now_us() - t0;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20000;
	if (iters <= 0)
		iters = 20000;
	const size_t sizes[] = {1024, 4096};
	printf("bench_common: iterations=%d rounds=5 figure=median_us_per_event\n", iters);
	for (size_t s = 0; s < 2; s++) {
		struct ctx c;
		c.prev = make_doc(sizes[s], 0);
		c.next = json_deep_copy(c.prev);
		/* three changed fields: a number, a nested number, a list item */
		json_object_set_new(c.next, "qty", json_integer(7));
		json_object_set_new(json_object_get(c.next, "price"), "amount", json_real(8.25));
		json_array_set_new(json_object_get(c.next, "tags"), 1, json_string("sale"));
		c.event_text = make_event(c.next);
		c.event_len = strlen(c.event_text);
		json_t *d = NULL;
		ct_diff(c.prev, c.next, &d, NULL);
		c.record = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:o,s:s}", "_id",
			"01890a5d-ac96-774b-bcce-b302099a8057", "collection", "products", "document_id",
			"SKU-0001", "version", 42, "op", "update", "ts", "2026-11-22T20:56:52.123456Z",
			"actor", "alice", "changes", d,
			"prev_hash", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");

		char *doc_text = json_dumps(c.next, JSON_COMPACT);
		size_t doc_len = strlen(doc_text);
		free(doc_text);
		double parse = median_us(round_parse, &c, iters);
		double diff = median_us(round_diff, &c, iters);
		double pd = median_us(round_parse_diff, &c, iters);
		double hash = median_us(round_hash, &c, iters);
		double shash = median_us(round_state_hash, &c, iters);
		printf("doc_bytes=%zu event_bytes=%zu changed_fields=3 parse_us=%.2f diff_us=%.2f "
		       "parse_plus_diff_us=%.2f record_hash_us=%.2f state_canonical_hash_us=%.2f\n",
		       doc_len, c.event_len, parse, diff, pd, hash, shash);
		free(c.event_text);
		json_decref(c.prev);
		json_decref(c.next);
		json_decref(c.record);
	}
	return 0;
}
