/*
 * audit: recording who did what. Each event becomes one row of the audit
 * log in the store (store_audit_add) and one JSON line on the log,
 *   {"audit":{"time":...,"actor":...,"action":...,"repo":...,"client":...,"detail":{...}}}
 * (written whatever the log level, except below "info", as on the command
 * line). Never hand it a secret: no password, token or Authorization value.
 *
 * Owns nothing; strings are borrowed for the call. Thread-safe (each
 * thread writes through its own database connection).
 */
#ifndef BERTH_AUDIT_H
#define BERTH_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "req.h"
#include "store.h"

/*
 * Appends who r's caller is: "alice", or "alice (token ci-push)" when a
 * personal access token was used ("alice (token #12)" when its name cannot
 * be read). Returns 1, or 0 for an anonymous caller (out untouched). With
 * r NULL (the command line) appends "cli".
 */
int audit_actor(struct req *r, struct buf *out);

/*
 * Records an event done on behalf of request r (not NULL; the command
 * line records through audit_event_as() with actor "cli"). action is non-empty
 * ("push", "delete", "tag", "rollback", "login", "login_failed", "gc",
 * ...); repo may be NULL. detail_fmt, when not NULL, printf-formats the
 * detail: a JSON object, e.g. "{\"digest\":\"%s\",\"bytes\":%lld}". Values
 * that come from outside (a user name that failed to log in) must be
 * quoted with audit_json_str() first; a detail that is not a JSON object
 * is logged as a bug and the event recorded without it.
 * Returns 0 or the E_* of the database write (also logged): callers may
 * ignore it, since what happened stays done either way.
 */
int audit_event(struct req *r, const char *action, const char *repo, const char *detail_fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same in st with an explicit actor and client (both may be NULL), e.g. "gc" inside the daemon. */
int audit_event_as(struct store *st, const char *actor, const char *client, const char *action, const char *repo,
		   const char *detail_fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Writes the log line of an event whose database row another module has
 * already stored, inside the transaction of the change it records (see
 * struct store_actor's audit hook): called after that commit.
 */
void audit_log_event(const struct store_audit *ev);

/*
 * Records one credential check made for r (a password or a personal access
 * token, with_token, presented for user): "login" with actor "user" or
 * "user (token NAME)" when rc is 0, else "login_failed" with no actor and
 * the claimed name in the detail, made safe, and only when such a user
 * exists (else null: a password typed as the user name stays unwritten).
 * Never sees the secret.
 */
void audit_login(struct req *r, const char *user, int with_token, int64_t pat_id, int rc);

/*
 * Appends s as a JSON string that is safe to show anywhere: printable
 * ASCII kept (quotes and backslashes escaped), every other byte as '?',
 * cut after max bytes with "..." added.
 */
void audit_json_str(struct buf *out, const char *s, size_t max);

#endif
