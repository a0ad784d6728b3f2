/*
 * ratelimit: counts failed logins per key (a client address or a user
 * name) in fixed windows, so repeated failures are refused before any
 * password hashing runs.
 *
 * A fixed-size table: memory stays bounded however many keys attackers
 * invent (a new key may evict an old one, which only ever forgets
 * failures). struct ratelimit is owned by its creator; ratelimit_free()
 * frees it. Thread-safe.
 */
#ifndef BERTH_RATELIMIT_H
#define BERTH_RATELIMIT_H

#include <stdint.h>

struct ratelimit;

/* Allows max_failures per window_ms per key; slots bounds the keys tracked. */
struct ratelimit *ratelimit_new(unsigned max_failures, int64_t window_ms, unsigned slots);
/* Non-zero when key already had max_failures failures in the current window. */
int ratelimit_blocked(struct ratelimit *rl, const char *key, int64_t now_ms);
void ratelimit_fail(struct ratelimit *rl, const char *key, int64_t now_ms);
void ratelimit_free(struct ratelimit *rl);

#endif
