/* h_uploads: blob uploads (monolithic, streamed, ranged), status, cancel and mounts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "handlers.h"
#include "router.h"
#include "scope.h"
#include "metrics.h"
#include "xalloc.h"

/* Per-request state of an upload being written. */
struct up_state {
	struct store_upload *u;
	char id[STORE_UPLOAD_ID_LEN + 1];
	struct digest want;   /* PUT / monolithic POST: expected digest */
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
	/* a refused request gives up what it wrote; a one-shot upload not finished goes */
	store_upload_release(st->u, r->err != 0);
	if (st->counted)
		metrics_upload_end();
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
	if (st->has_range && len > st->range_len - (uint64_t)(store_upload_offset(st->u) - st->start)) {
		add_progress_headers(r, st->id, st->start);
		return req_fail(r, E_SIZE_INVALID, "body longer than its Content-Range of %llu bytes",
				(unsigned long long)st->range_len);
	}
	return store_upload_write(st->u, data, len);
}

static void add_blob_headers(struct req *r, const struct digest *d)
{
	char ds[DIGEST_STR_MAX];
	digest_str(d, ds);
	resp_header(r, "Location", "/v2/%s/blobs/%s", r->name, ds);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
}

static int mount_filter(void *ctx, const char *repo)
{
	return router_may(ctx, repo, ACTION_PULL);
}

/*
 * Links d into r->name from `from` (or, without it, from any repository
 * the caller may pull). Returns 0 when mounted, STORE_MOUNT_FALLBACK when
 * the caller should fall back to a regular upload, or an E_* code.
 */
static int try_mount(struct req *r, const struct digest *d, const char *from)
{
	int rc;
	if (from && (name_check(from, strlen(from)) || !router_may(r, from, ACTION_PULL)))
		return STORE_MOUNT_FALLBACK;
	rc = store_blob_mount(r->reg->store, r->name, d, from, mount_filter, r);
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
	char id[STORE_UPLOAD_ID_LEN + 1];
	int rc;
	if (store_push_allowed(r->reg->store))
		return req_fail(r, E_NO_SPACE, STORE_FULL_DETAIL);
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
		if ((rc = store_upload_oneshot(r->reg->store, r->name, &st->u, &r->err_detail)))
			return rc;
		memcpy(st->id, store_upload_id(st->u), STORE_UPLOAD_ID_LEN + 1);
		store_upload_expect(st->u, r->content_length);
		r->body_mode = BODY_STREAM;
		r->on_body = up_body;
		return 0;
	}
	if ((rc = store_upload_create(r->reg->store, r->name, id)))
		return rc;
	add_progress_headers(r, id, 0);
	resp_status(r, 202);
	return 0;
}

int h_upload_start_finish(struct req *r)
{
	struct up_state *st = r->hstate;
	int rc;
	if ((rc = store_upload_finish(st->u, &st->want)))
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
	memcpy(st->id, r->ref, STORE_UPLOAD_ID_LEN + 1);
	if ((rc = store_upload_acquire(r->reg->store, r->name, st->id, &st->u, &r->err_detail)))
		return rc;
	st->start = store_upload_offset(st->u);
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
		store_upload_expect(st->u, (int64_t)st->range_len); /* <= INT64_MAX: content_range_parse() */
	else
		store_upload_expect(st->u, r->content_length);
	r->body_mode = BODY_STREAM;
	r->on_body = up_body;
	return 0;
}

/* After the body: the announced range must have arrived in full. */
static int check_received(struct req *r, struct up_state *st)
{
	int64_t got = store_upload_offset(st->u) - st->start;
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
	if ((rc = store_upload_flush(st->u)))
		return rc;
	if ((rc = check_received(r, st)))
		return rc;
	store_upload_touch(st->u);
	add_progress_headers(r, st->id, store_upload_offset(st->u));
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
	int rc;
	if ((rc = check_received(r, st)))
		return rc;
	if ((rc = store_upload_finish(st->u, &st->want)))
		return rc;
	add_blob_headers(r, &st->want);
	resp_status(r, 201);
	return 0;
}

int h_upload_status(struct req *r)
{
	int64_t size;
	int rc;
	if ((rc = store_upload_status(r->reg->store, r->name, r->ref, &size)))
		return rc;
	add_progress_headers(r, r->ref, size);
	resp_status(r, 204);
	return 0;
}

int h_upload_cancel(struct req *r)
{
	int rc;
	/* on a full disk the store retries with the room it keeps for deletes */
	if ((rc = store_upload_cancel(r->reg->store, r->name, r->ref)))
		return rc;
	resp_status(r, 204);
	return 0;
}
