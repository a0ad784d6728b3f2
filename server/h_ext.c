/*
 * h_ext: the berth extension of the registry API (docs/api.md): tag history
 * and rollback as JSON under /v2/<name>/_berth/, plus what tag-moving
 * writes share with the manifest handlers and the command line: who acts
 * (h_actor) and the immutable-tag guard.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "err.h"
#include "handlers.h"
#include "xalloc.h"

/* A rollback body is a few short members; anything longer is not one. */
#define ROLLBACK_BODY_MAX 4096
/* Upper bound on steps: far beyond any real history, small enough for SQLite's OFFSET. */
#define STEPS_MAX 1000000

int h_tag_guard(void *ctx, const char *tag)
{
	struct h_tag_guard *g = ctx;
	int i = config_immutable_rule(g->cfg, g->repo, tag);
	if (i < 0 || !g->detail || g->detail->len)
		return i;
	const struct config_immutable *im = &g->cfg->immutable[i];
	buf_addf(g->detail, "tag \"%s\" matches immutable rule %d (", tag, i);
	for (size_t j = 0; j < im->repositories.n; j++)
		buf_addf(g->detail, "%s%s", j ? "," : "", im->repositories.v[j]);
	buf_addch(g->detail, ':');
	for (size_t j = 0; j < im->tags.n; j++)
		buf_addf(g->detail, "%s%s", j ? "," : "", im->tags.v[j]);
	buf_addch(g->detail, ')');
	return i;
}

void h_actor_init(struct h_actor *a, struct req *r, const struct config *cfg, const char *repo, const char *how,
		  struct buf *detail)
{
	memset(a, 0, sizeof(*a));
	buf_init(&a->name, 0);
	int named = audit_actor(r, &a->name);
	a->guard.cfg = cfg;
	a->guard.repo = repo;
	a->guard.detail = detail;
	a->actor.name = named ? a->name.buf : NULL;
	a->actor.how = how;
	a->actor.client = r ? r->client : NULL;
	a->actor.guard = h_tag_guard;
	a->actor.guard_ctx = &a->guard;
	a->actor.change = &a->change;
}

void h_actor_release(struct h_actor *a)
{
	buf_release(&a->name);
}

/* ---- JSON documents ---- */

/* ,"key": and s as a JSON string, or null when s is NULL or empty. */
static void add_key_str(struct buf *out, const char *key, const char *s)
{
	buf_addf(out, ",\"%s\":", key);
	buf_add_json_str(out, s && *s ? s : NULL);
}

/* RFC 3339 UTC with milliseconds. */
static void add_time(struct buf *out, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char ts[32];
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_addf(out, "\"%s.%03dZ\"", ts, (int)(ms % 1000));
}

struct hist_out {
	struct buf *out;
	long count;
};

static int history_row(void *ctx, const struct store_tag_event *ev)
{
	struct hist_out *h = ctx;
	struct buf *o = h->out;
	if (h->count++)
		buf_addch(o, ',');
	buf_addf(o, "{\"id\":%lld,\"time\":", (long long)ev->id);
	add_time(o, ev->time_ms);
	add_key_str(o, "old", ev->old_digest);
	add_key_str(o, "new", ev->new_digest);
	add_key_str(o, "actor", ev->actor);
	add_key_str(o, "how", ev->how);
	add_key_str(o, "client", ev->client);
	buf_addch(o, '}');
	return 0;
}

int h_history_json(struct store *st, const char *repo, const char *tag, struct buf *out)
{
	struct hist_out h = { out, 0 };
	int rc;
	buf_adds(out, "{\"name\":");
	buf_add_json_str(out, repo);
	buf_adds(out, ",\"tag\":");
	buf_add_json_str(out, tag);
	buf_adds(out, ",\"history\":[");
	if ((rc = store_tag_history(st, repo, tag, history_row, &h)))
		return rc;
	/* history outlives its repository; only an empty one needs the repository to exist */
	if (!h.count && (rc = store_repo_exists(st, repo)))
		return rc;
	buf_adds(out, "]}");
	return 0;
}

struct ref_item {
	enum store_ref_kind kind;
	char digest[DIGEST_STR_MAX];
	int64_t size;
};

struct ref_list {
	struct ref_item *v;
	size_t n, alloc;
};

/* Collects what makes up the image: config, layers, child manifests (not the subject). */
static int collect_ref(void *ctx, const struct store_ref_info *ri)
{
	struct ref_list *l = ctx;
	if (ri->kind == STORE_REF_SUBJECT || strlen(ri->digest) >= DIGEST_STR_MAX)
		return 0;
	l->v = xgrow(l->v, &l->alloc, l->n, sizeof(*l->v));
	struct ref_item *it = &l->v[l->n++];
	it->kind = ri->kind;
	memcpy(it->digest, ri->digest, strlen(ri->digest) + 1);
	it->size = ri->size;
	return 0;
}

static int by_digest(const void *a, const void *b)
{
	return strcmp(((const struct ref_item *)a)->digest, ((const struct ref_item *)b)->digest);
}

/* The references of manifest ds (a digest string; "" for none) of repo, sorted by digest. */
static int refs_of(struct store *st, const char *repo, const char *ds, struct ref_list *l)
{
	struct digest d;
	int rc;
	if (!*ds)
		return 0;
	if (digest_parse(ds, &d))
		return E_INTERNAL;
	if ((rc = store_manifest_refs(st, repo, &d, collect_ref, l)))
		return rc;
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_digest);
	return 0;
}

/* Appends "key":[...] listing the items of a whose digest is not in b. */
static void add_diff(struct buf *out, const char *key, const struct ref_list *a, const struct ref_list *b)
{
	static const char *kinds[] = { [STORE_REF_CONFIG] = "config", [STORE_REF_LAYER] = "layer",
				       [STORE_REF_CHILD] = "manifest" };
	int first = 1;
	buf_addf(out, ",\"%s\":[", key);
	for (size_t i = 0; i < a->n; i++) {
		if (b->n && bsearch(&a->v[i], b->v, b->n, sizeof(*b->v), by_digest))
			continue;
		buf_addf(out, "%s{\"kind\":\"%s\",\"digest\":", first ? "" : ",", kinds[a->v[i].kind]);
		buf_add_json_str(out, a->v[i].digest);
		if (a->v[i].size >= 0)
			buf_addf(out, ",\"size\":%lld}", (long long)a->v[i].size);
		else
			buf_adds(out, ",\"size\":null}");
		first = 0;
	}
	buf_addch(out, ']');
}

int h_rollback_json(struct store *st, const char *repo, const char *tag, const struct store_rollback *rb,
		    int dry_run, struct buf *out)
{
	struct ref_list from = { 0 }, to = { 0 };
	int rc = refs_of(st, repo, rb->from, &from);
	if (!rc)
		rc = refs_of(st, repo, rb->to, &to);
	if (rc)
		goto out;
	buf_adds(out, "{\"name\":");
	buf_add_json_str(out, repo);
	buf_adds(out, ",\"tag\":");
	buf_add_json_str(out, tag);
	add_key_str(out, "from", rb->from);
	add_key_str(out, "to", rb->to);
	buf_addf(out, ",\"from_size\":%lld,\"to_size\":%lld,\"dry_run\":%s,\"moved\":%s", (long long)rb->from_size,
		 (long long)rb->to_size, dry_run ? "true" : "false", rb->moved ? "true" : "false");
	add_diff(out, "added", &to, &from);
	add_diff(out, "removed", &from, &to);
	buf_addch(out, '}');
out:
	free(from.v);
	free(to.v);
	return rc;
}

/* ---- handlers ---- */

int h_tag_history(struct req *r)
{
	int rc = h_history_json(r->reg->store, r->name, r->reference.tag, &r->out);
	if (rc)
		return rc;
	resp_body(r, 200, "application/json");
	return 0;
}

int h_tag_rollback(struct req *r)
{
	r->body_mode = BODY_BUFFER;
	r->body_limit = ROLLBACK_BODY_MAX;
	return 0;
}

struct rollback_args {
	long steps;
	const char *to; /* borrowed from doc */
	int dry_run;
	json_t *doc;
};

/* Reads the optional body: {"steps":N} or {"to":"sha256:..."}, with or without "dry_run". */
static int rollback_args(struct req *r, struct rollback_args *a)
{
	json_error_t e;
	const char *key;
	json_t *v;
	int has_steps = 0;
	size_t i = 0;
	while (i < r->body.len && isspace((unsigned char)r->body.buf[i]))
		i++;
	if (i == r->body.len)
		return 0;
	a->doc = json_loadb(r->body.buf, r->body.len, JSON_REJECT_DUPLICATES, &e);
	if (!a->doc || !json_is_object(a->doc))
		return req_fail(r, E_BAD_REQUEST, "the body must be a JSON object");
	json_object_foreach(a->doc, key, v) {
		if (!strcmp(key, "steps")) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > STEPS_MAX)
				return req_fail(r, E_BAD_REQUEST, "steps must be a whole number from 1 to %d", STEPS_MAX);
			a->steps = (long)json_integer_value(v);
			has_steps = 1;
		} else if (!strcmp(key, "to")) {
			if (!json_is_string(v))
				return req_fail(r, E_BAD_REQUEST, "to must be a digest string");
			a->to = json_string_value(v);
		} else if (!strcmp(key, "dry_run")) {
			if (!json_is_boolean(v))
				return req_fail(r, E_BAD_REQUEST, "dry_run must be true or false");
			a->dry_run = json_is_true(v);
		} else {
			return req_fail(r, E_BAD_REQUEST, "unknown member \"%.40s\"", key);
		}
	}
	if (has_steps && a->to)
		return req_fail(r, E_BAD_REQUEST, "give steps or to, not both");
	return 0;
}

int h_tag_rollback_finish(struct req *r)
{
	struct rollback_args a = { 1, NULL, 0, NULL };
	struct store_rollback rb;
	struct h_actor who;
	const char *tag = r->reference.tag;
	int rc = rollback_args(r, &a);
	if (rc) {
		json_decref(a.doc);
		return rc;
	}
	h_actor_init(&who, r, r->cfg, r->name, "rollback", &r->err_detail);
	rc = store_tag_rollback(r->reg->store, r->name, tag, a.steps, a.to, a.dry_run, &who.actor, &rb, &r->err_detail);
	if (!rc && rb.moved && !a.dry_run)
		audit_event(r, "rollback", r->name, "{\"tag\":\"%s\",\"from\":%s%s%s,\"to\":\"%s\"}", tag,
			    *rb.from ? "\"" : "", *rb.from ? rb.from : "null", *rb.from ? "\"" : "", rb.to);
	if (!rc)
		rc = h_rollback_json(r->reg->store, r->name, tag, &rb, a.dry_run, &r->out);
	if (!rc)
		resp_body(r, 200, "application/json");
	h_actor_release(&who);
	json_decref(a.doc);
	return rc;
}
