/* gc: one garbage collection run: mark and sweep per repository, then blobs, orphan files and stale uploads. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "gc.h"
#include "gc_internal.h"
#include "log.h"
#include "meta.h"
#include "paths.h"
#include "store_backend.h"
#include "xalloc.h"

struct run {
	struct meta *m;
	const struct blobstore *bs;
	const struct gc_opts *o;
	struct gc_report *r;
	struct meta_gc_cutoffs cut;
	struct gc_trash trash;
	struct strmap *dead_links; /* dry run: digest -> links that would go */
};

struct repo_list {
	int64_t *ids;
	char **names;
	size_t n, alloc;
};

static int collect_repo(void *ctx, int64_t id, const char *name)
{
	struct repo_list *l = ctx;
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? 2 * l->alloc : 64;
		l->ids = xrealloc(l->ids, l->alloc * sizeof(*l->ids));
		l->names = xrealloc(l->names, l->alloc * sizeof(*l->names));
	}
	l->ids[l->n] = id;
	l->names[l->n++] = xstrdup(name);
	return 0;
}

static void repo_list_release(struct repo_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->ids);
	free(l->names);
}

/* A dry run only tells, and remembers which links would go for the blob estimate. */
static void dry_repo(struct run *x, const struct gc_repo *g, const char *name)
{
	for (size_t i = 0; i < g->norder; i++) {
		const struct gc_node *nd = &g->nodes[g->order[i]];
		x->r->manifests++;
		gc_tell(x->o, GC_ITEM_MANIFEST, name, nd->digest, nd->size);
	}
	for (size_t i = 0; i < g->nlinks; i++) {
		const struct gc_link *l = &g->links[i];
		if (!l->own_gone && !l->dead)
			continue;
		x->r->links++;
		(*strmap_get(x->dead_links, l->digest, 1))++;
		gc_tell(x->o, GC_ITEM_LINK, name, l->digest, l->size);
	}
	if (g->empties && (g->n || g->nlinks))
		x->r->repos_emptied++;
}

static int sweep_manifests(struct run *x, const struct gc_repo *g, const char *name)
{
	const char *batch[GC_BATCH];
	unsigned char done[GC_BATCH];
	int rc = 0;
	for (size_t at = 0; at < g->norder && !rc && !gc_cancelled(x->o); at += GC_BATCH) {
		size_t n = g->norder - at < GC_BATCH ? g->norder - at : GC_BATCH;
		for (size_t i = 0; i < n; i++)
			batch[i] = g->nodes[g->order[at + i]].digest;
		if ((rc = meta_gc_manifests_delete(x->m, g->id, batch, n, &x->cut, done)))
			break;
		for (size_t i = 0; i < n; i++) {
			const struct gc_node *nd = &g->nodes[g->order[at + i]];
			if (done[i] & META_GC_DONE_MANIFEST) {
				x->r->manifests++;
				gc_tell(x->o, GC_ITEM_MANIFEST, name, nd->digest, nd->size);
			}
			if (done[i] & META_GC_DONE_LINK) {
				x->r->links++;
				gc_tell(x->o, GC_ITEM_LINK, name, nd->digest, nd->size);
			}
		}
	}
	return rc;
}

static int sweep_links(struct run *x, const struct gc_repo *g, const char *name)
{
	const char *batch[GC_BATCH];
	const struct gc_link *which[GC_BATCH];
	unsigned char done[GC_BATCH];
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; i <= g->nlinks && !rc && !gc_cancelled(x->o); i++) {
		if (i < g->nlinks && g->links[i].dead) {
			which[n] = &g->links[i];
			batch[n++] = g->links[i].digest;
		}
		if (n < GC_BATCH && i < g->nlinks)
			continue;
		if (n && !(rc = meta_gc_links_delete(x->m, g->id, batch, n, x->cut.grace_ms, done))) {
			for (size_t k = 0; k < n; k++) {
				if (!done[k])
					continue;
				x->r->links++;
				gc_tell(x->o, GC_ITEM_LINK, name, which[k]->digest, which[k]->size);
			}
		}
		n = 0;
	}
	return rc;
}

static int sweep_repo(struct run *x, int64_t id, const char *name)
{
	struct gc_repo g;
	int existed = meta_repo_exists(x->m, name) == 0;
	int rc = gc_repo_load(x->m, &g, id, &x->cut);
	if (rc)
		goto out;
	gc_repo_mark(&g, x->cut.grace_ms);
	if (x->o->dry_run) {
		dry_repo(x, &g, name);
		goto out;
	}
	/* manifests first: their deletion is what frees their links */
	rc = sweep_manifests(x, &g, name);
	if (!rc)
		rc = sweep_links(x, &g, name);
	if (!rc && existed && meta_repo_exists(x->m, name) == E_NAME_UNKNOWN) {
		x->r->repos_emptied++;
		log_info("gc: repository \"%s\" is empty now", name);
	}
out:
	gc_repo_release(&g);
	return rc;
}

/* The file of blob ds, when it exists, is older than the grace period; its size in *size (0 when missing). */
static int file_old(const struct run *x, const char *ds, int64_t *size, int *exists)
{
	struct digest d;
	struct buf p = BUF_INIT;
	struct stat st;
	int old = 0;
	*size = 0;
	*exists = 0;
	if (digest_parse(ds, &d))
		return 0;
	paths_blob(&p, x->bs->root, &d);
	if (stat(p.buf, &st) < 0) {
		old = 1; /* a record without a file: nothing to protect */
	} else {
		int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		*exists = 1;
		*size = (int64_t)st.st_size;
		old = mt < x->cut.grace_ms;
	}
	buf_release(&p);
	return old;
}

struct blob_batch {
	struct run *x;
	char **v;
	size_t n, alloc;
};

static int collect_unlinked(void *ctx, const char *digest, int64_t size)
{
	struct blob_batch *b = ctx;
	(void)size;
	b->v = xgrow(b->v, &b->alloc, b->n, sizeof(*b->v));
	b->v[b->n++] = xstrdup(digest);
	return 0;
}

/* Moves the file of a deleted record into the trash; a record without a file counts as freed at once. */
static int trash_blob(struct run *x, const char *ds)
{
	struct digest d;
	int64_t size = 0;
	int rc;
	if (digest_parse(ds, &d))
		return 0;
	rc = gc_trash_add(&x->trash, x->bs, &d, &size);
	if (rc == E_BLOB_UNKNOWN) {
		x->r->blobs++;
		gc_tell(x->o, GC_ITEM_BLOB, NULL, ds, 0);
		rc = 0;
	}
	return rc;
}

/* Blob records no repository links any more, whose files are old enough. */
static int sweep_blobs(struct run *x)
{
	struct blob_batch all = { x, NULL, 0, 0 };
	const char *batch[GC_BATCH];
	unsigned char done[GC_BATCH];
	size_t n = 0;
	int rc = meta_gc_unlinked_blobs(x->m, collect_unlinked, &all);
	for (size_t i = 0; i <= all.n && !rc && !gc_cancelled(x->o); i++) {
		int64_t size;
		int exists;
		if (i < all.n && file_old(x, all.v[i], &size, &exists))
			batch[n++] = all.v[i];
		if (n < GC_BATCH && i < all.n)
			continue;
		if (n && !(rc = meta_gc_blobs_delete(x->m, batch, n, done)))
			for (size_t k = 0; k < n && !rc; k++)
				if (done[k])
					rc = trash_blob(x, batch[k]);
		n = 0;
	}
	for (size_t i = 0; i < all.n; i++)
		free(all.v[i]);
	free(all.v);
	return rc;
}

/* Dry run: a blob would go when every link it has would go (or it has none), and its file is old. */
static int estimate_blobs(struct run *x)
{
	struct blob_batch all = { x, NULL, 0, 0 };
	int rc = meta_gc_unlinked_blobs(x->m, collect_unlinked, &all);
	for (size_t i = 0; i < x->dead_links->cap && !rc; i++)
		if (x->dead_links->keys[i])
			collect_unlinked(&all, x->dead_links->keys[i], 0);
	for (size_t i = 0; i < all.n && !rc; i++) {
		int64_t links = 0, size, *dead = strmap_get(x->dead_links, all.v[i], 0);
		int row = 0, exists;
		if ((rc = meta_gc_blob_state(x->m, all.v[i], &row, &links)))
			break;
		if (!row || links > (dead ? *dead : 0) || !file_old(x, all.v[i], &size, &exists))
			continue;
		x->r->blobs++;
		x->r->bytes += size;
		gc_tell(x->o, GC_ITEM_BLOB, NULL, all.v[i], size);
	}
	for (size_t i = 0; i < all.n; i++)
		free(all.v[i]);
	free(all.v);
	return rc;
}

void gc_cutoffs(const struct gc_opts *o, struct meta_gc_cutoffs *cut)
{
	int64_t now = gc_now_ms();
	/* an untagged manifest is never younger-than-grace garbage: a push in progress may be about to tag it */
	int64_t young_s = o->untagged_s > o->grace_s ? o->untagged_s : o->grace_s;
	cut->history_ms = now - o->history_s * 1000;
	cut->young_ms = now - young_s * 1000;
	cut->grace_ms = now - o->grace_s * 1000;
}

static int run_repos(struct run *x)
{
	struct repo_list l = { 0 };
	int rc = meta_gc_repos(x->m, collect_repo, &l);
	for (size_t i = 0; i < l.n && !rc && !gc_cancelled(x->o); i++) {
		x->r->repos++;
		rc = sweep_repo(x, l.ids[i], l.names[i]);
		if (rc)
			log_error("gc: repository \"%s\": %s", l.names[i], err_desc(rc)->message);
	}
	repo_list_release(&l);
	return rc;
}

int gc_repos(struct meta *m, const struct gc_opts *o, const struct meta_gc_cutoffs *cut, struct gc_report *r,
	     struct strmap *dead_links)
{
	struct run x = { .m = m, .o = o, .r = r, .cut = *cut, .dead_links = dead_links };
	return run_repos(&x);
}

/* The shared frame of both entry points: lock, trash, timing. full: manifests, links and records too. */
static int run(struct meta *m, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *out, int full)
{
	struct strmap dead_links = { 0 };
	struct run x = { .m = m, .bs = bs, .o = o, .r = out, .dead_links = &dead_links };
	int64_t t0 = gc_now_ms();
	int lockfd = -1, rc;
	memset(out, 0, sizeof(*out));
	out->dry_run = o->dry_run;
	x.trash.upfd = -1;
	gc_cutoffs(o, &x.cut);
	/* a dry run changes nothing, so it may run beside a real one */
	if (!o->dry_run && (rc = gc_lock(bs->root, &lockfd))) {
		out->busy = rc == E_BUSY;
		goto out;
	}
	if (!o->dry_run && (rc = gc_trash_open(&x.trash, m, bs->root)))
		goto out;
	if (!o->dry_run)
		rc = gc_trash_recover(&x.trash, bs, o, out);
	if (!rc && full)
		rc = run_repos(&x);
	if (!rc && full && !gc_cancelled(o))
		rc = o->dry_run ? estimate_blobs(&x) : sweep_blobs(&x);
	if (!rc && !gc_cancelled(o))
		rc = gc_orphan_files(bs, o, x.cut.grace_ms, &x.trash, out);
	if (!rc && !gc_cancelled(o))
		rc = gc_uploads_purge(m, bs, o, out);
out:
	/* always: files moved aside are deleted or put back, even after an error */
	if (x.trash.upfd >= 0)
		gc_trash_empty(&x.trash, bs, o, out);
	gc_unlock(lockfd);
	strmap_release(&dead_links);
	out->cancelled = gc_cancelled(o);
	out->duration_ms = gc_now_ms() - t0;
	return rc;
}

int gc_run(struct meta *m, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *out)
{
	return run(m, bs, o, out, 1);
}

int gc_purge_orphans(struct meta *m, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *out)
{
	return run(m, bs, o, out, 0);
}

int store_gc(struct store *st, const struct gc_opts *o, struct gc_report *out)
{
	const struct blobstore *bs = store_blobstore(st);
	struct gc_runlock lk;
	int rc;
	if (!bs)
		return gc_remote_run(st, o, out, 1);
	/* PostgreSQL beside a local directory: the database's lock too, as the cluster takes it */
	if (st->pg && !o->dry_run && (rc = gc_runlock_take(st, &lk))) {
		memset(out, 0, sizeof(*out));
		out->busy = rc == E_BUSY;
		return rc;
	}
	rc = gc_run(st->meta, bs, o, out);
	if (st->pg && !o->dry_run)
		gc_runlock_drop(&lk);
	return rc;
}
