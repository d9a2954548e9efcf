/*
 * ct_buf.h - a growable byte buffer for building text (canonical JSON, keys,
 * messages). Internal; not installed.
 */
#ifndef CT_BUF_H
#define CT_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct ct_buf {
	char *data;   /* NUL-terminated once anything was appended; may be NULL */
	size_t len;
	size_t cap;
	size_t max;   /* growth bound in bytes; 0 = unbounded */
	int failed;   /* sticky: an append failed (no memory or over max) */
} ct_buf;

#define CT_BUF_INIT {NULL, 0, 0, 0, 0}

/* Appends n bytes; on failure sets b->failed and returns -1. */
int ct_buf_put_slow(ct_buf *b, const void *p, size_t n);

/* Inline while there is room (the canonical writer appends a few bytes at a
 * time, millions of times a second); growth and the bounds in ct_buf_put_slow. */
static inline int ct_buf_put(ct_buf *b, const void *p, size_t n)
{
	if (n < b->cap - b->len && !b->failed && (!b->max || b->len + n <= b->max)) {
		if (n) /* p may be NULL with n 0 */
			memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
		return 0;
	}
	return ct_buf_put_slow(b, p, n);
}

static inline int ct_buf_putc(ct_buf *b, char c)
{
	return ct_buf_put(b, &c, 1);
}

int ct_buf_puts(ct_buf *b, const char *s);
/* Hands the buffer to the caller (free() it); the ct_buf is reset. */
char *ct_buf_detach(ct_buf *b, size_t *len);
void ct_buf_free(ct_buf *b);

#endif
