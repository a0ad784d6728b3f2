/* ratelimit: fixed-window failure counters in a bounded, keyed table. */
#include "ratelimit.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"
#include "xalloc.h"

struct slot {
	uint64_t key;
	int64_t window_start;
	unsigned count;
};

struct ratelimit {
	pthread_mutex_t lock;
	struct slot *slots;
	unsigned nslots;
	unsigned max;
	int64_t window_ms;
	unsigned char seed[16];
};

struct ratelimit *ratelimit_new(unsigned max_failures, int64_t window_ms, unsigned slots)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	pthread_mutex_init(&rl->lock, NULL);
	rl->nslots = slots ? slots : 1;
	rl->slots = xcalloc(rl->nslots, sizeof(*rl->slots));
	rl->max = max_failures;
	rl->window_ms = window_ms;
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

/* Slot for h: its own when present, else the given bucket (evicting). */
static struct slot *find(struct ratelimit *rl, uint64_t h, int64_t now, int create)
{
	struct slot *s = &rl->slots[h % rl->nslots];
	if (s->key == h) {
		if (now - s->window_start >= rl->window_ms) {
			s->window_start = now;
			s->count = 0;
		}
		return s;
	}
	if (!create)
		return NULL;
	s->key = h;
	s->window_start = now;
	s->count = 0;
	return s;
}

int ratelimit_blocked(struct ratelimit *rl, const char *key, int64_t now_ms)
{
	uint64_t h = key_hash(rl, key);
	int blocked;
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, h, now_ms, 0);
	blocked = s && s->count >= rl->max;
	pthread_mutex_unlock(&rl->lock);
	return blocked;
}

void ratelimit_fail(struct ratelimit *rl, const char *key, int64_t now_ms)
{
	uint64_t h = key_hash(rl, key);
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, h, now_ms, 1);
	if (s->count < rl->max)
		s->count++;
	pthread_mutex_unlock(&rl->lock);
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->slots);
	free(rl);
}
