/*
 * db: the SQL driver under the metadata module, one interface over two
 * engines: SQLite (in-process, the embedded default) and PostgreSQL 15
 * (libpq). SQL is written once, with ?N parameters; the PostgreSQL driver
 * rewrites them to $N. Only db_sqlite.c calls sqlite3_* and only db_pg.c
 * calls PQ*; the metadata module (storage/meta*.c) is the only user.
 *
 * A struct db is one connection and belongs to one thread at a time (no
 * locking inside). A struct db_stmt belongs to its connection and must be
 * finalized before it is closed. Bound text and blobs are borrowed: they
 * must stay valid until the statement is reset (or finalized). Column text
 * and blobs are valid until the next db_step(), db_reset() or
 * db_finalize() of that statement.
 *
 * Errors are E_* codes (logged once, by the driver): E_BUSY (locked too
 * long), E_NO_SPACE (disk full), E_STORE_UNAVAILABLE (the server cannot be
 * reached or went away: the next call tries to reconnect), E_IO (anything
 * else), and DB_E_RETRY, which never leaves the metadata module.
 */
#ifndef BERTH_DB_H
#define BERTH_DB_H

#include <stddef.h>
#include <stdint.h>

enum db_engine {
	DB_SQLITE,
	DB_PG,
};

/*
 * The transaction lost a serialization conflict or a deadlock
 * (PostgreSQL 40001, 40P01) and was rolled back by the server: run it
 * again from the start. The metadata writer retries; anything else maps
 * it to E_BUSY. Outside the E_* range on purpose.
 */
#define DB_E_RETRY (-1000)

struct db;
struct db_stmt;

/* db_open() flags */
#define DB_CREATE 1 /* SQLite: create the file when missing */

/*
 * Opens a connection: target is a file path (SQLite) or a libpq
 * connection string or URL (PostgreSQL; the password comes from
 * PGPASSWORD or the passfile, and target is never logged).
 */
int db_open(enum db_engine e, const char *target, int flags, struct db **out);
/*
 * The same with a PostgreSQL password given apart from target (NULL:
 * libpq's own sources); never logged, ignored by SQLite.
 */
int db_open_auth(enum db_engine e, const char *target, const char *password, int flags, struct db **out);
/* Closes db (NULL is fine); every statement must have been finalized. */
void db_close(struct db *db);
enum db_engine db_engine_of(const struct db *db);

/*
 * Runs sql, which may hold several statements and no parameters, to
 * completion, ignoring rows. what names it in the log (sql itself may be
 * long).
 */
int db_exec(struct db *db, const char *sql, const char *what);

/*
 * Prepares sql. persistent: the statement is kept and reused (cached by
 * the caller; PostgreSQL prepares it on the server, again after a
 * reconnect); otherwise it is used once or a few times.
 */
int db_prepare(struct db *db, const char *sql, int persistent, struct db_stmt **out);
void db_finalize(struct db_stmt *s);
/* Makes s ready to run again: drops its result and its bindings. */
void db_reset(struct db_stmt *s);
const char *db_stmt_sql(const struct db_stmt *s);

/*
 * Binding ?i (1-based). A failing bind can only be a programming error
 * (or out of memory), so it dies. NULL text binds SQL NULL.
 */
void db_bind_text(struct db_stmt *s, int i, const char *t);
void db_bind_int64(struct db_stmt *s, int i, int64_t v);
void db_bind_blob(struct db_stmt *s, int i, const void *data, size_t len);
void db_bind_null(struct db_stmt *s, int i);

/* Runs s (first call) or moves to its next row: 1 for a row, 0 when done, else an error. */
int db_step(struct db_stmt *s);
/* Column i of the current row; NULL reads as 0 (integer), NULL (text, blob). Booleans read as 0/1. */
int64_t db_col_int64(struct db_stmt *s, int i);
const char *db_col_text(struct db_stmt *s, int i);
const void *db_col_blob(struct db_stmt *s, int i, size_t *len);
int db_col_is_null(struct db_stmt *s, int i);

/* Rows inserted, updated or deleted by the last statement run to completion on db. */
int64_t db_changes(const struct db *db);
/* Rows changed through db since it was opened, committed or not. */
uint64_t db_total_changes(const struct db *db);
/* Whether db has a transaction open (also a failed one, waiting for ROLLBACK). */
int db_in_tx(const struct db *db);

/*
 * SQLite: waits until the write-ahead log is on disk (one fsync covering
 * every commit so far). PostgreSQL: nothing to do, COMMIT returns once the
 * server made it durable (synchronous_commit).
 */
int db_sync_log(struct db *db);

#endif
