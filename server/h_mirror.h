/*
 * h_mirror: the pull-through cache in the request path. Repositories under
 * an upstream's prefix (config "upstreams") are filled from that upstream
 * on demand: manifests by tag or digest, blobs streamed to the client while
 * they are written once into the store, tags re-checked after their
 * freshness window, the cached copy served when the upstream fails.
 *
 * struct mirror is made by mirror_open() from the config (one upstream
 * client per configured upstream; the list is restart-only) and held by
 * struct registry; mirror_close() waits for the fills running in the
 * background, mirror_free() frees it after every request ended.
 *
 * Thread-safety: every function may be called from any thread. Fills run
 * on the mirror's own thread pools, never on the HTTP threads; requests
 * that must wait for the upstream wait on a pool too (async steps).
 *
 * Files: h_mirror.c (routing, the manifest path, errors, metrics),
 * h_mirror_fill.c (the in-flight table and the fills), h_mirror_blob.c
 * (the blob path and the streaming reader), h_mirror_referrers.c (the
 * referrers API), h_mirror_map.c (the bounded maps).
 */
#ifndef BERTH_H_MIRROR_H
#define BERTH_H_MIRROR_H

#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "req.h"
#include "store.h"

struct mirror;

/* Opens a client per upstream of cfg (none: *out NULL and 0). E_CONFIG when a client cannot be made. */
int mirror_open(const struct config *cfg, struct store *st, struct mirror **out);
/* Stops taking fills and waits for the running ones. NULL is fine. */
void mirror_close(struct mirror *m);
void mirror_free(struct mirror *m);

/*
 * The router's step after validation and before authorization: a pull
 * (manifest, blob, referrers, tags) with containerd's ?ns=<host> is routed
 * to the upstream whose URL has that host (r->name gets its prefix; an
 * unknown host answers 404 so the client falls back to the next host), and
 * an unprefixed pull of a repository that does not exist here goes to the
 * default upstream. Authorization then sees the cached name. 0, or the E_*
 * already recorded with req_fail().
 */
int mirror_route(struct req *r);
/* After authorization: a push into a cached repository is refused unless its upstream allows pushes. */
int mirror_push_check(struct req *r);

/*
 * Manifest GET/HEAD and blob GET/HEAD of a cached repository. 1 when r is
 * not a cached repository's (the caller serves it as usual), else 0 or an
 * E_* code with the answer or an async step set up.
 */
int h_mirror_manifest_get(struct req *r);
int h_mirror_blob_get(struct req *r);
/* The referrers API of a cached repository: the upstream's list, then stored referrers it lacks; 1 as above. */
int h_mirror_referrers_get(struct req *r);

/* Appends the cache's counters (hits, misses, upstream bytes and errors, stale serves) to a /metrics text. */
void mirror_metrics_render(struct buf *out);

#endif
