/*
 * ui_page: what the web interface's pages share: the one HTML escaping
 * function every value goes through, the page frame (head, top bar, sign
 * out form, security headers), number and time formats, the page
 * arguments of listings, and the embedded assets.
 *
 * Every function appends to a caller-owned buffer or sets headers on r;
 * nothing here keeps state between requests. Thread-safe.
 */
#ifndef BERTH_UI_PAGE_H
#define BERTH_UI_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "authn.h"
#include "buf.h"
#include "httpparse.h"
#include "req.h"
#include "store_browse.h"

/* Appends s with & < > " ' as character references: safe in text and in quoted attribute values. */
void ui_esc(struct buf *out, const char *s);
/* Appends s percent-encoded for a query value (then still escape it with ui_esc inside an attribute). */
void ui_url_enc(struct buf *out, const char *s);

/*
 * The headers every interface response carries: a strict
 * Content-Security-Policy (scripts, styles and images from this origin
 * only, no inline ones, no framing), X-Frame-Options, nosniff,
 * Referrer-Policy; and no-store for pages.
 */
void ui_security_headers(struct req *r, int page);

/*
 * The page frame into r->out: document head with title (escaped), the top
 * bar with the caller's name and a sign-out form (or a sign-in link). The
 * page's own HTML follows, then ui_page_end() replies with status.
 */
void ui_page_begin(struct req *r, const char *title);
void ui_page_end(struct req *r, int status);
/* A whole page saying msg (escaped), with status. */
void ui_page_message(struct req *r, int status, const char *title, const char *msg);
/*
 * The 404 page of a repository that does not exist or that the caller may
 * not pull: one page for both, so no page tells them apart.
 */
void ui_page_no_repo(struct req *r);
/* 303 See Other to path (a local path), no body. */
void ui_redirect(struct req *r, const char *path);

/* 1536 -> "1.5 KiB", with exact bytes in a title attribute: <span title="1536 bytes">1.5 KiB</span>. */
void ui_size(struct buf *out, int64_t bytes);
/* <time datetime="...Z">YYYY-MM-DD HH:MM UTC</time>, or an em dash for 0. */
void ui_time(struct buf *out, int64_t ms);
/* Who acted (escaped), or a muted "anonymous" for NULL. */
void ui_actor(struct buf *out, const char *name);
/* RFC 3339 UTC with milliseconds, as a JSON string ("null" for 0). */
void ui_json_time(struct buf *out, int64_t ms);

/*
 * Reads the listing arguments of r's query: sort (name, pushed, size),
 * order (asc, desc; default: desc for pushed and size), q (name filter),
 * after (cursor "VALUE:NAME" from the previous page), n (1..200, default
 * 50). Strings in pg point into r's query. Returns 0 or E_PAGINATION
 * (r's error set).
 */
#define UI_PAGE_DEFAULT 50
#define UI_PAGE_MAX 200
int ui_page_args(struct req *r, enum store_browse_sort dflt, struct store_browse_page *pg);
/* A store_browse_repos() filter: whether the caller of request ctx may pull repo (whatever a token's scope names). */
int ui_may_pull(void *ctx, const char *repo);
/* The cursor after a row with sort value v and name: "v:name". */
void ui_cursor(struct buf *out, int64_t v, const char *name);
/* "name", "pushed" or "size". */
const char *ui_sort_name(enum store_browse_sort s);

/* The pages (ui_session.c, ui_repos.c): GET /ui/login, /ui/, /ui/r/<name>; 0 or an E_* code. */
int ui_login_get(struct req *r);
int ui_repos_page(struct req *r);
int ui_repo_page(struct req *r, const char *repo);
/*
 * The pages of one repository are /ui/r/<name>/_<verb>[/<arg>]: no name
 * component starts with '_'. Splits rest (after "/ui/r/") into name, verb
 * (copied; "" without one) and arg (into rest; NULL when absent).
 * Non-zero when the name is not valid.
 */
#define UI_VERB_MAX 16
int ui_split_path(const char *rest, struct buf *name, char verb[UI_VERB_MAX], const char **arg);
/* GET /ui/r/<name>/_image/<ref>, _raw/<digest> (ui_image.c), _compare (ui_compare.c), _history/<tag>, _rollback/<tag> (ui_history.c). */
int ui_image_page(struct req *r, const char *repo, const char *ref);
int ui_raw_manifest(struct req *r, const char *repo, const char *ref);
int ui_compare_page(struct req *r, const char *repo);
int ui_history_page(struct req *r, const char *repo, const char *tag);
int ui_rollback_page(struct req *r, const char *repo, const char *tag);
/* A link to the image page of ref in repo (escaped), showing the short digest or ref itself. */
void ui_image_link(struct buf *o, const char *repo, const char *ref, int short_form);
/* The step of a config history entry (created_by) as a Dockerfile says it, escaped. */
void ui_step_text(struct buf *o, const char *created_by);

/*
 * A form posted to /ui/: its fields, and what acts on them: the
 * credential check of a sign-in, the write of a rollback or delete (freed
 * with the form, at the request's end).
 */
struct ui_action;
struct ui_form {
	struct query form;
	struct authn_check check;
	struct ui_action *action;
};
void ui_action_free(struct ui_action *a);
/*
 * POST /ui/r/<name>/_rollback/<tag> (to=DIGEST) and /ui/r/<name>/_delete
 * (ref=TAG|DIGEST), from a signed-in page whose CSRF token was checked:
 * checks the rights, then does the write on the I/O pool.
 */
int ui_action_post(struct req *r, struct ui_form *f);

/* Ends a page whose arguments were refused (r's error): the same message as a 400 page. */
int ui_bad_args(struct req *r);

/* An embedded file (server/ui_assets/, turned into C at build time). */
struct ui_asset {
	const char *name;
	const char *type;
	const unsigned char *data;
	size_t len;
};
/* The asset called name, or NULL. */
const struct ui_asset *ui_asset_find(const char *name);

#endif
