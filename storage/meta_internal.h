/*
 * meta_internal: what the meta*.c files share and nothing else may include
 * (but the meta unit tests, for meta_open_at_version()): the per-thread
 * connection, its prepared-statement cache, the per-engine dialect table,
 * transactions and the few helpers several files need. SQL goes through
 * storage/db.h, never to an engine's library directly.
 *
 * A struct meta_conn belongs to one thread (the one that opened it) and one
 * struct meta, and is used without any lock; only the meta's registry of
 * connections is locked. Statements come from the connection's cache and go back to it
 * (reset, bindings cleared) before the public function returns, so bound
 * text only has to live for that call.
 */
#ifndef BERTH_META_INTERNAL_H
#define BERTH_META_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "digest.h"
#include "meta.h"

/* One slot per statement in every connection's cache; grouped by file. */
enum meta_stmt_id {
	/* meta.c */
	MS_BEGIN,
	MS_COMMIT,
	MS_ROLLBACK,
	MS_REPO_ID,
	MS_REPO_INSERT,
	/* meta_blobs.c */
	MS_BLOB_LINKED,
	MS_BLOB_KNOWN,
	MS_BLOB_INSERT,
	MS_LINK_UPSERT,
	MS_LINK_DELETE,
	MS_BLOB_REPOS,
	MS_UPLOAD_INSERT,
	MS_UPLOAD_CHECK,
	MS_UPLOAD_DELETE,
	MS_UPLOAD_TOUCH,
	MS_UPLOADS_STALE,
	/* meta_manifests.c */
	MS_HAS_BLOB,
	MS_HAS_MANIFEST,
	MS_MANIFEST_INSERT,
	MS_REF_INSERT,
	MS_TAG_GET,
	MS_TAG_UPSERT,
	MS_HISTORY_INSERT,
	MS_MANIFEST_BY_DIGEST,
	MS_MANIFEST_BY_TAG,
	MS_TAGS_OF_MANIFEST,
	MS_TAGS_DELETE_FOR,
	MS_REFS_DELETE,
	MS_MANIFEST_DELETE,
	MS_LINK_DELETE_ID,
	MS_TAG_DELETE,
	MS_CONTENT_INSERT,
	MS_CONTENT_GET,
	MS_CONTENT_LIST,
	/* meta_lists.c */
	MS_TAGS_LIST,
	MS_DATA_VERSION,
	MS_REPO_EXISTS,
	MS_CATALOG,
	MS_REFERRERS,
	MS_HISTORY,
	/* meta_tokens.c */
	MS_PAT_INSERT,
	MS_PAT_BY_HASH,
	MS_PAT_CHECK,
	MS_PAT_SCOPES,
	MS_PAT_TOUCH,
	MS_PAT_LIST_OWNER,
	MS_PAT_LIST_ALL,
	MS_PAT_REVOKE,
	MS_PAT_NAME,
	/* meta_audit.c */
	MS_AUDIT_INSERT,
	MS_AUDIT_LIST,
	MS_AUDIT_LIST_REPO,
	/* meta_tags.c */
	MS_TAG_INFO,
	MS_TAG_REFS,
	MS_HISTORY_BACK,
	MS_MANIFEST_SIZE,
	/* meta_stats.c */
	MS_STATS,
	/* meta_gc.c */
	MS_GC_REPOS,
	MS_GC_MANIFESTS,
	MS_GC_HISTORY,
	MS_GC_REFS,
	MS_GC_LINKS,
	MS_GC_MANIFEST_CHECK,
	MS_GC_REFS_DELETE,
	MS_GC_MANIFEST_DELETE,
	MS_GC_LINK_CHECK,
	MS_GC_LINK_DELETE,
	MS_GC_UNLINKED,
	MS_GC_BLOB_DELETE,
	MS_GC_BLOB_STATE,
	MS_GC_UPLOAD_KNOWN,
	MS_GC_UPLOAD_EXPIRE,
	MS_FSCK_BLOBS,
	MS_FSCK_MANIFESTS,
	MS_FSCK_DANGLING,
	MS_FSCK_UPLOADS,
	MS_FSCK_INTEGRITY,
	MS_FSCK_FOREIGN_KEYS,
	/* meta_cluster.c */
	MS_CL_LINKED_AT,
	MS_CL_LOCATION,
	MS_CL_BLOB_INSERT,
	MS_CL_UPLOAD_INSERT,
	MS_CL_UPLOAD_GET,
	MS_CL_LEASE,
	MS_CL_STATE_PUT,
	MS_CL_LEASE_END,
	MS_CL_UPLOAD_EXISTS,
	MS_CL_UPLOAD_DELETE,
	MS_CL_PING,
	/* meta_gc_remote.c */
	MS_GR_UNLINKED,
	MS_GR_BLOB_REFS,
	MS_GR_UPLOAD_STATES,
	MS_GR_UPLOAD_EXPIRE,
	MS_GR_FSCK_BLOBS,
	MS_GR_LOCK,
	MS_GR_UNLOCK,
	/* meta_migrate.c: a range, MIG_SLOTS per table */
	MS_MIG,
	MS_MIG_LAST = MS_MIG + 63,
	/* meta_writer.c */
	MS_SAVEPOINT,
	MS_RELEASE,
	MS_ROLLBACK_TO,
	MS__COUNT
};

/*
 * A statement: its cache slot and its SQL, defined next to the code using
 * it. The SQL is the one text both engines run; pg, when not NULL, replaces
 * it on PostgreSQL where no portable form exists (engine catalogs and
 * checks, JSON functions, planner hints), each with a comment saying why.
 */
struct meta_query {
	enum meta_stmt_id id;
	const char *sql;
	const char *pg;
};

/*
 * What differs between the engines beyond single statements. Each entry
 * is either SQL or a function, NULL where an engine needs nothing.
 */
struct meta_conn;

struct meta_dialect {
	const char *name;
	/* Starts a write transaction (SQLite: take the write lock now, not at the first write). */
	const char *begin;
	/*
	 * First statement of every write transaction after begin. PostgreSQL:
	 * bumps the version row that meta_read_version() reads, and its row
	 * lock orders the write transactions of every node (meta_schema_pg.c).
	 */
	const char *bump;
	/* Run once on the writer thread's connection. */
	const char *writer_setup;
	/* Run inside each migration's transaction before the version is read (a lock against other nodes). */
	const char *migrate_lock;
	/* The schema's migrations; after step i the schema version is i + 1. */
	const char *const *migrations;
	int n_migrations;
	/* Once at open, before migrating: refuses a database that is not berth's, sets the journal mode. */
	int (*prepare)(struct meta_conn *c, const char *what);
	/* The schema version (0 for an empty database), inside the migration's transaction. */
	int (*version_get)(struct meta_conn *c, int *v);
	int (*version_set)(struct meta_conn *c, int v);
	/* Whether commits need db_sync_log() to be durable (group commit). */
	int sync_commits;
};
extern const struct meta_dialect meta_dialect_sqlite;
extern const struct meta_dialect meta_dialect_pg;

struct meta_conn {
	struct meta *m; /* whose connection it is */
	struct db *db;
	enum db_engine engine;
	const struct meta_dialect *dialect;
	struct db_stmt *stmts[MS__COUNT];
	const struct meta_query *queries[MS__COUNT]; /* who filled each slot */
	unsigned char in_use[MS__COUNT];
	struct meta_conn *next;                      /* registry list */
};

struct wjob;
/* The single writer's queue and thread (meta_writer.c), under lock. */
struct meta_writer {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* the writer waits for work */
	struct wjob *head, **tail;
	size_t len;
	int running, stop;
	pthread_t thread;
	uint64_t batches, txs, retries;
};

/*
 * An open database: everything meta keeps about it. Nothing of it is
 * process-wide, so several can be open at once (berth migrate reads one
 * and writes another). Freed when the last reference goes: meta_close()
 * drops the owner's; each thread that used it holds one in its list of
 * connections (meta.c) until it looks again or exits, so a stale entry
 * never points at freed memory.
 */
struct meta {
	atomic_int refs;
	pthread_mutex_t reg_lock;
	struct meta_conn *reg_head; /* every connection open on it */
	atomic_int closed;          /* meta_close() ran: every connection is gone */
	char *target;               /* path or connection string (never logged) */
	char *password;             /* PostgreSQL password given apart, or NULL */
	enum db_engine engine;
	const struct meta_dialect *dialect;
	int schema_version;
	/* group commit (SQLite, meta.c) */
	pthread_mutex_t dur_lock;
	pthread_cond_t dur_cond;
	uint64_t dur_committed; /* commits whose WAL frames are written */
	uint64_t dur_synced;    /* commits covered by a finished fsync */
	int dur_flushing;
	struct meta_writer w;
};

/*
 * The calling thread's connection to m, opened on first use (one per
 * thread and meta); E_INTERNAL for a NULL m, E_IO when opening fails.
 */
int meta_conn_get(struct meta *m, struct meta_conn **out);

/*
 * Hands out q's statement from c's cache, preparing it (persistent) on first
 * use. When the cached one is already in use (a callback re-entering meta),
 * a one-off statement is prepared instead. Every successful meta_stmt() is
 * paired with meta_stmt_done(), which resets it (or finalizes a one-off).
 */
int meta_stmt(struct meta_conn *c, const struct meta_query *q, struct db_stmt **out);
void meta_stmt_done(struct meta_conn *c, const struct meta_query *q, struct db_stmt *s);

/*
 * Steps s: 1 for a row, 0 when done, else the E_* (logged by the driver).
 * DB_E_RETRY comes back only inside a transaction (the writer retries
 * it); outside one it becomes E_BUSY.
 */
int meta_step(struct meta_conn *c, struct db_stmt *s);
/* Runs s to completion ignoring rows; 0 or the E_*. */
int meta_exec(struct meta_conn *c, struct db_stmt *s);
/* PRAGMA application_id of a berth database (0x62727468, "brth"), so a foreign SQLite file is refused. */
#define BERTH_APP_ID 1651668072
/* The number of schema migrations, the same on both engines (meta_schema.c). */
extern const int meta_n_migrations;

/* Runs sql (no parameters, not cached) and puts the first column of its first row into *out; E_IO for no row. */
int meta_query_int(struct meta_conn *c, const char *sql, int64_t *out);

/* Runs cached statement q, which takes no parameters and returns no rows (BEGIN, SAVEPOINT...). */
int meta_run_simple(struct meta_conn *c, const struct meta_query *q);

/* ---- statement runners (meta_each.c) ---- */
/* Sets a statement's parameters from barg. */
typedef void (*meta_bind_fn)(struct db_stmt *s, const void *barg);
/* Takes one result row; non-zero stops the walk. */
typedef int (*meta_row_fn)(struct db_stmt *s, void *rarg);
/*
 * Runs q on the calling thread's connection (so inside the transaction
 * that thread has open, if any): bind (may be NULL) sets the parameters,
 * then row is called for each result row in order. Returns 0 once every
 * row was taken, the first non-zero value row returned (the walk stops
 * there), or the mapped E_* when preparing or stepping fails. Column text
 * seen by row is valid only during that call. row may call meta_* readers
 * (meta_stmt() gives a statement still in use a one-off twin).
 */
int meta_each(struct meta *m, const struct meta_query *q, meta_bind_fn bind, const void *barg, meta_row_fn row, void *rarg);
/*
 * Runs the write q in a transaction of its own, bind (may be NULL) setting
 * its parameters from barg. *changes (rows changed) and *rowid (the first
 * column of its first row: q says RETURNING id) may be NULL and are
 * meaningful only when 0 is returned.
 */
int meta_write(struct meta *m, const struct meta_query *q, meta_bind_fn bind, const void *barg, int *changes, int64_t *rowid);
/*
 * A row function for meta_each() that stops at the first row (so meta_each
 * returns 1 for a row, 0 for none), putting its first column into the
 * int64_t at rarg when rarg is not NULL.
 */
int meta_first_int64(struct db_stmt *s, void *rarg);
/* Binders for meta_each() and meta_write(): the text barg is, or the int64_t it points at, as ?1. */
void meta_bind_text1(struct db_stmt *s, const void *text);
void meta_bind_int64_1(struct db_stmt *s, const void *v);
/* Text parameters ?1 .. ?n for meta_bind_texts() (a NULL one binds SQL NULL). */
struct meta_texts {
	int n;
	const char *v[4];
};
void meta_bind_texts(struct db_stmt *s, const void *texts);
/* Integer parameters ?1 .. ?n for meta_bind_ints(). */
struct meta_ints {
	int n;
	int64_t v[4];
};
void meta_bind_ints(struct db_stmt *s, const void *ints);
/* A text ?1 and an integer ?2 for meta_bind_text_int(). */
struct meta_text_int {
	const char *text;
	int64_t num;
};
void meta_bind_text_int(struct db_stmt *s, const void *ti);

/*
 * The low-level transaction steps, for the writer thread (meta_writer.c)
 * and for migrations at open; everything else writes through
 * meta_tx_run(). The dialect's begin (SQLite: BEGIN IMMEDIATE, waiting up
 * to the busy timeout, then E_BUSY) and, on PostgreSQL, its bump.
 */
int meta_tx_begin(struct meta_conn *c);
/*
 * Ends the transaction begun by meta_tx_begin(): commits when rc is 0 and
 * waits until the commit is durable (meta_tx_durable()), rolls back otherwise
 * (also when the commit fails). Returns rc, or the commit's or the sync's
 * error. All statements must have been handed back first.
 */
int meta_tx_end(struct meta_conn *c, int rc);
/* COMMIT without the sync; on failure rolls back (nothing was committed) and returns the error. */
int meta_tx_commit(struct meta_conn *c);
/*
 * SQLite: waits until one fsync of the WAL covers every commit made so far
 * on any connection (group commit). PostgreSQL: returns at once (COMMIT
 * returned when the server had made it durable).
 */
int meta_tx_durable(struct meta_conn *c);
/* Rolls back c's open transaction, if the engine has not already; a failure is only logged. */
void meta_tx_rollback(struct meta_conn *c);

/*
 * The body of a write transaction, run by meta_tx_run() on the writer
 * thread with the writer connection c, inside an open write transaction
 * (its own, or a savepoint within a batch). Returns 0 to keep what it
 * wrote, or an E_* to undo it, and only it: batch-mates keep theirs. It
 * may run more than once (when a batch cannot commit, each body is run
 * again in a transaction of its own; after a conflict, DB_E_RETRY, the
 * whole transaction runs again), so it first resets whatever it
 * hands back through arg. It may read through c or meta_each() (the
 * writer thread's connection is c) but must not call meta_tx_run().
 */
typedef int (*meta_tx_fn)(struct meta_conn *c, void *arg);

/*
 * Runs fn(c, arg) in a write transaction on the single writer connection
 * and returns once that transaction is durable (SQLite: the WAL fsync
 * covering its commit has finished) or has failed: fn's result, or the
 * error of BEGIN (E_BUSY when another process or node held the write lock
 * beyond the busy or lock timeout; E_STORE_UNAVAILABLE when the server is
 * gone), of COMMIT or of the sync; E_BUSY also when it kept losing
 * conflicts. Transactions queued by concurrent callers run in the order
 * they were queued, several in one transaction with one sync, each in its
 * own savepoint. Nothing is acknowledged before its commit is durable.
 * Called on the writer thread (from a body): E_INTERNAL. Thread-safe.
 */
int meta_tx_run(struct meta *m, meta_tx_fn fn, void *arg);
/* Stops the writer thread after it has run every queued transaction (meta_close()). */
void meta_writer_stop(struct meta *m);
/* Sets up m's writer queue (meta_open()). */
void meta_writer_init(struct meta *m);
/* For tests: transactions queued and not yet taken; batches and transactions run so far. */
void meta_writer_stats(struct meta *m, size_t *queued, uint64_t *batches, uint64_t *txs);

/*
 * Looks up repo's id. When absent: with create (only inside a write
 * transaction) inserts the repository, else returns E_NAME_UNKNOWN.
 */
int meta_repo_id(struct meta_conn *c, const char *repo, int create, int64_t *id);

/*
 * Records digest (size bytes) as a blob if new and links it to repo_id,
 * refreshing the link time (the GC grace period starts again). Call inside
 * a write transaction.
 */
int meta_link_blob(struct meta_conn *c, int64_t repo_id, const char *digest, int64_t size, int64_t now);

/*
 * Inserts audit event ev (time: now; id ignored) within c's open
 * transaction. E_INTERNAL when refused (empty action, detail not a JSON
 * object: nothing was written, the transaction may go on).
 */
int meta_audit_insert(struct meta_conn *c, const struct meta_audit *ev);

/*
 * The digest repo_id:tag points at into out (DIGEST_STR_MAX bytes); *found
 * is 0 when the tag does not exist.
 */
int meta_tag_current(struct meta_conn *c, int64_t repo_id, const char *tag, char *out, int *found);
/*
 * Points repo_id:tag at digest ds (a manifest of the repository) inside a
 * write transaction, recording the move with how (NULL: actor->how) unless
 * the tag already points there. A move of an existing tag is first put to
 * actor->guard (E_TAG_IMMUTABLE when it refuses); actor->change is filled.
 */
int meta_tag_set(struct meta_conn *c, int64_t repo_id, const char *tag, const char *ds, int64_t now,
		 const struct meta_actor *actor, const char *how);

/*
 * For tests only: meta_open(), but migrating no further than max_version
 * (1 .. the latest), so an upgrade from an older schema can be exercised.
 * A database already newer than max_version is left as it is.
 */
int meta_open_at_version(const char *path, int max_version, struct meta **out);
/* The same for either engine (target: a path or a libpq connection string). */
int meta_open_engine(enum db_engine e, const char *target, int max_version, struct meta **out);
/* For tests: write transactions run again after a conflict (DB_E_RETRY) since m was opened. */
uint64_t meta_writer_retries(struct meta *m);

/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t meta_now_ms(void);


#endif
