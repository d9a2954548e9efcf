/*
 * encode.c - writes the changetrail.event.v1 JSON text of one change
 * directly into a buffer: no tree is built on the emit path, documents that
 * arrive as text are copied as they are.
 */
#include "producer_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void ct_encode_string(ct_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;
	ct_buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ct_buf_put(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': ct_buf_puts(b, "\\\""); break;
		case '\\': ct_buf_puts(b, "\\\\"); break;
		case '\n': ct_buf_puts(b, "\\n"); break;
		case '\r': ct_buf_puts(b, "\\r"); break;
		case '\t': ct_buf_puts(b, "\\t"); break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			ct_buf_put(b, u, 6);
		}
		}
	}
	ct_buf_put(b, s + run, n - run);
	ct_buf_putc(b, '"');
}

static void field_str(ct_buf *b, const char *name, const char *v)
{
	ct_buf_putc(b, ',');
	ct_buf_putc(b, '"');
	ct_buf_puts(b, name);
	ct_buf_puts(b, "\":");
	ct_encode_string(b, v, strlen(v));
}

int ct_encode_event(ct_buf *b, const ct_producer *p, const ct_change *c, const char *event_id,
		    const char *ts, ct_context *ctx, const ct_encoded_docs *docs)
{
	char actor[CT_MAX_NAME_BYTES + 1] = "";

	ct_buf_puts(b, "{\"schema\":\"changetrail.event.v1\",\"event_id\":\"");
	ct_buf_puts(b, event_id);
	ct_buf_puts(b, "\",\"ts\":\"");
	ct_buf_puts(b, ts);
	ct_buf_puts(b, "\",\"source\":");
	ct_buf_puts(b, p->source_json);
	field_str(b, "collection", c->collection);
	field_str(b, "document_id", c->document_id);
	ct_buf_puts(b, ",\"op\":\"");
	ct_buf_puts(b, ct_op_name(c->op));
	ct_buf_putc(b, '"');
	if (c->label)
		field_str(b, "label", c->label);
	if (ctx) {
		ct_buf_puts(b, ",\"context\":{\"id\":\"");
		ct_buf_puts(b, ctx->id);
		ct_buf_puts(b, "\",\"metadata\":");
		ct_context_snapshot(ctx, b, actor, sizeof(actor));
		ct_buf_putc(b, '}');
	}
	if (c->actor)
		field_str(b, "actor", c->actor);
	else if (actor[0])
		field_str(b, "actor", actor);
	if (docs->after) {
		ct_buf_puts(b, ",\"after\":");
		ct_buf_put(b, docs->after, docs->after_len);
	}
	if (docs->before) {
		ct_buf_puts(b, ",\"before\":");
		ct_buf_put(b, docs->before, docs->before_len);
	}
	if (c->parent_collection) {
		ct_buf_puts(b, ",\"parent\":{\"collection\":");
		ct_encode_string(b, c->parent_collection, strlen(c->parent_collection));
		field_str(b, "document_id", c->parent_document_id);
		ct_buf_putc(b, '}');
	}
	if (c->relation_name) {
		ct_buf_puts(b, ",\"relation\":{\"name\":");
		ct_encode_string(b, c->relation_name, strlen(c->relation_name));
		field_str(b, "collection", c->relation_collection);
		field_str(b, "document_id", c->relation_document_id);
		ct_buf_putc(b, '}');
	}
	if (c->seq > 0) {
		char num[32];
		snprintf(num, sizeof(num), ",\"seq\":%" PRId64, c->seq);
		ct_buf_puts(b, num);
	}
	ct_buf_putc(b, '}');
	return b->failed ? CT_ENOMEM : CT_OK;
}
