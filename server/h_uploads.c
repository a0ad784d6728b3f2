/* h_uploads: blob uploads (monolithic, streamed, ranged), status, cancel and mounts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "handlers.h"
#include "router.h"
#include "scope.h"
#include "meta.h"
#include "metrics.h"
#include "reserve.h"
#include "upload.h"
#include "xalloc.h"

/*
 * How often a chunked push records its activity in meta (a commit with an
 * fdatasync) for the stale-upload purge: well inside the shortest
 * upload_ttl (one minute), and the purge also spares a file written since.
 */
#define TOUCH_EVERY_MS 10000

/* Per-request state of an upload being written. */
struct up_state {
	struct upload *u;
	char id[UPLOAD_ID_LEN + 1];
	struct digest want;   /* PUT / monolithic POST: expected digest */
	int monolithic;       /* upload created by this request; removed unless committed */
	int committed;
	int has_range;
	uint64_t range_len;   /* bytes announced by Content-Range */
	int64_t start;        /* offset when the request began */
	int counted;          /* counted in the uploads-in-progress gauge */
};

static void up_cleanup(struct req *r)
{
	struct up_state *st = r->hstate;
	if (!st)
		return;
	if (st->u) {
		/* A refused PATCH or PUT stores nothing: the client was told
		 * it failed, and the Range it reads next is where it started. */
		if (r->err && !st->monolithic)
			(void)upload_rewind(st->u);
		upload_release(st->u);
	}
	if (st->counted)
		metrics_upload_end();
	if (st->monolithic && !st->committed)
		upload_remove(&r->reg->bs, st->id);
	free(st);
	r->hstate = NULL;
}

static void add_progress_headers(struct req *r, const char *id, int64_t offset)
{
	resp_header(r, "Location", "/v2/%s/blobs/uploads/%s", r->name, id);
	resp_header(r, "Range", "0-%lld", (long long)(offset > 0 ? offset - 1 : 0));
	resp_header(r, "Docker-Upload-UUID", "%s", id);
}

/* A body longer than its Content-Range is refused at its first excess byte, before it is written. */
static int up_body(struct req *r, const char *data, size_t len)
{
	struct up_state *st = r->hstate;
	if (!st->counted) {
		st->counted = 1;
		metrics_upload_begin();
	}
	if (st->has_range && len > st->range_len - (uint64_t)(upload_offset(st->u) - st->start)) {
		add_progress_headers(r, st->id, st->start);
		return req_fail(r, E_SIZE_INVALID, "body longer than its Content-Range of %llu bytes",
				(unsigned long long)st->range_len);
	}
	return upload_write(st->u, data, len);
}

static void add_blob_headers(struct req *r, const struct digest *d)
{
	char ds[DIGEST_STR_MAX];
	digest_str(d, ds);
	resp_header(r, "Location", "/v2/%s/blobs/%s", r->name, ds);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
}

struct mount_find {
	struct req *r;
	char *repo;
};

static int mount_pick(void *ctx, const char *repo)
{
	struct mount_find *mf = ctx;
	if (!router_may(mf->r, repo, ACTION_PULL))
		return 0;
	mf->repo = xstrdup(repo);
	return 1;
}

/*
 * Links d into r->name from `from` (or, without it, from any repository
 * the caller may pull). Returns 0 when mounted, 1 when the caller should
 * fall back to a regular upload, or an E_* code.
 */
static int try_mount(struct req *r, const struct digest *d, const char *from)
{
	struct mount_find mf = { r, NULL };
	int64_t size;
	int rc;
	if (from) {
		if (name_check(from, strlen(from)) || !router_may(r, from, ACTION_PULL))
			return 1;
		mf.repo = xstrdup(from);
	} else {
		if ((rc = meta_blob_repos(d, mount_pick, &mf)) < 0)
			return rc;
		if (!mf.repo)
			return 1;
	}
	rc = meta_blob_linked(mf.repo, d, &size);
	if (!rc && blobstore_stat(&r->reg->bs, d, NULL))
		rc = 1; /* known but its file is gone: let the client upload it again */
	else if (!rc)
		rc = meta_blob_link(r->name, d, size);
	else if (rc == E_BLOB_UNKNOWN)
		rc = 1;
	free(mf.repo);
	if (rc == 0) {
		add_blob_headers(r, d);
		resp_status(r, 201);
	}
	return rc;
}

static struct up_state *state_new(struct req *r)
{
	struct up_state *st = xcalloc(1, sizeof(*st));
	r->hstate = st;
	r->on_cleanup = up_cleanup;
	return st;
}

int h_upload_start(struct req *r)
{
	const char *mount = req_arg(r, "mount"), *dg = req_arg(r, "digest");
	struct up_state *st;
	char id[UPLOAD_ID_LEN + 1];
	int rc;
	if (reserve_restore())
		return req_fail(r, E_NO_SPACE, RESERVE_FULL_DETAIL);
	if (mount) {
		struct digest d;
		if (digest_parse(mount, &d))
			return req_fail(r, E_DIGEST_INVALID, "invalid mount digest");
		rc = try_mount(r, &d, req_arg(r, "from"));
		if (rc <= 0)
			return rc;
	}
	if (dg) {
		st = state_new(r);
		if (digest_parse(dg, &st->want))
			return req_fail(r, E_DIGEST_INVALID, "invalid digest \"%s\"", dg);
		if ((rc = upload_create(&r->reg->bs, st->id)))
			return rc;
		st->monolithic = 1;
		if ((rc = upload_acquire(&r->reg->bs, st->id, &st->u)))
			return rc;
		upload_expect(st->u, r->content_length);
		r->body_mode = BODY_STREAM;
		r->on_body = up_body;
		return 0;
	}
	if ((rc = upload_create(&r->reg->bs, id)))
		return rc;
	if ((rc = meta_upload_create(id, r->name))) {
		upload_remove(&r->reg->bs, id);
		return rc;
	}
	add_progress_headers(r, id, 0);
	resp_status(r, 202);
	return 0;
}

int h_upload_start_finish(struct req *r)
{
	struct up_state *st = r->hstate;
	int64_t size;
	int rc;
	if ((rc = upload_finish(st->u, &st->want, &size)))
		return rc;
	st->committed = 1;
	if ((rc = meta_blob_link(r->name, &st->want, size)))
		return rc;
	add_blob_headers(r, &st->want);
	resp_status(r, 201);
	return 0;
}

/* Common start of PATCH and PUT: take the upload and check Content-Range. */
static int take_upload(struct req *r, struct up_state *st)
{
	const char *cr = req_header(r, "Content-Range");
	int rc;
	memcpy(st->id, r->ref, UPLOAD_ID_LEN + 1);
	if ((rc = meta_upload_check(st->id, r->name)))
		return rc;
	if (reserve_restore())
		return req_fail(r, E_NO_SPACE, RESERVE_FULL_DETAIL);
	if ((rc = upload_acquire(&r->reg->bs, st->id, &st->u)))
		return rc;
	st->start = upload_offset(st->u);
	if (cr) {
		uint64_t first, last;
		if (content_range_parse(cr, &first, &last) || first != (uint64_t)st->start ||
		    (r->content_length >= 0 && (uint64_t)r->content_length != last - first + 1)) {
			add_progress_headers(r, st->id, st->start);
			return req_fail(r, E_UPLOAD_RANGE, "upload is at offset %lld", (long long)st->start);
		}
		st->has_range = 1;
		st->range_len = last - first + 1;
	}
	if (st->has_range)
		upload_expect(st->u, (int64_t)st->range_len); /* <= INT64_MAX: content_range_parse() */
	else
		upload_expect(st->u, r->content_length);
	r->body_mode = BODY_STREAM;
	r->on_body = up_body;
	return 0;
}

/* After the body: the announced range must have arrived in full. */
static int check_received(struct req *r, struct up_state *st)
{
	int64_t got = upload_offset(st->u) - st->start;
	if (st->has_range && (uint64_t)got != st->range_len) {
		add_progress_headers(r, st->id, st->start); /* where the refusal leaves it (up_cleanup) */
		return req_fail(r, E_SIZE_INVALID, "received %lld bytes, Content-Range announced %llu",
				(long long)got, (unsigned long long)st->range_len);
	}
	return 0;
}

int h_upload_patch(struct req *r)
{
	return take_upload(r, state_new(r));
}

int h_upload_patch_finish(struct req *r)
{
	struct up_state *st = r->hstate;
	int rc;
	/* Bytes still buffered are not stored yet: a 202 must not count them
	 * before they are written (a full disk fails here, with 507). */
	if ((rc = upload_flush(st->u)))
		return rc;
	if ((rc = check_received(r, st)))
		return rc;
	/* activity: keeps the upload from the stale-upload purge */
	if (upload_touch_due(st->u, TOUCH_EVERY_MS))
		(void)meta_upload_touch(st->id);
	add_progress_headers(r, st->id, upload_offset(st->u));
	resp_status(r, 202);
	return 0;
}

int h_upload_put(struct req *r)
{
	struct up_state *st = state_new(r);
	const char *dg = req_arg(r, "digest");
	if (!dg || digest_parse(dg, &st->want))
		return req_fail(r, E_DIGEST_INVALID, dg ? "invalid digest \"%s\"" : "digest parameter missing", dg);
	return take_upload(r, st);
}

int h_upload_put_finish(struct req *r)
{
	struct up_state *st = r->hstate;
	int64_t size;
	int rc;
	if ((rc = check_received(r, st)))
		return rc;
	if ((rc = upload_finish(st->u, &st->want, &size)))
		return rc;
	if ((rc = meta_upload_commit(st->id, r->name, &st->want, size)))
		return rc;
	add_blob_headers(r, &st->want);
	resp_status(r, 201);
	return 0;
}

int h_upload_status(struct req *r)
{
	int64_t size;
	int rc;
	if ((rc = meta_upload_check(r->ref, r->name)))
		return rc;
	if ((rc = upload_size(&r->reg->bs, r->ref, &size)))
		return rc;
	add_progress_headers(r, r->ref, size);
	resp_status(r, 204);
	return 0;
}

int h_upload_cancel(struct req *r)
{
	int rc;
	if ((rc = meta_upload_check(r->ref, r->name)))
		return rc;
	rc = upload_remove(&r->reg->bs, r->ref);
	if (rc && rc != E_BLOB_UPLOAD_UNKNOWN)
		return rc;
	rc = meta_upload_delete(r->ref);
	if (rc == E_NO_SPACE && reserve_release())
		rc = meta_upload_delete(r->ref);
	if (rc)
		return rc;
	resp_status(r, 204);
	return 0;
}
