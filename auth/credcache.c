/* credcache: short-lived cache of verified credentials, keyed by HMAC. */
#include "credcache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"
#include "xalloc.h"

struct entry {
	unsigned char mac[32];
	int64_t expires;
	int64_t pat_id;
	char *scopes;
	int used;
};

struct credcache {
	pthread_mutex_t lock;
	struct entry *e;
	unsigned n;
	int64_t ttl;
	unsigned char key[32];
};

struct credcache *credcache_new(unsigned slots, int64_t ttl_ms)
{
	struct credcache *cc = xcalloc(1, sizeof(*cc));
	pthread_mutex_init(&cc->lock, NULL);
	cc->n = slots ? slots : 1;
	cc->e = xcalloc(cc->n, sizeof(*cc->e));
	cc->ttl = ttl_ms;
	rand_bytes(cc->key, sizeof(cc->key));
	return cc;
}

/* user and bind hold no NUL, so the NUL separators keep the three fields apart. */
static void mac_of(const struct credcache *cc, const char *user, const char *bind, const char *secret, size_t len,
		   unsigned char out[32])
{
	size_t ulen = strlen(user), blen = strlen(bind), mlen = ulen + 1 + blen + 1 + len;
	unsigned char *msg = xmalloc(mlen);
	memcpy(msg, user, ulen);
	msg[ulen] = 0;
	memcpy(msg + ulen + 1, bind, blen);
	msg[ulen + 1 + blen] = 0;
	memcpy(msg + ulen + 1 + blen + 1, secret, len);
	size_t outlen = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, cc->key, sizeof(cc->key), msg, mlen, out, 32, &outlen) ||
	    outlen != 32)
		die("hmac failed");
	OPENSSL_cleanse(msg, mlen);
	free(msg);
}

static struct entry *slot_of(struct credcache *cc, const unsigned char mac[32])
{
	uint64_t h;
	memcpy(&h, mac, sizeof(h));
	return &cc->e[h % cc->n];
}

int credcache_get(struct credcache *cc, const char *user, const char *bind, const char *secret, size_t len,
		  int64_t now_ms, int64_t *pat_id, char **scopes)
{
	unsigned char mac[32];
	int hit = 0;
	*pat_id = 0;
	*scopes = NULL;
	mac_of(cc, user, bind, secret, len, mac);
	pthread_mutex_lock(&cc->lock);
	struct entry *e = slot_of(cc, mac);
	/* an entry stamped in the future (the wall clock stepped back) is not trusted either */
	if (e->used && e->expires > now_ms && e->expires - cc->ttl <= now_ms &&
	    !CRYPTO_memcmp(e->mac, mac, sizeof(mac))) {
		hit = 1;
		*pat_id = e->pat_id;
		*scopes = e->scopes ? xstrdup(e->scopes) : NULL;
	}
	pthread_mutex_unlock(&cc->lock);
	OPENSSL_cleanse(mac, sizeof(mac));
	return hit;
}

void credcache_put(struct credcache *cc, const char *user, const char *bind, const char *secret, size_t len,
		   int64_t now_ms, int64_t pat_id, const char *scopes)
{
	unsigned char mac[32];
	mac_of(cc, user, bind, secret, len, mac);
	pthread_mutex_lock(&cc->lock);
	struct entry *e = slot_of(cc, mac);
	free(e->scopes);
	memcpy(e->mac, mac, sizeof(mac));
	e->expires = now_ms + cc->ttl;
	e->pat_id = pat_id;
	e->scopes = scopes ? xstrdup(scopes) : NULL;
	e->used = 1;
	pthread_mutex_unlock(&cc->lock);
	OPENSSL_cleanse(mac, sizeof(mac));
}

void credcache_clear(struct credcache *cc)
{
	pthread_mutex_lock(&cc->lock);
	for (unsigned i = 0; i < cc->n; i++) {
		free(cc->e[i].scopes);
		memset(&cc->e[i], 0, sizeof(cc->e[i]));
	}
	pthread_mutex_unlock(&cc->lock);
}

void credcache_free(struct credcache *cc)
{
	if (!cc)
		return;
	credcache_clear(cc);
	pthread_mutex_destroy(&cc->lock);
	free(cc->e);
	free(cc);
}
