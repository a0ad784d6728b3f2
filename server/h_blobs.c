/* h_blobs: blob fetch (GET/HEAD with ranges) and unlinking from a repository. */
#include <unistd.h>

#include "audit.h"
#include "err.h"
#include "handlers.h"
#include "meta.h"
#include "reserve.h"

/*
 * Answers with the headers every blob reply carries and, when a Range is
 * asked for, narrows [*first, *last] to it (1) or fails the request (< 0).
 */
static int blob_headers(struct req *r, const struct digest *d, int64_t size, uint64_t *first, uint64_t *last)
{
	char ds[DIGEST_STR_MAX];
	const char *range;
	int rc;
	digest_str(d, ds);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
	resp_header(r, "ETag", "\"%s\"", ds);
	resp_header(r, "Accept-Ranges", "bytes");
	resp_header(r, "Content-Type", "application/octet-stream");
	resp_header(r, "Cache-Control", "max-age=31536000");
	range = req_header(r, "Range");
	rc = range ? range_parse(range, (uint64_t)size, first, last) : 0;
	if (rc < 0) {
		resp_header(r, "Content-Range", "bytes */%lld", (long long)size);
		return req_fail(r, E_RANGE_INVALID, "range outside 0-%lld", (long long)size - 1);
	}
	if (rc == 1)
		resp_header(r, "Content-Range", "bytes %llu-%llu/%lld", (unsigned long long)*first,
			    (unsigned long long)*last, (long long)size);
	return rc;
}

/* A blob whose bytes the database holds (a manifest's): served from memory. */
static int blob_from_db(struct req *r, const struct digest *d)
{
	struct buf content = BUF_INIT;
	uint64_t first = 0, last = 0;
	int found = 0;
	int rc = meta_blob_content(d, &content, &found);
	if (!rc && !found)
		rc = req_fail(r, E_BLOB_UNKNOWN, "blob content missing from storage");
	if (!rc && (rc = blob_headers(r, d, (int64_t)content.len, &first, &last)) >= 0) {
		if (rc == 1)
			buf_add(&r->out, content.buf + first, (size_t)(last - first + 1));
		else
			buf_add(&r->out, content.buf, content.len);
		resp_body(r, rc == 1 ? 206 : 200, NULL);
		rc = 0;
	}
	buf_release(&content);
	return rc;
}

int h_blob_get(struct req *r)
{
	const struct digest *d = &r->reference.digest;
	int64_t size;
	int fd, rc;
	uint64_t first = 0, last = 0;

	if ((rc = meta_blob_linked(r->name, d, &size)))
		return rc;
	if ((rc = blobstore_open(&r->reg->bs, d, &fd, &size)))
		return rc == E_BLOB_UNKNOWN ? blob_from_db(r, d) : rc;
	rc = blob_headers(r, d, size, &first, &last);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	if (rc == 1) {
		resp_fd(r, 206, fd, first, last - first + 1);
		return 0;
	}
	if (size == 0) {
		close(fd);
		resp_status(r, 200);
		return 0;
	}
	resp_fd(r, 200, fd, 0, (uint64_t)size);
	return 0;
}

int h_blob_delete(struct req *r)
{
	int rc;
	if (!r->cfg->delete_enabled)
		return E_DELETE_DISABLED;
	rc = meta_blob_unlink(r->name, &r->reference.digest);
	/* a full disk: the reserve's room lets the delete through (storage/reserve.h) */
	if (rc == E_NO_SPACE && reserve_release())
		rc = meta_blob_unlink(r->name, &r->reference.digest);
	if (rc)
		return rc;
	char ds[DIGEST_STR_MAX];
	audit_event(r, "delete", r->name, "{\"blob\":\"%s\"}", digest_str(&r->reference.digest, ds));
	resp_status(r, 202);
	return 0;
}
