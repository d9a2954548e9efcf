/*
 * config.c - parses the consumer's INI file and environment overrides into a
 * ctc_config, checks it, and prints it with every secret redacted.
 */
#include "config.h"

#include "ct_internal.h"
#include "ct_textsafe.h"
#include "log.h"

#include <librdkafka/rdkafka.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { F_STR, F_INT, F_BOOL } field_kind;

/* Keys of the sections the consumer itself reads; [kafka] is open-ended. */
static const struct field {
	const char *section, *key;
	field_kind kind;
	size_t offset;
	int64_t min, max;
} fields[] = {
#define S(sec, k, m) {sec, k, F_STR, offsetof(ctc_config, m), 0, 0}
#define I(sec, k, m, lo, hi) {sec, k, F_INT, offsetof(ctc_config, m), lo, hi}
	S("mongodb", "uri", mongodb_uri),
	S("mongodb", "database", mongodb_database),
	I("mongodb", "history_ttl_days", history_ttl_days, 0, 36500),
	S("consumer", "topic", topic),
	S("consumer", "dlq_topic", dlq_topic),
	S("consumer", "group_id", group_id),
	I("consumer", "batch_size", batch_size, 1, 10000),
	I("consumer", "batch_ms", batch_ms, 1, 60000),
	I("consumer", "cache_max_documents", cache_max_documents, 1, 100000000),
	I("consumer", "cache_max_mb", cache_max_mb, 1, 1048576),
	I("consumer", "state_flush_ms", state_flush_ms, 0, 600000),
	I("consumer", "state_flush_max_documents", state_flush_max_documents, 1, 100000000),
	I("consumer", "shutdown_timeout_ms", shutdown_timeout_ms, 100, 600000),
	I("consumer", "exit_on_idle_ms", exit_on_idle_ms, 0, 86400000),
	{"consumer", "no_write", F_BOOL, offsetof(ctc_config, no_write), 0, 0},
	S("consumer", "log_level", log_level),
	S("consumer", "key_check", key_check),
	I("consumer", "max_event_bytes", max_event_bytes, 0, 64 * 1024 * 1024),
	I("consumer", "max_depth", max_depth, 0, 512),
	I("consumer", "max_keys", max_keys, 0, 10000000),
	I("consumer", "max_string_bytes", max_string_bytes, 0, 64 * 1024 * 1024),
	I("consumer", "max_array_items", max_array_items, 0, 10000000),
	I("consumer", "store_stall_ms", store_stall_ms, 100, 3600000),
	S("http", "listen", http_listen),
	S("log", "format", log_format),
	S("anchor", "topic", anchor_topic),
	S("anchor", "file", anchor_file),
	S("anchor", "hmac_key_file", anchor_hmac_key_file),
	I("anchor", "interval_ms", anchor_interval_ms, 100, 86400000),
	I("anchor", "max_leaves", anchor_max_leaves, 1, 1000000),
	S("serve", "listen", serve_listen),
	S("serve", "auth_file", serve_auth_file),
#undef S
#undef I
};

static int set_str(char **slot, const char *value, ct_error *err)
{
	char *copy = strdup(value);
	if (!copy)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	free(*slot);
	*slot = copy;
	return 0;
}

int ctc_config_init(ctc_config *cfg, ct_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->batch_size = 500;
	cfg->batch_ms = 200;
	cfg->cache_max_documents = 100000;
	cfg->cache_max_mb = 512;
	cfg->state_flush_ms = 2000;
	cfg->state_flush_max_documents = 20000;
	cfg->shutdown_timeout_ms = 30000;
	cfg->store_stall_ms = 10000;
	cfg->anchor_interval_ms = 10000;
	cfg->anchor_max_leaves = 10000;
	if (set_str(&cfg->mongodb_uri, "mongodb://127.0.0.1:27017/", err) ||
	    set_str(&cfg->mongodb_database, "changetrail", err) ||
	    set_str(&cfg->topic, "changetrail.events", err) ||
	    set_str(&cfg->dlq_topic, "changetrail.events.dlq", err) ||
	    set_str(&cfg->group_id, "changetrail-consumer", err) ||
	    set_str(&cfg->log_level, "info", err) || set_str(&cfg->log_format, "logfmt", err) ||
	    set_str(&cfg->key_check, "strict", err) ||
	    set_str(&cfg->http_listen, "127.0.0.1:9464", err) || set_str(&cfg->anchor_topic, "", err) ||
	    set_str(&cfg->anchor_file, "", err) || set_str(&cfg->anchor_hmac_key_file, "", err)) {
		ctc_config_free(cfg);
		return CT_ENOMEM;
	}
	return 0;
}

void ctc_config_free(ctc_config *cfg)
{
	for (size_t i = 0; i < cfg->nkafka; i++) {
		free(cfg->kafka[i].key);
		free(cfg->kafka[i].value);
		free(cfg->kafka[i].where);
	}
	for (size_t i = 0; i < cfg->nwarnings; i++)
		free(cfg->warnings[i]);
	for (size_t i = 0; i < CT_ARRAY_LEN(fields); i++)
		if (fields[i].kind == F_STR) {
			char **slot = (char **)((char *)cfg + fields[i].offset);
			free(*slot);
		}
	memset(cfg, 0, sizeof(*cfg));
}

const char *ctc_config_kafka_get(const ctc_config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->nkafka; i++)
		if (!strcmp(cfg->kafka[i].key, key))
			return cfg->kafka[i].value;
	return NULL;
}

static int set_kafka(ctc_config *cfg, const char *key, const char *value, const char *where,
		     ct_error *err)
{
	for (size_t i = 0; i < cfg->nkafka; i++)
		if (!strcmp(cfg->kafka[i].key, key))
			return set_str(&cfg->kafka[i].value, value, err) ||
			       set_str(&cfg->kafka[i].where, where, err) ? CT_ENOMEM : 0;
	if (cfg->nkafka >= CTC_CONFIG_MAX_KAFKA_KEYS)
		return ct_error_set(err, CT_ELIMIT, "%s: more than %d [kafka] keys", where,
				    CTC_CONFIG_MAX_KAFKA_KEYS);
	ctc_kv *kv = &cfg->kafka[cfg->nkafka];
	kv->key = strdup(key);
	kv->value = strdup(value);
	kv->where = strdup(where);
	if (!kv->key || !kv->value || !kv->where) {
		free(kv->key);
		free(kv->value);
		free(kv->where);
		kv->key = kv->value = kv->where = NULL;
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	}
	cfg->nkafka++;
	return 0;
}

/* Sets section.key = value; `where` ("file:line" or "environment X") names the origin. */
static int set_value(ctc_config *cfg, const char *section, const char *key, const char *value,
		     const char *where, ct_error *err)
{
	if (!strcmp(section, "kafka")) {
		if (!*key)
			return ct_error_set(err, CT_ECONFIG, "%s: empty [kafka] key", where);
		return set_kafka(cfg, key, value, where, err);
	}
	for (size_t i = 0; i < CT_ARRAY_LEN(fields); i++) {
		const struct field *f = &fields[i];
		if (strcmp(f->section, section) || strcmp(f->key, key))
			continue;
		void *slot = (char *)cfg + f->offset;
		if (f->kind == F_STR)
			return set_str(slot, value, err);
		if (f->kind == F_BOOL) {
			if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
				*(bool *)slot = true;
			else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
				*(bool *)slot = false;
			else
				return ct_error_set(err, CT_ECONFIG, "%s: [%s] %s must be true or false",
						    where, section, key);
			return 0;
		}
		char *end;
		errno = 0;
		long long v = strtoll(value, &end, 10);
		if (errno || end == value || *end || v < f->min || v > f->max)
			return ct_error_set(err, CT_ECONFIG,
					    "%s: [%s] %s must be an integer in %lld..%lld", where,
					    section, key, (long long)f->min, (long long)f->max);
		*(int64_t *)slot = v;
		return 0;
	}
	if (strcmp(section, "mongodb") && strcmp(section, "consumer") && strcmp(section, "http") &&
	    strcmp(section, "anchor") && strcmp(section, "log") && strcmp(section, "serve"))
		return ct_error_set(err, CT_ECONFIG, "%s: unknown section [%s]", where, section);
	return ct_error_set(err, CT_ECONFIG, "%s: unknown key '%s' in [%s]", where, key, section);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * The value of a `key = value` line (`v`, trimmed), in place: quotes and a
 * trailing comment as documented in config.h. Returns the value or NULL with
 * `err` set.
 */
static char *ini_value(char *v, const char *where, ct_error *err)
{
	if (*v == '"' || *v == '\'') {
		char *close = strchr(v + 1, *v);
		if (!close) {
			ct_error_set(err, CT_ECONFIG, "%s: no closing %c quote", where, *v);
			return NULL;
		}
		char *rest = trim(close + 1);
		if (*rest && *rest != '#' && *rest != ';') {
			ct_error_set(err, CT_ECONFIG, "%s: text after the closing %c quote", where, *v);
			return NULL;
		}
		*close = '\0';
		return v + 1;
	}
	for (char *c = v; *c; c++)
		if ((*c == '#' || *c == ';') && (c == v || isspace((unsigned char)c[-1]))) {
			*c = '\0';
			break;
		}
	return trim(v);
}

int ctc_config_load_file(ctc_config *cfg, const char *path, ct_error *err)
{
	char line[CTC_CONFIG_MAX_LINE + 2], section[64] = "", where[512];
	size_t total = 0;
	unsigned lineno = 0;
	int rc = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return ct_error_set(err, CT_EIO, "%s: cannot open: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		total += n;
		if (total > CTC_CONFIG_MAX_FILE_BYTES) {
			rc = ct_error_set(err, CT_ELIMIT, "%s: file larger than %d bytes", where,
					  CTC_CONFIG_MAX_FILE_BYTES);
			goto out;
		}
		if (n && line[n - 1] != '\n' && !feof(f)) {
			rc = ct_error_set(err, CT_ELIMIT, "%s: line longer than %d bytes", where,
					  CTC_CONFIG_MAX_LINE);
			goto out;
		}
		if (memchr(line, '\0', n) != NULL && strlen(line) != n) {
			rc = ct_error_set(err, CT_ECONFIG, "%s: NUL byte", where);
			goto out;
		}
		char *s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			if (!close || close[1] != '\0') {
				rc = ct_error_set(err, CT_ECONFIG, "%s: malformed section header", where);
				goto out;
			}
			*close = '\0';
			char *name = trim(s + 1);
			if (strcmp(name, "kafka") && strcmp(name, "mongodb") && strcmp(name, "consumer") &&
			    strcmp(name, "http") && strcmp(name, "anchor") && strcmp(name, "log") &&
			    strcmp(name, "serve")) {
				rc = ct_error_set(err, CT_ECONFIG,
						  "%s: unknown section [%.64s] (kafka, mongodb, consumer, http, anchor, log, serve)",
						  where, name);
				goto out;
			}
			snprintf(section, sizeof(section), "%s", name);
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = ct_error_set(err, CT_ECONFIG, "%s: expected 'key = value'", where);
			goto out;
		}
		if (!*section) {
			rc = ct_error_set(err, CT_ECONFIG, "%s: key outside of any [section]", where);
			goto out;
		}
		*eq = '\0';
		char *key = trim(s), *value = ini_value(trim(eq + 1), where, err);
		if (!value) {
			rc = CT_ECONFIG;
			goto out;
		}
		if (!*key) {
			rc = ct_error_set(err, CT_ECONFIG, "%s: empty key", where);
			goto out;
		}
		if ((rc = set_value(cfg, section, key, value, where, err)))
			goto out;
	}
	if (ferror(f))
		rc = ct_error_set(err, CT_EIO, "%s: read error", path);
out:
	fclose(f);
	return rc;
}

static int add_warning(ctc_config *cfg, ct_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int add_warning(ctc_config *cfg, ct_error *err, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	if (cfg->nwarnings >= CTC_CONFIG_MAX_WARNINGS) {
		cfg->warnings_dropped++;
		return 0;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* it quotes a variable's name: one line of printable ASCII */
	for (char *c = text; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	if (!(cfg->warnings[cfg->nwarnings] = strdup(text)))
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	cfg->nwarnings++;
	return 0;
}

void ctc_config_print_warnings(const ctc_config *cfg, const char *prefix, FILE *out)
{
	for (size_t i = 0; i < cfg->nwarnings; i++)
		fprintf(out, "%s: warning: %s\n", prefix, cfg->warnings[i]);
	if (cfg->warnings_dropped)
		fprintf(out, "%s: warning: %zu more warnings\n", prefix, cfg->warnings_dropped);
}

int ctc_config_apply_env(ctc_config *cfg, char *const *envp, ct_error *err)
{
	static const char prefix[] = "CHANGETRAIL_";
	static const char *const sections[] = {"kafka", "mongodb", "consumer", "http", "anchor", "log", "serve"};
	/* the project's own variables that are not settings (cli/cmd_replay.c, producer/python) */
	static const char *const others[] = {"CHANGETRAIL_CONSUMER", "CHANGETRAIL_LIB"};
	for (; envp && *envp; envp++) {
		const char *e = *envp, *eq = strchr(e, '=');
		char name[256], key[256], where[300];
		if (strncmp(e, prefix, sizeof(prefix) - 1) || !eq)
			continue;
		size_t nlen = (size_t)(eq - e);
		if (nlen >= sizeof(name))
			return ct_error_set(err, CT_ELIMIT, "environment variable name too long");
		memcpy(name, e, nlen);
		name[nlen] = '\0';
		snprintf(where, sizeof(where), "environment %s", name);
		const char *rest = name + sizeof(prefix) - 1;
		const char *section = NULL;
		bool other = false;
		for (size_t i = 0; i < CT_ARRAY_LEN(others); i++)
			other |= !strcmp(name, others[i]);
		if (other)
			continue;
		for (size_t i = 0; i < CT_ARRAY_LEN(sections); i++) {
			size_t sl = strlen(sections[i]);
			if (!strncasecmp(rest, sections[i], sl) && rest[sl] == '_' && rest[sl + 1]) {
				section = sections[i];
				rest += sl + 1;
				break;
			}
		}
		if (!section) {
			/* not a setting: another program's variable, or a section misspelt */
			int rc = add_warning(cfg, err,
					     "%s ignored: not CHANGETRAIL_<KAFKA|MONGODB|CONSUMER|HTTP|ANCHOR|LOG>_<KEY>",
					     where);
			if (rc)
				return rc;
			continue;
		}
		size_t i = 0;
		for (; rest[i]; i++) {
			char c = (char)tolower((unsigned char)rest[i]);
			key[i] = (!strcmp(section, "kafka") && c == '_') ? '.' : c;
		}
		key[i] = '\0';
		int rc = set_value(cfg, section, key, eq + 1, where, err);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Every [kafka] property through librdkafka on a scratch configuration: what
 * the consumer would refuse at start (an unknown property, a value out of
 * its set or range) fails now, naming where it was written.
 */
static int check_kafka(const ctc_config *cfg, ct_error *err)
{
	char errstr[512];
	int rc = 0;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!conf)
		return ct_error_set(err, CT_ENOMEM, "out of memory");
	for (size_t i = 0; i < cfg->nkafka; i++) {
		const ctc_kv *kv = &cfg->kafka[i];
		errstr[0] = '\0';
		rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, kv->key, kv->value, errstr, sizeof(errstr));
		if (r == RD_KAFKA_CONF_OK)
			continue;
		const char *what = r == RD_KAFKA_CONF_UNKNOWN ? "unknown librdkafka property" : "invalid value";
		if (ctc_config_is_secret_key(kv->key) || !errstr[0])
			/* librdkafka's reason may quote the value */
			rc = ct_error_set(err, CT_ECONFIG, "%s: [kafka] %.128s: %s", kv->where, kv->key, what);
		else
			rc = ct_error_set(err, CT_ECONFIG, "%s: [kafka] %.128s: %s (%s)", kv->where, kv->key, what,
					  errstr);
		goto out;
	}
out:
	rd_kafka_conf_destroy(conf);
	return rc;
}

int ctc_config_validate(const ctc_config *cfg, ct_error *err)
{
	static const char *const forbidden[] = {"enable.auto.commit", "enable.auto.offset.store",
						"group.id"};
	const char *bs = ctc_config_kafka_get(cfg, "bootstrap.servers");
	if (!bs || !*bs)
		return ct_error_set(err, CT_ECONFIG,
				    "[kafka] bootstrap.servers is required (or CHANGETRAIL_KAFKA_BOOTSTRAP_SERVERS)");
	for (size_t i = 0; i < CT_ARRAY_LEN(forbidden); i++)
		if (ctc_config_kafka_get(cfg, forbidden[i]))
			return ct_error_set(err, CT_ECONFIG,
					    "[kafka] %s is set by the consumer itself%s", forbidden[i],
					    strcmp(forbidden[i], "group.id") ? "" : " (use [consumer] group_id)");
	int rc = check_kafka(cfg, err);
	if (rc)
		return rc;
	if (!*cfg->mongodb_uri || strncmp(cfg->mongodb_uri, "mongodb", 7))
		return ct_error_set(err, CT_ECONFIG, "[mongodb] uri must be a mongodb:// URI");
	if (ct_uri_check_userinfo(cfg->mongodb_uri, "[mongodb] uri", err))
		return CT_ECONFIG;
	if (!*cfg->mongodb_database || strpbrk(cfg->mongodb_database, "/\\. \"$") ||
	    strlen(cfg->mongodb_database) > 63)
		return ct_error_set(err, CT_ECONFIG,
				    "[mongodb] database must be 1..63 characters without /\\. \"$");
	if (!*cfg->topic || !*cfg->dlq_topic || !*cfg->group_id)
		return ct_error_set(err, CT_ECONFIG, "[consumer] topic, dlq_topic and group_id must not be empty");
	if (strcmp(cfg->key_check, "strict") && strcmp(cfg->key_check, "off"))
		return ct_error_set(err, CT_ECONFIG, "[consumer] key_check must be strict or off");
	if (!strcmp(cfg->topic, cfg->dlq_topic))
		return ct_error_set(err, CT_ECONFIG, "[consumer] dlq_topic must differ from topic");
	if (ctc_log_level_parse(cfg->log_level) < 0)
		return ct_error_set(err, CT_ECONFIG, "[consumer] log_level must be debug, info, warn or error");
	if (ctc_log_format_parse(cfg->log_format) < 0)
		return ct_error_set(err, CT_ECONFIG, "[log] format must be logfmt or json");
	if (*cfg->http_listen) {
		const char *colon = strrchr(cfg->http_listen, ':');
		char *end;
		long port = colon ? strtol(colon + 1, &end, 10) : -1;
		if (!colon || colon == cfg->http_listen || !colon[1] || *end || port < 0 || port > 65535)
			return ct_error_set(err, CT_ECONFIG, "[http] listen must be host:port (port 0..65535)");
	}
	if (*cfg->anchor_topic && (!strcmp(cfg->anchor_topic, cfg->topic) || !strcmp(cfg->anchor_topic, cfg->dlq_topic)))
		return ct_error_set(err, CT_ECONFIG, "[anchor] topic must differ from [consumer] topic and dlq_topic");
	if (*cfg->anchor_hmac_key_file && !*cfg->anchor_topic && !*cfg->anchor_file)
		return ct_error_set(err, CT_ECONFIG, "[anchor] hmac_key_file needs [anchor] topic or file");
	return 0;
}

bool ctc_config_is_secret_key(const char *key)
{
	static const char *const words[] = {"password", "secret", "sasl.jaas", "oauthbearer.config",
					    "ssl.key.pem", "ssl_key", "token", "credential"};
	for (size_t i = 0; i < CT_ARRAY_LEN(words); i++)
		if (strstr(key, words[i]))
			return true;
	return false;
}

const char *ctc_config_redact_uri(const char *uri, char *out, size_t size)
{
	return ct_redact_uri(uri, out, size);
}

bool ctc_config_fprint_value(FILE *out, const char *value)
{
	size_t n = strlen(value);
	bool quote = n && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[n - 1]) ||
			   value[0] == '"' || value[0] == '\'');
	for (const char *c = value; *c && !quote; c++)
		quote = (*c == '#' || *c == ';') && (c == value || isspace((unsigned char)c[-1]));
	if (!quote) {
		fputs(value, out);
		return true;
	}
	char q = !strchr(value, '"') ? '"' : !strchr(value, '\'') ? '\'' : 0;
	if (!q) {
		fputs(value, out);
		return false;
	}
	fprintf(out, "%c%s%c", q, value, q);
	return true;
}

static void print_value(FILE *out, const char *key, const char *value, bool secret)
{
	fprintf(out, "%s = ", key);
	ctc_config_fprint_value(out, secret ? "***" : value ? value : ""); /* unset: empty */
	fputc('\n', out);
}

void ctc_config_print(const ctc_config *cfg, FILE *out)
{
	char uri[1024];
	fprintf(out, "[kafka]\n");
	for (size_t i = 0; i < cfg->nkafka; i++)
		print_value(out, cfg->kafka[i].key, cfg->kafka[i].value,
			    ctc_config_is_secret_key(cfg->kafka[i].key));
	const char *section = "";
	for (size_t i = 0; i < CT_ARRAY_LEN(fields); i++) {
		const struct field *f = &fields[i];
		const void *slot = (const char *)cfg + f->offset;
		if (strcmp(section, f->section)) {
			section = f->section;
			fprintf(out, "\n[%s]\n", section);
		}
		if (f->kind == F_STR) {
			const char *v = *(char *const *)slot;
			if (!strcmp(f->section, "mongodb") && !strcmp(f->key, "uri"))
				v = ctc_config_redact_uri(v, uri, sizeof(uri));
			print_value(out, f->key, v, false);
		} else if (f->kind == F_BOOL) {
			print_value(out, f->key, *(const bool *)slot ? "true" : "false", false);
		} else {
			fprintf(out, "%s = %lld\n", f->key, (long long)*(const int64_t *)slot);
		}
	}
}
