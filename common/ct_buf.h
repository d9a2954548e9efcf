/*
 * ct_buf.h - a growable byte buffer for building text (canonical JSON, keys,
 * messages). Internal; not installed.
 */
#ifndef CT_BUF_H
#define CT_BUF_H

#include <stddef.h>

typedef struct ct_buf {
	char *data;   /* NUL-terminated once anything was appended; may be NULL */
	size_t len;
	size_t cap;
	size_t max;   /* growth bound in bytes; 0 = unbounded */
	int failed;   /* sticky: an append failed (no memory or over max) */
} ct_buf;

#define CT_BUF_INIT {NULL, 0, 0, 0, 0}

/* Appends n bytes; on failure sets b->failed and returns -1. */
int ct_buf_put(ct_buf *b, const void *p, size_t n);
int ct_buf_putc(ct_buf *b, char c);
int ct_buf_puts(ct_buf *b, const char *s);
/* Hands the buffer to the caller (free() it); the ct_buf is reset. */
char *ct_buf_detach(ct_buf *b, size_t *len);
void ct_buf_free(ct_buf *b);

#endif
