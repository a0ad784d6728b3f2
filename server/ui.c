/* ui: the web interface's entry points: the redirect from /, the dispatch of /ui/ paths, the embedded assets. */
#include "ui.h"

#include <stdio.h>
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

int ui_split_path(const char *rest, struct buf *name, char verb[UI_VERB_MAX], const char **arg)
{
	const char *sep = strstr(rest, "/_");
	buf_reset(name);
	buf_add(name, rest, sep ? (size_t)(sep - rest) : strlen(rest));
	verb[0] = '\0';
	*arg = NULL;
	if (sep) {
		const char *slash = strchr(sep + 2, '/');
		size_t n = slash ? (size_t)(slash - sep - 2) : strlen(sep + 2);
		/* "?" matches no verb: one too long for the buffer is none of them */
		snprintf(verb, UI_VERB_MAX, "%.*s", n < UI_VERB_MAX ? (int)n : 1, n < UI_VERB_MAX ? sep + 2 : "?");
		*arg = slash ? slash + 1 : NULL;
	}
	return name_check(name->buf, name->len) != 0;
}

static int verb_is(const char *verb, const char *v)
{
	return !strcmp(verb, v);
}

/* /ui/r/<name>[/_<verb>[/<arg>]]: the pages of one repository, for a valid name. */
static int repo(struct req *r, const char *rest)
{
	struct buf name = BUF_INIT;
	char verb[UI_VERB_MAX];
	const char *arg;
	int rc = 0;
	if (ui_split_path(rest, &name, verb, &arg))
		ui_page_no_repo(r);
	else if (!*verb)
		rc = ui_repo_page(r, name.buf);
	else if (verb_is(verb, "image") && arg)
		rc = ui_image_page(r, name.buf, arg);
	else if (verb_is(verb, "raw") && arg)
		rc = ui_raw_manifest(r, name.buf, arg);
	else if (verb_is(verb, "compare") && !arg)
		rc = ui_compare_page(r, name.buf);
	else if (verb_is(verb, "history") && arg)
		rc = ui_history_page(r, name.buf, arg);
	else if (verb_is(verb, "rollback") && arg)
		rc = ui_rollback_page(r, name.buf, arg);
	else
		ui_page_message(r, 404, "Not found", "There is no such page.");
	buf_release(&name);
	return rc;
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
