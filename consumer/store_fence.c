/*
 * store_fence.c - records taken back after a history conflict (see store_fence.h).
 */
#include "store_fence.h"

#include "ct_internal.h"
#include "store_internal.h"

int ctc_store_take_back(ctc_store *s, const ctc_record_ref *refs, size_t n, size_t *deleted, ct_error *err)
{
	bson_t filter = BSON_INITIALIZER, or, reply;
	bson_error_t be;
	char buf[16];
	const char *k;
	int rc = 0;
	if (deleted)
		*deleted = 0;
	if (n == 0)
		return 0;
	BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &or);
	for (size_t i = 0; i < n; i++) {
		bson_t one;
		bson_uint32_to_string((uint32_t)i, &k, buf, sizeof(buf));
		BSON_APPEND_DOCUMENT_BEGIN(&or, k, &one);
		BSON_APPEND_UTF8(&one, "_id", refs[i].id);
		BSON_APPEND_UTF8(&one, "hash", refs[i].hash);
		bson_append_document_end(&or, &one);
	}
	bson_append_array_end(&filter, &or);
	if (!mongoc_collection_delete_many(s->history, &filter, NULL, &reply, &be)) {
		rc = ct_error_set(err, CT_EMONGO, "take back history records: %s", be.message);
	} else if (deleted) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, &reply, "deletedCount") && BSON_ITER_HOLDS_NUMBER(&it))
			*deleted = (size_t)bson_iter_as_int64(&it);
	}
	bson_destroy(&reply);
	bson_destroy(&filter);
	return rc;
}
