/*
 * ui: the web interface under /ui/ (docs/ui.md) and the JSON views it
 * shares with API clients under the _berth prefix (docs/api.md).
 *
 * Pages are rendered on the server (ui_repos.c), reading the store through
 * store.h and store_browse.h only, and show a caller exactly the
 * repositories it may pull: one it may not pull answers like one that
 * does not exist. Sign-in (ui_session.c) checks the same users, passwords
 * and personal access tokens as `docker login`, through the same
 * credential cache and failed-login limits, and keeps the signed-in state
 * in a signed session cookie; every form that changes state carries a
 * CSRF token. The router calls these handlers like any other; they hold no
 * state between requests. Thread-safe.
 */
#ifndef BERTH_UI_H
#define BERTH_UI_H

#include "buf.h"
#include "req.h"

/* GET /: a browser (Accept: text/html) is sent to /ui/; anything else gets 404 as before. */
int ui_root_get(struct req *r);
/* GET /ui/...: pages and assets. */
int ui_get(struct req *r);
/* POST /ui/login and /ui/logout: the form body is read, then ui_post_finish() acts. */
int ui_post(struct req *r);
int ui_post_finish(struct req *r);

/* GET /v2/_berth/repositories: repositories the caller may pull, with last push, tag count and size. */
int ui_view_repos(struct req *r);
/* GET /v2/<name>/_berth/tags: tags with push time, pusher, size and immutability. */
int ui_view_tags(struct req *r);
/* GET /v2/<name>/_berth/image/<ref>: manifest, config, build steps with layers, tags, referrers. */
int ui_view_image(struct req *r);
/* GET /v2/<name>/_berth/compare?a=REF&b=REF: layers added, removed and shared, size and config differences. */
int ui_view_compare(struct req *r);

/*
 * For routes that a session may authenticate (GET only): when r carries
 * no Authorization header and a valid session cookie, sets r->ident to
 * the session's user (as with Basic credentials: the user's rights, cut
 * to the token's scopes when signed in with a personal access token) and
 * returns 1; otherwise 0 and authentication goes on as usual.
 */
int ui_session_begin(struct req *r);
/* Appends the CSRF token of r's session cookie to out; returns 0 when r has no session cookie. */
int ui_csrf(struct req *r, struct buf *out);

#endif
