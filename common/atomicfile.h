/*
 * atomicfile: small files (keys, password hashes) published whole and at
 * most once. A file is written to a unique temporary beside its final
 * name, synced, then hard-linked to that name, which fails when the name
 * exists: of several processes creating the same file at once exactly one
 * wins, and nobody ever sees a partial file or has a file replaced.
 *
 * Owns nothing; thread-safe (each call uses its own temporary).
 */
#ifndef BERTH_ATOMICFILE_H
#define BERTH_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* atomicfile_create() found the file there already: someone else's content stands. */
#define ATOMICFILE_EXISTS 1

/*
 * Creates path with exactly the len bytes of data and the given mode,
 * unless it exists. Data and directory entry are synced before it
 * returns 0. Returns ATOMICFILE_EXISTS when path existed already (nothing
 * written), or E_IO (logged). No temporary is left behind either way.
 *
 * On a file system without hard links it falls back to a rename that
 * refuses to replace (RENAME_NOREPLACE), then to a plain rename: only on
 * the last can two simultaneous creators each believe they won.
 */
int atomicfile_create(const char *path, const void *data, size_t len, mode_t mode);

/* fsync()s the directory that holds path. Returns 0 or E_IO (logged). */
int atomicfile_sync_parent(const char *path);

#endif
