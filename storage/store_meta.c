/*
 * store_meta: the store's verbs over the metadata module: repositories,
 * tags and their history, referrers, tokens, the audit log, statistics.
 * Types are translated field by field (no bytes copied); callbacks pass
 * through a trampoline.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store_backend.h"
#include "store_meta.h"

_Static_assert(sizeof(((struct store_tag_change *)0)->how) == sizeof(((struct meta_tag_change *)0)->how),
	       "tag change reports match");

static void audit_from_meta(struct store_audit *out, const struct meta_audit *ev)
{
	out->id = ev->id;
	out->time_ms = ev->time_ms;
	out->actor = ev->actor;
	out->action = ev->action;
	out->repo = ev->repo;
	out->detail = ev->detail;
	out->client = ev->client;
}

/* The meta_actor's audit hook: asks the store_actor's with a store_audit, hands the answer back. */
static int actor_audit(void *ctx, struct meta_audit *ev)
{
	struct store_meta_actor *ma = ctx;
	struct store_audit sa;
	int rc;
	if (ma->actor.change)
		store_meta_actor_done(ma); /* the hook may look at what the write did */
	audit_from_meta(&sa, ev);
	if ((rc = ma->from->audit(ma->from->audit_ctx, &sa)))
		return rc;
	ev->actor = sa.actor;
	ev->action = sa.action;
	ev->repo = sa.repo;
	ev->detail = sa.detail;
	ev->client = sa.client;
	return 0;
}

void store_meta_actor_init(struct store_meta_actor *ma, const struct store_actor *from)
{
	memset(ma, 0, sizeof(*ma));
	ma->from = from;
	if (!from)
		return;
	ma->actor.name = from->name;
	ma->actor.how = from->how;
	ma->actor.client = from->client;
	ma->actor.guard = from->guard;
	ma->actor.guard_ctx = from->guard_ctx;
	ma->actor.change = from->change ? &ma->change : NULL;
	if (from->audit) {
		ma->actor.audit = actor_audit;
		ma->actor.audit_ctx = ma;
	}
}

const struct meta_actor *store_meta_actor(struct store_meta_actor *ma)
{
	return ma->from ? &ma->actor : NULL;
}

void store_meta_actor_done(struct store_meta_actor *ma)
{
	struct store_tag_change *c = ma->from ? ma->from->change : NULL;
	if (!c)
		return;
	c->count = ma->change.count;
	memcpy(c->how, ma->change.how, sizeof(c->how));
	memcpy(c->old_digest, ma->change.old_digest, sizeof(c->old_digest));
	memcpy(c->new_digest, ma->change.new_digest, sizeof(c->new_digest));
}

/* ---- manifests ---- */

/* A caller's callback and context, carried through meta's callback. */
struct tramp {
	union {
		int (*ref)(void *ctx, const struct store_ref_info *ri);
		int (*manifest)(void *ctx, const struct store_manifest *m);
		int (*tag)(void *ctx, const struct store_tag_info *t);
		int (*event)(void *ctx, const struct store_tag_event *ev);
		int (*pat)(void *ctx, const struct store_pat *p);
		int (*audit)(void *ctx, const struct store_audit *ev);
	} cb;
	void *ctx;
};

static int refs_tramp(void *ctx, const struct meta_ref_info *ri)
{
	struct tramp *t = ctx;
	struct store_ref_info si = { (enum store_ref_kind)ri->kind, ri->digest, ri->size };
	return t->cb.ref(t->ctx, &si);
}

int store_manifest_refs(struct store *st, const char *repo, const struct digest *d,
			int (*cb)(void *ctx, const struct store_ref_info *ri), void *ctx)
{
	struct tramp t = { .ctx = ctx };
	t.cb.ref = cb;
	return meta_manifest_refs(st->meta, repo, d, refs_tramp, &t);
}

static int referrer_tramp(void *ctx, const struct meta_manifest *m)
{
	struct tramp *t = ctx;
	struct store_manifest sm = { m->digest, m->size, m->media_type, m->artifact_type, m->annotations };
	return t->cb.manifest(t->ctx, &sm);
}

int store_referrers(struct store *st, const char *repo, const struct digest *d, const char *artifact_type,
		    int (*cb)(void *ctx, const struct store_manifest *m), void *ctx)
{
	struct tramp t = { .ctx = ctx };
	t.cb.manifest = cb;
	return meta_referrers(st->meta, repo, d, artifact_type, referrer_tramp, &t);
}

/* ---- repositories and tags ---- */

int store_repo_exists(struct store *st, const char *repo)
{
	return meta_repo_exists(st->meta, repo);
}

int store_repo_list(struct store *st, const char *last, long n, store_str_cb filter, void *fctx, store_str_cb cb,
		    void *ctx, int *more)
{
	return meta_catalog(st->meta, last, n, filter, fctx, cb, ctx, more);
}

int store_tag_list(struct store *st, const char *repo, const char *last, long n, store_str_cb cb, void *ctx,
		   int *more)
{
	return meta_tags_list(st->meta, repo, last, n, cb, ctx, more);
}

int store_read_version(struct store *st, uint64_t v[2])
{
	return meta_read_version(st->meta, v);
}

static int tag_info_tramp(void *ctx, const struct meta_tag_info *ti)
{
	struct tramp *t = ctx;
	struct store_tag_info si = { ti->name, ti->digest, ti->size, ti->updated_ms };
	return t->cb.tag(t->ctx, &si);
}

int store_tag_info(struct store *st, const char *repo, int (*cb)(void *ctx, const struct store_tag_info *t),
		   void *ctx)
{
	struct tramp t = { .ctx = ctx };
	t.cb.tag = cb;
	return meta_tags_info(st->meta, repo, tag_info_tramp, &t);
}

static int history_tramp(void *ctx, const struct meta_tag_event *ev)
{
	struct tramp *t = ctx;
	struct store_tag_event se = { ev->id,  ev->time_ms, ev->old_digest, ev->new_digest,
				      ev->actor, ev->how,     ev->client };
	return t->cb.event(t->ctx, &se);
}

int store_tag_history(struct store *st, const char *repo, const char *tag,
		      int (*cb)(void *ctx, const struct store_tag_event *ev), void *ctx)
{
	struct tramp t = { .ctx = ctx };
	t.cb.event = cb;
	return meta_tag_history(st->meta, repo, tag, history_tramp, &t);
}

int store_tag_rollback(struct store *st, const char *repo, const char *tag, long steps, const char *to,
		       int dry_run, const struct store_actor *actor, struct store_rollback *out, struct buf *detail)
{
	struct store_meta_actor ma;
	struct meta_rollback rb = { 0 };
	int rc;
	store_meta_actor_init(&ma, actor);
	rc = meta_tag_rollback(st->meta, repo, tag, steps, to, dry_run, store_meta_actor(&ma), &rb, detail);
	store_meta_actor_done(&ma);
	memcpy(out->from, rb.from, sizeof(out->from));
	memcpy(out->to, rb.to, sizeof(out->to));
	out->from_size = rb.from_size;
	out->to_size = rb.to_size;
	out->moved = rb.moved;
	return rc;
}

/* ---- personal access tokens ---- */

/* Moves the strings of p into out (no copy). */
static void pat_from_meta(struct store_pat *out, struct meta_pat *p)
{
	out->id = p->id;
	out->owner = p->owner;
	out->name = p->name;
	out->scopes = p->scopes;
	out->created_ms = p->created_ms;
	out->expires_ms = p->expires_ms;
	out->last_used_ms = p->last_used_ms;
	out->revoked_ms = p->revoked_ms;
}

void store_pat_release(struct store_pat *p)
{
	free(p->owner);
	free(p->name);
	free(p->scopes);
	memset(p, 0, sizeof(*p));
}

int store_pat_create(struct store *st, const char *owner, const char *name, const char *scopes, int64_t expires_ms,
		     const unsigned char hash[32], int64_t *id)
{
	return meta_pat_create(st->meta, owner, name, scopes, expires_ms, hash, id);
}

int store_pat_lookup(struct store *st, const unsigned char hash[32], int64_t now_ms, struct store_pat *out)
{
	struct meta_pat p = { 0 };
	int rc = meta_pat_lookup(st->meta, hash, now_ms, &p);
	memset(out, 0, sizeof(*out));
	if (!rc)
		pat_from_meta(out, &p); /* the strings move over */
	else
		meta_pat_release(&p);
	return rc;
}

int store_pat_check(struct store *st, int64_t id, int64_t now_ms)
{
	return meta_pat_check(st->meta, id, now_ms);
}

int store_pat_scopes(struct store *st, int64_t id, char **scopes)
{
	return meta_pat_get_scopes(st->meta, id, scopes);
}

int store_pat_touch(struct store *st, int64_t id, int64_t now_ms)
{
	return meta_pat_touch(st->meta, id, now_ms);
}

static int pat_tramp(void *ctx, const struct meta_pat *p)
{
	struct tramp *t = ctx;
	struct store_pat sp;
	pat_from_meta(&sp, (struct meta_pat *)p); /* borrowed for the call, never released */
	return t->cb.pat(t->ctx, &sp);
}

int store_pat_list(struct store *st, const char *owner, int all, int (*cb)(void *ctx, const struct store_pat *p),
		   void *ctx)
{
	struct tramp t = { .ctx = ctx };
	t.cb.pat = cb;
	return meta_pat_list(st->meta, owner, all, pat_tramp, &t);
}

int store_pat_revoke(struct store *st, const char *owner, const char *name, int64_t now_ms)
{
	return meta_pat_revoke(st->meta, owner, name, now_ms);
}

int store_pat_name(struct store *st, int64_t id, char **name)
{
	return meta_pat_name(st->meta, id, name);
}

/* ---- audit log and statistics ---- */

int store_audit_add(struct store *st, const char *actor, const char *action, const char *repo,
		    const char *detail_json, const char *client)
{
	return meta_audit_add(st->meta, actor, action, repo, detail_json, client);
}

static int audit_tramp(void *ctx, const struct meta_audit *ev)
{
	struct tramp *t = ctx;
	struct store_audit sa;
	audit_from_meta(&sa, ev);
	return t->cb.audit(t->ctx, &sa);
}

int store_audit_list(struct store *st, int64_t since_ms, const char *repo, long limit,
		     int (*cb)(void *ctx, const struct store_audit *ev), void *ctx)
{
	struct tramp t = { .ctx = ctx };
	t.cb.audit = cb;
	return meta_audit_list(st->meta, since_ms, repo, limit, audit_tramp, &t);
}

int store_stats(struct store *st, struct store_stats *out)
{
	struct meta_stats ms;
	int rc = meta_stats(st->meta, &ms);
	memset(out, 0, sizeof(*out));
	if (rc)
		return rc;
	out->blobs = ms.blobs;
	out->blob_bytes = ms.blob_bytes;
	out->repos = ms.repos;
	out->manifests = ms.manifests;
	out->tags = ms.tags;
	out->uploads = ms.uploads;
	out->gc_runs = ms.gc_runs;
	out->gc_bytes_freed = ms.gc_bytes_freed;
	return 0;
}
