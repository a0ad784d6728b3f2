/*
 * ui_session: signing in and out of the web interface. The login form's
 * credentials take the path of every other login (authn_check: the
 * credential cache, the failed-login limits, the login pool, the audit
 * event); a success mints a session: a token signed with the registry's
 * key for the audience "<service>/ui", in an HttpOnly, SameSite=Strict
 * cookie (Secure when served over TLS). A session ends when it expires,
 * at sign-out, when the user leaves the config, when the password changes
 * (the token carries a fingerprint of the password hash) or when the
 * personal access token it was made with is revoked.
 *
 * CSRF: the login form carries a random value also set in a short-lived
 * cookie (double submit); every form of a signed-in page carries a token
 * derived from the session cookie, which a page of another site can
 * neither read nor compute. Cross-site requests (Origin, Sec-Fetch-Site)
 * are refused before either is looked at.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "authn.h"
#include "clock.h"
#include "err.h"
#include "handlers.h"
#include "policy.h"
#include "rand.h"
#include "registry.h"
#include "ui.h"
#include "ui_page.h"
#include "xalloc.h"

#define SESSION_COOKIE "berth_session"
#define LOGIN_COOKIE "berth_login"
/* A login form is good for this long (seconds). */
#define LOGIN_FORM_TTL 3600
/* The largest form body: a user name, a password or token and two short fields. */
#define FORM_MAX 8192
/* Clock skew tolerated on session times, seconds. */
#define SESSION_LEEWAY 30

/* The value of cookie name in r's Cookie header into out; 0 when absent. */
static int cookie_get(struct req *r, const char *name, struct buf *out)
{
	const char *h = req_header(r, "Cookie");
	size_t nlen = strlen(name);
	while (h && *h) {
		while (*h == ' ' || *h == ';')
			h++;
		const char *end = strchr(h, ';');
		size_t len = end ? (size_t)(end - h) : strlen(h);
		if (len > nlen && !memcmp(h, name, nlen) && h[nlen] == '=') {
			buf_add(out, h + nlen + 1, len - nlen - 1);
			return 1;
		}
		h = end;
	}
	return 0;
}

/* Set-Cookie for name=value living max_age seconds (0: removes it). */
static void cookie_set(struct req *r, const char *name, const char *value, const char *path, unsigned max_age)
{
	resp_header(r, "Set-Cookie", "%s=%s; Path=%s; Max-Age=%u; HttpOnly; SameSite=Strict%s", name, value, path,
		    max_age, r->cfg->tls_cert ? "; Secure" : "");
}

static void hex(const unsigned char *v, size_t n, struct buf *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		buf_addch(out, digits[v[i] >> 4]);
		buf_addch(out, digits[v[i] & 15]);
	}
}

/* The first n bytes of SHA-256(label, s) in hex into out. */
static void derive(const char *label, const char *s, size_t n, struct buf *out)
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) || !EVP_DigestUpdate(ctx, label, strlen(label) + 1) ||
	    !EVP_DigestUpdate(ctx, s, strlen(s)) || !EVP_DigestFinal_ex(ctx, md, &len))
		die("hash failed");
	EVP_MD_CTX_free(ctx);
	hex(md, n, out);
}

int ui_csrf(struct req *r, struct buf *out)
{
	struct buf c = BUF_INIT;
	int has = cookie_get(r, SESSION_COOKIE, &c) && c.len;
	if (has)
		derive("berth ui csrf", c.buf, 16, out);
	buf_release(&c);
	return has;
}

static int same_str(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n == strlen(b) && !CRYPTO_memcmp(a, b, n);
}

/* The audience of session tokens: never that of registry or refresh tokens. */
static void session_aud(struct req *r, struct buf *out)
{
	buf_addf(out, "%s/ui", r->cfg->token_service);
}

/* Whether the session's claims still hold: the user exists, the token or password is the same. */
static int session_valid(struct req *r, const struct jwt_claims *cl, char **scopes)
{
	const char *phc;
	struct buf fp = BUF_INIT;
	int ok;
	if (!cl->sub[0] || !policy_user_exists(r->policy, cl->sub))
		return 0;
	if (cl->pat_id)
		return !store_pat_scopes(r->reg->store, cl->pat_id, scopes);
	phc = policy_user_hash(r->policy, cl->sub);
	if (!phc || !cl->cred)
		return 0;
	derive("berth ui password", phc, 8, &fp);
	ok = same_str(fp.buf, cl->cred);
	buf_release(&fp);
	return ok;
}

/* Sets r->ident from a valid session cookie (and no Authorization header); 1 when it did. */
static int session_ident(struct req *r)
{
	struct buf tok = BUF_INIT, aud = BUF_INIT;
	struct jwt_claims cl;
	const struct jwt_key *key;
	char *scopes = NULL;
	int ok = 0;
	memset(&cl, 0, sizeof(cl));
	if (req_header(r, "Authorization") || !cookie_get(r, SESSION_COOKIE, &tok) || !tok.len ||
	    tok.len > JWT_MAX_TOKEN || registry_key(r->reg, &key))
		goto out;
	session_aud(r, &aud);
	if (jwt_verify(key, tok.buf, tok.len, r->cfg->token_issuer, aud.buf, clock_wall_s(), SESSION_LEEWAY, &cl) ||
	    !session_valid(r, &cl, &scopes))
		goto out;
	struct ident *id = xcalloc(1, sizeof(*id));
	id->kind = ID_BASIC;
	id->user = xstrdup(cl.sub);
	id->pat_id = cl.pat_id;
	id->scopes = scopes;
	scopes = NULL;
	r->ident = id;
	ok = 1;
out:
	free(scopes);
	jwt_claims_release(&cl);
	buf_release(&tok);
	buf_release(&aud);
	return ok;
}

int ui_session_begin(struct req *r)
{
	/* a session never authenticates a registry write: the interface's own forms get it in ui_post_finish() */
	if (r->method != M_GET && r->method != M_HEAD)
		return 0;
	return session_ident(r);
}

/* Signs a session for user (signed in with personal access token pat_id, or 0 for a password). */
static int session_mint(struct req *r, const char *user, int64_t pat_id, struct buf *out)
{
	const struct jwt_key *key;
	struct jwt_claims cl;
	struct buf aud = BUF_INIT, fp = BUF_INIT;
	int64_t now = clock_wall_s();
	int rc;
	if (registry_key(r->reg, &key))
		return E_INTERNAL;
	memset(&cl, 0, sizeof(cl));
	session_aud(r, &aud);
	cl.iss = r->cfg->token_issuer;
	cl.sub = (char *)user;
	cl.aud = aud.buf;
	cl.iat = cl.nbf = now;
	cl.exp = now + r->cfg->ui_session_ttl_s;
	cl.pat_id = pat_id;
	if (!pat_id) {
		const char *phc = policy_user_hash(r->policy, user);
		if (!phc) {
			buf_release(&aud);
			return E_UNAUTHORIZED;
		}
		derive("berth ui password", phc, 8, &fp);
		cl.cred = fp.buf;
	}
	rc = jwt_sign(key, &cl, out);
	buf_release(&aud);
	buf_release(&fp);
	return rc;
}

/* A request another site made (a link or form there): refused before any token is looked at. */
static int cross_site(struct req *r)
{
	const char *site = req_header(r, "Sec-Fetch-Site"), *origin = req_header(r, "Origin");
	const char *host = req_header(r, "Host");
	if (site && strcmp(site, "same-origin") && strcmp(site, "none"))
		return 1;
	if (!origin)
		return 0;
	const char *p = strstr(origin, "://");
	return !p || !host || strcmp(p + 3, host);
}

/* Where to go after signing in: a path of the interface, else its start. */
static const char *safe_next(const char *next)
{
	if (!next || strncmp(next, "/ui/", 4) || strstr(next, "//") || strchr(next, '\\'))
		return "/ui/";
	for (const char *p = next; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return "/ui/";
	return next;
}

/* The sign-in page; msg (may be NULL) says why the last attempt failed. */
static void login_page(struct req *r, int status, const char *msg, const char *user, const char *next)
{
	unsigned char raw[16];
	struct buf v = BUF_INIT, *o = &r->out;
	rand_bytes(raw, sizeof(raw));
	hex(raw, sizeof(raw), &v);
	cookie_set(r, LOGIN_COOKIE, v.buf, "/ui/login", LOGIN_FORM_TTL);
	ui_page_begin(r, "Sign in");
	buf_adds(o, "<section class=\"login\"><h1>Sign in</h1>");
	if (msg) {
		buf_adds(o, "<p class=\"error\" role=\"alert\">");
		ui_esc(o, msg);
		buf_adds(o, "</p>");
	}
	buf_adds(o, "<form method=\"post\" action=\"/ui/login\"><input type=\"hidden\" name=\"csrf\" value=\"");
	ui_esc(o, v.buf);
	buf_adds(o, "\"><input type=\"hidden\" name=\"next\" value=\"");
	ui_esc(o, safe_next(next));
	buf_adds(o, "\"><label for=\"username\">User name</label><input id=\"username\" name=\"username\" "
		    "autocomplete=\"username\" required autofocus value=\"");
	ui_esc(o, user);
	buf_adds(o, "\"><label for=\"password\">Password or personal access token</label><input id=\"password\" "
		    "name=\"password\" type=\"password\" autocomplete=\"current-password\" required>"
		    "<button type=\"submit\" id=\"login\">Sign in</button></form>"
		    "<p class=\"hint\">The same user name and password as <code>docker login</code>.</p></section>");
	ui_page_end(r, status);
	buf_release(&v);
}

int ui_login_get(struct req *r)
{
	login_page(r, 200, NULL, NULL, req_arg(r, "next"));
	return 0;
}

static void login_cleanup(struct req *r)
{
	struct ui_form *ls = r->hstate;
	if (!ls)
		return;
	authn_check_release(&ls->check);
	ui_action_free(ls->action);
	for (size_t i = 0; i < ls->form.n; i++)
		OPENSSL_cleanse(ls->form.params[i].value, strlen(ls->form.params[i].value));
	query_release(&ls->form);
	free(ls);
	r->hstate = NULL;
}

static void login_work(struct req *r)
{
	struct ui_form *ls = r->hstate;
	authn_check_run(r, &ls->check);
}

static int login_then(struct req *r)
{
	struct ui_form *ls = r->hstate;
	struct authn_check *c = &ls->check;
	const char *next = safe_next(query_get(&ls->form, "next"));
	struct buf tok = BUF_INIT;
	if (c->rc == E_TOOMANYREQUESTS) {
		login_page(r, 429, "Too many failed sign-ins from here: wait a minute and try again.", c->user, next);
		return 0;
	}
	if (c->rc || session_mint(r, c->user, c->pat_id, &tok)) {
		login_page(r, 401, "Wrong user name or password.", c->user, next);
		return 0;
	}
	cookie_set(r, SESSION_COOKIE, tok.buf, "/", r->cfg->ui_session_ttl_s);
	cookie_set(r, LOGIN_COOKIE, "", "/ui/login", 0);
	ui_redirect(r, next);
	buf_release(&tok);
	return 0;
}

static int login_post(struct req *r, struct ui_form *ls)
{
	const char *u = query_get(&ls->form, "username"), *p = query_get(&ls->form, "password");
	const char *csrf = query_get(&ls->form, "csrf");
	struct buf want = BUF_INIT;
	int fresh = cookie_get(r, LOGIN_COOKIE, &want) && want.len && csrf && same_str(want.buf, csrf);
	buf_release(&want);
	if (!fresh) {
		login_page(r, 403, "The sign-in form expired or came from another site: try again.", u,
			   query_get(&ls->form, "next"));
		return 0;
	}
	if (!u || !*u || !p || !*p) {
		login_page(r, 400, "Give a user name and a password.", u, query_get(&ls->form, "next"));
		return 0;
	}
	ls->check.user = xstrdup(u);
	ls->check.len = strlen(p);
	ls->check.secret = xstrndup(p, ls->check.len);
	if (!authn_check_start(r, &ls->check, login_work))
		return login_then(r);
	r->async_then = login_then;
	return 0;
}

/* Whether the form carries the CSRF token of r's session cookie. */
static int csrf_ok(struct req *r, struct ui_form *ls)
{
	struct buf want = BUF_INIT;
	const char *csrf = query_get(&ls->form, "csrf");
	int ok = ui_csrf(r, &want) && csrf && same_str(want.buf, csrf);
	buf_release(&want);
	return ok;
}

static int logout_post(struct req *r, struct ui_form *ls)
{
	if (!csrf_ok(r, ls)) {
		ui_page_message(r, 403, "Not signed out", "The form expired or came from another site: reload the page "
							 "and try again.");
		return 0;
	}
	cookie_set(r, SESSION_COOKIE, "", "/", 0);
	ui_redirect(r, "/ui/");
	return 0;
}

int ui_post(struct req *r)
{
	r->body_mode = BODY_BUFFER;
	r->body_limit = FORM_MAX;
	return 0;
}

int ui_post_finish(struct req *r)
{
	struct ui_form *ls = xcalloc(1, sizeof(*ls));
	r->hstate = ls;
	r->on_cleanup = login_cleanup;
	if (!r->cfg->ui_enabled)
		return req_fail(r, E_NOT_FOUND, NULL);
	int bad = query_parse(r->body.buf, &ls->form);
	OPENSSL_cleanse(r->body.buf, r->body.len);
	if (bad || cross_site(r)) {
		ui_page_message(r, 403, "Refused", "This form came from another site, or was malformed.");
		return 0;
	}
	if (!strcmp(r->path, "/ui/login"))
		return login_post(r, ls);
	if (!strcmp(r->path, "/ui/logout"))
		return logout_post(r, ls);
	if (!strncmp(r->path, "/ui/r/", 6)) {
		/* the session acts only for a form of its own pages: the token proves where the form came from */
		if (!csrf_ok(r, ls) || !session_ident(r)) {
			ui_page_message(r, 403, "Refused", "The form expired or came from another site: reload the page "
							   "and try again.");
			return 0;
		}
		return ui_action_post(r, ls);
	}
	ui_page_message(r, 404, "Not found", "There is no such page.");
	return 0;
}
