/*
 * ratelimit: counts login attempts per key (a client address, or a client
 * address and a user name) in fixed windows, so that a key past its limit
 * is refused before any password hashing runs.
 *
 * An attempt counts from the moment it is admitted (ratelimit_take), so
 * that concurrent attempts cannot overrun the limit while their checks
 * are still queued; an attempt that did not fail is given back
 * (ratelimit_refund). What stays counted is failures, plus attempts still
 * in progress.
 *
 * A fixed-size table: memory stays bounded however many keys attackers
 * invent. Keys are hashed with a secret seed into 4-way buckets; a new key
 * takes an empty or expired way first, else the way with the fewest
 * attempts, so churning through fresh keys cannot make the table forget a
 * key at its limit before others. Eviction only ever forgets attempts.
 * struct ratelimit is owned by its creator; ratelimit_free() frees it.
 * Thread-safe.
 */
#ifndef BERTH_RATELIMIT_H
#define BERTH_RATELIMIT_H

#include <stdint.h>

struct ratelimit;

/* An admitted attempt: what ratelimit_refund() needs to give it back. Plain data. */
struct ratelimit_ticket {
	uint64_t key;         /* hashed key; 0 for no attempt */
	int64_t window_start; /* the window it was counted in */
};

/*
 * Allows max attempts per window_ms per key (0 or UINT_MAX: no limit);
 * slots bounds the keys tracked (rounded up to a multiple of 4).
 */
struct ratelimit *ratelimit_new(unsigned max, int64_t window_ms, unsigned slots);
/*
 * Admits one attempt for key at now_ms: returns 0, counts the attempt and
 * fills *t; or, when key already has max attempts counted in its current
 * window, returns the milliseconds until that window ends (at least 1),
 * counts nothing and clears *t.
 */
int64_t ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, struct ratelimit_ticket *t);
/*
 * Gives back the attempt of t (one that did not fail) and clears *t. Does
 * nothing when t holds no attempt, its window has passed or its key was
 * evicted meanwhile.
 */
void ratelimit_refund(struct ratelimit *rl, struct ratelimit_ticket *t);
void ratelimit_free(struct ratelimit *rl);

#endif
