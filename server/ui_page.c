/* ui_page: HTML escaping, the page frame and the formats every page of the web interface uses. */
#include "ui_page.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authn.h"
#include "err.h"
#include "ui.h"

void ui_esc(struct buf *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': buf_adds(out, "&amp;"); break;
		case '<': buf_adds(out, "&lt;"); break;
		case '>': buf_adds(out, "&gt;"); break;
		case '"': buf_adds(out, "&quot;"); break;
		case '\'': buf_adds(out, "&#39;"); break;
		default: buf_addch(out, *s);
		}
	}
}

void ui_url_enc(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
			buf_addch(out, (char)c);
		} else {
			buf_addch(out, '%');
			buf_addch(out, hex[c >> 4]);
			buf_addch(out, hex[c & 15]);
		}
	}
}

/* Nothing inline, nothing from elsewhere, never in a frame. */
#define UI_CSP                                                                                             \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "     \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

void ui_security_headers(struct req *r, int page)
{
	resp_header(r, "Content-Security-Policy", "%s", UI_CSP);
	resp_header(r, "X-Frame-Options", "DENY");
	resp_header(r, "X-Content-Type-Options", "nosniff");
	resp_header(r, "Referrer-Policy", "same-origin");
	resp_header(r, "Cache-Control", page ? "no-store" : "public, max-age=300");
}

static void top_bar(struct req *r)
{
	struct buf *o = &r->out, csrf = BUF_INIT;
	const char *user = r->ident && r->ident->user ? r->ident->user : NULL;
	buf_adds(o, "<header class=\"top\"><a class=\"brand\" href=\"/ui/\"><img src=\"/ui/assets/logo.svg\" alt=\"\""
		    " width=\"24\" height=\"24\">berth</a><nav><a href=\"/ui/\">Repositories</a></nav><div class=\"who\">");
	if (user && ui_csrf(r, &csrf)) {
		buf_adds(o, "<span class=\"user\" id=\"user\">");
		ui_esc(o, user);
		buf_adds(o, "</span><form method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"");
		ui_esc(o, csrf.buf);
		buf_adds(o, "\"><button type=\"submit\" id=\"signout\">Sign out</button></form>");
	} else {
		buf_adds(o, "<a class=\"button\" id=\"signin\" href=\"/ui/login\">Sign in</a>");
	}
	buf_adds(o, "</div></header>\n");
	buf_release(&csrf);
}

void ui_page_begin(struct req *r, const char *title)
{
	struct buf *o = &r->out;
	buf_reset(o);
	buf_adds(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
	ui_esc(o, title);
	buf_adds(o, " · berth</title><link rel=\"stylesheet\" href=\"/ui/assets/style.css\">"
		    "<link rel=\"icon\" href=\"/ui/assets/logo.svg\" type=\"image/svg+xml\">"
		    "<script src=\"/ui/assets/app.js\" defer></script></head>\n<body>");
	top_bar(r);
	buf_adds(o, "<main>\n");
}

void ui_page_end(struct req *r, int status)
{
	buf_adds(&r->out, "</main></body></html>\n");
	ui_security_headers(r, 1);
	resp_body(r, status, "text/html; charset=utf-8");
}

void ui_page_message(struct req *r, int status, const char *title, const char *msg)
{
	ui_page_begin(r, title);
	buf_adds(&r->out, "<h1>");
	ui_esc(&r->out, title);
	buf_adds(&r->out, "</h1><p class=\"message\">");
	ui_esc(&r->out, msg);
	buf_adds(&r->out, "</p><p><a href=\"/ui/\">Back to the repositories</a></p>");
	ui_page_end(r, status);
}

void ui_page_no_repo(struct req *r)
{
	ui_page_message(r, 404, "Not found", "There is no such repository, or you may not see it.");
}

void ui_redirect(struct req *r, const char *path)
{
	resp_header(r, "Location", "%s", path);
	ui_security_headers(r, 1);
	resp_status(r, 303);
}

void ui_size(struct buf *out, int64_t bytes)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	buf_addf(out, "<span class=\"size\" title=\"%lld bytes\" data-v=\"%lld\">", (long long)bytes, (long long)bytes);
	if (u == 0)
		buf_addf(out, "%lld B</span>", (long long)bytes);
	else
		buf_addf(out, "%.*f %s</span>", v < 10 ? 1 : 0, v, units[u]);
}

/* ms as "YYYY-MM-DDTHH:MM:SS" (iso) or "YYYY-MM-DD HH:MM UTC" into s. */
static void fmt_time(char *s, size_t len, int64_t ms, int iso)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	if (iso)
		strftime(s, len, "%Y-%m-%dT%H:%M:%S", &tm);
	else
		strftime(s, len, "%Y-%m-%d %H:%M UTC", &tm);
}

void ui_time(struct buf *out, int64_t ms)
{
	char iso[40], shown[40];
	if (ms <= 0) {
		buf_adds(out, "—");
		return;
	}
	fmt_time(iso, sizeof(iso), ms, 1);
	fmt_time(shown, sizeof(shown), ms, 0);
	buf_addf(out, "<time datetime=\"%sZ\" data-v=\"%lld\">%s</time>", iso, (long long)ms, shown);
}

void ui_actor(struct buf *out, const char *name)
{
	if (name)
		ui_esc(out, name);
	else
		buf_adds(out, "<span class=\"muted\">anonymous</span>");
}

void ui_json_time(struct buf *out, int64_t ms)
{
	char s[40];
	if (ms <= 0) {
		buf_adds(out, "null");
		return;
	}
	fmt_time(s, sizeof(s), ms, 1);
	buf_addf(out, "\"%s.%03dZ\"", s, (int)(ms % 1000));
}

int ui_may_pull(void *ctx, const char *repo)
{
	return (authn_identity_rights(ctx, repo) & ACTION_PULL) != 0;
}

const char *ui_sort_name(enum store_browse_sort s)
{
	return s == STORE_SORT_PUSHED ? "pushed" : s == STORE_SORT_SIZE ? "size" : "name";
}

void ui_cursor(struct buf *out, int64_t v, const char *name)
{
	buf_addf(out, "%lld:%s", (long long)v, name);
}

int ui_page_args(struct req *r, enum store_browse_sort dflt, struct store_browse_page *pg)
{
	const char *sort = req_arg(r, "sort"), *order = req_arg(r, "order"), *after = req_arg(r, "after");
	const char *n = req_arg(r, "n");
	memset(pg, 0, sizeof(*pg));
	pg->sort = dflt;
	if (sort && *sort) {
		if (!strcmp(sort, "name"))
			pg->sort = STORE_SORT_NAME;
		else if (!strcmp(sort, "pushed"))
			pg->sort = STORE_SORT_PUSHED;
		else if (!strcmp(sort, "size"))
			pg->sort = STORE_SORT_SIZE;
		else
			return req_fail(r, E_PAGINATION, "sort must be name, pushed or size");
	}
	pg->desc = pg->sort != STORE_SORT_NAME;
	if (order && *order) {
		if (strcmp(order, "asc") && strcmp(order, "desc"))
			return req_fail(r, E_PAGINATION, "order must be asc or desc");
		pg->desc = !strcmp(order, "desc");
	}
	pg->n = UI_PAGE_DEFAULT;
	if (n && *n) {
		char *end;
		long v = strtol(n, &end, 10);
		if (*end || v < 1 || v > UI_PAGE_MAX)
			return req_fail(r, E_PAGINATION, "n must be a number from 1 to %d", UI_PAGE_MAX);
		pg->n = v;
	}
	pg->contains = req_arg(r, "q");
	if (pg->contains && strlen(pg->contains) > 256)
		return req_fail(r, E_PAGINATION, "q is too long");
	if (after && *after) {
		char *end;
		long long v = strtoll(after, &end, 10);
		if (end == after || *end != ':' || !end[1] || strlen(end + 1) > 256)
			return req_fail(r, E_PAGINATION, "after must be a cursor from the previous page");
		pg->after_value = v;
		pg->after_name = end + 1;
	}
	return 0;
}
