/*
 * fault: storage fault injection and the no-fsync switch, for test builds.
 *
 * Exists only in builds configured with -Dtest_hooks=true. There every
 * program is linked with -Wl,--wrap for the file system calls the storage
 * code makes (write, pwrite, ftruncate, fallocate, fsync, fdatasync, rename,
 * renameat, link, linkat, unlink, unlinkat), and SQLite's files go through
 * the VFS shim of storage/fault_vfs.c (xWrite, xSync, xTruncate). Each of
 * those calls is a step. Writes count only on regular files above stderr,
 * so log lines and sockets are never steps.
 *
 * Once armed, steps are counted and the Nth one fails without doing
 * anything, with EIO (or ENOSPC; SQLite sees SQLITE_IOERR_* or SQLITE_FULL);
 * with "persist" every later step fails too, as on a disk that died.
 * Armed from the environment at the first step, BERTH_TEST_FAULT=N[+][:ENOSPC]
 * (N=0 only counts; a process armed this way reports on stderr at exit
 * which step failed, or how many it counted), or at run time with
 * fault_arm() (the daemon's POST /_berth/test/fault).
 *
 * BERTH_TEST_NO_FSYNC=1 makes fsync, fdatasync and SQLite's xSync succeed
 * without syncing (like synchronous=OFF): for tests that do not test
 * durability. Steps are still counted.
 *
 * While the test clock is shifted (common/clock.h), a successful write or
 * truncate also sets the file's modification time to the shifted clock, so
 * file ages (GC grace, upload TTL) follow the same clock as the database's.
 *
 * Owns no memory. Thread-safe: the counter is atomic.
 */
#ifndef BERTH_FAULT_H
#define BERTH_FAULT_H

#ifdef BERTH_TEST_HOOKS
#include <stdint.h>

enum fault_kind {
	FAULT_WRITE,
	FAULT_TRUNCATE,
	FAULT_SYNC,
	FAULT_RENAME,
	FAULT_LINK,
	FAULT_UNLINK,
	FAULT_SQL_WRITE,
	FAULT_SQL_SYNC,
	FAULT_SQL_TRUNCATE,
};

struct fault_status {
	int64_t steps;        /* steps counted since arming */
	int64_t failed_at;    /* the step that failed first, 0 when none did */
	int64_t failures;     /* steps made to fail (more than one when persistent) */
	enum fault_kind kind; /* what the step at failed_at was */
};

/*
 * A step of kind k is about to run: 0 to go ahead, or the errno it must
 * fail with (without running).
 */
int fault_step(enum fault_kind k);
/* 1 when syncs are to be skipped (BERTH_TEST_NO_FSYNC=1). */
int fault_no_fsync(void);
/*
 * Resets the count and arms: the at-th step from now fails (0: count
 * only), and every later one too when persist is set, with errno err
 * (EIO or ENOSPC). Reports the status before the reset in *before (may be NULL).
 */
void fault_arm(int64_t at, int persist, int err, struct fault_status *before);
void fault_status_get(struct fault_status *st);
/* A short name of kind k ("write", "sqlite-sync", ...). */
const char *fault_kind_name(enum fault_kind k);
/*
 * Makes SQLite's default VFS the counting shim (storage/fault_vfs.c).
 * Called by the metadata module before its first connection; idempotent.
 */
void fault_vfs_register(void);
#else
static inline void fault_vfs_register(void)
{
}
#endif

#endif
