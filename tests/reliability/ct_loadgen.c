/*
 * ct_loadgen.c - the reliability suite's load generator (scripts/reliability.sh,
 * docs/reliability.md).
 *
 *   ct_loadgen produce --bootstrap B --topic T --events N [--threads K] [--seed S]
 *                      [--rate EV_PER_S] [--spool FILE] [--queue-max N]
 *                      [--poison M] [--expect-docs FILE]
 *   ct_loadgen dlq --bootstrap B --topic T.dlq [--poison M] [--seed S]
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
 * numbers) that must end in the DLQ, and valid but tricky ones ('$' and '.'
 * keys, keys that collide under usual escaping schemes) that must be
 * persisted exactly; each is checked with ct_event_parse() first (with the
 * suite's consumer limits) so the generator cannot mislabel one. The tricky
 * documents are written to --expect-docs for ct_export to check.
 * Prints one JSON line of figures; exit 1 when an event was rejected,
 * failed or not delivered.
 *
 * dlq: reads the dead-letter topic to its end and checks it holds exactly
 * the bad poison messages, each with the expected ct-dlq-code and a reason;
 * prints one JSON line of figures (per category); exit 1 on any mismatch.
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

/* One change to document d (index di) of this thread. */
static int one_change(thread_arg *a, app_doc *docs, uint64_t *s, long n)
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
	EMIT(&c);
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
	for (long n = 0; n < a->events;) {
		if (per_thread_rate > 0) {
			int64_t due = t0 + (int64_t)((double)n * 1e6 / per_thread_rate);
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
				if (one_change(a, docs, &s, n))
					goto out;
			if (ct_context_exit(a->p, &err) != CT_OK) {
				snprintf(a->error, sizeof(a->error), "context_exit: %s", err.message);
				a->errors++;
				goto out;
			}
			a->markers++;
		} else {
			if (one_change(a, docs, &s, n))
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
       P_HUGE_NUMBER, P_DOLLAR_DOT, P_ESCAPE_COLLIDE, P_WRONG_KEY, P_NCAT };

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
	case P_WRONG_KEY: /* valid, for poison_ok/<doc_id>, but keyed poison/<doc_id>: to the DLQ */
		poison_event(b, eid, ts, doc_id, "insert", "{\"qty\":1}");
		break;
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
		while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(a->o->topic), RD_KAFKA_V_KEY(key, strlen(key)),
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

/* ---- produce ---- */

static atomic_ulong delivery_failed;

static void on_delivery(const ct_delivery *d, void *opaque)
{
	if (d->code != CT_OK) {
		atomic_fetch_add(&delivery_failed, 1);
		fprintf(stderr, "ct_loadgen: delivery failed: %s %s/%s: %s\n", d->event_id, d->collection,
			d->document_id, d->message);
	}
}

static int cmd_produce(const opts *o)
{
	ct_producer_config *conf = ct_producer_config_new();
	ct_producer *p = NULL;
	thread_arg *args = calloc((size_t)o->threads, sizeof(*args));
	pthread_t *tids = calloc((size_t)o->threads, sizeof(*tids));
	pthread_t ptid;
	poison_arg pa = {0};
	atomic_int app_done = 0;
	bool poison_started = false;
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
	if (pa.expect)
		fclose(pa.expect);
	int64_t t_emit = mono_us();
	int flush_rc = p ? ct_producer_flush(p, 900000, &err) : CT_EINVAL;
	ct_producer_stats st = {0};
	if (p)
		ct_producer_stats_get(p, &st);
	long emitted = 0, records = 0, markers = 0, errors = pa.errors;
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
	printf("{\"events\":%ld,\"records_expected\":%ld,\"context_markers\":%ld,\"threads\":%ld,"
	       "\"emitted\":%llu,\"delivered\":%llu,\"failed\":%llu,\"rejected\":%llu,\"spooled\":%llu,"
	       "\"spool_replayed\":%llu,\"queue_full\":%llu,\"in_flight\":%llu,\"emit_s\":%.2f,\"total_s\":%.2f,"
	       "\"poison\":%ld,\"poison_valid\":%ld",
	       emitted, records + pa.valid_records, markers, o->threads, (unsigned long long)st.emitted,
	       (unsigned long long)st.delivered, (unsigned long long)st.failed, (unsigned long long)st.rejected,
	       (unsigned long long)st.spooled, (unsigned long long)st.spool_replayed,
	       (unsigned long long)st.queue_full, (unsigned long long)st.in_flight,
	       (double)(t_emit - t0) / 1e6, (double)(mono_us() - t0) / 1e6, o->poison, pa.valid_records);
	printf(",\"poison_by_category\":{");
	for (int c = 0; c < P_NCAT; c++)
		printf("%s\"%s\":%ld", c ? "," : "", PCAT[c].name, pa.sent[c]);
	printf("}}\n");
	fflush(stdout);
	if (rc == 0 && (errors || flush_rc || st.failed || st.rejected || atomic_load(&delivery_failed) ||
			st.delivered != st.emitted || emitted != o->events)) {
		fprintf(stderr, "ct_loadgen: FAILED: errors=%ld flush=%d delivered=%llu of %llu emitted\n", errors,
			flush_rc, (unsigned long long)st.delivered, (unsigned long long)st.emitted);
		rc = 1;
	}
	if (p && ct_producer_destroy(p, 10000) > 0)
		rc = 1;
	ct_producer_config_destroy(conf);
	free(args);
	free(tids);
	return rc;
}

/* ---- dlq ---- */

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
		long idx = -1;
		const char *dash = strrchr(key, '-');
		if (!strncmp(key, "poison/", 7) && dash)
			idx = strtol(dash + 1, NULL, 10);
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
	long bad_codes = 0;
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
	printf("}}\n");
	fflush(stdout);
	rc = (remaining > 0 || missing || unexpected || no_reason || bad_codes) ? 1 : 0;
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
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_loadgen produce --bootstrap B --topic T --events N [--threads K] [--seed S]\n"
			"                  [--rate EV_PER_S] [--spool FILE] [--queue-max N] [--poison M]\n"
			"                  [--expect-docs FILE]\n"
			"       ct_loadgen dlq --bootstrap B --topic DLQ_TOPIC [--poison M] [--seed S]\n");
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
		default: usage(); return 2;
		}
	}
	if (!o.bootstrap || !o.topic || o.threads < 1 || o.threads > 64 || o.events < 0 || o.poison < 0) {
		usage();
		return 2;
	}
	if (!strcmp(cmd, "produce"))
		return cmd_produce(&o);
	if (!strcmp(cmd, "dlq"))
		return cmd_dlq(&o);
	usage();
	return 2;
}
