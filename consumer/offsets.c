/*
 * offsets.c - proof of offsets that went back, from the log itself (see offsets.h).
 */
#include "offsets.h"

#include "changetrail/canonical.h"
#include "changetrail/event.h"
#include "ct_internal.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Answers kept: what the current log holds at an offset. */
#define ANSWERS 512
/* Partitions whose going back was logged and counted. */
#define WENT_BACK_MAX 256

typedef struct answer {
	char *topic;
	int32_t partition;
	int64_t offset;
	bool present;   /* a parsable event is there */
	char *id;       /* its event id (present) */
	char sha[65];   /* SHA-256 of its value (present) */
} answer;

typedef struct tp {
	char *topic;
	int32_t partition;
} tp;

struct ctc_offsets_prover {
	rd_kafka_t *rk;
	atomic_uint_fast64_t *went_back;
	answer answers[ANSWERS];
	unsigned next; /* ring: the next slot to overwrite */
	tp logged[WENT_BACK_MAX];
	unsigned nlogged;
};

int ctc_sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t d[32];
	int rc = ct_sha256(data, len, d);
	out[0] = '\0';
	if (rc)
		return rc;
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

ctc_offsets_prover *ctc_offsets_new(rd_kafka_t *rk, atomic_uint_fast64_t *went_back)
{
	ctc_offsets_prover *p = calloc(1, sizeof(*p));
	if (!p) {
		rd_kafka_destroy(rk);
		return NULL;
	}
	p->rk = rk;
	p->went_back = went_back;
	return p;
}

static void answer_clear(answer *a)
{
	free(a->topic);
	free(a->id);
	memset(a, 0, sizeof(*a));
}

void ctc_offsets_reset(ctc_offsets_prover *p)
{
	for (unsigned i = 0; i < ANSWERS; i++)
		answer_clear(&p->answers[i]);
	p->next = 0;
}

void ctc_offsets_free(ctc_offsets_prover *p)
{
	if (!p)
		return;
	ctc_offsets_reset(p);
	for (unsigned i = 0; i < p->nlogged; i++)
		free(p->logged[i].topic);
	if (p->rk) {
		rd_kafka_consumer_close(p->rk);
		rd_kafka_destroy(p->rk);
	}
	free(p);
}

static const answer *find(const ctc_offsets_prover *p, const char *topic, int32_t partition, int64_t offset)
{
	for (unsigned i = 0; i < ANSWERS; i++) {
		const answer *a = &p->answers[i];
		if (a->topic && a->partition == partition && a->offset == offset && !strcmp(a->topic, topic))
			return a;
	}
	return NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what the log holds at (topic, partition, offset) into a (its topic etc. set by the caller). */
static int read_at(ctc_offsets_prover *p, answer *a, int timeout_ms, ct_error *err)
{
	int64_t lo = -1, hi = -1, end = mono_ms() + timeout_ms;
	rd_kafka_resp_err_t e;
	int rc = CT_ETIMEDOUT;

	e = rd_kafka_query_watermark_offsets(p->rk, a->topic, a->partition, &lo, &hi, timeout_ms);
	if (e)
		return ct_error_set(err, CT_EKAFKA, "watermarks of %s [%d]: %s", a->topic, (int)a->partition,
				    rd_kafka_err2str(e));
	if (a->offset < lo || a->offset >= hi) {
		a->present = false; /* not in this log (any more, or yet) */
		return 0;
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	if (!l)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	rd_kafka_topic_partition_list_add(l, a->topic, a->partition)->offset = a->offset;
	e = rd_kafka_assign(p->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e)
		return ct_error_set(err, CT_EKAFKA, "assign %s [%d]: %s", a->topic, (int)a->partition,
				    rd_kafka_err2str(e));
	while (mono_ms() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(p->rk, 100);
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
		    m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
			a->present = false;
			rc = 0;
		} else if (m->err || m->partition != a->partition || m->offset < a->offset) {
			rd_kafka_message_destroy(m); /* transient, or not ours: keep waiting */
			continue;
		} else if (m->offset > a->offset) {
			a->present = false; /* compacted away, or a transaction marker */
			rc = 0;
		} else {
			ct_limits limits;
			ct_event *ev = NULL;
			ct_limits_default(&limits);
			limits.max_bytes = m->len + 1;
			a->present = ct_event_parse(m->payload ? m->payload : "", m->len, &limits, &ev, NULL) == 0 &&
				     (a->id = strdup(ct_event_id(ev))) != NULL;
			/* no digest, no verdict: an empty one would prove nothing either way */
			rc = ctc_sha256_hex(m->payload ? m->payload : "", m->len, a->sha);
			if (rc)
				a->present = false;
			ct_event_free(ev);
		}
		rd_kafka_message_destroy(m);
		break;
	}
	rd_kafka_assign(p->rk, NULL);
	if (rc)
		ct_error_set(err, rc, "no answer from %s [%d] offset %lld within %d ms", a->topic, (int)a->partition,
			     (long long)a->offset, timeout_ms);
	return rc;
}

/* Logs and counts the first going back of (topic, partition). */
static void went_back(ctc_offsets_prover *p, const char *topic, int32_t partition, int64_t last_offset)
{
	for (unsigned i = 0; i < p->nlogged; i++)
		if (p->logged[i].partition == partition && !strcmp(p->logged[i].topic, topic))
			return;
	if (p->nlogged < WENT_BACK_MAX) {
		char *t = strdup(topic);
		if (t)
			p->logged[p->nlogged++] = (tp){t, partition};
	}
	atomic_fetch_add(p->went_back, 1);
	ctc_log(CTC_WARN, "offsets went back", "topic=%s partition=%d state_last_offset=%lld "
		"detail=\"the log does not hold the state's last event there: a new topic incarnation or cluster; "
		"its events are applied as new\"", topic, (int)partition, (long long)last_offset);
}

int ctc_offsets_prove(ctc_offsets_prover *p, const char *topic, int32_t partition, int64_t last_offset,
		      const char *last_id, const char *last_sha, int timeout_ms, ctc_offsets *verdict,
		      ct_error *err)
{
	const answer *a = find(p, topic, partition, last_offset);
	if (!a) {
		answer *slot = &p->answers[p->next];
		answer_clear(slot);
		if (!(slot->topic = strdup(topic)))
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		slot->partition = partition;
		slot->offset = last_offset;
		int rc = read_at(p, slot, timeout_ms, err);
		if (rc) {
			answer_clear(slot);
			return rc;
		}
		p->next = (p->next + 1) % ANSWERS;
		a = slot;
	}
	bool same = last_id && a->present && !strcmp(a->id, last_id) && (!last_sha || !strcmp(a->sha, last_sha));
	*verdict = same ? CTC_OFFSETS_SAME_LOG : CTC_OFFSETS_WENT_BACK;
	if (!same)
		went_back(p, topic, partition, last_offset);
	return 0;
}
