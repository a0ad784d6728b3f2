/* h_blobs: blob fetch (GET/HEAD with ranges) and unlinking from a repository. */
#include <unistd.h>

#include "audit.h"
#include "err.h"
#include "handlers.h"
#include "meta.h"

int h_blob_get(struct req *r)
{
	const struct digest *d = &r->reference.digest;
	char ds[DIGEST_STR_MAX];
	int64_t size;
	int fd, rc;
	uint64_t first = 0, last = 0;
	const char *range;

	if ((rc = meta_blob_linked(r->name, d, &size)))
		return rc;
	if ((rc = blobstore_open(&r->reg->bs, d, &fd, &size)))
		return rc == E_BLOB_UNKNOWN ? req_fail(r, E_BLOB_UNKNOWN, "blob content missing from storage") : rc;
	digest_str(d, ds);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
	resp_header(r, "ETag", "\"%s\"", ds);
	resp_header(r, "Accept-Ranges", "bytes");
	resp_header(r, "Content-Type", "application/octet-stream");
	resp_header(r, "Cache-Control", "max-age=31536000");
	range = req_header(r, "Range");
	rc = range ? range_parse(range, (uint64_t)size, &first, &last) : 0;
	if (rc < 0) {
		close(fd);
		resp_header(r, "Content-Range", "bytes */%lld", (long long)size);
		return req_fail(r, E_RANGE_INVALID, "range outside 0-%lld", (long long)size - 1);
	}
	if (rc == 1) {
		resp_header(r, "Content-Range", "bytes %llu-%llu/%lld", (unsigned long long)first,
			    (unsigned long long)last, (long long)size);
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
	if ((rc = meta_blob_unlink(r->name, &r->reference.digest)))
		return rc;
	char ds[DIGEST_STR_MAX];
	audit_event(r, "delete", r->name, "{\"blob\":\"%s\"}", digest_str(&r->reference.digest, ds));
	resp_status(r, 202);
	return 0;
}
