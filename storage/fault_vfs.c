/*
 * fault_vfs: a SQLite VFS that forwards to the default one and counts its
 * xWrite, xSync and xTruncate as fault-injection steps (common/fault.h), so
 * the Nth database write or sync can fail like the Nth file system call.
 * SQLite is a shared library: -Wl,--wrap cannot reach its own calls.
 * Test builds only (-Dtest_hooks=true); registered once as the default VFS.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>

#include "fault.h"
#include "log.h"

/* The shim's file: its methods, then the real VFS's file right behind it. */
struct sfile {
	sqlite3_file base;
	sqlite3_file *real;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static sqlite3_file *R(sqlite3_file *f)
{
	return ((struct sfile *)f)->real;
}

static int x_close(sqlite3_file *f)
{
	return R(f)->pMethods->xClose(R(f));
}

static int x_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
	return R(f)->pMethods->xRead(R(f), b, n, off);
}

static int x_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
	int e = fault_step(FAULT_SQL_WRITE);
	if (e)
		return e == ENOSPC ? SQLITE_FULL : SQLITE_IOERR_WRITE;
	return R(f)->pMethods->xWrite(R(f), b, n, off);
}

static int x_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	if (fault_step(FAULT_SQL_TRUNCATE))
		return SQLITE_IOERR_TRUNCATE;
	return R(f)->pMethods->xTruncate(R(f), size);
}

static int x_sync(sqlite3_file *f, int flags)
{
	if (fault_step(FAULT_SQL_SYNC))
		return SQLITE_IOERR_FSYNC;
	return fault_no_fsync() ? SQLITE_OK : R(f)->pMethods->xSync(R(f), flags);
}

static int x_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return R(f)->pMethods->xFileSize(R(f), size);
}

static int x_lock(sqlite3_file *f, int level)
{
	return R(f)->pMethods->xLock(R(f), level);
}

static int x_unlock(sqlite3_file *f, int level)
{
	return R(f)->pMethods->xUnlock(R(f), level);
}

static int x_check_reserved(sqlite3_file *f, int *out)
{
	return R(f)->pMethods->xCheckReservedLock(R(f), out);
}

static int x_file_control(sqlite3_file *f, int op, void *arg)
{
	return R(f)->pMethods->xFileControl(R(f), op, arg);
}

static int x_sector_size(sqlite3_file *f)
{
	return R(f)->pMethods->xSectorSize(R(f));
}

static int x_device_chars(sqlite3_file *f)
{
	return R(f)->pMethods->xDeviceCharacteristics(R(f));
}

static int x_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **p)
{
	const sqlite3_io_methods *m = R(f)->pMethods;
	return m->iVersion >= 2 && m->xShmMap ? m->xShmMap(R(f), region, size, extend, p) : SQLITE_IOERR_SHMMAP;
}

static int x_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	const sqlite3_io_methods *m = R(f)->pMethods;
	return m->iVersion >= 2 && m->xShmLock ? m->xShmLock(R(f), off, n, flags) : SQLITE_IOERR_SHMLOCK;
}

static void x_shm_barrier(sqlite3_file *f)
{
	const sqlite3_io_methods *m = R(f)->pMethods;
	if (m->iVersion >= 2 && m->xShmBarrier)
		m->xShmBarrier(R(f));
}

static int x_shm_unmap(sqlite3_file *f, int del)
{
	const sqlite3_io_methods *m = R(f)->pMethods;
	return m->iVersion >= 2 && m->xShmUnmap ? m->xShmUnmap(R(f), del) : SQLITE_OK;
}

static int x_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
	const sqlite3_io_methods *m = R(f)->pMethods;
	if (m->iVersion >= 3 && m->xFetch)
		return m->xFetch(R(f), off, n, p);
	*p = NULL;
	return SQLITE_OK;
}

static int x_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	const sqlite3_io_methods *m = R(f)->pMethods;
	return m->iVersion >= 3 && m->xUnfetch ? m->xUnfetch(R(f), off, p) : SQLITE_OK;
}

static const sqlite3_io_methods io = {
	3, x_close, x_read, x_write, x_truncate, x_sync, x_file_size, x_lock, x_unlock, x_check_reserved,
	x_file_control, x_sector_size, x_device_chars, x_shm_map, x_shm_lock, x_shm_barrier, x_shm_unmap,
	x_fetch, x_unfetch,
};

static int v_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
	struct sfile *s = (struct sfile *)f;
	(void)v;
	s->real = (sqlite3_file *)(s + 1);
	int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
	/* SQLite closes a file whose pMethods is set, even after a failed open */
	s->base.pMethods = s->real->pMethods ? &io : NULL;
	return rc;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	(void)v;
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name)
{
	(void)v;
	return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	real_vfs->xDlError(real_vfs, n, msg);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	(void)v;
	return real_vfs->xDlSym(real_vfs, h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h)
{
	(void)v;
	real_vfs->xDlClose(real_vfs, h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return real_vfs->xSleep(real_vfs, us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void register_once(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	if (!real_vfs || real_vfs->iVersion < 2) {
		log_error("fault: no usable default SQLite VFS; database steps are not counted");
		return;
	}
	shim = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct sfile) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = "berth-fault",
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full_pathname,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_randomness,
		.xSleep = v_sleep,
		.xCurrentTime = v_current_time,
		.xGetLastError = v_last_error,
		.xCurrentTimeInt64 = v_current_time64,
	};
	if (sqlite3_vfs_register(&shim, 1) != SQLITE_OK)
		log_error("fault: cannot register the SQLite VFS shim");
}

void fault_vfs_register(void)
{
	pthread_once(&once, register_once);
}
