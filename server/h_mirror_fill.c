/*
 * h_mirror_fill: the fills of the pull-through cache (see
 * h_mirror_internal.h). A blob fill streams the upstream's bytes into a
 * one-shot upload of the store (the blob becomes visible only when the
 * store has checked its digest) and keeps the last bytes in a ring for
 * the readers streaming along. A manifest fill gets the manifest (checked
 * by the upstream client), hands its bytes to the waiting requests at once,
 * then, for an image, fills its config and layers before it stores the
 * manifest through the store's one write path (how "mirror"): the store
 * never holds an image manifest whose blobs it lacks. An index is stored
 * at once; its children are filled when a client asks for one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "err.h"
#include "h_mirror_internal.h"
#include "log.h"
#include "xalloc.h"

/* Bytes of a blob kept for readers streaming along; a reader further behind waits for the end. */
#define RING_BYTES (4u << 20)
/* Config and layers of one image manifest filled before it is stored. */
#define IMAGE_BLOBS_MAX 256

struct fill *fill_new(struct mirror *m, struct mirror_up *up, enum fill_kind kind, const char *key, const char *repo,
		      const char *ref)
{
	struct fill *f = xcalloc(1, sizeof(*f));
	f->m = m;
	f->up = up;
	f->kind = kind;
	f->key = xstrdup(key);
	f->repo = xstrdup(repo);
	f->ref = xstrdup(ref);
	f->refs = 1;
	f->size = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	buf_init(&f->detail, 0);
	buf_init(&f->body, 0);
	return f;
}

void fill_put(struct fill *f)
{
	struct mirror *m;
	int last;
	if (!f)
		return;
	m = f->m;
	pthread_mutex_lock(&m->lock);
	last = --f->refs == 0;
	pthread_mutex_unlock(&m->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	buf_release(&f->detail);
	buf_release(&f->body);
	free(f->ring);
	free(f->key);
	free(f->repo);
	free(f->ref);
	free(f->artifact_type);
	free(f);
}

/* Off the table: later requests find the store's copy (or start again after a failure). */
static void fill_unlist(struct fill *f)
{
	struct mirror *m = f->m;
	pthread_mutex_lock(&m->lock);
	for (struct fill **p = &m->fills; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&m->lock);
}

void fill_wake_all(struct fill *f)
{
	struct fill_waiter *w = f->parked;
	f->parked = NULL;
	while (w) {
		struct fill_waiter *next = w->next;
		void (*wake)(void *) = w->w.wake;
		w->w.wake = NULL;
		w->next = NULL;
		if (wake)
			wake(w->w.ctx);
		w = next;
	}
}

/* Wakes the parked readers that can use new bytes (lock held). */
static void wake_streaming(struct fill *f)
{
	struct fill_waiter **p = &f->parked;
	while (*p) {
		struct fill_waiter *w = *p;
		if (w->until_done) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		w->next = NULL;
		void (*wake)(void *) = w->w.wake;
		w->w.wake = NULL;
		if (wake)
			wake(w->w.ctx);
	}
}

void fill_end(struct fill *f, enum fill_state st, int rc)
{
	/* off the table first: whoever sees the end and comes back starts anew, never joins what ended */
	fill_unlist(f);
	pthread_mutex_lock(&f->lock);
	f->state = st;
	f->rc = rc;
	fill_wake_all(f);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

enum fill_state fill_wait(struct fill *f, enum fill_until until)
{
	enum fill_state st;
	pthread_mutex_lock(&f->lock);
	while ((f->state == FILL_RUNNING && !(until == FILL_UNTIL_BYTES && f->got > 0)) ||
	       (f->state == FILL_READY && until == FILL_UNTIL_END))
		pthread_cond_wait(&f->cond, &f->lock);
	st = f->state;
	pthread_mutex_unlock(&f->lock);
	return st;
}

/* ---- blobs ---- */

struct blob_sink {
	struct fill *f;
	struct store_upload *upload;
};

static int blob_sink(void *ctx, const void *data, size_t len)
{
	struct blob_sink *s = ctx;
	struct fill *f = s->f;
	const unsigned char *p = data;
	int rc = store_upload_write(s->upload, data, len);
	if (rc)
		return rc;
	atomic_fetch_add_explicit(&f->up->stats.bytes, len, memory_order_relaxed);
	pthread_mutex_lock(&f->lock);
	for (size_t done = 0; done < len;) {
		size_t at = (size_t)((f->got + (int64_t)done) % (int64_t)f->cap);
		size_t n = f->cap - at < len - done ? f->cap - at : len - done;
		memcpy(f->ring + at, p + done, n);
		done += n;
	}
	f->got += (int64_t)len;
	wake_streaming(f);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static void blob_job(void *arg)
{
	struct fill *f = arg;
	struct mirror *m = f->m;
	struct blob_sink s = { .f = f };
	struct buf remote = BUF_INIT;
	int64_t total = 0;
	int rc = upstream_remote_name(f->up->client, f->repo, &remote);
	if (!rc)
		rc = store_upload_oneshot(m->st, f->repo, &s.upload, &f->detail);
	if (!rc) {
		struct upstream_blob_req req = { .remote = remote.buf, .digest = f->digest, .size = f->size };
		if (f->size > 0)
			store_upload_expect(s.upload, f->size);
		rc = upstream_blob_get(f->up->client, &req, blob_sink, &s, &total, &f->ue);
		if (rc && f->ue.kind != UPSTREAM_STOPPED)
			rc = mirror_upstream_fail(f->up, rc, &f->ue, &f->detail);
		/* the store hashes what it got: the blob is visible only when that matches too */
		if (!rc && !(rc = store_upload_flush(s.upload)))
			rc = store_upload_finish(s.upload, &f->digest);
		store_upload_release(s.upload, rc != 0);
	}
	if (rc) {
		char ds[DIGEST_STR_MAX];
		if (!f->detail.len)
			buf_addf(&f->detail, "filling %s from upstream \"%s\" failed", digest_str(&f->digest, ds),
				 f->up->name);
		log_warn("mirror: %s@%s: %s", f->repo, digest_str(&f->digest, ds), f->detail.buf);
	} else {
		mirror_audit(m, f->up, f->repo, "blob", NULL, &f->digest, total);
	}
	buf_release(&remote);
	fill_end(f, rc ? FILL_FAILED : FILL_DONE, rc);
	fill_put(f);
}

/* The running fill of key, referenced, or NULL; m->lock held. */
static struct fill *fill_find(struct mirror *m, const char *key)
{
	for (struct fill *f = m->fills; f; f = f->next)
		if (!strcmp(f->key, key)) {
			f->refs++;
			return f;
		}
	return NULL;
}

struct fill *fill_start(struct mirror *m, struct fill *f, struct workq *q, workq_fn job)
{
	pthread_mutex_lock(&m->lock);
	struct fill *running = fill_find(m, f->key);
	if (!running) {
		f->next = m->fills;
		m->fills = f;
		f->refs++; /* the job's */
	}
	pthread_mutex_unlock(&m->lock);
	if (running) {
		fill_put(f);
		return running;
	}
	if (workq_submit(q, job, f)) {
		fill_end(f, FILL_FAILED, E_TOO_MANY);
		fill_put(f); /* the job's */
		fill_put(f);
		return NULL;
	}
	return f;
}

struct fill *fill_blob(struct mirror *m, struct mirror_up *up, const char *repo, const struct digest *d,
		       int64_t size)
{
	char ds[DIGEST_STR_MAX];
	struct buf key = BUF_INIT;
	buf_addf(&key, "b %s@%s", repo, digest_str(d, ds));
	struct fill *f = fill_new(m, up, FILL_BLOB, key.buf, repo, ds);
	buf_release(&key);
	f->digest = *d;
	f->size = size;
	f->cap = RING_BYTES;
	f->ring = xmalloc(f->cap);
	return fill_start(m, f, m->blobq, blob_job);
}

/* ---- manifests ---- */

/* Fills what an image manifest references, then stores it; an index is stored as it is. */
static int manifest_commit(struct fill *f, const char *media_type)
{
	struct mirror_blob_ref *mine = xcalloc(IMAGE_BLOBS_MAX, sizeof(*mine));
	struct mirror *m = f->m;
	struct store_put_result res = { 0 };
	struct store_tag_change change = { 0 };
	struct store_actor actor = { .name = "mirror", .how = "mirror", .client = f->up->name, .change = &change };
	struct buf detail = BUF_INIT;
	int rc = 0;
	size_t n = mirror_image_blobs(&f->body, mine, IMAGE_BLOBS_MAX);
	for (size_t i = 0; i < n && !rc; i++) {
		if (!store_blob_stat(m->st, f->repo, &mine[i].d, NULL))
			continue;
		struct fill *b = fill_blob(m, f->up, f->repo, &mine[i].d, mine[i].size);
		if (!b || fill_wait(b, FILL_UNTIL_END) != FILL_DONE)
			rc = b ? b->rc : E_TOO_MANY;
		fill_put(b);
	}
	if (!rc)
		rc = store_manifest_put(m->st, f->repo, f->digest.alg, &f->digest, f->body.buf, f->body.len, media_type,
					f->ref[0] && !strchr(f->ref, ':') ? f->ref : NULL, &actor, &res, &detail);
	if (rc)
		log_warn("mirror: %s:%s not stored: %s%s%s", f->repo, f->ref, err_desc(rc)->code, detail.len ? ": " : "",
			 detail.buf);
	store_put_result_release(&res);
	buf_release(&detail);
	free(mine);
	return rc;
}

static void manifest_job(void *arg)
{
	struct fill *f = arg;
	struct mirror *m = f->m;
	struct upstream_manifest um;
	struct buf remote = BUF_INIT;
	int rc = upstream_remote_name(f->up->client, f->repo, &remote);
	int64_t asked = clock_wall_ms();
	upstream_manifest_init(&um);
	if (!rc && (rc = upstream_manifest_get(f->up->client, remote.buf, f->ref, &um, &f->ue)))
		rc = mirror_upstream_fail(f->up, rc, &f->ue, &f->detail);
	if (rc) {
		log_warn("mirror: %s:%s: %s", f->repo, f->ref, f->detail.buf);
		fill_end(f, FILL_FAILED, rc);
		goto out;
	}
	atomic_fetch_add_explicit(&f->up->stats.bytes, um.body.len, memory_order_relaxed);
	mirror_learn_sizes(m, &um.body);
	/* the waiting requests get the bytes now; storing may take the image's blobs */
	pthread_mutex_lock(&f->lock);
	f->digest = um.digest;
	snprintf(f->media_type, sizeof(f->media_type), "%s", um.media_type);
	buf_add(&f->body, um.body.buf, um.body.len);
	f->asked_ms = asked;
	f->state = FILL_READY;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	rc = manifest_commit(f, um.media_type[0] ? um.media_type : NULL);
	if (!rc) {
		mirror_audit(m, f->up, f->repo, "manifest", f->ref, &f->digest, (int64_t)um.body.len);
		if (!strchr(f->ref, ':')) {
			struct buf key = BUF_INIT;
			buf_addf(&key, "%s:%s", f->repo, f->ref);
			mirror_mark_fresh(m, key.buf, asked);
			buf_release(&key);
		}
	}
	fill_end(f, FILL_DONE, rc);
out:
	upstream_manifest_release(&um);
	buf_release(&remote);
	fill_put(f);
}

struct fill *fill_manifest_pending(struct mirror *m, const char *repo, const struct digest *d)
{
	struct fill *found = NULL;
	pthread_mutex_lock(&m->lock);
	for (struct fill *f = m->fills; f && !found; f = f->next) {
		if (f->kind != FILL_MANIFEST || strcmp(f->repo, repo))
			continue;
		pthread_mutex_lock(&f->lock);
		if (f->state == FILL_READY && digest_eq(&f->digest, d)) {
			found = f;
			f->refs++;
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return found;
}

struct fill *fill_manifest(struct mirror *m, struct mirror_up *up, const char *repo, const char *ref)
{
	struct buf key = BUF_INIT;
	buf_addf(&key, "m %s@%s", repo, ref);
	struct fill *f = fill_new(m, up, FILL_MANIFEST, key.buf, repo, ref);
	buf_release(&key);
	return fill_start(m, f, m->manq, manifest_job);
}
