/* imgexport: an image and everything it references, as an OCI layout tar (see imgexport.h). */
#include "imgexport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "imgsource.h"
#include "manifest.h"
#include "meta.h"
#include "store_backend.h"
#include "tarball.h"
#include "xalloc.h"

#define CHUNK (1 << 20)

struct refs {
	struct meta_ref_info *v; /* digests copied (owned) */
	size_t n, alloc;
};

struct exp {
	struct store *st;
	const char *repo;
	struct imgexport_result *res;
	struct buf *detail;
};

struct out {
	int fd;
	int err;
};

static int collect_ref(void *ctx, const struct meta_ref_info *ri)
{
	struct refs *r = ctx;
	r->v = xgrow(r->v, &r->alloc, r->n, sizeof(*r->v));
	r->v[r->n] = *ri;
	r->v[r->n++].digest = xstrdup(ri->digest);
	return 0;
}

static void refs_release(struct refs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free((char *)r->v[i].digest);
	free(r->v);
}

/* Adds a blob once; returns 1 when it was there already. */
static int add_blob(struct exp *x, const struct digest *d, int64_t size, const char *role)
{
	struct imgexport_result *r = x->res;
	for (size_t i = 0; i < r->nblobs; i++)
		if (digest_eq(&r->blobs[i].digest, d))
			return 1;
	r->blobs = xgrow(r->blobs, &r->alloc, r->nblobs, sizeof(*r->blobs));
	r->blobs[r->nblobs++] = (struct imgexport_blob){ *d, size, role };
	return 0;
}

static const char *role_of(const char *media_type)
{
	return !strcmp(media_type, MT_OCI_INDEX) || !strcmp(media_type, MT_DOCKER_LIST) ? "index" : "manifest";
}

/* Collects manifest d, what it references and, for an index, its children. */
static int walk(struct exp *x, const struct digest *d, int64_t size, const char *role, int depth)
{
	struct refs refs = { 0 };
	char ds[DIGEST_STR_MAX];
	int rc;
	digest_str(d, ds);
	if (depth > IMGEXPORT_MAX_DEPTH) {
		buf_addf(x->detail, "indexes nested deeper than %d levels below %s", IMGEXPORT_MAX_DEPTH, ds);
		return E_MANIFEST_INVALID;
	}
	if (add_blob(x, d, size, role))
		return 0;
	if ((rc = meta_manifest_refs(x->st->meta, x->repo, d, collect_ref, &refs))) {
		buf_addf(x->detail, "cannot list what manifest %s references", ds);
		goto out;
	}
	for (size_t i = 0; i < refs.n && !rc; i++) {
		const struct meta_ref_info *ri = &refs.v[i];
		struct digest rd;
		if (ri->kind == REF_SUBJECT || ri->size < 0)
			continue; /* the subject is another image; external layers are not stored */
		if (digest_parse(ri->digest, &rd)) {
			buf_addf(x->detail, "malformed reference in manifest %s", ds);
			rc = E_IO;
		} else if (ri->kind == REF_CHILD) {
			struct meta_manifest m = { 0 };
			struct reference cref = { .is_digest = 1, .digest = rd };
			if (!(rc = meta_manifest_get(x->st->meta, x->repo, &cref, &m)))
				rc = walk(x, &rd, ri->size, role_of(m.media_type), depth + 1);
			else
				buf_addf(x->detail, "child manifest %s of %s is not in the repository", ri->digest, ds);
			meta_manifest_release(&m);
		} else {
			add_blob(x, &rd, ri->size, ri->kind == REF_CONFIG ? "config" : "layer");
		}
	}
out:
	refs_release(&refs);
	return rc;
}

static int fd_write(void *ctx, const void *data, size_t len)
{
	struct out *o = ctx;
	const char *p = data;
	while (len) {
		ssize_t n = write(o->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			o->err = errno;
			return blobstore_errno(errno);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int by_digest(const void *a, const void *b)
{
	const struct imgexport_blob *x = a, *y = b;
	if (x->digest.alg != y->digest.alg)
		return x->digest.alg < y->digest.alg ? -1 : 1;
	return strcmp(x->digest.hex, y->digest.hex);
}

static int write_file(struct tar_writer *tw, const char *name, const struct buf *content)
{
	int rc = tar_write_header(tw, name, TAR_FILE, (int64_t)content->len);
	return rc ? rc : tar_write_data(tw, content->buf, content->len);
}

/* Streams one stored blob (from wherever it lives) into the archive, checking its size and digest. */
static int write_blob(struct exp *x, struct tar_writer *tw, const struct imgexport_blob *b, char *chunk)
{
	struct buf name = BUF_INIT;
	char ds[DIGEST_STR_MAX];
	struct hasher h = { 0 };
	struct store_reader rd;
	struct digest got;
	int64_t done = 0;
	int rc;
	digest_str(&b->digest, ds);
	buf_addf(&name, "blobs/%s/%s", digest_alg_name(b->digest.alg), b->digest.hex);
	if ((rc = store_blob_open_any(x->st, &b->digest, &rd))) {
		if (rc == E_BLOB_UNKNOWN)
			buf_addf(x->detail, "blob %s is missing from storage (run berth fsck)", ds);
		goto out;
	}
	if (rd.size != b->size) {
		buf_addf(x->detail, "blob %s is %lld bytes in storage, %lld in the metadata (run berth fsck)", ds,
			 (long long)rd.size, (long long)b->size);
		rc = E_DIGEST_INVALID;
		goto out;
	}
	if ((rc = tar_write_header(tw, name.buf, TAR_FILE, rd.size)))
		goto out;
	hasher_init(&h, b->digest.alg);
	while (done < rd.size) {
		size_t want = rd.size - done < CHUNK ? (size_t)(rd.size - done) : CHUNK, n = 0;
		if ((rc = store_reader_read(&rd, done, chunk, want, &n)) || !n) {
			buf_addf(x->detail, "cannot read blob %s from storage: %s", ds, rc ? err_desc(rc)->message : "file shrank");
			rc = E_IO;
			goto out;
		}
		hasher_update(&h, chunk, n);
		if ((rc = tar_write_data(tw, chunk, n)))
			goto out;
		done += (int64_t)n;
	}
	hasher_final(&h, &got);
	if (!digest_eq(&got, &b->digest)) {
		buf_addf(x->detail, "blob %s in storage does not match its digest: it is corrupt (run berth fsck)", ds);
		rc = E_DIGEST_INVALID;
	}
out:
	if (h.ctx)
		hasher_release(&h);
	store_reader_release(&rd);
	buf_release(&name);
	return rc;
}

static int write_archive(struct exp *x, struct tar_writer *tw, const struct reference *ref)
{
	struct imgexport_result *r = x->res;
	struct buf layout = BUF_INIT, index = BUF_INIT;
	char ds[DIGEST_STR_MAX], *chunk = xmalloc(CHUNK);
	int rc, algs = 0;
	for (size_t i = 0; i < r->nblobs; i++)
		algs |= 1 << r->blobs[i].digest.alg;
	buf_adds(&layout, "{\"imageLayoutVersion\":\"1.0.0\"}");
	buf_addf(&index, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":", MT_OCI_INDEX);
	buf_add_json_str(&index, r->top_media_type);
	buf_addf(&index, ",\"digest\":\"%s\",\"size\":%lld", digest_str(&r->top, ds), (long long)r->top_size);
	if (!ref->is_digest) {
		buf_adds(&index, ",\"annotations\":{\"org.opencontainers.image.ref.name\":");
		buf_add_json_str(&index, ref->tag);
		buf_addch(&index, '}');
	}
	buf_adds(&index, "}]}");
	rc = write_file(tw, "oci-layout", &layout);
	if (!rc)
		rc = tar_write_header(tw, "blobs", TAR_DIR, 0);
	for (int a = DIGEST_SHA256; a <= DIGEST_SHA512 && !rc; a++) {
		struct buf dir = BUF_INIT;
		buf_addf(&dir, "blobs/%s", digest_alg_name((enum digest_alg)a));
		if (algs & (1 << a))
			rc = tar_write_header(tw, dir.buf, TAR_DIR, 0);
		buf_release(&dir);
	}
	for (size_t i = 0; i < r->nblobs && !rc; i++)
		rc = write_blob(x, tw, &r->blobs[i], chunk);
	if (!rc)
		rc = write_file(tw, "index.json", &index);
	if (!rc)
		rc = tar_write_end(tw);
	free(chunk);
	buf_release(&layout);
	buf_release(&index);
	return rc;
}

int store_export(struct store *st, const char *repo, const struct reference *ref, int fd,
		 struct imgexport_result *res, struct buf *detail)
{
	struct exp x = { st, repo, res, detail };
	struct meta_manifest m = { 0 };
	struct out o = { fd, 0 };
	struct tar_writer tw;
	int rc;
	memset(res, 0, sizeof(*res));
	char ds[DIGEST_STR_MAX];
	if ((rc = meta_manifest_get(st->meta, repo, ref, &m))) {
		if (rc == E_MANIFEST_UNKNOWN || rc == E_NAME_UNKNOWN)
			buf_addf(detail, "%s has no %s %s", repo, ref->is_digest ? "manifest" : "tag",
				 ref->is_digest ? digest_str(&ref->digest, ds) : ref->tag);
		goto out;
	}
	res->top = m.digest;
	res->top_size = m.size;
	res->top_media_type = xstrdup(m.media_type);
	if ((rc = walk(&x, &m.digest, m.size, role_of(m.media_type), 0)))
		goto out;
	qsort(res->blobs, res->nblobs, sizeof(*res->blobs), by_digest);
	tar_writer_init(&tw, fd_write, &o);
	rc = write_archive(&x, &tw, ref);
	res->archive_bytes = tw.pos;
	if (rc && o.err)
		buf_addf(detail, "cannot write the archive: %s", strerror(o.err));
	else if (rc && !detail->len)
		buf_addf(detail, "cannot write the archive (%s)", err_desc(rc)->message);
out:
	meta_manifest_release(&m);
	return rc;
}

void imgexport_result_release(struct imgexport_result *res)
{
	free(res->blobs);
	free(res->top_media_type);
	memset(res, 0, sizeof(*res));
}
