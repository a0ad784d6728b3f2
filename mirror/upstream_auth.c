/*
 * upstream_auth: authenticating to an upstream: WWW-Authenticate parsing,
 * the Docker token flow with a per-scope token cache, Basic auth, and the
 * authenticated call with its retries.
 */
#include "upstream_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "err.h"
#include "xalloc.h"

#define TOKEN_MAX (16 * 1024)
#define TOKEN_BODY_MAX (64 * 1024)
#define TOKEN_DEFAULT_TTL 60 /* the token spec's default when expires_in is absent */

/* ---- WWW-Authenticate ---- */

static int is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads a token or quoted-string value at p into out (len bytes, truncation is an error); the end, or NULL. */
static const char *read_value(const char *p, char *out, size_t len, int *overflow)
{
	size_t n = 0;
	if (*p != '"') {
		while (is_tchar(*p) || *p == '/' || *p == ':' || *p == '=') {
			if (n + 1 >= len)
				*overflow = 1;
			else
				out[n++] = *p;
			p++;
		}
		out[n] = '\0';
		return n ? p : NULL;
	}
	for (p++; *p != '"'; p++) {
		if (!*p)
			return NULL;
		if (*p == '\\' && !*++p)
			return NULL;
		if ((unsigned char)*p < ' ' && *p != '\t')
			return NULL;
		if (n + 1 >= len)
			*overflow = 1;
		else
			out[n++] = *p;
	}
	out[n] = '\0';
	return p + 1;
}

int upstream_challenge_parse(const char *header, struct upstream_challenge *out)
{
	const char *p = skip_ws(header);
	size_t n = 0;
	memset(out, 0, sizeof(*out));
	while (is_tchar(*p) && n + 1 < sizeof(out->scheme))
		out->scheme[n++] = *p++;
	if (!n || (*p && *p != ' ' && *p != '\t'))
		return -1;
	for (;;) {
		char name[32], other[1024], *dst;
		size_t dlen, nl = 0;
		int overflow = 0;
		const char *start;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			return 0;
		start = p;
		while (is_tchar(*p)) {
			if (nl + 1 < sizeof(name))
				name[nl++] = *p;
			p++;
		}
		name[nl] = '\0';
		if (p == start)
			return -1;
		p = skip_ws(p);
		if (*p != '=') {
			/* a token and then no '=': the next challenge begins; only the first is ours */
			return (*p == ',' || *p == ' ' || is_tchar(*p) || !*p) ? 0 : -1;
		}
		p = skip_ws(p + 1);
		if (!strcasecmp(name, "realm"))
			dst = out->realm, dlen = sizeof(out->realm);
		else if (!strcasecmp(name, "service"))
			dst = out->service, dlen = sizeof(out->service);
		else if (!strcasecmp(name, "scope"))
			dst = out->scope, dlen = sizeof(out->scope);
		else
			dst = other, dlen = sizeof(other), overflow = -1;
		if (!(p = read_value(p, dst, dlen, &overflow)) || overflow == 1)
			return -1;
		p = skip_ws(p);
		if (*p && *p != ',')
			return -1;
	}
}

/* ---- the token cache ---- */

/* A fresh token for scope, copied into out (the caller wipes and frees it), or NULL. */
static char *token_lookup(struct upstream *u, const char *scope)
{
	char *tok = NULL;
	long now = httpc_now_ms();
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->ntokens; i++) {
		if (!strcmp(u->tokens[i].scope, scope) && u->tokens[i].expires_ms > now) {
			tok = xstrdup(u->tokens[i].token);
			u->stats.token_reuses++;
			break;
		}
	}
	pthread_mutex_unlock(&u->lock);
	return tok;
}

static void token_store(struct upstream *u, const char *scope, const char *token, long expires_ms)
{
	struct up_token *slot = NULL;
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->ntokens && !slot; i++)
		if (!strcmp(u->tokens[i].scope, scope))
			slot = &u->tokens[i];
	if (!slot && u->ntokens < u->lim.token_cache_max) {
		size_t alloc = u->ntokens;
		u->tokens = xgrow(u->tokens, &alloc, u->ntokens, sizeof(*u->tokens));
		slot = &u->tokens[u->ntokens++];
		memset(slot, 0, sizeof(*slot));
	}
	if (!slot) {
		/* full: the entry that expires first makes room */
		slot = &u->tokens[0];
		for (size_t i = 1; i < u->ntokens; i++)
			if (u->tokens[i].expires_ms < slot->expires_ms)
				slot = &u->tokens[i];
	}
	free(slot->scope);
	if (slot->token)
		explicit_bzero(slot->token, strlen(slot->token));
	free(slot->token);
	slot->scope = xstrdup(scope);
	slot->token = xstrdup(token);
	slot->expires_ms = expires_ms;
	pthread_mutex_unlock(&u->lock);
}

static void wipe(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* Seconds between RFC 3339 issued_at and now, when the token was issued in the past; else 0. */
static long issued_ago(const char *issued_at)
{
	struct tm tm;
	const char *end;
	time_t t, now = time(NULL);
	memset(&tm, 0, sizeof(tm));
	if (!issued_at || !(end = strptime(issued_at, "%Y-%m-%dT%H:%M:%S", &tm)))
		return 0;
	t = timegm(&tm);
	/* fractions and "Z" ignored; an offset other than Z is rare enough to read as UTC */
	return t != (time_t)-1 && t < now ? (long)(now - t) : 0;
}

static int token_answer(struct upstream *u, const struct up_resp *resp, const char *scope, char **out,
			struct upstream_error *e)
{
	json_error_t jerr;
	json_t *root = json_loadb(resp->body.buf, resp->body.len, 0, &jerr);
	const char *tok;
	long ttl, margin;
	json_t *exp;
	int rc = 0;
	tok = json_string_value(json_object_get(root, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(root, "access_token"));
	if (!tok || !*tok || strlen(tok) > TOKEN_MAX || strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
							      "0123456789-._~+/=") != strlen(tok)) {
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the token service answered without a usable token");
		goto out;
	}
	exp = json_object_get(root, "expires_in");
	ttl = json_is_integer(exp) && json_integer_value(exp) > 0 && json_integer_value(exp) < 366L * 86400
		? (long)json_integer_value(exp) : TOKEN_DEFAULT_TTL;
	ttl -= issued_ago(json_string_value(json_object_get(root, "issued_at")));
	/* renewed early, so that it cannot expire on its way; a short-lived token keeps three quarters */
	margin = (long)u->lim.token_margin_s < ttl / 4 ? (long)u->lim.token_margin_s : ttl / 4;
	if (ttl - margin > 0)
		token_store(u, scope, tok, httpc_now_ms() + (ttl - margin) * 1000);
	*out = xstrdup(tok);
out:
	json_decref(root);
	return rc;
}

/* GET realm?service=..&scope=.., with Basic credentials when the upstream has them. */
static int token_fetch(struct upstream *u, const char *realm, const char *service, const char *scope, char **out,
		       struct upstream_error *e)
{
	struct buf url = BUF_INIT;
	struct up_resp resp;
	char sep = strchr(realm, '?') ? '&' : '?';
	int rc;
	struct up_req r = { .method = "GET", .token_realm = 1, .basic = u->username != NULL,
			    .body_max = TOKEN_BODY_MAX };
	if (strncmp(realm, "https://", 8) && (u->https || strncmp(realm, "http://", 7)))
		return up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the token realm is not an https:// URL");
	buf_adds(&url, realm);
	if (service && *service) {
		char *v = curl_easy_escape(NULL, service, 0);
		buf_addf(&url, "%cservice=%s", sep, v);
		curl_free(v);
		sep = '&';
	}
	if (scope && *scope) {
		char *v = curl_easy_escape(NULL, scope, 0);
		buf_addf(&url, "%cscope=%s", sep, v);
		curl_free(v);
	}
	r.url = url.buf;
	up_resp_init(&resp);
	rc = up_http(u, &r, &resp, e);
	if (!rc && resp.status != 200) {
		rc = up_status_error(&resp, E_DENIED, e);
		if (e && e->kind != UPSTREAM_RATE_LIMITED && e->kind != UPSTREAM_SERVER) {
			e->kind = UPSTREAM_DENIED;
			rc = E_DENIED;
		}
		if (e && !e->code[0])
			snprintf(e->message, sizeof(e->message), "the token service refused%s",
				 u->username ? " the credentials" : " an anonymous token");
	} else if (!rc) {
		rc = token_answer(u, &resp, scope ? scope : "", out, e);
	}
	up_resp_release(&resp);
	buf_release(&url);
	return rc;
}

/* ---- the authenticated call ---- */

static void scope_for(const char *remote, struct buf *out)
{
	if (remote)
		buf_addf(out, "repository:%s:pull", remote);
}

/* What to send up front: the fixed token, Basic, or a cached (or, once the realm is known, fetched) token. */
static int authorize(struct upstream *u, const char *scope, struct up_req *r, char **bearer, struct upstream_error *e)
{
	char *realm = NULL, *service = NULL;
	int rc = 0;
	if (u->static_token) {
		r->bearer = u->static_token;
		return 0;
	}
	pthread_mutex_lock(&u->lock);
	r->basic = u->basic_mode;
	if (u->realm && *scope) {
		realm = xstrdup(u->realm);
		service = u->service ? xstrdup(u->service) : NULL;
	}
	pthread_mutex_unlock(&u->lock);
	if (!r->basic && *scope && !(*bearer = token_lookup(u, scope)) && realm)
		rc = token_fetch(u, realm, service, scope, bearer, e);
	r->bearer = *bearer;
	free(realm);
	free(service);
	return rc;
}

/* After a 401: answers its challenge (a new token or Basic). 0: send again; else the failure. */
static int answer_challenge(struct upstream *u, const struct up_resp *resp, const char *scope, struct up_req *r,
			    char **bearer, struct upstream_error *e)
{
	struct upstream_challenge ch;
	int rc;
	if (u->static_token || upstream_challenge_parse(resp->www_auth, &ch))
		return up_status_error(resp, E_DENIED, e);
	if (!strcasecmp(ch.scheme, "basic")) {
		if (!u->username || r->basic)
			return up_status_error(resp, E_DENIED, e);
		pthread_mutex_lock(&u->lock);
		u->basic_mode = 1;
		pthread_mutex_unlock(&u->lock);
		r->basic = 1;
		return 0;
	}
	if (strcasecmp(ch.scheme, "bearer") || !ch.realm[0])
		return up_status_error(resp, E_DENIED, e);
	pthread_mutex_lock(&u->lock);
	free(u->realm);
	free(u->service);
	u->realm = xstrdup(ch.realm);
	u->service = xstrdup(ch.service);
	pthread_mutex_unlock(&u->lock);
	wipe(*bearer);
	*bearer = NULL;
	/* the challenge's scope is what this request needs; ours is the guess made before */
	if ((rc = token_fetch(u, ch.realm, ch.service, ch.scope[0] ? ch.scope : scope, bearer, e)))
		return rc;
	r->bearer = *bearer;
	return 0;
}

/* Down (refused, unresolvable) and timeouts are not retried: the mirror serves its cache at once. */
static int retriable(int rc, const struct up_resp *resp)
{
	if (rc)
		return resp->broken;
	return resp->status == 502 || resp->status == 503 || resp->status == 504;
}

int up_call(struct upstream *u, const char *remote, const struct up_req *req, struct up_resp *resp, int notfound,
	    struct upstream_error *e)
{
	struct upstream_error tmp;
	struct buf scope = BUF_INIT;
	struct up_req r = *req;
	char *bearer = NULL;
	long start = httpc_now_ms();
	int64_t delivered = 0;
	int rc, challenged = 0;
	if (!e)
		e = &tmp;
	memset(e, 0, sizeof(*e));
	scope_for(remote, &scope);
	if ((rc = authorize(u, scope.buf, &r, &bearer, e)))
		goto out;
	for (int n = 1;; n++) {
		r.range_from = req->range_from + delivered;
		if (r.sink)
			r.sink_max = req->sink_max - delivered;
		memset(e, 0, sizeof(*e));
		rc = up_http(u, &r, resp, e);
		delivered += resp->delivered;
		if (!rc && resp->status >= 200 && resp->status < 300) {
			resp->delivered = delivered;
			break;
		}
		if (!rc && resp->status == 401 && !challenged) {
			challenged = 1;
			if ((rc = answer_challenge(u, resp, scope.buf, &r, &bearer, e)))
				break;
			n--; /* answering a challenge is not a retry */
			continue;
		}
		if (!retriable(rc, resp) || n >= u->lim.max_attempts) {
			if (!rc)
				rc = up_status_error(resp, notfound, e);
			break;
		}
		if (httpc_backoff_wait(&u->backoff, start, n - 1)) {
			if (!rc)
				rc = up_status_error(resp, notfound, e);
			break;
		}
	}
	resp->delivered = delivered;
out:
	wipe(bearer);
	buf_release(&scope);
	return rc;
}
