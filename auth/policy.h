/*
 * policy: who may do what: the users (with their argon2id password hashes),
 * their groups and the access rules, in memory, as read from the config.
 *
 * A struct policy is built from a loaded struct config and copies all it
 * needs, so the config may be released right after policy_build(). It is
 * immutable once built: any number of threads may read one concurrently
 * without locks. A reload builds a new policy and swaps it in whole; the
 * old one is freed with policy_free() once no reader holds it (the swap and
 * that wait are the caller's). Strings returned point into the policy and
 * stay valid until policy_free().
 *
 * Access is deny-by-default: a caller gets the union of the actions of every
 * rule that matches both the repository and the caller, and nothing when no
 * rule matches. A rule matches the caller when it names the user, names a
 * group the user belongs to, or is anonymous (anonymous rules match every
 * caller, signed in or not).
 */
#ifndef BERTH_POLICY_H
#define BERTH_POLICY_H

#include <stddef.h>

#include "action.h"
#include "config.h"

/* Default cost of the hashes `berth passwd` prints. */
#define POLICY_ARGON2_M_KIB 65536
#define POLICY_ARGON2_T 3
#define POLICY_ARGON2_P 1

struct policy;

/*
 * Builds the policy of c (already validated by the config loader, so every
 * user and group named exists). Returns 0 and *out (free with policy_free),
 * or E_CONFIG when c is inconsistent anyway.
 */
int policy_build(const struct config *c, struct policy **out);
void policy_free(struct policy *p);

/*
 * The actions (enum action bits) user may perform on repository repo; user
 * NULL means an anonymous caller. A user name the policy does not know
 * gets what anonymous callers get.
 */
unsigned policy_actions(const struct policy *p, const char *user, const char *repo);

/* Returns 1 when user is in the policy (with or without a password), else 0. */
int policy_user_exists(const struct policy *p, const char *user);
/* Returns 1 when the policy has at least one user, else 0. */
int policy_has_users(const struct policy *p);
/* The user's argon2id PHC string, or NULL (unknown user, or no password). */
const char *policy_user_hash(const struct policy *p, const char *user);

/*
 * The PHC string a password check for user runs against: the user's own
 * hash, or the dummy one (same cost) for unknown users and users without
 * a password. Exposed so tests can prove the costs match without timing.
 */
const char *policy_verified_hash(const struct policy *p, const char *user);
/*
 * Checks a password (len bytes, any content) with argon2id. Returns 0 when
 * it is user's password, else E_UNAUTHORIZED. Unknown users and users
 * without a password are checked against a dummy hash of the same cost, so
 * the time taken does not reveal which user names exist. Slow by design
 * (tens to hundreds of milliseconds and the hash's memory): callers bound
 * how many run at once.
 */
int policy_check_password(const struct policy *p, const char *user, const char *password, size_t len);

/*
 * Hashes a password (len bytes) with argon2id at the default cost and a
 * random 16-byte salt, appending the PHC string to out. Returns 0, or
 * E_INTERNAL when argon2id fails (not enough memory for its cost).
 */
int policy_hash_password(const char *password, size_t len, struct buf *out);

/*
 * `berth passwd [--user NAME] [-m KIB] [-t N] [-p N]`: reads a password
 * (twice, without echo, from a terminal; one line from a pipe) and prints
 * its argon2id hash, plus a line to paste into "users" when --user is
 * given. argv[0] names the command and is ignored, as in main(). Returns
 * 0, 1 on error, 2 on a usage error.
 */
int policy_passwd_main(int argc, char **argv);

#endif
