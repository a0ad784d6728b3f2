/*
 * registry: assembling the shared state of a running registry (the
 * store, policy, signing key, login pool, limiters) and tearing it
 * down.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credcache.h"
#include "err.h"
#include "gcsched.h"
#include "h_mirror.h"
#include "handlers.h"
#include "log.h"
#include "policy.h"
#include "ratelimit.h"
#include "registry.h"
#include "store.h"
#include "xalloc.h"

/* Verified Basic credentials are trusted this long without a new check. */
#define CRED_CACHE_MS (60 * 1000)
#define CRED_CACHE_SLOTS 4096
#define LIMIT_SLOTS 8192
/* Failed logins an address may have in a minute, in multiples of the per-user limit. */
#define ADDR_LIMIT_FACTOR 3
/* Login checks waiting for the pool beyond this are refused (429). */
#define LOGIN_QUEUE_MAX 64
/*
 * Writers blocked in fsync at once: enough that concurrent pushes share
 * journal commits and group-committed database syncs, few enough to keep
 * memory small. Beyond the queue, writes are refused (429) rather than
 * piling up.
 */
#define IO_THREADS 32
#define IO_QUEUE_MAX 4096

static struct snapshot *snapshot_new(struct config *cfg)
{
	struct snapshot *sn = xcalloc(1, sizeof(*sn));
	/* The snapshot takes the config's contents over. */
	sn->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	sn->refs = 1;
	return sn;
}

static void snapshot_free(struct snapshot *sn)
{
	if (sn->policy)
		policy_free(sn->policy);
	config_release(&sn->cfg);
	free(sn);
}

struct snapshot *registry_snapshot_get(struct registry *reg)
{
	struct snapshot *sn;
	pthread_mutex_lock(&reg->snap_lock);
	sn = reg->snap;
	sn->refs++;
	pthread_mutex_unlock(&reg->snap_lock);
	return sn;
}

void registry_snapshot_put(struct registry *reg, struct snapshot *sn)
{
	int last;
	if (!sn)
		return;
	pthread_mutex_lock(&reg->snap_lock);
	last = --sn->refs == 0;
	pthread_mutex_unlock(&reg->snap_lock);
	if (last)
		snapshot_free(sn);
}

/* Fills reg->key from its file (creating it on the default path); key_lock held. */
static int key_load(struct registry *reg)
{
	int rc;
	if (reg->key_dir) {
		if (mkdir(reg->key_dir, 0700) < 0 && errno != EEXIST)
			log_error("cannot create \"%s\": %s", reg->key_dir, strerror(errno));
		rc = jwt_key_load_or_create(reg->key_path, &reg->key);
	} else {
		rc = jwt_key_load(reg->key_path, &reg->key);
	}
	if (rc)
		log_error("cannot load the token signing key \"%s\"", reg->key_path);
	return rc;
}

int registry_key(struct registry *reg, const struct jwt_key **out)
{
	int rc = 0;
	/* After the first success this is one acquire load: key is never written again. */
	if (!atomic_load_explicit(&reg->key_ready, memory_order_acquire)) {
		pthread_mutex_lock(&reg->key_lock);
		if (!atomic_load_explicit(&reg->key_ready, memory_order_relaxed) && !(rc = key_load(reg)))
			atomic_store_explicit(&reg->key_ready, 1, memory_order_release);
		pthread_mutex_unlock(&reg->key_lock);
	}
	*out = rc ? NULL : &reg->key;
	return rc;
}

const struct store_config *registry_store_config(const struct config *c, struct store_config *sc)
{
	const char *keys[3], *vals[3];
	memset(sc, 0, sizeof(*sc));
	sc->root = c->root;
	if (c->database.url) {
		config_pg_params(c, keys, vals);
		sc->db_url = vals[0];
		sc->db_password = vals[1];
	}
	sc->s3 = c->storage_backend == CONFIG_BACKEND_S3;
	sc->s3cfg = (struct store_s3_config){
		.endpoint = c->s3.endpoint, .region = c->s3.region, .bucket = c->s3.bucket, .prefix = c->s3.prefix,
		.path_style = c->s3.path_style, .ca_file = c->s3.ca_file, .access_key = c->s3.access_key.value,
		.secret_key = c->s3.secret_key.value,
	};
	return sc;
}

int registry_open(struct registry *reg, struct config *cfg)
{
	struct store_config sc;
	struct buf p = BUF_INIT;
	struct snapshot *sn;
	const struct config *c;
	int rc;
	memset(reg, 0, sizeof(*reg));
	pthread_mutex_init(&reg->snap_lock, NULL);
	pthread_mutex_init(&reg->key_lock, NULL);
	atomic_init(&reg->key_ready, 0);
	if ((rc = store_open_config(registry_store_config(cfg, &sc), &reg->store)))
		return rc; /* logged */
	sn = reg->snap = snapshot_new(cfg);
	c = &sn->cfg;
	if ((rc = policy_build(c, &sn->policy))) {
		log_error("cannot build the access policy");
		goto out;
	}
	buf_reset(&p);
	config_token_key(c, &p);
	reg->key_path = buf_detach(&p, NULL);
	if (!c->token_key) {
		store_local_path(c->root, STORE_PATH_KEYS, &p);
		reg->key_dir = buf_detach(&p, NULL);
	}
	/* Users log in for tokens, so a bad key must stop the start; an open registry may never need one. */
	if (c->n_users) {
		const struct jwt_key *key;
		rc = registry_key(reg, &key);
	} else if (c->token_key) {
		rc = jwt_key_check(reg->key_path);
		if (rc)
			log_error("cannot load the token signing key \"%s\"", reg->key_path);
	}
	if (rc)
		goto out;
	reg->loginq = workq_new(c->login_concurrency, LOGIN_QUEUE_MAX);
	reg->ioq = workq_new(IO_THREADS, IO_QUEUE_MAX);
	reg->creds = credcache_new(CRED_CACHE_SLOTS, CRED_CACHE_MS);
	/* an address may fail for a few users (people mistype their name), each user only the limit */
	reg->fail_pair = ratelimit_new(c->login_failures_per_minute, 60 * 1000, LIMIT_SLOTS);
	reg->fail_addr = ratelimit_new(c->login_failures_per_minute * ADDR_LIMIT_FACTOR, 60 * 1000, LIMIT_SLOTS);
	/* one client per upstream, for the daemon's life: the list is restart-only */
	if ((rc = mirror_open(c, reg->store, &reg->mirror)))
		goto out;
	/* the collection schedule (not in command-line processes, see gcsched.h) */
	rc = gcsched_start(reg);
out:
	buf_release(&p);
	return rc;
}

/* Settings a running daemon cannot change: a reload keeps the old values. */
static void keep_static(struct config *next, const struct config *cur)
{
	static const struct {
		const char *name;
		size_t off;
	} strs[] = {
		{ "listen", offsetof(struct config, listen) },
		{ "root", offsetof(struct config, root) },
		{ "tls.cert", offsetof(struct config, tls_cert) },
		{ "tls.key", offsetof(struct config, tls_key) },
		{ "tls.priorities", offsetof(struct config, tls_priorities) },
		{ "token.key", offsetof(struct config, token_key) },
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		char **n = (char **)(void *)((char *)next + strs[i].off);
		char *const *o = (char *const *)(const void *)((const char *)cur + strs[i].off);
		if ((*n == NULL) != (*o == NULL) || (*n && strcmp(*n, *o)))
			log_warn("reload: \"%s\" changed; it takes effect only after a restart", strs[i].name);
		free(*n);
		*n = *o ? xstrdup(*o) : NULL;
	}
	if (next->threads != cur->threads || next->max_connections != cur->max_connections ||
	    next->idle_timeout_s != cur->idle_timeout_s || next->login_concurrency != cur->login_concurrency)
		log_warn("reload: thread, connection and login-pool limits take effect only after a restart");
	next->threads = cur->threads;
	next->max_connections = cur->max_connections;
	next->idle_timeout_s = cur->idle_timeout_s;
	next->login_concurrency = cur->login_concurrency;
	struct buf changed = BUF_INIT; /* database and storage backend: one key path per line */
	config_keep_cluster(next, cur, &changed);
	config_keep_upstreams(next, cur, &changed);
	for (char *k = changed.buf, *nl; (nl = strchr(k, '\n')); k = nl + 1)
		log_warn("reload: \"%.*s\" changed; it takes effect only after a restart", (int)(nl - k), k);
	buf_release(&changed);
}

int registry_reload(struct registry *reg)
{
	struct snapshot *cur = registry_snapshot_get(reg), *next;
	struct config cfg;
	struct buf err = BUF_INIT;
	int rc;
	if (!cur->cfg.path) {
		log_info("reload: running on the embedded default, there is no config file to reload");
		rc = 0;
		goto out;
	}
	if ((rc = config_load(&cfg, cur->cfg.path, &err))) {
		log_error("reload refused, the current configuration stays in force: %s", err.buf);
		config_release(&cfg);
		goto out;
	}
	keep_static(&cfg, &cur->cfg);
	next = snapshot_new(&cfg);
	if ((rc = policy_build(&next->cfg, &next->policy))) {
		log_error("reload refused, the current configuration stays in force: cannot build the policy");
		snapshot_free(next);
		goto out;
	}
	log_set_level(next->cfg.log_level);
	log_set_format(next->cfg.log_format);
	pthread_mutex_lock(&reg->snap_lock);
	struct snapshot *old = reg->snap;
	reg->snap = next;
	pthread_mutex_unlock(&reg->snap_lock);
	registry_snapshot_put(reg, old);
	/* Cached logins were checked against the old users. */
	credcache_clear(reg->creds);
	log_info("reload: configuration from \"%s\" in force (%zu users, %zu access rules, %zu immutable-tag rules)",
		 next->cfg.path, next->cfg.n_users, next->cfg.n_rules, next->cfg.n_immutable);
out:
	registry_snapshot_put(reg, cur);
	buf_release(&err);
	return rc;
}

void registry_close(struct registry *reg)
{
	/* a collection in progress stops between batches; it needs the database, so before anything closes */
	gcsched_stop();
	/* Queued jobs resume their connections: drain before the HTTP side stops. */
	workq_free(reg->loginq);
	reg->loginq = NULL;
	workq_free(reg->ioq);
	reg->ioq = NULL;
	/* fills running in the background end (they write through the store) */
	mirror_close(reg->mirror);
}

void registry_release(struct registry *reg)
{
	gcsched_stop();
	workq_free(reg->loginq);
	mirror_free(reg->mirror);
	store_close(reg->store);
	credcache_free(reg->creds);
	ratelimit_free(reg->fail_addr);
	ratelimit_free(reg->fail_pair);
	jwt_key_release(&reg->key);
	free(reg->key_path);
	free(reg->key_dir);
	pthread_mutex_destroy(&reg->key_lock);
	if (reg->snap)
		registry_snapshot_put(reg, reg->snap);
	pthread_mutex_destroy(&reg->snap_lock);
	memset(reg, 0, sizeof(*reg));
}
