/*
 * scope: the access vocabulary of the token flow: action sets
 * ("pull,push,delete"), requested scopes ("repository:team-a/app:pull,push",
 * "registry:catalog:*") and the scope lists of personal access tokens.
 *
 * Pure functions on caller-owned strings; struct scope owns its strings
 * until scope_release(). Thread-safe.
 */
#ifndef BERTH_SCOPE_H
#define BERTH_SCOPE_H

#include "action.h"
#include "buf.h"

/* Most scopes honoured in one token request; the rest are ignored. */
#define SCOPE_MAX_PER_REQUEST 16

struct scope {
	char *type;      /* "repository" or "registry" */
	char *name;      /* repository name, or "catalog" */
	unsigned actions;
};

/* "pull,push": unknown words are ignored; "*" means all. */
unsigned actions_parse(const char *list);
/* Appends "pull,push,delete" style text (empty for none). */
void actions_format(unsigned actions, struct buf *out);

/*
 * Parses "type:name:actions". The name may itself hold ':' (a registry
 * host with a port), so type ends at the first ':' and actions start after
 * the last. Returns 0 or E_BAD_REQUEST; a repository name must pass
 * name_check().
 */
int scope_parse(const char *s, struct scope *out);
void scope_release(struct scope *sc);

/*
 * Personal access token scopes: space-separated "repository:<glob>:<actions>".
 * scopes_check() returns 0 or E_CONFIG (appending the problem to err);
 * scopes_actions() gives the union of actions of the entries whose glob
 * matches repo, and ACTION_ALL for an empty list (the owner's full rights).
 */
int scopes_check(const char *scopes, struct buf *err);
unsigned scopes_actions(const char *scopes, const char *repo);

#endif
