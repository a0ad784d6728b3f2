/*
 * authn: who is calling and what they may do.
 *
 * Reads the Authorization header (Bearer token from our token endpoint,
 * or Basic credentials: a password or a personal access token), turns it
 * into a struct ident attached to the request, and answers "which actions
 * may this caller take on repository X". Password checks run on the login
 * pool (never on an HTTP thread), are cached briefly once they succeed, and
 * are refused early when the client or the user failed too often.
 *
 * The ident is owned by the request and freed with it. Thread-safe: the
 * shared state (policy, key, caches, limiters) lives in struct registry.
 */
#ifndef BERTH_AUTHN_H
#define BERTH_AUTHN_H

#include <stdint.h>

#include "jwt.h"
#include "req.h"

enum ident_kind { ID_ANONYMOUS = 0, ID_BASIC, ID_BEARER };

struct ident {
	enum ident_kind kind;
	char *user;            /* NULL for anonymous */
	int64_t pat_id;        /* personal access token used, 0 for none */
	char *scopes;          /* that token's scopes; NULL = the user's full rights */
	struct jwt_claims claims; /* bearer tokens: what the token grants */
	int failed;            /* credentials were presented and refused: E_* */
	/* Basic credentials waiting for the login pool; wiped after use. */
	char *pending_user;
	char *pending_secret;
	size_t pending_len;
};

/*
 * Establishes r->ident from the Authorization header. Returns 0 when done
 * (check r->ident->failed), or ROUTER_ASYNC-style work: sets r->async_work
 * and returns 0 with r->async_work non-NULL when a password must be checked
 * on the login pool; the caller continues after it ran.
 */
int authn_begin(struct req *r);
/* Actions (ACT_*) the caller holds on repo (for a bearer token: what the token grants). */
unsigned authn_rights(struct req *r, const char *repo);
/*
 * Actions the caller's identity holds on repo whatever the token grants:
 * for listings like the catalog, whose token scope names no repository.
 */
unsigned authn_identity_rights(struct req *r, const char *repo);
/* Non-zero when the registry answers anonymous callers on /v2/ (no users configured). */
int authn_open_registry(const struct req *r);
/*
 * Adds the WWW-Authenticate challenge for repo (NULL: none) and the actions
 * needed; insufficient marks a valid token lacking them.
 */
void authn_challenge(struct req *r, const char *repo, unsigned need, int insufficient);
/* The base URL clients use to reach us (for the realm), into out. */
void authn_base_url(struct req *r, struct buf *out);
void authn_ident_free(struct ident *id);
/*
 * Decodes the base64 of a Basic Authorization header into user and secret
 * (secret_len bytes, NUL-terminated). Returns 0 or -1. The caller wipes
 * (OPENSSL_cleanse) and frees both.
 */
int authn_basic_decode(const char *b64, char **user, char **secret, size_t *secret_len);

/*
 * Verifies Basic-style credentials on the current (login pool) thread:
 * a personal access token when secret has the token prefix, else a
 * password. Applies and updates the failed-login limits. Fills *pat_id and
 * *scopes (caller frees) for a token. Returns 0, E_UNAUTHORIZED or
 * E_TOOMANYREQUESTS.
 */
int authn_verify_secret(struct req *r, const char *user, const char *secret, size_t len,
			int64_t *pat_id, char **scopes);

/* Prefix of personal access token secrets. */
#define PAT_PREFIX "berth_pat_"

#endif
