/*
 * h_mirror_internal: what the files of the pull-through cache share (see
 * h_mirror.h): the per-upstream state, the in-flight table of fills and
 * the small bounded maps (tag freshness, blob sizes learnt from manifests,
 * the upstreams' referrers lists).
 *
 * A fill is one upstream fetch shared by every request that needs it: the
 * first request starts it on a pool of the mirror (it keeps running when
 * that request's client goes away) and later ones join it. It is
 * reference-counted: the table holds one reference while it runs, each
 * joined request one more (fill_put() drops it).
 */
#ifndef BERTH_H_MIRROR_INTERNAL_H
#define BERTH_H_MIRROR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "h_mirror.h"
#include "upstream.h"
#include "workq.h"

struct mirror_stats {
	atomic_ullong hits, misses, bytes, errors, stale;
};

/* One configured upstream; copied from the config (a reload keeps the list, see config_keep_upstreams()). */
struct mirror_up {
	char *name, *prefix, *host;
	int is_default, allow_push;
	unsigned freshness_s;
	struct upstream *client;
	struct mirror_stats stats;
	atomic_llong last_warn_ms; /* stale serves warn once per freshness window */
};

/*
 * A bounded map of string to int64 and, optionally, a text (cleared whole
 * when it holds max entries or max_bytes of text: it only saves upstream
 * calls). Not locked: the caller holds m->lock.
 */
struct mirror_map {
	struct mirror_map_entry **slots;
	size_t nslots, count, max;
	size_t bytes, max_bytes; /* text held; max_bytes 0: no bound */
};

enum fill_kind { FILL_BLOB, FILL_MANIFEST, FILL_REFERRERS };
enum fill_state { FILL_RUNNING, FILL_READY, FILL_DONE, FILL_FAILED };

/* A reader parked on a blob fill (h_mirror_blob.c), woken once when bytes arrive or the fill ends. */
struct fill_waiter {
	struct store_waiter w;
	int until_done; /* behind the window: wake only at the end */
	struct fill_waiter *next;
};

struct fill {
	struct mirror *m;
	struct mirror_up *up;
	enum fill_kind kind;
	char *key, *repo, *ref; /* ref: a tag or a digest string */
	char *artifact_type;    /* referrers: the filter, "" for none */
	struct digest digest;   /* blob: asked for; manifest: once READY; referrers: the subject */
	int refs;               /* guarded by m->lock */
	struct fill *next;      /* in m->fills while running */
	/* guarded by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum fill_state state;
	int rc;                 /* FILL_FAILED: the E_* */
	struct upstream_error ue;
	struct buf detail;      /* FILL_FAILED: what to tell the client */
	/* blob: the last bytes received, in a ring, for readers streaming along */
	int64_t size, got;
	unsigned char *ring;
	size_t cap;
	struct fill_waiter *parked;
	/* manifest: READY and after; referrers: DONE, the descriptors */
	struct buf body;
	char media_type[128];
	int64_t asked_ms;       /* manifest: when the upstream was asked (wall ms), READY and after */
};

struct mirror {
	struct store *st;
	struct mirror_up *ups;
	size_t n;
	pthread_mutex_t lock; /* fills, fresh, sizes, referrers */
	struct fill *fills;
	struct mirror_map fresh; /* "repo:tag" -> wall ms of the last check upstream */
	struct mirror_map sizes; /* blob digest -> size, from manifests fetched */
	struct mirror_map referrers; /* "repo@subject\nartifactType" -> wall ms and the upstream's list */
	struct workq *blobq;     /* blob fills and referrers lists: never wait on anything */
	struct workq *manq;      /* manifest fills: wait on blob fills */
	struct workq *waitq;     /* requests waiting on fills or a HEAD upstream */
};

/* The upstream serving repo (its prefix), or NULL. */
struct mirror_up *mirror_up_for(struct mirror *m, const char *repo);

void mirror_map_set(struct mirror_map *mp, const char *key, int64_t v);
/* With a text (len bytes, copied); an entry larger than max_bytes is not kept. */
void mirror_map_set_text(struct mirror_map *mp, const char *key, int64_t v, const char *text, size_t len);
/* 1 and *v when key is there; its text (when text is not NULL) appended to text. */
int mirror_map_get(const struct mirror_map *mp, const char *key, int64_t *v);
int mirror_map_get_text(const struct mirror_map *mp, const char *key, int64_t *v, struct buf *text);
void mirror_map_release(struct mirror_map *mp);

/* Marks key ("repo:tag") checked upstream at wall time at_ms (clock_wall_ms(): when the upstream was asked). */
void mirror_mark_fresh(struct mirror *m, const char *key, int64_t at_ms);
/* 1 when key was checked upstream less than freshness_s ago. */
int mirror_is_fresh(struct mirror *m, const char *key, unsigned freshness_s);
/* 1 when a check at wall time at_ms is less than freshness_s old. */
int mirror_fresh_since(int64_t at_ms, unsigned freshness_s);
/* A cached copy of what (e.g. "repo:tag") served because the upstream failed: counted, logged once per window. */
void mirror_stale_serve(struct mirror_up *up, const char *what, const struct buf *why);

/*
 * The in-flight table. fill_new() makes an unlisted fill (one reference,
 * the caller's); fill_start() lists it and submits job(f) to q, or, when a
 * fill of the same key runs already, drops f and returns that one,
 * referenced. The job owns one reference and ends with fill_end() then
 * fill_put(). NULL when q refused the job (the fill ended FILL_FAILED
 * with E_TOO_MANY, unlisted).
 */
struct fill *fill_new(struct mirror *m, struct mirror_up *up, enum fill_kind kind, const char *key, const char *repo,
		      const char *ref);
struct fill *fill_start(struct mirror *m, struct fill *f, struct workq *q, workq_fn job);
/* Sets f's final state, wakes everything waiting on it and takes it off the table. */
void fill_end(struct fill *f, enum fill_state st, int rc);

/*
 * Joins or starts the fill of blob d of repo from up (size: known from a
 * manifest, else -1). Returns it referenced, or NULL when the pool refused
 * it (E_TOO_MANY: too many fills at once).
 */
struct fill *fill_blob(struct mirror *m, struct mirror_up *up, const char *repo, const struct digest *d,
		       int64_t size);
/* A manifest fill of repo whose bytes (digest d) are in and being stored, referenced; else NULL. */
struct fill *fill_manifest_pending(struct mirror *m, const char *repo, const struct digest *d);
/* Joins or starts the fill of manifest ref (tag or digest string) of repo; NULL as above. */
struct fill *fill_manifest(struct mirror *m, struct mirror_up *up, const char *repo, const char *ref);
/* Joins or starts the fetch of the referrers list of subject d in repo (artifact_type: "" for all); NULL as above. */
struct fill *fill_referrers(struct mirror *m, struct mirror_up *up, const char *repo, const struct digest *d,
			    const char *artifact_type);
/* How long fill_wait() waits: until a blob fill has bytes, a manifest fill its bytes, or the end. */
enum fill_until { FILL_UNTIL_BYTES, FILL_UNTIL_READY, FILL_UNTIL_END };
/* Waits until f is as far as until says (or ended); returns its state. */
enum fill_state fill_wait(struct fill *f, enum fill_until until);
void fill_put(struct fill *f);
/* Takes the parked readers of f (lock held), to wake them. */
void fill_wake_all(struct fill *f);

/*
 * Hands r to the mirror's wait pool: work runs there (it may block on the
 * upstream or a fill), then back on an HTTP thread; state is r's until
 * cleanup frees it with the request. Returns 0.
 */
int mirror_wait(struct req *r, void *state, void (*cleanup)(struct req *), void (*work)(struct req *),
		int (*then)(struct req *));
/* The E_* and client message for an upstream failure (also counted and logged). */
int mirror_upstream_fail(struct mirror_up *up, int rc, const struct upstream_error *ue, struct buf *detail);
/* Records one fetch in the audit log (actor "mirror"). */
void mirror_audit(struct mirror *m, struct mirror_up *up, const char *repo, const char *what, const char *ref,
		  const struct digest *d, int64_t bytes);

/* The size of blob d learnt from a manifest, or -1. */
int64_t mirror_size_hint(struct mirror *m, const struct digest *d);
/* Learns the sizes of what manifest body references (config, layers, children). */
void mirror_learn_sizes(struct mirror *m, const struct buf *body);
/* The config and layers of an image manifest body (not an index), for fill_blob(). */
struct mirror_blob_ref {
	struct digest d;
	int64_t size;
};
size_t mirror_image_blobs(const struct buf *body, struct mirror_blob_ref *out, size_t max);

#endif
