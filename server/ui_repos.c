/*
 * ui_repos: the repository list and a repository's page. Both list only
 * what the caller may pull: a repository the caller may not pull gets the
 * same 404 page as one that does not exist, and never appears in a list.
 */
#include <string.h>

#include "authn.h"
#include "err.h"
#include "handlers.h"
#include "router.h"
#include "ui.h"
#include "ui_page.h"

/* The href of a listing page (escaped): base with sort, order, filter and cursor. */
static void list_href(struct buf *o, const char *base, enum store_browse_sort s, int desc, const char *q,
		      const char *after)
{
	struct buf h = BUF_INIT;
	buf_addf(&h, "%s?sort=%s&order=%s", base, ui_sort_name(s), desc ? "desc" : "asc");
	if (q && *q) {
		buf_adds(&h, "&q=");
		ui_url_enc(&h, q);
	}
	if (after) {
		buf_adds(&h, "&after=");
		ui_url_enc(&h, after);
	}
	ui_esc(o, h.buf);
	buf_release(&h);
}

/* A column heading that sorts by s: the current sort toggles its order; aria-sort marks it. */
static void sort_th(struct buf *o, const char *base, const struct store_browse_page *pg, enum store_browse_sort s,
		    const char *label, const char *cls)
{
	int cur = pg->sort == s;
	int desc = cur ? !pg->desc : s != STORE_SORT_NAME;
	buf_addf(o, "<th class=\"%s\" scope=\"col\"%s><a id=\"sort-%s\" href=\"", cls,
		 cur ? (pg->desc ? " aria-sort=\"descending\"" : " aria-sort=\"ascending\"") : "", ui_sort_name(s));
	list_href(o, base, s, desc, pg->contains, NULL);
	buf_addf(o, "\">%s%s</a></th>", label, cur ? (pg->desc ? " ↓" : " ↑") : "");
}

/* The name filter form, keeping the order. */
static void filter_form(struct buf *o, const char *action, const struct store_browse_page *pg, const char *what)
{
	buf_adds(o, "<form class=\"filter\" method=\"get\" action=\"");
	ui_esc(o, action);
	buf_addf(o, "\" role=\"search\"><label for=\"q\">Filter %s</label><input id=\"q\" name=\"q\" type=\"search\" value=\"",
		 what);
	ui_esc(o, pg->contains);
	buf_addf(o, "\"><input type=\"hidden\" name=\"sort\" value=\"%s\"><input type=\"hidden\" name=\"order\" "
		    "value=\"%s\"><button type=\"submit\">Filter</button></form>\n",
		 ui_sort_name(pg->sort), pg->desc ? "desc" : "asc");
}

/* Links to the first page (when not on it) and to the next one (when more rows exist). */
static void pager(struct buf *o, const char *base, const struct store_browse_page *pg, int more, const char *next)
{
	if (!pg->after_name && !more)
		return;
	buf_adds(o, "<nav class=\"pages\" aria-label=\"Pages\">");
	if (pg->after_name) {
		buf_adds(o, "<a href=\"");
		list_href(o, base, pg->sort, pg->desc, pg->contains, NULL);
		buf_adds(o, "\">First page</a>");
	}
	if (more) {
		buf_adds(o, "<a rel=\"next\" id=\"next\" href=\"");
		list_href(o, base, pg->sort, pg->desc, pg->contains, next);
		buf_adds(o, "\">Next page</a>");
	}
	buf_adds(o, "</nav>\n");
}

/* ---- the repository list ---- */

struct repos_out {
	struct buf *o;
	struct buf next; /* cursor after the last row */
	enum store_browse_sort sort;
	long count;
};

static int repo_row(void *ctx, const struct store_repo_summary *s)
{
	struct repos_out *ro = ctx;
	struct buf *o = ro->o;
	buf_adds(o, "<tr><td><a class=\"repo\" href=\"/ui/r/");
	ui_esc(o, s->name);
	buf_adds(o, "\">");
	ui_esc(o, s->name);
	buf_addf(o, "</a></td><td class=\"num\">%lld</td><td class=\"num\">", (long long)s->tags);
	ui_size(o, s->size);
	buf_adds(o, "</td><td>");
	ui_time(o, s->pushed_ms);
	buf_adds(o, "</td></tr>\n");
	buf_reset(&ro->next);
	ui_cursor(&ro->next, ro->sort == STORE_SORT_PUSHED ? s->pushed_ms : ro->sort == STORE_SORT_SIZE ? s->size : 0,
		  s->name);
	ro->count++;
	return 0;
}

int ui_repos_page(struct req *r)
{
	struct store_browse_page pg;
	struct repos_out ro = { &r->out, BUF_INIT, 0, 0 };
	struct buf *o = &r->out;
	int more = 0, rc;
	if (ui_page_args(r, STORE_SORT_NAME, &pg))
		return ui_bad_args(r);
	ro.sort = pg.sort;
	ui_page_begin(r, "Repositories");
	buf_adds(o, "<h1>Repositories</h1>\n");
	filter_form(o, "/ui/", &pg, "repositories");
	buf_adds(o, "<div class=\"scroll\"><table class=\"list\" id=\"repos\"><thead><tr>");
	sort_th(o, "/ui/", &pg, STORE_SORT_NAME, "Repository", "name");
	buf_adds(o, "<th class=\"num\" scope=\"col\">Tags</th>");
	sort_th(o, "/ui/", &pg, STORE_SORT_SIZE, "Size", "num");
	sort_th(o, "/ui/", &pg, STORE_SORT_PUSHED, "Last push", "time");
	buf_adds(o, "</tr></thead><tbody>\n");
	rc = store_browse_repos(r->reg->store, &pg, ui_may_pull, r, repo_row, &ro, &more);
	if (rc) {
		buf_release(&ro.next);
		return rc;
	}
	buf_adds(o, "</tbody></table></div>\n");
	if (!ro.count) {
		buf_adds(o, "<p class=\"empty\">No repositories");
		buf_adds(o, pg.contains && *pg.contains ? " match the filter" : " that you may pull");
		buf_adds(o, r->ident && r->ident->user ? ".</p>" : ". <a href=\"/ui/login\">Sign in</a> to see yours.</p>");
	}
	pager(o, "/ui/", &pg, more, ro.next.buf);
	ui_page_end(r, 200);
	buf_release(&ro.next);
	return 0;
}

/* ---- a repository ---- */

struct tags_out {
	struct req *r;
	const char *repo;
	const char *host; /* registry host for pull commands */
	struct buf next;
	enum store_browse_sort sort;
	long count;
	int may_push; /* links to tag history */
};

static int is_index(const char *media_type)
{
	return strstr(media_type, "image.index") || strstr(media_type, "manifest.list");
}

static void pull_cmd(struct buf *o, const char *host, const char *repo, char sep, const char *ref)
{
	buf_adds(o, "<code class=\"cmd\" data-copy>docker pull ");
	ui_esc(o, host);
	buf_addch(o, '/');
	ui_esc(o, repo);
	buf_addch(o, sep);
	ui_esc(o, ref);
	buf_adds(o, "</code>");
}

static int tag_row(void *ctx, const struct store_tag_summary *t)
{
	struct tags_out *to = ctx;
	struct buf *o = &to->r->out;
	buf_adds(o, "<tr><th scope=\"row\"><a class=\"tag\" href=\"/ui/r/");
	ui_esc(o, to->repo);
	buf_adds(o, "/_image/");
	ui_esc(o, t->name);
	buf_adds(o, "\"><span class=\"tag\">");
	ui_esc(o, t->name);
	buf_adds(o, "</span></a>");
	if (config_immutable_rule(to->r->cfg, to->repo, t->name) >= 0)
		buf_adds(o, " <span class=\"badge\" title=\"An immutable-tag rule keeps this tag where it is\">immutable</span>");
	if (is_index(t->media_type))
		buf_adds(o, " <span class=\"badge\" title=\"An index: one image per platform\">multi-platform</span>");
	if (to->may_push) {
		buf_adds(o, " <a class=\"small\" href=\"/ui/r/");
		ui_esc(o, to->repo);
		buf_adds(o, "/_history/");
		ui_esc(o, t->name);
		buf_adds(o, "\">history</a>");
	}
	buf_adds(o, "</th><td>");
	/* the short digest (algorithm and 12 hex digits, as docker shows image ids), linking to the image */
	ui_image_link(o, to->repo, t->digest, 1);
	buf_adds(o, "</td><td class=\"num\">");
	ui_size(o, t->size);
	buf_adds(o, "</td><td>");
	ui_time(o, t->pushed_ms);
	buf_adds(o, "</td><td>");
	ui_actor(o, t->pusher);
	buf_adds(o, "</td><td class=\"pull\">");
	pull_cmd(o, to->host, to->repo, ':', t->name);
	pull_cmd(o, to->host, to->repo, '@', t->digest);
	buf_adds(o, "</td></tr>\n");
	buf_reset(&to->next);
	ui_cursor(&to->next, to->sort == STORE_SORT_PUSHED ? t->pushed_ms : to->sort == STORE_SORT_SIZE ? t->size : 0,
		  t->name);
	to->count++;
	return 0;
}

/* Two tags or digests to compare. */
static void compare_pick(struct buf *o, const char *repo)
{
	buf_adds(o, "<form class=\"filter\" method=\"get\" id=\"compare-pick\" action=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "/_compare\"><label for=\"ca\">Compare</label><input id=\"ca\" name=\"a\" required "
		    "placeholder=\"tag or digest\"><label for=\"cb\">with</label><input id=\"cb\" name=\"b\" required "
		    "placeholder=\"tag or digest\"><button type=\"submit\" id=\"compare\">Compare</button></form>\n");
}

/* The registry's host (and port) as clients name it in image references, from external_url. */
static void registry_host(struct req *r, struct buf *out)
{
	struct buf url = BUF_INIT;
	authn_base_url(r, &url);
	const char *p = strstr(url.buf, "://");
	buf_adds(out, p ? p + 3 : url.buf);
	while (out->len && out->buf[out->len - 1] == '/')
		buf_setlen(out, out->len - 1);
	buf_release(&url);
}

int ui_repo_page(struct req *r, const char *repo)
{
	struct store_browse_page pg;
	struct buf host = BUF_INIT, base = BUF_INIT, *o = &r->out;
	struct tags_out to = { r, repo, NULL, BUF_INIT, 0, 0, 0 };
	int more = 0, rc = 0;
	if (ui_page_args(r, STORE_SORT_PUSHED, &pg))
		return ui_bad_args(r);
	if (!router_may(r, repo, ACTION_PULL)) {
		ui_page_no_repo(r);
		return 0;
	}
	registry_host(r, &host);
	to.host = host.buf;
	to.sort = pg.sort;
	to.may_push = router_may(r, repo, ACTION_PUSH);
	buf_addf(&base, "/ui/r/%s", repo);
	ui_page_begin(r, repo);
	buf_adds(o, "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/ui/\">Repositories</a></nav><h1>");
	ui_esc(o, repo);
	buf_adds(o, "</h1>\n");
	filter_form(o, base.buf, &pg, "tags");
	compare_pick(o, repo);
	buf_adds(o, "<div class=\"scroll\"><table class=\"list\" id=\"tags\"><thead><tr>");
	sort_th(o, base.buf, &pg, STORE_SORT_NAME, "Tag", "name");
	buf_adds(o, "<th scope=\"col\">Digest</th>");
	sort_th(o, base.buf, &pg, STORE_SORT_SIZE, "Size", "num");
	sort_th(o, base.buf, &pg, STORE_SORT_PUSHED, "Pushed", "time");
	buf_adds(o, "<th scope=\"col\">By</th><th scope=\"col\">Pull</th></tr></thead><tbody>\n");
	rc = store_browse_tags(r->reg->store, repo, &pg, tag_row, &to, &more);
	if (rc == E_NAME_UNKNOWN) {
		rc = 0;
		ui_page_no_repo(r);
		goto out;
	}
	if (rc)
		goto out;
	buf_adds(o, "</tbody></table></div>\n");
	if (!to.count)
		buf_adds(o, pg.contains && *pg.contains ? "<p class=\"empty\">No tags match the filter.</p>"
							: "<p class=\"empty\">No tags.</p>");
	pager(o, base.buf, &pg, more, to.next.buf);
	ui_page_end(r, 200);
out:
	buf_release(&host);
	buf_release(&base);
	buf_release(&to.next);
	return rc;
}
