/*
 * worker.c - one batch, start to end, on the writer thread (see worker.h).
 * Order inside a batch is the order of the messages, which keeps each
 * document's events in partition order. Nothing here reads MongoDB per
 * event: the states a batch misses come in one $in query before any record
 * is built.
 */
#include "worker.h"

#include "changetrail/canonical.h"
#include "changetrail/event.h"
#include "contexts.h"
#include "ct_internal.h"
#include "log.h"
#include "offsets.h"
#include "record.h"
#include "store_fence.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int ctc_worker_init(ctc_worker *w, const ctc_config *cfg, rd_kafka_t *consumer, rd_kafka_t *dlq,
		    struct ctc_offsets_prover *prover, ctc_anchor *anchor, ctc_metrics *metrics, atomic_int *abort,
		    ct_error *err)
{
	w->prover = prover;
	pthread_mutex_init(&w->pause_mu, NULL);
	pthread_mutex_init(&w->refused_mu, NULL);
	pthread_mutex_init(&w->dlq_mu, NULL);
	w->ready = true;
	w->cfg = cfg;
	w->consumer = consumer;
	w->dlq = dlq;
	w->anchor = anchor;
	w->metrics = metrics;
	w->abort = abort;
	const char *sto = ctc_config_kafka_get(cfg, "session.timeout.ms");
	long long session_ms = sto ? atoll(sto) : 45000;
	w->stall_limit_us = (session_ms / 2 > 1000 ? session_ms / 2 : 1000) * 1000;
	if (!(w->cache = ctc_cache_new((size_t)cfg->cache_max_documents, (size_t)cfg->cache_max_mb << 20)))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	if (cfg->no_write)
		return 0;
	if (!(w->store = ctc_store_open(cfg->mongodb_uri, cfg->mongodb_database, err)) ||
	    !(w->read_store = ctc_store_open(cfg->mongodb_uri, cfg->mongodb_database, err)) ||
	    !(w->state_store = ctc_store_open(cfg->mongodb_uri, cfg->mongodb_database, err)))
		return err && err->code ? err->code : CT_ECONFIG;
	return 0;
}

void ctc_worker_fini(ctc_worker *w)
{
	ctc_store_close(w->store);
	ctc_store_close(w->read_store);
	ctc_store_close(w->state_store);
	w->store = w->read_store = w->state_store = NULL;
	ctc_offsets_free(w->prover);
	w->prover = NULL;
	ctc_cache_free(w->cache);
	w->cache = NULL;
	ctc_contexts_free(&w->ctxs);
	for (unsigned i = 0; i < w->nrederive; i++)
		free(w->rederive[i]);
	w->nrederive = 0;
	ctc_worker_dlq_free(w);
	if (w->ready) {
		pthread_mutex_destroy(&w->pause_mu);
		pthread_mutex_destroy(&w->refused_mu);
		pthread_mutex_destroy(&w->dlq_mu);
		w->ready = false;
	}
}

void ctc_batch_free(ctc_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		rd_kafka_message_destroy(b->msgs[i]);
	free(b->msgs);
	ct_buf_free(&b->history);
	ct_buf_free(&b->states);
	ct_buf_free(&b->expected);
	ctc_contexts_free(&b->ctxs);
	free(b->rec_msg);
	ctc_anchor_heads_free(&b->heads);
	free(b);
}

/* Our own DLQ codes, beside the parser's CT_E* codes. */
#define CTC_DLQ_REUSED (-1000) /* an event id reused with other content (a consumer verdict) */
#define CTC_DLQ_EKEY 10001     /* the message key is not <collection>/<document_id> of its event */

static const char *code_name(int code)
{
	switch (code) {
	case CTC_DLQ_REUSED: return "EREUSED";
	case CT_EPARSE: return "EPARSE";
	case CT_ESCHEMA: return "ESCHEMA";
	case CT_ELIMIT: return "ELIMIT";
	case CT_EINVAL: return "EINVAL";
	case CTC_DLQ_EKEY: return "EKEY";
	default: return "EINTERNAL";
	}
}

/* Pauses (pause = true) or resumes the partitions we own, for MongoDB (or DLQ) outages. */
static void set_paused_why(ctc_worker *w, bool pause, const char *why)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	pthread_mutex_lock(&w->pause_mu);
	if (w->paused == pause) {
		pthread_mutex_unlock(&w->pause_mu);
		return;
	}
	if (rd_kafka_assignment(w->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
		if (pause)
			rd_kafka_pause_partitions(w->consumer, parts);
		else
			rd_kafka_resume_partitions(w->consumer, parts);
		rd_kafka_topic_partition_list_destroy(parts);
	}
	w->paused = pause;
	pthread_mutex_unlock(&w->pause_mu);
	atomic_store(&w->metrics->paused, pause ? 1 : 0);
	ctc_log(pause ? CTC_WARN : CTC_INFO, pause ? "consumption paused" : "consumption resumed",
		"reason=%s", why);
}

static void set_paused(ctc_worker *w, bool pause)
{
	set_paused_why(w, pause, "mongodb");
}

/*
 * Sleeps for the next backoff step (100 ms doubling to 10 s). Returns false
 * when the shutdown deadline passed and retrying must stop.
 */
static bool backoff(ctc_worker *w, int64_t *delay_ms)
{
	int64_t left = *delay_ms;
	while (left > 0) {
		if (atomic_load(w->abort))
			return false;
		int64_t step = left < 50 ? left : 50;
		struct timespec ts = {0, (long)step * 1000000L};
		nanosleep(&ts, NULL);
		left -= step;
	}
	*delay_ms = *delay_ms * 2 > 10000 ? 10000 : *delay_ms * 2;
	return !atomic_load(w->abort);
}

static void store_failed(ctc_worker *w, const char *what, const ct_error *err)
{
	char q[600];
	atomic_fetch_add(&w->metrics->store_errors, 1);
	atomic_store(&w->metrics->store_ok, 0);
	ctc_log(CTC_ERROR, "mongodb failed, will retry", "op=%s error=%s", what,
		ctc_log_q(err->message, q, sizeof(q)));
	set_paused(w, true);
}

static void store_succeeded(ctc_worker *w)
{
	atomic_store(&w->metrics->store_ok, 1);
	set_paused(w, false);
}

/*
 * ---- dead letters ----
 * Every refused message ends in the DLQ, whole or, when it cannot fit there
 * (the producer's message.max.bytes, or the broker's or the topic's
 * max.message.bytes), as a bounded stub: the same headers plus ct-dlq-stub=1
 * and a JSON value naming the reason, the key (escaped, truncated), the size
 * and SHA-256 of the original value and where it came from. A dead letter
 * is never dropped: failures come back through the delivery report
 * (ctc_worker_dlq_report) and go again in flush_dlq() before the batch's
 * offsets may be committed.
 */

/* The message opaque of a dead letter: how it was sent. */
#define DLQ_FIRST ((void *)0)   /* first attempt, maybe batched with others */
#define DLQ_ALONE ((void *)1)   /* again, alone: a size refusal now is its own */
#define DLQ_STUB ((void *)2)    /* the stub of one that did not fit */

/* Whole dead letters below this may only have shared a refused request: they go again alone first. */
#define DLQ_SMALL_BYTES (64 * 1024)
/* Bounds of what a stub repeats of the original. */
#define DLQ_STUB_KEY_MAX 256
#define DLQ_STUB_REASON_MAX 1024

typedef struct ctc_dlq_retry {
	struct ctc_dlq_retry *next;
	bool stub;                 /* send the stub; else the whole message again, alone */
	bool stub_payload;         /* !stub: the message is itself a stub: it goes again as it is */
	char *key;                 /* NULL: no key */
	size_t key_len;
	char *value;               /* !stub: the whole value */
	size_t len;                /* the original value's size */
	uint8_t sha256[32];        /* stub: of the original value */
	rd_kafka_headers_t *hdrs;  /* owned */
	rd_kafka_resp_err_t err;   /* why it failed (logged) */
} ctc_dlq_retry;

/* Refusals that say this message cannot be written as it is: no use retrying it whole. */
static bool size_refusal(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || e == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
	       e == RD_KAFKA_RESP_ERR_INVALID_RECORD || e == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE ||
	       e == RD_KAFKA_RESP_ERR_INVALID_MSG;
}

static void retry_free(ctc_dlq_retry *r)
{
	if (!r)
		return;
	free(r->key);
	free(r->value);
	if (r->hdrs)
		rd_kafka_headers_destroy(r->hdrs);
	free(r);
}

/* JSON string body of `s` (escaped, at most `max` input bytes; bytes >= 0x80 as \u00XX). */
static void json_escape(ct_buf *b, const char *s, size_t n, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			ct_buf_put(b, e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			ct_buf_put(b, e, 6);
		} else {
			ct_buf_put(b, (const char *)&c, 1);
		}
	}
}

static void json_member(ct_buf *b, const char *name, const char *s, size_t n, size_t max, bool first)
{
	if (!first)
		ct_buf_put(b, ",", 1);
	ct_buf_put(b, "\"", 1);
	ct_buf_put(b, name, strlen(name));
	ct_buf_put(b, "\":\"", 3);
	json_escape(b, s, n, max);
	ct_buf_put(b, "\"", 1);
}

/* The value of header `name` (NUL-terminated into out), or "" when absent. */
static const char *header_str(rd_kafka_headers_t *h, const char *name, char *out, size_t size)
{
	const void *v;
	size_t n;
	out[0] = '\0';
	if (h && rd_kafka_header_get_last(h, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
		n = n < size - 1 ? n : size - 1;
		memcpy(out, v, n);
		out[n] = '\0';
	}
	return out;
}

/*
 * Produces the stub of a dead letter that does not fit (its headers `h` are
 * the producer's on success, still the caller's on failure). The value is bounded: a few hundred bytes plus the
 * truncated key and reason.
 */
static rd_kafka_resp_err_t send_stub(ctc_worker *w, rd_kafka_headers_t *h, const char *key, size_t key_len,
				     size_t size, const uint8_t sha[32], rd_kafka_resp_err_t why)
{
	char reason[DLQ_STUB_REASON_MAX + 1], code[32], topic[256], part[16], off[24], num[64], hexd[65], q[600];
	ct_buf b = {0};
	rd_kafka_resp_err_t e;
	header_str(h, "ct-dlq-reason", reason, sizeof(reason));
	header_str(h, "ct-dlq-code", code, sizeof(code));
	header_str(h, "ct-original-topic", topic, sizeof(topic));
	header_str(h, "ct-original-partition", part, sizeof(part));
	header_str(h, "ct-original-offset", off, sizeof(off));
	for (int i = 0; i < 32; i++)
		snprintf(hexd + 2 * i, 3, "%02x", sha[i]);
	ct_buf_put(&b, "{", 1);
	json_member(&b, "reason", reason, strlen(reason), DLQ_STUB_REASON_MAX, true);
	json_member(&b, "code", code, strlen(code), sizeof(code), false);
	if (key) {
		json_member(&b, "key", key, key_len, DLQ_STUB_KEY_MAX, false);
		snprintf(num, sizeof(num), ",\"key_bytes\":%zu", key_len);
		ct_buf_put(&b, num, strlen(num));
	} else {
		ct_buf_put(&b, ",\"key\":null", 11);
	}
	snprintf(num, sizeof(num), ",\"size\":%zu", size);
	ct_buf_put(&b, num, strlen(num));
	json_member(&b, "sha256", hexd, 64, 64, false);
	json_member(&b, "topic", topic, strlen(topic), sizeof(topic), false);
	snprintf(num, sizeof(num), ",\"partition\":%lld,\"offset\":%lld}", atoll(part), atoll(off));
	if (ct_buf_put(&b, num, strlen(num))) {
		ct_buf_free(&b);
		return RD_KAFKA_RESP_ERR__FAIL;
	}
	rd_kafka_header_remove(h, "ct-dlq-stub");
	rd_kafka_header_add(h, "ct-dlq-stub", -1, "1", 1);
	for (;;) {
		e = rd_kafka_producev(w->dlq, RD_KAFKA_V_TOPIC(w->cfg->dlq_topic),
				      RD_KAFKA_V_KEY(key, key ? (key_len < DLQ_STUB_KEY_MAX ? key_len : DLQ_STUB_KEY_MAX) : 0),
				      RD_KAFKA_V_VALUE(b.data, b.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(DLQ_STUB), RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || atomic_load(w->abort))
			break;
		rd_kafka_poll(w->dlq, 100);
	}
	if (!e)
		ctc_log(CTC_WARN, "dead letter too large, stub sent instead", "topic=%s partition=%s offset=%s size=%zu why=%s",
		ctc_log_q(topic, q, sizeof(q)), part, off, size, rd_kafka_err2name(why));
	ct_buf_free(&b);
	return e;
}

/* Queues a dead letter to go again; NULL-safe on allocation failure (counted, the batch then fails). */
static void retry_push(ctc_worker *w, ctc_dlq_retry *r)
{
	if (!r) {
		atomic_fetch_add(&w->dlq_failed, 1);
		return;
	}
	pthread_mutex_lock(&w->dlq_mu);
	r->next = w->dlq_retry;
	w->dlq_retry = r;
	pthread_mutex_unlock(&w->dlq_mu);
}

/* A retry entry for the dead letter (key, value, headers copied); whole = keep the value. */
static ctc_dlq_retry *retry_new(const void *key, size_t key_len, const void *value, size_t len,
				const rd_kafka_headers_t *h, bool stub, rd_kafka_resp_err_t err)
{
	ctc_dlq_retry *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->stub = stub;
	r->err = err;
	r->len = len;
	r->key_len = key_len;
	if (key && !(r->key = malloc(key_len ? key_len : 1)))
		goto fail;
	if (key)
		memcpy(r->key, key, key_len);
	if (stub) {
		ct_sha256(value ? value : "", value ? len : 0, r->sha256);
	} else {
		if (!(r->value = malloc(len ? len : 1)))
			goto fail;
		if (len)
			memcpy(r->value, value, len);
	}
	if (!(r->hdrs = h ? rd_kafka_headers_copy(h) : rd_kafka_headers_new(6)))
		goto fail;
	return r;
fail:
	retry_free(r);
	return NULL;
}

void ctc_worker_dlq_report(ctc_worker *w, const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *h = NULL;
	if (!m->err)
		return;
	rd_kafka_message_headers(m, &h);
	/* a size refusal of one sent alone is its own: stub; sent with others
	 * it may only have shared a refused request: again, alone, first. A
	 * stub that failed carries all we know: it goes again as it is. */
	bool stub = size_refusal(m->err) && m->_private == DLQ_ALONE;
	ctc_log(CTC_WARN, "DLQ delivery failed, will send again", "error=%s as=%s", rd_kafka_err2name(m->err),
		stub || m->_private == DLQ_STUB ? "stub" : "whole");
	ctc_dlq_retry *r = retry_new(m->key, m->key_len, m->payload, m->len, h, stub, m->err);
	if (r)
		r->stub_payload = m->_private == DLQ_STUB;
	retry_push(w, r);
}

void ctc_worker_dlq_free(ctc_worker *w)
{
	ctc_dlq_retry *r = w->dlq_retry;
	while (r) {
		ctc_dlq_retry *next = r->next;
		retry_free(r);
		r = next;
	}
	w->dlq_retry = NULL;
}

/* Sends message m of a batch to the DLQ (asynchronously; flushed before commit). */
static bool refused(ctc_worker *w, const rd_kafka_message_t *m, const char *sha)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	bool found = false;
	pthread_mutex_lock(&w->refused_mu);
	for (unsigned i = 0; i < w->nrefused && !found; i++)
		found = w->refused[i].partition == m->partition && w->refused[i].offset == m->offset &&
			!strcmp(w->refused[i].sha256, sha) && !strcmp(w->refused[i].topic, topic);
	pthread_mutex_unlock(&w->refused_mu);
	return found;
}

static void refuse(ctc_worker *w, const rd_kafka_message_t *m, const char *sha)
{
	ctc_refused r = {.partition = m->partition, .offset = m->offset};
	snprintf(r.topic, sizeof(r.topic), "%s", rd_kafka_topic_name(m->rkt));
	snprintf(r.sha256, sizeof(r.sha256), "%s", sha);
	pthread_mutex_lock(&w->refused_mu);
	w->refused[w->refused_next] = r;
	w->refused_next = (w->refused_next + 1) % CTC_REFUSED_MAX;
	if (w->nrefused < CTC_REFUSED_MAX)
		w->nrefused++;
	pthread_mutex_unlock(&w->refused_mu);
}

static void to_dlq(ctc_worker *w, ctc_batch *b, const rd_kafka_message_t *m, int code, const char *reason)
{
	char part[16], off[24], q[600], sha[65];
	const char *topic = rd_kafka_topic_name(m->rkt);
	/* sent already, before a rewind or a fencing: the same verdict again
	 * (without a digest it goes again: twice rather than never) */
	if (!ctc_sha256_hex(m->payload ? m->payload : "", m->len, sha)) {
		if (refused(w, m, sha))
			return;
		refuse(w, m, sha);
	}
	rd_kafka_headers_t *h = rd_kafka_headers_new(6);
	snprintf(part, sizeof(part), "%d", (int)m->partition);
	snprintf(off, sizeof(off), "%lld", (long long)m->offset);
	rd_kafka_header_add(h, "ct-dlq-reason", -1, reason, (ssize_t)strlen(reason));
	rd_kafka_header_add(h, "ct-dlq-code", -1, code_name(code), -1);
	rd_kafka_header_add(h, "ct-original-topic", -1, topic, -1);
	rd_kafka_header_add(h, "ct-original-partition", -1, part, -1);
	rd_kafka_header_add(h, "ct-original-offset", -1, off, -1);
	rd_kafka_resp_err_t e;
	for (;;) {
		e = rd_kafka_producev(w->dlq, RD_KAFKA_V_TOPIC(w->cfg->dlq_topic),
				      RD_KAFKA_V_KEY(m->key, m->key_len),
				      RD_KAFKA_V_VALUE(m->payload, m->len),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
				      RD_KAFKA_V_OPAQUE(DLQ_FIRST), RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || atomic_load(w->abort))
			break;
		rd_kafka_poll(w->dlq, 100); /* bounded producer queue: wait for room */
	}
	if (e) {
		/* larger than our producer takes: its stub; else it goes again from stage 2 */
		retry_push(w, retry_new(m->key, m->key_len, m->payload, m->len, h, size_refusal(e), e));
		rd_kafka_headers_destroy(h);
	}
	b->dlq++;
	atomic_fetch_add(&w->metrics->dlq, 1);
	ctc_log(CTC_WARN, "event to DLQ", "topic=%s partition=%d offset=%lld code=%s reason=%s", topic,
		(int)m->partition, (long long)m->offset, code_name(code), ctc_log_q(reason, q, sizeof(q)));
}

/* Whether the document's next version was taken by another writer (worker.h: rederive). */
static bool taken_by_another(ctc_worker *w, const char *key)
{
	bool found;
	pthread_mutex_lock(&w->refused_mu);
	found = w->rederive_all;
	for (unsigned i = 0; i < w->nrederive && !found; i++)
		found = !strcmp(w->rederive[i], key);
	pthread_mutex_unlock(&w->refused_mu);
	return found;
}

static void mark_version_taken(ctc_worker *w, const char *collection, const char *document_id)
{
	char *key = ctc_state_key(collection ? collection : "", document_id ? document_id : "");
	pthread_mutex_lock(&w->refused_mu);
	bool found = false;
	for (unsigned i = 0; key && i < w->nrederive && !found; i++)
		found = !strcmp(w->rederive[i], key);
	if (!found && key && w->nrederive < CTC_REDERIVE_MAX) {
		w->rederive[w->nrederive++] = key;
		key = NULL;
	} else if (!found) {
		w->rederive_all = true;
	}
	pthread_mutex_unlock(&w->refused_mu);
	free(key);
}

/* After a batch's states were loaded: the documents taken by another writer are rolled forward now. */
static void forget_taken(ctc_worker *w)
{
	pthread_mutex_lock(&w->refused_mu);
	for (unsigned i = 0; i < w->nrederive; i++)
		free(w->rederive[i]);
	w->nrederive = 0;
	w->rederive_all = false;
	pthread_mutex_unlock(&w->refused_mu);
}

/* Finds or loads the states of every key of the batch; one query for all misses. */
static int load_states(ctc_worker *w, ctc_batch *b, ct_event **evs, ct_error *err)
{
	ctc_doc_ref *missing = calloc(b->n ? b->n : 1, sizeof(*missing));
	int32_t *miss_part = calloc(b->n ? b->n : 1, sizeof(*miss_part));
	char **keys = calloc(b->n ? b->n : 1, sizeof(*keys));
	size_t nmiss = 0;
	json_t *found = NULL;
	int rc = 0;

	if (!missing || !keys || !miss_part) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (!evs[i])
			continue;
		if (!(keys[i] = ctc_state_key(ct_event_collection(evs[i]), ct_event_document_id(evs[i])))) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		if (ctc_cache_get(w->cache, keys[i]))
			continue;
		/* put a placeholder now so a key repeated in the batch is asked for once */
		ctc_doc_state *st = ctc_state_new(ct_event_collection(evs[i]), ct_event_document_id(evs[i]), err);
		if (st)
			st->stored = -1; /* unless the load finds it */
		if (!st || (rc = ctc_cache_put(w->cache, st, b->msgs[i]->partition, err))) {
			ctc_state_free(st);
			rc = rc ? rc : CT_ENOMEM;
			goto out;
		}
		miss_part[nmiss] = b->msgs[i]->partition;
		missing[nmiss++] = (ctc_doc_ref){st->key, st->collection, st->document_id,
						 taken_by_another(w, st->key) ? NULL : ct_event_id(evs[i])};
	}
	if (nmiss == 0 || !w->read_store)
		goto out;
	int64_t delay = 100;
	atomic_store(&w->metrics->store_read_start_us, ctc_metrics_now_us()); /* the stall check's too */
	for (;;) {
		if (!(rc = ctc_store_load_states(w->read_store, missing, nmiss, &found, err)))
			break;
		store_failed(w, "load state", err);
		if (!backoff(w, &delay)) {
			atomic_store(&w->metrics->store_read_start_us, 0);
			goto out;
		}
	}
	atomic_store(&w->metrics->store_read_start_us, 0);
	store_succeeded(w);
	forget_taken(w);
	for (size_t i = 0; i < json_array_size(found); i++) {
		ctc_doc_state *loaded;
		if ((rc = ctc_state_from_json(json_array_get(found, i), &loaded, err)))
			goto out;
		ctc_doc_state *slot = ctc_cache_get(w->cache, loaded->key);
		if (!slot) { /* not asked for: ignore */
			ctc_state_free(loaded);
			continue;
		}
		/* move the loaded content into the placeholder the batch may point at later */
		ctc_doc_state tmp = *slot;
		*slot = *loaded;
		*loaded = tmp;
		ctc_state_free(loaded);
		/* rolled forward from history: newer than `state`, so it is written
		 * even when every event of the batch turns out a redelivery */
		if (json_is_true(json_object_get(json_array_get(found, i), "rolled_forward")) && !slot->dirty) {
			slot->dirty = true;
			w->ndirty++;
		}
	}
out:
	for (size_t i = 0; keys && i < b->n; i++)
		free(keys[i]);
	free(keys);
	free(missing);
	free(miss_part);
	json_decref(found);
	return rc;
}

/* Marks a MongoDB write of `store` outstanding (or done) for the loop's stall check (store_stall_ms). */
static void write_outstanding(ctc_worker *w, const ctc_store *store, bool start)
{
	if (store == w->store)
		ctc_metrics_store_write(w->metrics, start);
	else
		atomic_store(&w->state_write_start_us, start ? ctc_metrics_now_us() : 0);
}

/*
 * Writes `ws` through `store` (the writer's, or the state writer's own
 * client), retrying while MongoDB fails. *dups: history records that were
 * in MongoDB already (redelivered events).
 */
static int write_batch(ctc_worker *w, ctc_store *store, ctc_batch *b, ctc_write_set *ws, size_t *dups,
		       ct_error *err)
{
	int64_t delay = 100;
	*dups = 0;
	if (!store)
		return 0;
	/* outstanding until written, retries included: the loop's stall check (store_stall_ms) */
	write_outstanding(w, store, true);
	for (;;) {
		int rc = 0;
		/* checked before every attempt: a retry may outlive the assignment */
		if (ctc_worker_fenced(w, b)) {
			b->stage = CTC_BATCH_FENCED;
			write_outstanding(w, store, false);
			return CT_ETIMEDOUT;
		}
		/* the writer's first write makes the indexes; the state writer only
		 * ever writes after a history write of the same batch */
		if (store == w->store && !w->indexes_done &&
		    !(rc = ctc_store_ensure_indexes(store, w->cfg->history_ttl_days, err)))
			w->indexes_done = true;
		if (!rc && !(rc = ctc_store_write(store, ws, dups, err)))
			break;
		/* records that collide with other stored records: retrying cannot
		 * help, the batch fails with what was found (ws->conflicts) */
		if (rc == CT_ECONFLICT) {
			write_outstanding(w, store, false);
			return rc;
		}
		store_failed(w, store == w->store ? "write batch" : "write states", err);
		if (!backoff(w, &delay)) {
			write_outstanding(w, store, false);
			return CT_ETIMEDOUT;
		}
	}
	write_outstanding(w, store, false);
	store_succeeded(w);
	return 0;
}

/* A DLQ slower than this to take the dead letters pauses consumption until it does. */
#define DLQ_SLOW_MS 5000

/*
 * Waits until every dead letter sent so far is written (librdkafka retries
 * the retriable errors itself, forever with message.timeout.ms 0: a DLQ
 * that keeps failing so is only slow). Sets *paused once consumption had to
 * be paused meanwhile. 0 or CT_ETIMEDOUT (shutdown deadline).
 */
static int drain_dlq(ctc_worker *w, bool *paused)
{
	int64_t waited_ms = 0;
	while (rd_kafka_outq_len(w->dlq) > 0) {
		if (atomic_load(w->abort))
			return CT_ETIMEDOUT;
		rd_kafka_flush(w->dlq, 200);
		waited_ms += 200;
		if (waited_ms >= DLQ_SLOW_MS && !*paused && rd_kafka_outq_len(w->dlq) > 0) {
			ctc_log(CTC_ERROR, "DLQ not taking dead letters, waiting", "topic=%s waited_ms=%lld",
				w->cfg->dlq_topic, (long long)waited_ms);
			set_paused_why(w, true, "dlq");
			*paused = true;
		}
	}
	return 0;
}

/*
 * Waits for every dead letter, sending again the ones that failed: stubs
 * for what does not fit, the others whole and one at a time (so a size
 * refusal is then the message's own). While the DLQ keeps failing for other
 * reasons consumption is paused and the sends retried with backoff, like
 * MongoDB outages. 0, CT_ETIMEDOUT at the shutdown deadline, CT_EKAFKA when
 * a dead letter could not even be kept in memory.
 */
static int flush_dlq(ctc_worker *w)
{
	int64_t delay = 100;
	bool failing = false;
	int rc, round = 0;
	for (;;) {
		if ((rc = drain_dlq(w, &failing)))
			return rc;
		pthread_mutex_lock(&w->dlq_mu);
		ctc_dlq_retry *list = w->dlq_retry;
		w->dlq_retry = NULL;
		pthread_mutex_unlock(&w->dlq_mu);
		if (!list)
			break;
		round++;
		while (list) {
			ctc_dlq_retry *r = list;
			list = r->next;
			rd_kafka_resp_err_t e;
			if (r->stub) {
				if (!(e = send_stub(w, r->hdrs, r->key, r->key_len, r->len, r->sha256, r->err))) {
					r->hdrs = NULL; /* the producer owns them now */
				} else { /* refused before it left: keep it to send again */
					r->next = NULL;
					retry_push(w, r);
					r = NULL;
				}
			} else {
				e = rd_kafka_producev(w->dlq, RD_KAFKA_V_TOPIC(w->cfg->dlq_topic),
						      RD_KAFKA_V_KEY(r->key, r->key_len),
						      RD_KAFKA_V_VALUE(r->value, r->len),
						      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(r->hdrs),
						      RD_KAFKA_V_OPAQUE(r->stub_payload ? DLQ_STUB : DLQ_ALONE),
						      RD_KAFKA_V_END);
				if (!e) {
					r->hdrs = NULL; /* the producer owns them now */
					rc = drain_dlq(w, &failing); /* alone: its refusal, if any, is its own */
				} else {
					r->err = e;
					r->stub = size_refusal(e) && !r->stub_payload;
					if (r->stub)
						ct_sha256(r->value, r->len, r->sha256);
					r->next = NULL;
					retry_push(w, r);
					r = NULL;
				}
			}
			retry_free(r);
			if (rc) {
				while (list) {
					ctc_dlq_retry *n = list->next;
					retry_push(w, list);
					list = n;
				}
				return rc;
			}
		}
		if (atomic_load(&w->dlq_failed))
			return CT_EKAFKA;
		pthread_mutex_lock(&w->dlq_mu);
		bool again = w->dlq_retry != NULL;
		pthread_mutex_unlock(&w->dlq_mu);
		/* round 1 sends them again (alone), round 2 the stubs of those refused
		 * alone; past that the DLQ is down or refuses us for another reason */
		if (again && round >= 2) {
			if (round == 3)
				ctc_log(CTC_ERROR, "DLQ failing, will retry", "topic=%s", w->cfg->dlq_topic);
			if (!failing && round >= 3) {
				failing = true;
				set_paused_why(w, true, "dlq");
			}
			if (!backoff(w, &delay))
				return CT_ETIMEDOUT;
		}
	}
	if (failing)
		set_paused_why(w, false, "dlq");
	return atomic_load(&w->dlq_failed) ? CT_EKAFKA : 0;
}

int64_t ctc_state_flush_interval_ms(int64_t state_flush_ms, double last_write_ms)
{
	int64_t cap = state_flush_ms > CTC_STATE_FLUSH_GAP_MAX_MS ? state_flush_ms : CTC_STATE_FLUSH_GAP_MAX_MS;
	double slow = CTC_STATE_FLUSH_BACKOFF * last_write_ms;
	if (state_flush_ms <= 0 || !(slow > (double)state_flush_ms))
		return state_flush_ms > 0 ? state_flush_ms : 0;
	return slow < (double)cap ? (int64_t)slow : cap;
}

static size_t flush_max(const ctc_worker *w)
{
	int64_t m = w->cfg->state_flush_max_documents < w->cfg->cache_max_documents
			    ? w->cfg->state_flush_max_documents
			    : w->cfg->cache_max_documents;
	return m > 0 ? (size_t)m : 1;
}

void ctc_worker_drop_cache(ctc_worker *w)
{
	ctc_cache_drop_partition(w->cache, -1);
	w->ndirty = 0;
	ctc_contexts_free(&w->ctxs);
}

bool ctc_worker_has_unwritten(const ctc_worker *w)
{
	return w->ndirty > 0 || w->ctxs.n > 0;
}

/* Appends a dirty state's stored form to the batch (stage 1: the writer only sends it). */
static int collect_dirty(ctc_doc_state *st, void *ud)
{
	ctc_batch *b = ud;
	ct_error err;
	int rc = ctc_state_append_bson(st, &b->states, &err);
	if (rc == 0 && ct_buf_put(&b->expected, &st->stored, sizeof(st->stored)))
		rc = CT_ENOMEM;
	if (rc == 0) {
		b->nstates++;
		/* once this write is done; if it fails, the guess is wrong and costs a read */
		st->stored = st->version;
	}
	return rc;
}

/* The head of a dirty state, for the anchor published once its write is done. */
static int collect_head(ctc_doc_state *st, void *ud)
{
	ctc_batch *b = ud;
	ct_error err;
	if (st->version < 1)
		return 0;
	return ctc_anchor_heads_add(&b->heads, st->collection, st->document_id, st->version, st->hash, &err);
}

static int mark_taken(ctc_doc_state *st, void *ud)
{
	st->dirty = false;
	st->taken = *(const uint64_t *)ud;
	return 0;
}

/*
 * Moves everything unwritten into `b`: the dirty states as stored-state
 * objects, none with no_write (clean in the cache from now on: `b` is their only way to
 * MongoDB, and a failed write stops the consumer; but not evicted before
 * that write is done, see ctc_cache_trim()) and the gathered context
 * updates.
 */
static int take_unwritten(ctc_worker *w, ctc_batch *b)
{
	/* with no_write (no store) the states are only marked clean: their
	 * stored form would be built for nobody */
	if (w->store && ctc_cache_foreach_dirty(w->cache, collect_dirty, b))
		return CT_ENOMEM;
	if (w->store && w->anchor && ctc_cache_foreach_dirty(w->cache, collect_head, b))
		return CT_ENOMEM;
	b->take = ++w->takes;
	ctc_cache_foreach_dirty(w->cache, mark_taken, &b->take);
	ctc_contexts_free(&b->ctxs);
	b->ctxs = w->ctxs;
	ctc_contexts_init(&w->ctxs);
	w->ndirty = 0;
	b->took_states = true;
	return 0;
}

int ctc_worker_flush_states(ctc_worker *w, double *contexts_ms, double *states_ms)
{
	ctc_batch *b = calloc(1, sizeof(*b));
	int rc = CT_ENOMEM;
	if (contexts_ms)
		*contexts_ms = 0;
	if (states_ms)
		*states_ms = 0;
	if (!b)
		goto out;
	if (!ctc_worker_has_unwritten(w)) {
		rc = 0;
		goto out;
	}
	b->generation = atomic_load(&w->generation);
	if (take_unwritten(w, b))
		goto out;
	b->stage = CTC_BATCH_PREPARED; /* it carries states only: no records to build */
	ctc_worker_write(w, b);
	rc = b->stage == CTC_BATCH_WRITTEN ? 0 : CT_ETIMEDOUT;
	if (contexts_ms)
		*contexts_ms = b->contexts_ms;
	if (states_ms)
		*states_ms = b->state_ms;
out:
	if (rc)
		ctc_worker_drop_cache(w);
	ctc_batch_free(b);
	return rc;
}

/* Appends at most `max` bytes of `s` to out (NUL-terminated), control and non-ASCII bytes as \xHH. */
static void quote_bytes(char *out, size_t size, const char *s, size_t n, size_t max)
{
	size_t o = 0;
	for (size_t i = 0; i < n && i < max && o + 5 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '\\' || c == '\'')
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (n > max && o + 4 < size)
		o += (size_t)snprintf(out + o, size - o, "...");
	out[o] = '\0';
}

/*
 * true (err says why) when the message key is not "<collection>/<document_id>"
 * of its event: the key decides the partition, and only one partition may
 * carry a document's events, else two workers record it at once. The whole
 * key is compared: either part may hold '/'.
 */
static bool key_mismatch(const rd_kafka_message_t *m, const ct_event *ev, ct_error *err)
{
	const char *coll = ct_event_collection(ev) ? ct_event_collection(ev) : "";
	const char *id = ct_event_document_id(ev) ? ct_event_document_id(ev) : "";
	size_t cl = strlen(coll), dl = strlen(id);
	char k[300], c[300], d[300];
	const char *key = m->key;
	if (key && m->key_len == cl + 1 + dl && !memcmp(key, coll, cl) && key[cl] == '/' &&
	    !memcmp(key + cl + 1, id, dl))
		return false;
	quote_bytes(c, sizeof(c), coll, cl, 64);
	quote_bytes(d, sizeof(d), id, dl, 64);
	if (!key) {
		ct_error_set(err, CT_EINVAL, "message has no key (event %s/%s)", c, d);
		return true;
	}
	quote_bytes(k, sizeof(k), key, m->key_len, 64);
	ct_error_set(err, CT_EINVAL, "key '%s' does not match event %s/%s", k, c, d);
	return true;
}

/*
 * Parses message i of `b`: a bad one goes to the DLQ, a context marker only
 * touches the contexts; *out is the event when it makes a record, else NULL.
 */
static void parse_one(ctc_worker *w, ctc_batch *b, size_t i, const ct_limits *limits, ct_event **out)
{
	const rd_kafka_message_t *m = b->msgs[i];
	ct_event *ev = NULL;
	ct_error err;
	int rc;

	*out = NULL;
	if ((rc = ct_event_parse(m->payload ? m->payload : "", m->len, limits, &ev, &err))) {
		to_dlq(w, b, m, rc, err.message);
		return;
	}
	ct_op op = ct_event_op(ev);
	if (op != CT_OP_CONTEXT_BEGIN && op != CT_OP_CONTEXT_END && strcmp(w->cfg->key_check, "off") &&
	    key_mismatch(m, ev, &err)) {
		ct_event_free(ev);
		to_dlq(w, b, m, CTC_DLQ_EKEY, err.message);
		return;
	}
	if (op == CT_OP_CONTEXT_BEGIN || op == CT_OP_CONTEXT_END) {
		rc = ctc_contexts_add_marker(&w->ctxs, op == CT_OP_CONTEXT_END,
					     ct_event_context_id(ev) ? ct_event_context_id(ev) : ct_event_document_id(ev),
					     ct_event_context_parent_id(ev), ct_event_ts(ev), ct_event_actor(ev),
					     ct_event_context_metadata(ev), &err);
		ct_event_free(ev);
		if (rc)
			to_dlq(w, b, m, rc, err.message);
		else
			b->markers++;
		return;
	}
	*out = ev;
}

/* The cached state of ev's document, or NULL (not cached, or no memory). */
static ctc_doc_state *cached_state(ctc_worker *w, const ct_event *ev)
{
	char *key = ctc_state_key(ct_event_collection(ev), ct_event_document_id(ev));
	ctc_doc_state *st = key ? ctc_cache_get(w->cache, key) : NULL;
	free(key);
	return st;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool ctc_worker_fenced(ctc_worker *w, const ctc_batch *b)
{
	if (b->generation != atomic_load(&w->generation))
		return true;
	if (w->consumer && rd_kafka_assignment_lost(w->consumer))
		return true;
	if (w->continued && atomic_load(w->continued) != atomic_load(&w->continued_seen))
		return true;
	if (w->stall_limit_us > 0) {
		int64_t alive = atomic_load(&w->alive_us);
		if (alive && mono_us() - alive > w->stall_limit_us)
			return true;
	}
	return false;
}

/*
 * Which log the event's offset belongs to, against the state: asked of
 * Kafka (offsets.h) once per generation and state offset. No prover (no
 * Kafka for it): applied as new, never skipped unproven.
 */
static int prove_offsets(ctc_worker *w, const ctc_doc_state *st, ctc_offsets *verdict, ct_error *err)
{
	const char *id = NULL, *sha = NULL;
	*verdict = CTC_OFFSETS_WENT_BACK;
	if (!w->prover)
		return 0;
	uint64_t gen = atomic_load(&w->generation);
	if (w->prover_generation != gen) {
		ctc_offsets_reset(w->prover);
		w->prover_generation = gen;
	}
	ctc_state_last_event(st, &id, &sha);
	int rc = CT_ETIMEDOUT;
	for (int attempt = 0; attempt < 3 && rc && !atomic_load(w->abort); attempt++)
		rc = ctc_offsets_prove(w->prover, st->last_topic, st->last_partition, st->last_offset, id, sha, 10000,
				       verdict, err);
	return rc;
}

/*
 * The record of event i (message i of `b`) against its document's state
 * `st`; a bad event goes to the DLQ. -1 when the batch cannot go on (logged
 * or out of memory), else 0.
 */
static int record_one(ctc_worker *w, ctc_batch *b, size_t i, const ct_event *ev, ctc_doc_state *st)
{
	const rd_kafka_message_t *m = b->msgs[i];
	ct_error err;
	json_t *rec;
	ctc_record_result res;
	char sha[65];
	int rc;

	/* the content's identity decides every skip: without it, no verdict */
	if ((rc = ctc_sha256_hex(m->payload ? m->payload : "", m->len, sha))) {
		ctc_log(CTC_ERROR, "message digest failed", "topic=%s partition=%d offset=%lld error=\"%s\"",
			rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset, ct_strerror(rc));
		return -1;
	}
	if (refused(w, m, sha))
		return 0; /* in the DLQ already, or found recorded at another version */
	ctc_event_in in = {
		.event_id = ct_event_id(ev), .ts = ct_event_ts(ev), .source = ct_event_source(ev),
		.collection = ct_event_collection(ev), .document_id = ct_event_document_id(ev),
		.op = ct_op_name(ct_event_op(ev)), .label = ct_event_label(ev), .actor = ct_event_actor(ev),
		.context_id = ct_event_context_id(ev), .after = ct_event_after(ev),
		.before = ct_event_before(ev), .relation = ct_event_relation(ev),
		.parent_collection = ct_event_parent_collection(ev),
		.parent_document_id = ct_event_parent_document_id(ev), .seq = ct_event_seq(ev),
		.topic = rd_kafka_topic_name(m->rkt), .partition = m->partition, .offset = m->offset,
		.sha256 = sha,
	};
	/* without writes only the hash chain is needed, not the record */
	rec = NULL;
	for (;;) {
		if ((rc = ctc_record_apply(st, &in, w->store ? &rec : NULL, &res, &err))) {
			if (rc == CT_ENOMEM)
				return -1;
			to_dlq(w, b, m, rc, err.message);
			return 0;
		}
		if (res != CTC_RECORD_UNPROVEN)
			break;
		/* an offset at or before the state's: not a verdict, a proof */
		if ((rc = prove_offsets(w, st, &in.offsets, &err))) {
			char q[400];
			ctc_log(CTC_ERROR, "offsets not proven", "topic=%s partition=%d offset=%lld error=%s",
				in.topic, (int)m->partition, (long long)m->offset, ctc_log_q(err.message, q, sizeof(q)));
			return -1;
		}
	}
	if (res == CTC_RECORD_REUSED) {
		char reason[256];
		snprintf(reason, sizeof(reason),
			 "event id reused with other content: %s is remembered by %s with another sha256", in.event_id,
			 st->key);
		to_dlq(w, b, m, CTC_DLQ_REUSED, reason);
		return 0;
	}
	if (res == CTC_RECORD_DUPLICATE) {
		b->duplicate++;
		return 0;
	}
	if (res == CTC_RECORD_EMPTY) {
		b->empty++;
		return 0;
	}
	b->persisted++;
	if (!st->dirty) {
		st->dirty = true;
		w->ndirty++;
	}
	/* The record's BSON is made now, while the record is hot in this
	 * thread's cache, and the record freed right away: freed later by
	 * another thread, records cost more to free than to build. */
	if (w->store) {
		bson_t doc = BSON_INITIALIZER;
		if (b->nrec == b->rec_cap) {
			size_t cap = b->rec_cap ? 2 * b->rec_cap : 64;
			size_t *grown = realloc(b->rec_msg, cap * sizeof(*grown));
			if (!grown) {
				json_decref(rec);
				return -1;
			}
			b->rec_msg = grown;
			b->rec_cap = cap;
		}
		b->rec_msg[b->nrec++] = i;
		rc = cts_history_to_bson(rec, &doc, &err);
		if (!rc && ct_buf_put(&b->history, bson_get_data(&doc), doc.len))
			rc = ct_error_set(&err, CT_ENOMEM, "out of memory");
		bson_destroy(&doc);
		if (rc) {
			json_decref(rec);
			ctc_log(CTC_ERROR, "history record not converted", "batch=%llu error=\"%s\"",
				(unsigned long long)b->seq, err.message);
			return -1;
		}
	}
	json_decref(rec);
	if (in.context_id &&
	    ctc_contexts_add_event(&w->ctxs, in.context_id, ct_event_context_parent_id(ev), in.ts, in.actor,
				   in.collection, ct_event_context_metadata(ev), &err))
		return -1;
	return 0;
}

void ctc_worker_prepare(ctc_worker *w, ctc_batch *b)
{
	ct_event **evs = calloc(b->n ? b->n : 1, sizeof(*evs));
	ct_limits limits;
	ct_error err;
	size_t i = 0;
	int rc;

	b->state_flushed = false;
	ct_buf_free(&b->history);
	if (!evs) {
		ctc_log(CTC_ERROR, "out of memory", "batch=%llu", (unsigned long long)b->seq);
		goto out;
	}
	ct_limits_default(&limits);
	if (w->cfg->max_event_bytes) limits.max_bytes = (size_t)w->cfg->max_event_bytes;
	if (w->cfg->max_depth) limits.max_depth = (size_t)w->cfg->max_depth;
	if (w->cfg->max_keys) limits.max_keys = (size_t)w->cfg->max_keys;
	if (w->cfg->max_string_bytes) limits.max_string_bytes = (size_t)w->cfg->max_string_bytes;
	if (w->cfg->max_array_items) limits.max_array_items = (size_t)w->cfg->max_array_items;

	/*
	 * 1. While each event's document is cached (the steady state), the
	 * event is parsed, recorded and freed at once, its tree still in the
	 * CPU's caches: the batch's 500 trees built first and walked later
	 * came back from memory.
	 */
	for (; i < b->n; i++) {
		ct_event *ev;
		ctc_doc_state *st;
		parse_one(w, b, i, &limits, &ev);
		if (!ev)
			continue;
		if (!(st = cached_state(w, ev))) {
			evs[i] = ev; /* the rest of the batch takes steps 2-4 */
			break;
		}
		rc = record_one(w, b, i, ev, st);
		ct_event_free(ev);
		if (rc)
			goto out;
	}

	if (i < b->n) {
		/* 2. from the first event whose document is not cached: the rest
		 * parsed, bad messages to the DLQ */
		for (size_t j = i + 1; j < b->n; j++)
			parse_one(w, b, j, &limits, &evs[j]);

		/* 3. their previous states: cache, then one query for the rest */
		if ((rc = load_states(w, b, evs, &err))) {
			if (rc != CT_ETIMEDOUT && !atomic_load(w->abort))
				ctc_log(CTC_ERROR, "loading state failed", "error=\"%s\"", ct_strerror(rc));
			goto out;
		}

		/* 4. their records, each event freed once recorded (the loop's
		 * third clause runs on every `continue` too) */
		for (size_t j = i; j < b->n; ct_event_free(evs[j]), evs[j] = NULL, j++) {
			ctc_doc_state *st;
			if (!evs[j])
				continue;
			if (!(st = cached_state(w, evs[j]))) {
				ctc_log(CTC_ERROR, "state missing from cache", "batch=%llu", (unsigned long long)b->seq);
				goto out;
			}
			if (record_one(w, b, j, evs[j], st))
				goto out;
		}
	}

	/* 5. states and contexts go with this batch when due. A batch may add
	 * as many contexts as it has events: take them before they could
	 * overflow. */
	if ((b->flush_state || w->cfg->state_flush_ms == 0 || w->ndirty >= flush_max(w) ||
	     ctc_cache_over_bounds(w->cache) ||
	     w->ctxs.n > CTC_CONTEXTS_MAX - 10000) &&
	    take_unwritten(w, b)) {
		ctc_log(CTC_ERROR, "out of memory", "batch=%llu", (unsigned long long)b->seq);
		goto out;
	}
	b->state_flushed = !ctc_worker_has_unwritten(w);
	b->stage = CTC_BATCH_PREPARED;
out:
	if (b->stage != CTC_BATCH_PREPARED) /* what the cache holds may be ahead of MongoDB now: forget it all */
		ctc_worker_drop_cache(w);
	ctc_cache_trim(w->cache, atomic_load(&w->written_take));
	atomic_store(&w->metrics->cache_documents, ctc_cache_count(w->cache));
	atomic_store(&w->metrics->cache_bytes, ctc_cache_bytes(w->cache));
	for (size_t k = 0; evs && k < b->n; k++)
		ct_event_free(evs[k]);
	free(evs);
}

/* One history record of a batch, as far as conflicts are concerned. */
typedef struct rec_view {
	const char *id, *collection, *document_id, *hash;
	int64_t version;
	int64_t min_conflict; /* of its document: the lowest conflicting version; INT64_MAX = none */
	bool conflicting;
} rec_view;

static const char *view_str(const bson_t *d, const char *k)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, d, k) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

static bool same_doc(const rec_view *a, const rec_view *b)
{
	return a->collection && b->collection && a->document_id && b->document_id &&
	       !strcmp(a->collection, b->collection) && !strcmp(a->document_id, b->document_id);
}

int ctc_worker_on_conflicts(ctc_worker *w, ctc_batch *b, const ctc_conflicts *c, ct_error *err)
{
	rec_view *v = calloc(b->nrec ? b->nrec : 1, sizeof(*v));
	ctc_record_ref *back = calloc(b->nrec ? b->nrec : 1, sizeof(*back));
	bson_t *docs = calloc(b->nrec ? b->nrec : 1, sizeof(*docs));
	size_t nv = 0, nback = 0, off = 0;
	int rc = 0;
	if (!v || !back || !docs) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	/* the batch's records, in insert order (what the conflict indexes count) */
	while (nv < b->nrec && off + 4 <= b->history.len) {
		uint32_t len;
		memcpy(&len, b->history.data + off, 4);
		len = BSON_UINT32_FROM_LE(len);
		if (len < 5 || off + len > b->history.len ||
		    !bson_init_static(&docs[nv], (const uint8_t *)b->history.data + off, len))
			break;
		v[nv] = (rec_view){.id = view_str(&docs[nv], "_id"), .collection = view_str(&docs[nv], "collection"),
				   .document_id = view_str(&docs[nv], "document_id"), .hash = view_str(&docs[nv], "hash"),
				   .min_conflict = INT64_MAX};
		bson_iter_t it;
		if (bson_iter_init_find(&it, &docs[nv], "version") && BSON_ITER_HOLDS_NUMBER(&it))
			v[nv].version = bson_iter_as_int64(&it);
		nv++;
		off += len;
	}
	for (size_t k = 0; k < c->n; k++) {
		const ctc_conflict *x = &c->items[k];
		if (x->index >= nv || x->index >= b->nrec) {
			rc = ct_error_set(err, CT_EINTERNAL, "conflict on record %zu of %zu", x->index, nv);
			goto out;
		}
		const rd_kafka_message_t *m = b->msgs[b->rec_msg[x->index]];
		v[x->index].conflicting = true;
		for (size_t j = 0; j < nv; j++)
			if (same_doc(&v[j], &v[x->index]) && v[x->index].version < v[j].min_conflict)
				v[j].min_conflict = v[x->index].version;
		if (x->kind == CTS_CONFLICT_ID_REUSED) {
			char reason[512];
			const json_t *st = x->stored;
			snprintf(reason, sizeof(reason),
				 "event id reused with other content: %s is stored for %s/%s version %lld", x->id,
				 st ? json_string_value(json_object_get(st, "collection")) : "?",
				 st ? json_string_value(json_object_get(st, "document_id")) : "?",
				 st ? (long long)json_integer_value(json_object_get(st, "version")) : -1LL);
			to_dlq(w, b, m, CTC_DLQ_REUSED, reason);
		} else if (x->kind == CTS_CONFLICT_SAME_EVENT) {
			/* recorded already (same id, same document, same message
			 * value): the one skip that is proven; the document's
			 * other records are derived again around it */
			ctc_log(CTC_WARN, "event recorded already at another version: skipped", "topic=%s partition=%d "
				"offset=%lld collection=%s document_id=%s stored_version=%lld", rd_kafka_topic_name(m->rkt),
				(int)m->partition, (long long)m->offset,
				v[x->index].collection ? v[x->index].collection : "?",
				v[x->index].document_id ? v[x->index].document_id : "?",
				x->stored ? (long long)json_integer_value(json_object_get(x->stored, "version")) : -1LL);
			char sha[65];
			if (!ctc_sha256_hex(m->payload ? m->payload : "", m->len, sha))
				refuse(w, m, sha);
		} else {
			/* another writer, a mis-keyed event or a stale state: never a
			 * duplicate; the document is derived again from MongoDB */
			ctc_log(CTC_ERROR, "version taken: deriving the document again", "topic=%s partition=%d offset=%lld "
				"collection=%s document_id=%s version=%lld", rd_kafka_topic_name(m->rkt), (int)m->partition,
				(long long)m->offset, v[x->index].collection ? v[x->index].collection : "?",
				v[x->index].document_id ? v[x->index].document_id : "?", (long long)v[x->index].version);
			mark_version_taken(w, v[x->index].collection, v[x->index].document_id);
		}
	}
	/* inserted on top of a record that was not: their prev_hash names nothing stored */
	for (size_t j = 0; j < nv; j++)
		if (!v[j].conflicting && v[j].version > v[j].min_conflict && v[j].id && v[j].hash)
			back[nback++] = (ctc_record_ref){v[j].id, v[j].hash};
	if (nback && w->store) {
		int64_t delay = 100;
		size_t deleted = 0;
		for (;;) {
			/* Fenced: the partition's new owner may have met these very
			 * records as its redeliveries and moved its state past them;
			 * taking them back now would cut its chain. They stay, and
			 * the new owner meets them as conflicts of its own. */
			if (ctc_worker_fenced(w, b)) {
				b->stage = CTC_BATCH_FENCED;
				rc = 0;
				goto out;
			}
			if (!(rc = ctc_store_take_back(w->store, back, nback, &deleted, err)))
				break;
			store_failed(w, "take back records", err);
			if (!backoff(w, &delay))
				goto out;
		}
		store_succeeded(w);
		ctc_log(CTC_WARN, "records taken back", "batch=%llu records=%zu deleted=%zu", (unsigned long long)b->seq,
			nback, deleted);
	}
	if ((rc = flush_dlq(w))) {
		ct_error_set(err, rc, "DLQ delivery failed");
		goto out;
	}
	b->stage = CTC_BATCH_CONFLICT;
out:
	free(v);
	free(back);
	free(docs);
	return rc;
}

/* What follows a state write (of `b`, taken in stage 1) that MongoDB acknowledged. */
static void states_written(ctc_worker *w, ctc_batch *b)
{
	atomic_store(&w->written_take, b->take);
	atomic_fetch_add(&w->metrics->state_writes, 1);
	atomic_fetch_add(&w->metrics->states_written, b->nstates);
	ctc_anchor_add(w->anchor, &b->heads); /* only what MongoDB holds now */
}

/*
 * Stage 2, and the whole write when `with_states`: history, then (with
 * states) contexts and states. Without, a batch that took the states
 * leaves them to ctc_worker_write_states() (STATES_DUE). From PREPARED;
 * when it fails, the batch stays PREPARED (worker.h).
 */
/* The guesses of what `state` holds for b's states from the i-th on (NULL: none, read them). */
static const int64_t *expected_of(const ctc_batch *b, size_t i)
{
	return b->expected.len == b->nstates * sizeof(int64_t) && i < b->nstates ? (const int64_t *)b->expected.data + i
										     : NULL;
}

static void write_stage(ctc_worker *w, ctc_batch *b, bool with_states)
{
	bool states = b->took_states && with_states;
	ctc_write_set ws = {.history_bson = (const uint8_t *)b->history.data,
			    .history_bson_len = b->history.len,
			    .states_bson = states ? (const uint8_t *)b->states.data : NULL,
			    .states_bson_len = states ? b->states.len : 0,
			    .states_expected = states ? expected_of(b, 0) : NULL,
			    .contexts = states && b->ctxs.n ? &b->ctxs : NULL};
	ct_error err;
	size_t dups;
	int rc;

	/* history, then contexts, then states: a state is never ahead of its history */
	atomic_store(&w->history_writing, 1);
	int wrc = write_batch(w, w->store, b, &ws, &dups, &err);
	atomic_store(&w->history_writing, 0);
	atomic_fetch_add(&w->history_writes, 1);
	if (wrc == CT_ECONFLICT) {
		char q[512];
		ctc_log(CTC_ERROR, "history conflict", "batch=%llu conflicts=%zu error=%s", (unsigned long long)b->seq,
			ws.conflicts.n, ctc_log_q(err.message, q, sizeof(q)));
		for (size_t i = 0; i < ws.conflicts.n && i < 10; i++) {
			const ctc_conflict *c = &ws.conflicts.items[i];
			char *stored = c->stored ? json_dumps(c->stored, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
			ctc_log(CTC_ERROR, "history conflict record", "batch=%llu index=%zu kind=%s id=%s stored=%s",
				(unsigned long long)b->seq, c->index,
				cts_conflict_kind_name(c->kind),
				ctc_log_q(c->id, q, sizeof(q)), stored ? stored : "null");
			free(stored);
		}
		if ((rc = ctc_worker_on_conflicts(w, b, &ws.conflicts, &err))) {
			ctc_log(CTC_ERROR, "history conflict not resolved", "batch=%llu error=%s",
				(unsigned long long)b->seq, ctc_log_q(err.message, q, sizeof(q)));
			b->stage = CTC_BATCH_PREPARED; /* not written, not CONFLICT: the consumer stops */
		}
	}
	if (b->stage == CTC_BATCH_FENCED)
		ctc_log(CTC_WARN, "batch fenced, not written", "batch=%llu events=%zu generation=%llu", (unsigned long long)b->seq,
			b->n, (unsigned long long)b->generation);
	ctc_conflicts_free(&ws.conflicts);
	if (wrc)
		return;
	/* Redelivered events whose state was not written yet: rebuilt, found in
	 * `history` already. They count as duplicates, not as persisted (every
	 * one was a record of this batch: dups <= persisted). */
	if (dups > b->persisted)
		dups = b->persisted;
	b->persisted -= dups;
	b->duplicate += dups;
	b->history_ms = ws.history_ms;
	b->contexts_ms = ws.contexts_ms;
	b->state_ms = ws.state_ms;
	if ((rc = flush_dlq(w))) {
		ctc_log(CTC_ERROR, "DLQ delivery failed", "error=\"%s\"", ct_strerror(rc));
		return;
	}
	if (states)
		states_written(w, b);
	atomic_fetch_add(&w->metrics->persisted, b->persisted);
	atomic_fetch_add(&w->metrics->duplicate, b->duplicate);
	atomic_fetch_add(&w->metrics->empty, b->empty);
	atomic_fetch_add(&w->metrics->markers, b->markers);
	/* the states it took and did not write go on in stage 3 */
	b->stage = b->took_states && !states ? CTC_BATCH_STATES_DUE : CTC_BATCH_WRITTEN;
}

void ctc_worker_write(ctc_worker *w, ctc_batch *b)
{
	write_stage(w, b, true);
}

void ctc_worker_write_history(ctc_worker *w, ctc_batch *b)
{
	write_stage(w, b, !w->state_store);
}

void ctc_worker_write_states(ctc_worker *w, ctc_batch *b)
{
	const uint8_t *data = (const uint8_t *)b->states.data;
	size_t off = 0, si = 0; /* bytes and states written */
	ct_error err;
	size_t dups;

	b->contexts_ms = b->state_ms = 0;
	if (b->stage != CTC_BATCH_STATES_DUE)
		return; /* nothing due: it stays as it is, not WRITTEN */
	ctc_store *store = w->state_store ? w->state_store : w->store;
	/* In parts of CTC_STATE_WRITE_CHUNK states: each is a guarded write of
	 * its own (what worker.h says of a state write holds for each part, and
	 * offsets wait for all of them), so the history writes of later batches
	 * are never queued behind one long state write at the server. Contexts
	 * go with the first part. A part does not start while a history write
	 * is under way, but waits for it at most as long as the last part took:
	 * history goes first, and a state write takes at most twice as long. */
	int64_t part_us = 0;
	uint64_t writes_before = atomic_load(&w->history_writes);
	do {
		/* History flowed while the last part was written: it met that part
		 * at the server (a store shared by both, on shared cores), which is
		 * the tail of the emit-to-readable latency. The next part waits as
		 * long as the last one took, so a state write takes at most half
		 * the server while history flows, and all of it when none does (a
		 * backlog's end, a stop, a revoke). */
		uint64_t writes_now = atomic_load(&w->history_writes);
		int64_t until = mono_us() + (writes_now != writes_before ? part_us : 0);
		writes_before = writes_now;
		while (mono_us() < until && !atomic_load(w->abort)) {
			struct timespec ts = {0, 500000};
			nanosleep(&ts, NULL);
		}
		for (until = mono_us() + part_us;
		     atomic_load(&w->history_writing) && mono_us() < until && !atomic_load(w->abort);) {
			struct timespec ts = {0, 500000};
			nanosleep(&ts, NULL);
		}
		int64_t t0 = mono_us();
		size_t end = off, k;
		for (k = 0; k < CTC_STATE_WRITE_CHUNK && end < b->states.len; k++) {
			uint32_t dl;
			if (b->states.len - end < 5) {
				end = b->states.len; /* malformed: the write refuses it */
				break;
			}
			memcpy(&dl, data + end, 4);
			dl = BSON_UINT32_FROM_LE(dl);
			end = dl < 5 || dl > b->states.len - end ? b->states.len : end + dl;
		}
		ctc_write_set ws = {.states_bson = data ? data + off : NULL,
				    .states_bson_len = end - off,
				    .states_expected = expected_of(b, si),
				    .contexts = off == 0 && b->ctxs.n ? &b->ctxs : NULL};
		if (write_batch(w, store, b, &ws, &dups, &err)) {
			/* states and contexts never conflict: fenced, or the shutdown deadline */
			if (b->stage == CTC_BATCH_FENCED)
				ctc_log(CTC_WARN, "state write fenced, not written", "batch=%llu states=%zu generation=%llu",
					(unsigned long long)b->seq, b->nstates, (unsigned long long)b->generation);
			return;
		}
		b->contexts_ms += ws.contexts_ms;
		b->state_ms += ws.state_ms;
		part_us = mono_us() - t0;
		off = end;
		si += k;
	} while (off < b->states.len);
	states_written(w, b);
	b->stage = CTC_BATCH_WRITTEN;
}
