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
 * Per-thread connections. Each thread keeps a list of its connections, one
 * per struct meta it used (the key's destructor closes them when the
 * thread exits), and the last one it used in two thread-locals: a thread
 * on one database finds its connection with one comparison, as before
 * there could be several. An entry holds a reference to its meta, so the
 * pointer compared is never one freed and reused. These are the only
 * process-wide state of the module: the key and its once-guard.
 */
struct tconn {
	struct meta *m;
	struct meta_conn *c;
	struct tconn *next;
};
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static _Thread_local struct tconn *tls_list;
static _Thread_local struct meta *tls_meta;
static _Thread_local struct meta_conn *tls_conn;

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
 * The counters are the meta's: each database has its own log.
 */
static int wal_durable(struct meta_conn *c)
{
	uint64_t mine;
	int rc = 0;
	/* PostgreSQL: COMMIT returned once the server had made it durable */
	struct meta *m = c->m;
	if (!c->dialect->sync_commits)
		return 0;
	pthread_mutex_lock(&m->dur_lock);
	/* Numbered after COMMIT returned: its frames precede any fsync that starts later. */
	mine = ++m->dur_committed;
	while (m->dur_synced < mine && !rc) {
		if (m->dur_flushing) {
			pthread_cond_wait(&m->dur_cond, &m->dur_lock);
			continue;
		}
		uint64_t target = m->dur_committed;
		m->dur_flushing = 1;
		pthread_mutex_unlock(&m->dur_lock);
		rc = db_sync_log(c->db);
		pthread_mutex_lock(&m->dur_lock);
		m->dur_flushing = 0;
		if (!rc && target > m->dur_synced)
			m->dur_synced = target;
		pthread_cond_broadcast(&m->dur_cond);
	}
	pthread_mutex_unlock(&m->dur_lock);
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
static int conn_open(struct meta *m, int create, struct meta_conn **out)
{
	struct meta_conn *c = xcalloc(1, sizeof(*c));
	int rc = db_open_auth(m->engine, m->target, m->password, create ? DB_CREATE : 0, &c->db);
	if (rc) {
		free(c);
		c = NULL;
	} else {
		c->m = m;
		c->engine = m->engine;
		c->dialect = m->dialect;
	}
	*out = c;
	return rc;
}

static void meta_unref(struct meta *m)
{
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_destroy(&m->reg_lock);
	pthread_mutex_destroy(&m->dur_lock);
	pthread_cond_destroy(&m->dur_cond);
	pthread_mutex_destroy(&m->w.lock);
	pthread_cond_destroy(&m->w.cond);
	free(m);
}

/* Forgets a thread's entry: closes its connection unless meta_close() already did, drops the reference. */
static void tconn_drop(struct tconn *t)
{
	struct meta *m = t->m;
	pthread_mutex_lock(&m->reg_lock);
	if (!atomic_load(&m->closed)) {
		for (struct meta_conn **pp = &m->reg_head; *pp; pp = &(*pp)->next) {
			if (*pp == t->c) {
				*pp = t->c->next;
				conn_close(t->c);
				break;
			}
		}
	}
	pthread_mutex_unlock(&m->reg_lock);
	meta_unref(m);
	free(t);
}

/* Thread exit: the exiting thread's connections. */
static void conn_exit(void *list)
{
	for (struct tconn *t = list, *next; t; t = next) {
		next = t->next;
		tconn_drop(t);
	}
}

/* Process-wide set-up, run once before the first connection. */
static void init_once(void)
{
	if (pthread_key_create(&exit_key, conn_exit))
		die("meta: cannot create a thread key");
}

static void tls_publish(void)
{
	if (pthread_setspecific(exit_key, tls_list))
		die("meta: cannot set a thread key");
}

/*
 * Removes the calling thread's entries for m (all: m == NULL) and those of
 * metas closed since; then the entry for keep, when there is one.
 */
static struct tconn *tls_sweep(const struct meta *gone, const struct meta *keep)
{
	struct tconn *found = NULL;
	for (struct tconn **pp = &tls_list; *pp;) {
		struct tconn *t = *pp;
		if (t->m == gone || atomic_load(&t->m->closed)) {
			*pp = t->next;
			if (tls_meta == t->m)
				tls_meta = NULL; /* its memory may be reused once the entry's reference goes */
			tconn_drop(t);
			continue;
		}
		if (t->m == keep)
			found = t;
		pp = &t->next;
	}
	return found;
}

/* Opens and registers the calling thread's connection to m. */
static int conn_open_registered(struct meta *m, int create, struct meta_conn **out)
{
	int rc;
	pthread_once(&key_once, init_once);
	struct tconn *t = tls_sweep(NULL, m);
	if (t) {
		*out = t->c;
		goto found;
	}
	pthread_mutex_lock(&m->reg_lock);
	rc = conn_open(m, create, out);
	if (!rc) {
		(*out)->next = m->reg_head;
		m->reg_head = *out;
		atomic_fetch_add(&m->refs, 1);
	}
	pthread_mutex_unlock(&m->reg_lock);
	if (rc) {
		tls_publish();
		return rc;
	}
	t = xcalloc(1, sizeof(*t));
	t->m = m;
	t->c = *out;
	t->next = tls_list;
	tls_list = t;
found:
	tls_publish();
	tls_meta = m;
	tls_conn = *out;
	return 0;
}

int meta_conn_get(struct meta *m, struct meta_conn **out)
{
	if (tls_meta == m && m) {
		*out = tls_conn;
		return 0;
	}
	if (!m) {
		log_error("meta: database used while not open");
		return E_INTERNAL;
	}
	return conn_open_registered(m, 0, out);
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
static int open_at(enum db_engine e, const char *target, const char *password, int max_version,
		   struct meta **out)
{
	struct meta_conn *c;
	const char *what = e == DB_PG ? "the PostgreSQL database" : target;
	struct meta *m = xcalloc(1, sizeof(*m));
	int rc;
	atomic_init(&m->refs, 1);
	atomic_init(&m->closed, 0);
	pthread_mutex_init(&m->reg_lock, NULL);
	pthread_mutex_init(&m->dur_lock, NULL);
	pthread_cond_init(&m->dur_cond, NULL);
	meta_writer_init(m);
	m->target = xstrdup(target);
	m->password = password ? xstrdup(password) : NULL;
	m->engine = e;
	m->dialect = e == DB_PG ? &meta_dialect_pg : &meta_dialect_sqlite;

	*out = NULL;
	rc = conn_open_registered(m, 1, &c);
	if (!rc)
		rc = m->dialect->prepare(c, what);
	if (!rc)
		rc = migrate(c, what, max_version, &m->schema_version);
	if (rc) {
		meta_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

int meta_open(const char *path, struct meta **out)
{
	return open_at(DB_SQLITE, path, NULL, meta_n_migrations, out);
}

int meta_open_url(const char *conninfo, struct meta **out)
{
	return open_at(DB_PG, conninfo, NULL, meta_n_migrations, out);
}

int meta_open_pg(const char *conninfo, const char *password, struct meta **out)
{
	return open_at(DB_PG, conninfo, password, meta_n_migrations, out);
}

int meta_open_at_version(const char *path, int max_version, struct meta **out)
{
	return meta_open_engine(DB_SQLITE, path, max_version, out);
}

int meta_open_engine(enum db_engine e, const char *target, int max_version, struct meta **out)
{
	assert(max_version >= 1 && max_version <= meta_n_migrations);
	return open_at(e, target, NULL, max_version, out);
}

static void secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	/* first: the writer thread's exit closes its connection, which takes reg_lock */
	meta_writer_stop(m);
	pthread_mutex_lock(&m->reg_lock);
	while (m->reg_head) {
		struct meta_conn *c = m->reg_head;
		m->reg_head = c->next;
		conn_close(c);
	}
	atomic_store(&m->closed, 1);
	pthread_mutex_unlock(&m->reg_lock);
	secret_free(m->target);
	secret_free(m->password);
	m->target = m->password = NULL;
	/* the calling thread's own entry goes now; other threads' at their next look or their exit */
	pthread_once(&key_once, init_once);
	tls_sweep(m, NULL);
	tls_publish();
	meta_unref(m);
}

int meta_schema_version(struct meta *m)
{
	return m ? m->schema_version : 0;
}
