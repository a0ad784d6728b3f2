/*
 * action: the three things a caller may do to a repository (pull, push,
 * delete), as one set of bits shared by the route table, the config's
 * access rules, the policy, token scopes, personal access tokens and the
 * claims of signed tokens.
 *
 * Owns nothing: the names returned are static strings. Thread-safe.
 */
#ifndef BERTH_ACTION_H
#define BERTH_ACTION_H

#include <stddef.h>

enum action {
	ACTION_PULL = 1,
	ACTION_PUSH = 2,
	ACTION_DELETE = 4,
};

/* Every action; a set of actions is an unsigned holding enum action bits. */
#define ACTION_ALL ((unsigned)(ACTION_PULL | ACTION_PUSH | ACTION_DELETE))

/* The name of one action ("pull", "push", "delete"), or NULL when a is not exactly one action. */
const char *action_name(unsigned a);

/*
 * The bits named by the len bytes at s: one action for its name, ACTION_ALL
 * for "*", 0 for anything else (callers decide whether unknown names are
 * errors or are skipped).
 */
unsigned action_from_name(const char *s, size_t len);

#endif
