/*
 * gc_remote: garbage collection of a store whose blobs are in an object
 * store (the S3 backend), beside nodes that keep pushing.
 *
 * The repositories are marked and swept through meta as on one node
 * (gc.c). Then, under the run lock: stale uploads are forgotten (only
 * those no request holds) and their backend state cancelled (multipart
 * upload aborted, tails deleted); the backend is listed and every object
 * that nothing keeps (gc_refs) is set aside as an orphan; blob records no
 * repository links, older than the grace period, are deleted (each
 * re-checked in its transaction). Objects are deleted last, after
 * o->settle_ms and one more load of what keeps objects: a blob recorded
 * again meanwhile (a push of the same content, a one-shot upload whose
 * object exists a moment before its record) keeps its object.
 *
 * The listing is taken before what keeps objects is read, so an object
 * that was listed belongs, at that read, to an upload session or to a
 * blob record unless it is garbage. Listings do not carry the objects'
 * ages (the client's ListObjectsV2 result has no LastModified), so an
 * orphan is deleted when it stayed unkept from the listing to the end of
 * the settle time rather than by its age.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "gc.h"
#include "gc_internal.h"
#include "log.h"
#include "xalloc.h"

/* ---- what keeps objects ---- */

struct refs_load {
	struct gc_refs *r;
	struct blob_backend *be;
	struct buf name;
};

static int on_state(void *ctx, const char *id, const void *state, size_t len, int64_t updated_ms)
{
	struct refs_load *x = ctx;
	(void)updated_ms;
	buf_reset(&x->name);
	/* a state the backend cannot read names nothing: fsck reports it */
	if (len && !x->be->ops->up_name(x->be, state, len, &x->name))
		strmap_get(&x->r->uploads, x->name.buf, 1);
	else if (len)
		log_warn("gc: upload %s has a state that cannot be read", id);
	return 0;
}

static int on_blob_ref(void *ctx, const char *digest, const char *location)
{
	struct refs_load *x = ctx;
	strmap_get(location ? &x->r->located : &x->r->plain, location ? location : digest, 1);
	return 0;
}

int gc_refs_load(struct store *st, struct gc_refs *r)
{
	struct refs_load x = { r, st->blobs, BUF_INIT };
	memset(r, 0, sizeof(*r));
	int rc = meta_gc_upload_states(st->meta, on_state, &x);
	if (!rc)
		rc = meta_gc_blob_refs(st->meta, on_blob_ref, &x);
	buf_release(&x.name);
	return rc;
}

int gc_refs_keep(const struct gc_refs *r, const struct blob_entry *e)
{
	struct gc_refs *m = (struct gc_refs *)r; /* looked up without add: not changed */
	char ds[DIGEST_STR_MAX];
	if (!e->digest && !e->location && !e->upload)
		return 1;
	if (e->location && strmap_get(&m->located, e->location, 0))
		return 1;
	if (e->upload && strmap_get(&m->uploads, e->upload, 0))
		return 1;
	return e->digest && strmap_get(&m->plain, digest_str(e->digest, ds), 0);
}

void gc_refs_release(struct gc_refs *r)
{
	strmap_release(&r->plain);
	strmap_release(&r->located);
	strmap_release(&r->uploads);
}

int gc_probe_object(const struct blob_entry *e)
{
	struct digest empty;
	digest_of(DIGEST_SHA256, "", 0, &empty);
	return e->digest && !e->location && digest_eq(e->digest, &empty);
}

/* ---- one run ---- */

/* An object to delete once the settle time passed and nothing keeps it then. */
struct pending {
	char *label;           /* listed: deleted by label */
	int has_digest;
	struct digest d;       /* a swept record: deleted as blob d at location */
	char *location, *upload;
	int64_t size;
	enum gc_item_kind kind;
};

struct rrun {
	struct store *st;
	struct blob_backend *be;
	const struct gc_opts *o;
	struct gc_report *r;
	struct meta_gc_cutoffs cut;
	struct strmap dead_links;
	struct pending *v;
	size_t n, alloc;
	int64_t last_ms;
};

static struct pending *pending_add(struct rrun *x, const char *label, const struct digest *d, const char *location,
				   const char *upload, int64_t size, enum gc_item_kind kind)
{
	x->v = xgrow(x->v, &x->alloc, x->n, sizeof(*x->v));
	struct pending *p = &x->v[x->n++];
	memset(p, 0, sizeof(*p));
	p->label = label ? xstrdup(label) : NULL;
	if (d) {
		p->has_digest = 1;
		p->d = *d;
	}
	p->location = location ? xstrdup(location) : NULL;
	p->upload = upload ? xstrdup(upload) : NULL;
	p->size = size;
	p->kind = kind;
	x->last_ms = gc_now_ms();
	return p;
}

static void item_done(struct rrun *x, enum gc_item_kind kind, const char *name, int64_t size)
{
	if (kind == GC_ITEM_UPLOAD) {
		x->r->uploads++;
		x->r->upload_bytes += size;
	} else {
		x->r->blobs++;
		x->r->bytes += size;
	}
	gc_tell(x->o, kind, NULL, name, size);
}

/* Stale upload sessions: forgotten in meta (unless a request holds one), then cancelled in the backend. */
struct stale {
	char **ids;
	int64_t *sizes;
	size_t n, alloc;
	struct rrun *x;
	int64_t cutoff;
};

static int on_stale(void *ctx, const char *id, const void *state, size_t len, int64_t updated_ms)
{
	struct stale *s = ctx;
	int64_t size = 0;
	if (updated_ms >= s->cutoff)
		return 0;
	if (len)
		(void)s->x->be->ops->up_size(s->x->be, id, state, len, &size);
	size_t alloc = s->alloc;
	s->ids = xgrow(s->ids, &s->alloc, s->n, sizeof(*s->ids));
	s->sizes = xgrow(s->sizes, &alloc, s->n, sizeof(*s->sizes));
	s->ids[s->n] = xstrdup(id);
	s->sizes[s->n++] = size;
	return 0;
}

static int purge_uploads(struct rrun *x)
{
	struct stale s = { .x = x, .cutoff = gc_now_ms() - x->o->upload_ttl_s * 1000 };
	struct buf state = BUF_INIT;
	/* collect first: a callback may not write */
	int rc = meta_gc_upload_states(x->st->meta, on_stale, &s);
	for (size_t i = 0; i < s.n && !rc && !gc_cancelled(x->o); i++) {
		int deleted = 0;
		if (x->o->dry_run) {
			item_done(x, GC_ITEM_UPLOAD, s.ids[i], s.sizes[i]);
			continue;
		}
		if ((rc = meta_gc_upload_expire_state(x->st->meta, s.ids[i], s.cutoff, gc_now_ms(), &state, &deleted)) || !deleted)
			continue;
		/* the session is gone: nothing can use the state any more, so its objects go */
		int gone = state.len ? x->be->ops->up_remove(x->be, s.ids[i], state.buf, state.len) : 0;
		if (gone && gone != E_BLOB_UPLOAD_UNKNOWN)
			log_warn("gc: upload %s: cancelling it in the object store failed (%s); its tails go with the next "
				 "collection, its parts with the bucket's lifecycle rule", s.ids[i], err_desc(gone)->message);
		item_done(x, GC_ITEM_UPLOAD, s.ids[i], s.sizes[i]);
	}
	for (size_t i = 0; i < s.n; i++)
		free(s.ids[i]);
	free(s.ids);
	free(s.sizes);
	buf_release(&state);
	return rc;
}

/* Orphans: listed first, then checked against what keeps objects. */
struct listed {
	struct pending *v;
	size_t n, alloc;
	const struct gc_opts *o;
};

static int on_object(void *ctx, const struct blob_entry *e)
{
	struct listed *l = ctx;
	if (gc_cancelled(l->o))
		return 1;
	if ((!e->digest && !e->location && !e->upload) || gc_probe_object(e))
		return 0;
	l->v = xgrow(l->v, &l->alloc, l->n, sizeof(*l->v));
	struct pending *p = &l->v[l->n++];
	memset(p, 0, sizeof(*p));
	p->label = xstrdup(e->label);
	if (e->digest) {
		p->has_digest = 1;
		p->d = *e->digest;
	}
	p->location = e->location ? xstrdup(e->location) : NULL;
	p->upload = e->upload ? xstrdup(e->upload) : NULL;
	p->size = e->size;
	/* an upload's leftovers are uploads purged; a blob completed in place is a blob */
	p->kind = e->upload && !e->location ? GC_ITEM_UPLOAD : GC_ITEM_BLOB;
	return 0;
}

static void pending_entry(const struct pending *p, struct blob_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->digest = p->has_digest && !p->location ? &p->d : NULL;
	e->location = p->location;
	e->upload = p->upload;
	e->label = p->label;
	e->size = p->size;
}

static void pending_free(struct pending *p)
{
	free(p->label);
	free(p->location);
	free(p->upload);
}

static const char *pending_name(const struct pending *p, char ds[DIGEST_STR_MAX])
{
	return p->has_digest ? digest_str(&p->d, ds) : p->label;
}

static int find_orphans(struct rrun *x)
{
	struct listed l = { .o = x->o };
	struct gc_refs refs;
	int rc = x->be->ops->list(x->be, on_object, &l);
	if (rc == 1)
		rc = 0;
	if (!rc && !gc_cancelled(x->o))
		rc = gc_refs_load(x->st, &refs);
	else
		memset(&refs, 0, sizeof(refs));
	for (size_t i = 0; i < l.n && !rc && !gc_cancelled(x->o); i++) {
		struct blob_entry e;
		char ds[DIGEST_STR_MAX];
		pending_entry(&l.v[i], &e);
		if (gc_refs_keep(&refs, &e))
			continue;
		if (x->o->dry_run)
			item_done(x, l.v[i].kind, pending_name(&l.v[i], ds), l.v[i].size);
		else
			pending_add(x, l.v[i].label, l.v[i].has_digest ? &l.v[i].d : NULL, l.v[i].location, l.v[i].upload,
				    l.v[i].size, l.v[i].kind);
	}
	for (size_t i = 0; i < l.n; i++)
		pending_free(&l.v[i]);
	free(l.v);
	gc_refs_release(&refs);
	return rc;
}

/* Blob records no repository links, older than the grace period (the age of the record: objects tell none). */
struct unlinked {
	struct meta_gc_unlinked *v;
	size_t n, alloc;
};

static int on_unlinked(void *ctx, const struct meta_gc_unlinked *u)
{
	struct unlinked *l = ctx;
	l->v = xgrow(l->v, &l->alloc, l->n, sizeof(*l->v));
	l->v[l->n] = *u;
	l->v[l->n].digest = xstrdup(u->digest);
	l->v[l->n].location = u->location ? xstrdup(u->location) : NULL;
	l->n++;
	return 0;
}

static void unlinked_release(struct unlinked *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free((char *)l->v[i].digest);
		free((char *)l->v[i].location);
	}
	free(l->v);
}

static void swept(struct rrun *x, const struct meta_gc_unlinked *u)
{
	struct digest d;
	if (u->in_db || digest_parse(u->digest, &d)) {
		item_done(x, GC_ITEM_BLOB, u->digest, 0); /* its bytes went with the record */
		return;
	}
	pending_add(x, NULL, &d, u->location, NULL, u->size, GC_ITEM_BLOB);
}

static int sweep_records(struct rrun *x)
{
	struct unlinked all = { 0 };
	const char *batch[GC_BATCH];
	const struct meta_gc_unlinked *which[GC_BATCH];
	unsigned char done[GC_BATCH];
	size_t n = 0;
	int rc = meta_gc_unlinked_at(x->st->meta, on_unlinked, &all);
	for (size_t i = 0; i <= all.n && !rc && !gc_cancelled(x->o); i++) {
		if (i < all.n && all.v[i].created_ms < x->cut.grace_ms) {
			which[n] = &all.v[i];
			batch[n++] = all.v[i].digest;
		}
		if (n < GC_BATCH && i < all.n)
			continue;
		if (n && !(rc = meta_gc_blobs_delete(x->st->meta, batch, n, done)))
			for (size_t k = 0; k < n; k++)
				if (done[k])
					swept(x, which[k]);
		n = 0;
	}
	unlinked_release(&all);
	return rc;
}

/* Dry run: records without links, and those whose every link would go; sizes as recorded. */
static int estimate_records(struct rrun *x)
{
	struct unlinked all = { 0 };
	int rc = meta_gc_unlinked_at(x->st->meta, on_unlinked, &all);
	for (size_t i = 0; i < all.n && !rc; i++)
		if (all.v[i].created_ms < x->cut.grace_ms)
			item_done(x, GC_ITEM_BLOB, all.v[i].digest, all.v[i].size);
	for (size_t i = 0; i < x->dead_links.cap && !rc; i++) {
		const char *ds = x->dead_links.keys[i];
		struct digest d;
		int64_t links = 0, size = 0;
		int row = 0;
		if (!ds || (rc = meta_gc_blob_state(x->st->meta, ds, &row, &links)) || !row || links > x->dead_links.vals[i] ||
		    digest_parse(ds, &d))
			continue;
		(void)store_blob_held(x->st, &d, &size);
		item_done(x, GC_ITEM_BLOB, ds, size);
	}
	unlinked_release(&all);
	return rc;
}

/* Waits out the settle time, asks once more what keeps objects, and deletes the rest. */
static int delete_pending(struct rrun *x)
{
	struct gc_refs refs;
	int rc = 0;
	while (x->n && !gc_cancelled(x->o) && gc_now_ms() < x->last_ms + x->o->settle_ms) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (!x->n || gc_cancelled(x->o))
		return 0; /* left for the next run: orphans by then */
	if ((rc = gc_refs_load(x->st, &refs)))
		return rc;
	for (size_t i = 0; i < x->n && !gc_cancelled(x->o); i++) {
		const struct pending *p = &x->v[i];
		char ds[DIGEST_STR_MAX];
		struct blob_entry e;
		int gone;
		pending_entry(p, &e);
		if (gc_refs_keep(&refs, &e)) {
			x->r->restored++;
			log_info("gc: %s was recorded again during the collection; kept", pending_name(p, ds));
			continue;
		}
		gone = p->label ? x->be->ops->drop(x->be, p->label) : x->be->ops->remove(x->be, &p->d, p->location);
		if (gone) {
			log_warn("gc: deleting %s failed (%s); it goes with the next collection", pending_name(p, ds),
				 err_desc(gone)->message);
			if (!rc)
				rc = gone;
			continue;
		}
		item_done(x, p->kind, pending_name(p, ds), p->size);
	}
	gc_refs_release(&refs);
	return rc;
}

int gc_remote_run(struct store *st, const struct gc_opts *o, struct gc_report *out, int full)
{
	struct rrun x = { .st = st, .be = st->blobs, .o = o, .r = out };
	struct gc_runlock lk = { .fd = -1 };
	int64_t t0 = gc_now_ms();
	int rc = 0, locked = 0;
	memset(out, 0, sizeof(*out));
	out->dry_run = o->dry_run;
	if (!x.be->ops->list || !x.be->ops->drop || !x.be->ops->up_name)
		return E_UNSUPPORTED;
	gc_cutoffs(o, &x.cut);
	/* a dry run changes nothing, so it may run beside a real one */
	if (!o->dry_run) {
		if ((rc = gc_runlock_take(st, &lk))) {
			out->busy = rc == E_BUSY;
			goto out;
		}
		locked = 1;
	}
	if (full)
		rc = gc_repos(st->meta, o, &x.cut, out, &x.dead_links);
	if (!rc && !gc_cancelled(o))
		rc = purge_uploads(&x);
	/* orphans before records: an object whose record this run deletes is not listed as an orphan too */
	if (!rc && !gc_cancelled(o))
		rc = find_orphans(&x);
	if (!rc && full && !gc_cancelled(o))
		rc = o->dry_run ? estimate_records(&x) : sweep_records(&x);
	if (!rc)
		rc = delete_pending(&x);
out:
	if (locked)
		gc_runlock_drop(&lk);
	for (size_t i = 0; i < x.n; i++)
		pending_free(&x.v[i]);
	free(x.v);
	strmap_release(&x.dead_links);
	out->cancelled = gc_cancelled(o);
	out->duration_ms = gc_now_ms() - t0;
	return rc;
}
