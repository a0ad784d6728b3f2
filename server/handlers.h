/*
 * handlers: the registry's request handlers, one file per resource
 * (h_base.c, h_blobs.c, h_uploads.c, h_manifests.c, h_lists.c), and the
 * registry context they share. The router calls them after matching and
 * validation; they return 0 or an E_* code and never choose error statuses.
 */
#ifndef BERTH_HANDLERS_H
#define BERTH_HANDLERS_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "jwt.h"
#include "req.h"
#include "store.h"
#include "workq.h"

/* Everything a handler may use; owned by main, lives as long as the daemon. */
/*
 * What a reload replaces as a whole: the settings and the policy built from
 * them. Reference-counted: each request holds the snapshot it started with.
 */
struct snapshot {
	struct config cfg;
	struct policy *policy;
	int refs; /* guarded by registry.snap_lock */
};

struct registry {
	struct store *store;       /* every byte and record: blobs, uploads, manifests, tags, tokens, audit */
	pthread_mutex_t snap_lock;
	struct snapshot *snap;     /* current settings and policy */
	struct workq *loginq; /* password checks, off the HTTP threads */
	struct workq *ioq;    /* durable writes (fsync), off the HTTP threads */
	/* The token signing key: read it through registry_key() only, it may not be loaded yet. */
	pthread_mutex_t key_lock;  /* serialises the loading */
	atomic_int key_ready;      /* set once key is filled; key never changes after */
	struct jwt_key key;
	char *key_path;            /* the key file */
	char *key_dir;             /* its directory, created on demand; NULL for a configured file */
	struct credcache *creds;     /* recently verified Basic credentials */
	struct ratelimit *fail_addr; /* failed password logins per client address */
	struct ratelimit *fail_pair; /* failed password logins per client address and user name */
	struct mirror *mirror;       /* the pull-through cache (h_mirror.h); NULL without upstreams */
};

int h_base_get(struct req *r);
int h_health_get(struct req *r);
int h_ready_get(struct req *r);
int h_metrics_get(struct req *r);
#ifdef BERTH_TEST_HOOKS
/* POST /_berth/test/clock?advance=SECONDS: moves the daemon's clock (test builds only). */
int h_test_clock(struct req *r);
/* POST /_berth/test/fault?at=N[&persist=1][&errno=ENOSPC]: reports, then arms fault injection. */
int h_test_fault(struct req *r);
#endif

int h_blob_get(struct req *r);
/* The blob or manifest as the store holds it, with no upstream involved (the cache's local answers). */
int h_blob_serve(struct req *r);
int h_manifest_serve(struct req *r);
int h_blob_delete(struct req *r);

int h_upload_start(struct req *r);
int h_upload_start_finish(struct req *r);
int h_upload_patch(struct req *r);
int h_upload_patch_finish(struct req *r);
int h_upload_put(struct req *r);
int h_upload_put_finish(struct req *r);
int h_upload_status(struct req *r);
int h_upload_cancel(struct req *r);

int h_manifest_get(struct req *r);
int h_manifest_put(struct req *r);
int h_manifest_put_finish(struct req *r);
int h_manifest_delete(struct req *r);

int h_token_get(struct req *r);
int h_token_post(struct req *r);
int h_token_post_finish(struct req *r);

int h_tags_list(struct req *r);
int h_catalog(struct req *r);
int h_referrers(struct req *r);
/*
 * The referrers index of what the store holds, after first (descriptors
 * from elsewhere, the pull-through cache's upstream: JSON objects separated
 * by commas; NULL or "" for none); a stored referrer listed(ctx, digest)
 * says is in first already is left out (listed may be NULL).
 */
int h_referrers_serve(struct req *r, const char *first, int (*listed)(void *ctx, const struct digest *d), void *ctx);

/* The berth extension (h_ext.c): tag history and rollback over HTTP, JSON in and out. */
int h_tag_history(struct req *r);
int h_tag_rollback(struct req *r);
int h_tag_rollback_finish(struct req *r);

/*
 * Immutable-tag guard for struct store_actor (see store.h): asks cfg's
 * immutable_tags rules about repo:tag; when one matches, returns its
 * index and appends to detail (when not NULL), once:
 *   tag "v1" matches immutable rule 0 (prod/app:v*)
 */
struct h_tag_guard {
	const struct config *cfg;
	const char *repo;
	struct buf *detail;
};
int h_tag_guard(void *ctx, const char *tag);

/*
 * Everything a tag-moving write needs about who makes it: the store_actor
 * (name, how, client), its guard and the report of what changed. It points
 * into itself: initialize it in place, never copy it.
 */
struct h_actor {
	struct store_actor actor;
	struct h_tag_guard guard;
	struct store_tag_change change;
	struct buf name;
};
/*
 * For a change to repo under cfg's rules, made by r's caller (r NULL: the
 * command line, actor "cli") with how; refusal details go to detail (may
 * be NULL). Release with h_actor_release().
 */
void h_actor_init(struct h_actor *a, struct req *r, const struct config *cfg, const char *repo, const char *how,
		  struct buf *detail);
void h_actor_release(struct h_actor *a);

/*
 * The JSON documents of the extension, shared with `berth tag --json`:
 * {"name","tag","history":[{"id","time","old","new","actor","how","client"}]}
 * newest first (E_NAME_UNKNOWN when repo has no history and does not exist), and
 * {"name","tag","from","to","from_size","to_size","dry_run","moved","added","removed"}
 * where added and removed list the config, layers and child manifests that
 * differ between the two manifests ({"kind","digest","size"}).
 */
int h_history_json(struct store *st, const char *repo, const char *tag, struct buf *out);
int h_rollback_json(struct store *st, const char *repo, const char *tag, const struct store_rollback *rb,
		    int dry_run, struct buf *out);

#endif
