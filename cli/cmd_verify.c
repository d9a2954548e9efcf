/*
 * cmd_verify.c - `changetrail verify` (the hash chains; exit 1 on a break)
 * and `changetrail prune` (retention with checkpoints, so verify still
 * passes afterwards).
 */
#include "cli.h"

#include "anchor.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char verify_usage[] =
	"usage: changetrail verify [COLLECTION [ID]] [--json] [--config FILE] [--uri URI] [--db NAME]\n"
	"                          [--anchors FILE|kafka [--anchor-topic T] [--anchor-key-file F]]\n"
	"\n"
	"Recomputes the hash of every history record (of one document, a collection\n"
	"or everything), checks versions are contiguous (from 1 or a prune checkpoint),\n"
	"that each prev_hash links to the previous record, that the changes replay to\n"
	"the stored document and that the state is the record of its version (a state\n"
	"behind the history is counted, not a problem: the consumer writes states\n"
	"every state_flush_ms). Reports each problem: modified, missing, duplicate,\n"
	"reordered, changes_do_not_apply, state_mismatch, state_doc_mismatch, no_history.\n"
	"\n"
	"With --anchors, checks MongoDB against the chain heads the consumer published\n"
	"([anchor] file, or `kafka`: the [anchor] topic, default changetrail.anchors,\n"
	"read from the beginning): each anchor record (its Merkle root, its HMAC when\n"
	"a key is given or [anchor] hmac_key_file is set, its link to the previous\n"
	"anchor of the same consumer), then for every anchored document that the\n"
	"anchored versions are in history with the anchored hashes, that its chain\n"
	"verifies and that its state is not behind them: anchor_invalid,\n"
	"anchor_chain_broken, anchored_missing, anchored_mismatch,\n"
	"anchored_document_gone, anchored_state_behind, anchored_state_missing.\n"
	"exit status: 0 intact, 1 a problem found (or ID not found), 2 bad usage, 3 server failure\n";

static int parse_common(cli_common *c, int argc, char **argv, const char **pos, int maxpos, int *npos,
			const char *usage)
{
	bool rest = false; /* after "--": arguments only */
	for (int i = 1; i < argc; i++) {
		int r;
		if (!rest && !strcmp(argv[i], "--")) {
			rest = true;
			continue;
		}
		if (!rest && cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		if (!rest && (r = cli_common_arg(c, argc, argv, &i))) {
			if (r < 0)
				return CLI_USAGE;
			continue;
		}
		if (!rest && argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "changetrail %s: unknown option '%s'\n", c->cmd, cli_esc(argv[i]));
			return CLI_USAGE;
		}
		if (*npos >= maxpos) {
			fprintf(stderr, "changetrail %s: too many arguments\n", c->cmd);
			return CLI_USAGE;
		}
		pos[(*npos)++] = argv[i];
	}
	return -1;
}

/* ---- verify --anchors ---- */

typedef struct anchor_read {
	const uint8_t *key;
	size_t key_len;
	const char *collection, *document_id; /* only these heads when set */
	json_t *last;     /* worker -> hash of its last record */
	json_t *heads;    /* anchored heads of the valid records */
	json_t *problems; /* of the records themselves */
	size_t records;
} anchor_read;

static void anchor_problem(anchor_read *ar, const json_t *rec, const char *where, const char *what,
			   const char *detail)
{
	const char *worker = rec ? json_string_value(json_object_get(rec, "worker")) : NULL;
	json_array_append_new(ar->problems,
			      json_pack("{s:s, s:s, s:o, s:s, s:s}", "anchor", where, "worker", worker ? worker : "",
					"seq", rec && json_is_integer(json_object_get(rec, "seq")) ? json_integer(json_integer_value(json_object_get(rec, "seq"))) : json_null(),
					"problem", what, "detail", detail));
}

/* One record's text from the file or the topic; `where` names it ("FILE:LINE", "topic[p]@offset"). */
static int anchor_take(anchor_read *ar, const char *text, size_t len, const char *where)
{
	json_t *rec = NULL;
	char hash[65];
	ct_error err;
	int rc = 0;

	ar->records++;
	if (ctc_anchor_check(text, len, ar->key, ar->key_len, &rec, hash, &err)) {
		anchor_problem(ar, rec, where, "anchor_invalid", err.message);
		goto out; /* its leaves are not trusted */
	}
	const char *worker = json_string_value(json_object_get(rec, "worker"));
	const char *prev = json_string_value(json_object_get(rec, "prev_anchor"));
	const char *last = json_string_value(json_object_get(ar->last, worker));
	char detail[256];
	if (prev && !last) {
		snprintf(detail, sizeof(detail), "links to anchor %.12s... which is not in the anchors read", prev);
		anchor_problem(ar, rec, where, "anchor_chain_broken", detail);
	} else if (prev && strcmp(prev, last)) {
		snprintf(detail, sizeof(detail), "links to anchor %.12s..., the previous one of this consumer is %.12s...",
			 prev, last);
		anchor_problem(ar, rec, where, "anchor_chain_broken", detail);
	} else if (!prev && last) {
		anchor_problem(ar, rec, where, "anchor_chain_broken", "a second first anchor of the same consumer");
	}
	json_object_set_new(ar->last, worker, json_string(hash));
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(rec, "leaves"), i, l) {
		if (ar->collection && strcmp(ar->collection, json_string_value(json_object_get(l, "collection"))))
			continue;
		if (ar->document_id && strcmp(ar->document_id, json_string_value(json_object_get(l, "document_id"))))
			continue;
		if (json_array_append(ar->heads, l)) {
			rc = CLI_FAILURE;
			goto out;
		}
	}
out:
	json_decref(rec);
	return rc;
}

static int anchors_from_file(anchor_read *ar, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, where[600];
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int rc = CLI_OK;
	if (!f) {
		fprintf(stderr, "changetrail verify: %s: %s\n", cli_esc(path), strerror(errno));
		return CLI_FAILURE;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (n && line[n - 1] == '\n')
			n--;
		if (!n)
			continue;
		snprintf(where, sizeof(where), "%s:%ld", path, lineno);
		if ((rc = anchor_take(ar, line, (size_t)n, where)))
			break;
	}
	if (!rc && ferror(f)) {
		fprintf(stderr, "changetrail verify: %s: read error\n", cli_esc(path));
		rc = CLI_FAILURE;
	}
	free(line);
	fclose(f);
	return rc;
}

/* Every partition of `topic` from its low to its high watermark of now. */
static int anchors_from_kafka(anchor_read *ar, const ctc_config *cfg, const char *topic)
{
	char errstr[512], where[300];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk = NULL;
	rd_kafka_topic_t *rkt = NULL;
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_partition_list_t *parts = NULL;
	int64_t *high = NULL;
	int rc = CLI_FAILURE, left = 0;

	for (size_t i = 0; i < cfg->nkafka; i++)
		if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, errstr, sizeof(errstr)) &&
		    strncmp(cfg->kafka[i].key, "auto.", 5)) {
			fprintf(stderr, "changetrail verify: [kafka] %s: %s\n", cli_esc(cfg->kafka[i].key), cli_esc(errstr));
			goto out;
		}
	/* assigned, never subscribed: the group is never joined nor committed to */
	if (rd_kafka_conf_set(conf, "group.id", "changetrail-verify-anchors", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) ||
	    !(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
		fprintf(stderr, "changetrail verify: kafka: %s\n", cli_esc(errstr));
		goto out;
	}
	conf = NULL;
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 || md->topics[0].err ||
	    md->topics[0].partition_cnt == 0) {
		fprintf(stderr, "changetrail verify: anchor topic '%s' not found or brokers unreachable\n", cli_esc(topic));
		goto out;
	}
	int np = md->topics[0].partition_cnt;
	parts = rd_kafka_topic_partition_list_new(np);
	if (!(high = calloc((size_t)np, sizeof(*high))))
		goto out;
	for (int i = 0; i < np; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t lo, hi;
		if (p < 0 || p >= np || rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000)) {
			fprintf(stderr, "changetrail verify: watermarks of %s[%d]: unavailable\n", topic, (int)p);
			goto out;
		}
		high[p] = hi;
		if (hi > lo) {
			rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo;
			left++;
		}
	}
	if (left && rd_kafka_assign(rk, parts)) {
		fprintf(stderr, "changetrail verify: cannot read %s\n", topic);
		goto out;
	}
	int idle = 0;
	while (left > 0) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
		if (!m) {
			if (++idle >= 30) {
				fprintf(stderr, "changetrail verify: %s: nothing read for 30 s before its end\n", topic);
				goto out;
			}
			continue;
		}
		idle = 0;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				fprintf(stderr, "changetrail verify: %s: %s\n", cli_esc(topic), cli_esc(rd_kafka_message_errstr(m)));
				rd_kafka_message_destroy(m);
				goto out;
			}
			rd_kafka_message_destroy(m);
			continue;
		}
		int32_t p = m->partition;
		if (p >= 0 && p < np && m->offset < high[p]) {
			snprintf(where, sizeof(where), "%s[%d]@%lld", topic, (int)p, (long long)m->offset);
			int r = anchor_take(ar, m->payload ? (const char *)m->payload : "", m->len, where);
			if (m->offset + 1 >= high[p])
				left--;
			if (r) {
				rd_kafka_message_destroy(m);
				goto out;
			}
		}
		rd_kafka_message_destroy(m);
	}
	rc = CLI_OK;
out:
	if (conf)
		rd_kafka_conf_destroy(conf);
	if (md)
		rd_kafka_metadata_destroy(md);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	free(high);
	if (rk) {
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
	}
	return rc;
}

static int verify_anchors(cli_common *c, ct_history *h, const char *src, const char *topic, const char *key_file,
			  const char *collection, const char *document_id)
{
	uint8_t key[CTC_ANCHOR_MAX_KEY_BYTES];
	anchor_read ar = {.collection = collection, .document_id = document_id, .last = json_object(),
			  .heads = json_array(), .problems = json_array()};
	json_t *res = NULL;
	ct_error err;
	int rc;

	if (!key_file && *c->cfg.anchor_hmac_key_file)
		key_file = c->cfg.anchor_hmac_key_file;
	if (key_file && ctc_anchor_read_key(key_file, key, &ar.key_len, &err)) {
		rc = cli_fail("verify", &err);
		goto out;
	}
	ar.key = key;
	if (!strcmp(src, "kafka"))
		rc = anchors_from_kafka(&ar, &c->cfg, topic ? topic : *c->cfg.anchor_topic ? c->cfg.anchor_topic
											: "changetrail.anchors");
	else
		rc = anchors_from_file(&ar, src);
	if (rc)
		goto out;
	if (ct_history_check_anchored(h, ar.heads, &res, &err)) {
		rc = cli_fail("verify", &err);
		goto out;
	}
	json_t *problems = json_object_get(res, "problems");
	size_t np = json_array_size(problems) + json_array_size(ar.problems);
	if (c->json) {
		json_object_set_new(res, "anchor_records", json_integer((json_int_t)ar.records));
		json_object_set(res, "anchor_problems", ar.problems);
		json_object_set_new(res, "keyed", json_boolean(ar.key_len > 0));
		rc = cli_print_json("verify", res);
	} else {
		size_t i;
		json_t *p;
		json_array_foreach(ar.problems, i, p) {
			const json_t *seq = json_object_get(p, "seq");
			printf("anchor %s", cli_esc(json_string_value(json_object_get(p, "anchor"))));
			if (json_is_integer(seq))
				printf(" (consumer %s, seq %lld)", cli_esc(json_string_value(json_object_get(p, "worker"))),
				       (long long)json_integer_value(seq));
			printf(": %s: %s\n", cli_esc(json_string_value(json_object_get(p, "problem"))),
			       cli_esc(json_string_value(json_object_get(p, "detail"))));
		}
		json_array_foreach(problems, i, p) {
			const json_t *v = json_object_get(p, "version");
			printf("%s/%s", cli_esc(json_string_value(json_object_get(p, "collection"))),
			       cli_esc(json_string_value(json_object_get(p, "document_id"))));
			if (json_is_integer(v))
				printf(" v%lld", (long long)json_integer_value(v));
			printf(": %s: %s\n", cli_esc(json_string_value(json_object_get(p, "problem"))),
			       cli_esc(json_string_value(json_object_get(p, "detail"))));
		}
		printf("%zu anchor record(s)%s, %lld anchored head(s) of %lld document(s): %s\n", ar.records,
		       ar.key_len ? " (HMAC checked)" : "", (long long)json_integer_value(json_object_get(res, "anchored")),
		       (long long)json_integer_value(json_object_get(res, "documents")),
		       np ? "PROBLEMS FOUND" : "all anchored chains intact");
		rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
	}
	if (!rc && np)
		rc = CLI_NOT_FOUND;
out:
	memset(key, 0, sizeof(key));
	json_decref(res);
	json_decref(ar.last);
	json_decref(ar.heads);
	json_decref(ar.problems);
	return rc;
}

int cmd_verify(int argc, char **argv)
{
	cli_common c = {.cmd = "verify"};
	const char *pos[2] = {NULL, NULL};
	const char *anchors = NULL, *anchor_topic = NULL, *anchor_key = NULL;
	int npos = 0, rc;
	ct_history *h = NULL;
	json_t *res = NULL;
	ct_error err;
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int nrest = 0;

	if (!rest)
		return CLI_FAILURE;
	/* the anchor options first; the rest as every history command takes them */
	for (int i = 0; i < argc; i++) {
		int r = i ? cli_opt("verify", argc, argv, &i, "--anchors", &anchors) : 0;
		if (!r && i)
			r = cli_opt("verify", argc, argv, &i, "--anchor-topic", &anchor_topic);
		if (!r && i)
			r = cli_opt("verify", argc, argv, &i, "--anchor-key-file", &anchor_key);
		if (r < 0) {
			free(rest);
			return CLI_USAGE;
		}
		if (!r)
			rest[nrest++] = argv[i];
	}
	if ((rc = parse_common(&c, nrest, rest, pos, 2, &npos, verify_usage)) >= 0) {
		if (rc == CLI_USAGE)
			fprintf(stderr, "%.*s", (int)(strchr(verify_usage, '\n') - verify_usage + 1), verify_usage);
		free(rest);
		return rc;
	}
	free(rest);
	if ((anchor_topic || anchor_key) && !anchors) {
		fprintf(stderr, "changetrail verify: --anchor-topic and --anchor-key-file go with --anchors\n");
		cli_common_free(&c);
		return CLI_USAGE;
	}
	if ((rc = cli_open(&c, &h)))
		goto out;
	if (anchors) {
		rc = verify_anchors(&c, h, anchors, anchor_topic, anchor_key, pos[0], pos[1]);
		goto out;
	}
	if (ct_history_verify(h, pos[0], pos[1], &res, &err)) {
		rc = cli_fail("verify", &err);
		goto out;
	}
	json_t *problems = json_object_get(res, "problems");
	if (c.json) {
		rc = cli_print_json("verify", res);
	} else {
		size_t i;
		json_t *p;
		json_array_foreach(problems, i, p) {
			const json_t *v = json_object_get(p, "version");
			printf("%s/%s", cli_esc(json_string_value(json_object_get(p, "collection"))),
			       cli_esc(json_string_value(json_object_get(p, "document_id"))));
			if (json_is_integer(v))
				printf(" v%lld", (long long)json_integer_value(v));
			printf(": %s: %s\n", cli_esc(json_string_value(json_object_get(p, "problem"))),
			       cli_esc(json_string_value(json_object_get(p, "detail"))));
		}
		printf("%lld document(s), %lld record(s): %s\n", (long long)json_integer_value(json_object_get(res, "documents")),
		       (long long)json_integer_value(json_object_get(res, "records")),
		       json_array_size(problems) ? "PROBLEMS FOUND" : "all chains intact");
		json_int_t behind = json_integer_value(json_object_get(res, "states_behind"));
		if (behind)
			printf("%lld state(s) behind their history (written by the consumer every state_flush_ms)\n",
			       (long long)behind);
		rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
	}
	if (!rc && json_array_size(problems))
		rc = CLI_NOT_FOUND;
out:
	json_decref(res);
	ct_history_close(h);
	cli_common_free(&c);
	return rc;
}

static const char prune_usage[] =
	"usage: changetrail prune --older-than DURATION [--collection C] [--dry-run] [--json]\n"
	"                         [--config FILE] [--uri URI] [--db NAME]\n"
	"\n"
	"Retention: deletes the history records older than DURATION (30d, 12w, 48h)\n"
	"and puts in their place, per document, one checkpoint record with the state\n"
	"and the hash the pruned prefix reached, so `verify` still passes and `show`\n"
	"works from the checkpoint on. The current state is never touched. A chain\n"
	"that does not verify is skipped (and reported), never pruned.\n"
	"exit status: 0 ok, 2 bad usage, 3 server failure\n";

int cmd_prune(int argc, char **argv)
{
	cli_common c = {.cmd = "prune"};
	const char *older = NULL, *coll = NULL;
	bool dry = false;
	int rc = CLI_USAGE;
	ct_history *h = NULL;
	json_t *res = NULL;
	ct_error err;
	int64_t d;

	for (int i = 1; i < argc; i++) {
		int r;
		if (cli_is_help(argv[i])) {
			fputs(prune_usage, stdout);
			return CLI_OK;
		}
		if ((r = cli_common_arg(&c, argc, argv, &i)) ||
		    (r = cli_opt("prune", argc, argv, &i, "--older-than", &older)) ||
		    (r = cli_opt("prune", argc, argv, &i, "--collection", &coll))) {
			if (r < 0)
				goto usage;
			continue;
		}
		if (!strcmp(argv[i], "--dry-run")) {
			dry = true;
			continue;
		}
		fprintf(stderr, "changetrail prune: unexpected argument '%s'\n", cli_esc(argv[i]));
		goto usage;
	}
	if (!older) {
		fprintf(stderr, "changetrail prune: --older-than DURATION is required\n");
		goto usage;
	}
	if (ct_history_parse_duration(older, &d, &err)) {
		fprintf(stderr, "changetrail prune: --older-than: %s\n", cli_esc(err.message));
		goto usage;
	}
	if ((rc = cli_open(&c, &h)))
		goto out;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ct_history_prune(h, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - d, coll, dry, &res, &err)) {
		rc = cli_fail("prune", &err);
		goto out;
	}
	if (c.json) {
		rc = cli_print_json("prune", res);
		goto out;
	}
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(res, "checkpoints"), i, x)
		printf("%s%s/%s: checkpoint at v%lld, %lld record(s) deleted\n", dry ? "(dry run) " : "",
		       cli_esc(json_string_value(json_object_get(x, "collection"))),
		       cli_esc(json_string_value(json_object_get(x, "document_id"))),
		       (long long)json_integer_value(json_object_get(x, "version")),
		       (long long)json_integer_value(json_object_get(x, "records_deleted")));
	json_array_foreach(json_object_get(res, "skipped"), i, x)
		printf("%s/%s: SKIPPED: %s\n", cli_esc(json_string_value(json_object_get(x, "collection"))),
		       cli_esc(json_string_value(json_object_get(x, "document_id"))),
		       cli_esc(json_string_value(json_object_get(x, "reason"))));
	printf("%s%lld document(s) pruned before %s, %lld record(s) deleted\n", dry ? "(dry run) " : "",
	       (long long)json_integer_value(json_object_get(res, "documents")),
	       cli_esc(json_string_value(json_object_get(res, "cutoff"))),
	       (long long)json_integer_value(json_object_get(res, "records_deleted")));
	rc = fflush(stdout) ? CLI_FAILURE : CLI_OK;
	goto out;
usage:
	fprintf(stderr, "%.*s", (int)(strchr(prune_usage, '\n') - prune_usage + 1), prune_usage);
	rc = CLI_USAGE;
out:
	json_decref(res);
	ct_history_close(h);
	cli_common_free(&c);
	return rc;
}
