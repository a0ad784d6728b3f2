/* meta: per-thread SQLite connections, statement cache, transactions and schema migrations. */
#include "meta.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "fault.h"
#include "log.h"
#include "meta_internal.h"
#include "xalloc.h"

#define BUSY_TIMEOUT_MS 5000
_Static_assert(REF_CONFIG == 0 && REF_LAYER == 1 && REF_CHILD == 2 && REF_SUBJECT == 3,
	       "manifest_refs.kind stores enum ref_kind values");

/*
 * Registry of every open connection, so meta_close() can close them all and
 * a thread's connection can be closed when the thread exits. Only opening
 * and closing take reg_lock; queries never do.
 */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct meta_conn *reg_head;
static char *db_path; /* NULL while closed */
static uintptr_t next_serial = 1;
/* Bumped by meta_close(): a thread-local pointer from an older generation is dangling. */
static atomic_uint generation;
static int schema_version;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static _Thread_local struct meta_conn *tls_conn;
static _Thread_local unsigned tls_gen;

static const struct meta_query q_begin = { MS_BEGIN, "BEGIN IMMEDIATE" };
static const struct meta_query q_commit = { MS_COMMIT, "COMMIT" };
static const struct meta_query q_rollback = { MS_ROLLBACK, "ROLLBACK" };
static const struct meta_query q_repo_id = { MS_REPO_ID, "SELECT id FROM repos WHERE name = ?1" };
static const struct meta_query q_repo_insert = {
	MS_REPO_INSERT, "INSERT INTO repos(name, created_ms) VALUES (?1, ?2)"
};

int64_t meta_now_ms(void)
{
	return clock_wall_ms();
}

int meta_sql_error(struct meta_conn *c, int rc, const char *sql)
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
		if (c && sqlite3_system_errno(c->db) == ENOSPC) {
			log_error("meta: no space left on device");
			return E_NO_SPACE;
		}
		break;
	default:
		break;
	}
	log_error("meta: sqlite error %d: %s%s%.80s", rc,
		  c ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc), sql ? "; in: " : "", sql ? sql : "");
	return E_IO;
}

void meta_bind_text(sqlite3_stmt *s, int i, const char *t)
{
	int rc = t ? sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
	if (rc != SQLITE_OK)
		die("meta: cannot bind parameter %d: %s", i, sqlite3_errstr(rc));
}

void meta_bind_int64(sqlite3_stmt *s, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(s, i, v);
	if (rc != SQLITE_OK)
		die("meta: cannot bind parameter %d: %s", i, sqlite3_errstr(rc));
}

void meta_bind_blob(sqlite3_stmt *s, int i, const void *data, size_t len)
{
	assert(len <= INT_MAX);
	int rc = sqlite3_bind_blob(s, i, data, (int)len, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		die("meta: cannot bind parameter %d: %s", i, sqlite3_errstr(rc));
}

const char *meta_col_text(sqlite3_stmt *s, int i)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return NULL;
	const char *t = (const char *)sqlite3_column_text(s, i);
	if (!t)
		die("meta: out of memory reading a column");
	return t;
}

int meta_stmt(struct meta_conn *c, const struct meta_query *q, sqlite3_stmt **out)
{
	int slot = (int)q->id;
	assert(slot >= 0 && slot < MS__COUNT);
	assert(!c->queries[slot] || c->queries[slot] == q);
	if (c->stmts[slot] && !c->in_use[slot]) {
		c->in_use[slot] = 1;
		*out = c->stmts[slot];
		return 0;
	}
	int cached = !c->stmts[slot];
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v3(c->db, q->sql, -1, cached ? SQLITE_PREPARE_PERSISTENT : 0, &s, NULL);
	if (rc != SQLITE_OK)
		return meta_sql_error(c, rc, q->sql);
	if (cached) {
		c->stmts[slot] = s;
		c->queries[slot] = q;
		c->in_use[slot] = 1;
	}
	*out = s;
	return 0;
}

void meta_stmt_done(struct meta_conn *c, const struct meta_query *q, sqlite3_stmt *s)
{
	int slot = (int)q->id;
	if (s != c->stmts[slot]) {
		sqlite3_finalize(s);
		return;
	}
	/* reset repeats the last step's error, which was already reported */
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	c->in_use[slot] = 0;
}

int meta_step(struct meta_conn *c, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return meta_sql_error(c, rc, sqlite3_sql(s));
}

int meta_exec(struct meta_conn *c, sqlite3_stmt *s)
{
	int rc;
	while ((rc = meta_step(c, s)) == 1)
		;
	return rc;
}

int meta_run_simple(struct meta_conn *c, const struct meta_query *q)
{
	sqlite3_stmt *s = NULL;
	int rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	rc = meta_exec(c, s);
	meta_stmt_done(c, q, s);
	return rc;
}

int meta_tx_begin(struct meta_conn *c)
{
	assert(sqlite3_get_autocommit(c->db));
	return meta_run_simple(c, &q_begin);
}

/*
 * Group commit. Connections run with synchronous=NORMAL, so COMMIT appends
 * to the WAL without an fsync; a committed write transaction then waits in
 * wal_durable() until one fsync of the WAL covers it. Concurrent committers
 * share that fsync instead of queueing one each behind SQLite's write lock:
 * every acknowledged write is still on disk before it is acknowledged.
 */
static pthread_mutex_t dur_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dur_cond = PTHREAD_COND_INITIALIZER;
static uint64_t dur_committed; /* commits whose WAL frames are written */
static uint64_t dur_synced;    /* commits covered by a finished fsync */
static int dur_flushing;

static int wal_sync(struct meta_conn *c)
{
	sqlite3_file *wal = NULL;
	int rc = sqlite3_file_control(c->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
	if (rc != SQLITE_OK || !wal || !wal->pMethods)
		return E_IO;
	rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
	return rc == SQLITE_OK ? 0 : rc == SQLITE_FULL ? E_NO_SPACE : E_IO;
}

static int wal_durable(struct meta_conn *c)
{
	uint64_t mine;
	int rc = 0;
	pthread_mutex_lock(&dur_lock);
	/* Numbered after COMMIT returned: its frames precede any fsync that starts later. */
	mine = ++dur_committed;
	while (dur_synced < mine && !rc) {
		if (dur_flushing) {
			pthread_cond_wait(&dur_cond, &dur_lock);
			continue;
		}
		uint64_t target = dur_committed;
		dur_flushing = 1;
		pthread_mutex_unlock(&dur_lock);
		rc = wal_sync(c);
		pthread_mutex_lock(&dur_lock);
		dur_flushing = 0;
		if (!rc && target > dur_synced)
			dur_synced = target;
		pthread_cond_broadcast(&dur_cond);
	}
	pthread_mutex_unlock(&dur_lock);
	if (rc)
		log_error("meta: cannot make the database log durable");
	return rc;
}

void meta_tx_rollback(struct meta_conn *c)
{
	/* SQLite may have rolled back already (after an I/O error, or a failed COMMIT) */
	if (!sqlite3_get_autocommit(c->db) && meta_run_simple(c, &q_rollback))
		log_error("meta: rollback failed");
}

int meta_tx_commit(struct meta_conn *c)
{
	int rc = meta_run_simple(c, &q_commit);
	/* a failed COMMIT can leave the transaction open */
	if (rc)
		meta_tx_rollback(c);
	return rc;
}

int meta_tx_durable(struct meta_conn *c)
{
	return wal_durable(c);
}

int meta_tx_end(struct meta_conn *c, int rc)
{
	if (rc) {
		meta_tx_rollback(c);
		return rc;
	}
	rc = meta_tx_commit(c);
	return rc ? rc : wal_durable(c);
}

int meta_repo_id(struct meta_conn *c, const char *repo, int create, int64_t *id)
{
	sqlite3_stmt *s;
	int rc = meta_stmt(c, &q_repo_id, &s);
	if (rc)
		return rc;
	meta_bind_text(s, 1, repo);
	rc = meta_step(c, s);
	if (rc == 1)
		*id = sqlite3_column_int64(s, 0);
	meta_stmt_done(c, &q_repo_id, s);
	if (rc == 1)
		return 0;
	if (rc)
		return rc;
	if (!create)
		return E_NAME_UNKNOWN;
	assert(!sqlite3_get_autocommit(c->db));
	rc = meta_stmt(c, &q_repo_insert, &s);
	if (rc)
		return rc;
	meta_bind_text(s, 1, repo);
	meta_bind_int64(s, 2, meta_now_ms());
	rc = meta_exec(c, s);
	meta_stmt_done(c, &q_repo_insert, s);
	if (!rc)
		*id = sqlite3_last_insert_rowid(c->db);
	return rc;
}

/* ---- connections ---- */

static void conn_close(struct meta_conn *c)
{
	for (int i = 0; i < MS__COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	int rc = sqlite3_close(c->db);
	if (rc != SQLITE_OK)
		log_error("meta: closing the database failed: %s", sqlite3_errstr(rc));
	free(c);
}

/* Opens one connection with the per-connection settings every user needs. */
static int conn_open(const char *path, int create, struct meta_conn **out)
{
	struct meta_conn *c = xcalloc(1, sizeof(*c));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		log_error("meta: cannot open %s: %s", path,
			  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		rc = E_IO;
		goto out;
	}
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	/* refuse schema tricks (writable_schema, untrusted functions in views) */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	/*
	 * synchronous=NORMAL plus the explicit WAL fsync in meta_tx_end():
	 * an acknowledged transaction survives power loss, not just a crash,
	 * and concurrent commits share one fsync.
	 */
	rc = sqlite3_exec(c->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = meta_sql_error(c, rc, "connection pragmas");
		goto out;
	}
	rc = 0;
out:
	if (rc) {
		sqlite3_close(c->db);
		free(c);
		c = NULL;
	}
	*out = c;
	return rc;
}

/* Thread exit: closes the exiting thread's connection unless meta_close() already did. */
static void conn_exit(void *key)
{
	uintptr_t serial = (uintptr_t)key;
	pthread_mutex_lock(&reg_lock);
	for (struct meta_conn **pp = &reg_head; *pp; pp = &(*pp)->next) {
		if ((*pp)->serial == serial) {
			struct meta_conn *c = *pp;
			*pp = c->next;
			conn_close(c);
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

/* Process-wide set-up, run once before the first connection. */
static void init_once(void)
{
	/* the global allocation statistics take a process-wide mutex on every malloc */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (pthread_key_create(&exit_key, conn_exit))
		die("meta: cannot create a thread key");
}

/* Opens and registers the calling thread's connection. */
static int conn_open_registered(int create, struct meta_conn **out)
{
	int rc;
	pthread_mutex_lock(&reg_lock);
	if (!db_path) {
		log_error("meta: database used while not open");
		rc = E_INTERNAL;
		goto out;
	}
	rc = conn_open(db_path, create, out);
	if (rc)
		goto out;
	struct meta_conn *c = *out;
	c->serial = next_serial++;
	c->next = reg_head;
	reg_head = c;
	if (pthread_setspecific(exit_key, (void *)c->serial))
		die("meta: cannot set a thread key");
	tls_conn = c;
	tls_gen = atomic_load(&generation);
out:
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

int meta_conn_get(struct meta_conn **out)
{
	if (tls_conn && tls_gen == atomic_load_explicit(&generation, memory_order_acquire)) {
		*out = tls_conn;
		return 0;
	}
	tls_conn = NULL;
	return conn_open_registered(0, out);
}

/* ---- opening and migrations ---- */

/* Reads a single-integer PRAGMA or query. */
static int query_int(struct meta_conn *c, const char *sql, int *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return meta_sql_error(c, rc, sql);
	rc = meta_step(c, s);
	if (rc == 1) {
		*out = sqlite3_column_int(s, 0);
		rc = 0;
	} else if (rc == 0) {
		log_error("meta: no result from %s", sql);
		rc = E_IO;
	}
	sqlite3_finalize(s);
	return rc;
}

static int exec_sql(struct meta_conn *c, const char *sql, const char *what)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : meta_sql_error(c, rc, what);
}

static int set_wal(struct meta_conn *c, const char *path)
{
	sqlite3_stmt *s = NULL;
	const char *sql = "PRAGMA journal_mode = WAL";
	int rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return meta_sql_error(c, rc, sql);
	rc = meta_step(c, s);
	if (rc == 1) {
		const char *mode = meta_col_text(s, 0);
		rc = 0;
		if (!mode || strcmp(mode, "wal")) {
			log_error("meta: %s: cannot switch to WAL journal mode", path);
			rc = E_IO;
		}
	} else if (rc == 0) {
		rc = E_IO;
	}
	sqlite3_finalize(s);
	return rc;
}

/* Refuses a file that is some other program's SQLite database. */
static int check_identity(struct meta_conn *c, const char *path)
{
	int app_id, version, objects;
	int rc = query_int(c, "PRAGMA application_id", &app_id);
	if (!rc)
		rc = query_int(c, "PRAGMA user_version", &version);
	if (!rc)
		rc = query_int(c, "SELECT count(*) FROM sqlite_schema", &objects);
	if (rc)
		return rc;
	if (app_id == BERTH_APP_ID || (!app_id && !version && !objects))
		return 0;
	log_error("meta: %s is not a berth database", path);
	return E_IO;
}

/*
 * Brings the schema to target (at most meta_n_migrations), one step per
 * transaction. The version is re-read inside each transaction because
 * another process (the CLI) may be migrating the same file at the same time.
 */
static int migrate(struct meta_conn *c, const char *path, int target, int *version)
{
	int v = 0, rc;
	for (;;) {
		rc = meta_tx_begin(c);
		if (rc)
			return rc;
		rc = query_int(c, "PRAGMA user_version", &v);
		if (!rc && v > meta_n_migrations) {
			log_error("meta: %s has schema version %d, newer than this berth knows (%d)",
				  path, v, meta_n_migrations);
			rc = E_IO;
		}
		int done = v >= target;
		if (!rc && !done) {
			struct buf b = BUF_INIT;
			buf_addf(&b, "migration %d", v + 1);
			rc = exec_sql(c, meta_migrations[v], b.buf);
			buf_reset(&b);
			buf_addf(&b, "PRAGMA user_version = %d", v + 1);
			if (!rc)
				rc = exec_sql(c, b.buf, "setting the schema version");
			buf_release(&b);
			if (!rc)
				log_info("meta: %s: schema migrated to version %d", path, v + 1);
		}
		rc = meta_tx_end(c, rc);
		if (rc || done)
			break;
	}
	*version = v;
	return rc;
}

/* Opens path and migrates it to max_version (meta_n_migrations in production). */
static int open_at(const char *path, int max_version)
{
	struct meta_conn *c;
	int rc;
	if (!sqlite3_threadsafe()) {
		log_error("meta: libsqlite3 was built without thread support");
		return E_INTERNAL;
	}
	pthread_once(&key_once, init_once);
	fault_vfs_register(); /* test builds: database writes and syncs count as fault steps */
	pthread_mutex_lock(&reg_lock);
	if (db_path) {
		pthread_mutex_unlock(&reg_lock);
		log_error("meta: database opened twice");
		return E_INTERNAL;
	}
	db_path = xstrdup(path);
	pthread_mutex_unlock(&reg_lock);

	rc = conn_open_registered(1, &c);
	if (!rc)
		rc = check_identity(c, path);
	if (!rc)
		rc = set_wal(c, path);
	if (!rc)
		rc = migrate(c, path, max_version, &schema_version);
	if (rc)
		meta_close();
	return rc;
}

int meta_open(const char *path)
{
	return open_at(path, meta_n_migrations);
}

int meta_open_at_version(const char *path, int max_version)
{
	assert(max_version >= 1 && max_version <= meta_n_migrations);
	return open_at(path, max_version);
}

void meta_close(void)
{
	/* first: the writer thread's exit closes its connection, which takes reg_lock */
	meta_writer_stop();
	pthread_mutex_lock(&reg_lock);
	while (reg_head) {
		struct meta_conn *c = reg_head;
		reg_head = c->next;
		conn_close(c);
	}
	free(db_path);
	db_path = NULL;
	schema_version = 0;
	atomic_fetch_add_explicit(&generation, 1, memory_order_release);
	pthread_mutex_unlock(&reg_lock);
	tls_conn = NULL;
	pthread_once(&key_once, init_once);
	pthread_setspecific(exit_key, NULL);
}

int meta_schema_version(void)
{
	return schema_version;
}
