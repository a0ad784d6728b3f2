/* meta: per-thread database connections, statement cache, transactions and schema migrations. */
#include "meta.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "meta_internal.h"
#include "xalloc.h"

_Static_assert(REF_CONFIG == 0 && REF_LAYER == 1 && REF_CHILD == 2 && REF_SUBJECT == 3,
	       "manifest_refs.kind stores enum ref_kind values");

/*
 * Registry of every open connection, so meta_close() can close them all and
 * a thread's connection can be closed when the thread exits. Only opening
 * and closing take reg_lock; queries never do.
 */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct meta_conn *reg_head;
static char *db_target; /* path or connection string; NULL while closed */
static char *db_password; /* PostgreSQL password given apart, or NULL */
static enum db_engine db_eng;
static const struct meta_dialect *dialect;
static uintptr_t next_serial = 1;
/* Bumped by meta_close(): a thread-local pointer from an older generation is dangling. */
static atomic_uint generation;
static int schema_version;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static _Thread_local struct meta_conn *tls_conn;
static _Thread_local unsigned tls_gen;

static const struct meta_query q_commit = { .id = MS_COMMIT, .sql = "COMMIT" };
static const struct meta_query q_rollback = { .id = MS_ROLLBACK, .sql = "ROLLBACK" };
static const struct meta_query q_repo_id = { .id = MS_REPO_ID, .sql = "SELECT id FROM repos WHERE name = ?1" };
static const struct meta_query q_repo_insert = {
	.id = MS_REPO_INSERT, .sql = "INSERT INTO repos(name, created_ms) VALUES (?1, ?2) RETURNING id"
};

int64_t meta_now_ms(void)
{
	return clock_wall_ms();
}

int meta_stmt(struct meta_conn *c, const struct meta_query *q, struct db_stmt **out)
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
	struct db_stmt *s = NULL;
	int rc = db_prepare(c->db, c->engine == DB_PG && q->pg ? q->pg : q->sql, cached, &s);
	if (rc)
		return rc;
	if (cached) {
		c->stmts[slot] = s;
		c->queries[slot] = q;
		c->in_use[slot] = 1;
	}
	*out = s;
	return 0;
}

void meta_stmt_done(struct meta_conn *c, const struct meta_query *q, struct db_stmt *s)
{
	int slot = (int)q->id;
	if (s != c->stmts[slot]) {
		db_finalize(s);
		return;
	}
	db_reset(s);
	c->in_use[slot] = 0;
}

int meta_step(struct meta_conn *c, struct db_stmt *s)
{
	int rc = db_step(s);
	/* outside a transaction there is nothing to run again: the caller sees a busy database */
	if (rc == DB_E_RETRY && !db_in_tx(c->db))
		rc = E_BUSY;
	return rc;
}

int meta_exec(struct meta_conn *c, struct db_stmt *s)
{
	int rc;
	while ((rc = meta_step(c, s)) == 1)
		;
	return rc;
}

int meta_run_simple(struct meta_conn *c, const struct meta_query *q)
{
	struct db_stmt *s = NULL;
	int rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	rc = meta_exec(c, s);
	meta_stmt_done(c, q, s);
	return rc;
}

int meta_tx_begin(struct meta_conn *c)
{
	assert(!db_in_tx(c->db));
	int rc = db_exec(c->db, c->dialect->begin, "begin");
	if (!rc && c->dialect->bump && (rc = db_exec(c->db, c->dialect->bump, "version bump")))
		meta_tx_rollback(c);
	return rc;
}

/*
 * Group commit (SQLite). Connections run with synchronous=NORMAL, so COMMIT appends
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

static int wal_durable(struct meta_conn *c)
{
	uint64_t mine;
	int rc = 0;
	/* PostgreSQL: COMMIT returned once the server had made it durable */
	if (!c->dialect->sync_commits)
		return 0;
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
		rc = db_sync_log(c->db);
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
	/* the engine may have rolled back already (after an I/O error, or a failed COMMIT) */
	if (db_in_tx(c->db) && meta_run_simple(c, &q_rollback))
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
	struct db_stmt *s;
	int rc = meta_stmt(c, &q_repo_id, &s);
	if (rc)
		return rc;
	db_bind_text(s, 1, repo);
	rc = meta_step(c, s);
	if (rc == 1)
		*id = db_col_int64(s, 0);
	meta_stmt_done(c, &q_repo_id, s);
	if (rc == 1)
		return 0;
	if (rc)
		return rc;
	if (!create)
		return E_NAME_UNKNOWN;
	assert(db_in_tx(c->db));
	rc = meta_stmt(c, &q_repo_insert, &s);
	if (rc)
		return rc;
	db_bind_text(s, 1, repo);
	db_bind_int64(s, 2, meta_now_ms());
	rc = meta_step(c, s);
	if (rc == 1) {
		*id = db_col_int64(s, 0);
		rc = meta_exec(c, s);
	} else if (rc == 0) {
		rc = E_IO;
	}
	meta_stmt_done(c, &q_repo_insert, s);
	return rc;
}

/* ---- connections ---- */

static void conn_close(struct meta_conn *c)
{
	for (int i = 0; i < MS__COUNT; i++)
		db_finalize(c->stmts[i]);
	db_close(c->db);
	free(c);
}

/* Opens one connection (the driver applies the per-connection settings every user needs). */
static int conn_open(int create, struct meta_conn **out)
{
	struct meta_conn *c = xcalloc(1, sizeof(*c));
	int rc = db_open_auth(db_eng, db_target, db_password, create ? DB_CREATE : 0, &c->db);
	if (rc) {
		free(c);
		c = NULL;
	} else {
		c->engine = db_eng;
		c->dialect = dialect;
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
	if (pthread_key_create(&exit_key, conn_exit))
		die("meta: cannot create a thread key");
}

/* Opens and registers the calling thread's connection. */
static int conn_open_registered(int create, struct meta_conn **out)
{
	int rc;
	pthread_mutex_lock(&reg_lock);
	if (!db_target) {
		log_error("meta: database used while not open");
		rc = E_INTERNAL;
		goto out;
	}
	rc = conn_open(create, out);
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

int meta_query_int(struct meta_conn *c, const char *sql, int64_t *out)
{
	struct db_stmt *s = NULL;
	int rc = db_prepare(c->db, sql, 0, &s);
	if (rc)
		return rc;
	rc = meta_step(c, s);
	if (rc == 1) {
		*out = db_col_int64(s, 0);
		rc = 0;
	} else if (rc == 0) {
		log_error("meta: no result from %s", sql);
		rc = E_IO;
	}
	db_finalize(s);
	return rc;
}

/*
 * Brings the schema to target (at most meta_n_migrations), one step per
 * transaction. The version is re-read inside each transaction because
 * another process (the CLI, another node) may be migrating the same
 * database at the same time: SQLite's BEGIN IMMEDIATE or PostgreSQL's
 * advisory lock (the dialect's migrate_lock) keeps them apart.
 */
static int migrate(struct meta_conn *c, const char *what, int target, int *version)
{
	const struct meta_dialect *d = c->dialect;
	int v = 0, rc;
	for (;;) {
		rc = db_exec(c->db, d->begin, "begin");
		if (rc)
			return rc;
		if (d->migrate_lock)
			rc = db_exec(c->db, d->migrate_lock, "migration lock");
		if (!rc)
			rc = d->version_get(c, &v);
		if (!rc && v > d->n_migrations) {
			log_error("meta: %s has schema version %d, newer than this berth knows (%d)", what, v,
				  d->n_migrations);
			rc = E_IO;
		}
		int done = v >= target;
		if (!rc && !done) {
			struct buf b = BUF_INIT;
			buf_addf(&b, "migration %d", v + 1);
			rc = db_exec(c->db, d->migrations[v], b.buf);
			buf_release(&b);
			if (!rc)
				rc = d->version_set(c, v + 1);
			if (!rc)
				log_info("meta: %s: schema migrated to version %d", what, v + 1);
		}
		rc = meta_tx_end(c, rc);
		if (rc || done)
			break;
	}
	*version = v;
	return rc;
}

/*
 * Opens target (a path, or a connection string: never logged, it may name
 * a password) and migrates it to max_version (meta_n_migrations in
 * production).
 */
static int open_at(enum db_engine e, const char *target, const char *password, int max_version)
{
	struct meta_conn *c;
	const char *what = e == DB_PG ? "the PostgreSQL database" : target;
	int rc;
	pthread_once(&key_once, init_once);
	pthread_mutex_lock(&reg_lock);
	if (db_target) {
		pthread_mutex_unlock(&reg_lock);
		log_error("meta: database opened twice");
		return E_INTERNAL;
	}
	db_target = xstrdup(target);
	db_password = password ? xstrdup(password) : NULL;
	db_eng = e;
	dialect = e == DB_PG ? &meta_dialect_pg : &meta_dialect_sqlite;
	pthread_mutex_unlock(&reg_lock);

	rc = conn_open_registered(1, &c);
	if (!rc)
		rc = dialect->prepare(c, what);
	if (!rc)
		rc = migrate(c, what, max_version, &schema_version);
	if (rc)
		meta_close();
	return rc;
}

int meta_open(const char *path)
{
	return open_at(DB_SQLITE, path, NULL, meta_n_migrations);
}

int meta_open_url(const char *conninfo)
{
	return open_at(DB_PG, conninfo, NULL, meta_n_migrations);
}

int meta_open_pg(const char *conninfo, const char *password)
{
	return open_at(DB_PG, conninfo, password, meta_n_migrations);
}

int meta_open_at_version(const char *path, int max_version)
{
	return meta_open_engine(DB_SQLITE, path, max_version);
}

int meta_open_engine(enum db_engine e, const char *target, int max_version)
{
	assert(max_version >= 1 && max_version <= meta_n_migrations);
	return open_at(e, target, NULL, max_version);
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
	if (db_target)
		explicit_bzero(db_target, strlen(db_target));
	free(db_target);
	db_target = NULL;
	if (db_password)
		explicit_bzero(db_password, strlen(db_password));
	free(db_password);
	db_password = NULL;
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
