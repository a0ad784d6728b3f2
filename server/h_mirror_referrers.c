/*
 * h_mirror_referrers: the referrers API of a cached repository (see
 * h_mirror.h). The upstream's list (its referrers API, or the tag schema
 * when it has none) is fetched on demand, one fetch for concurrent
 * requests, and kept in memory for the upstream's freshness window; the
 * stored referrers it does not list follow it. A referrer's manifest is
 * fetched and stored through the store's one write path when a client
 * pulls it by digest (the manifest path), like any manifest. When the
 * upstream cannot be asked, the last list it gave is served, else the
 * stored referrers when the subject or one of them is cached; only a
 * subject with nothing cached is an error naming the upstream.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "h_mirror_internal.h"
#include "handlers.h"
#include "log.h"
#include "xalloc.h"

/* ---- the fetch, shared ---- */

static void memo_key(const char *repo, const struct digest *d, const char *artifact_type, struct buf *key)
{
	char ds[DIGEST_STR_MAX];
	buf_addf(key, "%s@%s\n%s", repo, digest_str(d, ds), artifact_type);
}

static void referrers_job(void *arg)
{
	struct fill *f = arg;
	struct mirror *m = f->m;
	struct upstream_referrers ur;
	struct buf remote = BUF_INIT, key = BUF_INIT;
	int rc = upstream_remote_name(f->up->client, f->repo, &remote);
	upstream_referrers_init(&ur);
	if (!rc && (rc = upstream_referrers_get(f->up->client, remote.buf, &f->digest, f->artifact_type, &ur, &f->ue)))
		rc = mirror_upstream_fail(f->up, rc, &f->ue, &f->detail);
	if (rc) {
		log_warn("mirror: referrers of %s@%s: %s", f->repo, f->ref, f->detail.buf);
	} else {
		atomic_fetch_add_explicit(&f->up->stats.bytes, ur.manifests.len, memory_order_relaxed);
		memo_key(f->repo, &f->digest, f->artifact_type, &key);
		pthread_mutex_lock(&m->lock);
		mirror_map_set_text(&m->referrers, key.buf, clock_wall_ms(), ur.manifests.buf, ur.manifests.len);
		pthread_mutex_unlock(&m->lock);
		pthread_mutex_lock(&f->lock);
		buf_add(&f->body, ur.manifests.buf, ur.manifests.len);
		pthread_mutex_unlock(&f->lock);
	}
	fill_end(f, rc ? FILL_FAILED : FILL_DONE, rc);
	upstream_referrers_release(&ur);
	buf_release(&remote);
	buf_release(&key);
	fill_put(f);
}

struct fill *fill_referrers(struct mirror *m, struct mirror_up *up, const char *repo, const struct digest *d,
			    const char *artifact_type)
{
	char ds[DIGEST_STR_MAX];
	struct buf key = BUF_INIT;
	buf_adds(&key, "r ");
	memo_key(repo, d, artifact_type, &key);
	struct fill *f = fill_new(m, up, FILL_REFERRERS, key.buf, repo, digest_str(d, ds));
	buf_release(&key);
	f->digest = *d;
	f->artifact_type = xstrdup(artifact_type);
	return fill_start(m, f, m->blobq, referrers_job);
}

/* ---- the request ---- */

struct rstep {
	struct mirror *m;
	struct mirror_up *up;
	const char *artifact_type; /* the request's argument, or "" */
	struct buf list;           /* the upstream's descriptors, listed first */
	int rc;
	unsigned retry_after_s;
	struct buf detail;
};

static struct rstep *rstep_new(struct mirror *m, struct mirror_up *up, const char *artifact_type)
{
	struct rstep *s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->up = up;
	s->artifact_type = artifact_type;
	buf_init(&s->list, 0);
	buf_init(&s->detail, 0);
	return s;
}

static void rstep_free(struct rstep *s)
{
	if (!s)
		return;
	buf_release(&s->list);
	buf_release(&s->detail);
	free(s);
}

static void rstep_cleanup(struct req *r)
{
	struct rstep *s = r->hstate;
	r->hstate = NULL;
	rstep_free(s);
}

/* The upstream's list as last fetched into s->list; 1 when there was one, *fresh when still in its window. */
static int memo_get(struct rstep *s, struct req *r, int *fresh)
{
	struct buf key = BUF_INIT;
	int64_t at = 0;
	memo_key(r->name, &r->reference.digest, s->artifact_type, &key);
	pthread_mutex_lock(&s->m->lock);
	int found = mirror_map_get_text(&s->m->referrers, key.buf, &at, &s->list);
	pthread_mutex_unlock(&s->m->lock);
	buf_release(&key);
	*fresh = found && mirror_fresh_since(at, s->up->freshness_s);
	return found;
}

static int count_one(void *ctx, const struct store_manifest *sm)
{
	(void)sm;
	++*(int *)ctx;
	return 1; /* one is enough */
}

/* Anything of this subject cached: the manifest itself or a referrer of it. */
static int cached_here(struct store *st, struct req *r)
{
	struct store_manifest sm;
	struct store_reader rd;
	int n = 0;
	if (!store_manifest_get(st, r->name, &r->reference, &sm, &rd, NULL))
		n = 1;
	store_reader_release(&rd);
	store_manifest_release(&sm);
	if (!n)
		store_referrers(st, r->name, &r->reference.digest, NULL, count_one, &n);
	return n > 0;
}

static void referrers_work(struct req *r)
{
	struct rstep *s = r->hstate;
	char ds[DIGEST_STR_MAX];
	int fresh;
	atomic_fetch_add_explicit(&s->up->stats.misses, 1, memory_order_relaxed);
	struct fill *f = fill_referrers(s->m, s->up, r->name, &r->reference.digest, s->artifact_type);
	if (f && fill_wait(f, FILL_UNTIL_END) == FILL_DONE) {
		buf_add(&s->list, f->body.buf, f->body.len);
		fill_put(f);
		return;
	}
	s->rc = f ? f->rc : E_TOOMANYREQUESTS;
	s->retry_after_s = f ? f->ue.retry_after_s : 0;
	if (f)
		buf_add(&s->detail, f->detail.buf, f->detail.len);
	else
		buf_adds(&s->detail, "too many upstream fetches at once, retry");
	fill_put(f);
	if (memo_get(s, r, &fresh) || cached_here(s->m->st, r)) {
		struct buf what = BUF_INIT;
		buf_addf(&what, "referrers of %s@%s", r->name, digest_str(&r->reference.digest, ds));
		mirror_stale_serve(s->up, what.buf, &s->detail);
		buf_release(&what);
		s->rc = 0;
	}
}

/* A stored referrer the upstream listed already. The list is our own compact JSON (upstream_referrers_get). */
static int listed(void *ctx, const struct digest *d)
{
	struct rstep *s = ctx;
	char ds[DIGEST_STR_MAX];
	struct buf needle = BUF_INIT;
	buf_addf(&needle, "\"digest\":\"%s\"", digest_str(d, ds));
	int found = s->list.len && strstr(s->list.buf, needle.buf) != NULL;
	buf_release(&needle);
	return found;
}

static int referrers_then(struct req *r)
{
	struct rstep *s = r->hstate;
	if (s->rc) {
		if (s->retry_after_s)
			resp_header(r, "Retry-After", "%u", s->retry_after_s);
		return req_fail(r, s->rc, "%s", s->detail.buf);
	}
	return h_referrers_serve(r, s->list.buf, listed, s);
}

int h_mirror_referrers_get(struct req *r)
{
	struct mirror *m = r->reg->mirror;
	struct mirror_up *up = mirror_up_for(m, r->name);
	const char *at = req_arg(r, "artifactType");
	struct rstep *s;
	int fresh, rc;
	if (!up)
		return 1;
	s = rstep_new(m, up, at ? at : "");
	if (memo_get(s, r, &fresh) && fresh) {
		atomic_fetch_add_explicit(&up->stats.hits, 1, memory_order_relaxed);
		rc = h_referrers_serve(r, s->list.buf, listed, s);
		rstep_free(s);
		return rc;
	}
	buf_reset(&s->list);
	return mirror_wait(r, s, rstep_cleanup, referrers_work, referrers_then);
}
