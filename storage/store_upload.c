/*
 * store_upload: blob uploads through the store: the session row in meta,
 * the bytes in the blob backend, exclusive use per request, and the rewind
 * of a refused request.
 */
#include <stdlib.h>
#include <string.h>

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

struct store_upload {
	struct store *st;
	struct blob_upload *bu;
	char id[STORE_UPLOAD_ID_LEN + 1];
	char *repo;
	int oneshot;  /* no session row: gone at release unless finished */
	int finished;
};

int store_upload_id_check(const char *id)
{
	return paths_upload_id_check(id);
}

/*
 * The backend's per-upload state. The local backend keeps none (its file
 * is the state); a backend that does needs the session row to hold it,
 * which meta's upload table does not yet: refused until then.
 */
static int keep_state(const struct buf *state)
{
	if (!state->len)
		return 0;
	log_error("blob backend upload state cannot be persisted by this metadata schema");
	return E_INTERNAL;
}

static int backend_create(struct store *st, char id[STORE_UPLOAD_ID_LEN + 1])
{
	struct buf state = BUF_INIT;
	int rc;
	upload_new_id(id);
	rc = st->blobs->ops->up_create(st->blobs, id, &state);
	if (!rc && (rc = keep_state(&state)))
		st->blobs->ops->up_remove(st->blobs, id, NULL, 0);
	buf_release(&state);
	return rc;
}

int store_upload_create(struct store *st, const char *repo, char id[STORE_UPLOAD_ID_LEN + 1])
{
	int rc;
	if ((rc = backend_create(st, id)))
		return rc;
	if ((rc = meta_upload_create(id, repo)))
		st->blobs->ops->up_remove(st->blobs, id, NULL, 0);
	return rc;
}

static struct store_upload *upload_new(struct store *st, const char *repo, const char *id)
{
	struct store_upload *u = xcalloc(1, sizeof(*u));
	u->st = st;
	u->repo = xstrdup(repo);
	memcpy(u->id, id, STORE_UPLOAD_ID_LEN + 1);
	return u;
}

int store_upload_acquire(struct store *st, const char *repo, const char *id, struct store_upload **out,
			 struct buf *detail)
{
	struct store_upload *u;
	int rc;
	*out = NULL;
	if ((rc = store_upload_id_check(id)) || (rc = meta_upload_check(id, repo)))
		return rc;
	if ((rc = store_push_allowed(st))) {
		if (detail)
			buf_adds(detail, STORE_FULL_DETAIL);
		return rc;
	}
	u = upload_new(st, repo, id);
	if ((rc = st->blobs->ops->up_acquire(st->blobs, id, NULL, 0, &u->bu))) {
		free(u->repo);
		free(u);
		return rc;
	}
	*out = u;
	return 0;
}

int store_upload_oneshot(struct store *st, const char *repo, struct store_upload **out, struct buf *detail)
{
	char id[STORE_UPLOAD_ID_LEN + 1];
	struct store_upload *u;
	int rc;
	(void)detail;
	*out = NULL;
	if ((rc = backend_create(st, id)))
		return rc;
	u = upload_new(st, repo, id);
	u->oneshot = 1;
	if ((rc = st->blobs->ops->up_acquire(st->blobs, id, NULL, 0, &u->bu))) {
		st->blobs->ops->up_remove(st->blobs, id, NULL, 0);
		free(u->repo);
		free(u);
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
	return u->st->blobs->ops->up_write(u->bu, data, len);
}

int store_upload_flush(struct store_upload *u)
{
	struct buf state = BUF_INIT;
	int rc = u->st->blobs->ops->up_flush(u->bu, &state);
	if (!rc)
		rc = keep_state(&state);
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
		(void)meta_upload_touch(u->id);
}

int store_upload_finish(struct store_upload *u, const struct digest *want)
{
	int64_t size;
	int rc;
	if ((rc = u->st->blobs->ops->up_finish(u->bu, want, &size, NULL)))
		return rc;
	u->finished = 1;
	if (u->oneshot)
		return meta_blob_link(u->repo, want, size);
	return meta_upload_commit(u->id, u->repo, want, size);
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
	if (u->oneshot && !u->finished)
		ops->up_remove(u->st->blobs, u->id, NULL, 0);
	free(u->repo);
	free(u);
}

int store_upload_status(struct store *st, const char *repo, const char *id, int64_t *size)
{
	int rc;
	if ((rc = meta_upload_check(id, repo)))
		return rc;
	return st->blobs->ops->up_size(st->blobs, id, NULL, 0, size);
}

int store_upload_cancel(struct store *st, const char *repo, const char *id)
{
	int rc;
	if ((rc = meta_upload_check(id, repo)))
		return rc;
	rc = st->blobs->ops->up_remove(st->blobs, id, NULL, 0);
	if (rc && rc != E_BLOB_UPLOAD_UNKNOWN)
		return rc;
	rc = meta_upload_delete(id);
	if (store_retry_full(rc))
		rc = meta_upload_delete(id);
	return rc;
}
