/*
 * credcache: remembers, for a short time, credentials that already passed
 * a password or access-token check, so Basic authentication on every
 * registry request does not run argon2id every time.
 *
 * Entries are keyed by HMAC-SHA-256(process secret, user NUL bind NUL
 * secret): the cache never holds a password, and a lookup compares MACs in
 * constant time. bind is what the credential was checked against (for a
 * password, the user's password hash in the policy of the request): once
 * that changes, say by a reload with a new password, the old entry can no
 * longer be found, even when a check that started before the reload stores
 * it after the reload cleared the cache. A fixed-size table, bounded
 * memory. Strings returned are copies owned by the caller. Thread-safe.
 */
#ifndef BERTH_CREDCACHE_H
#define BERTH_CREDCACHE_H

#include <stddef.h>
#include <stdint.h>

struct credcache;

struct credcache *credcache_new(unsigned slots, int64_t ttl_ms);
void credcache_free(struct credcache *cc);
/*
 * Returns 1 on a fresh hit, with the personal access token id (0 for a
 * password) and a copy of its scopes (NULL for a password) filled in;
 * 0 on a miss.
 */
int credcache_get(struct credcache *cc, const char *user, const char *bind, const char *secret, size_t len,
		  int64_t now_ms, int64_t *pat_id, char **scopes);
void credcache_put(struct credcache *cc, const char *user, const char *bind, const char *secret, size_t len,
		   int64_t now_ms, int64_t pat_id, const char *scopes);
/* Forgets everything (after a policy reload or a token revocation). */
void credcache_clear(struct credcache *cc);

#endif
