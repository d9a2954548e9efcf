/*
 * fuzz_event.c - ct_event_parse on arbitrary bytes with small limits. Beyond
 * "no crash, no leak, no UB", checks what an accepted event promises: the
 * contract's invariants hold, the producer's path (ct_event_from_json)
 * accepts the same tree, and error messages stay one line. The same bytes,
 * as a C string, also go through the timestamp and UUID parsers.
 */
#include "changetrail/event.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_time(const uint8_t *data, size_t size)
{
	char s[64], out[32];
	int64_t us, again;
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	if (ct_time_parse_rfc3339(s, &us) == CT_OK && ct_time_format_rfc3339_us(us, out) == CT_OK) {
		if (ct_time_parse_rfc3339(out, &again) != CT_OK || again != us)
			abort();
	}
	(void)ct_uuid_valid(s, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small bounds so that the fuzzer reaches every limit quickly. */
	const ct_limits l = {.max_bytes = 4096, .max_depth = 8, .max_keys = 64, .max_string_bytes = 1100,
			     .max_array_items = 16};
	ct_event *ev = NULL, *ev2 = NULL;
	ct_error err;
	char ts[32];

	check_time(data, size);
	int rc = ct_event_parse((const char *)data, size, &l, &ev, &err);
	if (rc != CT_OK) {
		if (ev || err.code != rc || strchr(err.message, '\n') || strlen(err.message) >= sizeof(err.message))
			abort();
		if (rc != CT_ELIMIT && rc != CT_EPARSE && rc != CT_ESCHEMA && rc != CT_ENOMEM)
			abort();
		return 0;
	}
	if (!ct_uuid_valid(ct_event_id(ev), 7) || ct_time_format_rfc3339_us(ct_event_ts_us(ev), ts) != CT_OK ||
	    strcmp(ts, ct_event_ts(ev)) != 0 || strchr(ct_event_collection(ev), '/') ||
	    !ct_op_name(ct_event_op(ev)) || ct_event_seq(ev) < -1)
		abort();
	switch (ct_event_op(ev)) {
	case CT_OP_INSERT:
	case CT_OP_UPDATE:
	case CT_OP_SNAPSHOT:
		if (!ct_event_after(ev))
			abort();
		break;
	case CT_OP_DELETE:
		if (ct_event_after(ev))
			abort();
		break;
	default:
		break;
	}
	if (ct_event_from_json((json_t *)ct_event_json(ev), &l, &ev2, &err) != CT_OK)
		abort();
	ct_event_free(ev2);
	ct_event_free(ev);
	return 0;
}
