/* router: route table, matching, validation and error replies. */
#include "router.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "authn.h"
#include "h_mirror.h"
#include "handlers.h"
#include "names.h"
#include "store.h"
#include "scope.h"
#include "ui.h"
#include "xalloc.h"

static const struct route routes[] = {
	{ ROUTE_BASE, M_GET, 0, h_base_get, NULL },
	{ ROUTE_HEALTH, M_GET, R_NOAUTH, h_health_get, NULL },
	{ ROUTE_READY, M_GET, R_NOAUTH, h_ready_get, NULL },
	{ ROUTE_METRICS, M_GET, 0, h_metrics_get, NULL },
	{ ROUTE_TOKEN, M_GET, R_NOAUTH, h_token_get, NULL },
	{ ROUTE_TOKEN, M_POST, R_NOAUTH, h_token_post, h_token_post_finish },
	{ ROUTE_CATALOG, M_GET, 0, h_catalog, NULL },
	{ ROUTE_TAGS, M_GET, ACTION_PULL, h_tags_list, NULL },
	{ ROUTE_MANIFEST, M_GET, ACTION_PULL, h_manifest_get, NULL },
	{ ROUTE_MANIFEST, M_PUT, ACTION_PULL | ACTION_PUSH | R_IO, h_manifest_put, h_manifest_put_finish },
	{ ROUTE_MANIFEST, M_DELETE, ACTION_DELETE | R_IO, h_manifest_delete, NULL },
	{ ROUTE_BLOB, M_GET, ACTION_PULL, h_blob_get, NULL },
	{ ROUTE_BLOB, M_DELETE, ACTION_DELETE | R_IO, h_blob_delete, NULL },
	{ ROUTE_UPLOAD_START, M_POST, ACTION_PULL | ACTION_PUSH | R_IO, h_upload_start, h_upload_start_finish },
	{ ROUTE_UPLOAD, M_GET, ACTION_PULL | ACTION_PUSH, h_upload_status, NULL },
	{ ROUTE_UPLOAD, M_PATCH, ACTION_PULL | ACTION_PUSH | R_IO, h_upload_patch, h_upload_patch_finish },
	{ ROUTE_UPLOAD, M_PUT, ACTION_PULL | ACTION_PUSH | R_IO, h_upload_put, h_upload_put_finish },
	{ ROUTE_UPLOAD, M_DELETE, ACTION_PULL | ACTION_PUSH | R_IO, h_upload_cancel, NULL },
	{ ROUTE_REFERRERS, M_GET, ACTION_PULL, h_referrers, NULL },
	/* the berth extension; history names users and client addresses, so it wants push like rollback */
	{ ROUTE_TAG_HISTORY, M_GET, ACTION_PULL | ACTION_PUSH | R_SESSION, h_tag_history, NULL },
	{ ROUTE_TAG_ROLLBACK, M_POST, ACTION_PULL | ACTION_PUSH | R_IO, h_tag_rollback, h_tag_rollback_finish },
	{ ROUTE_EXT_REPOS, M_GET, R_SESSION, ui_view_repos, NULL },
	{ ROUTE_EXT_TAGS, M_GET, ACTION_PULL | R_SESSION, ui_view_tags, NULL },
	{ ROUTE_EXT_IMAGE, M_GET, ACTION_PULL | R_SESSION, ui_view_image, NULL },
	{ ROUTE_EXT_COMPARE, M_GET, ACTION_PULL | R_SESSION, ui_view_compare, NULL },
	/* the web interface: pages check rights themselves; its forms check their CSRF token */
	{ ROUTE_ROOT, M_GET, R_NOAUTH, ui_root_get, NULL },
	{ ROUTE_UI, M_GET, R_SESSION, ui_get, NULL },
	{ ROUTE_UI, M_POST, R_NOAUTH, ui_post, ui_post_finish },
#ifdef BERTH_TEST_HOOKS
	{ ROUTE_TEST_CLOCK, M_POST, R_NOAUTH, h_test_clock, NULL },
	{ ROUTE_TEST_FAULT, M_POST, R_NOAUTH, h_test_fault, NULL },
#endif
};

static const char *labels[] = {
	[ROUTE_BASE] = "base", [ROUTE_CATALOG] = "catalog", [ROUTE_TAGS] = "tags",
	[ROUTE_MANIFEST] = "manifest", [ROUTE_BLOB] = "blob", [ROUTE_UPLOAD_START] = "upload_start",
	[ROUTE_UPLOAD] = "upload", [ROUTE_REFERRERS] = "referrers", [ROUTE_HEALTH] = "health",
	[ROUTE_TOKEN] = "token", [ROUTE_METRICS] = "metrics", [ROUTE_READY] = "ready",
	[ROUTE_TAG_HISTORY] = "tag_history", [ROUTE_TAG_ROLLBACK] = "tag_rollback",
	[ROUTE_TEST_CLOCK] = "test_clock", [ROUTE_TEST_FAULT] = "test_fault",
	[ROUTE_ROOT] = "root", [ROUTE_UI] = "ui", [ROUTE_EXT_REPOS] = "ext_repositories",
	[ROUTE_EXT_TAGS] = "ext_tags", [ROUTE_EXT_IMAGE] = "ext_image", [ROUTE_EXT_COMPARE] = "ext_compare",
	[ROUTE_NONE] = "none",
};

const char *router_label(const struct req *r)
{
	return r->route ? labels[r->route->kind] : labels[ROUTE_NONE];
}

const char *router_kind_label(int kind)
{
	return kind >= 0 && kind <= ROUTE_NONE && labels[kind] ? labels[kind] : labels[ROUTE_NONE];
}

static int ends_with(const char *s, size_t len, const char *suffix, size_t *prefix_len)
{
	size_t n = strlen(suffix);
	if (len < n || memcmp(s + len - n, suffix, n))
		return 0;
	*prefix_len = len - n;
	return 1;
}

/*
 * The extension's /v2/<name>/_berth/tags/<tag>/<action> (rest is the path
 * after /v2/): ROUTE_NONE when rest is not one. A repository name
 * component never starts with '_', so no name can pass for "/_berth/".
 */
static enum route_kind match_ext(const char *rest, size_t len, char **name, char **seg)
{
	static const struct {
		const char *action;
		enum route_kind kind;
	} actions[] = {
		{ "/history", ROUTE_TAG_HISTORY },
		{ "/rollback", ROUTE_TAG_ROLLBACK },
	};
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		size_t tag_end, name_len;
		if (!ends_with(rest, len, actions[i].action, &tag_end))
			continue;
		const char *slash = memrchr(rest, '/', tag_end);
		if (!slash || !ends_with(rest, (size_t)(slash - rest) + 1, "/_berth/tags/", &name_len))
			return ROUTE_NONE;
		*name = xstrndup(rest, name_len);
		*seg = xstrndup(slash + 1, tag_end - (size_t)(slash - rest) - 1);
		return actions[i].kind;
	}
	return ROUTE_NONE;
}

/*
 * Splits the path into route kind, name and last segment. Names may hold
 * words like "blobs" or "manifests" as components, so the pattern is
 * matched from the right.
 */
static enum route_kind match(const char *path, char **name, char **seg)
{
	size_t len, nlen;
	const char *rest;
	*name = *seg = NULL;
	if (!strcmp(path, "/healthz"))
		return ROUTE_HEALTH;
	if (!strcmp(path, "/auth/token"))
		return ROUTE_TOKEN;
	if (!strcmp(path, "/metrics"))
		return ROUTE_METRICS;
	if (!strcmp(path, "/readyz"))
		return ROUTE_READY;
	if (!strcmp(path, "/"))
		return ROUTE_ROOT;
	if (!strcmp(path, "/ui") || !strncmp(path, "/ui/", 4))
		return ROUTE_UI;
#ifdef BERTH_TEST_HOOKS
	if (!strcmp(path, "/_berth/test/clock"))
		return ROUTE_TEST_CLOCK;
	if (!strcmp(path, "/_berth/test/fault"))
		return ROUTE_TEST_FAULT;
#endif
	if (!strcmp(path, "/v2/") || !strcmp(path, "/v2"))
		return ROUTE_BASE;
	if (strncmp(path, "/v2/", 4))
		return ROUTE_NONE;
	rest = path + 4;
	len = strlen(rest);
	if (!strcmp(rest, "_catalog"))
		return ROUTE_CATALOG;
	if (!strcmp(rest, "_berth/repositories"))
		return ROUTE_EXT_REPOS;
	if (ends_with(rest, len, "/_berth/tags", &nlen)) {
		*name = xstrndup(rest, nlen);
		return ROUTE_EXT_TAGS;
	}
	if (ends_with(rest, len, "/_berth/compare", &nlen)) {
		*name = xstrndup(rest, nlen);
		return ROUTE_EXT_COMPARE;
	}
	/* no name component starts with '_': the first "/_berth/image/" ends the name */
	const char *img = strstr(rest, "/_berth/image/");
	if (img && !strchr(img + 14, '/')) {
		*name = xstrndup(rest, (size_t)(img - rest));
		*seg = xstrdup(img + 14);
		return ROUTE_EXT_IMAGE;
	}
	if (ends_with(rest, len, "/tags/list", &nlen)) {
		*name = xstrndup(rest, nlen);
		return ROUTE_TAGS;
	}
	if (ends_with(rest, len, "/blobs/uploads/", &nlen) || ends_with(rest, len, "/blobs/uploads", &nlen)) {
		*name = xstrndup(rest, nlen);
		return ROUTE_UPLOAD_START;
	}
	enum route_kind ext = match_ext(rest, len, name, seg);
	if (ext != ROUTE_NONE)
		return ext;
	const char *slash = memrchr(rest, '/', len);
	if (!slash)
		return ROUTE_NONE;
	size_t plen = (size_t)(slash - rest);
	static const struct {
		const char *suffix;
		enum route_kind kind;
	} tails[] = {
		{ "/blobs/uploads", ROUTE_UPLOAD },
		{ "/blobs", ROUTE_BLOB },
		{ "/manifests", ROUTE_MANIFEST },
		{ "/referrers", ROUTE_REFERRERS },
	};
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		if (ends_with(rest, plen, tails[i].suffix, &nlen)) {
			*name = xstrndup(rest, nlen);
			*seg = xstrdup(slash + 1);
			return tails[i].kind;
		}
	}
	return ROUTE_NONE;
}

/*
 * A reference that is neither a digest nor a valid tag names nothing: a
 * read, a delete or a rollback of it finds no manifest (404, as the spec
 * answers a manifest that is not found); a push cannot create it (400).
 * TAG_INVALID is not a code of the spec, so it never reaches a client.
 */
static int bad_tag(struct req *r)
{
	if (r->method == M_PUT)
		return req_fail(r, E_MANIFEST_INVALID, "invalid tag: a tag matches [A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
	return req_fail(r, E_MANIFEST_UNKNOWN, "no manifest: not a valid tag or digest");
}

/* Checks the name and the last segment for the route kind. */
static int validate(struct req *r, enum route_kind kind)
{
	int rc;
	if (r->name && name_check(r->name, strlen(r->name)))
		return req_fail(r, E_NAME_INVALID, "invalid repository name");
	switch (kind) {
	case ROUTE_MANIFEST:
	case ROUTE_EXT_IMAGE:
		rc = reference_parse(r->ref, strlen(r->ref), &r->reference);
		if (rc == E_TAG_INVALID)
			return bad_tag(r);
		if (rc)
			return req_fail(r, rc, "invalid digest");
		break;
	case ROUTE_BLOB:
	case ROUTE_REFERRERS:
		if (digest_parse(r->ref, &r->reference.digest))
			return req_fail(r, E_DIGEST_INVALID, "invalid digest");
		r->reference.is_digest = 1;
		break;
	case ROUTE_UPLOAD:
		if (store_upload_id_check(r->ref))
			return req_fail(r, E_BLOB_UPLOAD_UNKNOWN, NULL);
		break;
	case ROUTE_TAG_HISTORY:
	case ROUTE_TAG_ROLLBACK:
		if (tag_check(r->ref, strlen(r->ref)))
			return bad_tag(r);
		memcpy(r->reference.tag, r->ref, strlen(r->ref) + 1);
		break;
	default:
		break;
	}
	return 0;
}

int router_may(struct req *r, const char *repo, unsigned actions)
{
	return (authn_rights(r, repo) & actions) == actions;
}

/* The actions a route needs: the action bits of its flags. */
static unsigned needed_actions(const struct route *rt)
{
	return rt->flags & ACTION_ALL;
}

/*
 * Decides whether the authenticated caller may use the route. A caller
 * without the right gets the same answer whether or not the repository
 * exists, so private repositories stay invisible.
 */
static int authorize(struct req *r)
{
	struct ident *id = r->ident;
	unsigned need = needed_actions(r->route);
	if (id->failed == E_TOOMANYREQUESTS)
		return req_fail(r, E_TOOMANYREQUESTS, "too many failed logins, retry later");
	if (id->failed) {
		authn_challenge(r, r->name, need, 0);
		return req_fail(r, E_UNAUTHORIZED, "invalid credentials");
	}
	if (r->route->kind == ROUTE_METRICS) {
		if (r->cfg->metrics_access == METRICS_OFF)
			return req_fail(r, E_NOT_FOUND, NULL);
		if (r->cfg->metrics_access == METRICS_AUTHENTICATED && id->kind == ID_ANONYMOUS &&
		    !authn_open_registry(r)) {
			authn_challenge(r, NULL, 0, 0);
			return req_fail(r, E_UNAUTHORIZED, NULL);
		}
		return 0;
	}
	if (r->route->kind == ROUTE_BASE) {
		if (id->kind == ID_ANONYMOUS && !authn_open_registry(r)) {
			authn_challenge(r, NULL, 0, 0);
			return req_fail(r, E_UNAUTHORIZED, NULL);
		}
		return 0;
	}
	if (!r->name || !need)
		return 0;
	if ((authn_rights(r, r->name) & need) == need)
		return 0;
	if (id->kind == ID_ANONYMOUS) {
		authn_challenge(r, r->name, need, 0);
		return req_fail(r, E_UNAUTHORIZED, NULL);
	}
	if (id->kind == ID_BEARER) {
		authn_challenge(r, r->name, need, 1);
		return req_fail(r, E_UNAUTHORIZED, "the token does not grant this action on the repository");
	}
	return req_fail(r, E_DENIED, NULL);
}

/* Maps the state after a step to the router's answer. */
static int outcome(struct req *r, int rc)
{
	if (rc < 0)
		req_fail(r, rc, NULL);
	if (r->err)
		return ROUTER_REPLY;
	if (r->async_work)
		return ROUTER_ASYNC;
	return r->body_mode == BODY_NONE ? ROUTER_REPLY : ROUTER_BODY;
}

static void io_work(struct req *r)
{
	r->async_rc = r->io_step(r);
}

static int io_then(struct req *r)
{
	return r->async_rc;
}

/* Runs step on the I/O pool: it may block on fsync without stalling an HTTP thread. */
static int run_on_io(struct req *r, int (*step)(struct req *))
{
	r->io_step = step;
	r->async_work = io_work;
	r->async_then = io_then;
	r->async_q = r->reg->ioq;
	return 0;
}

/* Authorization, then the route's own begin step. */
static int after_authn(struct req *r)
{
	int rc = authorize(r);
	if (!rc)
		rc = mirror_push_check(r);
	if (rc)
		return rc;
	if (r->route->flags & R_IO)
		return run_on_io(r, r->route->begin);
	return r->route->begin(r);
}

int router_begin(struct req *r)
{
	enum route_kind kind;
	enum http_method m = r->method == M_HEAD ? M_GET : r->method;
	const struct route *found = NULL;
	int kind_known = 0;

	/* Names, tags, digests and upload ids never hold escapes: a '%' can
	 * only be an attempt to smuggle a separator past validation. */
	if (strchr(r->path, '%'))
		return req_fail(r, E_NAME_INVALID, "percent-encoded characters are not allowed in paths"), ROUTER_REPLY;
	kind = match(r->path, &r->name, &r->ref);
	if (kind == ROUTE_NONE) {
		req_fail(r, E_NOT_FOUND, NULL);
		return ROUTER_REPLY;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (routes[i].kind != kind)
			continue;
		kind_known = 1;
		if (routes[i].method == m) {
			found = &routes[i];
			break;
		}
	}
	if (!found) {
		req_fail(r, kind_known ? E_METHOD : E_NOT_FOUND, NULL);
		return ROUTER_REPLY;
	}
	r->route = found;
	if (validate(r, kind) || mirror_route(r))
		return ROUTER_REPLY;
	if (found->flags & R_NOAUTH)
		return outcome(r, found->begin(r));
	if ((found->flags & R_SESSION) && ui_session_begin(r))
		return outcome(r, after_authn(r));
	authn_begin(r);
	if (r->async_work) {
		r->async_then = after_authn;
		return ROUTER_ASYNC;
	}
	return outcome(r, after_authn(r));
}

int router_resume(struct req *r)
{
	int (*then)(struct req *) = r->async_then;
	r->async_work = NULL;
	r->async_then = NULL;
	r->async_q = NULL;
	return outcome(r, then ? then(r) : 0);
}

int router_finish(struct req *r)
{
	if (r->err || !r->route || !r->route->finish)
		return ROUTER_REPLY;
	if (r->route->flags & R_IO) {
		run_on_io(r, r->route->finish);
		return ROUTER_ASYNC;
	}
	int rc = outcome(r, r->route->finish(r));
	return rc == ROUTER_BODY ? ROUTER_REPLY : rc;
}

/* Headers a handler set that still make sense on an error reply. */
static int keep_on_error(const char *name)
{
	static const char *keep[] = { "Location", "Range", "Docker-Upload-UUID", "Content-Range",
				      "WWW-Authenticate", "Retry-After" };
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (!strcasecmp(name, keep[i]))
			return 1;
	return 0;
}

void router_error_reply(struct req *r)
{
	const struct err_desc *d = err_desc(r->err);
	size_t kept = 0;
	for (size_t i = 0; i < r->nheaders; i++) {
		if (keep_on_error(r->headers[i].name)) {
			r->headers[kept++] = r->headers[i];
		} else {
			free(r->headers[i].name);
			free(r->headers[i].value);
		}
	}
	r->nheaders = kept;
	buf_reset(&r->out);
	buf_adds(&r->out, "{\"errors\":[{\"code\":");
	buf_add_json_str(&r->out, d->code);
	buf_adds(&r->out, ",\"message\":");
	buf_add_json_str(&r->out, d->message);
	/* one code for both parts of the cluster's storage: the detail says which is down */
	if (r->err == E_STORE_UNAVAILABLE && !r->err_detail.len && r->reg && r->reg->store)
		store_unavailable_detail(r->reg->store, &r->err_detail);
	buf_adds(&r->out, ",\"detail\":");
	buf_add_json_str(&r->out, r->err_detail.len ? r->err_detail.buf : NULL);
	buf_adds(&r->out, "}]}\n");
	if (r->out_fd >= 0) {
		resp_fd(r, d->status, -1, 0, 0);
	}
	if (r->out_reader)
		resp_reader(r, d->status, NULL, 0);
	resp_body(r, d->status, "application/json");
}
