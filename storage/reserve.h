/*
 * reserve: disk space set aside in the data directory so that deletes still
 * work when the disk is full.
 *
 * `berth serve` preallocates the file <root>/reserve (RESERVE_SIZE bytes)
 * when it starts. A delete whose write fails for lack of space gives that
 * space back to the file system (reserve_release()) and tries once more:
 * the room lets the delete commit, and the garbage collection that frees
 * the deleted content after it. While the reserve is given back, writes
 * that add content first try to take it again (reserve_restore()) and are
 * refused with E_NO_SPACE as long as they cannot, so the room stays for
 * deletes and the collection; once space has been freed the next push
 * re-creates the file and goes on.
 *
 * A struct reserve belongs to the store of its data directory (one per
 * store that serves). Without one (NULL: command-line processes, unit
 * tests) release makes no room and restore always succeeds.
 * reserve_close() forgets it (the file stays, for the next start). All
 * functions are thread-safe.
 */
#ifndef BERTH_RESERVE_H
#define BERTH_RESERVE_H

#include <stdint.h>

/* Space kept: room for many delete transactions, a WAL cycle and a collection's bookkeeping. */
#define RESERVE_SIZE ((int64_t)8 << 20)

/*
 * Creates or completes the reserve of size bytes under root. When the
 * disk has no room for it now, the reserve starts out given back (pushes
 * wait for the space, see above) and E_NO_SPACE is returned; E_IO for
 * another failure (then there is no reserve: deletes and pushes behave as
 * without one). Both are logged; the caller carries on either way, and
 * *out is set in every case, to be given to reserve_close().
 */
struct reserve;
int reserve_open(const char *root, int64_t size, struct reserve **out);
/*
 * Gives the reserve's space back to the file system, when it is held.
 * Returns 1 when r has a reserve (held until now, or
 * already given back): the caller's write may find room now, so it is
 * worth one more try; 0 when there is none.
 */
int reserve_release(struct reserve *r);
/* The error detail of a push refused while the reserve cannot be taken back. */
#define RESERVE_FULL_DETAIL "disk full: the space kept for deletes is in use; delete content and run berth gc"
/*
 * Takes the reserve again when it was given back and the file system has
 * room for it plus a margin. Returns 0 when the reserve is held (or there
 * is none), E_NO_SPACE while it cannot be taken back yet.
 */
int reserve_restore(struct reserve *r);
void reserve_close(struct reserve *r);

#endif
