/*
 * store_meta: the store's side of meta.h: its verbs for repositories,
 * tags, tokens, the audit log and statistics (store_meta.c), and the
 * translation of a struct store_actor into the meta_actor a write takes.
 * Only storage/store*.c include it.
 */
#ifndef BERTH_STORE_META_H
#define BERTH_STORE_META_H

#include "meta.h"
#include "store.h"

/*
 * A meta_actor speaking for a store_actor: its audit hook sees a
 * store_audit and its change report lands in the store_actor's. Lives on
 * the caller's stack for one write: init, pass store_meta_actor(), done.
 */
struct store_meta_actor {
	const struct store_actor *from;
	struct meta_actor actor;
	struct meta_tag_change change;
};
void store_meta_actor_init(struct store_meta_actor *ma, const struct store_actor *from);
/* NULL when from was NULL (anonymous, unguarded). */
const struct meta_actor *store_meta_actor(struct store_meta_actor *ma);
/* Copies the change report back. */
void store_meta_actor_done(struct store_meta_actor *ma);

/* Whether a write that failed with rc may be tried once more with the reserve's room (reserve.h). */
int store_retry_full(struct store *st, int rc);

#endif
