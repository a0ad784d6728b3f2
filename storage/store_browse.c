/* store_browse: the web interface's listings (store_browse.h), passed through to the metadata module. */
#include "store_browse.h"

#include "meta.h"
#include "store_backend.h"

static void page_of(const struct store_browse_page *pg, struct meta_browse_page *mp)
{
	mp->sort = (int)pg->sort;
	mp->desc = pg->desc;
	mp->after_name = pg->after_name;
	mp->after_value = pg->after_value;
	mp->contains = pg->contains;
	mp->n = pg->n > 0 ? pg->n : 1;
}

/* The caller's callback, for the trampolines below. */
struct browse_tramp {
	union {
		int (*repo)(void *ctx, const struct store_repo_summary *r);
		int (*tag)(void *ctx, const struct store_tag_summary *t);
	} cb;
	void *ctx;
};

static int repo_tramp(void *ctx, const struct meta_repo_summary *mr)
{
	struct browse_tramp *t = ctx;
	struct store_repo_summary r = { mr->name, mr->pushed_ms, mr->tags, mr->size };
	return t->cb.repo(t->ctx, &r);
}

int store_browse_repos(struct store *st, const struct store_browse_page *pg, store_str_cb filter, void *fctx,
		       int (*cb)(void *ctx, const struct store_repo_summary *r), void *ctx, int *more)
{
	struct meta_browse_page mp;
	struct browse_tramp t = { .cb.repo = cb, .ctx = ctx };
	page_of(pg, &mp);
	return meta_browse_repos(st->meta, &mp, filter, fctx, repo_tramp, &t, more);
}

static int tag_tramp(void *ctx, const struct meta_tag_summary *mt)
{
	struct browse_tramp *t = ctx;
	struct store_tag_summary s = { mt->name, mt->digest, mt->media_type, mt->pusher, mt->pushed_ms, mt->size };
	return t->cb.tag(t->ctx, &s);
}

int store_browse_tags(struct store *st, const char *repo, const struct store_browse_page *pg,
		      int (*cb)(void *ctx, const struct store_tag_summary *t), void *ctx, int *more)
{
	struct meta_browse_page mp;
	struct browse_tramp t = { .cb.tag = cb, .ctx = ctx };
	page_of(pg, &mp);
	return meta_browse_tags(st->meta, repo, &mp, tag_tramp, &t, more);
}

int store_browse_tags_at(struct store *st, const char *repo, const char *digest, long n, store_str_cb cb, void *ctx,
			 int *more)
{
	return meta_browse_tags_at(st->meta, repo, digest, n > 0 ? n : 1, cb, ctx, more);
}
