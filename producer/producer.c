/*
 * producer.c - the producer's life cycle and emit path: librdkafka set-up,
 * validation of a change, document preparation (tracking rules, empty
 * updates), hand-over to librdkafka or the spool, the background thread that
 * serves delivery reports and replays the spool, flush and destroy.
 */
#include "producer_internal.h"
#include "ct_jsonscan.h"
#include "ct_textsafe.h"

#include "changetrail/canonical.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVENT_ID_OFFSET (sizeof("{\"schema\":\"changetrail.event.v1\",\"event_id\":\"") - 1)
#define REPLAY_QUEUE_HIGH 20000 /* replay only while librdkafka holds fewer */

static int64_t now_us(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------- delivery */

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	ct_producer *p = opaque;
	char event_id[37] = "", coll[CT_MAX_COLLECTION_BYTES + 1] = "";
	char docid[CT_MAX_DOCUMENT_ID_BYTES + 1] = "";

	atomic_fetch_sub(&p->in_flight, 1);
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		atomic_fetch_add(&p->delivered, 1);
	} else if (p->destroying && p->spool &&
		   (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)) {
		/* Shutting down with the brokers away: keep it for the next run. */
		ct_spool_encode(&p->purged, m->key, m->key_len, m->payload, m->len);
		p->n_purged++;
		return;
	} else {
		atomic_fetch_add(&p->failed, 1);
	}
	if (!p->conf->dr_cb)
		return;
	/* We wrote the payload, so the event id sits at a fixed offset, and
	 * the key is "<collection>/<document_id>" with no '/' in collection. */
	if (m->len >= EVENT_ID_OFFSET + 36)
		memcpy(event_id, (const char *)m->payload + EVENT_ID_OFFSET, 36);
	const char *key = m->key, *slash = key ? memchr(key, '/', m->key_len) : NULL;
	if (slash) {
		size_t cl = (size_t)(slash - key), dl = m->key_len - cl - 1;
		memcpy(coll, key, cl < sizeof(coll) - 1 ? cl : sizeof(coll) - 1);
		memcpy(docid, slash + 1, dl < sizeof(docid) - 1 ? dl : sizeof(docid) - 1);
	}
	ct_delivery d = {event_id, coll, docid, m->err ? CT_EKAFKA : CT_OK,
			 m->err ? rd_kafka_err2str(m->err) : "", m->err ? -1 : m->partition,
			 m->err ? -1 : m->offset};
	p->conf->dr_cb(&d, p->conf->dr_opaque);
}

/* -------------------------------------------------------------- sending */

static rd_kafka_resp_err_t produce(ct_producer *p, const char *key, size_t klen, char *val,
				   size_t vlen, int flags)
{
	return rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_KEY(key, klen),
				 RD_KAFKA_V_VALUE(val, vlen), RD_KAFKA_V_MSGFLAGS(flags),
				 RD_KAFKA_V_HEADER("ct-schema", "changetrail.event.v1", 20),
				 RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
}

static int spool_locked(ct_producer *p, const char *key, size_t klen, const char *val, size_t vlen,
			ct_error *err)
{
	int rc = ct_spool_append(p->spool, key, klen, val, vlen, err);
	if (rc == CT_OK)
		atomic_fetch_add(&p->spooled, 1);
	return rc;
}

/*
 * Takes ownership of `val` (malloc'd) in every case. Order per key holds
 * because, once anything is spooled, everything goes to the spool until the
 * background thread has replayed it all.
 */
int ct_producer_send(ct_producer *p, const char *key, size_t klen, const char *val, size_t vlen,
		     ct_error *err)
{
	char *v = (char *)val;
	int rc = CT_OK;
	int64_t deadline = 0;

	for (;;) {
		if (p->spool && atomic_load(&p->spooling)) {
			pthread_mutex_lock(&p->spool_lock);
			if (atomic_load(&p->spooling)) {
				rc = spool_locked(p, key, klen, v, vlen, err);
				pthread_mutex_unlock(&p->spool_lock);
				goto out;
			}
			pthread_mutex_unlock(&p->spool_lock);
		}
		atomic_fetch_add(&p->in_flight, 1);
		rd_kafka_resp_err_t e = produce(p, key, klen, v, vlen, RD_KAFKA_MSG_F_FREE);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			return CT_OK; /* librdkafka owns v now */
		atomic_fetch_sub(&p->in_flight, 1);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			rc = ct_error_set(err, CT_EKAFKA, "kafka: %s", rd_kafka_err2str(e));
			goto out;
		}
		atomic_fetch_add(&p->queue_full, 1);
		if (p->spool) {
			pthread_mutex_lock(&p->spool_lock);
			atomic_store(&p->spooling, true);
			rc = spool_locked(p, key, klen, v, vlen, err);
			pthread_mutex_unlock(&p->spool_lock);
			goto out;
		}
		if (p->conf->queue_fail) {
			rc = ct_error_set(err, CT_EQUEUEFULL, "queue full (policy 'fail')");
			goto out;
		}
		if (!deadline)
			deadline = now_us(CLOCK_MONOTONIC) + (int64_t)p->conf->queue_block_ms * 1000;
		if (now_us(CLOCK_MONOTONIC) >= deadline) {
			rc = ct_error_set(err, CT_EQUEUEFULL, "queue full for %d ms (queue.block.ms)",
					  p->conf->queue_block_ms);
			goto out;
		}
		sleep_ms(1);
	}
out:
	free(v);
	return rc;
}

/* Hands spooled events back to librdkafka while it has room. */
static void replay_some(ct_producer *p)
{
	pthread_mutex_lock(&p->spool_lock);
	while (atomic_load(&p->spooling) && rd_kafka_outq_len(p->rk) < REPLAY_QUEUE_HIGH) {
		char *key = NULL, *val = NULL;
		size_t klen, vlen;
		int r = ct_spool_peek(p->spool, &key, &klen, &val, &vlen, NULL);
		if (r <= 0) {
			/* Drained: leave spool mode once librdkafka delivered the
			 * replayed events, so that a crash cannot lose them. */
			if (r == 0 && rd_kafka_outq_len(p->rk) == 0 && ct_spool_reset_if_empty(p->spool) == 1)
				atomic_store(&p->spooling, false);
			break;
		}
		atomic_fetch_add(&p->in_flight, 1);
		rd_kafka_resp_err_t e = produce(p, key, klen, val, vlen, RD_KAFKA_MSG_F_FREE);
		free(key);
		if (e) {
			atomic_fetch_sub(&p->in_flight, 1);
			free(val);
			break; /* queue full again: retry later */
		}
		ct_spool_consume(p->spool);
		atomic_fetch_add(&p->spool_replayed, 1);
	}
	pthread_mutex_unlock(&p->spool_lock);
}

static void service(ct_producer *p, int poll_ms)
{
	rd_kafka_poll(p->rk, poll_ms);
	if (p->spool && atomic_load(&p->spooling))
		replay_some(p);
}

static void *background(void *arg)
{
	ct_producer *p = arg;
	while (!atomic_load(&p->stop))
		service(p, 50);
	return NULL;
}

/* ------------------------------------------------------------- lifecycle */

/* Client-level errors (brokers down, authentication failed): librdkafka keeps
 * retrying them, so they are remembered for ct_producer_flush()'s message.
 * The text is librdkafka's, which never holds sasl.password. */
static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
	ct_producer *p = opaque;
	pthread_mutex_lock(&p->err_lock);
	snprintf(p->last_error, sizeof(p->last_error), "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)code),
		 reason);
	pthread_mutex_unlock(&p->err_lock);
}

/*
 * The default log line (producer.h, ct_log_cb): logfmt, one write(2) so that
 * lines from several threads do not interleave, librdkafka's text escaped
 * (control characters, invalid UTF-8, quotes) so that it stays one line.
 */
static void default_log(int level, const char *facility, const char *message)
{
	static const char *const names[] = {"error", "error", "error", "error", "warn", "info", "info", "debug"};
	char ts[80], esc[16];
	struct timespec now;
	struct tm tm;
	ct_buf b = CT_BUF_INIT;
	b.max = 8192;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000));
	ct_buf_puts(&b, "ts=");
	ct_buf_puts(&b, ts);
	ct_buf_puts(&b, " level=");
	ct_buf_puts(&b, names[level < 0 ? 0 : level > 7 ? 7 : level]);
	ct_buf_puts(&b, " component=changetrail-producer facility=");
	for (const char *f = facility ? facility : "?"; *f; f++) /* librdkafka's tags are short words */
		ct_buf_putc(&b, (*f >= 'A' && *f <= 'Z') || (*f >= 'a' && *f <= 'z') || (*f >= '0' && *f <= '9') ? *f : '_');
	ct_buf_puts(&b, " msg=\"");
	size_t n = message ? strlen(message) : 0;
	for (size_t i = 0, used; i < n; i += used) {
		if (message[i] == '"') {
			ct_buf_puts(&b, "\\\"");
			used = 1;
			continue;
		}
		size_t e = ct_text_escape_char(message + i, n - i, 0, esc, &used);
		if (e)
			ct_buf_put(&b, esc, e);
		else
			ct_buf_put(&b, message + i, used);
	}
	ct_buf_puts(&b, "\"\n");
	if (b.failed) { /* over 8 KiB: cut, still one line */
		ct_buf_free(&b);
		return;
	}
	ssize_t w = write(STDERR_FILENO, b.data, b.len);
	(void)w;
	ct_buf_free(&b);
}

/* librdkafka's log lines go to the application's callback or the default line, never raw to stderr. */
static void log_cb(const rd_kafka_t *rk, int level, const char *facility, const char *message)
{
	const ct_producer *p = rk ? rd_kafka_opaque(rk) : NULL;
	if (p && p->conf->log_cb)
		p->conf->log_cb(level, facility ? facility : "", message ? message : "", p->conf->log_opaque);
	else
		default_log(level, facility, message);
}

static int kafka_set(rd_kafka_conf_t *kc, const char *k, const char *v, ct_error *err)
{
	char errstr[512];
	if (rd_kafka_conf_set(kc, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		/* Never echo the value: it may be a password. */
		return ct_error_set(err, CT_ECONFIG, "config 'kafka.%.64s': %s", k, errstr);
	}
	return CT_OK;
}

int ct_producer_new(const ct_producer_config *conf, ct_producer **out, ct_error *err)
{
	ct_producer *p = NULL;
	rd_kafka_conf_t *kc = NULL;
	char errstr[512];
	int rc = CT_OK;
	ct_buf b = CT_BUF_INIT;

	if (!conf || !out)
		return ct_error_set(err, CT_EINVAL, "producer: NULL argument");
	if (!conf->source)
		return ct_error_set(err, CT_ECONFIG, "config 'source': required (the application's name)");
	p = calloc(1, sizeof(*p));
	if (!p || !(p->conf = ct_producer_config_dup(conf))) {
		rc = ct_error_set(err, CT_ENOMEM, "producer: out of memory");
		goto out;
	}
	pthread_mutex_init(&p->spool_lock, NULL);
	pthread_mutex_init(&p->err_lock, NULL);
	ct_encode_string(&b, conf->source, strlen(conf->source));
	if (!(p->source_json = ct_buf_detach(&b, NULL))) {
		rc = ct_error_set(err, CT_ENOMEM, "producer: out of memory");
		goto out;
	}

	kc = rd_kafka_conf_new();
	static const char *const defaults[][2] = {
		{"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "10"},
		/* TCP_NODELAY: a produce request sent while the previous one is
		 * unanswered is not held back by Nagle's algorithm (docs/producer.md) */
		{"socket.nagle.disable", "true"},
		{"compression.type", "lz4"}, {"message.timeout.ms", "0"},
		{"client.id", "changetrail-producer"},
	};
	for (size_t i = 0; i < CT_ARRAY_LEN(defaults); i++)
		if ((rc = kafka_set(kc, defaults[i][0], defaults[i][1], err)))
			goto out;
	for (size_t i = 0; i < conf->n_kafka; i++)
		if ((rc = kafka_set(kc, conf->kafka[i].key, conf->kafka[i].value, err)))
			goto out;
	rd_kafka_conf_set_dr_msg_cb(kc, dr_msg_cb);
	rd_kafka_conf_set_error_cb(kc, error_cb);
	rd_kafka_conf_set_log_cb(kc, log_cb);
	rd_kafka_conf_set_opaque(kc, p);

	if (conf->spool_path) {
		if ((rc = ct_spool_open(&p->spool, conf->spool_path, conf->spool_max_bytes, conf->spool_fsync,
					err)))
			goto out;
		/* A previous run's events go out before any new one. */
		atomic_store(&p->spooling, p->spool->records > 0);
	}

	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
	if (!p->rk) {
		rc = ct_error_set(err, CT_EKAFKA, "kafka: %s", errstr);
		goto out;
	}
	kc = NULL; /* owned by rk now */
	p->rkt = rd_kafka_topic_new(p->rk, conf->topic, NULL);
	if (!p->rkt) {
		rc = ct_error_set(err, CT_EKAFKA, "kafka topic '%s': %s", conf->topic,
				  rd_kafka_err2str(rd_kafka_last_error()));
		goto out;
	}
	if (pthread_create(&p->thread, NULL, background, p)) {
		rc = ct_error_set(err, CT_ENOMEM, "producer: cannot start its thread");
		goto out;
	}
	*out = p;
	return CT_OK;
out:
	if (kc)
		rd_kafka_conf_destroy(kc);
	if (p) {
		if (p->rkt)
			rd_kafka_topic_destroy(p->rkt);
		if (p->rk)
			rd_kafka_destroy(p->rk);
		ct_spool_close(p->spool);
		ct_producer_config_destroy(p->conf);
		free(p->source_json);
		pthread_mutex_destroy(&p->spool_lock);
		pthread_mutex_destroy(&p->err_lock);
		free(p);
	}
	return rc;
}

/* Events not yet delivered or failed. librdkafka's outq_len would also
 * count its own protocol requests, which are not events. */
static int pending(ct_producer *p)
{
	return atomic_load(&p->in_flight) > 0 || (p->spool && atomic_load(&p->spooling));
}

int ct_producer_flush(ct_producer *p, int timeout_ms, ct_error *err)
{
	if (!p)
		return ct_error_set(err, CT_EINVAL, "producer: NULL");
	int64_t deadline = now_us(CLOCK_MONOTONIC) + (int64_t)timeout_ms * 1000;
	while (pending(p)) {
		if (now_us(CLOCK_MONOTONIC) >= deadline) {
			char last[sizeof(p->last_error)];
			pthread_mutex_lock(&p->err_lock);
			memcpy(last, p->last_error, sizeof(last));
			pthread_mutex_unlock(&p->err_lock);
			return ct_error_set(err, CT_ETIMEDOUT, "flush: %llu events not yet delivered after %d ms%s%s",
					    (unsigned long long)atomic_load(&p->in_flight), timeout_ms,
					    *last ? "; last kafka error: " : "", last);
		}
		sleep_ms(2);
	}
	return CT_OK;
}

int ct_producer_destroy(ct_producer *p, int timeout_ms)
{
	int lost = 0;
	if (!p)
		return 0;
	uint64_t failed_before;
	atomic_store(&p->stop, 1);
	pthread_join(p->thread, NULL);

	int64_t deadline = now_us(CLOCK_MONOTONIC) + (int64_t)timeout_ms * 1000;
	while (pending(p) && now_us(CLOCK_MONOTONIC) < deadline)
		service(p, 10);
	failed_before = atomic_load(&p->failed);
	if (atomic_load(&p->in_flight) > 0) {
		p->destroying = 1;
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(p->rk, 0);
		/* With a spool, the purged events were collected for it (dr_msg_cb);
		 * without one they failed and are gone with the process. */
		if (p->spool) {
			if (ct_spool_prepend(p->spool, &p->purged, p->n_purged, NULL))
				lost = (int)p->n_purged;
		} else {
			lost = (int)(atomic_load(&p->failed) - failed_before);
		}
	}
	rd_kafka_topic_destroy(p->rkt);
	rd_kafka_destroy(p->rk);
	ct_spool_close(p->spool);
	ct_buf_free(&p->purged);
	ct_producer_config_destroy(p->conf);
	free(p->source_json);
	pthread_mutex_destroy(&p->spool_lock);
	pthread_mutex_destroy(&p->err_lock);
	free(p);
	return lost;
}

void ct_producer_stats_get(ct_producer *p, ct_producer_stats *s)
{
	if (!p || !s)
		return;
	s->emitted = atomic_load(&p->emitted);
	s->delivered = atomic_load(&p->delivered);
	s->failed = atomic_load(&p->failed);
	s->unchanged = atomic_load(&p->unchanged);
	s->queue_full = atomic_load(&p->queue_full);
	s->rejected = atomic_load(&p->rejected);
	s->spooled = atomic_load(&p->spooled);
	s->spool_replayed = atomic_load(&p->spool_replayed);
	s->in_flight = atomic_load(&p->in_flight);
	/* Read under the lock: the spool's offsets are not atomic. */
	s->spool_bytes = 0;
	if (p->spool) {
		pthread_mutex_lock(&p->spool_lock);
		s->spool_bytes = p->spool->write_off - p->spool->read_off;
		pthread_mutex_unlock(&p->spool_lock);
	}
}
