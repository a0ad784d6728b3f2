/*
 * authn: who is calling and what they may do.
 *
 * Reads the Authorization header (Bearer token from our token endpoint,
 * or Basic credentials: a password or a personal access token), turns it
 * into a struct ident attached to the request, and answers "which actions
 * may this caller take on repository X". Password checks run on the login
 * pool (never on an HTTP thread), are cached briefly once they succeed, and
 * are refused early when the client address, or that address for that
 * user, failed too often.
 *
 * The ident is owned by the request and freed with it. Thread-safe: the
 * shared state (policy, key, caches, limiters) lives in struct registry.
 */
#ifndef BERTH_AUTHN_H
#define BERTH_AUTHN_H

#include <stdint.h>

#include "jwt.h"
#include "ratelimit.h"
#include "req.h"

enum ident_kind { ID_ANONYMOUS = 0, ID_BASIC, ID_BEARER };

struct registry;

/*
 * One check of Basic-style credentials: a user name with a password or a
 * personal access token. The registry routes (Basic) and the token
 * endpoint both run it, so both answer from the same credential cache and
 * obey the same failed-login limits. Embedded in the caller's request
 * state, zeroed; the caller fills user, secret and len, then calls
 * authn_check_start(), and authn_check_release() with the request.
 */
struct authn_check {
	char *user;     /* claimed user (owned) */
	char *secret;   /* password or token, len bytes, NUL-terminated (owned, wiped) */
	size_t len;
	int rc;         /* outcome: 0, E_UNAUTHORIZED or E_TOOMANYREQUESTS */
	int64_t pat_id; /* personal access token used, 0 for a password */
	char *scopes;   /* that token's scopes (owned); NULL for a password */
	/* a password attempt admitted by the limits and not yet settled */
	struct registry *reg;
	struct ratelimit_ticket by_addr, by_pair;
};

struct ident {
	enum ident_kind kind;
	char *user;            /* NULL for anonymous */
	int64_t pat_id;        /* personal access token used, 0 for none */
	char *scopes;          /* that token's scopes; NULL = the user's full rights */
	struct jwt_claims claims; /* bearer tokens: what the token grants */
	int failed;            /* credentials were presented and refused: E_* */
	struct authn_check check; /* Basic credentials on their way through the check */
};

/*
 * Establishes r->ident from the Authorization header. Returns 0 when done
 * (check r->ident->failed), or ROUTER_ASYNC-style work: sets r->async_work
 * (and r->async_q) and returns 0 with r->async_work non-NULL when the
 * credentials must be checked on a pool; the caller continues after it ran.
 */
int authn_begin(struct req *r);
/* Actions (enum action bits) the caller holds on repo (for a bearer token: what the token grants). */
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
 * needed; insufficient marks a valid token lacking them. On a blob upload
 * that asks to mount from another repository, the scope also names that
 * repository with pull, so a token obtained from the challenge can mount.
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
 * Starts the check of c->user and c->secret. Credentials verified a short
 * while ago (and, for a personal access token, still neither revoked nor
 * expired) are accepted from the credential cache at once. A password
 * is first admitted by the failed-login limits, counted per client address
 * and per client address and user name, so that failures from one
 * address never refuse the same user elsewhere; a refusal sets
 * Retry-After. Personal access tokens (a SHA-256 lookup, no argon2) pass
 * no limit and never queue behind password hashing.
 *
 * Returns 0 when decided at once (see c->rc), or 1 when the check must run
 * on a pool: r->async_work is set to work, r->async_q to the pool (the
 * login pool for a password, the I/O pool for a token), and work must call
 * authn_check_run().
 */
int authn_check_start(struct req *r, struct authn_check *c, void (*work)(struct req *r));
/* Runs the check on the current (pool) thread, settles the limits, sets c->rc, wipes the secret. */
void authn_check_run(struct req *r, struct authn_check *c);
/* Frees c's contents (wiping the secret); gives back an admitted attempt that never ran. */
void authn_check_release(struct authn_check *c);

/* Prefix of personal access token secrets. */
#define PAT_PREFIX "berth_pat_"

#endif
