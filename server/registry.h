/*
 * registry: building and tearing down struct registry (see handlers.h),
 * the state every request shares.
 *
 * registry_open() fills a caller-owned struct registry from a loaded
 * config (which must outlive it); registry_close() stops the login pool
 * (call it before stopping the HTTP daemon, so suspended requests get
 * their answers); registry_release() frees everything.
 */
#ifndef BERTH_REGISTRY_H
#define BERTH_REGISTRY_H

#include "config.h"
#include "handlers.h"

/*
 * Opens storage, database and policy. The signing key is loaded here when
 * the config has users (auth on: a bad key stops the start); an open
 * registry may never need it, so it only checks that a configured key file
 * exists with mode 0600 and leaves parsing (and OpenSSL, about 2 MiB
 * resident) to the first registry_key(). Takes cfg's contents
 * over (cfg is left empty; release it anyway); the embedded default's
 * administrator is added to cfg before (datadir_admin()). Returns 0 or an
 * E_* code (logged); release the registry either way.
 */
int registry_open(struct registry *reg, struct config *cfg);
/* Where c says storage lives, for store_open_config(): fills sc (its strings stay c's) and returns it. */
const struct store_config *registry_store_config(const struct config *c, struct store_config *sc);
/*
 * Reloads the config file: users, groups, access and immutable-tag rules,
 * GC settings, limits and log level take effect at once, atomically;
 * requests already running finish under the settings they started with.
 * An invalid file is refused (logged) and the running settings stay.
 * Returns 0 or E_CONFIG.
 */
int registry_reload(struct registry *reg);
/*
 * The token signing key, loaded (or generated, for the default path) on
 * the first call when registry_open() did not load it already; see there.
 * Thread-safe: concurrent first calls load it once. Returns 0 and *out
 * (valid until registry_release()), or an E_* code (logged), in which case
 * the next call tries again.
 */
int registry_key(struct registry *reg, const struct jwt_key **out);
/* The current snapshot, referenced; hand it back with registry_snapshot_put(). */
struct snapshot *registry_snapshot_get(struct registry *reg);
void registry_snapshot_put(struct registry *reg, struct snapshot *sn);
void registry_close(struct registry *reg);
void registry_release(struct registry *reg);

#endif
