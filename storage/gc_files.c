/*
 * gc_files: the file side of garbage collection: walking blobs/ and
 * uploads/, the trash that holds deleted blob files until the metadata is
 * asked one last time, orphan blob files and stale uploads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "gc_internal.h"
#include "log.h"
#include "paths.h"
#include "upload.h"
#include "xalloc.h"

#define TRASH_PREFIX "tmp-gc-"

static int64_t mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

static int is_hex2(const char *s)
{
	for (int i = 0; i < 2; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[2] == '\0';
}

/* Calls cb for every regular file of the open directory dfd (which it closes). */
static int walk_dir(int dfd, const char *prefix, int alg, const char *fan, gc_file_cb cb, void *ctx)
{
	DIR *dir = fdopendir(dfd);
	struct dirent *de;
	struct buf label = BUF_INIT;
	int rc = 0;
	if (!dir) {
		close(dfd);
		return E_IO;
	}
	while (!rc && (de = readdir(dir))) {
		struct stat st;
		struct digest d;
		struct gc_file f = { .dirfd = dirfd(dir), .name = de->d_name };
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (fstatat(f.dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue; /* gone meanwhile, or not ours to judge */
		buf_reset(&label);
		buf_addf(&label, "%s%s", prefix, de->d_name);
		f.label = label.buf;
		f.size = (int64_t)st.st_size;
		f.mtime_ms = mtime_ms(&st);
		if (alg >= 0) {
			struct buf s = BUF_INIT;
			buf_addf(&s, "%s:%s", digest_alg_name((enum digest_alg)alg), de->d_name);
			/* a blob name is the digest's hex, in the directory of its first two digits */
			if (!digest_parse(s.buf, &d) && !strncmp(d.hex, fan, 2))
				f.digest = &d;
			buf_release(&s);
		}
		rc = cb(ctx, &f);
	}
	closedir(dir);
	buf_release(&label);
	return rc;
}

int gc_walk_blobs(const char *root, gc_file_cb cb, void *ctx)
{
	struct buf p = BUF_INIT, prefix = BUF_INIT;
	int rc = 0;
	for (int alg = DIGEST_SHA256; alg <= DIGEST_SHA512 && !rc; alg++) {
		buf_reset(&p);
		paths_blob_alg_dir(&p, root, (enum digest_alg)alg);
		DIR *top = opendir(p.buf);
		struct dirent *de;
		if (!top) {
			if (errno == ENOENT)
				continue;
			log_error("cannot read \"%s\": %s", p.buf, strerror(errno));
			rc = E_IO;
			break;
		}
		while (!rc && (de = readdir(top))) {
			if (!is_hex2(de->d_name))
				continue;
			int dfd = openat(dirfd(top), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd < 0)
				continue;
			buf_reset(&prefix);
			buf_addf(&prefix, "%s/%s/", digest_alg_name((enum digest_alg)alg), de->d_name);
			rc = walk_dir(dfd, prefix.buf, alg, de->d_name, cb, ctx);
		}
		closedir(top);
	}
	buf_release(&p);
	buf_release(&prefix);
	return rc;
}

int gc_walk_uploads(const char *root, gc_file_cb cb, void *ctx)
{
	struct buf p = BUF_INIT;
	int dfd, rc;
	paths_uploads_dir(&p, root);
	dfd = open(p.buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = errno == ENOENT ? 0 : E_IO;
		if (rc)
			log_error("cannot read \"%s\": %s", p.buf, strerror(errno));
	} else {
		rc = walk_dir(dfd, "", -1, NULL, cb, ctx);
	}
	buf_release(&p);
	return rc;
}

/* ---- trash ---- */

static void trash_name(const struct digest *d, struct buf *out)
{
	buf_addf(out, TRASH_PREFIX "%s-%s", digest_alg_name(d->alg), d->hex);
}

int gc_trash_open(struct gc_trash *t, struct meta *m, const char *root)
{
	struct buf p = BUF_INIT;
	memset(t, 0, sizeof(*t));
	t->m = m;
	paths_uploads_dir(&p, root);
	t->upfd = open(p.buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->upfd < 0)
		log_error("gc: cannot open \"%s\": %s", p.buf, strerror(errno));
	buf_release(&p);
	return t->upfd < 0 ? E_IO : 0;
}

int gc_trash_add(struct gc_trash *t, const struct blobstore *bs, const struct digest *d, int64_t *size)
{
	struct buf p = BUF_INIT, name = BUF_INIT;
	struct stat st;
	int rc = 0;
	paths_blob(&p, bs->root, d);
	trash_name(d, &name);
	if (stat(p.buf, &st) < 0) {
		rc = errno == ENOENT ? E_BLOB_UNKNOWN : blobstore_errno(errno);
	} else if (renameat(AT_FDCWD, p.buf, t->upfd, name.buf) < 0) {
		rc = errno == ENOENT ? E_BLOB_UNKNOWN : blobstore_errno(errno);
		if (rc != E_BLOB_UNKNOWN)
			log_error("gc: cannot move \"%s\" aside: %s", p.buf, strerror(errno));
	} else {
		*size = (int64_t)st.st_size;
		t->v = xgrow(t->v, &t->alloc, t->n, sizeof(*t->v));
		t->v[t->n].d = *d;
		t->v[t->n].size = *size;
		t->n++;
		t->last_ms = gc_now_ms();
	}
	buf_release(&p);
	buf_release(&name);
	return rc;
}

/* Puts the file back as blob d (an existing file there wins: same content). */
static int trash_restore(struct gc_trash *t, const struct blobstore *bs, const struct digest *d)
{
	struct buf p = BUF_INIT, name = BUF_INIT, dir = BUF_INIT;
	int rc = 0;
	paths_blob(&p, bs->root, d);
	paths_blob_dir(&dir, bs->root, d);
	trash_name(d, &name);
	/* link, not rename: never replaces a copy someone wrote meanwhile */
	if (linkat(t->upfd, name.buf, AT_FDCWD, p.buf, 0) < 0 && errno != EEXIST) {
		log_error("gc: cannot move \"%s\" back: %s", p.buf, strerror(errno));
		rc = blobstore_errno(errno);
	} else {
		int dfd = open(dir.buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			if (fsync(dfd) < 0)
				rc = blobstore_errno(errno);
			close(dfd);
		}
		if (!rc)
			unlinkat(t->upfd, name.buf, 0);
	}
	buf_release(&p);
	buf_release(&name);
	buf_release(&dir);
	return rc;
}

/* Deletes or restores one trashed file by what meta says now; *deleted when it went. */
static int trash_settle_one(struct gc_trash *t, const struct blobstore *bs, const struct digest *d, int restore_all,
			    int *deleted)
{
	char ds[DIGEST_STR_MAX];
	int row = 1, rc = 0;
	*deleted = 0;
	if (!restore_all && (rc = meta_gc_blob_state(t->m, digest_str(d, ds), &row, NULL)))
		row = 1; /* cannot tell: keep it */
	if (row)
		return trash_restore(t, bs, d);
	struct buf name = BUF_INIT;
	trash_name(d, &name);
	if (unlinkat(t->upfd, name.buf, 0) < 0 && errno != ENOENT)
		rc = blobstore_errno(errno);
	else
		*deleted = 1;
	buf_release(&name);
	return rc;
}

void gc_trash_empty(struct gc_trash *t, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *r)
{
	/*
	 * Someone who saw the file just before it was moved (an upload finding
	 * its content already stored, a manifest written again) records it in
	 * meta a moment later; waiting lets that record land before the last look.
	 */
	while (t->n && !gc_cancelled(o) && gc_now_ms() < t->last_ms + o->settle_ms) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	int restore_all = gc_cancelled(o);
	for (size_t i = 0; i < t->n; i++) {
		char ds[DIGEST_STR_MAX];
		int deleted = 0;
		if (trash_settle_one(t, bs, &t->v[i].d, restore_all, &deleted))
			continue;
		digest_str(&t->v[i].d, ds);
		if (deleted) {
			r->blobs++;
			r->bytes += t->v[i].size;
			gc_tell(o, GC_ITEM_BLOB, NULL, ds, t->v[i].size);
		} else if (!restore_all) {
			r->restored++;
			log_info("gc: %s was linked again during the collection; kept", ds);
		}
	}
	if (t->upfd >= 0)
		close(t->upfd);
	free(t->v);
	memset(t, 0, sizeof(*t));
	t->upfd = -1;
}

struct recover_ctx {
	struct gc_trash *t;
	const struct blobstore *bs;
	const struct gc_opts *o;
	struct gc_report *r;
};

static int recover_one(void *ctx, const struct gc_file *f)
{
	struct recover_ctx *x = ctx;
	struct buf s = BUF_INIT;
	struct digest d;
	const char *rest = f->name + strlen(TRASH_PREFIX), *dash;
	int deleted = 0;
	if (strncmp(f->name, TRASH_PREFIX, strlen(TRASH_PREFIX)) || !(dash = strchr(rest, '-')))
		return 0;
	buf_add(&s, rest, (size_t)(dash - rest));
	buf_addf(&s, ":%s", dash + 1);
	if (!digest_parse(s.buf, &d) && !trash_settle_one(x->t, x->bs, &d, 0, &deleted) && deleted) {
		x->r->blobs++;
		x->r->bytes += f->size;
		gc_tell(x->o, GC_ITEM_BLOB, NULL, s.buf, f->size);
	}
	buf_release(&s);
	return 0;
}

int gc_trash_recover(struct gc_trash *t, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *r)
{
	struct recover_ctx x = { t, bs, o, r };
	return gc_walk_uploads(bs->root, recover_one, &x);
}

/* ---- orphan blob files ---- */

struct orphan_ctx {
	const struct blobstore *bs;
	const struct gc_opts *o;
	int64_t grace_ms;
	struct gc_trash *t;
	struct gc_report *r;
};

static int orphan_one(void *ctx, const struct gc_file *f)
{
	struct orphan_ctx *x = ctx;
	char ds[DIGEST_STR_MAX];
	int64_t size = 0;
	int row = 1;
	if (gc_cancelled(x->o))
		return 1;
	/* a fresh file may be an upload between its rename into blobs/ and its record */
	if (!f->digest || f->mtime_ms >= x->grace_ms)
		return 0;
	if (meta_gc_blob_state(x->t->m, digest_str(f->digest, ds), &row, NULL) || row)
		return 0;
	if (x->o->dry_run) {
		x->r->blobs++;
		x->r->bytes += f->size;
		gc_tell(x->o, GC_ITEM_BLOB, NULL, ds, f->size);
		return 0;
	}
	int rc = gc_trash_add(x->t, x->bs, f->digest, &size);
	return rc == E_BLOB_UNKNOWN ? 0 : rc;
}

int gc_orphan_files(const struct blobstore *bs, const struct gc_opts *o, int64_t grace_ms, struct gc_trash *t,
		    struct gc_report *r)
{
	struct orphan_ctx x = { bs, o, grace_ms, t, r };
	int rc = gc_walk_blobs(bs->root, orphan_one, &x);
	return rc == 1 ? 0 : rc;
}

/* ---- stale uploads ---- */

struct ids {
	char **v;
	size_t n, alloc;
};

static int collect_id(void *ctx, const char *id)
{
	struct ids *ids = ctx;
	ids->v = xgrow(ids->v, &ids->alloc, ids->n, sizeof(*ids->v));
	ids->v[ids->n++] = xstrdup(id);
	return 0;
}

struct upload_ctx {
	struct meta *m;
	const struct blobstore *bs;
	const struct gc_opts *o;
	int64_t cutoff;
	struct gc_report *r;
};

static void upload_gone(struct upload_ctx *x, const char *name, int64_t size)
{
	x->r->uploads++;
	x->r->upload_bytes += size;
	gc_tell(x->o, GC_ITEM_UPLOAD, NULL, name, size);
}

/* One session idle in meta: its file must be idle too (another process may be writing it). */
static int purge_session(struct upload_ctx *x, int upfd, const char *id)
{
	struct stat st;
	int deleted = 0, rc;
	int have = fstatat(upfd, id, &st, 0) == 0;
	if (have && mtime_ms(&st) >= x->cutoff)
		return 0;
	if (x->o->dry_run) {
		upload_gone(x, id, have ? (int64_t)st.st_size : 0);
		return 0;
	}
	if ((rc = meta_gc_upload_expire(x->m, id, x->cutoff, &deleted)) || !deleted)
		return rc;
	rc = upload_remove(x->bs, id);
	if (rc == E_UPLOAD_BUSY)
		log_info("gc: upload %s is in use; its file stays until it is idle", id);
	else if (rc && rc != E_BLOB_UPLOAD_UNKNOWN)
		return rc;
	upload_gone(x, id, have ? (int64_t)st.st_size : 0);
	return 0;
}

/* Files in uploads/ no session owns: interrupted monolithic uploads, temporary files of a crash. */
static int purge_file(void *ctx, const struct gc_file *f)
{
	struct upload_ctx *x = ctx;
	int known = 1, rc = 0;
	if (gc_cancelled(x->o))
		return 1;
	if (f->mtime_ms >= x->cutoff || !strncmp(f->name, TRASH_PREFIX, strlen(TRASH_PREFIX)))
		return 0;
	if (!paths_upload_id_check(f->name)) {
		if ((rc = meta_gc_upload_known(x->m, f->name, &known)) || known)
			return rc;
		if (!x->o->dry_run && (rc = upload_remove(x->bs, f->name)))
			return rc == E_UPLOAD_BUSY || rc == E_BLOB_UPLOAD_UNKNOWN ? 0 : rc;
	} else if (!strncmp(f->name, "tmp-", 4)) {
		if (!x->o->dry_run && unlinkat(f->dirfd, f->name, 0) < 0)
			return errno == ENOENT ? 0 : blobstore_errno(errno);
	} else {
		return 0; /* not ours */
	}
	upload_gone(x, f->name, f->size);
	return 0;
}

int gc_uploads_purge(struct meta *m, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *r)
{
	struct upload_ctx x = { m, bs, o, gc_now_ms() - o->upload_ttl_s * 1000, r };
	struct ids ids = { 0 };
	struct buf p = BUF_INIT;
	int upfd, rc;
	paths_uploads_dir(&p, bs->root);
	upfd = open(p.buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	buf_release(&p);
	if (upfd < 0)
		return E_IO;
	/* collect first: a callback may not write */
	rc = meta_uploads_stale(m, x.cutoff, collect_id, &ids);
	for (size_t i = 0; i < ids.n && !rc && !gc_cancelled(o); i++)
		if (!paths_upload_id_check(ids.v[i]))
			rc = purge_session(&x, upfd, ids.v[i]);
	close(upfd);
	if (!rc)
		rc = gc_walk_uploads(bs->root, purge_file, &x);
	for (size_t i = 0; i < ids.n; i++)
		free(ids.v[i]);
	free(ids.v);
	return rc == 1 ? 0 : rc;
}
