/* h_blobs: blob fetch (GET/HEAD with ranges) and unlinking from a repository. */
#include <string.h>

#include "audit.h"
#include "err.h"
#include "h_mirror.h"
#include "handlers.h"

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

/*
 * storage.redirect: a GET is answered with a redirect to a presigned URL of
 * the object store, so the bytes go from the store to the client directly
 * (HEAD is still answered here). 1 when answered, 0 to serve the blob
 * here (a blob the store cannot presign: a manifest's bytes kept in the
 * database), or an E_* code.
 */
static int blob_redirect(struct req *r, const struct digest *d)
{
	struct buf url = BUF_INIT;
	char ds[DIGEST_STR_MAX];
	int rc = store_blob_url(r->reg->store, r->name, d, (int)r->cfg->s3.redirect_expiry_s, &url);
	if (rc == 0) {
		resp_header(r, "Location", "%s", url.buf);
		resp_header(r, "Docker-Content-Digest", "%s", digest_str(d, ds));
		resp_status(r, 307);
		rc = 1;
	} else if (rc == E_UNSUPPORTED) {
		rc = 0;
	}
	buf_release(&url);
	return rc;
}

/*
 * Wherever its bytes are: a local file goes out with sendfile (the file
 * descriptor is handed to the reply), bytes in memory (a manifest's, from
 * the database) are copied into it, and bytes in an object store stream
 * from one GET of the range asked for.
 */
int h_blob_get(struct req *r)
{
	int rc = r->reg->mirror ? h_mirror_blob_get(r) : 1;
	return rc == 1 ? h_blob_serve(r) : rc;
}

int h_blob_serve(struct req *r)
{
	const struct digest *d = &r->reference.digest;
	struct store_reader rd;
	uint64_t first = 0, last = 0;
	int rc, ranged;

	memset(&rd, 0, sizeof(rd));
	rd.fd = -1;
	if (r->cfg->storage_redirect && r->method == M_GET && (rc = blob_redirect(r, d)))
		return rc < 0 ? rc : 0;
	if ((rc = store_blob_open(r->reg->store, r->name, d, &rd, &r->err_detail)))
		goto out;
	rc = ranged = blob_headers(r, d, rd.size, &first, &last);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		first = 0;
		last = (uint64_t)rd.size - 1;
	}
	if (rd.mem) {
		buf_add(&r->out, rd.mem + first, rd.size ? (size_t)(last - first + 1) : 0);
		resp_body(r, ranged ? 206 : 200, NULL);
	} else if (rd.size == 0) {
		resp_status(r, 200);
	} else if (rd.fd < 0) {
		/* a HEAD sends no body: no GET to start */
		if (r->method != M_HEAD && (rc = store_reader_stream(&rd, (int64_t)first, (int64_t)(last - first + 1))))
			goto out;
		resp_reader(r, ranged ? 206 : 200, store_reader_move(&rd), last - first + 1);
	} else {
		resp_fd(r, ranged ? 206 : 200, store_reader_take_fd(&rd), first, last - first + 1);
	}
	rc = 0;
out:
	store_reader_release(&rd);
	return rc;
}

int h_blob_delete(struct req *r)
{
	int rc;
	if (!r->cfg->delete_enabled)
		return E_DELETE_DISABLED;
	/* on a full disk the store retries with the room it keeps for deletes */
	rc = store_blob_unlink(r->reg->store, r->name, &r->reference.digest);
	if (rc)
		return rc;
	char ds[DIGEST_STR_MAX];
	audit_event(r, "delete", r->name, "{\"blob\":\"%s\"}", digest_str(&r->reference.digest, ds));
	resp_status(r, 202);
	return 0;
}
