/*
 * h_token: the token endpoint of the Docker token authentication flow.
 *
 * GET with Basic credentials (docker login, podman, skopeo) or none
 * (anonymous), and the OAuth2 form POST (grant_type=password or
 * refresh_token, as containerd sends). The caller is granted the
 * intersection of what it asked for and what the policy (and, for a
 * personal access token, the token's scopes) allows; an empty grant is a
 * valid token with no access.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "authn.h"
#include "clock.h"
#include "err.h"
#include "handlers.h"
#include "store.h"
#include "metrics.h"
#include "policy.h"
#include "registry.h"
#include "scope.h"
#include "xalloc.h"

/* Largest form body accepted on POST. */
#define TOKEN_FORM_MAX (16 * 1024)
/* Lifetime of refresh tokens (docker's stored login), seconds. */
#define REFRESH_TTL (90 * 24 * 3600)

struct token_state {
	struct scope scopes[SCOPE_MAX_PER_REQUEST];
	size_t nscopes;
	int offline;      /* a refresh token is wanted */
	int oauth;        /* POST: answer in the OAuth2 shape */
	char *user;       /* authenticated user; NULL for anonymous */
	struct authn_check check; /* Basic or password-grant credentials */
	int64_t pat_id;
	char *pat_scopes;
	char *refresh_in; /* refresh token presented */
	struct query form;
};

static void token_cleanup(struct req *r)
{
	struct token_state *ts = r->hstate;
	if (!ts)
		return;
	for (size_t i = 0; i < ts->nscopes; i++)
		scope_release(&ts->scopes[i]);
	free(ts->user);
	authn_check_release(&ts->check);
	free(ts->pat_scopes);
	free(ts->refresh_in);
	for (size_t i = 0; i < ts->form.n; i++)
		OPENSSL_cleanse(ts->form.params[i].value, strlen(ts->form.params[i].value));
	query_release(&ts->form);
	free(ts);
	r->hstate = NULL;
}

static struct token_state *state(struct req *r)
{
	struct token_state *ts = xcalloc(1, sizeof(*ts));
	r->hstate = ts;
	r->on_cleanup = token_cleanup;
	return ts;
}

/* Adds the space-separated scopes in value; malformed ones are ignored. */
static void add_scopes(struct token_state *ts, const char *value)
{
	char *copy = xstrdup(value), *save = NULL;
	for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (ts->nscopes >= SCOPE_MAX_PER_REQUEST)
			break;
		if (!scope_parse(tok, &ts->scopes[ts->nscopes]))
			ts->nscopes++;
	}
	free(copy);
}

static void collect_scopes(struct token_state *ts, const struct query *q)
{
	for (size_t i = 0; i < q->n; i++)
		if (!strcmp(q->params[i].key, "scope"))
			add_scopes(ts, q->params[i].value);
}

static int check_service(struct req *r, const char *service)
{
	if (service && *service && strcmp(service, r->cfg->token_service))
		return req_fail(r, E_BAD_REQUEST, "unknown service \"%.64s\"", service);
	return 0;
}

/* Hex fingerprint of the user's password hash: a refresh token dies with a password change. */
static void cred_fingerprint(const char *phc, char out[17])
{
	unsigned char md[32];
	unsigned int n = 0;
	static const char hexd[] = "0123456789abcdef";
	if (!EVP_Digest(phc, strlen(phc), md, &n, EVP_sha256(), NULL))
		die("hash failed");
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hexd[md[i] >> 4];
		out[2 * i + 1] = hexd[md[i] & 15];
	}
	out[16] = '\0';
}

static void add_time(struct buf *out, const char *key, time_t t)
{
	char ts[32];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_addf(out, ",\"%s\":\"%s\"", key, ts);
}

/* Signs the access token (and a refresh token when wanted) and writes the reply. */
static int issue(struct req *r, struct token_state *ts, int with_refresh)
{
	const struct config *c = r->cfg;
	struct jwt_access acc[SCOPE_MAX_PER_REQUEST];
	struct jwt_claims cl;
	struct buf tok = BUF_INIT, rt = BUF_INIT;
	time_t now = clock_wall_s();
	const struct jwt_key *key;
	size_t n = 0;
	int rc;
	/* An open registry loads its key here, on the first token it issues (the cause of a failure is logged). */
	if (registry_key(r->reg, &key))
		return E_INTERNAL;
	for (size_t i = 0; i < ts->nscopes; i++) {
		struct scope *sc = &ts->scopes[i];
		unsigned grant;
		if (!strcmp(sc->type, "registry")) {
			grant = sc->actions ? ACTION_ALL : 0;
		} else {
			grant = policy_actions(r->policy, ts->user, sc->name) & sc->actions;
			if (ts->pat_id)
				grant &= scopes_actions(ts->pat_scopes, sc->name);
		}
		if (!grant)
			continue;
		acc[n].type = sc->type;
		acc[n].name = sc->name;
		acc[n].actions = grant;
		n++;
	}
	memset(&cl, 0, sizeof(cl));
	cl.iss = c->token_issuer;
	cl.sub = ts->user ? ts->user : "";
	cl.aud = c->token_service;
	cl.iat = cl.nbf = now;
	cl.exp = now + c->token_ttl_s;
	cl.access = acc;
	cl.naccess = n;
	cl.pat_id = ts->pat_id;
	if ((rc = jwt_sign(key, &cl, &tok)))
		goto out;
	if (with_refresh && ts->user && !ts->refresh_in) {
		struct buf aud = BUF_INIT;
		char fp[17];
		const char *phc = policy_user_hash(r->policy, ts->user);
		buf_addf(&aud, "%s/refresh", c->token_service);
		memset(&cl, 0, sizeof(cl));
		cl.iss = c->token_issuer;
		cl.sub = ts->user;
		cl.aud = aud.buf;
		cl.iat = cl.nbf = now;
		cl.exp = now + REFRESH_TTL;
		cl.pat_id = ts->pat_id;
		if (!ts->pat_id && phc) {
			cred_fingerprint(phc, fp);
			cl.cred = fp;
		}
		rc = jwt_sign(key, &cl, &rt);
		buf_release(&aud);
		if (rc)
			goto out;
	}
	buf_adds(&r->out, "{\"token\":");
	buf_add_json_str(&r->out, tok.buf);
	buf_adds(&r->out, ",\"access_token\":");
	buf_add_json_str(&r->out, tok.buf);
	buf_addf(&r->out, ",\"expires_in\":%u", c->token_ttl_s);
	add_time(&r->out, "issued_at", now);
	if (rt.len) {
		buf_adds(&r->out, ",\"refresh_token\":");
		buf_add_json_str(&r->out, rt.buf);
	}
	if (ts->oauth) {
		buf_adds(&r->out, ",\"scope\":\"");
		for (size_t i = 0; i < n; i++) {
			if (i)
				buf_addch(&r->out, ' ');
			buf_addf(&r->out, "%s:%s:", acc[i].type, acc[i].name);
			actions_format(acc[i].actions, &r->out);
		}
		buf_addch(&r->out, '"');
	}
	buf_addch(&r->out, '}');
	resp_header(r, "Cache-Control", "no-store");
	resp_body(r, 200, "application/json");
	metrics_token(1);
out:
	buf_release(&tok);
	buf_release(&rt);
	return rc;
}

static void token_work(struct req *r)
{
	struct token_state *ts = r->hstate;
	authn_check_run(r, &ts->check);
}

static int token_then(struct req *r)
{
	struct token_state *ts = r->hstate;
	struct authn_check *c = &ts->check;
	if (c->rc)
		metrics_token(0);
	if (c->rc == E_TOOMANYREQUESTS)
		return req_fail(r, E_TOOMANYREQUESTS, "too many failed logins, retry later");
	if (c->rc)
		return req_fail(r, E_UNAUTHORIZED, "invalid username or password");
	ts->user = xstrdup(c->user);
	ts->pat_id = c->pat_id;
	ts->pat_scopes = c->scopes;
	c->scopes = NULL;
	return issue(r, ts, ts->offline);
}

/*
 * Checks ts->check: answers at once from the credential cache or the
 * failed-login limits, or queues the check on a pool and token_then()
 * answers.
 */
static int check_credentials(struct req *r, struct token_state *ts)
{
	if (!authn_check_start(r, &ts->check, token_work))
		return token_then(r);
	r->async_then = token_then;
	return 0;
}

int h_token_get(struct req *r)
{
	struct token_state *ts = state(r);
	const char *h = req_header(r, "Authorization");
	const char *off = req_arg(r, "offline_token");
	int rc;
	if ((rc = check_service(r, req_arg(r, "service"))))
		return rc;
	collect_scopes(ts, &r->query);
	ts->offline = off && !strcmp(off, "true");
	if (!h)
		return issue(r, ts, 0);
	if (strncasecmp(h, "Basic ", 6) ||
	    authn_basic_decode(h + 6, &ts->check.user, &ts->check.secret, &ts->check.len))
		return req_fail(r, E_UNAUTHORIZED, "token requests take Basic credentials or none");
	return check_credentials(r, ts);
}

int h_token_post(struct req *r)
{
	r->body_mode = BODY_BUFFER;
	r->body_limit = TOKEN_FORM_MAX;
	return 0;
}

/* Checks a refresh token and adopts its identity; E_UNAUTHORIZED when it is no longer good. */
static int refresh_identity(struct req *r, struct token_state *ts)
{
	const struct config *c = r->cfg;
	struct jwt_claims cl;
	struct buf aud = BUF_INIT;
	const struct jwt_key *key;
	int rc;
	if (registry_key(r->reg, &key))
		return E_UNAUTHORIZED;
	buf_addf(&aud, "%s/refresh", c->token_service);
	rc = jwt_verify(key, ts->refresh_in, strlen(ts->refresh_in), c->token_issuer, aud.buf, clock_wall_s(), 30,
			&cl);
	buf_release(&aud);
	if (rc)
		return E_UNAUTHORIZED;
	if (!cl.sub[0] || !policy_user_exists(r->policy, cl.sub)) {
		rc = E_UNAUTHORIZED;
	} else if (cl.pat_id) {
		rc = store_pat_scopes(r->reg->store, cl.pat_id, &ts->pat_scopes);
		ts->pat_id = cl.pat_id;
	} else {
		const char *phc = policy_user_hash(r->policy, cl.sub);
		char fp[17];
		if (!phc || !cl.cred)
			rc = E_UNAUTHORIZED;
		else {
			cred_fingerprint(phc, fp);
			rc = strlen(cl.cred) != 16 || CRYPTO_memcmp(fp, cl.cred, 16) ? E_UNAUTHORIZED : 0;
		}
	}
	if (!rc)
		ts->user = xstrdup(cl.sub);
	jwt_claims_release(&cl);
	return rc;
}

int h_token_post_finish(struct req *r)
{
	struct token_state *ts = state(r);
	const char *grant, *v;
	int rc;
	ts->oauth = 1;
	if (query_parse(r->body.buf, &ts->form))
		return req_fail(r, E_BAD_REQUEST, "malformed form body");
	OPENSSL_cleanse(r->body.buf, r->body.len);
	if ((rc = check_service(r, query_get(&ts->form, "service"))))
		return rc;
	collect_scopes(ts, &ts->form);
	v = query_get(&ts->form, "access_type");
	ts->offline = v && !strcmp(v, "offline");
	grant = query_get(&ts->form, "grant_type");
	if (grant && !strcmp(grant, "password")) {
		const char *u = query_get(&ts->form, "username"), *p = query_get(&ts->form, "password");
		if (!u || !p)
			return req_fail(r, E_BAD_REQUEST, "username and password are required");
		ts->check.user = xstrdup(u);
		ts->check.len = strlen(p);
		ts->check.secret = xstrndup(p, ts->check.len);
		return check_credentials(r, ts);
	}
	if (grant && !strcmp(grant, "refresh_token")) {
		v = query_get(&ts->form, "refresh_token");
		if (!v)
			return req_fail(r, E_BAD_REQUEST, "refresh_token is required");
		ts->refresh_in = xstrdup(v);
		if (refresh_identity(r, ts))
			return req_fail(r, E_UNAUTHORIZED, "refresh token is not valid");
		return issue(r, ts, 0);
	}
	return req_fail(r, E_BAD_REQUEST, "unsupported grant_type");
}
