/* blob_s3_backend: the store's blob backend table on blob_s3 (finished blobs, uploads, presign, probe). */
#include "blob_s3_backend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "xalloc.h"

/* A readiness probe result is reused this long: load balancers ask several times a second. */
#define PROBE_CACHE_MS 1000

struct blob_s3_backend {
	struct blob_backend be; /* first: the backend's view of it */
	struct blob_s3 *b;
	atomic_llong down_ms;   /* when a call last found the store unreachable; 0 after one succeeded */
	pthread_mutex_t probe_lock;
	int64_t probe_ms;       /* when the cached probe ran */
	int probe_rc;
	struct buf probe_why;
};

static const struct blob_backend_ops s3_ops;

static struct blob_s3_backend *S(struct blob_backend *be)
{
	return (struct blob_s3_backend *)(void *)be;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct blob_s3 *blob_s3_backend_client(struct blob_backend *be)
{
	return S(be)->b;
}

int blob_s3_backend_note(struct blob_backend *be, int rc)
{
	if (rc == E_STORE_UNAVAILABLE)
		atomic_store(&S(be)->down_ms, (long long)now_ms());
	else if (rc != E_STORE && atomic_load(&S(be)->down_ms))
		atomic_store(&S(be)->down_ms, 0); /* it answered */
	if (rc == E_STORE_UNAVAILABLE || rc == E_STORE) {
		const struct s3_last_error *e = s3_last_error();
		log_warn("s3: %s (status %d, code \"%s\", request id \"%s\", %d attempts)", e->message, e->http_status,
			 e->code, e->request_id, e->attempts);
	}
	return rc;
}

void blob_s3_backend_key(const struct digest *d, const char *loc, struct buf *key)
{
	if (loc && *loc)
		buf_adds(key, loc);
	else
		blob_s3_digest_key(d, key);
}

int blob_s3_backend_open(const struct blob_s3_config *cfg, struct blob_backend **out)
{
	struct blob_s3_backend *s = xcalloc(1, sizeof(*s));
	int rc;
	*out = NULL;
	if ((rc = blob_s3_open(cfg, &s->b))) {
		log_error("s3: cannot use the object store settings (endpoint, bucket, keys)");
		free(s);
		return rc;
	}
	s->be.ops = &s3_ops;
	atomic_init(&s->down_ms, 0);
	pthread_mutex_init(&s->probe_lock, NULL);
	buf_init(&s->probe_why, 0);
	*out = &s->be;
	return 0;
}

static void s3_close(struct blob_backend *be)
{
	struct blob_s3_backend *s = S(be);
	blob_s3_free(s->b);
	pthread_mutex_destroy(&s->probe_lock);
	buf_release(&s->probe_why);
	free(s);
}

/*
 * Can the store take a write now? The write is the empty blob under its
 * own digest key: a real blob (content-addressed, so writing it again
 * changes nothing), which leaves no probe object behind to clean up.
 */
static int s3_probe(struct blob_backend *be, struct buf *detail)
{
	struct blob_s3_backend *s = S(be);
	int64_t now = now_ms();
	int rc;
	pthread_mutex_lock(&s->probe_lock);
	if (!s->probe_ms || now - s->probe_ms >= PROBE_CACHE_MS || now < s->probe_ms) {
		struct buf key = BUF_INIT;
		struct digest d;
		digest_of(DIGEST_SHA256, "", 0, &d);
		s->probe_rc = blob_s3_backend_note(be, blob_s3_put(s->b, &d, "", 0, &key));
		buf_reset(&s->probe_why);
		if (s->probe_rc) {
			const struct s3_last_error *e = s3_last_error();
			if (s->probe_rc == E_STORE_UNAVAILABLE)
				buf_addf(&s->probe_why, "object store unreachable: %s", e->message);
			else
				buf_addf(&s->probe_why, "object store refused a write: %d %s%s%s", e->http_status, e->code,
					 *e->message ? ": " : "", e->message);
		}
		s->probe_ms = now_ms();
		buf_release(&key);
	}
	rc = s->probe_rc;
	if (rc)
		buf_add(detail, s->probe_why.buf, s->probe_why.len);
	pthread_mutex_unlock(&s->probe_lock);
	return rc;
}

static int64_t s3_down_since(struct blob_backend *be)
{
	return (int64_t)atomic_load(&S(be)->down_ms);
}

static int s3_stat(struct blob_backend *be, const struct digest *d, const char *loc, int64_t *size)
{
	struct buf key = BUF_INIT;
	uint64_t n = 0;
	blob_s3_backend_key(d, loc, &key);
	int rc = blob_s3_backend_note(be, blob_s3_stat(S(be)->b, key.buf, &n));
	if (!rc && size)
		*size = (int64_t)n;
	buf_release(&key);
	return rc;
}

static int s3_write(struct blob_backend *be, const struct digest *d, const void *data, size_t len, struct buf *loc)
{
	struct buf key = BUF_INIT;
	/* under the digest's own key: the location stays empty */
	int rc = blob_s3_backend_note(be, blob_s3_put(S(be)->b, d, data, len, &key));
	(void)loc;
	buf_release(&key);
	return rc;
}

static int s3_remove(struct blob_backend *be, const struct digest *d, const char *loc)
{
	struct buf key = BUF_INIT;
	blob_s3_backend_key(d, loc, &key);
	int rc = blob_s3_backend_note(be, blob_s3_delete(S(be)->b, key.buf));
	buf_release(&key);
	return rc;
}

static int s3_presign(struct blob_backend *be, const struct digest *d, const char *loc, int ttl_s, struct buf *url)
{
	struct buf key = BUF_INIT;
	blob_s3_backend_key(d, loc, &key);
	int rc = blob_s3_presign(S(be)->b, key.buf, ttl_s > 0 ? (unsigned)ttl_s : 0, url);
	buf_release(&key);
	return rc;
}

/* ---- uploads: blob_s3's states, persisted by the store ---- */

struct s3_upload {
	struct blob_backend *be;
	struct blob_s3_upload *h;
	uint64_t flushed; /* offset of the state last handed to the store */
};

static struct s3_upload *U(struct blob_upload *u)
{
	return (struct s3_upload *)(void *)u;
}

static int s3_up_create(struct blob_backend *be, const char *id, struct buf *state)
{
	(void)be;
	(void)id; /* blob_s3 names the upload's keys with an id of its own, in the state */
	blob_s3_upload_begin(state);
	return 0;
}

static int s3_up_acquire(struct blob_backend *be, const char *id, const void *state, size_t state_len,
			 struct blob_upload **out)
{
	struct s3_upload *u = xcalloc(1, sizeof(*u));
	int rc = blob_s3_upload_open(S(be)->b, state, state_len, &u->h);
	(void)id;
	if (rc) {
		log_warn("s3 upload %s: its persisted state is unusable (%d)", id, rc);
		free(u);
		return rc;
	}
	u->be = be;
	u->flushed = blob_s3_upload_size(u->h);
	*out = (struct blob_upload *)(void *)u;
	return 0;
}

static int64_t s3_up_offset(const struct blob_upload *u)
{
	return (int64_t)blob_s3_upload_size(((const struct s3_upload *)(const void *)u)->h);
}

static void s3_up_expect(struct blob_upload *u, int64_t len)
{
	(void)u;
	(void)len; /* parts go out as they fill: nothing to reserve */
}

static int s3_up_write(struct blob_upload *u, const void *data, size_t len)
{
	return blob_s3_backend_note(U(u)->be, blob_s3_upload_write(U(u)->h, data, len));
}

static int s3_up_flush(struct blob_upload *u, struct buf *state)
{
	struct s3_upload *su = U(u);
	if (blob_s3_upload_size(su->h) == su->flushed)
		return 0; /* nothing new: no request, nothing to persist */
	int rc = blob_s3_backend_note(su->be, blob_s3_upload_commit(su->h, state));
	if (rc)
		buf_reset(state);
	else
		su->flushed = blob_s3_upload_size(su->h);
	return rc;
}

static int s3_up_finish(struct blob_upload *u, const struct digest *want, int64_t *size, struct buf *loc)
{
	struct s3_upload *su = U(u);
	struct buf key = BUF_INIT, own = BUF_INIT;
	uint64_t n = 0;
	int rc = blob_s3_backend_note(su->be, blob_s3_upload_finish(su->h, want, &key, &n));
	if (!rc) {
		*size = (int64_t)n;
		blob_s3_digest_key(want, &own);
		/* the digest's own key is recorded as no location at all */
		if (loc && strcmp(key.buf, own.buf))
			buf_add(loc, key.buf, key.len);
	}
	buf_release(&key);
	buf_release(&own);
	return rc;
}

static int s3_up_rewind(struct blob_upload *u)
{
	(void)u; /* what the request sent is in no persisted state: the store keeps the old one */
	return 0;
}

static void s3_up_release(struct blob_upload *u)
{
	blob_s3_upload_free(U(u)->h);
	free(u);
}

static int s3_up_touch_due(struct blob_upload *u, int64_t every_ms)
{
	(void)u;
	(void)every_ms;
	return 0; /* the state's write marks the session active */
}

static int s3_up_size(struct blob_backend *be, const char *id, const void *state, size_t state_len, int64_t *size)
{
	uint64_t off = 0;
	int rc = blob_s3_upload_offset(state, state_len, &off);
	(void)be;
	(void)id;
	if (!rc)
		*size = (int64_t)off;
	return rc;
}

static int s3_up_remove(struct blob_backend *be, const char *id, const void *state, size_t state_len)
{
	(void)id;
	if (!state_len)
		return 0;
	return blob_s3_backend_note(be, blob_s3_upload_cancel(S(be)->b, state, state_len));
}

static const struct blob_backend_ops s3_ops = {
	.name = "s3",
	.locates = 1,
	.keeps_state = 1,
	.close = s3_close,
	.probe = s3_probe,
	.stat = s3_stat,
	.open = blob_s3_backend_rd_open,
	.read = blob_s3_backend_rd_read,
	.stream = blob_s3_backend_rd_stream,
	.pull = blob_s3_backend_rd_pull,
	.down_since = s3_down_since,
	.reader_release = blob_s3_backend_rd_release,
	.write = s3_write,
	.remove = s3_remove,
	.presign = s3_presign,
	.list = blob_s3_backend_list,
	.drop = blob_s3_backend_drop,
	.up_create = s3_up_create,
	.up_acquire = s3_up_acquire,
	.up_offset = s3_up_offset,
	.up_expect = s3_up_expect,
	.up_write = s3_up_write,
	.up_flush = s3_up_flush,
	.up_finish = s3_up_finish,
	.up_rewind = s3_up_rewind,
	.up_release = s3_up_release,
	.up_touch_due = s3_up_touch_due,
	.up_size = s3_up_size,
	.up_remove = s3_up_remove,
	.up_name = blob_s3_backend_up_name,
};
