/* h_manifests: manifest push (validated, byte-exact), fetch and delete, each tag move guarded and audited. */
#include <string.h>

#include "audit.h"
#include "err.h"
#include "h_mirror.h"
#include "handlers.h"

int h_manifest_get(struct req *r)
{
	int rc = r->reg->mirror ? h_mirror_manifest_get(r) : 1;
	return rc == 1 ? h_manifest_serve(r) : rc;
}

int h_manifest_serve(struct req *r)
{
	struct store_manifest m;
	struct store_reader rd;
	char ds[DIGEST_STR_MAX];
	int rc;
	if ((rc = store_manifest_get(r->reg->store, r->name, &r->reference, &m, &rd, &r->err_detail)))
		goto out;
	digest_str(&m.digest, ds);
	resp_header(r, "Content-Type", "%s", m.media_type);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
	resp_header(r, "ETag", "\"%s\"", ds);
	if (rd.mem) {
		buf_add(&r->out, rd.mem, (size_t)rd.size);
		resp_body(r, 200, NULL);
	} else {
		resp_fd(r, 200, store_reader_take_fd(&rd), 0, (uint64_t)rd.size);
	}
out:
	store_reader_release(&rd);
	store_manifest_release(&m);
	return rc;
}

int h_manifest_put(struct req *r)
{
	size_t max = r->cfg->manifest_max;
	if (r->content_length > 0 && (uint64_t)r->content_length > max)
		return req_fail(r, E_MANIFEST_TOO_BIG, "manifest of %lld bytes exceeds the limit of %zu",
				(long long)r->content_length, max);
	if (store_push_allowed(r->reg->store))
		return req_fail(r, E_NO_SPACE, STORE_FULL_DETAIL);
	r->body_mode = BODY_BUFFER;
	r->body_limit = max;
	return 0;
}

/* What the audit hook of a manifest push or delete needs, and the event it described. */
struct put_audit {
	struct req *r;
	struct h_actor *who;
	char *ds;
	const struct digest *digest; /* a push's, known once the store hashed the body: into ds */
	size_t size;
	int is_delete;
	struct buf detail;
	struct store_audit ev;
	int described;
};

/*
 * One audit event per accepted manifest: "push" for content, "tag" when
 * the push only re-pointed a tag at a manifest the repository already had;
 * "delete" for a manifest or tag removed. Runs inside the write's
 * transaction (store_actor.audit), after the tag change is known. The detail
 * is built from a validated name, tag and digests only, so it is JSON.
 */
static int put_audit_describe(void *ctx, struct store_audit *ev)
{
	struct put_audit *a = ctx;
	const struct store_tag_change *ch = &a->who->change;
	const struct reference *ref = &a->r->reference;
	const char *action = "push";
	if (a->digest)
		digest_str(a->digest, a->ds);
	buf_reset(&a->detail);
	if (a->is_delete && ref->is_digest) {
		action = "delete";
		buf_addf(&a->detail, "{\"digest\":\"%s\",\"tags_removed\":%d}", a->ds, ch->count);
	} else if (a->is_delete) {
		action = "delete";
		buf_addf(&a->detail, "{\"tag\":\"%s\",\"digest\":\"%s\"}", ref->tag, ch->old_digest);
	} else {
		if (ch->count && !strcmp(ch->how, "retag"))
			action = "tag";
		buf_addf(&a->detail, "{\"digest\":\"%s\",\"size\":%zu", a->ds, a->size);
		if (!ref->is_digest) {
			buf_addf(&a->detail, ",\"tag\":\"%s\",\"moved\":%s", ref->tag, ch->count ? "true" : "false");
			if (ch->count && *ch->old_digest)
				buf_addf(&a->detail, ",\"old\":\"%s\"", ch->old_digest);
			if (ch->count)
				buf_addf(&a->detail, ",\"how\":\"%s\"", ch->how);
		}
		buf_addch(&a->detail, '}');
	}
	ev->actor = a->who->actor.name;
	ev->action = action;
	ev->repo = a->r->name;
	ev->detail = a->detail.buf;
	ev->client = a->r->client;
	a->ev = *ev;
	a->described = 1;
	return 0;
}

static void put_audit_init(struct put_audit *a, struct req *r, struct h_actor *who, char *ds, size_t size,
			   int is_delete)
{
	memset(a, 0, sizeof(*a));
	a->r = r;
	a->who = who;
	a->ds = ds;
	a->size = size;
	a->is_delete = is_delete;
	buf_init(&a->detail, 0);
	who->actor.audit = put_audit_describe;
	who->actor.audit_ctx = a;
}

/* After the commit: the event's log line (its row is already stored). */
static void put_audit_done(struct put_audit *a, int rc)
{
	if (!rc && a->described)
		audit_log_event(&a->ev);
	buf_release(&a->detail);
}

int h_manifest_put_finish(struct req *r)
{
	struct store_put_result res = { 0 };
	struct h_actor who;
	struct put_audit pa;
	char ds[DIGEST_STR_MAX];
	int rc;
	enum digest_alg alg = r->reference.is_digest ? r->reference.digest.alg : DIGEST_SHA256;

	h_actor_init(&who, r, r->cfg, r->name, "push", &r->err_detail);
	put_audit_init(&pa, r, &who, ds, r->body.len, 0);
	pa.digest = &res.digest; /* filled by the store before the write's transaction */
	rc = store_manifest_put(r->reg->store, r->name, alg, r->reference.is_digest ? &r->reference.digest : NULL,
				r->body.buf, r->body.len, req_header(r, "Content-Type"),
				r->reference.is_digest ? NULL : r->reference.tag, &who.actor, &res, &r->err_detail);
	if (rc)
		goto out;
	digest_str(&res.digest, ds);
	resp_header(r, "Location", "/v2/%s/manifests/%s", r->name, ds);
	resp_header(r, "Docker-Content-Digest", "%s", ds);
	if (res.has_subject) {
		char ss[DIGEST_STR_MAX];
		resp_header(r, "OCI-Subject", "%s", digest_str(&res.subject, ss));
	}
	resp_status(r, 201);
out:
	if (rc)
		req_fail(r, rc, NULL);
	put_audit_done(&pa, rc);
	store_put_result_release(&res);
	h_actor_release(&who);
	return rc;
}

int h_manifest_delete(struct req *r)
{
	struct h_actor who;
	struct put_audit pa;
	char ds[DIGEST_STR_MAX] = "";
	int rc;
	if (!r->cfg->delete_enabled)
		return E_DELETE_DISABLED;
	h_actor_init(&who, r, r->cfg, r->name, "delete", &r->err_detail);
	if (r->reference.is_digest)
		digest_str(&r->reference.digest, ds);
	put_audit_init(&pa, r, &who, ds, 0, 1);
	/* on a full disk the store retries with the room it keeps for deletes */
	rc = store_manifest_delete(r->reg->store, r->name, &r->reference, &who.actor);
	put_audit_done(&pa, rc);
	h_actor_release(&who);
	if (rc)
		return rc;
	resp_status(r, 202);
	return 0;
}
