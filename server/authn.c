/* authn: credentials to identity, identity to rights, and the 401 challenge. */
#include "authn.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "audit.h"
#include "clock.h"
#include "credcache.h"
#include "err.h"
#include "handlers.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "policy.h"
#include "ratelimit.h"
#include "registry.h"
#include "router.h"
#include "scope.h"
#include "xalloc.h"

/* Longest Authorization header looked at; real ones are far shorter. */
#define AUTH_HEADER_MAX 8192
/* Clock skew tolerated on token times, seconds. */
#define TOKEN_LEEWAY 30

static int64_t now_ms(void)
{
	return clock_wall_ms();
}

void authn_ident_free(struct ident *id)
{
	if (!id)
		return;
	free(id->user);
	free(id->scopes);
	jwt_claims_release(&id->claims);
	free(id->pending_user);
	if (id->pending_secret) {
		OPENSSL_cleanse(id->pending_secret, id->pending_len);
		free(id->pending_secret);
	}
	free(id);
}

int authn_basic_decode(const char *b64, char **user, char **secret, size_t *slen)
{
	size_t n = strlen(b64);
	unsigned char *raw;
	int len;
	if (!n || n % 4 || n > AUTH_HEADER_MAX)
		return -1;
	raw = xmalloc(n / 4 * 3 + 1);
	len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (len < 0) {
		free(raw);
		return -1;
	}
	/* EVP_DecodeBlock counts the bytes padding stands for. */
	if (b64[n - 1] == '=')
		len--;
	if (b64[n - 2] == '=')
		len--;
	unsigned char *colon = memchr(raw, ':', (size_t)len);
	if (!colon || memchr(raw, '\0', (size_t)len)) {
		OPENSSL_cleanse(raw, n / 4 * 3 + 1);
		free(raw);
		return -1;
	}
	*user = xstrndup((char *)raw, (size_t)(colon - raw));
	*slen = (size_t)len - (size_t)(colon - raw) - 1;
	*secret = xmalloc(*slen + 1);
	memcpy(*secret, colon + 1, *slen);
	(*secret)[*slen] = '\0';
	OPENSSL_cleanse(raw, n / 4 * 3 + 1);
	free(raw);
	return 0;
}

int authn_verify_secret(struct req *r, const char *user, const char *secret, size_t len,
			int64_t *pat_id, char **scopes)
{
	struct registry *reg = r->reg;
	int64_t now = now_ms();
	struct buf ukey = BUF_INIT;
	int rc;
	*pat_id = 0;
	*scopes = NULL;
	buf_addf(&ukey, "user:%s", user);
	if (ratelimit_blocked(reg->fail_ip, r->client, now) || ratelimit_blocked(reg->fail_user, ukey.buf, now)) {
		rc = E_TOOMANYREQUESTS;
		goto out;
	}
	if (len > strlen(PAT_PREFIX) && !memcmp(secret, PAT_PREFIX, strlen(PAT_PREFIX))) {
		unsigned char hash[32];
		struct meta_pat pat = { 0 };
		unsigned int hl = 0;
		if (!EVP_Digest(secret, len, hash, &hl, EVP_sha256(), NULL))
			die("hash failed");
		rc = meta_pat_lookup(hash, now, &pat);
		/* A token works only for its owner, and only while the owner exists. */
		if (!rc && (strcmp(pat.owner, user) || !policy_user_exists(r->policy, user)))
			rc = E_UNAUTHORIZED;
		if (!rc) {
			*pat_id = pat.id;
			*scopes = xstrdup(pat.scopes);
			meta_pat_touch(pat.id, now);
		} else if (rc != E_UNAUTHORIZED) {
			rc = E_UNAUTHORIZED;
		}
		meta_pat_release(&pat);
	} else {
		rc = policy_check_password(r->policy, user, secret, len);
	}
	if (rc == E_UNAUTHORIZED) {
		ratelimit_fail(reg->fail_ip, r->client, now);
		ratelimit_fail(reg->fail_user, ukey.buf, now);
		metrics_login_failed();
		/* A name that is no user may be a password typed in the wrong field: never log it. */
		if (policy_user_exists(r->policy, user))
			log_info("failed login for user \"%s\" from %s", user, r->client);
		else
			log_info("failed login for an unknown user from %s", r->client);
	}
	/* one event per credential check; refusals by the limiter above never get here */
	audit_login(r, user, len > strlen(PAT_PREFIX) && !memcmp(secret, PAT_PREFIX, strlen(PAT_PREFIX)), *pat_id,
		    rc);
out:
	buf_release(&ukey);
	return rc;
}

/* Login pool step for Basic credentials on a registry request. */
static void basic_work(struct req *r)
{
	struct ident *id = r->ident;
	int64_t pat_id;
	char *scopes;
	int rc = authn_verify_secret(r, id->pending_user, id->pending_secret, id->pending_len, &pat_id, &scopes);
	if (rc) {
		id->failed = rc;
	} else {
		id->kind = ID_BASIC;
		id->user = xstrdup(id->pending_user);
		id->pat_id = pat_id;
		id->scopes = scopes;
		credcache_put(r->reg->creds, id->pending_user, id->pending_secret, id->pending_len, now_ms(), pat_id,
			      scopes);
	}
	OPENSSL_cleanse(id->pending_secret, id->pending_len);
}

static int bearer(struct req *r, struct ident *id, const char *tok)
{
	const struct config *c = r->cfg;
	const struct jwt_key *key;
	/* Without the key no token can be checked: refused like a bad one (the cause is logged). */
	if (registry_key(r->reg, &key) ||
	    jwt_verify(key, tok, strlen(tok), c->token_issuer, c->token_service, clock_wall_s(), TOKEN_LEEWAY,
		       &id->claims)) {
		id->failed = E_UNAUTHORIZED;
		return 0;
	}
	if (id->claims.pat_id && meta_pat_check(id->claims.pat_id, now_ms())) {
		id->failed = E_UNAUTHORIZED;
		return 0;
	}
	id->kind = ID_BEARER;
	id->user = id->claims.sub[0] ? xstrdup(id->claims.sub) : NULL;
	id->pat_id = id->claims.pat_id;
	return 0;
}

int authn_begin(struct req *r)
{
	const char *h = req_header(r, "Authorization");
	struct ident *id = xcalloc(1, sizeof(*id));
	r->ident = id;
	if (!h)
		return 0;
	if (strlen(h) > AUTH_HEADER_MAX) {
		id->failed = E_UNAUTHORIZED;
		return 0;
	}
	if (!strncasecmp(h, "Bearer ", 7))
		return bearer(r, id, h + 7);
	if (!strncasecmp(h, "Basic ", 6)) {
		char *user = NULL, *secret = NULL, *scopes = NULL;
		size_t len = 0;
		int64_t pat_id;
		if (authn_basic_decode(h + 6, &user, &secret, &len)) {
			id->failed = E_UNAUTHORIZED;
			return 0;
		}
		if (credcache_get(r->reg->creds, user, secret, len, now_ms(), &pat_id, &scopes) &&
		    (!pat_id || !meta_pat_check(pat_id, now_ms()))) {
			id->kind = ID_BASIC;
			id->user = user;
			id->pat_id = pat_id;
			id->scopes = scopes;
			OPENSSL_cleanse(secret, len);
			free(secret);
			return 0;
		}
		free(scopes);
		id->pending_user = user;
		id->pending_secret = secret;
		id->pending_len = len;
		r->async_work = basic_work;
		return 0;
	}
	id->failed = E_UNAUTHORIZED;
	return 0;
}

unsigned authn_rights(struct req *r, const char *repo)
{
	struct ident *id = r->ident;
	unsigned acts = 0;
	if (!id || id->failed)
		return 0;
	if (id->kind == ID_BEARER) {
		for (size_t i = 0; i < id->claims.naccess; i++) {
			const struct jwt_access *a = &id->claims.access[i];
			if (!strcmp(a->type, "repository") && !strcmp(a->name, repo))
				acts |= a->actions;
		}
		return acts & ACT_ALL;
	}
	acts = policy_actions(r->policy, id->user, repo);
	if (id->pat_id)
		acts &= scopes_actions(id->scopes, repo);
	return acts;
}

unsigned authn_identity_rights(struct req *r, const char *repo)
{
	struct ident *id = r->ident;
	unsigned acts;
	if (!id || id->failed)
		return 0;
	if (id->kind != ID_BEARER)
		return authn_rights(r, repo);
	acts = policy_actions(r->policy, id->user, repo);
	if (id->pat_id) {
		/* The token's PAT scopes are fetched once per request. */
		if (!id->scopes && meta_pat_get_scopes(id->pat_id, &id->scopes))
			return 0;
		acts &= scopes_actions(id->scopes, repo);
	}
	return acts;
}

int authn_open_registry(const struct req *r)
{
	return !policy_has_users(r->policy);
}

/* Honours X-Forwarded-Proto/Host only from a configured trusted proxy. */
static int from_trusted_proxy(struct req *r)
{
	const struct config *c = r->cfg;
	unsigned char addr[16];
	int fam = strchr(r->client, ':') ? AF_INET6 : AF_INET;
	if (!c->n_trusted_proxies || inet_pton(fam, r->client, addr) != 1)
		return 0;
	for (size_t i = 0; i < c->n_trusted_proxies; i++)
		if (config_net_contains(&c->trusted_proxies[i], fam, addr))
			return 1;
	return 0;
}

static int header_value_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 255)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr(".-:[]_", *s)))
			return 0;
	return 1;
}

void authn_base_url(struct req *r, struct buf *out)
{
	const struct config *c = r->cfg;
	const char *host;
	if (c->external_url) {
		buf_adds(out, c->external_url);
		return;
	}
	if (from_trusted_proxy(r)) {
		const char *proto = req_header(r, "X-Forwarded-Proto");
		host = req_header(r, "X-Forwarded-Host");
		if (header_value_ok(host) && proto && (!strcmp(proto, "http") || !strcmp(proto, "https"))) {
			buf_addf(out, "%s://%s", proto, host);
			return;
		}
	}
	/* The address the client used reaches us by definition. */
	host = req_header(r, "Host");
	if (header_value_ok(host)) {
		buf_addf(out, "%s://%s", c->tls_cert ? "https" : "http", host);
		return;
	}
	config_external_url(c, out);
}

void authn_challenge(struct req *r, const char *repo, unsigned need, int insufficient)
{
	struct buf v = BUF_INIT;
	buf_adds(&v, "Bearer realm=\"");
	authn_base_url(r, &v);
	buf_addf(&v, "/auth/token\",service=\"%s\"", r->cfg->token_service);
	if (repo) {
		buf_addf(&v, ",scope=\"repository:%s:", repo);
		actions_format(need, &v);
		buf_addch(&v, '"');
	} else if (r->route && r->route->kind == ROUTE_CATALOG) {
		buf_adds(&v, ",scope=\"registry:catalog:*\"");
	}
	if (insufficient)
		buf_adds(&v, ",error=\"insufficient_scope\"");
	resp_header(r, "WWW-Authenticate", "%s", v.buf);
	buf_release(&v);
}
