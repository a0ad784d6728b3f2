/*
 * ui_history: a tag's history (/ui/r/<name>/_history/<tag>), the preview
 * of a rollback (/ui/r/<name>/_rollback/<tag>?to=DIGEST: the comparison of
 * where the tag points with where it would, then a confirmation form), and
 * the interface's two writes, posted by its own forms with their CSRF
 * token: POST /ui/r/<name>/_rollback/<tag> and POST /ui/r/<name>/_delete.
 *
 * History names users and client addresses, so like its API view it wants
 * pull and push; a rollback wants push, a delete the delete right and
 * storage.delete on. The writes check the rights again, go through the
 * store's own verbs with the immutable-tag guard and are audited like the
 * API's rollback and delete.
 */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "err.h"
#include "handlers.h"
#include "httpparse.h"
#include "names.h"
#include "router.h"
#include "ui.h"
#include "ui_image.h"
#include "ui_page.h"
#include "xalloc.h"

static void crumbs(struct buf *o, const char *repo)
{
	buf_adds(o, "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/ui/\">Repositories</a> / <a href=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "\">");
	ui_esc(o, repo);
	buf_adds(o, "</a></nav>");
}

/* Pull and push on repo, or a page saying why not (0 then). */
static int may_see_history(struct req *r, const char *repo)
{
	if (!router_may(r, repo, ACTION_PULL)) {
		ui_page_no_repo(r);
		return 0;
	}
	if (!router_may(r, repo, ACTION_PUSH)) {
		ui_page_message(r, 403, "Not allowed", "A tag's history and its rollback need the push right on the "
						      "repository.");
		return 0;
	}
	return 1;
}

/* Why tag cannot move (the immutable rule), into why; 0 when it can. */
static int immutable_why(struct req *r, const char *repo, const char *tag, struct buf *why)
{
	struct h_tag_guard g = { r->cfg, repo, why };
	return h_tag_guard(&g, tag) >= 0;
}

static void immutable_note(struct buf *o, const char *why)
{
	buf_adds(o, "<p class=\"notice\" id=\"immutable\">This tag cannot be moved or rolled back: ");
	ui_esc(o, why);
	buf_adds(o, ".</p>");
}

struct hist_page {
	struct req *r;
	const char *repo, *tag;
	const char *current; /* where the tag points now (the newest event's "to"); NULL when deleted */
	int immutable;
	long count;
	int more;
};

static void digest_cell(struct hist_page *h, const char *ds)
{
	if (ds)
		ui_image_link(&h->r->out, h->repo, ds, 1);
	else
		buf_adds(&h->r->out, "<span class=\"muted\">none</span>");
}

static int hist_row(void *ctx, const struct store_tag_event *ev)
{
	struct hist_page *h = ctx;
	struct buf *o = &h->r->out;
	if (h->count == UI_LIST_CAP) {
		h->more = 1;
		return 1;
	}
	if (!h->count++)
		h->current = ev->new_digest ? xstrdup(ev->new_digest) : NULL;
	buf_adds(o, "<tr><td>");
	ui_time(o, ev->time_ms);
	buf_adds(o, "</td><td>");
	ui_esc(o, ev->how);
	buf_adds(o, "</td><td>");
	ui_actor(o, ev->actor);
	buf_adds(o, "</td><td>");
	ui_esc(o, ev->client);
	buf_adds(o, "</td><td class=\"move\">");
	digest_cell(h, ev->old_digest);
	buf_adds(o, " → ");
	digest_cell(h, ev->new_digest);
	buf_adds(o, "</td><td class=\"actions\">");
	if (ev->old_digest && ev->new_digest) {
		buf_adds(o, "<a class=\"compare\" href=\"/ui/r/");
		ui_esc(o, h->repo);
		buf_adds(o, "/_compare?a=");
		ui_esc(o, ev->old_digest);
		buf_adds(o, "&amp;b=");
		ui_esc(o, ev->new_digest);
		buf_adds(o, "\">compare</a> ");
	}
	if (ev->new_digest && !h->immutable && (!h->current || strcmp(ev->new_digest, h->current))) {
		buf_adds(o, "<a class=\"rollback\" href=\"/ui/r/");
		ui_esc(o, h->repo);
		buf_adds(o, "/_rollback/");
		ui_esc(o, h->tag);
		buf_adds(o, "?to=");
		ui_esc(o, ev->new_digest);
		buf_adds(o, "\">roll back to this</a>");
	}
	buf_adds(o, "</td></tr>");
	return 0;
}

int ui_history_page(struct req *r, const char *repo, const char *tag)
{
	struct buf *o = &r->out, why = BUF_INIT, title = BUF_INIT;
	struct hist_page h = { r, repo, tag, NULL, 0, 0, 0 };
	int rc;
	if (!may_see_history(r, repo))
		return 0;
	if (tag_check(tag, strlen(tag))) {
		ui_page_message(r, 404, "Not found", "There is no such tag.");
		return 0;
	}
	h.immutable = immutable_why(r, repo, tag, &why);
	buf_addf(&title, "%s:%s", repo, tag);
	ui_page_begin(r, title.buf);
	crumbs(o, repo);
	buf_adds(o, "<h1>History of ");
	ui_esc(o, title.buf);
	buf_adds(o, "</h1>");
	if (h.immutable)
		immutable_note(o, why.buf);
	buf_adds(o, "<div class=\"scroll\"><table class=\"list\" id=\"history\"><thead><tr><th scope=\"col\">Time</th>"
		    "<th scope=\"col\">How</th><th scope=\"col\">By</th><th scope=\"col\">Client</th><th scope=\"col\">"
		    "From → to</th><th scope=\"col\"></th></tr></thead><tbody>");
	rc = store_tag_history(r->reg->store, repo, tag, hist_row, &h);
	if (rc == 1)
		rc = 0;
	if (!rc && !h.count)
		rc = store_repo_exists(r->reg->store, repo);
	if (rc == E_NAME_UNKNOWN) {
		rc = 0;
		ui_page_no_repo(r);
		goto out;
	}
	if (rc)
		goto out;
	buf_adds(o, "</tbody></table></div>");
	if (!h.count)
		buf_adds(o, "<p class=\"empty\">This tag has no history.</p>");
	if (h.more)
		buf_addf(o, "<p class=\"muted\">The newest %d moves are shown.</p>", UI_LIST_CAP);
	ui_page_end(r, 200);
out:
	free((char *)h.current);
	buf_release(&why);
	buf_release(&title);
	return rc;
}

/* ---- the rollback preview ---- */

static void confirm_form(struct req *r, const char *repo, const char *tag, const char *to)
{
	struct buf *o = &r->out, csrf = BUF_INIT;
	if (!ui_csrf(r, &csrf)) {
		buf_adds(o, "<p class=\"message\"><a href=\"/ui/login\">Sign in</a> to roll back.</p>");
		return;
	}
	buf_adds(o, "<form method=\"post\" class=\"confirm\" id=\"confirm\" action=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "/_rollback/");
	ui_esc(o, tag);
	buf_adds(o, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
	ui_esc(o, csrf.buf);
	buf_adds(o, "\"><input type=\"hidden\" name=\"to\" value=\"");
	ui_esc(o, to);
	buf_adds(o, "\"><button type=\"submit\" class=\"primary\" id=\"do-rollback\">Roll back ");
	ui_esc(o, tag);
	buf_adds(o, "</button> <a href=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "/_history/");
	ui_esc(o, tag);
	buf_adds(o, "\">Cancel</a></form>");
	buf_release(&csrf);
}

int ui_rollback_page(struct req *r, const char *repo, const char *tag)
{
	const char *to = req_arg(r, "to");
	struct buf *o = &r->out, why = BUF_INIT, detail = BUF_INIT;
	struct store_rollback rb;
	struct ui_image a, b;
	struct ui_comparison c;
	int rc, immutable;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	if (!may_see_history(r, repo))
		return 0;
	rc = tag_check(tag, strlen(tag)) || !to ? E_MANIFEST_UNKNOWN
						 : store_tag_rollback(r->reg->store, repo, tag, 0, to, 1, NULL, &rb, &detail);
	if (!rc && *rb.from)
		rc = ui_load_pair(r, repo, rb.from, rb.to, &a, &b);
	if (rc == E_MANIFEST_UNKNOWN || rc == E_NAME_UNKNOWN || rc == E_DIGEST_INVALID) {
		ui_page_message(r, 404, "Not found", "There is no such image in this repository.");
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	immutable = immutable_why(r, repo, tag, &why);
	ui_page_begin(r, "Roll back");
	crumbs(o, repo);
	buf_adds(o, "<h1>Roll back ");
	ui_esc(o, repo);
	buf_addch(o, ':');
	ui_esc(o, tag);
	buf_adds(o, "</h1>");
	if (!rb.moved)
		buf_adds(o, "<p class=\"message\" id=\"same\">The tag already points at this image.</p>");
	if (*rb.from) {
		buf_adds(o, "<p>What changes when the tag moves from where it points now to the chosen image:</p>");
		ui_compare(&a, &b, &c);
		ui_compare_html(o, repo, "now", "after", &a, &b, &c);
	} else {
		buf_adds(o, "<p>The tag does not exist now: rolling back creates it, pointing at ");
		ui_image_link(o, repo, rb.to, 0);
		buf_adds(o, ".</p>");
	}
	if (immutable)
		immutable_note(o, why.buf);
	else if (rb.moved)
		confirm_form(r, repo, tag, rb.to);
	ui_page_end(r, 200);
out:
	ui_comparison_release(&c);
	ui_image_release(&a);
	ui_image_release(&b);
	buf_release(&why);
	buf_release(&detail);
	return rc;
}

/* ---- the writes ---- */

/* A write posted by a form of the interface, done on the I/O pool. */
struct ui_action {
	struct buf repo;
	const char *tag, *to; /* a rollback's, borrowed from the path and the form; tag NULL: a delete */
	struct reference del;
	int rc;
	struct buf detail, back; /* why it was refused; where to go after */
};

void ui_action_free(struct ui_action *a)
{
	if (!a)
		return;
	buf_release(&a->repo);
	buf_release(&a->detail);
	buf_release(&a->back);
	free(a);
}

static void rollback_work(struct req *r, struct ui_action *a)
{
	struct h_actor who;
	struct store_rollback rb;
	h_actor_init(&who, r, r->cfg, a->repo.buf, "rollback", &a->detail);
	a->rc = store_tag_rollback(r->reg->store, a->repo.buf, a->tag, 0, a->to, 0, &who.actor, &rb, &a->detail);
	if (!a->rc && rb.moved)
		audit_event(r, "rollback", a->repo.buf, "{\"tag\":\"%s\",\"from\":%s%s%s,\"to\":\"%s\",\"via\":\"ui\"}", a->tag,
			    *rb.from ? "\"" : "", *rb.from ? rb.from : "null", *rb.from ? "\"" : "", rb.to);
	h_actor_release(&who);
	buf_addf(&a->back, "/ui/r/%s/_history/%s", a->repo.buf, a->tag);
}

static void delete_work(struct req *r, struct ui_action *a)
{
	struct h_actor who;
	char ds[DIGEST_STR_MAX];
	h_actor_init(&who, r, r->cfg, a->repo.buf, "delete", &a->detail);
	a->rc = store_manifest_delete(r->reg->store, a->repo.buf, &a->del, &who.actor);
	if (!a->rc && a->del.is_digest)
		audit_event(r, "delete", a->repo.buf, "{\"digest\":\"%s\",\"tags_removed\":%d,\"via\":\"ui\"}",
			    digest_str(&a->del.digest, ds), who.change.count);
	else if (!a->rc)
		audit_event(r, "delete", a->repo.buf, "{\"tag\":\"%s\",\"digest\":\"%s\",\"via\":\"ui\"}", a->del.tag,
			    who.change.old_digest);
	if (a->rc == E_TAG_IMMUTABLE && !a->detail.len)
		buf_adds(&a->detail, "an immutable-tag rule holds a tag of this manifest");
	h_actor_release(&who);
	buf_addf(&a->back, "/ui/r/%s", a->repo.buf);
}

static void action_work(struct req *r)
{
	struct ui_action *a = ((struct ui_form *)r->hstate)->action;
	if (a->tag)
		rollback_work(r, a);
	else
		delete_work(r, a);
}

static int action_then(struct req *r)
{
	struct ui_action *a = ((struct ui_form *)r->hstate)->action;
	if (!a->rc)
		ui_redirect(r, a->back.buf);
	else if (a->rc == E_TAG_IMMUTABLE)
		ui_page_message(r, 409, "Refused", a->detail.len ? a->detail.buf : "an immutable-tag rule holds the tag");
	else if (a->rc == E_MANIFEST_UNKNOWN || a->rc == E_NAME_UNKNOWN || a->rc == E_DIGEST_INVALID)
		ui_page_message(r, 404, "Not found", "There is no such tag or image in this repository.");
	else
		ui_page_message(r, 500, "Failed", "The change could not be made; nothing changed. Try again later.");
	return 0;
}

int ui_action_post(struct req *r, struct ui_form *f)
{
	struct buf repo = BUF_INIT;
	char verb[UI_VERB_MAX];
	const char *arg;
	struct ui_action *a;
	if (ui_split_path(r->path + 6, &repo, verb, &arg) || (strcmp(verb, "rollback") && strcmp(verb, "delete")) ||
	    !router_may(r, repo.buf, ACTION_PULL)) {
		ui_page_message(r, 404, "Not found", "There is no such page.");
		buf_release(&repo);
		return 0;
	}
	a = xcalloc(1, sizeof(*a));
	a->repo = repo;
	buf_init(&a->detail, 0);
	buf_init(&a->back, 0);
	f->action = a;
	if (!strcmp(verb, "rollback")) {
		a->tag = arg;
		a->to = query_get(&f->form, "to");
		if (!may_see_history(r, a->repo.buf))
			return 0;
		if (!arg || tag_check(arg, strlen(arg)) || !a->to || !*a->to) {
			ui_page_message(r, 400, "Bad request", "A rollback names a tag and the digest to go back to.");
			return 0;
		}
	} else {
		if (!r->cfg->delete_enabled || !router_may(r, a->repo.buf, ACTION_DELETE)) {
			ui_page_message(r, 403, "Not allowed", r->cfg->delete_enabled ? "Deleting needs the delete right."
										      : "Deletes are not enabled (storage.delete).");
			return 0;
		}
		if (arg || ui_ref_parse(query_get(&f->form, "ref"), &a->del)) {
			ui_page_message(r, 404, "Not found", "There is no such tag or image in this repository.");
			return 0;
		}
	}
	r->async_work = action_work;
	r->async_then = action_then;
	r->async_q = r->reg->ioq;
	return 0;
}
