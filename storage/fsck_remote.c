/*
 * fsck_remote: the integrity check's side for blobs in an object store:
 * one listing of the backend instead of a walk of blobs/, every blob
 * record's object present with its recorded size (with --verify also read
 * and re-hashed), every upload's state readable by the backend, and the
 * objects nothing keeps (gc_refs, as garbage collection decides) told as
 * orphans once repair had its go. Objects that are none of berth's (wrong
 * names under its prefixes) are strays: told, never deleted.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fsck.h"
#include "fsck_internal.h"
#include "log.h"
#include "xalloc.h"

static int on_listed(void *ctx, const struct blob_entry *e)
{
	struct fsck *f = ctx;
	char ds[DIGEST_STR_MAX];
	if (!e->digest && !e->location && !e->upload) {
		fsck_problem(f, "stray", NULL, e->label, 0, 0, "object under the store's prefix whose name is none of berth's");
		return 0;
	}
	if (e->digest)
		*strmap_get(&f->files, digest_str(e->digest, ds), 1) = e->size;
	if (e->location)
		*strmap_get(&f->located, e->location, 1) = e->size;
	f->listed = xgrow(f->listed, &f->listed_alloc, f->nlisted, sizeof(*f->listed));
	struct blob_entry *c = &f->listed[f->nlisted++];
	*c = *e;
	c->label = xstrdup(e->label);
	c->location = e->location ? xstrdup(e->location) : NULL;
	c->upload = e->upload ? xstrdup(e->upload) : NULL;
	if (e->digest) {
		struct digest *d = xmalloc(sizeof(*d));
		*d = *e->digest;
		c->digest = d;
	}
	return 0;
}

int fsck_remote_list(struct fsck *f)
{
	struct blob_backend *be = f->st->blobs;
	if (!be->ops->list || !be->ops->up_name)
		return E_UNSUPPORTED;
	return be->ops->list(be, on_listed, f);
}

/* Reads blob d wherever it lives and hashes it into *got. */
static int check_record(void *ctx, const struct meta_fsck_blob_at *b)
{
	struct fsck *f = ctx;
	struct digest d, got;
	char gs[DIGEST_STR_MAX];
	int64_t have = -1, *v;
	f->r->blobs++;
	if (b->in_db || digest_parse(b->digest, &d))
		return 0; /* bytes in the database: checked with the contents */
	v = b->location ? strmap_get(&f->located, b->location, 0) : strmap_get(&f->files, b->digest, 0);
	/* not listed: it may have arrived since the listing; ask the store itself */
	if (v)
		have = *v;
	else if (f->st->blobs->ops->stat(f->st->blobs, &d, b->location, &have))
		have = -1;
	if (have < 0) {
		fsck_problem(f, "missing", NULL, b->digest, 0, 0,
			     "recorded blob (linked in %lld %s) has no object in the store%s%s", (long long)b->links,
			     b->links == 1 ? "repository" : "repositories", b->location ? " at " : "",
			     b->location ? b->location : "");
		return 0;
	}
	if (have != b->size) {
		fsck_problem(f, "size", NULL, b->digest, 0, 0, "recorded size %lld, object size %lld", (long long)b->size,
			     (long long)have);
		return 0;
	}
	if (!f->o->verify)
		return 0;
	f->r->files++;
	f->r->bytes += have;
	int rc = store_blob_rehash(f->st, &d, &got);
	if (rc == E_STORE_UNAVAILABLE)
		return rc;
	if (rc)
		fsck_problem(f, "corrupt", NULL, b->digest, 0, 0, "cannot read the object (%s)", err_desc(rc)->message);
	else if (!digest_eq(&got, &d))
		fsck_problem(f, "corrupt", NULL, b->digest, 0, 0, "content hashes to %s", digest_str(&got, gs));
	return 0;
}

int fsck_remote_blobs(struct fsck *f)
{
	return meta_fsck_blobs_at(f->st->meta, check_record, f);
}

static int check_state(void *ctx, const char *id, const void *state, size_t len, int64_t updated_ms)
{
	struct fsck *f = ctx;
	struct blob_backend *be = f->st->blobs;
	struct buf name = BUF_INIT;
	int stale = updated_ms < gc_now_ms() - f->o->upload_ttl_s * 1000;
	f->r->uploads++;
	if (store_upload_id_check(id))
		fsck_problem(f, "upload", NULL, id, 0, 0, "upload session with a malformed id");
	else if (!len || be->ops->up_name(be, state, len, &name))
		fsck_problem(f, "upload", NULL, id, 0, 0, "upload session whose state in the database is unusable");
	else if (stale)
		fsck_problem(f, "upload", NULL, id, 1, 0, "idle for longer than the upload ttl");
	buf_release(&name);
	return 0;
}

int fsck_remote_uploads(struct fsck *f)
{
	return meta_gc_upload_states(f->st->meta, check_state, f);
}

/* Labels of a fresh listing: what repair left. */
static int on_relisted(void *ctx, const struct blob_entry *e)
{
	strmap_get(ctx, e->label, 1);
	return 0;
}

int fsck_remote_orphans(struct fsck *f)
{
	struct strmap left = { 0 };
	struct gc_refs refs;
	/* listed again, then what keeps objects: an upload that finished meanwhile took its tails along */
	int rc = f->st->blobs->ops->list(f->st->blobs, on_relisted, &left);
	if (!rc)
		rc = gc_refs_load(f->st, &refs);
	else
		memset(&refs, 0, sizeof(refs));
	for (size_t i = 0; i < f->nlisted && !rc; i++) {
		const struct blob_entry *e = &f->listed[i];
		int gone = !strmap_get(&left, e->label, 0);
		if (gc_probe_object(e) || gc_refs_keep(&refs, e) || (gone && !f->o->repair))
			continue;
		fsck_problem(f, "orphan", NULL, e->label, 0, gone, "object (%lld bytes) that no metadata refers to",
			     (long long)e->size);
	}
	gc_refs_release(&refs);
	strmap_release(&left);
	return rc;
}

void fsck_remote_release(struct fsck *f)
{
	for (size_t i = 0; i < f->nlisted; i++) {
		free((char *)f->listed[i].label);
		free((char *)f->listed[i].location);
		free((char *)f->listed[i].upload);
		free((struct digest *)f->listed[i].digest);
	}
	free(f->listed);
	strmap_release(&f->located);
	f->listed = NULL;
	f->nlisted = 0;
}
