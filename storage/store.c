/* store: opening the storage, reading bytes wherever they live, blob links and the manifest write path. */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob_fs.h"
#include "blob_s3_backend.h"
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

/* The object store's client from the config's strings (copied by blob_s3_open()). */
static int open_s3(const struct store_s3_config *c, struct blob_backend **out)
{
	struct blob_s3_config bc = { .s3 = {
		.endpoint = c->endpoint, .region = c->region, .bucket = c->bucket, .prefix = c->prefix,
		.path_style = c->path_style, .ca_file = c->ca_file, .access_key = c->access_key,
		.secret_key = c->secret_key } };
	return blob_s3_backend_open(&bc, out);
}

int store_open(const char *root, struct store **out)
{
	struct store_config sc = { .root = root };
	return store_open_config(&sc, out);
}

int store_open_config(const struct store_config *sc, struct store **out)
{
	struct store *st = xcalloc(1, sizeof(*st));
	struct buf p = BUF_INIT;
	int rc;
	*out = NULL;
	st->root = xstrdup(sc->root);
	st->pg = sc->db_url != NULL;
	if (sc->s3)
		rc = open_s3(&sc->s3cfg, &st->blobs);
	else if ((rc = blob_fs_open(sc->root, &st->blobs)))
		log_error("cannot prepare data directory \"%s\"", sc->root);
	if (rc)
		goto fail;
	if (sc->db_url) {
		/* the connection string is never logged: it may name a password */
		if ((rc = meta_open_pg(sc->db_url, sc->db_password, &st->meta))) {
			log_error("cannot open the PostgreSQL database of database.url");
			goto fail;
		}
	} else {
		paths_db(&p, sc->root);
		if ((rc = meta_open(p.buf, &st->meta))) {
			log_error("cannot open database \"%s\"", p.buf);
			goto fail;
		}
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
	meta_close(st->meta);
	if (st->blobs)
		st->blobs->ops->close(st->blobs);
	reserve_close(st->reserve);
	free(st->root);
	free(st);
}

void store_reserve(struct store *st)
{
	/* logged; without it, deletes may fail on a full disk */
	if (!st->reserve)
		(void)reserve_open(st->root, RESERVE_SIZE, &st->reserve);
}

int store_push_allowed(struct store *st)
{
	return reserve_restore(st->reserve);
}

int store_retry_full(struct store *st, int rc)
{
	return rc == E_NO_SPACE && reserve_release(st->reserve);
}

int store_ready(struct store *st, struct buf *detail)
{
	struct store_health h;
	int rc = store_health(st, &h);
	buf_add(detail, h.blobs_why.buf, h.blobs_why.len);
	if (h.blobs_why.len && h.db_why.len)
		buf_adds(detail, "; ");
	buf_add(detail, h.db_why.buf, h.db_why.len);
	store_health_release(&h);
	return rc;
}

int store_health(struct store *st, struct store_health *h)
{
	memset(h, 0, sizeof(*h));
	buf_init(&h->db_why, 0);
	buf_init(&h->blobs_why, 0);
	h->db_name = st->pg ? "postgresql" : "sqlite";
	h->blobs_name = st->blobs->ops->locates ? "s3" : "filesystem";
	int brc = st->blobs->ops->probe(st->blobs, &h->blobs_why);
	int drc = meta_ping(st->meta);
	h->blobs_ok = !brc;
	h->db_ok = !drc;
	if (drc == E_STORE_UNAVAILABLE)
		buf_adds(&h->db_why, "database unreachable");
	else if (drc)
		buf_adds(&h->db_why, "database not available");
	if (drc && drc != E_STORE_UNAVAILABLE && drc != E_BUSY)
		drc = E_STORE_UNAVAILABLE;
	return brc ? brc : drc;
}

void store_health_release(struct store_health *h)
{
	buf_release(&h->db_why);
	buf_release(&h->blobs_why);
}

/* An object store failure this recent is taken as the reason a call found storage unreachable. */
#define OUTAGE_RECENT_MS 60000

void store_unavailable_detail(struct store *st, struct buf *detail)
{
	int64_t since = st->blobs->ops->down_since ? st->blobs->ops->down_since(st->blobs) : 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (since && now - since < OUTAGE_RECENT_MS)
		buf_adds(detail, "the object store cannot be reached");
	else
		buf_adds(detail, "the metadata database cannot be reached");
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
	if (!rd->st || rd->src)
		return rd->src ? E_UNSUPPORTED : E_INTERNAL;
	return rd->st->blobs->ops->read(rd->st->blobs, rd, off, buf, len, n);
}

int store_reader_stream(struct store_reader *rd, int64_t first, int64_t len)
{
	if (rd->src)
		return 0;
	if (!rd->st || !rd->be_state || !rd->st->blobs->ops->stream)
		return E_INTERNAL;
	return rd->st->blobs->ops->stream(rd->st->blobs, rd, first, len);
}

int store_reader_pull(struct store_reader *rd, void *buf, size_t max, size_t *n, const struct store_waiter *w)
{
	if (rd->src)
		return rd->src->pull(rd->src_ctx, buf, max, n, w);
	if (!rd->st || !rd->be_state || !rd->st->blobs->ops->pull)
		return E_INTERNAL;
	return rd->st->blobs->ops->pull(rd->st->blobs, rd, buf, max, n, w);
}

void store_reader_source(struct store_reader *rd, int64_t size, const struct store_source *src, void *ctx)
{
	reader_init(NULL, rd);
	rd->size = size;
	rd->src = src;
	rd->src_ctx = ctx;
}

struct store_reader *store_reader_move(struct store_reader *rd)
{
	struct store_reader *p = xmalloc(sizeof(*p));
	*p = *rd;
	/* the held bytes move with it: the buffer is the copy's now */
	if (rd->mem == (const unsigned char *)rd->held.buf && rd->held.buf)
		p->mem = (const unsigned char *)p->held.buf;
	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
	buf_init(&rd->held, 0);
	return p;
}

void store_reader_free(struct store_reader *rd)
{
	if (!rd)
		return;
	store_reader_release(rd);
	free(rd);
}

int store_reader_take_fd(struct store_reader *rd)
{
	int fd = rd->fd;
	rd->fd = -1;
	return fd;
}

void store_reader_release(struct store_reader *rd)
{
	if (rd->src)
		rd->src->release(rd->src_ctx);
	rd->src = NULL;
	rd->src_ctx = NULL;
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

/* Opens d at loc (NULL: derived, or the database's copy of a manifest); rd initialised. */
static int open_at(struct store *st, const struct digest *d, const char *loc, struct store_reader *rd)
{
	int found = 0, rc;
	rc = st->blobs->ops->open(st->blobs, d, loc, rd);
	if (rc != E_BLOB_UNKNOWN)
		return rc;
	/* a manifest's bytes are in the database (every one pushed since schema 3) */
	if ((rc = meta_blob_content(st->meta, d, &rd->held, &found)))
		return rc;
	if (!found)
		return E_BLOB_UNKNOWN;
	reader_from_held(rd);
	return 0;
}

/* The recorded location of d into loc (reset) when the backend places blobs itself. */
static int locate(struct store *st, const struct digest *d, struct buf *loc)
{
	int found;
	buf_reset(loc);
	if (!st->blobs->ops->locates)
		return 0;
	return meta_blob_location(st->meta, d, loc, &found);
}

int store_blob_open_any(struct store *st, const struct digest *d, struct store_reader *rd)
{
	struct buf loc = BUF_INIT;
	reader_init(st, rd);
	int rc = locate(st, d, &loc);
	if (!rc)
		rc = open_at(st, d, loc.buf, rd);
	buf_release(&loc);
	return rc;
}

/* ---- blobs ---- */

int store_blob_stat(struct store *st, const char *repo, const struct digest *d, int64_t *size)
{
	return meta_blob_linked(st->meta, repo, d, size);
}

int store_blob_held(struct store *st, const struct digest *d, int64_t *size)
{
	struct buf loc = BUF_INIT;
	int rc = locate(st, d, &loc);
	if (!rc)
		rc = st->blobs->ops->stat(st->blobs, d, loc.buf, size);
	buf_release(&loc);
	return rc;
}

/* The link check, with the location in the same read when the backend has them. */
static int linked(struct store *st, const char *repo, const struct digest *d, int64_t *size, struct buf *loc)
{
	if (st->blobs->ops->locates)
		return meta_blob_linked_at(st->meta, repo, d, size, loc);
	return meta_blob_linked(st->meta, repo, d, size);
}

int store_blob_open(struct store *st, const char *repo, const struct digest *d, struct store_reader *rd,
		    struct buf *detail)
{
	struct buf loc = BUF_INIT;
	int rc;
	reader_init(st, rd);
	if (!(rc = linked(st, repo, d, NULL, &loc)))
		rc = open_at(st, d, loc.buf, rd);
	if (rc == E_BLOB_UNKNOWN && detail && !meta_blob_linked(st->meta, repo, d, NULL))
		buf_adds(detail, "blob content missing from storage");
	buf_release(&loc);
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

int store_blob_url(struct store *st, const char *repo, const struct digest *d, int ttl_s, struct buf *url)
{
	struct buf loc = BUF_INIT;
	int rc;
	int in_db = 0;
	if (!st->blobs->ops->presign)
		return E_UNSUPPORTED;
	rc = linked(st, repo, d, NULL, &loc);
	/* a manifest's bytes are in the database, not in the store */
	if (!rc && !(rc = meta_blob_content(st->meta, d, url, &in_db)) && in_db) {
		buf_reset(url);
		rc = E_UNSUPPORTED;
	}
	if (!rc)
		rc = st->blobs->ops->presign(st->blobs, d, loc.buf, ttl_s, url);
	buf_release(&loc);
	return rc;
}

int store_blob_link(struct store *st, const char *repo, const struct digest *d, int64_t size)
{
	return meta_blob_link(st->meta, repo, d, size);
}

int store_blob_unlink(struct store *st, const char *repo, const struct digest *d)
{
	int rc = meta_blob_unlink(st->meta, repo, d);
	/* a full disk: the reserve's room lets the delete through (reserve.h) */
	if (store_retry_full(st, rc))
		rc = meta_blob_unlink(st->meta, repo, d);
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
		if ((rc = meta_blob_repos(st->meta, d, mount_pick, &mf)) < 0)
			return rc;
		if (!mf.repo)
			return STORE_MOUNT_FALLBACK;
	}
	rc = meta_blob_linked(st->meta, mf.repo, d, &size);
	if (!rc && store_blob_held(st, d, NULL))
		rc = STORE_MOUNT_FALLBACK; /* known but its bytes are gone: let the client upload it again */
	else if (!rc)
		rc = meta_blob_link(st->meta, repo, d, size);
	else if (rc == E_BLOB_UNKNOWN)
		rc = STORE_MOUNT_FALLBACK;
	free(mf.repo);
	return rc;
}

/* Bytes read at a time when hashing a stored blob. */
#define REHASH_CHUNK (1 << 20)

int store_blob_rehash(struct store *st, const struct digest *d, struct digest *got)
{
	struct store_reader rd;
	struct hasher h;
	char *tmp = xmalloc(REHASH_CHUNK);
	int rc = store_blob_open_any(st, d, &rd);
	hasher_init(&h, d->alg);
	for (int64_t off = 0; !rc && off < rd.size;) {
		size_t n = 0;
		rc = store_reader_read(&rd, off, tmp, REHASH_CHUNK, &n);
		if (!rc && !n)
			rc = E_IO; /* shorter than its size */
		hasher_update(&h, tmp, n);
		off += (int64_t)n;
	}
	if (!rc)
		hasher_final(&h, got);
	hasher_release(&h);
	store_reader_release(&rd);
	free(tmp);
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
	rc = meta_manifest_put_content(st->meta, repo, &res->digest, (int64_t)len, body, &mi, tag, store_meta_actor(&ma), detail);
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
	if ((rc = meta_manifest_get(st->meta, repo, ref, &mm)))
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
	store_meta_actor_init(&ma, actor);
	for (int tries = 0; tries < 2; tries++) {
		if (ref->is_digest)
			rc = meta_manifest_delete(st->meta, repo, &ref->digest, store_meta_actor(&ma));
		else
			rc = meta_tag_delete(st->meta, repo, ref->tag, store_meta_actor(&ma));
		if (tries || !store_retry_full(st, rc))
			break;
	}
	store_meta_actor_done(&ma);
	return rc;
}
