/*
 * handlers: the registry's request handlers, one file per resource
 * (h_base.c, h_blobs.c, h_uploads.c, h_manifests.c, h_lists.c), and the
 * registry context they share. The router calls them after matching and
 * validation; they return 0 or an E_* code and never choose error statuses.
 */
#ifndef BERTH_HANDLERS_H
#define BERTH_HANDLERS_H

#include <pthread.h>

#include "blobstore.h"
#include "config.h"
#include "jwt.h"
#include "req.h"
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
	struct blobstore bs;
	pthread_mutex_t snap_lock;
	struct snapshot *snap;     /* current settings and policy */
	struct workq *loginq; /* password checks, off the HTTP threads */
	struct jwt_key key;        /* token signing key */
	struct credcache *creds;   /* recently verified Basic credentials */
	struct ratelimit *fail_ip; /* failed logins per client address */
	struct ratelimit *fail_user; /* failed logins per user name */
};

int h_base_get(struct req *r);
int h_health_get(struct req *r);
int h_ready_get(struct req *r);
int h_metrics_get(struct req *r);

int h_blob_get(struct req *r);
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

#endif
