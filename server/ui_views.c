/*
 * ui_views: the JSON views under the _berth prefix that the interface's
 * listings are built from, for API clients too (docs/api.md):
 *   GET /v2/_berth/repositories   what the caller may pull, like the catalog
 *   GET /v2/<name>/_berth/tags    authorized like the tags list (pull)
 * Both take sort, order, q, n and after (ui_page_args) and answer with a
 * "next" cursor and a Link header while more rows exist.
 */
#include <string.h>

#include "authn.h"
#include "err.h"
#include "handlers.h"
#include "ui.h"
#include "ui_page.h"

struct view_out {
	struct buf *o;
	struct buf next;
	enum store_browse_sort sort;
	long count;
};

static int repo_json(void *ctx, const struct store_repo_summary *s)
{
	struct view_out *v = ctx;
	if (v->count++)
		buf_addch(v->o, ',');
	buf_adds(v->o, "{\"name\":");
	buf_add_json_str(v->o, s->name);
	buf_adds(v->o, ",\"last_push\":");
	ui_json_time(v->o, s->pushed_ms);
	buf_addf(v->o, ",\"tags\":%lld,\"size\":%lld}", (long long)s->tags, (long long)s->size);
	buf_reset(&v->next);
	ui_cursor(&v->next, v->sort == STORE_SORT_PUSHED ? s->pushed_ms : v->sort == STORE_SORT_SIZE ? s->size : 0,
		  s->name);
	return 0;
}

/* Ends the document with "next" and sets the Link header to the next page of path. */
static void finish(struct req *r, const char *path, const struct store_browse_page *pg, struct view_out *v, int more)
{
	buf_adds(v->o, "],\"next\":");
	buf_add_json_str(v->o, more ? v->next.buf : NULL);
	buf_addch(v->o, '}');
	if (more) {
		struct buf q = BUF_INIT;
		buf_addf(&q, "<%s?sort=%s&order=%s&n=%ld", path, ui_sort_name(pg->sort), pg->desc ? "desc" : "asc", pg->n);
		if (pg->contains && *pg->contains) {
			buf_adds(&q, "&q=");
			ui_url_enc(&q, pg->contains);
		}
		buf_adds(&q, "&after=");
		ui_url_enc(&q, v->next.buf);
		buf_adds(&q, ">; rel=\"next\"");
		resp_header(r, "Link", "%s", q.buf);
		buf_release(&q);
	}
	resp_header(r, "Cache-Control", "no-store");
	resp_header(r, "X-Content-Type-Options", "nosniff");
	resp_body(r, 200, "application/json");
}

int ui_view_repos(struct req *r)
{
	struct store_browse_page pg;
	struct view_out v = { &r->out, BUF_INIT, 0, 0 };
	int more = 0, rc;
	if ((rc = ui_page_args(r, STORE_SORT_NAME, &pg)))
		return rc;
	v.sort = pg.sort;
	buf_adds(&r->out, "{\"repositories\":[");
	rc = store_browse_repos(r->reg->store, &pg, ui_may_pull, r, repo_json, &v, &more);
	if (!rc)
		finish(r, "/v2/_berth/repositories", &pg, &v, more);
	buf_release(&v.next);
	return rc;
}

struct tags_view {
	struct view_out v;
	struct req *r;
};

static int tag_json(void *ctx, const struct store_tag_summary *t)
{
	struct tags_view *tv = ctx;
	struct view_out *v = &tv->v;
	if (v->count++)
		buf_addch(v->o, ',');
	buf_adds(v->o, "{\"name\":");
	buf_add_json_str(v->o, t->name);
	buf_adds(v->o, ",\"digest\":");
	buf_add_json_str(v->o, t->digest);
	buf_adds(v->o, ",\"media_type\":");
	buf_add_json_str(v->o, t->media_type);
	buf_addf(v->o, ",\"size\":%lld,\"pushed\":", (long long)t->size);
	ui_json_time(v->o, t->pushed_ms);
	buf_adds(v->o, ",\"pusher\":");
	buf_add_json_str(v->o, t->pusher);
	buf_addf(v->o, ",\"immutable\":%s}", config_immutable_rule(tv->r->cfg, tv->r->name, t->name) >= 0 ? "true"
													    : "false");
	buf_reset(&v->next);
	ui_cursor(&v->next, v->sort == STORE_SORT_PUSHED ? t->pushed_ms : v->sort == STORE_SORT_SIZE ? t->size : 0,
		  t->name);
	return 0;
}

int ui_view_tags(struct req *r)
{
	struct store_browse_page pg;
	struct tags_view tv = { { &r->out, BUF_INIT, 0, 0 }, r };
	struct buf path = BUF_INIT;
	int more = 0, rc;
	if ((rc = ui_page_args(r, STORE_SORT_PUSHED, &pg)))
		return rc;
	tv.v.sort = pg.sort;
	buf_adds(&r->out, "{\"name\":");
	buf_add_json_str(&r->out, r->name);
	buf_adds(&r->out, ",\"tags\":[");
	rc = store_browse_tags(r->reg->store, r->name, &pg, tag_json, &tv, &more);
	buf_addf(&path, "/v2/%s/_berth/tags", r->name);
	if (!rc)
		finish(r, path.buf, &pg, &tv.v, more);
	buf_release(&path);
	buf_release(&tv.v.next);
	return rc;
}
