/* ui: the web interface's entry points: the redirect from /, the dispatch of /ui/ paths, the embedded assets. */
#include "ui.h"

#include <string.h>
#include <strings.h>

#include "err.h"
#include "handlers.h"
#include "names.h"
#include "ui_page.h"
#include "xalloc.h"

int ui_root_get(struct req *r)
{
	const char *accept = req_header(r, "Accept");
	if (!r->cfg->ui_enabled || !accept || !strstr(accept, "text/html"))
		return req_fail(r, E_NOT_FOUND, NULL);
	ui_redirect(r, "/ui/");
	return 0;
}

static int asset(struct req *r, const char *name)
{
	const struct ui_asset *a = ui_asset_find(name);
	if (!a) {
		ui_page_message(r, 404, "Not found", "There is no such page.");
		return 0;
	}
	buf_add(&r->out, a->data, a->len);
	ui_security_headers(r, 0);
	resp_body(r, 200, a->type);
	return 0;
}

int ui_bad_args(struct req *r)
{
	struct buf why = BUF_INIT;
	buf_adds(&why, r->err_detail.len ? r->err_detail.buf : "bad arguments");
	r->err = 0;
	buf_reset(&r->err_detail);
	ui_page_message(r, 400, "Bad request", why.buf);
	buf_release(&why);
	return 0;
}

/* /ui/r/<name>: the repository page, for a valid name. */
static int repo(struct req *r, const char *rest)
{
	if (name_check(rest, strlen(rest))) {
		ui_page_message(r, 404, "Not found", "There is no such repository, or you may not see it.");
		return 0;
	}
	return ui_repo_page(r, rest);
}

int ui_get(struct req *r)
{
	const char *p = r->path;
	if (!r->cfg->ui_enabled)
		return req_fail(r, E_NOT_FOUND, NULL);
	if (!strcmp(p, "/ui")) {
		ui_redirect(r, "/ui/");
		return 0;
	}
	if (!strcmp(p, "/ui/"))
		return ui_repos_page(r);
	if (!strcmp(p, "/ui/login"))
		return ui_login_get(r);
	if (!strncmp(p, "/ui/assets/", 11))
		return asset(r, p + 11);
	if (!strncmp(p, "/ui/r/", 6))
		return repo(r, p + 6);
	ui_page_message(r, 404, "Not found", "There is no such page.");
	return 0;
}
