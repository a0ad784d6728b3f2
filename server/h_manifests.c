/* h_manifests: manifest push (validated, byte-exact), fetch and delete, each tag move guarded and audited. */
#include <string.h>
#include <unistd.h>

#include "audit.h"
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

/*
 * One audit event per accepted manifest: "push" for content, "tag" when
 * the push only re-pointed a tag at a manifest the repository already had.
 */
static void audit_put(struct req *r, const char *ds, size_t size, const struct meta_tag_change *ch)
{
	struct buf detail = BUF_INIT;
	int retag = ch->count && !strcmp(ch->how, "retag");
	buf_addf(&detail, "{\"digest\":\"%s\",\"size\":%zu", ds, size);
	if (!r->reference.is_digest) {
		buf_addf(&detail, ",\"tag\":\"%s\",\"moved\":%s", r->reference.tag, ch->count ? "true" : "false");
		if (ch->count && *ch->old_digest)
			buf_addf(&detail, ",\"old\":\"%s\"", ch->old_digest);
		if (ch->count)
			buf_addf(&detail, ",\"how\":\"%s\"", ch->how);
	}
	buf_addch(&detail, '}');
	audit_event(r, retag ? "tag" : "push", r->name, "%s", detail.buf);
	buf_release(&detail);
}

int h_manifest_put_finish(struct req *r)
{
	struct manifest_info mi = { 0 };
	struct h_actor who;
	struct digest d;
	char ds[DIGEST_STR_MAX];
	int rc;
	enum digest_alg alg = r->reference.is_digest ? r->reference.digest.alg : DIGEST_SHA256;

	h_actor_init(&who, r, r->cfg, r->name, "push", &r->err_detail);
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
			       r->reference.is_digest ? NULL : r->reference.tag, &who.actor, &r->err_detail);
	if (rc)
		goto out;
	digest_str(&d, ds);
	audit_put(r, ds, r->body.len, &who.change);
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
	h_actor_release(&who);
	return rc;
}

int h_manifest_delete(struct req *r)
{
	struct h_actor who;
	char ds[DIGEST_STR_MAX];
	int rc;
	if (!r->cfg->delete_enabled)
		return E_DELETE_DISABLED;
	h_actor_init(&who, r, r->cfg, r->name, "delete", &r->err_detail);
	if (r->reference.is_digest)
		rc = meta_manifest_delete(r->name, &r->reference.digest, &who.actor);
	else
		rc = meta_tag_delete(r->name, r->reference.tag, &who.actor);
	if (!rc && r->reference.is_digest)
		audit_event(r, "delete", r->name, "{\"digest\":\"%s\",\"tags_removed\":%d}",
			    digest_str(&r->reference.digest, ds), who.change.count);
	else if (!rc)
		audit_event(r, "delete", r->name, "{\"tag\":\"%s\",\"digest\":\"%s\"}", r->reference.tag,
			    who.change.old_digest);
	h_actor_release(&who);
	if (rc)
		return rc;
	resp_status(r, 202);
	return 0;
}
