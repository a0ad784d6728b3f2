/*
 * router: the route table and the dispatcher.
 *
 * The table (router.c) is data: path pattern, method, handler steps and
 * flags. The dispatcher does, once for every request: pattern matching,
 * method check (405), repository name and reference validation, and the
 * error reply (OCI error JSON from the err table). Handlers only hold their
 * own logic. Stateless and thread-safe; per-request state lives in struct req.
 */
#ifndef BERTH_ROUTER_H
#define BERTH_ROUTER_H

#include "action.h"
#include "req.h"

enum route_kind {
	ROUTE_BASE,         /* /v2/ */
	ROUTE_CATALOG,      /* /v2/_catalog */
	ROUTE_TAGS,         /* /v2/<name>/tags/list */
	ROUTE_MANIFEST,     /* /v2/<name>/manifests/<reference> */
	ROUTE_BLOB,         /* /v2/<name>/blobs/<digest> */
	ROUTE_UPLOAD_START, /* /v2/<name>/blobs/uploads/ */
	ROUTE_UPLOAD,       /* /v2/<name>/blobs/uploads/<id> */
	ROUTE_REFERRERS,    /* /v2/<name>/referrers/<digest> */
	ROUTE_HEALTH,       /* /healthz */
	ROUTE_TOKEN,        /* /auth/token */
	ROUTE_METRICS,      /* /metrics */
	ROUTE_READY,        /* /readyz */
	ROUTE_TAG_HISTORY,  /* /v2/<name>/_berth/tags/<tag>/history */
	ROUTE_TAG_ROLLBACK, /* /v2/<name>/_berth/tags/<tag>/rollback */
	ROUTE_TEST_CLOCK,   /* /_berth/test/clock (test builds only) */
	ROUTE_TEST_FAULT,   /* /_berth/test/fault (test builds only) */
	ROUTE_ROOT,         /* / (a browser is sent to /ui/) */
	ROUTE_UI,           /* /ui/... the web interface */
	ROUTE_EXT_REPOS,    /* /v2/_berth/repositories */
	ROUTE_EXT_TAGS,     /* /v2/<name>/_berth/tags */
	ROUTE_EXT_IMAGE,    /* /v2/<name>/_berth/image/<reference> */
	ROUTE_EXT_COMPARE,  /* /v2/<name>/_berth/compare */
	ROUTE_NONE,
};

/*
 * A route's flags: the actions it needs on the repository (enum action
 * bits, common/action.h, in the low bits) and these.
 */
enum route_flags {
	R_NOAUTH = 1 << 3, /* no authentication step (the handler deals with credentials) */
	R_IO = 1 << 4,     /* begin and finish run on the I/O pool: they write durably (fsync) */
	R_SESSION = 1 << 5, /* a web interface session cookie may authenticate it (GET only) */
};
_Static_assert((ACTION_ALL & (R_NOAUTH | R_IO | R_SESSION)) == 0, "route flags must not overlap the action bits");

struct route {
	enum route_kind kind;
	enum http_method method;
	unsigned flags;
	/*
	 * Runs once the headers are in. Returns 0 or an E_* code. It either
	 * builds the whole response, or selects a body mode (BODY_BUFFER or
	 * BODY_STREAM) so the body is consumed before finish runs.
	 */
	int (*begin)(struct req *r);
	/* Runs after the whole body arrived; NULL for routes without a body. */
	int (*finish)(struct req *r);
};

enum {
	ROUTER_BODY = 0,  /* read the body, then call router_finish() */
	ROUTER_REPLY = 1, /* the reply is decided (r->err or a built response) */
	ROUTER_ASYNC = 2, /* run r->async_work on the login pool, then router_resume() */
};

/* Matches and validates r, authenticates and runs the route's begin step. */
int router_begin(struct req *r);
/* Continues after r->async_work ran; same results as router_begin(). */
int router_resume(struct req *r);
/* Runs the finish step (when no error is pending): ROUTER_REPLY or ROUTER_ASYNC. */
int router_finish(struct req *r);
/* Turns r->err into the OCI error JSON reply. */
void router_error_reply(struct req *r);
/* Non-zero when the caller of r holds all of actions (enum action bits) on repo. */
int router_may(struct req *r, const char *repo, unsigned actions);
/* Short route label for logs and metrics ("manifest", "blob", ...). */
const char *router_label(const struct req *r);
/* The same for a route kind (ROUTE_NONE for anything out of range). */
const char *router_kind_label(int kind);

#endif
