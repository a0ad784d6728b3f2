/* upstream_fetch: manifests (HEAD, GET with the digest verified) and blobs (streamed GET, verified at the end). */
#include "upstream_internal.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "names.h"

const char upstream_manifest_accept[] =
	"application/vnd.oci.image.index.v1+json, "
	"application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json, "
	"application/vnd.docker.distribution.manifest.v2+json, "
	"application/vnd.oci.artifact.manifest.v1+json";

void upstream_manifest_init(struct upstream_manifest *m)
{
	memset(m, 0, sizeof(*m));
	buf_init(&m->body, 0);
	m->size = -1;
}

void upstream_manifest_release(struct upstream_manifest *m)
{
	buf_release(&m->body);
	upstream_manifest_init(m);
}

/* "<base>/v2/<remote>/<kind>/<ref>"; E_NAME_INVALID / E_TAG_INVALID for what could not be a path. */
static int build_url(const struct upstream *u, const char *remote, const char *kind, const char *ref,
		     struct buf *url, struct reference *parsed)
{
	int rc;
	if (name_check(remote, strlen(remote)))
		return E_NAME_INVALID;
	if ((rc = reference_parse(ref, strlen(ref), parsed)))
		return rc;
	buf_addf(url, "%s/v2/%s/%s/%s", u->url, remote, kind, ref);
	return 0;
}

static int manifest_request(struct upstream *u, const char *remote, const char *ref, int head,
			    struct upstream_manifest *m, struct reference *parsed, struct up_resp *resp,
			    struct upstream_error *e)
{
	struct buf url = BUF_INIT;
	int rc;
	struct up_req r = { .method = head ? "HEAD" : "GET", .accept = upstream_manifest_accept,
			    .body_max = u->lim.manifest_max };
	if (e)
		memset(e, 0, sizeof(*e));
	upstream_manifest_release(m);
	if ((rc = build_url(u, remote, "manifests", ref, &url, parsed))) {
		up_fail(e, UPSTREAM_BAD_ANSWER, rc, "\"%s:%s\" is no valid reference", remote, ref);
		goto out;
	}
	r.url = url.buf;
	if ((rc = up_call(u, remote, &r, resp, E_MANIFEST_UNKNOWN, e)))
		goto out;
	snprintf(m->media_type, sizeof(m->media_type), "%s", resp->content_type);
	if (resp->content_length > (int64_t)u->lim.manifest_max)
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the manifest is larger than %zu bytes", u->lim.manifest_max);
out:
	buf_release(&url);
	return rc;
}

int upstream_manifest_head(struct upstream *u, const char *remote, const char *ref, struct upstream_manifest *m,
			   struct upstream_error *e)
{
	struct reference parsed;
	struct up_resp resp;
	int rc;
	up_resp_init(&resp);
	if ((rc = manifest_request(u, remote, ref, 1, m, &parsed, &resp, e)))
		goto out;
	m->size = resp.content_length;
	m->has_digest = !digest_parse(resp.digest, &m->digest);
	if (parsed.is_digest && m->has_digest && !digest_eq(&m->digest, &parsed.digest))
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "asked for %s, the upstream named %s", ref, resp.digest);
out:
	up_resp_release(&resp);
	return rc;
}

int upstream_manifest_get(struct upstream *u, const char *remote, const char *ref, struct upstream_manifest *m,
			  struct upstream_error *e)
{
	struct reference parsed;
	struct digest named, got;
	struct up_resp resp;
	char s[DIGEST_STR_MAX];
	int has_named, rc;
	up_resp_init(&resp);
	if ((rc = manifest_request(u, remote, ref, 0, m, &parsed, &resp, e)))
		goto out;
	has_named = resp.digest[0] != '\0';
	if (has_named && digest_parse(resp.digest, &named)) {
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "unusable Docker-Content-Digest");
		goto out;
	}
	/* the algorithm of the digest asked for, else the upstream's, else sha256 */
	digest_of(parsed.is_digest ? parsed.digest.alg : has_named ? named.alg : DIGEST_SHA256, resp.body.buf,
		  resp.body.len, &got);
	if (parsed.is_digest && !digest_eq(&got, &parsed.digest)) {
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the manifest's bytes are %s, not the %s asked for",
			     digest_str(&got, s), ref);
		goto out;
	}
	if (has_named && named.alg == got.alg && !digest_eq(&got, &named)) {
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the manifest's bytes are %s, not the %s the upstream "
			     "named", digest_str(&got, s), resp.digest);
		goto out;
	}
	m->digest = got;
	m->has_digest = 1;
	m->size = (int64_t)resp.body.len;
	m->body = resp.body;
	buf_init(&resp.body, 0);
out:
	if (rc)
		upstream_manifest_release(m);
	up_resp_release(&resp);
	return rc;
}

/* Hashes every byte on its way to the caller's sink. */
struct blob_sink {
	struct hasher h;
	upstream_sink_fn sink;
	void *ctx;
};

static int hash_and_pass(void *ctx, const void *data, size_t len)
{
	struct blob_sink *b = ctx;
	hasher_update(&b->h, data, len);
	return b->sink(b->ctx, data, len);
}

int upstream_blob_get(struct upstream *u, const struct upstream_blob_req *req, upstream_sink_fn sink, void *ctx,
		      int64_t *total, struct upstream_error *e)
{
	struct blob_sink b = { .sink = sink, .ctx = ctx };
	struct buf url = BUF_INIT;
	struct up_resp resp;
	struct reference parsed;
	struct digest got;
	char ds[DIGEST_STR_MAX], gs[DIGEST_STR_MAX];
	int64_t max = req->size >= 0 ? req->size : u->lim.blob_max, whole;
	int rc;
	struct up_req r = { .method = "GET", .sink = hash_and_pass, .sink_ctx = &b, .range_from = req->offset };
	if (e)
		memset(e, 0, sizeof(*e));
	up_resp_init(&resp);
	digest_str(&req->digest, ds);
	if (req->offset < 0 || req->offset > max || (req->offset && !req->held))
		return up_fail(e, UPSTREAM_BAD_ANSWER, E_RANGE_INVALID, "bad resume offset %lld", (long long)req->offset);
	if (req->held)
		hasher_copy(&b.h, req->held);
	else
		hasher_init(&b.h, req->digest.alg);
	if ((rc = build_url(u, req->remote, "blobs", ds, &url, &parsed))) {
		up_fail(e, UPSTREAM_BAD_ANSWER, rc, "\"%s\" is no valid repository name", req->remote);
		goto out;
	}
	r.url = url.buf;
	r.sink_max = max - req->offset;
	if ((rc = up_call(u, req->remote, &r, &resp, E_BLOB_UNKNOWN, e)))
		goto out;
	whole = req->offset + resp.delivered;
	/* every byte or none: a short body is an error even when the connection closed cleanly */
	if ((resp.range_total >= 0 && resp.range_total != whole) || (req->size >= 0 && whole != req->size)) {
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the blob ended after %lld bytes of %lld", (long long)whole,
			     (long long)(req->size >= 0 ? req->size : resp.range_total));
		goto out;
	}
	hasher_final(&b.h, &got);
	if (!digest_eq(&got, &req->digest)) {
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the blob's bytes are %s, not %s", digest_str(&got, gs), ds);
		goto out;
	}
	if (total)
		*total = whole;
out:
	hasher_release(&b.h);
	up_resp_release(&resp);
	buf_release(&url);
	return rc;
}
