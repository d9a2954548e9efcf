/*
 * config.c - the producer's configuration: keys, defaults, validation, and
 * the per-collection tracking rules.
 */
#include "producer_internal.h"

#include <stdlib.h>
#include <string.h>

ct_producer_config *ct_producer_config_new(void)
{
	ct_producer_config *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->topic = strdup("changetrail.events");
	c->queue_block_ms = 100;
	c->spool_max_bytes = 1ull << 30;
	c->max_document_bytes = 1u << 20;
	if (!c->topic) {
		free(c);
		return NULL;
	}
	return c;
}

static void free_list(char **l)
{
	if (!l)
		return;
	for (char **p = l; *p; p++)
		free(*p);
	free(l);
}

void ct_producer_config_destroy(ct_producer_config *c)
{
	if (!c)
		return;
	free(c->source);
	free(c->topic);
	free(c->spool_path);
	for (size_t i = 0; i < c->n_kafka; i++) {
		free(c->kafka[i].key);
		free(c->kafka[i].value);
	}
	free(c->kafka);
	for (size_t i = 0; i < c->n_rules; i++) {
		free(c->rules[i].collection);
		free_list(c->rules[i].include);
		free_list(c->rules[i].exclude);
	}
	free(c->rules);
	free(c);
}

static int set_str(char **dst, const char *v)
{
	char *d = strdup(v);
	if (!d)
		return -1;
	free(*dst);
	*dst = d;
	return 0;
}

static int parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (!*v || *v == '-')
		return -1;
	unsigned long long x = strtoull(v, &end, 10);
	if (*end || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

/* "a, b.c ,d" -> {"a","b.c","d",NULL}; empty items are errors. */
static int split_list(const char *v, char ***out)
{
	size_t n = 0, cap = 8;
	char **l = calloc(cap + 1, sizeof(*l));
	const char *p = v;
	if (!l)
		return -1;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		while (len && p[len - 1] == ' ')
			len--;
		if (!len || n >= CT_TRACK_MAX_PATHS)
			goto fail;
		if (n == cap) {
			char **nl = realloc(l, (cap * 2 + 1) * sizeof(*l));
			if (!nl)
				goto fail;
			l = nl;
			cap *= 2;
		}
		if (!(l[n] = strndup(p, len)))
			goto fail;
		l[++n] = NULL;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			goto fail; /* trailing comma */
	}
	if (!n)
		goto fail;
	*out = l;
	return 0;
fail:
	free_list(l);
	return -1;
}

static ct_track_rule *rule_get(ct_producer_config *c, const char *coll, size_t len)
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (strlen(c->rules[i].collection) == len && !memcmp(c->rules[i].collection, coll, len))
			return &c->rules[i];
	if (c->n_rules >= CT_TRACK_MAX_RULES)
		return NULL;
	ct_track_rule *r = realloc(c->rules, (c->n_rules + 1) * sizeof(*r));
	if (!r)
		return NULL;
	c->rules = r;
	r = &c->rules[c->n_rules];
	memset(r, 0, sizeof(*r));
	if (!(r->collection = strndup(coll, len)))
		return NULL;
	c->n_rules++;
	return r;
}

int ct_producer_config_set(ct_producer_config *c, const char *key, const char *v, ct_error *err)
{
	uint64_t u;
	if (!c || !key || !v)
		return ct_error_set(err, CT_EINVAL, "config: NULL argument");

	if (!strcmp(key, "source")) {
		if (!*v || strlen(v) > CT_MAX_NAME_BYTES)
			return ct_error_set(err, CT_ECONFIG, "config 'source': must be 1..%d bytes",
					    CT_MAX_NAME_BYTES);
		return set_str(&c->source, v) ? ct_error_set(err, CT_ENOMEM, "config: out of memory") : CT_OK;
	}
	if (!strcmp(key, "topic")) {
		if (!*v || strlen(v) > 249 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
						     "0123456789._-") != strlen(v))
			return ct_error_set(err, CT_ECONFIG,
					    "config 'topic': 1..249 characters of [a-zA-Z0-9._-]");
		return set_str(&c->topic, v) ? ct_error_set(err, CT_ENOMEM, "config: out of memory") : CT_OK;
	}
	if (!strcmp(key, "queue.full")) {
		if (strcmp(v, "block") && strcmp(v, "fail"))
			return ct_error_set(err, CT_ECONFIG, "config 'queue.full': 'block' or 'fail'");
		c->queue_fail = !strcmp(v, "fail");
		return CT_OK;
	}
	if (!strcmp(key, "queue.block.ms")) {
		if (parse_u64(v, 0, 600000, &u))
			return ct_error_set(err, CT_ECONFIG, "config 'queue.block.ms': 0..600000");
		c->queue_block_ms = (int)u;
		return CT_OK;
	}
	if (!strcmp(key, "spool.path")) {
		if (!*v)
			return ct_error_set(err, CT_ECONFIG, "config 'spool.path': empty");
		return set_str(&c->spool_path, v) ? ct_error_set(err, CT_ENOMEM, "config: out of memory") : CT_OK;
	}
	if (!strcmp(key, "spool.max.bytes")) {
		if (parse_u64(v, 4096, 1ull << 50, &u))
			return ct_error_set(err, CT_ECONFIG, "config 'spool.max.bytes': 4096..2^50");
		c->spool_max_bytes = u;
		return CT_OK;
	}
	if (!strcmp(key, "spool.fsync")) {
		if (strcmp(v, "true") && strcmp(v, "false"))
			return ct_error_set(err, CT_ECONFIG, "config 'spool.fsync': 'true' or 'false'");
		c->spool_fsync = !strcmp(v, "true");
		return CT_OK;
	}
	if (!strcmp(key, "max.document.bytes")) {
		if (parse_u64(v, 2, 64u << 20, &u))
			return ct_error_set(err, CT_ECONFIG, "config 'max.document.bytes': 2..67108864");
		c->max_document_bytes = (size_t)u;
		return CT_OK;
	}
	if (!strncmp(key, "kafka.", 6) && key[6]) {
		for (size_t i = 0; i < c->n_kafka; i++)
			if (!strcmp(c->kafka[i].key, key + 6))
				return set_str(&c->kafka[i].value, v)
					       ? ct_error_set(err, CT_ENOMEM, "config: out of memory") : CT_OK;
		ct_kv *kv = realloc(c->kafka, (c->n_kafka + 1) * sizeof(*kv));
		if (!kv)
			return ct_error_set(err, CT_ENOMEM, "config: out of memory");
		c->kafka = kv;
		kv[c->n_kafka].key = strdup(key + 6);
		kv[c->n_kafka].value = strdup(v);
		if (!kv[c->n_kafka].key || !kv[c->n_kafka].value) {
			free(kv[c->n_kafka].key);
			free(kv[c->n_kafka].value);
			return ct_error_set(err, CT_ENOMEM, "config: out of memory");
		}
		c->n_kafka++;
		return CT_OK;
	}
	if (!strncmp(key, "track.", 6)) {
		const char *coll = key + 6, *dot = strrchr(coll, '.');
		char **list = NULL;
		if (!dot || dot == coll || (strcmp(dot, ".include") && strcmp(dot, ".exclude")))
			return ct_error_set(err, CT_ECONFIG,
					    "config '%.64s': expected track.<collection>.include|exclude", key);
		if (split_list(v, &list))
			return ct_error_set(err, CT_ECONFIG,
					    "config '%.64s': a comma-separated list of 1..%d field paths", key,
					    CT_TRACK_MAX_PATHS);
		ct_track_rule *r = rule_get(c, coll, (size_t)(dot - coll));
		if (!r) {
			free_list(list);
			return ct_error_set(err, CT_ENOMEM, "config: out of memory or too many rules");
		}
		char ***slot = !strcmp(dot, ".include") ? &r->include : &r->exclude;
		free_list(*slot);
		*slot = list;
		return CT_OK;
	}
	return ct_error_set(err, CT_ECONFIG, "config: unknown key '%.64s'", key);
}

void ct_producer_config_set_delivery_cb(ct_producer_config *c, ct_delivery_cb cb, void *opaque)
{
	if (!c)
		return;
	c->dr_cb = cb;
	c->dr_opaque = opaque;
}

void ct_producer_config_set_log_cb(ct_producer_config *c, ct_log_cb cb, void *opaque)
{
	if (!c)
		return;
	c->log_cb = cb;
	c->log_opaque = opaque;
}

static char **dup_list(char **l, int *fail)
{
	size_t n = 0;
	if (!l)
		return NULL;
	while (l[n])
		n++;
	char **d = calloc(n + 1, sizeof(*d));
	if (!d) {
		*fail = 1;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (!(d[i] = strdup(l[i])))
			*fail = 1;
	return d;
}

ct_producer_config *ct_producer_config_dup(const ct_producer_config *s)
{
	int fail = 0;
	ct_producer_config *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	*c = *s;
	c->source = s->source ? strdup(s->source) : NULL;
	c->topic = strdup(s->topic);
	c->spool_path = s->spool_path ? strdup(s->spool_path) : NULL;
	c->kafka = s->n_kafka ? calloc(s->n_kafka, sizeof(*c->kafka)) : NULL;
	c->rules = s->n_rules ? calloc(s->n_rules, sizeof(*c->rules)) : NULL;
	if ((s->source && !c->source) || !c->topic || (s->spool_path && !c->spool_path) ||
	    (s->n_kafka && !c->kafka) || (s->n_rules && !c->rules)) {
		c->n_kafka = c->kafka ? s->n_kafka : 0;
		c->n_rules = 0;
		fail = 1;
		goto out;
	}
	for (size_t i = 0; i < s->n_kafka; i++) {
		c->kafka[i].key = strdup(s->kafka[i].key);
		c->kafka[i].value = strdup(s->kafka[i].value);
		if (!c->kafka[i].key || !c->kafka[i].value)
			fail = 1;
	}
	for (size_t i = 0; i < s->n_rules; i++) {
		c->rules[i].collection = strdup(s->rules[i].collection);
		if (!c->rules[i].collection)
			fail = 1;
		c->rules[i].include = dup_list(s->rules[i].include, &fail);
		c->rules[i].exclude = dup_list(s->rules[i].exclude, &fail);
	}
out:
	if (fail) {
		ct_producer_config_destroy(c);
		return NULL;
	}
	return c;
}

const ct_track_rule *ct_track_rule_find(const ct_producer_config *c, const char *collection)
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (!strcmp(c->rules[i].collection, collection))
			return &c->rules[i];
	return NULL;
}
