/* db_sqlite: the SQLite driver of storage/db.h. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "db_internal.h"
#include "err.h"
#include "fault.h"
#include "log.h"
#include "xalloc.h"

#define BUSY_TIMEOUT_MS 5000

struct sq_db {
	struct db base;
	sqlite3 *h;
};

struct sq_stmt {
	struct db_stmt base;
	sqlite3_stmt *s;
};

static sqlite3 *H(const struct db *db)
{
	return ((const struct sq_db *)db)->h;
}

static sqlite3_stmt *S(const struct db_stmt *s)
{
	return ((const struct sq_stmt *)s)->s;
}

/*
 * Maps an SQLite result code: BUSY/LOCKED -> E_BUSY, FULL (or ENOSPC) ->
 * E_NO_SPACE, anything else -> E_IO, logging one line naming what failed.
 * Statement text never carries bound values, so no secret reaches the log.
 */
static int sq_error(sqlite3 *h, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		log_warn("meta: database stayed locked for %d ms", BUSY_TIMEOUT_MS);
		return E_BUSY;
	case SQLITE_FULL:
		log_error("meta: database or disk is full");
		return E_NO_SPACE;
	case SQLITE_IOERR:
		if (h && sqlite3_system_errno(h) == ENOSPC) {
			log_error("meta: no space left on device");
			return E_NO_SPACE;
		}
		break;
	default:
		break;
	}
	log_error("meta: sqlite error %d: %s%s%.80s", rc, h ? sqlite3_errmsg(h) : sqlite3_errstr(rc),
		  what ? "; in: " : "", what ? what : "");
	return E_IO;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void sq_init(void)
{
	/* the global allocation statistics take a process-wide mutex on every malloc */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	fault_vfs_register(); /* test builds: database writes and syncs count as fault steps */
}

static int sq_open(const char *path, const char *password, int flags, struct db **out)
{
	(void)password;
	if (!sqlite3_threadsafe()) {
		log_error("meta: libsqlite3 was built without thread support");
		return E_INTERNAL;
	}
	pthread_once(&init_once, sq_init);
	struct sq_db *d = xcalloc(1, sizeof(*d));
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	if (flags & DB_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	int rc = sqlite3_open_v2(path, &d->h, oflags, NULL);
	if (rc != SQLITE_OK) {
		log_error("meta: cannot open %s: %s", path, d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
		rc = E_IO;
		goto out;
	}
	sqlite3_busy_timeout(d->h, BUSY_TIMEOUT_MS);
	/* refuse schema tricks (writable_schema, untrusted functions in views) */
	sqlite3_db_config(d->h, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(d->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	/*
	 * synchronous=NORMAL plus the explicit WAL fsync (db_sync_log(), group
	 * commit in meta.c): an acknowledged transaction survives power loss,
	 * not just a crash, and concurrent commits share one fsync.
	 */
	rc = sqlite3_exec(d->h, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;", NULL, NULL, NULL);
	rc = rc == SQLITE_OK ? 0 : sq_error(d->h, rc, "connection pragmas");
out:
	if (rc) {
		sqlite3_close(d->h);
		free(d);
		d = NULL;
	}
	*out = d ? &d->base : NULL;
	return rc;
}

static void sq_close(struct db *db)
{
	int rc = sqlite3_close(H(db));
	if (rc != SQLITE_OK)
		log_error("meta: closing the database failed: %s", sqlite3_errstr(rc));
	free(db);
}

static int sq_exec(struct db *db, const char *sql, const char *what)
{
	int rc = sqlite3_exec(H(db), sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sq_error(H(db), rc, what);
}

static int sq_prepare(struct db *db, const char *sql, int persistent, struct db_stmt **out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v3(H(db), sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_error(H(db), rc, sql);
	struct sq_stmt *st = xcalloc(1, sizeof(*st));
	st->base.db = db;
	st->s = s;
	*out = &st->base;
	return 0;
}

static void sq_finalize(struct db_stmt *s)
{
	sqlite3_finalize(S(s));
	free(s);
}

static void sq_reset(struct db_stmt *s)
{
	/* reset repeats the last step's error, which was already reported */
	sqlite3_reset(S(s));
	sqlite3_clear_bindings(S(s));
}

static const char *sq_sql(const struct db_stmt *s)
{
	return sqlite3_sql(S(s));
}

static void bind_check(int rc, int i)
{
	if (rc != SQLITE_OK)
		die("meta: cannot bind parameter %d: %s", i, sqlite3_errstr(rc));
}

static void sq_bind_text(struct db_stmt *s, int i, const char *t)
{
	bind_check(t ? sqlite3_bind_text(S(s), i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(S(s), i), i);
}

static void sq_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	bind_check(sqlite3_bind_int64(S(s), i, v), i);
}

static void sq_bind_blob(struct db_stmt *s, int i, const void *data, size_t len)
{
	bind_check(sqlite3_bind_blob64(S(s), i, data, (sqlite3_uint64)len, SQLITE_STATIC), i);
}

static void sq_bind_null(struct db_stmt *s, int i)
{
	bind_check(sqlite3_bind_null(S(s), i), i);
}

static int sq_step(struct db_stmt *s)
{
	int rc = sqlite3_step(S(s));
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sq_error(H(s->db), rc, sqlite3_sql(S(s)));
}

static int64_t sq_col_int64(struct db_stmt *s, int i)
{
	return sqlite3_column_int64(S(s), i);
}

static const char *sq_col_text(struct db_stmt *s, int i)
{
	if (sqlite3_column_type(S(s), i) == SQLITE_NULL)
		return NULL;
	const char *t = (const char *)sqlite3_column_text(S(s), i);
	if (!t)
		die("meta: out of memory reading a column");
	return t;
}

static const void *sq_col_blob(struct db_stmt *s, int i, size_t *len)
{
	const void *p = sqlite3_column_blob(S(s), i);
	*len = (size_t)sqlite3_column_bytes(S(s), i);
	return p;
}

static int sq_col_is_null(struct db_stmt *s, int i)
{
	return sqlite3_column_type(S(s), i) == SQLITE_NULL;
}

static int64_t sq_changes(const struct db *db)
{
	return sqlite3_changes64(H(db));
}

static uint64_t sq_total_changes(const struct db *db)
{
	/* counts every row this connection changed, in or out of a transaction, committed or not */
	return (uint64_t)sqlite3_total_changes64(H(db));
}

static int sq_in_tx(const struct db *db)
{
	return !sqlite3_get_autocommit(H(db));
}

static int sq_sync_log(struct db *db)
{
	sqlite3_file *wal = NULL;
	int rc = sqlite3_file_control(H(db), "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
	if (rc != SQLITE_OK || !wal || !wal->pMethods)
		return E_IO;
	rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
	return rc == SQLITE_OK ? 0 : rc == SQLITE_FULL ? E_NO_SPACE : E_IO;
}

const struct db_ops db_sqlite_ops = {
	.open = sq_open,
	.close = sq_close,
	.exec = sq_exec,
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.reset = sq_reset,
	.sql = sq_sql,
	.bind_text = sq_bind_text,
	.bind_int64 = sq_bind_int64,
	.bind_blob = sq_bind_blob,
	.bind_null = sq_bind_null,
	.step = sq_step,
	.col_int64 = sq_col_int64,
	.col_text = sq_col_text,
	.col_blob = sq_col_blob,
	.col_is_null = sq_col_is_null,
	.changes = sq_changes,
	.total_changes = sq_total_changes,
	.in_tx = sq_in_tx,
	.sync_log = sq_sync_log,
};
