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
#include "store.h"
#include "metrics.h"
#include "names.h"
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

void authn_check_release(struct authn_check *c)
{
	if (c->reg) {
		ratelimit_refund(c->reg->fail_addr, &c->by_addr);
		ratelimit_refund(c->reg->fail_pair, &c->by_pair);
	}
	free(c->user);
	if (c->secret) {
		OPENSSL_cleanse(c->secret, c->len);
		free(c->secret);
	}
	free(c->scopes);
	memset(c, 0, sizeof(*c));
}

void authn_ident_free(struct ident *id)
{
	if (!id)
		return;
	free(id->user);
	free(id->scopes);
	jwt_claims_release(&id->claims);
	authn_check_release(&id->check);
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

static int is_pat(const char *secret, size_t len)
{
	return len > strlen(PAT_PREFIX) && !memcmp(secret, PAT_PREFIX, strlen(PAT_PREFIX));
}

/*
 * What a cached credential is bound to: for a password, the user's hash in
 * the request's policy (a new password makes old entries unreachable);
 * NULL when the user has no password, so nothing is cached.
 */
static const char *cache_bind(struct req *r, const struct authn_check *c)
{
	return is_pat(c->secret, c->len) ? "pat" : policy_user_hash(r->policy, c->user);
}

/*
 * The client address the limits count by: an IPv6 address by its /64,
 * the block one subscriber gets (its other addresses are no other client).
 */
static void addr_key(const char *client, struct buf *out)
{
	struct in6_addr a;
	if (strchr(client, ':') && inet_pton(AF_INET6, client, &a) == 1 && !IN6_IS_ADDR_V4MAPPED(&a)) {
		char text[INET6_ADDRSTRLEN];
		memset(a.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a, text, sizeof(text));
		buf_addf(out, "%s/64", text);
		return;
	}
	buf_adds(out, client);
}

/*
 * Admits a password attempt by the limits per address and per address and
 * user. Returns 0, or E_TOOMANYREQUESTS with Retry-After set.
 */
static int admit(struct req *r, struct authn_check *c)
{
	struct registry *reg = r->reg;
	struct buf addr = BUF_INIT, pair = BUF_INIT;
	int64_t now = now_ms(), wait;
	addr_key(r->client, &addr);
	/* an address holds no space, so the first one ends it */
	buf_addf(&pair, "%s %s", addr.buf, c->user);
	c->reg = reg;
	wait = ratelimit_take(reg->fail_addr, addr.buf, now, &c->by_addr);
	if (!wait && (wait = ratelimit_take(reg->fail_pair, pair.buf, now, &c->by_pair)))
		ratelimit_refund(reg->fail_addr, &c->by_addr);
	if (wait)
		resp_header(r, "Retry-After", "%lld", (long long)((wait + 999) / 1000));
	buf_release(&addr);
	buf_release(&pair);
	return wait ? E_TOOMANYREQUESTS : 0;
}

int authn_check_start(struct req *r, struct authn_check *c, void (*work)(struct req *r))
{
	const char *bind = cache_bind(r, c);
	int64_t now = now_ms();
	if (bind && credcache_get(r->reg->creds, c->user, bind, c->secret, c->len, now, &c->pat_id, &c->scopes)) {
		/* a token is asked about on every use: revoked means refused at once */
		if (!c->pat_id || (policy_user_exists(r->policy, c->user) && !store_pat_check(r->reg->store, c->pat_id, now))) {
			c->rc = 0;
			OPENSSL_cleanse(c->secret, c->len);
			return 0;
		}
		free(c->scopes);
		c->scopes = NULL;
		c->pat_id = 0;
	}
	if (is_pat(c->secret, c->len)) {
		r->async_q = r->reg->ioq;
	} else {
		if ((c->rc = admit(r, c)))
			return 0;
		r->async_q = NULL;
	}
	r->async_work = work;
	return 1;
}

/* The check itself: 0, or E_UNAUTHORIZED (logged, counted and audited). */
static int verify(struct req *r, const struct authn_check *c, int64_t *pat_id, char **scopes)
{
	int64_t now = now_ms();
	int token = is_pat(c->secret, c->len);
	int rc;
	*pat_id = 0;
	*scopes = NULL;
	if (token) {
		unsigned char hash[32];
		struct store_pat pat = { 0 };
		unsigned int hl = 0;
		if (!EVP_Digest(c->secret, c->len, hash, &hl, EVP_sha256(), NULL))
			die("hash failed");
		rc = store_pat_lookup(r->reg->store, hash, now, &pat);
		/* A token works only for its owner, and only while the owner exists. */
		if (!rc && (strcmp(pat.owner, c->user) || !policy_user_exists(r->policy, c->user)))
			rc = E_UNAUTHORIZED;
		if (!rc) {
			*pat_id = pat.id;
			*scopes = xstrdup(pat.scopes);
			store_pat_touch(r->reg->store, pat.id, now);
		} else {
			rc = E_UNAUTHORIZED;
		}
		store_pat_release(&pat);
	} else {
		rc = policy_check_password(r->policy, c->user, c->secret, c->len);
	}
	if (rc == E_UNAUTHORIZED) {
		metrics_login_failed();
		/* A name that is no user may be a password typed in the wrong field: never log it. */
		if (policy_user_exists(r->policy, c->user))
			log_info("failed login for user \"%s\" from %s", c->user, r->client);
		else
			log_info("failed login for an unknown user from %s", r->client);
	}
	/* one event per credential check; refusals by the limits and cache hits never get here */
	audit_login(r, c->user, token, *pat_id, rc);
	return rc;
}

void authn_check_run(struct req *r, struct authn_check *c)
{
	c->rc = verify(r, c, &c->pat_id, &c->scopes);
	if (!c->rc) {
		const char *bind = cache_bind(r, c);
		if (bind)
			credcache_put(r->reg->creds, c->user, bind, c->secret, c->len, now_ms(), c->pat_id, c->scopes);
		if (c->reg) {
			/* only failures stay counted */
			ratelimit_refund(c->reg->fail_addr, &c->by_addr);
			ratelimit_refund(c->reg->fail_pair, &c->by_pair);
		}
	} else {
		memset(&c->by_addr, 0, sizeof(c->by_addr));
		memset(&c->by_pair, 0, sizeof(c->by_pair));
	}
	OPENSSL_cleanse(c->secret, c->len);
}

/* Pool step for Basic credentials on a registry request. */
static void basic_work(struct req *r)
{
	struct ident *id = r->ident;
	authn_check_run(r, &id->check);
	if (id->check.rc) {
		id->failed = id->check.rc;
		return;
	}
	id->kind = ID_BASIC;
	id->user = xstrdup(id->check.user);
	id->pat_id = id->check.pat_id;
	id->scopes = id->check.scopes;
	id->check.scopes = NULL;
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
	if (id->claims.pat_id && store_pat_check(r->reg->store, id->claims.pat_id, now_ms())) {
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
		struct authn_check *c = &id->check;
		if (authn_basic_decode(h + 6, &c->user, &c->secret, &c->len)) {
			id->failed = E_UNAUTHORIZED;
			return 0;
		}
		if (authn_check_start(r, c, basic_work))
			return 0;
		if (c->rc) {
			id->failed = c->rc;
			return 0;
		}
		id->kind = ID_BASIC;
		id->user = xstrdup(c->user);
		id->pat_id = c->pat_id;
		id->scopes = c->scopes;
		c->scopes = NULL;
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
		return acts & ACTION_ALL;
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
		if (!id->scopes && store_pat_scopes(r->reg->store, id->pat_id, &id->scopes))
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

/*
 * The repository a blob upload asks to mount from (POST ...?mount=D&from=R),
 * when it is a valid name other than repo; NULL otherwise. An invalid name
 * is never echoed into a header.
 */
static const char *mount_source(struct req *r, const char *repo)
{
	const char *from;
	if (!r->route || r->route->kind != ROUTE_UPLOAD_START || r->method != M_POST || !req_arg(r, "mount"))
		return NULL;
	from = req_arg(r, "from");
	if (!from || name_check(from, strlen(from)) || !strcmp(from, repo))
		return NULL;
	return from;
}

void authn_challenge(struct req *r, const char *repo, unsigned need, int insufficient)
{
	struct buf v = BUF_INIT;
	buf_adds(&v, "Bearer realm=\"");
	authn_base_url(r, &v);
	buf_addf(&v, "/auth/token\",service=\"%s\"", r->cfg->token_service);
	if (repo) {
		const char *from = mount_source(r, repo);
		buf_addf(&v, ",scope=\"repository:%s:", repo);
		actions_format(need, &v);
		if (from)
			buf_addf(&v, " repository:%s:pull", from);
		buf_addch(&v, '"');
	} else if (r->route && r->route->kind == ROUTE_CATALOG) {
		buf_adds(&v, ",scope=\"registry:catalog:*\"");
	}
	if (insufficient)
		buf_adds(&v, ",error=\"insufficient_scope\"");
	resp_header(r, "WWW-Authenticate", "%s", v.buf);
	buf_release(&v);
}
