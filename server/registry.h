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
 * Opens storage, database, policy and signing key. Without a config file
 * it first sets up the embedded default's administrator (may modify cfg).
 * Returns 0 or an E_* code (logged); release the registry either way.
 */
int registry_open(struct registry *reg, struct config *cfg);
void registry_close(struct registry *reg);
void registry_release(struct registry *reg);
/* Writes content and a newline to path atomically with mode 0600. */
int registry_write_secret_file(const char *path, const char *content);

#endif
