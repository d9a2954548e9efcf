/*
 * inventory.c - an example application instrumented with libchangetrail.
 *
 * A small "inventory" service: simulated HTTP requests, each wrapped in a
 * context carrying the user and the URL (as a request middleware would),
 * that create and edit products, tag them (many-to-many), delete one, and
 * register a user whose password is excluded from tracking.
 *
 * usage: inventory [BOOTSTRAP] [TOPIC]
 *   BOOTSTRAP defaults to $CT_KAFKA_BOOTSTRAP, TOPIC to changetrail.events
 */
#include <changetrail/producer.h>

#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                              \
	do {                                                                     \
		if ((call) != CT_OK) {                                           \
			fprintf(stderr, "inventory: %s: %s\n", #call, err.message); \
			goto out;                                                \
		}                                                                \
	} while (0)

/* A request handler's frame: the middleware opens the context, the handler
 * does the work, the middleware closes it (which completes the changeset). */
static int request(ct_producer *p, const char *user, const char *method, const char *url,
		   ct_error *err)
{
	char md[512];
	snprintf(md, sizeof(md), "{\"user\":\"%s\",\"url\":\"%s\",\"method\":\"%s\"}", user, url, method);
	return ct_context_enter(p, md, err);
}

int main(int argc, char **argv)
{
	const char *bootstrap = argc > 1 ? argv[1] : getenv("CT_KAFKA_BOOTSTRAP");
	const char *topic = argc > 2 ? argv[2] : "changetrail.events";
	ct_producer_config *conf = ct_producer_config_new();
	ct_producer *p = NULL;
	ct_error err;
	int rc = 1;

	if (!bootstrap) {
		fprintf(stderr, "usage: inventory BOOTSTRAP [TOPIC] (or set CT_KAFKA_BOOTSTRAP)\n");
		return 2;
	}
	CHECK(ct_producer_config_set(conf, "source", "inventory-demo", &err));
	CHECK(ct_producer_config_set(conf, "topic", topic, &err));
	CHECK(ct_producer_config_set(conf, "kafka.bootstrap.servers", bootstrap, &err));
	/* Secrets never leave the process. */
	CHECK(ct_producer_config_set(conf, "track.users.exclude", "password,api_token", &err));
	CHECK(ct_producer_new(conf, &p, &err));

	/* POST /products by alice: two products */
	CHECK(request(p, "alice", "POST", "/products", &err));
	CHECK(ct_emit_insert(p, "products", "sku-1",
		"{\"sku\":\"sku-1\",\"name\":\"Widget\",\"qty\":10,\"price\":{\"amount\":9.5,\"currency\":\"EUR\"},"
		"\"tags\":[]}", &err));
	CHECK(ct_emit_insert(p, "products", "sku-2",
		"{\"sku\":\"sku-2\",\"name\":\"Gadget\",\"qty\":3,\"price\":{\"amount\":25,\"currency\":\"EUR\"},"
		"\"tags\":[]}", &err));
	CHECK(ct_context_exit(p, &err));

	/* PATCH /products/sku-1 by bob: a sale, with the stock count */
	CHECK(request(p, "bob", "PATCH", "/products/sku-1", &err));
	CHECK(ct_emit_update(p, "products", "sku-1",
		"{\"sku\":\"sku-1\",\"name\":\"Widget\",\"qty\":7,\"price\":{\"amount\":8.0,\"currency\":\"EUR\"},"
		"\"tags\":[\"sale\"]}",
		"{\"sku\":\"sku-1\",\"name\":\"Widget\",\"qty\":10,\"price\":{\"amount\":9.5,\"currency\":\"EUR\"},"
		"\"tags\":[]}", &err));
	/* many-to-many: tag sku-1 with "sale" */
	{
		ct_change c = {0};
		c.op = CT_OP_RELATION_ADD;
		c.collection = "products";
		c.document_id = "sku-1";
		c.relation_name = "tags";
		c.relation_collection = "tags";
		c.relation_document_id = "sale";
		CHECK(ct_emit(p, &c, NULL, &err));
	}
	/* the same save again: nothing changed, so nothing is emitted */
	CHECK(ct_emit_update(p, "products", "sku-1",
		"{\"sku\":\"sku-1\",\"name\":\"Widget\",\"qty\":7,\"price\":{\"amount\":8.0,\"currency\":\"EUR\"},"
		"\"tags\":[\"sale\"]}",
		"{\"sku\":\"sku-1\",\"name\":\"Widget\",\"qty\":7,\"price\":{\"amount\":8.0,\"currency\":\"EUR\"},"
		"\"tags\":[\"sale\"]}", &err));
	CHECK(ct_context_exit(p, &err));

	/* POST /users by admin: the password is excluded */
	CHECK(request(p, "admin", "POST", "/users", &err));
	CHECK(ct_emit_insert(p, "users", "u-42",
		"{\"login\":\"carol\",\"password\":\"hunter2\",\"api_token\":\"t0k3n\",\"role\":\"clerk\"}", &err));
	CHECK(ct_context_exit(p, &err));

	/* DELETE /products/sku-2 by alice, with a manual event explaining why */
	CHECK(request(p, "alice", "DELETE", "/products/sku-2", &err));
	{
		ct_change c = {0};
		c.op = CT_OP_EVENT;
		c.collection = "products";
		c.document_id = "sku-2";
		c.label = "discontinued";
		CHECK(ct_emit(p, &c, NULL, &err));
	}
	CHECK(ct_emit_delete(p, "products", "sku-2", NULL, &err));
	CHECK(ct_context_exit(p, &err));

	CHECK(ct_producer_flush(p, 30000, &err));
	ct_producer_stats st;
	ct_producer_stats_get(p, &st);
	printf("inventory: emitted=%llu delivered=%llu unchanged=%llu failed=%llu topic=%s\n",
	       (unsigned long long)st.emitted, (unsigned long long)st.delivered,
	       (unsigned long long)st.unchanged, (unsigned long long)st.failed, topic);
	rc = st.failed ? 1 : 0;
out:
	ct_producer_destroy(p, 10000);
	ct_producer_config_destroy(conf);
	return rc;
}
