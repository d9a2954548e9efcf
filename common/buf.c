/*
 * buf.c - growable byte buffer (see ct_buf.h).
 */
#include "ct_buf.h"

#include <stdlib.h>
#include <string.h>

int ct_buf_put_slow(ct_buf *b, const void *p, size_t n)
{
	if (b->failed)
		return -1;
	if (n > (size_t)-1 / 2 - b->len - 1)
		goto fail;
	size_t need = b->len + n + 1;
	if (b->max && need > b->max + 1)
		goto fail;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < need)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			goto fail;
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
fail:
	b->failed = 1;
	return -1;
}

int ct_buf_puts(ct_buf *b, const char *s)
{
	return ct_buf_put(b, s, strlen(s));
}

char *ct_buf_detach(ct_buf *b, size_t *len)
{
	char *d = b->data;
	if (!d && !b->failed)
		d = calloc(1, 1);
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}

void ct_buf_free(ct_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}
