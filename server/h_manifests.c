/* h_manifests: manifest push (validated, byte-exact), fetch and delete. */
#include <unistd.h>

#include "err.h"
#include "handlers.h"
#include "manifest.h"
#include "meta.h"

int h_manifest_get(struct req *r)
{
	struct meta_manifest m = { 0 };
	char ds[DIGEST_STR_MAX];
	int64_t size;
	int fd = -1, rc;
	if ((rc = meta_manifest_get(r->name, &r->reference, &m)))
		goto out;
	if ((rc = blobstore_open(&r->reg->bs, &m.digest, &fd, &size))) {
		if (rc == E_BLOB_UNKNOWN)
			rc = req_fail(r, E_MANIFEST_UNKNOWN, "manifest content missing from storage");
		goto out;
	}
	digest_str(&m.digest, ds);
	resp_header(r, "Content-Type", "%s", m.media_type);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
	resp_header(r, "ETag", "\"%s\"", ds);
	resp_fd(r, 200, fd, 0, (uint64_t)size);
out:
	meta_manifest_release(&m);
	return rc;
}

int h_manifest_put(struct req *r)
{
	size_t max = r->cfg->manifest_max;
	if (r->content_length > 0 && (uint64_t)r->content_length > max)
		return req_fail(r, E_MANIFEST_TOO_BIG, "manifest of %lld bytes exceeds the limit of %zu",
				(long long)r->content_length, max);
	r->body_mode = BODY_BUFFER;
	r->body_limit = max;
	return 0;
}

int h_manifest_put_finish(struct req *r)
{
	struct manifest_info mi = { 0 };
	struct meta_actor actor = { NULL, "push", r->client };
	struct digest d;
	char ds[DIGEST_STR_MAX];
	int rc;
	enum digest_alg alg = r->reference.is_digest ? r->reference.digest.alg : DIGEST_SHA256;

	digest_of(alg, r->body.buf, r->body.len, &d);
	if (r->reference.is_digest && !digest_eq(&d, &r->reference.digest)) {
		rc = req_fail(r, E_DIGEST_INVALID, "content digest %s does not match the reference", digest_str(&d, ds));
		goto out;
	}
	if ((rc = manifest_parse(r->body.buf, r->body.len, req_header(r, "Content-Type"), &mi, &r->err_detail)))
		goto out;
	if ((rc = blobstore_write(&r->reg->bs, &d, r->body.buf, r->body.len)))
		goto out;
	rc = meta_manifest_put(r->name, &d, (int64_t)r->body.len, &mi,
			       r->reference.is_digest ? NULL : r->reference.tag, &actor, &r->err_detail);
	if (rc)
		goto out;
	digest_str(&d, ds);
	resp_header(r, "Location", "/v2/%s/manifests/%s", r->name, ds);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
	if (mi.has_subject) {
		char ss[DIGEST_STR_MAX];
		resp_header(r, "OCI-Subject", "%s", digest_str(&mi.subject, ss));
	}
	resp_status(r, 201);
out:
	if (rc)
		req_fail(r, rc, NULL);
	manifest_info_release(&mi);
	return rc;
}

int h_manifest_delete(struct req *r)
{
	struct meta_actor actor = { NULL, "delete", r->client };
	int rc;
	if (!r->cfg->delete_enabled)
		return E_DELETE_DISABLED;
	if (r->reference.is_digest)
		rc = meta_manifest_delete(r->name, &r->reference.digest, &actor);
	else
		rc = meta_tag_delete(r->name, r->reference.tag, &actor);
	if (rc)
		return rc;
	resp_status(r, 202);
	return 0;
}
