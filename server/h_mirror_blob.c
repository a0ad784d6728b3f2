/*
 * h_mirror_blob: the pull-through cache's blob path (see h_mirror.h). A
 * blob the repository lacks is mounted from another repository of the same
 * upstream when one has it, else filled from the upstream. When its size
 * is known (learnt from a manifest fetched before) a GET streams from the
 * fill as the bytes arrive: the reply starts with the first bytes, and a
 * reader that falls behind the fill's window, or joins late, continues
 * from the store once the blob is stored. Without a known size, for a
 * Range or a HEAD, the request waits for the fill and is then served from
 * the store. A client going away only drops its reader: the fill goes on
 * and stores the blob (or nothing, when the digest does not match).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "h_mirror_internal.h"
#include "handlers.h"
#include "xalloc.h"

/* ---- the reader streaming along a fill ---- */

struct blob_reader {
	struct fill *f;
	struct store *st;
	int64_t pos, size;
	struct fill_waiter waiter;  /* linked in f->parked while waiter.w.wake is set */
	int from_store;
	struct store_reader inner;  /* from_store: the stored blob */
};

static int read_stored(struct blob_reader *b, void *buf, size_t max, size_t *n)
{
	int rc;
	if (!b->from_store) {
		if ((rc = store_blob_open(b->st, b->f->repo, &b->f->digest, &b->inner, NULL)))
			return rc;
		b->from_store = 1;
	}
	if ((rc = store_reader_read(&b->inner, b->pos, buf, max, n)))
		return rc;
	b->pos += (int64_t)*n;
	return *n ? 0 : E_IO; /* the store's copy is shorter than announced */
}

static int src_pull(void *ctx, void *buf, size_t max, size_t *n, const struct store_waiter *w)
{
	struct blob_reader *b = ctx;
	struct fill *f = b->f;
	*n = 0;
	if (b->from_store)
		return read_stored(b, buf, max, n);
	pthread_mutex_lock(&f->lock);
	int64_t held = f->got < (int64_t)f->cap ? f->got : (int64_t)f->cap, low = f->got - held;
	if (b->pos >= low && b->pos < f->got) {
		size_t at = (size_t)(b->pos % (int64_t)f->cap);
		size_t len = (size_t)(f->got - b->pos);
		len = len < f->cap - at ? len : f->cap - at;
		*n = len < max ? len : max;
		memcpy(buf, f->ring + at, *n);
		b->pos += (int64_t)*n;
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	if (f->state != FILL_RUNNING) {
		int failed = f->state == FILL_FAILED;
		pthread_mutex_unlock(&f->lock);
		return failed ? E_IO : read_stored(b, buf, max, n);
	}
	if (!b->waiter.w.wake) {
		b->waiter.w = *w;
		b->waiter.until_done = b->pos < low;
		b->waiter.next = f->parked;
		f->parked = &b->waiter;
		w->park(w->ctx);
	}
	pthread_mutex_unlock(&f->lock);
	return STORE_PULL_WAIT;
}

static void src_release(void *ctx)
{
	struct blob_reader *b = ctx;
	struct fill *f = b->f;
	pthread_mutex_lock(&f->lock);
	for (struct fill_waiter **p = &f->parked; *p; p = &(*p)->next)
		if (*p == &b->waiter) {
			*p = b->waiter.next;
			break;
		}
	pthread_mutex_unlock(&f->lock);
	if (b->from_store)
		store_reader_release(&b->inner);
	fill_put(f); /* the fill itself goes on: it belongs to its job */
	free(b);
}

static const struct store_source fill_source = { src_pull, src_release };

/* ---- the request ---- */

struct bstep {
	struct mirror *m;
	struct mirror_up *up;
	int stream;
	struct fill *f;
};

static void bstep_cleanup(struct req *r)
{
	struct bstep *s = r->hstate;
	r->hstate = NULL;
	if (s)
		fill_put(s->f);
	free(s);
}

static void blob_work(struct req *r)
{
	struct bstep *s = r->hstate;
	const struct digest *d = &r->reference.digest;
	int64_t size = mirror_size_hint(s->m, d);
	s->stream = r->method == M_GET && size > 0 && !req_header(r, "Range");
	s->f = fill_blob(s->m, s->up, r->name, d, size);
	if (s->f)
		fill_wait(s->f, s->stream ? FILL_UNTIL_BYTES : FILL_UNTIL_END);
}

static int blob_then(struct req *r)
{
	struct bstep *s = r->hstate;
	struct fill *f = s->f;
	char ds[DIGEST_STR_MAX];
	if (!f)
		return req_fail(r, E_TOOMANYREQUESTS, "too many upstream fetches at once, retry");
	pthread_mutex_lock(&f->lock);
	enum fill_state st = f->state;
	pthread_mutex_unlock(&f->lock);
	if (st == FILL_FAILED) {
		if (f->ue.retry_after_s)
			resp_header(r, "Retry-After", "%u", f->ue.retry_after_s);
		return req_fail(r, f->rc, "%s", f->detail.buf);
	}
	if (st == FILL_DONE || !s->stream)
		return h_blob_serve(r);
	struct blob_reader *b = xcalloc(1, sizeof(*b));
	struct store_reader *rd = xcalloc(1, sizeof(*rd));
	b->f = f;
	s->f = NULL; /* the reader's reference now */
	b->st = s->m->st;
	b->size = f->size;
	store_reader_source(rd, b->size, &fill_source, b);
	digest_str(&f->digest, ds);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
	resp_header(r, "ETag", "\"%s\"", ds);
	resp_header(r, "Accept-Ranges", "bytes");
	resp_header(r, "Content-Type", "application/octet-stream");
	resp_reader(r, 200, rd, (uint64_t)b->size);
	return 0;
}

/* Another repository of the same upstream may hold the blob: the upstream serves it there too. */
static int same_upstream(void *ctx, const char *repo)
{
	return !strncmp(repo, ((struct mirror_up *)ctx)->prefix, strlen(((struct mirror_up *)ctx)->prefix));
}

int h_mirror_blob_get(struct req *r)
{
	struct mirror *m = r->reg->mirror;
	struct mirror_up *up = mirror_up_for(m, r->name);
	const struct digest *d = &r->reference.digest;
	struct bstep *s;
	if (!up)
		return 1;
	if (!store_blob_stat(m->st, r->name, d, NULL) ||
	    store_blob_mount(m->st, r->name, d, NULL, same_upstream, up) == 0) {
		atomic_fetch_add_explicit(&up->stats.hits, 1, memory_order_relaxed);
		return 1;
	}
	atomic_fetch_add_explicit(&up->stats.misses, 1, memory_order_relaxed);
	s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->up = up;
	return mirror_wait(r, s, bstep_cleanup, blob_work, blob_then);
}

/* ---- what manifests reference ---- */

static int desc_read(json_t *desc, struct mirror_blob_ref *out)
{
	json_t *dg = json_object_get(desc, "digest"), *sz = json_object_get(desc, "size");
	if (!json_is_string(dg) || !json_is_integer(sz) || json_integer_value(sz) < 0 ||
	    digest_parse(json_string_value(dg), &out->d))
		return -1;
	out->size = json_integer_value(sz);
	return 0;
}

size_t mirror_image_blobs(const struct buf *body, struct mirror_blob_ref *out, size_t max)
{
	json_t *doc = json_loadb(body->buf, body->len, 0, NULL), *layers, *l;
	size_t n = 0, i;
	if (!doc)
		return 0;
	if (json_object_get(doc, "config") && !desc_read(json_object_get(doc, "config"), &out[n]))
		n++;
	layers = json_object_get(doc, "layers");
	json_array_foreach(layers, i, l) {
		/* foreign layers (with urls) are not the upstream's to give, nor the store's to require */
		if (n < max && !json_object_get(l, "urls") && !desc_read(l, &out[n]))
			n++;
	}
	json_decref(doc);
	return n;
}

void mirror_learn_sizes(struct mirror *m, const struct buf *body)
{
	static const char *lists[] = { "layers", "manifests", "blobs" };
	json_t *doc = json_loadb(body->buf, body->len, 0, NULL), *item;
	struct mirror_blob_ref ref;
	char ds[DIGEST_STR_MAX];
	size_t i;
	if (!doc)
		return;
	pthread_mutex_lock(&m->lock);
	if (!desc_read(json_object_get(doc, "config"), &ref))
		mirror_map_set(&m->sizes, digest_str(&ref.d, ds), ref.size);
	for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++)
		json_array_foreach(json_object_get(doc, lists[k]), i, item)
			if (!desc_read(item, &ref))
				mirror_map_set(&m->sizes, digest_str(&ref.d, ds), ref.size);
	pthread_mutex_unlock(&m->lock);
	json_decref(doc);
}

int64_t mirror_size_hint(struct mirror *m, const struct digest *d)
{
	char ds[DIGEST_STR_MAX];
	int64_t v = -1;
	pthread_mutex_lock(&m->lock);
	if (!mirror_map_get(&m->sizes, digest_str(d, ds), &v))
		v = -1;
	pthread_mutex_unlock(&m->lock);
	return v;
}
