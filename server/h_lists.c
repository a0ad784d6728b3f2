/* h_lists: tag listing, the repository catalog and the referrers index. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authn.h"
#include "err.h"
#include "h_mirror.h"
#include "handlers.h"
#include "log.h"
#include "router.h"
#include "scope.h"
#include "xalloc.h"

/* Longest `last` marker accepted: a name or tag can never be longer. */
#define LAST_MAX 256

struct list_out {
	struct buf *out;
	int count;
	struct buf last; /* last emitted entry, for the Link header (reused: no allocation per entry) */
};

static int emit_str(void *ctx, const char *s)
{
	struct list_out *lo = ctx;
	if (lo->count++)
		buf_addch(lo->out, ',');
	buf_add_json_str(lo->out, s);
	buf_reset(&lo->last);
	buf_adds(&lo->last, s);
	return 0;
}

static int page_args(struct req *r, long dflt, long *n, const char **last)
{
	const char *ns = req_arg(r, "n");
	*n = dflt;
	*last = req_arg(r, "last");
	if (ns && pagesize_parse(ns, r->cfg->page_max, n))
		return req_fail(r, E_PAGINATION, "n must be a number from 0 to %ld", r->cfg->page_max);
	if (*last && strlen(*last) > LAST_MAX)
		return req_fail(r, E_PAGINATION, "last is too long");
	if (*last && !**last)
		*last = NULL;
	return 0;
}

/*
 * The last complete tags list (no n, no last) each thread rendered, kept
 * while the database version its thread's connection reads stays the same
 * (store_read_version): CI tools and image updaters poll whole lists of
 * thousands of tags, and an unchanged list is then a copy. Bodies beyond
 * TAGS_CACHE_MAX are not kept. Freed when the thread ends.
 */
#define TAGS_CACHE_MAX (4u << 20)

struct tags_cache {
	struct buf repo, body;
	uint64_t version[2];
	int valid;
};

static pthread_key_t tags_cache_key;
static pthread_once_t tags_cache_once = PTHREAD_ONCE_INIT;

static void tags_cache_free(void *p)
{
	struct tags_cache *tc = p;
	buf_release(&tc->repo);
	buf_release(&tc->body);
	free(tc);
}

static void tags_cache_init(void)
{
	if (pthread_key_create(&tags_cache_key, tags_cache_free))
		die("cannot create the tags list cache key");
}

static struct tags_cache *tags_cache_get(void)
{
	struct tags_cache *tc;
	pthread_once(&tags_cache_once, tags_cache_init);
	tc = pthread_getspecific(tags_cache_key);
	if (!tc) {
		tc = xcalloc(1, sizeof(*tc));
		buf_init(&tc->repo, 0);
		buf_init(&tc->body, 0);
		if (pthread_setspecific(tags_cache_key, tc))
			die("cannot set the tags list cache");
	}
	return tc;
}

int h_tags_list(struct req *r)
{
	struct list_out lo = { &r->out, 0, BUF_INIT };
	struct tags_cache *tc = NULL;
	uint64_t version[2];
	const char *last;
	long n;
	int more = 0, rc;
	if ((rc = page_args(r, -1, &n, &last)))
		return rc;
	/* the version is read before the list, so a commit in between only makes the copy look older */
	if (n < 0 && !last && !store_read_version(r->reg->store, version)) {
		tc = tags_cache_get();
		if (tc->valid && !strcmp(tc->repo.buf, r->name) && !memcmp(tc->version, version, sizeof(version))) {
			buf_add(&r->out, tc->body.buf, tc->body.len);
			resp_body(r, 200, "application/json");
			return 0;
		}
		tc->valid = 0;
	}
	buf_adds(&r->out, "{\"name\":");
	buf_add_json_str(&r->out, r->name);
	buf_adds(&r->out, ",\"tags\":[");
	if ((rc = store_tag_list(r->reg->store, r->name, last, n, emit_str, &lo, &more)))
		goto out;
	buf_adds(&r->out, "]}");
	if (more && n > 0 && lo.count)
		resp_header(r, "Link", "</v2/%s/tags/list?n=%ld&last=%s>; rel=\"next\"", r->name, n, lo.last.buf);
	resp_body(r, 200, "application/json");
	if (tc && r->out.len <= TAGS_CACHE_MAX) {
		buf_reset(&tc->repo);
		buf_adds(&tc->repo, r->name);
		buf_reset(&tc->body);
		buf_add(&tc->body, r->out.buf, r->out.len);
		memcpy(tc->version, version, sizeof(version));
		tc->valid = 1;
	}
out:
	buf_release(&lo.last);
	return rc;
}

static int catalog_filter(void *ctx, const char *repo)
{
	return (authn_identity_rights(ctx, repo) & ACTION_PULL) != 0;
}

int h_catalog(struct req *r)
{
	struct list_out lo = { &r->out, 0, BUF_INIT };
	const char *last;
	long n;
	int more = 0, rc;
	if ((rc = page_args(r, r->cfg->page_max, &n, &last)))
		return rc;
	buf_adds(&r->out, "{\"repositories\":[");
	if ((rc = store_repo_list(r->reg->store, last, n, catalog_filter, r, emit_str, &lo, &more)))
		goto out;
	buf_adds(&r->out, "]}");
	if (more && n > 0 && lo.count)
		resp_header(r, "Link", "</v2/_catalog?n=%ld&last=%s>; rel=\"next\"", n, lo.last.buf);
	resp_body(r, 200, "application/json");
out:
	buf_release(&lo.last);
	return rc;
}

struct ref_out {
	struct buf *out;
	int count;
	int (*listed)(void *ctx, const struct digest *d);
	void *listed_ctx;
};

static int emit_referrer(void *ctx, const struct store_manifest *m)
{
	struct ref_out *ro = ctx;
	char ds[DIGEST_STR_MAX];
	if (ro->listed && ro->listed(ro->listed_ctx, &m->digest))
		return 0;
	if (ro->count++)
		buf_addch(ro->out, ',');
	buf_adds(ro->out, "{\"mediaType\":");
	buf_add_json_str(ro->out, m->media_type);
	buf_adds(ro->out, ",\"digest\":");
	buf_add_json_str(ro->out, digest_str(&m->digest, ds));
	buf_addf(ro->out, ",\"size\":%lld", (long long)m->size);
	if (m->artifact_type) {
		buf_adds(ro->out, ",\"artifactType\":");
		buf_add_json_str(ro->out, m->artifact_type);
	}
	if (m->annotations) {
		/* Stored as compact JSON produced by the manifest parser. */
		buf_adds(ro->out, ",\"annotations\":");
		buf_adds(ro->out, m->annotations);
	}
	buf_addch(ro->out, '}');
	return 0;
}

int h_referrers(struct req *r)
{
	int rc = r->reg->mirror ? h_mirror_referrers_get(r) : 1;
	return rc == 1 ? h_referrers_serve(r, NULL, NULL, NULL) : rc;
}

int h_referrers_serve(struct req *r, const char *first, int (*listed)(void *ctx, const struct digest *d), void *ctx)
{
	struct ref_out ro = { &r->out, 0, listed, ctx };
	const char *at = req_arg(r, "artifactType");
	int rc;
	if (at && !*at)
		at = NULL;
	buf_adds(&r->out, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[");
	if (first && *first) {
		buf_adds(&r->out, first);
		ro.count = 1;
	}
	rc = store_referrers(r->reg->store, r->name, &r->reference.digest, at, emit_referrer, &ro);
	if (rc)
		return rc;
	buf_adds(&r->out, "]}");
	if (at)
		resp_header(r, "OCI-Filters-Applied", "artifactType");
	resp_body(r, 200, "application/vnd.oci.image.index.v1+json");
	return 0;
}
