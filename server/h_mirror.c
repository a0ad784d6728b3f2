/*
 * h_mirror: the pull-through cache's routing, its manifest path and its
 * upstream error policy (see h_mirror.h).
 *
 * A manifest by digest, once cached, is served with no upstream call. A
 * tag is served locally while it is fresh (checked upstream less than
 * `freshness` ago, on the daemon's clock); after that one HEAD upstream
 * decides: the same digest keeps the local copy, another one is filled
 * and the tag moved (recorded in tag history with how "mirror"), and any
 * upstream failure serves the cached copy with a warning logged once per
 * window. Only a manifest neither cached nor obtainable is an error, whose
 * detail names the upstream and what it answered.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "err.h"
#include "h_mirror_internal.h"
#include "handlers.h"
#include "log.h"
#include "names.h"
#include "router.h"
#include "xalloc.h"

/* Requests waiting on the upstream at once, and fills running at once (beyond: queued, then 429). */
#define WAIT_THREADS 32
#define FILL_THREADS 8
#define QUEUE_MAX 1024
#define MAP_MAX 65536
/* Upstream referrers lists kept for their freshness window: how many, and their bytes. */
#define REFERRERS_MAX 4096
#define REFERRERS_BYTES (16u << 20)

/* The mirror whose counters /metrics shows (one per daemon). */
static _Atomic(struct mirror *) shown;

/* "https://host:port/path" -> "host:port" */
static char *url_host(const char *url)
{
	const char *h = strstr(url, "://");
	h = h ? h + 3 : url;
	return xstrndup(h, strcspn(h, "/"));
}

int mirror_open(const struct config *cfg, struct store *st, struct mirror **out)
{
	struct mirror *m;
	*out = NULL;
	if (!cfg->n_upstreams)
		return 0;
	m = xcalloc(1, sizeof(*m));
	m->st = st;
	m->ups = xcalloc(cfg->n_upstreams, sizeof(*m->ups));
	pthread_mutex_init(&m->lock, NULL);
	m->fresh.max = m->sizes.max = MAP_MAX;
	m->referrers.max = REFERRERS_MAX;
	m->referrers.max_bytes = REFERRERS_BYTES;
	for (size_t i = 0; i < cfg->n_upstreams; i++) {
		const struct config_upstream *c = &cfg->upstreams[i];
		struct mirror_up *up = &m->ups[m->n];
		if (upstream_open(c, NULL, &up->client)) {
			log_error("mirror: cannot set up upstream \"%s\"", c->name);
			mirror_free(m);
			return E_CONFIG;
		}
		m->n++;
		up->name = xstrdup(c->name);
		up->prefix = xstrdup(c->prefix);
		up->host = url_host(c->url);
		up->is_default = c->is_default;
		up->allow_push = c->allow_push;
		up->freshness_s = c->freshness_s;
		log_info("mirror: upstream \"%s\" (%s) serves %s*%s", c->name, c->url, c->prefix,
			 c->is_default ? " and unprefixed names not found here" : "");
	}
	m->blobq = workq_new(FILL_THREADS, QUEUE_MAX);
	m->manq = workq_new(FILL_THREADS, QUEUE_MAX);
	m->waitq = workq_new(WAIT_THREADS, QUEUE_MAX);
	atomic_store(&shown, m);
	*out = m;
	return 0;
}

void mirror_close(struct mirror *m)
{
	if (!m)
		return;
	/* waiting requests first (they hold fills), then manifest fills (they wait on blob fills) */
	workq_free(m->waitq);
	m->waitq = NULL;
	workq_free(m->manq);
	m->manq = NULL;
	workq_free(m->blobq);
	m->blobq = NULL;
}

void mirror_free(struct mirror *m)
{
	if (!m)
		return;
	mirror_close(m);
	struct mirror *self = m;
	atomic_compare_exchange_strong(&shown, &self, NULL);
	for (size_t i = 0; i < m->n; i++) {
		upstream_free(m->ups[i].client);
		free(m->ups[i].name);
		free(m->ups[i].prefix);
		free(m->ups[i].host);
	}
	free(m->ups);
	mirror_map_release(&m->fresh);
	mirror_map_release(&m->sizes);
	mirror_map_release(&m->referrers);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

struct mirror_up *mirror_up_for(struct mirror *m, const char *repo)
{
	for (size_t i = 0; m && i < m->n; i++)
		if (!strncmp(repo, m->ups[i].prefix, strlen(m->ups[i].prefix)))
			return &m->ups[i];
	return NULL;
}

/* ---- routing ---- */

static int hub_host(const char *h)
{
	return !strcmp(h, "docker.io") || !strcmp(h, "registry-1.docker.io") || !strcmp(h, "index.docker.io");
}

static struct mirror_up *up_by_host(struct mirror *m, const char *host)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->ups[i].host, host) || (hub_host(host) && hub_host(m->ups[i].host)))
			return &m->ups[i];
	return NULL;
}

static struct mirror_up *up_default(struct mirror *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->ups[i].is_default)
			return &m->ups[i];
	return NULL;
}

static int under_prefix(const char *name, const struct mirror_up *up)
{
	return !strncmp(name, up->prefix, strlen(up->prefix));
}

/* r->name becomes up's prefix followed by it. */
static int rename_under(struct req *r, const struct mirror_up *up)
{
	struct buf n = BUF_INIT;
	buf_addf(&n, "%s%s", up->prefix, r->name);
	if (name_check(n.buf, n.len)) {
		buf_release(&n);
		return req_fail(r, E_NAME_INVALID, "the name is too long under the prefix of upstream \"%s\"", up->name);
	}
	free(r->name);
	r->name = buf_detach(&n, NULL);
	return 0;
}

int mirror_route(struct req *r)
{
	struct mirror *m = r->reg ? r->reg->mirror : NULL;
	enum route_kind k = r->route->kind;
	struct mirror_up *up;
	const char *ns;
	if (!m || !r->name || (r->method != M_GET && r->method != M_HEAD) ||
	    (k != ROUTE_MANIFEST && k != ROUTE_BLOB && k != ROUTE_REFERRERS && k != ROUTE_TAGS))
		return 0;
	ns = req_arg(r, "ns");
	if (ns && *ns) {
		/* a key into the configured upstreams, never a host to dial */
		if (!(up = up_by_host(m, ns)))
			return req_fail(r, E_NAME_UNKNOWN, "no upstream is configured for that registry (ns)");
		return under_prefix(r->name, up) ? 0 : rename_under(r, up);
	}
	if (mirror_up_for(m, r->name) || !(up = up_default(m)))
		return 0;
	/* dockerd's registry-mirrors: names not found here are the default upstream's */
	if (!store_repo_exists(r->reg->store, r->name))
		return 0;
	return rename_under(r, up);
}

int mirror_push_check(struct req *r)
{
	struct mirror_up *up;
	enum route_kind k = r->route->kind;
	if (!r->reg || !r->name || (k != ROUTE_MANIFEST && k != ROUTE_UPLOAD_START && k != ROUTE_UPLOAD) ||
	    r->method == M_GET || r->method == M_HEAD || r->method == M_DELETE)
		return 0;
	if (!(up = mirror_up_for(r->reg->mirror, r->name)) || up->allow_push)
		return 0;
	return req_fail(r, E_DENIED, "%s is a cache of upstream \"%s\": pushes into it are refused "
			"(upstreams[].allow_push)", r->name, up->name);
}

/* ---- upstream failures ---- */

int mirror_upstream_fail(struct mirror_up *up, int rc, const struct upstream_error *ue, struct buf *detail)
{
	atomic_fetch_add_explicit(&up->stats.errors, 1, memory_order_relaxed);
	buf_reset(detail);
	upstream_error_describe(up->client, ue, detail);
	switch (ue->kind) {
	case UPSTREAM_NOT_FOUND:
		return rc == E_BLOB_UNKNOWN ? E_BLOB_UNKNOWN : E_MANIFEST_UNKNOWN;
	case UPSTREAM_RATE_LIMITED:
		return E_TOOMANYREQUESTS;
	default:
		/* down, timeout, 5xx, refused or a broken answer: the cache cannot help now */
		return E_STORE_UNAVAILABLE;
	}
}

void mirror_audit(struct mirror *m, struct mirror_up *up, const char *repo, const char *what, const char *ref,
		  const struct digest *d, int64_t bytes)
{
	char ds[DIGEST_STR_MAX];
	struct buf tag = BUF_INIT;
	/* names, tags and digests are validated: the detail is JSON as it is */
	if (ref && !strchr(ref, ':'))
		buf_addf(&tag, ",\"tag\":\"%s\"", ref);
	audit_event_as(m->st, "mirror", up->name, "mirror_fetch", repo,
		       "{\"upstream\":\"%s\",\"what\":\"%s\",\"digest\":\"%s\",\"bytes\":%lld%s}", up->name, what,
		       digest_str(d, ds), (long long)bytes, tag.len ? tag.buf : "");
	buf_release(&tag);
}

void mirror_stale_serve(struct mirror_up *up, const char *what, const struct buf *why)
{
	long long now = clock_wall_ms(), last = atomic_load(&up->last_warn_ms); /* the atomic's own type */
	int64_t window = (int64_t)(up->freshness_s ? up->freshness_s : 60) * 1000;
	atomic_fetch_add_explicit(&up->stats.stale, 1, memory_order_relaxed);
	if (now - last >= window && atomic_compare_exchange_strong(&up->last_warn_ms, &last, now))
		log_warn("mirror: serving the cached %s: %s", what, why->buf);
}

/* ---- manifests ---- */

enum mstep_result { MS_LOCAL, MS_MEM, MS_ERROR };

/* A manifest request waiting on the upstream; freed with the request (on_cleanup). */
struct mstep {
	struct mirror *m;
	struct mirror_up *up;
	int have_local;
	struct digest local;
	enum mstep_result result;
	int rc;
	unsigned retry_after_s;
	struct buf body, detail;
	char media_type[128];
	struct digest digest;
};

static void mstep_cleanup(struct req *r)
{
	struct mstep *s = r->hstate;
	r->hstate = NULL;
	if (!s)
		return;
	buf_release(&s->body);
	buf_release(&s->detail);
	free(s);
}

/* "repo:tag": the key of the tag's freshness and the name of its stale serves */
static void tag_key(const struct req *r, struct buf *key)
{
	buf_addf(key, "%s:%s", r->name, r->reference.tag);
}

static void mark_fresh(struct mirror *m, const struct req *r, int64_t asked_ms)
{
	struct buf key = BUF_INIT;
	tag_key(r, &key);
	mirror_mark_fresh(m, key.buf, asked_ms);
	buf_release(&key);
}

static int is_fresh(struct mirror *m, struct mirror_up *up, const struct req *r)
{
	struct buf key = BUF_INIT;
	tag_key(r, &key);
	int fresh = mirror_is_fresh(m, key.buf, up->freshness_s);
	buf_release(&key);
	return fresh;
}

static void stale_serve(struct mirror_up *up, const struct req *r, const struct buf *why)
{
	struct buf what = BUF_INIT;
	tag_key(r, &what);
	mirror_stale_serve(up, what.buf, why);
	buf_release(&what);
}

/*
 * Joins or starts the fill of ref and waits for its bytes (on the wait
 * pool). want (may be NULL): the digest a HEAD just saw; a fill started
 * before the tag moved is let finish and a new one started, and so is a
 * tag's fill that asked the upstream longer than the window ago.
 */
static void fetch_into(struct mstep *s, struct req *r, const char *ref, const struct digest *want)
{
	/* a digest a tag's fill already got is not fetched again while it is being stored */
	struct fill *f = r->reference.is_digest ? fill_manifest_pending(s->m, r->name, &r->reference.digest) : NULL;
	if (!f)
		f = fill_manifest(s->m, s->up, r->name, ref);
	enum fill_state st = f ? fill_wait(f, FILL_UNTIL_READY) : FILL_FAILED;
	int stale = f && st != FILL_FAILED && !r->reference.is_digest && s->up->freshness_s &&
		    !mirror_fresh_since(f->asked_ms, s->up->freshness_s);
	if (f && st != FILL_FAILED && ((want && !digest_eq(&f->digest, want)) || stale)) {
		fill_wait(f, FILL_UNTIL_END);
		fill_put(f);
		f = fill_manifest(s->m, s->up, r->name, ref);
		st = f ? fill_wait(f, FILL_UNTIL_READY) : FILL_FAILED;
	}
	if (!f) {
		s->result = MS_ERROR;
		s->rc = E_TOOMANYREQUESTS;
		buf_adds(&s->detail, "too many upstream fetches at once, retry");
		return;
	}
	if (st == FILL_FAILED) {
		s->result = MS_ERROR;
		s->rc = f->rc;
		s->retry_after_s = f->ue.retry_after_s;
		buf_add(&s->detail, f->detail.buf, f->detail.len);
	} else {
		/* READY or DONE: the bytes stay the fill's until it is freed */
		s->result = MS_MEM;
		s->digest = f->digest;
		memcpy(s->media_type, f->media_type, sizeof(s->media_type));
		buf_add(&s->body, f->body.buf, f->body.len);
	}
	fill_put(f);
}

static void manifest_work(struct req *r)
{
	struct mstep *s = r->hstate;
	char ds[DIGEST_STR_MAX];
	struct upstream_manifest um;
	struct upstream_error ue = { 0 };
	struct buf remote = BUF_INIT;
	if (!s->have_local) {
		atomic_fetch_add_explicit(&s->up->stats.misses, 1, memory_order_relaxed);
		fetch_into(s, r, r->reference.is_digest ? digest_str(&r->reference.digest, ds) : r->reference.tag, NULL);
		return;
	}
	/* a tag past its window: one HEAD decides */
	int64_t asked = clock_wall_ms();
	upstream_manifest_init(&um);
	int rc = upstream_remote_name(s->up->client, r->name, &remote);
	if (!rc)
		rc = upstream_manifest_head(s->up->client, remote.buf, r->reference.tag, &um, &ue);
	if (rc) {
		rc = mirror_upstream_fail(s->up, rc, &ue, &s->detail);
		stale_serve(s->up, r, &s->detail);
		s->result = MS_LOCAL;
	} else if (um.has_digest && digest_eq(&um.digest, &s->local)) {
		atomic_fetch_add_explicit(&s->up->stats.hits, 1, memory_order_relaxed);
		mark_fresh(s->m, r, asked);
		s->result = MS_LOCAL;
	} else {
		atomic_fetch_add_explicit(&s->up->stats.misses, 1, memory_order_relaxed);
		fetch_into(s, r, r->reference.tag, um.has_digest ? &um.digest : NULL);
		if (s->result == MS_ERROR) {
			stale_serve(s->up, r, &s->detail);
			s->result = MS_LOCAL;
		}
	}
	upstream_manifest_release(&um);
	buf_release(&remote);
}

static int manifest_then(struct req *r)
{
	struct mstep *s = r->hstate;
	char ds[DIGEST_STR_MAX];
	if (s->result == MS_LOCAL)
		return h_manifest_serve(r);
	if (s->result == MS_ERROR) {
		if (s->retry_after_s)
			resp_header(r, "Retry-After", "%u", s->retry_after_s);
		return req_fail(r, s->rc, "%s", s->detail.buf);
	}
	digest_str(&s->digest, ds);
	resp_header(r, "Content-Type", "%s", s->media_type[0] ? s->media_type : "application/json");
	resp_header(r, "Docker-Content-Digest", "%s", ds);
	resp_header(r, "ETag", "\"%s\"", ds);
	buf_add(&r->out, s->body.buf, s->body.len);
	resp_body(r, 200, NULL);
	return 0;
}

int h_mirror_manifest_get(struct req *r)
{
	struct mirror *m = r->reg->mirror;
	struct mirror_up *up = mirror_up_for(m, r->name);
	struct store_manifest sm;
	struct store_reader rd;
	struct mstep *s;
	if (!up)
		return 1;
	s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->up = up;
	buf_init(&s->body, 0);
	buf_init(&s->detail, 0);
	s->have_local = !store_manifest_get(m->st, r->name, &r->reference, &sm, &rd, NULL);
	if (s->have_local)
		s->local = sm.digest;
	store_reader_release(&rd);
	store_manifest_release(&sm);
	if (s->have_local && (r->reference.is_digest || is_fresh(m, up, r))) {
		atomic_fetch_add_explicit(&up->stats.hits, 1, memory_order_relaxed);
		buf_release(&s->body);
		buf_release(&s->detail);
		free(s);
		return 1;
	}
	return mirror_wait(r, s, mstep_cleanup, manifest_work, manifest_then);
}

int mirror_wait(struct req *r, void *state, void (*cleanup)(struct req *), void (*work)(struct req *),
		int (*then)(struct req *))
{
	r->hstate = state;
	r->on_cleanup = cleanup;
	r->async_work = work;
	r->async_then = then;
	r->async_q = r->reg->mirror->waitq;
	return 0;
}

/* ---- metrics ---- */

void mirror_metrics_render(struct buf *o)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} counters[] = {
		{ "berth_mirror_hits_total", "Pulls of cached repositories answered from the cache.",
		  offsetof(struct mirror_stats, hits) },
		{ "berth_mirror_misses_total", "Pulls of cached repositories that fetched from the upstream.",
		  offsetof(struct mirror_stats, misses) },
		{ "berth_mirror_upstream_bytes_total", "Bytes received from upstreams (manifests and blobs).",
		  offsetof(struct mirror_stats, bytes) },
		{ "berth_mirror_upstream_errors_total", "Upstream requests that failed (down, timeout, 429, 5xx, ...).",
		  offsetof(struct mirror_stats, errors) },
		{ "berth_mirror_stale_serves_total", "Cached tags served because the upstream could not be asked.",
		  offsetof(struct mirror_stats, stale) },
	};
	struct mirror *m = atomic_load(&shown);
	if (!m)
		return;
	for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
		buf_addf(o, "# HELP %s %s\n# TYPE %s counter\n", counters[c].name, counters[c].help, counters[c].name);
		for (size_t i = 0; i < m->n; i++) {
			const atomic_ullong *v = (const atomic_ullong *)(const void *)((const char *)&m->ups[i].stats +
										  counters[c].off);
			buf_addf(o, "%s{upstream=\"%s\"} %llu\n", counters[c].name, m->ups[i].name,
				 (unsigned long long)atomic_load(v));
		}
	}
}
