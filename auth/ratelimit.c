/* ratelimit: fixed-window attempt counters in a bounded, keyed, 4-way table. */
#include "ratelimit.h"

#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"
#include "xalloc.h"

#define WAYS 4

struct slot {
	uint64_t key; /* 0: empty */
	int64_t window_start;
	unsigned count;
};

struct ratelimit {
	pthread_mutex_t lock;
	struct slot *slots;
	unsigned nbuckets;
	unsigned max;
	int64_t window_ms;
	unsigned char seed[16];
};

struct ratelimit *ratelimit_new(unsigned max, int64_t window_ms, unsigned slots)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	pthread_mutex_init(&rl->lock, NULL);
	rl->nbuckets = slots / WAYS + (slots % WAYS != 0);
	if (!rl->nbuckets)
		rl->nbuckets = 1;
	rl->slots = xcalloc((size_t)rl->nbuckets * WAYS, sizeof(*rl->slots));
	rl->max = max;
	rl->window_ms = window_ms > 0 ? window_ms : 1;
	/* A secret seed keeps attackers from choosing keys that collide. */
	rand_bytes(rl->seed, sizeof(rl->seed));
	return rl;
}

static uint64_t key_hash(const struct ratelimit *rl, const char *key)
{
	unsigned char md[32];
	unsigned int n = 0;
	uint64_t h;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, rl->seed, sizeof(rl->seed)) != 1 ||
	    EVP_DigestUpdate(ctx, key, strlen(key)) != 1 || EVP_DigestFinal_ex(ctx, md, &n) != 1)
		die("hash failed");
	EVP_MD_CTX_free(ctx);
	memcpy(&h, md, sizeof(h));
	return h ? h : 1;
}

static int expired(const struct ratelimit *rl, const struct slot *s, int64_t now)
{
	return now - s->window_start >= rl->window_ms || now < s->window_start;
}

static struct slot *bucket(struct ratelimit *rl, uint64_t h)
{
	/* the low bits pick the bucket; the whole hash identifies the key */
	return &rl->slots[(size_t)(h % rl->nbuckets) * WAYS];
}

/* The slot of h with a current window, claiming a way when h has none. */
static struct slot *claim(struct ratelimit *rl, uint64_t h, int64_t now)
{
	struct slot *b = bucket(rl, h), *victim = NULL;
	for (int i = 0; i < WAYS; i++) {
		if (b[i].key == h) {
			if (expired(rl, &b[i], now)) {
				b[i].window_start = now;
				b[i].count = 0;
			}
			return &b[i];
		}
	}
	for (int i = 0; i < WAYS && !victim; i++)
		if (!b[i].key || expired(rl, &b[i], now))
			victim = &b[i];
	if (!victim) {
		victim = &b[0];
		for (int i = 1; i < WAYS; i++)
			if (b[i].count < victim->count ||
			    (b[i].count == victim->count && b[i].window_start < victim->window_start))
				victim = &b[i];
	}
	victim->key = h;
	victim->window_start = now;
	victim->count = 0;
	return victim;
}

int64_t ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, struct ratelimit_ticket *t)
{
	int64_t wait = 0;
	memset(t, 0, sizeof(*t));
	if (!rl->max || rl->max == UINT_MAX)
		return 0;
	uint64_t h = key_hash(rl, key);
	pthread_mutex_lock(&rl->lock);
	struct slot *s = claim(rl, h, now_ms);
	if (s->count >= rl->max) {
		wait = s->window_start + rl->window_ms - now_ms;
		if (wait < 1)
			wait = 1;
	} else {
		s->count++;
		t->key = h;
		t->window_start = s->window_start;
	}
	pthread_mutex_unlock(&rl->lock);
	return wait;
}

void ratelimit_refund(struct ratelimit *rl, struct ratelimit_ticket *t)
{
	if (!t->key)
		return;
	pthread_mutex_lock(&rl->lock);
	struct slot *b = bucket(rl, t->key);
	for (int i = 0; i < WAYS; i++) {
		if (b[i].key == t->key && b[i].window_start == t->window_start && b[i].count) {
			b[i].count--;
			break;
		}
	}
	pthread_mutex_unlock(&rl->lock);
	memset(t, 0, sizeof(*t));
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->slots);
	free(rl);
}
