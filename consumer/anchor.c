/*
 * anchor.c - anchored chains (see anchor.h): the Merkle root and the
 * anchor record (pure), and the publisher that gathers the heads of the
 * state writes and sends one record every interval_ms to a Kafka topic
 * and/or an append-only file.
 */
#include "anchor.h"

#include "changetrail/canonical.h"
#include "changetrail/event.h"
#include "ct_internal.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- heads ---- */

static bool is_hex64(const char *s)
{
	size_t i = 0;
	for (; s && s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

int ctc_anchor_heads_add(ctc_anchor_heads *hs, const char *collection, const char *document_id,
			 int64_t version, const char *hash, ct_error *err)
{
	if (!is_hex64(hash) || version < 1)
		return ct_error_set(err, CT_EINVAL, "anchor head: bad hash or version");
	if (hs->n == hs->cap) {
		size_t cap = hs->cap ? hs->cap * 2 : 64;
		ctc_anchor_head *v = realloc(hs->v, cap * sizeof(*v));
		if (!v)
			return ct_error_set(err, CT_ENOMEM, "out of memory");
		hs->v = v;
		hs->cap = cap;
	}
	ctc_anchor_head *h = &hs->v[hs->n];
	h->collection = strdup(collection);
	h->document_id = strdup(document_id);
	if (!h->collection || !h->document_id) {
		free(h->collection);
		free(h->document_id);
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	}
	h->version = version;
	memcpy(h->hash, hash, 65);
	hs->n++;
	return 0;
}

int ctc_anchor_heads_move(ctc_anchor_heads *to, ctc_anchor_heads *from)
{
	if (!to->n && !to->v) {
		*to = *from;
		memset(from, 0, sizeof(*from));
		return 0;
	}
	if (to->n + from->n > to->cap) {
		size_t cap = to->n + from->n;
		ctc_anchor_head *v = realloc(to->v, cap * sizeof(*v));
		if (!v)
			return CT_ENOMEM;
		to->v = v;
		to->cap = cap;
	}
	if (from->n)
		memcpy(to->v + to->n, from->v, from->n * sizeof(*from->v));
	to->n += from->n;
	free(from->v);
	memset(from, 0, sizeof(*from));
	return 0;
}

static void head_free(ctc_anchor_head *h)
{
	free(h->collection);
	free(h->document_id);
}

void ctc_anchor_heads_free(ctc_anchor_heads *hs)
{
	for (size_t i = 0; i < hs->n; i++)
		head_free(&hs->v[i]);
	free(hs->v);
	memset(hs, 0, sizeof(*hs));
}

static int head_cmp(const void *a, const void *b)
{
	const ctc_anchor_head *x = a, *y = b;
	int c = strcmp(x->collection, y->collection);
	if (!c)
		c = strcmp(x->document_id, y->document_id);
	if (!c)
		c = x->version < y->version ? -1 : x->version > y->version;
	return c;
}

void ctc_anchor_heads_compact(ctc_anchor_heads *hs)
{
	size_t k = 0;
	if (!hs->n)
		return;
	qsort(hs->v, hs->n, sizeof(*hs->v), head_cmp);
	for (size_t i = 0; i < hs->n; i++) {
		bool last_of_doc = i + 1 == hs->n || strcmp(hs->v[i].collection, hs->v[i + 1].collection) ||
				   strcmp(hs->v[i].document_id, hs->v[i + 1].document_id);
		if (last_of_doc)
			hs->v[k++] = hs->v[i];
		else
			head_free(&hs->v[i]);
	}
	hs->n = k;
}

/* ---- Merkle tree ---- */

static json_t *leaf_json(const ctc_anchor_head *h)
{
	return json_pack("{s:s, s:s, s:I, s:s}", "collection", h->collection, "document_id", h->document_id,
			 "version", (json_int_t)h->version, "hash", h->hash);
}

int ctc_anchor_leaf_hash(const ctc_anchor_head *h, uint8_t out[32], ct_error *err)
{
	json_t *j = leaf_json(h);
	char *text = NULL;
	size_t len;
	int rc = j ? ct_canonical_dump(j, &text, &len, err) : ct_error_set(err, CT_ENOMEM, "out of memory");
	if (!rc) {
		ct_sha256_ctx c;
		const uint8_t tag = 0x00;
		ct_sha256_init(&c);
		ct_sha256_update(&c, &tag, 1);
		ct_sha256_update(&c, text, len);
		if ((rc = ct_sha256_final(&c, out)))
			ct_error_set(err, rc, "leaf hash: SHA-256 failed");
	}
	free(text);
	json_decref(j);
	return rc;
}

static int node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	ct_sha256_ctx c;
	const uint8_t tag = 0x01;
	ct_sha256_init(&c);
	ct_sha256_update(&c, &tag, 1);
	ct_sha256_update(&c, l, 32);
	ct_sha256_update(&c, r, 32);
	return ct_sha256_final(&c, out);
}

/* RFC 6962 2.1: MTH(D[n]) = H(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two < n. */
static int mth(const uint8_t (*leaf)[32], size_t n, uint8_t out[32])
{
	if (n == 1) {
		memcpy(out, leaf[0], 32);
		return 0;
	}
	size_t k = 1;
	while (k * 2 < n)
		k *= 2;
	uint8_t l[32], r[32];
	int rc = mth(leaf, k, l);
	if (!rc)
		rc = mth(leaf + k, n - k, r);
	return rc ? rc : node_hash(l, r, out);
}

int ctc_anchor_merkle_root(const ctc_anchor_head *leaves, size_t n, char out[65], ct_error *err)
{
	uint8_t root[32];
	if (n == 0) {
		int rc = ct_sha256("", 0, root);
		if (rc)
			return ct_error_set(err, rc, "merkle root: SHA-256 failed");
		ct_hex(root, 32, out);
		return 0;
	}
	uint8_t (*lh)[32] = malloc(n * sizeof(*lh));
	if (!lh)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int rc = ctc_anchor_leaf_hash(&leaves[i], lh[i], err);
		if (rc) {
			free(lh);
			return rc;
		}
	}
	int rc = mth((const uint8_t(*)[32])lh, n, root);
	free(lh);
	if (rc)
		return ct_error_set(err, rc, "merkle root: SHA-256 failed");
	ct_hex(root, 32, out);
	return 0;
}

int ctc_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t len, uint8_t out[32])
{
	uint8_t k[64] = {0}, pad[64], inner[32];
	ct_sha256_ctx c;
	int rc;
	if (key_len > 64) {
		if ((rc = ct_sha256(key, key_len, k)))
			return rc;
	} else if (key_len)
		memcpy(k, key, key_len);
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	ct_sha256_init(&c);
	ct_sha256_update(&c, pad, 64);
	ct_sha256_update(&c, msg, len);
	if ((rc = ct_sha256_final(&c, inner)))
		return rc;
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	ct_sha256_init(&c);
	ct_sha256_update(&c, pad, 64);
	ct_sha256_update(&c, inner, 32);
	return ct_sha256_final(&c, out);
}

/* ---- records ---- */

static int hmac_hex(const json_t *rec, const uint8_t *key, size_t key_len, char out[65], ct_error *err)
{
	char *text = NULL;
	size_t len;
	uint8_t mac[32];
	int rc = ct_canonical_dump(rec, &text, &len, err);
	if (rc)
		return rc;
	rc = ctc_hmac_sha256(key, key_len, text, len, mac);
	free(text);
	if (rc)
		return ct_error_set(err, rc, "HMAC: SHA-256 failed");
	ct_hex(mac, 32, out);
	return 0;
}

int ctc_anchor_build(const ctc_anchor_meta *meta, const ctc_anchor_head *leaves, size_t n,
		     const char *prev, const uint8_t *key, size_t key_len, char **line, char hash[65],
		     ct_error *err)
{
	char ts[32], root[65], mac[65];
	json_t *rec = NULL, *arr = json_array();
	size_t len;
	int rc;

	*line = NULL;
	if (!arr)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *l = leaf_json(&leaves[i]);
		if (!l || json_array_append_new(arr, l)) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
	}
	if ((rc = ctc_anchor_merkle_root(leaves, n, root, err)))
		goto out;
	if (ct_time_format_rfc3339_us(meta->time_us, ts)) {
		rc = ct_error_set(err, CT_EINVAL, "anchor time out of range");
		goto out;
	}
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:O, s:s, s:o}", "schema",
			CTC_ANCHOR_SCHEMA, "worker", meta->worker, "group", meta->group, "host", meta->host, "time",
			ts, "seq", (json_int_t)meta->seq, "part", (json_int_t)meta->part, "parts",
			(json_int_t)meta->parts, "count", (json_int_t)n, "leaves", arr, "merkle_root", root,
			"prev_anchor", prev ? json_string(prev) : json_null());
	if (!rec) {
		rc = ct_error_set(err, CT_ENOMEM, "out of memory");
		goto out;
	}
	if (key_len) {
		if ((rc = hmac_hex(rec, key, key_len, mac, err)))
			goto out;
		json_object_set_new(rec, "hmac", json_string(mac));
	}
	if ((rc = ct_canonical_dump(rec, line, &len, err)))
		goto out;
	uint8_t d[32];
	if ((rc = ct_sha256(*line, len, d))) {
		ct_error_set(err, rc, "anchor hash: SHA-256 failed");
		free(*line);
		*line = NULL;
		goto out;
	}
	ct_hex(d, 32, hash);
out:
	json_decref(arr);
	json_decref(rec);
	return rc;
}

/* Constant-time comparison of two hex MACs (the verifier may run where others time it). */
static bool same_mac(const char *a, const char *b)
{
	size_t n = strlen(a);
	unsigned diff = n != strlen(b);
	for (size_t i = 0; i < n && i < 64; i++)
		diff |= (unsigned)(a[i] ^ b[i]);
	return !diff && n == 64;
}

int ctc_anchor_check(const char *text, size_t len, const uint8_t *key, size_t key_len, json_t **rec,
		     char hash[65], ct_error *err)
{
	json_error_t jerr;
	ctc_anchor_heads hs = {0};
	char root[65];
	int rc = 0;
	json_t *r;

	*rec = NULL;
	if (len > CTC_ANCHOR_MAX_RECORD_BYTES)
		return ct_error_set(err, CT_EINVAL, "record larger than %d bytes", CTC_ANCHOR_MAX_RECORD_BYTES);
	uint8_t d[32];
	if ((rc = ct_sha256(text, len, d)))
		return ct_error_set(err, rc, "anchor hash: SHA-256 failed");
	ct_hex(d, 32, hash);
	if (!(r = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(r)) {
		json_decref(r);
		return ct_error_set(err, CT_EINVAL, "not a JSON object");
	}
	*rec = r;
	const json_t *leaves = json_object_get(r, "leaves"), *prev = json_object_get(r, "prev_anchor");
	const char *schema = json_string_value(json_object_get(r, "schema"));
	if (!schema || strcmp(schema, CTC_ANCHOR_SCHEMA))
		return ct_error_set(err, CT_EINVAL, "schema is not %s", CTC_ANCHOR_SCHEMA);
	if (!json_is_string(json_object_get(r, "worker")) || !json_is_integer(json_object_get(r, "seq")) ||
	    !json_is_string(json_object_get(r, "time")) || !json_is_array(leaves) ||
	    !json_is_integer(json_object_get(r, "count")) || !(json_is_null(prev) || is_hex64(json_string_value(prev))) ||
	    !is_hex64(json_string_value(json_object_get(r, "merkle_root"))))
		return ct_error_set(err, CT_EINVAL, "missing or malformed fields");
	if ((size_t)json_integer_value(json_object_get(r, "count")) != json_array_size(leaves))
		return ct_error_set(err, CT_EINVAL, "count is not the number of leaves");
	size_t i;
	json_t *l;
	json_array_foreach(leaves, i, l) {
		const char *c = json_string_value(json_object_get(l, "collection"));
		const char *id = json_string_value(json_object_get(l, "document_id"));
		const json_t *v = json_object_get(l, "version");
		if (!json_is_object(l) || json_object_size(l) != 4 || !c || !id || !json_is_integer(v) ||
		    (rc = ctc_anchor_heads_add(&hs, c, id, json_integer_value(v),
					       json_string_value(json_object_get(l, "hash")), err))) {
			rc = ct_error_set(err, CT_EINVAL, "leaf %zu malformed", i);
			goto out;
		}
		if (i && head_cmp(&hs.v[i - 1], &hs.v[i]) >= 0) {
			rc = ct_error_set(err, CT_EINVAL, "leaves not sorted (leaf %zu)", i);
			goto out;
		}
	}
	if ((rc = ctc_anchor_merkle_root(hs.v, hs.n, root, err)))
		goto out;
	if (strcmp(root, json_string_value(json_object_get(r, "merkle_root")))) {
		rc = ct_error_set(err, CT_EINVAL, "merkle_root does not match the leaves");
		goto out;
	}
	if (key_len) {
		const char *mac = json_string_value(json_object_get(r, "hmac"));
		char want[65];
		json_t *body = json_copy(r);
		if (!body) {
			rc = ct_error_set(err, CT_ENOMEM, "out of memory");
			goto out;
		}
		json_object_del(body, "hmac");
		rc = hmac_hex(body, key, key_len, want, err);
		json_decref(body);
		if (rc)
			goto out;
		if (!mac) {
			rc = ct_error_set(err, CT_EINVAL, "no hmac (a key was given)");
			goto out;
		}
		if (!same_mac(mac, want)) {
			rc = ct_error_set(err, CT_EINVAL, "hmac does not match");
			goto out;
		}
	}
out:
	ctc_anchor_heads_free(&hs);
	return rc;
}

int ctc_anchor_read_key(const char *path, uint8_t key[CTC_ANCHOR_MAX_KEY_BYTES], size_t *key_len,
			ct_error *err)
{
	uint8_t buf[CTC_ANCHOR_MAX_KEY_BYTES + 2];
	FILE *f = fopen(path, "rb");
	*key_len = 0;
	if (!f)
		return ct_error_set(err, CT_EIO, "hmac key file %s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof(buf), f);
	bool bad = ferror(f);
	fclose(f);
	if (bad)
		return ct_error_set(err, CT_EIO, "hmac key file %s: read error", path);
	if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	if (n < CTC_ANCHOR_MIN_KEY_BYTES || n > CTC_ANCHOR_MAX_KEY_BYTES) {
		memset(buf, 0, sizeof(buf));
		return ct_error_set(err, CT_ECONFIG, "hmac key file %s must hold %d..%d bytes", path,
				    CTC_ANCHOR_MIN_KEY_BYTES, CTC_ANCHOR_MAX_KEY_BYTES);
	}
	memcpy(key, buf, n);
	memset(buf, 0, sizeof(buf));
	*key_len = n;
	return 0;
}

/* ---- publisher ---- */

struct ctc_anchor {
	const ctc_config *cfg;
	ctc_metrics *metrics;
	rd_kafka_t *producer;
	int fd; /* the file target, -1 = none */
	uint8_t key[CTC_ANCHOR_MAX_KEY_BYTES];
	size_t key_len;
	char worker[128], host[64];
	int64_t seq;
	char prev[65];
	bool has_prev;
	int64_t last_us; /* monotonic, the last publication (or the start) */
	pthread_mutex_t mu;
	ctc_anchor_heads heads; /* guarded by mu */
};

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int ctc_anchor_new(const ctc_config *cfg, ctc_metrics *m, ctc_anchor **out, ct_error *err)
{
	ctc_anchor *a;
	char id[37];
	int rc;

	*out = NULL;
	if (!*cfg->anchor_topic && !*cfg->anchor_file)
		return 0;
	if (!(a = calloc(1, sizeof(*a))))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	a->cfg = cfg;
	a->metrics = m;
	a->fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	if (*cfg->anchor_hmac_key_file &&
	    (rc = ctc_anchor_read_key(cfg->anchor_hmac_key_file, a->key, &a->key_len, err)))
		goto fail;
	if (*cfg->anchor_file &&
	    (a->fd = open(cfg->anchor_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		rc = ct_error_set(err, CT_EIO, "[anchor] file %s: %s", cfg->anchor_file, strerror(errno));
		goto fail;
	}
	if (gethostname(a->host, sizeof(a->host)))
		snprintf(a->host, sizeof(a->host), "unknown");
	a->host[sizeof(a->host) - 1] = '\0';
	/* unique per process run: each run is its own chain of anchors */
	if ((rc = ct_uuid7_new(id, err)))
		goto fail;
	snprintf(a->worker, sizeof(a->worker), "%s/%ld/%s", a->host, (long)getpid(), id);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	a->last_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	*out = a;
	return 0;
fail:
	ctc_anchor_free(a);
	return rc;
}

void ctc_anchor_set_producer(ctc_anchor *a, rd_kafka_t *producer)
{
	a->producer = producer;
}

void ctc_anchor_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	ctc_anchor *a = opaque;
	if (!m->err)
		return;
	/* produce it again, same bytes: a lost anchor would break the chain verify checks */
	atomic_fetch_add(&a->metrics->anchor_errors, 1);
	ctc_log(CTC_WARN, "anchor delivery failed, retrying", "error=\"%s\"", rd_kafka_err2str(m->err));
	if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(a->cfg->anchor_topic), RD_KAFKA_V_VALUE(m->payload, m->len),
			      RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			      RD_KAFKA_V_END))
		ctc_log(CTC_ERROR, "anchor lost", "reason=produce_failed");
}

void ctc_anchor_add(ctc_anchor *a, ctc_anchor_heads *hs)
{
	if (!a || !hs->n)
		return;
	pthread_mutex_lock(&a->mu);
	if (ctc_anchor_heads_move(&a->heads, hs))
		ctc_log(CTC_ERROR, "out of memory", "what=anchor_heads");
	/* a document written at every state write must not grow this without
	 * bound between two anchors: keep its latest head only */
	else if (a->heads.n > 4 * (size_t)a->cfg->anchor_max_leaves + 1024)
		ctc_anchor_heads_compact(&a->heads);
	pthread_mutex_unlock(&a->mu);
	ctc_anchor_heads_free(hs);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One record to every target. The file gets it with its newline in one write, then fsync. */
static void publish_one(ctc_anchor *a, char *line)
{
	size_t len = strlen(line);
	bool ok = true;
	if (a->fd >= 0) {
		line[len] = '\n';
		if (write_all(a->fd, line, len + 1) || fsync(a->fd)) {
			ok = false;
			ctc_log(CTC_ERROR, "anchor file write failed", "file=%s error=\"%s\"", a->cfg->anchor_file,
				strerror(errno));
		}
		line[len] = '\0';
	}
	if (*a->cfg->anchor_topic && a->producer &&
	    rd_kafka_producev(a->producer, RD_KAFKA_V_TOPIC(a->cfg->anchor_topic), RD_KAFKA_V_VALUE(line, len),
			      RD_KAFKA_V_KEY(a->worker, strlen(a->worker)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			      RD_KAFKA_V_END)) {
		ok = false;
		ctc_log(CTC_ERROR, "anchor produce failed", "topic=%s", a->cfg->anchor_topic);
	}
	if (ok) {
		atomic_fetch_add(&a->metrics->anchors_published, 1);
		atomic_store(&a->metrics->last_anchor_unix_ms, wall_us() / 1000);
	} else {
		atomic_fetch_add(&a->metrics->anchor_errors, 1);
	}
}

void ctc_anchor_tick(ctc_anchor *a, int64_t now_us, bool force)
{
	ctc_anchor_heads hs;
	ct_error err;
	if (!a)
		return;
	if (a->producer)
		rd_kafka_poll(a->producer, 0);
	if (!force && now_us - a->last_us < a->cfg->anchor_interval_ms * 1000)
		return;
	pthread_mutex_lock(&a->mu);
	hs = a->heads;
	memset(&a->heads, 0, sizeof(a->heads));
	pthread_mutex_unlock(&a->mu);
	a->last_us = now_us;
	if (!hs.n)
		return;
	ctc_anchor_heads_compact(&hs);
	size_t max = (size_t)a->cfg->anchor_max_leaves, parts = (hs.n + max - 1) / max;
	int64_t t = wall_us();
	a->seq++;
	for (size_t p = 0; p < parts; p++) {
		size_t from = p * max, n = hs.n - from < max ? hs.n - from : max;
		ctc_anchor_meta meta = {.worker = a->worker, .group = a->cfg->group_id, .host = a->host,
					.time_us = t, .seq = a->seq, .part = (int64_t)p + 1, .parts = (int64_t)parts};
		char *line = NULL, hash[65];
		if (ctc_anchor_build(&meta, hs.v + from, n, a->has_prev ? a->prev : NULL, a->key, a->key_len,
				     &line, hash, &err)) {
			ctc_log(CTC_ERROR, "anchor not built", "error=\"%s\"", err.message);
			atomic_fetch_add(&a->metrics->anchor_errors, 1);
			continue;
		}
		/* room for the newline publish_one() puts in place of the NUL */
		char *grown = realloc(line, strlen(line) + 2);
		if (grown) {
			line = grown;
			publish_one(a, line);
			memcpy(a->prev, hash, 65);
			a->has_prev = true;
			ctc_log(CTC_INFO, "anchor published", "seq=%lld part=%zu parts=%zu leaves=%zu",
				(long long)a->seq, p + 1, parts, n);
		}
		free(line);
	}
	ctc_anchor_heads_free(&hs);
}

void ctc_anchor_close(ctc_anchor *a, int timeout_ms)
{
	if (!a)
		return;
	ctc_anchor_tick(a, a->last_us, true);
	if (a->producer && rd_kafka_flush(a->producer, timeout_ms))
		ctc_log(CTC_ERROR, "anchors not delivered before the deadline", "waiting=%d",
			rd_kafka_outq_len(a->producer));
}

void ctc_anchor_free(ctc_anchor *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	ctc_anchor_heads_free(&a->heads);
	pthread_mutex_destroy(&a->mu);
	memset(a->key, 0, sizeof(a->key));
	free(a);
}
