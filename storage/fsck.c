/* fsck: re-hash blobs and cross-check metadata and disk; repair only provable orphans. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fsck.h"
#include "fsck_internal.h"
#include "gc.h"
#include "gc_internal.h"
#include "log.h"
#include "manifest.h"
#include "meta.h"
#include "paths.h"
#include "store_backend.h"
#include "upload.h"
#include "xalloc.h"

/* Larger than any manifest berth accepts; a bigger file is not read whole. */
#define MANIFEST_READ_MAX (16 * 1024 * 1024)

void fsck_problem(struct fsck *f, const char *kind, const char *repo, const char *name, int note, int repaired,
		  const char *fmt, ...)
{
	va_list ap;
	buf_reset(&f->detail);
	va_start(ap, fmt);
	buf_vaddf(&f->detail, fmt, ap);
	va_end(ap);
	if (note) {
		f->r->notes++;
	} else {
		f->r->problems++;
		f->r->repaired += repaired != 0;
	}
	if (f->o->on_problem) {
		struct fsck_problem p = { kind, repo, name, f->detail.buf, note, repaired };
		f->o->on_problem(f->o->ctx, &p);
	}
}

static int on_db_problem(void *ctx, const char *line)
{
	fsck_problem(ctx, "database", NULL, NULL, 0, 0, "%s", line);
	return 0;
}

/* Hashes the file of d with d's algorithm into *got. */
static int hash_blob(const struct blobstore *bs, const struct digest *d, struct digest *got)
{
	struct hasher h;
	char *tmp;
	int fd, rc = blobstore_open(bs, d, &fd, NULL);
	if (rc)
		return rc;
	tmp = xmalloc(1 << 20);
	hasher_init(&h, d->alg);
	for (;;) {
		ssize_t n = read(fd, tmp, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = blobstore_errno(errno);
			break;
		}
		if (!n)
			break;
		hasher_update(&h, tmp, (size_t)n);
	}
	if (!rc)
		hasher_final(&h, got);
	hasher_release(&h);
	free(tmp);
	close(fd);
	return rc;
}

static int check_file(void *ctx, const struct gc_file *gf)
{
	struct fsck *f = ctx;
	char ds[DIGEST_STR_MAX], gs[DIGEST_STR_MAX];
	struct digest got;
	int row = 0, old = gf->mtime_ms < f->grace_ms, rc;
	if (!gf->digest) {
		int gone = 0;
		if (f->o->repair && old)
			gone = unlinkat(gf->dirfd, gf->name, 0) == 0;
		fsck_problem(f, "stray", NULL, gf->label, !old, gone, "file under blobs/ whose name is no digest");
		return 0;
	}
	digest_str(gf->digest, ds);
	*strmap_get(&f->files, ds, 1) = gf->size;
	f->r->files++;
	f->r->bytes += gf->size;
	rc = hash_blob(f->bs, gf->digest, &got);
	if (rc == E_BLOB_UNKNOWN)
		return 0; /* removed meanwhile (a collection); the record checks tell if it mattered */
	if (rc)
		fsck_problem(f, "corrupt", NULL, ds, 0, 0, "cannot read the file (%s)", err_desc(rc)->message);
	else if (!digest_eq(&got, gf->digest))
		fsck_problem(f, "corrupt", NULL, ds, 0, 0, "content hashes to %s", digest_str(&got, gs));
	if ((rc = meta_gc_blob_state(f->st->meta, ds, &row, NULL)))
		return rc;
	if (row)
		return 0;
	if (!old) {
		fsck_problem(f, "orphan", NULL, ds, 1, 0, "fresh file without a record (an upload finishing?)");
		return 0;
	}
	f->orphans = xgrow(f->orphans, &f->orphans_alloc, f->norphans, sizeof(*f->orphans));
	f->orphans[f->norphans].d = *gf->digest;
	f->orphans[f->norphans].label = xstrdup(gf->label);
	f->orphans[f->norphans++].size = gf->size;
	return 0;
}

/* Bytes of a blob held in the database: they must hash to its digest; their size stands for a file's. */
static int check_content(void *ctx, const char *ds, const void *bytes, size_t len)
{
	struct fsck *f = ctx;
	char gs[DIGEST_STR_MAX];
	struct digest d, got;
	f->r->contents++;
	f->r->content_bytes += (int64_t)len;
	if (digest_parse(ds, &d)) {
		fsck_problem(f, "corrupt", NULL, ds, 0, 0, "content row under a malformed digest");
		return 0;
	}
	digest_of(d.alg, bytes, len, &got);
	if (!digest_eq(&got, &d))
		fsck_problem(f, "corrupt", NULL, ds, 0, 0, "content in the database hashes to %s", digest_str(&got, gs));
	*strmap_get(&f->files, ds, 1) = (int64_t)len;
	return 0;
}

/* A file the walk did not see may have arrived since: look again before calling it missing. */
static int file_size(struct fsck *f, const char *ds, int64_t *size)
{
	struct digest d;
	int64_t *v = strmap_get(&f->files, ds, 0);
	if (v) {
		*size = *v;
		return 1;
	}
	if (digest_parse(ds, &d))
		return 0;
	return f->bs ? blobstore_stat(f->bs, &d, size) == 0 : store_blob_held(f->st, &d, size) == 0;
}

static int check_blob_row(void *ctx, const char *ds, int64_t size, int64_t links)
{
	struct fsck *f = ctx;
	int64_t have = 0;
	f->r->blobs++;
	if (!file_size(f, ds, &have))
		fsck_problem(f, "missing", NULL, ds, 0, 0, "recorded blob (linked in %lld %s) has no file and no content in the database", (long long)links,
			links == 1 ? "repository" : "repositories");
	else if (have != size)
		fsck_problem(f, "size", NULL, ds, 0, 0, "recorded size %lld, file size %lld", (long long)size, (long long)have);
	return 0;
}

static int check_manifest(void *ctx, const char *repo, const char *ds, const char *media_type, int linked)
{
	struct fsck *f = ctx;
	int64_t size;
	(void)media_type;
	f->r->manifests++;
	if (!file_size(f, ds, &size))
		fsck_problem(f, "manifest", repo, ds, 0, 0, "manifest has neither content in the database nor a file");
	if (!linked)
		fsck_problem(f, "manifest", repo, ds, 0, 0, "manifest bytes are not linked to the repository");
	return 0;
}

/* Parses manifest ds (cached for its consecutive reference rows); 0 when it could. */
static int parse_manifest(struct fsck *f, const char *repo, const char *ds)
{
	struct digest d;
	struct buf body = BUF_INIT;
	int rc;
	if (f->parsed_digest && !strcmp(f->parsed_digest, ds) && !strcmp(f->parsed_repo, repo))
		return f->parsed_ok ? 0 : E_MANIFEST_INVALID;
	manifest_info_release(&f->mi);
	free(f->parsed_repo);
	free(f->parsed_digest);
	f->parsed_repo = xstrdup(repo);
	f->parsed_digest = xstrdup(ds);
	f->parsed_ok = 0;
	if ((rc = digest_parse(ds, &d)) || (rc = store_blob_read_all(f->st, &d, MANIFEST_READ_MAX, &body))) {
		buf_release(&body);
		return rc;
	}
	rc = manifest_parse(body.buf, body.len, NULL, &f->mi, NULL);
	buf_release(&body);
	f->parsed_ok = rc == 0;
	return rc;
}

static int is_external(struct fsck *f, const char *repo, const char *manifest, const char *ds)
{
	char rs[DIGEST_STR_MAX];
	if (parse_manifest(f, repo, manifest))
		return 0;
	for (size_t i = 0; i < f->mi.nrefs; i++)
		if (f->mi.refs[i].external && !strcmp(digest_str(&f->mi.refs[i].digest, rs), ds))
			return 1;
	return 0;
}

static int check_ref(void *ctx, const char *repo, const char *manifest, int kind, const char *ds)
{
	struct fsck *f = ctx;
	/* The API lets a client delete a manifest an index lists (as the
	 * distribution spec does): that index is then incomplete by the
	 * client's choice, not damaged, so it is a note. */
	if (kind == REF_CHILD)
		fsck_problem(f, "reference", repo, manifest, 1, 0, "child manifest %s was deleted", ds);
	else if (!is_external(f, repo, manifest, ds))
		fsck_problem(f, "reference", repo, manifest, 0, 0, "%s %s is not linked to the repository",
			kind == REF_CONFIG ? "config" : "layer", ds);
	return 0;
}

static int check_upload(void *ctx, const char *id, int64_t updated_ms)
{
	struct fsck *f = ctx;
	int64_t size;
	int stale = updated_ms < gc_now_ms() - f->o->upload_ttl_s * 1000;
	f->r->uploads++;
	if (paths_upload_id_check(id))
		fsck_problem(f, "upload", NULL, id, 0, 0, "upload session with a malformed id");
	else if (upload_size(f->bs, id, &size) == E_BLOB_UPLOAD_UNKNOWN)
		fsck_problem(f, "upload", NULL, id, 1, 0, "upload session without a file (the client has to start again)");
	else if (stale)
		fsck_problem(f, "upload", NULL, id, 1, 0, "idle for longer than the upload ttl");
	return 0;
}

/* Removes stale uploads and orphan files as garbage collection does, and tells what went. */
static void on_purged(void *ctx, const struct gc_item *it)
{
	struct fsck *f = ctx;
	if (it->kind == GC_ITEM_UPLOAD) {
		f->r->purged_uploads++;
		fsck_problem(f, "upload", NULL, it->name, 1, 1, "stale upload purged");
	}
}

static int repair(struct fsck *f)
{
	struct gc_opts go;
	struct gc_report gr;
	gc_opts_init(&go, 0, 0, f->o->grace_s, f->o->upload_ttl_s);
	go.on_item = on_purged;
	go.ctx = f;
	int rc = f->bs ? gc_purge_orphans(f->st->meta, f->bs, &go, &gr) : gc_remote_run(f->st, &go, &gr, 0);
	if (gr.busy)
		log_error("fsck: a garbage collection is running; repair skipped");
	return rc;
}

/* Orphans are told last, once repair had its go: removed ones are reported repaired. */
static void report_orphans(struct fsck *f)
{
	for (size_t i = 0; i < f->norphans; i++) {
		char ds[DIGEST_STR_MAX];
		int row = 1;
		int gone = blobstore_stat(f->bs, &f->orphans[i].d, NULL) == E_BLOB_UNKNOWN;
		digest_str(&f->orphans[i].d, ds);
		/* known by now (an upload finished meanwhile): not an orphan after all */
		if (!gone && (meta_gc_blob_state(f->st->meta, ds, &row, NULL) || row))
			continue;
		fsck_problem(f, "orphan", NULL, ds, 0, gone && f->o->repair, "file (%lld bytes) that no metadata refers to",
			(long long)f->orphans[i].size);
	}
}

/* The local directory's walk: every file re-hashed, then the records against what was found. */
static int check_local(struct fsck *f)
{
	int rc = gc_walk_blobs(f->bs->root, check_file, f);
	if (!rc)
		rc = meta_content_list(f->st->meta, check_content, f);
	if (!rc)
		rc = meta_fsck_blobs(f->st->meta, check_blob_row, f);
	return rc;
}

/* The object store's listing, then the records against it. */
static int check_remote(struct fsck *f)
{
	int rc = fsck_remote_list(f);
	if (!rc)
		rc = meta_content_list(f->st->meta, check_content, f);
	if (!rc)
		rc = fsck_remote_blobs(f);
	return rc;
}

int store_fsck(struct store *st, const struct fsck_opts *o, struct fsck_report *out)
{
	const struct blobstore *bs = store_blobstore(st);
	struct fsck f = { .st = st, .bs = bs, .o = o, .r = out, .detail = BUF_INIT };
	int rc;
	memset(out, 0, sizeof(*out));
	f.grace_ms = gc_now_ms() - o->grace_s * 1000;
	rc = meta_fsck_database(st->meta, on_db_problem, &f);
	if (!rc)
		rc = bs ? check_local(&f) : check_remote(&f);
	if (!rc)
		rc = meta_fsck_manifests(st->meta, check_manifest, &f);
	if (!rc)
		rc = meta_fsck_dangling_refs(st->meta, check_ref, &f);
	if (!rc)
		rc = bs ? meta_fsck_uploads(st->meta, check_upload, &f) : fsck_remote_uploads(&f);
	int repair_rc = !rc && o->repair ? repair(&f) : 0;
	if (!rc && bs)
		report_orphans(&f);
	else if (!rc)
		rc = fsck_remote_orphans(&f);
	if (!rc)
		rc = repair_rc;
	for (size_t i = 0; i < f.norphans; i++)
		free(f.orphans[i].label);
	free(f.orphans);
	strmap_release(&f.files);
	fsck_remote_release(&f);
	manifest_info_release(&f.mi);
	free(f.parsed_repo);
	free(f.parsed_digest);
	buf_release(&f.detail);
	return rc;
}
