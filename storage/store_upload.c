/*
 * store_upload: blob uploads through the store: the session row in meta,
 * the bytes in the blob backend, exclusive use per request, and the rewind
 * of a refused request.
 *
 * A backend whose uploads keep a state (an object store: any node may
 * serve the next request) gets it persisted with the session row, and
 * exclusive use there rather than in the process: a request leases the
 * row (a conditional write bumping its version), every later write of the
 * request is conditional on the version it holds, and the lease goes back
 * at release. A request of another node meanwhile gets E_UPLOAD_BUSY (409)
 * and writes nothing to the store, so it cannot overwrite the parts or the
 * tail of the holder. A lease a killed node leaves behind runs out after
 * LEASE_MS; a request moving data renews it every LEASE_RENEW_MS. The
 * local directory keeps no state: none of these reads or writes happen.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "paths.h"
#include "store_backend.h"
#include "store_meta.h"
#include "upload.h"
#include "xalloc.h"

/*
 * How often a chunked push records its activity in meta (a commit with an
 * fdatasync) for the stale-upload purge: well inside the shortest
 * upload_ttl (one minute), and the purge also spares a file written since.
 */
#define TOUCH_EVERY_MS 10000
#define LEASE_MS 60000
#define LEASE_RENEW_MS 20000

struct store_upload {
	struct store *st;
	struct blob_upload *bu;
	char id[STORE_UPLOAD_ID_LEN + 1];
	char *repo;
	int oneshot;  /* no session row: gone at release unless finished */
	int finished;
	/* a backend keeping state: */
	struct buf state0;   /* the state at acquire (a one-shot upload's only state) */
	int64_t version;     /* of the row, as this request last wrote it */
	int64_t leased_ms;   /* when the lease was taken or renewed */
	int flushed;         /* a new state was persisted by this request */
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_upload_id_check(const char *id)
{
	return paths_upload_id_check(id);
}

int store_upload_create(struct store *st, const char *repo, char id[STORE_UPLOAD_ID_LEN + 1])
{
	struct buf state = BUF_INIT;
	int rc;
	upload_new_id(id);
	if ((rc = st->blobs->ops->up_create(st->blobs, id, &state)))
		goto out;
	if ((rc = meta_upload_create_state(st->meta, id, repo, state.buf, state.len)))
		st->blobs->ops->up_remove(st->blobs, id, state.buf, state.len);
out:
	buf_release(&state);
	return rc;
}

static struct store_upload *upload_new(struct store *st, const char *repo, const char *id)
{
	struct store_upload *u = xcalloc(1, sizeof(*u));
	u->st = st;
	u->repo = xstrdup(repo);
	memcpy(u->id, id, STORE_UPLOAD_ID_LEN + 1);
	buf_init(&u->state0, 0);
	return u;
}

static void upload_free(struct store_upload *u)
{
	buf_release(&u->state0);
	free(u->repo);
	free(u);
}

/* Ends a backend state's lease, first putting the state of acquire back when restore is set. */
static void lease_end(struct store_upload *u, int restore)
{
	int rc = 0;
	if (restore)
		rc = meta_upload_state_put(u->st->meta, u->id, &u->version, u->state0.buf, u->state0.len);
	if (!rc)
		rc = meta_upload_lease_end(u->st->meta, u->id, u->version);
	if (rc && rc != E_BLOB_UPLOAD_UNKNOWN)
		log_warn("upload %s: giving its lease back failed (%d); it runs out in %d s", u->id, rc,
			 LEASE_MS / 1000);
}

int store_upload_acquire(struct store *st, const char *repo, const char *id, struct store_upload **out,
			 struct buf *detail)
{
	const struct blob_backend_ops *ops = st->blobs->ops;
	struct store_upload *u;
	int rc;
	*out = NULL;
	if ((rc = store_upload_id_check(id)) || (!ops->keeps_state && (rc = meta_upload_check(st->meta, id, repo))))
		return rc;
	if ((rc = store_push_allowed(st))) {
		if (detail)
			buf_adds(detail, STORE_FULL_DETAIL);
		return rc;
	}
	u = upload_new(st, repo, id);
	if (ops->keeps_state) {
		u->leased_ms = wall_ms();
		rc = meta_upload_lease(st->meta, id, repo, u->leased_ms, u->leased_ms + LEASE_MS, &u->state0, &u->version);
		if (rc == E_UPLOAD_BUSY && detail)
			buf_adds(detail, "another request is writing this upload");
		if (rc) {
			upload_free(u);
			return rc;
		}
	}
	if ((rc = ops->up_acquire(st->blobs, id, u->state0.buf, u->state0.len, &u->bu))) {
		if (ops->keeps_state)
			lease_end(u, 0);
		upload_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

int store_upload_oneshot(struct store *st, const char *repo, struct store_upload **out, struct buf *detail)
{
	const struct blob_backend_ops *ops = st->blobs->ops;
	char id[STORE_UPLOAD_ID_LEN + 1];
	struct store_upload *u;
	int rc;
	(void)detail;
	*out = NULL;
	upload_new_id(id);
	u = upload_new(st, repo, id);
	u->oneshot = 1;
	/* no session row: its state lives in this request only */
	if ((rc = ops->up_create(st->blobs, id, &u->state0))) {
		upload_free(u);
		return rc;
	}
	if ((rc = ops->up_acquire(st->blobs, id, u->state0.buf, u->state0.len, &u->bu))) {
		ops->up_remove(st->blobs, id, u->state0.buf, u->state0.len);
		upload_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

const char *store_upload_id(const struct store_upload *u)
{
	return u->id;
}

int64_t store_upload_offset(const struct store_upload *u)
{
	return u->st->blobs->ops->up_offset(u->bu);
}

void store_upload_expect(struct store_upload *u, int64_t len)
{
	u->st->blobs->ops->up_expect(u->bu, len);
}

int store_upload_write(struct store_upload *u, const void *data, size_t len)
{
	const struct blob_backend_ops *ops = u->st->blobs->ops;
	/* a long request keeps its lease: another node must not take the upload from under it */
	if (ops->keeps_state && !u->oneshot) {
		int64_t now = wall_ms();
		if (now - u->leased_ms >= LEASE_RENEW_MS) {
			int rc = meta_upload_lease_renew(u->st->meta, u->id, &u->version, now + LEASE_MS);
			if (rc)
				return rc;
			u->leased_ms = now;
		}
	}
	return ops->up_write(u->bu, data, len);
}

int store_upload_flush(struct store_upload *u)
{
	struct buf state = BUF_INIT;
	int rc = u->st->blobs->ops->up_flush(u->bu, &state);
	if (!rc && state.len) {
		/* a one-shot upload has no row: its state stays in memory until the finish */
		if (u->oneshot) {
			buf_reset(&u->state0);
			buf_add(&u->state0, state.buf, state.len);
		} else if (!(rc = meta_upload_state_put(u->st->meta, u->id, &u->version, state.buf, state.len))) {
			u->flushed = 1;
		}
	}
	buf_release(&state);
	return rc;
}

void store_upload_touch(struct store_upload *u)
{
	const struct blob_backend_ops *ops = u->st->blobs->ops;
	if (u->oneshot)
		return;
	/* activity: keeps the upload from the stale-upload purge */
	if (!ops->up_touch_due || ops->up_touch_due(u->bu, TOUCH_EVERY_MS))
		(void)meta_upload_touch(u->st->meta, u->id);
}

/*
 * Records the blob the backend stored at loc: with the upload's row in
 * one transaction, or (one-shot) as a link. When the content was known
 * already at another location, that one stays and the new copy goes.
 */
static int record(struct store_upload *u, const struct digest *want, int64_t size, const struct buf *loc)
{
	const struct blob_backend_ops *ops = u->st->blobs->ops;
	struct buf kept = BUF_INIT;
	int rc;
	if (!ops->locates)
		return u->oneshot ? meta_blob_link(u->st->meta, u->repo, want, size) : meta_upload_commit(u->st->meta, u->id, u->repo, want, size);
	if (u->oneshot)
		rc = meta_blob_link_at(u->st->meta, u->repo, want, size, loc->buf, &kept);
	else
		rc = meta_upload_commit_at(u->st->meta, u->id, u->repo, want, size, u->version, loc->buf, &kept);
	if (!rc && loc->len && strcmp(kept.buf, loc->buf)) {
		int gone = ops->remove(u->st->blobs, want, loc->buf);
		if (gone)
			log_warn("upload %s: removing its copy of content stored before failed (%d), left as garbage",
				 u->id, gone);
	}
	buf_release(&kept);
	return rc;
}

int store_upload_finish(struct store_upload *u, const struct digest *want)
{
	struct buf loc = BUF_INIT;
	int64_t size;
	int rc;
	if (!(rc = u->st->blobs->ops->up_finish(u->bu, want, &size, &loc)))
		rc = record(u, want, size, &loc);
	/* the row is gone with a commit; after a failed one the upload goes on from its last state */
	if (!rc)
		u->finished = 1;
	buf_release(&loc);
	return rc;
}

void store_upload_release(struct store_upload *u, int refused)
{
	const struct blob_backend_ops *ops;
	if (!u)
		return;
	ops = u->st->blobs->ops;
	/* A refused PATCH or PUT stores nothing: the client was told it
	 * failed, and the Range it reads next is where it started. */
	if (refused && !u->oneshot)
		(void)ops->up_rewind(u->bu);
	ops->up_release(u->bu);
	if (ops->keeps_state && !u->oneshot && !u->finished)
		lease_end(u, refused && u->flushed);
	if (u->oneshot && !u->finished)
		ops->up_remove(u->st->blobs, u->id, u->state0.buf, u->state0.len);
	upload_free(u);
}

/* The row of upload id of repo: its backend state (empty for a local directory) and lease. */
static int row(struct store *st, const char *repo, const char *id, struct buf *state, int64_t *lease_ms)
{
	int64_t version;
	*lease_ms = 0;
	if (!st->blobs->ops->keeps_state)
		return meta_upload_check(st->meta, id, repo);
	return meta_upload_get(st->meta, id, repo, state, &version, lease_ms);
}

int store_upload_status(struct store *st, const char *repo, const char *id, int64_t *size)
{
	struct buf state = BUF_INIT;
	int64_t lease;
	int rc = row(st, repo, id, &state, &lease);
	if (!rc)
		rc = st->blobs->ops->up_size(st->blobs, id, state.buf, state.len, size);
	buf_release(&state);
	return rc;
}

int store_upload_cancel(struct store *st, const char *repo, const char *id)
{
	struct buf state = BUF_INIT;
	int64_t lease;
	int rc = row(st, repo, id, &state, &lease);
	/* the request holding it would go on writing parts of what is cancelled */
	if (!rc && lease > wall_ms())
		rc = E_UPLOAD_BUSY;
	if (rc) {
		buf_release(&state);
		return rc;
	}
	rc = st->blobs->ops->up_remove(st->blobs, id, state.buf, state.len);
	buf_release(&state);
	if (rc && rc != E_BLOB_UPLOAD_UNKNOWN)
		return rc;
	rc = meta_upload_delete(st->meta, id);
	if (store_retry_full(st, rc))
		rc = meta_upload_delete(st->meta, id);
	return rc;
}
