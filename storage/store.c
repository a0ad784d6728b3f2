/* store: opening the storage, reading bytes wherever they live, blob links and the manifest write path. */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob_fs.h"
#include "err.h"
#include "log.h"
#include "manifest.h"
#include "meta.h"
#include "paths.h"
#include "reserve.h"
#include "store_backend.h"
#include "store_meta.h"
#include "xalloc.h"

_Static_assert(STORE_UPLOAD_ID_LEN == UPLOAD_ID_LEN, "one upload id length");
_Static_assert(STORE_REF_CONFIG == (int)REF_CONFIG && STORE_REF_LAYER == (int)REF_LAYER &&
		       STORE_REF_CHILD == (int)REF_CHILD && STORE_REF_SUBJECT == (int)REF_SUBJECT,
	       "store_ref_kind follows enum ref_kind");

int store_open(const char *root, struct store **out)
{
	struct store *st = xcalloc(1, sizeof(*st));
	struct buf p = BUF_INIT;
	int rc;
	*out = NULL;
	st->root = xstrdup(root);
	if ((rc = blob_fs_open(root, &st->blobs))) {
		log_error("cannot prepare data directory \"%s\"", root);
		goto fail;
	}
	paths_db(&p, root);
	if ((rc = meta_open(p.buf))) {
		log_error("cannot open database \"%s\"", p.buf);
		goto fail;
	}
	buf_release(&p);
	*out = st;
	return 0;
fail:
	buf_release(&p);
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	meta_close();
	if (st->blobs)
		st->blobs->ops->close(st->blobs);
	if (st->reserved)
		reserve_close();
	free(st->root);
	free(st);
}

void store_reserve(struct store *st)
{
	/* logged; without it, deletes may fail on a full disk */
	(void)reserve_open(st->root, RESERVE_SIZE);
	st->reserved = 1;
}

int store_push_allowed(struct store *st)
{
	(void)st;
	return reserve_restore();
}

int store_retry_full(int rc)
{
	return rc == E_NO_SPACE && reserve_release();
}

int store_ready(struct store *st, struct buf *detail)
{
	struct meta_stats ms;
	int rc = st->blobs->ops->probe(st->blobs, detail);
	if (!rc && meta_stats(&ms)) {
		buf_adds(detail, "database not available");
		rc = E_STORE_UNAVAILABLE;
	}
	return rc;
}

void store_local_path(const char *root, enum store_local_path which, struct buf *out)
{
	switch (which) {
	case STORE_PATH_DB:
		paths_db(out, root);
		break;
	case STORE_PATH_LOCK:
		paths_lock(out, root);
		break;
	case STORE_PATH_KEYS:
		paths_keys_dir(out, root);
		break;
	}
}

const struct blobstore *store_blobstore(const struct store *st)
{
	return blob_fs_blobstore(st->blobs);
}

/* ---- readers ---- */

static void reader_init(struct store *st, struct store_reader *rd)
{
	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
	rd->st = st;
	buf_init(&rd->held, 0);
}

int store_reader_read(struct store_reader *rd, int64_t off, void *buf, size_t len, size_t *n)
{
	if (rd->mem) {
		size_t left = off < rd->size ? (size_t)(rd->size - off) : 0;
		*n = len < left ? len : left;
		memcpy(buf, rd->mem + off, *n);
		return 0;
	}
	if (!rd->st)
		return E_INTERNAL;
	return rd->st->blobs->ops->read(rd->st->blobs, rd, off, buf, len, n);
}

int store_reader_take_fd(struct store_reader *rd)
{
	int fd = rd->fd;
	rd->fd = -1;
	return fd;
}

void store_reader_release(struct store_reader *rd)
{
	if (rd->st && !rd->mem && (rd->fd >= 0 || rd->be_state))
		rd->st->blobs->ops->reader_release(rd->st->blobs, rd);
	if (rd->fd >= 0)
		close(rd->fd);
	rd->fd = -1;
	rd->mem = NULL;
	rd->be_state = NULL;
	free(rd->owned);
	rd->owned = NULL;
	buf_release(&rd->held);
}

/* Hands the bytes in rd->held out as the reader's content. */
static void reader_from_held(struct store_reader *rd)
{
	rd->mem = (const unsigned char *)rd->held.buf;
	rd->size = (int64_t)rd->held.len;
}

int store_blob_open_any(struct store *st, const struct digest *d, struct store_reader *rd)
{
	int found = 0, rc;
	reader_init(st, rd);
	rc = st->blobs->ops->open(st->blobs, d, NULL, rd);
	if (rc != E_BLOB_UNKNOWN)
		return rc;
	/* a manifest's bytes are in the database (every one pushed since schema 3) */
	if ((rc = meta_blob_content(d, &rd->held, &found)))
		return rc;
	if (!found)
		return E_BLOB_UNKNOWN;
	reader_from_held(rd);
	return 0;
}

/* ---- blobs ---- */

int store_blob_stat(struct store *st, const char *repo, const struct digest *d, int64_t *size)
{
	(void)st;
	return meta_blob_linked(repo, d, size);
}

int store_blob_held(struct store *st, const struct digest *d, int64_t *size)
{
	return st->blobs->ops->stat(st->blobs, d, NULL, size);
}

int store_blob_open(struct store *st, const char *repo, const struct digest *d, struct store_reader *rd,
		    struct buf *detail)
{
	int rc;
	reader_init(st, rd);
	if ((rc = meta_blob_linked(repo, d, NULL)))
		return rc;
	rc = store_blob_open_any(st, d, rd);
	if (rc == E_BLOB_UNKNOWN && detail)
		buf_adds(detail, "blob content missing from storage");
	return rc;
}

int store_blob_read_all(struct store *st, const struct digest *d, size_t max, struct buf *out)
{
	struct store_reader rd;
	struct digest got;
	int rc = store_blob_open_any(st, d, &rd);
	buf_reset(out);
	if (!rc && rd.size > (int64_t)max)
		rc = E_MANIFEST_TOO_BIG;
	for (int64_t off = 0; !rc && off < rd.size;) {
		size_t n = 0;
		buf_grow(out, 1 << 16);
		rc = store_reader_read(&rd, off, out->buf + out->len, 1 << 16, &n);
		if (!rc && !n)
			rc = E_IO; /* shorter than its size */
		buf_setlen(out, out->len + n);
		off += (int64_t)n;
	}
	if (!rc) {
		digest_of(d->alg, out->buf, out->len, &got);
		if (!digest_eq(&got, d))
			rc = E_DIGEST_INVALID;
	}
	store_reader_release(&rd);
	return rc;
}

int store_blob_url(struct store *st, const struct digest *d, int ttl_s, struct buf *url)
{
	if (!st->blobs->ops->presign)
		return E_UNSUPPORTED;
	return st->blobs->ops->presign(st->blobs, d, NULL, ttl_s, url);
}

int store_blob_link(struct store *st, const char *repo, const struct digest *d, int64_t size)
{
	(void)st;
	return meta_blob_link(repo, d, size);
}

int store_blob_unlink(struct store *st, const char *repo, const struct digest *d)
{
	int rc = meta_blob_unlink(repo, d);
	(void)st;
	/* a full disk: the reserve's room lets the delete through (reserve.h) */
	if (store_retry_full(rc))
		rc = meta_blob_unlink(repo, d);
	return rc;
}

struct mount_find {
	int (*filter)(void *ctx, const char *repo);
	void *ctx;
	char *repo;
};

static int mount_pick(void *ctx, const char *repo)
{
	struct mount_find *mf = ctx;
	if (mf->filter && !mf->filter(mf->ctx, repo))
		return 0;
	mf->repo = xstrdup(repo);
	return 1;
}

int store_blob_mount(struct store *st, const char *repo, const struct digest *d, const char *from,
		     int (*filter)(void *ctx, const char *repo), void *ctx)
{
	struct mount_find mf = { filter, ctx, NULL };
	int64_t size;
	int rc;
	if (from) {
		mf.repo = xstrdup(from);
	} else {
		if ((rc = meta_blob_repos(d, mount_pick, &mf)) < 0)
			return rc;
		if (!mf.repo)
			return STORE_MOUNT_FALLBACK;
	}
	rc = meta_blob_linked(mf.repo, d, &size);
	if (!rc && store_blob_held(st, d, NULL))
		rc = STORE_MOUNT_FALLBACK; /* known but its bytes are gone: let the client upload it again */
	else if (!rc)
		rc = meta_blob_link(repo, d, size);
	else if (rc == E_BLOB_UNKNOWN)
		rc = STORE_MOUNT_FALLBACK;
	free(mf.repo);
	return rc;
}

/* ---- manifests ---- */

void store_manifest_release(struct store_manifest *m)
{
	free(m->media_type);
	free(m->artifact_type);
	free(m->annotations);
	memset(m, 0, sizeof(*m));
}

void store_put_result_release(struct store_put_result *res)
{
	free(res->media_type);
	memset(res, 0, sizeof(*res));
}

int store_manifest_put(struct store *st, const char *repo, enum digest_alg alg, const struct digest *want,
		       const void *body, size_t len, const char *content_type, const char *tag,
		       const struct store_actor *actor, struct store_put_result *res, struct buf *detail)
{
	struct manifest_info mi = { 0 };
	struct store_meta_actor ma;
	char ds[DIGEST_STR_MAX];
	int rc;
	(void)st;
	memset(res, 0, sizeof(*res));
	digest_of(alg, body, len, &res->digest);
	if (want && !digest_eq(&res->digest, want)) {
		if (detail)
			buf_addf(detail, "content digest %s does not match the reference", digest_str(&res->digest, ds));
		return E_DIGEST_INVALID;
	}
	if ((rc = manifest_parse(body, len, content_type, &mi, detail)))
		goto out;
	res->has_subject = mi.has_subject;
	res->subject = mi.subject;
	res->media_type = xstrdup(mi.media_type);
	store_meta_actor_init(&ma, actor);
	/* the bytes go into the manifest's own transaction: one durable commit */
	rc = meta_manifest_put_content(repo, &res->digest, (int64_t)len, body, &mi, tag, store_meta_actor(&ma), detail);
	store_meta_actor_done(&ma);
out:
	manifest_info_release(&mi);
	return rc;
}

int store_manifest_get(struct store *st, const char *repo, const struct reference *ref,
		       struct store_manifest *m, struct store_reader *rd, struct buf *detail)
{
	struct meta_manifest mm = { 0 };
	int rc;
	memset(m, 0, sizeof(*m));
	reader_init(st, rd);
	if ((rc = meta_manifest_get(repo, ref, &mm)))
		goto out;
	m->digest = mm.digest;
	m->size = mm.size;
	m->media_type = mm.media_type;
	m->artifact_type = mm.artifact_type;
	m->annotations = mm.annotations;
	mm.media_type = mm.artifact_type = mm.annotations = NULL;
	if (mm.content) {
		/* the database's copy, handed over as it is */
		rd->owned = mm.content;
		rd->mem = mm.content;
		rd->size = (int64_t)mm.content_len;
		mm.content = NULL;
		goto out;
	}
	/* stores from before schema 3 keep older manifests as files */
	rc = st->blobs->ops->open(st->blobs, &m->digest, NULL, rd);
	if (rc == E_BLOB_UNKNOWN) {
		rc = E_MANIFEST_UNKNOWN;
		if (detail)
			buf_adds(detail, "manifest content missing from storage");
	}
out:
	meta_manifest_release(&mm);
	return rc;
}

int store_manifest_delete(struct store *st, const char *repo, const struct reference *ref,
			  const struct store_actor *actor)
{
	struct store_meta_actor ma;
	int rc = 0;
	(void)st;
	store_meta_actor_init(&ma, actor);
	for (int tries = 0; tries < 2; tries++) {
		if (ref->is_digest)
			rc = meta_manifest_delete(repo, &ref->digest, store_meta_actor(&ma));
		else
			rc = meta_tag_delete(repo, ref->tag, store_meta_actor(&ma));
		if (tries || !store_retry_full(rc))
			break;
	}
	store_meta_actor_done(&ma);
	return rc;
}
