/*
 * ct_loadgen.c - the reliability suite's load generator (scripts/reliability.sh,
 * docs/reliability.md).
 *
 *   ct_loadgen produce --bootstrap B --topic T --events N [--threads K] [--seed S]
 *                      [--rate EV_PER_S] [--spool FILE] [--queue-max N]
 *                      [--poison M] [--expect-docs FILE] [--split F --part 1|2]
 *                      [--reuse M --reuse-docs FILE] [--big M --topic-max-bytes X]
 *                      [--sent-log FILE]
 *   ct_loadgen dlq --bootstrap B --topic T.dlq [--poison M] [--seed S] [--expect FILE]
 *   ct_loadgen admin --bootstrap B --topic T --action delete|create|partitions|lag
 *                    [--partitions N] [--topic-max-bytes X] [--group G]
 *
 * produce: K application threads emit N change events through the public
 * producer API (one ct_producer, several threads, per-thread contexts):
 * inserts, updates, deletes and re-creates, manual events, relations,
 * children rolled up into parents, in request contexts. The stream is a
 * function of the seed only: document contents from a PRNG, event ids and
 * timestamps from the library's test-only deterministic identities
 * (ct_test_ident_set, one stream per thread), and each thread owns its
 * documents, so every run of the same arguments gives the same history
 * records whatever the timing. Every emitted change makes exactly one
 * history record, so `records_expected` is exact. --poison M also sends M
 * hand-made messages with a raw librdkafka producer, mixed in time with the
 * good stream: bad ones of every kind (truncated JSON, wrong types, missing
 * fields, oversized, 10k-deep nesting, invalid UTF-8, duplicate keys, huge
 * numbers, valid events keyed other than <collection>/<document_id> or
 * without a key, half of them for documents of the app stream) that must
 * end in the DLQ, and valid but tricky ones ('$' and '.'
 * keys, keys that collide under usual escaping schemes) that must be
 * persisted exactly; each is checked with ct_event_parse() first (with the
 * suite's consumer limits) so the generator cannot mislabel one. The tricky
 * documents are written to --expect-docs for ct_export to check.
 * Prints one JSON line of figures; exit 1 when an event was rejected,
 * failed or not delivered.
 *
 * --split F --part 1|2 emits the first or the second part of every
 * thread's stream (cut at the first request at or after F of its events):
 * the two parts, run one after the other, are the whole stream, same ids and
 * timestamps (the topic-recreated scenario sends them to two incarnations of
 * a topic). --reuse M (event ids re-used with other content) and --big M
 * (refused messages around the 1 MiB limits; --topic-max-bytes creates the
 * topic so that it takes them) are described at their threads below; every
 * message they send that the DLQ must hold is a line of --sent-log
 * (category, code, key, SHA-256, size, whole or stub).
 *
 * dlq: reads the dead-letter topic to its end and checks it holds exactly
 * the bad poison messages and the --expect ones (a --sent-log), each once
 * at least, with the expected ct-dlq-code, a reason and the expected form
 * (whole, or a stub naming its SHA-256 and size); prints one JSON line of
 * figures (per category); exit 1 on any mismatch.
 *
 * admin: deletes a topic (and waits until it is gone), creates one (retried
 * while a deleted one of that name is being removed), prints its partition
 * count, or prints a group's lag on it as JSON.
 */
#include "changetrail/canonical.h"
#include "changetrail/producer.h"
#include "ct_internal.h"

#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The consumer's max_event_bytes in the suite's configuration (reliability.sh). */
#define SUITE_MAX_EVENT_BYTES 65536
/* Fixed start of the deterministic clock: 2025-01-01T00:00:00Z. */
#define CLOCK_START_MS INT64_C(1735689600000)

typedef struct opts {
	const char *bootstrap, *topic, *spool, *expect_docs;
	long events, threads, rate, queue_max, poison;
	unsigned long long seed;
	/* --split F --part 1|2: the first or the second part of each thread's stream */
	double split;
	int part;
	long reuse, big, topic_max_bytes, partitions;
	const char *sent_log, *reuse_docs, *expect, *group, *action;
} opts;

/* ---- deterministic randomness ---- */

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

static uint64_t seed_of(unsigned long long seed, uint64_t stream)
{
	uint64_t s = seed * UINT64_C(0x9E3779B97F4A7C15) + stream * UINT64_C(0xBF58476D1CE4E5B9) + 1;
	for (int i = 0; i < 4; i++)
		rnd(&s);
	return s ? s : 1;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the good stream ---- */

typedef struct app_doc {
	bool live, known;
	long rev;
	int tags;
} app_doc;

typedef struct thread_arg {
	const opts *o;
	ct_producer *p;
	int index;
	long events;          /* this thread's share */
	long emitted, records, markers, errors;
	char error[1024];
} thread_arg;

static const char *const COLLS[] = {"orders", "customers", "items"};
#define DOCS_PER_THREAD 400

static void doc_json(char *buf, size_t size, const char *coll, long rev, int tags, uint64_t *s)
{
	char tagbuf[256] = "";
	size_t o = 0;
	for (int i = 0; i < tags && o < sizeof(tagbuf) - 16; i++)
		o += (size_t)snprintf(tagbuf + o, sizeof(tagbuf) - o, "%s\"t%d\"", i ? "," : "", i);
	/* rev changes on every update, so an update is never empty */
	snprintf(buf, size,
		 "{\"kind\":\"%s\",\"rev\":%ld,\"qty\":%llu,\"price\":{\"amount\":%llu.%02llu,\"currency\":\"EUR\"},"
		 "\"tags\":[%s],\"note\":\"n%llx\",\"flags\":{\"a.b\":%s,\"$v\":%llu}}",
		 coll, rev, (unsigned long long)(rnd(s) % 1000), (unsigned long long)(rnd(s) % 500),
		 (unsigned long long)(rnd(s) % 100), tagbuf, (unsigned long long)(rnd(s) % 0xfffff),
		 rnd(s) % 2 ? "true" : "false", (unsigned long long)(rnd(s) % 7));
}

#define EMIT(c)                                                                             \
	do {                                                                                \
		ct_error e_;                                                                \
		if (ct_emit(a->p, (c), NULL, &e_) != CT_OK) {                               \
			snprintf(a->error, sizeof(a->error), "emit: %s", e_.message);       \
			a->errors++;                                                        \
			goto out;                                                           \
		}                                                                           \
		a->emitted++;                                                               \
		a->records++;                                                               \
	} while (0)

/* One change to document d (index di) of this thread; !emit: its draws and identity only (--split). */
static int one_change(thread_arg *a, app_doc *docs, uint64_t *s, long n, bool emit)
{
	char id[64], body[1024], actor[32], label[32], rel[32];
	int di = (int)(rnd(s) % DOCS_PER_THREAD);
	app_doc *d = &docs[di];
	const char *coll = COLLS[di % 3];
	ct_change c = {0};
	snprintf(id, sizeof(id), "t%d-d%d", a->index, di);
	snprintf(actor, sizeof(actor), "user%llu", (unsigned long long)(rnd(s) % 20));
	c.collection = coll;
	c.document_id = id;
	c.actor = actor;
	c.seq = n + 1;
	unsigned r = (unsigned)(rnd(s) % 100);
	if (!d->live) {
		c.op = CT_OP_INSERT;
		d->rev++;
		doc_json(body, sizeof(body), coll, d->rev, d->tags, s);
		c.after_json = body;
		d->live = d->known = true;
	} else if (r < 6) {
		c.op = CT_OP_DELETE;
		d->live = false;
	} else if (r < 12) {
		c.op = CT_OP_EVENT;
		snprintf(label, sizeof(label), "audit-%u", r);
		c.label = label;
	} else if (r < 18) {
		c.op = r % 2 ? CT_OP_RELATION_ADD : CT_OP_RELATION_REMOVE;
		snprintf(rel, sizeof(rel), "tag%u", r % 4);
		c.relation_name = "tags";
		c.relation_collection = "tags";
		c.relation_document_id = rel;
	} else {
		c.op = CT_OP_UPDATE;
		d->rev++;
		if (r < 30)
			d->tags = (d->tags + 1) % 6;
		doc_json(body, sizeof(body), coll, d->rev, d->tags, s);
		c.after_json = body;
		if (di % 3 == 2) { /* items roll up into an order */
			snprintf(rel, sizeof(rel), "t%d-d%d", a->index, (di / 3) * 3);
			c.parent_collection = "orders";
			c.parent_document_id = rel;
		}
	}
	if (emit) {
		EMIT(&c);
	} else {
		char skipped[40];
		ct_uuid7_new(skipped, NULL); /* what ct_emit() takes */
	}
	return 0;
out:
	return -1;
}

static void *app_thread(void *arg)
{
	thread_arg *a = arg;
	app_doc *docs = calloc(DOCS_PER_THREAD, sizeof(*docs));
	uint64_t s = seed_of(a->o->seed, (uint64_t)a->index + 1);
	double per_thread_rate = a->o->rate > 0 ? (double)a->o->rate / (double)a->o->threads : 0;
	int64_t t0 = mono_us();
	ct_error err;
	if (!docs) {
		snprintf(a->error, sizeof(a->error), "out of memory");
		a->errors++;
		goto out;
	}
	/* This thread's deterministic ids and clock (ct_internal.h). */
	ct_test_ident_set((uint32_t)a->index + 1, CLOCK_START_MS + (int64_t)a->index * INT64_C(1000000000));
	/* --split: part 1 stops at the first request starting at or after the
	 * boundary; part 2 goes through the same requests without emitting them
	 * (the same PRNG draws and the same identities: one per change, three per
	 * context: its id and its two markers), then emits the rest */
	long boundary = a->o->part ? (long)((double)a->events * a->o->split) : 0, first = 0;
	for (long n = 0; n < a->events;) {
		if (a->o->part == 1 && n >= boundary)
			break;
		if (a->o->part == 2 && n < boundary) {
			char skip_id[40];
			if (rnd(&s) % 25 < 1) {
				long m = 1 + (long)(rnd(&s) % 4);
				ct_uuid7_new(skip_id, NULL);
				ct_uuid7_new(skip_id, NULL);
				for (long j = 0; j < m && n < a->events; j++, n++)
					one_change(a, docs, &s, n, false);
				ct_uuid7_new(skip_id, NULL);
			} else {
				one_change(a, docs, &s, n, false);
				n++;
			}
			first = n;
			continue;
		}
		if (per_thread_rate > 0) {
			int64_t due = t0 + (int64_t)((double)(n - first) * 1e6 / per_thread_rate);
			int64_t now = mono_us();
			if (due > now)
				usleep((useconds_t)(due - now));
		}
		/* a request: a context with 1..4 changes (1 in 25), or a lone change.
		 * The rate dates from when every context was an upsert, which FerretDB
		 * 1.24 does with a scan of the collection (contexts are inserted now,
		 * docs/storage.md); kept so that runs stay comparable. */
		unsigned k = (unsigned)(rnd(&s) % 25);
		if (k < 1) {
			char md[128];
			snprintf(md, sizeof(md), "{\"user\":\"user%u\",\"request\":%ld,\"thread\":%d}",
				 (unsigned)(n % 7), n, a->index);
			if (ct_context_enter(a->p, md, &err) != CT_OK) {
				snprintf(a->error, sizeof(a->error), "context_enter: %s", err.message);
				a->errors++;
				goto out;
			}
			a->markers++;
			long m = 1 + (long)(rnd(&s) % 4);
			for (long j = 0; j < m && n < a->events; j++, n++)
				if (one_change(a, docs, &s, n, true))
					goto out;
			if (ct_context_exit(a->p, &err) != CT_OK) {
				snprintf(a->error, sizeof(a->error), "context_exit: %s", err.message);
				a->errors++;
				goto out;
			}
			a->markers++;
		} else {
			if (one_change(a, docs, &s, n, true))
				goto out;
			n++;
		}
	}
out:
	ct_test_ident_set(0, 0);
	free(docs);
	return NULL;
}

/* ---- poison ---- */

enum { P_TRUNCATED, P_WRONG_TYPE, P_MISSING_FIELD, P_OVERSIZED, P_DEEP, P_BAD_UTF8, P_DUP_KEYS,
       P_HUGE_NUMBER, P_DOLLAR_DOT, P_ESCAPE_COLLIDE, P_WRONG_KEY, P_NO_KEY, P_NCAT };

/* Not a parser verdict: a valid event keyed other than <collection>/<document_id> (the consumer's key check). */
#define P_CODE_EKEY 10001

static const struct {
	const char *name;
	int code; /* CT_OK: valid, must be persisted */
	int weight;
} PCAT[P_NCAT] = {
	[P_TRUNCATED] = {"truncated_json", CT_EPARSE, 14},
	[P_WRONG_TYPE] = {"wrong_type", CT_ESCHEMA, 14},
	[P_MISSING_FIELD] = {"missing_field", CT_ESCHEMA, 14},
	[P_OVERSIZED] = {"oversized", CT_ELIMIT, 2},
	[P_DEEP] = {"deep_nesting_10k", CT_ELIMIT, 4},
	[P_BAD_UTF8] = {"invalid_utf8", CT_EPARSE, 12},
	[P_DUP_KEYS] = {"duplicate_keys", CT_EPARSE, 12},
	[P_HUGE_NUMBER] = {"huge_number", CT_EPARSE, 12},
	[P_DOLLAR_DOT] = {"dollar_dot_keys", CT_OK, 8},
	[P_ESCAPE_COLLIDE] = {"escape_collide_keys", CT_OK, 8},
	[P_WRONG_KEY] = {"wrong_key", P_CODE_EKEY, 4},
	[P_NO_KEY] = {"no_key", P_CODE_EKEY, 4},
};

static const char *code_name(int code)
{
	switch (code) {
	case CT_EPARSE: return "EPARSE";
	case CT_ESCHEMA: return "ESCHEMA";
	case CT_ELIMIT: return "ELIMIT";
	case P_CODE_EKEY: return "EKEY";
	default: return "OK";
	}
}

static int pick_category(uint64_t *s)
{
	int total = 0;
	for (int i = 0; i < P_NCAT; i++)
		total += PCAT[i].weight;
	int r = (int)(rnd(s) % (uint64_t)total);
	for (int i = 0; i < P_NCAT; i++) {
		if (r < PCAT[i].weight)
			return i;
		r -= PCAT[i].weight;
	}
	return 0;
}

/* Appends printf output to a growing buffer. */
typedef struct sbuf {
	char *p;
	size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* An event text around `after` (JSON member text, "" = none) with these head fields. */
static void poison_event(sbuf *b, const char *event_id, const char *ts, const char *doc_id, const char *op,
			 const char *after)
{
	char head[512];
	snprintf(head, sizeof(head),
		 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"%s\",\"source\":\"loadgen-poison\","
		 "\"collection\":\"poison_ok\",\"document_id\":\"%s\",\"op\":\"%s\"",
		 event_id, ts, doc_id, op);
	sb_str(b, head);
	if (*after) {
		sb_str(b, ",\"after\":");
		sb_str(b, after);
	}
	sb_str(b, "}");
}

/* Builds poison message i of category cat into b; *doc gets the valid document (CT_OK categories). */
static void make_poison(int cat, long i, uint64_t *s, sbuf *b, char *doc_id, size_t doc_id_size,
			char **doc)
{
	char eid[37], ts[32];
	int64_t us;
	ct_uuid7_new(eid, NULL);
	ct_test_ident_now_us(&us);
	ct_time_format_rfc3339_us(us, ts);
	snprintf(doc_id, doc_id_size, "%s-%ld", PCAT[cat].name, i);
	*doc = NULL;
	b->n = 0;
	switch (cat) {
	case P_TRUNCATED: {
		sbuf full = {0};
		poison_event(&full, eid, ts, doc_id, "insert", "{\"qty\":1,\"name\":\"truncated\"}");
		size_t cut = 1 + (size_t)(rnd(s) % (full.n - 1)); /* 1..n-1 bytes: never complete */
		sb_add(b, full.p, cut);
		free(full.p);
		break;
	}
	case P_WRONG_TYPE: {
		char tmp[600];
		unsigned v = (unsigned)(rnd(s) % 5);
		switch (v) { /* literal formats for -Wformat=2 */
		case 0: snprintf(tmp, sizeof(tmp), "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"%s\",\"source\":\"p\","
				 "\"collection\":\"poison_ok\",\"document_id\":42,\"op\":\"insert\",\"after\":{}}", eid, ts); break;
		case 1: snprintf(tmp, sizeof(tmp), "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"%s\",\"source\":\"p\","
				 "\"collection\":\"poison_ok\",\"document_id\":\"x\",\"op\":\"insert\",\"after\":\"{}\"}", eid, ts); break;
		case 2: snprintf(tmp, sizeof(tmp), "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"%s\",\"source\":\"p\","
				 "\"collection\":\"poison_ok\",\"document_id\":\"x\",\"op\":7,\"after\":{}}", eid, ts); break;
		case 3: snprintf(tmp, sizeof(tmp), "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"%s\",\"source\":\"p\","
				 "\"collection\":[\"poison_ok\"],\"document_id\":\"x\",\"op\":\"insert\",\"after\":{}}", eid, ts); break;
		default: snprintf(tmp, sizeof(tmp), "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"%s\",\"source\":\"p\","
				  "\"collection\":\"poison_ok\",\"document_id\":\"x\",\"op\":\"update\",\"after\":{},\"seq\":\"3\"}", eid, ts); break;
		}
		sb_str(b, tmp);
		break;
	}
	case P_MISSING_FIELD: {
		static const char *const drop[] = {"event_id", "ts", "collection", "document_id", "op", "schema"};
		const char *d = drop[rnd(s) % CT_ARRAY_LEN(drop)];
		char tmp[600];
		snprintf(tmp, sizeof(tmp),
			 "{%s%s%s%s%s%s%s%s%s%s%s%s\"source\":\"p\",\"after\":{\"qty\":1}}",
			 strcmp(d, "schema") ? "\"schema\":\"changetrail.event.v1\"," : "",
			 strcmp(d, "event_id") ? "\"event_id\":\"" : "", strcmp(d, "event_id") ? eid : "",
			 strcmp(d, "event_id") ? "\"," : "",
			 strcmp(d, "ts") ? "\"ts\":\"" : "", strcmp(d, "ts") ? ts : "", strcmp(d, "ts") ? "\"," : "",
			 strcmp(d, "collection") ? "\"collection\":\"poison_ok\"," : "",
			 strcmp(d, "document_id") ? "\"document_id\":\"" : "", strcmp(d, "document_id") ? doc_id : "",
			 strcmp(d, "document_id") ? "\"," : "",
			 strcmp(d, "op") ? "\"op\":\"insert\"," : "");
		sb_str(b, tmp);
		break;
	}
	case P_OVERSIZED: {
		sbuf after = {0};
		sb_str(&after, "{\"blob\":\"");
		size_t want = SUITE_MAX_EVENT_BYTES + 1024 + (size_t)(rnd(s) % 4096);
		for (size_t k = 0; k < want; k++)
			sb_add(&after, "abcdefghijklmnopqrstuvwxyz" + k % 26, 1);
		sb_str(&after, "\"}");
		poison_event(b, eid, ts, doc_id, "insert", after.p);
		free(after.p);
		break;
	}
	case P_DEEP: {
		sbuf after = {0};
		sb_str(&after, "{\"deep\":");
		for (int k = 0; k < 10000; k++)
			sb_add(&after, "[", 1);
		for (int k = 0; k < 10000; k++)
			sb_add(&after, "]", 1);
		sb_str(&after, "}");
		poison_event(b, eid, ts, doc_id, "insert", after.p);
		free(after.p);
		break;
	}
	case P_BAD_UTF8: {
		static const char *const bad[] = {"\"\xff\xfe\"", "\"a\xc3\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"",
						  "\"ok\xf8\x88\x80\x80\x80\""};
		char tmp[128];
		snprintf(tmp, sizeof(tmp), "{\"name\":%s}", bad[rnd(s) % CT_ARRAY_LEN(bad)]);
		poison_event(b, eid, ts, doc_id, "insert", tmp);
		break;
	}
	case P_DUP_KEYS: {
		static const char *const dup[] = {"{\"qty\":1,\"qty\":2}", "{\"a\":{\"x\":1,\"x\":1}}",
						  "{\"$x\":1,\"\\u0024x\":2}", "{\"a.b\":1,\"a\\u002eb\":2}"};
		poison_event(b, eid, ts, doc_id, "insert", dup[rnd(s) % CT_ARRAY_LEN(dup)]);
		break;
	}
	case P_HUGE_NUMBER: {
		static const char *const huge[] = {"{\"n\":123456789012345678901234567890}", "{\"n\":1e400}",
						  "{\"n\":-1e99999}", "{\"n\":9223372036854775808}"};
		poison_event(b, eid, ts, doc_id, "insert", huge[rnd(s) % CT_ARRAY_LEN(huge)]);
		break;
	}
	case P_DOLLAR_DOT: {
		char tmp[512];
		snprintf(tmp, sizeof(tmp),
			 "{\"$set\":{\"a.b\":%llu},\".\":1,\"$\":2,\"\":3,\"..\":{\"$$\":[\"$x\",{\"$oid\":\"x\"}]},"
			 "\"$date\":\"2024\",\"~\":%llu}",
			 (unsigned long long)(rnd(s) % 1000), (unsigned long long)(rnd(s) % 1000));
		*doc = strdup(tmp);
		poison_event(b, eid, ts, doc_id, "insert", tmp);
		break;
	}
	case P_ESCAPE_COLLIDE: {
		/* Distinct keys that common escaping schemes map to the same name:
		 * '.' vs U+FF0E (MongoDB's advice), '$' vs U+FF04, "~2e"/"%2E"/"_"
		 * replacements, and their escaped forms themselves. */
		char tmp[512];
		snprintf(tmp, sizeof(tmp),
			 "{\"a.b\":1,\"a\\uff0eb\":2,\"a~2eb\":3,\"a%%2Eb\":4,\"a_b\":5,\"a\\\\.b\":6,"
			 "\"$x\":7,\"\\uff04x\":8,\"~24x\":9,\"%%24x\":10,\"_x\":%llu}",
			 (unsigned long long)(rnd(s) % 1000));
		*doc = strdup(tmp);
		poison_event(b, eid, ts, doc_id, "insert", tmp);
		break;
	}
	case P_WRONG_KEY: /* valid, keyed poison/<doc_id>: to the DLQ */
	case P_NO_KEY: {  /* valid, without a key: to the DLQ */
		/* every other one for a document of the app stream (its own key
		 * elsewhere): stored, it would change that document's history */
		if (i % 2) {
			char app_doc_id[32], after[128];
			unsigned t = (unsigned)(rnd(s) % 4), di = (unsigned)(rnd(s) % DOCS_PER_THREAD);
			snprintf(app_doc_id, sizeof(app_doc_id), "t%u-d%u", t, di);
			snprintf(after, sizeof(after), "{\"poison\":\"%s\"}", doc_id);
			sbuf tmp = {0};
			poison_event(&tmp, eid, ts, app_doc_id, "update", after);
			/* the app's collection of that document */
			const char *coll = COLLS[di % 3];
			char *at = strstr(tmp.p, "\"collection\":\"poison_ok\"");
			sb_add(b, tmp.p, (size_t)(at - tmp.p));
			sb_str(b, "\"collection\":\"");
			sb_str(b, coll);
			sb_str(b, at + strlen("\"collection\":\"poison_ok"));
			free(tmp.p);
		} else {
			char after[128];
			snprintf(after, sizeof(after), "{\"qty\":1,\"poison\":\"%s\"}", doc_id);
			poison_event(b, eid, ts, doc_id, "insert", after);
		}
		break;
	}
	}
}

typedef struct poison_arg {
	const opts *o;
	long sent[P_NCAT];
	long valid_records;
	long errors;
	char error[1024];
	FILE *expect;
	atomic_int *app_done;
} poison_arg;

static void *poison_thread(void *arg)
{
	poison_arg *a = arg;
	char errstr[512], key[200], doc_id[128];
	sbuf b = {0};
	rd_kafka_t *rk = NULL;
	ct_limits lim;
	uint64_t s = seed_of(a->o->seed, 0xffe);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ct_limits_default(&lim);
	lim.max_bytes = SUITE_MAX_EVENT_BYTES;
	if (rd_kafka_conf_set(conf, "bootstrap.servers", a->o->bootstrap, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "message.timeout.ms", "0", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "linger.ms", "10", errstr, sizeof(errstr)) ||
	    !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
		snprintf(a->error, sizeof(a->error), "poison producer: %s", errstr);
		a->errors++;
		goto out;
	}
	ct_test_ident_set(0xffe, CLOCK_START_MS + INT64_C(900000000000));
	for (long i = 0; i < a->o->poison; i++) {
		int cat = pick_category(&s);
		char *doc = NULL;
		make_poison(cat, i, &s, &b, doc_id, sizeof(doc_id), &doc);
		/* the generator must agree with the contract */
		ct_event *ev = NULL;
		ct_error err;
		int rc = ct_event_parse(b.p, b.n, &lim, &ev, &err);
		ct_event_free(ev);
		if (rc != (PCAT[cat].code == P_CODE_EKEY ? CT_OK : PCAT[cat].code)) {
			snprintf(a->error, sizeof(a->error), "poison %s-%ld: parser says %s (%s), expected %s",
				 PCAT[cat].name, i, code_name(rc), rc ? err.message : "", code_name(PCAT[cat].code));
			a->errors++;
			free(doc);
			goto out;
		}
		if (doc) {
			fprintf(a->expect, "{\"collection\":\"poison_ok\",\"document_id\":\"%s\",\"doc\":%s}\n", doc_id, doc);
			a->valid_records++;
			free(doc);
		}
		snprintf(key, sizeof(key), "%s/%s", PCAT[cat].code ? "poison" : "poison_ok", doc_id);
		rd_kafka_resp_err_t e;
		const void *kp = cat == P_NO_KEY ? NULL : key;
		size_t kl = cat == P_NO_KEY ? 0 : strlen(key);
		while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(a->o->topic), RD_KAFKA_V_KEY(kp, kl),
					      RD_KAFKA_V_VALUE(b.p, b.n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 50);
		if (e) {
			snprintf(a->error, sizeof(a->error), "poison produce: %s", rd_kafka_err2str(e));
			a->errors++;
			goto out;
		}
		a->sent[cat]++;
		rd_kafka_poll(rk, 0);
		/* spread over the good stream's time: a few per good batch */
		if (!atomic_load(a->app_done) && i % 16 == 15)
			usleep(2000);
	}
	if (rd_kafka_flush(rk, 600000)) {
		snprintf(a->error, sizeof(a->error), "poison flush timed out");
		a->errors++;
	}
out:
	ct_test_ident_set(0, 0);
	if (rk)
		rd_kafka_destroy(rk);
	free(b.p);
	return NULL;
}

/* ---- deliveries seen (for --reuse: ids the reuse thread may take again) ---- */

/* A delivered change event of the good stream. */
typedef struct seen_ev {
	char id[40], coll[16], doc[24];
	int32_t partition;
} seen_ev;

/* Per good document: its first delivered event and how many followed it. */
typedef struct doc_seen {
	char first_id[40];
	long since;
	int32_t partition;
	bool has, taken;
} doc_seen;

#define SEEN_RING 4096
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static seen_ev seen_ring[SEEN_RING];
static unsigned long seen_n;
static doc_seen *seen_docs; /* threads * DOCS_PER_THREAD, NULL unless --reuse */
static long seen_ndocs;

static void seen_delivery(const ct_delivery *d)
{
	int t, di;
	char tail;
	if (!seen_docs || !d->collection || !*d->collection || !d->document_id ||
	    sscanf(d->document_id, "t%d-d%d%c", &t, &di, &tail) != 2 || t < 0 || di < 0 || di >= DOCS_PER_THREAD ||
	    (long)t * DOCS_PER_THREAD + di >= seen_ndocs || strlen(d->event_id) != 36)
		return;
	pthread_mutex_lock(&seen_mu);
	seen_ev *e = &seen_ring[seen_n++ % SEEN_RING];
	snprintf(e->id, sizeof(e->id), "%s", d->event_id);
	snprintf(e->coll, sizeof(e->coll), "%s", d->collection);
	snprintf(e->doc, sizeof(e->doc), "%s", d->document_id);
	e->partition = d->partition;
	doc_seen *s = &seen_docs[(long)t * DOCS_PER_THREAD + di];
	if (!s->has) {
		snprintf(s->first_id, sizeof(s->first_id), "%s", d->event_id);
		s->has = true;
		s->since = 0;
	} else {
		s->since++;
	}
	s->partition = d->partition;
	pthread_mutex_unlock(&seen_mu);
}

/* ---- hand-made messages checked in the DLQ by their SHA-256 (--reuse, --big) ---- */

/* One line of the sent log: what the DLQ must hold (ct_loadgen dlq --expect). */
static void log_sent(FILE *f, const char *category, const char *code, const char *key, const char *value, size_t len,
		     const char *form)
{
	char sha[65];
	uint8_t d[32];
	ct_sha256(value, len, d);
	for (int i = 0; i < 32; i++)
		snprintf(sha + 2 * i, 3, "%02x", d[i]);
	fprintf(f, "{\"category\":\"%s\",\"code\":\"%s\",\"key\":\"%s\",\"sha256\":\"%s\",\"size\":%zu,\"form\":\"%s\"}\n",
		category, code, key, sha, len, form);
}

static atomic_ulong raw_failed;

static void raw_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		atomic_fetch_add(&raw_failed, 1);
		fprintf(stderr, "ct_loadgen: side message not delivered (%zu bytes): %s\n", m->len, rd_kafka_err2str(m->err));
	}
}

static rd_kafka_t *raw_producer(const char *bootstrap, const char *max_bytes, char *errstr, size_t errsize)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk = NULL;
	rd_kafka_conf_set_dr_msg_cb(conf, raw_dr);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, errsize) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errsize) ||
	    rd_kafka_conf_set(conf, "message.timeout.ms", "0", errstr, errsize) ||
	    rd_kafka_conf_set(conf, "linger.ms", "10", errstr, errsize) ||
	    (max_bytes && rd_kafka_conf_set(conf, "message.max.bytes", max_bytes, errstr, errsize)) ||
	    !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errsize))) {
		if (!rk)
			rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return rk;
}

static int raw_send(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key, const char *value,
		    size_t len)
{
	rd_kafka_resp_err_t e;
	while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
				      RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, len),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
	       RD_KAFKA_RESP_ERR__QUEUE_FULL)
		rd_kafka_poll(rk, 50);
	rd_kafka_poll(rk, 0);
	return e ? -1 : 0;
}

/* Pacing of a side thread: item i of n spread over the good stream's expected time. */
static void side_pace(const opts *o, atomic_int *app_done, int64_t t0, long i, long n)
{
	if (atomic_load(app_done) || o->rate <= 0 || n <= 0)
		return;
	int64_t span_us = (int64_t)((double)o->events * 1e6 / (double)o->rate);
	int64_t due = t0 + span_us * i / n, now = mono_us();
	if (due > now)
		usleep((useconds_t)(due - now));
}

typedef struct side_arg {
	const opts *o;
	atomic_int *app_done;
	FILE *sent;             /* the sent log */
	long valid_records;     /* valid events of its own (reuse_ok) */
	long count[8];          /* per category */
	long errors;
	char error[1024];
} side_arg;

/*
 * ---- --reuse M: event ids used again with other content (issue 16) ----
 * A thread with a producer of its own writes a valid stream of its own
 * (collection reuse_ok: REUSE_DOCS documents, an insert and updates, all on
 * partition 0) and M messages that take an existing event id again with
 * other content, each in its document's key and on the partition that holds
 * the original, after it (the original is delivered: its delivery report
 * was seen, or it came earlier from this producer):
 *   same_doc_recent      a delivered app event again for its document (within its last 32 events)
 *   other_doc            a delivered app event for another app document of its partition
 *   same_doc_after_32    an app document's first event again after more than 40 others of it
 *   own_same_doc_recent  the previous event of a reuse_ok document again
 *   own_same_doc_after_32 an event of a reuse_ok document again 34 events later
 *   cross_doc            a reuse_ok id for an app document of partition 0, or an app id for a reuse_ok document
 * Each must end in the DLQ with code EREUSED; the app stream stays exactly
 * the golden run's and reuse_ok is recorded whole. Categories that find no
 * original yet (no delivery seen, no document with 33 events) fall back to
 * their own_* form: the log says which was sent.
 */
#define REUSE_DOCS 4
#define REUSE_PER_DOC 45
static const char *const REUSE_CAT[] = {"same_doc_recent", "other_doc", "same_doc_after_32",
					"own_same_doc_recent", "own_same_doc_after_32", "cross_doc"};

static void reuse_doc_json(char *buf, size_t size, int doc, int ver)
{
	snprintf(buf, size, "{\"doc\":\"r%d\",\"ver\":%d,\"tags\":[%d,%d]}", doc, ver, ver % 3, doc);
}

static void side_event(char *buf, size_t size, const char *id, const char *ts, const char *coll, const char *doc,
		       const char *op, const char *after)
{
	snprintf(buf, size,
		 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"%s\",\"source\":\"loadgen-side\","
		 "\"collection\":\"%s\",\"document_id\":\"%s\",\"op\":\"%s\",\"after\":%s}",
		 id, ts, coll, doc, op, after);
}

static void *reuse_thread(void *arg)
{
	side_arg *a = arg;
	const opts *o = a->o;
	char errstr[512], ids[REUSE_DOCS][REUSE_PER_DOC][40], msg[2048], after[512], key[128], ts[40], rid[40];
	int ver[REUSE_DOCS] = {0};
	long total = (long)REUSE_DOCS * REUSE_PER_DOC, sent = 0;
	int64_t t0 = mono_us(), us;
	ct_limits lim;
	ct_limits_default(&lim);
	lim.max_bytes = SUITE_MAX_EVENT_BYTES;
	rd_kafka_t *rk = raw_producer(o->bootstrap, NULL, errstr, sizeof(errstr));
	if (!rk) {
		snprintf(a->error, sizeof(a->error), "reuse producer: %s", errstr);
		a->errors++;
		goto out;
	}
	ct_test_ident_set(0xffd, CLOCK_START_MS + INT64_C(800000000000));
	for (long k = 0; k < total; k++) {
		int d = (int)(k % REUSE_DOCS), v = ver[d];
		/* the own valid stream */
		ct_uuid7_new(ids[d][v], NULL);
		ct_test_ident_now_us(&us);
		ct_time_format_rfc3339_us(us, ts);
		reuse_doc_json(after, sizeof(after), d, v);
		snprintf(key, sizeof(key), "r%d", d);
		side_event(msg, sizeof(msg), ids[d][v], ts, "reuse_ok", key, v ? "update" : "insert", after);
		snprintf(key, sizeof(key), "reuse_ok/r%d", d);
		if (raw_send(rk, o->topic, 0, key, msg, strlen(msg))) {
			snprintf(a->error, sizeof(a->error), "reuse produce failed");
			a->errors++;
			goto out;
		}
		ver[d]++;
		a->valid_records++;
		/* the reused ids, spread over the own stream */
		while (sent < o->reuse && sent * total < o->reuse * (k + 1)) {
			int cat = (int)(sent % 6);
			char coll[16] = "reuse_ok", doc[24], op[8] = "update";
			int32_t part = 0;
			rid[0] = '\0';
			pthread_mutex_lock(&seen_mu);
			unsigned long n = seen_n;
			if (cat == 0 && n) {
				const seen_ev *e = &seen_ring[(n - 1) % SEEN_RING];
				snprintf(rid, sizeof(rid), "%s", e->id);
				snprintf(coll, sizeof(coll), "%s", e->coll);
				snprintf(doc, sizeof(doc), "%s", e->doc);
				part = e->partition;
			} else if (cat == 1 && n) {
				const seen_ev *e = &seen_ring[(n - 1) % SEEN_RING];
				for (unsigned long j = 2; j <= n && j < SEEN_RING; j++) {
					const seen_ev *f = &seen_ring[(n - j) % SEEN_RING];
					if (f->partition == e->partition && strcmp(f->doc, e->doc)) {
						snprintf(rid, sizeof(rid), "%s", e->id);
						snprintf(coll, sizeof(coll), "%s", f->coll);
						snprintf(doc, sizeof(doc), "%s", f->doc);
						part = f->partition;
						break;
					}
				}
			} else if (cat == 2) {
				for (long j = 0; j < seen_ndocs; j++) {
					doc_seen *s = &seen_docs[j];
					if (s->has && !s->taken && s->since > 40) {
						s->taken = true;
						snprintf(rid, sizeof(rid), "%s", s->first_id);
						snprintf(coll, sizeof(coll), "%s", COLLS[(j % DOCS_PER_THREAD) % 3]);
						snprintf(doc, sizeof(doc), "t%ld-d%ld", j / DOCS_PER_THREAD, j % DOCS_PER_THREAD);
						part = s->partition;
						break;
					}
				}
			} else if (cat == 5 && n) {
				/* an app document of partition 0, or an app id of partition 0 */
				for (unsigned long j = 1; j <= n && j < SEEN_RING; j++) {
					const seen_ev *f = &seen_ring[(n - j) % SEEN_RING];
					if (f->partition != 0)
						continue;
					if (sent % 12 == 5) { /* own id for the app document */
						snprintf(rid, sizeof(rid), "%s", ids[d][ver[d] - 1]);
						snprintf(coll, sizeof(coll), "%s", f->coll);
						snprintf(doc, sizeof(doc), "%s", f->doc);
					} else { /* app id for an own document */
						snprintf(rid, sizeof(rid), "%s", f->id);
						snprintf(doc, sizeof(doc), "r%d", (d + 1) % REUSE_DOCS);
					}
					part = 0;
					break;
				}
			}
			pthread_mutex_unlock(&seen_mu);
			if (!rid[0] && (cat == 4 || cat == 2)) { /* after 32: an own document far enough */
				for (int j = 0; j < REUSE_DOCS && !rid[0]; j++)
					if (ver[j] >= 35) {
						snprintf(rid, sizeof(rid), "%s", ids[j][ver[j] - 34]);
						snprintf(doc, sizeof(doc), "r%d", j);
						part = 0;
						cat = 4;
					}
				if (!rid[0])
					cat = 3;
			}
			if (!rid[0]) { /* the previous own event of this document, or of the last one written */
				int j = ver[d] >= 2 ? d : (int)((k - 1 + REUSE_DOCS) % REUSE_DOCS);
				if (k == 0)
					break; /* nothing sent yet: later */
				snprintf(rid, sizeof(rid), "%s", ids[j][ver[j] >= 2 ? ver[j] - 2 : ver[j] - 1]);
				snprintf(coll, sizeof(coll), "reuse_ok");
				snprintf(doc, sizeof(doc), "r%d", j);
				part = 0;
				cat = 3;
			}
			/* other content: never a redelivery */
			snprintf(after, sizeof(after), "{\"reused\":%ld,\"category\":\"%s\"}", sent, REUSE_CAT[cat]);
			ct_test_ident_now_us(&us);
			ct_time_format_rfc3339_us(us, ts);
			side_event(msg, sizeof(msg), rid, ts, coll, doc, op, after);
			ct_event *ev = NULL;
			ct_error err;
			if (ct_event_parse(msg, strlen(msg), &lim, &ev, &err)) {
				snprintf(a->error, sizeof(a->error), "reuse message not a valid event: %s", err.message);
				a->errors++;
				goto out;
			}
			ct_event_free(ev);
			snprintf(key, sizeof(key), "%s/%s", coll, doc);
			if (raw_send(rk, o->topic, part, key, msg, strlen(msg))) {
				snprintf(a->error, sizeof(a->error), "reuse produce failed");
				a->errors++;
				goto out;
			}
			log_sent(a->sent, REUSE_CAT[cat], "EREUSED", key, msg, strlen(msg), "whole");
			a->count[cat]++;
			sent++;
		}
		side_pace(o, a->app_done, t0, k + 1, total);
	}
	if (sent < o->reuse) {
		snprintf(a->error, sizeof(a->error), "only %ld reuse messages sent of %ld", sent, o->reuse);
		a->errors++;
	}
	if (rd_kafka_flush(rk, 600000)) {
		snprintf(a->error, sizeof(a->error), "reuse flush timed out");
		a->errors++;
	}
	/* the expected final documents of reuse_ok */
	if (o->reuse_docs) {
		FILE *f = fopen(o->reuse_docs, "w");
		for (int d = 0; f && d < REUSE_DOCS; d++) {
			reuse_doc_json(after, sizeof(after), d, ver[d] - 1);
			fprintf(f, "{\"collection\":\"reuse_ok\",\"document_id\":\"r%d\",\"version\":%d,\"doc\":%s}\n", d,
				ver[d], after);
		}
		if (!f || fclose(f)) {
			snprintf(a->error, sizeof(a->error), "cannot write %s", o->reuse_docs);
			a->errors++;
		}
	}
out:
	ct_test_ident_set(0, 0);
	if (rk)
		rd_kafka_destroy(rk);
	return NULL;
}

/*
 * ---- --big M: refused events around the 1 MiB limits (issue 16) ----
 * M messages keyed big/<category>-<i>, mixed in time with the good stream,
 * on a topic that takes them (created with --topic-max-bytes); the consumer
 * keeps its default max_event_bytes (1 MiB) and the DLQ topic the broker's
 * defaults (max.message.bytes 1,048,588):
 *   junk_1000500     1,000,500..1,040,500 bytes, not JSON: EPARSE, whole in the DLQ
 *   schema_1040000   about 1,040,000 bytes, a valid JSON event of a wrong type: ESCHEMA, whole
 *   event_1100000    a valid event of about 1,100,000 bytes (over 1 MiB): ELIMIT; the broker refuses it: stub
 *   event_1500000    about 1,500,000 bytes: ELIMIT; over the DLQ producer's limit: stub
 */
static const struct {
	const char *name, *code, *form;
	size_t size;
} BIG_CAT[] = {{"junk_1000500", "EPARSE", "whole", 1000500},
	       {"schema_1040000", "ESCHEMA", "whole", 1040000},
	       {"event_1100000", "ELIMIT", "stub", 1100000},
	       {"event_1500000", "ELIMIT", "stub", 1500000}};
#define BIG_NCAT 4

static void *big_thread(void *arg)
{
	side_arg *a = arg;
	const opts *o = a->o;
	char errstr[512], key[128], eid[40], ts[40], head[512];
	int64_t t0 = mono_us(), us;
	uint64_t s = seed_of(o->seed, 0xffc);
	sbuf b = {0};
	ct_limits lim;
	ct_limits_default(&lim); /* the consumer's defaults here */
	rd_kafka_t *rk = raw_producer(o->bootstrap, "4000000", errstr, sizeof(errstr));
	if (!rk) {
		snprintf(a->error, sizeof(a->error), "big producer: %s", errstr);
		a->errors++;
		goto out;
	}
	ct_test_ident_set(0xffc, CLOCK_START_MS + INT64_C(700000000000));
	for (long i = 0; i < o->big; i++) {
		int cat = (int)(i % BIG_NCAT);
		size_t want = BIG_CAT[cat].size + (size_t)(rnd(&s) % (cat == 1 ? 4000 : 40000));
		char doc[64];
		snprintf(doc, sizeof(doc), "%s-%ld", BIG_CAT[cat].name, i);
		ct_uuid7_new(eid, NULL);
		ct_test_ident_now_us(&us);
		ct_time_format_rfc3339_us(us, ts);
		b.n = 0;
		if (cat == 0) { /* an unterminated string */
			sb_str(&b, "{\"x\":\"");
			while (b.n < want)
				sb_add(&b, "abcdefghijklmnopqrstuvwxyz", 26);
			b.n = want;
			b.p[b.n] = '\0';
		} else {
			/* document_id a number for ESCHEMA; strings of 200,000 bytes (under max_string_bytes) */
			snprintf(head, sizeof(head),
				 "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"%s\",\"ts\":\"%s\",\"source\":\"loadgen-big\","
				 "\"collection\":\"big\",\"document_id\":%s%s%s,\"op\":\"insert\",\"after\":{\"parts\":[",
				 eid, ts, cat == 1 ? "" : "\"", cat == 1 ? "4711" : doc, cat == 1 ? "" : "\"");
			sb_str(&b, head);
			int part = 0;
			while (b.n + 16 < want) {
				size_t chunk = want - b.n - 16;
				chunk = chunk > 200000 ? 200000 : chunk;
				sb_str(&b, part++ ? ",\"" : "\"");
				for (size_t k = 0; k < chunk; k++)
					sb_add(&b, "0123456789" + k % 10, 1);
				sb_str(&b, "\"");
			}
			sb_str(&b, "]}}");
		}
		ct_event *ev = NULL;
		ct_error err;
		int rc = ct_event_parse(b.p, b.n, &lim, &ev, &err);
		ct_event_free(ev);
		const char *got = rc == CT_EPARSE ? "EPARSE" : rc == CT_ESCHEMA ? "ESCHEMA" : rc == CT_ELIMIT ? "ELIMIT" : "OK";
		if (strcmp(got, BIG_CAT[cat].code)) {
			snprintf(a->error, sizeof(a->error), "big %s: parser says %s (%s)", doc, got, rc ? err.message : "");
			a->errors++;
			goto out;
		}
		snprintf(key, sizeof(key), "big/%s", doc);
		if (raw_send(rk, o->topic, RD_KAFKA_PARTITION_UA, key, b.p, b.n)) {
			snprintf(a->error, sizeof(a->error), "big produce failed");
			a->errors++;
			goto out;
		}
		log_sent(a->sent, BIG_CAT[cat].name, BIG_CAT[cat].code, key, b.p, b.n, BIG_CAT[cat].form);
		a->count[cat]++;
		side_pace(o, a->app_done, t0, i + 1, o->big);
	}
	if (rd_kafka_flush(rk, 600000)) {
		snprintf(a->error, sizeof(a->error), "big flush timed out");
		a->errors++;
	}
out:
	ct_test_ident_set(0, 0);
	if (rk)
		rd_kafka_destroy(rk);
	free(b.p);
	return NULL;
}

/* ---- produce ---- */

static atomic_ulong delivery_failed;

static void on_delivery(const ct_delivery *d, void *opaque)
{
	(void)opaque;
	if (d->code == CT_OK)
		seen_delivery(d);
	if (d->code != CT_OK) {
		atomic_fetch_add(&delivery_failed, 1);
		fprintf(stderr, "ct_loadgen: delivery failed: %s %s/%s: %s\n", d->event_id, d->collection,
			d->document_id, d->message);
	}
}

/* ---- admin: topics and a group's lag (the topic-recreated scenario) ---- */

static rd_kafka_t *admin_new(const char *bootstrap)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* asking for a deleted topic's metadata must not create it again */
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, sizeof(errstr))) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "ct_loadgen admin: %s\n", errstr);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk)
		fprintf(stderr, "ct_loadgen admin: %s\n", errstr);
	return rk;
}

/* Partitions of `topic` (0: it does not exist), -1 when the broker did not answer. */
static int topic_partitions(rd_kafka_t *rk, const char *topic)
{
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
	int n = -1;
	if (!e && md->topic_cnt == 1)
		n = md->topics[0].err ? 0 : md->topics[0].partition_cnt;
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return n;
}

/*
 * Creates `topic` (max_bytes > 0: its max.message.bytes), retried for up to
 * 60 s while a deleted one of the same name is still being removed; an
 * existing topic is fine when exist_ok.
 */
static int topic_create(const char *bootstrap, const char *topic, int partitions, long max_bytes, bool exist_ok)
{
	char errstr[512], v[32];
	int64_t end = mono_us() + 60 * 1000000LL;
	rd_kafka_t *rk = admin_new(bootstrap);
	int rc = 1;
	while (rk) {
		rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
		if (!nt)
			break;
		snprintf(v, sizeof(v), "%ld", max_bytes);
		if (max_bytes > 0)
			rd_kafka_NewTopic_set_config(nt, "max.message.bytes", v);
		rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
		rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
		rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
		const char *why = "no answer";
		if (ev) {
			size_t n;
			const rd_kafka_topic_result_t **tr =
				rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
			e = n == 1 ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);
			why = n == 1 ? rd_kafka_topic_result_error_string(tr[0]) : rd_kafka_event_error_string(ev);
			if (e)
				fprintf(stderr, "ct_loadgen admin: create %s: %s\n", topic, why ? why : rd_kafka_err2str(e));
			rd_kafka_event_destroy(ev);
		}
		rd_kafka_NewTopic_destroy(nt);
		rd_kafka_queue_destroy(q);
		if (!e || (exist_ok && e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)) {
			rc = 0;
			break;
		}
		if (mono_us() > end)
			break;
		usleep(500000);
	}
	/* created: wait until the metadata shows its partitions */
	for (int i = 0; !rc && i < 100 && topic_partitions(rk, topic) < 1; i++)
		usleep(100000);
	if (rk)
		rd_kafka_destroy(rk);
	return rc;
}

/* Deletes `topic` and waits until the metadata no longer shows it. */
static int topic_delete(const char *bootstrap, const char *topic)
{
	rd_kafka_t *rk = admin_new(bootstrap);
	int rc = 1;
	if (!rk)
		return 1;
	rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	if (ev) {
		size_t n;
		const rd_kafka_topic_result_t **tr =
			rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
		rd_kafka_resp_err_t e = n == 1 ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);
		if (e)
			fprintf(stderr, "ct_loadgen admin: delete %s: %s\n", topic, rd_kafka_err2str(e));
		rc = e ? 1 : 0;
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_DeleteTopic_destroy(dt);
	rd_kafka_queue_destroy(q);
	for (int i = 0; !rc && i < 300 && topic_partitions(rk, topic) != 0; i++)
		usleep(100000);
	rd_kafka_destroy(rk);
	return rc;
}

/* Prints the lag of `group` on `topic` (sum over partitions of high watermark - committed). */
static int topic_lag(const char *bootstrap, const char *topic, const char *group)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *c = NULL;
	rd_kafka_topic_partition_list_t *l = NULL;
	int rc = 1;
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
	    !(c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
		if (!c)
			rd_kafka_conf_destroy(conf);
		fprintf(stderr, "ct_loadgen lag: %s\n", errstr);
		return 1;
	}
	int np = topic_partitions(c, topic);
	if (np < 1) {
		fprintf(stderr, "ct_loadgen lag: topic %s: %s\n", topic, np ? "no answer" : "does not exist");
		goto out;
	}
	l = rd_kafka_topic_partition_list_new(np);
	for (int i = 0; i < np; i++)
		rd_kafka_topic_partition_list_add(l, topic, i);
	if (rd_kafka_committed(c, l, 10000)) {
		fprintf(stderr, "ct_loadgen lag: committed offsets unknown\n");
		goto out;
	}
	long long lag = 0, high_sum = 0;
	for (int i = 0; i < l->cnt; i++) {
		int64_t lo = 0, hi = 0;
		if (rd_kafka_query_watermark_offsets(c, topic, l->elems[i].partition, &lo, &hi, 10000)) {
			fprintf(stderr, "ct_loadgen lag: watermarks unknown\n");
			goto out;
		}
		int64_t at = l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
		lag += hi > at ? hi - at : 0;
		high_sum += hi;
	}
	printf("{\"partitions\":%d,\"lag\":%lld,\"high\":%lld}\n", np, lag, high_sum);
	rc = 0;
out:
	if (l)
		rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(c);
	return rc;
}

static int cmd_admin(const opts *o)
{
	if (!o->action)
		return 2;
	if (!strcmp(o->action, "delete"))
		return topic_delete(o->bootstrap, o->topic);
	if (!strcmp(o->action, "create"))
		return topic_create(o->bootstrap, o->topic, o->partitions > 0 ? (int)o->partitions : 1, o->topic_max_bytes,
				    false);
	if (!strcmp(o->action, "lag") && o->group)
		return topic_lag(o->bootstrap, o->topic, o->group);
	if (!strcmp(o->action, "partitions")) {
		rd_kafka_t *rk = admin_new(o->bootstrap);
		int n = rk ? topic_partitions(rk, o->topic) : -1;
		if (rk)
			rd_kafka_destroy(rk);
		printf("%d\n", n);
		return n < 0;
	}
	return 2;
}

static int cmd_produce(const opts *o)
{
	ct_producer_config *conf = ct_producer_config_new();
	ct_producer *p = NULL;
	thread_arg *args = calloc((size_t)o->threads, sizeof(*args));
	pthread_t *tids = calloc((size_t)o->threads, sizeof(*tids));
	pthread_t ptid, rtid, btid;
	poison_arg pa = {0};
	side_arg ra = {0}, ba = {0};
	atomic_int app_done = 0;
	bool poison_started = false, reuse_started = false, big_started = false;
	FILE *sent = NULL;
	ct_error err;
	char qmax[32];
	int rc = 1;
	long started = 0;
	int64_t t0 = mono_us();

	if (!conf || !args || !tids) {
		fprintf(stderr, "ct_loadgen: out of memory\n");
		goto out;
	}
	snprintf(qmax, sizeof(qmax), "%ld", o->queue_max);
	if (ct_producer_config_set(conf, "source", "ct-loadgen", &err) ||
	    ct_producer_config_set(conf, "topic", o->topic, &err) ||
	    ct_producer_config_set(conf, "kafka.bootstrap.servers", o->bootstrap, &err) ||
	    (o->queue_max > 0 && ct_producer_config_set(conf, "kafka.queue.buffering.max.messages", qmax, &err)) ||
	    (o->spool && ct_producer_config_set(conf, "spool.path", o->spool, &err))) {
		fprintf(stderr, "ct_loadgen: config: %s\n", err.message);
		goto out;
	}
	ct_producer_config_set_delivery_cb(conf, on_delivery, NULL);
	/* a topic that takes messages over the broker's default size (--big) */
	if (o->topic_max_bytes > 0 && topic_create(o->bootstrap, o->topic, o->partitions > 0 ? (int)o->partitions : 4,
						   o->topic_max_bytes, true)) {
		fprintf(stderr, "ct_loadgen: cannot create %s\n", o->topic);
		goto out;
	}
	if ((o->reuse > 0 || o->big > 0) && !(sent = fopen(o->sent_log ? o->sent_log : "/dev/null", "w"))) {
		perror("ct_loadgen: --sent-log");
		goto out;
	}
	if (o->reuse > 0) {
		seen_ndocs = o->threads * DOCS_PER_THREAD;
		if (!(seen_docs = calloc((size_t)seen_ndocs, sizeof(*seen_docs)))) {
			fprintf(stderr, "ct_loadgen: out of memory\n");
			goto out;
		}
	}
	if (ct_producer_new(conf, &p, &err)) {
		fprintf(stderr, "ct_loadgen: producer: %s\n", err.message);
		goto out;
	}
	if (o->poison > 0) {
		pa.o = o;
		pa.app_done = &app_done;
		if (!(pa.expect = fopen(o->expect_docs ? o->expect_docs : "/dev/null", "w"))) {
			perror("ct_loadgen: --expect-docs");
			goto out;
		}
		if (pthread_create(&ptid, NULL, poison_thread, &pa)) {
			fprintf(stderr, "ct_loadgen: pthread_create failed\n");
			goto out;
		}
		poison_started = true;
	}
	if (o->reuse > 0) {
		ra = (side_arg){.o = o, .app_done = &app_done, .sent = sent};
		if (pthread_create(&rtid, NULL, reuse_thread, &ra)) {
			fprintf(stderr, "ct_loadgen: pthread_create failed\n");
			goto out;
		}
		reuse_started = true;
	}
	if (o->big > 0) {
		ba = (side_arg){.o = o, .app_done = &app_done, .sent = sent};
		if (pthread_create(&btid, NULL, big_thread, &ba)) {
			fprintf(stderr, "ct_loadgen: pthread_create failed\n");
			goto out;
		}
		big_started = true;
	}
	for (long t = 0; t < o->threads; t++) {
		args[t].o = o;
		args[t].p = p;
		args[t].index = (int)t;
		args[t].events = o->events / o->threads + (t < o->events % o->threads ? 1 : 0);
		if (pthread_create(&tids[t], NULL, app_thread, &args[t])) {
			fprintf(stderr, "ct_loadgen: pthread_create failed\n");
			goto out;
		}
		started++;
	}
	rc = 0;
out:
	for (long t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	atomic_store(&app_done, 1);
	if (poison_started)
		pthread_join(ptid, NULL);
	if (reuse_started)
		pthread_join(rtid, NULL);
	if (big_started)
		pthread_join(btid, NULL);
	if (pa.expect)
		fclose(pa.expect);
	if (sent && fclose(sent)) {
		perror("ct_loadgen: --sent-log");
		ra.errors++;
	}
	int64_t t_emit = mono_us();
	int flush_rc = p ? ct_producer_flush(p, 900000, &err) : CT_EINVAL;
	ct_producer_stats st = {0};
	if (p)
		ct_producer_stats_get(p, &st);
	long emitted = 0, records = 0, markers = 0, errors = pa.errors + ra.errors + ba.errors;
	if (atomic_load(&raw_failed))
		errors++;
	for (long t = 0; t < started; t++) {
		emitted += args[t].emitted;
		records += args[t].records;
		markers += args[t].markers;
		errors += args[t].errors;
		if (args[t].errors)
			fprintf(stderr, "ct_loadgen: thread %ld: %s\n", t, args[t].error);
	}
	if (pa.errors)
		fprintf(stderr, "ct_loadgen: poison: %s\n", pa.error);
	if (ra.errors)
		fprintf(stderr, "ct_loadgen: reuse: %s\n", ra.error);
	if (ba.errors)
		fprintf(stderr, "ct_loadgen: big: %s\n", ba.error);
	printf("{\"events\":%ld,\"records_expected\":%ld,\"context_markers\":%ld,\"threads\":%ld,"
	       "\"emitted\":%llu,\"delivered\":%llu,\"failed\":%llu,\"rejected\":%llu,\"spooled\":%llu,"
	       "\"spool_replayed\":%llu,\"queue_full\":%llu,\"in_flight\":%llu,\"emit_s\":%.2f,\"total_s\":%.2f,"
	       "\"poison\":%ld,\"poison_valid\":%ld",
	       emitted, records + pa.valid_records + ra.valid_records, markers, o->threads, (unsigned long long)st.emitted,
	       (unsigned long long)st.delivered, (unsigned long long)st.failed, (unsigned long long)st.rejected,
	       (unsigned long long)st.spooled, (unsigned long long)st.spool_replayed,
	       (unsigned long long)st.queue_full, (unsigned long long)st.in_flight,
	       (double)(t_emit - t0) / 1e6, (double)(mono_us() - t0) / 1e6, o->poison, pa.valid_records);
	printf(",\"poison_by_category\":{");
	for (int c = 0; c < P_NCAT; c++)
		printf("%s\"%s\":%ld", c ? "," : "", PCAT[c].name, pa.sent[c]);
	printf("},\"reuse\":%ld,\"reuse_valid\":%ld,\"reuse_by_category\":{", o->reuse, ra.valid_records);
	for (int c = 0; c < 6; c++)
		printf("%s\"%s\":%ld", c ? "," : "", REUSE_CAT[c], ra.count[c]);
	printf("},\"big\":%ld,\"big_by_category\":{", o->big);
	for (int c = 0; c < BIG_NCAT; c++)
		printf("%s\"%s\":%ld", c ? "," : "", BIG_CAT[c].name, ba.count[c]);
	printf("},\"part\":%d}\n", o->part);
	fflush(stdout);
	long want_events = o->events;
	if (o->part) { /* this part's share */
		want_events = 0;
		for (long t = 0; t < started; t++)
			want_events += args[t].emitted;
	}
	if (rc == 0 && (errors || flush_rc || st.failed || st.rejected || atomic_load(&delivery_failed) ||
			st.delivered != st.emitted || emitted != want_events || (o->part && emitted == 0))) {
		fprintf(stderr, "ct_loadgen: FAILED: errors=%ld flush=%d delivered=%llu of %llu emitted\n", errors,
			flush_rc, (unsigned long long)st.delivered, (unsigned long long)st.emitted);
		rc = 1;
	}
	if (p && ct_producer_destroy(p, 10000) > 0)
		rc = 1;
	ct_producer_config_destroy(conf);
	free(args);
	free(tids);
	free(seen_docs);
	seen_docs = NULL;
	return rc;
}

/* ---- dlq ---- */

/* A hand-made message the DLQ must hold (a line of --sent-log, read with --expect). */
typedef struct expect_ent {
	char category[32], code[16], form[8], sha[65], key[128], reason[160];
	long size, whole, stub, wrong_code, wrong_form;
} expect_ent;

typedef struct expect_cat {
	char name[32], code[16], form[8], reason[160];
	long sent, in_dlq, whole, stub, wrong_code, wrong_form;
} expect_cat;

static expect_ent *expect_load(const char *path, long *n)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	expect_ent *v = NULL;
	long cnt = 0, room = 0;
	*n = -1;
	if (!f) {
		perror("ct_loadgen dlq: --expect");
		return NULL;
	}
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		if (!j) {
			fprintf(stderr, "ct_loadgen dlq: bad line in %s\n", path);
			cnt = -1;
			break;
		}
		if (cnt == room) {
			room = room ? room * 2 : 64;
			expect_ent *nv = realloc(v, (size_t)room * sizeof(*v));
			if (!nv)
				abort();
			v = nv;
		}
		expect_ent *e = &v[cnt++];
		memset(e, 0, sizeof(*e));
		snprintf(e->category, sizeof(e->category), "%s", json_string_value(json_object_get(j, "category")));
		snprintf(e->code, sizeof(e->code), "%s", json_string_value(json_object_get(j, "code")));
		snprintf(e->form, sizeof(e->form), "%s", json_string_value(json_object_get(j, "form")));
		snprintf(e->sha, sizeof(e->sha), "%s", json_string_value(json_object_get(j, "sha256")));
		snprintf(e->key, sizeof(e->key), "%s", json_string_value(json_object_get(j, "key")));
		e->size = (long)json_integer_value(json_object_get(j, "size"));
		json_decref(j);
	}
	free(line);
	fclose(f);
	if (cnt < 0) {
		free(v);
		return NULL;
	}
	*n = cnt;
	return v;
}

/*
 * Message m of the DLQ against the expected ones: a whole dead letter by the
 * SHA-256 of its value, a stub (ct-dlq-stub: 1) by the sha256 and size it
 * names. Returns the entry, or NULL when it is none of them.
 */
static expect_ent *expect_match(expect_ent *v, long n, const rd_kafka_message_t *m, bool *is_stub)
{
	rd_kafka_headers_t *h = NULL;
	const void *hv = NULL;
	size_t hl = 0;
	char sha[65];
	long size = (long)m->len;
	*is_stub = !rd_kafka_message_headers(m, &h) && !rd_kafka_header_get_last(h, "ct-dlq-stub", &hv, &hl) &&
		   hl == 1 && *(const char *)hv == '1';
	if (*is_stub) {
		json_t *j = json_loadb(m->payload ? m->payload : "", m->len, 0, NULL);
		const char *x = json_string_value(json_object_get(j, "sha256"));
		snprintf(sha, sizeof(sha), "%s", x ? x : "");
		size = (long)json_integer_value(json_object_get(j, "size"));
		json_decref(j);
	} else {
		uint8_t d[32];
		ct_sha256(m->payload ? m->payload : "", m->len, d);
		for (int i = 0; i < 32; i++)
			snprintf(sha + 2 * i, 3, "%02x", d[i]);
	}
	for (long i = 0; i < n; i++)
		if (!strcmp(v[i].sha, sha) && v[i].size == size)
			return &v[i];
	return NULL;
}

static int cmd_dlq(const opts *o)
{
	char errstr[512], group[64];
	rd_kafka_t *c = NULL;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *parts = NULL;
	const rd_kafka_metadata_t *md = NULL;
	long expected[P_NCAT] = {0}, got[P_NCAT] = {0}, wrong_code[P_NCAT] = {0}, no_reason = 0, unexpected = 0;
	long total = 0, distinct = 0, bad_total = 0, missing = 0, dup = 0;
	char reason_example[P_NCAT][160];
	unsigned char *seen = NULL;
	int rc = 1;
	expect_ent *ex = NULL;
	long nex = 0;
	if (o->expect && !(ex = expect_load(o->expect, &nex)) && nex < 0)
		return 1;

	memset(reason_example, 0, sizeof(reason_example));
	/* what the generator sent: replay its choices */
	uint64_t s = seed_of(o->seed, 0xffe);
	int *cat_of = calloc((size_t)o->poison + 1, sizeof(int));
	seen = calloc((size_t)o->poison + 1, 1);
	sbuf b = {0};
	if (!cat_of || !seen)
		goto out;
	ct_test_ident_set(0xffe, CLOCK_START_MS + INT64_C(900000000000));
	for (long i = 0; i < o->poison; i++) {
		char doc_id[128], *doc;
		int cat = pick_category(&s);
		make_poison(cat, i, &s, &b, doc_id, sizeof(doc_id), &doc);
		free(doc);
		cat_of[i] = cat;
		if (PCAT[cat].code) {
			expected[cat]++;
			bad_total++;
		}
	}
	ct_test_ident_set(0, 0);

	snprintf(group, sizeof(group), "ct-loadgen-dlq-%ld", (long)getpid());
	if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "fetch.message.max.bytes", "2097152", errstr, sizeof(errstr)) ||
	    !(c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
		fprintf(stderr, "ct_loadgen dlq: %s\n", errstr);
		goto out;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, o->topic, NULL);
	rd_kafka_resp_err_t me = rd_kafka_metadata(c, 0, rkt, &md, 10000);
	rd_kafka_topic_destroy(rkt);
	int64_t *high = NULL;
	int np = 0;
	if (!me && md->topic_cnt == 1 && !md->topics[0].err) {
		np = md->topics[0].partition_cnt;
		parts = rd_kafka_topic_partition_list_new(np);
		high = calloc((size_t)np + 1, sizeof(*high));
		for (int i = 0; i < np; i++) {
			int32_t id = md->topics[0].partitions[i].id;
			int64_t lo = 0, hi = 0;
			if (rd_kafka_query_watermark_offsets(c, o->topic, id, &lo, &hi, 10000)) {
				fprintf(stderr, "ct_loadgen dlq: watermarks of partition %d unknown\n", id);
				goto out;
			}
			high[i] = hi;
			if (hi > lo)
				rd_kafka_topic_partition_list_add(parts, o->topic, id)->offset = lo;
		}
	} /* else: no DLQ topic at all, i.e. nothing was dead-lettered */
	long want = 0;
	for (int i = 0; i < np; i++)
		want += high[i];
	if (parts && parts->cnt)
		rd_kafka_assign(c, parts);
	int64_t deadline = mono_us() + 120 * 1000000LL;
	/* read each partition to its high watermark (its end when we started) */
	long remaining = parts ? parts->cnt : 0;
	while (remaining > 0 && mono_us() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
		if (!m)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		int pi = 0;
		for (; pi < np && md->topics[0].partitions[pi].id != m->partition; pi++)
			;
		if (pi < np && m->offset + 1 >= high[pi])
			remaining--;
		total++;
		char key[256];
		snprintf(key, sizeof(key), "%.*s", (int)m->key_len, m->key ? (const char *)m->key : "");
		bool is_stub = false;
		expect_ent *xe = ex ? expect_match(ex, nex, m, &is_stub) : NULL;
		if (xe) {
			rd_kafka_headers_t *h;
			const void *hv = NULL;
			size_t hl = 0;
			char code[32] = "", reason[160] = "";
			if (!rd_kafka_message_headers(m, &h)) {
				if (!rd_kafka_header_get_last(h, "ct-dlq-code", &hv, &hl))
					snprintf(code, sizeof(code), "%.*s", (int)hl, (const char *)hv);
				if (!rd_kafka_header_get_last(h, "ct-dlq-reason", &hv, &hl))
					snprintf(reason, sizeof(reason), "%.*s", (int)hl, (const char *)hv);
			}
			if (strcmp(code, xe->code))
				xe->wrong_code++;
			if (strcmp(xe->form, is_stub ? "stub" : "whole")) {
				xe->wrong_form++;
				fprintf(stderr, "ct_loadgen dlq: %s (%ld bytes) came %s, expected %s\n", xe->key, xe->size,
					is_stub ? "as a stub" : "whole", xe->form);
			}
			if (!*reason)
				no_reason++;
			if (is_stub)
				xe->stub++;
			else
				xe->whole++;
			snprintf(xe->reason, sizeof(xe->reason), "%s", reason);
			rd_kafka_message_destroy(m);
			continue;
		}
		long idx = -1;
		const char *dash = strrchr(key, '-');
		if (!strncmp(key, "poison/", 7) && dash)
			idx = strtol(dash + 1, NULL, 10);
		if (!m->key_len) { /* no_key: its index is in after.poison ("no_key-<i>") */
			json_t *j = json_loadb(m->payload ? m->payload : "", m->len, 0, NULL);
			const char *tag = json_string_value(json_object_get(json_object_get(j, "after"), "poison"));
			if (tag && !strncmp(tag, "no_key-", 7))
				idx = strtol(tag + 7, NULL, 10);
			json_decref(j);
		}
		if (idx < 0 || idx >= o->poison || !PCAT[cat_of[idx]].code) {
			unexpected++;
			fprintf(stderr, "ct_loadgen dlq: unexpected message key=%s offset=%lld\n", key, (long long)m->offset);
		} else {
			int cat = cat_of[idx];
			rd_kafka_headers_t *h;
			const void *hv = NULL;
			size_t hl = 0;
			char code[32] = "", reason[160] = "";
			if (!rd_kafka_message_headers(m, &h)) {
				if (!rd_kafka_header_get_last(h, "ct-dlq-code", &hv, &hl))
					snprintf(code, sizeof(code), "%.*s", (int)hl, (const char *)hv);
				if (!rd_kafka_header_get_last(h, "ct-dlq-reason", &hv, &hl))
					snprintf(reason, sizeof(reason), "%.*s", (int)hl, (const char *)hv);
			}
			if (strcmp(code, code_name(PCAT[cat].code)))
				wrong_code[cat]++;
			if (!*reason)
				no_reason++;
			else if (!reason_example[cat][0])
				snprintf(reason_example[cat], sizeof(reason_example[cat]), "%s", reason);
			if (seen[idx]++)
				dup++;
			else {
				got[cat]++;
				distinct++;
			}
		}
		rd_kafka_message_destroy(m);
	}
	if (remaining > 0)
		fprintf(stderr, "ct_loadgen dlq: timed out reading %s (%ld of %ld)\n", o->topic, total, want);
	missing = bad_total - distinct;
	long bad_codes = 0, ex_missing = 0, ex_dup = 0, ex_in = 0, ex_forms = 0;
	expect_cat cats[16];
	int ncats = 0;
	memset(cats, 0, sizeof(cats));
	for (long i = 0; i < nex; i++) {
		expect_ent *e = &ex[i];
		int ci = 0;
		while (ci < ncats && strcmp(cats[ci].name, e->category))
			ci++;
		if (ci == ncats && ncats < 16) {
			ncats++;
			snprintf(cats[ci].name, sizeof(cats[ci].name), "%s", e->category);
			snprintf(cats[ci].code, sizeof(cats[ci].code), "%s", e->code);
			snprintf(cats[ci].form, sizeof(cats[ci].form), "%s", e->form);
		}
		if (ci == ncats)
			continue;
		long got_n = e->whole + e->stub;
		expect_cat *ct = &cats[ci];
		ct->sent++;
		ct->in_dlq += got_n ? 1 : 0;
		ct->whole += e->whole;
		ct->stub += e->stub;
		ct->wrong_code += e->wrong_code;
		ct->wrong_form += e->wrong_form;
		if (!ct->reason[0] && e->reason[0])
			snprintf(ct->reason, sizeof(ct->reason), "%s", e->reason);
		if (!got_n) {
			ex_missing++;
			fprintf(stderr, "ct_loadgen dlq: not in the DLQ: %s %s (%ld bytes)\n", e->category, e->key, e->size);
		}
		ex_dup += got_n > 1 ? got_n - 1 : 0;
		ex_in += got_n ? 1 : 0;
		ex_forms += e->wrong_form;
		bad_codes += e->wrong_code;
	}
	missing += ex_missing;
	dup += ex_dup;
	distinct += ex_in;
	bad_total += nex > 0 ? nex : 0;
	printf("{\"dlq_messages\":%ld,\"bad_sent\":%ld,\"bad_in_dlq\":%ld,\"missing\":%ld,\"duplicates\":%ld,"
	       "\"unexpected\":%ld,\"without_reason\":%ld,\"by_category\":{",
	       total, bad_total, distinct, missing, dup, unexpected, no_reason);
	int first = 1;
	for (int cat = 0; cat < P_NCAT; cat++) {
		if (!PCAT[cat].code)
			continue;
		json_t *r = json_string(reason_example[cat]);
		char *rj = json_dumps(r, JSON_ENCODE_ANY);
		printf("%s\"%s\":{\"sent\":%ld,\"in_dlq\":%ld,\"code\":\"%s\",\"wrong_code\":%ld,\"reason\":%s}",
		       first ? "" : ",", PCAT[cat].name, expected[cat], got[cat], code_name(PCAT[cat].code),
		       wrong_code[cat], rj ? rj : "null");
		free(rj);
		json_decref(r);
		bad_codes += wrong_code[cat];
		first = 0;
	}
	for (int ci = 0; ci < ncats; ci++) {
		const expect_cat *ct = &cats[ci];
		json_t *r = json_string(ct->reason);
		char *rj = json_dumps(r, JSON_ENCODE_ANY);
		printf("%s\"%s\":{\"sent\":%ld,\"in_dlq\":%ld,\"code\":\"%s\",\"wrong_code\":%ld,\"form\":\"%s\","
		       "\"whole\":%ld,\"stub\":%ld,\"wrong_form\":%ld,\"reason\":%s}",
		       first ? "" : ",", ct->name, ct->sent, ct->in_dlq, ct->code, ct->wrong_code,
		       ct->form, ct->whole, ct->stub, ct->wrong_form, rj ? rj : "null");
		free(rj);
		json_decref(r);
		first = 0;
	}
	printf("},\"expected_sent\":%ld,\"wrong_form\":%ld}\n", nex > 0 ? nex : 0, ex_forms);
	fflush(stdout);
	rc = (remaining > 0 || missing || unexpected || no_reason || bad_codes || ex_forms) ? 1 : 0;
	free(high);
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	if (c) {
		rd_kafka_consumer_close(c);
		rd_kafka_destroy(c);
	}
	free(cat_of);
	free(seen);
	free(b.p);
	free(ex);
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_loadgen produce --bootstrap B --topic T --events N [--threads K] [--seed S]\n"
			"                  [--rate EV_PER_S] [--spool FILE] [--queue-max N] [--poison M]\n"
			"                  [--expect-docs FILE]\n"
			"                  [--split F --part 1|2] [--reuse M --reuse-docs FILE] [--big M\n"
			"                  --topic-max-bytes X] [--sent-log FILE]\n"
			"       ct_loadgen dlq --bootstrap B --topic DLQ_TOPIC [--poison M] [--seed S] [--expect FILE]\n"
			"       ct_loadgen admin --bootstrap B --topic T --action delete|create|partitions|lag\n"
			"                  [--partitions N] [--topic-max-bytes X] [--group G]\n");
}

int main(int argc, char **argv)
{
	opts o = {.threads = 4, .seed = 1};
	static const struct option lo[] = {
		{"bootstrap", required_argument, NULL, 'b'}, {"topic", required_argument, NULL, 't'},
		{"events", required_argument, NULL, 'n'},    {"threads", required_argument, NULL, 'k'},
		{"seed", required_argument, NULL, 's'},      {"rate", required_argument, NULL, 'r'},
		{"spool", required_argument, NULL, 'S'},     {"queue-max", required_argument, NULL, 'q'},
		{"poison", required_argument, NULL, 'p'},    {"expect-docs", required_argument, NULL, 'e'},
		{"split", required_argument, NULL, 'F'},     {"part", required_argument, NULL, 'P'},
		{"reuse", required_argument, NULL, 'R'},     {"big", required_argument, NULL, 'B'},
		{"sent-log", required_argument, NULL, 'L'},  {"reuse-docs", required_argument, NULL, 'D'},
		{"topic-max-bytes", required_argument, NULL, 'M'}, {"partitions", required_argument, NULL, 'N'},
		{"expect", required_argument, NULL, 'x'},    {"group", required_argument, NULL, 'g'},
		{"action", required_argument, NULL, 'a'},
		{NULL, 0, NULL, 0}};
	if (argc < 2) {
		usage();
		return 2;
	}
	const char *cmd = argv[1];
	int ch;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'b': o.bootstrap = optarg; break;
		case 't': o.topic = optarg; break;
		case 'n': o.events = atol(optarg); break;
		case 'k': o.threads = atol(optarg); break;
		case 's': o.seed = strtoull(optarg, NULL, 10); break;
		case 'r': o.rate = atol(optarg); break;
		case 'S': o.spool = optarg; break;
		case 'q': o.queue_max = atol(optarg); break;
		case 'p': o.poison = atol(optarg); break;
		case 'e': o.expect_docs = optarg; break;
		case 'F': o.split = atof(optarg); break;
		case 'P': o.part = atoi(optarg); break;
		case 'R': o.reuse = atol(optarg); break;
		case 'B': o.big = atol(optarg); break;
		case 'L': o.sent_log = optarg; break;
		case 'D': o.reuse_docs = optarg; break;
		case 'M': o.topic_max_bytes = atol(optarg); break;
		case 'N': o.partitions = atol(optarg); break;
		case 'x': o.expect = optarg; break;
		case 'g': o.group = optarg; break;
		case 'a': o.action = optarg; break;
		default: usage(); return 2;
		}
	}
	if (!o.bootstrap || !o.topic || o.threads < 1 || o.threads > 64 || o.events < 0 || o.poison < 0 ||
	    o.reuse < 0 || o.big < 0 || o.part < 0 || o.part > 2 || (o.part && !(o.split > 0 && o.split < 1))) {
		usage();
		return 2;
	}
	if (!strcmp(cmd, "produce"))
		return cmd_produce(&o);
	if (!strcmp(cmd, "dlq"))
		return cmd_dlq(&o);
	if (!strcmp(cmd, "admin"))
		return cmd_admin(&o);
	usage();
	return 2;
}
