/* h_blobs: blob fetch (GET/HEAD with ranges) and unlinking from a repository. */
#include "audit.h"
#include "err.h"
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
 * Wherever its bytes are: a local file goes out with sendfile (the file
 * descriptor is handed to the reply), bytes in memory (a manifest's, from
 * the database) are copied into it.
 */
int h_blob_get(struct req *r)
{
	const struct digest *d = &r->reference.digest;
	struct store_reader rd;
	uint64_t first = 0, last = 0;
	int rc;

	if ((rc = store_blob_open(r->reg->store, r->name, d, &rd, &r->err_detail)))
		goto out;
	rc = blob_headers(r, d, rd.size, &first, &last);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		first = 0;
		last = (uint64_t)rd.size - 1;
	}
	if (rd.mem) {
		buf_add(&r->out, rd.mem + first, rd.size ? (size_t)(last - first + 1) : 0);
		resp_body(r, rc == 1 ? 206 : 200, NULL);
	} else if (rd.size == 0) {
		resp_status(r, 200);
	} else {
		resp_fd(r, rc == 1 ? 206 : 200, store_reader_take_fd(&rd), first, last - first + 1);
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
