/*
 * datadir: the data directory as a whole. `berth serve` creates it and
 * holds an exclusive lock on it for as long as it runs, so two daemons
 * never share one directory; the admin commands only check that it exists
 * (they never create one, and never take the lock: SQLite's WAL lets them
 * work beside a running daemon). Also the embedded default's
 * administrator, whose password is made at the first start.
 *
 * Owns nothing but the lock's file descriptor (datadir_unlock()). Call
 * from the main thread before other threads start; not thread-safe.
 */
#ifndef BERTH_DATADIR_H
#define BERTH_DATADIR_H

#include "config.h"

/* datadir_lock(): another process holds the lock (already reported). */
#define DATADIR_BUSY 1

/*
 * Creates root when it is missing (one level, like `mkdir`) and takes an
 * exclusive lock on its lock file (berth.lock, never removed: removing it
 * would let a second daemon lock a new file while the first holds the
 * old), recording this process's id in it. The lock goes with the process
 * (kill -9 included), so a lock file left behind never blocks a start.
 * Returns 0 and *fd (keep it open while serving; datadir_unlock() at the
 * end); DATADIR_BUSY after printing which directory and which process id
 * hold it; or E_IO (reported).
 */
int datadir_lock(const char *root, int *fd);
void datadir_unlock(int fd);

/*
 * Whether root is a data directory `berth serve` made (it holds the
 * database). Returns 0, or 1 after printing "no berth data directory at
 * ROOT (use --root or -c)" to stderr.
 */
int datadir_check(const char *root);

/*
 * The embedded default's administrator (for a registry without a config
 * file): reads the password hash in keys/admin.argon2 and adds user
 * "admin" to cfg. With create, a missing file is created with a new random
 * password, which is printed once to stderr with the address to log in to
 * (cfg's external URL, else its listen address); the file is published
 * whole and only once, so when two processes race, one prints a password
 * and the other uses that one's hash. Without create, a missing file
 * leaves cfg without users. Returns 0 or an E_* code (logged).
 */
int datadir_admin(struct config *cfg, int create);

#endif
