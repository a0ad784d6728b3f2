/*
 * store_migrate: berth migrate's copy of one store into another: every
 * table through meta_migrate.c in batches, each blob's bytes into the
 * destination's backend before its record, then a look at every row again.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "store_backend.h"
#include "store_maint.h"
#include "upload.h"
#include "xalloc.h"

_Static_assert(STORE_MIG_TABLES == META_MIG_TABLES, "one report per table");

/* A batch: one write transaction in the destination. */
#define BATCH_ROWS 256
#define BATCH_BYTES (4 << 20)
/* Blobs up to this size are read whole and written in one request; larger ones stream. */
#define SMALL_BLOB (8 << 20)
#define COPY_CHUNK (1 << 20)
/* A streamed copy hands the backend what it buffered every so often (S3: parts go out as they fill). */
#define FLUSH_EVERY (16 << 20)

struct mig {
	struct store *from, *to;
	const struct store_mig_opts *o;
	struct store_mig_report *r;
	enum meta_mig_table t;
	struct meta_mig_row rows[BATCH_ROWS];
	unsigned char out[BATCH_ROWS];
	size_t n, bytes;
	int64_t done;
	int streamed; /* a large blob was copied into the batch: record it now, not after 255 more */
};

/* A short name for row (its key) in messages. */
static void row_label(enum meta_mig_table t, const struct meta_mig_row *row, struct buf *out)
{
	const struct meta_mig_val *v = row->v;
	buf_reset(out);
	switch (t) {
	case META_MIG_REPOS:
	case META_MIG_BLOBS:
	case META_MIG_CONTENT:
		buf_adds(out, v[0].p);
		break;
	case META_MIG_LINKS:
	case META_MIG_MANIFESTS:
		buf_addf(out, "%s@%s", (const char *)v[0].p, (const char *)v[1].p);
		break;
	case META_MIG_REFS:
		buf_addf(out, "%s@%s -> %s", (const char *)v[0].p, (const char *)v[1].p, (const char *)v[3].p);
		break;
	case META_MIG_TAGS:
		buf_addf(out, "%s:%s -> %s", (const char *)v[0].p, (const char *)v[1].p, (const char *)v[2].p);
		break;
	case META_MIG_HISTORY:
		buf_addf(out, "entry %lld of %s:%s", (long long)v[0].i, (const char *)v[1].p, (const char *)v[2].p);
		break;
	case META_MIG_PATS:
		buf_addf(out, "token %lld (%s/%s)", (long long)v[0].i, (const char *)v[1].p, (const char *)v[2].p);
		break;
	case META_MIG_AUDIT:
		buf_addf(out, "event %lld (%s)", (long long)v[0].i, (const char *)v[3].p);
		break;
	case META_MIG_TABLES:
		break;
	}
}

static void problem(struct mig *x, const struct meta_mig_row *row, const char *why)
{
	struct buf b = BUF_INIT;
	row_label(x->t, row, &b);
	buf_addf(&b, ": %s", why);
	if (x->o->on_problem)
		x->o->on_problem(x->o->ctx, meta_mig_table_name(x->t), b.buf);
	else
		log_warn("migrate: %s: %s", meta_mig_table_name(x->t), b.buf);
	buf_release(&b);
}

/* ---- before anything is written: conflicts ---- */

static int preflight_row(void *ctx, const struct meta_mig_row *row)
{
	struct mig *x = ctx;
	int state;
	int rc = meta_mig_check(x->to->meta, x->t, row, &state);
	if (rc || state != META_MIG_CONFLICT || (x->t == META_MIG_TAGS && x->o->replace))
		return rc;
	x->r->conflicts++;
	x->r->t[x->t].conflicts++;
	problem(x, row,
		x->t == META_MIG_TAGS	? "the destination's tag points at another digest" :
		x->t == META_MIG_BLOBS	? "the destination has it with another size" :
					  "the destination uses this id for something else");
	return 0;
}

/* ---- blob bytes ---- */

/* Streams rd into a new upload of be finished as d; *loc where it went. */
static int copy_streamed(struct blob_backend *be, struct store_reader *rd, const struct digest *d, struct buf *loc)
{
	char id[UPLOAD_ID_LEN + 1];
	struct buf state = BUF_INIT, next = BUF_INIT;
	struct blob_upload *u = NULL;
	char *tmp = xmalloc(COPY_CHUNK);
	int64_t off = 0, flushed = 0, size = 0;
	upload_new_id(id);
	int rc = be->ops->up_create(be, id, &state);
	if (!rc && !(rc = be->ops->up_acquire(be, id, state.buf, state.len, &u)))
		be->ops->up_expect(u, rd->size);
	while (!rc) {
		size_t n = 0;
		if (off < rd->size && !(rc = store_reader_read(rd, off, tmp, COPY_CHUNK, &n)) && !n)
			rc = E_IO; /* shorter than its size */
		if (!rc && n)
			rc = be->ops->up_write(u, tmp, n);
		off += (int64_t)n;
		if (rc || (off < rd->size && off - flushed < FLUSH_EVERY))
			continue;
		buf_reset(&next);
		if ((rc = be->ops->up_flush(u, &next)))
			break;
		flushed = off;
		if (next.len) {
			buf_reset(&state);
			buf_add(&state, next.buf, next.len);
		}
		if (off >= rd->size)
			break;
	}
	if (!rc)
		rc = be->ops->up_finish(u, d, &size, loc);
	if (u)
		be->ops->up_release(u);
	if (rc)
		(void)be->ops->up_remove(be, id, state.buf, state.len);
	buf_release(&state);
	buf_release(&next);
	free(tmp);
	return rc;
}

/* Copies blob d (size bytes) from x->from into x->to's backend, checking its digest; *loc where it went. */
static int copy_blob(struct mig *x, const struct digest *d, int64_t size, struct buf *loc)
{
	struct blob_backend *be = x->to->blobs;
	struct store_reader rd;
	struct buf b = BUF_INIT;
	int rc = store_blob_open_any(x->from, d, &rd);
	if (rc)
		return rc;
	if (rd.size != size) {
		rc = E_DIGEST_INVALID;
	} else if (size > SMALL_BLOB) {
		rc = copy_streamed(be, &rd, d, loc);
		x->streamed = 1;
	} else {
		struct digest got;
		buf_grow(&b, (size_t)size);
		size_t n = 0;
		for (int64_t off = 0; !rc && off < size; off += (int64_t)n) {
			if (!(rc = store_reader_read(&rd, off, b.buf + off, (size_t)(size - off), &n)) && !n)
				rc = E_IO;
		}
		digest_of(d->alg, b.buf, (size_t)size, &got);
		if (!rc && !digest_eq(&got, d))
			rc = E_DIGEST_INVALID;
		if (!rc)
			rc = be->ops->write(be, d, b.buf, (size_t)size, loc);
	}
	store_reader_release(&rd);
	buf_release(&b);
	if (!rc) {
		x->r->blobs_copied++;
		x->r->bytes_copied += size;
	}
	return rc;
}

/*
 * Makes sure the destination's backend holds the bytes of blob row (when
 * they are not in the database) and sets the row's location to where
 * they are there: the source's location means nothing to it.
 */
static int blob_bytes(struct mig *x, struct meta_mig_row *row)
{
	struct meta_mig_row moved;
	struct digest d;
	struct buf loc = BUF_INIT;
	int64_t size = row->v[META_MIG_BLOB_SIZE].i, held = -1;
	int state, rc = meta_mig_check(x->to->meta, META_MIG_BLOBS, row, &state);
	struct blob_backend *be = x->to->blobs;
	if (rc || state == META_MIG_SAME || row->v[META_MIG_BLOB_IN_DB].i)
		goto out;
	if (digest_parse(row->v[META_MIG_BLOB_DIGEST].p, &d)) {
		problem(x, row, "not a digest");
		rc = E_DIGEST_INVALID;
		goto out;
	}
	/* an earlier run's copy under the digest's own key */
	if (!be->ops->stat(be, &d, NULL, &held) && held == size) {
		x->r->blobs_present++;
		goto out;
	}
	if ((rc = copy_blob(x, &d, size, &loc)))
		problem(x, row, rc == E_DIGEST_INVALID ? "its bytes in the source do not match its digest"
						       : "cannot copy its bytes");
out:
	meta_mig_row_copy(&moved, row);
	moved.v[META_MIG_BLOB_LOCATION].null = !loc.len;
	moved.v[META_MIG_BLOB_LOCATION].p = loc.len ? loc.buf : NULL;
	moved.v[META_MIG_BLOB_LOCATION].len = loc.len;
	meta_mig_row_release(row);
	meta_mig_row_copy(row, &moved);
	meta_mig_row_release(&moved);
	buf_release(&loc);
	return rc;
}

/* ---- copying ---- */

static int flush(struct mig *x)
{
	struct store_mig_table *rt = &x->r->t[x->t];
	int rc = meta_mig_import(x->to->meta, x->t, x->rows, x->n, x->o->replace, x->out);
	for (size_t i = 0; i < x->n; i++) {
		if (rc)
			break;
		switch (x->out[i]) {
		case META_MIG_ADDED:
			rt->added++;
			break;
		case META_MIG_SAME:
			rt->same++;
			break;
		case META_MIG_REPLACED:
			rt->replaced++;
			break;
		default:
			/* taken meanwhile, or by another unique key (a token's hash or name) */
			rt->conflicts++;
			x->r->conflicts++;
			problem(x, &x->rows[i], "the destination has something else in its place");
		}
	}
	x->done += (int64_t)x->n;
	for (size_t i = 0; i < x->n; i++)
		meta_mig_row_release(&x->rows[i]);
	x->n = x->bytes = 0;
	if (!rc && x->o->on_progress)
		x->o->on_progress(x->o->ctx, meta_mig_table_name(x->t), x->done);
	return rc;
}

/* Export callback: the destination is another database, so writing from here is fine. */
static int copy_row(void *ctx, const struct meta_mig_row *row)
{
	struct mig *x = ctx;
	struct meta_mig_row *dst = &x->rows[x->n++];
	int rc = 0;
	meta_mig_row_copy(dst, row);
	for (int i = 0; i < META_MIG_COLS; i++)
		x->bytes += row->v[i].len;
	if (x->t == META_MIG_BLOBS)
		rc = blob_bytes(x, dst);
	if (!rc && (x->n == BATCH_ROWS || x->bytes >= BATCH_BYTES || x->streamed))
		rc = flush(x);
	x->streamed = 0;
	return rc;
}

/* ---- verification ---- */

static int verify_row(void *ctx, const struct meta_mig_row *row)
{
	struct mig *x = ctx;
	int state, rc = meta_mig_check(x->to->meta, x->t, row, &state);
	if (rc)
		return rc;
	if (state != META_MIG_SAME) {
		x->r->problems++;
		problem(x, row, state == META_MIG_ABSENT ? "missing in the destination" : "different in the destination");
		return 0;
	}
	if (x->t != META_MIG_BLOBS || row->v[META_MIG_BLOB_IN_DB].i)
		return 0;
	struct digest d, got;
	int64_t size = -1;
	if (digest_parse(row->v[META_MIG_BLOB_DIGEST].p, &d))
		return E_DIGEST_INVALID;
	if ((rc = store_blob_held(x->to, &d, &size)) || size != row->v[META_MIG_BLOB_SIZE].i) {
		x->r->problems++;
		problem(x, row, rc ? "its bytes are missing in the destination" : "its bytes have another size there");
		return rc == E_BLOB_UNKNOWN ? 0 : rc;
	}
	if (x->o->verify && ((rc = store_blob_rehash(x->to, &d, &got)) || !digest_eq(&got, &d))) {
		x->r->problems++;
		problem(x, row, "its bytes in the destination do not match its digest");
		return rc == E_BLOB_UNKNOWN || rc == E_DIGEST_INVALID ? 0 : rc;
	}
	return 0;
}

static const enum meta_mig_table conflicting[] = { META_MIG_BLOBS, META_MIG_TAGS, META_MIG_HISTORY, META_MIG_PATS,
						    META_MIG_AUDIT };

int store_migrate(struct store *from, struct store *to, const struct store_mig_opts *o, struct store_mig_report *r)
{
	struct mig *x = xcalloc(1, sizeof(*x));
	int rc = 0;
	memset(r, 0, sizeof(*r));
	x->from = from;
	x->to = to;
	x->o = o;
	x->r = r;
	for (int t = 0; t < META_MIG_TABLES; t++)
		r->t[t].name = meta_mig_table_name((enum meta_mig_table)t);
	for (size_t i = 0; i < sizeof(conflicting) / sizeof(conflicting[0]) && !rc; i++) {
		x->t = conflicting[i];
		rc = meta_mig_export(from->meta, x->t, preflight_row, x);
	}
	if (!rc && r->conflicts)
		rc = E_EXISTS;
	for (int t = 0; t < META_MIG_TABLES && !rc; t++) {
		x->t = (enum meta_mig_table)t;
		x->done = 0;
		rc = meta_mig_export(from->meta, x->t, copy_row, x);
		if (!rc && x->n)
			rc = flush(x);
		for (size_t i = 0; i < x->n; i++)
			meta_mig_row_release(&x->rows[i]);
		x->n = x->bytes = 0;
	}
	if (!rc)
		rc = meta_mig_finish(to->meta);
	if (!rc && r->conflicts)
		rc = E_EXISTS;
	for (int t = 0; t < META_MIG_TABLES && !rc; t++) {
		x->t = (enum meta_mig_table)t;
		rc = meta_mig_export(from->meta, x->t, verify_row, x);
		if (!rc)
			rc = meta_mig_count(from->meta, x->t, &r->t[t].source);
		if (!rc)
			rc = meta_mig_count(to->meta, x->t, &r->t[t].dest);
	}
	free(x);
	return rc;
}
