/*
 * bench_common.c - cost per event of the consumer's CPU work in common/:
 * parsing + validating an event, diffing its document against the previous
 * state, and the canonical hash of a history record, for 1 KB and 4 KB
 * documents with 1-3 changed fields.
 *
 * Then the consumer's whole per-event CPU path without Kafka and MongoDB
 * (record_path_us): parse and validate, find the document's state among
 * 10000, make the record (diff, hash), free the record and the event, on
 * the side-by-side benchmark's documents (tests/bench/side_by_side.py: 1 KB,
 * each document updated in turn, so its previous state is cold in the CPU
 * caches, as in the daemon).
 *
 * usage: bench_common [iterations] [path]  (default 20000 per figure; "path":
 *        record_path_us only, e.g. under perf record)
 * Prints one line per figure (key=value) and the median of 5 rounds.
 */
#include "changetrail/canonical.h"
#include "changetrail/diff.h"
#include "changetrail/event.h"
#include "record.h"
#include "state.h"

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

/* ---- the whole per-event path (record_path_us) ---- */

#define PATH_DOCS 10000

struct path {
	char **text;  /* event k: document k % PATH_DOCS, its version k / PATH_DOCS */
	size_t *len;
	int n;
	ctc_doc_state *st[PATH_DOCS];
};

static void path_states_reset(struct path *p)
{
	for (int d = 0; d < PATH_DOCS; d++) {
		char id[16];
		ctc_state_free(p->st[d]);
		snprintf(id, sizeof(id), "d%d", d);
		p->st[d] = ctc_state_new("items", id, NULL);
	}
}

static double round_path(void *ctx, int iters)
{
	struct path *p = ctx;
	path_states_reset(p);
	double t0 = now_us();
	for (int k = 0; k < iters && k < p->n; k++) {
		ct_event *ev = NULL;
		json_t *rec = NULL;
		ctc_record_result res;
		if (ct_event_parse(p->text[k], p->len[k], NULL, &ev, NULL)) {
			fprintf(stderr, "bench: path parse failed\n");
			exit(1);
		}
		ctc_doc_state *st = p->st[k % PATH_DOCS];
		ctc_event_in in = {
			.event_id = ct_event_id(ev), .ts = ct_event_ts(ev), .source = ct_event_source(ev),
			.collection = ct_event_collection(ev), .document_id = ct_event_document_id(ev),
			.op = ct_op_name(ct_event_op(ev)), .actor = ct_event_actor(ev), .after = ct_event_after(ev),
			.seq = -1, .topic = "bench", .partition = 0, .offset = k,
		};
		if (ctc_record_apply(st, &in, &rec, &res, NULL) || res != CTC_RECORD_PERSISTED) {
			fprintf(stderr, "bench: path record failed\n");
			exit(1);
		}
		json_decref(rec);
		ct_event_free(ev);
	}
	return now_us() - t0;
}

/* The side-by-side benchmark's event (tests/bench/side_by_side.py, Filler). */
static void path_make(struct path *p, int n)
{
	char pad[1024];
	size_t base = strlen("{\"sku\":\"S-99999\",\"qty\":99999,\"price\":{\"amount\":99999.5,\"currency\":\"EUR\"},"
			     "\"tags\":[\"a\",\"b\"],\"notes\":\"\"}");
	size_t np = 1024 - base;
	for (size_t i = 0; i < np; i++)
		pad[i] = (char)('a' + i % 26);
	pad[np] = '\0';
	p->n = n;
	p->text = calloc((size_t)n, sizeof(*p->text));
	p->len = calloc((size_t)n, sizeof(*p->len));
	for (int k = 0; k < n; k++) {
		int d = k % PATH_DOCS, v = k / PATH_DOCS;
		char buf[2048];
		int len = snprintf(buf, sizeof(buf),
			"{\"schema\":\"changetrail.event.v1\",\"event_id\":\"0190c6a4-%04x-7%03x-8%03x-%012x\","
			"\"ts\":\"2026-11-29T10:00:00.%06dZ\",\"source\":\"bench\",\"collection\":\"items\","
			"\"document_id\":\"d%d\",\"op\":\"%s\",\"actor\":\"bench\",\"after\":{\"sku\":\"S-%d\","
			"\"qty\":%d,\"price\":{\"amount\":%d.5,\"currency\":\"EUR\"},\"tags\":[\"a\",\"b\"],"
			"\"notes\":\"%s\"}}",
			(unsigned)(k >> 24) & 0xffff, (unsigned)(k >> 12) & 0xfff, (unsigned)k & 0xfff, (unsigned)k,
			k % 1000000, d, v ? "update" : "insert", d, v, v, pad);
		p->text[k] = strdup(buf);
		p->len[k] = (size_t)len;
	}
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20000;
	if (iters <= 0)
		iters = 20000;
	const size_t sizes[] = {1024, 4096};
	int only_path = argc > 2 && !strcmp(argv[2], "path");
	printf("bench_common: iterations=%d rounds=5 figure=median_us_per_event\n", iters);
	for (size_t s = 0; s < (only_path ? 0 : 2); s++) {
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
	/* enough events that every document is updated at least twice */
	struct path p = {0};
	int n = iters < 3 * PATH_DOCS ? 3 * PATH_DOCS : iters;
	path_make(&p, n);
	double path = median_us(round_path, &p, n);
	printf("docs=%d events=%d doc_bytes~1024 record_path_us=%.2f\n", PATH_DOCS, n, path);
	for (int k = 0; k < p.n; k++)
		free(p.text[k]);
	free(p.text);
	free(p.len);
	for (int d = 0; d < PATH_DOCS; d++)
		ctc_state_free(p.st[d]);
	return 0;
}
