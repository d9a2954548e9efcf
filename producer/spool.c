/*
 * spool.c - the producer's append-only spool file: events that did not fit
 * librdkafka's queue while the brokers were away, kept in order on disk and
 * replayed when they return (also by the next run of the application).
 *
 * Record: u32 magic "CTS1", u32 key length, u32 value length, u32 FNV-1a of
 * key+value, key, value (little-endian). A torn record at the end (a crash
 * during append) is detected by its length or checksum and cut off at open.
 * Replay may send a record twice after a crash; consumers drop the repeat by
 * its event_id.
 */
#include "producer_internal.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_MAGIC 0x31535443u /* "CTS1" */
#define SPOOL_MAX_RECORD (64u << 20)

static uint32_t fnv1a(uint32_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 16777619u;
	}
	return h;
}

static void put_u32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)v; b[1] = (unsigned char)(v >> 8);
	b[2] = (unsigned char)(v >> 16); b[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Reads the record at `off`. 1 = ok, 0 = end or torn record, -1 = I/O. */
static int read_record(FILE *f, uint64_t off, char **key, size_t *klen, char **val, size_t *vlen,
		       uint64_t *next)
{
	unsigned char h[16];
	char *k = NULL, *v = NULL;
	if (fseeko(f, (off_t)off, SEEK_SET))
		return -1;
	if (fread(h, 1, 16, f) != 16)
		return ferror(f) ? -1 : 0;
	uint32_t kl = get_u32(h + 4), vl = get_u32(h + 8);
	if (get_u32(h) != SPOOL_MAGIC || kl > SPOOL_MAX_RECORD || vl > SPOOL_MAX_RECORD)
		return 0;
	k = malloc(kl + 1);
	v = malloc(vl + 1);
	if (!k || !v)
		goto fail;
	if (fread(k, 1, kl, f) != kl || fread(v, 1, vl, f) != vl)
		goto torn;
	if (fnv1a(fnv1a(2166136261u, k, kl), v, vl) != get_u32(h + 12))
		goto torn;
	k[kl] = v[vl] = '\0';
	if (key) { *key = k; *klen = kl; } else free(k);
	if (val) { *val = v; *vlen = vl; } else free(v);
	*next = off + 16 + kl + vl;
	return 1;
torn:
	free(k);
	free(v);
	return ferror(f) ? -1 : 0;
fail:
	free(k);
	free(v);
	return -1;
}

int ct_spool_open(ct_spool **out, const char *path, uint64_t max_bytes, int do_fsync, ct_error *err)
{
	ct_spool *s = calloc(1, sizeof(*s));
	int fd = -1, rc = CT_OK;
	if (!s)
		return ct_error_set(err, CT_ENOMEM, "spool: out of memory");
	s->max_bytes = max_bytes;
	s->fsync = do_fsync;
	if (!(s->path = strdup(path))) {
		rc = ct_error_set(err, CT_ENOMEM, "spool: out of memory");
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || !(s->f = fdopen(fd, "r+b"))) {
		rc = ct_error_set(err, CT_EIO, "spool %.200s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	/* Find the end of the last whole record; cut a torn tail. */
	uint64_t off = 0, next;
	int r;
	while ((r = read_record(s->f, off, NULL, NULL, NULL, NULL, &next)) == 1) {
		off = next;
		s->records++;
	}
	if (r < 0) {
		rc = ct_error_set(err, CT_EIO, "spool %.200s: read error", path);
		goto out;
	}
	if (ftruncate(fileno(s->f), (off_t)off)) {
		rc = ct_error_set(err, CT_EIO, "spool %.200s: %s", path, strerror(errno));
		goto out;
	}
	s->write_off = off;
out:
	if (rc) {
		ct_spool_close(s);
		return rc;
	}
	*out = s;
	return CT_OK;
}

static void header(unsigned char h[16], const char *key, size_t klen, const char *val, size_t vlen)
{
	put_u32(h, SPOOL_MAGIC);
	put_u32(h + 4, (uint32_t)klen);
	put_u32(h + 8, (uint32_t)vlen);
	put_u32(h + 12, fnv1a(fnv1a(2166136261u, key, klen), val, vlen));
}

void ct_spool_encode(ct_buf *b, const char *key, size_t klen, const char *val, size_t vlen)
{
	unsigned char h[16];
	header(h, key, klen, val, vlen);
	ct_buf_put(b, h, 16);
	ct_buf_put(b, key, klen);
	ct_buf_put(b, val, vlen);
}

int ct_spool_prepend(ct_spool *s, const ct_buf *records, uint64_t n, ct_error *err)
{
	char *tmp = NULL, chunk[65536];
	FILE *out = NULL;
	int rc = CT_OK, fd = -1;
	uint64_t left = s->write_off - s->read_off;

	if (!n)
		return CT_OK;
	if (!(tmp = malloc(strlen(s->path) + 5))) {
		rc = ct_error_set(err, CT_ENOMEM, "spool: out of memory");
		goto out;
	}
	sprintf(tmp, "%s.tmp", s->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(out = fdopen(fd, "wb"))) {
		rc = ct_error_set(err, CT_EIO, "spool %.200s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	/* Older events first: the prefix, then what was not replayed yet. */
	if (fwrite(records->data, 1, records->len, out) != records->len ||
	    fseeko(s->f, (off_t)s->read_off, SEEK_SET))
		goto io;
	while (left) {
		size_t want = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
		if (fread(chunk, 1, want, s->f) != want || fwrite(chunk, 1, want, out) != want)
			goto io;
		left -= want;
	}
	if (fflush(out) || fsync(fileno(out)) || rename(tmp, s->path))
		goto io;
	fclose(s->f);
	s->f = out;
	out = NULL;
	s->write_off = records->len + s->write_off - s->read_off;
	s->read_off = 0;
	s->records += n;
	goto out;
io:
	rc = ct_error_set(err, CT_EIO, "spool %.200s: rewrite failed: %s", s->path, strerror(errno));
	unlink(tmp);
out:
	if (out)
		fclose(out);
	free(tmp);
	return rc;
}

int ct_spool_append(ct_spool *s, const char *key, size_t klen, const char *val, size_t vlen,
		    ct_error *err)
{
	unsigned char h[16];
	uint64_t size = 16 + klen + vlen;
	if (klen > SPOOL_MAX_RECORD || vlen > SPOOL_MAX_RECORD)
		return ct_error_set(err, CT_ELIMIT, "spool: record too large");
	if (s->write_off + size > s->max_bytes)
		return ct_error_set(err, CT_EQUEUEFULL, "spool full: %llu of %llu bytes used",
				    (unsigned long long)s->write_off, (unsigned long long)s->max_bytes);
	header(h, key, klen, val, vlen);
	if (fseeko(s->f, (off_t)s->write_off, SEEK_SET) || fwrite(h, 1, 16, s->f) != 16 ||
	    fwrite(key, 1, klen, s->f) != klen || fwrite(val, 1, vlen, s->f) != vlen ||
	    fflush(s->f) || (s->fsync && fdatasync(fileno(s->f)))) {
		int e = errno;
		/* Drop the partial record so the file stays well-formed. */
		if (ftruncate(fileno(s->f), (off_t)s->write_off)) {
			/* nothing more to do: open() cuts torn tails anyway */
		}
		return ct_error_set(err, CT_EIO, "spool %.200s: write failed: %s", s->path, strerror(e));
	}
	s->write_off += size;
	s->records++;
	return CT_OK;
}

int ct_spool_peek(ct_spool *s, char **key, size_t *klen, char **val, size_t *vlen, ct_error *err)
{
	uint64_t next;
	if (s->read_off >= s->write_off)
		return 0;
	int r = read_record(s->f, s->read_off, key, klen, val, vlen, &next);
	if (r <= 0)
		return ct_error_set(err, CT_EIO, "spool %.200s: unreadable record at %llu", s->path,
				    (unsigned long long)s->read_off);
	s->peek_next = next;
	return 1;
}

void ct_spool_consume(ct_spool *s)
{
	s->read_off = s->peek_next;
	s->records--;
}

int ct_spool_reset_if_empty(ct_spool *s)
{
	if (s->read_off < s->write_off)
		return 0;
	if (ftruncate(fileno(s->f), 0))
		return -1;
	s->read_off = s->write_off = 0;
	s->records = 0;
	return 1;
}

void ct_spool_close(ct_spool *s)
{
	if (!s)
		return;
	if (s->f)
		fclose(s->f);
	free(s->path);
	free(s);
}
