/*
 * upstream_referrers: the referrers of a manifest at an upstream, through
 * the OCI referrers API or, when the upstream answers that API with 404 (it
 * has none, as distribution 2.8), through the referrers tag schema: the
 * index tagged "<alg>-<hex>" that pushing clients maintain there.
 */
#include "upstream_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "names.h"

#define REFERRERS_ACCEPT "application/vnd.oci.image.index.v1+json"

void upstream_referrers_init(struct upstream_referrers *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->manifests, 0);
}

void upstream_referrers_release(struct upstream_referrers *r)
{
	buf_release(&r->manifests);
	upstream_referrers_init(r);
}

void upstream_referrers_tag(const struct digest *d, char out[UPSTREAM_REFERRERS_TAG_MAX + 1])
{
	char ds[DIGEST_STR_MAX];
	digest_str(d, ds);
	ds[strcspn(ds, ":")] = '-';
	ds[UPSTREAM_REFERRERS_TAG_MAX] = '\0'; /* the tag grammar's longest */
	memcpy(out, ds, strlen(ds) + 1);
}

/* A query value: everything but the unreserved characters percent-encoded ('+' would read as a space). */
static void query_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c))
			buf_addch(out, (char)c);
		else
			buf_addf(out, "%%%02X", c);
	}
}

/* The descriptor as the cache passes it on: the fields a referrers list has, nothing the upstream added. */
static json_t *descriptor_copy(json_t *in)
{
	json_t *mt = json_object_get(in, "mediaType"), *dg = json_object_get(in, "digest");
	json_t *sz = json_object_get(in, "size"), *at = json_object_get(in, "artifactType");
	json_t *ann = json_object_get(in, "annotations"), *out;
	struct digest d;
	if (!json_is_string(mt) || !json_is_string(dg) || digest_parse(json_string_value(dg), &d) ||
	    !json_is_integer(sz) || json_integer_value(sz) < 0 || (at && !json_is_string(at)) ||
	    (ann && !json_is_object(ann)))
		return NULL;
	out = json_object();
	json_object_set(out, "mediaType", mt);
	json_object_set(out, "digest", dg);
	json_object_set(out, "size", sz);
	if (at)
		json_object_set(out, "artifactType", at);
	if (ann)
		json_object_set(out, "annotations", ann);
	return out;
}

/*
 * The manifests of an index body into out, those of artifact_type only
 * (when not NULL: an upstream may not apply the filter, the tag schema
 * never does). A descriptor that is not one is left out: a client could
 * not fetch it anyway.
 */
static int index_read(const char *body, size_t len, const char *artifact_type, struct upstream_referrers *out,
		      struct upstream_error *e)
{
	json_t *doc = json_loadb(body, len, 0, NULL), *list, *item;
	size_t i;
	if (!json_is_object(doc) || !json_is_array(list = json_object_get(doc, "manifests"))) {
		json_decref(doc);
		return up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the referrers answer is no image index");
	}
	json_array_foreach(list, i, item) {
		json_t *d = descriptor_copy(item);
		const char *at = json_string_value(json_object_get(item, "artifactType"));
		char *text;
		if (!d || (artifact_type && (!at || strcmp(at, artifact_type)))) {
			json_decref(d);
			continue;
		}
		text = json_dumps(d, JSON_COMPACT);
		if (out->count++)
			buf_addch(&out->manifests, ',');
		buf_adds(&out->manifests, text);
		free(text);
		json_decref(d);
	}
	json_decref(doc);
	return 0;
}

/* The referrers tag schema; no such tag is no referrers. */
static int from_tag(struct upstream *u, const char *remote, const struct digest *subject, const char *artifact_type,
		    struct upstream_referrers *out, struct upstream_error *e)
{
	char tag[UPSTREAM_REFERRERS_TAG_MAX + 1];
	struct upstream_manifest m;
	int rc;
	upstream_referrers_tag(subject, tag);
	upstream_manifest_init(&m);
	out->from_tag = 1;
	rc = upstream_manifest_get(u, remote, tag, &m, e);
	if (rc && e && e->kind == UPSTREAM_NOT_FOUND) {
		memset(e, 0, sizeof(*e));
		rc = 0;
	} else if (!rc) {
		rc = index_read(m.body.buf, m.body.len, artifact_type, out, e);
	}
	upstream_manifest_release(&m);
	return rc;
}

int upstream_referrers_get(struct upstream *u, const char *remote, const struct digest *subject,
			   const char *artifact_type, struct upstream_referrers *out, struct upstream_error *e)
{
	struct upstream_error tmp;
	struct buf url = BUF_INIT;
	struct up_resp resp;
	char ds[DIGEST_STR_MAX];
	int rc;
	struct up_req r = { .method = "GET", .accept = REFERRERS_ACCEPT, .body_max = u->lim.manifest_max };
	if (!e)
		e = &tmp;
	memset(e, 0, sizeof(*e));
	upstream_referrers_release(out);
	up_resp_init(&resp);
	if (name_check(remote, strlen(remote))) {
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_NAME_INVALID, "\"%s\" is no valid repository name", remote);
		goto out;
	}
	buf_addf(&url, "%s/v2/%s/referrers/%s", u->url, remote, digest_str(subject, ds));
	if (artifact_type && *artifact_type) {
		buf_adds(&url, "?artifactType=");
		query_escape(&url, artifact_type);
	} else {
		artifact_type = NULL;
	}
	r.url = url.buf;
	rc = up_call(u, remote, &r, &resp, E_MANIFEST_UNKNOWN, e);
	if (rc && e->kind == UPSTREAM_NOT_FOUND)
		rc = from_tag(u, remote, subject, artifact_type, out, e);
	else if (!rc)
		rc = index_read(resp.body.buf, resp.body.len, artifact_type, out, e);
out:
	if (rc)
		upstream_referrers_release(out);
	up_resp_release(&resp);
	buf_release(&url);
	return rc;
}
